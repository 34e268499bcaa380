//! Issue 16's real-process test: a node is down (SIGKILL) while 2,000,000
//! messages are committed and the others' retention deletes the segments it
//! would need; it restarts, installs the leader's snapshot
//! (SNAPSHOT_REQ/SNAPSHOT_CHUNK), catches up with the log after it, and then
//! serves the same LIST, WHO and recent HISTORY as the others; a HISTORY from
//! the start tells it where its history begins (HISTORY_END `first_seq`).
//! `CHORUS_INSTALL_MESSAGES` lowers the count for a quick local run. Every
//! wait is bounded; only processes started here are killed.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/retention.rs"]
mod retention;

use chat::Conn;
use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// Snapshots every 200k entries, 100k entries of history kept, 8 MiB
/// segments: retention deletes segments many times over 2M messages. The
/// exactly-once window is 100k ids, so a snapshot is a few MB.
const CONFIG: &str = "snapshot_every = 200000\nretain_entries = 100000\n\
                      log_segment_bytes = 8388608\ndedup_window_ids = 100000\n";

fn messages() -> u64 {
    std::env::var("CHORUS_INSTALL_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

/// Sends `req` and collects every line up to the first of type `last`.
fn ask(c: &mut Conn, req: Value, last: &str) -> Vec<Value> {
    c.send(&req).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left) {
            Ok(Some(v)) => {
                let done = v["type"] == last || v["type"] == "ERROR";
                out.push(v);
                if done {
                    return out;
                }
            }
            other => panic!("no {last} for {req}: {other:?} after {out:?}"),
        }
    }
}

/// A named session on node `i`.
fn session(c: &Cluster, i: usize, user: &str) -> Conn {
    let mut conn = Conn::connect_seed(&c.addr(i)).expect("connect");
    let hello = json!({"type": "HELLO", "proto": 2, "client": "chorus-tests/0", "user": user});
    ask(&mut conn, hello, "HELLO");
    conn
}

/// A message to `ops`, acknowledged.
fn say(conn: &mut Conn, msg_id: &str) {
    let req = json!({"type": "CHAT", "room_id": "ops", "msg_id": msg_id, "payload": msg_id});
    let got = ask(conn, req, "CHAT_ACK");
    assert_eq!(got.last().unwrap()["type"], "CHAT_ACK", "{got:?}");
}

fn event(conn: &mut Conn, req: Value) {
    // A room event is acknowledged like a chat, once committed.
    let got = ask(conn, req.clone(), "CHAT_ACK");
    let last = got.last().unwrap();
    assert_eq!(last["type"], "CHAT_ACK", "{req}: {got:?}");
}

/// What a reader sees on node `i`: the rooms, who is in `ops`, the newest
/// 50 messages of `ops` and the newest 200 overall (seq_no, room_seq, id).
fn view(c: &Cluster, i: usize, upto: u64) -> (Value, Value, Vec<Value>, Vec<Value>) {
    let mut conn = Conn::connect(&c.addr(i)).expect("connect");
    let mut list = ask(&mut conn, json!({"type": "LIST"}), "ROOMS")
        .pop()
        .unwrap();
    let mut who = ask(&mut conn, json!({"type": "WHO", "room_id": "ops"}), "WHO")
        .pop()
        .unwrap();
    // Presence is soft state (gossiped, it may lag); membership and topic
    // are folded from the log and must be equal.
    for (v, key) in [(&mut who, "members"), (&mut list, "rooms")] {
        for m in v[key].as_array_mut().into_iter().flatten() {
            if let Some(o) = m.as_object_mut() {
                o.remove("online");
            }
        }
    }
    let lines = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .filter(|l| l["type"] == "SEQ_CHAT")
            .map(|l| json!([l["seq_no"], l["room_seq"], l["msg_id"], l["room_id"]]))
            .collect()
    };
    let ops = lines(ask(
        &mut conn,
        json!({"type": "HISTORY", "room_id": "ops", "before": 1_000_000_000u64, "limit": 50}),
        "HISTORY_END",
    ));
    let recent = lines(ask(
        &mut conn,
        json!({"type": "HISTORY", "from_seq": upto.saturating_sub(199), "limit": 200}),
        "HISTORY_END",
    ));
    (list, who, ops, recent)
}

#[test]
fn a_node_down_through_retention_installs_the_snapshot_and_serves_the_same_rooms() {
    let _one = cluster::one_at_a_time();
    let mut c = Cluster::start_with_config(3, Timing::TEST, CONFIG);
    let leader = c.wait_for_leader(WAIT);
    let down = (leader + 1) % 3;
    let up = (leader + 2) % 3;

    // People and rooms before the outage.
    let mut alice = session(&c, leader, "alice");
    event(
        &mut alice,
        json!({"type": "JOIN", "room_id": "ops", "msg_id": "j-alice"}),
    );
    event(
        &mut alice,
        json!({"type": "TOPIC", "room_id": "ops", "topic": "deploys", "msg_id": "t-1"}),
    );
    let mut bob = session(&c, up, "bob");
    event(
        &mut bob,
        json!({"type": "JOIN", "room_id": "ops", "msg_id": "j-bob"}),
    );
    for k in 0..20 {
        say(&mut alice, &format!("ops-before-{k}"));
    }

    c.kill(down);
    // While it is down: 2M messages, and the rooms change.
    let n = messages();
    let started = Instant::now();
    let bench = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["bench", "--connect"])
        .arg(format!("{},{}", c.addr(leader), c.addr(up)))
        .args(["--clients", "32", "--window", "16", "--no-subscribe"])
        .args(["--messages", &n.to_string()])
        .output()
        .expect("chorus bench");
    let out = String::from_utf8_lossy(&bench.stdout);
    assert!(
        bench.status.success() && out.contains("checks: ok"),
        "bench failed: {out}\n{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    eprintln!("{n} messages committed in {:?}", started.elapsed());
    let mut carol = session(&c, up, "carol");
    event(
        &mut carol,
        json!({"type": "JOIN", "room_id": "ops", "msg_id": "j-carol"}),
    );
    event(
        &mut alice,
        json!({"type": "TOPIC", "room_id": "ops", "topic": "frozen", "msg_id": "t-2"}),
    );
    event(
        &mut bob,
        json!({"type": "PART", "room_id": "ops", "msg_id": "p-bob"}),
    );
    for k in 0..20 {
        say(&mut alice, &format!("ops-after-{k}"));
    }
    // The survivors compacted: the history the down node lacks is gone.
    let compacted = retention::wait_compacted(&c, leader, 64, Duration::from_secs(60));
    let lead = c.status(leader).expect("leader status");
    assert!(
        lead.log_first > 1 && lead.snapshot_seq > 0,
        "the leader did not compact: {lead:?} {compacted:?}"
    );

    c.restart(down);
    let t = Instant::now();
    let target = lead.log_commit;
    let st = c.wait_status(
        down,
        Duration::from_secs(120),
        "installed the snapshot and caught up",
        |s| s.snapshot_installs >= 1 && s.log_commit >= target,
    );
    eprintln!(
        "restarted node installed the snapshot at {} and caught up to {} in {:?}",
        st.snapshot_seq,
        st.log_commit,
        t.elapsed()
    );
    assert!(st.log_first > 1, "{st:?}");

    // Everyone settles on the same commit, then reads the same.
    let upto = c.status(leader).unwrap().commit_seq;
    for i in 0..3 {
        c.wait_status(i, WAIT, "caught up", |s| s.commit_seq >= upto);
    }
    let want = view(&c, leader, upto);
    let got = view(&c, down, upto);
    assert_eq!(got.0, want.0, "LIST differs");
    assert_eq!(got.1, want.1, "WHO ops differs");
    assert_eq!(got.2, want.2, "HISTORY of ops differs");
    assert_eq!(got.3, want.3, "recent HISTORY differs");
    assert_eq!(want.3.len(), 200, "{:?}", want.3);
    let topic = &got.1["topic"];
    assert_eq!(topic, "frozen", "{}", got.1);
    let members: Vec<&str> = got.1["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["user"].as_str())
        .collect();
    assert_eq!(members, vec!["alice", "carol"], "{}", got.1);

    // History before what the node holds: no hole, a clear start.
    let mut conn = Conn::connect(&c.addr(down)).expect("connect");
    let all = ask(
        &mut conn,
        json!({"type": "HISTORY", "from_seq": 1, "limit": 10}),
        "HISTORY_END",
    );
    let end = all.last().unwrap();
    let first = end["first_seq"].as_u64().expect("first_seq named");
    assert!(first > 20, "{end}");
    let seqs: Vec<u64> = all
        .iter()
        .filter(|l| l["type"] == "SEQ_CHAT")
        .filter_map(|l| l["seq_no"].as_u64())
        .collect();
    assert_eq!(seqs, (first..first + 10).collect::<Vec<_>>(), "{all:?}");
}
