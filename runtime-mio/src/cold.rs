//! Reading back the log entries the core dropped from memory: a `ColdLog`
//! over the node's own `chorus.log`, and the recovery that builds the core's
//! compact log and this reader's index in one streaming pass.
//!
//! The reader has its own read-only handle and never touches the writer
//! (`storage.rs`): it finds entries through `offsets` (seq → byte offset of
//! the latest `Entry` record of that seq), built from the replay at startup
//! and extended by scanning the records appended since, before every read
//! (a `Truncate{from}` invalidates the offsets from `from` on, and the
//! re-written entries that follow replace them). Reads are positioned
//! (`read_at`) and go through one window of the file, so reading consecutive
//! entries costs one system call per window, not per entry.
//!
//! Why every entry the core asks for is in the file: the core evicts only
//! entries of batches that ended with a `Flush` step, and the runtime writes
//! every record of a batch (`DurableLog::commit`, called from `effects.rs`
//! right after the `Flush` step of the iteration) before it steps the core
//! again (the `chorus_core::io` contract). A written record is visible to
//! `read_at` through the page cache whether or not it was fsynced yet.
//!
//! A read that fails (I/O error, a record that does not check out) is fatal,
//! like a failed write: the node panics with the file and offset.

use crate::error::RuntimeError;
use chorus_core::record::{
    decode_payload, peek_frame, peek_frame_unverified, seq_effect, FramePeek, Record, SeqEffect,
};
use chorus_core::{ColdLog, Config, Entry, EntrySink, Log, Node, Recovered, Replayed, Seq};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read at once, when scanning and when reading entries.
const WINDOW_BYTES: usize = 256 * 1024;

/// Replay target at startup: the core's compact log plus the offsets of the
/// entries, so the reader starts with a complete index.
#[derive(Debug)]
pub(crate) struct Recovering {
    log: Log,
    offsets: Vec<u64>,
}

impl Recovering {
    pub(crate) fn new(cache_entries: usize) -> Recovering {
        Recovering {
            log: Log::new(cache_entries),
            offsets: Vec::new(),
        }
    }

    /// The seq of the last entry replayed so far.
    pub(crate) fn last_seq(&self) -> Seq {
        self.log.last_seq()
    }
}

impl EntrySink for Recovering {
    fn last_seq(&self) -> Seq {
        self.log.last_seq()
    }
    fn push(&mut self, e: Entry, offset: u64) {
        self.offsets.push(offset);
        self.log.push(e, offset);
    }
    fn truncate(&mut self, from: Seq) {
        self.offsets.truncate(from.0.saturating_sub(1) as usize);
        self.log.truncate(from);
    }
}

/// The node, from its replayed log, reading evicted entries from `path`.
pub(crate) fn node(
    cfg: Config,
    replayed: Replayed<Recovering>,
    path: &Path,
    rng_seed: u64,
) -> Result<Node, RuntimeError> {
    let r = replayed.recovered;
    let reader = ColdReader::open(path, r.entries.offsets, replayed.valid_len)?;
    let recovered = Recovered {
        term: r.term,
        voted_for: r.voted_for,
        entries: r.entries.log,
        commit_seq: r.commit_seq,
    };
    Ok(Node::from_log(cfg, recovered, rng_seed).with_cold_log(Box::new(reader)))
}

/// A `ColdLog` over a log file that another handle appends to.
#[derive(Debug)]
pub(crate) struct ColdReader {
    file: File,
    path: PathBuf,
    /// `offsets[seq - 1]`: where the latest `Entry` record of `seq` starts.
    offsets: Vec<u64>,
    /// Every record before this byte offset is in `offsets`.
    scanned: u64,
    /// `win[..win_len]` are the bytes of the file from `win_at` (the last
    /// entry read); scans use their own buffer so they never evict it.
    win: Vec<u8>,
    win_len: usize,
    win_at: u64,
    scan_buf: Vec<u8>,
}

/// Reads up to `n` bytes at `at` into `buf[..n]` (grown once, never zeroed
/// again); returns how many (fewer only at the end of the file).
fn read_full(file: &File, buf: &mut Vec<u8>, at: u64, n: usize) -> Result<usize, String> {
    if buf.len() < n {
        buf.resize(n, 0);
    }
    let mut got = 0;
    while got < n {
        match file.read_at(&mut buf[got..n], at + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read at byte offset {}: {e}", at + got as u64)),
        }
    }
    Ok(got)
}

impl ColdReader {
    /// A reader of `path` whose records before `scanned` are indexed in `offsets`.
    pub(crate) fn open(
        path: &Path,
        offsets: Vec<u64>,
        scanned: u64,
    ) -> Result<ColdReader, RuntimeError> {
        let file = File::open(path).map_err(|err| RuntimeError::Read {
            file: path.to_path_buf(),
            err,
        })?;
        Ok(ColdReader {
            file,
            path: path.to_path_buf(),
            offsets,
            scanned,
            win: Vec::new(),
            win_len: 0,
            win_at: 0,
            scan_buf: Vec::new(),
        })
    }

    /// Fills the window with up to `n` bytes from `at`; returns how many.
    fn load(&mut self, at: u64, n: usize) -> Result<usize, String> {
        self.win_len = 0; // valid again only if the read succeeds
        let got = read_full(&self.file, &mut self.win, at, n)?;
        self.win_at = at;
        self.win_len = got;
        Ok(got)
    }

    /// Indexes the records appended since the last scan.
    fn scan(&mut self) -> Result<(), String> {
        let mut want = WINDOW_BYTES;
        loop {
            let at = self.scanned;
            let got = read_full(&self.file, &mut self.scan_buf, at, want)?;
            let mut rel = 0;
            let mut need = 0;
            while rel < got {
                // Boundaries only: a payload is checked when its entry is read.
                match peek_frame_unverified(&self.scan_buf[rel..got]) {
                    FramePeek::Whole { payload, len } => {
                        let effect = seq_effect(payload).map_err(|r| {
                            format!("record at byte offset {}: {r}", at + rel as u64)
                        })?;
                        index(&mut self.offsets, effect, at + rel as u64)?;
                        rel += len;
                    }
                    FramePeek::Need(n) => {
                        need = n;
                        break;
                    }
                    FramePeek::Bad(r) => {
                        return Err(format!("record at byte offset {}: {r}", at + rel as u64))
                    }
                }
            }
            self.scanned = at + rel as u64;
            if got < want {
                // The end of the file (an incomplete frame there is finished
                // by the writer before the core can ask for its entry).
                return Ok(());
            }
            want = WINDOW_BYTES.max(need);
        }
    }

    /// The record that starts at byte `off` (from the window if it holds it
    /// whole, else from a window loaded at `off`).
    fn record_at(&mut self, off: u64) -> Result<Record, String> {
        let inside = off >= self.win_at && off < self.win_at + self.win_len as u64;
        let mut rel = if inside {
            (off - self.win_at) as usize
        } else {
            usize::MAX
        };
        let mut loaded = false;
        loop {
            if rel == usize::MAX {
                self.load(off, WINDOW_BYTES)?;
                rel = 0;
                loaded = true;
            }
            let need = match peek_frame(&self.win[rel..self.win_len]) {
                FramePeek::Whole { payload, .. } => {
                    return decode_payload(payload)
                        .map_err(|r| format!("record at byte offset {off}: {r}"))
                }
                FramePeek::Bad(r) => return Err(format!("record at byte offset {off}: {r}")),
                FramePeek::Need(n) => n,
            };
            if !loaded {
                rel = usize::MAX; // the window ends inside the record
            } else if self.win_len < need && self.load(off, need)? == need {
                rel = 0; // a record larger than the window
            } else {
                return Err(format!("incomplete record at byte offset {off}"));
            }
        }
    }

    fn try_read(
        &mut self,
        from: Seq,
        max_n: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, String> {
        self.scan()?;
        let mut out: Vec<Entry> = Vec::new();
        let mut bytes = 0;
        let first = from.0.max(1) as usize - 1;
        let end = first.saturating_add(max_n).min(self.offsets.len());
        for k in first..end {
            let off = self.offsets[k];
            let e = match self.record_at(off)? {
                Record::Entry(e) if e.seq_no.0 == k as u64 + 1 => e,
                other => {
                    return Err(format!(
                        "byte offset {off} holds {other:?}, not the entry at seq {}",
                        k + 1
                    ))
                }
            };
            bytes += e.approx_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }
}

/// Applies one record's effect to the offsets index.
fn index(offsets: &mut Vec<u64>, effect: SeqEffect, at: u64) -> Result<(), String> {
    match effect {
        SeqEffect::Append(seq) => {
            if seq.0 != offsets.len() as u64 + 1 {
                return Err(format!(
                    "entry seq {seq} at byte offset {at} where {} was expected",
                    offsets.len() + 1
                ));
            }
            offsets.push(at);
        }
        SeqEffect::Truncate(from) => offsets.truncate(from.0.saturating_sub(1) as usize),
        SeqEffect::Other => {}
    }
    Ok(())
}

impl ColdLog for ColdReader {
    fn read(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
        match self.try_read(from, max_n, max_bytes) {
            Ok(v) => v,
            Err(e) => panic!(
                "{}: cannot read back log entries from seq {from}: {e}",
                self.path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DurableLog;
    use chorus_core::{Body, Chat, NodeId, Term};

    fn chat(seq: u64, term: u64, payload: &str) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(term),
            body: Body::Chat(Chat {
                msg_id: format!("m{seq}-{term}"),
                room_id: "general".into(),
                sender_id: 7,
                user: None,
                payload: payload.into(),
                ts_ms: 1,
                event: None,
            }),
        }
    }

    fn append(log: &mut DurableLog, recs: &[Record]) {
        for r in recs {
            log.append(r);
        }
        log.write_queued().unwrap();
    }

    #[test]
    fn reads_back_many_entries_written_after_it_opened() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = DurableLog::open(dir.path()).unwrap();
        let mut r = ColdReader::open(o.log.path(), Vec::new(), 0).unwrap();
        let big = "x".repeat(3000); // some records straddle the window
        for s in 1..=2000u64 {
            let p = if s % 10 == 0 { big.as_str() } else { "hi" };
            append(
                &mut o.log,
                &[Record::Entry(chat(s, 1, p)), Record::Commit { seq: Seq(s) }],
            );
            if s % 500 == 0 {
                // Reads between appends: the scan resumes where it stopped.
                let got = r.read(Seq(s - 2), 3, usize::MAX);
                assert_eq!(
                    got.iter().map(|e| e.seq_no.0).collect::<Vec<_>>(),
                    [s - 2, s - 1, s]
                );
            }
        }
        let all = r.read(Seq(1), 5000, usize::MAX);
        assert_eq!(all.len(), 2000);
        assert!(all
            .iter()
            .zip(1..)
            .all(|(e, s)| e.seq_no == Seq(s) && e.msg_id() == Some(&format!("m{s}-1")[..])));
        assert_eq!(all[9].chat().unwrap().payload.len(), 3000);
        // The byte bound, as in the core's slice: at least one, then by sum.
        let one = all[0].approx_bytes();
        assert_eq!(r.read(Seq(1), 100, one * 3).len(), 3);
        assert_eq!(r.read(Seq(10), 100, 0).len(), 1);
        assert!(r.read(Seq(2001), 1, usize::MAX).is_empty());
    }

    #[test]
    fn truncations_invalidate_offsets_and_rewrites_win() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = DurableLog::open(dir.path()).unwrap();
        let mut r = ColdReader::open(o.log.path(), Vec::new(), 0).unwrap();
        let e = |s, t| Record::Entry(chat(s, t, "p"));
        append(&mut o.log, &[e(1, 1), e(2, 1), e(3, 1), e(4, 1)]);
        assert_eq!(r.read(Seq(3), 2, usize::MAX)[1].term, Term(1));
        append(
            &mut o.log,
            &[
                Record::Term {
                    term: Term(2),
                    voted_for: Some(NodeId(2)),
                },
                Record::Truncate { from: Seq(3) },
                e(3, 2),
                Record::Truncate { from: Seq(4) }, // truncating past the end: nothing
                e(4, 2),
                e(5, 2),
            ],
        );
        let got = r.read(Seq(1), 10, usize::MAX);
        let terms: Vec<u64> = got.iter().map(|e| e.term.0).collect();
        assert_eq!(terms, [1, 1, 2, 2, 2]);
        assert_eq!(got[2].msg_id(), Some("m3-2"));
    }

    #[test]
    fn recovery_hands_the_index_over_and_the_node_reads_cold() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = DurableLog::open(dir.path()).unwrap();
        let recs: Vec<Record> = (1..=300).map(|s| Record::Entry(chat(s, 1, "p"))).collect();
        append(&mut o.log, &recs);
        append(
            &mut o.log,
            &[
                Record::Truncate { from: Seq(250) },
                Record::Commit { seq: Seq(200) },
            ],
        );
        drop(o);
        let o = DurableLog::open_into(dir.path(), Recovering::new(16)).unwrap();
        let rec = &o.replayed.recovered;
        // The truncation dropped the cached tail (285..=300): all 249 are cold.
        assert_eq!(
            (rec.entries.last_seq(), rec.entries.log.cached()),
            (Seq(249), 0)
        );
        assert_eq!(rec.entries.offsets.len(), 249);
        let me = chorus_core::PeerInfo {
            node_id: NodeId(1),
            host: "127.0.0.1".into(),
            port: 1,
        };
        let cfg = Config::new(me, vec![]);
        let path = o.log.path().to_path_buf();
        let mut n = node(cfg, o.replayed, &path, 1).unwrap();
        assert_eq!(n.entry(Seq(3)).unwrap().msg_id(), Some("m3-1"));
        assert_eq!(n.entry(Seq(249)).unwrap().msg_id(), Some("m249-1"));
        assert!(n.entry(Seq(250)).is_none());
        let batch = n.entries(Seq(230), 100);
        assert_eq!(batch.len(), 20);
    }
}
