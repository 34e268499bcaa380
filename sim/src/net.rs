//! The simulated network: one FIFO stream per directed link (TCP), seeded
//! latency, partitions and an optional hostile mode.
//!
//! Invariants:
//! - Without hostility a link is FIFO: a message never overtakes an earlier one
//!   on the same directed link (its delivery time is clamped to the previous one;
//!   the event queue breaks ties by insertion order).
//! - A cut (partition) drops what is in flight: every link carries an epoch,
//!   bumped when it is cut, and a message is delivered only if its link is open
//!   and still in the epoch it was sent in (a broken TCP connection loses its
//!   buffers; healing opens a new connection).
//! - Hostile mode (loss, duplication, reordering) is a per-run option the
//!   liveness phase can switch off.

use crate::seed::{between, chance, rng, Stream};
use rand_chacha::ChaCha8Rng;

/// Network parameters of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetOptions {
    /// Fixed one-way latency.
    pub latency_ms: u64,
    /// Extra uniform latency in `0..=jitter_ms` per message.
    pub jitter_ms: u64,
    /// Hostile mode: chance a message is lost, parts per million.
    pub loss_ppm: u32,
    /// Hostile mode: chance a message is delivered twice.
    pub dup_ppm: u32,
    /// Hostile mode: chance a message ignores FIFO order (arrives late).
    pub reorder_ppm: u32,
    /// Feed `PeerDown` to nodes when a peer crashes and `PeerUp` when it
    /// restarts or a partition heals (models TCP RST and reconnects); without
    /// it, failures are found by heartbeat timeouts only.
    pub peer_hints: bool,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            latency_ms: 1,
            jitter_ms: 2,
            loss_ppm: 0,
            dup_ppm: 0,
            reorder_ppm: 0,
            peer_hints: true,
        }
    }
}

impl NetOptions {
    pub fn hostile(&self) -> bool {
        self.loss_ppm > 0 || self.dup_ppm > 0 || self.reorder_ppm > 0
    }
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Not delivered (partitioned link or hostile loss).
    Dropped,
    /// Delivered at `at_ms` (and again at `dup_ms` if duplicated), if the link
    /// is still in `epoch` then.
    Deliver {
        at_ms: u64,
        dup_ms: Option<u64>,
        epoch: u32,
    },
}

/// Links between `n` nodes, indexed `from * n + to`.
#[derive(Debug)]
pub struct Network {
    n: usize,
    opts: NetOptions,
    hostile_on: bool,
    cut: Vec<bool>,
    epoch: Vec<u32>,
    fifo_ms: Vec<u64>,
    rng: ChaCha8Rng,
}

impl Network {
    pub fn new(n: usize, opts: NetOptions, master_seed: u64) -> Network {
        Network {
            n,
            hostile_on: opts.hostile(),
            opts,
            cut: vec![false; n * n],
            epoch: vec![0; n * n],
            fifo_ms: vec![0; n * n],
            rng: rng(master_seed, Stream::Network),
        }
    }

    pub fn options(&self) -> &NetOptions {
        &self.opts
    }

    /// Switches hostility off (liveness phase) or back to the run's option.
    pub fn set_hostile(&mut self, on: bool) {
        self.hostile_on = on && self.opts.hostile();
    }

    fn link(&self, from: usize, to: usize) -> usize {
        from * self.n + to
    }

    /// One sampled one-way latency.
    pub fn latency(&mut self) -> u64 {
        self.opts.latency_ms + between(&mut self.rng, 0, self.opts.jitter_ms)
    }

    /// Decides the fate of a message sent now on `from -> to`.
    pub fn route(&mut self, from: usize, to: usize, now_ms: u64) -> Fate {
        let l = self.link(from, to);
        if self.cut[l] {
            return Fate::Dropped;
        }
        if self.hostile_on && chance(&mut self.rng, self.opts.loss_ppm) {
            return Fate::Dropped;
        }
        let lat = self.latency();
        let mut at_ms = now_ms + lat;
        if self.hostile_on && chance(&mut self.rng, self.opts.reorder_ppm) {
            // Arrives late and out of order; later messages may overtake it.
            at_ms += between(&mut self.rng, 1, 4 * (lat + self.opts.jitter_ms) + 1);
        } else {
            at_ms = at_ms.max(self.fifo_ms[l]);
            self.fifo_ms[l] = at_ms;
        }
        let dup_ms = (self.hostile_on && chance(&mut self.rng, self.opts.dup_ppm))
            .then(|| at_ms + between(&mut self.rng, 0, 2 * lat + 1));
        Fate::Deliver {
            at_ms,
            dup_ms,
            epoch: self.epoch[l],
        }
    }

    /// True if a message sent in `epoch` on `from -> to` may still arrive.
    pub fn open(&self, from: usize, to: usize, epoch: u32) -> bool {
        let l = self.link(from, to);
        !self.cut[l] && self.epoch[l] == epoch
    }

    /// True if `from -> to` is currently not cut.
    pub fn connected(&self, from: usize, to: usize) -> bool {
        !self.cut[self.link(from, to)]
    }

    /// Cuts `from -> to`, dropping what is in flight on it.
    pub fn cut(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        let l = self.link(from, to);
        if !self.cut[l] {
            self.cut[l] = true;
            self.epoch[l] += 1;
        }
    }

    /// Opens every link; returns the directed links that were cut.
    pub fn heal(&mut self) -> Vec<(usize, usize)> {
        let mut healed = Vec::new();
        for from in 0..self.n {
            for to in 0..self.n {
                let l = self.link(from, to);
                if self.cut[l] {
                    self.cut[l] = false;
                    healed.push((from, to));
                }
            }
        }
        healed
    }

    pub fn any_cut(&self) -> bool {
        self.cut.iter().any(|&c| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_cuts() {
        let mut net = Network::new(2, NetOptions::default(), 1);
        let mut last = 0;
        for t in 0..50 {
            match net.route(0, 1, t / 10) {
                Fate::Deliver { at_ms, epoch, .. } => {
                    assert!(at_ms >= last, "FIFO per link");
                    last = at_ms;
                    assert_eq!(epoch, 0);
                }
                Fate::Dropped => panic!("no loss without hostility"),
            }
        }
        net.cut(0, 1);
        assert!(!net.open(0, 1, 0));
        assert!(net.open(1, 0, 0), "one-way cut");
        assert_eq!(net.route(0, 1, 9), Fate::Dropped);
        assert_eq!(net.heal(), vec![(0, 1)]);
        assert!(
            !net.open(0, 1, 0),
            "in-flight messages of a cut link stay lost"
        );
        assert!(net.open(0, 1, 1));
    }
}
