//! Catch-up over many bounded batches: node 1 is SIGKILLed, 6000 messages of
//! 1 KiB (6 MiB, several catch-up batches by count and by bytes) are
//! committed by nodes 2 and 3, node 1 restarts and must end with the same
//! log; a client on node 1 meanwhile keeps chatting (it fails over to node 2
//! while node 1 is down). Reports the catch-up time with `--nocapture`.
//! Heartbeat 100 ms / leader timeout 1000 ms; every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::{Pacer, PacerOpts};
use cluster::{Cluster, Timing};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LEADER_WAIT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(30);
const BACKLOG: usize = 6000;

#[test]
fn restarted_node_catches_up_a_6_mib_backlog() {
    let mut c = Cluster::start_with(3, Timing::FAST);
    c.wait_for_leader(LEADER_WAIT);
    let mut steady = PacerOpts::new(
        "steady",
        vec![c.addr(0), c.addr(1)],
        Duration::from_millis(20),
    );
    steady.retry_after = Duration::from_secs(2);
    let steady = Pacer::start(steady);
    assert!(steady.wait_acked(10, WAIT), "no acks\n{}", c.logs());
    c.kill(0);

    let mut bulk = PacerOpts::new("bulk", vec![c.addr(1)], Duration::from_millis(10));
    bulk.batch = 200;
    bulk.max = Some(BACKLOG);
    bulk.payload_bytes = 1024;
    let bulk = Pacer::start(bulk);
    assert!(
        bulk.wait_acked(BACKLOG, WAIT),
        "backlog not committed by nodes 2 and 3: {} acked\n{}",
        bulk.acked(),
        c.logs()
    );
    let restarted = Instant::now();
    c.start_node(0);
    let bulk = bulk.finish(WAIT);
    let n = steady.acked();
    assert!(steady.wait_acked(n + 20, WAIT), "steady client stalled");
    let steady = steady.finish(WAIT);
    let mut acked = BTreeMap::new();
    for r in [&bulk, &steady] {
        assert!(
            r.unacked().is_empty() && r.errors.is_empty(),
            "{}\n{}",
            r.summary(),
            c.logs()
        );
        acked.extend(r.acked_seqs());
    }
    let log = logs::wait_converged(&c, &[0, 1, 2], &acked, WAIT);
    assert_eq!(log.len(), acked.len(), "each message once");
    eprintln!(
        "catch-up: node 1 restarted with {} entries to fetch; logs identical ({} entries) \
         {:.1} s after the restart",
        BACKLOG,
        log.len(),
        restarted.elapsed().as_secs_f64()
    );
}
