//! The rooms a session is in, and for each what it has already received, so
//! that one SUBSCRIBE of all of them resumes without a gap after a failover
//! or a re-subscription, and a HISTORY page is told apart from the live
//! stream.
//!
//! Invariants:
//! - `covered`: every chat of the room numbered `seq_no <= covered` has
//!   reached the client (live, or is older than what the UI asked for), so
//!   subscribing from `min(covered) + 1` loses nothing in any room;
//! - `covered` only grows from the room's own live lines, or from any live
//!   line once the current subscription is known to be the one streaming
//!   (after its barrier STATUS: lines of the replaced subscription all come
//!   before it, since a node answers a connection in order);
//! - a live line is handed on once per room (`live_room_seq` grows);
//! - a line inside an outstanding HISTORY page's range counts as history and
//!   moves nothing (a live line taken for history costs a duplicate, never a
//!   gap; the UIs deduplicate by number).
//!
//! Bounds: at most `MAX_ROOMS` rooms (the node's per-connection limit) and
//! `MAX_PAGES` outstanding pages.

use std::collections::{BTreeMap, VecDeque};

/// Most rooms one connection subscribes to (the nodes' limit).
pub const MAX_ROOMS: usize = 64;
/// Most HISTORY pages asked and not yet answered (the nodes answer a few at
/// a time; more would be refused as busy).
pub const MAX_PAGES: usize = 4;

/// Where a room's first screenful stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Not asked yet on this connection (asked after the next LIST answer).
    Todo,
    Asked,
    Done,
}

#[derive(Clone, Debug)]
pub struct Track {
    pub covered: u64,
    pub live_room_seq: u64,
    pub fetch: Fetch,
}

/// A HISTORY page asked on the current connection: `room`'s chats numbered
/// `lo..=hi` (room_seq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub room: String,
    pub lo: u64,
    pub hi: u64,
    /// The room's first screenful (else a page further back).
    pub initial: bool,
}

/// How a SEQ_CHAT line counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Live,
    History,
    /// Seen before, or of a room the session is not in.
    Skip,
}

#[derive(Debug, Default)]
pub struct Joined {
    rooms: BTreeMap<String, Track>,
    pages: VecDeque<Page>,
    /// The current subscription is the one streaming (see the invariants).
    settled: bool,
}

impl Joined {
    pub fn contains(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    pub fn names(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Adds a room, complete up to chat number `covered` (live after it);
    /// false if the set is full or has it already.
    pub fn add(&mut self, room: &str, covered: u64) -> bool {
        if self.rooms.len() >= MAX_ROOMS || self.rooms.contains_key(room) {
            return false;
        }
        let t = Track {
            covered,
            live_room_seq: 0,
            fetch: Fetch::Todo,
        };
        self.rooms.insert(room.to_string(), t);
        true
    }

    pub fn remove(&mut self, room: &str) {
        self.rooms.remove(room);
        self.pages.retain(|p| p.room != room);
    }

    /// Where a subscription of every room must start.
    pub fn resume_from(&self) -> u64 {
        self.rooms.values().map(|t| t.covered).min().unwrap_or(0) + 1
    }

    /// Every room starts live after `seq` (the first subscription).
    pub fn cover_all(&mut self, seq: u64) {
        for t in self.rooms.values_mut() {
            t.covered = t.covered.max(seq);
        }
    }

    /// A new subscription was sent: its lines are not told apart from the
    /// old one's until its barrier answer arrives.
    pub fn resubscribed(&mut self) {
        self.settled = false;
    }

    pub fn settle(&mut self) {
        self.settled = true;
    }

    /// The connection ended: pages are lost, first screenfuls asked again.
    pub fn disconnected(&mut self) {
        self.pages.clear();
        self.settled = false;
        for t in self.rooms.values_mut() {
            if t.fetch == Fetch::Asked {
                t.fetch = Fetch::Todo;
            }
        }
    }

    /// Rooms whose first screenful is still to be asked.
    pub fn to_fetch(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, t)| t.fetch == Fetch::Todo)
            .map(|(r, _)| r.clone())
            .collect()
    }

    pub fn set_fetch(&mut self, room: &str, f: Fetch) {
        if let Some(t) = self.rooms.get_mut(room) {
            t.fetch = f;
        }
    }

    /// Records a page about to be asked; false when too many are out.
    pub fn ask_page(&mut self, page: Page) -> bool {
        if self.pages.len() >= MAX_PAGES {
            return false;
        }
        self.pages.push_back(page);
        true
    }

    /// A HISTORY_END: the oldest outstanding page is complete.
    pub fn page_done(&mut self) -> Option<Page> {
        let p = self.pages.pop_front()?;
        if p.initial {
            self.set_fetch(&p.room, Fetch::Done);
        }
        Some(p)
    }

    /// Classifies a SEQ_CHAT and advances the room's marks for a live one.
    pub fn classify(&mut self, room: &str, seq_no: u64, room_seq: u64) -> Kind {
        if !self.rooms.contains_key(room) {
            return Kind::Skip;
        }
        let in_page = self
            .pages
            .iter()
            .any(|p| p.room == room && (p.lo..=p.hi).contains(&room_seq));
        if in_page {
            return Kind::History;
        }
        let t = self.rooms.get_mut(room).expect("checked above");
        if room_seq <= t.live_room_seq {
            return Kind::Skip;
        }
        t.live_room_seq = room_seq;
        t.covered = t.covered.max(seq_no);
        if self.settled {
            // The one subscription streams every room in global order: all
            // of them are complete below this line.
            let below = seq_no - 1;
            for t in self.rooms.values_mut() {
                t.covered = t.covered.max(below);
            }
        }
        Kind::Live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_point_is_the_least_covered_room() {
        let mut j = Joined::default();
        j.add("a", 10);
        j.add("b", 10);
        assert_eq!(j.resume_from(), 11);
        // Unsettled: a line of `a` advances only `a`.
        assert_eq!(j.classify("a", 15, 3), Kind::Live);
        assert_eq!(j.resume_from(), 11);
        j.settle();
        assert_eq!(j.classify("a", 20, 4), Kind::Live);
        assert_eq!(j.resume_from(), 20);
        // A replayed line is skipped, another room's line is skipped.
        assert_eq!(j.classify("a", 15, 3), Kind::Skip);
        assert_eq!(j.classify("zzz", 30, 1), Kind::Skip);
    }

    #[test]
    fn page_ranges_are_history_until_answered() {
        let mut j = Joined::default();
        j.add("a", 0);
        assert!(j.ask_page(Page {
            room: "a".into(),
            lo: 1,
            hi: 5,
            initial: true,
        }));
        assert_eq!(j.classify("a", 4, 4), Kind::History);
        assert_eq!(j.classify("a", 9, 6), Kind::Live);
        assert_eq!(j.page_done().map(|p| p.initial), Some(true));
        assert!(j.to_fetch().is_empty());
        assert_eq!(j.classify("a", 10, 7), Kind::Live);
    }

    #[test]
    fn a_lost_connection_asks_first_screenfuls_again() {
        let mut j = Joined::default();
        j.add("a", 0);
        j.set_fetch("a", Fetch::Asked);
        j.disconnected();
        assert_eq!(j.to_fetch(), ["a"]);
    }
}
