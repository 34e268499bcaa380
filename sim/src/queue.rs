//! The simulator's single event queue, ordered by (virtual time, insertion
//! counter).
//!
//! Invariant: events at the same millisecond pop in the order they were pushed,
//! so a run is a pure function of its seed (no tie is ever broken by memory
//! layout or hashing).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Item<E> {
    at_ms: u64,
    n: u64,
    ev: E,
}

impl<E> PartialEq for Item<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.n) == (other.at_ms, other.n)
    }
}
impl<E> Eq for Item<E> {}
impl<E> PartialOrd for Item<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Item<E> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.n).cmp(&(self.at_ms, self.n))
    }
}

/// A min-queue of events by (time, insertion order).
pub struct Queue<E> {
    heap: BinaryHeap<Item<E>>,
    pushed: u64,
}

impl<E> std::fmt::Debug for Queue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.heap.len())
            .field("pushed", &self.pushed)
            .finish()
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            pushed: 0,
        }
    }
}

impl<E> Queue<E> {
    pub fn push(&mut self, at_ms: u64, ev: E) {
        self.pushed += 1;
        self.heap.push(Item {
            at_ms,
            n: self.pushed,
            ev,
        });
    }

    /// Time of the earliest event.
    pub fn peek_ms(&self) -> Option<u64> {
        self.heap.peek().map(|i| i.at_ms)
    }

    /// Removes the earliest event if it is due strictly before `limit_ms`.
    pub fn pop_before(&mut self, limit_ms: u64) -> Option<(u64, E)> {
        if self.peek_ms()? >= limit_ms {
            return None;
        }
        self.heap.pop().map(|i| (i.at_ms, i.ev))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_insertion_order() {
        let mut q = Queue::default();
        q.push(5, "b");
        q.push(3, "a");
        q.push(5, "c");
        assert_eq!(q.pop_before(100), Some((3, "a")));
        assert_eq!(q.pop_before(5), None);
        assert_eq!(q.pop_before(6), Some((5, "b")));
        assert_eq!(q.pop_before(6), Some((5, "c")));
        assert!(q.is_empty());
    }
}
