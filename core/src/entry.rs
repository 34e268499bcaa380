//! Log entries: what the leader sequences and every node delivers in order.
//!
//! An entry is either a client's chat message or the no-op a new leader appends
//! at the start of its term (Raft §5.4.2: a leader may only count replicas of an
//! entry of its own term, so it commits the previous terms' tail through it).
//! A submission is a chat message, or a **room event** (a join, a leave, a
//! topic, a name change: `Event`), sequenced through the same path (forwarded,
//! deduplicated by msg_id, acknowledged after commit) so every node agrees on
//! the rooms (`rooms.rs`). The log index (`seq_no` of an entry) is internal:
//! the numbers clients see count chat messages only (`numbering.rs`).

use crate::types::{NodeId, Seq, Term};
use serde::{Deserialize, Serialize};

/// What a room event does. Its text (a topic, a new name) is the
/// submission's `payload`; its actor is `user`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// `user` becomes a member of `room_id` (creating the room).
    Join,
    /// `user` leaves `room_id`.
    Leave,
    /// `user` sets the topic of `room_id` to `payload`.
    Topic,
    /// `user` is now called `payload`, in every room (`room_id` is empty).
    Nick,
    /// `user` (the room's creator) removes member `payload` from `room_id`.
    Kick,
    /// Account `user` is registered with the password hash `payload` (an
    /// argon2id PHC string the submitting node computed; `room_id` empty).
    Register,
    /// Account `user`'s password hash becomes `payload`.
    Passwd,
    /// Account `user` can no longer log in.
    Disable,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Join => "join",
            Event::Leave => "leave",
            Event::Topic => "topic",
            Event::Nick => "nick",
            Event::Kick => "kick",
            Event::Register => "register",
            Event::Passwd => "passwd",
            Event::Disable => "disable",
        }
    }

    /// An account event (`accounts.rs`), not a room event: no room sees it.
    pub fn is_account(self) -> bool {
        matches!(self, Event::Register | Event::Passwd | Event::Disable)
    }

    /// The log encoding's tag (`record.rs`).
    pub fn tag(self) -> u8 {
        match self {
            Event::Join => 1,
            Event::Leave => 2,
            Event::Topic => 3,
            Event::Nick => 4,
            Event::Kick => 5,
            Event::Register => 6,
            Event::Passwd => 7,
            Event::Disable => 8,
        }
    }

    pub fn from_tag(t: u8) -> Option<Event> {
        Some(match t {
            1 => Event::Join,
            2 => Event::Leave,
            3 => Event::Topic,
            4 => Event::Nick,
            5 => Event::Kick,
            6 => Event::Register,
            7 => Event::Passwd,
            8 => Event::Disable,
            _ => return None,
        })
    }
}

/// A submission as a client made it: a chat message, or a room event when
/// `event` is set. `msg_id` is its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Set for a room event (not a chat message: it takes no chat number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

impl Chat {
    /// A chat message, not a room event.
    pub fn is_message(&self) -> bool {
        self.event.is_none()
    }
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    Chat(Chat),
    /// Appended by a new leader before anything else in its term.
    Noop {
        leader: NodeId,
    },
}

/// One sequenced log entry. On the wire it is one flat JSON object (see
/// `FlatEntry`): serde's `flatten` would buffer every entry while decoding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "FlatEntry", try_from = "FlatEntry")]
pub struct Entry {
    pub seq_no: Seq,
    pub term: Term,
    pub body: Body,
}

/// The wire shape of an entry: a chat's fields, or `"leader"` for a no-op.
#[derive(Serialize, Deserialize)]
struct FlatEntry {
    seq_no: Seq,
    term: Term,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leader: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<Event>,
}

impl From<Entry> for FlatEntry {
    fn from(e: Entry) -> FlatEntry {
        let mut f = FlatEntry {
            seq_no: e.seq_no,
            term: e.term,
            leader: None,
            msg_id: None,
            room_id: None,
            sender_id: None,
            user: None,
            payload: None,
            ts_ms: None,
            event: None,
        };
        match e.body {
            Body::Noop { leader } => f.leader = Some(leader),
            Body::Chat(c) => {
                f.msg_id = Some(c.msg_id);
                f.room_id = Some(c.room_id);
                f.sender_id = Some(c.sender_id);
                f.user = c.user;
                f.payload = Some(c.payload);
                f.ts_ms = Some(c.ts_ms);
                f.event = c.event;
            }
        }
        f
    }
}

impl TryFrom<FlatEntry> for Entry {
    type Error = String;
    fn try_from(f: FlatEntry) -> Result<Entry, String> {
        let body = match (f.leader, f.msg_id) {
            (Some(leader), None) => Body::Noop { leader },
            (None, Some(msg_id)) => Body::Chat(Chat {
                msg_id,
                room_id: f.room_id.ok_or("entry without room_id")?,
                sender_id: f.sender_id.unwrap_or(0),
                user: f.user,
                payload: f.payload.ok_or("entry without payload")?,
                ts_ms: f.ts_ms.unwrap_or(0),
                event: f.event,
            }),
            _ => return Err("an entry has either a leader (no-op) or a msg_id (chat)".into()),
        };
        Ok(Entry {
            seq_no: f.seq_no,
            term: f.term,
            body,
        })
    }
}

impl Entry {
    pub fn chat(&self) -> Option<&Chat> {
        match &self.body {
            Body::Chat(c) => Some(c),
            Body::Noop { .. } => None,
        }
    }
    /// The chat message this entry carries (not a room event, not a no-op).
    pub fn message(&self) -> Option<&Chat> {
        self.chat().filter(|c| c.is_message())
    }
    /// The room event this entry carries, with its submission.
    pub fn event(&self) -> Option<(Event, &Chat)> {
        let c = self.chat()?;
        Some((c.event?, c))
    }
    /// The room or account event this entry carries, with its submission
    /// and its actor's non-empty name: what the folds (`rooms.rs`,
    /// `accounts.rs`) act on; an event without a name changes nothing.
    pub fn event_by(&self) -> Option<(Event, &Chat, &str)> {
        let (ev, c) = self.event()?;
        let user = c.user.as_deref().filter(|u| !u.is_empty())?;
        Some((ev, c, user))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_flat_json() {
        let e = Entry {
            seq_no: Seq(3),
            term: Term(2),
            body: Body::Noop { leader: NodeId(3) },
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(s, r#"{"seq_no":3,"term":2,"leader":3}"#);
        assert_eq!(serde_json::from_str::<Entry>(&s).unwrap(), e);
        let bad = r#"{"seq_no":3,"term":2}"#;
        assert!(serde_json::from_str::<Entry>(bad).is_err());
    }
}
