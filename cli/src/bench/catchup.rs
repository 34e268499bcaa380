//! `chorus bench --catchup`: SIGKILL a follower, commit `--messages` on the
//! remaining majority (a normal closed-loop phase, reported as usual), restart
//! the follower and time how long it takes to hold everything the leader had
//! committed: catch-up messages per second = missed / (restart → caught up).
//! Finally the restarted node's HISTORY must hold every acknowledged message.

use super::cluster::Cluster;
use super::phase;
use super::proto::{self, MsgIds};
use super::report::Report;
use super::Args;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::{Duration, Instant};

pub fn run(args: &Args) -> Result<Report> {
    if args.nodes < 3 {
        bail!("--catchup needs --nodes 3 or more (a majority must stay up)");
    }
    let (mut cluster, leader, _) = Cluster::start_elected(
        args.nodes,
        args.heartbeat_ms,
        args.leader_timeout_ms,
        args.keep,
        args.record,
    )?;
    // The lowest-id follower: Bully keeps the current (higher) leader.
    let lag = (0..cluster.nodes.len())
        .find(|&i| i != leader)
        .expect("3+ nodes have a follower");
    let before = proto::status(cluster.nodes[lag].addr, Duration::from_secs(2))?.commit_seq;
    cluster.kill(lag)?;
    let up: Vec<_> = cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != lag)
        .map(|(_, n)| n.addr)
        .collect();
    let ids = MsgIds::new_for_run();
    let spec = phase::spec(
        args,
        phase::client_addrs(args.target, &up)?,
        args.messages,
        args.rate,
    );
    let mut never = |_: Option<&mut Cluster>, _: &super::load::Live, _: &super::Clock| Ok(false);
    let phase = phase::measure(args, &up, Some(&mut cluster), spec, &ids, &mut never)?;
    let lag_id = cluster.nodes[lag].id;
    let mut r = Report::new(
        "catchup",
        phase::header(args, args.rate, cluster.nodes.len(), true)
            + &format!(" — n{lag_id} down while they are committed, then restarted"),
        phase::config_json(args, args.rate, cluster.nodes.len(), true),
    );
    let nodes: Vec<_> = phase.deliveries.iter().map(|(_, d)| d).collect();
    phase::describe(&mut r, &phase, &nodes);

    let target = proto::status(cluster.nodes[leader].addr, Duration::from_secs(2))
        .context("leader STATUS after the load")?
        .commit_seq;
    let missed = target.saturating_sub(before);
    let bound = Duration::from_secs_f64((60.0 + missed as f64 / 20_000.0).min(1800.0));
    let t0 = Instant::now();
    cluster.restart(lag)?;
    let (mut answered, mut done) = (None, None);
    while t0.elapsed() < bound {
        if let Ok(st) = proto::status(cluster.nodes[lag].addr, Duration::from_millis(200)) {
            answered.get_or_insert(t0.elapsed());
            if st.commit_seq >= target {
                done = Some(t0.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = cluster.nodes[lag].stats();
    let secs = done.map(|d| d.as_secs_f64());
    let rate = secs.map(|s| missed as f64 / s.max(1e-6));
    r.line(&format!(
        "catch-up: n{lag_id} missed {missed} entries; restart → STATUS answered {}, → caught up {} = {} msgs/s; peak RSS after {:.1} MiB",
        answered.map_or("never".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3)),
        secs.map_or("never".into(), |s| format!("{:.0} ms", s * 1e3)),
        rate.map_or("-".into(), |x| format!("{x:.0}")),
        stats.map_or(0.0, |s| s.peak_rss_kib as f64 / 1024.0),
    ));
    r.set(
        "catchup",
        json!({
            "node": lag_id, "missed": missed,
            "restart_to_status_ms": answered.map(|d| d.as_secs_f64() * 1e3),
            "restart_to_caught_up_ms": secs.map(|s| s * 1e3),
            "msgs_per_s": rate.map(f64::round),
            "peak_rss_mib": stats.map(|s| s.peak_rss_kib as f64 / 1024.0),
        }),
    );
    if done.is_none() {
        r.fail(&format!("n{lag_id} did not catch up within {bound:?}"));
        return Ok(r);
    }
    let o = &phase.outcome;
    let pages = (o.sent_us.len() / 1000 + 1000).min(1_000_000);
    let log = proto::history(cluster.nodes[lag].addr, &ids, pages)?;
    let mut seen = vec![false; o.sent_us.len()];
    for e in &log {
        if let Some(s) = seen.get_mut(e.g as usize) {
            *s = true;
        }
    }
    let lost = (0..seen.len())
        .filter(|&g| o.ack_us[g] != 0 && !seen[g])
        .count();
    r.line(&format!(
        "restarted node's log: acknowledged messages missing {lost}"
    ));
    if lost > 0 {
        r.fail("the restarted node's log misses acknowledged messages");
    }
    Ok(r)
}
