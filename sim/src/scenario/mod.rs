//! Scripted scenarios: a TOML file describing a cluster, its network, and a
//! timeline of chats, faults and expectations (see `scenarios/*.toml`).
//!
//! `parse` turns a file into a validated `Scenario` or an error that names the
//! line and key (toml's own errors carry spans; our semantic checks use the
//! span of the offending timeline entry). `run` executes it (see `run.rs`).

mod file;
mod parse;
mod run;
mod steps;

pub use parse::{parse, ScenarioError};
pub use run::{run, Outcome};

use crate::options::SimOptions;
use chorus_core::Role;

/// A validated scenario. Node numbers are indices here (file node 1 = index 0).
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub options: SimOptions,
    pub duration_ms: u64,
    /// Sorted by `at_ms`, file order within one instant.
    pub timeline: Vec<Step>,
}

/// One timeline entry.
#[derive(Clone, Debug)]
pub struct Step {
    pub at_ms: u64,
    /// Line of the entry in the file (for messages).
    pub line: usize,
    pub action: StepAction,
}

/// What happens at a step.
#[derive(Clone, Debug)]
pub enum StepAction {
    Chat {
        node: usize,
        client: u32,
        count: u32,
        room: String,
        interval_ms: u64,
    },
    Crash {
        node: usize,
        mid_batch: bool,
    },
    Restart {
        node: usize,
    },
    Partition {
        groups: Vec<Vec<usize>>,
    },
    /// One-way: links from every `from` to every `to` are cut.
    Cut {
        from: Vec<usize>,
        to: Vec<usize>,
    },
    Heal,
    /// Client `client` submits room event `event` through `node`.
    Room {
        node: usize,
        client: u32,
        event: chorus_core::Event,
        room: String,
    },
    /// Must hold at `at_ms`, or at some moment up to `by_ms` if given.
    Expect {
        expect: Expect,
        by_ms: Option<u64>,
    },
    /// `node`'s commit point must not move from `at_ms` until `until_ms`.
    ExpectNoCommit {
        node: usize,
        until_ms: u64,
    },
}

/// A condition on the cluster.
#[derive(Clone, Debug)]
pub enum Expect {
    /// `node` is in `role` (and, if given, follows `leader` / is in `term`).
    Role {
        node: usize,
        role: Role,
        leader: Option<usize>,
        term: Option<u64>,
    },
    /// `node` has delivered exactly `count` chat messages.
    Delivered { node: usize, count: usize },
    /// Exactly `count` messages have been acknowledged to clients.
    Acked { count: usize },
    /// The liveness predicate holds (one leader, all delivered, all acked).
    Converged,
    /// A coverage counter of this run reached `min`.
    Coverage { counter: String, min: u64 },
    /// Every live node has `room` with exactly `members` (and `topic`).
    Room {
        room: String,
        members: Vec<String>,
        topic: Option<String>,
    },
    /// Every live node sees exactly `names` online.
    Online { names: Vec<String> },
}
