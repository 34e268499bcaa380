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
//! Memory (issue 16: flat at any history length): both indexes are
//! `packed::Packed` sequences, differences bit-packed in blocks under an
//! absolute head. Per room, the log index of each chat: 0.4 bytes per chat
//! for one busy room, 1.3 for 100 rooms, 1.8 for 1,000 (one chat of a room
//! every 1,000 entries). Per run of chats at consecutive log indexes (a run
//! ends at every non-chat entry: a no-op, a room or account event): (first
//! seq_no, its log index), about 2.5 bytes per run. Plus one map entry per
//! room; the number of rooms is bounded by `Config::max_rooms` when a chat
//! to a new room is accepted (`client.rs`).
//! `forget_before` frees the room indexes of history that retention
//! deleted; the runs stay, so the numbers of a deleted entry that the
//! dedup window still acknowledges remain exact (`seq_no_from`). They grow
//! with non-chat entries only. `approx_bytes` measures it all. The
//! snapshot form is `encode`/`decode` (`codec.rs`).
//!
//! Invariants: `upto` is the last folded log index, entries are folded in
//! index order without a gap (asserted); `runs` is strictly increasing in
//! both seq_no and index; every room sequence is strictly increasing; the
//! room lengths sum to `chats`. Below `horizon` (forgotten history) no
//! chat's index is answered (`index_of`, `room_index`, `numbers_at`);
//! counts (chats, room lengths) and numbers (`seq_no_from`) still cover it.

mod codec;
mod packed;

use crate::entry::Entry;
use crate::types::Seq;
use packed::Packed;
use std::collections::BTreeMap;

/// Per room, the log index of each chat: blocks of 64, so a lookup decodes
/// at most 63 one-byte gaps and a head costs 0.25 B per chat.
type RoomIndex = Packed<1, 64>;

/// Per run of chats, [first seq_no, its log index]: blocks of 16, as runs
/// are fewer than chats (a run per no-op or room event) and every
/// `index_of`/`seq_no_from` searches them.
type Runs = Packed<2, 16>;

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
    /// History below this log index is forgotten (`forget_before`; 0: none).
    horizon: Seq,
    /// Chats below `horizon`: the oldest seq_no still indexed is one more.
    forgotten_chats: u64,
    /// [first seq_no, its log index] of every run of chats at consecutive
    /// log indexes.
    runs: Runs,
    /// Per room: the log index of each of its chats (room_seq r at r - 1).
    rooms: BTreeMap<String, RoomIndex>,
}

impl Numbering {
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
            .is_some_and(|[s, i]| i + (self.chats - s) == e.seq_no.0);
        if !extends {
            self.runs.push([self.chats, e.seq_no.0]);
        }
        let room = match self.rooms.get_mut(chat.room_id.as_str()) {
            Some(r) => r,
            None => self.rooms.entry(chat.room_id.clone()).or_default(),
        };
        room.push([e.seq_no.0]);
        Some(Numbers {
            seq_no: self.chats,
            room_seq: room.len(),
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

    /// Chats folded in `room` (its highest room_seq), forgotten ones included.
    pub fn room_len(&self, room: &str) -> u64 {
        self.rooms.get(room).map_or(0, |r| r.len())
    }

    /// Every room with its chat count, in name order.
    pub fn rooms(&self) -> impl Iterator<Item = (&str, u64)> {
        self.rooms.iter().map(|(k, v)| (k.as_str(), v.len()))
    }

    /// The log index of chat `seq_no`, if folded and not forgotten.
    pub fn index_of(&self, seq_no: u64) -> Option<Seq> {
        if seq_no < self.first_seq_no() {
            return None;
        }
        self.index_of_any(seq_no)
    }

    /// `index_of`, forgotten chats included (the runs are never forgotten).
    fn index_of_any(&self, seq_no: u64) -> Option<Seq> {
        if seq_no == 0 || seq_no > self.chats {
            return None;
        }
        let [s, i] = self.runs.locate(0, seq_no)?.value;
        Some(Seq(i.saturating_add(seq_no - s)))
    }

    /// The seq_no of the first chat at log index `index` or later (chats + 1
    /// if there is none yet). Exact below the forgotten horizon too: a retry
    /// of a chat whose entry retention deleted is still answered with its
    /// number while the dedup window remembers it (`committed_reply`).
    pub fn seq_no_from(&self, index: Seq) -> u64 {
        let Some(f) = self.runs.locate(1, index.0) else {
            return 1;
        };
        let [s, i] = f.value;
        let end = f.next.map_or(self.chats + 1, |[s2, _]| s2);
        // In-run chats sit at consecutive indexes i, i+1, …, up to `end - 1`.
        s.saturating_add(index.0 - i).min(end)
    }

    /// The chat number of the entry at log index `index`, if it is a
    /// folded chat message (not a room event or a no-op); exact below the
    /// forgotten horizon too, like `seq_no_from`.
    pub fn chat_number_at(&self, index: Seq) -> Option<u64> {
        let n = self.seq_no_from(index);
        (self.index_of_any(n) == Some(index)).then_some(n)
    }

    /// The numbers of the chat of `room` at log index `index`, if folded and
    /// not forgotten.
    pub fn numbers_at(&self, room: &str, index: Seq) -> Option<Numbers> {
        if index < self.horizon {
            return None;
        }
        let r = self.rooms.get(room)?;
        let f = r.locate(0, index.0)?;
        if f.value != [index.0] || f.pos < r.skipped() {
            return None;
        }
        let [s, i] = self.runs.locate(1, index.0)?.value;
        Some(Numbers {
            seq_no: s.saturating_add(index.0 - i),
            room_seq: f.pos + 1,
        })
    }

    /// The log index of message `room_seq` of `room`, if folded and not
    /// forgotten.
    pub fn room_index(&self, room: &str, room_seq: u64) -> Option<Seq> {
        let [i] = self.rooms.get(room)?.get(room_seq.checked_sub(1)?)?;
        Some(Seq(i))
    }

    /// The room_seq of the first chat of `room` at log index `index` or
    /// later; below the forgotten horizon, `first_room_seq(room)`.
    pub fn room_seq_from(&self, room: &str, index: Seq) -> u64 {
        self.rooms
            .get(room)
            .map_or(1, |r| r.count_below(0, index.0) + 1)
    }

    /// The oldest room_seq of `room` still indexed (its length + 1 if every
    /// chat of it is forgotten; 1 if nothing is).
    pub fn first_room_seq(&self, room: &str) -> u64 {
        self.rooms.get(room).map_or(1, |r| r.skipped() + 1)
    }

    /// The oldest seq_no still indexed (chats + 1 if every chat is
    /// forgotten; 1 if nothing is).
    pub fn first_seq_no(&self) -> u64 {
        self.forgotten_chats + 1
    }

    /// History before log index `first` was deleted: stop indexing its
    /// chats and free the room indexes of them. Counts keep going (chats, room lengths), so
    /// the numbering continues without a hole. `first` past the folded
    /// prefix forgets the whole of it; an earlier horizon than the current
    /// one changes nothing.
    pub fn forget_before(&mut self, first: Seq) {
        let first = first.min(self.upto.next());
        if first <= self.horizon {
            return;
        }
        self.forgotten_chats = self.seq_no_from(first) - 1;
        self.horizon = first;
        // The runs stay: they answer the numbers of deleted entries that
        // the dedup window still acknowledges (`seq_no_from`).
        for r in self.rooms.values_mut() {
            let below = r.count_below(0, first.0);
            r.forget_below(below);
        }
    }

    /// Heap bytes held, approximately (capacities; the room map's nodes
    /// counted as their entries): for the memory table and a metric.
    pub fn approx_bytes(&self) -> usize {
        let entry = std::mem::size_of::<String>() + std::mem::size_of::<RoomIndex>();
        self.runs.heap_bytes()
            + self
                .rooms
                .iter()
                .map(|(k, r)| entry + k.capacity() + r.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests;
