//! Snapshots: the state a node folded from its committed log up to one
//! entry, so the log before it can be compacted (retention) and a restart
//! replays only what follows it (etcd/Raft style, issue 16).
//!
//! A snapshot at (`seq`, `term`) holds everything the node derives from the
//! committed prefix `1..=seq`:
//! - the numbering fold (`numbering.rs`: chat numbers, per-room counts and the
//!   per-room index of the history still retained),
//! - the room fold (`rooms.rs`) and the account fold (`accounts.rs`),
//! - the exactly-once window's ids up to `seq` (`dedup.rs`: a retry of a
//!   message the snapshot covers is still recognised),
//! - the term runs of the retained entries `first..=seq`, so the entries the
//!   driver still holds keep being served and checked.
//!
//! Lifecycle (all through the core and the simulator, `node.rs`):
//! - **take**: every `Config::snapshot_every` delivered entries a node emits
//!   `Action::SaveSnapshot`; with `Config::retain_entries` it then compacts
//!   its log (`Action::Compact`): entries before `first` are gone.
//! - **install**: a member that asks for entries the leader compacted gets the
//!   snapshot in bounded chunks (`PeerMsg::SnapshotChunk`, pulled one at a
//!   time by `PeerMsg::SnapshotReq`), checks it whole (checksum), saves it,
//!   then writes `Record::Snapshot` to its log: the log restarts after `seq`.
//! - **restore**: a restart loads the newest saved snapshot and replays the
//!   log into a `Restore` sink, which keeps only what follows the snapshot.
//!
//! Encoding: magic `CHSNAPv1`, the fields in order (codec.rs), then a
//! crc32c of everything before it. Deterministic: the same state gives the
//! same bytes on every node.

use crate::accounts::Accounts;
use crate::codec::{Reader, Writer};
use crate::crc::crc32c;
use crate::entry::Entry;
use crate::log::Log;
use crate::numbering::Numbering;
use crate::record::EntrySink;
use crate::rooms::Rooms;
use crate::types::{Seq, Term};
use std::sync::Arc;

/// The exactly-once window's key of a msg_id (SHA-256, truncated): what a
/// snapshot's `dedup` holds.
pub use crate::dedup::{fingerprint, Fingerprint};

const MAGIC: &[u8; 8] = b"CHSNAPv1";

/// The state folded from the committed log up to (`seq`, `term`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last entry it covers (committed).
    pub seq: Seq,
    pub term: Term,
    /// The first entry still in the log of the node that took it (history
    /// before it is gone): `seq + 1` for an installed snapshot.
    pub first: Seq,
    /// Term runs (start seq, term) covering `first - 1..=seq`.
    pub terms: Vec<(Seq, Term)>,
    pub numbering: Numbering,
    pub rooms: Rooms,
    pub accounts: Accounts,
    /// The exactly-once window's ids of entries up to `seq`, by seq:
    /// (fingerprint high, fingerprint low, seq).
    pub dedup: Vec<(u64, u64, Seq)>,
}

/// An encoded snapshot, as saved and sent: cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotImage {
    pub seq: Seq,
    pub term: Term,
    pub bytes: Arc<Vec<u8>>,
}

impl Snapshot {
    /// The deterministic, checksummed encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(&self.terms, &self.numbering, &self.rooms, &self.accounts)
    }

    /// `encode` with the term runs and the folds taken from elsewhere (the
    /// node's live state, not copied into a `Snapshot` first: the numbering
    /// grows with the retained history). Uses this value's `seq`, `term`,
    /// `first` and `dedup` only.
    pub fn encode_with(
        &self,
        terms: &[(Seq, Term)],
        numbering: &Numbering,
        rooms: &Rooms,
        accounts: &Accounts,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.dedup.len() * 24);
        out.extend_from_slice(MAGIC);
        let mut w = Writer(&mut out);
        w.u64(self.seq.0);
        w.u64(self.term.0);
        w.u64(self.first.0);
        w.u64(terms.len() as u64);
        for &(s, t) in terms {
            w.u64(s.0);
            w.u64(t.0);
        }
        rooms.encode(&mut w);
        accounts.encode(&mut w);
        w.u64(self.dedup.len() as u64);
        for &(hi, lo, s) in &self.dedup {
            w.u64(hi);
            w.u64(lo);
            w.u64(s.0);
        }
        numbering.encode(&mut out);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks `bytes` (checksum, then every field bounded by
    /// what remains; the folds must stand at `seq`).
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a chorus snapshot (bad magic)".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err("snapshot checksum mismatch".into());
        }
        let mut rest = &body[MAGIC.len()..];
        let mut r = Reader(&mut rest);
        let seq = Seq(r.u64()?);
        let term = Term(r.u64()?);
        let first = Seq(r.u64()?);
        let mut terms = Vec::new();
        for _ in 0..r.count(16)? {
            terms.push((Seq(r.u64()?), Term(r.u64()?)));
        }
        let rooms = Rooms::decode(&mut r)?;
        let accounts = Accounts::decode(&mut r)?;
        let mut dedup = Vec::new();
        for _ in 0..r.count(24)? {
            dedup.push((r.u64()?, r.u64()?, Seq(r.u64()?)));
        }
        let numbering = Numbering::decode(&mut rest)?;
        if !rest.is_empty() {
            return Err(format!("{} stray bytes after the snapshot", rest.len()));
        }
        let snap = Snapshot {
            seq,
            term,
            first,
            terms,
            numbering,
            rooms,
            accounts,
            dedup,
        };
        snap.check()?;
        Ok(snap)
    }

    /// The invariants a decoded snapshot must satisfy before it is used.
    fn check(&self) -> Result<(), String> {
        let base = self.first.0.saturating_sub(1).max(1);
        let runs_ok = self.terms.first().is_some_and(|&(s, _)| s.0 <= base)
            && self
                .terms
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && self
                .terms
                .last()
                .is_some_and(|&(s, t)| s <= self.seq && t == self.term);
        if self.seq.0 == 0 || self.first > self.seq.next() || !runs_ok {
            return Err(format!(
                "snapshot at {} (first {}) has inconsistent term runs",
                self.seq.0, self.first.0
            ));
        }
        if self.numbering.upto() != self.seq
            || self.rooms.upto() != self.seq
            || self.accounts.upto() != self.seq
        {
            return Err(format!("snapshot folds do not stand at {}", self.seq.0));
        }
        if self.dedup.iter().any(|&(_, _, s)| s > self.seq) {
            return Err(format!("snapshot window ids past {}", self.seq.0));
        }
        Ok(())
    }

    /// This snapshot as installed by a member that holds none of its
    /// history: the log continues at `seq + 1`.
    pub fn as_installed(mut self) -> Snapshot {
        self.first = self.seq.next();
        self.terms = vec![(self.seq, self.term)];
        self.numbering.forget_before(self.first);
        self
    }
}

/// The replay sink of a restart from a snapshot at (`seq`, `term`): the log
/// may still hold entries up to `seq` (retained history, or the old log of
/// an install that crashed before its `Record::Snapshot`); the restored log
/// keeps only what follows the snapshot, and only if the log agrees with
/// it at `seq` (Raft's rule: a log whose entry at `seq` has another term
/// diverged, and everything after it goes).
#[derive(Debug)]
pub struct Restore {
    log: Log,
    base: (Seq, Term),
    /// The log file's own end, for the replay's contiguity checks.
    file_last: Seq,
    /// The file's entry at `base` has another term: drop what follows.
    diverged: bool,
}

impl Restore {
    /// A sink for the log that follows `snap`.
    pub fn new(snap: &Snapshot) -> Restore {
        let mut log = Log::from_snapshot(snap.first, snap.terms.clone(), snap.seq);
        log.load_dedup(&snap.dedup);
        Restore {
            log,
            base: (snap.seq, snap.term),
            file_last: Seq(0),
            diverged: false,
        }
    }

    /// The restored log (entries after the snapshot).
    pub fn into_log(self) -> Log {
        self.log
    }

    /// The restored log so far.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The log file does not continue where the restored log does (its
    /// durable end fell short of the snapshot, or a suffix that diverged
    /// from it was dropped): the node writes `Record::Snapshot` first, so
    /// the file continues after the snapshot too.
    pub fn needs_marker(&self) -> bool {
        self.diverged || self.file_last != self.log.last_seq()
    }

    /// Keeps at most `n` written entries of the restored log in memory.
    pub fn with_cache_max(mut self, n: usize) -> Restore {
        self.log.set_cache_max(n);
        self
    }

    /// A replay that skipped the segments before the snapshot's starts at
    /// the first entry of the segments it reads: contiguity counts from there.
    pub fn starting_after(mut self, seq: Seq) -> Restore {
        self.file_last = seq;
        self
    }
}

impl EntrySink for Restore {
    fn last_seq(&self) -> Seq {
        self.file_last
    }
    fn push(&mut self, e: Entry, offset: u64) {
        let _ = offset;
        self.file_last = e.seq_no;
        let (base, term) = self.base;
        if e.seq_no == base {
            self.diverged = e.term != term;
        } else if e.seq_no > base && !self.diverged {
            self.log.push(e, 0);
        }
    }
    fn truncate(&mut self, from: Seq) {
        self.file_last = Seq(from.0.saturating_sub(1));
        self.log.truncate_from(from.max(self.base.0.next()));
        if from <= self.base.0 {
            self.diverged = false;
        }
    }
    fn covered(&mut self, seq: Seq, term: Term) {
        if seq == self.base.0 {
            self.diverged = term != self.base.1;
        }
    }
    fn rebase(&mut self, seq: Seq, term: Term) -> Result<(), String> {
        self.file_last = seq;
        if seq > self.base.0 {
            // A later install than the snapshot loaded: its snapshot file
            // must be the one loaded (the driver saves it first).
            return Err(format!(
                "the log continues after a snapshot at {} but the newest snapshot is at {}",
                seq.0, self.base.0
            ));
        }
        // The log continues after `seq`: what came above the snapshot
        // before this record is gone, and entry `base` is yet to come.
        self.log.truncate_from(self.base.0.next());
        self.diverged = seq == self.base.0 && term != self.base.1;
        Ok(())
    }
}
