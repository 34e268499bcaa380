//! The fault plan: which fault comes next, drawn from one seeded ChaCha8
//! stream, given what is already broken. Pure (no I/O, no clock), so a seed
//! always draws the same sequence of choices for the same sequence of views;
//! real processes still make each run's timing differ.
//!
//! Bounds kept here: at most two nodes crashed or paused at once; one
//! partition and one packet-loss episode at a time; every fault heals after a
//! bounded duration (`Fault::duration_ms`).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::fmt;

/// The kinds of fault, in report order (`--faults` names them in kebab case:
/// kill, kill-leader, pause-leader, isolate-leader, split, one-way, loss,
/// power-loss).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Kill,
    KillLeader,
    PauseLeader,
    IsolateLeader,
    Split,
    OneWay,
    Loss,
    PowerLoss,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Kill,
        Kind::KillLeader,
        Kind::PauseLeader,
        Kind::IsolateLeader,
        Kind::Split,
        Kind::OneWay,
        Kind::Loss,
        Kind::PowerLoss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "sigkill+restart (follower)",
            Kind::KillLeader => "sigkill+restart (leader)",
            Kind::PauseLeader => "sigstop/sigcont (leader)",
            Kind::IsolateLeader => "partition: isolate leader",
            Kind::Split => "partition: split 2|3",
            Kind::OneWay => "partition: one-way drop",
            Kind::Loss => "packet loss",
            Kind::PowerLoss => "power loss (unsynced writes lost)",
        }
    }
}

/// One fault, with the node ids (1-based) it hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, restart after `ms`.
    Kill { node: u64, leader: bool, ms: u64 },
    /// SIGSTOP, SIGCONT after `ms` (longer than the leader timeout: the
    /// others elect a new leader and the paused one wakes in an old term).
    Pause { node: u64, ms: u64 },
    /// `node` and everyone else stop hearing each other.
    Isolate { node: u64, ms: u64 },
    /// `side` and the rest stop hearing each other.
    Split { side: Vec<u64>, ms: u64 },
    /// Each node in `deaf` stops hearing `from` (but `from` hears them).
    OneWay { from: u64, deaf: Vec<u64>, ms: u64 },
    /// Incoming packets dropped at random on `nodes`.
    Loss {
        nodes: Vec<u64>,
        permille: u32,
        ms: u64,
    },
    /// Power failure of `nodes` at once (a majority or all, leader
    /// included): SIGKILL, each log loses its unsynced bytes but
    /// `keep_permille` of them; restart after `ms`, except `late` (the
    /// leader, when known), whose machine comes back `late_ms` later, so
    /// the others must elect among themselves from what they made durable.
    PowerLoss {
        nodes: Vec<u64>,
        keep_permille: u32,
        ms: u64,
        late: Option<u64>,
        late_ms: u64,
    },
}

impl Fault {
    pub fn kind(&self) -> Kind {
        match self {
            Fault::Kill { leader: false, .. } => Kind::Kill,
            Fault::Kill { leader: true, .. } => Kind::KillLeader,
            Fault::Pause { .. } => Kind::PauseLeader,
            Fault::Isolate { .. } => Kind::IsolateLeader,
            Fault::Split { .. } => Kind::Split,
            Fault::OneWay { .. } => Kind::OneWay,
            Fault::Loss { .. } => Kind::Loss,
            Fault::PowerLoss { .. } => Kind::PowerLoss,
        }
    }

    pub fn duration_ms(&self) -> u64 {
        match self {
            Fault::Kill { ms, .. }
            | Fault::Pause { ms, .. }
            | Fault::Isolate { ms, .. }
            | Fault::Split { ms, .. }
            | Fault::OneWay { ms, .. }
            | Fault::Loss { ms, .. }
            | Fault::PowerLoss { ms, .. } => *ms,
        }
    }
}

fn ids(v: &[u64]) -> String {
    v.iter()
        .map(|i| format!("n{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill { node, leader, ms } => {
                let who = if *leader { " (leader)" } else { "" };
                write!(f, "kill n{node}{who}, restart after {ms} ms")
            }
            Fault::Pause { node, ms } => write!(f, "sigstop n{node} (leader) for {ms} ms"),
            Fault::Isolate { node, ms } => write!(f, "isolate n{node} (leader) for {ms} ms"),
            Fault::Split { side, ms } => write!(f, "split {} | rest for {ms} ms", ids(side)),
            Fault::OneWay { from, deaf, ms } => {
                write!(f, "{} stop hearing n{from} for {ms} ms", ids(deaf))
            }
            Fault::Loss {
                nodes,
                permille,
                ms,
            } => write!(
                f,
                "drop {}.{}% of packets into {} for {ms} ms",
                permille / 10,
                permille % 10,
                ids(nodes)
            ),
            Fault::PowerLoss {
                nodes,
                keep_permille,
                ms,
                late,
                late_ms,
            } => {
                write!(
                    f,
                    "power loss of {} (keeping {keep_permille}\u{2030} of unsynced bytes), restart after {ms} ms",
                    ids(nodes)
                )?;
                match late {
                    Some(l) => write!(f, ", n{l} {late_ms} ms later"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What is broken right now, as the planner needs it.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub nodes: u64,
    pub leader: Option<u64>,
    /// Crashed or paused nodes.
    pub down: BTreeSet<u64>,
    pub partition: bool,
    pub loss: bool,
}

/// Default bounds of the gap between two injections (ms).
pub const DEFAULT_GAP_MS: (u64, u64) = (300, 1000);

/// Most nodes crashed or paused at once.
pub const MAX_DOWN: usize = 2;

/// Draws faults from one seed.
#[derive(Debug)]
pub struct Planner {
    rng: ChaCha8Rng,
    power_loss: bool,
    /// Only these kinds are drawn (all if empty).
    only: Vec<Kind>,
    /// Bounds of the gap between injections (ms).
    gap: (u64, u64),
}

impl Planner {
    /// `power_loss`: also draw power failures (the nodes run under strace).
    pub fn new(seed: u64, power_loss: bool) -> Planner {
        Planner {
            rng: ChaCha8Rng::seed_from_u64(seed),
            power_loss,
            only: Vec::new(),
            gap: DEFAULT_GAP_MS,
        }
    }

    /// Draws only the kinds in `only` (every kind if it is empty).
    pub fn only(mut self, only: &[Kind]) -> Planner {
        self.only = only.to_vec();
        self
    }

    /// Injections `lo..=hi` ms apart instead of [`DEFAULT_GAP_MS`].
    pub fn gap(mut self, (lo, hi): (u64, u64)) -> Planner {
        self.gap = (lo.min(hi), hi.max(lo));
        self
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Milliseconds until the next injection.
    pub fn gap_ms(&mut self) -> u64 {
        let (lo, hi) = self.gap;
        self.between(lo, hi)
    }

    fn pick(&mut self, from: &[u64]) -> Option<u64> {
        (!from.is_empty()).then(|| from[self.below(from.len() as u64) as usize])
    }

    /// `k` distinct ids from `from`.
    fn sample(&mut self, from: &[u64], k: usize) -> Vec<u64> {
        let mut pool = from.to_vec();
        let mut out = Vec::new();
        while out.len() < k && !pool.is_empty() {
            let i = self.below(pool.len() as u64) as usize;
            out.push(pool.swap_remove(i));
        }
        out.sort_unstable();
        out
    }

    /// The next fault, or None if nothing fits what is already broken.
    pub fn next(&mut self, v: &View) -> Option<Fault> {
        let all: Vec<u64> = (1..=v.nodes).collect();
        let up: Vec<u64> = all
            .iter()
            .copied()
            .filter(|i| !v.down.contains(i))
            .collect();
        let leader = v.leader.filter(|l| up.contains(l));
        let can_down = v.down.len() < MAX_DOWN;
        // Weights: leader-targeted faults are drawn more often than others.
        let mut menu: Vec<(Kind, u64)> = Vec::new();
        if can_down {
            menu.push((Kind::Kill, 2));
            if leader.is_some() {
                menu.push((Kind::KillLeader, 3));
                menu.push((Kind::PauseLeader, 2));
            }
        }
        if !v.partition {
            if leader.is_some() {
                menu.push((Kind::IsolateLeader, 2));
            }
            menu.push((Kind::Split, 2));
            menu.push((Kind::OneWay, 2));
        }
        if !v.loss {
            menu.push((Kind::Loss, 2));
        }
        if self.power_loss {
            menu.push((Kind::PowerLoss, 1));
        }
        if !self.only.is_empty() {
            menu.retain(|(k, _)| self.only.contains(k));
        }
        let total: u64 = menu.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return None;
        }
        let mut r = self.below(total);
        let kind = menu
            .iter()
            .find(|(_, w)| {
                let hit = r < *w;
                r = r.saturating_sub(*w);
                hit
            })
            .map(|(k, _)| *k)?;
        let followers: Vec<u64> = up.iter().copied().filter(|&i| Some(i) != leader).collect();
        Some(match kind {
            Kind::Kill => Fault::Kill {
                node: self.pick(&followers)?,
                leader: false,
                ms: self.between(100, 3000),
            },
            Kind::KillLeader => Fault::Kill {
                node: leader?,
                leader: true,
                ms: self.between(100, 3000),
            },
            Kind::PauseLeader => Fault::Pause {
                node: leader?,
                ms: self.between(1500, 4000),
            },
            Kind::IsolateLeader => Fault::Isolate {
                node: leader?,
                ms: self.between(1000, 5000),
            },
            Kind::Split => Fault::Split {
                side: self.sample(&all, (v.nodes as usize) / 2),
                ms: self.between(1000, 5000),
            },
            Kind::OneWay => {
                let from = match leader {
                    Some(l) if self.below(2) == 0 => l,
                    _ => self.pick(&all)?,
                };
                let others: Vec<u64> = all.iter().copied().filter(|&i| i != from).collect();
                let k = 1 + self.below(2) as usize;
                Fault::OneWay {
                    from,
                    deaf: self.sample(&others, k),
                    ms: self.between(1000, 5000),
                }
            }
            Kind::Loss => {
                let k = 1 + self.below(v.nodes) as usize;
                Fault::Loss {
                    nodes: self.sample(&all, k),
                    permille: self.between(20, 300) as u32,
                    ms: self.between(2000, 6000),
                }
            }
            Kind::PowerLoss => {
                let majority = v.nodes as usize / 2 + 1;
                let mut nodes = if self.below(2) == 0 {
                    all.clone()
                } else {
                    self.sample(&all, majority)
                };
                if let Some(l) = leader.filter(|l| !nodes.contains(l)) {
                    nodes[0] = l;
                    nodes.sort_unstable();
                }
                Fault::PowerLoss {
                    nodes,
                    keep_permille: self.below(1000) as u32,
                    ms: self.between(300, 2000),
                    late: leader,
                    late_ms: self.between(2000, 4000),
                }
            }
        })
    }
}

/// Per-node nft rules: (deaf to, mute to, loss permille), index = id - 1.
pub type Rules = Vec<(Vec<u64>, Vec<u64>, u32)>;

/// The rules that realize `partition` and `loss` on `n` nodes.
pub fn rules(n: u64, partition: Option<&Fault>, loss: Option<&Fault>) -> Rules {
    let mut r: Rules = vec![(Vec::new(), Vec::new(), 0); n as usize];
    let mut cut = |a: u64, b: u64| {
        // a and b stop hearing each other, both ways.
        for (x, y) in [(a, b), (b, a)] {
            let e = &mut r[x as usize - 1];
            e.0.push(y);
            e.1.push(y);
        }
    };
    match partition {
        Some(Fault::Isolate { node, .. }) => {
            for o in (1..=n).filter(|o| o != node) {
                cut(*node, o);
            }
        }
        Some(Fault::Split { side, .. }) => {
            for &a in side {
                for b in (1..=n).filter(|b| !side.contains(b)) {
                    cut(a, b);
                }
            }
        }
        Some(Fault::OneWay { from, deaf, .. }) => {
            for &d in deaf {
                r[d as usize - 1].0.push(*from);
            }
        }
        _ => {}
    }
    if let Some(Fault::Loss {
        nodes, permille, ..
    }) = loss
    {
        for &i in nodes {
            r[i as usize - 1].2 = *permille;
        }
    }
    for e in &mut r {
        e.0.sort_unstable();
        e.0.dedup();
        e.1.sort_unstable();
        e.1.dedup();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, steps: usize) -> Vec<Fault> {
        let mut p = Planner::new(seed, true);
        let view = View {
            nodes: 5,
            leader: Some(5),
            ..View::default()
        };
        (0..steps).filter_map(|_| p.next(&view)).collect()
    }

    #[test]
    fn one_seed_draws_one_sequence_and_every_kind() {
        let a = draw(7, 300);
        assert_eq!(a, draw(7, 300));
        assert_ne!(a, draw(8, 300));
        for k in Kind::ALL {
            assert!(a.iter().any(|f| f.kind() == k), "{k:?} never drawn");
        }
    }

    #[test]
    fn bounds_are_respected() {
        let mut p = Planner::new(1, true);
        let view = View {
            nodes: 5,
            leader: Some(3),
            down: [1, 3].into_iter().collect(),
            partition: true,
            loss: false,
        };
        for _ in 0..200 {
            let f = p.next(&view).unwrap();
            assert!(matches!(f.kind(), Kind::Loss | Kind::PowerLoss), "{f}");
        }
        let full = View { loss: true, ..view };
        let mut no_power = Planner::new(1, false);
        assert_eq!(no_power.next(&full), None);
    }

    #[test]
    fn only_and_gap_restrict_the_plan() {
        let mut p = Planner::new(3, true)
            .only(&[Kind::PowerLoss])
            .gap((4000, 6000));
        let view = View {
            nodes: 5,
            leader: Some(2),
            ..View::default()
        };
        for _ in 0..100 {
            assert_eq!(p.next(&view).unwrap().kind(), Kind::PowerLoss);
            assert!((4000..=6000).contains(&p.gap_ms()));
        }
        let mut none = Planner::new(3, false).only(&[Kind::PowerLoss]);
        assert_eq!(none.next(&view), None);
    }

    #[test]
    fn rules_cut_both_ways_or_one_way() {
        let split = Fault::Split {
            side: vec![1, 2],
            ms: 1,
        };
        let r = rules(5, Some(&split), None);
        assert_eq!(r[0], (vec![3, 4, 5], vec![3, 4, 5], 0));
        assert_eq!(r[4], (vec![1, 2], vec![1, 2], 0));
        let one = Fault::OneWay {
            from: 5,
            deaf: vec![1, 2],
            ms: 1,
        };
        let loss = Fault::Loss {
            nodes: vec![2],
            permille: 100,
            ms: 1,
        };
        let r = rules(5, Some(&one), Some(&loss));
        assert_eq!(r[0], (vec![5], vec![], 0));
        assert_eq!(r[1], (vec![5], vec![], 100));
        assert_eq!(r[4], (vec![], vec![], 0));
    }
}
