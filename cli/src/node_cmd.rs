//! `chorus node --config FILE`: runs one node in the foreground until
//! SIGTERM/SIGINT (a clean stop after the current loop iteration: what is
//! not durable was never acknowledged; also as PID 1 in a container, where
//! the default action would ignore SIGTERM), SIGKILL, or a fatal error. Logs go to stderr (`RUST_LOG` filters, default `info`).
//! Exit status: 0 never (a node runs until stopped), 2 on a config or startup
//! error, 1 on a fatal runtime error (storage failure): each printed as one
//! line that says what to fix.

use crate::config;
use chorus_runtime_mio::{
    unsafe_ack_from_env, unsafe_skip_fsync_from_env, RecordOptions, Runtime, ShutdownHandle,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run one chorus node.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Config keys (TOML, or the seed's YAML with .yml/.yaml):\n  \
    node_id, host, port, seed_nodes = [{node_id, host, port}], heartbeat_interval_ms (800),\n  \
    leader_timeout_ms (2500), log_dir (data/node<ID>), cluster_secret, voters (self + seeds),\n  \
    max_line_bytes (1048576), log_cache_entries (4096), log_segment_bytes (67108864),\n  \
    dedup_window_ids (10000000), dedup_window_ms (86400000), snapshot_every (100000; 0: never),\n  \
    retain_entries (0: keep all history), retain_ms (0: no age bound), listen_host (host),\n  \
    http_port (none: no HTTP; serves /metrics /healthz /readyz /status), http_host (listen_host),\n  \
    ready_max_lag (1000), http_max_connections (64), http_timeout_ms (10000),\n  \
    max_connections (1024; at most the open-file limit minus a reserve), \n  \
    slow_subscriber_ms (10000), \
    irc_port (none: no IRC gateway), irc_host (listen_host), irc_join_replay (50), irc_tls_port (none; needs [tls]),\n  \
    max_connections_per_address (256), client_rate_per_sec (10000),\n  \
    client_rate_burst (20000), [tls] cert, key, ca (PEM paths; absent: plaintext, with a warning).\n\
    SIGHUP re-reads the [tls] files (new connections use them).\n\
    Logs: stderr; RUST_LOG=debug shows heartbeats.\n\
    CHORUS_UNSAFE_ACK_BEFORE_FSYNC=1 acknowledges before fsync, CHORUS_UNSAFE_SKIP_FSYNC=1 never\n\
    fsyncs the log: deliberately broken builds, chaos-harness tests only."
)]
pub struct Args {
    /// The node's config file (e.g. configs/node1.toml).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Stop (SIGTERM) when the process with this PID, our parent, exits, even
    /// by SIGKILL. `chorus up` passes its own PID so no node outlives it.
    #[arg(long, value_name = "PID")]
    pub exit_with_parent: Option<i32>,
    /// Record every input of the core into DIR (a new incarnation per start),
    /// for `chorus sim replay DIR`. Format: core/src/recording.rs.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Bound on the recording files in DIR together; the oldest incarnations
    /// go first, and a run that alone reaches it stops being recorded.
    #[arg(long, value_name = "MIB", default_value_t = 1024, requires = "record")]
    pub record_max_mb: u64,
    /// `text` (one human line per event) or `json` (one JSON object per
    /// line: timestamp, level, fields.message, as the text shows them).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Overrides the config's node_id; when seed_nodes lists that id, this
    /// node's host and port are taken from there (one shared config for
    /// every member, e.g. a Kubernetes ConfigMap).
    #[arg(long, env = "CHORUS_NODE_ID", conflicts_with = "node_id_from_hostname")]
    pub node_id: Option<u64>,
    /// node_id = 1 + the ordinal ending the hostname (`chorus-0` is node 1,
    /// `chorus-2` node 3: a StatefulSet's pods); then as --node-id.
    #[arg(long)]
    pub node_id_from_hostname: bool,
    /// Overrides the config's cluster_secret (e.g. from a Kubernetes Secret),
    /// so the secret need not be in the config file.
    #[arg(long, env = "CHORUS_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
}

/// The pod ordinal at the end of `hostname` (`web-12` -> 12).
pub fn ordinal(hostname: &str) -> Option<u64> {
    let (_, n) = hostname.trim().rsplit_once('-')?;
    n.parse().ok()
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// How `chorus node` writes its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Asks the kernel to send us SIGTERM when our parent dies, then checks the
/// parent is still the one that started us (it may have died before the ask).
fn exit_with_parent(parent: i32) -> anyhow::Result<()> {
    use rustix::process::{getppid, set_parent_process_death_signal, Signal};
    set_parent_process_death_signal(Some(Signal::TERM))?;
    if getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent) {
        anyhow::bail!("the process that started this node (PID {parent}) is gone; not starting");
    }
    Ok(())
}

/// Stops the node on SIGTERM or SIGINT (from a thread: the loop only sees
/// the shutdown flag and its waker).
fn stop_on_signal(handle: ShutdownHandle) -> Result<(), chorus_runtime_mio::RuntimeError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(chorus_runtime_mio::RuntimeError::Poll)?;
    std::thread::Builder::new()
        .name("chorus-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!("signal {sig}: stopping");
                handle.shutdown();
            }
        })
        .map_err(chorus_runtime_mio::RuntimeError::Poll)?;
    Ok(())
}

/// Logs to stderr in `format`, `RUST_LOG` or `info`.
pub fn init_tracing_as(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if format == LogFormat::Json {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_current_span(false)
            .try_init();
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// SIGHUP: re-read the TLS certificates (a thread waits for the signal).
fn reload_on_sighup(
    handle: chorus_runtime_mio::ReloadHandle,
) -> Result<(), chorus_runtime_mio::RuntimeError> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("chorus-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::info!("SIGHUP: reloading TLS certificates");
                handle.reload();
            }
        })?;
    Ok(())
}

/// Raises this process's open-file limit to its hard limit (the soft
/// limit is often 1024, which would cap a node at about 1,000 sessions)
/// and returns the limit now in force (None if it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!("cannot raise the open-file limit to {:?}: {e}", lim.maximum);
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Files a node keeps open besides client connections: its log, the
/// listener, poll and waker, peer links, the HTTP port's connections.
const FD_RESERVE: usize = 128;

/// `max_connections` within what the open-file limit allows: past it an
/// accept fails (EMFILE) and the connection waits in the backlog unanswered,
/// whereas under `max_connections` the node answers `busy` at once.
fn fit_connections(opts: &mut chorus_runtime_mio::NodeOptions, fd_limit: Option<u64>) {
    let Some(limit) = fd_limit else { return };
    let http = opts.http.as_ref().map_or(0, |h| h.max_connections);
    let room = (limit as usize).saturating_sub(FD_RESERVE + http + 2 * opts.core.peers.len());
    let l = &mut opts.limits;
    if l.max_connections > room {
        tracing::warn!(
            "max_connections {} is above what the open-file limit {limit} allows; using {room} \
             (raise `ulimit -Hn` to hold more)",
            l.max_connections
        );
        l.max_connections = room.max(1);
    }
    tracing::info!(
        "open-file limit {limit}; up to {} connections",
        l.max_connections
    );
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_tracing_as(args.log_format);
    let fd_limit = raise_fd_limit();
    if let Some(parent) = args.exit_with_parent {
        exit_with_parent(parent)?;
    }
    let mut file = config::load(&args.config)?;
    let id = if args.node_id_from_hostname {
        let h = hostname();
        let n = ordinal(&h).ok_or_else(|| {
            anyhow::anyhow!("--node-id-from-hostname: hostname {h:?} does not end in -<ordinal>")
        })?;
        Some(n + 1)
    } else {
        args.node_id
    };
    if let Some(id) = id {
        file = config::with_node_id(file, id)
            .map_err(|m| anyhow::anyhow!("config {}: {m}", args.config.display()))?;
    }
    if let Some(s) = args.cluster_secret.filter(|s| !s.is_empty()) {
        file.cluster_secret = Some(s);
    }
    let mut opts = file.to_options();
    fit_connections(&mut opts, fd_limit);
    opts.unsafe_ack_before_fsync = unsafe_ack_from_env();
    opts.unsafe_skip_fsync = unsafe_skip_fsync_from_env();
    if let Some(dir) = args.record {
        let mut r = RecordOptions::new(dir);
        r.max_bytes = args.record_max_mb.saturating_mul(1 << 20);
        // 16 segments under the bound: deleting a whole old run frees room
        // in small steps, and no segment file grows huge.
        r.segment_bytes = (r.max_bytes / 16).clamp(1 << 20, 64 << 20);
        opts.record = Some(r);
    }
    let result = Runtime::start(opts).and_then(|rt| {
        stop_on_signal(rt.shutdown_handle())?;
        reload_on_sighup(rt.reload_handle())?;
        rt.run()
    });
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ chorus_runtime_mio::RuntimeError::Storage { .. }) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ordinals_of_pod_names() {
        assert_eq!(super::ordinal("chorus-0"), Some(0));
        assert_eq!(super::ordinal("my-chat-12\n"), Some(12));
        assert_eq!(super::ordinal("chorus"), None);
        assert_eq!(super::ordinal("chorus-x"), None);
    }
}
