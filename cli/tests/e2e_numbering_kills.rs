//! Numbering without holes under leader churn: with clients on every node,
//! the leader is SIGKILLed ten times (and restarted each time). Afterwards
//! every node's committed chats are numbered 1..N with no hole, each room's
//! room_seq 1..k with no hole (`logs::check_no_holes`, inside
//! `wait_converged`), and every CHAT_ACK named the seq_no its message holds.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Pacer, PacerOpts};
use cluster::{Cluster, Timing};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const LEADER_KILLS: usize = 10;

#[test]
fn ten_leader_kills_under_load_leave_no_hole_in_the_numbering() {
    let mut c = Cluster::start_with(3, Timing::FAST);
    c.wait_for_leader(WAIT);
    let mut opts = PacerOpts::new(
        "num",
        vec![c.addr(0), c.addr(1), c.addr(2)],
        Duration::from_millis(5),
    );
    opts.retry_after = Duration::from_secs(2);
    let pacer = Pacer::start(opts);
    assert!(pacer.wait_acked(30, WAIT), "no acks\n{}", c.logs());
    for round in 0..LEADER_KILLS {
        let leader = c.wait_for_leader(WAIT);
        c.kill(leader);
        let n = pacer.acked();
        assert!(
            pacer.wait_acked(n + 40, WAIT),
            "round {round}: no progress after killing leader n{}\n{}",
            leader + 1,
            c.logs()
        );
        c.start_node(leader);
        let now = c.wait_for_leader(WAIT);
        c.wait_status(leader, WAIT, "a follower", |s| {
            s.role == "follower" && s.leader == Some(now as u64 + 1)
        });
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
    assert_eq!(log.last().unwrap()["seq_no"], log.len() as u64, "1..N");
}
