//! The durability gate: the one implementation of "what waits for the disk"
//! that both drivers with asynchronous durability use (the simulator's
//! asynchronous disk model and runtime-mio), so they keep one contract
//! (`io.rs`, "Asynchronous durability").
//!
//! A peer message waits, in emission order, until every record emitted before
//! it is durable; a driver tags each waiting action with a *mark* (runtime-mio:
//! the file offset its records end at; the simulator: the record count) and
//! releases it once its disk is durable up to that mark. Links stay FIFO: a
//! message that could leave early (the leader's parallel write) does not
//! overtake one waiting for the same peer.
//!
//! **A truncation supersedes what waits.** A message that reports this node's
//! log (a SYNC_ACK position, an APPEND_ACK match, CATCHUP_RESP or SEQ_CHAT
//! entries, a HEARTBEAT's log end) was true of the log when the core emitted
//! it. If the core then emits a truncation that cuts what the message reports,
//! the one fsync that releases the message also makes the truncation durable:
//! the message would leave vouching for entries its sender's durable log no
//! longer holds — entries that, in the asynchronous model, may never have been
//! durable at all (issue 14, seed 0x309c79: a SYNC_ACK claiming `22@t1` after
//! `19..` had been rewritten in t2). So [`Gate::truncated`] drops every waiting
//! message that reports a seq at or past the cut. Peer sends are best effort,
//! so a drop is a message loss the protocol already tolerates: a claimant
//! re-probes, a leader re-sends, a requester asks again. What a message
//! reports is then durable when it leaves, which is what its receiver relies on.

use crate::io::Action;
use crate::types::{NodeId, Seq};
use crate::wire::PeerMsg;
use std::collections::{BTreeMap, VecDeque};

/// Peer actions waiting for durability, in emission order.
#[derive(Debug, Default)]
pub struct Gate {
    waiting: VecDeque<(u64, Action)>,
    /// How many waiting actions send to each peer.
    per_peer: BTreeMap<NodeId, usize>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Something waits for one of `to` (a later message to them must queue too).
    pub fn waits_for_any(&self, to: &[NodeId]) -> bool {
        to.iter().any(|t| self.per_peer.contains_key(t))
    }

    /// `a` waits until the disk is durable up to `mark`.
    pub fn push(&mut self, mark: u64, a: Action) {
        for to in destinations(&a) {
            *self.per_peer.entry(*to).or_default() += 1;
        }
        self.waiting.push_back((mark, a));
    }

    /// The next waiting action whose records are durable (`durable` ≥ its mark).
    pub fn pop_durable(&mut self, durable: u64) -> Option<Action> {
        if self.waiting.front()?.0 > durable {
            return None;
        }
        let (_, a) = self.waiting.pop_front()?;
        self.forget(&a);
        Some(a)
    }

    /// The core emitted a truncation of its log from `from`: drops every
    /// waiting message that reports a seq at or past it (see the module docs).
    /// Returns how many were dropped.
    pub fn truncated(&mut self, from: Seq) -> usize {
        let before = self.waiting.len();
        let (keep, stale): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, a)| !reports_past(a, from));
        self.waiting = keep;
        for (_, a) in &stale {
            self.forget(a);
        }
        before - self.waiting.len()
    }

    /// The process died: nothing that waited will be sent.
    pub fn clear(&mut self) {
        self.waiting.clear();
        self.per_peer.clear();
    }

    fn forget(&mut self, a: &Action) {
        for to in destinations(a) {
            if let Some(n) = self.per_peer.get_mut(to) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(to);
                }
            }
        }
    }
}

/// The parallel-write exception (`io.rs`): the leader's replication and a
/// CATCHUP_REQ may leave before the preceding entry records are durable,
/// provided no term or truncation record is pending and nothing waits for the
/// same peer.
pub fn may_leave_early(msg: &PeerMsg) -> bool {
    matches!(
        msg,
        PeerMsg::SeqChat { .. } | PeerMsg::Heartbeat { .. } | PeerMsg::CatchupReq { .. }
    )
}

/// Does `a` send a message reporting this node's log at or past `from`?
fn reports_past(a: &Action, from: Seq) -> bool {
    match a {
        Action::Send { msg, .. } | Action::Broadcast { msg, .. } => {
            msg.reports_log_upto().is_some_and(|s| s >= from)
        }
        _ => false,
    }
}

/// The peers an action sends to (none for local effects and client replies).
pub fn destinations(a: &Action) -> &[NodeId] {
    match a {
        Action::Send { to, .. } => std::slice::from_ref(to),
        Action::Broadcast { to, .. } => to,
        _ => &[],
    }
}
