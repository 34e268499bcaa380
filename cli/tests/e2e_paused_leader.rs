//! A leader that is frozen, not dead (SIGSTOP: a long GC-like pause or a
//! host that stops answering without closing its sockets), while clients
//! chat through node 1 and through the frozen leader itself. Node 2 must
//! take over after the leader timeout; when node 3 resumes (SIGCONT) with
//! its old term and the chats that queued up in its sockets, it must not
//! commit anything in its stale term: it follows node 2, its queued chats
//! are sequenced by node 2, and every log ends identical with every
//! acknowledged message once. Heartbeat 100 ms / leader timeout 1000 ms;
//! every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Pacer, PacerOpts, PacerReport};
use chorus_core::Record;
use cluster::{Cluster, Timing};
use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn frozen_leader_resumes_as_a_follower_and_commits_nothing_stale() {
    let c = Cluster::start_with(3, Timing::FAST);
    assert_eq!(
        c.wait_for_leader(LEADER_WAIT),
        2,
        "node 3 leads\n{}",
        c.logs()
    );
    let old_term = c.status(2).unwrap().term;
    let tick = Duration::from_millis(10);
    let via_1 = Pacer::start(PacerOpts::new("p1", vec![c.addr(0)], tick));
    let via_3 = Pacer::start(PacerOpts::new("p3", vec![c.addr(2), c.addr(0)], tick));
    assert!(via_1.wait_acked(30, WAIT) && via_3.wait_acked(30, WAIT));

    c.pause(2);
    c.wait_status(0, LEADER_WAIT, "a follower of node 2", |s| {
        s.leader == Some(2) && s.term > old_term
    });
    let n = via_1.acked();
    assert!(
        via_1.wait_acked(n + 50, WAIT),
        "no progress while node 3 is frozen\n{}",
        c.logs()
    );
    // Chats pile up in the frozen node's sockets meanwhile.
    thread::sleep(Duration::from_millis(500));
    c.resume(2);

    c.wait_status(2, LEADER_WAIT, "a follower of node 2", |s| {
        s.role == "follower" && s.leader == Some(2)
    });
    let n = via_3.acked();
    assert!(
        via_3.wait_acked(n + 50, WAIT),
        "node 3's client stalled after the resume\n{}",
        c.logs()
    );
    let reports: Vec<PacerReport> = [via_1, via_3].map(|p| p.finish(WAIT)).into();
    let mut acked = BTreeMap::new();
    for r in &reports {
        assert!(
            r.unacked().is_empty() && r.errors.is_empty(),
            "{}\n{}",
            r.summary(),
            c.logs()
        );
        acked.extend(r.acked_seqs());
    }
    let log = logs::wait_converged(&c, &[0, 1, 2], &acked, WAIT);
    assert_eq!(log.len(), acked.len(), "only acknowledged messages");
    // What node 3 wrote in its stale term after the resume and had to undo.
    let records = logs::raw_records(&c.log_dir(2));
    let truncations = records
        .iter()
        .filter(|r| matches!(r, Record::Truncate { .. }))
        .count();
    let kept: BTreeSet<(u64, String)> = logs::seq_ids(&log).into_iter().collect();
    let undone = records
        .iter()
        .filter_map(|r| match r {
            Record::Entry(e) => e.chat().map(|ch| (e.seq_no.0, ch.msg_id.clone())),
            _ => None,
        })
        .filter(|k| !kept.contains(k))
        .count();
    eprintln!(
        "paused leader: {} entries; node 3 wrote {truncations} truncation(s) and {undone} \
         chat entr(y/ies) that are not in the final log; via node 1: {}; via node 3: {}",
        log.len(),
        reports[0].summary(),
        reports[1].summary()
    );
    for i in 0..3 {
        let st = c.status(i).unwrap();
        assert_eq!(st.leader, Some(2), "node {}: {st:?}", i + 1);
    }
}
