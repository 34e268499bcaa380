//! `chorus bench --rolling`: a rolling restart under an open-loop load
//! (default 1000 msgs/s). After `--settle-seconds`, each node in turn gets
//! SIGTERM, is started again at once on its data directory, and must catch up
//! (its commit point reaches the leader's) before `--settle-seconds` more
//! load and the next node. Reports per step: which node, whether it led,
//! SIGTERM → exit, restart → caught up, and the unavailability (the longest
//! gap between consecutive acknowledgements during the step); then checks
//! that every acknowledged message is in every node's log exactly once at its
//! acknowledged seq.

use super::cluster::Cluster;
use super::failover::check_logs;
use super::load;
use super::phase::{self, Phase};
use super::proto::{self, MsgIds};
use super::report::Report;
use super::{Args, Clock};
use anyhow::{bail, Result};
use serde_json::json;
use std::time::Duration;

/// How long a node gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// Bound on one node's catch-up after its restart.
const CATCHUP_BOUND_US: u64 = 60_000_000;

/// One restarted node.
#[derive(Debug, Default, Clone)]
struct Step {
    node: usize,
    was_leader: bool,
    term_us: u64,
    exited_us: u64,
    clean_exit: bool,
    caught_up_us: Option<u64>,
}

#[derive(Debug, Default)]
struct Roll {
    steps: Vec<Step>,
    /// Waiting after the last step's catch-up until this time.
    settle_until: u64,
    gave_up: bool,
}

pub fn run(args: &Args) -> Result<Report> {
    if args.nodes < 3 {
        bail!("--rolling needs --nodes 3 or more (a majority must stay up)");
    }
    let (mut cluster, _, _) = Cluster::start_elected(
        args.nodes,
        args.heartbeat_ms,
        args.leader_timeout_ms,
        args.keep,
        args.record,
    )?;
    let addrs = cluster.addrs();
    let rate = args.rate.unwrap_or(1000.0);
    let settle_us = (args.settle_seconds.clamp(0.2, 60.0) * 1e6) as u64;
    let budget_s = (args.nodes as f64 + 1.0) * (args.settle_seconds + 20.0);
    let total = (rate * budget_s).ceil() as u64;
    let ids = MsgIds::new_for_run();
    let spec = phase::spec(
        args,
        phase::client_addrs(args.target, &addrs)?,
        total,
        Some(rate),
    );
    let mut roll = Roll {
        settle_until: settle_us,
        ..Roll::default()
    };
    let mut hook = |c: Option<&mut Cluster>, _: &load::Live, clock: &Clock| -> Result<bool> {
        let c = c.expect("rolling runs on a started cluster");
        step(&mut roll, c, clock, settle_us)
    };
    let phase = phase::measure(args, &addrs, Some(&mut cluster), spec, &ids, &mut hook)?;
    let mut r = Report::new(
        "rolling",
        phase::header(args, Some(rate), addrs.len(), true)
            + " — rolling restart (SIGTERM, start) of every node under load",
        phase::config_json(args, Some(rate), addrs.len(), true),
    );
    let all: Vec<_> = phase.deliveries.iter().map(|(_, d)| d).collect();
    phase::describe(&mut r, &phase, &all);
    steps_report(&mut r, &roll, &phase, &cluster);
    if roll.gave_up {
        r.fail("a restarted node did not catch up within 60 s");
    }
    if roll.steps.len() < cluster.nodes.len() {
        r.fail("the load ended before every node was restarted");
    }
    let done = roll.steps.iter().all(|s| s.caught_up_us.is_some());
    check_logs(&mut r, &cluster, &phase, &ids, &addrs, done)?;
    Ok(r)
}

/// The restart state machine, called about every 10 ms during the load.
fn step(roll: &mut Roll, c: &mut Cluster, clock: &Clock, settle_us: u64) -> Result<bool> {
    let now = clock.now_us();
    let n = c.nodes.len();
    if let Some(s) = roll.steps.last_mut() {
        if s.caught_up_us.is_none() {
            if caught_up(c, s.node) {
                s.caught_up_us = Some(clock.now_us());
                roll.settle_until = clock.now_us() + settle_us;
            } else if now > s.exited_us + CATCHUP_BOUND_US {
                roll.gave_up = true;
                return Ok(true);
            }
            return Ok(false);
        }
    }
    if now < roll.settle_until {
        return Ok(false);
    }
    if roll.steps.len() == n {
        return Ok(true);
    }
    let i = roll.steps.len();
    let was_leader = proto::status(c.nodes[i].addr, Duration::from_millis(300))
        .is_ok_and(|st| st.role == "leader");
    let term_us = clock.now_us();
    let clean_exit = c.terminate(i, TERM_GRACE)?;
    let exited_us = clock.now_us();
    c.restart(i)?;
    roll.steps.push(Step {
        node: i,
        was_leader,
        term_us,
        exited_us,
        clean_exit,
        caught_up_us: None,
    });
    Ok(false)
}

/// Node `i` answers, is not a candidate, and has the leader's commit point.
fn caught_up(c: &Cluster, i: usize) -> bool {
    let t = Duration::from_millis(200);
    let leader = c
        .nodes
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .filter_map(|(_, n)| proto::status(n.addr, t).ok())
        .filter(|st| st.role == "leader")
        .map(|st| st.commit_seq)
        .max();
    let mine = proto::status(c.nodes[i].addr, t).ok();
    match (leader, mine) {
        (Some(l), Some(st)) => st.commit_seq >= l && st.role != "candidate",
        // The restarted node may be the leader again (Bully: highest id).
        (None, Some(st)) => st.role == "leader",
        _ => false,
    }
}

fn steps_report(r: &mut Report, roll: &Roll, phase: &Phase, c: &Cluster) {
    let o = &phase.outcome;
    let mut acks: Vec<u64> = o
        .ack_us
        .iter()
        .filter(|&&a| a != 0)
        .map(|&a| u64::from(a) - 1)
        .collect();
    acks.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let mut rows = Vec::new();
    for s in &roll.steps {
        let end = s.caught_up_us.unwrap_or(u64::MAX);
        // The longest gap between consecutive acks that touches the step.
        let gap = acks
            .windows(2)
            .filter(|w| w[1] >= s.term_us && w[0] <= end)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0);
        let id = c.nodes[s.node].id;
        let catch = s.caught_up_us.map(|t| ms(t - s.exited_us));
        r.line(&format!(
            "step n{id}{}: SIGTERM → exit {:.1} ms ({}), restart → caught up {}, unavailable (longest ack gap) {:.1} ms",
            if s.was_leader { " (leader)" } else { "" },
            ms(s.exited_us - s.term_us),
            if s.clean_exit { "clean" } else { "SIGKILLed after 10 s" },
            catch.map_or("never".into(), |m| format!("{m:.1} ms")),
            ms(gap),
        ));
        rows.push(json!({
            "node": id, "was_leader": s.was_leader, "term_to_exit_ms": ms(s.exited_us - s.term_us),
            "clean_exit": s.clean_exit, "restart_to_caught_up_ms": catch,
            "unavailable_ms": ms(gap),
        }));
        if !s.clean_exit {
            r.fail(&format!("n{id} did not stop on SIGTERM"));
        }
    }
    r.set("rolling", json!({ "steps": rows }));
}
