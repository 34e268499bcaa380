//! Presence: which names have a live session on any node. Soft state, never
//! written to the log (a connect is not history); gossiped between nodes.
//!
//! Each node owns its local sessions (the driver tells it with
//! `ClientRequest::Session`). Its set of local names has a `version`, bumped
//! whenever the set changes. Every heartbeat interval each node sends every
//! other member a PRESENCE message: the full set if its version changed since
//! the last round, otherwise only the version (a beat). A receiver whose
//! stored version differs from a beat's asks for the full set (`pull`), so a
//! lost message costs one round trip. A new link (`PeerUp`) gets the full
//! set at once (the peer may have restarted and forgotten it).
//!
//! Convergence: a connect or disconnect reaches every node within one
//! interval (plus a round trip); a node that dies is forgotten at once when
//! its links reset (`PeerDown`), otherwise when nothing was heard from it for
//! the leader timeout (checked every interval): at most leader timeout + two
//! intervals.
//!
//! Bounds: local sessions are bounded by the driver's connection limit;
//! names kept per remote node are capped at `Config::max_presence_names`
//! (the rest of a larger set is ignored), so memory is at most
//! members × max_presence_names names.

use crate::types::{ClientId, Instant, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// What one remote node last told us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Remote {
    version: u64,
    names: BTreeSet<String>,
    /// When we last heard from it (full set or beat).
    heard: Instant,
}

/// This node's view of presence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// Named sessions on this node.
    local: BTreeMap<ClientId, String>,
    /// Local names with their session counts.
    local_names: BTreeMap<String, u32>,
    version: u64,
    /// The version the last round sent.
    sent_version: u64,
    remote: BTreeMap<NodeId, Remote>,
}

/// What a PRESENCE message asks of its receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipReply {
    /// Send the sender our full set (it pulled).
    pub send_full: bool,
    /// Ask the sender for its full set (our copy is stale).
    pub pull: bool,
}

impl Presence {
    /// Session `client` is now called `name` (None: gone, or unnamed).
    /// True if the set of local names changed.
    pub fn set_session(&mut self, client: ClientId, name: Option<String>) -> bool {
        let before = self.local_names.len();
        let mut changed = false;
        if let Some(old) = self.local.remove(&client) {
            if let Some(n) = self.local_names.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.local_names.remove(&old);
                    changed = true;
                }
            }
        }
        if let Some(name) = name {
            let n = self.local_names.entry(name.clone()).or_insert(0);
            changed |= *n == 0;
            *n += 1;
            self.local.insert(client, name);
        }
        if changed || before != self.local_names.len() {
            self.version += 1;
        }
        changed
    }

    /// The full local set, for a PRESENCE message.
    pub fn local_names(&self) -> Vec<String> {
        self.local_names.keys().cloned().collect()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// A round starts: true if the full set must go out (it changed since
    /// the last round); remembers that it went.
    pub fn round_needs_full(&mut self) -> bool {
        let full = self.version != self.sent_version;
        self.sent_version = self.version;
        full
    }

    /// A PRESENCE message from `from`.
    pub fn on_gossip(
        &mut self,
        from: NodeId,
        version: u64,
        names: Option<Vec<String>>,
        pull: bool,
        now: Instant,
        max_names: usize,
    ) -> GossipReply {
        let r = self.remote.entry(from).or_default();
        r.heard = now;
        let stale = match names {
            Some(names) => {
                r.version = version;
                r.names = names.into_iter().take(max_names).collect();
                false
            }
            None => r.version != version,
        };
        GossipReply {
            send_full: pull,
            pull: stale,
        }
    }

    /// True while rounds have work: names to announce or refresh, a change
    /// to send, or remote sets to expire. Idle presence costs no timer.
    pub fn active(&self) -> bool {
        !self.local_names.is_empty() || self.version != self.sent_version || !self.remote.is_empty()
    }

    /// True if this node has named sessions (it beats every round).
    pub fn has_local(&self) -> bool {
        !self.local_names.is_empty()
    }

    /// Forgets `node`'s sessions (its links reset).
    pub fn forget(&mut self, node: NodeId) {
        self.remote.remove(&node);
    }

    /// Forgets every node not heard from for `timeout_ms`.
    pub fn expire(&mut self, now: Instant, timeout_ms: u64) {
        self.remote
            .retain(|_, r| now.ms_since(r.heard) < timeout_ms);
    }

    /// True if `name` has a live session on some node, as far as we know.
    pub fn is_online(&self, name: &str) -> bool {
        self.local_names.contains_key(name) || self.remote.values().any(|r| r.names.contains(name))
    }

    /// Every name online anywhere, in name order (for checks and counts).
    pub fn online(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.local_names.keys().cloned().collect();
        for r in self.remote.values() {
            all.extend(r.names.iter().cloned());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_count_names_and_versions_move() {
        let mut p = Presence::default();
        assert!(p.set_session(ClientId(1), Some("ann".into())));
        assert!(!p.set_session(ClientId(2), Some("ann".into())));
        assert_eq!(p.version(), 1);
        assert!(p.round_needs_full());
        assert!(!p.round_needs_full());
        assert!(!p.set_session(ClientId(1), None));
        assert!(p.is_online("ann"));
        assert!(p.set_session(ClientId(2), None));
        assert!(!p.is_online("ann"));
        assert!(p.round_needs_full());
    }

    #[test]
    fn beats_pull_when_stale_and_silence_expires() {
        let mut p = Presence::default();
        let n2 = NodeId(2);
        let t = Instant(100);
        let r = |send_full, pull| GossipReply { send_full, pull };
        assert_eq!(p.on_gossip(n2, 3, None, false, t, 10), r(false, true));
        let names = Some(vec!["bob".to_string()]);
        assert_eq!(p.on_gossip(n2, 3, names, false, t, 10), r(false, false));
        assert!(p.is_online("bob"));
        assert_eq!(p.on_gossip(n2, 3, None, true, t, 10), r(true, false));
        p.expire(Instant(1000), 2500);
        assert!(p.is_online("bob"));
        p.expire(Instant(2600), 2500);
        assert!(!p.is_online("bob"));
    }
}
