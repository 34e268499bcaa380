//! Swarm seeds that found real core bugs, kept as regression tests. Each one
//! fails (liveness) if its fix is reverted, with the swarm's draw as of this
//! file (re-checked after core a5d5e89 and 9e3cda8). If `explore::draw` or
//! the core's timing changes, re-find such seeds by reverting the fix and
//! sweeping (`chorus sim explore --seeds 20000`).

use chorus_sim::explore::run_seed;

fn passes(seed: u64) {
    let r = run_seed(seed, None, false);
    assert!(
        r.passed(),
        "seed {seed:#x} ({}): {:?}\n  repro: {}",
        r.options,
        r.violations,
        r.repro(None)
    );
}

/// core ca7cd92: a deposed leader's client chat, truncated by the new leader,
/// went back to `pending` without the forward timer, and was never sequenced.
#[test]
fn truncated_chat_is_forwarded_again() {
    for seed in [0x109, 0x153, 0x4c1, 0x5cd] {
        passes(seed);
    }
}

/// core 3327f8a: catch-up past a diverged tail re-fetched the same batch
/// (from the requester's commit point) forever.
#[test]
fn catch_up_past_a_diverged_tail_progresses() {
    for seed in [0x36, 0x3a97, 0x445b] {
        passes(seed);
    }
}

/// Issue 14: with asynchronous disks, n3's SYNC_ACK reporting `22@t1` waited
/// for an fsync while the new leader's SEQ_CHAT cut 19.. and rewrote it in
/// t2; the fsync released the report with the cut, vouching for an entry n3's
/// durable log no longer held. The drivers' gate (`chorus_core::gate`) now
/// drops such a report; the checker demands the exact position be durable.
#[test]
fn a_truncation_overtaking_a_waiting_sync_ack_drops_it() {
    passes(0x309c79);
}

/// Found by the 1M-seed soak (issue 14) once slow disks widened the window: a
/// follower's stale catch-up timer asked the claimant it had just promised,
/// which was still fetching for its sync and answered with its stale log; the
/// follower let it overwrite a committed entry. Only a CATCHUP_RESP from a
/// node that leads its term (`leading`) may now overwrite a follower's log.
#[test]
fn a_follower_takes_entries_only_from_a_leading_leader() {
    for seed in [0xa07d, 0x14635] {
        passes(seed);
    }
}

/// Issue 16, found by sweeping the first snapshot seeds: an install dropped
/// the installer's uncommitted suffix with a chat its client still waited
/// for, which was then never sequenced (0x354); a leader that snapshots
/// faster than a follower downloads made the transfer start over forever
/// (0x3c: each transfer now keeps its image); a claimant's election ran out
/// while its sync source streamed a snapshot (0x544).
#[test]
fn installs_complete_and_lose_nothing() {
    for seed in [0x354, 0x3c, 0x544, 0x8f6] {
        passes(seed);
    }
}

/// The 100k-seed soak of issue 16: with an exactly-once window of a few
/// dozen ids, a follower still catching up re-forwarded chats that were
/// committed in entries it had yet to fetch; past the window each one was
/// committed again, putting it further behind: a storm that never ended
/// (0xa949 has no snapshots; it failed before them too). A follower now
/// re-forwards only once caught up to the leader's commit point.
#[test]
fn a_lagging_follower_does_not_reforward_into_a_duplicate_storm() {
    for seed in [0xa949, 0x2725, 0xe39e] {
        passes(seed);
    }
}

/// The 100k-seed soak with retention by age: a node restarted from a
/// snapshot whose log file fell short of it writes a marker (the log
/// continues after the snapshot), but still claimed the retained entries
/// before it and read them back from a file that no longer served them. A
/// restart that marks its log now starts its history after the snapshot
/// (and keeps the snapshot to serve).
#[test]
fn a_marked_restart_starts_its_history_after_the_snapshot() {
    for seed in [0x1d98, 0xeee6, 0xf710, 0x1256c, 0x1458f, 0x14c74] {
        passes(seed);
    }
}
