//! Nodes that keep only 64 log entries in memory (`log_cache_entries = 64`)
//! and cut their log into 16 KiB segment files (`log_segment_bytes`) still
//! serve everything from their log: node 1 is SIGKILLed, 1500 messages are
//! committed by nodes 2 and 3, node 1 restarts and catches up (the leader
//! reads the backlog back across its segments), then a HISTORY from seq 1
//! on every node returns all 1500 in the same order (each node reads its own
//! evicted entries back). Node 2 is then SIGKILLed and restarted: it
//! recovers from its segments (and their index files) and serves the same
//! HISTORY. Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Conn, Pacer, PacerOpts};
use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const BACKLOG: usize = 1500;

/// Every chat of `addr`'s history from seq 1, in order, as (seq, msg_id),
/// fetched in pages of at most 1000 (the protocol's cap).
fn history(addr: &str) -> Vec<(u64, String)> {
    let mut conn = Conn::connect(addr).expect("connect");
    let mut out = Vec::new();
    let mut from = 1u64;
    loop {
        conn.send(&json!({"type": "HISTORY", "from_seq": from, "limit": 1000}))
            .unwrap();
        let end: Value = loop {
            let v = conn
                .recv(WAIT)
                .unwrap()
                .expect("HISTORY answered before the timeout");
            match v["type"].as_str() {
                Some("SEQ_CHAT") => out.push((
                    v["seq_no"].as_u64().unwrap(),
                    v["msg_id"].as_str().unwrap().to_string(),
                )),
                Some("HISTORY_END") => break v,
                _ => {}
            }
        };
        let next = end["next_seq"].as_u64().unwrap();
        if next > end["commit_seq"].as_u64().unwrap() || next == from {
            return out;
        }
        from = next;
    }
}

#[test]
fn a_64_entry_cache_serves_catch_up_and_history_from_the_log_file() {
    let mut c = Cluster::start_with_config(
        3,
        Timing::FAST,
        "log_cache_entries = 64\nlog_segment_bytes = 16384\n",
    );
    c.wait_for_leader(WAIT);
    assert!(
        c.logs().contains("keeping the last 64 entries in memory"),
        "the config key did not reach the node\n{}",
        c.logs()
    );
    c.kill(0);
    let mut bulk = PacerOpts::new("bulk", vec![c.addr(1), c.addr(2)], Duration::from_millis(5));
    bulk.batch = 100;
    bulk.max = Some(BACKLOG);
    bulk.retry_after = Duration::from_secs(2);
    let bulk = Pacer::start(bulk);
    assert!(
        bulk.wait_acked(BACKLOG, WAIT),
        "backlog not committed: {} acked\n{}",
        bulk.acked(),
        c.logs()
    );
    let bulk = bulk.finish(WAIT);
    assert!(bulk.unacked().is_empty(), "{}", bulk.summary());
    c.start_node(0);
    let acked: BTreeMap<String, u64> = bulk.acked_seqs();
    let log = logs::wait_converged(&c, &[0, 1, 2], &acked, WAIT);
    assert_eq!(log.len(), BACKLOG, "each message once in every log");
    let want: Vec<(u64, String)> = {
        let mut v: Vec<(u64, String)> = acked.iter().map(|(id, &s)| (s, id.clone())).collect();
        v.sort();
        v
    };
    for i in 0..3 {
        let h = history(&c.addr(i));
        assert_eq!(h, want, "node {}'s HISTORY differs\n{}", i + 1, c.logs());
        let segs = chorus_runtime_mio::segments::list(&c.log_dir(i)).unwrap();
        // A segment ends between two writes: node 1 caught up in large
        // writes, the others wrote about one batch of chats each time.
        let least = if i == 0 { 2 } else { 5 };
        assert!(segs.len() >= least, "node {}: {segs:?}", i + 1);
    }
    c.kill(1);
    c.start_node(1);
    c.wait_status(1, WAIT, "serving the backlog after its restart", |st| {
        st.commit_seq >= BACKLOG as u64
    });
    let h = history(&c.addr(1));
    assert_eq!(h, want, "node 2's HISTORY after a restart\n{}", c.logs());
}
