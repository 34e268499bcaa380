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
