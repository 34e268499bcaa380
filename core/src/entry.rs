//! Log entries: what the leader sequences and every node delivers in order.
//!
//! An entry is either a client's chat message or the no-op a new leader appends
//! at the start of its term (Raft §5.4.2: a leader may only count replicas of an
//! entry of its own term, so it commits the previous terms' tail through it).
//! Clients see chat entries only; a no-op occupies a seq_no, so the chat seq_nos
//! a client sees can skip one at a leader change, but never go backwards.

use crate::types::{NodeId, Seq, Term};
use serde::{Deserialize, Serialize};

/// A chat message as submitted by a client; `msg_id` is its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub msg_id: String,
    pub room_id: String,
    /// The client-chosen numeric sender id (the seed's `sender_id`).
    pub sender_id: u64,
    /// Optional display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub payload: String,
    /// Wall-clock milliseconds at the node that received it (data, never used for logic).
    #[serde(default)]
    pub ts_ms: u64,
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Chat(Chat),
    /// Appended by a new leader before anything else in its term.
    Noop {
        leader: NodeId,
    },
}

/// One sequenced log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq_no: Seq,
    pub term: Term,
    #[serde(flatten)]
    pub body: Body,
}

impl Entry {
    pub fn chat(&self) -> Option<&Chat> {
        match &self.body {
            Body::Chat(c) => Some(c),
            Body::Noop { .. } => None,
        }
    }
    pub fn msg_id(&self) -> Option<&str> {
        self.chat().map(|c| c.msg_id.as_str())
    }
    /// Rough in-memory/wire size, used to bound batches.
    pub fn approx_bytes(&self) -> usize {
        match &self.body {
            Body::Chat(c) => {
                64 + c.msg_id.len()
                    + c.room_id.len()
                    + c.payload.len()
                    + c.user.as_ref().map_or(0, |u| u.len())
            }
            Body::Noop { .. } => 48,
        }
    }
}
