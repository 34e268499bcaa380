//! `chorus sim run FILE`, `chorus sim explore --seeds N` and `chorus sim
//! replay DIR…` (`replay_cmd.rs`): the deterministic simulator's command line.
//!
//! Exit codes: 0 all invariants and expectations held (and, for explore, every
//! required coverage counter is above zero); 1 something was violated; 2 the
//! scenario file or the arguments are unusable.

use chorus_core::InjectedBug;
use chorus_sim::explore;
use chorus_sim::scenario;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: SimCmd,
}

#[derive(Debug, clap::Subcommand)]
enum SimCmd {
    /// Run a scripted scenario (TOML), print its trace and a verdict line.
    #[command(
        after_help = "Exit status: 0 every invariant and expectation held, 1 something failed, 2 the file is unusable.\nScenario format: scenarios/README.md."
    )]
    Run {
        /// The scenario file, e.g. scenarios/leader_failure.toml.
        file: String,
        /// Master seed instead of the file's `seed` (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed)]
        seed: Option<u64>,
        /// Print only the verdict (and failures), not the trace.
        #[arg(long)]
        quiet: bool,
    },
    /// Random swarm: draw options and faults per seed, check safety after every
    /// step and liveness after the faults stop.
    #[command(
        after_help = "Exit status: 0 no violation and every fault class exercised, 1 otherwise.\nEach failure prints a one-line command that reproduces it."
    )]
    Explore {
        /// Number of seeds to run.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed (decimal or 0x-hex); seeds are start, start+1, ...
        #[arg(long, default_value = "0", value_parser = parse_seed)]
        start: u64,
        /// Worker threads (results are reported in seed order either way).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Print each run's trace (use with --seeds 1 to study a failure).
        #[arg(long)]
        trace: bool,
        /// Checker self-test: run a core with a deliberately broken rule:
        /// commit-without-majority, skip-leader-sync, leader-counts-itself-early
        /// (asynchronous-disk seeds only), accept-stale-term,
        /// promise-two-coordinators, deliver-past-gap, truncate-committed,
        /// never-reforward (liveness only). RELIABILITY.md has the catalogue.
        #[arg(long, value_parser = parse_bug)]
        inject_bug: Option<InjectedBug>,
    },
    /// Replay real nodes' recordings (`chorus node --record DIR`) and check
    /// them: step for step per node; with several nodes, cross-node invariants.
    #[command(
        after_help = "Exit status: 0 identical and every invariant held, 1 a divergence or violation, 2 unusable recording.\nFormat: core/src/recording.rs."
    )]
    Replay(crate::replay_cmd::ReplayArgs),
}

fn parse_bug(s: &str) -> Result<InjectedBug, String> {
    InjectedBug::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = InjectedBug::ALL.iter().map(|b| b.name()).collect();
        format!("{s:?} is not an injected bug; one of: {}", names.join(", "))
    })
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?} is not a seed (decimal or 0x-hex u64): {e}"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        SimCmd::Run { file, seed, quiet } => run_file(&file, seed, quiet),
        SimCmd::Replay(a) => Ok(crate::replay_cmd::run(a)),
        SimCmd::Explore {
            seeds,
            start,
            jobs,
            trace,
            inject_bug,
        } => Ok(explore_cmd(seeds, start, jobs, trace, inject_bug)),
    }
}

fn run_file(file: &str, seed: Option<u64>, quiet: bool) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {file}: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let scn = match scenario::parse(file, &text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let out = scenario::run(&scn, seed, !quiet);
    let mut stdout = std::io::stdout().lock();
    if !quiet {
        let _ = stdout.write_all(out.trace.as_bytes());
    }
    for v in &out.violations {
        let _ = writeln!(stdout, "VIOLATION {v}");
    }
    for f in &out.failed {
        let _ = writeln!(stdout, "EXPECTATION {f}");
    }
    let _ = writeln!(stdout, "{}", out.verdict());
    Ok(if out.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn explore_cmd(
    seeds: u64,
    start: u64,
    jobs: usize,
    trace: bool,
    bug: Option<InjectedBug>,
) -> ExitCode {
    let wall = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let summary = if trace {
        // Traces are built per run; keep it sequential and print as we go.
        let mut s = explore::Summary::default();
        for k in 0..seeds {
            let r = explore::run_seed(start.wrapping_add(k), bug, true);
            let _ = stdout.write_all(r.trace.as_bytes());
            report(&mut stdout, &r, bug);
            s.add(&r);
        }
        s
    } else {
        explore::explore(start, seeds, jobs, bug, |r| report(&mut stdout, r, bug))
    };
    let secs = wall.elapsed().as_secs_f64().max(1e-9);
    let _ = writeln!(stdout, "runs: {} ({} failed)", summary.runs, summary.failed);
    let _ = writeln!(
        stdout,
        "simulated: {:.1} s, committed entries: {}, slowest convergence after faults: {} ms",
        summary.sim_ms as f64 / 1000.0,
        summary.committed,
        summary.max_converged_ms
    );
    let _ = writeln!(
        stdout,
        "node steps: {} in {:.2} s wall on {} thread(s) = {:.0} steps/s",
        summary.steps,
        secs,
        jobs.max(1),
        summary.steps as f64 / secs
    );
    let _ = write!(stdout, "coverage:\n{}", summary.coverage);
    let missing = summary.coverage.missing();
    if !missing.is_empty() {
        let _ = writeln!(
            stdout,
            "coverage FAILED: never exercised {}",
            missing.join(", ")
        );
    }
    let ok = summary.failed == 0 && missing.is_empty();
    let _ = writeln!(stdout, "verdict: {}", if ok { "PASS" } else { "FAIL" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn report(out: &mut impl Write, r: &explore::RunReport, bug: Option<InjectedBug>) {
    if r.passed() {
        return;
    }
    let _ = writeln!(out, "FAIL seed {:#x} ({})", r.seed, r.options);
    for v in &r.violations {
        let _ = writeln!(out, "  {v}");
    }
    let _ = writeln!(
        out,
        "  repro: {}   (add --trace to print the run)",
        r.repro(bug)
    );
}
