//! `chorus chaos`: the real binary under real faults. N `chorus node`
//! processes, each in its own network namespace behind one bridge, clients
//! that chat continuously and retry with the same msg_id, and a seeded
//! stream of faults — crashes, pauses, power losses, partitions, packet
//! loss, and delays and stalls of peer links through a user-space proxy —
//! for a bounded time; then everything heals and the verdict comes from the nodes'
//! durable logs and the clients' acknowledgements (`verify.rs`).
//!
//! Module map: `netns` (namespaces, bridge, nft rules, cleanup), `procs`
//! (node processes by PID), `proxy` (the TCP proxy every peer link runs
//! through: delays, stalls), `schedule` (the seeded fault plan), `clients`,
//! `monitor` (STATUS polling, online term checks), `outage` (the long
//! outage of a retention run, which forces a snapshot install), `verify`,
//! `report`.
//! Every phase is bounded in time; everything created is torn down by Drop
//! guards (also on panic) and on SIGINT/SIGTERM.

mod clients;
mod durable;
mod monitor;
mod netns;
mod outage;
mod procs;
mod proxy;
mod report;
mod schedule;
mod verify;

use anyhow::{bail, Context, Result};
use schedule::{Fault, Kind, Planner, View};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Run a real cluster through seeded faults and check it lost nothing.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Needs root (network namespaces, nftables) and the packages iproute2 \
    and nftables (with NAT: peer links run through the harness's TCP proxy, for the delay \
    and stall faults; --no-proxy goes without). Exit status: 0 no violation, 1 a violation (the seed to reproduce is \
    printed), 2 the harness could not run. See RELIABILITY.md."
)]
pub struct Args {
    /// Cluster size (3 to 9).
    #[arg(long, default_value_t = 5)]
    pub nodes: u64,
    /// Seconds of fault injection (healing and checking come after).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seed of the fault plan (decimal or 0x hex); random if omitted.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Concurrent chat clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seconds allowed for the cluster to converge after the heal.
    #[arg(long, default_value_t = 60)]
    pub converge_timeout: u64,
    /// Start the nodes with CHORUS_UNSAFE_ACK_BEFORE_FSYNC=1 (a deliberately
    /// broken build, to show the harness catches it).
    #[arg(long)]
    pub unsafe_ack_before_fsync: bool,
    /// Start the nodes with CHORUS_UNSAFE_SKIP_FSYNC=1 (a deliberately broken
    /// build that never fsyncs its log yet acknowledges, to show the
    /// harness catches it; needs the power-loss faults).
    #[arg(long)]
    pub unsafe_skip_fsync: bool,
    /// Draw only these kinds of fault (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<Kind>,
    /// Milliseconds between two injections, drawn from LO-HI.
    #[arg(long, default_value = "20-80", value_parser = parse_gap)]
    pub fault_gap_ms: (u64, u64),
    /// No power-loss faults (they need strace: each node runs under it).
    #[arg(long)]
    pub no_power_loss: bool,
    /// Peer links go straight from node to node, not through the harness's
    /// TCP proxy (then no delay and stall faults).
    #[arg(long)]
    pub no_proxy: bool,
    /// TLS on every link: a CA and node certificates (naming each node's
    /// address) in the data directory; the harness's clients verify the nodes.
    #[arg(long)]
    pub tls: bool,
    /// Keep the data directory (logs, node stderr) even when all checks pass.
    #[arg(long)]
    pub keep: bool,
    /// Delay every fdatasync/fsync of the nodes' logs by MS (strace fault
    /// injection; needs the power-loss faults): with
    /// --unsafe-ack-before-fsync, acknowledgements then wait long without
    /// durability, so a power loss can take them.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub slow_fsync_ms: u64,
    /// Record every node's core inputs into DIR/nodeN (kept after the run),
    /// for `chorus sim replay DIR/node1 DIR/node2 …`.
    #[arg(long, value_name = "DIR")]
    pub record: Option<std::path::PathBuf>,
    /// Every node snapshots its state every N committed entries (the
    /// node's `snapshot_every`; default: the node's own, 100,000).
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Retention: every node keeps only its N newest entries and deletes
    /// older log segments behind a snapshot (the node's `retain_entries`, at
    /// least 1000; needs --snapshot-every). A node that comes back behind
    /// the leader's first retained entry installs the leader's snapshot.
    #[arg(long, value_name = "N", requires = "snapshot_every")]
    pub retain_entries: Option<u64>,
    /// Bytes per log segment file (the node's `log_segment_bytes`, at least
    /// 4096); with --retain-entries the default is 16384, so that segments
    /// fill, and are deleted, within a run.
    #[arg(long, value_name = "BYTES")]
    pub log_segment_bytes: Option<u64>,
    /// Print every fault as it is injected.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Segment size with retention unless --log-segment-bytes says otherwise:
/// ~100 chaos entries per segment, so a retention of a thousand entries
/// deletes segments many times a minute.
pub const RETAIN_SEGMENT_BYTES: u64 = 16 * 1024;

impl Args {
    /// The snapshot and retention keys every node gets.
    fn retention(&self) -> procs::Retention {
        procs::Retention {
            snapshot_every: self.snapshot_every,
            retain_entries: self.retain_entries,
            segment_bytes: self
                .log_segment_bytes
                .or(self.retain_entries.map(|_| RETAIN_SEGMENT_BYTES)),
        }
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("not a seed: {e}"))
}

fn parse_gap(s: &str) -> Result<(u64, u64), String> {
    let (lo, hi) = s.split_once('-').ok_or("expected LO-HI, e.g. 300-1000")?;
    let lo: u64 = lo
        .trim()
        .parse()
        .map_err(|e| format!("not a number: {e}"))?;
    let hi: u64 = hi
        .trim()
        .parse()
        .map_err(|e| format!("not a number: {e}"))?;
    if lo == 0 || lo > hi {
        return Err("need 0 < LO <= HI".into());
    }
    Ok((lo, hi))
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32)
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !(3..=9).contains(&args.nodes) {
        bail!("--nodes must be between 3 and 9");
    }
    netns::preflight()?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let _lock = netns::lock()?;
    let stale = netns::remove_stale();
    if stale > 0 {
        eprintln!("removed {stale} leftovers of an earlier chorus chaos run");
    }
    let power = !args.no_power_loss && netns::has_strace();
    if !args.no_power_loss && !power {
        eprintln!("strace not found: no power-loss faults (apt-get install -y strace)");
    }
    if !power && !args.faults.is_empty() && args.faults.iter().all(|k| *k == Kind::PowerLoss) {
        bail!("--faults power-loss needs the power-loss faults (strace, no --no-power-loss)");
    }
    let only_proxy = !args.faults.is_empty() && args.faults.iter().all(|k| k.needs_proxy());
    if args.no_proxy && only_proxy {
        bail!("--faults delay,stall need the proxy (drop --no-proxy)");
    }
    if args.unsafe_skip_fsync
        && !(power && (args.faults.is_empty() || args.faults.contains(&Kind::PowerLoss)))
    {
        eprintln!("warning: --unsafe-skip-fsync without power-loss faults: a crash loses nothing that reached the page cache, so this run cannot catch it");
    }
    if args.slow_fsync_ms > 0 && !power {
        eprintln!("warning: --slow-fsync-ms needs the power-loss faults (strace): ignored");
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, interrupted.clone())?;
    }
    let dir = std::env::temp_dir().join(format!("chorus-chaos-{seed:x}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    println!(
        "chorus chaos: seed {seed:#x}, {} nodes, {} clients, {} s of faults; files in {}",
        args.nodes,
        args.clients,
        args.duration,
        dir.display()
    );
    let record = match &args.record {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create --record {}", d.display()))?;
            Some(d.canonicalize()?)
        }
        None => None,
    };
    let outcome = {
        // Declared first, dropped last: nodes die before their namespaces go.
        let net = netns::Net::create(args.nodes)?;
        let proxy = if args.no_proxy {
            None
        } else {
            net.route_peers_through_proxy(procs::NODE_PORT)
                .context("cannot route peer links through the proxy (does this kernel have nftables NAT? --no-proxy runs without delay and stall faults)")?;
            Some(proxy::Proxy::start(args.nodes)?)
        };
        if args.tls {
            clients::use_tls(&dir.join("certs"), args.nodes)?;
        }
        let nodes = procs::Nodes::start(
            &dir,
            args.nodes,
            args.unsafe_ack_before_fsync,
            args.unsafe_skip_fsync,
            power,
            record.clone(),
            if power { args.slow_fsync_ms } else { 0 },
            &args.retention(),
        )?;
        Run {
            args: &args,
            seed,
            power,
            net,
            nodes,
            proxy,
            interrupted,
        }
        .go()
    };
    let r = outcome?;
    report::print(&r, &args, seed);
    if r.violations.is_empty() {
        if !args.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(ExitCode::SUCCESS)
    } else {
        println!("node logs and stderr kept in {}", dir.display());
        Ok(ExitCode::from(1))
    }
}

/// Everything the report needs.
#[derive(Debug, Default)]
pub struct Outcome {
    pub faults: BTreeMap<Kind, u64>,
    pub sent: u64,
    pub acked: u64,
    pub unacked: u64,
    pub attempts: u64,
    pub errors: BTreeMap<String, u64>,
    pub checked: verify::Checked,
    pub elections: u64,
    pub max_term: u64,
    pub longest_unavailable_ms: u64,
    /// Time of the fault phase in which the harness knew a leader that was
    /// neither crashed nor paused (the faults aimed at the leader need one).
    pub leader_known_ms: u64,
    pub converge_ms: Option<u64>,
    pub restarts: u64,
    /// Unsynced log bytes dropped by power-loss faults.
    pub power_lost_bytes: u64,
    /// What the proxy did (None without it).
    pub proxy: Option<ProxyStats>,
    /// Snapshots, installs and retention.
    pub snapshots: SnapshotStats,
    /// The long outage of a retention run, described.
    pub outage: Option<String>,
    pub violations: Vec<String>,
}

/// Snapshot and retention activity of a run, summed over nodes and their
/// incarnations.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Snapshots installed from a peer, from STATUS's `snapshot_installs`
    /// (polled all along, each incarnation's count added; misses an install
    /// whose process was crashed before a poll saw it).
    pub installs: u64,
    /// The same from the nodes' logs ("installed the leader's snapshot"
    /// lines, one per install): exact over every incarnation.
    pub installs_logged: u64,
    /// Snapshots saved ("saved a snapshot" lines).
    pub saved: u64,
    /// Log segment files deleted by retention.
    pub segments_deleted: u64,
}

/// The newest snapshot of `dir` that verifies, decoded; an error if a newer
/// file fails to verify or the newest one does not decode (a corrupt
/// snapshot is a violation: saves are atomic).
fn newest_snapshot(dir: &std::path::Path) -> Result<Option<chorus_core::Snapshot>> {
    use chorus_runtime_mio::snapshots::{SnapshotStore, DEFAULT_MAX_SNAPSHOT_BYTES};
    let Some(loaded) = SnapshotStore::open_read_only(dir, DEFAULT_MAX_SNAPSHOT_BYTES)
        .and_then(|mut s| s.load_latest())
        .map_err(|e| anyhow::anyhow!("cannot read its snapshots: {e}"))?
    else {
        return Ok(None);
    };
    if let Some(bad) = loaded.skipped.first() {
        bail!("a snapshot file does not verify: {bad}");
    }
    chorus_core::Snapshot::decode(&loaded.bytes)
        .map(Some)
        .map_err(|e| {
            anyhow::anyhow!(
                "its snapshot at seq {} does not decode: {e}",
                loaded.meta.seq.0
            )
        })
}

/// The proxy's counters at the end of a run.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: u64,
    pub bytes: u64,
    pub delayed_chunks: u64,
    pub held_chunks: u64,
    pub refused: u64,
}

struct Run<'a> {
    args: &'a Args,
    seed: u64,
    power: bool,
    net: netns::Net,
    nodes: procs::Nodes,
    proxy: Option<proxy::Proxy>,
    interrupted: Arc<AtomicBool>,
}

/// Faults in force and when each heals.
#[derive(Default)]
struct Active {
    killed: BTreeMap<usize, Instant>,
    paused: BTreeMap<usize, Instant>,
    /// Network faults (partitions, loss, delays, stalls), each with its end.
    net: Vec<(Fault, Instant)>,
    rules: Option<schedule::Rules>,
}

impl Active {
    fn count(&self, kinds: &[Kind]) -> usize {
        self.net
            .iter()
            .filter(|(f, _)| kinds.contains(&f.kind()))
            .count()
    }
}

impl Run<'_> {
    fn go(mut self) -> Result<Outcome> {
        let n = self.args.nodes;
        let mut out = Outcome::default();
        let mut monitor = monitor::Monitor::start(n);
        let t0 = Instant::now();
        while monitor.leader().is_none() {
            if t0.elapsed() > Duration::from_secs(30) || self.interrupted.load(Ordering::SeqCst) {
                bail!(
                    "no leader within 30 s of starting; node 1 says:\n{}",
                    self.nodes.stderr_tail(0, 20)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        let shared = clients::Shared::new();
        let handles = clients::start(self.args.clients, n, self.seed, &shared);
        let fault_start = shared.start.elapsed().as_millis() as u64;
        self.inject(&monitor, &mut out)?;
        let fault_end = shared.start.elapsed().as_millis() as u64;
        shared.stop_new.store(true, Ordering::SeqCst);
        out.converge_ms = self.converge(&shared);
        if out.converge_ms.is_none() {
            out.violations.push(format!(
                "the cluster did not converge within {} s after the heal (one leader, every node \
                 at the same commit point, every client's last message acknowledged)",
                self.args.converge_timeout
            ));
        }
        shared.stop.store(true, Ordering::SeqCst);
        let logs: Vec<clients::ClientLog> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        monitor.stop();
        {
            let obs = monitor.observed.lock().unwrap();
            out.elections = obs.leaders.len() as u64;
            out.max_term = obs.terms.values().copied().max().unwrap_or(0);
            out.violations.extend(obs.violations.iter().cloned());
            out.snapshots.installs = obs.installs();
        }
        for (id, st) in self.nodes.exited() {
            out.violations.push(format!(
                "n{id} exited by itself ({st}) during the check phase"
            ));
        }
        for i in 0..n as usize {
            self.nodes.kill(i);
        }
        out.longest_unavailable_ms =
            longest_gap(&shared.ack_times_ms.lock().unwrap(), fault_start, fault_end);
        for c in &logs {
            out.sent += c.sent.len() as u64;
            out.acked += c.acks.len() as u64;
            out.unacked += c.unacked.len() as u64;
            out.attempts += c.attempts;
            for (k, v) in &c.errors {
                *out.errors.entry(k.clone()).or_default() += v;
            }
        }
        let mut node_logs = Vec::new();
        for (i, p) in self.nodes.nodes.iter().enumerate() {
            out.restarts += u64::from(p.starts.saturating_sub(1));
            let logged = self.nodes.stderr_counts(i);
            out.snapshots.saved += logged.saved;
            out.snapshots.installs_logged += logged.installs;
            out.snapshots.segments_deleted += logged.segments_deleted;
            let snapshot = match newest_snapshot(&p.log_dir) {
                Ok(s) => s,
                Err(e) => {
                    out.violations.push(format!("n{}: {e}", p.id));
                    None
                }
            };
            match chorus_runtime_mio::storage::read_only(&p.log_dir) {
                Ok(s) => node_logs.push(verify::NodeLog {
                    id: p.id,
                    entries: s.replayed.recovered.entries,
                    start_seq: s.start_seq.0,
                    commit_seq: s.replayed.recovered.commit_seq.0,
                    snapshot,
                }),
                Err(e) => out.violations.push(format!("n{}: {e}", p.id)),
            }
        }
        out.proxy = self.proxy.as_ref().map(|p| {
            let s = &p.stats;
            let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            ProxyStats {
                connections: get(&s.connections),
                bytes: get(&s.bytes),
                delayed_chunks: get(&s.delayed_chunks),
                held_chunks: get(&s.held_chunks),
                refused: get(&s.refused),
            }
        });
        let (checked, v) = verify::check(&node_logs, &logs);
        out.checked = checked;
        out.violations.extend(v);
        Ok(out)
    }

    /// The fault phase: inject from the plan, heal what is due, for `duration`.
    fn inject(&mut self, monitor: &monitor::Monitor, out: &mut Outcome) -> Result<()> {
        let mut planner = Planner::new(self.seed, self.power)
            .proxy(self.proxy.is_some())
            .only(&self.args.faults)
            .gap(self.args.fault_gap_ms);
        let mut act = Active::default();
        let start = Instant::now();
        if self.args.verbose {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            // Lines below are stamped from here; the nodes' logs use UTC.
            println!(
                "fault phase starts at unix time {:.3} s",
                wall.as_secs_f64()
            );
        }
        let end = start + Duration::from_secs(self.args.duration);
        let mut next = start + Duration::from_millis(planner.gap_ms());
        let mut seen_leader = None;
        let mut tick = start;
        let mut outage = self
            .args
            .retain_entries
            .map(|_| outage::Outage::plan(self.seed, Duration::from_secs(self.args.duration)));
        while Instant::now() < end {
            // The leader as the planner sees it: known and not crashed or paused.
            let leader = monitor.leader().filter(|&l| {
                let i = l as usize - 1;
                !act.killed.contains_key(&i) && !act.paused.contains_key(&i)
            });
            let now = Instant::now();
            if leader.is_some() {
                out.leader_known_ms += now.duration_since(tick).as_millis() as u64;
            }
            tick = now;
            if leader != seen_leader {
                if self.args.verbose {
                    let who = leader.map_or("none known".to_string(), |l| format!("n{l}"));
                    println!("[{:6.1} s] leader: {who}", start.elapsed().as_secs_f64());
                }
                if leader.is_some() {
                    // A new leader: strike at once (the kinds aimed at the
                    // leader would otherwise wait out the gap, and a new
                    // leader is when a system is most fragile).
                    next = next.min(now);
                }
                seen_leader = leader;
            }
            if self.interrupted.load(Ordering::SeqCst) {
                self.heal_all(&mut act, None)?;
                bail!("interrupted; everything was torn down");
            }
            for (id, st) in self.nodes.exited() {
                out.violations.push(format!(
                    "n{id} exited by itself ({st}):\n{}",
                    self.nodes.stderr_tail(id as usize - 1, 10)
                ));
            }
            self.heal_due(&mut act, false)?;
            if let Some(o) = outage.as_mut() {
                self.step_outage(o, monitor, &mut act, start.elapsed(), leader)?;
            }
            let now = Instant::now();
            if now >= next {
                let view = View {
                    nodes: self.args.nodes,
                    leader: monitor.leader(),
                    down: act
                        .killed
                        .keys()
                        .chain(act.paused.keys())
                        .map(|&i| i as u64 + 1)
                        .collect(),
                    partitions: act.count(&[Kind::IsolateLeader, Kind::Split, Kind::OneWay]),
                    losses: act.count(&[Kind::Loss]),
                    delays: act.count(&[Kind::Delay]),
                    stalls: act.count(&[Kind::Stall]),
                };
                if let Some(f) = planner.next(&view) {
                    if self.args.verbose {
                        println!("[{:6.1} s] {f}", start.elapsed().as_secs_f64());
                    }
                    *out.faults.entry(f.kind()).or_default() += 1;
                    match &f {
                        Fault::Kill { node, .. } => monitor.forget(*node),
                        Fault::PowerLoss { nodes, .. } => {
                            nodes.iter().for_each(|&n| monitor.forget(n))
                        }
                        _ => {}
                    }
                    self.apply(f, &mut act, out)?;
                    next = now + Duration::from_millis(planner.gap_ms());
                }
                // Nothing fits (typically: an election is on): try again at
                // the next tick, so a new leader is met at once.
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(o) = outage.as_mut().filter(|o| o.active()) {
            self.finish_outage(o, monitor, &mut act, start)?;
        }
        out.outage = outage.map(|o| o.describe());
        self.heal_all(&mut act, None)
    }

    /// Starts the long outage when it is due, ends it once every other
    /// node's log starts past what the node held.
    fn step_outage(
        &mut self,
        o: &mut outage::Outage,
        monitor: &monitor::Monitor,
        act: &mut Active,
        elapsed: Duration,
        leader: Option<u64>,
    ) -> Result<()> {
        if o.active() {
            let (n, _) = o.node.expect("an active outage has its node");
            if let Some(f) = monitor.min_log_first(n).filter(|&f| o.behind(f)) {
                o.ended = Some(elapsed);
                o.others_first = Some(f);
                act.killed.remove(&(n as usize - 1));
                self.nodes.restart(n as usize - 1)?;
                if self.args.verbose {
                    println!("[{:6.1} s] long outage ends: n{n} restarts, every other log starts at {f} or later", elapsed.as_secs_f64());
                }
            }
            return Ok(());
        }
        let Some(l) = leader else {
            return Ok(());
        };
        let down: Vec<u64> = act
            .killed
            .keys()
            .chain(act.paused.keys())
            .map(|&i| i as u64 + 1)
            .collect();
        if let Some(n) = o.choose(elapsed, self.args.nodes, l, &down) {
            let last = monitor.log_range(n).map_or(0, |r| r.1);
            monitor.forget(n);
            self.nodes.kill(n as usize - 1);
            // Ended by `step_outage` or `finish_outage`, never by the clock.
            let never = Instant::now()
                + Duration::from_secs(self.args.duration)
                + Duration::from_millis(outage::MAX_EXTRA_MS);
            act.killed.insert(n as usize - 1, never);
            o.node = Some((n, last));
            o.started = Some(elapsed);
            if self.args.verbose {
                println!("[{:6.1} s] long outage: n{n} down (it holds up to seq {last}) until the leader compacts past it", elapsed.as_secs_f64());
            }
        }
        Ok(())
    }

    /// The fault phase is over but the outage is not: every other fault
    /// heals, the clients keep chatting, and the node stays down until every
    /// other node compacted past it, at most `MAX_EXTRA_MS`.
    fn finish_outage(
        &mut self,
        o: &mut outage::Outage,
        monitor: &monitor::Monitor,
        act: &mut Active,
        start: Instant,
    ) -> Result<()> {
        let (n, _) = o.node.expect("an active outage has its node");
        let i = n as usize - 1;
        act.killed.remove(&i);
        self.heal_all(act, Some(i))?;
        let bound = Instant::now() + Duration::from_millis(outage::MAX_EXTRA_MS);
        while Instant::now() < bound && !self.interrupted.load(Ordering::SeqCst) {
            if let Some(f) = monitor.min_log_first(n).filter(|&f| o.behind(f)) {
                o.others_first = Some(f);
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        o.ended = Some(start.elapsed());
        if self.args.verbose {
            println!(
                "[{:6.1} s] long outage ends after the fault phase: n{n} restarts",
                start.elapsed().as_secs_f64()
            );
        }
        self.nodes.restart(i)
    }

    fn apply(&mut self, f: Fault, act: &mut Active, out: &mut Outcome) -> Result<()> {
        let until = Instant::now() + Duration::from_millis(f.duration_ms());
        match &f {
            Fault::PowerLoss {
                nodes,
                keep_permille,
                late,
                late_ms,
                ..
            } => {
                let idx: Vec<usize> = nodes.iter().map(|&n| n as usize - 1).collect();
                let keep = f64::from(*keep_permille) / 1000.0;
                out.power_lost_bytes += self.nodes.power_cut_many(&idx, keep)?;
                for &node in nodes {
                    let i = node as usize - 1;
                    act.paused.remove(&i);
                    let back = match late {
                        Some(l) if *l == node => until + Duration::from_millis(*late_ms),
                        _ => until,
                    };
                    act.killed.insert(i, back);
                }
            }
            Fault::Kill { node, .. } => {
                let i = *node as usize - 1;
                self.nodes.kill(i);
                act.killed.insert(i, until);
            }
            Fault::Pause { node, .. } => {
                let i = *node as usize - 1;
                self.nodes.pause(i);
                act.paused.insert(i, until);
            }
            _ => act.net.push((f, until)),
        }
        self.sync_rules(act)
    }

    /// Brings the nft rules of every node and the proxy's links in line
    /// with the active faults.
    fn sync_rules(&mut self, act: &mut Active) -> Result<()> {
        if let Some(p) = &self.proxy {
            p.apply(&schedule::links(
                self.args.nodes,
                act.net.iter().map(|(f, _)| f),
            ));
        }
        let want = schedule::rules(self.args.nodes, act.net.iter().map(|(f, _)| f));
        let empty = (Vec::new(), Vec::new(), 0);
        for (i, r) in want.iter().enumerate() {
            let had = act.rules.as_ref().map_or(&empty, |h| &h[i]);
            if had != r {
                self.net.set_rules(i as u64 + 1, &r.0, &r.1, r.2)?;
            }
        }
        act.rules = Some(want);
        Ok(())
    }

    /// Ends every fault whose time is up (all of them with `all`).
    fn heal_due(&mut self, act: &mut Active, all: bool) -> Result<()> {
        let now = Instant::now();
        let due = |t: &Instant| all || *t <= now;
        let restart: Vec<usize> = act
            .killed
            .iter()
            .filter(|(_, t)| due(t))
            .map(|(&i, _)| i)
            .collect();
        for i in restart {
            act.killed.remove(&i);
            self.nodes.restart(i)?;
        }
        let resume: Vec<usize> = act
            .paused
            .iter()
            .filter(|(_, t)| due(t))
            .map(|(&i, _)| i)
            .collect();
        for i in resume {
            act.paused.remove(&i);
            self.nodes.resume(i);
        }
        let before = act.net.len();
        act.net.retain(|(_, t)| !due(t));
        if act.net.len() != before {
            self.sync_rules(act)?;
        }
        Ok(())
    }

    /// Heals everything: restarts crashed nodes (but `keep_down`), continues
    /// paused ones, clears rules.
    fn heal_all(&mut self, act: &mut Active, keep_down: Option<usize>) -> Result<()> {
        self.heal_due(act, true)?;
        for i in 0..self.args.nodes as usize {
            if !self.nodes.is_up(i) && keep_down != Some(i) {
                self.nodes.restart(i)?;
            }
            if self.nodes.nodes[i].paused {
                self.nodes.resume(i);
            }
            self.net.clear_rules(i as u64 + 1)?;
        }
        if let Some(p) = &self.proxy {
            p.apply(&schedule::links(self.args.nodes, []));
        }
        Ok(())
    }

    /// Waits until one leader is followed by every node, every node has
    /// delivered everything the leader holds, and every client is done.
    /// Returns the time it took, or None past the bound.
    fn converge(&mut self, shared: &clients::Shared) -> Option<u64> {
        let start = Instant::now();
        let bound = Duration::from_secs(self.args.converge_timeout);
        let mut stable = 0;
        while start.elapsed() < bound && !self.interrupted.load(Ordering::SeqCst) {
            let st: Vec<_> = (1..=self.args.nodes)
                .map(|id| clients::status(id, Duration::from_millis(500)))
                .collect();
            let ok = st.iter().all(Option::is_some) && {
                let st: Vec<_> = st.iter().flatten().collect();
                let leader = st.iter().find(|s| s.role == "leader");
                leader.is_some_and(|l| {
                    st.iter().all(|s| {
                        s.leader == Some(l.node_id)
                            && s.term == l.term
                            && s.log_commit == l.log_last
                    })
                })
            };
            let clients_done = shared.idle.load(Ordering::SeqCst) == self.args.clients;
            stable = if ok && clients_done { stable + 1 } else { 0 };
            if stable >= 3 {
                return Some(start.elapsed().as_millis() as u64);
            }
            thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

/// The longest time in [from, to] (ms) without any acknowledgement.
fn longest_gap(acks: &[u64], from: u64, to: u64) -> u64 {
    let mut t: Vec<u64> = acks
        .iter()
        .copied()
        .filter(|&a| a >= from && a <= to)
        .collect();
    t.sort_unstable();
    let mut prev = from;
    let mut best = 0;
    for a in t.into_iter().chain([to]) {
        best = best.max(a - prev);
        prev = a;
    }
    best
}

#[cfg(test)]
mod tests {
    #[test]
    fn longest_gap_counts_the_edges() {
        assert_eq!(super::longest_gap(&[], 0, 100), 100);
        assert_eq!(super::longest_gap(&[10, 20, 90], 0, 100), 70);
        assert_eq!(super::longest_gap(&[5, 500], 0, 100), 95);
    }
}
