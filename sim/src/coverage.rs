//! Coverage counters: proof that a run (or a swarm) actually reached the
//! interesting states, so a green sweep is not a vacuous one.
//!
//! Those in `REQUIRED` are the classes a sweep must exercise (`explore` fails
//! when one stays at zero); the rest are informative.

use std::fmt;

/// How often each interesting situation happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// A node crashed while it was the leader.
    pub leader_crash: u64,
    /// A crash landed inside an action batch after a persist and before an
    /// acknowledgement or delivery that depended on it.
    pub crash_between_persist_and_ack: u64,
    /// A partition (symmetric or one-way) was healed.
    pub partition_heal: u64,
    /// A node received a CATCHUP_RESP carrying entries.
    pub catch_up: u64,
    /// The highest-id node restarted with a log behind the committed history.
    pub stale_higher_id_rejoin: u64,
    /// Two or more nodes were candidates at the same time.
    pub competing_candidates: u64,
    /// A node read entries it had evicted from memory back from its disk.
    pub cold_reads: u64,
    /// Asynchronous disks: a peer message waited for an fsync.
    pub gated_sends: u64,
    /// Asynchronous disks: a truncation was emitted while peer messages
    /// waited for an fsync (the window of issue 14).
    pub truncations_while_gated: u64,
    /// Asynchronous disks: waiting messages dropped because a truncation cut
    /// what they reported (`chorus_core::gate`).
    pub stale_reports_dropped: u64,
    /// A room event (join, leave, topic, rename) entered the committed history.
    pub room_events: u64,
    /// A run with named sessions ended with every live node agreeing on
    /// who is online (`people.rs`).
    pub presence_converged: u64,
    /// A node saved a snapshot (`chorus_core::snapshot`).
    pub snapshots: u64,
    /// A node compacted its log behind a snapshot (retention).
    pub compactions: u64,
    /// A node installed a snapshot from a peer (InstallSnapshot).
    pub installs: u64,
    /// A node restarted from a saved snapshot plus the log after it.
    pub restarts_from_snapshot: u64,
    /// Informative: a node crashed with an install in flight or with an
    /// install's snapshot saved before its log record.
    pub install_interrupted: u64,
    /// Informative: a restart from a snapshot whose log file fell short of
    /// it or diverged after it, so the node marked where the log continues.
    pub restart_markers: u64,
    /// Informative: crashes of any node.
    pub crashes: u64,
    /// Informative: crashes inside an action batch.
    pub mid_batch_crashes: u64,
    /// Informative: restarts.
    pub restarts: u64,
    /// Informative: times some node became leader.
    pub leader_elected: u64,
    /// Informative: a conflicting uncommitted suffix was truncated.
    pub truncations: u64,
    /// Informative: a retry committed again, its original past a bounded
    /// exactly-once window (allowed only there).
    pub retries_past_window: u64,
}

/// The counters a sweep must see above zero.
pub const REQUIRED: &[&str] = &[
    "leader_crash",
    "crash_between_persist_and_ack",
    "partition_heal",
    "catch_up",
    "stale_higher_id_rejoin",
    "competing_candidates",
    "cold_reads",
    "gated_sends",
    "truncations_while_gated",
    "room_events",
    "presence_converged",
    "snapshots",
    "compactions",
    "installs",
    "restarts_from_snapshot",
];

impl Coverage {
    /// (name, value) of every counter, required ones first.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("leader_crash", self.leader_crash),
            (
                "crash_between_persist_and_ack",
                self.crash_between_persist_and_ack,
            ),
            ("partition_heal", self.partition_heal),
            ("catch_up", self.catch_up),
            ("stale_higher_id_rejoin", self.stale_higher_id_rejoin),
            ("competing_candidates", self.competing_candidates),
            ("cold_reads", self.cold_reads),
            ("gated_sends", self.gated_sends),
            ("truncations_while_gated", self.truncations_while_gated),
            ("room_events", self.room_events),
            ("presence_converged", self.presence_converged),
            ("snapshots", self.snapshots),
            ("compactions", self.compactions),
            ("installs", self.installs),
            ("restarts_from_snapshot", self.restarts_from_snapshot),
            ("install_interrupted", self.install_interrupted),
            ("restart_markers", self.restart_markers),
            ("stale_reports_dropped", self.stale_reports_dropped),
            ("crashes", self.crashes),
            ("mid_batch_crashes", self.mid_batch_crashes),
            ("restarts", self.restarts),
            ("leader_elected", self.leader_elected),
            ("truncations", self.truncations),
            ("retries_past_window", self.retries_past_window),
        ]
    }

    /// The value of counter `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.counters()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// Required counters that are still zero.
    pub fn missing(&self) -> Vec<&'static str> {
        self.counters()
            .into_iter()
            .filter(|(n, v)| *v == 0 && REQUIRED.contains(n))
            .map(|(n, _)| n)
            .collect()
    }

    /// Adds another run's counters.
    pub fn merge(&mut self, o: &Coverage) {
        self.leader_crash += o.leader_crash;
        self.crash_between_persist_and_ack += o.crash_between_persist_and_ack;
        self.partition_heal += o.partition_heal;
        self.catch_up += o.catch_up;
        self.stale_higher_id_rejoin += o.stale_higher_id_rejoin;
        self.competing_candidates += o.competing_candidates;
        self.crashes += o.crashes;
        self.mid_batch_crashes += o.mid_batch_crashes;
        self.restarts += o.restarts;
        self.leader_elected += o.leader_elected;
        self.truncations += o.truncations;
        self.cold_reads += o.cold_reads;
        self.gated_sends += o.gated_sends;
        self.truncations_while_gated += o.truncations_while_gated;
        self.stale_reports_dropped += o.stale_reports_dropped;
        self.retries_past_window += o.retries_past_window;
        self.room_events += o.room_events;
        self.presence_converged += o.presence_converged;
        self.snapshots += o.snapshots;
        self.compactions += o.compactions;
        self.installs += o.installs;
        self.restarts_from_snapshot += o.restarts_from_snapshot;
        self.install_interrupted += o.install_interrupted;
        self.restart_markers += o.restart_markers;
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in self.counters() {
            writeln!(f, "  {name:<32} {v}")?;
        }
        Ok(())
    }
}
