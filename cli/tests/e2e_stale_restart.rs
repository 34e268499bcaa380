//! The whole cluster restarted while the highest node's log is stale (the
//! seed's bug: node 3 came back, won Bully and reassigned sequence numbers
//! already used). Node 3 is down while messages are committed by nodes 1
//! and 2; then every node is killed; node 3 restarts first, alone (it must
//! not lead without a majority), then node 1 (3 leads again, but only after
//! adopting node 1's log), new messages go through node 3, then node 2.
//! A second test restarts all three at once. Checked on every node's
//! `chorus log inspect`: each seq_no keeps its msg_id across the restart,
//! every acknowledged message is present exactly once, and all logs end
//! identical. Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::Conn;
use cluster::{Cluster, Timing};
use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(20);
const ACK_WAIT: Duration = Duration::from_secs(10);
const CONVERGE_WAIT: Duration = Duration::from_secs(20);

/// Sends `n` messages `<tag>-<i>` one by one through node `i`, each acknowledged.
fn send(c: &Cluster, i: usize, tag: &str, n: usize, acked: &mut BTreeMap<String, u64>) {
    let mut conn = Conn::connect(&c.addr(i)).expect("connect");
    for k in 0..n {
        let id = format!("{tag}-{k:03}");
        let seq = conn.chat_acked(&id, &format!("{tag} {k}"), ACK_WAIT);
        acked.insert(id, seq);
    }
}

/// Commits "a" on all three nodes, then "b" on nodes 1 and 2 only (node 3
/// down), then kills everyone. Returns the acknowledged ids and what the
/// logs say, seq_no → msg_id.
fn stale_cluster() -> (Cluster, BTreeMap<String, u64>, BTreeMap<u64, String>) {
    let mut c = Cluster::start_with(3, Timing::FAST);
    assert_eq!(
        c.wait_for_leader(LEADER_WAIT),
        2,
        "node 3 leads\n{}",
        c.logs()
    );
    let mut acked = BTreeMap::new();
    send(&c, 0, "a", 20, &mut acked);
    logs::wait_converged(&c, &[0, 1, 2], &acked, CONVERGE_WAIT);

    // Node 3 misses everything committed from now on.
    c.kill(2);
    assert_eq!(
        c.wait_for_leader(LEADER_WAIT),
        1,
        "node 2 leads\n{}",
        c.logs()
    );
    send(&c, 0, "b", 30, &mut acked);
    send(&c, 1, "b2", 10, &mut acked);
    logs::wait_converged(&c, &[0, 1], &acked, CONVERGE_WAIT);
    c.kill(0);
    c.kill(1);

    let mut before: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..3 {
        let log = logs::inspect(&c.log_dir(i), false).unwrap();
        for (seq, id) in logs::by_seq(&log) {
            if let Some(other) = before.insert(seq, id.clone()) {
                assert_eq!(other, id, "seq {seq} differs between logs already");
            }
        }
    }
    let stale = logs::inspect(&c.log_dir(2), false).unwrap();
    assert!(
        stale.len() < before.len(),
        "node 3's log is stale ({} of {} entries)",
        stale.len(),
        before.len()
    );
    (c, acked, before)
}

/// Every node's log is identical, each seq_no kept its msg_id, and the
/// messages sent after the restart ("c-…") got new seq_nos.
fn check_no_seq_reused(c: &Cluster, acked: &BTreeMap<String, u64>, before: &BTreeMap<u64, String>) {
    let log = logs::wait_converged(c, &[0, 1, 2], acked, CONVERGE_WAIT);
    let after = logs::by_seq(&log);
    for (seq, id) in before {
        assert_eq!(
            after.get(seq),
            Some(id),
            "seq {seq} held {id} before the restart; now {:?}",
            after.get(seq)
        );
    }
    let last_before = *before.keys().last().unwrap();
    for (id, seq) in acked.iter().filter(|(id, _)| id.starts_with("c-")) {
        assert!(
            *seq > last_before,
            "{id} reused seq {seq} (≤ {last_before})"
        );
    }
    assert_eq!(log.len(), acked.len(), "only acknowledged messages");
}

#[test]
fn stale_highest_node_restarted_first_never_reuses_a_seq_no() {
    let (mut c, mut acked, before) = stale_cluster();

    // Node 3 first, alone: without a majority it must not lead.
    c.start_node(2);
    thread::sleep(Duration::from_millis(3 * c.timing.leader_timeout_ms));
    let st = c.wait_status(2, LEADER_WAIT, "answering", |_| true);
    assert_ne!(st.role, "leader", "node 3 leads without a majority: {st:?}");

    // With node 1 it has a majority: it leads (Bully) after adopting node 1's log.
    c.start_node(0);
    c.wait_status(2, LEADER_WAIT, "the leader", |s| s.role == "leader");
    send(&c, 2, "c", 20, &mut acked);
    c.start_node(1);
    check_no_seq_reused(&c, &acked, &before);
}

#[test]
fn whole_cluster_restarted_at_once_with_a_stale_highest_node_never_reuses_a_seq_no() {
    let (mut c, mut acked, before) = stale_cluster();
    for i in [2, 0, 1] {
        c.start_node(i);
    }
    let leader = c.wait_for_leader(LEADER_WAIT);
    // Through the stale node and through the leader.
    send(&c, 2, "c", 10, &mut acked);
    send(&c, leader, "c-l", 10, &mut acked);
    check_no_seq_reused(&c, &acked, &before);
}
