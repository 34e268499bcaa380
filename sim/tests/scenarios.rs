//! Every scripted scenario in `scenarios/` passes, and its trace matches the
//! reviewed snapshot (`cargo insta review` after an intended change; CI runs
//! with `INSTA_UPDATE=no`, so an unreviewed change fails).

use chorus_sim::scenario;
use std::path::PathBuf;

const SCENARIOS: &[&str] = &[
    "normal_operation",
    "leader_failure",
    "catch_up",
    "concurrent_clients",
    "stale_leader_rejoin",
    "minority_partition",
    "election_cancellation",
    "rooms_and_people",
    "rooms_leader_kill",
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn check(name: &str) {
    let path = dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).expect("scenario file");
    let scn = scenario::parse(&path.display().to_string(), &text).expect("valid scenario");
    let out = scenario::run(&scn, None, true);
    assert!(
        out.passed(),
        "{}\nviolations: {:#?}\nfailed: {:#?}",
        out.verdict(),
        out.violations,
        out.failed
    );
    let snap = format!("{}{}\n", out.trace, out.verdict());
    insta::assert_snapshot!(name, snap);
}

#[test]
fn normal_operation() {
    check("normal_operation");
}

#[test]
fn leader_failure() {
    check("leader_failure");
}

#[test]
fn catch_up() {
    check("catch_up");
}

#[test]
fn concurrent_clients() {
    check("concurrent_clients");
}

#[test]
fn stale_leader_rejoin() {
    check("stale_leader_rejoin");
}

#[test]
fn minority_partition() {
    check("minority_partition");
}

#[test]
fn election_cancellation() {
    check("election_cancellation");
}

#[test]
fn rooms_and_people() {
    check("rooms_and_people");
}

#[test]
fn rooms_leader_kill() {
    check("rooms_leader_kill");
}

/// A scenario file without a snapshot test would silently go unchecked.
#[test]
fn every_scenario_file_is_tested() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("scenarios dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "toml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    files.sort();
    let mut known: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(files, known, "add a test for every file in scenarios/");
}
