//! Waiting for a node's log_dir to be compacted, for real-process tests of
//! snapshots and retention: a `snapshot.<seq>` file that verifies, and the
//! segment files down below a count. Polls the directory (no STATUS field
//! needed), bounded in time; the panicking form prints the nodes' stderr.
#![allow(dead_code)]

use super::cluster::Cluster;
use chorus_runtime_mio::{segments, snapshots};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// What a log_dir holds, as retention sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Seq of the newest snapshot file whose header checks out, if any.
    pub snapshot_seq: Option<u64>,
    /// Snapshot files whose header does not (name and reason).
    pub bad_snapshots: Vec<String>,
    /// Segment files (`chorus.log*`, without their `.idx`).
    pub segments: usize,
    /// Base offset of the first segment left (0 while none was deleted).
    pub first_base: u64,
}

/// The state of `dir` now (headers only: cheap enough to poll; a snapshot
/// being written is a `.tmp`, not listed).
pub fn compaction(dir: &Path) -> Compaction {
    let segs = segments::list(dir).unwrap_or_default();
    let mut out = Compaction {
        segments: segs.len(),
        first_base: segs.first().map_or(0, |s| s.base),
        ..Compaction::default()
    };
    for (_, path) in snapshots::list(dir).unwrap_or_default() {
        match snapshots::read_header(&path, snapshots::DEFAULT_MAX_SNAPSHOT_BYTES) {
            Ok(m) => {
                out.snapshot_seq = out.snapshot_seq.max(Some(m.seq.0));
            }
            Err(why) => out.bad_snapshots.push(format!("{}: {why}", path.display())),
        }
    }
    out
}

/// Polls `dir` until it holds a valid snapshot and fewer than
/// `max_segments` segment files; then checks the newest snapshot whose
/// header is valid whole (payload checksum). Err with the last state after
/// `timeout`, or if that snapshot's payload is damaged.
pub fn poll_compacted(
    dir: &Path,
    max_segments: usize,
    timeout: Duration,
) -> Result<Compaction, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = compaction(dir);
        if c.snapshot_seq.is_some() && c.segments < max_segments {
            let verdicts = snapshots::report(dir, snapshots::DEFAULT_MAX_SNAPSHOT_BYTES)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            let newest = snapshots::snapshot_name(chorus_core::Seq(c.snapshot_seq.unwrap_or(0)));
            let verdict = verdicts
                .iter()
                .find(|r| r.path.file_name().is_some_and(|n| n == newest.as_str()));
            match verdict.map(|r| &r.verdict) {
                Some(Ok(_)) => return Ok(c),
                Some(Err(why)) => return Err(format!("{}/{newest}: {why}", dir.display())),
                // Replaced by a newer one since: poll again.
                None => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{}: no snapshot with fewer than {max_segments} segments within {timeout:?}; last: {c:?}",
                dir.display()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// `poll_compacted` on node `i` of `cluster`; panics with the nodes' logs.
pub fn wait_compacted(
    cluster: &Cluster,
    i: usize,
    max_segments: usize,
    timeout: Duration,
) -> Compaction {
    poll_compacted(&cluster.log_dir(i), max_segments, timeout)
        .unwrap_or_else(|e| panic!("node {}: {e}\n{}", i + 1, cluster.logs()))
}
