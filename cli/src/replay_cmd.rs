//! `chorus sim replay DIR…`: replays recordings made with `--record`, one
//! directory per node, each checked step for step against its recorded
//! action digest; with two or more nodes, the cross-node invariants too.
//!
//! A DIR without recording files but with `node*` subdirectories (what
//! `chorus up --record DIR` / `chorus chaos --record DIR` write) stands for
//! those subdirectories.
//!
//! Exit codes: 0 every node replayed identically (and the cross-node check
//! passed), 1 a divergence or a violation, 2 a recording is unusable.

use chorus_sim::replay::{self, cross, ReplayOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `chorus sim replay` arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// One recording directory per node (`chorus node --record DIR`), or the
    /// parent DIR of `chorus up/chaos --record DIR`.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print the real run as a trace in the simulator's format.
    #[arg(long)]
    pub trace: bool,
    /// First step to trace (step numbers run across a node's incarnations).
    #[arg(long, default_value_t = 0, requires = "trace")]
    pub from: u64,
    /// Last step to trace.
    #[arg(long, default_value_t = u64::MAX, requires = "trace")]
    pub to: u64,
}

/// `dir`'s `node*` subdirectories if it holds no recording itself.
fn expand(dir: &Path) -> Vec<PathBuf> {
    let has_runs = replay::files::runs(dir).is_ok_and(|r| !r.is_empty());
    if has_runs {
        return vec![dir.to_path_buf()];
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("node"))
        })
        .collect();
    subs.sort();
    if subs.is_empty() {
        vec![dir.to_path_buf()]
    } else {
        subs
    }
}

pub fn run(args: ReplayArgs) -> ExitCode {
    let opts = ReplayOptions {
        trace: args.trace,
        from: args.from,
        to: args.to,
    };
    let dirs: Vec<PathBuf> = args.dirs.iter().flat_map(|d| expand(d)).collect();
    let mut out = std::io::stdout().lock();
    let mut nodes = Vec::new();
    for d in &dirs {
        match replay::replay_dir(d, opts) {
            Ok(r) => nodes.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut ok = true;
    for n in &nodes {
        let _ = out.write_all(n.trace.as_bytes());
        let verdict = if n.identical() {
            "identical"
        } else {
            "NOT identical"
        };
        let _ = writeln!(
            out,
            "{}: {} incarnation(s), {} steps replayed: {verdict}",
            n.dir.display(),
            n.runs.len(),
            n.steps()
        );
        for r in &n.runs {
            if let Some(c) = &r.cut {
                let _ = writeln!(
                    out,
                    "  incarnation {}: replayed {} steps, up to where the recording ends ({c})",
                    r.incarnation, r.steps
                );
            }
        }
        for e in &n.errors {
            let _ = writeln!(out, "  ERROR {e}");
        }
        if let Some(d) = &n.divergence {
            let _ = write!(out, "  {d}");
        }
        ok &= n.identical();
    }
    if nodes.len() > 1 {
        let facts: Vec<&cross::RunFacts> = nodes
            .iter()
            .flat_map(|n| n.runs.iter().map(|r| &r.facts))
            .collect();
        let (violations, canon) = cross::check(&facts);
        let acks: usize = facts.iter().map(|f| f.acked.len()).sum();
        let _ = writeln!(
            out,
            "cross-node check over {} nodes: {canon} committed entries, {acks} acknowledgements, {} violations",
            nodes.len(),
            violations.len()
        );
        for v in &violations {
            let _ = writeln!(out, "  VIOLATION {v}");
        }
        ok &= violations.is_empty();
    }
    let _ = writeln!(out, "verdict: {}", if ok { "PASS" } else { "FAIL" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
