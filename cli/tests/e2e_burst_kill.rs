//! A node SIGKILLed in the middle of a burst (a client pipelining 3000 CHATs,
//! 100 every 10 ms, without waiting for acks; killed with dozens in flight)
//! is restarted with a torn write at
//! the end of its log (half a record appended, as a crash mid-write leaves
//! it), recovers (cuts the torn tail) and converges: all nodes' logs
//! identical, every acknowledged msg_id present exactly once at its seq_no.
//! Victims: the leader (its unreplicated suffix must give way to the new
//! leader's), the client's own node (the client fails over and resends with
//! the same msg_ids), the leader serving the client, and every node at once.
//! Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Pacer, PacerOpts};
use chorus_core::record::{self, Record};
use chorus_core::{Body, Chat, Entry, Seq, Term};
use cluster::{Cluster, Timing};
use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(15);
const BURST: usize = 3000;

/// Appends the first half of a valid entry record: a write cut by a crash.
fn tear_tail(c: &Cluster, i: usize) {
    let rec = Record::Entry(Entry {
        seq_no: Seq(1_000_000),
        term: Term(1),
        body: Body::Chat(Chat {
            msg_id: "torn".into(),
            room_id: "general".into(),
            sender_id: 0,
            user: None,
            payload: "x".repeat(200),
            ts_ms: 0,
            event: None,
        }),
    });
    let mut bytes = Vec::new();
    record::encode(&rec, &mut bytes);
    let path = c.log_dir(i).join("chorus.log");
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&bytes[..bytes.len() / 2]).unwrap();
}

fn burst_kill(victims: &[usize], client_addrs: Vec<usize>) {
    let mut c = Cluster::start_with(3, Timing::FAST);
    assert_eq!(
        c.wait_for_leader(LEADER_WAIT),
        2,
        "node 3 leads\n{}",
        c.logs()
    );
    let mut opts = PacerOpts::new(
        "burst",
        client_addrs.iter().map(|&i| c.addr(i)).collect(),
        Duration::from_millis(10),
    );
    opts.batch = 100;
    opts.max = Some(BURST);
    let pacer = Pacer::start(opts);
    assert!(
        pacer.wait_in_flight(500, 30, WAIT),
        "burst not acknowledged\n{}",
        c.logs()
    );
    for &v in victims {
        c.kill(v);
    }
    let (sent, acked) = (pacer.sent(), pacer.acked());
    assert!(
        sent < BURST && acked < sent,
        "the kill landed mid-burst (sent {sent}, acked {acked})"
    );
    let mut unreplicated = Vec::new();
    for &v in victims {
        let log = logs::inspect(&c.log_dir(v), true).unwrap();
        unreplicated.push(log.iter().filter(|e| e["committed"] == false).count());
        tear_tail(&c, v);
    }
    for &v in victims {
        c.start_node(v);
    }
    assert!(pacer.wait_sent(BURST, WAIT), "the client could not send");
    let report = pacer.finish(WAIT);
    assert!(
        report.unacked().is_empty() && report.errors.is_empty(),
        "{}\n{}",
        report.summary(),
        c.logs()
    );
    let log = logs::wait_converged(&c, &[0, 1, 2], &report.acked_seqs(), WAIT);
    assert_eq!(log.len(), BURST, "each message once");
    for &v in victims {
        let stderr = std::fs::read_to_string(&c.nodes[v].stderr_path).unwrap();
        assert!(
            stderr.contains("cut a torn tail"),
            "node {} did not report the torn tail:\n{}",
            v + 1,
            c.logs()
        );
    }
    eprintln!(
        "victims {:?}: killed at sent {sent} / acked {acked} ({unreplicated:?} entries \
         not known committed in their logs); {}",
        victims.iter().map(|v| v + 1).collect::<Vec<_>>(),
        report.summary()
    );
}

#[test]
fn leader_killed_mid_burst_recovers_and_converges() {
    burst_kill(&[2], vec![0, 1]);
}

#[test]
fn clients_node_killed_mid_burst_recovers_and_converges() {
    burst_kill(&[0], vec![0, 1]);
}

/// The client talks to the leader itself: what the leader appended but
/// never replicated is resent (same msg_ids) to node 1 and sequenced once.
#[test]
fn leader_serving_the_client_killed_mid_burst_recovers_and_converges() {
    burst_kill(&[2], vec![2, 0]);
}

/// Every node at once: an acknowledged message was fsynced by a majority,
/// so it survives; the client resends the rest when the cluster is back.
#[test]
fn whole_cluster_killed_mid_burst_keeps_every_acknowledged_message() {
    burst_kill(&[0, 1, 2], vec![0, 1, 2]);
}
