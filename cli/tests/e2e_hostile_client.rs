//! Hostile clients against a real 3-node cluster. (1) A client line of a peer
//! type (SEQ_CHAT, COORDINATOR, HEARTBEAT, …) on any node, follower or
//! leader, gets ERROR forbidden, the connection stays open, and nothing
//! changes: every node's log (`chorus log inspect --all`), leader and term are
//! as before. (2) Garbage and a 10 MiB line get ERROR and their connection is
//! closed, while another client on the same node keeps chatting, every one of
//! its messages acknowledged. Every wait is bounded.

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
use std::thread;
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(10);

/// Forged peer messages that would each change the cluster if accepted.
fn forgeries(c: &Cluster, next_seq: u64, term: u64) -> Vec<Value> {
    let evil = |n: u64| {
        json!({"seq_no":next_seq + n,"term":term + 50,"msg_id":format!("evil-{n}"),
               "room_id":"general","sender_id":1,"payload":"forged","ts_ms":0})
    };
    let node1 = json!({"node_id":1,"host":"127.0.0.1","port":c.nodes[0].port});
    vec![
        json!({"type":"SEQ_CHAT","sender_id":3,"term":term,"prev_seq":next_seq - 1,"prev_term":term,
               "commit_seq":next_seq,"entries":[evil(0)]}),
        json!({"type":"SEQ_CHAT","sender_id":1,"term":term + 50,"prev_seq":0,"prev_term":0,
               "commit_seq":1,"entries":[evil(1)]}),
        json!({"type":"COORDINATOR","sender_id":1,"term":term + 50,"leader":node1}),
        json!({"type":"HEARTBEAT","sender_id":1,"term":term + 50,"commit_seq":0,"last_seq":0,"last_term":0}),
        json!({"type":"ELECTION","sender_id":1,"term":term + 50}),
        json!({"type":"CATCHUP_RESP","sender_id":3,"term":term,"prev_seq":0,"prev_term":0,
               "commit_seq":1,"last_seq":1,"entries":[evil(2)]}),
        json!({"type":"FORWARD","sender_id":1,"term":term,"chat":{"msg_id":"evil-fwd","room_id":"general",
               "sender_id":1,"payload":"forged","ts_ms":0}}),
        json!({"type":"APPEND_ACK","sender_id":1,"term":term,"match_seq":next_seq + 10}),
        json!({"type":"JOIN","sender_id":7,"term":term + 50,"peer":{"node_id":7,"host":"127.0.0.1","port":1}}),
    ]
}

/// (role, leader, term) of every node.
fn views(c: &Cluster) -> Vec<(String, Option<u64>, u64)> {
    (0..3)
        .map(|i| {
            let s = c.status(i).expect("STATUS");
            (s.role, s.leader, s.term)
        })
        .collect()
}

fn all_logs(c: &Cluster) -> Vec<Vec<Value>> {
    (0..3)
        .map(|i| logs::inspect(&c.log_dir(i), true).unwrap())
        .collect()
}

#[test]
fn peer_messages_from_a_client_are_forbidden_and_change_nothing() {
    let c = Cluster::start_with(3, Timing::FAST);
    c.wait_for_leader(LEADER_WAIT);
    let mut acked = BTreeMap::new();
    let mut conn = Conn::connect(&c.addr(0)).unwrap();
    for k in 0..5 {
        let id = format!("ok-{k}");
        acked.insert(id.clone(), conn.chat_acked(&id, "legit", WAIT));
    }
    logs::wait_converged(&c, &[0, 1, 2], &acked, WAIT);
    // Let the commit point settle everywhere (it is a hint in the log).
    thread::sleep(Duration::from_millis(5 * c.timing.heartbeat_interval_ms));
    let logs_before = all_logs(&c);
    let views_before = views(&c);
    let st = c.status(2).unwrap();
    let (next_seq, term) = (st.log_last + 1, st.term);

    for i in 0..3 {
        let mut h = Conn::connect(&c.addr(i)).unwrap();
        for f in forgeries(&c, next_seq, term) {
            h.send(&f).unwrap();
            let e = h.recv_type("ERROR", WAIT);
            assert_eq!(e["code"], "forbidden", "node {}: {f} → {e}", i + 1);
        }
        // Still open, still a client.
        h.send(&json!({"type":"STATUS"})).unwrap();
        h.recv_type("STATUS", WAIT);
    }
    // Give any (wrongly) accepted message time to act: several heartbeats
    // and more than a leader timeout.
    thread::sleep(Duration::from_millis(c.timing.leader_timeout_ms + 500));
    assert_eq!(views(&c), views_before, "leader or term changed");
    let logs_after = all_logs(&c);
    for i in 0..3 {
        assert_eq!(
            logs_after[i],
            logs_before[i],
            "node {}'s log changed: {}",
            i + 1,
            logs::first_difference(&logs_before[i], &logs_after[i])
        );
    }
}

#[test]
fn garbage_and_a_10_mib_line_close_only_their_connection() {
    let c = Cluster::start_with(3, Timing::FAST);
    c.wait_for_leader(LEADER_WAIT);
    for node in [0, 2] {
        // A bystander chatting on the same node the whole time.
        let pacer = Pacer::start(PacerOpts::new(
            &format!("by{}", node + 1),
            vec![c.addr(node)],
            Duration::from_millis(10),
        ));
        assert!(pacer.wait_acked(20, WAIT), "bystander not acknowledged");

        let mut garbage = Conn::connect(&c.addr(node)).unwrap();
        garbage.send_raw(b"this is not json\n").unwrap();
        let e = garbage.recv(WAIT).unwrap().expect("an ERROR line");
        assert_eq!(e["code"], "bad_request", "{e}");
        assert_eq!(garbage.recv(WAIT), Ok(None), "garbage: connection closed");

        let mut big = Conn::connect(&c.addr(node)).unwrap();
        let line = vec![b'a'; 10 << 20];
        // The node may close before reading it all: a write error is fine.
        let _ = big.send_raw(&line);
        let e = big
            .recv(WAIT)
            .unwrap()
            .expect("an ERROR line before the close");
        assert_eq!(e["code"], "too_large", "{e}");
        assert_eq!(big.recv(WAIT), Ok(None), "10 MiB line: connection closed");

        let mut binary = Conn::connect(&c.addr(node)).unwrap();
        binary.send_raw(&[0xff, 0x00, 0xfe, b'{', b'\n']).unwrap();
        let e = binary.recv(WAIT).unwrap().expect("an ERROR line");
        assert_eq!(e["code"], "bad_request", "{e}");

        let n = pacer.acked();
        assert!(pacer.wait_acked(n + 20, WAIT), "bystander stalled");
        let r = pacer.finish(WAIT);
        assert!(
            r.unacked().is_empty() && r.errors.is_empty() && r.reconnects == 0,
            "bystander on node {}: {}\n{}",
            node + 1,
            r.summary(),
            c.logs()
        );
        logs::wait_converged(&c, &[0, 1, 2], &r.acked_seqs(), WAIT);
    }
}
