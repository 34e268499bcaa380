//! A rolling restart under steady load, end to end: `chorus bench --rolling`
//! starts 3 real nodes, drives 1000 msgs/s through 16 clients, and restarts
//! every node in turn (SIGTERM, start, wait for its catch-up). The test reads
//! its JSON report: every node stopped cleanly on SIGTERM and caught up, the
//! leader was among them, nothing acknowledged was lost, duplicated or moved
//! in any node's log, and every message was acknowledged. Bounded: the bench
//! stops by itself (--max-seconds) and kills only the nodes it started.

use std::process::Command;

#[test]
fn rolling_restart_under_load_loses_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "bench",
            "--rolling",
            "--json",
            "--heartbeat-ms",
            "100",
            "--leader-timeout-ms",
            "1000",
            "--settle-seconds",
            "0.5",
            "--max-seconds",
            "90",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success() && v["ok"] == true, "{v:#}");
    let steps = v["rolling"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{v:#}");
    assert!(steps
        .iter()
        .all(|s| s["clean_exit"] == true && s["restart_to_caught_up_ms"].is_number()));
    assert!(
        steps.iter().any(|s| s["was_leader"] == true),
        "the leader was restarted too: {v:#}"
    );
    let logs = &v["logs"];
    assert_eq!(logs["checked_nodes"].as_array().unwrap().len(), 3);
    for k in ["acked_lost", "duplicated", "misplaced"] {
        assert_eq!(logs[k], 0, "{k}: {v:#}");
    }
    assert_eq!(v["acked"], v["issued"], "every message acknowledged");
}
