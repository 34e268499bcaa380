//! The numbering people see, as a fold of the committed log: a chat's
//! `seq_no` counts chat entries only (1, 2, 3, … with never a hole: a leader's
//! no-op takes none), and its `room_seq` counts the chats of its room.
//!
//! Both are functions of the committed prefix alone, so every node computes
//! the same ones: a node folds each entry as it delivers it (commit order,
//! contiguously), and rebuilds the fold from its recovered log when it starts
//! (`Node::from_log`). Uncommitted suffixes that get overwritten are never
//! folded, so catch-up and log repair cannot leave a hole either.
//!
//! The fold is also the per-room index, so a room's reads never scan the
//! whole log: `room_index(room, room_seq)` is the log index of that message.
//!
//! Memory: 8 bytes per chat (its log index in its room's vector), 16 bytes per
//! run of chats at consecutive log indexes (a run ends at every non-chat
//! entry), and one map entry per room. The number of rooms is bounded by
//! `Config::max_rooms` when a chat to a new room is accepted (`client.rs`).
//!
//! Invariants: `upto` is the last folded log index, entries are folded in
//! index order without a gap (asserted); `runs` starts are strictly
//! increasing in both seq_no and index; every room vector is strictly
//! increasing.

use crate::codec::{Reader, Writer};
use crate::entry::Entry;
use crate::types::Seq;
use std::collections::BTreeMap;

/// The client-visible numbers of one committed chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Numbers {
    /// Global chat number: 1, 2, 3, … without holes.
    pub seq_no: u64,
    /// Number within its room: 1, 2, 3, … without holes.
    pub room_seq: u64,
}

/// The fold of the committed log that numbers chats and indexes rooms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Numbering {
    /// Last log index folded.
    upto: Seq,
    /// Chats folded so far (the last seq_no given).
    chats: u64,
    /// (first seq_no, its log index) of every run of chats at consecutive
    /// log indexes.
    runs: Vec<(u64, Seq)>,
    /// Per room: the log index of each of its chats (room_seq r at r - 1).
    rooms: BTreeMap<String, Vec<Seq>>,
}

impl Numbering {
    /// Appends the fold to a snapshot (`snapshot.rs`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.u64(self.upto.0);
        w.u64(self.chats);
        w.u64(self.runs.len() as u64);
        for &(s, i) in &self.runs {
            w.u64(s);
            w.u64(i.0);
        }
        w.u64(self.rooms.len() as u64);
        for (name, v) in &self.rooms {
            w.str(name);
            w.u64(v.len() as u64);
            for i in v {
                w.u64(i.0);
            }
        }
    }

    /// The fold a snapshot carries.
    pub fn decode(bytes: &mut &[u8]) -> Result<Numbering, String> {
        let mut r = Reader(bytes);
        let upto = Seq(r.u64()?);
        let chats = r.u64()?;
        let mut runs = Vec::new();
        for _ in 0..r.count(16)? {
            runs.push((r.u64()?, Seq(r.u64()?)));
        }
        let mut rooms = BTreeMap::new();
        for _ in 0..r.count(16)? {
            let name = r.str()?;
            let n = r.count(8)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(Seq(r.u64()?));
            }
            rooms.insert(name, v);
        }
        Ok(Numbering {
            upto,
            chats,
            runs,
            rooms,
        })
    }

    /// History before log index `first` was deleted (retention): its
    /// numbers stay counted. (Memory is not released yet.)
    pub fn forget_before(&mut self, first: Seq) {
        let _ = first;
    }

    /// Folds the entries of `entries` (log order, from index 1).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Numbering {
        let mut n = Numbering::default();
        for e in entries {
            n.apply(e);
        }
        n
    }

    /// Folds the next committed entry; its numbers if it is a chat.
    pub fn apply(&mut self, e: &Entry) -> Option<Numbers> {
        assert_eq!(e.seq_no, self.upto.next(), "the fold is contiguous");
        self.upto = e.seq_no;
        // Room events and no-ops take no number.
        let chat = e.message()?;
        self.chats += 1;
        let extends = self
            .runs
            .last()
            .is_some_and(|&(s, i)| i.0 + (self.chats - s) == e.seq_no.0);
        if !extends {
            self.runs.push((self.chats, e.seq_no));
        }
        let room = match self.rooms.get_mut(chat.room_id.as_str()) {
            Some(r) => r,
            None => self.rooms.entry(chat.room_id.clone()).or_default(),
        };
        room.push(e.seq_no);
        Some(Numbers {
            seq_no: self.chats,
            room_seq: room.len() as u64,
        })
    }

    /// Last log index folded.
    pub fn upto(&self) -> Seq {
        self.upto
    }

    /// Chats folded: the highest seq_no given so far.
    pub fn chats(&self) -> u64 {
        self.chats
    }

    /// Rooms that have at least one chat.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Chats folded in `room` (its highest room_seq).
    pub fn room_len(&self, room: &str) -> u64 {
        self.rooms.get(room).map_or(0, |r| r.len() as u64)
    }

    /// Every room with its chat count, in name order.
    pub fn rooms(&self) -> impl Iterator<Item = (&str, u64)> {
        self.rooms.iter().map(|(k, v)| (k.as_str(), v.len() as u64))
    }

    /// The log index of chat `seq_no`, if folded.
    pub fn index_of(&self, seq_no: u64) -> Option<Seq> {
        if seq_no == 0 || seq_no > self.chats {
            return None;
        }
        let k = self.runs.partition_point(|&(s, _)| s <= seq_no);
        let (s, i) = self.runs[k - 1];
        Some(Seq(i.0 + (seq_no - s)))
    }

    /// The seq_no of the first chat at log index `index` or later (chats + 1
    /// if there is none yet).
    pub fn seq_no_from(&self, index: Seq) -> u64 {
        let k = self.runs.partition_point(|&(_, i)| i <= index);
        if k == 0 {
            return 1;
        }
        let (s, i) = self.runs[k - 1];
        let end = self.runs.get(k).map_or(self.chats + 1, |&(s2, _)| s2);
        // In-run chats sit at consecutive indexes i, i+1, …, up to `end - 1`.
        (s + (index.0 - i.0)).min(end)
    }

    /// The chat number of the entry at log index `index`, if it is a
    /// folded chat message (not a room event or a no-op).
    pub fn chat_number_at(&self, index: Seq) -> Option<u64> {
        let n = self.seq_no_from(index);
        (self.index_of(n) == Some(index)).then_some(n)
    }

    /// The numbers of the chat of `room` at log index `index`, if folded.
    pub fn numbers_at(&self, room: &str, index: Seq) -> Option<Numbers> {
        let r = self.rooms.get(room)?;
        let pos = r.binary_search(&index).ok()?;
        let k = self.runs.partition_point(|&(_, i)| i <= index);
        let (s, i) = self.runs[k - 1];
        Some(Numbers {
            seq_no: s + (index.0 - i.0),
            room_seq: pos as u64 + 1,
        })
    }

    /// The log index of message `room_seq` of `room`, if folded.
    pub fn room_index(&self, room: &str, room_seq: u64) -> Option<Seq> {
        let r = self.rooms.get(room)?;
        r.get(usize::try_from(room_seq).ok()?.checked_sub(1)?)
            .copied()
    }

    /// The room_seq of the first chat of `room` at log index `index` or later.
    pub fn room_seq_from(&self, room: &str, index: Seq) -> u64 {
        self.rooms
            .get(room)
            .map_or(1, |r| r.partition_point(|&i| i < index) as u64 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Body, Chat};
    use crate::types::{NodeId, Term};

    fn chat(seq: u64, room: &str) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: format!("m{seq}"),
                room_id: room.into(),
                sender_id: 1,
                user: None,
                payload: "x".into(),
                ts_ms: 0,
                event: None,
            }),
        }
    }

    fn noop(seq: u64) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(2),
            body: Body::Noop { leader: NodeId(1) },
        }
    }

    #[test]
    fn noops_take_no_number() {
        let log = vec![
            noop(1),
            chat(2, "a"),
            chat(3, "b"),
            noop(4),
            chat(5, "a"),
            chat(6, "a"),
        ];
        let mut n = Numbering::default();
        let got: Vec<Option<Numbers>> = log.iter().map(|e| n.apply(e)).collect();
        let nums = |s, r| {
            Some(Numbers {
                seq_no: s,
                room_seq: r,
            })
        };
        assert_eq!(
            got,
            vec![None, nums(1, 1), nums(2, 1), None, nums(3, 2), nums(4, 3)]
        );
        assert_eq!(n.index_of(1), Some(Seq(2)));
        assert_eq!(n.index_of(3), Some(Seq(5)));
        assert_eq!(n.index_of(5), None);
        assert_eq!(n.seq_no_from(Seq(1)), 1);
        assert_eq!(n.seq_no_from(Seq(4)), 3);
        assert_eq!(n.seq_no_from(Seq(7)), 5);
        assert_eq!(n.numbers_at("a", Seq(6)), nums(4, 3));
        assert_eq!(n.numbers_at("b", Seq(6)), None);
        assert_eq!(n.room_index("a", 2), Some(Seq(5)));
        assert_eq!(n.room_index("a", 0), None);
        assert_eq!(n.room_seq_from("a", Seq(3)), 2);
        assert_eq!(n.room_len("a"), 3);
        assert_eq!(n.chat_number_at(Seq(5)), Some(3));
        assert_eq!(n.chat_number_at(Seq(4)), None);
        assert_eq!(Numbering::from_entries(&log), n);
    }
}
