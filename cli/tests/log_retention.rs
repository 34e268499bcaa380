//! `chorus log inspect` and `chorus log repair` (the real binary) on a
//! log_dir whose first segments retention deleted behind a snapshot: they
//! read the segments left, say where the log starts, and list the snapshot
//! files with their verdicts. Also tests `common/retention.rs`, the
//! waiter the real-process snapshot tests use.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/retention.rs"]
mod retention;

use chorus_core::{Body, Chat, Entry, NodeId, Record, Seq, Term};
use chorus_runtime_mio::snapshots::{snapshot_name, SnapshotStore};
use chorus_runtime_mio::storage::DurableLog;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn chat(seq: u64) -> Record {
    Record::Entry(Entry {
        seq_no: Seq(seq),
        term: Term(1),
        body: Body::Chat(Chat {
            msg_id: format!("m{seq}"),
            room_id: "general".into(),
            sender_id: 7,
            user: None,
            payload: format!("hello {seq}"),
            ts_ms: 1,
            event: None,
        }),
    })
}

/// 60 committed chats in small segments, a snapshot at 40, the segments
/// before the one holding 41 deleted, and a damaged newer snapshot file.
fn compacted(dir: &Path) -> u64 {
    let mut o = DurableLog::open_into(dir, Vec::new(), 300).unwrap();
    o.log.append(&Record::Term {
        term: Term(1),
        voted_for: Some(NodeId(1)),
    });
    for s in 1..=60 {
        o.log.append(&chat(s));
        o.log.append(&Record::Commit { seq: Seq(s) });
        o.log.commit().unwrap();
    }
    let mut store = SnapshotStore::open(dir).unwrap();
    store.save(Seq(40), Term(1), b"opaque core state").unwrap();
    let removed = o.log.delete_segments_before(Seq(41)).unwrap();
    assert!(removed.segments > 3, "{removed:?}");
    std::fs::write(dir.join(snapshot_name(Seq(50))), b"not a snapshot").unwrap();
    drop(o);
    removed.segments as u64
}

fn chorus(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_and_repair_read_a_compacted_log_and_list_its_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    compacted(dir);
    let (ok, out, err) = chorus(&["log", "inspect"], dir);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = lines[0]["index"].as_u64().unwrap();
    assert!(first > 1 && first <= 41, "{first}");
    let indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, (first..=60).collect::<Vec<_>>());
    assert_eq!(lines.last().unwrap()["payload"], "hello 60");
    assert!(
        lines
            .iter()
            .all(|l| l.get("seq_no").is_none() && l.get("room_seq").is_none()),
        "no chat numbers without the snapshot: {out}"
    );
    assert!(
        err.contains(&format!("the log starts after log index {}", first - 1)),
        "{err}"
    );
    assert!(err.contains("committed up to log index 60"), "{err}");
    let valid = format!(
        "{}: snapshot at log index 40, term 1, 57 bytes, valid",
        dir.join(snapshot_name(Seq(40))).display()
    );
    assert!(err.contains(&valid), "{err}");
    let invalid = format!(
        "{}: 14 bytes, NOT a valid snapshot: 14 bytes, shorter than the 40-byte header",
        dir.join(snapshot_name(Seq(50))).display()
    );
    assert!(err.contains(&invalid), "{err}");

    let (ok, out, err) = chorus(&["log", "repair"], dir);
    assert!(ok, "{err}");
    assert!(out.contains("no corruption found"), "{out}");
    assert!(err.contains(&valid), "{err}");
    assert!(err.contains(&invalid), "{err}");
    assert!(
        dir.join(snapshot_name(Seq(50))).exists(),
        "repair leaves snapshots alone"
    );
}

#[test]
fn the_compaction_waiter_sees_a_snapshot_and_fewer_segments_or_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // Nothing yet: bounded wait, then the last state in the error.
    let t = Instant::now();
    let err = retention::poll_compacted(&dir, 3, Duration::from_millis(300)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "bounded");
    assert!(
        err.contains("no snapshot with fewer than 3 segments"),
        "{err}"
    );
    // A writer compacts the directory meanwhile; the waiter returns after.
    let writer = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            compacted(&dir)
        })
    };
    let c = retention::poll_compacted(&dir, 10, Duration::from_secs(20)).unwrap();
    let deleted = writer.join().unwrap();
    let left = chorus_runtime_mio::segments::list(&dir).unwrap().len();
    assert!(c.segments < 10 && c.snapshot_seq.is_some(), "{c:?}");
    // The waiter may have seen the state before the damaged file was made.
    let now = retention::compaction(&dir);
    assert_eq!(now.snapshot_seq, Some(40));
    assert_eq!(now.segments, left);
    assert!(now.first_base > 0 && deleted > 0);
    assert_eq!(now.bad_snapshots.len(), 1, "{now:?}");
}
