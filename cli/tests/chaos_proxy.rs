//! `chorus chaos` with the proxy faults: five real nodes whose peer links
//! run through the harness's TCP proxy, for 25 s of delays and stalls mixed
//! with crashes and splits, then the heal and the log/ack verdict. Asserts
//! exit 0, no violation, delays and stalls injected, and the proxy really
//! carried the peer traffic (chunks delayed and held). Needs root,
//! iproute2, nftables (with NAT) and strace; elsewhere it is skipped with
//! a message saying why. Bounded at 60 s (then SIGTERM, SIGKILL, by PID).
//! A file of its own: one harness at a time owns the host-wide lock, and
//! tests in one file run in parallel.

#[path = "common/chaos.rs"]
mod chaos;

use chaos::{run_chaos, skip_reason};
use std::time::Duration;

const SEED: &str = "0xd1";

/// The number after `label` on the report line that starts with it.
fn count(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` line in the report:\n{report}"))
}

/// The number just before `what` on the `proxy:` line.
fn proxy_count(report: &str, what: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("proxy: "))
        .unwrap_or_else(|| panic!("no proxy line in the report:\n{report}"));
    let before = line.split(what).next().unwrap_or_default();
    before
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{what}` count in `{line}`"))
}

#[test]
fn delays_and_stalls_through_the_proxy_lose_nothing() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED chorus chaos proxy test: {why}");
        return;
    }
    let seed = std::env::var("CHORUS_CHAOS_SEED").unwrap_or_else(|_| SEED.into());
    let args = [
        "--nodes",
        "5",
        "--seed",
        &seed,
        "--duration",
        "25",
        "--converge-timeout",
        "20",
        "--faults",
        "delay,stall,kill,split",
    ];
    let run = run_chaos(&args, Duration::from_secs(60), Duration::from_secs(5));
    let report = run.report;
    let status = run.status.expect("chorus chaos overstayed its 60 s bound");
    assert!(
        status.success(),
        "chorus chaos failed ({status}):\n{report}\n{}",
        run.stderr
    );
    assert!(report.contains("violations: 0"), "{report}");
    assert!(count(&report, "delay: slow links (proxy)") > 0, "{report}");
    assert!(
        count(&report, "stall: frozen links (proxy)") > 0,
        "{report}"
    );
    assert!(proxy_count(&report, "peer connections") >= 20, "{report}");
    assert!(proxy_count(&report, "chunks delayed") > 0, "{report}");
    assert!(proxy_count(&report, "held by a stall") > 0, "{report}");
}
