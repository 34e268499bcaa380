//! The in-memory replicated log and its msg_id index (the dedup table).
//!
//! Invariants: entries are contiguous from seq 1; `index` maps the msg_id of
//! every chat entry in the log to its seq and nothing else.

use crate::entry::Entry;
use crate::types::{Seq, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Log {
    entries: Vec<Entry>,
    index: BTreeMap<String, Seq>,
}

impl Log {
    pub fn from_entries(entries: Vec<Entry>) -> Log {
        let mut log = Log::default();
        for e in entries {
            log.append(e);
        }
        log
    }

    pub fn last_seq(&self) -> Seq {
        Seq(self.entries.len() as u64)
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(Term(0), |e| e.term)
    }

    /// (last_term, last_seq): the "how up to date" order of logs.
    pub fn position(&self) -> (Term, Seq) {
        (self.last_term(), self.last_seq())
    }

    /// The term of the entry at `seq`; seq 0 has term 0; None beyond the end.
    pub fn term_at(&self, seq: Seq) -> Option<Term> {
        if seq.0 == 0 {
            return Some(Term(0));
        }
        self.get(seq).map(|e| e.term)
    }

    pub fn get(&self, seq: Seq) -> Option<&Entry> {
        if seq.0 == 0 {
            return None;
        }
        self.entries.get(seq.0 as usize - 1)
    }

    pub fn seq_of(&self, msg_id: &str) -> Option<Seq> {
        self.index.get(msg_id).copied()
    }

    pub fn append(&mut self, e: Entry) {
        assert_eq!(
            e.seq_no,
            self.last_seq().next(),
            "log append must be contiguous"
        );
        if let Some(id) = e.msg_id() {
            self.index.insert(id.to_string(), e.seq_no);
        }
        self.entries.push(e);
    }

    /// Removes every entry from `from` on.
    pub fn truncate_from(&mut self, from: Seq) {
        assert!(from.0 >= 1);
        let keep = from.0 as usize - 1;
        for e in self.entries.drain(keep.min(self.entries.len())..) {
            if let Some(id) = e.msg_id() {
                self.index.remove(id);
            }
        }
    }

    /// Entries from `from` on, at most `max_n` of them and about `max_bytes`
    /// (always at least one if any exists).
    pub fn slice(&self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let start = (from.0.max(1) - 1) as usize;
        for e in self.entries.iter().skip(start).take(max_n) {
            bytes += e.approx_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }
}
