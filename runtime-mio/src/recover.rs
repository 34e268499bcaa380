//! A node's start: the newest valid snapshot in its log_dir (`snapshots.rs`),
//! then the log after it (`DurableLog::open_after`, which skips the
//! segments the snapshot covers), or the whole log when there is no
//! snapshot. The core's `Restore` sink keeps only what follows the
//! snapshot, and only if the log agrees with it (`chorus_core::snapshot`).
//!
//! Why a start reads the snapshot first: with retention the segments before
//! it are gone, so the log alone no longer holds the rooms, accounts and
//! numbering; without retention it still saves replaying the whole history.

use crate::cold::ColdReader;
use crate::error::RuntimeError;
use crate::snapshots::{SnapshotError, SnapshotStore};
use crate::storage::{DurableLog, Opened};
use chorus_core::snapshot::{Restore, Snapshot, SnapshotImage};
use chorus_core::{Config, EntrySink, Log, Node, Recovered, Seq, Term};
use std::path::Path;
use std::sync::Arc;
use tracing::warn;

/// What a start recovered, before the node is built.
pub(crate) struct Recovery {
    pub log: DurableLog,
    pub store: SnapshotStore,
    /// Bytes of torn tail cut (0 after a clean stop).
    pub torn_bytes: u64,
    pub valid_len: u64,
    pub records: u64,
    /// Segment files replay skipped (the snapshot covers them).
    pub skipped_segments: usize,
    pub term: Term,
    pub commit_seq: Seq,
    pub last_seq: Seq,
    /// The snapshot loaded, if any.
    pub snapshot_seq: Option<Seq>,
    state: State,
}

enum State {
    Log(Box<Recovered<Log>>),
    Snapshot(Box<(Snapshot, SnapshotImage, Recovered<Restore>)>),
}

fn snapshot_err(dir: &Path) -> impl FnOnce(SnapshotError) -> RuntimeError + '_ {
    move |e| RuntimeError::Corrupt {
        file: dir.to_path_buf(),
        dir: dir.to_path_buf(),
        offset: 0,
        reason: e.to_string(),
    }
}

impl Recovery {
    /// Opens `dir`: the newest snapshot that verifies, then the log.
    pub fn open(core: &Config, dir: &Path, segment_bytes: u64) -> Result<Recovery, RuntimeError> {
        std::fs::create_dir_all(dir).map_err(|err| RuntimeError::LogDir {
            dir: dir.to_path_buf(),
            what: "cannot create it",
            err,
        })?;
        // Read-only before the log's lock is taken (`open_*` below): the
        // writable store removes stale `.tmp` files, which must not be
        // another live node's save in progress.
        let loaded = SnapshotStore::open_read_only(dir, core.max_snapshot_bytes)
            .and_then(|mut s| s.load_latest())
            .map_err(snapshot_err(dir))?;
        let writable = || {
            SnapshotStore::open_with_max(dir, core.max_snapshot_bytes).map_err(snapshot_err(dir))
        };
        let Some(loaded) = loaded else {
            let first = crate::segments::list(dir)
                .map_err(|err| RuntimeError::Read {
                    file: dir.to_path_buf(),
                    err,
                })?
                .first()
                .map_or(0, |f| f.base);
            if first > 0 {
                return Err(RuntimeError::Corrupt {
                    file: dir.to_path_buf(),
                    dir: dir.to_path_buf(),
                    offset: first,
                    reason: "retention deleted the log's first segments, and no snapshot file \
                             verifies (`chorus log inspect` lists them and why); the node \
                             cannot rebuild its state: move this log_dir away and start the \
                             node empty, so that it installs the leader's snapshot"
                        .into(),
                });
            }
            let mut log = Log::new(core.log_cache_entries);
            // Bounded during replay too: memory never holds more than the window.
            let (ids, ms) = core.dedup_window();
            log.set_dedup_window(ids, ms);
            let opened = DurableLog::open_into(dir, log, segment_bytes)?;
            let last = opened.replayed.recovered.entries.last_seq();
            let store = writable()?;
            return Ok(Recovery::from(opened, store, last, None, |r| {
                State::Log(Box::new(r))
            }));
        };
        for s in &loaded.skipped {
            warn!(
                "skipped snapshot {}: {} (an older one is used; the file is left for inspection)",
                s.path.display(),
                s.reason
            );
        }
        let path = loaded.meta.path.clone();
        let snap = Snapshot::decode(&loaded.bytes).map_err(|reason| RuntimeError::Corrupt {
            file: path,
            dir: dir.to_path_buf(),
            offset: 0,
            reason: format!("the snapshot's content: {reason}"),
        })?;
        let image = SnapshotImage {
            seq: snap.seq,
            term: snap.term,
            bytes: Arc::new(loaded.bytes),
        };
        let restore = Restore::new(&snap)
            .with_cache_max(core.log_cache_entries)
            .starting_after(snap.seq);
        let opened = DurableLog::open_after(dir, snap.seq, restore, segment_bytes)?;
        let store = writable()?;
        let last = opened.replayed.recovered.entries.log().last_seq();
        let seq = snap.seq;
        Ok(Recovery::from(opened, store, last, Some(seq), move |r| {
            State::Snapshot(Box::new((snap, image, r)))
        }))
    }

    fn from<E: EntrySink>(
        opened: Opened<E>,
        store: SnapshotStore,
        last_seq: Seq,
        snapshot_seq: Option<Seq>,
        state: impl FnOnce(Recovered<E>) -> State,
    ) -> Recovery {
        let r = &opened.replayed.recovered;
        Recovery {
            torn_bytes: opened.torn_bytes,
            valid_len: opened.replayed.valid_len,
            records: opened.replayed.records,
            skipped_segments: opened.skipped_segments,
            term: r.term,
            commit_seq: r.commit_seq.max(snapshot_seq.unwrap_or(Seq(0))),
            last_seq,
            snapshot_seq,
            log: opened.log,
            store,
            state: state(opened.replayed.recovered),
        }
    }

    /// The node, reading evicted entries through the log's segment index.
    /// Returns the parts of the recovery the runtime keeps.
    pub fn into_node(self, cfg: Config, rng_seed: u64) -> (Node, DurableLog, SnapshotStore) {
        let reader = Box::new(
            ColdReader::new(self.log.index())
                .with_snapshots(self.store.dir(), cfg.max_snapshot_bytes),
        );
        let node = match self.state {
            State::Log(r) => Node::from_log(cfg, *r, rng_seed),
            State::Snapshot(b) => {
                let (snap, image, r) = *b;
                Node::restored(cfg, snap, image, r, rng_seed)
            }
        };
        (node.with_cold_log(reader), self.log, self.store)
    }
}
