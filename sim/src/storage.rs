//! Simulated per-node storage: what survives a crash.
//!
//! `Action::Persist` is durable the moment the driver executes it;
//! `Action::Note` (a commit hint) is only written, and becomes durable with the
//! next `Persist` of the same node (an fsync makes everything before it
//! durable), or is lost in a crash. Recovery encodes the durable records with
//! the core's own format and runs the core's `replay`, so the simulator
//! exercises the same recovery code as the real runtime.
//!
//! Alongside the records, a compact view of the durable log (term and message
//! key per seq) lets the checker verify persist-before-effect cheaply, and a
//! mirror of the durable entries serves the node's cold reads (`SimCold`):
//! simulated nodes keep only a few entries in memory, so every run reads
//! evicted entries back the way the real runtime reads its log file.

use crate::workload::MsgKey;
use chorus_core::record::{encode, replay, Record, Recovered, ReplayError};
use chorus_core::{Body, ColdLog, Entry, Seq, Term};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The durable log, entry `seq` at index `seq - 1`.
    log: Vec<EntryId>,
    /// The durable entries themselves, shared with the node's `SimCold`.
    entries: Arc<Mutex<Vec<Entry>>>,
    /// Cold reads served so far (coverage).
    cold_reads: Arc<AtomicU64>,
    term: Term,
}

/// The node's reader of its evicted entries: the durable entries of its disk.
/// (A mutex only because a `ColdLog` must be `Send`; one thread uses it.)
#[derive(Debug)]
pub struct SimCold {
    entries: Arc<Mutex<Vec<Entry>>>,
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
        let start = from.0.saturating_sub(1) as usize;
        for e in entries.iter().skip(start).take(max_n) {
            bytes += e.approx_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }
}

impl Disk {
    /// Executes `Action::Persist`: durable now, with every note written before it.
    pub fn persist(&mut self, rec: Record) {
        self.durable.append(&mut self.written);
        match &rec {
            Record::Entry(e) => {
                // The core asserts contiguity; a mismatch here would be a sim bug.
                debug_assert_eq!(e.seq_no.0, self.log.len() as u64 + 1);
                self.log.push(EntryId::of(e));
                self.entries
                    .lock()
                    .expect("single-threaded")
                    .push(e.clone());
            }
            Record::Truncate { from } => {
                let keep = from.0.saturating_sub(1) as usize;
                self.log.truncate(keep);
                self.entries.lock().expect("single-threaded").truncate(keep);
            }
            Record::Term { term, .. } => self.term = self.term.max(*term),
            Record::Commit { .. } => {}
        }
        self.durable.push(rec);
    }

    /// Executes `Action::Note`: written, durable only with the next persist.
    pub fn note(&mut self, rec: Record) {
        self.written.push(rec);
    }

    /// A reader of this disk's durable entries, for the node's `ColdLog`.
    pub fn cold(&self) -> SimCold {
        SimCold {
            entries: self.entries.clone(),
            reads: self.cold_reads.clone(),
        }
    }

    /// Cold reads served since the last call.
    pub fn take_cold_reads(&self) -> u64 {
        self.cold_reads.swap(0, Ordering::Relaxed)
    }

    /// The process died: unsynced writes are gone.
    pub fn crash(&mut self) {
        self.written.clear();
    }

    /// The highest term durably recorded.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Durable log length.
    pub fn last_seq(&self) -> Seq {
        Seq(self.log.len() as u64)
    }

    /// The durable entry at `seq`.
    pub fn entry(&self, seq: Seq) -> Option<EntryId> {
        if seq.0 == 0 {
            return None;
        }
        self.log.get(seq.0 as usize - 1).copied()
    }

    /// Number of durable records (for traces).
    pub fn records(&self) -> usize {
        self.durable.len()
    }

    /// Rebuilds the node's state through the core's encoder and `replay`.
    pub fn recover(&self) -> Result<Recovered, ReplayError> {
        let mut bytes = Vec::new();
        for r in &self.durable {
            encode(r, &mut bytes);
        }
        let replayed = replay(&bytes)?;
        if replayed.valid_len != bytes.len() as u64 {
            return Err(ReplayError::Corrupt {
                offset: replayed.valid_len,
                reason: "replay stopped early on a log the simulator wrote whole".into(),
            });
        }
        Ok(replayed.recovered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::NodeId;

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
        assert_eq!(d.recover().unwrap().commit_seq, Seq(0));
        d.note(Record::Commit { seq: Seq(1) });
        d.persist(noop(2));
        d.crash();
        let r = d.recover().unwrap();
        assert_eq!((r.commit_seq, r.entries.len()), (Seq(1), 2));
    }
}
