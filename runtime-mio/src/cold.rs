//! Reading back the log entries the core dropped from memory: a `ColdLog`
//! over the node's own segment files, found through the sparse segment
//! index (`segments.rs`) that the writer (`storage.rs`) keeps up to date.
//!
//! A read of seqs `from..` asks the index for the span of one segment that
//! holds them (from the index point at or before `from` to the first point
//! after the last wanted seq), scans the record boundaries of that span for
//! the offset of the latest `Entry` record of each wanted seq (a `Truncate`
//! record there supersedes what came before it), then reads those records
//! with their checksums verified. Reads are positioned (`read_at`) and go
//! through one window of the file, so reading consecutive entries costs one
//! system call per window, not per entry. A read that spans segments is
//! served segment by segment.
//!
//! Why every entry the core asks for is in the files: the core evicts only
//! entries of batches that ended with a `Flush` step, and the runtime writes
//! every record of a batch (`DurableLog::commit`, called from `effects.rs`
//! right after the `Flush` step of the iteration) before it steps the core
//! again (the `chorus_core::io` contract). A written record is visible to
//! `read_at` through the page cache whether or not it was fsynced yet.
//!
//! A read that fails (I/O error, a record that does not check out) is fatal,
//! like a failed write: the node panics with the file and offset.

use crate::segments::{read_full, scan_records, Span, WINDOW_BYTES};
use crate::snapshots::SnapshotStore;
use crate::storage::{lock_index, SharedIndex};
use chorus_core::record::{decode_payload, peek_frame, FramePeek, Record, SeqEffect};
use chorus_core::{ColdLog, Entry, Seq};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Most entries one segment read looks for (bounds its offset table).
const MAX_READ_ENTRIES: u64 = 8192;

/// A `ColdLog` over segment files that the writer appends to.
#[derive(Debug)]
pub(crate) struct ColdReader {
    index: SharedIndex,
    /// The segment last read (most reads stay in one).
    file: Option<(PathBuf, File)>,
    /// `win[..win_len]` are the bytes of `file` from `win_at`; scans use
    /// their own buffer so they never evict it.
    win: Vec<u8>,
    win_len: usize,
    win_at: u64,
    scan_buf: Vec<u8>,
    /// The log_dir and bound of its snapshot files, read back to serve
    /// installs (`ColdLog::saved_snapshot`); None: the node keeps its own copy.
    snapshots: Option<(PathBuf, u64)>,
}

impl ColdReader {
    /// Also reads the snapshot files of `dir` back (bounded by `max_bytes`).
    pub(crate) fn with_snapshots(mut self, dir: &Path, max_bytes: u64) -> ColdReader {
        self.snapshots = Some((dir.to_path_buf(), max_bytes));
        self
    }

    pub(crate) fn new(index: SharedIndex) -> ColdReader {
        ColdReader {
            index,
            file: None,
            win: Vec::new(),
            win_len: 0,
            win_at: 0,
            scan_buf: Vec::new(),
            snapshots: None,
        }
    }

    /// Makes `path` the open segment.
    fn open(&mut self, path: &Path) -> Result<(), String> {
        if self.file.as_ref().is_some_and(|(p, _)| p == path) {
            return Ok(());
        }
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.file = Some((path.to_path_buf(), f));
        self.win_len = 0;
        Ok(())
    }

    /// Fills the window with up to `n` bytes from `at`; returns how many.
    fn load(&mut self, at: u64, n: usize) -> Result<usize, String> {
        self.win_len = 0; // valid again only if the read succeeds
        let (_, file) = self.file.as_ref().expect("opened before use");
        let got = read_full(file, &mut self.win, at, n)
            .map_err(|e| format!("read at byte offset {at}: {e}"))?;
        self.win_at = at;
        self.win_len = got;
        Ok(got)
    }

    /// The record that starts at byte `off` of the open segment (from the
    /// window if it holds it whole, else from a window loaded at `off`).
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

    /// The offsets of the current entries `span.from..` in the span (all
    /// of them to `span.to`, or fewer where `max_bytes` of them are found
    /// and an index point says the ones found are final).
    fn offsets(&mut self, span: &Span, max_bytes: usize) -> Result<Vec<u64>, String> {
        let from = span.from.0;
        let to = span.to.0;
        // offsets[k]: the latest Entry record of seq from + k seen so far.
        let mut offsets: Vec<u64> = Vec::new();
        let mut lens: Vec<usize> = Vec::new();
        let mut bytes = 0usize;
        let mut marks = span.marks.iter().peekable();
        let mut done = false;
        let file = &self.file.as_ref().expect("opened before use").1;
        scan_records(
            file,
            &mut self.scan_buf,
            span.start,
            span.stop,
            |off, effect, len| {
                while marks.next_if(|m| m.off < off).is_some() {}
                if let Some(m) = marks.peek() {
                    // Every seq below the point's is final here.
                    if m.off == off
                        && m.seq.0 > from
                        && offsets.len() as u64 == m.seq.0 - from
                        && bytes >= max_bytes
                    {
                        done = true;
                        return false;
                    }
                }
                match effect {
                    SeqEffect::Append(s) if s.0 < from => {
                        offsets.clear();
                        lens.clear();
                        bytes = 0;
                    }
                    SeqEffect::Append(s) if s.0 <= to => {
                        let k = (s.0 - from) as usize;
                        if k < offsets.len() {
                            offsets.truncate(k);
                            lens.truncate(k);
                            bytes = lens.iter().sum();
                        }
                        if k == offsets.len() {
                            offsets.push(off);
                            lens.push(len);
                            bytes += len;
                        }
                    }
                    SeqEffect::Append(_) | SeqEffect::Other => {}
                    // An installed snapshot: every entry before it is gone.
                    SeqEffect::Rebase(_) => {
                        offsets.clear();
                        lens.clear();
                        bytes = 0;
                    }
                    SeqEffect::Truncate(f) => {
                        let k = f.0.saturating_sub(from) as usize;
                        if k < offsets.len() {
                            offsets.truncate(k);
                            lens.truncate(k);
                            bytes = lens.iter().sum();
                        }
                    }
                }
                true
            },
        )
        .map_err(|e| e.to_string())?;
        if !done && offsets.len() as u64 != to - from + 1 {
            return Err(format!(
                "found {} of the entries {from}..={to} in bytes {}..{}",
                offsets.len(),
                span.start,
                span.stop
            ));
        }
        Ok(offsets)
    }

    fn try_read(
        &mut self,
        from: Seq,
        max_n: usize,
        max_bytes: usize,
        out: &mut Vec<Entry>,
    ) -> Result<(), String> {
        let mut bytes = 0usize;
        while out.len() < max_n {
            let next = Seq(from.0 + out.len() as u64);
            let want = ((max_n - out.len()) as u64).min(MAX_READ_ENTRIES);
            let span = lock_index(&self.index)
                .span(next, want)
                .map_err(|e| format!("reading a segment index: {e}"))?;
            let Some(span) = span else {
                return Ok(()); // beyond what was written: the caller checks
            };
            self.open(&span.path)?;
            let where_ = |e: String| format!("{}: {e}", span.path.display());
            let offsets = self
                .offsets(&span, max_bytes.saturating_sub(bytes))
                .map_err(where_)?;
            for (k, off) in offsets.into_iter().enumerate() {
                let seq = next.0 + k as u64;
                let e = match self.record_at(off).map_err(where_)? {
                    Record::Entry(e) if e.seq_no.0 == seq => e,
                    other => {
                        return Err(where_(format!(
                            "byte offset {off} holds {other:?}, not the entry at seq {seq}"
                        )))
                    }
                };
                bytes += e.approx_bytes();
                if !out.is_empty() && bytes > max_bytes {
                    return Ok(());
                }
                out.push(e);
            }
        }
        Ok(())
    }
}

impl ColdLog for ColdReader {
    fn serves_snapshots(&self) -> bool {
        self.snapshots.is_some()
    }

    /// The newest snapshot file, verified whole, if it is the one at `seq`
    /// (a read error or a newer save: None, the member asks again).
    fn saved_snapshot(&mut self, seq: Seq) -> Option<Vec<u8>> {
        let (dir, max) = self.snapshots.as_ref()?;
        match SnapshotStore::open_read_only(dir, *max).and_then(|mut s| s.load_latest()) {
            Ok(Some(l)) if l.meta.seq == seq => Some(l.bytes),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cannot read the snapshot at seq {seq} back to serve it: {e}");
                None
            }
        }
    }

    fn read(&mut self, from: Seq, max_n: usize, max_bytes: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        if let Err(e) = self.try_read(from, max_n, max_bytes, &mut out) {
            panic!("cannot read back log entries from seq {from}: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DurableLog;
    use chorus_core::{Body, Chat, Config, Log, Node, NodeId, Term};

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

    /// Small segments, so that reads cross them.
    const SEG: u64 = 20_000;

    fn open(dir: &Path) -> DurableLog {
        DurableLog::open_into(dir, Vec::new(), SEG).unwrap().log
    }

    #[test]
    fn reads_back_many_entries_across_segments_written_after_it_opened() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let mut r = ColdReader::new(log.index());
        let big = "x".repeat(3000); // some records straddle the window
        for s in 1..=2000u64 {
            let p = if s % 10 == 0 { big.as_str() } else { "hi" };
            append(
                &mut log,
                &[Record::Entry(chat(s, 1, p)), Record::Commit { seq: Seq(s) }],
            );
            if s % 500 == 0 {
                // Reads between appends see what was written since.
                let got = r.read(Seq(s - 2), 3, usize::MAX);
                assert_eq!(
                    got.iter().map(|e| e.seq_no.0).collect::<Vec<_>>(),
                    [s - 2, s - 1, s]
                );
            }
        }
        assert!(log.segments() > 20, "{} segments", log.segments());
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
        let mid = r.read(Seq(777), 300, 40_000);
        let want: usize = all[776..]
            .iter()
            .scan(0, |b, e| {
                *b += e.approx_bytes();
                Some(*b)
            })
            .take_while(|&b| b <= 40_000)
            .count();
        assert_eq!(mid.len(), want.max(1), "the byte bound across segments");
        assert!(r.read(Seq(2001), 1, usize::MAX).is_empty());
        // Sealed segments have their index files; the reader works from them
        // after a restart as well as from memory.
        drop(r);
        drop(log);
        let idx = fs_names(dir.path(), ".idx");
        assert!(idx.len() > 20, "{idx:?}");
        let log = open(dir.path());
        let mut r = ColdReader::new(log.index());
        let again = r.read(Seq(1), 5000, usize::MAX);
        assert_eq!(again, all);
    }

    fn fs_names(dir: &Path, suffix: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(suffix))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn truncations_supersede_entries_also_in_earlier_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let mut r = ColdReader::new(log.index());
        let e = |s, t| Record::Entry(chat(s, t, &"p".repeat(500)));
        // Terms 1: 1..=100 over several segments.
        for s in 1..=100 {
            append(&mut log, &[e(s, 1)]);
        }
        assert!(log.segments() >= 3);
        assert_eq!(r.read(Seq(3), 2, usize::MAX)[1].term, Term(1));
        // Cut back into the first segments and rewrite, in term 2.
        append(
            &mut log,
            &[
                Record::Term {
                    term: Term(2),
                    voted_for: Some(NodeId(2)),
                },
                Record::Truncate { from: Seq(20) },
            ],
        );
        for s in 20..=60 {
            append(&mut log, &[e(s, 2)]);
        }
        // And once more inside the last segment, twice at the same seq.
        append(&mut log, &[Record::Truncate { from: Seq(58) }, e(58, 3)]);
        append(&mut log, &[Record::Truncate { from: Seq(58) }, e(58, 4)]);
        append(&mut log, &[e(59, 4)]);
        let check = |got: Vec<Entry>| {
            let terms: Vec<u64> = got.iter().map(|e| e.term.0).collect();
            let mut want = vec![1; 19];
            want.extend(vec![2; 38]);
            want.extend([4, 4]);
            assert_eq!(terms, want);
            assert!(got.iter().zip(1..).all(|(e, s)| e.seq_no == Seq(s)));
        };
        check(r.read(Seq(1), 1000, usize::MAX));
        for s in [1, 19, 20, 21, 57, 58, 59] {
            let one = r.read(Seq(s), 1, usize::MAX);
            assert_eq!(one[0].seq_no, Seq(s));
        }
        assert!(r.read(Seq(60), 1, usize::MAX).is_empty(), "cut away");
        // The same after a restart (indexes from files and from replay).
        drop(r);
        drop(log);
        let o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
        assert_eq!(o.replayed.recovered.entries.len(), 59);
        let mut r = ColdReader::new(o.log.index());
        check(r.read(Seq(1), 1000, usize::MAX));
        // And with every index file gone (rebuilt from the segments).
        drop(r);
        drop(o);
        for n in fs_names(dir.path(), ".idx") {
            std::fs::remove_file(dir.path().join(n)).unwrap();
        }
        let log = open(dir.path());
        let mut r = ColdReader::new(log.index());
        check(r.read(Seq(1), 1000, usize::MAX));
    }

    #[test]
    fn recovery_hands_the_index_over_and_the_node_reads_cold() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let recs: Vec<Record> = (1..=300).map(|s| Record::Entry(chat(s, 1, "p"))).collect();
        for r in recs.chunks(7) {
            append(&mut log, r);
        }
        append(
            &mut log,
            &[
                Record::Truncate { from: Seq(250) },
                Record::Commit { seq: Seq(200) },
            ],
        );
        drop(log);
        let o = DurableLog::open_into(dir.path(), Log::new(16), SEG).unwrap();
        let rec = &o.replayed.recovered;
        // The truncation dropped the cached tail (285..=300): all 249 are cold.
        assert_eq!(
            (rec.entries.last_seq(), rec.entries.cached()),
            (Seq(249), 0)
        );
        let me = chorus_core::PeerInfo {
            node_id: NodeId(1),
            host: "127.0.0.1".into(),
            port: 1,
        };
        let cfg = Config::new(me, vec![]);
        let index = o.log.index();
        let mut n = Node::from_log(cfg, o.replayed.recovered, 1)
            .with_cold_log(Box::new(ColdReader::new(index)));
        assert_eq!(n.entry(Seq(3)).unwrap().msg_id(), Some("m3-1"));
        assert_eq!(n.entry(Seq(249)).unwrap().msg_id(), Some("m249-1"));
        assert!(n.entry(Seq(250)).is_none());
        let batch = n.entries(Seq(230), 100);
        assert_eq!(batch.len(), 20);
    }
}
