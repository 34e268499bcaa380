//! `chorus client` against real `chorus node` processes: the plain mode pipes
//! lines through a 3-node cluster and sees them delivered with seq_no; the
//! client survives a SIGKILL of its node (the leader) and every message is
//! acknowledged and delivered exactly once; the full-screen client works in a
//! real terminal (tmux). Each test is bounded in time.

#[path = "common/client_proc.rs"]
mod client_proc;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/tmux.rs"]
mod tmux;

use client_proc::{parse_ack, parse_delivered, parse_sent, PlainClient};
use cluster::Cluster;
use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(30);
const EXIT_WAIT: Duration = Duration::from_secs(40);

#[test]
fn plain_client_through_a_real_cluster() {
    let c = Cluster::start(3);
    c.wait_for_leader(LEADER_WAIT);
    let port = c.nodes[0].port.to_string();
    let peers = c.peers_except(0);
    let mut client = PlainClient::start(&["--port", &port, "--peers", &peers, "--name", "alice"]);
    for i in 1..=5 {
        client.send(&format!("hello {i}"));
    }
    client.close_stdin();
    let st = client.wait(EXIT_WAIT);
    assert_eq!(
        st.map(|s| s.code()),
        Some(Some(0)),
        "{}\n{}",
        client.dump(),
        c.logs()
    );
    let shown: Vec<_> = client
        .stdout_lines()
        .iter()
        .filter_map(|l| parse_delivered(l))
        .collect();
    let texts: Vec<&str> = shown.iter().map(|d| d.2.as_str()).collect();
    assert_eq!(
        texts,
        ["hello 1", "hello 2", "hello 3", "hello 4", "hello 5"],
        "{}",
        client.dump()
    );
    assert!(shown.windows(2).all(|w| w[0].0 < w[1].0), "seq increases");
    assert!(shown.iter().all(|d| d.1 == "alice"));
    // Acks name the same seq_no as the delivery.
    let sent: BTreeMap<String, String> = client
        .stderr_lines()
        .iter()
        .filter_map(|l| parse_sent(l))
        .collect();
    for (id, seq) in client.stderr_lines().iter().filter_map(|l| parse_ack(l)) {
        let text = &sent[&id];
        assert!(shown.iter().any(|d| d.0 == seq && &d.2 == text), "{id}");
    }

    // A second client on another node sees the same history.
    let port2 = c.nodes[2].port.to_string();
    let reader = read_history(&port2, 5);
    assert_eq!(
        reader.stdout_lines(),
        client.stdout_lines(),
        "{}",
        reader.dump()
    );
}

#[test]
fn client_fails_over_when_its_node_is_killed() {
    let mut c = Cluster::start(3);
    let leader = c.wait_for_leader(LEADER_WAIT);
    // Connect to the leader: killing it tests client failover and leader
    // failover at once.
    let port = c.nodes[leader].port.to_string();
    let peers = c.peers_except(leader);
    let mut client = PlainClient::start(&[
        "--port",
        &port,
        "--peers",
        &peers,
        "--name",
        "alice",
        "--retry-ms",
        "1000",
        "--drain-secs",
        "30",
    ]);
    let total = 60;
    for i in 0..total {
        client.send(&format!("m{i:03}"));
        thread::sleep(Duration::from_millis(20));
        if i == 20 {
            c.kill(leader);
        }
    }
    client.close_stdin();
    let st = client.wait(Duration::from_secs(60));
    assert_eq!(
        st.map(|s| s.code()),
        Some(Some(0)),
        "{}\n{}",
        client.dump(),
        c.logs()
    );
    assert!(
        client
            .stderr_lines()
            .iter()
            .any(|l| l.contains("trying another node")),
        "{}",
        client.dump()
    );
    let acks: Vec<(String, u64)> = client
        .stderr_lines()
        .iter()
        .filter_map(|l| parse_ack(l))
        .collect();
    let ack_ids: BTreeSet<&String> = acks.iter().map(|a| &a.0).collect();
    assert_eq!(acks.len(), total, "one ack per message\n{}", client.dump());
    assert_eq!(ack_ids.len(), total, "no msg_id acknowledged twice");
    let shown: Vec<_> = client
        .stdout_lines()
        .iter()
        .filter_map(|l| parse_delivered(l))
        .collect();
    let texts: BTreeSet<&str> = shown.iter().map(|d| d.2.as_str()).collect();
    assert_eq!(shown.len(), total, "each delivered once\n{}", client.dump());
    assert_eq!(texts.len(), total);
    assert!(
        shown.windows(2).all(|w| w[0].0 < w[1].0),
        "no duplicates, in order"
    );

    // The survivors' history holds every message exactly once.
    let other = (0..3).find(|&i| i != leader).unwrap();
    let port2 = c.nodes[other].port.to_string();
    let reader = read_history(&port2, total);
    let history: Vec<_> = reader
        .stdout_lines()
        .iter()
        .filter_map(|l| parse_delivered(l))
        .map(|d| d.2)
        .collect();
    assert_eq!(history.len(), total, "{}", reader.dump());
    let unique: BTreeSet<_> = history.iter().collect();
    assert_eq!(unique.len(), total);
}

#[test]
fn tui_in_a_real_terminal_against_real_nodes() {
    if !tmux::available() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let c = Cluster::start(3);
    c.wait_for_leader(LEADER_WAIT);
    let argv = [
        env!("CARGO_BIN_EXE_chorus").to_string(),
        "client".into(),
        "--port".into(),
        c.nodes[1].port.to_string(),
        "--peers".into(),
        c.peers_except(1),
        "--name".into(),
        "alice".into(),
    ];
    let t = tmux::Tmux::start(&argv, 110, 24);
    t.wait_screen(Duration::from_secs(15), |s| {
        s.contains("● node") && s.contains("leader n")
    })
    .unwrap_or_else(|s| panic!("not connected:\n{s}\n{}", c.logs()));
    t.type_text("hi from a real terminal");
    t.press("Enter");
    let screen = t
        .wait_screen(Duration::from_secs(15), |s| {
            s.lines()
                .any(|l| seq_of(l).is_some() && l.contains("alice: hi from a real terminal ✓"))
        })
        .unwrap_or_else(|s| panic!("not delivered with its seq_no:\n{s}\n{}", c.logs()));
    assert!(screen.contains("unacked 0"), "{screen}");
    t.press("Escape");
    assert_eq!(
        t.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}\n{}",
        t.screen(),
        t.diagnose()
    );
}

/// A plain client on `port` that sends nothing and exits once it printed
/// `n` messages (bounded wait).
fn read_history(port: &str, n: usize) -> PlainClient {
    let mut reader = PlainClient::start(&["--port", port]);
    reader.wait_stdout(EXIT_WAIT, |l| l.len() >= n);
    reader.close_stdin();
    assert_eq!(
        reader.wait(EXIT_WAIT).map(|s| s.code()),
        Some(Some(0)),
        "{}",
        reader.dump()
    );
    reader
}

/// The seq_no at the start of a TUI message line (`│#12    10:00:00 …`).
fn seq_of(line: &str) -> Option<u64> {
    let rest = line.trim_start_matches('│').strip_prefix('#')?;
    rest.split_whitespace().next()?.parse().ok()
}
