//! `chorus bench`: a load generator and failover timer against real node
//! processes on loopback.
//!
//! It starts its own cluster (`--nodes`, temporary data dirs, fsync on) or
//! targets a running one (`--connect`), drives a closed-loop (`--window`) or
//! open-loop (`--rate`) load, subscribes to every node to time deliveries, and
//! reports committed msgs/s, latency percentiles (HdrHistogram), and CPU and
//! peak RSS per node. `--failover` kills the leader under load; `--catchup`
//! restarts a node that missed messages; `--rolling` restarts every node in
//! turn (SIGTERM, start) under load.
//!
//! `--subscribers N` measures fan-out instead: N subscribers of one room
//! over JSON lines and WebSocket, in worker processes (`fanout/`).
//!
//! Module map: `cluster` (child processes, /proc stats), `proto` (the client
//! protocol, hot-path scanner), `load` (mio load generator), `subscribe`
//! (per-node delivery recorders), `phase` (one measured load phase), `report`
//! (percentiles, checks, text and JSON), `failover`, `catchup`, `rolling`.

mod catchup;
mod cluster;
mod failover;
mod fanout;
mod load;
mod phase;
mod proto;
pub(crate) mod report;
mod rolling;
mod subscribe;

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Load-test a chorus cluster: throughput, latency, failover, catch-up.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start a local cluster of this many `chorus node` processes (temporary
    /// data directories, fsync on). Ignored with --connect.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Target a running cluster instead: client addresses host:port,host:port,…
    #[arg(long, value_delimiter = ',')]
    pub connect: Vec<String>,
    /// Concurrent client connections (spread round-robin over the nodes).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Messages to send in total (the run's main bound).
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Closed loop: messages in flight per client.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Open loop: send this many messages per second in total, on schedule;
    /// latency counts from the intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Which nodes the clients connect to.
    #[arg(long, value_enum, default_value_t = Target::All)]
    pub target: Target,
    /// Upper bound on the load phase, seconds (the run stops there).
    #[arg(long, default_value_t = 120.0)]
    pub max_seconds: f64,
    /// Resend an unacknowledged message (same msg_id) after this long without progress.
    #[arg(long, default_value_t = 3000)]
    pub retry_ms: u64,
    /// Heartbeat interval of the started cluster.
    #[arg(long, default_value_t = 800)]
    pub heartbeat_ms: u64,
    /// Leader timeout of the started cluster.
    #[arg(long, default_value_t = 2500)]
    pub leader_timeout_ms: u64,
    /// Do not subscribe to the nodes (no delivery latency; cheaper client).
    #[arg(long)]
    pub no_subscribe: bool,
    /// SIGKILL the leader under load; report the unavailability window, the
    /// time to a new leader, and acknowledged messages lost or duplicated.
    #[arg(long, conflicts_with = "catchup")]
    pub failover: bool,
    /// With --failover: SIGSTOP the leader instead of SIGKILL. Its TCP
    /// connections stay open, so the cluster has to notice by the leader
    /// timeout (like a hung or partitioned machine) rather than by the
    /// connection resets a killed process leaves behind.
    #[arg(long, requires = "failover")]
    pub pause: bool,
    /// Seconds of load before the kill, and after the first post-kill acknowledgement (--failover).
    #[arg(long, default_value_t = 2.0)]
    pub settle_seconds: f64,
    /// Stop a follower, send --messages, restart it, and time its catch-up.
    #[arg(long)]
    pub catchup: bool,
    /// Rolling restart under load: SIGTERM each node in turn, start it
    /// again, wait for its catch-up; report the unavailability of each step
    /// and acknowledged messages lost or duplicated.
    #[arg(long, conflicts_with_all = ["failover", "catchup"])]
    pub rolling: bool,
    /// The started nodes also serve HTTP (/metrics …) on free ports, to
    /// measure what the HTTP port costs.
    #[arg(long)]
    pub http: bool,
    /// Print one JSON object on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Keep the started cluster's data directories and logs.
    #[arg(long)]
    pub keep: bool,
    /// Every started node records its core inputs (`chorus node --record`)
    /// into <data dir>/rec/nodeN, kept with --keep: the recording overhead.
    #[arg(long)]
    pub record: bool,
    /// Start the cluster with TLS on every link (a fresh CA and node
    /// certificates in its directory); the load generator speaks TLS too.
    #[arg(long)]
    pub tls: bool,
    /// With --connect: speak TLS and verify the nodes against this CA.
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub ca: Option<std::path::PathBuf>,
    /// Fan-out: this many subscribers of one room, spread over the nodes
    /// and --transport (in worker processes, at most 15,000 each; a started
    /// cluster gets a node per 18,000). One publisher sends --publish
    /// messages at --rate (default 50/s) of --size bytes. Reports sessions
    /// per node, RSS per idle session, deliveries/s and send→received
    /// latency; fails unless every subscriber got every message in order.
    #[arg(long, value_name = "N", conflicts_with_all = ["failover", "catchup", "rolling"])]
    pub subscribers: Option<u64>,
    /// Fan-out: the subscribers' transports, assigned round-robin.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "json,ws")]
    pub transport: Vec<fanout::Transport>,
    /// Fan-out: messages to publish.
    #[arg(long, default_value_t = 200)]
    pub publish: u64,
    /// Fan-out: the room.
    #[arg(long, default_value = "fanout")]
    pub room: String,
    /// Fan-out: worker processes holding the subscribers (default: one per
    /// 15,000, at least two from 2,000 subscribers on).
    #[arg(long)]
    pub workers: Option<u64>,
    /// Fan-out with --connect: the nodes' HTTP addresses (for /ws), in the
    /// order of --connect.
    #[arg(long, value_delimiter = ',')]
    pub http_connect: Vec<String>,
    /// Internal: run as a fan-out worker (spec on stdin).
    #[arg(long, hide = true)]
    pub fanout_worker: bool,
}

/// Where client connections go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Every node, round-robin (followers forward to the leader).
    All,
    /// The leader only.
    Leader,
    /// Followers only.
    Followers,
}

/// Monotonic microseconds since the bench started; shared by every thread.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
    /// `now_us() + 1`, saturated to u32 (0 is kept for "never").
    pub fn now_us1(&self) -> u32 {
        (self.now_us() + 1).min(u64::from(u32::MAX)) as u32
    }
}

fn resolve(list: &[String]) -> Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for s in list {
        let a = s
            .to_socket_addrs()
            .with_context(|| format!("bad address {s:?} (expected host:port)"))?
            .next()
            .with_context(|| format!("{s:?} resolves to nothing"))?;
        out.push(a);
    }
    Ok(out)
}

impl Args {
    fn validate(&self) -> Result<()> {
        if self.clients == 0 || self.window == 0 || self.messages == 0 {
            bail!("--clients, --window and --messages must be at least 1");
        }
        if self.messages > 50_000_000 {
            bail!("--messages is capped at 50,000,000 (per-message bookkeeping stays in memory)");
        }
        if self.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            bail!("--rate must be positive");
        }
        if self.size > 512 * 1024 {
            bail!("--size must be at most 512 KiB (nodes bound a line to 1 MiB)");
        }
        if (self.failover || self.catchup || self.rolling) && !self.connect.is_empty() {
            bail!("--failover, --catchup and --rolling stop nodes, so they need a cluster started by the bench (drop --connect)");
        }
        Ok(())
    }

    fn max_duration(&self) -> Duration {
        Duration::from_secs_f64(self.max_seconds.clamp(0.5, 3600.0))
    }
}

/// Runs `chorus bench`; exit code 1 if a check failed (lost, duplicated or
/// reordered messages, or an incomplete run).
pub fn run(args: Args) -> Result<ExitCode> {
    if args.fanout_worker {
        return fanout::worker::run();
    }
    args.validate()?;
    cluster::serve_http(args.http);
    if args.tls {
        proto::use_tls_certs(args.nodes)?;
    } else if let Some(ca) = &args.ca {
        proto::set_tls(crate::tls_dial::from_ca(Some(ca))?);
    }
    let report = if let Some(n) = args.subscribers {
        fanout::run(&args, n)?
    } else if args.rolling {
        rolling::run(&args)?
    } else if args.failover {
        failover::run(&args)?
    } else if args.catchup {
        catchup::run(&args)?
    } else {
        let mut cluster = if args.connect.is_empty() {
            let (c, _, _) = cluster::Cluster::start_elected(
                args.nodes,
                args.heartbeat_ms,
                args.leader_timeout_ms,
                args.keep,
                args.record,
            )?;
            Some(c)
        } else {
            None
        };
        let addrs = match &cluster {
            Some(c) => c.addrs(),
            None => resolve(&args.connect)?,
        };
        phase::steady(&args, &addrs, cluster.as_mut())?
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
