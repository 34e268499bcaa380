//! The seed's four demo scenarios on three real `chorus node` processes
//! (ephemeral ports, temporary log dirs, heartbeat 100 ms / leader timeout
//! 1000 ms, SIGKILL through the test's own Child handles):
//! (a) normal operation, (b) leader kill and rejoin as a follower,
//! (c) node 1 stopped and restarted, (d) concurrent clients on every node.
//! Each ends with every node's `chorus log inspect` identical and holding
//! every acknowledged msg_id, at its acknowledged seq_no, exactly once.
//! Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Conn, Pacer, PacerOpts, PacerReport};
use cluster::{Cluster, Timing};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LEADER_WAIT: Duration = Duration::from_secs(20);
const ACK_WAIT: Duration = Duration::from_secs(10);
const CONVERGE_WAIT: Duration = Duration::from_secs(20);
const DRAIN: Duration = Duration::from_secs(15);
const TICK: Duration = Duration::from_millis(10);

/// A 3-node cluster led by node 3 (Bully: the highest id).
fn cluster_led_by_3() -> Cluster {
    let c = Cluster::start_with(3, Timing::FAST);
    let leader = c.wait_for_leader(LEADER_WAIT);
    assert_eq!(leader + 1, 3, "Bully: node 3 leads\n{}", c.logs());
    c
}

/// Every message acknowledged, without errors.
fn assert_all_acked(who: &str, r: &PacerReport, c: &Cluster) {
    assert!(
        r.unacked().is_empty() && r.errors.is_empty(),
        "{who}: {}\n{}",
        r.summary(),
        c.logs()
    );
}

#[test]
fn a_normal_operation_every_log_has_one_order() {
    let c = cluster_led_by_3();
    // A subscriber on every node sees every message, in the log's order.
    let mut subs: Vec<Conn> = (0..3)
        .map(|i| {
            let mut s = Conn::connect(&c.addr(i)).unwrap();
            s.send(&serde_json::json!({"type":"SUBSCRIBE","from_seq":1}))
                .unwrap();
            s
        })
        .collect();
    let mut clients: Vec<Conn> = (0..3).map(|i| Conn::connect(&c.addr(i)).unwrap()).collect();
    let mut acked = BTreeMap::new();
    for round in 0..10 {
        for (i, client) in clients.iter_mut().enumerate() {
            let id = format!("n{}-{round}", i + 1);
            let seq =
                client.chat_acked(&id, &format!("hello {round} via node {}", i + 1), ACK_WAIT);
            acked.insert(id, seq);
        }
    }
    let log = logs::wait_converged(&c, &[0, 1, 2], &acked, CONVERGE_WAIT);
    assert_eq!(
        log.len(),
        30,
        "only what was sent: {:?}",
        logs::seq_ids(&log)
    );
    for (i, s) in subs.iter_mut().enumerate() {
        let pushed: Vec<serde_json::Value> =
            (0..30).map(|_| s.recv_type("SEQ_CHAT", ACK_WAIT)).collect();
        let pushed_ids: Vec<(u64, String)> = logs::seq_ids(&pushed);
        assert_eq!(
            pushed_ids,
            logs::seq_ids(&log),
            "node {}'s subscriber saw another order",
            i + 1
        );
    }
}

#[test]
fn b_leader_killed_node_2_leads_node_3_rejoins_as_follower() {
    let mut c = cluster_led_by_3();
    let mut opts = PacerOpts::new("b", vec![c.addr(0), c.addr(1)], TICK);
    opts.retry_after = Duration::from_secs(5);
    let pacer = Pacer::start(opts);
    assert!(pacer.wait_acked(50, ACK_WAIT), "no acks before the kill");

    c.kill(2);
    let acked_at_kill = pacer.acked();
    let leader = c.wait_for_leader(LEADER_WAIT);
    assert_eq!(
        leader + 1,
        2,
        "node 2 leads after node 3 died\n{}",
        c.logs()
    );
    assert!(
        pacer.wait_acked(acked_at_kill + 100, ACK_WAIT),
        "messages did not continue after the failover ({} acked at the kill, {} now)\n{}",
        acked_at_kill,
        pacer.acked(),
        c.logs()
    );

    // Every message acknowledged so far is in both survivors' logs, in one order.
    logs::wait_consistent(&c, &[0, 1], &pacer.acked_seqs(), CONVERGE_WAIT);

    c.start_node(2);
    // It joins the live leader (stickiness), it does not take over.
    c.wait_status(2, LEADER_WAIT, "a follower of node 2", |s| {
        s.role == "follower" && s.leader == Some(2)
    });
    let now = pacer.acked();
    assert!(pacer.wait_acked(now + 50, ACK_WAIT), "messages stopped");
    let report = pacer.finish(DRAIN);
    assert_all_acked("client on node 1", &report, &c);
    assert!(report.sent.len() > 150, "{}", report.summary());

    // Node 3 caught up: its log equals the others'.
    logs::wait_converged(&c, &[0, 1, 2], &report.acked_seqs(), CONVERGE_WAIT);
    for i in 0..3 {
        let st = c.status(i).expect("STATUS");
        assert_eq!(
            st.leader,
            Some(2),
            "node {} after the catch-up: {st:?}",
            i + 1
        );
    }
    let st = c.status(2).unwrap();
    assert_eq!(st.role, "follower", "node 3 stays a follower: {st:?}");
}

#[test]
fn c_node_1_stopped_and_restarted_catches_up() {
    let mut c = cluster_led_by_3();
    // One client through node 1 (it fails over to node 2 with the same
    // msg_ids), one through node 2, one through node 3.
    let pacers: Vec<Pacer> = [(0, 1), (1, 2), (2, 1)]
        .iter()
        .map(|&(first, then)| {
            let opts = PacerOpts::new(
                &format!("c{}", first + 1),
                vec![c.addr(first), c.addr(then)],
                TICK,
            );
            Pacer::start(opts)
        })
        .collect();
    for p in &pacers {
        assert!(p.wait_acked(20, ACK_WAIT), "no acks before the kill");
    }
    let before = logs::inspect(&c.log_dir(0), false).unwrap();
    c.kill(0);
    let t = Instant::now();
    // Messages are committed while node 1 is down.
    let target = pacers[1].acked() + 100;
    assert!(
        pacers[1].wait_acked(target, ACK_WAIT),
        "no progress without node 1\n{}",
        c.logs()
    );
    let down_for = t.elapsed();
    c.start_node(0);
    let target = pacers[0].acked() + 30;
    assert!(
        pacers[0].wait_acked(target, ACK_WAIT),
        "no progress after the restart"
    );
    let reports: Vec<PacerReport> = pacers.into_iter().map(|p| p.finish(DRAIN)).collect();
    let mut acked = BTreeMap::new();
    for r in &reports {
        assert_all_acked("client", r, &c);
        acked.extend(r.acked_seqs());
    }
    assert!(
        reports[0].reconnects >= 1,
        "the client on node 1 failed over: {}",
        reports[0].summary()
    );
    let log = logs::wait_converged(&c, &[0, 1, 2], &acked, CONVERGE_WAIT);
    assert!(
        log.starts_with(&before),
        "node 1's log before the kill is a prefix of the final log: {}",
        logs::first_difference(&before, &log)
    );
    eprintln!(
        "node 1 was down for {down_for:?}; final log {} entries",
        log.len()
    );
    let st = c.status(0).expect("STATUS of node 1");
    assert_eq!(
        (st.role.as_str(), st.leader),
        ("follower", Some(3)),
        "{st:?}"
    );
}

#[test]
fn d_concurrent_clients_on_every_node_one_order() {
    let c = cluster_led_by_3();
    let pacers: Vec<Pacer> = (0..3)
        .map(|i| {
            let mut opts = PacerOpts::new(
                &format!("d{}", i + 1),
                vec![c.addr(i)],
                Duration::from_millis(3),
            );
            opts.max = Some(150);
            Pacer::start(opts)
        })
        .collect();
    for p in &pacers {
        assert!(p.wait_sent(150, ACK_WAIT), "a client could not send");
    }
    let reports: Vec<PacerReport> = pacers.into_iter().map(|p| p.finish(DRAIN)).collect();
    let mut acked = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.sent.len(), 150, "node {}: {}", i + 1, r.summary());
        assert_all_acked("client", r, &c);
        acked.extend(r.acked_seqs());
    }
    let log = logs::wait_converged(&c, &[0, 1, 2], &acked, CONVERGE_WAIT);
    assert_eq!(log.len(), 450, "exactly the messages sent");
    // Not vacuous: the three clients' messages interleave in the one order.
    let tags: Vec<&str> = log
        .iter()
        .map(|e| e["msg_id"].as_str().unwrap().split('-').next().unwrap())
        .collect();
    let switches = tags.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        switches >= 10,
        "clients barely overlapped ({switches} switches)"
    );
}
