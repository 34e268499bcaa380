//! `chorus bench --subscribers N`: fan-out at scale. N subscribers of one
//! room, spread over the nodes of a started (or given) cluster and over the
//! client transports, receive messages published at `--rate` by one
//! publisher. Reports sessions per node, RSS per idle session, deliveries
//! per second and send→received latency, and checks that every subscriber
//! got every message, in order, once.
//!
//! One process may hold only so many open files (20,000 here), so the
//! subscribers live in worker processes (`worker.rs`: this executable again,
//! `chorus bench --fanout-worker`), at most `WORKER_SESSIONS` each, and a
//! started cluster has at least one node per `NODE_SESSIONS` subscribers.
//! Module map: `session` (one subscriber per transport), `worker` (the mio
//! loop of a worker), `wire` (parent↔worker lines, payload, clock),
//! `publish` (the publisher).

mod publish;
mod session;
mod wire;
pub mod worker;

use super::cluster::{self, Cluster};
use super::report::{new_hist, Lat, NodeUsage, Report};
use super::Args;
use anyhow::{bail, Context, Result};
use serde_json::json;
pub use session::Transport;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wire::{Ready, Target, WorkerResult, WorkerSpec};

/// Subscribers per worker process: its sockets stay well under a
/// 20,000-file limit.
const WORKER_SESSIONS: u64 = 15_000;
/// Subscribers per started node (so its connections stay under the limit).
const NODE_SESSIONS: u64 = 18_000;
/// `max_connections` of a started node: all its file-limit allows.
const NODE_MAX_CONNECTIONS: u64 = 19_500;
/// Most subscribers one run may ask for.
const MAX_SUBSCRIBERS: u64 = 150_000;
/// Time to let sessions settle before the idle RSS is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

/// One worker process and what it said.
struct WorkerProc {
    child: Child,
    stdin: Option<ChildStdin>,
    ready: Option<Ready>,
    result: Option<WorkerResult>,
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the fan-out arguments.
pub fn validate(args: &Args, n: u64) -> Result<()> {
    if n == 0 || n > MAX_SUBSCRIBERS {
        bail!("--subscribers must be between 1 and {MAX_SUBSCRIBERS}");
    }
    if args.publish == 0 || args.publish > 1_000_000 {
        bail!("--publish must be between 1 and 1,000,000");
    }
    if args.transport.is_empty() {
        bail!("--transport needs at least one of json, ws");
    }
    if args.transport.contains(&Transport::Ws)
        && !args.connect.is_empty()
        && args.http_connect.len() != args.connect.len()
    {
        bail!("--transport ws with --connect needs --http-connect: one HTTP address per --connect address, in the same order");
    }
    if args.size < 40 {
        bail!("--size must be at least 40 with --subscribers (the payload carries the index and send time)");
    }
    Ok(())
}

/// Runs the fan-out bench and builds its report.
pub fn run(args: &Args, n: u64) -> Result<Report> {
    validate(args, n)?;
    let workers = args
        .workers
        .unwrap_or_else(|| {
            n.div_ceil(WORKER_SESSIONS)
                .max(if n >= 2000 { 2 } else { 1 })
        })
        .clamp(1, n);
    let (mut own, targets, publish_to) = targets(args, n)?;
    let baseline: Vec<Option<u64>> = node_pids(own.as_ref())
        .iter()
        .map(|p| p.and_then(cluster::rss_kib))
        .collect();
    let (mut procs, rx) = spawn_workers(args, n, workers, &targets)?;
    let connect_started = Instant::now();
    wait_ready(&mut procs, &rx, Duration::from_secs_f64(args.max_seconds))?;
    let connect_s = connect_started.elapsed().as_secs_f64();
    std::thread::sleep(IDLE_SETTLE);
    let idle: Vec<Option<u64>> = node_pids(own.as_ref())
        .iter()
        .map(|p| p.and_then(cluster::rss_kib))
        .collect();
    let cpu_before = cpu_of(own.as_mut());
    let wait_before = wait_of(own.as_ref());
    let load = cluster::load_average();
    let room = args.room.clone();
    let published = publish::run(
        publish_to,
        &room,
        args.publish,
        args.rate.unwrap_or(50.0),
        args.size,
    )?;
    let grace = Duration::from_secs(10);
    wait_results(&mut procs, &rx, grace)?;
    let seconds = published.seconds;
    let cpu_after = cpu_of(own.as_mut());
    let wait_after = wait_of(own.as_ref());
    let mut report = build_report(
        args,
        n,
        workers,
        &targets,
        &procs,
        own.as_ref(),
        &published,
        connect_s,
    );
    let per_target = sessions_per_target(&procs, targets.len());
    rss_report(&mut report, &per_target, &baseline, &idle);
    if let Some(c) = own.as_ref() {
        let cpu = Usage {
            cpu_before,
            cpu_after,
            wait_before,
            wait_after,
        };
        cpu_report(&mut report, c, &cpu, load, publish_to, seconds);
    }
    Ok(report)
}

/// The cluster (started, with limits raised for N sessions, or given by
/// --connect), the nodes as workers reach them, and where to publish.
fn targets(args: &Args, n: u64) -> Result<(Option<Cluster>, Vec<Target>, SocketAddr)> {
    if args.connect.is_empty() {
        cluster::serve_http(true);
        cluster::extra_config(&format!(
            "max_connections = {NODE_MAX_CONNECTIONS}\nmax_connections_per_address = {NODE_MAX_CONNECTIONS}\nhttp_max_connections = 1024\n"
        ));
        let nodes = (args.nodes as u64).max(n.div_ceil(NODE_SESSIONS)) as usize;
        let (c, leader, _) = Cluster::start_elected(
            nodes,
            args.heartbeat_ms,
            args.leader_timeout_ms,
            args.keep,
            args.record,
        )?;
        let t = c
            .nodes
            .iter()
            .map(|p| Target {
                tcp: p.addr,
                http: p.http,
            })
            .collect::<Vec<_>>();
        let to = c.nodes[leader].addr;
        return Ok((Some(c), t, to));
    }
    let tcp = super::resolve(&args.connect)?;
    let http = super::resolve(&args.http_connect)?;
    let t: Vec<Target> = tcp
        .iter()
        .enumerate()
        .map(|(i, &a)| Target {
            tcp: a,
            http: http.get(i).copied(),
        })
        .collect();
    let st = super::proto::status(tcp[0], Duration::from_secs(2))?;
    let to = st
        .leader_addr
        .as_deref()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap_or(tcp[0]);
    Ok((None, t, to))
}

/// Node CPU and run-queue wait before and after publishing.
struct Usage {
    cpu_before: Vec<Option<f64>>,
    cpu_after: Vec<Option<f64>>,
    wait_before: Vec<Option<f64>>,
    wait_after: Vec<Option<f64>>,
}

/// Sessions and RSS per idle session, per node.
fn rss_report(
    report: &mut Report,
    per_target: &[u64],
    baseline: &[Option<u64>],
    idle: &[Option<u64>],
) {
    let mut rss_rows = Vec::new();
    for (i, &sessions) in per_target.iter().enumerate() {
        let (b, a) = (
            baseline.get(i).copied().flatten(),
            idle.get(i).copied().flatten(),
        );
        let per = match (b, a) {
            (Some(b), Some(a)) if sessions > 0 => {
                Some(a.saturating_sub(b) as f64 * 1024.0 / sessions as f64)
            }
            _ => None,
        };
        rss_rows.push(json!({"node": i + 1, "sessions": sessions,
            "rss_baseline_kib": b, "rss_idle_kib": a,
            "rss_per_session_bytes": per.map(f64::round)}));
        let (Some(b), Some(a), Some(per)) = (b, a, per) else {
            let why = "RSS is measured only on a cluster the bench started";
            report.line(&format!("n{}: {sessions} sessions ({why})", i + 1));
            continue;
        };
        report.line(&format!(
            "n{}: {sessions} sessions, RSS {b} → {a} KiB idle = {:.1} KiB per idle session",
            i + 1,
            per / 1024.0,
        ));
    }
    report.set("nodes_sessions", json!(rss_rows));
}

/// CPU of the started nodes while publishing, their wait for a CPU, and
/// CPU per delivery (nodes and subscribers together).
fn cpu_report(
    report: &mut Report,
    c: &Cluster,
    u: &Usage,
    load: Option<f64>,
    leader: SocketAddr,
    seconds: f64,
) {
    let sum = |v: &[Option<f64>]| v.iter().flatten().sum::<f64>();
    let ran = sum(&u.cpu_after) - sum(&u.cpu_before);
    let waited = sum(&u.wait_after) - sum(&u.wait_before);
    report.line(&format!(
        "box: load average {} at the start; during publishing the nodes ran {ran:.2} CPU s and waited {waited:.2} s for a CPU",
        load.map_or("-".into(), |l| format!("{l:.1}"))
    ));
    report.set(
        "box",
        json!({"load_average_1m": load, "nodes_cpu_s": ran, "nodes_run_queue_wait_s": waited}),
    );
    let workers_cpu = report.get_f64("workers_cpu_s").unwrap_or(0.0);
    let deliveries = report.get_f64("delivered_count").unwrap_or(0.0);
    if deliveries > 0.0 {
        let us = (ran + workers_cpu) * 1e6 / deliveries;
        report.line(&format!(
            "cpu: nodes {ran:.2} s, subscribers {workers_cpu:.2} s = {us:.2} µs per delivery in all"
        ));
        report.set("cpu_us_per_delivery", json!((us * 100.0).round() / 100.0));
    }
    let usage: Vec<NodeUsage> = c
        .nodes
        .iter()
        .enumerate()
        .map(|(i, p)| NodeUsage {
            id: p.id,
            pid: p.pid(),
            role: if p.addr == leader {
                "leader"
            } else {
                "follower"
            }
            .into(),
            cpu_s: match (
                u.cpu_before.get(i).copied().flatten(),
                u.cpu_after.get(i).copied().flatten(),
            ) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            peak_rss_kib: p.last_stats.map(|s| s.peak_rss_kib),
        })
        .collect();
    report.nodes(&usage, seconds.max(1e-3));
}

fn node_pids(c: Option<&Cluster>) -> Vec<Option<u32>> {
    c.map(|c| c.nodes.iter().map(|n| n.pid()).collect())
        .unwrap_or_default()
}

fn cpu_of(c: Option<&mut Cluster>) -> Vec<Option<f64>> {
    c.map(|c| {
        c.nodes
            .iter_mut()
            .map(|n| n.stats().map(|s| s.cpu_s))
            .collect()
    })
    .unwrap_or_default()
}

fn wait_of(c: Option<&Cluster>) -> Vec<Option<f64>> {
    c.map(|c| {
        c.nodes
            .iter()
            .map(|n| n.pid().and_then(cluster::run_queue_wait_s))
            .collect()
    })
    .unwrap_or_default()
}

type Lines = mpsc::Receiver<(usize, String)>;

fn spawn_workers(
    args: &Args,
    n: u64,
    workers: u64,
    targets: &[Target],
) -> Result<(Vec<WorkerProc>, Lines)> {
    let exe = std::env::current_exe().context("cannot find the chorus executable")?;
    let (tx, rx) = mpsc::channel();
    let mut procs = Vec::new();
    let mut first = 0;
    for w in 0..workers {
        let sessions = n / workers + u64::from(w < n % workers);
        let spec = WorkerSpec {
            targets: targets.to_vec(),
            first,
            sessions,
            transports: args.transport.clone(),
            room: args.room.clone(),
            messages: args.publish,
            ready_timeout_s: args.max_seconds,
            spread_sources: true,
        };
        first += sessions;
        let mut child = Command::new(&exe)
            .args(["bench", "--fanout-worker"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start a fan-out worker")?;
        let mut stdin = child.stdin.take().context("worker stdin")?;
        writeln!(stdin, "{}", serde_json::to_string(&spec)?)?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let tx = tx.clone();
        let idx = procs.len();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((idx, line)).is_err() {
                    break;
                }
            }
        });
        procs.push(WorkerProc {
            child,
            stdin: Some(stdin),
            ready: None,
            result: None,
        });
    }
    Ok((procs, rx))
}

/// Takes one worker line (a `Ready` first, then a `WorkerResult`).
fn take_line(procs: &mut [WorkerProc], idx: usize, line: &str) -> Result<()> {
    let p = &mut procs[idx];
    if p.ready.is_none() {
        p.ready = Some(
            serde_json::from_str(line).with_context(|| format!("worker {idx} said {line:?}"))?,
        );
    } else {
        p.result = Some(
            serde_json::from_str(line).with_context(|| format!("worker {idx} said {line:?}"))?,
        );
    }
    Ok(())
}

fn wait_ready(procs: &mut [WorkerProc], rx: &Lines, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout + Duration::from_secs(10);
    while procs.iter().any(|p| p.ready.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, line)) => take_line(procs, i, &line)?,
            Err(_) => bail!("the fan-out workers did not subscribe within {timeout:?}"),
        }
    }
    Ok(())
}

/// Waits for every worker's result; after `grace` tells the rest to stop.
fn wait_results(procs: &mut [WorkerProc], rx: &Lines, grace: Duration) -> Result<()> {
    let mut deadline = Instant::now() + grace;
    let mut stopped = false;
    while procs.iter().any(|p| p.result.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, line)) => take_line(procs, i, &line)?,
            Err(mpsc::RecvTimeoutError::Timeout) if !stopped => {
                for p in procs.iter_mut() {
                    if let Some(mut s) = p.stdin.take() {
                        let _ = writeln!(s, "stop");
                    }
                }
                stopped = true;
                deadline = Instant::now() + Duration::from_secs(10);
            }
            Err(_) => bail!("a fan-out worker ended without a result"),
        }
    }
    Ok(())
}

fn sessions_per_target(procs: &[WorkerProc], targets: usize) -> Vec<u64> {
    let mut v = vec![0; targets];
    for r in procs.iter().filter_map(|p| p.ready.as_ref()) {
        for (i, k) in r.per_target.iter().enumerate() {
            if let Some(slot) = v.get_mut(i) {
                *slot += k;
            }
        }
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &Args,
    n: u64,
    workers: u64,
    targets: &[Target],
    procs: &[WorkerProc],
    own: Option<&Cluster>,
    published: &publish::Published,
    connect_s: f64,
) -> Report {
    let names: Vec<&str> = args.transport.iter().map(|t| t.name()).collect();
    let header = format!(
        "chorus bench --subscribers {n}: {} nodes{}, {workers} worker processes, transports {}, {} messages of {} B at {:.0}/s to room {:?}",
        targets.len(),
        if own.is_some() { " (started)" } else { "" },
        names.join("+"),
        args.publish,
        args.size,
        args.rate.unwrap_or(50.0),
        args.room
    );
    let config = json!({"subscribers": n, "nodes": targets.len(), "workers": workers,
        "transports": names, "publish": args.publish, "size": args.size,
        "rate": args.rate.unwrap_or(50.0), "room": args.room});
    let mut r = Report::new("fanout", header, config);
    let ready: u64 = procs
        .iter()
        .filter_map(|p| p.ready.as_ref())
        .map(|x| x.ready)
        .sum();
    let failed: u64 = procs
        .iter()
        .filter_map(|p| p.ready.as_ref())
        .map(|x| x.failed)
        .sum();
    let res: Vec<&WorkerResult> = procs.iter().filter_map(|p| p.result.as_ref()).collect();
    let deliveries: u64 = res.iter().map(|x| x.deliveries).sum();
    let complete: u64 = res.iter().map(|x| x.complete).sum();
    let dropped: u64 = res.iter().map(|x| x.dropped).sum();
    let out_of_order: u64 = res.iter().map(|x| x.out_of_order).sum();
    let last = res.iter().map(|x| x.last_ns).max().unwrap_or(0);
    let span_s = last.saturating_sub(published.first_ns) as f64 / 1e9;
    let rate = if span_s > 0.0 {
        deliveries as f64 / span_s
    } else {
        0.0
    };
    let mut h = new_hist();
    for x in &res {
        for &(v, c) in &x.latency_us {
            let _ = h.record_n(v.max(1), c);
        }
    }
    let lat = Lat::from_hist(&h);
    let expected = ready * args.publish;
    r.line(&format!(
        "sessions: {ready} of {n} subscribed in {connect_s:.1} s ({failed} failed)"
    ));
    r.line(&format!(
        "published: {} acknowledged of {} in {:.2} s ({} error lines)",
        published.acked, args.publish, published.seconds, published.errors
    ));
    r.line(&format!(
        "deliveries: {deliveries} of {expected} in {span_s:.2} s = {rate:.0} deliveries/s; {complete} subscribers got every message in order"
    ));
    // While publishing only (after the Ready line), as for the nodes.
    let worker_cpu: f64 = procs
        .iter()
        .filter_map(|p| Some(p.result.as_ref()?.cpu_s - p.ready.as_ref()?.cpu_s))
        .sum();
    r.line(&format!(
        "workers: {worker_cpu:.2} CPU seconds while publishing (the subscribers' side)"
    ));
    r.set("workers_cpu_s", json!(worker_cpu));
    r.line(&format!(
        "delivery latency (send → received, ms): p50 {:.1}  p99 {:.1}  max {:.1}",
        lat.p50 as f64 / 1e3,
        lat.p99 as f64 / 1e3,
        lat.max as f64 / 1e3
    ));
    r.set(
        "sessions",
        json!({"requested": n, "ready": ready, "failed": failed,
        "subscribe_seconds": (connect_s * 100.0).round() / 100.0,
        "per_node": sessions_per_target(procs, targets.len())}),
    );
    r.set(
        "published",
        json!({"acked": published.acked, "errors": published.errors, "seconds": published.seconds}),
    );
    r.set("delivered_count", json!(deliveries));
    r.set(
        "deliveries",
        json!({"count": deliveries, "expected": expected, "per_s": rate.round(),
        "span_s": span_s, "complete_subscribers": complete, "dropped_subscribers": dropped,
        "out_of_order_subscribers": out_of_order}),
    );
    r.set(
        "latency_ms",
        json!({"p50": lat.p50 as f64 / 1e3, "p99": lat.p99 as f64 / 1e3,
        "max": lat.max as f64 / 1e3, "count": lat.count}),
    );
    let mut errors: Vec<String> = procs
        .iter()
        .filter_map(|p| p.ready.as_ref())
        .flat_map(|x| x.errors.clone())
        .chain(res.iter().flat_map(|x| x.errors.clone()))
        .collect();
    errors.truncate(10);
    for e in &errors {
        r.line(&format!("  session error: {e}"));
    }
    r.set("session_errors", json!(errors));
    if ready < n {
        r.fail(&format!(
            "{} of {n} subscribers could not subscribe",
            n - ready
        ));
    }
    if published.acked < args.publish {
        r.fail(&format!(
            "{} of {} messages were not acknowledged",
            args.publish - published.acked,
            args.publish
        ));
    }
    if complete < ready {
        r.fail(&format!(
            "{} subscribers missed, repeated or reordered messages ({dropped} were disconnected)",
            ready - complete
        ));
    }
    r
}
