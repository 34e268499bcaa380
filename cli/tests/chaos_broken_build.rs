//! The chaos harness catches a deliberately broken build: five real nodes
//! started with `CHORUS_UNSAFE_SKIP_FSYNC=1` (they acknowledge messages but
//! never fsync their log) through 25 s of the ordinary seeded fault mix.
//! The harness knows nothing of the switch beyond passing it on; the power
//! losses drop what was never fsynced, and its ordinary verdict must report
//! an acknowledged message lost or two nodes disagreeing on the order (exit
//! 1, with the line that reproduces the run). Needs root, iproute2, nftables
//! and strace; elsewhere it is skipped with a message saying why. Bounded:
//! under 60 s, the harness is stopped (SIGTERM, then SIGKILL, by PID) if it
//! overstays.

#[path = "common/chaos.rs"]
mod chaos;

use chaos::{run_chaos, skip_reason};
use std::time::{Duration, Instant};

const DURATION_S: u64 = 25;
const SEED: &str = "0x51";

#[test]
fn the_harness_catches_a_build_that_never_fsyncs() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED chorus chaos broken-build test: {why}");
        return;
    }
    let started = Instant::now();
    let duration = DURATION_S.to_string();
    let args = [
        "--nodes",
        "5",
        "--seed",
        SEED,
        "--unsafe-skip-fsync",
        "--duration",
        &duration,
        "--converge-timeout",
        "10",
    ];
    let run = run_chaos(&args, Duration::from_secs(55), Duration::from_secs(3));
    let (report, err) = (run.report, run.stderr);
    let status = run.status;
    let status = status.expect("chorus chaos overstayed its bound");
    assert_eq!(
        status.code(),
        Some(1),
        "the broken build was not caught ({status}):\n{report}\n{err}"
    );
    assert!(report.contains("VIOLATIONS: "), "{report}");
    assert!(
        report.contains("(an acknowledged message was lost)")
            || report.contains(" disagree at seq "),
        "a violation, but neither a lost acknowledgement nor an order disagreement:\n{report}"
    );
    assert!(
        report.contains("reproduce: chorus chaos") && report.contains("--unsafe-skip-fsync"),
        "{report}"
    );
    println!("caught in {:.1} s", started.elapsed().as_secs_f64());
    // The harness keeps the logs of a failed run for the user; this failure
    // was the point, so its files go (bounded /tmp use across CI runs).
    if let Some(dir) = report
        .lines()
        .find_map(|l| l.strip_prefix("node logs and stderr kept in "))
    {
        let _ = std::fs::remove_dir_all(dir.trim());
    }
}
