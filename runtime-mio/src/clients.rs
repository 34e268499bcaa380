//! The client protocol, server side: CHAT, HISTORY, SUBSCRIBE, LIST and STATUS
//! lines in (and the rooms requests of `rooms.rs`: JOIN, PART, TOPIC, NICK,
//! WHO); CHAT_ACK, SEQ_CHAT, HISTORY_END, ROOMS, STATUS and ERROR lines out.
//!
//! Rules kept here: a client may only send client types. A line whose `type`
//! is a peer or handshake type (SEQ_CHAT, COORDINATOR, HEARTBEAT, HELLO, …)
//! gets ERROR `forbidden`, changes nothing, and the connection stays open; a
//! line that is not valid JSON or not a known client message gets ERROR
//! `bad_request` and the connection is closed; a well-formed CHAT with an
//! unacceptable field gets ERROR `bad_request` and the connection stays open.
//! A chat's `ts_ms` is the wall clock of this node at receipt.

use crate::auth::HANDSHAKE_TYPES;
use crate::clock::wall_ms;
use crate::conn::{
    ClientState, Cursor, Dialect, HistoryJob, Role, Subscription, MAX_SUBSCRIBED_ROOMS,
};
use crate::net::{encode, line_type};
use crate::runtime::Runtime;
use chorus_core::client_wire::{ClientLine, NodeHello, NodeStatus, ServerLine, PROTO};
use chorus_core::wire::PEER_TYPES;
use chorus_core::{
    Chat, ClientId, ClientReply, ClientRequest, ErrorCode, Event, Input, Role as CoreRole,
};
use mio::Token;
use std::collections::BTreeSet;
use tracing::debug;

/// Longest msg_id, room_id or user name accepted (bytes).
pub const MAX_ID_BYTES: usize = 256;
/// Default and largest HISTORY `limit`.
pub const HISTORY_LIMIT_MAX: usize = 1000;

pub(crate) fn client_id(token: Token) -> ClientId {
    ClientId(token.0 as u64)
}

fn check_id(what: &str, v: &str, may_be_empty: bool) -> Result<(), String> {
    if v.is_empty() && !may_be_empty {
        return Err(format!("{what} must not be empty"));
    }
    if v.len() > MAX_ID_BYTES {
        return Err(format!("{what} is longer than {MAX_ID_BYTES} bytes"));
    }
    Ok(())
}

/// A HISTORY page of `room` by room_seq: the messages numbered above
/// `after` and below `before`, at most `limit`, the newest ones when
/// `before` is given (paging back), oldest first in the answer.
fn room_page(room: String, after: Option<u64>, before: Option<u64>, limit: usize) -> HistoryJob {
    let floor = after.unwrap_or(0);
    let (first, remaining) = match before {
        Some(b) => {
            let last = b.saturating_sub(1);
            let lo = floor.max(last.saturating_sub(limit as u64));
            (lo + 1, last.saturating_sub(lo) as usize)
        }
        None => (floor + 1, limit),
    };
    HistoryJob {
        cursor: Cursor::Room { room, next: first },
        next_seq_no: 1,
        remaining,
    }
}

impl Runtime {
    /// True if `token` is a client speaking the seed dialect.
    fn is_seed(&mut self, token: Token) -> bool {
        self.conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .is_some_and(|st| st.is_seed())
    }

    /// Answers one client right away (not a reply that waits for the log).
    /// A seed-dialect client gets none of these lines (the seed knows none).
    pub(crate) fn answer(&mut self, token: Token, line: &ServerLine) {
        if self.is_seed(token) {
            debug!("seed client {token:?}: not sent (no seed type): {line:?}");
            return;
        }
        if let Some(lines) = self.irc_render(token, line) {
            for l in lines {
                if !self.push_line(token, &l) {
                    return;
                }
            }
            return;
        }
        let bytes = encode(line);
        self.push_line(token, &bytes);
    }

    /// A fresh connection's first line is a client HELLO: proto 2 gets the
    /// full protocol and the node's HELLO; another proto a clear ERROR.
    pub(crate) fn on_client_hello(&mut self, token: Token, line: &[u8]) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        c.role = Role::Client(ClientState {
            dialect: Dialect::Full,
            ..Default::default()
        });
        let (proto, user) = match serde_json::from_slice::<ClientLine>(line) {
            Ok(ClientLine::Hello { proto, user, .. }) => (proto, user),
            _ => {
                let msg = "malformed HELLO: expected {\"type\":\"HELLO\",\"proto\":2,\"client\":\"name/version\"}".to_string();
                return self.fail_conn(token, ErrorCode::BadRequest, msg);
            }
        };
        if proto != PROTO {
            let msg = format!(
                "proto {proto} is not spoken here: this node speaks proto {PROTO} (or, without HELLO, the seed dialect); the connection is closed"
            );
            return self.fail_conn(token, ErrorCode::BadRequest, msg);
        }
        let hello = ServerLine::Hello(NodeHello {
            node_id: self.me.0,
            proto: PROTO,
            max_line_bytes: self.limits.max_line_bytes,
            max_id_bytes: MAX_ID_BYTES,
            history_limit: HISTORY_LIMIT_MAX,
            accounts: self.login.enabled(),
            guests: !self.login.enabled() || self.login.opts.guests,
            registration: self.login.enabled()
                && self.login.opts.registration == crate::options::Registration::Open,
        });
        self.answer(token, &hello);
        if let Some(name) = user {
            let checked = crate::rooms::check_name(&name)
                .and_then(|()| self.nick_name(token, name).map_err(|(_, why)| why));
            match checked {
                Ok(name) => self.set_session_name(token, Some(name)),
                Err(why) => {
                    let msg = format!("HELLO user: {why}; the session has no name (send NICK)");
                    self.refuse(token, ErrorCode::BadRequest, msg);
                }
            }
        }
    }

    /// A fresh connection that said nothing for `SEED_IDLE`: a seed client
    /// that only listens, served its room's messages.
    pub(crate) fn seed_listener(&mut self, token: Token) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        c.deadline = None;
        c.role = Role::Client(ClientState::default());
        self.seed_subscribe(token, crate::net::SEED_ROOM);
    }

    /// A seed-dialect client's first CHAT: from now on it receives every
    /// committed message of that room, from its first, in the seed's shape.
    fn seed_subscribe(&mut self, token: Token, room: &str) {
        let sub = Subscription {
            cursor: Cursor::Room {
                room: room.to_string(),
                next: 1,
            },
            min_seq_no: 0,
        };
        if let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
            if st.sub.is_none() {
                st.sub = Some(sub);
                self.streaming.insert(token);
            }
        }
    }

    pub(crate) fn refuse(&mut self, token: Token, code: ErrorCode, message: String) {
        self.metrics.error(code);
        self.answer(token, &ServerLine::Error { code, message });
    }

    pub(crate) fn on_client_line(&mut self, token: Token, line: &[u8]) {
        let parsed = match serde_json::from_slice::<ClientLine>(line) {
            Ok(p) => p,
            Err(e) => {
                let ty = line_type(line).unwrap_or_default();
                if PEER_TYPES.contains(&ty.as_str()) || HANDSHAKE_TYPES.contains(&ty.as_str()) {
                    let msg = format!(
                        "{ty} is a peer message; clients may send CHAT, HISTORY, SUBSCRIBE, LIST, JOIN, PART, TOPIC, NICK, WHO, STATUS"
                    );
                    return self.refuse(token, ErrorCode::Forbidden, msg);
                }
                let msg = format!("cannot parse line: {e}; the connection is closed");
                return self.fail_conn(token, ErrorCode::BadRequest, msg);
            }
        };
        if self.is_seed(token) && !matches!(parsed, ClientLine::Chat { .. }) {
            // The seed's clients send CHAT only; anything else gets no answer
            // (the dialect has no line for one).
            debug!("seed client {token:?}: ignored a non-CHAT line");
            return;
        }
        match parsed {
            ClientLine::Hello { .. } => {
                let msg = "HELLO is only valid as a connection's first line".to_string();
                self.refuse(token, ErrorCode::BadRequest, msg);
            }
            ClientLine::Chat {
                msg_id,
                payload,
                room_id,
                sender_id,
                user,
                ..
            } => {
                if self.is_seed(token) && !room_id.is_empty() && room_id.len() <= MAX_ID_BYTES {
                    self.seed_subscribe(token, &room_id);
                }
                // Who the message is from: the session's account (a CHAT
                // naming anyone else is refused), a guest's marked name,
                // or, with accounts off, the session's or the line's name.
                let user = match self.sender_name(token, user) {
                    Ok(u) => u,
                    Err((code, why)) => {
                        let msg = format!("CHAT {msg_id:?}: {why}");
                        return self.refuse(token, code, msg);
                    }
                };
                let chat = Chat {
                    msg_id,
                    room_id,
                    sender_id,
                    user,
                    payload,
                    ts_ms: wall_ms(),
                    event: None,
                };
                self.on_chat(token, chat);
            }
            ClientLine::History {
                from_seq,
                limit,
                room_id,
                after,
                before,
            } => {
                let from = from_seq.unwrap_or(1).max(1);
                let limit = limit.unwrap_or(HISTORY_LIMIT_MAX).min(HISTORY_LIMIT_MAX);
                let job = if after.is_none() && before.is_none() {
                    HistoryJob {
                        cursor: self.cursor_from(from, room_id),
                        next_seq_no: from,
                        remaining: limit,
                    }
                } else if let Some(room) = room_id {
                    // `before` past the room's end means "the newest": page
                    // back from the end, not from a number not yet given.
                    let end = self.node.numbering().room_len(&room) + 1;
                    room_page(room, after, before.map(|b| b.min(end)), limit)
                } else {
                    let msg = "HISTORY with after/before pages one room: give room_id".into();
                    return self.refuse(token, ErrorCode::BadRequest, msg);
                };
                self.on_history(token, job);
            }
            ClientLine::List {} => {
                let rooms = self.room_list();
                self.answer(token, &rooms);
            }
            ClientLine::Subscribe {
                from_seq,
                room_id,
                rooms,
            } => {
                if rooms.len() > MAX_SUBSCRIBED_ROOMS {
                    let msg = format!(
                        "SUBSCRIBE names {} rooms; at most {MAX_SUBSCRIBED_ROOMS}",
                        rooms.len()
                    );
                    return self.refuse(token, ErrorCode::BadRequest, msg);
                }
                let from = from_seq.unwrap_or(self.delivered_chats + 1).max(1);
                let cursor = if rooms.is_empty() {
                    self.cursor_from(from, room_id)
                } else {
                    self.rooms_cursor_from(from, rooms)
                };
                let sub = Subscription {
                    cursor,
                    min_seq_no: from,
                };
                if let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
                    st.sub = Some(sub);
                    self.streaming.insert(token);
                }
            }
            ClientLine::Join { room_id, msg_id } => {
                self.on_room_request(token, Event::Join, &room_id, None, msg_id);
            }
            ClientLine::Part { room_id, msg_id } => {
                self.on_room_request(token, Event::Leave, &room_id, None, msg_id);
            }
            ClientLine::Topic {
                room_id,
                topic,
                msg_id,
            } => self.on_room_request(token, Event::Topic, &room_id, Some(topic), msg_id),
            ClientLine::Nick { name, msg_id } => self.on_nick(token, name, msg_id),
            ClientLine::Kick {
                room_id,
                user,
                msg_id,
            } => self.on_room_request(token, Event::Kick, &room_id, Some(user), msg_id),
            ClientLine::Login { user, password } => self.on_login(token, user, password),
            ClientLine::Register { user, password } => self.on_register(token, user, password),
            ClientLine::UserAdmin {
                op,
                user,
                password,
                secret,
            } => self.on_user_admin(token, &op, user, password, &secret),
            ClientLine::Who { room_id } => {
                let who = self.who(&room_id);
                self.answer(token, &who);
            }
            ClientLine::Status {} => {
                let status = ServerLine::Status(self.node_status());
                self.answer(token, &status);
            }
        }
    }

    /// A stream of several rooms from global chat `from` (a seq_no).
    fn rooms_cursor_from(&self, from: u64, rooms: Vec<String>) -> Cursor {
        let n = self.node.numbering();
        // History deleted by retention: start at the oldest still held.
        let from = from.max(n.first_seq_no());
        let index = n.index_of(from).unwrap_or(n.upto().next());
        let names: BTreeSet<String> = rooms.into_iter().collect();
        Cursor::Rooms(
            names
                .into_iter()
                .map(|r| {
                    let next = n.room_seq_from(&r, index);
                    (r, next)
                })
                .collect(),
        )
    }

    /// A stream starting at global chat `from` (a seq_no), of one room or all.
    fn cursor_from(&self, from: u64, room: Option<String>) -> Cursor {
        let n = self.node.numbering();
        // History deleted by retention: start at the oldest still held.
        let from = from.max(n.first_seq_no());
        // Not numbered yet: start after everything folded so far.
        let index = n.index_of(from).unwrap_or(n.upto().next());
        match room {
            Some(room) => Cursor::Room {
                next: n.room_seq_from(&room, index),
                room,
            },
            None => Cursor::All(index),
        }
    }

    pub(crate) fn on_chat(&mut self, token: Token, chat: Chat) {
        let now = self.now.0;
        let limited = self
            .conns
            .get_mut(&token)
            .and_then(|c| c.rate.as_mut())
            .is_some_and(|b| !b.take(now));
        if limited {
            let msg = format!(
                "CHAT {:?}: more than {} messages per second (burst {}); retry later with the same msg_id",
                chat.msg_id, self.limits.client_rate_per_sec, self.limits.client_rate_burst
            );
            return self.refuse(token, ErrorCode::RateLimited, msg);
        }
        if let Some(account) = self.account_of(token).filter(|_| chat.is_message()) {
            if !self.account_rate_ok(&account) {
                let o = &self.login.opts;
                let msg = format!(
                    "CHAT {:?}: account {account} sends more than {} messages per second (burst {}); retry later with the same msg_id",
                    chat.msg_id, o.account_rate_per_sec, o.account_rate_burst
                );
                return self.refuse(token, ErrorCode::RateLimited, msg);
            }
        }
        // A rename belongs to no room.
        let roomless = chat.event == Some(Event::Nick);
        let valid = check_id("msg_id", &chat.msg_id, false)
            .and_then(|_| check_id("room_id", &chat.room_id, roomless))
            .and_then(|_| check_id("user", chat.user.as_deref().unwrap_or(""), true));
        if let Err(why) = valid {
            let msg = format!("CHAT {:?}: {why}", chat.msg_id);
            return self.refuse(token, ErrorCode::BadRequest, msg);
        }
        if let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
            st.outstanding += 1;
        }
        if self.http.is_some() {
            self.metrics.chat_received(token.0, &chat.msg_id);
        }
        let request = ClientRequest::Chat(chat);
        self.feed(Input::Client {
            client: client_id(token),
            request,
        });
    }

    pub(crate) fn on_history(&mut self, token: Token, job: HistoryJob) {
        let max = self.limits.max_history_jobs;
        let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) else {
            return;
        };
        if st.history.len() >= max {
            let msg = format!(
                "{max} HISTORY requests are already being answered; wait for their HISTORY_END"
            );
            return self.refuse(token, ErrorCode::Busy, msg);
        }
        st.history.push_back(job);
        self.streaming.insert(token);
    }

    /// The STATUS answer: the core's view plus addresses for failover.
    pub(crate) fn node_status(&self) -> NodeStatus {
        let s = self.node.status();
        let members = self.node.members();
        let me = self.advertised.clone();
        let addr_of = |id| {
            if id == self.me {
                Some(me.clone())
            } else {
                members
                    .iter()
                    .find(|m| m.node_id == id)
                    .map(|m| format!("{}:{}", m.host, m.port))
            }
        };
        let mut all: Vec<String> = vec![me.clone()];
        all.extend(members.iter().map(|m| format!("{}:{}", m.host, m.port)));
        NodeStatus {
            node_id: s.id.0,
            role: match s.role {
                CoreRole::Follower => "follower",
                CoreRole::Candidate => "candidate",
                CoreRole::Leader => "leader",
            }
            .to_string(),
            // The durable term, not the one in memory: with asynchronous
            // fsyncs a term can be visible before it is durable, and a
            // power loss then restarts the node in the term before (no
            // message carried it). Shown durable, it never goes back.
            term: self.durable_term,
            leader: s.leader.map(|l| l.0),
            leader_addr: s.leader.and_then(addr_of),
            commit_seq: self.delivered_chats,
            log_commit: self.delivered.0,
            log_last: s.last_seq.0,
            log_first: s.first_seq.0,
            snapshot_seq: s.snapshot_seq.0,
            snapshot_installs: s.installs,
            members: all,
            http_members: self.http_members(),
        }
    }

    /// Performs a core `Reply` (after the records it depends on are durable).
    pub(crate) fn reply_client(&mut self, client: ClientId, reply: &ClientReply) {
        let token = Token(client.0 as usize);
        // An account change is answered when it is delivered (`login.rs`).
        let account_op = match reply {
            ClientReply::ChatAck { msg_id, .. } | ClientReply::EventAck { msg_id, .. } => {
                self.account_reply(msg_id, false)
            }
            ClientReply::Error { .. } => {
                self.account_failed(token);
                false
            }
            ClientReply::History { .. } => false,
        };
        let Some(c) = self.conns.get_mut(&token) else {
            return; // the client left; its answer has nowhere to go
        };
        let Role::Client(st) = &mut c.role else {
            return;
        };
        if account_op {
            st.outstanding = st.outstanding.saturating_sub(1);
            return;
        }
        if st.is_seed() {
            // The seed has no CHAT_ACK or ERROR: its messages come back as
            // SEQ_CHAT lines of its room's subscription.
            st.outstanding = st.outstanding.saturating_sub(1);
            return;
        }
        let mut lines = Vec::new();
        match reply {
            ClientReply::ChatAck { msg_id, seq_no } | ClientReply::EventAck { msg_id, seq_no } => {
                st.outstanding = st.outstanding.saturating_sub(1);
                self.metrics.chat_answered(token.0, Some(msg_id), true);
                lines.push(ServerLine::ChatAck {
                    msg_id: msg_id.clone(),
                    seq_no: *seq_no,
                });
            }
            ClientReply::Error { code, message } => {
                st.outstanding = st.outstanding.saturating_sub(1);
                self.metrics.error(*code);
                lines.push(ServerLine::Error {
                    code: *code,
                    message: message.clone(),
                });
            }
            ClientReply::History {
                entries,
                commit_seq,
            } => {
                // Not sent by this runtime (it streams history itself,
                // `streams.rs`); answered in the same numbering if it were.
                let _ = commit_seq;
                let mut next = 1;
                for e in entries {
                    if let Some(d) = crate::streams::delivered_at(&mut self.node, e.seq_no) {
                        next = d.seq_no + 1;
                        lines.push(ServerLine::SeqChat(d));
                    }
                }
                let first = self.node.numbering().first_seq_no();
                lines.push(ServerLine::HistoryEnd {
                    next_seq: next,
                    commit_seq: self.delivered_chats,
                    first_seq: (first > 1).then_some(first),
                    first_room_seq: None,
                });
            }
        }
        for l in &lines {
            let out = self.irc_render(token, l).unwrap_or_else(|| vec![encode(l)]);
            for bytes in out {
                if !self.push_line(token, &bytes) {
                    return;
                }
            }
        }
    }
}
