//! The exactly-once table: msg_id → seq of every chat entry in the log, kept
//! as 128-bit fingerprints instead of the ids themselves, so its size does
//! not depend on how long clients make their ids (24 bytes per entry).
//!
//! A fingerprint is SHA-256 of the msg_id, truncated to 128 bits. It must be
//! collision resistant, not merely well spread: a client that could craft an
//! id with the fingerprint of another client's id would make that message be
//! acknowledged as a duplicate of its own and silently dropped. Truncated
//! SHA-256 makes both a second preimage (2^128 work) and a collision among
//! the ids in a log (2^64) out of reach. No hashing with OS-seeded keys: the
//! table must behave the same on every run (the simulator's determinism).
//!
//! Layout, a two-level LSM: `big`, a Vec sorted by fingerprint, and `small`, a
//! BTreeMap of recent inserts that is merged into `big` (in place, from the
//! back) once it holds more than 1/16 of `big`, so an insert costs O(log n)
//! plus an amortized 16 element moves. Invariants: a fingerprint appears at
//! most once in `big` and at most once in `small`; where it is in both, the
//! `small` value is the newer one and wins.

use crate::types::Seq;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The 128-bit fingerprint of a msg_id, as two words (not `u128`: its 16-byte
/// alignment would pad every slot of `big` from 24 to 32 bytes).
pub(crate) type Fingerprint = (u64, u64);

/// SHA-256 of `msg_id`, truncated to its first 128 bits.
pub(crate) fn fingerprint(msg_id: &str) -> Fingerprint {
    let d = Sha256::digest(msg_id.as_bytes());
    let hi = u64::from_be_bytes(d[0..8].try_into().expect("8 bytes"));
    let lo = u64::from_be_bytes(d[8..16].try_into().expect("8 bytes"));
    (hi, lo)
}

/// Fewest entries `small` may hold before a merge (keeps merges rare while
/// `big` is small).
const SMALL_MIN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    fp: Fingerprint,
    seq: Seq,
}

/// Fingerprint → seq, for every chat entry of the log.
#[derive(Debug, Default)]
pub(crate) struct DedupIndex {
    big: Vec<Slot>,
    small: BTreeMap<Fingerprint, Seq>,
}

impl DedupIndex {
    pub fn get(&self, fp: Fingerprint) -> Option<Seq> {
        if let Some(&s) = self.small.get(&fp) {
            return Some(s);
        }
        self.big
            .binary_search_by(|s| s.fp.cmp(&fp))
            .ok()
            .map(|i| self.big[i].seq)
    }

    /// Maps `fp` to `seq` (a later insert of the same fingerprint wins).
    pub fn insert(&mut self, fp: Fingerprint, seq: Seq) {
        self.small.insert(fp, seq);
        if self.small.len() > SMALL_MIN.max(self.big.len() / 16) {
            self.merge();
        }
    }

    /// Forgets every mapping to a seq at or after `from` (a truncated suffix;
    /// rare, so a linear pass is fine).
    pub fn remove_from(&mut self, from: Seq) {
        self.small.retain(|_, s| *s < from);
        self.big.retain(|s| s.seq < from);
    }

    /// Number of mappings (for tests and benches).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.big.len() + self.small.len()
    }

    /// Moves `small` into `big`, keeping `big` sorted, without a second copy
    /// of `big`: overwrite fingerprints already present, then merge the rest
    /// from the back into the grown vector.
    fn merge(&mut self) {
        let small = std::mem::take(&mut self.small);
        let mut fresh: Vec<Slot> = Vec::with_capacity(small.len());
        for (fp, seq) in small {
            match self.big.binary_search_by(|s| s.fp.cmp(&fp)) {
                Ok(i) => self.big[i].seq = seq,
                Err(_) => fresh.push(Slot { fp, seq }),
            }
        }
        let old = self.big.len();
        let filler = Slot {
            fp: (0, 0),
            seq: Seq(0),
        };
        self.big.resize(old + fresh.len(), filler);
        // Merge from the back: the slot written (i + j - 1 before the step)
        // is at or after i while fresh elements remain, so the unread part
        // of `big` (0..i) is never overwritten.
        let (mut i, mut j, mut w) = (old, fresh.len(), self.big.len());
        while j > 0 {
            w -= 1;
            if i > 0 && self.big[i - 1].fp > fresh[j - 1].fp {
                self.big[w] = self.big[i - 1];
                i -= 1;
            } else {
                self.big[w] = fresh[j - 1];
                j -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u64) -> Fingerprint {
        fingerprint(&format!("m{n}"))
    }

    #[test]
    fn fingerprints_are_truncated_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...
        assert_eq!(
            fingerprint("abc"),
            (0xba78_16bf_8f01_cfea, 0x4141_40de_5dae_2223)
        );
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }

    #[test]
    fn lookups_survive_many_merges() {
        let mut ix = DedupIndex::default();
        let n = 20_000;
        for k in 1..=n {
            ix.insert(fp(k), Seq(k));
            assert_eq!(ix.get(fp(k)), Some(Seq(k)));
        }
        assert_eq!(ix.len(), n as usize);
        assert!(ix.big.windows(2).all(|w| w[0].fp < w[1].fp), "big sorted");
        for k in (1..=n).step_by(7) {
            assert_eq!(ix.get(fp(k)), Some(Seq(k)), "m{k}");
        }
        assert_eq!(ix.get(fp(n + 1)), None);
    }

    #[test]
    fn a_later_insert_wins_also_across_a_merge() {
        let mut ix = DedupIndex::default();
        ix.insert(fp(1), Seq(1));
        for k in 2..=3000 {
            ix.insert(fp(k), Seq(k));
        }
        assert!(!ix.big.is_empty(), "merged at least once");
        ix.insert(fp(1), Seq(5000));
        assert_eq!(ix.get(fp(1)), Some(Seq(5000)));
        for k in 3001..=6000 {
            ix.insert(fp(k), Seq(k));
        }
        assert_eq!(ix.get(fp(1)), Some(Seq(5000)));
        assert_eq!(ix.len(), 6000);
    }

    #[test]
    fn removal_from_a_seq_forgets_the_suffix_in_both_levels() {
        let mut ix = DedupIndex::default();
        for k in 1..=5000 {
            ix.insert(fp(k), Seq(k));
        }
        ix.remove_from(Seq(1001));
        assert_eq!(ix.len(), 1000);
        assert_eq!(ix.get(fp(1000)), Some(Seq(1000)));
        assert_eq!(ix.get(fp(1001)), None);
        assert_eq!(ix.get(fp(5000)), None);
        ix.insert(fp(4000), Seq(1001));
        assert_eq!(ix.get(fp(4000)), Some(Seq(1001)));
    }
}
