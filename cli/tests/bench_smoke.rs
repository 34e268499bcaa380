//! CI smoke run of `chorus bench`: a 3-node cluster of real `chorus node`
//! processes, 200 messages from 2 clients, `--json` parsed and checked for a
//! sane, complete result. Never a speed assertion: CI machines vary, and the
//! figures belong in BENCHMARKS.md, not in a test.

use serde_json::Value;
use std::process::Command;

#[test]
fn bench_reports_a_sane_result_for_a_small_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "bench",
            "--nodes",
            "3",
            "--messages",
            "200",
            "--clients",
            "2",
            "--heartbeat-ms",
            "100",
            "--leader-timeout-ms",
            "500",
            "--max-seconds",
            "30",
            "--json",
        ])
        .output()
        .expect("run chorus bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chorus bench failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["issued"], 200, "{v}");
    assert_eq!(v["acked"], 200, "{v}");
    assert!(v["msgs_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["checks"]["ok"], true, "{v}");
    for key in ["send_to_ack", "send_to_delivered_all"] {
        let l = &v["latency"][key];
        assert_eq!(l["count"], 200, "{key}: {v}");
        let p50 = l["p50_ms"].as_f64().unwrap();
        let p99 = l["p99_ms"].as_f64().unwrap();
        let max = l["max_ms"].as_f64().unwrap();
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{key}: {v}");
    }
    let nodes = v["nodes"].as_array().expect("per-node usage");
    assert_eq!(nodes.len(), 3, "{v}");
    assert_eq!(
        nodes.iter().filter(|n| n["role"] == "leader").count(),
        1,
        "{v}"
    );
    for n in nodes {
        assert!(n["cpu_s"].as_f64().unwrap() >= 0.0, "{v}");
        assert!(n["peak_rss_mib"].as_f64().unwrap() > 0.0, "{v}");
    }
}
