//! The checker is not vacuous: a core with a deliberately broken rule must
//! make the swarm report a violation within a bounded number of seeds.

use chorus_core::InjectedBug;
use chorus_sim::explore::run_seed;

/// The first seed below `bound` whose run reports a violation.
fn first_failing(bug: InjectedBug, bound: u64) -> Option<(u64, String)> {
    (0..bound).find_map(|seed| {
        let r = run_seed(seed, Some(bug), false);
        r.violations.first().map(|v| (seed, v.to_string()))
    })
}

#[test]
fn commit_without_majority_is_caught() {
    let found = first_failing(InjectedBug::CommitWithoutMajority, 10);
    assert!(found.is_some(), "no violation in 10 seeds");
}

#[test]
fn skipping_the_leader_sync_is_caught() {
    let found = first_failing(InjectedBug::SkipLeaderSync, 30);
    assert!(found.is_some(), "no violation in 30 seeds");
}

#[test]
fn a_leader_counting_its_own_copy_before_its_fsync_is_caught() {
    // Only the seeds with asynchronous disks can show it (about half).
    let found = first_failing(InjectedBug::LeaderCountsItselfEarly, 60);
    let (seed, v) = found.expect("no violation in 60 seeds");
    assert!(v.contains("durabl"), "seed {seed}: {v}");
}
