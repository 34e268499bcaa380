//! `chorus bench --failover`: an open-loop load (default 1000 msgs/s), the
//! leader SIGKILLed after `--settle-seconds`, load kept on until the cluster
//! has acknowledged again for `--settle-seconds`. Reports:
//! - the unavailability window: the longest gap between consecutive
//!   acknowledgements that ends after the kill (last ack before → first after);
//! - kill → new leader (STATUS polled every ~10 ms on the survivors);
//! - acknowledged messages lost or duplicated, checked against the HISTORY of
//!   every node, the killed one included once it restarted and caught up.

use super::cluster::Cluster;
use super::load;
use super::phase::{self, Phase};
use super::proto::{self, Logged, MsgIds};
use super::report::Report;
use super::subscribe::Deliveries;
use super::{Args, Clock};
use anyhow::{bail, Result};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// What the kill hook observed.
#[derive(Debug, Default)]
struct Timeline {
    killed: Option<usize>,
    old_term: u64,
    kill_us: u64,
    acked_at_kill: u64,
    new_leader: Option<(u64, u64)>,
    new_leader_us: u64,
    resumed_us: Option<u64>,
    gave_up: bool,
    /// SIGSTOP rather than SIGKILL.
    paused: bool,
}

pub fn run(args: &Args) -> Result<Report> {
    if args.nodes < 3 {
        bail!("--failover needs --nodes 3 or more (a majority must survive)");
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
    // Enough messages for the whole scenario; the hook stops issuing early.
    let budget_s = 2.0 * args.settle_seconds + 60.0;
    let total = (rate * budget_s).ceil() as u64;
    let ids = MsgIds::new_for_run();
    let spec = phase::spec(
        args,
        phase::client_addrs(args.target, &addrs)?,
        total,
        Some(rate),
    );
    let mut t = Timeline::default();
    let mut hook = |c: Option<&mut Cluster>, live: &load::Live, clock: &Clock| -> Result<bool> {
        let c = c.expect("failover runs on a started cluster");
        step(&mut t, c, live, clock, settle_us, args.pause)
    };
    let phase = phase::measure(args, &addrs, Some(&mut cluster), spec, &ids, &mut hook)?;
    let mut r = Report::new(
        "failover",
        phase::header(args, Some(rate), addrs.len(), true)
            + if args.pause {
                " — SIGSTOP of the leader under load"
            } else {
                " — SIGKILL of the leader under load"
            },
        phase::config_json(args, Some(rate), addrs.len(), true),
    );
    let Some(killed) = t.killed else {
        r.fail("the leader was never killed (no leader found under load)");
        return Ok(r);
    };
    let survivors: Vec<&Deliveries> = phase
        .deliveries
        .iter()
        .filter(|(i, _)| *i != killed)
        .map(|(_, d)| d)
        .collect();
    phase::describe(&mut r, &phase, &survivors);
    window(&mut r, &t, &phase, &cluster, &survivors);
    if t.gave_up {
        r.fail("no acknowledgement after the kill within the bound");
    }
    verify_logs(&mut r, &mut cluster, killed, &phase, &ids, &addrs)?;
    Ok(r)
}

/// The kill state machine, called about every 10 ms during the load.
fn step(
    t: &mut Timeline,
    c: &mut Cluster,
    live: &load::Live,
    clock: &Clock,
    settle_us: u64,
    pause: bool,
) -> Result<bool> {
    let now = clock.now_us();
    let acked = live.acked.load(std::sync::atomic::Ordering::Relaxed);
    match t.killed {
        None if now >= settle_us => {
            let (i, st) = c.wait_for_leader(Duration::from_secs(10))?;
            t.old_term = st.term;
            t.paused = pause;
            if pause {
                c.pause(i)?;
            } else {
                c.kill(i)?;
            }
            t.kill_us = clock.now_us();
            t.acked_at_kill = acked;
            t.killed = Some(i);
        }
        None => {}
        Some(k) => {
            if t.new_leader.is_none() {
                for (i, n) in c.nodes.iter().enumerate().filter(|&(i, _)| i != k) {
                    if let Ok(st) = proto::status(n.addr, Duration::from_millis(200)) {
                        if st.role == "leader" && st.term > t.old_term {
                            t.new_leader = Some((i as u64, st.term));
                            t.new_leader_us = clock.now_us();
                        }
                    }
                }
            }
            if t.resumed_us.is_none() && acked > t.acked_at_kill + 10 && t.new_leader.is_some() {
                t.resumed_us = Some(now);
            }
            if t.resumed_us.is_some_and(|r| now >= r + settle_us) {
                return Ok(true);
            }
            if now >= t.kill_us + 60_000_000 {
                t.gave_up = true;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Unavailability, two ways:
/// - `unavailable_ms`: last acknowledgement at or before the kill → first
///   acknowledgement of an entry of a newer term (its term as delivered by a
///   survivor), i.e. until the new leader commits again. Acks that arrive
///   after the kill for entries committed before it do not end the window.
/// - `longest_ack_gap_ms`: the longest gap between consecutive
///   acknowledgements that ends after the kill (the peers' measure).
fn window(
    r: &mut Report,
    t: &Timeline,
    phase: &Phase,
    cluster: &Cluster,
    survivors: &[&Deliveries],
) {
    let o = &phase.outcome;
    let at = |g: usize| u64::from(o.ack_us[g]).saturating_sub(1);
    let acked = || (0..o.ack_us.len()).filter(|&g| o.ack_us[g] != 0);
    let last_before = acked().map(at).filter(|&a| a <= t.kill_us).max();
    let term_of = |g: usize| survivors.iter().map(|d| d.term[g]).max().unwrap_or(0);
    let first_new = acked()
        .filter(|&g| u64::from(term_of(g)) > t.old_term)
        .map(at)
        .min();
    let mut acks: Vec<u64> = acked().map(at).collect();
    acks.sort_unstable();
    let mut gap = (0u64, 0u64);
    for w in acks.windows(2) {
        if w[1] > t.kill_us && w[1] - w[0] > gap.1 - gap.0 {
            gap = (w[0], w[1]);
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let unavailable = match (last_before, first_new) {
        (Some(b), Some(f)) => Some(ms(f.saturating_sub(b))),
        _ => None,
    };
    let kill_to_ack = first_new.map(|f| ms(f.saturating_sub(t.kill_us)));
    let gap_ms = ms(gap.1 - gap.0);
    let to_leader_ms = t.new_leader.map(|_| ms(t.new_leader_us - t.kill_us));
    let killed_id = t.killed.map(|k| cluster.nodes[k].id);
    let new_id = t.new_leader.map(|(i, _)| cluster.nodes[i as usize].id);
    let show = |v: Option<f64>| v.map_or("never".to_string(), |m| format!("{m:.1} ms"));
    r.line(&format!(
        "failover: {} leader n{} (term {}); unavailable {} (last ack before → first ack of term > {}); kill → that ack {}; kill → new leader {} (n{}, term {}); longest ack gap {gap_ms:.1} ms",
        if t.paused { "stopped" } else { "killed" },
        killed_id.unwrap_or(0),
        t.old_term,
        show(unavailable),
        t.old_term,
        show(kill_to_ack),
        show(to_leader_ms),
        new_id.unwrap_or(0),
        t.new_leader.map_or(0, |(_, term)| term),
    ));
    r.set(
        "failover",
        json!({
            "killed": killed_id, "signal": if t.paused { "SIGSTOP" } else { "SIGKILL" },
            "old_term": t.old_term,
            "new_leader": new_id, "new_term": t.new_leader.map(|(_, term)| term),
            "unavailable_ms": unavailable, "kill_to_first_new_term_ack_ms": kill_to_ack,
            "kill_to_new_leader_ms": to_leader_ms, "longest_ack_gap_ms": gap_ms,
        }),
    );
    if unavailable.is_none() {
        r.fail("no acknowledgement of a new-term entry after the kill");
    }
}

/// Restarts the killed node, waits for it to catch up, then checks every
/// acknowledged message is in every node's log exactly once, at its acked seq.
fn verify_logs(
    r: &mut Report,
    cluster: &mut Cluster,
    killed: usize,
    phase: &Phase,
    ids: &MsgIds,
    addrs: &[SocketAddr],
) -> Result<()> {
    cluster.kill(killed)?; // a paused node is killed now (no-op if already)
    cluster.restart(killed)?;
    let caught_up = wait_caught_up(cluster, killed, Duration::from_secs(60));
    check_logs(r, cluster, phase, ids, addrs, caught_up)
}

/// Checks every acknowledged message is in every node's log exactly once,
/// at its acked seq (HISTORY of each node).
pub fn check_logs(
    r: &mut Report,
    cluster: &Cluster,
    phase: &Phase,
    ids: &MsgIds,
    addrs: &[SocketAddr],
    caught_up: bool,
) -> Result<()> {
    let o = &phase.outcome;
    let pages = (o.sent_us.len() / 1000 + 1000).min(1_000_000);
    let (mut lost, mut dups, mut misplaced) = (0u64, 0u64, 0u64);
    let mut checked = Vec::new();
    for (i, &a) in addrs.iter().enumerate() {
        let log: Vec<Logged> = match proto::history(a, ids, pages) {
            Ok(l) => l,
            Err(e) => {
                r.fail(&format!("cannot read the history of n{}: {e:#}", i + 1));
                continue;
            }
        };
        let mut seen = vec![0u64; o.sent_us.len()];
        for e in &log {
            let g = e.g as usize;
            if g >= seen.len() {
                continue;
            }
            if seen[g] != 0 {
                dups += 1;
            }
            seen[g] = e.seq_no;
        }
        for (g, &at) in seen.iter().enumerate() {
            if o.ack_us[g] == 0 {
                continue;
            }
            if at == 0 {
                lost += 1;
            } else if at != o.ack_seq[g] {
                misplaced += 1;
            }
        }
        checked.push(cluster.nodes[i].id);
    }
    r.line(&format!(
        "logs (HISTORY of {}; restarted node{}): acknowledged lost {lost}, duplicated {dups}, at another seq than acked {misplaced}",
        checked.iter().map(|id| format!("n{id}")).collect::<Vec<_>>().join(","),
        if caught_up { "s caught up" } else { "s NOT caught up" },
    ));
    r.set(
        "logs",
        json!({"checked_nodes": checked, "acked_lost": lost, "duplicated": dups,
               "misplaced": misplaced, "restarted_caught_up": caught_up}),
    );
    if lost + dups + misplaced > 0 {
        r.fail("acknowledged messages lost, duplicated or misplaced in a log");
    }
    if !caught_up {
        r.fail("the restarted node did not catch up within 60 s");
    }
    Ok(())
}

/// True once node `i` reports a commit point at least the leader's.
pub fn wait_caught_up(cluster: &mut Cluster, i: usize, bound: Duration) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < bound {
        let target = cluster
            .nodes
            .iter()
            .filter_map(|n| proto::status(n.addr, Duration::from_millis(300)).ok())
            .filter(|st| st.role == "leader")
            .map(|st| st.commit_seq)
            .max();
        let mine = proto::status(cluster.nodes[i].addr, Duration::from_millis(300)).ok();
        if let (Some(target), Some(st)) = (target, mine) {
            if st.commit_seq >= target && st.role != "candidate" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
