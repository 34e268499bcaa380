//! The unacknowledged messages and room commands of one client: what must be resent, with the
//! same `msg_id`, after a timeout or on another node.
//!
//! Invariants: at most `cap` messages are held (a full outbox refuses new ones
//! instead of growing); a message leaves only when its acknowledgement (a
//! CHAT_ACK or its own SEQ_CHAT) arrives, so nothing is dropped silently;
//! iteration is in submission order, so resends keep the user's order.

use super::request::Command;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One sent, not yet acknowledged message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unacked {
    pub msg_id: String,
    pub cmd: Command,
    /// When it was last written to a connection (None: never yet).
    pub sent_at: Option<Instant>,
}

/// The outbox is full: the caller must wait for acknowledgements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    pub cap: usize,
}

/// Bounded, ordered store of unacknowledged messages.
#[derive(Debug)]
pub struct Outbox {
    cap: usize,
    /// Submission order → message; a counter key keeps the user's order.
    by_order: BTreeMap<u64, Unacked>,
    /// msg_id → order key, to find a message when its ack arrives.
    by_id: BTreeMap<String, u64>,
    next_order: u64,
}

impl Outbox {
    pub fn new(cap: usize) -> Outbox {
        Outbox {
            cap: cap.max(1),
            by_order: BTreeMap::new(),
            by_id: BTreeMap::new(),
            next_order: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }

    pub fn contains(&self, msg_id: &str) -> bool {
        self.by_id.contains_key(msg_id)
    }

    /// Adds a message; a duplicate `msg_id` is accepted once.
    pub fn push(&mut self, msg_id: String, cmd: Command) -> Result<(), Full> {
        if self.by_id.contains_key(&msg_id) {
            return Ok(());
        }
        if self.by_order.len() >= self.cap {
            return Err(Full { cap: self.cap });
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_id.insert(msg_id.clone(), order);
        self.by_order.insert(
            order,
            Unacked {
                msg_id,
                cmd,
                sent_at: None,
            },
        );
        Ok(())
    }

    /// Removes an acknowledged message; None if it was not (or no longer) pending.
    pub fn ack(&mut self, msg_id: &str) -> Option<Unacked> {
        let order = self.by_id.remove(msg_id)?;
        self.by_order.remove(&order)
    }

    /// Starts the retry timer of one message.
    pub fn mark_sent(&mut self, msg_id: &str, now: Instant) {
        if let Some(u) = self
            .by_id
            .get(msg_id)
            .and_then(|o| self.by_order.get_mut(o))
        {
            u.sent_at = Some(now);
        }
    }

    /// Every pending message, oldest first, marked as sent at `now` (used
    /// right after a (re)connect: all of them go out again).
    pub fn take_all_for_send(&mut self, now: Instant) -> Vec<Unacked> {
        self.by_order
            .values_mut()
            .map(|u| {
                u.sent_at = Some(now);
                u.clone()
            })
            .collect()
    }

    /// The messages not (re)sent within `retry_after`, oldest first, marked
    /// as sent at `now`.
    pub fn take_due(&mut self, now: Instant, retry_after: Duration) -> Vec<Unacked> {
        self.by_order
            .values_mut()
            .filter(|u| match u.sent_at {
                None => true,
                Some(t) => now.saturating_duration_since(t) >= retry_after,
            })
            .map(|u| {
                u.sent_at = Some(now);
                u.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(text: &str) -> Command {
        Command::Chat {
            room: "general".into(),
            payload: text.into(),
        }
    }

    #[test]
    fn bounded_and_ordered() {
        let mut o = Outbox::new(2);
        o.push("a".into(), chat("1")).unwrap();
        o.push("b".into(), chat("2")).unwrap();
        assert_eq!(o.push("c".into(), chat("3")), Err(Full { cap: 2 }));
        // A duplicate id is not a new message.
        assert_eq!(o.push("a".into(), chat("1")), Ok(()));
        let t = Instant::now();
        let ids: Vec<_> = o
            .take_all_for_send(t)
            .into_iter()
            .map(|u| u.msg_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(o.ack("a").map(|u| u.cmd), Some(chat("1")));
        assert_eq!(o.ack("a"), None);
        o.push("c".into(), chat("3")).unwrap();
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn due_after_timeout_only() {
        let mut o = Outbox::new(10);
        let t0 = Instant::now();
        o.push("a".into(), chat("1")).unwrap();
        assert_eq!(o.take_due(t0, Duration::from_secs(3)).len(), 1);
        assert!(o
            .take_due(t0 + Duration::from_secs(2), Duration::from_secs(3))
            .is_empty());
        let due = o.take_due(t0 + Duration::from_secs(3), Duration::from_secs(3));
        assert_eq!(due[0].msg_id, "a");
    }
}
