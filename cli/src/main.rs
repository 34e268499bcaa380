//! The `chorus` command: one binary for running nodes, chatting, a local
//! cluster, the simulator, benchmarks and log inspection. Each subcommand lives
//! in its own module; this file only parses arguments and dispatches.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod certs;
mod chaos;
mod client;
mod config;
mod log_cmd;
mod node_cmd;
mod replay_cmd;
mod signals;
mod sim_cmd;
mod status_cmd;
mod tls_dial;
mod up;
mod user_cmd;

/// chorus: a replicated chat cluster with one total order.
#[derive(Debug, Parser)]
#[command(name = "chorus", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one node: `chorus node --config configs/node1.toml`.
    Node(node_cmd::Args),
    /// Inspect (as JSON lines) or repair a node's durable log.
    Log(log_cmd::Args),
    /// Deterministic simulator: scripted scenarios and random swarms.
    Sim(sim_cmd::Args),
    /// Chat client (full-screen on a terminal, line mode in pipes); fails over
    /// between nodes.
    Client(client::Args),
    /// A local cluster in one command: N nodes and a client on node 1.
    Up(up::Args),
    /// Load generator and failover timer: throughput, latency percentiles,
    /// CPU and RSS per node, against a started or a running cluster.
    Bench(bench::Args),
    /// One table of a running cluster (role, term, leader, commit, lag,
    /// sessions, uptime) from the nodes' HTTP ports; exit 1 if a node is
    /// unreachable or there is no leader.
    Status(status_cmd::Args),
    /// TLS certificates: a cluster CA (`certs init DIR`) and node
    /// certificates signed by it (`certs node N --dir DIR --host H`).
    Certs(certs::Args),
    /// Accounts: `user add|passwd|disable NAME --connect HOST:PORT` (an
    /// operator, with the cluster secret), `user hash-bench`.
    User(user_cmd::Args),
    /// Chaos harness (root): a real cluster in network namespaces through
    /// seeded crashes, pauses, partitions and packet loss; checks the logs.
    Chaos(chaos::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Node(a) => node_cmd::run(a),
        Cmd::Log(a) => log_cmd::run(a),
        Cmd::Sim(a) => sim_cmd::run(a),
        Cmd::Client(a) => client::run(a),
        Cmd::Up(a) => up::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Chaos(a) => chaos::run(a),
        Cmd::Status(a) => status_cmd::run(a),
        Cmd::Certs(a) => certs::run(a),
        Cmd::User(a) => user_cmd::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
