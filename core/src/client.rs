//! Client requests: chats are idempotent by msg_id. The leader sequences new
//! ones; a follower forwards them (again after a leader change and on a timer,
//! since forwards can be lost). A client is answered with the committed seq_no
//! only after commit, also when it retries an id that is already committed.
//! Pending chats are bounded by `max_pending` (overflow answers `Busy`).

use crate::config::InjectedBug;
use crate::entry::{Body, Chat};
use crate::io::Action;
use crate::node::{Election, Node, State, Timer};
use crate::types::{ClientId, NodeId, Term};
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

    fn on_chat(&mut self, client: ClientId, chat: Chat, out: &mut Vec<Action>) {
        if let Some(seq) = self.log.seq_of(&chat.msg_id) {
            if seq <= self.numbering.upto() {
                let reply = ClientReply::ChatAck {
                    msg_id: chat.msg_id,
                    seq_no: self.numbering.seq_no_from(seq),
                };
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
        if !self.numbering.has_room(&chat.room_id)
            && self.numbering.room_count() >= self.cfg.max_rooms
        {
            let reply = ClientReply::Error {
                code: ErrorCode::Busy,
                message: format!(
                    "this cluster holds {} rooms, its limit (max_rooms); post to an existing room",
                    self.numbering.room_count()
                ),
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
            self.pending.insert(chat.msg_id.clone(), chat);
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
                self.pending.entry(chat.msg_id.clone()).or_insert(chat);
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

    /// The leader says this msg_id is committed as chat number `seq_no`.
    pub(crate) fn on_forward_ack(&mut self, msg_id: String, seq_no: u64, out: &mut Vec<Action>) {
        self.pending.remove(&msg_id);
        for client in self.waiting.remove(&msg_id).unwrap_or_default() {
            let reply = ClientReply::ChatAck {
                msg_id: msg_id.clone(),
                seq_no,
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
        let chats: Vec<Chat> = self.pending.values().cloned().collect();
        for chat in chats {
            let msg = self.forward_msg(chat);
            out.push(Action::Send { to: l, msg });
        }
    }

    pub(crate) fn on_forward_timer(&mut self, out: &mut Vec<Action>) {
        if self.pending.is_empty() || self.is_leader() {
            return;
        }
        self.reforward_pending(out);
        self.arm(Timer::Forward, self.cfg.leader_timeout_ms / 2);
    }
}
