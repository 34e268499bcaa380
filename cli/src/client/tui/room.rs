//! One joined room as the full-screen client shows it: its timeline (chats,
//! room events and the client's own notes, in the cluster's order), our
//! chats still waiting for it, its unread count, topic and members, and
//! where paging back stands.
//!
//! Order: a chat sits at (seq_no, MAX); a room event at (the seq_no of the
//! next chat, n), which puts it before that chat, as committed. Every chat
//! number is kept once, whether it came live or from a HISTORY page.
//!
//! Bounds: at most `MAX_ITEMS` timeline lines (live lines push the oldest
//! out; a page back stops at the bound), `MAX_EVENT_IDS` remembered room
//! event ids, `MAX_MEMBERS` members shown.

use crate::client::wire::{MemberInfo, Who};
use chorus_core::client_wire::{Delivered, RoomEventLine as RoomEvent};
use std::collections::{BTreeMap, VecDeque};

pub const MAX_ITEMS: usize = 5000;
const MAX_EVENT_IDS: usize = 1000;
/// The nodes list at most 1000 members; a side panel shows fewer anyway.
const MAX_MEMBERS: usize = 1000;

/// A timeline line.
#[derive(Clone, Debug)]
pub enum Item {
    Chat {
        d: Delivered,
        own: bool,
    },
    /// A join / leave / topic / nick, as text.
    Event {
        text: String,
        ts_ms: u64,
    },
    /// The client's own note (command output, help).
    Note(String),
}

/// One of our chats not yet seen in the room's order.
#[derive(Debug, Clone)]
pub struct Pending {
    pub msg_id: String,
    pub payload: String,
    /// Set once acknowledged.
    pub seq_no: Option<u64>,
}

#[derive(Debug)]
pub struct RoomView {
    pub name: String,
    items: BTreeMap<(u64, u64), Item>,
    /// Sub-position of the next event or note (events sharing a seq_no keep
    /// their arrival order).
    next_sub: u64,
    event_ids: VecDeque<String>,
    pub pending: VecDeque<Pending>,
    pub unread: usize,
    pub topic: String,
    pub members: Vec<MemberInfo>,
    pub members_truncated: bool,
    /// Lines scrolled up from the bottom.
    pub scroll: usize,
    /// A page back was asked and not answered yet.
    pub loading_older: bool,
    /// The first screenful is in (before it, the room may look empty).
    pub loaded: bool,
    /// Paging back hit `MAX_ITEMS`.
    pub full: bool,
}

impl RoomView {
    pub fn new(name: String) -> RoomView {
        RoomView {
            name,
            items: BTreeMap::new(),
            next_sub: 0,
            event_ids: VecDeque::new(),
            pending: VecDeque::new(),
            unread: 0,
            topic: String::new(),
            members: Vec::new(),
            members_truncated: false,
            scroll: 0,
            loading_older: false,
            loaded: false,
            full: false,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len() + self.pending.len()
    }

    /// The lines `start..end`, without walking the map once per line.
    pub fn lines(&self, start: usize, end: usize) -> Vec<Line<'_>> {
        let mut v: Vec<Line> = self
            .items
            .values()
            .skip(start)
            .take(end.saturating_sub(start))
            .map(Line::Item)
            .collect();
        let from = start.saturating_sub(self.items.len());
        let want = end.saturating_sub(start) - v.len();
        v.extend(self.pending.iter().skip(from).take(want).map(Line::Pending));
        v
    }

    /// A live chat: returns whether it was new. Our own leaves `pending`.
    pub fn live(&mut self, d: Delivered) -> bool {
        let own = self.take_pending(&d.msg_id);
        let key = (d.seq_no, u64::MAX);
        if self.items.contains_key(&key) {
            return false;
        }
        self.items.insert(key, Item::Chat { d, own });
        while self.items.len() > MAX_ITEMS {
            self.items.pop_first();
        }
        !own
    }

    /// A chat from a HISTORY page (older lines; kept within the bound).
    pub fn history(&mut self, d: Delivered, own_name: &str) {
        let key = (d.seq_no, u64::MAX);
        if self.items.contains_key(&key) {
            return;
        }
        if self.items.len() >= MAX_ITEMS {
            self.full = true;
            return;
        }
        let own = d.user.as_deref() == Some(own_name);
        self.items.insert(key, Item::Chat { d, own });
    }

    /// A committed room event; false if seen before (e.g. after failover).
    pub fn event(&mut self, e: &RoomEvent) -> bool {
        if self.event_ids.contains(&e.msg_id) {
            return false;
        }
        if self.event_ids.len() >= MAX_EVENT_IDS {
            self.event_ids.pop_front();
        }
        self.event_ids.push_back(e.msg_id.clone());
        if let Some(t) = &e.topic {
            if e.event == "topic" {
                self.topic = t.clone();
            }
        }
        let text = event_text(e);
        self.push_at(
            e.seq_no,
            Item::Event {
                text,
                ts_ms: e.ts_ms,
            },
        );
        true
    }

    /// A note shown after everything up to chat `high_seq`.
    pub fn note(&mut self, high_seq: u64, text: String) {
        self.push_at(high_seq + 1, Item::Note(text));
    }

    fn push_at(&mut self, seq: u64, item: Item) {
        self.next_sub = (self.next_sub + 1).min(u64::MAX - 1);
        self.items.insert((seq, self.next_sub), item);
        while self.items.len() > MAX_ITEMS {
            self.items.pop_first();
        }
    }

    pub fn who(&mut self, w: Who) {
        self.topic = w.topic;
        self.members = w.members;
        self.members.truncate(MAX_MEMBERS);
        self.members_truncated = w.truncated;
    }

    fn take_pending(&mut self, msg_id: &str) -> bool {
        match self.pending.iter().position(|p| p.msg_id == msg_id) {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    /// Marks a pending chat acknowledged; false if it is not ours here.
    pub fn acked(&mut self, msg_id: &str, seq_no: u64) -> bool {
        match self.pending.iter_mut().find(|p| p.msg_id == msg_id) {
            Some(p) => {
                p.seq_no = Some(seq_no);
                true
            }
            None => false,
        }
    }

    /// The lowest room_seq shown (where a page back ends), if any chat is.
    pub fn oldest_room_seq(&self) -> Option<u64> {
        self.items.values().find_map(|i| match i {
            Item::Chat { d, .. } => Some(d.room_seq),
            _ => None,
        })
    }

    /// Whether the room's first message is shown (nothing older exists).
    pub fn at_start(&self) -> bool {
        self.loaded && self.oldest_room_seq().is_none_or(|n| n <= 1)
    }
}

/// A line to draw.
pub enum Line<'a> {
    Item(&'a Item),
    Pending(&'a Pending),
}

fn event_text(e: &RoomEvent) -> String {
    match e.event.as_str() {
        "join" => format!("→ {} joined #{}", e.user, e.room_id),
        "leave" | "part" => format!("← {} left #{}", e.user, e.room_id),
        "topic" => format!(
            "{} set the topic: {}",
            e.user,
            e.topic.as_deref().unwrap_or("")
        ),
        "nick" => format!(
            "{} is now known as {}",
            e.user,
            e.name.as_deref().unwrap_or("?")
        ),
        other => format!("{} {other}", e.user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seq: u64, room_seq: u64, id: &str) -> Delivered {
        Delivered {
            seq_no: seq,
            room_seq,
            term: 1,
            msg_id: id.into(),
            room_id: "general".into(),
            sender_id: 1,
            user: Some("bob".into()),
            payload: "hi".into(),
            ts_ms: 0,
        }
    }

    fn ev(seq: u64, id: &str) -> RoomEvent {
        RoomEvent {
            room_id: "general".into(),
            event: "join".into(),
            user: "carol".into(),
            topic: None,
            name: None,
            term: 1,
            msg_id: id.into(),
            ts_ms: 0,
            seq_no: seq,
        }
    }

    fn texts(r: &RoomView) -> Vec<String> {
        r.lines(0, r.len())
            .into_iter()
            .map(|l| match l {
                Line::Item(Item::Chat { d, .. }) => format!("chat {}", d.seq_no),
                Line::Item(Item::Event { text, .. }) => text.clone(),
                Line::Item(Item::Note(t)) => t.clone(),
                Line::Pending(p) => format!("pending {}", p.payload),
            })
            .collect()
    }

    #[test]
    fn history_and_events_fall_into_commit_order_once() {
        let mut r = RoomView::new("general".into());
        assert!(r.live(d(10, 5, "e")));
        // The event committed just before chat 10 arrives after it.
        assert!(r.event(&ev(10, "j1")));
        assert!(!r.event(&ev(10, "j1")));
        r.history(d(7, 4, "d"), "alice");
        r.history(d(10, 5, "e"), "alice");
        assert!(!r.live(d(10, 5, "e")));
        assert_eq!(texts(&r), ["chat 7", "→ carol joined #general", "chat 10"]);
        assert_eq!(r.oldest_room_seq(), Some(4));
        assert!(!r.at_start());
        r.note(10, "a note".into());
        assert_eq!(texts(&r).last().map(String::as_str), Some("a note"));
    }

    #[test]
    fn own_pending_leaves_on_delivery() {
        let mut r = RoomView::new("general".into());
        r.pending.push_back(Pending {
            msg_id: "m".into(),
            payload: "yo".into(),
            seq_no: None,
        });
        assert_eq!(texts(&r), ["pending yo"]);
        assert!(r.acked("m", 3));
        assert!(!r.live(d(3, 1, "m")), "own chats are not unread");
        assert_eq!(texts(&r), ["chat 3"]);
    }

    #[test]
    fn bounded() {
        let mut r = RoomView::new("general".into());
        for i in 1..=(MAX_ITEMS as u64 + 10) {
            r.live(d(i + 100, i, &i.to_string()));
        }
        assert_eq!(r.len(), MAX_ITEMS);
        r.history(d(1, 1, "old"), "alice");
        assert!(r.full);
        assert_eq!(r.len(), MAX_ITEMS);
    }
}
