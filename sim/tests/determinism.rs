//! A run is a pure function of its seed: the same seed twice gives the same
//! digest (swarm runs and scripted scenarios), and building the text trace
//! does not change what happens.

use chorus_sim::explore::run_seed;
use chorus_sim::scenario;

#[test]
fn swarm_seed_twice_same_digest() {
    for seed in 0..24u64 {
        let a = run_seed(seed, None, false);
        let b = run_seed(seed, None, false);
        assert_eq!(a.digest, b.digest, "seed {seed:#x} diverged");
        assert_eq!((a.steps, a.sim_ms), (b.steps, b.sim_ms), "seed {seed:#x}");
    }
}

#[test]
fn tracing_does_not_change_the_run() {
    for seed in [3u64, 17, 0xdead_beef] {
        let quiet = run_seed(seed, None, false);
        let traced = run_seed(seed, None, true);
        assert_eq!(quiet.digest, traced.digest, "seed {seed:#x}");
        assert!(!traced.trace.is_empty());
    }
}

#[test]
fn different_seeds_differ() {
    let a = run_seed(1, None, false);
    let b = run_seed(2, None, false);
    assert_ne!(a.digest, b.digest);
}

#[test]
fn scenario_twice_same_trace() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/leader_failure.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let scn = scenario::parse(path, &text).unwrap();
    let a = scenario::run(&scn, None, true);
    let b = scenario::run(&scn, None, true);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.trace, b.trace);
    let other = scenario::run(&scn, Some(2), true);
    assert!(other.passed(), "{}", other.verdict());
}
