//! `chorus chaos` in CI: five real nodes in network namespaces through the
//! 180 s of seeded faults issue 5 asks for (crashes, power losses, pauses, partitions, packet
//! loss, delays and stalls through the proxy), then the heal and the
//! log/ack verdict. Needs root, iproute2,
//! nftables and strace (`.ci/run` installs them); elsewhere it is skipped
//! with a message saying why. The seed is fixed so a failure reproduces
//! (`CHORUS_CHAOS_SEED` picks another). Bounded: the harness is stopped
//! (SIGTERM, then SIGKILL, by PID) if it overstays.

#[path = "common/chaos.rs"]
mod chaos;

use chaos::{run_chaos, skip_reason};
use std::time::Duration;

const DURATION_S: u64 = 180;
const SEED: &str = "0xc1";

#[test]
fn five_nodes_survive_seeded_faults_without_a_violation() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED chorus chaos test: {why}");
        return;
    }
    let seed = std::env::var("CHORUS_CHAOS_SEED").unwrap_or_else(|_| SEED.into());
    let duration = DURATION_S.to_string();
    let args = ["--nodes", "5", "--seed", &seed, "--duration", &duration];
    let run = run_chaos(
        &args,
        Duration::from_secs(DURATION_S + 150),
        Duration::from_secs(10),
    );
    let (report, err) = (run.report, run.stderr);
    let status = run.status;
    let status = status.expect("chorus chaos overstayed its bound");
    assert!(
        status.success(),
        "chorus chaos failed ({status}):\n{report}\n{err}"
    );
    assert!(report.contains("violations: 0"), "{report}");
    let faults: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("faults injected: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a fault count in the report");
    // Loose bounds that catch a planner that stopped drawing, not a speed
    // (a quiet 2-vCPU box draws about 1,100, 110 of each kind).
    assert!(
        faults >= 300,
        "only {faults} faults in {DURATION_S} s:\n{report}"
    );
    let per_kind: Vec<u64> = report
        .lines()
        .skip_while(|l| !l.starts_with("faults injected: "))
        .skip(1)
        .take(10)
        .map(|l| {
            l.split_whitespace()
                .last()
                .and_then(|n| n.parse().ok())
                .expect("a count per kind")
        })
        .collect();
    assert_eq!(per_kind.len(), 10, "{report}");
    assert!(per_kind.iter().all(|&n| n >= 10), "{report}");
    eprintln!("{report}");
}
