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
//! Layout, a two-level LSM: `big`, a Vec sorted by fingerprint, and `small`,
//! the recent inserts, merged into `big` (sorted, then in place from the back)
//! once it holds more than 1/16 of `big`, so an insert costs one slot write
//! plus an amortized 16 element moves. `small` (`Recent`) is an
//! open-addressing table: one cache line per lookup where a BTreeMap of
//! 60,000 keys costs five. Its slot is chosen by multiply-shift hashing with
//! a secret odd multiplier (`key`, from the node's rng seed: random in the
//! runtime, seed-derived in the simulator), which is universal: a client
//! cannot choose ids that pile into one slot run, as it could if the slot
//! came from fingerprint bits alone (those it can brute-force). Its slot
//! order never reaches anything observable (a merge sorts), so runs stay
//! deterministic for a given seed. `dir` indexes `big` by the top
//! bits of the fingerprint (about 8 slots per bucket, 0.5 byte per entry):
//! fingerprints are uniform, so a lookup reads one directory entry and a few
//! adjacent slots instead of the 20 scattered ones of a binary search over a
//! 24 MB table. Ids crafted to share a bucket only cost a binary search of it.
//! Invariants: a fingerprint appears at most once in `big` and at most once
//! in `small`; where it is in both, the `small` value is the newer one and
//! wins (in lookups, and in the merge, which drops the older copy); `dir`
//! describes `big` (rebuilt whenever `big` changes shape).
//!
//! The window (bounded exactly-once): the table remembers the ids of the
//! newest `window_ids` chat entries and of every chat entry this node
//! appended less than `window_ms` ago (by the node's own `Instant`, so a
//! wall-clock step cannot shrink it, and a restart, which replays the log
//! at one instant, only lengthens it); it may forget an id once both are
//! past, i.e. whichever bound is reached first. Forgotten ids are those at or
//! below `floor`: lookups ignore them at once, and they leave memory in
//! bulk once they are an eighth of the table (`purge`), so memory is about
//! 24 bytes per id in the window, whatever the length of the log. The window
//! moves by blocks of ids (`Block`, about 1/64 of `window_ids` each): it
//! remembers up to a block more than the bounds, never less. A retry whose
//! original is past the window is a new message (see PROTOCOL.md).

use crate::types::{Instant, Seq};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// The 128-bit fingerprint of a msg_id, as two words (not `u128`: its 16-byte
/// alignment would pad every slot of `big` from 24 to 32 bytes).
pub type Fingerprint = (u64, u64);

/// SHA-256 of `msg_id`, truncated to its first 128 bits.
pub fn fingerprint(msg_id: &str) -> Fingerprint {
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

/// Default bounds of the window: 10,000,000 ids or 24 hours.
pub const DEFAULT_WINDOW_IDS: u64 = 10_000_000;
pub const DEFAULT_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// Consecutive ids of the window, forgotten together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    /// The seq of its last id.
    last: Seq,
    /// Its ids (a lower bound after a truncation cut it).
    ids: u64,
    /// When its newest id was inserted.
    newest: Instant,
}

/// Which ids the table must remember (see the module docs).
#[derive(Debug)]
struct Window {
    ids: u64,
    ms: u64,
    /// Ids per block.
    block_ids: u64,
    blocks: VecDeque<Block>,
    /// Ids in `blocks`.
    total: u64,
}

impl Default for Window {
    fn default() -> Window {
        Window::new(DEFAULT_WINDOW_IDS, DEFAULT_WINDOW_MS)
    }
}

impl Window {
    fn new(ids: u64, ms: u64) -> Window {
        Window {
            ids: ids.max(1),
            ms,
            block_ids: (ids / 64).clamp(1, 1 << 16),
            blocks: VecDeque::new(),
            total: 0,
        }
    }
}

/// Fingerprint → seq, for every chat entry of the log within the window.
#[derive(Debug, Default)]
pub(crate) struct DedupIndex {
    big: Vec<Slot>,
    small: Recent,
    /// `dir[b]..dir[b + 1]`: the slots of `big` whose fingerprint's top
    /// `dir_bits` bits are `b` (empty and 0: search all of `big`).
    dir: Vec<u32>,
    dir_bits: u32,
    window: Window,
    /// Mappings to a seq at or below it are forgotten.
    floor: Seq,
    /// Forgotten ids still in memory (about: a block's count is a bound).
    expired: u64,
    /// False until the first `tick`.
    clock_started: bool,
}

impl DedupIndex {
    pub fn get(&self, fp: Fingerprint) -> Option<Seq> {
        let seq = match self.small.get(fp) {
            Some(s) => Some(s),
            None => self.find(fp).map(|i| self.big[i].seq),
        };
        seq.filter(|&s| s > self.floor)
    }

    /// Sets the window's bounds (ids, milliseconds), forgetting at once
    /// what is past them.
    pub fn set_window(&mut self, ids: u64, ms: u64, now: Instant) {
        let old = std::mem::replace(&mut self.window, Window::new(ids, ms));
        // Re-block what is remembered: the old blocks' bounds stay exact.
        for b in old.blocks {
            self.window.total += b.ids;
            self.window.blocks.push_back(b);
        }
        self.expire(now);
    }

    /// Forgets what the passing of time put past the window. The first
    /// tick dates every id inserted before it (by replay, before the node's
    /// clock ran) at `now`: a restart never makes the window shorter.
    pub fn tick(&mut self, now: Instant) {
        if !self.clock_started {
            self.clock_started = true;
            for b in &mut self.window.blocks {
                b.newest = b.newest.max(now);
            }
        }
        if self
            .window
            .blocks
            .front()
            .is_some_and(|b| now.ms_since(b.newest) >= self.window.ms)
        {
            self.expire(now);
        }
    }

    /// Ids remembered (in the window), for status and tests.
    pub fn window_len(&self) -> u64 {
        self.window.total
    }

    /// Pops the blocks past either bound; purges memory in bulk.
    fn expire(&mut self, now: Instant) {
        let w = &mut self.window;
        while let Some(&b) = w.blocks.front() {
            let by_count = w.total - b.ids >= w.ids;
            let by_time = self.clock_started && now.ms_since(b.newest) >= w.ms;
            if !by_count && !by_time {
                break;
            }
            w.blocks.pop_front();
            w.total -= b.ids;
            self.floor = self.floor.max(b.last);
            self.expired += b.ids;
        }
        if self.expired > (SMALL_MIN as u64).max(self.window.total / 8) {
            self.purge();
        }
    }

    /// Drops every forgotten mapping from memory.
    fn purge(&mut self) {
        let floor = self.floor;
        let recent = self.small.take_sorted();
        for s in recent.into_iter().filter(|s| s.seq > floor) {
            self.small.insert(s.fp, s.seq);
        }
        self.big.retain(|s| s.seq > floor);
        self.big.shrink_to(self.big.len() + self.big.len() / 16);
        self.index_big();
        self.expired = 0;
    }

    /// The slot of `fp` in `big`.
    fn find(&self, fp: Fingerprint) -> Option<usize> {
        let (lo, hi) = if self.dir_bits == 0 {
            (0, self.big.len())
        } else {
            let b = (fp.0 >> (64 - self.dir_bits)) as usize;
            (self.dir[b] as usize, self.dir[b + 1] as usize)
        };
        let i = self.big[lo..hi].binary_search_by(|s| s.fp.cmp(&fp)).ok()?;
        Some(lo + i)
    }

    /// Rebuilds `dir` for the current `big`: 2^k buckets of about 8 slots.
    fn index_big(&mut self) {
        let n = self.big.len();
        self.dir.clear();
        self.dir_bits = 0;
        if n < 64 || u32::try_from(n).is_err() {
            return;
        }
        let bits = (n / 8).ilog2();
        let mut i = 0;
        for b in 0..(1u64 << bits) {
            while i < n && (self.big[i].fp.0 >> (64 - bits)) < b {
                i += 1;
            }
            self.dir.push(i as u32);
        }
        self.dir.push(n as u32);
        self.dir_bits = bits;
    }

    /// Sets the secret multiplier of `small`'s hashing (re-placing its pairs).
    pub fn set_key(&mut self, seed: u64) {
        let pairs = self.small.take_sorted();
        self.small.key = splitmix64(seed) | 1;
        for s in pairs {
            self.small.insert(s.fp, s.seq);
        }
    }

    /// Maps `fp` to `seq`, the next chat entry, inserted at `now` (a later
    /// insert of the same fingerprint wins).
    pub fn insert(&mut self, fp: Fingerprint, seq: Seq, now: Instant) {
        self.small.insert(fp, seq);
        if self.small.len() > SMALL_MIN.max(self.big.len() / 16) {
            self.merge();
        }
        let w = &mut self.window;
        match w.blocks.back_mut() {
            Some(b) if b.ids < w.block_ids => {
                b.ids += 1;
                b.last = seq;
                b.newest = now;
            }
            _ => w.blocks.push_back(Block {
                last: seq,
                ids: 1,
                newest: now,
            }),
        }
        w.total += 1;
        self.expire(now);
    }

    /// Forgets every mapping to a seq at or after `from` (a truncated suffix;
    /// rare, so a linear pass is fine).
    pub fn remove_from(&mut self, from: Seq) {
        self.small.retain_below(from);
        self.big.retain(|s| s.seq < from);
        self.index_big();
        let w = &mut self.window;
        while let Some(b) = w.blocks.back_mut() {
            if b.last < from {
                break;
            }
            // The block loses at most its seqs from `from` on: what is
            // left is a lower bound of its ids, so the window never
            // forgets early because of a cut.
            let cut = b.last.0 - from.0 + 1;
            let before = b.ids;
            b.ids = b.ids.saturating_sub(cut);
            b.last = Seq(from.0 - 1);
            w.total -= before - b.ids;
            if b.ids == 0 {
                w.blocks.pop_back();
            }
        }
        // New entries take seqs from `from` on again: they must be visible.
        self.floor = self.floor.min(Seq(from.0 - 1));
    }

    /// Adds a snapshot's ids (ordered by seq, all below any id held), dated
    /// `now`. Into an empty table (a restart, an install) in bulk: one sort
    /// and one directory build instead of an insert per id (a 10M-id window
    /// took seconds one by one; BENCHMARKS.md).
    pub fn load(&mut self, ids: &[(u64, u64, Seq)], now: Instant) {
        if !self.big.is_empty() || self.small.len() > 0 {
            for &(hi, lo, seq) in ids {
                self.insert((hi, lo), seq, now);
            }
            return;
        }
        let w = &mut self.window;
        for &(_, _, seq) in ids {
            match w.blocks.back_mut() {
                Some(b) if b.ids < w.block_ids => {
                    b.ids += 1;
                    b.last = seq;
                    b.newest = now;
                }
                _ => w.blocks.push_back(Block {
                    last: seq,
                    ids: 1,
                    newest: now,
                }),
            }
            w.total += 1;
        }
        self.big = ids
            .iter()
            .map(|&(hi, lo, seq)| Slot { fp: (hi, lo), seq })
            .collect();
        // A fingerprint twice (an id committed again past the window): the
        // later mapping wins, as with inserts.
        self.big.sort_unstable_by_key(|s| (s.fp, s.seq));
        self.big.dedup_by(|later, kept| {
            let same = later.fp == kept.fp;
            if same {
                kept.seq = later.seq;
            }
            same
        });
        self.index_big();
        self.expire(now);
    }

    /// Forgets everything (an installed snapshot replaces the log); the
    /// key and the window's bounds stay.
    pub fn clear(&mut self) {
        let (ids, ms) = (self.window.ids, self.window.ms);
        self.small.take_sorted();
        self.big = Vec::new();
        self.dir = Vec::new();
        self.dir_bits = 0;
        self.window = Window::new(ids, ms);
        self.floor = Seq(0);
        self.expired = 0;
    }

    /// The ids in the window mapped to seqs up to `upto`, ordered by seq
    /// (then fingerprint): what a snapshot at `upto` carries.
    pub fn entries_upto(&self, upto: Seq) -> Vec<(u64, u64, Seq)> {
        let keep = |seq: Seq| seq > self.floor && seq <= upto;
        let mut out: Vec<(u64, u64, Seq)> = self
            .small
            .slots
            .iter()
            .filter(|s| s.seq != Seq(0) && keep(s.seq))
            .map(|s| (s.fp.0, s.fp.1, s.seq))
            .collect();
        for s in &self.big {
            // Where a fingerprint is in both, `small` holds the newer mapping.
            if keep(s.seq) && self.small.get(s.fp).is_none() {
                out.push((s.fp.0, s.fp.1, s.seq));
            }
        }
        out.sort_unstable_by_key(|&(hi, lo, seq)| (seq, hi, lo));
        out
    }

    /// Number of mappings (for tests and benches).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.big.len() + self.small.len()
    }

    /// Moves `small` into `big`, keeping it sorted, without a second copy of
    /// `big`: grow it, then merge from the back; where a fingerprint is in
    /// both, the older copy (in `big`) is dropped and the gap closed.
    fn merge(&mut self) {
        let fresh = self.small.take_sorted();
        let old = self.big.len();
        let filler = Slot {
            fp: (0, 0),
            seq: Seq(0),
        };
        self.big.resize(old + fresh.len(), filler);
        // Merge from the back: the slot written (i + j + dropped - 1) is at or
        // after i while fresh elements remain, so the unread part of `big`
        // (0..i) is never overwritten.
        let (mut i, mut j, mut w) = (old, fresh.len(), self.big.len());
        let mut dropped = 0;
        while j > 0 {
            if i > 0 && self.big[i - 1].fp == fresh[j - 1].fp {
                i -= 1;
                dropped += 1;
                continue;
            }
            w -= 1;
            if i > 0 && self.big[i - 1].fp > fresh[j - 1].fp {
                self.big[w] = self.big[i - 1];
                i -= 1;
            } else {
                self.big[w] = fresh[j - 1];
                j -= 1;
            }
        }
        if dropped > 0 {
            // 0..i is in place, then `dropped` stale slots, then the rest.
            self.big.copy_within(i + dropped.., i);
            self.big.truncate(self.big.len() - dropped);
        }
        self.index_big();
    }
}

/// SplitMix64's finalizer: spreads a seed over all 64 bits.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A linear-probing table of recent (fingerprint, seq) pairs; `Seq(0)` (never
/// an entry's seq) marks a free slot. At most half full, so probes are short.
#[derive(Debug)]
struct Recent {
    slots: Vec<Slot>,
    len: usize,
    /// Odd multiplier of the slot hash (see the module docs).
    key: u64,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            slots: Vec::new(),
            len: 0,
            key: splitmix64(0) | 1,
        }
    }
}

const FREE: Slot = Slot {
    fp: (0, 0),
    seq: Seq(0),
};

impl Recent {
    fn len(&self) -> usize {
        self.len
    }

    /// The slot holding `fp`, or the free slot where it would go.
    fn probe(&self, fp: Fingerprint) -> usize {
        let bits = self.slots.len().trailing_zeros();
        let mask = self.slots.len() - 1;
        let mut i = ((fp.0 ^ fp.1).wrapping_mul(self.key) >> (64 - bits)) as usize;
        while self.slots[i].seq != Seq(0) && self.slots[i].fp != fp {
            i = (i + 1) & mask;
        }
        i
    }

    fn get(&self, fp: Fingerprint) -> Option<Seq> {
        if self.slots.is_empty() {
            return None;
        }
        let s = self.slots[self.probe(fp)];
        (s.seq != Seq(0)).then_some(s.seq)
    }

    fn insert(&mut self, fp: Fingerprint, seq: Seq) {
        assert!(seq.0 > 0, "entries start at seq 1");
        if (self.len + 1) * 2 > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![FREE; (old.len() * 2).max(64)];
            self.len = 0;
            for s in old.into_iter().filter(|s| s.seq != Seq(0)) {
                self.insert(s.fp, s.seq);
            }
        }
        let i = self.probe(fp);
        if self.slots[i].seq == Seq(0) {
            self.len += 1;
        }
        self.slots[i] = Slot { fp, seq };
    }

    /// Every pair, sorted by fingerprint; the table is left empty (its
    /// memory is kept for the next round).
    fn take_sorted(&mut self) -> Vec<Slot> {
        let mut out: Vec<Slot> = self
            .slots
            .iter()
            .copied()
            .filter(|s| s.seq != Seq(0))
            .collect();
        out.sort_unstable_by_key(|s| s.fp);
        self.slots.fill(FREE);
        self.len = 0;
        out
    }

    /// Forgets the pairs whose seq is `from` or later.
    fn retain_below(&mut self, from: Seq) {
        for s in self.take_sorted() {
            if s.seq < from {
                self.insert(s.fp, s.seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_load_answers_as_inserting_one_by_one() {
        // 5000 ids, one repeated (committed again past the window).
        let mut ids: Vec<(u64, u64, Seq)> = (1..=5000u64)
            .map(|k| {
                let f = fingerprint(&format!("m{}", k % 4999));
                (f.0, f.1, Seq(k * 2))
            })
            .collect();
        ids.sort_by_key(|&(_, _, s)| s);
        let mut bulk = DedupIndex::default();
        bulk.set_window(3000, 1_000_000, Instant(0));
        bulk.load(&ids, Instant(5));
        let mut one = DedupIndex::default();
        one.set_window(3000, 1_000_000, Instant(0));
        for &(hi, lo, s) in &ids {
            one.insert((hi, lo), s, Instant(5));
        }
        assert_eq!(bulk.window_len(), one.window_len());
        assert_eq!(
            bulk.entries_upto(Seq(20_000)),
            one.entries_upto(Seq(20_000))
        );
        for k in 0..5000u64 {
            let f = fingerprint(&format!("m{k}"));
            assert_eq!(bulk.get(f), one.get(f), "m{k}");
        }
    }

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
            ix.insert(fp(k), Seq(k), Instant(0));
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
        ix.insert(fp(1), Seq(1), Instant(0));
        for k in 2..=3000 {
            ix.insert(fp(k), Seq(k), Instant(0));
        }
        assert!(!ix.big.is_empty(), "merged at least once");
        ix.insert(fp(1), Seq(5000), Instant(0));
        assert_eq!(ix.get(fp(1)), Some(Seq(5000)));
        for k in 3001..=6000 {
            ix.insert(fp(k), Seq(k), Instant(0));
        }
        assert_eq!(ix.get(fp(1)), Some(Seq(5000)));
        assert_eq!(ix.len(), 6000);
    }

    #[test]
    fn the_directory_finds_every_key_even_in_crowded_buckets() {
        let mut ix = DedupIndex::default();
        // Uniform keys, then keys sharing their top bits (a crafted bucket).
        let mut keys: Vec<Fingerprint> = (1..=20_000).map(fp).collect();
        keys.extend((0..3000u64).map(|k| (0x8000_0000_0000_0000 | k, k)));
        keys.extend((0..100u64).map(|k| (u64::MAX - k, 0)));
        keys.extend((0..100u64).map(|k| (0, k)));
        for (s, &k) in keys.iter().enumerate() {
            ix.insert(k, Seq(s as u64 + 1), Instant(0));
        }
        ix.merge();
        assert!(ix.dir_bits > 8 && ix.small.len() == 0);
        assert_eq!(ix.dir.len(), (1 << ix.dir_bits) + 1);
        for (s, &k) in keys.iter().enumerate() {
            assert_eq!(ix.get(k), Some(Seq(s as u64 + 1)), "{k:?}");
        }
        assert_eq!(ix.get((0x8000_0000_0000_0000, 5000)), None);
        assert_eq!(ix.get((1, 0)), None);
        assert_eq!(ix.get(fp(20_001)), None);
    }

    #[test]
    fn crafted_slot_collisions_need_the_secret_key() {
        // Ids whose fingerprints share many bits (what a client can brute
        // force) still spread over the table under a keyed multiplier.
        let mut ix = DedupIndex::default();
        ix.set_key(42);
        for k in 0..1000u64 {
            ix.insert((k << 40, 0), Seq(k + 1), Instant(0));
        }
        let r = &ix.small;
        let longest = (0..r.slots.len())
            .map(|i| {
                (i..)
                    .take_while(|j| r.slots[j % r.slots.len()].seq != Seq(0))
                    .count()
            })
            .max()
            .unwrap();
        assert!(longest < 64, "probe run of {longest}");
        ix.set_key(7); // re-keying keeps every pair
        for k in 0..1000u64 {
            assert_eq!(ix.get((k << 40, 0)), Some(Seq(k + 1)));
        }
    }

    #[test]
    fn removal_from_a_seq_forgets_the_suffix_in_both_levels() {
        let mut ix = DedupIndex::default();
        for k in 1..=5000 {
            ix.insert(fp(k), Seq(k), Instant(0));
        }
        ix.remove_from(Seq(1001));
        assert_eq!(ix.len(), 1000);
        assert_eq!(ix.get(fp(1000)), Some(Seq(1000)));
        assert_eq!(ix.get(fp(1001)), None);
        assert_eq!(ix.get(fp(5000)), None);
        ix.insert(fp(4000), Seq(1001), Instant(0));
        assert_eq!(ix.get(fp(4000)), Some(Seq(1001)));
    }

    #[test]
    fn the_window_keeps_the_newest_ids_and_bounds_memory() {
        let mut ix = DedupIndex::default();
        ix.set_window(1000, u64::MAX, Instant(0));
        let n = 20_000;
        for k in 1..=n {
            ix.insert(fp(k), Seq(k), Instant(k));
        }
        // The newest 1000 always; at most a block (16) more.
        for k in (n - 999)..=n {
            assert_eq!(ix.get(fp(k)), Some(Seq(k)), "m{k} is in the window");
        }
        let kept = (1..=n).filter(|&k| ix.get(fp(k)).is_some()).count();
        assert!((1000..=1016).contains(&kept), "{kept} remembered");
        assert_eq!(ix.get(fp(1)), None, "past the window: forgotten");
        // Memory: the window plus at most the purge slack.
        assert!(ix.len() <= 1016 + SMALL_MIN + 1, "{} in memory", ix.len());
        assert_eq!(ix.window_len(), kept as u64);
    }

    #[test]
    fn the_window_forgets_by_time_on_the_nodes_clock() {
        let mut ix = DedupIndex::default();
        ix.tick(Instant(0));
        ix.set_window(1024, 1000, Instant(0)); // blocks of 16 ids
        for k in 1..=16 {
            ix.insert(fp(k), Seq(k), Instant(100));
        }
        ix.tick(Instant(1099));
        assert_eq!(ix.get(fp(3)), Some(Seq(3)), "999 ms old");
        ix.insert(fp(17), Seq(17), Instant(1099));
        ix.tick(Instant(1100));
        assert_eq!(ix.get(fp(3)), None, "1000 ms old");
        assert_eq!(ix.get(fp(17)), Some(Seq(17)));
        // A block goes by the time of its newest id: never early.
        ix.insert(fp(18), Seq(18), Instant(1500));
        ix.tick(Instant(2099));
        assert_eq!(ix.get(fp(17)), Some(Seq(17)));
        ix.tick(Instant(2500));
        assert_eq!(ix.get(fp(17)), None);
        assert_eq!(ix.window_len(), 0);
    }

    #[test]
    fn a_truncation_never_makes_the_window_forget_early() {
        let mut ix = DedupIndex::default();
        ix.set_window(100, u64::MAX, Instant(0));
        // Seqs 1..=200 with a chat at every other seq (no-ops between).
        for k in 1..=100 {
            ix.insert(fp(k), Seq(2 * k), Instant(0));
        }
        ix.remove_from(Seq(181));
        assert_eq!(ix.get(fp(90)), Some(Seq(180)));
        assert_eq!(ix.get(fp(91)), None, "cut");
        for k in 1000..1100 {
            ix.insert(fp(k), Seq(181 + k - 1000), Instant(0));
        }
        // The newest 100 ids are the new ones; none of them is forgotten.
        for k in 1000..1100 {
            assert!(ix.get(fp(k)).is_some(), "m{k}");
        }
    }

    #[test]
    fn ids_replayed_before_the_clock_runs_are_dated_at_its_first_tick() {
        let mut ix = DedupIndex::default();
        ix.set_window(1024, 1000, Instant(0));
        for k in 1..=40 {
            ix.insert(fp(k), Seq(k), Instant(0));
        }
        // A restarted node whose clock reads 50 s at its first step.
        ix.tick(Instant(50_000));
        assert_eq!(ix.get(fp(1)), Some(Seq(1)), "kept a full window from now");
        ix.tick(Instant(50_999));
        assert_eq!(ix.get(fp(1)), Some(Seq(1)));
        ix.tick(Instant(51_000));
        assert_eq!(ix.get(fp(40)), None);
    }
}
