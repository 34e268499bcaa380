//! The checker is not vacuous: a core with a deliberately broken rule must
//! make the swarm report a violation within a bounded number of seeds, and
//! the violation must come from the checker meant to catch it (a safety
//! invariant, or the liveness phase for the liveness-only bug).
//!
//! `catalogue_table` (ignored; run with `--ignored --nocapture`) measures the
//! RELIABILITY.md table: seeds and seconds to the first catch from 5 starts.

use chorus_core::InjectedBug;
use chorus_sim::explore::run_seed;
use std::time::Instant;

/// The first seed in `start..start + bound` whose run reports a violation.
fn first_failing(bug: InjectedBug, start: u64, bound: u64) -> Option<(u64, String)> {
    (start..start + bound).find_map(|seed| {
        let r = run_seed(seed, Some(bug), false);
        r.violations.first().map(|v| (seed, v.to_string()))
    })
}

/// Text the first violation of each bug must contain: which checker caught it.
fn expected(bug: InjectedBug) -> &'static [&'static str] {
    match bug {
        // Either the delivery or the durability check sees it first.
        InjectedBug::CommitWithoutMajority => &["delivered", "acked", "durable"],
        InjectedBug::SkipLeaderSync => &["delivered", "acked", "committed", "durable", "truncated"],
        InjectedBug::LeaderCountsItselfEarly => &["durabl"],
        InjectedBug::AcceptStaleTerm => &["term went back"],
        InjectedBug::PromiseTwoCoordinators => &["two leaders in"],
        // The rooms numbering folds every delivery and asserts contiguity, so
        // the core's own assertion usually fires before the checker's
        // contiguous-delivery check does.
        InjectedBug::DeliverPastGap => &[" after ", "the fold is contiguous"],
        InjectedBug::TruncateCommitted => &["truncated committed entry"],
        InjectedBug::NeverReforward => &["liveness: "],
        // Only seeds that bound the window can see it.
        InjectedBug::DedupWindowEarly => &["committed twice", "acked as"],
    }
}

#[test]
fn every_injected_bug_is_caught_by_its_checker_within_1000_seeds() {
    for bug in InjectedBug::ALL {
        let (seed, v) = first_failing(bug, 0, 1000)
            .unwrap_or_else(|| panic!("{}: no violation in 1000 seeds", bug.name()));
        assert!(
            expected(bug).iter().any(|e| v.contains(e)),
            "{} (seed {seed:#x}) caught by an unexpected check: {v}",
            bug.name()
        );
        println!("{}: seed {seed:#x}: {v}", bug.name());
    }
}

#[test]
#[ignore = "measurement for RELIABILITY.md (about a minute)"]
fn catalogue_table() {
    println!("| bug | caught by (first violation, start 0) | seeds to first catch (5 starts) | median | median s |");
    for bug in InjectedBug::ALL {
        let mut seeds = Vec::new();
        let mut secs = Vec::new();
        let mut first = String::new();
        for k in 0..5u64 {
            let start = k * 10_000;
            let t = Instant::now();
            let found = first_failing(bug, start, 5000);
            secs.push(t.elapsed().as_secs_f64());
            match found {
                Some((s, v)) => {
                    seeds.push(s - start + 1);
                    if first.is_empty() {
                        first = v;
                    }
                }
                None => seeds.push(u64::MAX),
            }
        }
        let mut sorted = seeds.clone();
        sorted.sort();
        let mut st = secs.clone();
        st.sort_by(f64::total_cmp);
        println!(
            "| {} | {first} | {seeds:?} | {} | {:.2} |",
            bug.name(),
            sorted[2],
            st[2]
        );
    }
}
