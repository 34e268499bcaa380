//! The durable log of one node: the segment files of `log_dir` (`chorus.log`,
//! then `chorus.log.<offset>`; see `segments.rs`), each an append-only run of
//! the core's checksummed records (`chorus_core::record`), and `log_dir/LOCK`.
//!
//! Invariants: one process owns a log_dir (an exclusive lock on `LOCK`, freed
//! by the OS when the process dies, even by SIGKILL); only the last segment
//! is written, and files only grow, except that a torn tail left by a crash
//! is cut from the last segment at startup; `write_queued` writes every
//! queued record in one write (the fsync thread of `syncer.rs` or `sync_now`
//! makes it durable), and any failure is returned as fatal
//! (`RuntimeError::Storage`), never retried or ignored.
//! A new segment starts, between two writes, once the last one holds
//! `segment_bytes`: the full one is fsynced first, then the new file is
//! created and the directory fsynced, so a segment that another follows is
//! always durable whole, and a torn record anywhere but at the end of the
//! last segment is corruption, refused with the file and offset.
//! Every new segment begins with a copy of the node's current Term record
//! (term and vote), so a replay that starts at any segment written this way
//! recovers them: after retention deleted the segments before it
//! (`delete_segments_before`, which only ever leaves such a segment first),
//! or when a restart skips the history a snapshot holds (`open_after`).
//! A log whose first segments are gone replays from the first one left: the
//! entries then start above seq 1 (`Opened::start_seq` says where), which is
//! not corruption; a gap between two segments still is.
//! `read_only` serves `chorus log inspect`: it never writes or truncates.
//! `repair` serves `chorus log repair`: it backs a file up before cutting.
//! Both also report the snapshot files of the log_dir (`snapshots.rs`).

use crate::error::RuntimeError;
use crate::segments::{self, index_path, segment_name, write_index, SegIndex, SegmentFile};
pub use crate::segments::{DEFAULT_SEGMENT_BYTES, LOG_FILE};
use crate::snapshots;
use chorus_core::record::{self, EntrySink, Record, Replayed, SegmentSource, SeqEffect};
use chorus_core::{Entry, NodeId, Seq, Term};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The lock file's name inside a log_dir.
pub const LOCK_FILE: &str = "LOCK";

/// The segment file the fsync thread syncs: the writer swaps in each new one
/// (after fsyncing the one before whole).
pub(crate) type SyncTarget = Arc<Mutex<Arc<File>>>;

/// The shared segment index (writer and reader are on one thread; the mutex
/// is what makes the reader `Send`).
pub(crate) type SharedIndex = Arc<Mutex<SegIndex>>;

pub(crate) fn lock_index(ix: &Mutex<SegIndex>) -> MutexGuard<'_, SegIndex> {
    // Nothing panics while holding it but a bug; the index is still sound.
    ix.lock().unwrap_or_else(|p| p.into_inner())
}

/// An open, locked, recovered log.
#[derive(Debug)]
pub struct DurableLog {
    dir: PathBuf,
    /// The last segment, open for appending.
    file: Arc<File>,
    path: PathBuf,
    /// Where the last segment starts in the log.
    base: u64,
    segment_bytes: u64,
    sync_target: SyncTarget,
    index: SharedIndex,
    /// A segment was sealed at `append` (its points, for its index file);
    /// the next `write_queued` creates the new one first.
    roll: Option<segments::Sealed>,
    /// The last Term record (term, vote) of the log: copied at the top of
    /// each new segment. None while no Term record was ever written.
    term: Option<(Term, Option<NodeId>)>,
    /// Held for the life of the node: the lock lives as long as this handle.
    _lock: File,
    queued: Vec<u8>,
    written_bytes: u64,
    /// The last seq of the log as of the records appended so far (a
    /// truncation lowers it).
    last_seq: Seq,
    /// (log offset, last seq of the log once the log ends there), one per
    /// write not yet known durable: what `durable_seq` reads.
    marks: VecDeque<(u64, Seq)>,
    /// The last seq of the durable prefix of the log.
    durable_seq: Seq,
}

/// What `open` found (entries in a `Vec`, or where `open_into` put them).
#[derive(Debug)]
pub struct Opened<E = Vec<Entry>> {
    pub log: DurableLog,
    pub replayed: Replayed<E>,
    /// Bytes of torn tail that were cut (0 after a clean stop).
    pub torn_bytes: u64,
    /// The log's last seq where replay began: 0 when it began at the log's
    /// first byte; K when the first segment replayed starts with entry K+1
    /// (earlier segments deleted by retention, or skipped by `open_after`).
    /// Entries up to it must come from a snapshot.
    pub start_seq: Seq,
    /// Segment files on disk that replay skipped (`open_after`).
    pub skipped_segments: usize,
}

fn log_dir_err(dir: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let dir = dir.to_path_buf();
    move |err| RuntimeError::LogDir { dir, what, err }
}

fn storage_err(file: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let file = file.to_path_buf();
    move |err| RuntimeError::Storage { file, op, err }
}

/// Takes the lock of `dir` (creating it), or says who holds it.
fn lock(dir: &Path) -> Result<File, RuntimeError> {
    let path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(log_dir_err(dir, "cannot open LOCK"))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut owner = String::new();
            let _ = f.read_to_string(&mut owner);
            let owner = match owner.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            return Err(RuntimeError::Locked {
                dir: dir.to_path_buf(),
                owner,
            });
        }
        Err(TryLockError::Error(e)) => return Err(log_dir_err(dir, "cannot lock LOCK")(e)),
    }
    f.set_len(0)
        .and_then(|_| f.write_all(std::process::id().to_string().as_bytes()))
        .map_err(log_dir_err(dir, "cannot write LOCK"))?;
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<(), RuntimeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(log_dir_err(dir, "cannot sync the directory"))
}

/// The segment holding byte `offset` of the log, and the offset in it.
fn locate(files: &[SegmentFile], offset: u64) -> (&SegmentFile, u64) {
    let k = files
        .partition_point(|f| f.base <= offset)
        .saturating_sub(1);
    (&files[k], offset - files[k].base)
}

fn corrupt(dir: &Path, files: &[SegmentFile], e: record::ReplayError) -> RuntimeError {
    let record::ReplayError::Corrupt { offset, reason } = e;
    let (f, at) = locate(files, offset);
    RuntimeError::Corrupt {
        file: f.path.clone(),
        dir: dir.to_path_buf(),
        offset: at,
        reason,
    }
}

/// The segments of `dir`, or a `Read` error naming it.
fn list(dir: &Path) -> Result<Vec<SegmentFile>, RuntimeError> {
    segments::list(dir).map_err(|err| RuntimeError::Read {
        file: dir.to_path_buf(),
        err,
    })
}

/// Replays `files[from..]` in order into `entries`.
fn replay_files<E: EntrySink>(
    dir: &Path,
    files: &[SegmentFile],
    from: usize,
    entries: E,
) -> Result<Replayed<E>, RuntimeError> {
    let mut sources = Vec::with_capacity(files.len());
    for f in &files[from..] {
        let reader = File::open(&f.path).map_err(|err| RuntimeError::Read {
            file: f.path.clone(),
            err,
        })?;
        // Read no further than the length listed: what is replayed is what
        // the verdicts (torn tail, segment bases) were judged on.
        sources.push(SegmentSource {
            base: f.base,
            len: f.len,
            reader: reader.take(f.len),
        });
    }
    record::replay_segments(sources, entries)
        .map_err(|err| RuntimeError::Read {
            file: dir.to_path_buf(),
            err,
        })?
        .map_err(|e| corrupt(dir, files, e))
}

/// Replay's sink between the records and the caller's sink when replay may
/// begin after the log's first entry: it keeps the log's own last seq
/// (which the records are checked against) and hands the caller only the
/// entries above `skip` (those below are in the caller's snapshot).
struct Anchored<E> {
    inner: E,
    /// The log's last seq as of the records replayed so far.
    last: Seq,
    skip: Seq,
}

impl<E: EntrySink> EntrySink for Anchored<E> {
    fn last_seq(&self) -> Seq {
        self.last
    }
    fn push(&mut self, e: Entry, offset: u64) {
        self.last = e.seq_no;
        if e.seq_no > self.skip {
            self.inner.push(e, offset);
        } else {
            self.inner.covered(e.seq_no, e.term);
        }
    }
    fn truncate(&mut self, from: Seq) {
        self.truncate_at(from, 0);
    }
    fn truncate_at(&mut self, from: Seq, offset: u64) {
        self.last = self.last.min(Seq(from.0 - 1));
        let from = from.max(Seq(self.skip.0 + 1));
        if from <= self.inner.last_seq() {
            self.inner.truncate_at(from, offset);
        }
    }
    fn rebase(&mut self, seq: Seq, term: Term) -> Result<(), String> {
        self.last = seq;
        if seq > self.skip {
            // An install newer than the caller's snapshot replaces it all.
            self.skip = seq;
            return self.inner.rebase(seq, term);
        }
        // The caller's snapshot is newer than this install: it holds
        // everything up to `skip`; drop what came before the install above it.
        let from = Seq(self.skip.0 + 1);
        if from <= self.inner.last_seq() {
            self.inner.truncate(from);
        }
        self.inner.covered(seq, term);
        Ok(())
    }
}

/// Entries in a `Vec`, the first of them at any seq (a log whose first
/// segments are gone, or one where a snapshot was installed: the seq after
/// which they start): for the tools, which want the entries themselves.
#[derive(Debug, Default)]
struct SeqVec(Vec<Entry>, Seq);

impl EntrySink for SeqVec {
    fn last_seq(&self) -> Seq {
        self.0.last().map_or(self.1, |e| e.seq_no)
    }
    fn push(&mut self, e: Entry, _offset: u64) {
        self.0.push(e);
    }
    fn truncate(&mut self, from: Seq) {
        let keep = self.0.partition_point(|e| e.seq_no < from);
        self.0.truncate(keep);
    }
    fn rebase(&mut self, seq: Seq, _term: Term) -> Result<(), String> {
        self.0.clear();
        self.1 = seq;
        Ok(())
    }
}

/// Where replay begins: segment `k`, the log's last seq being `anchor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Start {
    k: usize,
    anchor: Seq,
    /// Entries above it in the segments before `k` are not current (the
    /// anchor, or 0 when `k` opens with an installed snapshot).
    ceiling: Seq,
}

fn read_err(file: &Path) -> impl FnOnce(io::Error) -> RuntimeError {
    let file = file.to_path_buf();
    move |err| RuntimeError::Read { file, err }
}

/// The log's last seq where segment `f` begins, from its first record that
/// changes the entries (`fallback` if it has none). The first segment of the
/// log begins at 0 whatever it holds (so its first entry must be seq 1).
fn anchor_of(f: &SegmentFile, fallback: Seq) -> Result<Seq, RuntimeError> {
    Ok(start_at(0, f, fallback)?.anchor)
}

/// Replay starting at segment `k`, the file `f`.
fn start_at(k: usize, f: &SegmentFile, fallback: Seq) -> Result<Start, RuntimeError> {
    if f.base == 0 {
        return Ok(Start {
            k,
            anchor: Seq(0),
            ceiling: Seq(0),
        });
    }
    let head = segments::head(&f.path, f.len).map_err(read_err(&f.path))?;
    let installed = matches!(head.first_effect, Some(SeqEffect::Rebase(_)));
    let anchor = match head.first_effect {
        Some(SeqEffect::Append(s)) => Seq(s.0.saturating_sub(1)),
        // The entries after it start at `from` (a truncation is written
        // only at or below the log's end).
        Some(SeqEffect::Truncate(from)) => Seq(from.0.saturating_sub(1)),
        // The log is at the installed snapshot's seq after it, and a Commit
        // before it was at most that (the core installs only ahead of its
        // commit point).
        Some(SeqEffect::Rebase(seq)) => seq,
        Some(SeqEffect::Other) | None => fallback,
    };
    Ok(Start {
        k,
        anchor,
        ceiling: if installed { Seq(0) } else { anchor },
    })
}

/// Where to begin replay to recover every entry above `after`: the last
/// segment whose first entry is at most `after + 1` (an entry record below
/// a later segment's first one was superseded before that segment began),
/// provided it begins with a Term record; else the first segment on disk.
fn start_for(
    files: &[SegmentFile],
    index: &mut SegIndex,
    after: Seq,
) -> Result<Start, RuntimeError> {
    let whole =
        |files: &[SegmentFile]| -> Result<Start, RuntimeError> { start_at(0, &files[0], after) };
    if after == Seq(0) {
        return whole(files);
    }
    let last = files.len() - 1;
    let mut found = None;
    for k in (1..files.len()).rev() {
        let f = &files[k];
        let first = if k == last {
            // The active segment has no index file: its first records say.
            match segments::head(&f.path, f.len)
                .map_err(read_err(&f.path))?
                .first_effect
            {
                Some(SeqEffect::Append(s) | SeqEffect::Truncate(s)) => Some(s),
                Some(SeqEffect::Rebase(s)) => Some(s),
                _ => None,
            }
        } else {
            index.bounds(k).map_err(read_err(&f.path))?.first
        };
        // The segment that holds entry `after` itself (or the install
        // record at it): the snapshot's sink checks the log agrees there.
        if first.is_some_and(|s| s.0 <= after.0) {
            found = Some(k);
            break;
        }
    }
    let Some(k) = found else {
        return whole(files);
    };
    let f = &files[k];
    if !segments::head(&f.path, f.len)
        .map_err(read_err(&f.path))?
        .term_first
    {
        // Written before segments began with a Term record: the term and
        // vote may be in an earlier one.
        return whole(files);
    }
    start_at(k, f, after)
}

/// Replay's sink: the caller's, plus the segment index.
struct Indexing<E> {
    inner: E,
    index: SegIndex,
    err: Option<io::Error>,
}

impl<E: EntrySink> EntrySink for Indexing<E> {
    fn last_seq(&self) -> Seq {
        self.inner.last_seq()
    }
    fn push(&mut self, e: Entry, offset: u64) {
        if let Err(err) = self.index.on_entry(e.seq_no, offset) {
            self.err.get_or_insert(err);
        }
        self.inner.push(e, offset);
    }
    fn truncate(&mut self, from: Seq) {
        self.inner.truncate(from);
    }
    fn truncate_at(&mut self, from: Seq, offset: u64) {
        if let Err(err) = self.index.on_truncate(from, offset) {
            self.err.get_or_insert(err);
        }
        self.inner.truncate(from);
    }
    fn rebase(&mut self, seq: Seq, term: Term) -> Result<(), String> {
        self.index.on_rebase();
        self.inner.rebase(seq, term)
    }
}

impl DurableLog {
    /// Locks `dir`, replays its log and cuts a torn tail (made durable before
    /// anything new is appended); segments of the default size.
    pub fn open(dir: &Path) -> Result<Opened, RuntimeError> {
        DurableLog::open_into(dir, Vec::new(), DEFAULT_SEGMENT_BYTES)
    }

    /// `open`, replaying the entries into `entries` while streaming the
    /// segments (never all of them, nor all entries, in memory unless
    /// `entries` keeps them); new segments start after `segment_bytes`.
    ///
    /// A log_dir whose first segments were deleted replays from the first
    /// segment left, its entries starting above seq 1 (`Opened::start_seq`);
    /// `entries` then receives them from there (a sink that needs them
    /// contiguous from its own end should use `open_after`).
    pub fn open_into<E: EntrySink>(
        dir: &Path,
        entries: E,
        segment_bytes: u64,
    ) -> Result<Opened<E>, RuntimeError> {
        DurableLog::open_from(dir, entries, segment_bytes, Seq(0))
    }

    /// `open_into` for a node that holds a snapshot at `snapshot`: replays
    /// only the segments from the one holding entry `snapshot + 1` on (the
    /// history before it is in the snapshot), recovering term and vote from
    /// the copy at that segment's top. `entries` must already hold the log
    /// up to `snapshot` (`entries.last_seq() == snapshot`, e.g. a log
    /// restored from the snapshot); it receives only the entries above it.
    /// Falls back to replaying every segment on disk if the one to start at
    /// lacks the Term copy (written before this version).
    pub fn open_after<E: EntrySink>(
        dir: &Path,
        snapshot: Seq,
        entries: E,
        segment_bytes: u64,
    ) -> Result<Opened<E>, RuntimeError> {
        DurableLog::open_from(dir, entries, segment_bytes, snapshot)
    }

    fn open_from<E: EntrySink>(
        dir: &Path,
        entries: E,
        segment_bytes: u64,
        snapshot: Seq,
    ) -> Result<Opened<E>, RuntimeError> {
        fs::create_dir_all(dir).map_err(log_dir_err(dir, "cannot create it"))?;
        let lock = lock(dir)?;
        let mut files = list(dir)?;
        if files.is_empty() {
            let path = dir.join(LOG_FILE);
            File::create(&path).map_err(log_dir_err(dir, "cannot create chorus.log"))?;
            // The new file's directory entry must survive a crash too.
            sync_dir(dir)?;
            files.push(SegmentFile {
                base: 0,
                path,
                len: 0,
            });
        }
        let mut index = SegIndex::new(&files);
        let start = start_for(&files, &mut index, snapshot)?;
        index.replay_starts(start.k);
        // The entries kept before where replay starts stay readable.
        index
            .recover_skipped(start.k, start.ceiling)
            .map_err(read_err(&files[0].path))?;
        let sink = Indexing {
            inner: Anchored {
                inner: entries,
                last: start.anchor,
                skip: snapshot,
            },
            index,
            err: None,
        };
        let replayed = replay_files(dir, &files, start.k, sink)?;
        let last = files.last().expect("at least one segment").clone();
        let path = last.path.clone();
        let Replayed {
            recovered,
            valid_len,
            records,
        } = replayed;
        let Indexing {
            inner: anchored,
            mut index,
            err,
        } = recovered.entries;
        // The log's end, or the snapshot's if the log is behind it.
        let recovered_last = anchored.last.max(anchored.inner.last_seq());
        let inner = anchored.inner;
        if let Some(err) = err.map_or_else(|| index.flush_replay().err(), Some) {
            return Err(storage_err(&path, "writing a segment index")(err));
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(storage_err(&path, "opening the last segment"))?;
        let torn_bytes = last.base + last.len - valid_len;
        if torn_bytes > 0 {
            file.set_len(valid_len - last.base)
                .map_err(storage_err(&path, "truncating the torn tail"))?;
        }
        // What we just replayed may still sit unsynced in the page cache (the
        // previous run was killed between its write and its fsync). The core is
        // about to act on it (acknowledge it to a leader, claim with it), so it
        // must be durable first, whether or not a tail was cut. (Segments
        // before the last were fsynced whole before the next one began.)
        file.sync_all()
            .map_err(storage_err(&path, "fsync of the recovered log"))?;
        index.written(valid_len - last.base);
        let term = (recovered.term > Term(0) || recovered.voted_for.is_some())
            .then_some((recovered.term, recovered.voted_for));
        let file = Arc::new(file);
        let mut opened = Opened {
            log: DurableLog {
                dir: dir.to_path_buf(),
                sync_target: Arc::new(Mutex::new(file.clone())),
                file,
                path,
                base: last.base,
                segment_bytes: segment_bytes.max(1),
                index: Arc::new(Mutex::new(index)),
                roll: None,
                term,
                _lock: lock,
                queued: Vec::new(),
                written_bytes: valid_len,
                last_seq: recovered_last,
                marks: VecDeque::new(),
                durable_seq: recovered_last,
            },
            replayed: Replayed {
                recovered: record::Recovered {
                    term: recovered.term,
                    voted_for: recovered.voted_for,
                    entries: inner,
                    commit_seq: recovered.commit_seq,
                },
                valid_len,
                records,
            },
            torn_bytes,
            start_seq: start.anchor,
            skipped_segments: start.k,
        };
        if valid_len == last.base && last.base > 0 {
            // A crash right after a new segment was created, before its
            // first write: it must still open with the Term copy.
            if let Some((term, voted_for)) = opened.log.term {
                opened.log.append(&Record::Term { term, voted_for });
            }
        }
        Ok(opened)
    }

    /// The last segment's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log_dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment index, shared with the reader of evicted entries.
    pub(crate) fn index(&self) -> SharedIndex {
        self.index.clone()
    }

    /// Number of segment files.
    pub fn segments(&self) -> usize {
        lock_index(&self.index).segments()
    }

    /// Queues one record for the next `write_queued`; returns the log
    /// offset at which it will end.
    pub fn append(&mut self, rec: &Record) -> u64 {
        let mut at = self.written_bytes + self.queued.len() as u64;
        let mut ix = lock_index(&self.index);
        if self.queued.is_empty() && self.roll.is_none() && at - self.base >= self.segment_bytes {
            // Between two writes: the next one goes to a new segment, which
            // opens with the current term and vote (unless `rec` is a newer
            // Term record itself), so a replay from there recovers them.
            self.roll = ix.roll(at, self.dir.join(segment_name(at)));
            if let (Some((term, voted_for)), false) =
                (self.term, matches!(rec, Record::Term { .. }))
            {
                record::encode(&Record::Term { term, voted_for }, &mut self.queued);
                at += self.queued.len() as u64;
            }
        }
        // The active segment's points are in memory: no I/O can fail here.
        let indexed = match rec {
            Record::Entry(e) => ix.on_entry(e.seq_no, at),
            Record::Truncate { from } => ix.on_truncate(*from, at),
            Record::Snapshot { .. } => ix.on_truncate(Seq(1), at),
            Record::Term { .. } | Record::Commit { .. } => Ok(()),
        };
        debug_assert!(indexed.is_ok(), "the active segment needs no I/O");
        drop(ix);
        record::encode(rec, &mut self.queued);
        match rec {
            Record::Entry(e) => self.last_seq = e.seq_no,
            Record::Truncate { from } => self.last_seq = self.last_seq.min(Seq(from.0 - 1)),
            Record::Snapshot { seq, .. } => self.last_seq = *seq,
            Record::Term { term, voted_for } => self.term = Some((*term, *voted_for)),
            Record::Commit { .. } => {}
        }
        self.written_bytes + self.queued.len() as u64
    }

    /// Seals the full segment (durable whole, its index written) and makes
    /// the new one, at the current end of the log, the one written and synced.
    fn start_segment(&mut self) -> Result<(), RuntimeError> {
        let Some(sealed) = self.roll.take() else {
            return Ok(());
        };
        self.file
            .sync_data()
            .map_err(storage_err(&sealed.path, "fsync of a full segment"))?;
        write_index(
            &index_path(&sealed.path),
            sealed.len,
            &sealed.meta,
            &sealed.points,
        )
        .map_err(storage_err(&sealed.path, "writing the segment index"))?;
        let base = self.written_bytes;
        let path = self.dir.join(segment_name(base));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(storage_err(&path, "creating a segment"))?;
        sync_dir(&self.dir)?;
        self.file = Arc::new(file);
        self.path = path;
        self.base = base;
        *self.sync_target.lock().unwrap_or_else(|p| p.into_inner()) = self.file.clone();
        Ok(())
    }

    /// Writes every queued record in one write (into the page cache: not yet
    /// durable); returns the log's new end.
    pub fn write_queued(&mut self) -> Result<u64, RuntimeError> {
        if self.queued.is_empty() {
            return Ok(self.written_bytes);
        }
        self.start_segment()?;
        (&*self.file)
            .write_all(&self.queued)
            .map_err(storage_err(&self.path, "write"))?;
        self.written_bytes += self.queued.len() as u64;
        self.queued.clear();
        if self.queued.capacity() > 4 << 20 {
            self.queued.shrink_to(64 * 1024);
        }
        lock_index(&self.index).written(self.written_bytes - self.base);
        self.marks.push_back((self.written_bytes, self.last_seq));
        Ok(self.written_bytes)
    }

    /// fdatasync on this thread (the unsafe-ack path and tests; the node's
    /// loop uses the fsync thread instead).
    pub fn sync_now(&mut self) -> Result<(), RuntimeError> {
        self.file
            .sync_data()
            .map_err(storage_err(&self.path, "fsync"))?;
        self.durable_up_to(self.written_bytes);
        Ok(())
    }

    /// Writes the queued records and fsyncs them here and now.
    pub fn commit(&mut self) -> Result<(), RuntimeError> {
        self.write_queued()?;
        self.sync_now()
    }

    /// What the fsync thread syncs: the last segment, swapped at each new one.
    pub(crate) fn sync_target(&self) -> SyncTarget {
        self.sync_target.clone()
    }

    /// Everything up to `offset` is durable: advances `durable_seq`.
    pub fn durable_up_to(&mut self, offset: u64) {
        while let Some(&(end, seq)) = self.marks.front() {
            if end > offset {
                break;
            }
            self.durable_seq = seq;
            self.marks.pop_front();
        }
    }

    /// The highest seq up to which the log is durable in its current
    /// version: the durable prefix of the log, lowered by any truncation
    /// written but not yet durable (entries past it may be replaced ones).
    pub fn stable_seq(&self) -> Seq {
        self.marks
            .iter()
            .map(|&(_, s)| s)
            .fold(self.durable_seq, Seq::min)
    }

    /// Bytes of records written to the log (durable or not).
    pub fn len_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Retention: deletes the segments at the front of the log whose entry
    /// records are all below `before` (the entries a durable snapshot
    /// holds), with their index files, oldest first, then fsyncs the
    /// directory. Never the active segment (nor one sealed but not yet
    /// followed by its successor on disk), and never so that the first
    /// segment left lacks the Term record copy at its top (segments written
    /// before this version: deletion stops before them). If the active
    /// segment is to be the first left, it is fsynced first (on this
    /// thread), so the Term copy at its top is durable before the segments
    /// holding the originals go; a sealed one was fsynced whole already.
    pub fn delete_segments_before(&mut self, before: Seq) -> Result<Removed, RuntimeError> {
        let mut ix = lock_index(&self.index);
        // A segment sealed at `append` has no successor file until the next
        // write: it counts as active.
        let keep_from = ix.segments() - 1 - usize::from(self.roll.is_some());
        let mut n = 0;
        let mut stopped = None;
        while n < keep_from {
            let path = ix.file(n).0.to_path_buf();
            let b = ix
                .bounds(n)
                .map_err(storage_err(&path, "reading a segment index"))?;
            if let Some(max) = b.max.filter(|&m| m >= before) {
                stopped = Some(Stopped::Holds(max));
                break;
            }
            n += 1;
        }
        // The first segment left must open with the Term copy (unless no
        // Term record was ever written): the latest such cut.
        while n > 0 && self.term.is_some() {
            let (next, next_len) = ix.file(n);
            let head = segments::head(next, next_len)
                .map_err(storage_err(next, "reading the start of a segment"))?;
            if head.term_first {
                break;
            }
            stopped = Some(Stopped::NoTermCopy(next.to_path_buf()));
            n -= 1;
        }
        if n > 0 && n + 1 == ix.segments() {
            self.file
                .sync_data()
                .map_err(storage_err(&self.path, "fsync before retention"))?;
        }
        let mut removed = Removed {
            stopped,
            ..Removed::default()
        };
        let mut failed = None;
        for k in 0..n {
            let (path, len) = ix.file(k);
            let path = path.to_path_buf();
            // The index first: a crash between the two leaves a segment
            // without an index (rebuilt), never an orphan index.
            let gone = remove_if_present(&index_path(&path)).and_then(|_| fs::remove_file(&path));
            if let Err(e) = gone {
                failed = Some(storage_err(&path, "deleting a segment")(e));
                break;
            }
            removed.segments += 1;
            removed.bytes += len;
            removed.paths.push(path);
        }
        ix.drop_front(removed.segments);
        drop(ix);
        if removed.segments > 0 {
            sync_dir(&self.dir)?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// What `delete_segments_before` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Segment files deleted (each with its index file).
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    pub paths: Vec<PathBuf>,
    /// Why it kept the next segment, if not because it is the active one.
    pub stopped: Option<Stopped>,
}

/// Why retention kept a segment that is not the active one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It holds an entry record at this seq, not below `before`.
    Holds(Seq),
    /// The segment after it does not open with a Term record copy (written
    /// before this version): deleting would lose the term and vote.
    NoTermCopy(PathBuf),
}

/// The whole log of `dir` as one stream (its segments in order, up to
/// `len` bytes): what a recording copies as its base.
pub fn read_all(dir: &Path, len: u64) -> io::Result<impl Read> {
    let mut chain: Box<dyn Read + Send> = Box::new(io::empty());
    for f in segments::list(dir)? {
        let file = File::open(&f.path)?;
        chain = Box::new(chain.chain(file.take(f.len)));
    }
    Ok(chain.take(len))
}

/// A log read without locking or changing it.
#[derive(Debug)]
pub struct Snapshot {
    pub path: PathBuf,
    /// Its entries (from `start_seq + 1` on).
    pub replayed: Replayed,
    /// Bytes in its segments (more than `replayed.valid_len` by a torn tail).
    pub file_len: u64,
    pub segments: usize,
    /// The log's last seq before its first segment on disk: 0 for a whole
    /// log; K when retention deleted the segments holding 1..=K.
    pub start_seq: Seq,
    /// The snapshot files of the log_dir, newest first, each verified.
    pub snapshots: Vec<snapshots::FileReport>,
}

/// Replays every segment of `files` for a tool, from the first one on disk
/// (wherever it starts); returns the log's last seq before it too.
fn replay_for_tool<E: EntrySink>(
    dir: &Path,
    files: &[SegmentFile],
    entries: E,
) -> Result<(Replayed<E>, Seq), RuntimeError> {
    let anchor = anchor_of(&files[0], Seq(0))?;
    let sink = Anchored {
        inner: entries,
        last: anchor,
        skip: Seq(0),
    };
    let r = replay_files(dir, files, 0, sink)?;
    let Replayed {
        recovered,
        valid_len,
        records,
    } = r;
    let replayed = Replayed {
        recovered: record::Recovered {
            term: recovered.term,
            voted_for: recovered.voted_for,
            entries: recovered.entries.inner,
            commit_seq: recovered.commit_seq,
        },
        valid_len,
        records,
    };
    Ok((replayed, anchor))
}

/// The snapshot files of `dir` for a tool (an unreadable directory: none).
fn snapshot_report(dir: &Path) -> Vec<snapshots::FileReport> {
    snapshots::report(dir, snapshots::DEFAULT_MAX_SNAPSHOT_BYTES).unwrap_or_default()
}

/// Reads the log of `dir` read-only: its segments, or the single log file
/// `dir` names (a segment of a log_dir means that log_dir).
pub fn read_only(dir: &Path) -> Result<Snapshot, RuntimeError> {
    let (dir, files) = if dir.is_file() {
        let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if segments::parse_segment_name(name).is_some() {
            let files = list(&parent)?;
            (parent, files)
        } else {
            let len = fs::metadata(dir)
                .map_err(|err| RuntimeError::Read {
                    file: dir.to_path_buf(),
                    err,
                })?
                .len();
            let one = SegmentFile {
                base: 0,
                path: dir.to_path_buf(),
                len,
            };
            (parent, vec![one])
        }
    } else {
        (dir.to_path_buf(), list(dir)?)
    };
    if files.is_empty() {
        return Err(RuntimeError::Read {
            file: dir.join(LOG_FILE),
            err: io::Error::new(io::ErrorKind::NotFound, "no log segment in it"),
        });
    }
    let (replayed, anchor) = replay_for_tool(&dir, &files, SeqVec::default())?;
    // After an installed snapshot, the entries start after it.
    let start_seq = anchor.max(replayed.recovered.entries.1);
    let last = files.last().expect("not empty");
    Ok(Snapshot {
        path: if files.len() == 1 {
            last.path.clone()
        } else {
            dir.clone()
        },
        replayed: Replayed {
            recovered: record::Recovered {
                term: replayed.recovered.term,
                voted_for: replayed.recovered.voted_for,
                entries: replayed.recovered.entries.0,
                commit_seq: replayed.recovered.commit_seq,
            },
            valid_len: replayed.valid_len,
            records: replayed.records,
        },
        file_len: last.base + last.len,
        segments: files.len(),
        start_seq,
        snapshots: snapshot_report(&dir),
    })
}

/// What `repair` did.
#[derive(Debug)]
pub struct Repair {
    /// The segment that was cut (or the last one).
    pub path: PathBuf,
    /// Where the whole original segment was copied (None: nothing to repair).
    pub backup: Option<PathBuf>,
    /// The segment now ends here.
    pub cut_at: u64,
    /// Bytes after `cut_at`, in it and in the segments after it (dropped if
    /// `backup` is set, else a torn tail the node cuts at start).
    pub dropped_bytes: u64,
    /// Why the record at `cut_at` was refused.
    pub reason: Option<String>,
    /// Later segments, renamed aside (`<name>.after-corrupt`): they followed
    /// the damage, so none of their records can be replayed.
    pub moved: Vec<PathBuf>,
    /// The snapshot files of the log_dir, newest first, each verified
    /// (repair leaves them alone).
    pub snapshots: Vec<snapshots::FileReport>,
}

/// Replay's sink for `repair`: the last seq only (nothing kept).
struct LastSeq(Seq);

impl EntrySink for LastSeq {
    fn last_seq(&self) -> Seq {
        self.0
    }
    fn push(&mut self, e: Entry, _offset: u64) {
        self.0 = e.seq_no;
    }
    fn truncate(&mut self, from: Seq) {
        self.0 = self.0.min(Seq(from.0 - 1));
    }
    fn rebase(&mut self, seq: Seq, _term: Term) -> Result<(), String> {
        self.0 = seq;
        Ok(())
    }
}

/// Cuts a corrupt log at its first damaged record, after copying the whole
/// segment that holds it to `<segment>.corrupt-at-OFFSET` (fsynced); the
/// segments after it are renamed aside. Takes the lock, so it refuses while
/// a node runs on `dir`. A healthy log is left unchanged.
pub fn repair(dir: &Path) -> Result<Repair, RuntimeError> {
    let _lock = lock(dir)?;
    let files = list(dir)?;
    let Some(last) = files.last() else {
        return Err(RuntimeError::Read {
            file: dir.join(LOG_FILE),
            err: io::Error::new(io::ErrorKind::NotFound, "no log segment in it"),
        });
    };
    let end = last.base + last.len;
    let (offset, reason) = match replay_for_tool(dir, &files, LastSeq(Seq(0))) {
        Ok((r, _)) => {
            return Ok(Repair {
                path: last.path.clone(),
                backup: None,
                cut_at: r.valid_len - last.base,
                dropped_bytes: end - r.valid_len,
                reason: None,
                moved: Vec::new(),
                snapshots: snapshot_report(dir),
            })
        }
        Err(RuntimeError::Corrupt {
            offset,
            reason,
            file,
            ..
        }) => {
            let f = files
                .iter()
                .find(|f| f.path == file)
                .expect("named segment");
            (f.base + offset, reason)
        }
        Err(e) => return Err(e),
    };
    let (seg, at) = locate(&files, offset);
    let path = seg.path.clone();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(LOG_FILE);
    let backup = dir.join(format!("{name}.corrupt-at-{at}"));
    fs::copy(&path, &backup).map_err(storage_err(&path, "writing the backup"))?;
    File::open(&backup)
        .and_then(|f| f.sync_all())
        .map_err(storage_err(&backup, "fsync of the backup"))?;
    let mut moved = Vec::new();
    for later in files.iter().filter(|f| f.base > seg.base).rev() {
        let mut aside = later.path.as_os_str().to_owned();
        aside.push(".after-corrupt");
        let aside = PathBuf::from(aside);
        fs::rename(&later.path, &aside).map_err(storage_err(&later.path, "moving aside"))?;
        let _ = fs::remove_file(index_path(&later.path));
        moved.push(aside);
    }
    moved.reverse();
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(storage_err(&path, "opening for repair"))?;
    f.set_len(at).map_err(storage_err(&path, "truncation"))?;
    f.sync_all()
        .map_err(storage_err(&path, "fsync after truncation"))?;
    let _ = fs::remove_file(index_path(&path));
    sync_dir(dir)?;
    Ok(Repair {
        path,
        backup: Some(backup),
        cut_at: at,
        dropped_bytes: end - offset,
        reason: Some(reason),
        moved,
        snapshots: snapshot_report(dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::{Body, Chat, Entry, NodeId, Seq, Term};

    fn chat(seq: u64) -> Record {
        Record::Entry(Entry {
            seq_no: Seq(seq),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: format!("m{seq}"),
                room_id: "general".into(),
                sender_id: 7,
                user: None,
                payload: "hi".into(),
                ts_ms: 1,
                event: None,
            }),
        })
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = DurableLog::open(dir.path()).unwrap();
        o.log.append(&Record::Term {
            term: Term(1),
            voted_for: Some(NodeId(1)),
        });
        o.log.append(&chat(1));
        o.log.append(&Record::Commit { seq: Seq(1) });
        o.log.commit().unwrap();
        drop(o);
        let o = DurableLog::open(dir.path()).unwrap();
        assert_eq!(o.replayed.recovered.entries.len(), 1);
        assert_eq!(o.replayed.recovered.commit_seq, Seq(1));
        assert_eq!(o.torn_bytes, 0);
    }

    #[test]
    fn a_second_owner_is_refused_while_the_first_lives() {
        let dir = tempfile::tempdir().unwrap();
        let first = DurableLog::open(dir.path()).unwrap();
        let err = DurableLog::open(dir.path()).unwrap_err();
        assert!(matches!(err, RuntimeError::Locked { .. }), "{err}");
        assert!(err
            .to_string()
            .contains(&format!("pid {}", std::process::id())));
        drop(first);
        DurableLog::open(dir.path()).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = DurableLog::open(dir.path()).unwrap();
        o.log.append(&chat(1));
        o.log.commit().unwrap();
        let good = o.log.len_bytes();
        drop(o);
        let mut bytes = Vec::new();
        record::encode(&chat(2), &mut bytes);
        let path = dir.path().join(LOG_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&bytes[..bytes.len() - 3]).unwrap();
        drop(f);
        let o = DurableLog::open(dir.path()).unwrap();
        assert_eq!(o.torn_bytes, bytes.len() as u64 - 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        assert_eq!(o.replayed.recovered.entries.len(), 1);
    }

    #[test]
    fn corruption_in_the_middle_names_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = DurableLog::open(dir.path()).unwrap();
        for s in 1..=3 {
            o.log.append(&chat(s));
        }
        o.log.commit().unwrap();
        drop(o);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let second = bytes.len() / 3;
        bytes[second + 20] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let err = DurableLog::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("chorus.log is corrupt at byte offset"),
            "{err}"
        );
        assert!(err.contains("chorus log repair"), "{err}");
        assert!(read_only(dir.path()).is_err());
        let r = repair(dir.path()).unwrap();
        assert_eq!(r.cut_at, second as u64);
        assert_eq!(fs::read(r.backup.unwrap()).unwrap(), bytes);
        let o = DurableLog::open(dir.path()).unwrap();
        assert_eq!(o.replayed.recovered.entries.len(), 1);
        assert!(
            repair(dir.path()).is_err(),
            "refused while the node holds the lock"
        );
        drop(o);
        assert!(repair(dir.path()).unwrap().backup.is_none(), "healthy now");
    }

    fn segmented(dir: &Path, n: u64) -> Vec<SegmentFile> {
        let mut o = DurableLog::open_into(dir, Vec::new(), 300).unwrap();
        for s in 1..=n {
            o.log.append(&chat(s));
            o.log.append(&Record::Commit { seq: Seq(s) });
            o.log.commit().unwrap();
        }
        drop(o);
        segments::list(dir).unwrap()
    }

    #[test]
    fn segments_roll_at_their_bound_and_replay_as_one_log() {
        let dir = tempfile::tempdir().unwrap();
        let files = segmented(dir.path(), 40);
        assert!(files.len() > 5, "{files:?}");
        assert_eq!(files[0].path, dir.path().join(LOG_FILE));
        for w in files.windows(2) {
            assert_eq!(w[0].base + w[0].len, w[1].base, "contiguous");
            assert!(w[0].len >= 300 && w[0].len < 400, "bounded: {}", w[0].len);
            assert!(index_path(&w[0].path).exists(), "sealed with an index");
        }
        let o = DurableLog::open_into(dir.path(), Vec::new(), 300).unwrap();
        let e = &o.replayed.recovered.entries;
        assert_eq!(e.len(), 40);
        assert!(e.iter().zip(1..).all(|(e, s)| e.seq_no == Seq(s)));
        assert_eq!(o.replayed.recovered.commit_seq, Seq(40));
        drop(o);
        let snap = read_only(dir.path()).unwrap();
        assert_eq!(snap.replayed.recovered.entries.len(), 40);
        assert_eq!(snap.segments, files.len());
        // A segment's own path means its log_dir.
        let snap = read_only(&files[2].path).unwrap();
        assert_eq!(snap.replayed.recovered.entries.len(), 40);
    }

    #[test]
    fn a_torn_record_in_a_middle_segment_is_corruption_and_repair_cuts_there() {
        let dir = tempfile::tempdir().unwrap();
        let files = segmented(dir.path(), 40);
        let mid = &files[2];
        let f = OpenOptions::new().write(true).open(&mid.path).unwrap();
        f.set_len(mid.len - 5).unwrap();
        drop(f);
        let err = DurableLog::open(dir.path()).unwrap_err().to_string();
        let name = mid.path.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name), "{err}");
        assert!(
            err.contains("end of a segment that another segment follows"),
            "{err}"
        );
        assert!(read_only(dir.path()).is_err());
        let r = repair(dir.path()).unwrap();
        assert_eq!(r.path, mid.path);
        assert_eq!(r.moved.len(), files.len() - 3);
        assert!(r.moved.iter().all(|p| p.exists()));
        let o = DurableLog::open(dir.path()).unwrap();
        let n = o.replayed.recovered.entries.len();
        assert!(n > 5 && n < 40, "{n}");
        drop(o);
        assert!(repair(dir.path()).unwrap().backup.is_none(), "healthy now");
    }

    #[test]
    fn a_missing_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = segmented(dir.path(), 40);
        fs::remove_file(&files[3].path).unwrap();
        let err = DurableLog::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a segment is missing"), "{err}");
        // Repair keeps what is before the gap, and moves the rest aside.
        let r = repair(dir.path()).unwrap();
        assert_eq!(r.path, files[2].path);
        assert_eq!(r.moved.len(), files.len() - 4);
        DurableLog::open(dir.path()).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_only_from_the_last_segment() {
        let dir = tempfile::tempdir().unwrap();
        let files = segmented(dir.path(), 40);
        let last = files.last().unwrap();
        let mut bytes = Vec::new();
        record::encode(&chat(41), &mut bytes);
        let mut f = OpenOptions::new().append(true).open(&last.path).unwrap();
        f.write_all(&bytes[..bytes.len() - 3]).unwrap();
        drop(f);
        let mut o = DurableLog::open_into(dir.path(), Vec::new(), 300).unwrap();
        assert_eq!(o.torn_bytes, bytes.len() as u64 - 3);
        assert_eq!(fs::metadata(&last.path).unwrap().len(), last.len);
        assert_eq!(o.replayed.recovered.entries.len(), 40);
        // Appending goes on at the cut, then into new segments.
        for s in 41..=60 {
            o.log.append(&chat(s));
            o.log.commit().unwrap();
        }
        drop(o);
        let o = DurableLog::open(dir.path()).unwrap();
        assert_eq!(o.replayed.recovered.entries.len(), 60);
    }
}

#[cfg(test)]
mod retention_tests;
