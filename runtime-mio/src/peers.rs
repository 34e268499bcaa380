//! The address book of outgoing peer links: where each member listens, which
//! connection (if any) is our link to it, and when to dial again.
//!
//! Invariants: at most one outgoing link per peer; a failed or lost link is
//! re-dialed after a delay that doubles from `min_ms` up to `max_ms` (capped
//! exponential backoff) and resets once a handshake succeeds. Messages for a
//! peer whose link is not up yet wait in a bounded queue (oldest dropped past
//! `QUEUE_MAX_*`), flushed when the link comes up and discarded when a dial
//! fails: a peer learned from its JOIN still gets our JOIN_ACK.

use chorus_core::{NodeId, PeerInfo};
use mio::Token;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Most messages and bytes held for one peer whose link is not up.
pub const QUEUE_MAX_MSGS: usize = 256;
pub const QUEUE_MAX_BYTES: usize = 1 << 20;

#[derive(Debug)]
struct Slot {
    info: PeerInfo,
    token: Option<Token>,
    retry_at: Instant,
    backoff_ms: u64,
    /// Failed attempts since the link was last up (to keep logs quiet).
    failures: u32,
    queue: VecDeque<Vec<u8>>,
    queue_bytes: usize,
}

/// What learning a member changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Learned {
    New,
    /// The address changed; the old link (if any) must be closed.
    Moved(Option<Token>),
    Same,
}

/// Outgoing links by peer id.
#[derive(Debug)]
pub struct PeerTable {
    slots: BTreeMap<NodeId, Slot>,
    min_ms: u64,
    max_ms: u64,
}

impl PeerTable {
    pub fn new(min_ms: u64, max_ms: u64) -> PeerTable {
        PeerTable {
            slots: BTreeMap::new(),
            min_ms: min_ms.max(1),
            max_ms: max_ms.max(min_ms.max(1)),
        }
    }

    /// Records where `info.node_id` listens; a new or moved peer is due now.
    pub fn learn(&mut self, info: PeerInfo, now: Instant) -> Learned {
        match self.slots.get_mut(&info.node_id) {
            Some(s) if s.info == info => Learned::Same,
            Some(s) => {
                s.info = info;
                s.retry_at = now;
                s.backoff_ms = self.min_ms;
                Learned::Moved(s.token.take())
            }
            None => {
                let slot = Slot {
                    info: info.clone(),
                    token: None,
                    retry_at: now,
                    backoff_ms: self.min_ms,
                    failures: 0,
                    queue: VecDeque::new(),
                    queue_bytes: 0,
                };
                self.slots.insert(info.node_id, slot);
                Learned::New
            }
        }
    }

    pub fn info(&self, id: NodeId) -> Option<&PeerInfo> {
        self.slots.get(&id).map(|s| &s.info)
    }

    /// The connection that is our link to `id`, if one exists (any stage).
    pub fn token(&self, id: NodeId) -> Option<Token> {
        self.slots.get(&id).and_then(|s| s.token)
    }

    /// Peers without a link whose retry time has come.
    pub fn due(&self, now: Instant) -> Vec<NodeId> {
        self.slots
            .iter()
            .filter(|(_, s)| s.token.is_none() && s.retry_at <= now)
            .map(|(&id, _)| id)
            .collect()
    }

    /// The earliest pending retry.
    pub fn next_retry(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|s| s.token.is_none())
            .map(|s| s.retry_at)
            .min()
    }

    pub fn attached(&mut self, id: NodeId, token: Token) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.token = Some(token);
        }
    }

    /// The handshake succeeded: the next failure starts from the shortest delay.
    pub fn up(&mut self, id: NodeId) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.backoff_ms = self.min_ms;
            s.failures = 0;
        }
    }

    /// `id` just proved it is up (it dialed us and authenticated): a link
    /// waiting out its backoff is due now, from the shortest delay again.
    /// Without this a restarted peer would not hear from us until our
    /// backoff (up to `max_ms`) ran out.
    pub fn heard_from(&mut self, id: NodeId, now: Instant) {
        if let Some(s) = self.slots.get_mut(&id) {
            if s.token.is_none() {
                s.retry_at = now;
            }
            s.backoff_ms = self.min_ms;
        }
    }

    /// The link `token` to `id` ended; schedules the next dial. Returns the
    /// delay and how many attempts failed in a row, or None if `token` was not
    /// the current link (already replaced).
    pub fn detached(&mut self, id: NodeId, token: Token, now: Instant) -> Option<(u64, u32)> {
        let s = self.slots.get_mut(&id)?;
        if s.token != Some(token) {
            return None;
        }
        s.token = None;
        s.queue.clear();
        s.queue_bytes = 0;
        let delay = s.backoff_ms;
        s.retry_at = now + Duration::from_millis(delay);
        s.backoff_ms = (s.backoff_ms * 2).min(self.max_ms);
        s.failures += 1;
        Some((delay, s.failures))
    }

    /// Holds `line` until the link to `id` is up; false if `id` is unknown.
    pub fn enqueue(&mut self, id: NodeId, line: &[u8]) -> bool {
        let Some(s) = self.slots.get_mut(&id) else {
            return false;
        };
        s.queue.push_back(line.to_vec());
        s.queue_bytes += line.len();
        while s.queue.len() > QUEUE_MAX_MSGS || s.queue_bytes > QUEUE_MAX_BYTES {
            let old = s.queue.pop_front().expect("non-empty");
            s.queue_bytes -= old.len();
        }
        true
    }

    /// The messages held for `id`, oldest first.
    pub fn take_queue(&mut self, id: NodeId) -> Vec<Vec<u8>> {
        match self.slots.get_mut(&id) {
            Some(s) => {
                s.queue_bytes = 0;
                s.queue.drain(..).collect()
            }
            None => Vec::new(),
        }
    }

    /// A dial attempt failed before it had a connection.
    pub fn dial_failed(&mut self, id: NodeId, now: Instant) -> Option<(u64, u32)> {
        let t = Token(usize::MAX);
        self.attached(id, t);
        self.detached(id, t, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64, port: u16) -> PeerInfo {
        PeerInfo {
            node_id: NodeId(id),
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn a_peer_that_dials_us_is_due_at_once() {
        let now = Instant::now();
        let mut t = PeerTable::new(50, 1000);
        t.learn(info(2, 5002), now);
        for _ in 0..5 {
            t.dial_failed(NodeId(2), now);
        }
        assert!(t.due(now).is_empty());
        t.heard_from(NodeId(2), now);
        assert_eq!(t.due(now), vec![NodeId(2)]);
        assert_eq!(t.dial_failed(NodeId(2), now).unwrap().0, 50);
        // A link already being dialed is left alone.
        t.attached(NodeId(2), Token(7));
        t.heard_from(NodeId(2), now);
        assert!(t.due(now).is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_when_up() {
        let now = Instant::now();
        let mut t = PeerTable::new(50, 300);
        assert_eq!(t.learn(info(2, 5002), now), Learned::New);
        assert_eq!(t.due(now), vec![NodeId(2)]);
        let delays: Vec<u64> = (0..5)
            .map(|_| t.dial_failed(NodeId(2), now).unwrap().0)
            .collect();
        assert_eq!(delays, vec![50, 100, 200, 300, 300]);
        assert!(t.due(now).is_empty());
        assert!(t.next_retry().unwrap() > now);
        t.attached(NodeId(2), Token(9));
        t.up(NodeId(2));
        assert_eq!(t.detached(NodeId(2), Token(9), now), Some((50, 1)));
    }

    #[test]
    fn the_queue_is_bounded_flushed_once_and_dropped_on_failure() {
        let now = Instant::now();
        let mut t = PeerTable::new(50, 300);
        assert!(!t.enqueue(NodeId(2), b"x"));
        t.learn(info(2, 5002), now);
        for i in 0..(QUEUE_MAX_MSGS + 10) {
            assert!(t.enqueue(NodeId(2), format!("{i}").as_bytes()));
        }
        let q = t.take_queue(NodeId(2));
        assert_eq!(q.len(), QUEUE_MAX_MSGS);
        assert_eq!(q[0], b"10", "the oldest were dropped");
        assert!(t.take_queue(NodeId(2)).is_empty());
        t.enqueue(NodeId(2), b"stale");
        t.dial_failed(NodeId(2), now);
        assert!(t.take_queue(NodeId(2)).is_empty());
    }

    #[test]
    fn a_moved_peer_is_due_at_once_and_its_old_link_is_returned() {
        let now = Instant::now();
        let mut t = PeerTable::new(50, 300);
        t.learn(info(2, 5002), now);
        t.attached(NodeId(2), Token(7));
        assert_eq!(t.learn(info(2, 5002), now), Learned::Same);
        assert_eq!(t.learn(info(2, 6002), now), Learned::Moved(Some(Token(7))));
        assert_eq!(t.detached(NodeId(2), Token(7), now), None);
        assert_eq!(t.due(now), vec![NodeId(2)]);
    }
}
