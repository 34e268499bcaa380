//! The fault plan: which fault comes next, drawn from one seeded ChaCha8
//! stream, given what is already broken. Pure (no I/O, no clock), so a seed
//! always draws the same sequence of choices for the same sequence of views;
//! real processes still make each run's timing differ.
//!
//! Bounds kept here: at most two nodes crashed or paused at once by ordinary
//! faults ([`MAX_DOWN`]); network faults run concurrently with process
//! faults and with each other, at most [`MAX_PARTITIONS`] partitions (one
//! more if it isolates the leader), [`MAX_LOSS`] packet-loss episodes, [`MAX_DELAY`] delays and [`MAX_STALL`]
//! stalls at a time; every fault heals after a bounded duration
//! (`Fault::duration_ms`), all of them within about a second, so that many
//! faults fit in a run and the cluster still makes progress between them.
//! While no leader is known (an election is on), only one fault that slows
//! the cluster is drawn while none does, plus one that cuts or crashes when
//! nothing else does: drawn regardless, faults kept the cluster leaderless
//! for whole runs. Among the kinds that fit, the kinds drawn least so far
//! are favoured, so that the ones that need a leader get their share.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::fmt;

/// The kinds of fault, in report order (`--faults` names them in kebab case:
/// kill, kill-leader, pause-leader, isolate-leader, split, one-way, loss,
/// delay, stall, power-loss).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Kill,
    KillLeader,
    PauseLeader,
    IsolateLeader,
    Split,
    OneWay,
    Loss,
    Delay,
    Stall,
    PowerLoss,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Kill,
        Kind::KillLeader,
        Kind::PauseLeader,
        Kind::IsolateLeader,
        Kind::Split,
        Kind::OneWay,
        Kind::Loss,
        Kind::Delay,
        Kind::Stall,
        Kind::PowerLoss,
    ];

    /// Made by the proxy (`proxy.rs`), not by nft or signals.
    pub fn needs_proxy(self) -> bool {
        matches!(self, Kind::Delay | Kind::Stall)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "sigkill+restart (follower)",
            Kind::KillLeader => "sigkill+restart (leader)",
            Kind::PauseLeader => "sigstop/sigcont (leader)",
            Kind::IsolateLeader => "partition: isolate leader",
            Kind::Split => "partition: split 2|3",
            Kind::OneWay => "partition: one-way drop",
            Kind::Loss => "packet loss",
            Kind::Delay => "delay: slow links (proxy)",
            Kind::Stall => "stall: frozen links (proxy)",
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
    /// Every chunk of bytes on each directed link `(from, to)` is forwarded
    /// `delay_ms` late by the proxy.
    Delay {
        links: Vec<(u64, u64, u64)>,
        ms: u64,
    },
    /// The proxy holds every byte on each directed link `(from, to)` (the
    /// connections stay up), then releases them in order.
    Stall { links: Vec<(u64, u64)>, ms: u64 },
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
            Fault::Delay { .. } => Kind::Delay,
            Fault::Stall { .. } => Kind::Stall,
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
            | Fault::Delay { ms, .. }
            | Fault::Stall { ms, .. }
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
            Fault::Delay { links, ms } => {
                let l: Vec<String> = links
                    .iter()
                    .map(|(a, b, d)| format!("n{a}->n{b} +{d} ms"))
                    .collect();
                write!(f, "delay {} for {ms} ms", l.join(", "))
            }
            Fault::Stall { links, ms } => {
                let l: Vec<String> = links.iter().map(|(a, b)| format!("n{a}->n{b}")).collect();
                write!(f, "stall {} for {ms} ms", l.join(", "))
            }
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
    /// Network faults in force, by kind.
    pub partitions: usize,
    pub losses: usize,
    pub delays: usize,
    pub stalls: usize,
}

/// Default bounds of the gap between two injections (ms).
pub const DEFAULT_GAP_MS: (u64, u64) = (20, 80);

/// Most nodes crashed or paused at once (power losses aside).
pub const MAX_DOWN: usize = 2;
/// Most partitions (isolate, split, one-way) in force at once, before an
/// isolation of the leader (which may be one more); their cuts add up.
pub const MAX_PARTITIONS: usize = 2;
/// Most packet-loss episodes at once.
pub const MAX_LOSS: usize = 2;
/// Most delay faults at once (a link under two takes the larger delay).
pub const MAX_DELAY: usize = 2;
/// Most stall faults at once.
pub const MAX_STALL: usize = 3;
// How long faults last (ms, drawn uniformly from each range). Short, so
// that many fit in a run and each overlaps only a few others: with about
// six injections a second, longer faults kept so many links cut, lossy or
// slow at once that elections took most of the run, and the kinds that
// need a leader starved.
/// A short pause or isolation of the leader: shorter than the chaos
/// cluster's leader timeout (`procs::LEADER_TIMEOUT_MS`), a hiccup.
pub const SHORT_MS: (u64, u64) = (50, 250);
/// A long one: past the leader timeout, so the others elect.
pub const LONG_MS: (u64, u64) = (550, 900);
/// A crashed node's downtime before its restart.
pub const RESTART_MS: (u64, u64) = (50, 400);
/// Power loss: the nodes' downtime, and how much later the old leader's
/// machine comes back.
pub const POWER_RESTART_MS: (u64, u64) = (30, 200);
pub const POWER_LATE_MS: (u64, u64) = (500, 1000);
/// Split and one-way partitions.
pub const CUT_MS: (u64, u64) = (200, 800);
/// Packet loss episodes, and the share of packets dropped (‰).
pub const LOSS_MS: (u64, u64) = (300, 1200);
pub const LOSS_PERMILLE: (u64, u64) = (20, 200);
/// Delays of links, and the delay added to a link.
pub const DELAY_FOR_MS: (u64, u64) = (300, 1200);
pub const DELAY_MS: (u64, u64) = (5, 150);
/// Stalls of links.
pub const STALL_MS: (u64, u64) = (100, 600);

/// Draws faults from one seed.
#[derive(Debug)]
pub struct Planner {
    rng: ChaCha8Rng,
    power_loss: bool,
    /// Also draw delays and stalls (the proxy runs).
    proxy: bool,
    /// Only these kinds are drawn (all if empty).
    only: Vec<Kind>,
    /// Bounds of the gap between injections (ms).
    gap: (u64, u64),
    /// Faults drawn so far, by kind (index in [`Kind::ALL`]).
    drawn: [u64; Kind::ALL.len()],
}

impl Planner {
    /// `power_loss`: also draw power failures (the nodes run under strace).
    pub fn new(seed: u64, power_loss: bool) -> Planner {
        Planner {
            rng: ChaCha8Rng::seed_from_u64(seed),
            power_loss,
            proxy: false,
            only: Vec::new(),
            gap: DEFAULT_GAP_MS,
            drawn: [0; Kind::ALL.len()],
        }
    }

    /// Also draws delays and stalls (the peer links run through the proxy).
    pub fn proxy(mut self, on: bool) -> Planner {
        self.proxy = on;
        self
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

    /// A duration from `short` three times in four, else from `long`.
    fn short_or_long(&mut self, short: (u64, u64), long: (u64, u64)) -> u64 {
        let (lo, hi) = if self.below(4) != 0 { short } else { long };
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

    /// Directed links for a delay or a stall: half the time every link out
    /// of one node (the leader when there is one, half of those times),
    /// else one to three random directed links.
    fn links(&mut self, all: &[u64], leader: Option<u64>) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if self.below(2) == 0 {
            let node = match leader {
                Some(l) if self.below(2) == 0 => l,
                _ => self.pick(all).unwrap_or(1),
            };
            out.extend(all.iter().filter(|&&o| o != node).map(|&o| (node, o)));
        } else {
            let pairs: Vec<(u64, u64)> = all
                .iter()
                .flat_map(|&a| all.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
                .collect();
            let k = 1 + self.below(3);
            for _ in 0..k {
                let i = self.below(pairs.len() as u64) as usize;
                if let Some(&p) = pairs.get(i) {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
            out.sort_unstable();
        }
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
        // Which kinds fit what is broken now. Kinds that need a leader, or
        // a mostly whole cluster, fit less often than loss and delay (which
        // fit nearly always): the draw below favours the kinds drawn least
        // so far, so that every kind gets its share of the run.
        let mut menu: Vec<Kind> = Vec::new();
        if can_down {
            menu.push(Kind::Kill);
            if leader.is_some() {
                menu.push(Kind::KillLeader);
                menu.push(Kind::PauseLeader);
            }
        }
        if v.partitions < MAX_PARTITIONS {
            menu.push(Kind::Split);
            menu.push(Kind::OneWay);
        }
        // Isolating the leader may come on top of two other partitions: it
        // needs a leader, which is the scarce moment of a dense run.
        if v.partitions <= MAX_PARTITIONS && leader.is_some() {
            menu.push(Kind::IsolateLeader);
        }
        if v.losses < MAX_LOSS {
            menu.push(Kind::Loss);
        }
        if self.proxy && v.delays < MAX_DELAY {
            menu.push(Kind::Delay);
        }
        if self.proxy && v.stalls < MAX_STALL {
            menu.push(Kind::Stall);
        }
        // At most one node down besides: back to back, power losses would
        // keep a majority down and the cluster leaderless most of the time.
        if self.power_loss && v.down.len() <= 1 {
            menu.push(Kind::PowerLoss);
        }
        // Without a leader the cluster is electing: one fault that slows
        // it down while no other does, and one that cuts or crashes only
        // while nothing else does (back to back, they kept it leaderless
        // for whole runs: lost packets wait for TCP's retransmission; with
        // two cuts or crashes at a time a leader was known 13% of a run
        // instead of 27%).
        if leader.is_none() {
            let cuts = v.down.len() + v.partitions + v.stalls;
            let slow = v.losses + v.delays > 0;
            menu.retain(|k| match k {
                Kind::Delay | Kind::Loss => !slow,
                Kind::Kill | Kind::Split | Kind::OneWay | Kind::Stall | Kind::PowerLoss => {
                    cuts == 0
                }
                _ => false,
            });
        }
        if !self.only.is_empty() {
            menu.retain(|k| self.only.contains(k));
        }
        // Weights: a kind gets 1 plus 4 per fault it lags behind the kind
        // drawn most, so the scarce kinds are drawn whenever they fit.
        let most = menu
            .iter()
            .map(|k| self.drawn[*k as usize])
            .max()
            .unwrap_or(0);
        // A known leader is the scarce moment of a run (about a quarter of
        // it): the kinds aimed at it weigh double then.
        let menu: Vec<(Kind, u64)> = menu
            .into_iter()
            .map(|k| {
                let w = 1 + 4 * (most - self.drawn[k as usize]);
                let aimed = matches!(
                    k,
                    Kind::KillLeader | Kind::PauseLeader | Kind::IsolateLeader
                );
                (k, if aimed { 2 * w } else { w })
            })
            .collect();
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
        let f = self.make(kind, v, &all, &up, leader)?;
        self.drawn[kind as usize] += 1;
        Some(f)
    }

    /// A fault of `kind` for the view (None if it cannot be made).
    fn make(
        &mut self,
        kind: Kind,
        v: &View,
        all: &[u64],
        up: &[u64],
        leader: Option<u64>,
    ) -> Option<Fault> {
        let followers: Vec<u64> = up.iter().copied().filter(|&i| Some(i) != leader).collect();
        Some(match kind {
            Kind::Delay => {
                let links = self.links(all, leader);
                Fault::Delay {
                    links: links
                        .into_iter()
                        .map(|(a, b)| (a, b, self.between(DELAY_MS.0, DELAY_MS.1)))
                        .collect(),
                    ms: self.between(DELAY_FOR_MS.0, DELAY_FOR_MS.1),
                }
            }
            Kind::Stall => Fault::Stall {
                links: self.links(all, leader),
                ms: self.between(STALL_MS.0, STALL_MS.1),
            },
            Kind::Kill => Fault::Kill {
                node: self.pick(&followers)?,
                leader: false,
                ms: self.between(RESTART_MS.0, RESTART_MS.1),
            },
            Kind::KillLeader => Fault::Kill {
                node: leader?,
                leader: true,
                ms: self.between(RESTART_MS.0, RESTART_MS.1),
            },
            // Three in four pauses and isolations end before the leader
            // timeout (a hiccup: the same leader goes on), the others after
            // it (the others elect; the old leader comes back in an old
            // term): each election costs the run a leaderless second.
            Kind::PauseLeader => Fault::Pause {
                node: leader?,
                ms: self.short_or_long(SHORT_MS, LONG_MS),
            },
            Kind::IsolateLeader => Fault::Isolate {
                node: leader?,
                ms: self.short_or_long(SHORT_MS, LONG_MS),
            },
            Kind::Split => Fault::Split {
                side: self.sample(all, (v.nodes as usize) / 2),
                ms: self.between(CUT_MS.0, CUT_MS.1),
            },
            Kind::OneWay => {
                let from = match leader {
                    Some(l) if self.below(2) == 0 => l,
                    _ => self.pick(all)?,
                };
                let others: Vec<u64> = all.iter().copied().filter(|&i| i != from).collect();
                let k = 1 + self.below(2) as usize;
                Fault::OneWay {
                    from,
                    deaf: self.sample(&others, k),
                    ms: self.between(CUT_MS.0, CUT_MS.1),
                }
            }
            Kind::Loss => {
                let k = 1 + self.below(v.nodes) as usize;
                Fault::Loss {
                    nodes: self.sample(all, k),
                    permille: self.between(LOSS_PERMILLE.0, LOSS_PERMILLE.1) as u32,
                    ms: self.between(LOSS_MS.0, LOSS_MS.1),
                }
            }
            Kind::PowerLoss => {
                let majority = v.nodes as usize / 2 + 1;
                // From the nodes still up (one may be down already).
                let mut nodes = if self.below(2) == 0 {
                    up.to_vec()
                } else {
                    self.sample(up, majority)
                };
                if let Some(l) = leader.filter(|l| !nodes.contains(l)) {
                    nodes[0] = l;
                    nodes.sort_unstable();
                }
                Fault::PowerLoss {
                    nodes,
                    keep_permille: self.below(1000) as u32,
                    ms: self.between(POWER_RESTART_MS.0, POWER_RESTART_MS.1),
                    late: leader,
                    late_ms: self.between(POWER_LATE_MS.0, POWER_LATE_MS.1),
                }
            }
        })
    }
}

/// Per-node nft rules: (deaf to, mute to, loss permille), index = id - 1.
pub type Rules = Vec<(Vec<u64>, Vec<u64>, u32)>;

/// The rules that realize the partitions and loss episodes in `active`
/// (other faults are ignored) on `n` nodes; concurrent ones add up.
pub fn rules<'a>(n: u64, active: impl IntoIterator<Item = &'a Fault>) -> Rules {
    let mut r: Rules = vec![(Vec::new(), Vec::new(), 0); n as usize];
    let mut cut = |a: u64, b: u64| {
        // a and b stop hearing each other, both ways.
        for (x, y) in [(a, b), (b, a)] {
            let e = &mut r[x as usize - 1];
            e.0.push(y);
            e.1.push(y);
        }
    };
    let mut deaf = Vec::new();
    let mut loss = Vec::new();
    for f in active {
        match f {
            Fault::Isolate { node, .. } => {
                for o in (1..=n).filter(|o| o != node) {
                    cut(*node, o);
                }
            }
            Fault::Split { side, .. } => {
                for &a in side {
                    for b in (1..=n).filter(|b| !side.contains(b)) {
                        cut(a, b);
                    }
                }
            }
            Fault::OneWay { from, deaf: d, .. } => {
                deaf.extend(d.iter().map(|&d| (d, *from)));
            }
            Fault::Loss {
                nodes, permille, ..
            } => loss.extend(nodes.iter().map(|&i| (i, *permille))),
            _ => {}
        }
    }
    for (d, from) in deaf {
        r[d as usize - 1].0.push(from);
    }
    for (i, permille) in loss {
        let e = &mut r[i as usize - 1].2;
        *e = (*e).max(permille);
    }
    for e in &mut r {
        e.0.sort_unstable();
        e.0.dedup();
        e.1.sort_unstable();
        e.1.dedup();
    }
    r
}

/// Per directed link (index `(from-1)*n + (to-1)`): the added delay (ms)
/// and whether it is stalled.
pub type LinkPlan = Vec<(u64, bool)>;

/// The proxy state that realizes the delays and stalls in `active` (other
/// faults are ignored); a link under two delays takes the larger.
pub fn links<'a>(n: u64, active: impl IntoIterator<Item = &'a Fault>) -> LinkPlan {
    let mut p: LinkPlan = vec![(0, false); (n * n) as usize];
    let at = |a: u64, b: u64| ((a - 1) * n + (b - 1)) as usize;
    for f in active {
        match f {
            Fault::Delay { links, .. } => {
                for &(a, b, d) in links {
                    let e = &mut p[at(a, b)].0;
                    *e = (*e).max(d);
                }
            }
            Fault::Stall { links, .. } => {
                for &(a, b) in links {
                    p[at(a, b)].1 = true;
                }
            }
            _ => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, steps: usize) -> Vec<Fault> {
        let mut p = Planner::new(seed, true).proxy(true);
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
        let mut p = Planner::new(1, true).proxy(true);
        let view = View {
            nodes: 5,
            leader: Some(2),
            down: [1, 3].into_iter().collect(),
            partitions: MAX_PARTITIONS + 1,
            losses: 0,
            delays: MAX_DELAY,
            stalls: 0,
        };
        for _ in 0..200 {
            let f = p.next(&view).unwrap();
            // Two nodes down: no crash, pause or power loss.
            assert!(matches!(f.kind(), Kind::Loss | Kind::Stall), "{f}");
            if let Fault::Stall { links, ms } = &f {
                assert!(
                    !links.is_empty() && (STALL_MS.0..=STALL_MS.1).contains(ms),
                    "{f}"
                );
                assert!(links.iter().all(|(a, b)| a != b && *a <= 5 && *b <= 5));
            }
        }
        let full = View {
            losses: MAX_LOSS,
            stalls: MAX_STALL,
            ..view
        };
        let mut no_power = Planner::new(1, false).proxy(true);
        assert_eq!(no_power.next(&full), None);
        let mut no_proxy = Planner::new(1, true);
        for _ in 0..200 {
            let v = View {
                nodes: 5,
                ..View::default()
            };
            assert!(!no_proxy.next(&v).unwrap().kind().needs_proxy());
        }
    }

    #[test]
    fn without_a_leader_only_one_cut_or_crash_at_a_time() {
        let mut p = Planner::new(5, true).proxy(true);
        let calm = View {
            nodes: 5,
            ..View::default()
        };
        let busy = View {
            partitions: 1,
            ..calm.clone()
        };
        for _ in 0..300 {
            let k = p.next(&calm).unwrap().kind();
            assert!(
                matches!(
                    k,
                    Kind::Kill
                        | Kind::Split
                        | Kind::OneWay
                        | Kind::Stall
                        | Kind::Delay
                        | Kind::Loss
                        | Kind::PowerLoss
                ),
                "{k:?}"
            );
            let k = p.next(&busy).unwrap().kind();
            assert!(matches!(k, Kind::Delay | Kind::Loss), "{k:?}");
        }
        // One slowing fault at a time, too.
        let slow = View {
            losses: 1,
            ..busy.clone()
        };
        assert_eq!(p.next(&slow), None);
    }

    #[test]
    fn the_kinds_drawn_least_are_favoured() {
        let mut p = Planner::new(9, true).proxy(true);
        let view = View {
            nodes: 5,
            leader: Some(1),
            ..View::default()
        };
        let mut n = [0u64; Kind::ALL.len()];
        for _ in 0..1000 {
            n[p.next(&view).unwrap().kind() as usize] += 1;
        }
        let (lo, hi) = (n.iter().min().unwrap(), n.iter().max().unwrap());
        assert!(hi - lo <= 5, "{n:?}");
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
        let r = rules(5, [&split]);
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
        let r = rules(5, [&one, &loss]);
        assert_eq!(r[0], (vec![5], vec![], 0));
        assert_eq!(r[1], (vec![5], vec![], 100));
        assert_eq!(r[4], (vec![], vec![], 0));
        // Concurrent partitions add up.
        let r = rules(5, [&one, &split]);
        assert_eq!(r[0], (vec![3, 4, 5], vec![3, 4, 5], 0));
        assert_eq!(r[2], (vec![1, 2], vec![1, 2], 0));
    }

    #[test]
    fn links_take_the_larger_delay_and_every_stall() {
        let a = Fault::Delay {
            links: vec![(1, 2, 30), (2, 1, 5)],
            ms: 1,
        };
        let b = Fault::Delay {
            links: vec![(1, 2, 80)],
            ms: 1,
        };
        let st = Fault::Stall {
            links: vec![(3, 1)],
            ms: 1,
        };
        let p = links(3, [&a, &b, &st]);
        assert_eq!(p[1], (80, false)); // 1 -> 2
        assert_eq!(p[3], (5, false)); // 2 -> 1
        assert_eq!(p[6], (0, true)); // 3 -> 1
        assert_eq!(p.iter().filter(|e| **e != (0, false)).count(), 3);
        assert_eq!(a.to_string(), "delay n1->n2 +30 ms, n2->n1 +5 ms for 1 ms");
    }
}
