//! `chorus client --plain` against fake nodes (tests/common/fake_node.rs):
//! history on connect, delivery in order with seq_no, acknowledgements, and
//! failover (resend with the same msg_id, resume without gaps or duplicates).
//! Deterministic and fast; the same behaviours against real nodes are in
//! `client_cluster.rs`.

#[path = "common/client_proc.rs"]
mod client_proc;
#[path = "common/fake_node.rs"]
mod fake_node;

use client_proc::{parse_ack, parse_delivered, parse_sent, PlainClient};
use fake_node::FakeCluster;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const EXIT_WAIT: Duration = Duration::from_secs(30);

fn delivered(c: &PlainClient) -> Vec<(u64, String, String)> {
    c.stdout_lines()
        .iter()
        .filter_map(|l| parse_delivered(l))
        .collect()
}

#[test]
fn plain_client_shows_history_sends_and_prints_acks() {
    let cluster = FakeCluster::new();
    let node = cluster.node(false);
    cluster.commit_other("general", "before");
    cluster.commit_other("random", "elsewhere");
    let port = node.port().to_string();
    let mut c = PlainClient::start(&["--port", &port, "--name", "alice"]);
    for m in ["one", "two", "three"] {
        c.send(m);
    }
    c.close_stdin();
    let status = c.wait(EXIT_WAIT);
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{}", c.dump());
    assert_eq!(
        c.stdout_lines(),
        [
            "[#general 1] bob: before",
            "[#general 2] alice: one",
            "[#general 3] alice: two",
            "[#general 4] alice: three"
        ],
        "{}",
        c.dump()
    );
    let sent: Vec<_> = c
        .stderr_lines()
        .iter()
        .filter_map(|l| parse_sent(l))
        .collect();
    let acks: BTreeMap<_, _> = c
        .stderr_lines()
        .iter()
        .filter_map(|l| parse_ack(l))
        .collect();
    assert_eq!(sent.len(), 3, "{}", c.dump());
    for (i, (id, _)) in sent.iter().enumerate() {
        assert_eq!(acks.get(id), Some(&(i as u64 + 3)), "{}", c.dump());
    }
}

#[test]
fn failover_resends_unacked_with_same_msg_id_exactly_once() {
    let cluster = FakeCluster::new();
    // Node A commits what it gets but tells the client nothing, then dies:
    // the client must resend on B with the same ids, and B deduplicates.
    let a = cluster.node(true);
    let b = cluster.node(false);
    let port = a.port().to_string();
    let mut c = PlainClient::start(&["--port", &port, "--peers", &b.addr, "--name", "alice"]);
    for m in ["m1", "m2", "m3"] {
        c.send(m);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.chats_received(a.index) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(cluster.chats_received(a.index), 3, "{}", c.dump());
    a.kill();
    c.close_stdin();
    let status = c.wait(EXIT_WAIT);
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{}", c.dump());
    assert_eq!(
        cluster.payloads(),
        ["m1", "m2", "m3"],
        "committed once each"
    );
    let shown: Vec<_> = delivered(&c).into_iter().map(|(n, _, t)| (n, t)).collect();
    assert_eq!(
        shown,
        [(1, "m1".to_string()), (2, "m2".into()), (3, "m3".into())],
        "{}",
        c.dump()
    );
    let acks: Vec<_> = c
        .stderr_lines()
        .iter()
        .filter_map(|l| parse_ack(l))
        .collect();
    assert_eq!(
        acks.len(),
        3,
        "each acknowledged exactly once\n{}",
        c.dump()
    );
    assert!(cluster.chats_received(b.index) >= 3, "resent on B");
    // The JOIN went to A unanswered and again to B with the same msg_id:
    // applied once.
    let joins: Vec<_> = cluster
        .commands()
        .into_iter()
        .filter(|(kind, _)| kind == "JOIN")
        .collect();
    assert!(joins.len() >= 2, "{joins:?}");
    assert!(joins.iter().all(|j| j.1 == joins[0].1), "{joins:?}");
    assert_eq!(cluster.members("general"), ["alice"]);
}

#[test]
fn plain_client_reads_and_writes_its_room_only() {
    let cluster = FakeCluster::new();
    let node = cluster.node(false);
    cluster.commit_other("general", "not here");
    cluster.commit_other("random", "elsewhere");
    let port = node.port().to_string();
    let mut c = PlainClient::start(&["--port", &port, "--name", "al", "--room", "#random"]);
    c.send("into random");
    c.close_stdin();
    let status = c.wait(EXIT_WAIT);
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{}", c.dump());
    assert_eq!(
        c.stdout_lines(),
        ["[#random 1] bob: elsewhere", "[#random 2] al: into random"],
        "{}",
        c.dump()
    );
    assert_eq!(cluster.members("random"), ["al"]);
    assert!(cluster.members("general").is_empty());
}

#[test]
fn bad_names_and_rooms_are_refused_with_a_reason() {
    let mut c = PlainClient::start(&["--port", "1", "--name", "#al"]);
    assert_eq!(
        c.wait(EXIT_WAIT).map(|s| s.code()),
        Some(Some(2)),
        "a usage error"
    );
    assert!(c.dump().contains("must not start with #"), "{}", c.dump());
    let mut c = PlainClient::start(&["--port", "1", "--room", "a b"]);
    assert_eq!(
        c.wait(EXIT_WAIT).map(|s| s.code()),
        Some(Some(2)),
        "a usage error"
    );
    assert!(c.dump().contains("--room"), "{}", c.dump());
}

#[test]
fn failover_resumes_the_room_without_gaps_or_duplicates() {
    let cluster = FakeCluster::new();
    let a = cluster.node(false);
    let b = cluster.node(false);
    for m in ["h1", "h2", "h3"] {
        cluster.commit_other("general", m);
    }
    let port = a.port().to_string();
    let mut c = PlainClient::start(&["--port", &port, "--peers", &b.addr, "--name", "alice"]);
    assert!(
        c.wait_stdout(Duration::from_secs(10), |l| l.len() >= 3),
        "{}",
        c.dump()
    );
    a.kill();
    cluster.commit_other("general", "during");
    c.send("mine");
    c.close_stdin();
    let status = c.wait(EXIT_WAIT);
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{}", c.dump());
    let seqs: Vec<u64> = delivered(&c).iter().map(|d| d.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "{}", c.dump());
    assert!(c
        .stderr_lines()
        .iter()
        .any(|l| l.contains("trying another node")));
}

#[test]
fn refuses_over_long_lines_and_exits_nonzero() {
    let cluster = FakeCluster::new();
    let node = cluster.node(false);
    let port = node.port().to_string();
    let mut c = PlainClient::start(&["--port", &port]);
    c.send(&"x".repeat(100 * 1024));
    c.send("short");
    c.close_stdin();
    let status = c.wait(EXIT_WAIT);
    assert_eq!(status.map(|s| s.code()), Some(Some(1)), "{}", c.dump());
    assert_eq!(cluster.payloads(), ["short"]);
}
