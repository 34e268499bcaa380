//! Simulated per-node storage: what survives a crash.
//!
//! Two models. Synchronous (the default, and every scenario): `Action::Persist`
//! is durable the moment the driver executes it;
//! `Action::Note` (a commit hint) is only written, and becomes durable with the
//! next `Persist` of the same node (an fsync makes everything before it
//! durable), or is lost in a crash. Recovery encodes the durable records with
//! the core's own format and runs the core's segmented replay, so the simulator
//! exercises the same recovery code as the real runtime.
//!
//! Asynchronous (`SimOptions::async_fsync_ms`, the real runtime's model):
//! every record is only written ([`Disk::write`]); an fsync started later
//! makes what was written before it durable ([`Disk::sync`]); a crash loses
//! the rest. Written entries are readable (cold reads see them, as the
//! runtime reads its file), but the checker's view is the durable one.
//!
//! Alongside the records, a compact view of the durable log (term and message
//! key per seq) lets the checker verify persist-before-effect cheaply, and a
//! mirror of the durable entries serves the node's cold reads (`SimCold`):
//! simulated nodes keep only a few entries in memory, so every run reads
//! evicted entries back the way the real runtime reads its log file.

use crate::workload::MsgKey;
use chorus_core::record::{encode, replay_segments, Record, Recovered, ReplayError, SegmentSource};
use chorus_core::snapshot::{Restore, Snapshot, SnapshotImage};
use chorus_core::{Body, ColdLog, Entry, Seq, Term};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes per log segment in recovery (small, so that every recovery of a
/// run of some length crosses segments).
const SIM_SEGMENT_BYTES: usize = 4096;

/// What an entry is, compactly: who wrote it in which term, and which message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryId {
    pub term: Term,
    /// The chat's message key; `None` for a leader's no-op (or a foreign msg_id).
    pub key: Option<MsgKey>,
}

impl EntryId {
    pub fn of(e: &Entry) -> EntryId {
        EntryId {
            term: e.term,
            key: match &e.body {
                Body::Chat(c) => MsgKey::parse(&c.msg_id),
                Body::Noop { .. } => None,
            },
        }
    }
}

/// One node's disk.
#[derive(Debug, Default)]
pub struct Disk {
    durable: Vec<Record>,
    written: Vec<Record>,
    /// Asynchronous model: records written but not yet durable, in order.
    pending: Vec<Record>,
    /// The durable log, entry `seq` at index `seq - 1 - log_base`.
    log: Vec<EntryId>,
    /// The durable log continues after an installed snapshot at this seq.
    log_base: Seq,
    /// The newest saved snapshot (saved atomically: durable at once),
    /// shared with the node's `SimCold`, which serves it back.
    snapshot: Arc<Mutex<Option<SnapshotImage>>>,
    /// The durable entries themselves, shared with the node's `SimCold`.
    entries: Arc<Mutex<Mirror>>,
    /// Cold reads served so far (coverage).
    cold_reads: Arc<AtomicU64>,
    term: Term,
    /// The term of the entry at `log_base`.
    base_term: Term,
}

/// The written entries from `base + 1` on (`v[k]` is seq `base + 1 + k`).
#[derive(Debug, Default)]
pub struct Mirror {
    base: Seq,
    v: Vec<Entry>,
}

/// The node's reader of its evicted entries: the durable entries of its disk.
/// (A mutex only because a `ColdLog` must be `Send`; one thread uses it.)
#[derive(Debug)]
pub struct SimCold {
    entries: Arc<Mutex<Mirror>>,
    snapshot: Arc<Mutex<Option<SnapshotImage>>>,
    reads: Arc<AtomicU64>,
}

impl ColdLog for SimCold {
    fn read(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let entries = self
            .entries
            .lock()
            .expect("the simulator is single-threaded");
        let mut out: Vec<Entry> = Vec::new();
        let mut bytes = 0;
        let start = from.0.saturating_sub(1 + entries.base.0) as usize;
        for e in entries.v.iter().skip(start).take(max_n) {
            bytes += e.approx_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    fn serves_snapshots(&self) -> bool {
        true
    }

    fn saved_snapshot(&mut self, seq: Seq) -> Option<Vec<u8>> {
        let saved = self.snapshot.lock().expect("single-threaded");
        saved
            .as_ref()
            .filter(|s| s.seq == seq)
            .map(|s| s.bytes.to_vec())
    }
}

impl Disk {
    /// Executes `Action::Persist`: durable now, with every note written before it.
    pub fn persist(&mut self, rec: Record) {
        self.durable.append(&mut self.written);
        self.mirror(&rec);
        self.make_durable(rec);
    }

    /// The readable copy of the entries follows a written record.
    fn mirror(&self, rec: &Record) {
        let mut entries = self.entries.lock().expect("single-threaded");
        mirror_into(&mut entries, rec);
    }

    /// `rec` is durable: the checker's view of the log follows it.
    fn make_durable(&mut self, rec: Record) {
        match &rec {
            Record::Entry(e) => {
                // The core asserts contiguity; a mismatch here would be a sim bug.
                debug_assert_eq!(e.seq_no.0, self.last_seq().0 + 1);
                self.log.push(EntryId::of(e));
            }
            Record::Truncate { from } => self
                .log
                .truncate(from.0.saturating_sub(1 + self.log_base.0) as usize),
            Record::Term { term, .. } => self.term = self.term.max(*term),
            Record::Commit { .. } => {}
            Record::Snapshot { seq, term } => {
                self.log.clear();
                self.log_base = *seq;
                self.base_term = *term;
            }
        }
        self.durable.push(rec);
    }

    /// Executes `Action::Note`: written, durable only with the next persist.
    pub fn note(&mut self, rec: Record) {
        self.written.push(rec);
    }

    /// Asynchronous model: `rec` is written (readable, not durable).
    pub fn write(&mut self, rec: Record) {
        self.mirror(&rec);
        self.pending.push(rec);
    }

    /// Asynchronous model: records written so far (durable or not).
    pub fn written_count(&self) -> u64 {
        (self.durable.len() + self.pending.len()) as u64
    }

    /// Asynchronous model: records durable so far.
    pub fn durable_count(&self) -> u64 {
        self.durable.len() as u64
    }

    /// Asynchronous model: an fsync finished; the first `upto` records
    /// written (counted from the start of the file) are durable.
    pub fn sync(&mut self, upto: u64) {
        let n = (upto.saturating_sub(self.durable.len() as u64) as usize).min(self.pending.len());
        for rec in self.pending.drain(..n).collect::<Vec<_>>() {
            self.make_durable(rec);
        }
    }

    /// Asynchronous model: a term or truncation record is written but not
    /// durable (no message may leave early then: it could carry that term,
    /// or entries about to be cut).
    pub fn barrier_pending(&self) -> bool {
        self.pending
            .iter()
            .any(|r| matches!(r, Record::Term { .. } | Record::Truncate { .. }))
    }

    /// Asynchronous model: how far the node's log is durable, as the
    /// runtime reports it (`Input::Persisted`): the durable length, but not
    /// past a truncation still pending.
    pub fn stable_seq(&self) -> Seq {
        let cut = self.pending.iter().find_map(|r| match r {
            Record::Truncate { from } => Some(from.0.saturating_sub(1)),
            _ => None,
        });
        let last = self.last_seq().0;
        Seq(cut.map_or(last, |c| c.min(last)))
    }

    /// A reader of this disk's durable entries, for the node's `ColdLog`.
    pub fn cold(&self) -> SimCold {
        SimCold {
            entries: self.entries.clone(),
            snapshot: self.snapshot.clone(),
            reads: self.cold_reads.clone(),
        }
    }

    /// Cold reads served since the last call.
    pub fn take_cold_reads(&self) -> u64 {
        self.cold_reads.swap(0, Ordering::Relaxed)
    }

    /// The process died: unsynced writes are gone (in the asynchronous
    /// model, everything not fsynced: the harsher power-loss case).
    pub fn crash(&mut self) {
        self.written.clear();
        if !self.pending.is_empty() {
            self.pending.clear();
            let mut entries = self.entries.lock().expect("single-threaded");
            *entries = Mirror::default();
            for r in &self.durable {
                mirror_into(&mut entries, r);
            }
        }
    }

    /// The highest term durably recorded.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Durable log length.
    pub fn last_seq(&self) -> Seq {
        Seq(self.log_base.0 + self.log.len() as u64)
    }

    /// The durable entry at `seq` (None at or before an installed
    /// snapshot: see `covers`).
    pub fn entry(&self, seq: Seq) -> Option<EntryId> {
        if seq <= self.log_base {
            return None;
        }
        self.log
            .get((seq.0 - self.log_base.0) as usize - 1)
            .copied()
    }

    /// The durable log holds position (`seq`, `term`): an entry, or the last
    /// entry of the snapshot it continues after (seq 0: the empty log).
    pub fn holds(&self, seq: Seq, term: Term) -> bool {
        seq.0 == 0
            || (seq == self.log_base && term == self.base_term)
            || self.entry(seq).is_some_and(|e| e.term == term)
    }

    /// A durable snapshot covers the committed entry at `seq` (the disk
    /// holds it as state, not as a log entry).
    pub fn covers(&self, seq: Seq) -> bool {
        self.snapshot().is_some_and(|s| seq <= s.seq)
    }

    /// Executes `Action::SaveSnapshot`: written whole and synced before it
    /// replaces the previous one (as the runtime's store), so durable at once.
    pub fn save_snapshot(&mut self, image: SnapshotImage) {
        *self.snapshot.lock().expect("single-threaded") = Some(image);
    }

    /// Executes `Action::Compact`: entries before `before` leave the
    /// readable copy (the runtime deletes their segments). The checker's
    /// view keeps them: they are committed, and covered by the snapshot.
    pub fn compact(&mut self, before: Seq) {
        let mut m = self.entries.lock().expect("single-threaded");
        let drop = before.0.saturating_sub(1 + m.base.0).min(m.v.len() as u64);
        m.v.drain(..drop as usize);
        m.base = Seq(m.base.0 + drop);
    }

    /// The newest saved snapshot.
    pub fn snapshot(&self) -> Option<SnapshotImage> {
        self.snapshot.lock().expect("single-threaded").clone()
    }

    /// Number of durable records (for traces).
    pub fn records(&self) -> usize {
        self.durable.len()
    }

    /// Rebuilds the node's state through the core's encoder and its
    /// segmented replay (`replay_segments`, as the runtime recovers its
    /// segment files): the records are cut into segments of about
    /// `SIM_SEGMENT_BYTES`, between records, as the runtime's writer does.
    /// With a saved snapshot, the log replays into the core's `Restore`
    /// sink (only what follows the snapshot is kept), as the runtime does.
    pub fn recover(&self) -> Result<Recovery, ReplayError> {
        let mut bytes = Vec::new();
        let mut cuts = vec![0];
        for r in &self.durable {
            if bytes.len() - cuts.last().copied().unwrap_or(0) >= SIM_SEGMENT_BYTES {
                cuts.push(bytes.len());
            }
            encode(r, &mut bytes);
        }
        cuts.push(bytes.len());
        let segments = || {
            cuts.windows(2).map(|w| SegmentSource {
                base: w[0] as u64,
                len: (w[1] - w[0]) as u64,
                reader: &bytes[w[0]..w[1]],
            })
        };
        let whole = |valid_len: u64| {
            if valid_len == bytes.len() as u64 {
                Ok(())
            } else {
                Err(ReplayError::Corrupt {
                    offset: valid_len,
                    reason: "replay stopped early on a log the simulator wrote whole".into(),
                })
            }
        };
        let Some(image) = self.snapshot() else {
            let replayed = match replay_segments(segments(), Vec::new()) {
                Ok(r) => r?,
                Err(e) => unreachable!("reading memory cannot fail: {e}"),
            };
            whole(replayed.valid_len)?;
            return Ok(Recovery::Log(replayed.recovered));
        };
        let snap = Snapshot::decode(&image.bytes).map_err(|reason| ReplayError::Corrupt {
            offset: 0,
            reason: format!("the saved snapshot: {reason}"),
        })?;
        let replayed = match replay_segments(segments(), Restore::new(&snap)) {
            Ok(r) => r?,
            Err(e) => unreachable!("reading memory cannot fail: {e}"),
        };
        whole(replayed.valid_len)?;
        Ok(Recovery::Snapshot(Box::new((
            snap,
            image,
            replayed.recovered,
        ))))
    }
}

/// What a restart recovers: a log, or a snapshot and the log after it.
#[derive(Debug)]
pub enum Recovery {
    Log(Recovered),
    Snapshot(Box<(Snapshot, SnapshotImage, Recovered<Restore>)>),
}

impl Recovery {
    /// (term, commit point, last log seq) of what was recovered.
    pub fn position(&self) -> (Term, Seq, Seq) {
        match self {
            Recovery::Log(r) => (r.term, r.commit_seq, Seq(r.entries.len() as u64)),
            Recovery::Snapshot(b) => {
                let (snap, _, r) = &**b;
                (
                    r.term,
                    r.commit_seq.max(snap.seq),
                    r.entries.log().last_seq(),
                )
            }
        }
    }
}

/// Applies a written record to a copy of the entries.
fn mirror_into(m: &mut Mirror, rec: &Record) {
    match rec {
        Record::Entry(e) => {
            let k = e.seq_no.0.saturating_sub(1 + m.base.0) as usize;
            m.v.truncate(k);
            m.v.push(e.clone());
        }
        Record::Truncate { from } => m.v.truncate(from.0.saturating_sub(1 + m.base.0) as usize),
        Record::Snapshot { seq, .. } => {
            m.v.clear();
            m.base = *seq;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::NodeId;

    fn noop(s: u64) -> Record {
        Record::Entry(Entry {
            seq_no: Seq(s),
            term: Term(1),
            body: Body::Noop { leader: NodeId(1) },
        })
    }

    #[test]
    fn asynchronous_writes_are_durable_only_once_synced() {
        let mut d = Disk::default();
        d.write(noop(1));
        d.write(noop(2));
        assert_eq!((d.last_seq(), d.stable_seq()), (Seq(0), Seq(0)));
        d.sync(1);
        assert_eq!((d.last_seq(), d.written_count()), (Seq(1), 2));
        d.write(Record::Truncate { from: Seq(2) });
        assert!(d.barrier_pending());
        d.crash();
        assert_eq!(d.recover().unwrap().position().2, Seq(1));
        assert_eq!(d.cold().read(Seq(1), 10, 1 << 20).len(), 1);
    }

    #[test]
    fn notes_survive_only_behind_a_persist() {
        let mut d = Disk::default();
        let noop = |s| {
            Record::Entry(Entry {
                seq_no: Seq(s),
                term: Term(1),
                body: Body::Noop { leader: NodeId(1) },
            })
        };
        d.persist(noop(1));
        d.note(Record::Commit { seq: Seq(1) });
        d.crash();
        assert_eq!(d.recover().unwrap().position().1, Seq(0));
        d.note(Record::Commit { seq: Seq(1) });
        d.persist(noop(2));
        d.crash();
        let (_, commit, last) = d.recover().unwrap().position();
        assert_eq!((commit, last), (Seq(1), Seq(2)));
    }
}
