//! The long outage of a retention run (`--retain-entries`): the ordinary
//! faults all heal within about a second, far less than it takes the
//! cluster to commit `retain_entries` entries, so no node ever falls behind
//! every other node's first retained entry and nothing would be installed. So once
//! per run a follower drawn from the seed, at a moment drawn from the seed
//! (10–30 % into the fault phase), is crashed (SIGKILL) and kept down until
//! every other node's STATUS says its log starts past the entry after the
//! last one that follower held (`log_first > log_last + 1`; the leader's
//! alone is not enough: a node catches up from any peer whose log still
//! holds what it needs): when it comes back it must install a snapshot. If the fault phase ends first, the
//! other faults are healed and the outage goes on, with the clients still
//! chatting, up to [`MAX_EXTRA_MS`] more; it always ends (restart) then.
//! While it lasts, the planner counts the node as down (one of its two).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Longest the outage outlasts the fault phase.
pub const MAX_EXTRA_MS: u64 = 45_000;

#[derive(Debug)]
pub struct Outage {
    /// When it starts, from the start of the fault phase.
    pub at: Duration,
    /// Which follower: the `pick % followers`-th node that is up and not the
    /// leader, in id order.
    pick: u64,
    /// The node down (1-based id) and the last seq it held, once started.
    pub node: Option<(u64, u64)>,
    /// When it started and ended (from the start of the fault phase).
    pub started: Option<Duration>,
    pub ended: Option<Duration>,
    /// The lowest first retained entry of the other nodes when it ended
    /// (None: ended by the bound).
    pub others_first: Option<u64>,
}

impl Outage {
    /// The outage of a run with `seed` and `duration` of faults.
    pub fn plan(seed: u64, duration: Duration) -> Outage {
        // Its own stream: the fault plan's draws stay as they were.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a6e_5eed);
        let permille = 100 + rng.next_u64() % 200;
        Outage {
            at: duration * permille as u32 / 1000,
            pick: rng.next_u64(),
            node: None,
            started: None,
            ended: None,
            others_first: None,
        }
    }

    /// The node to crash now, if it is time and one fits: not the leader,
    /// not `down`, among `nodes`.
    pub fn choose(&self, elapsed: Duration, nodes: u64, leader: u64, down: &[u64]) -> Option<u64> {
        if self.started.is_some() || elapsed < self.at {
            return None;
        }
        let fit: Vec<u64> = (1..=nodes)
            .filter(|n| *n != leader && !down.contains(n))
            .collect();
        (!fit.is_empty()).then(|| fit[(self.pick % fit.len() as u64) as usize])
    }

    /// Whether the outage may end: every other log starts past the entry
    /// after the node's last (`first`: the lowest STATUS `log_first`).
    pub fn behind(&self, first: u64) -> bool {
        self.node.is_some_and(|(_, last)| first > last + 1)
    }

    /// Is the node down now?
    pub fn active(&self) -> bool {
        self.started.is_some() && self.ended.is_none()
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
        match (self.node, self.started, self.ended) {
            (Some((n, last)), Some(s), Some(e)) => format!(
                "n{n} down from {} to {} of the fault phase (it held up to seq {last}; {})",
                secs(s),
                secs(e),
                match self.others_first {
                    Some(f) => format!("every other log then started at {f} or later"),
                    None => "ended by the bound before every other node compacted past it".into(),
                }
            ),
            _ => format!(
                "none (no follower fitted after {} of the fault phase)",
                secs(self.at)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_one_outage_of_a_follower() {
        let a = Outage::plan(7, Duration::from_secs(30));
        let b = Outage::plan(7, Duration::from_secs(30));
        assert_eq!((a.at, a.pick), (b.at, b.pick));
        assert!(a.at >= Duration::from_secs(3) && a.at < Duration::from_secs(9));
        assert_eq!(a.choose(Duration::ZERO, 5, 1, &[]), None, "not yet");
        let n = a.choose(a.at, 5, 1, &[2]).unwrap();
        assert!(n != 1 && n != 2 && n <= 5);
        assert_eq!(a.choose(a.at, 3, 1, &[2, 3]), None, "no follower up");
    }

    #[test]
    fn it_ends_once_every_other_node_compacted_past_it() {
        let mut o = Outage::plan(1, Duration::from_secs(30));
        o.node = Some((3, 1500));
        assert!(!o.behind(1501));
        assert!(o.behind(1502));
    }
}
