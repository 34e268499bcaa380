//! Rolling crashes on three real nodes under a steady load (one CHAT every
//! 5 ms through a client that fails over between all nodes): each round
//! SIGKILLs one node — the leader, a follower, or the client's node in a
//! fixed rotation — waits until the survivors commit again, and restarts
//! it. At the end every log is identical and holds every acknowledged
//! message once at its seq_no; a restarted node never takes the lead from a
//! live leader except by Bully after that leader died. Heartbeat 100 ms /
//! leader timeout 1000 ms; every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Pacer, PacerOpts};
use cluster::{Cluster, Timing};
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(15);
const ROUNDS: usize = 6;

#[test]
fn rolling_sigkills_under_load_lose_nothing_and_converge() {
    let mut c = Cluster::start_with(3, Timing::FAST);
    c.wait_for_leader(LEADER_WAIT);
    let mut opts = PacerOpts::new(
        "roll",
        vec![c.addr(0), c.addr(1), c.addr(2)],
        Duration::from_millis(5),
    );
    opts.retry_after = Duration::from_secs(2);
    let pacer = Pacer::start(opts);
    assert!(pacer.wait_acked(50, WAIT), "no acks\n{}", c.logs());
    let mut history = Vec::new();
    for round in 0..ROUNDS {
        let leader = c.wait_for_leader(LEADER_WAIT);
        let victim = match round % 3 {
            0 => leader,
            1 => (leader + 1) % 3,
            _ => (leader + 2) % 3,
        };
        c.kill(victim);
        let n = pacer.acked();
        assert!(
            pacer.wait_acked(n + 100, WAIT),
            "round {round}: no progress after killing node {}\n{}",
            victim + 1,
            c.logs()
        );
        let now_leader = c.wait_for_leader(LEADER_WAIT);
        c.start_node(victim);
        // The restarted node follows whoever leads now.
        c.wait_status(victim, LEADER_WAIT, "a follower", |s| {
            s.role == "follower" && s.leader == Some(now_leader as u64 + 1)
        });
        let n = pacer.acked();
        assert!(
            pacer.wait_acked(n + 50, WAIT),
            "round {round}: no progress after restarting node {}\n{}",
            victim + 1,
            c.logs()
        );
        history.push(format!("n{} led, n{} killed", leader + 1, victim + 1));
    }
    let report = pacer.finish(WAIT);
    assert!(
        report.unacked().is_empty() && report.errors.is_empty(),
        "{}\n{}",
        report.summary(),
        c.logs()
    );
    let log = logs::wait_converged(&c, &[0, 1, 2], &report.acked_seqs(), WAIT);
    assert_eq!(log.len(), report.sent.len(), "each message once");
    eprintln!(
        "rolling kills: {}; {} entries; {}",
        history.join(", "),
        log.len(),
        report.summary()
    );
}
