//! The core's view of configuration: who I am, who the voters are, timings and
//! bounds. File formats (TOML/YAML) are parsed by the CLI and mapped onto this.

use crate::types::{NodeId, PeerInfo};
use std::collections::BTreeSet;

/// Protocol configuration of one node (serializable: a recording stores it).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// This node.
    pub me: PeerInfo,
    /// Other members known at start (the seed nodes).
    pub peers: Vec<PeerInfo>,
    /// The voting members (the same set on every node); majorities count these.
    pub voters: BTreeSet<NodeId>,
    /// Leader → members heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Silence from the leader after which a follower suspects it; also how long
    /// a leader keeps leading without hearing a majority.
    pub leader_timeout_ms: u64,
    /// How long a Bully candidate waits for higher nodes to answer ELECTION.
    pub election_timeout_ms: u64,
    /// Most entries in one SEQ_CHAT, CATCHUP_RESP or history reply.
    pub max_batch_entries: usize,
    /// Most (approximate) bytes of entries in one such message.
    pub max_batch_bytes: usize,
    /// Most client chats waiting for commit on this node; more get `Busy`.
    pub max_pending: usize,
    /// Most written log entries kept in memory once the driver attached a
    /// `ColdLog` (`Node::with_cold_log`); older ones are read back from it.
    /// Without a `ColdLog` every entry stays in memory.
    pub log_cache_entries: usize,
    /// The exactly-once window (`dedup.rs`): a retry of a msg_id is
    /// recognised if its original is among the newest `dedup_window_ids`
    /// chats, or was appended less than `dedup_window_ms` ago on this node
    /// (whichever is reached first forgets it); past both, a retry is a new
    /// message. Memory: about 24 bytes per id in the window.
    pub dedup_window_ids: u64,
    pub dedup_window_ms: u64,
    /// Most rooms; a chat to a new room beyond it is answered `Busy` (a few
    /// in-flight chats accepted on several nodes at once may overshoot it by
    /// at most `max_pending` each). Each room costs a map entry plus 8 bytes
    /// per message (`numbering.rs`).
    pub max_rooms: usize,
    /// Most members of one room; a JOIN beyond it is answered `Busy` (the
    /// same overshoot as `max_rooms`).
    #[serde(default = "default_max_members_per_room")]
    pub max_members_per_room: usize,
    /// Most presence names kept per remote node (`presence.rs`).
    #[serde(default = "default_max_presence_names")]
    pub max_presence_names: usize,
    /// Take a snapshot (`snapshot.rs`) once this many entries were delivered
    /// since the last one (0: never). A restart loads the newest snapshot
    /// and replays only the log after it.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Retention: keep at least this many of the newest committed entries
    /// in the log and compact the rest behind a snapshot (0: keep the whole
    /// history). A member that is further behind installs the snapshot.
    #[serde(default)]
    pub retain_entries: u64,
    /// Retention by age: compact entries older than this many ms, by the
    /// `ts_ms` the accepting node stamped, against the newest delivered
    /// chat's (0: no age bound). With `retain_entries` too, whichever bound
    /// deletes more applies.
    #[serde(default)]
    pub retain_ms: u64,
    /// Bytes of snapshot per SNAPSHOT_CHUNK (before base64).
    #[serde(default = "default_snapshot_chunk_bytes")]
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot this node accepts from a peer (InstallSnapshot);
    /// a larger one is refused, the install retried later.
    #[serde(default = "default_max_snapshot_bytes")]
    pub max_snapshot_bytes: u64,
    /// The driver reports how far this node's log is durable
    /// (`Input::Persisted`) and performs `Persist`s asynchronously: the
    /// leader then counts its own log towards a majority only up to that
    /// point, and a commit means "durable on a majority" with or without the
    /// leader. Off: every `Persist` is durable before the next step (the
    /// simulator's and the tests' synchronous model).
    pub reports_durability: bool,
    /// Test-only: a deliberately broken rule, so tests can prove the checker
    /// catches it. Never set from a config file.
    pub bug: Option<InjectedBug>,
}

fn default_max_members_per_room() -> usize {
    100_000
}

fn default_max_presence_names() -> usize {
    50_000
}

fn default_snapshot_every() -> u64 {
    100_000
}

fn default_snapshot_chunk_bytes() -> usize {
    256 * 1024
}

fn default_max_snapshot_bytes() -> u64 {
    1 << 30
}

/// Deliberate protocol bugs for checker self-tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InjectedBug {
    /// The leader commits an entry as soon as it has it, without a majority.
    CommitWithoutMajority,
    /// A new leader sequences with its own log, skipping the majority sync.
    SkipLeaderSync,
    /// With `reports_durability`, the leader counts its own copy towards a
    /// majority before it is durable.
    LeaderCountsItselfEarly,
    /// COORDINATOR, HEARTBEAT, SEQ_CHAT and the other termed messages of a
    /// lower term are obeyed as if current (a stale claimant is promised and
    /// followed).
    AcceptStaleTerm,
    /// A node promises every COORDINATOR of its current term, not only the
    /// first claimant (two leaders can be synced in one term).
    PromiseTwoCoordinators,
    /// When several entries commit at once, the first is skipped: delivery
    /// jumps a gap.
    DeliverPastGap,
    /// A conflict truncation starts at the commit point instead of at the
    /// conflicting entry, dropping a committed entry.
    TruncateCommitted,
    /// Liveness only: a follower never re-forwards pending chats (no forward
    /// timer resend, nothing sent to a new leader): a FORWARD lost with a
    /// link stays unacknowledged forever.
    NeverReforward,
    /// The exactly-once window forgets ids at half its bounds (half the ids,
    /// half the time): a retry within the window is committed twice.
    DedupWindowEarly,
}

impl InjectedBug {
    /// Every injected bug, for catalogue tests.
    pub const ALL: [InjectedBug; 9] = [
        InjectedBug::CommitWithoutMajority,
        InjectedBug::SkipLeaderSync,
        InjectedBug::LeaderCountsItselfEarly,
        InjectedBug::AcceptStaleTerm,
        InjectedBug::PromiseTwoCoordinators,
        InjectedBug::DeliverPastGap,
        InjectedBug::TruncateCommitted,
        InjectedBug::NeverReforward,
        InjectedBug::DedupWindowEarly,
    ];

    /// The kebab-case name `chorus sim explore --inject-bug` takes.
    pub fn name(self) -> &'static str {
        match self {
            InjectedBug::CommitWithoutMajority => "commit-without-majority",
            InjectedBug::SkipLeaderSync => "skip-leader-sync",
            InjectedBug::LeaderCountsItselfEarly => "leader-counts-itself-early",
            InjectedBug::AcceptStaleTerm => "accept-stale-term",
            InjectedBug::PromiseTwoCoordinators => "promise-two-coordinators",
            InjectedBug::DeliverPastGap => "deliver-past-gap",
            InjectedBug::TruncateCommitted => "truncate-committed",
            InjectedBug::NeverReforward => "never-reforward",
            InjectedBug::DedupWindowEarly => "dedup-window-early",
        }
    }

    /// The bug called `name` (see `name`).
    pub fn from_name(name: &str) -> Option<InjectedBug> {
        InjectedBug::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl Config {
    /// A config with the defaults of the seed (800 ms heartbeats, 2.5 s timeout),
    /// where the voters are `me` plus every peer.
    pub fn new(me: PeerInfo, peers: Vec<PeerInfo>) -> Config {
        let mut voters: BTreeSet<NodeId> = peers.iter().map(|p| p.node_id).collect();
        voters.insert(me.node_id);
        Config {
            me,
            peers,
            voters,
            heartbeat_interval_ms: 800,
            leader_timeout_ms: 2500,
            election_timeout_ms: 400,
            max_batch_entries: 1024,
            max_batch_bytes: 512 * 1024,
            max_pending: 100_000,
            log_cache_entries: 4096,
            dedup_window_ids: crate::dedup::DEFAULT_WINDOW_IDS,
            dedup_window_ms: crate::dedup::DEFAULT_WINDOW_MS,
            max_rooms: 10_000,
            max_members_per_room: default_max_members_per_room(),
            max_presence_names: default_max_presence_names(),
            snapshot_every: default_snapshot_every(),
            retain_entries: 0,
            retain_ms: 0,
            snapshot_chunk_bytes: default_snapshot_chunk_bytes(),
            max_snapshot_bytes: default_max_snapshot_bytes(),
            reports_durability: false,
            bug: None,
        }
    }

    /// Sets heartbeat and leader timeout, deriving the Bully answer wait
    /// (half a heartbeat, within 20..=400 ms: a few round trips, not a timeout).
    pub fn with_timing(mut self, heartbeat_interval_ms: u64, leader_timeout_ms: u64) -> Config {
        self.heartbeat_interval_ms = heartbeat_interval_ms.max(1);
        self.leader_timeout_ms = leader_timeout_ms.max(self.heartbeat_interval_ms * 2);
        self.election_timeout_ms = (heartbeat_interval_ms / 2).clamp(20, 400);
        self
    }

    /// The exactly-once window's bounds (ids, ms) the log applies.
    pub fn dedup_window(&self) -> (u64, u64) {
        match self.bug {
            Some(InjectedBug::DedupWindowEarly) => {
                (self.dedup_window_ids / 2, self.dedup_window_ms / 2)
            }
            _ => (self.dedup_window_ids, self.dedup_window_ms),
        }
    }

    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn is_voter(&self) -> bool {
        self.voters.contains(&self.me.node_id)
    }
}
