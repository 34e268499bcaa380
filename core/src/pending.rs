//! Submissions accepted here and not yet seen committed, in the order they
//! were accepted: a follower forwards them to each new leader in that order,
//! so one client's messages keep its send order across a leader change
//! (keyed by msg_id alone, a re-forward went out in uuid order and could
//! commit a client's second message before its first).
//!
//! Invariant: `order` and `by_id` hold the same submissions; insertion
//! numbers only grow. Deterministic (ordered maps only).

use crate::entry::Chat;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    by_id: BTreeMap<String, u64>,
    order: BTreeMap<u64, Chat>,
    next: u64,
}

impl Pending {
    /// Adds `chat` at the end unless its msg_id is already pending.
    pub fn insert(&mut self, chat: Chat) {
        if self.by_id.contains_key(&chat.msg_id) {
            return;
        }
        self.next += 1;
        self.by_id.insert(chat.msg_id.clone(), self.next);
        self.order.insert(self.next, chat);
    }

    pub fn remove(&mut self, msg_id: &str) -> Option<Chat> {
        let n = self.by_id.remove(msg_id)?;
        self.order.remove(&n)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The pending submissions, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Chat> {
        self.order.values()
    }

    /// Empties it, returning the submissions oldest first.
    pub fn take(&mut self) -> Vec<Chat> {
        self.by_id.clear();
        std::mem::take(&mut self.order).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(id: &str) -> Chat {
        Chat {
            msg_id: id.into(),
            room_id: "r".into(),
            sender_id: 0,
            user: None,
            payload: String::new(),
            ts_ms: 0,
            event: None,
        }
    }

    #[test]
    fn keeps_acceptance_order_not_id_order() {
        let mut p = Pending::default();
        for id in ["z", "a", "m", "a"] {
            p.insert(chat(id));
        }
        assert_eq!(p.len(), 3);
        let ids: Vec<&str> = p.iter().map(|c| c.msg_id.as_str()).collect();
        assert_eq!(ids, ["z", "a", "m"]);
        assert!(p.remove("a").is_some());
        assert!(p.remove("a").is_none());
        let ids: Vec<String> = p.take().into_iter().map(|c| c.msg_id).collect();
        assert_eq!(ids, ["z", "m"]);
        assert!(p.is_empty());
    }
}
