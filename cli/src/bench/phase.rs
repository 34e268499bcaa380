//! One measured load phase: subscribe to every node, snapshot node CPU,
//! run the load generator on its own thread while the main thread prints
//! progress (and lets a scenario act, e.g. kill the leader), wait for the
//! deliveries to settle, snapshot CPU again. `steady` is the plain benchmark
//! built on it.

use super::cluster::{Cluster, ProcStats};
use super::load::{self, Outcome};
use super::proto::{self, MsgIds};
use super::report::{self, Checks, NodeUsage, Report};
use super::subscribe::{Deliveries, Subscriber};
use super::{Args, Clock, Target};
use anyhow::{bail, Result};
use serde_json::json;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a measured phase produced.
#[derive(Debug)]
pub struct Phase {
    pub outcome: Outcome,
    /// Per subscribed node (index into the address list), what it delivered.
    pub deliveries: Vec<(usize, Deliveries)>,
    /// Load start and last acknowledgement, µs on the phase clock.
    pub start_us: u64,
    pub last_ack_us: u64,
    pub usage: Vec<NodeUsage>,
}

impl Phase {
    /// Seconds from the first send to the last acknowledgement.
    pub fn seconds(&self) -> f64 {
        self.last_ack_us.saturating_sub(self.start_us) as f64 / 1e6
    }
}

/// Lets a scenario act during the load: called about every 10 ms with the
/// cluster and the live counters; returning true stops issuing (then drains).
pub type Hook<'a> = dyn FnMut(Option<&mut Cluster>, &load::Live, &Clock) -> Result<bool> + 'a;

/// The address list clients use, per `--target`.
pub fn client_addrs(target: Target, addrs: &[SocketAddr]) -> Result<Vec<SocketAddr>> {
    if target == Target::All {
        return Ok(addrs.to_vec());
    }
    let mut leader = Vec::new();
    let mut followers = Vec::new();
    for &a in addrs {
        match proto::status(a, Duration::from_secs(2)) {
            Ok(st) if st.role == "leader" => leader.push(a),
            Ok(_) => followers.push(a),
            Err(_) => {}
        }
    }
    let chosen = if target == Target::Leader {
        leader
    } else {
        followers
    };
    if chosen.is_empty() {
        bail!("no node matches --target {target:?}");
    }
    Ok(chosen)
}

pub fn spec(args: &Args, addrs: Vec<SocketAddr>, total: u64, rate: Option<f64>) -> load::Spec {
    load::Spec {
        addrs,
        clients: args.clients,
        window: args.window,
        total,
        rate,
        payload: "x".repeat(args.size),
        retry_ms: args.retry_ms,
        max_duration: args.max_duration(),
        drain: Duration::from_millis(args.retry_ms * 3 + args.leader_timeout_ms * 2),
    }
}

fn usage(cluster: &mut Option<&mut Cluster>, before: &[Option<ProcStats>]) -> Vec<NodeUsage> {
    let Some(c) = cluster.as_deref_mut() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, n) in c.nodes.iter_mut().enumerate() {
        let pid = n.pid();
        let now = if n.is_running() {
            n.stats()
        } else {
            n.last_stats
        };
        let role = match (pid, proto::status(n.addr, Duration::from_millis(500))) {
            (None, _) => "killed".to_string(),
            (Some(_), Ok(st)) => st.role,
            (Some(_), Err(_)) => "?".to_string(),
        };
        out.push(NodeUsage {
            id: n.id,
            pid,
            role,
            cpu_s: match (before.get(i).copied().flatten(), now) {
                (Some(b), Some(a)) => Some(a.cpu_s - b.cpu_s),
                _ => None,
            },
            peak_rss_kib: now.map(|s| s.peak_rss_kib),
        });
    }
    out
}

/// Runs one phase of `spec` against `addrs` (all nodes are subscribed unless
/// `--no-subscribe`).
pub fn measure(
    args: &Args,
    addrs: &[SocketAddr],
    mut cluster: Option<&mut Cluster>,
    spec: load::Spec,
    ids: &MsgIds,
    hook: &mut Hook<'_>,
) -> Result<Phase> {
    let clock = Clock::new();
    let sub_stop = Arc::new(AtomicBool::new(false));
    let mut subs = Vec::new();
    if !args.no_subscribe {
        for (i, &a) in addrs.iter().enumerate() {
            let from = proto::status(a, Duration::from_secs(2))
                .map(|st| st.commit_seq + 1)
                .ok();
            let s = Subscriber::start(a, from, ids.clone(), spec.total, clock, sub_stop.clone());
            subs.push((i, s));
        }
        for _ in 0..200 {
            if subs
                .iter()
                .all(|(_, s)| s.live.connected.load(Ordering::Relaxed))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let before: Vec<Option<ProcStats>> = match cluster.as_deref_mut() {
        Some(c) => c.nodes.iter_mut().map(|n| n.stats()).collect(),
        None => Vec::new(),
    };
    let live = Arc::new(load::Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start_us = clock.now_us();
    let handle = {
        let (live, stop, ids) = (live.clone(), stop.clone(), ids.clone());
        let spec = spec.clone();
        std::thread::Builder::new()
            .name("load".into())
            .spawn(move || load::run(&spec, &ids, &clock, &live, &stop))?
    };
    let mut progress = Progress::new(args.json);
    while !live.done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        progress.maybe_print(&clock, &live, &subs);
        if !stop.load(Ordering::Relaxed) && hook(cluster.as_deref_mut(), &live, &clock)? {
            stop.store(true, Ordering::Relaxed);
        }
    }
    let outcome = handle.join().expect("load thread panicked");
    progress.finish();
    let last_ack_us = outcome
        .ack_us
        .iter()
        .map(|&a| u64::from(a).saturating_sub(1))
        .max()
        .unwrap_or(start_us);
    settle_deliveries(&subs, outcome.acked, args);
    sub_stop.store(true, Ordering::Relaxed);
    let deliveries = subs.into_iter().map(|(i, s)| (i, s.join())).collect();
    let usage = usage(&mut cluster, &before);
    Ok(Phase {
        outcome,
        deliveries,
        start_us,
        last_ack_us,
        usage,
    })
}

/// Waits (bounded) until every connected subscriber delivered what was acked.
fn settle_deliveries(subs: &[(usize, Subscriber)], acked: u64, args: &Args) {
    let bound = Duration::from_millis(2000 + args.leader_timeout_ms * 2);
    let t = std::time::Instant::now();
    while t.elapsed() < bound {
        let behind = subs.iter().any(|(_, s)| {
            s.live.connected.load(Ordering::Relaxed)
                && s.live.delivered.load(Ordering::Relaxed) < acked
        });
        if !behind {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The once-a-second progress line on stderr (in place on a terminal).
struct Progress {
    tty: bool,
    quiet: bool,
    last_us: u64,
    last_acked: u64,
    printed: bool,
}

impl Progress {
    fn new(json: bool) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            quiet: json && !std::io::stderr().is_terminal(),
            last_us: 0,
            last_acked: 0,
            printed: false,
        }
    }

    fn maybe_print(&mut self, clock: &Clock, live: &load::Live, subs: &[(usize, Subscriber)]) {
        let now = clock.now_us();
        if now < self.last_us + 1_000_000 || self.quiet {
            return;
        }
        let acked = live.acked.load(Ordering::Relaxed);
        let rate = (acked - self.last_acked) as f64 / ((now - self.last_us) as f64 / 1e6);
        let issued = live.issued.load(Ordering::Relaxed);
        let mut line = format!(
            "bench {:>5.1}s  acked {acked:>9}  {rate:>8.0}/s  in flight {:>6}",
            now as f64 / 1e6,
            issued - acked
        );
        for (i, s) in subs {
            line.push_str(&format!(
                "  n{}:{}",
                i + 1,
                s.live.delivered.load(Ordering::Relaxed)
            ));
        }
        let (re, er) = (
            live.resent.load(Ordering::Relaxed),
            live.errors.load(Ordering::Relaxed),
        );
        if re + er > 0 {
            line.push_str(&format!("  resent {re} errors {er}"));
        }
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        self.printed = true;
        self.last_us = now;
        self.last_acked = acked;
    }

    fn finish(&self) {
        if self.tty && self.printed {
            eprintln!();
        }
    }
}

/// The plain benchmark: one closed- or open-loop phase, all checks.
pub fn steady(args: &Args, addrs: &[SocketAddr], cluster: Option<&mut Cluster>) -> Result<Report> {
    let ids = MsgIds::new_for_run();
    let targets = client_addrs(args.target, addrs)?;
    let spec = spec(args, targets, args.messages, args.rate);
    let mut never = |_: Option<&mut Cluster>, _: &load::Live, _: &Clock| Ok(false);
    let started = cluster.is_some();
    let phase = measure(args, addrs, cluster, spec, &ids, &mut never)?;
    let mut r = Report::new(
        if args.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        header(args, args.rate, addrs.len(), started),
        config_json(args, args.rate, addrs.len(), started),
    );
    describe(
        &mut r,
        &phase,
        &phase.deliveries.iter().map(|(_, d)| d).collect::<Vec<_>>(),
    );
    Ok(r)
}

/// Throughput, latencies, client counters, checks and node usage of a phase;
/// `nodes` are the deliveries that count for "delivered on every node".
pub fn describe(r: &mut Report, phase: &Phase, nodes: &[&Deliveries]) {
    let o = &phase.outcome;
    r.throughput(o.acked, o.issued, phase.seconds());
    let ack = report::ack_latency(o);
    let (all, missing) = if nodes.is_empty() {
        (None, 0)
    } else {
        let (l, m) = report::delivered_all_latency(o, nodes);
        (Some(l), m)
    };
    r.latencies(&ack, all.as_ref());
    r.client_counters(o);
    r.checks(&Checks::compute(o, nodes, missing));
    r.nodes(&phase.usage, phase.seconds());
}

pub fn header(args: &Args, rate: Option<f64>, n: usize, started: bool) -> String {
    let load = match rate {
        Some(rate) => format!("open loop {rate:.0} msgs/s"),
        None => format!("closed loop, window {}", args.window),
    };
    let cluster = if started {
        format!(
            "{n} nodes started here (fsync on, heartbeat {} ms, leader timeout {} ms)",
            args.heartbeat_ms, args.leader_timeout_ms
        )
    } else {
        format!("{n} nodes at {}", args.connect.join(","))
    };
    format!(
        "chorus bench: {cluster}; {} clients → {}, {load}, {} B payload, {} messages",
        args.clients,
        format!("{:?}", args.target).to_lowercase(),
        args.size,
        args.messages
    )
}

pub fn config_json(args: &Args, rate: Option<f64>, n: usize, started: bool) -> serde_json::Value {
    json!({
        "nodes": n, "started": started, "connect": args.connect,
        "clients": args.clients, "window": args.window, "rate": rate,
        "size": args.size, "messages": args.messages,
        "target": format!("{:?}", args.target).to_lowercase(),
        "heartbeat_ms": args.heartbeat_ms, "leader_timeout_ms": args.leader_timeout_ms,
        "subscribe": !args.no_subscribe,
    })
}
