//! What a UI asks of the client ([`Request`]), and the subset that changes
//! committed state ([`Command`]: a chat or a room command). Commands carry a
//! `msg_id`, wait in the outbox until a CHAT_ACK, and are resent with the
//! same id after a timeout or a failover, so each is applied once.

use chorus_core::client_wire::ClientLine;

/// A change to committed state, acknowledged by CHAT_ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Chat { room: String, payload: String },
    Join { room: String },
    Part { room: String },
    Topic { room: String, topic: String },
    Nick { name: String },
}

impl Command {
    /// The line that asks a node for it.
    pub fn line(&self, msg_id: String, sender_id: u64, user: Option<&str>) -> ClientLine {
        match self.clone() {
            Command::Chat { room, payload } => ClientLine::Chat {
                msg_id,
                payload,
                room_id: room,
                sender_id,
                term: None,
                user: user.map(str::to_string),
            },
            Command::Join { room } => ClientLine::Join {
                room_id: room,
                msg_id: Some(msg_id),
            },
            Command::Part { room } => ClientLine::Part {
                room_id: room,
                msg_id: Some(msg_id),
            },
            Command::Topic { room, topic } => ClientLine::Topic {
                room_id: room,
                topic,
                msg_id: Some(msg_id),
            },
            Command::Nick { name } => ClientLine::Nick {
                name,
                msg_id: Some(msg_id),
            },
        }
    }
}

/// Anything a UI asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Commit this (see [`Command`]).
    Do(Command),
    /// The members of a room (answered by a WHO event).
    Who(String),
    /// The rooms of the cluster (answered by a ROOMS event).
    List,
    /// The page of `room` just below room_seq `before` (paging back).
    Older { room: String, before: u64 },
    /// The UI shows this room now: keep its member list fresh.
    View(Option<String>),
}
