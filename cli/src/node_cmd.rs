//! `chorus node --config FILE`: runs one node in the foreground until killed
//! or a fatal error. Logs go to stderr (`RUST_LOG` filters, default `info`).
//! Exit status: 0 never (a node runs until stopped), 2 on a config or startup
//! error, 1 on a fatal runtime error (storage failure): each printed as one
//! line that says what to fix.

use crate::config;
use chorus_runtime_mio::{unsafe_ack_from_env, unsafe_skip_fsync_from_env};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run one chorus node.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Config keys (TOML, or the seed's YAML with .yml/.yaml):\n  \
    node_id, host, port, seed_nodes = [{node_id, host, port}], heartbeat_interval_ms (800),\n  \
    leader_timeout_ms (2500), log_dir (data/node<ID>), cluster_secret, voters (self + seeds),\n  \
    max_line_bytes (1048576), max_connections_per_address (256), client_rate_per_sec (10000),\n  \
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

/// Logs to stderr, `RUST_LOG` or `info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_tracing();
    if let Some(parent) = args.exit_with_parent {
        exit_with_parent(parent)?;
    }
    let file = config::load(&args.config)?;
    let mut opts = file.to_options();
    opts.unsafe_ack_before_fsync = unsafe_ack_from_env();
    opts.unsafe_skip_fsync = unsafe_skip_fsync_from_env();
    let runtime = chorus_runtime_mio::Runtime::start(opts);
    let result = runtime.and_then(|rt| {
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
