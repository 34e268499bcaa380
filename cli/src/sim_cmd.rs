//! `chorus sim run FILE` and `chorus sim explore --seeds N` (being built).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the simulator commands are being built")
}
