//! The swarm inside the test suite: 3000 seeds (two halves, so `cargo test`
//! runs them on two cores), zero violations, and every required fault class
//! exercised. A failure prints the one-line command that reproduces it.

use chorus_sim::explore::{explore, Summary};

fn sweep(start: u64, count: u64) -> Summary {
    let mut failures = Vec::new();
    let summary = explore(start, count, 1, None, |r| {
        if !r.passed() {
            failures.push(format!(
                "seed {:#x} ({}): {}\n  repro: {}",
                r.seed,
                r.options,
                r.violations[0],
                r.repro(None)
            ));
        }
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let missing = summary.coverage.missing();
    assert!(
        missing.is_empty(),
        "never exercised: {missing:?}\n{}",
        summary.coverage
    );
    summary
}

#[test]
fn swarm_first_half() {
    sweep(0, 1500);
}

#[test]
fn swarm_second_half() {
    sweep(1500, 1500);
}

/// Retention by age alone (`retain_ms`, no entry bound) compacts logs in
/// the swarm: the seeds that draw it see compactions and installs, and no
/// violation.
#[test]
fn retention_by_age_alone_compacts_without_a_violation() {
    let seeds: Vec<u64> = (0..4000u64)
        .filter(|&s| {
            let o = chorus_sim::explore::draw(s, None);
            o.sim.snapshots.is_some_and(|(_, retain)| retain == 0) && o.sim.retain_ms > 0
        })
        .take(40)
        .collect();
    assert!(seeds.len() >= 20, "too few age-only seeds: {seeds:?}");
    let mut compactions = 0;
    for s in seeds {
        let r = chorus_sim::explore::run_seed(s, None, false);
        assert!(r.passed(), "seed {s:#x}: {:?}", r.violations);
        compactions += r.coverage.compactions;
    }
    assert!(compactions > 0, "age retention never compacted");
}
