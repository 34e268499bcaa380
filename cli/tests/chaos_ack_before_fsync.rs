//! The chaos harness catches a runtime that acknowledges before its fsync:
//! five real nodes started with `CHORUS_UNSAFE_ACK_BEFORE_FSYNC=1` (every
//! effect, APPEND_ACKs and client acks included, goes out before the records
//! are written and fdatasynced), every fdatasync slowed by 20 ms through
//! strace fault injection (`--slow-fsync-ms`, widening the window in which an
//! acknowledged record is not durable), through 35 s of power losses. The
//! power losses drop what was not fsynced, and the harness's ordinary
//! verdict must report an acknowledged message lost or two nodes
//! disagreeing on the order (exit 1, with the line that reproduces the run).
//! A catch is likely, not certain, in one 35 s run (4 of 5 seeds measured):
//! up to three seeds are tried, and the test fails only if none catches it
//! (so a broken build passes with odds well under 1 %, not one in five).
//! Ignored in CI: on a loaded 2-core machine the catch rate fell far below
//! that (0x51, 0x52, 0x53 all missed it, with fsyncs slowed by 20 or 50 ms),
//! and a gate that fails by chance blocks every submission. Run it with
//! `cargo test --release -p chorus-cli --test chaos_ack_before_fsync -- --ignored`.
//! Without the slowed fsync the same run is not caught (RELIABILITY.md). Needs root, iproute2, nftables
//! and strace; elsewhere it is skipped with a message saying why. Bounded:
//! under 80 s a run (three at most), the harness is stopped (SIGTERM, then SIGKILL, by PID) if it
//! overstays.

#[path = "common/chaos.rs"]
mod chaos;

use chaos::{run_chaos, skip_reason};
use std::time::{Duration, Instant};

const DURATION_S: u64 = 35;
const SEEDS: [&str; 3] = ["0x51", "0x52", "0x53"];

#[test]
#[ignore = "probabilistic: on a loaded 2-core box three 35 s runs missed it (CI 2026-12-04); run by hand with --ignored"]
fn the_harness_catches_a_build_that_acks_before_its_fsync() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED chorus chaos ack-before-fsync test: {why}");
        return;
    }
    let started = Instant::now();
    let mut missed = Vec::new();
    for seed in SEEDS {
        match attempt(seed) {
            Ok(()) => {
                println!(
                    "caught with seed {seed} after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            Err(why) => missed.push(format!("seed {seed}: {why}")),
        }
    }
    panic!("the broken build was not caught:\n{}", missed.join("\n"));
}

/// One harness run; Ok if it caught the broken build the way it must.
fn attempt(seed: &str) -> Result<(), String> {
    let duration = DURATION_S.to_string();
    let args = [
        "--nodes",
        "5",
        "--seed",
        seed,
        "--unsafe-ack-before-fsync",
        "--slow-fsync-ms",
        "20",
        "--faults",
        "power-loss",
        "--duration",
        &duration,
        "--converge-timeout",
        "10",
    ];
    let run = run_chaos(&args, Duration::from_secs(75), Duration::from_secs(3));
    let (report, err) = (run.report, run.stderr);
    let status = run.status.expect("chorus chaos overstayed its bound");
    if status.code() != Some(1) {
        return Err(format!("not caught ({status}):\n{report}\n{err}"));
    }
    assert!(report.contains("VIOLATIONS: "), "{report}");
    assert!(
        report.contains("(an acknowledged message was lost)")
            || report.contains(" disagree at seq "),
        "a violation, but neither a lost acknowledgement nor an order disagreement:\n{report}"
    );
    assert!(
        report.contains("reproduce: chorus chaos") && report.contains("--unsafe-ack-before-fsync"),
        "{report}"
    );
    // The harness keeps the logs of a failed run for the user; this failure
    // was the point, so its files go (bounded /tmp use across CI runs).
    if let Some(dir) = report
        .lines()
        .find_map(|l| l.strip_prefix("node logs and stderr kept in "))
    {
        let _ = std::fs::remove_dir_all(dir.trim());
    }
    Ok(())
}
