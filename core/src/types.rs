//! Newtypes shared by every part of chorus: node ids, terms, sequence numbers,
//! virtual time, and the address book entry of a peer.
//!
//! Invariant: `Instant` is milliseconds since an arbitrary origin chosen by the
//! driver; it never goes backwards (the runtime clamps, the simulator cannot).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's identity; Bully priority is the numeric order (higher wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

/// An election epoch. Persisted before use; never decreases on a node.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Term(pub u64);

/// A position in the replicated log (1-based; 0 means "before the first entry").
/// The log position of a chat message is its `seq_no`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

/// Virtual or monotonic time in milliseconds, passed into every `step`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// `self + ms`, saturating (time arithmetic never wraps).
    pub fn plus_ms(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms))
    }
    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn ms_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Term {
    /// Peer messages with a term at or above this are ignored: no honest
    /// cluster gets near it (a term is spent per election), and a term close
    /// to `u64::MAX` would overflow the next election's `term + 1`.
    pub const LIMIT: Term = Term(1 << 62);
}

impl Seq {
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}
impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How to reach a node: its id and the TCP address it listens on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerInfo {
    pub node_id: NodeId,
    pub host: String,
    pub port: u16,
}

/// Identifies one client connection of one node (assigned by the driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u64);
