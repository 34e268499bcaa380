//! The durable log of one node: `log_dir/chorus.log`, an append-only file of
//! the core's checksummed records (`chorus_core::record`), and `log_dir/LOCK`.
//!
//! Invariants: one process owns a log_dir (an exclusive lock on `LOCK`, freed
//! by the OS when the process dies, even by SIGKILL); the file only grows,
//! except that a torn tail left by a crash is cut at startup; `write_queued`
//! writes every queued record in one write (the fsync thread of `syncer.rs`
//! or `sync_now` makes it durable), and any failure is returned as fatal
//! (`RuntimeError::Storage`), never retried or ignored.
//! `read_only` serves `chorus log inspect`: it never writes or truncates.
//! `repair` serves `chorus log repair`: it backs the file up before cutting.

use crate::error::RuntimeError;
use chorus_core::record::{self, EntrySink, Record, Replayed};
use chorus_core::{Entry, Seq};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The log file's name inside a log_dir.
pub const LOG_FILE: &str = "chorus.log";
/// The lock file's name inside a log_dir.
pub const LOCK_FILE: &str = "LOCK";

/// An open, locked, recovered log.
#[derive(Debug)]
pub struct DurableLog {
    file: File,
    path: PathBuf,
    /// Held for the life of the node: the lock lives as long as this handle.
    _lock: File,
    queued: Vec<u8>,
    written_bytes: u64,
    /// The last seq of the log as of the records appended so far (a
    /// truncation lowers it).
    last_seq: Seq,
    /// (file offset, last seq of the log once the file ends there), one per
    /// write not yet known durable: what `durable_seq` reads.
    marks: VecDeque<(u64, Seq)>,
    /// The last seq of the durable prefix of the file.
    durable_seq: Seq,
}

/// What `open` found (entries in a `Vec`, or where `open_into` put them).
#[derive(Debug)]
pub struct Opened<E = Vec<Entry>> {
    pub log: DurableLog,
    pub replayed: Replayed<E>,
    /// Bytes of torn tail that were cut (0 after a clean stop).
    pub torn_bytes: u64,
}

fn log_dir_err(dir: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let dir = dir.to_path_buf();
    move |err| RuntimeError::LogDir { dir, what, err }
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

fn corrupt(dir: &Path, path: &Path, e: record::ReplayError) -> RuntimeError {
    let record::ReplayError::Corrupt { offset, reason } = e;
    RuntimeError::Corrupt {
        file: path.to_path_buf(),
        dir: dir.to_path_buf(),
        offset,
        reason,
    }
}

impl DurableLog {
    /// Locks `dir`, replays its log and cuts a torn tail (made durable before
    /// anything new is appended).
    pub fn open(dir: &Path) -> Result<Opened, RuntimeError> {
        DurableLog::open_into(dir, Vec::new())
    }

    /// `open`, replaying the entries into `entries` while streaming the file
    /// (never all of it, nor all entries, in memory unless `entries` keeps them).
    pub fn open_into<E: EntrySink>(dir: &Path, entries: E) -> Result<Opened<E>, RuntimeError> {
        fs::create_dir_all(dir).map_err(log_dir_err(dir, "cannot create it"))?;
        let lock = lock(dir)?;
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(log_dir_err(dir, "cannot open chorus.log"))?;
        if !existed {
            // The new file's directory entry must survive a crash too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(log_dir_err(dir, "cannot sync the directory"))?;
        }
        let file_len = file
            .metadata()
            .map_err(log_dir_err(dir, "cannot read chorus.log"))?
            .len();
        let replayed = record::replay_read(&mut file, entries)
            .map_err(log_dir_err(dir, "cannot read chorus.log"))?
            .map_err(|e| corrupt(dir, &path, e))?;
        let torn_bytes = file_len - replayed.valid_len;
        if torn_bytes > 0 {
            let storage = |op| {
                let file = path.clone();
                move |err| RuntimeError::Storage { file, op, err }
            };
            file.set_len(replayed.valid_len)
                .map_err(storage("truncating the torn tail"))?;
        }
        // What we just replayed may still sit unsynced in the page cache (the
        // previous run was killed between its write and its fsync). The core is
        // about to act on it (acknowledge it to a leader, claim with it), so it
        // must be durable first, whether or not a tail was cut.
        file.sync_all().map_err(|err| RuntimeError::Storage {
            file: path.clone(),
            op: "fsync of the recovered log",
            err,
        })?;
        let recovered_last = replayed.recovered.entries.last_seq();
        Ok(Opened {
            log: DurableLog {
                file,
                path,
                _lock: lock,
                queued: Vec::new(),
                written_bytes: replayed.valid_len,
                last_seq: recovered_last,
                marks: VecDeque::new(),
                durable_seq: recovered_last,
            },
            replayed,
            torn_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one record for the next `write_queued`; returns the file offset
    /// at which it will end.
    pub fn append(&mut self, rec: &Record) -> u64 {
        record::encode(rec, &mut self.queued);
        match rec {
            Record::Entry(e) => self.last_seq = e.seq_no,
            Record::Truncate { from } => self.last_seq = self.last_seq.min(Seq(from.0 - 1)),
            Record::Term { .. } | Record::Commit { .. } => {}
        }
        self.written_bytes + self.queued.len() as u64
    }

    /// Writes every queued record in one write (into the page cache: not yet
    /// durable); returns the file's new end.
    pub fn write_queued(&mut self) -> Result<u64, RuntimeError> {
        if self.queued.is_empty() {
            return Ok(self.written_bytes);
        }
        let path = &self.path;
        self.file
            .write_all(&self.queued)
            .map_err(|err| RuntimeError::Storage {
                file: path.clone(),
                op: "write",
                err,
            })?;
        self.written_bytes += self.queued.len() as u64;
        self.queued.clear();
        if self.queued.capacity() > 4 << 20 {
            self.queued.shrink_to(64 * 1024);
        }
        self.marks.push_back((self.written_bytes, self.last_seq));
        Ok(self.written_bytes)
    }

    /// fdatasync on this thread (the unsafe-ack path and tests; the node's
    /// loop uses the fsync thread instead).
    pub fn sync_now(&mut self) -> Result<(), RuntimeError> {
        self.file.sync_data().map_err(|err| RuntimeError::Storage {
            file: self.path.clone(),
            op: "fsync",
            err,
        })?;
        self.durable_up_to(self.written_bytes);
        Ok(())
    }

    /// Writes the queued records and fsyncs them here and now.
    pub fn commit(&mut self) -> Result<(), RuntimeError> {
        self.write_queued()?;
        self.sync_now()
    }

    /// A second handle to the file, for the fsync thread.
    pub fn sync_handle(&self) -> Result<File, RuntimeError> {
        self.file.try_clone().map_err(|err| RuntimeError::Storage {
            file: self.path.clone(),
            op: "dup for the fsync thread",
            err,
        })
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
    /// version: the durable prefix of the file, lowered by any truncation
    /// written but not yet durable (entries past it may be replaced ones).
    pub fn stable_seq(&self) -> Seq {
        self.marks
            .iter()
            .map(|&(_, s)| s)
            .fold(self.durable_seq, Seq::min)
    }

    /// Bytes of records written to the file (durable or not).
    pub fn len_bytes(&self) -> u64 {
        self.written_bytes
    }
}

/// A log read without locking or changing it.
#[derive(Debug)]
pub struct Snapshot {
    pub path: PathBuf,
    pub replayed: Replayed,
    pub file_len: u64,
}

/// Reads the log of `dir` (or the log file `dir` itself) read-only.
pub fn read_only(dir: &Path) -> Result<Snapshot, RuntimeError> {
    let (dir, path) = if dir.is_file() {
        let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        (parent, dir.to_path_buf())
    } else {
        (dir.to_path_buf(), dir.join(LOG_FILE))
    };
    let bytes = fs::read(&path).map_err(|err| RuntimeError::Read {
        file: path.clone(),
        err,
    })?;
    let replayed = record::replay(&bytes).map_err(|e| corrupt(&dir, &path, e))?;
    Ok(Snapshot {
        path,
        replayed,
        file_len: bytes.len() as u64,
    })
}

/// What `repair` did.
#[derive(Debug)]
pub struct Repair {
    pub path: PathBuf,
    /// Where the whole original file was copied (None: nothing to repair).
    pub backup: Option<PathBuf>,
    /// The log now ends here.
    pub cut_at: u64,
    /// Bytes after `cut_at` (dropped if `backup` is set, else a torn tail
    /// the node cuts at start).
    pub dropped_bytes: u64,
    /// Why the record at `cut_at` was refused.
    pub reason: Option<String>,
}

/// Cuts a corrupt log at its first damaged record, after copying the whole
/// file to `chorus.log.corrupt-at-OFFSET` (fsynced). Takes the lock, so it
/// refuses while a node runs on `dir`. A healthy log is left unchanged.
pub fn repair(dir: &Path) -> Result<Repair, RuntimeError> {
    let _lock = lock(dir)?;
    let path = dir.join(LOG_FILE);
    let bytes = fs::read(&path).map_err(|err| RuntimeError::Read {
        file: path.clone(),
        err,
    })?;
    let len = bytes.len() as u64;
    let (offset, reason) = match record::replay(&bytes) {
        Ok(r) => {
            return Ok(Repair {
                path,
                backup: None,
                cut_at: r.valid_len,
                dropped_bytes: len - r.valid_len,
                reason: None,
            })
        }
        Err(record::ReplayError::Corrupt { offset, reason }) => (offset, reason),
    };
    let storage = |op| {
        let file = path.clone();
        move |err| RuntimeError::Storage { file, op, err }
    };
    let backup = dir.join(format!("{LOG_FILE}.corrupt-at-{offset}"));
    fs::write(&backup, &bytes).map_err(storage("writing the backup"))?;
    File::open(&backup)
        .and_then(|f| f.sync_all())
        .map_err(storage("fsync of the backup"))?;
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(storage("opening for repair"))?;
    f.set_len(offset).map_err(storage("truncation"))?;
    f.sync_all().map_err(storage("fsync after truncation"))?;
    Ok(Repair {
        path,
        backup: Some(backup),
        cut_at: offset,
        dropped_bytes: len - offset,
        reason: Some(reason),
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
}
