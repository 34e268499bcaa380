//! The seed dialect end to end: a client of exactly the seed's shape
//! (`seed_client.py`: asyncio, the seed's ten-type enum, `sender_id` and
//! `term` read directly, any odd line counts as a close) shares room
//! `general` with chorus clients (HELLO, full protocol) on another node,
//! through a leader SIGKILL. 1,000 messages in all: the seed client receives
//! every one as a seed-format SEQ_CHAT, in room_seq order with no hole, and
//! is never disconnected. A chorus client's HELLO gets the node's HELLO, and
//! a future proto a clear ERROR.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Conn, Pacer, PacerOpts};
use cluster::{Cluster, Timing};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn seed_client_and_chorus_clients_share_a_room_through_a_leader_kill() {
    let mut c = Cluster::start_with(3, Timing::FAST);
    let leader = c.wait_for_leader(WAIT);
    let seed_node = (leader + 1) % 3;
    let chorus_node = (leader + 2) % 3;
    let port = c.addr(seed_node).rsplit(':').next().unwrap().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_client.py");
    let seed = Command::new("python3")
        .args([script, "--port", &port, "--send", "500", "--expect", "1000"])
        .args(["--timeout", "60", "--gap-ms", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the seed-shaped client");

    let mut opts = PacerOpts::new("hello", vec![c.addr(chorus_node)], Duration::from_millis(4));
    opts.max = Some(500);
    opts.retry_after = Duration::from_secs(2);
    let pacer = Pacer::start(opts);
    assert!(pacer.wait_acked(150, WAIT), "no acks\n{}", c.logs());
    c.kill(leader);
    assert!(
        pacer.wait_acked(500, Duration::from_secs(40)),
        "{} of 500 acked after the kill\n{}",
        pacer.acked(),
        c.logs()
    );
    let report = pacer.finish(WAIT);
    assert!(
        report.unacked().is_empty() && report.errors.is_empty(),
        "{}\n{}",
        report.summary(),
        c.logs()
    );

    let out = seed.wait_with_output().expect("seed client finishes");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("seed client summary {text:?}: {e}\n{}", c.logs()));
    assert_eq!(summary["bad_lines"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["reconnects"], 0, "never disconnected: {summary}");
    assert_eq!(summary["sent"], 500);
    assert_eq!(summary["received"], 1000, "{}\n{}", summary, c.logs());
    assert_eq!(
        summary["delivered_in_order"], 1000,
        "room_seq has no hole: {summary}"
    );
    let payloads = summary["payloads"].as_array().unwrap();
    let chorus = payloads
        .iter()
        .filter(|p| p.as_str().unwrap().starts_with("hello "))
        .count();
    assert_eq!(
        chorus, 500,
        "the chorus client's messages reached the seed client"
    );

    // The survivors agree, and both numberings have no hole.
    let log = logs::wait_converged(&c, &[seed_node, chorus_node], &report.acked_seqs(), WAIT);
    assert_eq!(log.len(), 1000);
}

#[test]
fn hello_is_answered_and_a_future_proto_is_refused() {
    let c = Cluster::start_with(1, Timing::FAST);
    c.wait_for_leader(WAIT);
    let mut full = Conn::connect_seed(&c.addr(0)).unwrap();
    full.send_raw(b"{\"type\":\"HELLO\",\"proto\":2,\"client\":\"test/1\",\"extra\":true}\n")
        .unwrap();
    let hello = full.recv_type("HELLO", WAIT);
    assert_eq!(hello["proto"], 2, "{hello}");
    assert_eq!(hello["node_id"], 1, "{hello}");
    assert!(hello["max_line_bytes"].as_u64().unwrap() > 0, "{hello}");
    let seq = full.chat_acked("h-1", "hi", WAIT);
    assert_eq!(seq, 1, "a fresh cluster's first chat is #1");

    let mut future = Conn::connect_seed(&c.addr(0)).unwrap();
    future
        .send_raw(b"{\"type\":\"HELLO\",\"proto\":3,\"client\":\"test/9\"}\n")
        .unwrap();
    let err = future.recv_type("ERROR", WAIT);
    assert_eq!(err["code"], "bad_request", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("proto 3") && msg.contains("proto 2"), "{msg}");
    assert_eq!(future.recv(WAIT), Ok(None), "then closed");

    // A seed connection: no CHAT_ACK, only its room's seed-format SEQ_CHATs.
    let mut seed = Conn::connect_seed(&c.addr(0)).unwrap();
    seed.send(&chat::chat("s-1", "from the seed")).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        match seed.recv(WAIT) {
            Ok(Some(v)) => got.push(v),
            other => panic!("seed connection: {other:?} after {got:?}"),
        }
    }
    for v in &got {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "msg_id",
                "payload",
                "room_id",
                "sender_id",
                "seq_no",
                "term",
                "type"
            ],
            "{v}"
        );
        assert_eq!(v["type"], "SEQ_CHAT");
    }
    assert_eq!(
        (got[0]["seq_no"].clone(), got[0]["payload"].clone()),
        (1.into(), "hi".into())
    );
    assert_eq!(got[1]["seq_no"], 2);
    assert_eq!(got[1]["sender_id"], 9999);
    // A line the seed never sends: no answer at all (no ERROR line).
    seed.send_raw(b"{\"type\":\"STATUS\"}\n").unwrap();
    assert!(
        seed.recv(Duration::from_millis(500)).is_err(),
        "nothing comes back"
    );
}
