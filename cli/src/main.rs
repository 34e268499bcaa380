//! The `chorus` command: one binary for running nodes, chatting, a local
//! cluster, the simulator, benchmarks and log inspection. Each subcommand lives
//! in its own module; this file only parses arguments and dispatches.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod sim_cmd;

/// chorus: a replicated chat cluster with one total order.
#[derive(Debug, Parser)]
#[command(name = "chorus", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Deterministic simulator: scripted scenarios and random swarms.
    Sim(sim_cmd::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Sim(a) => sim_cmd::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
