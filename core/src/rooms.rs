//! Room state as a fold of the committed log: who is a member of which room,
//! each room's topic and creator. Room events (`entry::Event`) are entries in
//! the same total order as chats, so every node that delivered the same
//! prefix holds the same state, and a restart rebuilds it from the log
//! (`Node::from_log`), exactly as it rebuilds the numbering.
//!
//! The fold is total and deterministic: an event that makes no sense (a
//! leave of a non-member, a topic for a room nobody created, an event
//! without a name) changes nothing, on every node alike. Limits are checked
//! where a request is accepted (`client.rs`), never here: a limit in the
//! fold would make two nodes with different configs disagree.
//!
//! Rules:
//! - JOIN `user` `room`: the room exists from its first join (its creator is
//!   that user); `user` becomes a member.
//! - LEAVE: `user` is no longer a member (the room stays, with its history).
//! - TOPIC `text`: the room's topic (rooms that exist only).
//! - KICK `target` by `user`: `target` is no longer a member, if `user`
//!   created the room (anyone else's KICK changes nothing).
//! - NICK `old` → `new`: in every room where `old` is a member, `new` is
//!   instead (names are people until accounts exist: two sessions with one
//!   name are one member); a room created by `old` is now created by `new`.
//!
//! Memory: one map entry per room plus one string per membership; rooms are
//! bounded by `Config::max_rooms`, members of a room by
//! `Config::max_members_per_room` (both at acceptance).
//!
//! Invariant: `upto` is the last folded log index; entries are folded in
//! index order without a gap (asserted).

use crate::codec::{Reader, Writer};
use crate::entry::{Entry, Event};
use crate::types::Seq;
use std::collections::{BTreeMap, BTreeSet};

/// One room's replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Room {
    /// Members by name, in name order.
    pub members: BTreeSet<String>,
    /// The topic ("" until one is set).
    pub topic: String,
    /// Who created the room (its first join).
    pub creator: String,
}

/// Every room's state, folded from the committed log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rooms {
    upto: Seq,
    rooms: BTreeMap<String, Room>,
}

impl Rooms {
    /// Appends the fold to a snapshot (`snapshot.rs`).
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.upto.0);
        w.u64(self.rooms.len() as u64);
        for (name, r) in &self.rooms {
            w.str(name);
            w.str(&r.topic);
            w.str(&r.creator);
            w.u64(r.members.len() as u64);
            for m in &r.members {
                w.str(m);
            }
        }
    }

    /// The fold a snapshot carries.
    pub fn decode(r: &mut Reader<'_, '_>) -> Result<Rooms, String> {
        let upto = Seq(r.u64()?);
        let mut rooms = BTreeMap::new();
        for _ in 0..r.count(32)? {
            let name = r.str()?;
            let topic = r.str()?;
            let creator = r.str()?;
            let mut members = BTreeSet::new();
            for _ in 0..r.count(8)? {
                members.insert(r.str()?);
            }
            rooms.insert(
                name,
                Room {
                    members,
                    topic,
                    creator,
                },
            );
        }
        Ok(Rooms { upto, rooms })
    }

    /// Folds `entries` (log order, from index 1).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Rooms {
        let mut r = Rooms::default();
        for e in entries {
            r.apply(e);
        }
        r
    }

    /// Folds the next committed entry; true if it changed the state.
    pub fn apply(&mut self, e: &Entry) -> bool {
        assert_eq!(e.seq_no, self.upto.next(), "the room fold is contiguous");
        self.upto = e.seq_no;
        let Some((event, c, user)) = e.event_by() else {
            return false;
        };
        match event {
            Event::Join => {
                if c.room_id.is_empty() {
                    return false;
                }
                let room = match self.rooms.get_mut(c.room_id.as_str()) {
                    Some(r) => r,
                    None => self.rooms.entry(c.room_id.clone()).or_insert_with(|| Room {
                        creator: user.to_string(),
                        ..Room::default()
                    }),
                };
                room.members.insert(user.to_string())
            }
            Event::Leave => self
                .rooms
                .get_mut(c.room_id.as_str())
                .is_some_and(|r| r.members.remove(user)),
            Event::Topic => match self.rooms.get_mut(c.room_id.as_str()) {
                Some(r) if r.topic != c.payload => {
                    r.topic = c.payload.clone();
                    true
                }
                _ => false,
            },
            // Only the creator removes members (checked here too: the fold
            // must not depend on who accepted the request).
            Event::Kick => match self.rooms.get_mut(c.room_id.as_str()) {
                Some(r) if r.creator == user => r.members.remove(c.payload.as_str()),
                _ => false,
            },
            // Account events belong to `accounts.rs`.
            Event::Register | Event::Passwd | Event::Disable => false,
            Event::Nick => {
                let new = c.payload.as_str();
                if new.is_empty() || new == user {
                    return false;
                }
                let mut changed = false;
                for r in self.rooms.values_mut() {
                    if r.members.remove(user) {
                        r.members.insert(new.to_string());
                        changed = true;
                    }
                    // The creator keeps its rights under its new name.
                    if r.creator == user {
                        r.creator = new.to_string();
                        changed = true;
                    }
                }
                changed
            }
        }
    }

    /// Last log index folded.
    pub fn upto(&self) -> Seq {
        self.upto
    }

    pub fn get(&self, room: &str) -> Option<&Room> {
        self.rooms.get(room)
    }

    /// Rooms that exist (were joined at least once).
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every room, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Room)> {
        self.rooms.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The rooms `user` is a member of, in name order (scans every room:
    /// for NICK fan-out and WHOIS, both rare).
    pub fn rooms_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.rooms
            .iter()
            .filter(move |(_, r)| r.members.contains(user))
            .map(|(k, _)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Body, Chat};
    use crate::types::{NodeId, Term};

    fn ev(seq: u64, event: Event, room: &str, user: &str, payload: &str) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: format!("e{seq}"),
                room_id: room.into(),
                sender_id: 0,
                user: Some(user.into()),
                payload: payload.into(),
                ts_ms: 0,
                event: Some(event),
            }),
        }
    }

    #[test]
    fn joins_leaves_topics_and_nicks_fold() {
        let log = vec![
            ev(1, Event::Join, "a", "ann", ""),
            Entry {
                seq_no: Seq(2),
                term: Term(2),
                body: Body::Noop { leader: NodeId(1) },
            },
            ev(3, Event::Join, "a", "bob", ""),
            ev(4, Event::Join, "b", "bob", ""),
            ev(5, Event::Topic, "a", "bob", "hello"),
            ev(6, Event::Topic, "zzz", "bob", "nobody's"),
            ev(7, Event::Nick, "", "bob", "rob"),
            ev(8, Event::Leave, "a", "ann", ""),
            ev(9, Event::Leave, "a", "ann", ""),
            ev(10, Event::Join, "a", "cat", ""),
            ev(11, Event::Kick, "a", "cat", "rob"),
            ev(12, Event::Kick, "b", "bob", "rob"),
            ev(13, Event::Kick, "b", "rob", "rob"),
            ev(14, Event::Register, "", "rob", "$argon2id$x"),
        ];
        let mut r = Rooms::default();
        let changed: Vec<bool> = log.iter().map(|e| r.apply(e)).collect();
        assert_eq!(
            changed,
            vec![
                true, false, true, true, true, false, true, true, false, true, false, false, true,
                false
            ]
        );
        let a = r.get("a").unwrap();
        assert_eq!(a.creator, "ann");
        assert_eq!(a.topic, "hello");
        // cat's KICK of rob in a: refused (ann created a); bob's KICK in b: done.
        assert_eq!(a.members.iter().collect::<Vec<_>>(), vec!["cat", "rob"]);
        assert_eq!(r.rooms_of("rob").collect::<Vec<_>>(), vec!["a"]);
        assert!(r.get("zzz").is_none());
        assert_eq!(Rooms::from_entries(&log), r);
        assert_eq!(r.upto(), Seq(14));
    }
}
