//! The segment files of a node's log and the sparse index that finds an
//! entry in them without a per-entry table in memory.
//!
//! The log is one stream of records (`chorus_core::record`) cut into files
//! of about `segment_bytes` each, only between records. A segment is named by
//! the offset of its first byte in the whole stream: `chorus.log` starts at 0
//! (so a log written before segments existed is simply the first segment),
//! `chorus.log.00000000000067108901` at byte 67,108,901, and so on. Offsets
//! everywhere else in the runtime (durability marks, the fsync thread) are
//! offsets in the whole stream.
//!
//! A sealed segment (one that another follows) is never written again, and
//! was fsynced whole before the next one was created. Its sparse index is the
//! file `<segment>.idx`: one (seq, offset) point per `INDEX_INTERVAL` bytes
//! of entries, plus its `IndexMeta`: the first and the highest seq of its
//! entry records (what retention decides on), its current entries at its
//! end and the lowest the log's end fell to in it (what a replay that skips
//! it needs to keep its entries readable); checksummed, and valid only for
//! the segment length it names; a missing or stale one is rebuilt from the
//! segment (it is derived data, written without fsync). Index files of the
//! first format (`CHIDX001`, points only) are still read: the rest then
//! comes from a scan, and the file is rewritten in the current format.
//! The active segment's points are in memory.
//!
//! Retention deletes whole segments from the front of the log (never the
//! active one), so the first segment on disk may start anywhere; each
//! segment begins with a copy of the node's Term record (see `storage.rs`)
//! so that replay from its start recovers the term and the vote.
//!
//! Finding the entry at seq `s` among records that a truncation may have
//! superseded: every segment knows the range of *current* entries it holds
//! (`lo..=hi`, lowered by later truncations); current entries appear in seq
//! order through the stream. A point (q, off) of a segment survives only the
//! truncations written in that segment after it, so nothing below q was
//! rewritten in that segment after `off`: the current version of `s` is the
//! last `Entry` record of `s` between the greatest point <= s and the first
//! point > s (or the segment's end). A read scans that span, at most a few
//! `INDEX_INTERVAL`s (a truncation can leave a longer span; they are rare and
//! cut only an uncommitted suffix).
//!
//! Memory: a few words per segment, the active segment's points (at most
//! `segment_bytes / INDEX_INTERVAL`), and the points of at most
//! `CACHED_SEGMENTS` sealed segments.

use chorus_core::crc::crc32c;
use chorus_core::record::{peek_frame_unverified, seq_effect, FramePeek, SeqEffect};
use chorus_core::Seq;
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first segment's name (and the whole log's, before segments existed).
pub const LOG_FILE: &str = "chorus.log";
/// Default bound on a segment's size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Bytes of entry records between two index points.
pub const INDEX_INTERVAL: u64 = 4096;
/// Sealed segments whose points are kept in memory at once.
const CACHED_SEGMENTS: usize = 4;
const IDX_MAGIC_V1: &[u8; 8] = b"CHIDX001";
const IDX_MAGIC: &[u8; 8] = b"CHIDX002";

/// The file name of the segment that starts at byte `base` of the log.
pub fn segment_name(base: u64) -> String {
    if base == 0 {
        LOG_FILE.to_string()
    } else {
        format!("{LOG_FILE}.{base:020}")
    }
}

/// The base of a segment file name, or None for any other file.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    if name == LOG_FILE {
        return Some(0);
    }
    let digits = name.strip_prefix(LOG_FILE)?.strip_prefix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&b| b > 0)
}

/// One segment file found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub base: u64,
    pub path: PathBuf,
    pub len: u64,
}

/// The segment files of `dir`, by base.
pub fn list(dir: &Path) -> io::Result<Vec<SegmentFile>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let Some(base) = e.file_name().to_str().and_then(parse_segment_name) else {
            continue;
        };
        out.push(SegmentFile {
            base,
            path: e.path(),
            len: e.metadata()?.len(),
        });
    }
    out.sort_by_key(|s| s.base);
    Ok(out)
}

/// The index file of a segment.
pub fn index_path(segment: &Path) -> PathBuf {
    let mut p = segment.as_os_str().to_owned();
    p.push(".idx");
    PathBuf::from(p)
}

/// A sparse index point: the entry at `seq` starts at `off` in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Point {
    pub seq: Seq,
    pub off: u64,
}

/// The entry records written in one segment, whatever truncations later did
/// to them: what retention and a partial replay decide on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    /// The seq of its first entry record.
    pub first: Option<Seq>,
    /// The highest seq of any entry record in it.
    pub max: Option<Seq>,
}

/// What a segment's index file says about it beyond its points: its entry
/// records (`bounds`), and what a reader needs to know which of its entries
/// are current without replaying it: the current entries at its end
/// (`end`, before any later truncation) and the lowest the log's end fell
/// to while it was written (`low`: a truncation from s makes it s - 1, an
/// installed snapshot 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexMeta {
    pub bounds: Bounds,
    pub end: Option<(Seq, Seq)>,
    pub low: Option<Seq>,
}

impl Bounds {
    fn add(&mut self, seq: Seq) {
        self.first.get_or_insert(seq);
        self.max = Some(self.max.map_or(seq, |m| m.max(seq)));
    }
}

/// Adds the entry at `seq`, starting at `off`, to a segment's points.
fn add_point(points: &mut Vec<Point>, seq: Seq, off: u64) {
    // After a truncation the last point may be far back: a point comes
    // soon, so the span that a read scans stays short.
    if points.last().is_none_or(|p| off - p.off >= INDEX_INTERVAL) {
        points.push(Point { seq, off });
    }
}

/// Forgets the points from `from` on (a truncation written in the segment).
fn cut_points(points: &mut Vec<Point>, from: Seq) {
    while points.last().is_some_and(|p| p.seq >= from) {
        points.pop();
    }
}

#[derive(Debug)]
struct Seg {
    base: u64,
    path: PathBuf,
    /// Bytes written to it so far.
    len: u64,
    /// The current entries it holds (lo, hi); None: none.
    range: Option<(Seq, Seq)>,
    /// The points of the active (last) segment; None once sealed.
    active: Option<Vec<Point>>,
    /// Its entry records, if all of them went through `on_entry` (replayed
    /// or appended); None: read from its index file when needed.
    bounds: Option<Bounds>,
    /// The lowest the log's end fell to while it was written (see
    /// `IndexMeta::low`), as replayed or appended.
    low: Option<Seq>,
}

fn lower(low: &mut Option<Seq>, to: Seq) {
    *low = Some(low.map_or(to, |l| l.min(to)));
}

/// The segments of one log, shared by the writer (`storage.rs`, which tells
/// it every record it appends) and the reader (`cold.rs`), both on the
/// node's event-loop thread.
#[derive(Debug)]
pub(crate) struct SegIndex {
    segs: Vec<Seg>,
    /// Points of recently used sealed segments, by base (most recent last).
    cache: VecDeque<(u64, Arc<Vec<Point>>)>,
    replay: ReplayPoints,
    /// Replay passed a `Snapshot` record since the last entry: the points of
    /// the segment the next entry is in are void before it.
    rebased: bool,
}

/// Where a read of seqs `from..=to` must scan, in one segment.
#[derive(Debug)]
pub(crate) struct Span {
    pub path: PathBuf,
    pub from: Seq,
    /// The last seq this read may return (at most the segment's last).
    pub to: Seq,
    /// Scan from this offset in the segment...
    pub start: u64,
    /// ...up to this one (exclusive).
    pub stop: u64,
    /// Points inside the span (offset-ascending): where the entries below
    /// their seq are final, so a scan may stop there.
    pub marks: Vec<Point>,
}

impl SegIndex {
    /// An index over segments found on disk (before replay: no entries yet;
    /// the last one is active).
    pub(crate) fn new(files: &[SegmentFile]) -> SegIndex {
        let n = files.len();
        SegIndex {
            segs: files
                .iter()
                .enumerate()
                .map(|(k, f)| Seg {
                    base: f.base,
                    path: f.path.clone(),
                    len: f.len,
                    range: None,
                    active: (k + 1 == n).then(Vec::new),
                    bounds: None,
                    low: None,
                })
                .collect(),
            cache: VecDeque::new(),
            replay: ReplayPoints::default(),
            rebased: false,
        }
    }

    /// The segment holding byte `off` of the log (the last one whose base
    /// is at most `off`).
    fn seg_of(&self, off: u64) -> usize {
        self.segs
            .partition_point(|s| s.base <= off)
            .saturating_sub(1)
    }

    /// An entry record of `seq` starts at byte `off` of the log (from
    /// replay, or appended to the active segment: no I/O then).
    pub(crate) fn on_entry(&mut self, seq: Seq, off: u64) -> io::Result<()> {
        let k = self.seg_of(off);
        let seg = &mut self.segs[k];
        seg.bounds.get_or_insert_with(Bounds::default).add(seq);
        seg.range = Some(match seg.range {
            Some((lo, _)) => (lo, seq),
            None => (seq, seq),
        });
        let rel = off - seg.base;
        let rebased = std::mem::take(&mut self.rebased);
        if rebased {
            // The installed snapshot's record is here or in a segment with
            // no entry after it: either way nothing before this is current.
            lower(&mut seg.low, Seq(0));
        }
        if seg.active.is_some() {
            self.flush_replay()?;
            if let Some(points) = &mut self.segs[k].active {
                if rebased {
                    cut_points(points, Seq(1));
                }
                add_point(points, seq, rel);
            }
            return Ok(());
        }
        self.replay_enter(k)?;
        if rebased {
            cut_points(&mut self.replay.points, Seq(1));
        }
        add_point(&mut self.replay.points, seq, rel);
        Ok(())
    }

    /// Replay passed a `Snapshot` record (an installed snapshot): no entry
    /// before it is current any more. Its offset is not known here (the
    /// sink's `rebase` has none), so the points before it in its segment are
    /// cut when the next entry comes; a segment it leaves without an entry
    /// after it holds no current entry, so its points are never searched.
    /// (The writer calls `on_truncate(Seq(1), offset)` instead.)
    pub(crate) fn on_rebase(&mut self) {
        for seg in &mut self.segs {
            seg.range = None;
        }
        self.rebased = true;
    }

    /// A truncation from `from`, written at byte `off` of the log.
    pub(crate) fn on_truncate(&mut self, from: Seq, off: u64) -> io::Result<()> {
        for seg in self.segs.iter_mut().rev() {
            match seg.range {
                Some((lo, hi)) if hi >= from => {
                    seg.range = (from > lo).then(|| (lo, Seq(from.0 - 1)));
                }
                Some(_) => break, // current entries ascend through the segments
                None => {}
            }
        }
        let k = self.seg_of(off);
        lower(&mut self.segs[k].low, Seq(from.0.saturating_sub(1)));
        if self.segs[k].active.is_some() {
            self.flush_replay()?;
            if let Some(points) = &mut self.segs[k].active {
                cut_points(points, from);
            }
            return Ok(());
        }
        self.replay_enter(k)?;
        cut_points(&mut self.replay.points, from);
        Ok(())
    }

    /// Replay reached sealed segment `k`: the points of the one before are
    /// complete, and written as its index file.
    fn replay_enter(&mut self, k: usize) -> io::Result<()> {
        if self.replay.seg != Some(k) {
            self.flush_replay()?;
            self.replay.seg = Some(k);
        }
        Ok(())
    }

    /// Replay starts at the beginning of segment `k`: every entry record of
    /// it will be seen (so its bounds are known even if it holds none).
    pub(crate) fn replay_starts(&mut self, k: usize) {
        for seg in &mut self.segs[k..] {
            seg.bounds.get_or_insert_with(Bounds::default);
        }
    }

    /// Writes the index of the sealed segment replay was in, if its file is
    /// missing or differs (as replay moves on, and once it ends).
    pub(crate) fn flush_replay(&mut self) -> io::Result<()> {
        if let Some(k) = self.replay.seg.take() {
            let seg = &self.segs[k];
            let path = index_path(&seg.path);
            let points = std::mem::take(&mut self.replay.points);
            let meta = seg.meta();
            if read_index(&path, seg.len) != Some((points.clone(), Some(meta))) {
                write_index(&path, seg.len, &meta, &points)?;
            }
        }
        Ok(())
    }

    /// The active segment is now `len` bytes long (records were written).
    pub(crate) fn written(&mut self, len: u64) {
        if let Some(s) = self.segs.last_mut() {
            s.len = len;
        }
    }

    /// Seals the active segment (returning its points, to be written as its
    /// index) and starts a new one at byte `base` of the log.
    pub(crate) fn roll(&mut self, base: u64, path: PathBuf) -> Option<Sealed> {
        let sealed = self.segs.last_mut().and_then(|s| {
            let points = s.active.take()?;
            Some(Sealed {
                path: s.path.clone(),
                len: s.len,
                meta: s.meta(),
                points,
            })
        });
        if let Some(Sealed { points, .. }) = &sealed {
            let base = self.segs.last().map_or(0, |s| s.base);
            self.remember(base, Arc::new(points.clone()));
        }
        self.segs.push(Seg {
            base,
            path,
            len: 0,
            range: None,
            active: Some(Vec::new()),
            bounds: Some(Bounds::default()),
            low: None,
        });
        sealed
    }

    fn remember(&mut self, base: u64, points: Arc<Vec<Point>>) {
        self.cache.retain(|(b, _)| *b != base);
        self.cache.push_back((base, points));
        while self.cache.len() > CACHED_SEGMENTS {
            self.cache.pop_front();
        }
    }

    /// Segments (for status and tests).
    pub(crate) fn segments(&self) -> usize {
        self.segs.len()
    }

    /// The path and length of segment `k`.
    pub(crate) fn file(&self, k: usize) -> (&Path, u64) {
        (&self.segs[k].path, self.segs[k].len)
    }

    /// The entry records of segment `k`: from memory, its index file, or
    /// (an index of the first format, or none) a scan that rewrites it.
    pub(crate) fn bounds(&mut self, k: usize) -> io::Result<Bounds> {
        let seg = &self.segs[k];
        if let Some(b) = seg.bounds {
            return Ok(b);
        }
        let b = self.meta_on_disk(k)?.bounds;
        self.segs[k].bounds = Some(b);
        Ok(b)
    }

    /// Segment `k`'s `IndexMeta` from its index file, or (an index of the
    /// first format, or none) a scan that rewrites it.
    fn meta_on_disk(&self, k: usize) -> io::Result<IndexMeta> {
        let seg = &self.segs[k];
        Ok(match read_index(&index_path(&seg.path), seg.len) {
            Some((_, Some(m))) => m,
            _ => {
                let (points, m) = scan_segment(&seg.path, seg.len)?;
                // Derived data: a failed write only means another scan later.
                let _ = write_index(&index_path(&seg.path), seg.len, &m, &points);
                m
            }
        })
    }

    /// Replay starts at segment `k`, no entry above `ceiling` being current
    /// in the segments before it (the log's last seq where `k` begins, or 0
    /// if it begins with an installed snapshot): the entries of those
    /// segments that are current then are found from their index files, so
    /// that they can still be read.
    /// Going back from `k`, a segment's current entries are those current
    /// at its end, below every later point the log's end fell to (the
    /// truncations and installs after it) and below the first entry record
    /// of every later segment (a later record at seq s supersedes every
    /// earlier one at s or above).
    pub(crate) fn recover_skipped(&mut self, k: usize, ceiling: Seq) -> io::Result<()> {
        let mut ceiling = ceiling;
        for j in (0..k).rev() {
            let m = self.meta_on_disk(j)?;
            let seg = &mut self.segs[j];
            seg.bounds = Some(m.bounds);
            seg.range = m.end.and_then(|(lo, hi)| {
                let hi = hi.min(ceiling);
                (lo <= hi).then_some((lo, hi))
            });
            if let Some(low) = m.low {
                ceiling = ceiling.min(low);
            }
            if let Some(first) = m.bounds.first {
                ceiling = ceiling.min(Seq(first.0 - 1));
            }
        }
        Ok(())
    }

    /// Segment `k`'s current entries (tests).
    #[cfg(test)]
    pub(crate) fn range(&self, k: usize) -> Option<(Seq, Seq)> {
        self.segs[k].range
    }

    /// Forgets the first `n` segments (deleted by retention; never the
    /// active one).
    pub(crate) fn drop_front(&mut self, n: usize) {
        let n = n.min(self.segs.len().saturating_sub(1));
        for seg in self.segs.drain(..n) {
            self.cache.retain(|(b, _)| *b != seg.base);
        }
        if let Some(k) = self.replay.seg.take() {
            // Replay is over before retention runs; keep the index sound anyway.
            self.replay.seg = k.checked_sub(n);
        }
    }

    /// Where to read seqs `from..` (at most `max_n`), in the segment that
    /// holds the current `from`; None if no segment holds it.
    pub(crate) fn span(&mut self, from: Seq, max_n: u64) -> io::Result<Option<Span>> {
        let Some(k) = self
            .segs
            .iter()
            .rposition(|s| s.range.is_some_and(|(lo, hi)| lo <= from && from <= hi))
        else {
            return Ok(None);
        };
        let (_, hi) = self.segs[k].range.expect("found by its range");
        let to = Seq(hi.0.min(from.0.saturating_add(max_n.max(1) - 1)));
        let points = self.points(k)?;
        let seg = &self.segs[k];
        let first = points.partition_point(|p| p.seq <= from);
        let start = if first == 0 { 0 } else { points[first - 1].off };
        let after = points.partition_point(|p| p.seq <= to);
        let stop = points.get(after).map_or(seg.len, |p| p.off.min(seg.len));
        Ok(Some(Span {
            path: seg.path.clone(),
            from,
            to,
            start,
            stop,
            marks: points[first..after].to_vec(),
        }))
    }

    /// The points of segment `k`: the active one's, or a sealed one's from
    /// the cache, its index file, or (missing or stale) a scan of it.
    fn points(&mut self, k: usize) -> io::Result<Arc<Vec<Point>>> {
        let seg = &self.segs[k];
        if let Some(p) = &seg.active {
            return Ok(Arc::new(p.clone()));
        }
        let base = seg.base;
        if let Some((_, p)) = self.cache.iter().find(|(b, _)| *b == base) {
            let p = p.clone();
            self.remember(base, p.clone());
            return Ok(p);
        }
        let points = match read_index(&index_path(&seg.path), seg.len) {
            Some((p, _)) => p,
            None => {
                let (p, m) = scan_segment(&seg.path, seg.len)?;
                // Derived data: a failed write only means another scan later.
                let _ = write_index(&index_path(&seg.path), seg.len, &m, &p);
                p
            }
        };
        let points = Arc::new(points);
        self.remember(base, points.clone());
        Ok(points)
    }
}

/// A segment just sealed by `roll`: what its index file gets.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub path: PathBuf,
    pub len: u64,
    pub meta: IndexMeta,
    pub points: Vec<Point>,
}

impl Seg {
    /// What its index file records, as of now (at its end when sealed).
    fn meta(&self) -> IndexMeta {
        IndexMeta {
            bounds: self.bounds.unwrap_or_default(),
            end: self.range,
            low: self.low,
        }
    }
}

/// The points of the sealed segment that replay is in, until it leaves it.
#[derive(Debug, Default)]
struct ReplayPoints {
    seg: Option<usize>,
    points: Vec<Point>,
}

/// Writes a segment's index: magic, segment length, first and max entry
/// seq, current range at its end (lo, hi), low (each 0: none, and low
/// stored + 1 since 0 is a value), count, points, crc32c.
pub(crate) fn write_index(
    path: &Path,
    seg_len: u64,
    meta: &IndexMeta,
    points: &[Point],
) -> io::Result<()> {
    let mut b = Vec::with_capacity(IDX_HEAD + 4 + 16 * points.len());
    b.extend_from_slice(IDX_MAGIC);
    b.extend_from_slice(&seg_len.to_le_bytes());
    let seq = |s: Option<Seq>| s.map_or(0, |s| s.0);
    for w in [
        seq(meta.bounds.first),
        seq(meta.bounds.max),
        seq(meta.end.map(|r| r.0)),
        seq(meta.end.map(|r| r.1)),
        meta.low.map_or(0, |l| l.0 + 1),
    ] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.extend_from_slice(&(points.len() as u64).to_le_bytes());
    for p in points {
        b.extend_from_slice(&p.seq.0.to_le_bytes());
        b.extend_from_slice(&p.off.to_le_bytes());
    }
    let crc = crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = {
        let mut p = path.as_os_str().to_owned();
        p.push(".tmp");
        PathBuf::from(p)
    };
    fs::write(&tmp, &b)?;
    fs::rename(&tmp, path)
}

/// Bytes of an index file before its points (current format).
const IDX_HEAD: usize = 64;

/// A segment's index (its points, and its `IndexMeta` unless the file has
/// the first format) if its file checks out for a segment of `seg_len` bytes.
pub(crate) fn read_index(path: &Path, seg_len: u64) -> Option<(Vec<Point>, Option<IndexMeta>)> {
    let b = fs::read(path).ok()?;
    let v2 = match b.get(0..8)? {
        m if m == IDX_MAGIC => true,
        m if m == IDX_MAGIC_V1 => false,
        _ => return None,
    };
    let head = if v2 { IDX_HEAD } else { 24 };
    if b.len() < head + 4 {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c(body).to_le_bytes() != crc {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
    let n = usize::try_from(word(head - 8)).ok()?;
    if word(8) != seg_len || Some(body.len()) != n.checked_mul(16).map(|x| x + head) {
        return None;
    }
    let points: Vec<Point> = (0..n)
        .map(|k| Point {
            seq: Seq(word(head + 16 * k)),
            off: word(head + 8 + 16 * k),
        })
        .collect();
    let meta = v2.then(|| {
        let seq = |w: u64| (w > 0).then_some(Seq(w));
        IndexMeta {
            bounds: Bounds {
                first: seq(word(16)),
                max: seq(word(24)),
            },
            end: seq(word(32)).zip(seq(word(40))),
            low: word(48).checked_sub(1).map(Seq),
        }
    });
    let sane = points
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].off < w[1].off)
        && points.last().is_none_or(|p| p.off < seg_len)
        && meta.is_none_or(|m| {
            let b = m.bounds;
            b.first.is_some() == b.max.is_some()
                && b.first <= b.max
                && m.end.is_none_or(|(lo, hi)| lo <= hi)
        });
    sane.then_some((points, meta))
}

/// Bytes read at once when scanning a segment.
pub(crate) const WINDOW_BYTES: usize = 256 * 1024;

/// Reads up to `n` bytes at `at` into `buf[..n]` (grown once, never zeroed
/// again); returns how many (fewer only at the end of the file).
pub(crate) fn read_full(file: &File, buf: &mut Vec<u8>, at: u64, n: usize) -> io::Result<usize> {
    if buf.len() < n {
        buf.resize(n, 0);
    }
    let mut got = 0;
    while got < n {
        match file.read_at(&mut buf[got..n], at + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Calls `f(offset, effect, frame length)` for every whole record of `file`
/// in `start..stop` (frame boundaries only: payloads are checked when read);
/// `f` returns false to stop early.
pub(crate) fn scan_records(
    file: &File,
    buf: &mut Vec<u8>,
    start: u64,
    stop: u64,
    mut f: impl FnMut(u64, SeqEffect, usize) -> bool,
) -> io::Result<()> {
    let mut at = start;
    let mut want = WINDOW_BYTES;
    while at < stop {
        let n = want.min((stop - at) as usize);
        let got = read_full(file, buf, at, n)?;
        let mut rel = 0;
        let mut need = 0;
        while rel < got {
            let off = at + rel as u64;
            match peek_frame_unverified(&buf[rel..got]) {
                FramePeek::Whole { payload, len } => {
                    let effect = seq_effect(payload).map_err(|r| bad(off, r))?;
                    if !f(off, effect, len) {
                        return Ok(());
                    }
                    rel += len;
                }
                FramePeek::Need(k) => {
                    need = k;
                    break;
                }
                FramePeek::Bad(r) => return Err(bad(off, r)),
            }
        }
        if rel == 0 && got < n.max(need) {
            return Err(bad(at, "incomplete record".into()));
        }
        at += rel as u64;
        want = WINDOW_BYTES.max(need);
    }
    Ok(())
}

fn bad(off: u64, reason: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("record at byte offset {off}: {reason}"),
    )
}

/// A sealed segment's points and `IndexMeta`, from its records.
fn scan_segment(path: &Path, len: u64) -> io::Result<(Vec<Point>, IndexMeta)> {
    let file = File::open(path)?;
    let mut buf = Vec::new();
    let mut points = Vec::new();
    let mut m = IndexMeta::default();
    scan_records(&file, &mut buf, 0, len, |off, effect, _| {
        match effect {
            SeqEffect::Append(seq) => {
                m.bounds.add(seq);
                m.end = Some(m.end.map_or((seq, seq), |(lo, _)| (lo, seq)));
                add_point(&mut points, seq, off);
            }
            SeqEffect::Truncate(from) => {
                m.end = m
                    .end
                    .and_then(|(lo, hi)| (from > lo).then(|| (lo, hi.min(Seq(from.0 - 1)))));
                lower(&mut m.low, Seq(from.0.saturating_sub(1)));
                cut_points(&mut points, from);
            }
            SeqEffect::Rebase(_) => {
                m.end = None;
                lower(&mut m.low, Seq(0));
                cut_points(&mut points, Seq(1));
            }
            SeqEffect::Other => {}
        }
        true
    })?;
    Ok((points, m))
}

/// How a segment begins: what replay from its start needs to know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Its first record is a `Term` record (the copy a writer puts at the
    /// top of each new segment): replay from here recovers term and vote.
    pub term_first: bool,
    /// Its first record that changes the entries (an `Entry` or a
    /// `Truncate`), if any: where the log stood when the segment began.
    pub first_effect: Option<SeqEffect>,
}

/// Reads how the segment at `path` (`len` bytes) begins; a damaged start
/// reads as nothing known (replay gives the verdict).
pub fn head(path: &Path, len: u64) -> io::Result<Head> {
    let file = File::open(path)?;
    let mut buf = Vec::new();
    let got = read_full(&file, &mut buf, 0, (len as usize).min(64))?;
    let term_first = matches!(
        peek_frame_unverified(&buf[..got]),
        FramePeek::Whole { payload, .. } if payload.first() == Some(&1)
    );
    let mut first_effect = None;
    let scanned = scan_records(&file, &mut buf, 0, len, |_, effect, _| {
        if effect == SeqEffect::Other {
            return true;
        }
        first_effect = Some(effect);
        false
    });
    if scanned.is_err() {
        first_effect = None;
    }
    Ok(Head {
        term_first,
        first_effect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        assert_eq!(segment_name(0), "chorus.log");
        assert_eq!(segment_name(67), "chorus.log.00000000000000000067");
        assert_eq!(parse_segment_name("chorus.log"), Some(0));
        assert_eq!(
            parse_segment_name("chorus.log.00000000000000000067"),
            Some(67)
        );
        for other in [
            "chorus.log.idx",
            "chorus.log.00000000000000000067.idx",
            "chorus.log.corrupt-at-12",
            "chorus.log.00000000000000000000",
            "chorus.log.0000000000000000067",
            "LOCK",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
    }

    #[test]
    fn an_index_file_is_used_only_for_the_length_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.idx");
        let pts = vec![
            Point {
                seq: Seq(1),
                off: 0,
            },
            Point {
                seq: Seq(40),
                off: 4100,
            },
        ];
        let m = IndexMeta {
            bounds: Bounds {
                first: Some(Seq(1)),
                max: Some(Seq(60)),
            },
            end: Some((Seq(1), Seq(55))),
            low: Some(Seq(0)),
        };
        write_index(&p, 9000, &m, &pts).unwrap();
        assert_eq!(read_index(&p, 9000), Some((pts.clone(), Some(m))));
        assert_eq!(read_index(&p, 9001), None, "the segment changed");
        let mut b = fs::read(&p).unwrap();
        b[30] ^= 1;
        fs::write(&p, &b).unwrap();
        assert_eq!(read_index(&p, 9000), None, "checksum");
    }

    #[test]
    fn truncations_lower_ranges_across_segments_and_cut_points() {
        let files = [
            SegmentFile {
                base: 0,
                path: "a".into(),
                len: 100,
            },
            SegmentFile {
                base: 100,
                path: "b".into(),
                len: 0,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let files = files.map(|f| SegmentFile {
            path: dir.path().join(f.path),
            ..f
        });
        let mut ix = SegIndex::new(&files);
        for s in 1..=10 {
            ix.on_entry(Seq(s), (s - 1) * 10).unwrap();
        }
        assert_eq!(ix.segs[0].range, Some((Seq(1), Seq(10))));
        for s in 11..=12 {
            ix.on_entry(Seq(s), 100 + (s - 11) * 5000).unwrap();
        }
        assert_eq!(ix.segs[1].active.as_ref().unwrap().len(), 2);
        assert!(dir.path().join("a.idx").exists(), "replay left segment a");
        ix.on_truncate(Seq(8), 20100).unwrap();
        assert_eq!(ix.segs[0].range, Some((Seq(1), Seq(7))));
        assert_eq!(ix.segs[1].range, None);
        assert!(ix.segs[1].active.as_ref().unwrap().is_empty());
        ix.on_truncate(Seq(1), 20200).unwrap();
        assert_eq!(ix.segs[0].range, None);
    }
}
