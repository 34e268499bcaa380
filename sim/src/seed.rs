//! Seed derivation: one master seed, independent random streams.
//!
//! Every source of randomness in a run (network latency and loss, the client
//! workload, fault cuts, the swarm's options and schedule, and each node
//! incarnation's jitter) is its own ChaCha8 stream derived from the master seed
//! by a fixed tag. Keeping streams apart means a change in how often one
//! consumer draws (say, one more message on the network) does not reshuffle the
//! others, so a seed keeps its meaning as the code evolves.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// The consumers of randomness, each with its own stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Latency, loss, duplication, reordering.
    Network,
    /// Client message timing, rooms, node choice on retry.
    Workload,
    /// Where a crash lands inside an action batch.
    Faults,
    /// The swarm's per-seed options (cluster size, timings, hostility).
    Options,
    /// The swarm's fault schedule (crash, restart, partition, heal).
    Schedule,
    /// How long each fsync takes (asynchronous disks).
    Disk,
    /// Node `index`'s timer jitter in incarnation `incarnation`.
    Node { index: usize, incarnation: u32 },
}

/// SplitMix64 finaliser: a bijective scramble, so nearby inputs give unrelated outputs.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The u64 seed of `stream` under `master`.
pub fn derive(master: u64, stream: Stream) -> u64 {
    let tag = match stream {
        Stream::Network => 1,
        Stream::Workload => 2,
        Stream::Faults => 3,
        Stream::Options => 4,
        Stream::Schedule => 5,
        Stream::Disk => 6,
        Stream::Node { index, incarnation } => {
            0x1000 + ((index as u64) << 32) + u64::from(incarnation)
        }
    };
    splitmix64(master ^ splitmix64(tag))
}

/// A ChaCha8 generator for `stream` under `master`.
pub fn rng(master: u64, stream: Stream) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(master, stream))
}

/// Uniform in `0..n` (`n > 0`). The modulo bias is irrelevant at these sizes.
pub fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    debug_assert!(n > 0);
    rng.next_u64() % n
}

/// Uniform in `lo..=hi`.
pub fn between(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    lo + below(rng, hi.saturating_sub(lo) + 1)
}

/// True with probability `ppm` parts per million.
pub fn chance(rng: &mut ChaCha8Rng, ppm: u32) -> bool {
    ppm > 0 && (rng.next_u32() % 1_000_000) < ppm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_distinct_and_stable() {
        let a = derive(7, Stream::Network);
        let b = derive(7, Stream::Workload);
        let c = derive(
            7,
            Stream::Node {
                index: 0,
                incarnation: 0,
            },
        );
        let d = derive(
            7,
            Stream::Node {
                index: 0,
                incarnation: 1,
            },
        );
        assert!(a != b && b != c && c != d);
        assert_eq!(a, derive(7, Stream::Network));
    }
}
