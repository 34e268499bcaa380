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

/// `chorus bench --subscribers`: 300 subscribers of one room over JSON
/// lines and WebSocket, in two worker processes, on a started 3-node
/// cluster; every one of them must get every message, in order, once, and
/// the report must have its shape (sessions per node, RSS per idle session,
/// deliveries/s, latency). Behaviour, not speed.
#[test]
fn fanout_bench_delivers_every_message_to_every_subscriber() {
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "bench",
            "--subscribers",
            "300",
            "--workers",
            "2",
            "--publish",
            "40",
            "--rate",
            "100",
            "--transport",
            "json,ws",
            "--heartbeat-ms",
            "100",
            "--leader-timeout-ms",
            "500",
            "--max-seconds",
            "60",
            "--json",
        ])
        .output()
        .expect("run chorus bench --subscribers");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chorus bench --subscribers failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["mode"], "fanout", "{v}");
    assert_eq!(
        v["config"]["transports"],
        serde_json::json!(["json", "ws"]),
        "{v}"
    );
    assert_eq!(v["sessions"]["ready"], 300, "{v}");
    assert_eq!(v["sessions"]["failed"], 0, "{v}");
    let per_node: Vec<u64> = v["sessions"]["per_node"]
        .as_array()
        .expect("sessions per node")
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(per_node, vec![100, 100, 100], "{v}");
    assert_eq!(v["published"]["acked"], 40, "{v}");
    let d = &v["deliveries"];
    assert_eq!(d["count"], 300 * 40, "{v}");
    assert_eq!(d["expected"], 300 * 40, "{v}");
    assert_eq!(d["complete_subscribers"], 300, "{v}");
    assert_eq!(d["out_of_order_subscribers"], 0, "{v}");
    assert!(d["per_s"].as_f64().unwrap() > 0.0, "{v}");
    let l = &v["latency_ms"];
    assert_eq!(l["count"], 300 * 40, "{v}");
    let (p50, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{v}");
    let rows = v["nodes_sessions"].as_array().expect("RSS per node");
    assert_eq!(rows.len(), 3, "{v}");
    for r in rows {
        assert_eq!(r["sessions"], 100, "{v}");
        assert!(r["rss_idle_kib"].as_u64().unwrap() > 0, "{v}");
        assert!(r["rss_per_session_bytes"].is_number(), "{v}");
    }
}
