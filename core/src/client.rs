//! Client requests: chats are idempotent by msg_id. The leader sequences new
//! ones; a follower forwards them (again after a leader change and on a timer,
//! since forwards can be lost). A client is answered with the committed seq_no
//! only after commit, also when it retries an id that is already committed.
//! Pending chats are bounded by `max_pending` (overflow answers `Busy`).
//! Room events (joins, leaves, topics, names) take exactly this path: they
//! are submissions with `Chat::event` set, answered by `EventAck`.
//! `ClientRequest::Session` only updates presence (`gossip.rs`).

use crate::config::InjectedBug;
use crate::entry::{Body, Chat, Event};
use crate::io::Action;
use crate::node::{Election, Node, State, Timer};
use crate::types::{ClientId, NodeId, Seq, Term};
use crate::wire::{ClientReply, ClientRequest, ErrorCode, PeerMsg};

impl Node {
    pub(crate) fn on_client(
        &mut self,
        client: ClientId,
        req: ClientRequest,
        out: &mut Vec<Action>,
    ) {
        match req {
            ClientRequest::Chat(chat) => self.on_chat(client, chat, out),
            ClientRequest::Session { name } => self.on_session(client, name),
            ClientRequest::History { from_seq, limit } => {
                let limit = limit.min(self.cfg.max_batch_entries);
                let mut entries = self.log.slice(from_seq, limit, self.cfg.max_batch_bytes);
                entries.retain(|e| e.seq_no <= self.commit_seq);
                let reply = ClientReply::History {
                    entries,
                    commit_seq: self.commit_seq,
                };
                out.push(Action::Reply { client, reply });
            }
        }
    }

    /// The answer to a submission committed at log index `index`: a chat's
    /// number, or for a room event the number of the chat after it.
    pub(crate) fn committed_reply(&self, msg_id: String, index: Seq) -> ClientReply {
        match self.numbering.chat_number_at(index) {
            Some(seq_no) => ClientReply::ChatAck { msg_id, seq_no },
            None => ClientReply::EventAck {
                msg_id,
                seq_no: self.numbering.seq_no_from(index),
            },
        }
    }

    /// Why a submission can't be taken now, if it can't (`Busy`): a new room
    /// past `max_rooms`, a join past `max_members_per_room`.
    fn over_limit(&self, chat: &Chat) -> Option<String> {
        let room = chat.room_id.as_str();
        let room_state = self.rooms.get(room);
        let exists = self.numbering.has_room(room) || room_state.is_some();
        // Rooms with messages plus rooms with members: counts a room with
        // both twice, so the bound errs on the safe side.
        let rooms = self.numbering.room_count() + self.rooms.len();
        let creates = chat.event.is_none_or(|e| e == Event::Join);
        if !exists && creates && rooms >= self.cfg.max_rooms {
            return Some(format!(
                "this cluster holds {rooms} rooms, its limit (max_rooms); use an existing room"
            ));
        }
        let members = room_state.map_or(0, |r| r.members.len());
        if chat.event == Some(Event::Join) && members >= self.cfg.max_members_per_room {
            return Some(format!(
                "room {room} has {members} members, its limit (max_members_per_room)"
            ));
        }
        None
    }

    fn on_chat(&mut self, client: ClientId, chat: Chat, out: &mut Vec<Action>) {
        if let Some(seq) = self.log.seq_of(&chat.msg_id) {
            if seq <= self.numbering.upto() {
                let reply = self.committed_reply(chat.msg_id, seq);
                out.push(Action::Reply { client, reply });
            } else {
                self.add_waiter(chat.msg_id, client);
            }
            return;
        }
        if self.waiting.contains_key(&chat.msg_id) {
            self.add_waiter(chat.msg_id, client);
            return;
        }
        if self.waiting.len() >= self.cfg.max_pending {
            let reply = ClientReply::Error {
                code: ErrorCode::Busy,
                message: format!(
                    "{} messages are waiting for commit on this node; retry later with the same msg_id",
                    self.waiting.len()
                ),
            };
            out.push(Action::Reply { client, reply });
            return;
        }
        if let Some(message) = self.over_limit(&chat) {
            let reply = ClientReply::Error {
                code: ErrorCode::Busy,
                message,
            };
            out.push(Action::Reply { client, reply });
            return;
        }
        self.waiting.insert(chat.msg_id.clone(), vec![client]);
        if self.is_leader() {
            self.append_local(Body::Chat(chat), out);
        } else {
            if let Some(l) = self.leader {
                let msg = self.forward_msg(chat.clone());
                out.push(Action::Send { to: l, msg });
            }
            self.pending.insert(chat);
            if !self.is_armed(Timer::Forward) {
                self.arm(Timer::Forward, self.cfg.leader_timeout_ms / 2);
            }
        }
    }

    fn forward_msg(&self, chat: Chat) -> PeerMsg {
        PeerMsg::Forward {
            sender_id: self.id(),
            term: self.term,
            chat,
        }
    }

    /// Leader: sequence a follower's chat unless its msg_id is known.
    pub(crate) fn on_forward(
        &mut self,
        from: NodeId,
        _term: Term,
        chat: Chat,
        out: &mut Vec<Action>,
    ) {
        if !self.is_leader() {
            // A claimant keeps what its future followers already hand it (they
            // follow it on COORDINATOR, before it leads) and sequences it when it
            // leads; anyone else drops it: the follower re-forwards to the leader.
            let claiming = matches!(
                self.state,
                State::Candidate(Election::Claiming { .. } | Election::Fetching { .. })
            );
            if claiming && self.pending.len() < self.cfg.max_pending {
                self.pending.insert(chat);
            }
            return;
        }
        match self.log.seq_of(&chat.msg_id) {
            Some(seq) if seq <= self.numbering.upto() => {
                let msg = PeerMsg::ForwardAck {
                    sender_id: self.id(),
                    term: self.term,
                    msg_id: chat.msg_id,
                    seq_no: self.numbering.seq_no_from(seq),
                    event: self.numbering.chat_number_at(seq).is_none(),
                };
                out.push(Action::Send { to: from, msg });
            }
            Some(_) => {} // in flight: the follower sees it commit
            None => {
                self.append_local(Body::Chat(chat), out);
            }
        }
    }

    /// Registers `client` as waiting for `msg_id` once, however often it retries.
    fn add_waiter(&mut self, msg_id: String, client: ClientId) {
        let w = self.waiting.entry(msg_id).or_default();
        if !w.contains(&client) {
            w.push(client);
        }
    }

    /// The leader says this msg_id is committed as chat number `seq_no`
    /// (a room event: before it).
    pub(crate) fn on_forward_ack(
        &mut self,
        msg_id: String,
        seq_no: u64,
        event: bool,
        out: &mut Vec<Action>,
    ) {
        self.pending.remove(&msg_id);
        for client in self.waiting.remove(&msg_id).unwrap_or_default() {
            let msg_id = msg_id.clone();
            let reply = if event {
                ClientReply::EventAck { msg_id, seq_no }
            } else {
                ClientReply::ChatAck { msg_id, seq_no }
            };
            out.push(Action::Reply { client, reply });
        }
    }

    /// Sends every pending chat to the (new) leader.
    pub(crate) fn reforward_pending(&mut self, out: &mut Vec<Action>) {
        let Some(l) = self.leader.filter(|&l| l != self.id()) else {
            return;
        };
        if self.cfg.bug == Some(InjectedBug::NeverReforward) {
            return;
        }
        let chats: Vec<Chat> = self.pending.iter().cloned().collect();
        for chat in chats {
            let msg = self.forward_msg(chat);
            out.push(Action::Send { to: l, msg });
        }
    }

    pub(crate) fn on_forward_timer(&mut self, out: &mut Vec<Action>) {
        if self.pending.is_empty() || self.is_leader() {
            return;
        }
        // A follower still catching up to the leader's commit point may find
        // its pending chats in the entries it has yet to fetch: sending them
        // again now would commit them twice once the exactly-once window has
        // moved past them, and each duplicate puts it further behind (a
        // storm found by the 100k-seed soak with tiny windows, seed 0xa949).
        // It re-forwards once caught up (a lost FORWARD is then sent again).
        let lagging = self.leader_match < self.leader_commit || self.incoming.is_some();
        if self.has_live_leader() && lagging {
            self.arm(Timer::Forward, self.cfg.leader_timeout_ms / 2);
            return;
        }
        self.reforward_pending(out);
        self.arm(Timer::Forward, self.cfg.leader_timeout_ms / 2);
    }
}
