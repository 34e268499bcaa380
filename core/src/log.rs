//! The replicated log as the core holds it: compact metadata for every entry
//! and the entries themselves only in a bounded tail cache. Older entries are
//! read back through the driver's [`ColdLog`] (raft-rs `Storage` style:
//! synchronous, and deterministic when the driver's implementation is).
//!
//! Memory: the dedup fingerprints of the chats in the exactly-once window
//! (24 bytes each, `dedup.rs`), a term run per term change, and entries in
//! the cache, at most `cache_max` of them once written by the driver.
//!
//! Invariants:
//! - entries are contiguous from `first` to `last` (`first` is 1 until a
//!   snapshot compacted the log, `snapshot.rs`); `cache` holds exactly the
//!   entries `cache_start()..=last`, in order;
//! - `terms` are the starts of term runs (seq ascending), covering
//!   `first - 1..=last` once compacted (the entry before `first` is the
//!   snapshot's last one: its term is what a follower's `prev_term` is
//!   checked against), `1..=last` before;
//! - `index` maps the fingerprint of the msg_id of every chat entry in the
//!   exactly-once window to its seq;
//! - an entry leaves the cache only if its seq is at most `written`: the
//!   driver has written it, so a cold read finds it. `written` advances only
//!   when the driver says a batch was executed (`batch_written`, from
//!   `Node::step` after a `Flush`), and every entry of a replayed log counts
//!   as written;
//! - a cold read is checked against the metadata (seq and term of every
//!   entry): a driver serving stale or missing entries is a bug, and panics.

use crate::dedup::{fingerprint, DedupIndex};
use crate::entry::Entry;
use crate::record::EntrySink;
use crate::types::{Instant, Seq, Term};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Debug;

/// Entries that left the core's cache, read back from the driver's storage.
///
/// The driver implements it over what it has written (the node's own log
/// file, a simulated disk). The core only asks for entries it has evicted,
/// and it evicts only entries of batches the driver has executed (see
/// `chorus_core::io`), so every requested entry has been written.
pub trait ColdLog: Debug + Send {
    /// The entries from `from` on, in seq order and contiguous: at most
    /// `max_n`, and no more once their `Entry::approx_bytes` sum would exceed
    /// `max_bytes` (always at least one). An empty answer, a gap or an entry
    /// that is not the latest written at its seq is a driver bug: the core
    /// panics on it.
    fn read(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry>;

    /// True if `saved_snapshot` reads the driver's saved snapshots back:
    /// the node then keeps no copy of its snapshot in memory between the
    /// transfers it serves (the image can be as large as the folded state).
    fn serves_snapshots(&self) -> bool {
        false
    }

    /// The bytes of the snapshot saved at `seq` (`Action::SaveSnapshot`),
    /// if it is still the one the driver holds (None: replaced, not saved
    /// yet, or unreadable; the node then serves nothing and is asked again).
    fn saved_snapshot(&mut self, seq: Seq) -> Option<Vec<u8>> {
        let _ = seq;
        None
    }
}

/// The log of one node.
#[derive(Debug)]
pub struct Log {
    /// The first entry held (entries before it were compacted behind a
    /// snapshot, or never held after an install).
    first: Seq,
    last: Seq,
    /// (first seq, term) of every run of equal terms.
    terms: Vec<(Seq, Term)>,
    cache: VecDeque<Entry>,
    /// Most entries kept in `cache` once written (usize::MAX: keep all).
    cache_max: usize,
    /// Highest seq the driver is known to have written.
    written: Seq,
    cold: Option<Box<dyn ColdLog>>,
    index: DedupIndex,
    /// The node's clock as of its last step (the dedup window's time).
    now: Instant,
}

impl Default for Log {
    fn default() -> Log {
        Log::new(usize::MAX)
    }
}

impl Log {
    /// An empty log keeping at most `cache_max` written entries in memory.
    pub fn new(cache_max: usize) -> Log {
        Log {
            first: Seq(1),
            last: Seq(0),
            terms: Vec::new(),
            cache: VecDeque::new(),
            cache_max,
            written: Seq(0),
            cold: None,
            index: DedupIndex::default(),
            now: Instant(0),
        }
    }

    /// A log holding `entries` (all of them considered written).
    pub fn from_entries(entries: Vec<Entry>) -> Log {
        let mut log = Log::default();
        for e in entries {
            log.append(e);
        }
        log.written = log.last;
        log
    }

    /// Keys the dedup index's hashing with `seed` (secret per node, see `dedup.rs`).
    pub fn set_index_key(&mut self, seed: u64) {
        self.index.set_key(seed);
    }

    /// Bounds the exactly-once window (`dedup.rs`): the ids of the newest
    /// `ids` chats and of those appended less than `ms` ago are remembered.
    pub fn set_dedup_window(&mut self, ids: u64, ms: u64) {
        self.index.set_window(ids, ms, self.now);
    }

    /// The node's clock moved to `now`: the window may forget by time.
    pub fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.index.tick(self.now);
    }

    /// Ids in the exactly-once window.
    pub fn dedup_window_len(&self) -> u64 {
        self.index.window_len()
    }

    /// The driver reads its saved snapshots back (`ColdLog::serves_snapshots`).
    pub fn serves_snapshots(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.serves_snapshots())
    }

    /// The saved snapshot at `seq`, read back through the `ColdLog`.
    pub fn saved_snapshot(&mut self, seq: Seq) -> Option<Vec<u8>> {
        self.cold.as_mut()?.saved_snapshot(seq)
    }

    /// Bounds the cache (as replay fills it, before a `ColdLog` is attached).
    pub fn set_cache_max(&mut self, n: usize) {
        self.cache_max = n;
    }

    /// Attaches the driver's reader of evicted entries and the cache bound.
    pub fn attach_cold(&mut self, cold: Box<dyn ColdLog>, cache_max: usize) {
        self.cold = Some(cold);
        self.cache_max = cache_max;
    }

    pub fn last_seq(&self) -> Seq {
        self.last
    }

    pub fn last_term(&self) -> Term {
        self.terms.last().map_or(Term(0), |&(_, t)| t)
    }

    /// (last_term, last_seq): the "how up to date" order of logs.
    pub fn position(&self) -> (Term, Seq) {
        (self.last_term(), self.last_seq())
    }

    /// The term of the entry at `seq`; seq 0 has term 0; None beyond the
    /// end, and before the entry preceding `first` (compacted away).
    pub fn term_at(&self, seq: Seq) -> Option<Term> {
        if seq > self.last || seq.0 + 1 < self.first.0 {
            return None;
        }
        if seq.0 == 0 {
            return Some(Term(0));
        }
        let k = self.terms.partition_point(|&(s, _)| s <= seq);
        Some(self.terms[k - 1].1)
    }

    /// The first entry held: earlier ones were compacted behind a snapshot.
    pub fn first_seq(&self) -> Seq {
        self.first
    }

    /// The term runs covering `first - 1..=upto` (for a snapshot at `upto`
    /// whose log keeps entries from `first`, at or after `first_seq()`).
    pub fn term_runs_from(&self, first: Seq, upto: Seq) -> Vec<(Seq, Term)> {
        let base = Seq(first.0.saturating_sub(1));
        let lo = self.terms.partition_point(|&(s, _)| s <= base).max(1) - 1;
        let hi = self.terms.partition_point(|&(s, _)| s <= upto);
        let mut runs = self.terms[lo..hi].to_vec();
        if let Some(r) = runs.first_mut() {
            r.0 = r.0.max(base);
        }
        runs
    }

    /// The first seq held in the cache (last + 1 when it is empty).
    fn cache_start(&self) -> Seq {
        Seq(self.last.0 + 1 - self.cache.len() as u64)
    }

    /// True if the entry at `seq` is in memory (no cold read needed).
    pub fn is_cached(&self, seq: Seq) -> bool {
        seq >= self.cache_start() && seq <= self.last && seq.0 > 0
    }

    /// Forgets every entry before `first` (a durable snapshot covers them;
    /// the driver may delete them): they are no longer read, served or
    /// counted. `first` is at most `last + 1`.
    pub fn compact_before(&mut self, first: Seq) {
        if first <= self.first {
            return;
        }
        assert!(first <= self.last.next(), "compaction past the log end");
        while self.cache.front().is_some_and(|e| e.seq_no < first) {
            self.cache.pop_front();
        }
        let base = Seq(first.0 - 1);
        let k = self.terms.partition_point(|&(s, _)| s <= base);
        let base_term = self.terms[k - 1].1;
        self.terms.drain(..k - 1);
        self.terms[0] = (base, base_term);
        self.first = first;
        self.written = self.written.max(base);
    }

    /// An installed snapshot at (`seq`, `term`) replaces the whole log: it
    /// is empty and continues at `seq + 1`. The exactly-once window keeps
    /// only `dedup` (the snapshot's ids).
    pub fn reset_to(&mut self, seq: Seq, term: Term, dedup: &[(u64, u64, Seq)]) {
        self.cache.clear();
        self.terms = vec![(seq, term)];
        self.first = seq.next();
        self.last = seq;
        self.written = seq;
        self.index.clear();
        self.load_dedup(dedup);
    }

    /// A log restored from a snapshot at (`seq`, `term`) whose entries
    /// `first..=seq` the driver still holds (term runs `terms`, from
    /// `first - 1`): entries after `seq` follow by `append` (or replay).
    pub fn from_snapshot(first: Seq, terms: Vec<(Seq, Term)>, seq: Seq) -> Log {
        let mut log = Log::default();
        assert!(
            terms
                .first()
                .is_some_and(|&(s, _)| s.0 <= first.0.saturating_sub(1).max(1))
                && terms.last().is_some_and(|&(s, _)| s <= seq),
            "snapshot term runs must cover first - 1..=seq"
        );
        log.terms = terms;
        log.first = first;
        log.last = seq;
        log.written = seq;
        log
    }

    /// The exactly-once window's ids of entries up to `upto`, oldest first
    /// (fingerprint halves and seq), for a snapshot.
    pub fn dedup_upto(&self, upto: Seq) -> Vec<(u64, u64, Seq)> {
        self.index.entries_upto(upto)
    }

    /// Adds a snapshot's window ids (as of the node's clock now).
    pub fn load_dedup(&mut self, ids: &[(u64, u64, Seq)]) {
        for &(hi, lo, seq) in ids {
            self.index.insert((hi, lo), seq, self.now);
        }
    }

    /// Entries in memory (for tests and status).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The entry at `seq`: borrowed from the cache, or read back (owned).
    pub fn get(&mut self, seq: Seq) -> Option<Cow<'_, Entry>> {
        if seq < self.first || seq > self.last {
            return None;
        }
        let start = self.cache_start();
        if seq >= start {
            return self
                .cache
                .get((seq.0 - start.0) as usize)
                .map(Cow::Borrowed);
        }
        self.read_cold(seq, 1, usize::MAX).pop().map(Cow::Owned)
    }

    pub fn seq_of(&self, msg_id: &str) -> Option<Seq> {
        self.index.get(fingerprint(msg_id))
    }

    pub fn append(&mut self, e: Entry) {
        assert_eq!(e.seq_no, self.last.next(), "log append must be contiguous");
        if let Some(id) = e.msg_id() {
            self.index.insert(fingerprint(id), e.seq_no, self.now);
        }
        if self.last_term() != e.term || self.terms.is_empty() {
            self.terms.push((e.seq_no, e.term));
        }
        self.last = e.seq_no;
        self.cache.push_back(e);
    }

    /// Removes every entry from `from` on.
    pub fn truncate_from(&mut self, from: Seq) {
        assert!(from.0 >= 1);
        if from > self.last {
            return;
        }
        let start = self.cache_start();
        if from >= start {
            self.cache.truncate((from.0 - start.0) as usize);
        } else {
            self.cache.clear();
        }
        self.index.remove_from(from);
        while self.terms.last().is_some_and(|&(s, _)| s >= from) {
            self.terms.pop();
        }
        self.last = Seq(from.0 - 1);
        self.written = self.written.min(self.last);
    }

    /// The driver executed every batch so far: all entries are written and
    /// the cache may shrink to its bound.
    pub fn batch_written(&mut self) {
        self.written = self.last;
        self.evict();
    }

    fn evict(&mut self) {
        while self.cache.len() > self.cache_max {
            match self.cache.front() {
                Some(e) if e.seq_no <= self.written => {
                    self.cache.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Entries from `from` on, at most `max_n` of them and about `max_bytes`
    /// (always at least one if any exists).
    /// Nothing before `first` (compacted): the caller checks `first_seq`.
    pub fn slice(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
        let from = from.max(Seq(1));
        if from < self.first {
            return Vec::new();
        }
        if from > self.last || max_n == 0 {
            return Vec::new();
        }
        let start = self.cache_start();
        let mut out = Vec::new();
        let mut bytes = 0;
        if from < start {
            let want = ((start.0 - from.0) as usize).min(max_n);
            out = self.read_cold(from, want, max_bytes);
            if out.len() < want {
                return out; // the byte bound stopped the cold read
            }
            bytes = out.iter().map(Entry::approx_bytes).sum();
        }
        let skip = (from.max(start).0 - start.0) as usize;
        for e in self.cache.iter().skip(skip) {
            if out.len() >= max_n {
                break;
            }
            bytes += e.approx_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Calls `f` on every entry from `from` to the end, in order (evicted
    /// ones read back in bounded batches, cached ones borrowed).
    pub fn for_each_from(&mut self, from: Seq, batch: usize, mut f: impl FnMut(&Entry)) {
        let mut s = from.max(self.first);
        while s < self.cache_start() {
            let want = ((self.cache_start().0 - s.0) as usize).min(batch.max(1));
            for e in self.read_cold(s, want, usize::MAX) {
                f(&e);
                s = s.next();
            }
        }
        let skip = (s.0 - self.cache_start().0) as usize;
        for e in self.cache.iter().skip(skip) {
            f(e);
        }
    }

    /// Reads evicted entries `from..from + max_n` (or fewer, by bytes) and
    /// checks them against the metadata.
    fn read_cold(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
        let start = self.cache_start();
        let Some(cold) = self.cold.as_mut() else {
            panic!("entry {from} was evicted from the log cache but no ColdLog is attached");
        };
        let got = cold.read(from, max_n, max_bytes);
        assert!(
            !got.is_empty() && got.len() <= max_n,
            "the ColdLog returned {} entries for {max_n} from seq {from} (evicted: 1..{start}); it must serve every written entry",
            got.len()
        );
        for (k, e) in got.iter().enumerate() {
            let seq = Seq(from.0 + k as u64);
            assert!(
                e.seq_no == seq && Some(e.term) == self.term_at(seq),
                "the ColdLog returned seq {} term {} where the log has seq {seq} term {:?}: it serves stale or misplaced entries",
                e.seq_no,
                e.term,
                self.term_at(seq)
            );
        }
        got
    }
}

/// Replay into the compact log: every replayed entry is on disk (written).
impl EntrySink for Log {
    fn last_seq(&self) -> Seq {
        self.last
    }
    fn push(&mut self, e: Entry, _offset: u64) {
        self.append(e);
        self.written = self.last;
        self.evict();
    }
    fn truncate(&mut self, from: Seq) {
        self.truncate_from(from);
    }
    fn rebase(&mut self, seq: Seq, term: Term) -> Result<(), String> {
        self.reset_to(seq, term, &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Body, Chat};
    use crate::types::NodeId;
    use std::sync::{Arc, Mutex};

    fn chat(seq: u64, term: u64) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(term),
            body: Body::Chat(Chat {
                msg_id: format!("m{seq}"),
                room_id: "r".into(),
                sender_id: 1,
                user: None,
                payload: "x".repeat(10),
                ts_ms: 0,
                event: None,
            }),
        }
    }

    /// What the driver wrote, shared with the reader (like the simulator's).
    #[derive(Debug, Clone, Default)]
    struct Disk {
        entries: Arc<Mutex<Vec<Entry>>>,
        reads: Arc<Mutex<u64>>,
    }

    impl ColdLog for Disk {
        fn read(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
            *self.reads.lock().unwrap() += 1;
            let all = self.entries.lock().unwrap();
            let mut out: Vec<Entry> = Vec::new();
            let mut bytes = 0;
            for e in all.iter().skip(from.0 as usize - 1).take(max_n) {
                bytes += e.approx_bytes();
                if !out.is_empty() && bytes > max_bytes {
                    break;
                }
                out.push(e.clone());
            }
            out
        }
    }

    /// A log with a cold disk: appends `1..=n` in term `term`, each batch
    /// of `batch` entries written by the driver before the next.
    fn filled(n: u64, batch: u64, cap: usize) -> (Log, Disk) {
        let disk = Disk::default();
        let mut log = Log::default();
        log.attach_cold(Box::new(disk.clone()), cap);
        let mut s = 1;
        while s <= n {
            for k in s..(s + batch).min(n + 1) {
                let e = chat(k, 1 + k / 100);
                disk.entries.lock().unwrap().push(e.clone());
                log.append(e);
            }
            s += batch;
            log.batch_written();
        }
        (log, disk)
    }

    #[test]
    fn eviction_keeps_the_bound_once_batches_are_written() {
        let (mut log, _disk) = filled(1000, 10, 8);
        assert_eq!(log.cached(), 8);
        assert_eq!(log.last_seq(), Seq(1000));
        assert_eq!(log.term_at(Seq(99)), Some(Term(1)));
        assert_eq!(log.term_at(Seq(100)), Some(Term(2)));
        assert_eq!(log.term_at(Seq(1001)), None);
        assert_eq!(log.last_term(), Term(11));
        assert_eq!(log.terms.len(), 11);
        // An unwritten batch stays whole, however large.
        for k in 1001..=1100 {
            log.append(chat(k, 11));
        }
        assert_eq!(log.cached(), 108);
    }

    #[test]
    fn unwritten_entries_are_never_evicted() {
        let mut log = Log::default();
        log.attach_cold(Box::new(Disk::default()), 2);
        for k in 1..=50 {
            log.append(chat(k, 1));
        }
        log.evict();
        assert_eq!(log.cached(), 50, "nothing was written yet");
        // A truncation lowers what counts as written.
        log.batch_written();
        log.truncate_from(Seq(2));
        log.append(chat(2, 2));
        log.append(chat(3, 2));
        log.append(chat(4, 2));
        log.evict();
        assert_eq!(log.cached(), 3, "2..=4 are new and unwritten");
    }

    #[test]
    fn cold_reads_serve_slices_gets_and_scans() {
        let (mut log, disk) = filled(1000, 10, 8);
        let s = log.slice(Seq(990), 20, usize::MAX);
        assert_eq!(s.len(), 11, "cold 990..=992 then cached 993..=1000");
        assert!(s.iter().zip(990..).all(|(e, k)| e.seq_no == Seq(k)));
        assert_eq!(log.get(Seq(5)).unwrap().msg_id(), Some("m5"));
        assert!(matches!(log.get(Seq(1000)), Some(Cow::Borrowed(_))));
        assert!(matches!(log.get(Seq(7)), Some(Cow::Owned(_))));
        assert!(log.get(Seq(1001)).is_none());
        // The byte bound holds across the cold/cache border as in memory.
        let one = chat(990, 1).approx_bytes();
        assert_eq!(log.slice(Seq(990), 20, one * 5).len(), 5);
        assert_eq!(log.slice(Seq(1), 20, 0).len(), 1);
        let mut seen = Vec::new();
        let before = *disk.reads.lock().unwrap();
        log.for_each_from(Seq(900), 32, |e| seen.push(e.seq_no.0));
        assert_eq!(seen, (900..=1000).collect::<Vec<_>>());
        assert_eq!(
            *disk.reads.lock().unwrap() - before,
            3,
            "93 cold in 3 batches"
        );
        assert_eq!(log.seq_of("m3"), Some(Seq(3)));
        assert_eq!(log.seq_of("m1001"), None);
    }

    #[test]
    fn truncation_below_the_cache_and_new_appends() {
        let (mut log, disk) = filled(100, 10, 8);
        log.truncate_from(Seq(50));
        assert_eq!((log.last_seq(), log.cached()), (Seq(49), 0));
        assert_eq!(log.seq_of("m50"), None);
        assert_eq!(log.seq_of("m49"), Some(Seq(49)));
        assert_eq!(log.term_at(Seq(49)), Some(Term(1)));
        log.append(chat(50, 7));
        assert_eq!(log.last_term(), Term(7));
        assert_eq!(log.term_at(Seq(49)), Some(Term(1)));
        // The driver executes the batch: the truncation, then the new entry.
        disk.entries.lock().unwrap().truncate(49);
        disk.entries.lock().unwrap().push(chat(50, 7));
        log.batch_written();
        let s = log.slice(Seq(45), 10, usize::MAX);
        assert_eq!(s.len(), 6);
        assert_eq!(s[5].term, Term(7));
        assert_eq!(log.seq_of("m50"), Some(Seq(50)));
        log.truncate_from(Seq(200)); // beyond the end: nothing
        assert_eq!(log.last_seq(), Seq(50));
    }

    #[test]
    #[should_panic(expected = "stale or misplaced")]
    fn a_stale_cold_read_is_a_driver_bug() {
        let (mut log, disk) = filled(100, 10, 8);
        disk.entries.lock().unwrap()[4].term = Term(9);
        let _ = log.get(Seq(5));
    }

    #[test]
    #[should_panic(expected = "no ColdLog is attached")]
    fn eviction_without_a_reader_is_caught() {
        let mut log = Log::new(4);
        for k in 1..=10 {
            log.push(chat(k, 1), 0);
        }
        assert_eq!(log.cached(), 4);
        let _ = log.get(Seq(1));
    }

    #[test]
    fn noop_entries_have_no_fingerprint() {
        let mut log = Log::default();
        log.append(Entry {
            seq_no: Seq(1),
            term: Term(1),
            body: Body::Noop { leader: NodeId(1) },
        });
        log.append(chat(2, 1));
        assert_eq!(log.index.len(), 1);
    }
}
