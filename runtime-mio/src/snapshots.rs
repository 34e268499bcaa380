//! The snapshot files of a node's log_dir: the core's snapshot bytes (opaque
//! here) for a committed position (seq, term), made durable before the log
//! behind them may be compacted.
//!
//! One file per snapshot, `snapshot.<seq, 20 digits>`, framed as
//! `magic "CHSNAP01" | seq u64 LE | term u64 LE | len u64 LE |
//! crc u32 LE (crc32c of the payload) | hcrc u32 LE (crc32c of the 36 bytes
//! before it) | payload[len]`. The header checksum catches a flipped seq or
//! term, which the payload's checksum cannot; the seq must also match the
//! file name.
//!
//! Invariants: a snapshot file that is not a `.tmp` was written whole and
//! fsynced before its rename, and the rename was made durable (directory
//! fsync) before any older snapshot is deleted, so at every instant (and
//! after a crash at any point) the newest valid snapshot on disk is the
//! newest whose save returned, or a newer one. A save that fails leaves the
//! previous snapshot untouched and removes its own `.tmp`. Reading is
//! bounded: a declared length above `max_bytes` (1 GiB by default) is
//! refused before anything is allocated, and chunks are read at most
//! `max` bytes at a time.
//!
//! Only the owner of the log_dir (the process holding its `LOCK`, i.e. an
//! open `DurableLog`) may save or remove files: `open` removes the `.tmp` a
//! crash left, which would break the save of another node misconfigured onto
//! the same directory. A restart therefore reads first and writes after the
//! lock: `open_read_only(dir)?.load_latest()` gives the snapshot, then
//! `DurableLog::open_after(dir, seq, ..)` takes the lock and replays the log
//! after it, then `SnapshotStore::open(dir)` for the saves.

use chorus_core::crc::crc32c;
use chorus_core::{Seq, Term};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File names of snapshots start with this.
pub const SNAPSHOT_PREFIX: &str = "snapshot.";
/// The default bound on a snapshot's payload.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
const MAGIC: &[u8; 8] = b"CHSNAP01";
/// Bytes before the payload.
pub const HEADER_BYTES: u64 = 40;
/// Bytes of payload checksummed per read when verifying a file.
const VERIFY_CHUNK: usize = 1 << 20;

/// The file name of the snapshot at `seq`.
pub fn snapshot_name(seq: Seq) -> String {
    format!("{SNAPSHOT_PREFIX}{:020}", seq.0)
}

/// The seq of a snapshot file name, or None for any other file (a `.tmp`
/// included).
pub fn parse_snapshot_name(name: &str) -> Option<Seq> {
    let digits = name.strip_prefix(SNAPSHOT_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Seq)
}

fn tmp_path(dir: &Path, seq: Seq) -> PathBuf {
    dir.join(format!("{}.tmp", snapshot_name(seq)))
}

fn is_tmp_name(name: &str) -> bool {
    name.strip_suffix(".tmp")
        .is_some_and(|n| parse_snapshot_name(n).is_some())
}

/// Why a snapshot cannot be saved or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file operation failed (the disk is full, read-only, ...).
    #[error("snapshot {op} of {file} failed: {err}")]
    Io {
        file: PathBuf,
        op: &'static str,
        err: io::Error,
    },
    /// The payload to save is larger than the store accepts.
    #[error("a snapshot of {len} bytes exceeds the bound of {max} bytes")]
    TooLarge { len: u64, max: u64 },
    /// A save older than the snapshot already durable (it would be deleted
    /// as soon as written).
    #[error("snapshot at seq {seq} is older than the saved one at seq {latest}")]
    Older { seq: u64, latest: u64 },
    /// `save` on a store opened with `open_read_only`.
    #[error("the snapshots of {0} were opened read-only (open them after locking the log_dir)")]
    ReadOnly(PathBuf),
    /// A file on disk is not a valid snapshot.
    #[error("{file} is not a valid snapshot: {reason}")]
    Invalid { file: PathBuf, reason: String },
}

fn io_err(file: &Path, op: &'static str) -> impl FnOnce(io::Error) -> SnapshotError {
    let file = file.to_path_buf();
    move |err| SnapshotError::Io { file, op, err }
}

/// A snapshot on disk, from its header (the payload not read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub seq: Seq,
    pub term: Term,
    /// Payload bytes.
    pub len: u64,
    /// crc32c of the payload (what a receiver of chunks checks the whole
    /// against).
    pub crc: u32,
    pub path: PathBuf,
}

/// A snapshot file that `load_latest` passed over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// What `load_latest` found.
#[derive(Debug)]
pub struct Loaded {
    pub meta: SnapshotMeta,
    pub bytes: Vec<u8>,
    /// Newer snapshot files that failed verification (newest first).
    pub skipped: Vec<Skipped>,
}

/// What `save` did.
#[derive(Debug)]
pub struct Saved {
    pub meta: SnapshotMeta,
    /// Time to write the file (into the page cache).
    pub write: Duration,
    /// Time of the file's fsync plus the directory's.
    pub fsync: Duration,
    /// Older snapshot files deleted once the new one was durable.
    pub removed: Vec<PathBuf>,
    /// Older files that could not be deleted (harmless: the newest valid
    /// one wins at load; the next save tries again).
    pub not_removed: Vec<Skipped>,
}

/// A snapshot's status as `chorus log inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    /// Bytes of the file.
    pub file_len: u64,
    /// Its header and payload verify (Ok: seq and term), or why not.
    pub verdict: Result<(Seq, Term), String>,
}

/// The snapshots of one log_dir.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    max_bytes: u64,
    /// The newest snapshot whose header checks out (its payload checked
    /// once `load_latest` or `save` vouched for it).
    latest: Option<SnapshotMeta>,
    /// Opened by the log_dir's owner (`open`), not `open_read_only`.
    writable: bool,
}

/// Reads and checks the header of `path`; `max_bytes` bounds the declared
/// length (refused before any allocation).
pub fn read_header(path: &Path, max_bytes: u64) -> Result<SnapshotMeta, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot stat: {e}"))?
        .len();
    let mut h = [0u8; HEADER_BYTES as usize];
    if file_len < HEADER_BYTES {
        return Err(format!(
            "{file_len} bytes, shorter than the {HEADER_BYTES}-byte header"
        ));
    }
    file.read_exact_at(&mut h, 0)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    if &h[0..8] != MAGIC {
        return Err("bad magic (not a chorus snapshot, or a different version)".into());
    }
    let word = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
    let half = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
    if crc32c(&h[0..36]) != half(36) {
        return Err("header checksum mismatch".into());
    }
    let (seq, term, len, crc) = (Seq(word(8)), Term(word(16)), word(24), half(32));
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_snapshot_name);
    if named.is_some_and(|s| s != seq) {
        return Err(format!("its header says seq {} (renamed?)", seq.0));
    }
    if len > max_bytes {
        return Err(format!(
            "declared payload of {len} bytes exceeds the bound of {max_bytes}"
        ));
    }
    if file_len != HEADER_BYTES + len {
        return Err(format!(
            "{file_len} bytes where the header declares {} (truncated or extended)",
            HEADER_BYTES + len
        ));
    }
    Ok(SnapshotMeta {
        seq,
        term,
        len,
        crc,
        path: path.to_path_buf(),
    })
}

/// Checks a whole file: its header, then its payload's checksum, reading at
/// most `VERIFY_CHUNK` bytes at a time; returns the payload if `keep`.
fn verify(path: &Path, max_bytes: u64, keep: bool) -> Result<(SnapshotMeta, Vec<u8>), String> {
    let meta = read_header(path, max_bytes)?;
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = usize::try_from(meta.len).map_err(|_| "too large for memory".to_string())?;
    let mut out = Vec::new();
    let mut crc = Crc32c::new();
    let mut buf = vec![0u8; VERIFY_CHUNK.min(len)];
    let mut at = 0usize;
    if keep {
        out.resize(len, 0);
    }
    while at < len {
        let n = VERIFY_CHUNK.min(len - at);
        let dst = if keep {
            &mut out[at..at + n]
        } else {
            &mut buf[..n]
        };
        file.read_exact_at(dst, HEADER_BYTES + at as u64)
            .map_err(|e| format!("cannot read the payload: {e}"))?;
        crc.update(dst);
        at += n;
    }
    if crc.finish() != meta.crc {
        return Err("payload checksum mismatch".into());
    }
    Ok((meta, out))
}

/// crc32c over pieces (the core's `crc32c` takes one slice; a snapshot is
/// checked piecewise to bound memory when the payload is not kept).
struct Crc32c(Option<u32>);

impl Crc32c {
    fn new() -> Crc32c {
        Crc32c(None)
    }
    fn update(&mut self, b: &[u8]) {
        let c = crc32c(b);
        self.0 = Some(match self.0 {
            None => c,
            Some(a) => crc32c_combine(a, c, b.len()),
        });
    }
    fn finish(&self) -> u32 {
        self.0.unwrap_or(0)
    }
}

/// The crc32c of `A ++ B` from crc(A), crc(B) and B's length (zlib's
/// crc32_combine, for the reflected Castagnoli polynomial): shifting crc(A)
/// through `len_b` zero bytes is a linear map, applied by squaring.
fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    const POLY: u32 = 0x82F6_3B78;
    fn times(mat: &[u32; 32], mut vec: u32) -> u32 {
        let mut sum = 0;
        let mut i = 0;
        while vec != 0 {
            if vec & 1 != 0 {
                sum ^= mat[i];
            }
            vec >>= 1;
            i += 1;
        }
        sum
    }
    fn square(mat: &[u32; 32]) -> [u32; 32] {
        let mut sq = [0u32; 32];
        for (n, s) in sq.iter_mut().enumerate() {
            *s = times(mat, mat[n]);
        }
        sq
    }
    if len_b == 0 {
        return crc_a;
    }
    // The operator for one zero bit, then two, then four.
    let mut odd = [0u32; 32];
    odd[0] = POLY;
    let mut row = 1u32;
    for o in odd.iter_mut().skip(1) {
        *o = row;
        row <<= 1;
    }
    let mut even = square(&odd);
    odd = square(&even);
    let mut crc = crc_a;
    let mut len = len_b;
    loop {
        even = square(&odd);
        if len & 1 != 0 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        odd = square(&even);
        if len & 1 != 0 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

/// The snapshot files of `dir` (not `.tmp`), newest first.
pub fn list(dir: &Path) -> io::Result<Vec<(Seq, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if let Some(seq) = e.file_name().to_str().and_then(parse_snapshot_name) {
            out.push((seq, e.path()));
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(out)
}

/// Every snapshot file of `dir`, newest first, each verified whole (payload
/// read in bounded chunks, not kept): for `chorus log inspect`.
pub fn report(dir: &Path, max_bytes: u64) -> io::Result<Vec<FileReport>> {
    let mut out = Vec::new();
    for (_, path) in list(dir)? {
        let file_len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let verdict = verify(&path, max_bytes, false).map(|(m, _)| (m.seq, m.term));
        out.push(FileReport {
            path,
            file_len,
            verdict,
        });
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync of the directory"))
}

impl SnapshotStore {
    /// The store of `dir` (which must exist: the log's), with the default
    /// bound; removes `.tmp` files a crash left behind mid-save.
    pub fn open(dir: &Path) -> Result<SnapshotStore, SnapshotError> {
        SnapshotStore::open_with_max(dir, DEFAULT_MAX_SNAPSHOT_BYTES)
    }

    /// `open`, refusing payloads above `max_bytes`.
    pub fn open_with_max(dir: &Path, max_bytes: u64) -> Result<SnapshotStore, SnapshotError> {
        let entries = fs::read_dir(dir).map_err(io_err(dir, "listing"))?;
        for e in entries {
            let e = e.map_err(io_err(dir, "listing"))?;
            if e.file_name().to_str().is_some_and(is_tmp_name) {
                // Never renamed: a save that did not finish, never vouched for.
                fs::remove_file(e.path()).map_err(io_err(&e.path(), "removal of a stale .tmp"))?;
            }
        }
        SnapshotStore::view(dir, max_bytes, true)
    }

    /// The store of `dir` for reading only (before the log_dir's lock is
    /// taken, or by a tool): leaves `.tmp` files alone, and refuses `save`.
    pub fn open_read_only(dir: &Path, max_bytes: u64) -> Result<SnapshotStore, SnapshotError> {
        SnapshotStore::view(dir, max_bytes, false)
    }

    fn view(dir: &Path, max_bytes: u64, writable: bool) -> Result<SnapshotStore, SnapshotError> {
        let mut store = SnapshotStore {
            dir: dir.to_path_buf(),
            max_bytes,
            latest: None,
            writable,
        };
        store.latest = list(dir)
            .map_err(io_err(dir, "listing"))?
            .into_iter()
            .find_map(|(_, p)| read_header(&p, max_bytes).ok());
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest snapshot whose header checks out (payload not read: use
    /// `load_latest` to verify it), or None.
    pub fn latest(&self) -> Option<&SnapshotMeta> {
        self.latest.as_ref()
    }

    /// The newest snapshot that verifies whole, with its payload; newer
    /// files that fail are listed in `skipped` (name and reason) and left
    /// on disk for inspection. None if no file verifies.
    pub fn load_latest(&mut self) -> Result<Option<Loaded>, SnapshotError> {
        let mut skipped = Vec::new();
        for (_, path) in list(&self.dir).map_err(io_err(&self.dir, "listing"))? {
            match verify(&path, self.max_bytes, true) {
                Ok((meta, bytes)) => {
                    self.latest = Some(meta.clone());
                    return Ok(Some(Loaded {
                        meta,
                        bytes,
                        skipped,
                    }));
                }
                Err(reason) => skipped.push(Skipped { path, reason }),
            }
        }
        self.latest = None;
        Ok(None)
    }

    /// Makes `bytes` the durable snapshot at (`seq`, `term`): written to a
    /// `.tmp`, fsynced, renamed, the directory fsynced; only then are older
    /// snapshot files deleted. On error the previous snapshot is intact and
    /// the `.tmp` removed.
    pub fn save(&mut self, seq: Seq, term: Term, bytes: &[u8]) -> Result<Saved, SnapshotError> {
        if !self.writable {
            return Err(SnapshotError::ReadOnly(self.dir.clone()));
        }
        let len = bytes.len() as u64;
        if len > self.max_bytes {
            return Err(SnapshotError::TooLarge {
                len,
                max: self.max_bytes,
            });
        }
        if let Some(l) = self.latest.as_ref().filter(|l| l.seq > seq) {
            return Err(SnapshotError::Older {
                seq: seq.0,
                latest: l.seq.0,
            });
        }
        let tmp = tmp_path(&self.dir, seq);
        let started = Instant::now();
        let mut write = Duration::ZERO;
        let written = self.write_tmp(&tmp, seq, term, bytes, &mut write);
        let path = self.dir.join(snapshot_name(seq));
        let crc = match written.and_then(|crc| {
            fs::rename(&tmp, &path).map_err(io_err(&tmp, "rename"))?;
            Ok(crc)
        }) {
            Ok(crc) => crc,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        sync_dir(&self.dir)?;
        let fsync = started.elapsed().saturating_sub(write);
        let meta = SnapshotMeta {
            seq,
            term,
            len,
            crc,
            path,
        };
        self.latest = Some(meta.clone());
        let (mut removed, mut not_removed) = (Vec::new(), Vec::new());
        for (old, p) in list(&self.dir).map_err(io_err(&self.dir, "listing"))? {
            if old < seq {
                match fs::remove_file(&p) {
                    Ok(()) => removed.push(p),
                    Err(e) => not_removed.push(Skipped {
                        path: p,
                        reason: e.to_string(),
                    }),
                }
            }
        }
        Ok(Saved {
            meta,
            write,
            fsync,
            removed,
            not_removed,
        })
    }

    /// Writes and fsyncs the framed snapshot to `tmp`; returns the payload
    /// crc (and the time before the fsync in `write`).
    fn write_tmp(
        &self,
        tmp: &Path,
        seq: Seq,
        term: Term,
        bytes: &[u8],
        write: &mut Duration,
    ) -> Result<u32, SnapshotError> {
        let started = Instant::now();
        let crc = crc32c(bytes);
        let mut h = Vec::with_capacity(HEADER_BYTES as usize);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&seq.0.to_le_bytes());
        h.extend_from_slice(&term.0.to_le_bytes());
        h.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        h.extend_from_slice(&crc.to_le_bytes());
        let hcrc = crc32c(&h);
        h.extend_from_slice(&hcrc.to_le_bytes());
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(io_err(tmp, "creation"))?;
        f.write_all(&h)
            .and_then(|_| f.write_all(bytes))
            .map_err(io_err(tmp, "write"))?;
        *write = started.elapsed();
        f.sync_all().map_err(io_err(tmp, "fsync"))?;
        Ok(crc)
    }

    /// Up to `max` payload bytes of the snapshot at `seq` from payload
    /// offset `offset` (fewer at its end; empty past it), read from disk:
    /// for serving a snapshot in chunks. NotFound once a newer save deleted
    /// it (the transfer should restart with the newer one).
    pub fn read_chunk(&self, seq: Seq, offset: u64, max: usize) -> Result<Vec<u8>, SnapshotError> {
        let path = self.dir.join(snapshot_name(seq));
        let meta = read_header(&path, self.max_bytes).map_err(|reason| {
            if path.exists() {
                SnapshotError::Invalid {
                    file: path.clone(),
                    reason,
                }
            } else {
                SnapshotError::Io {
                    file: path.clone(),
                    op: "read",
                    err: io::Error::new(io::ErrorKind::NotFound, "no such snapshot (replaced?)"),
                }
            }
        })?;
        let n = meta.len.saturating_sub(offset).min(max as u64) as usize;
        let mut out = vec![0u8; n];
        if n > 0 {
            File::open(&path)
                .and_then(|f| f.read_exact_at(&mut out, HEADER_BYTES + offset))
                .map_err(io_err(&path, "read"))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
