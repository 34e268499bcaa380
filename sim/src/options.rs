//! Options of one simulated run: cluster size, timings, network, clients.

use crate::net::NetOptions;
use chorus_core::InjectedBug;

/// Everything that shapes a run besides its timeline of faults and chats.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The master seed; every random stream derives from it.
    pub seed: u64,
    /// Number of nodes (all voters), ids 1..=nodes.
    pub nodes: usize,
    pub heartbeat_interval_ms: u64,
    pub leader_timeout_ms: u64,
    /// Bound on entries per SEQ_CHAT / CATCHUP_RESP (small values exercise
    /// multi-batch catch-up).
    pub max_batch_entries: usize,
    /// Bound on client chats waiting at one node (overflow answers `Busy`).
    pub max_pending: usize,
    pub net: NetOptions,
    /// How long a client waits for an ack before resending the same msg_id.
    pub client_timeout_ms: u64,
    /// Chance (ppm) a retry goes to another node although its node is up.
    pub client_switch_ppm: u32,
    /// A deliberately broken core rule (checker self-test).
    pub bug: Option<InjectedBug>,
    /// Build the text trace (costly; the digest is always kept).
    pub trace: bool,
    /// `None`: the synchronous disk (a `Persist` is durable at once).
    /// `Some((lo, hi))`: the real runtime's model — records are written,
    /// an fsync of everything written so far completes `lo..=hi` ms after
    /// it starts, peer messages wait for the records before them, and the
    /// node learns its durable point through `Input::Persisted`.
    pub async_fsync_ms: Option<(u64, u64)>,
    /// `Some((ids, ms))`: the exactly-once window's bounds (the core's
    /// defaults, 10,000,000 ids and 24 h, otherwise: never reached in a run).
    pub dedup_window: Option<(u64, u64)>,
    /// Chance (ppm) that a client's submission is a room event (join,
    /// leave, topic or rename) instead of a chat. Above 0, clients also hold
    /// named sessions on their nodes (presence), checked to converge.
    pub room_events_ppm: u32,
    /// Clients hold named sessions on their nodes (presence); on in swarm
    /// runs with room events and in scenarios with room steps.
    pub sessions: bool,
    /// `Some((every, retain))`: snapshots every `every` delivered entries,
    /// and with `retain` above 0 the log keeps only the newest `retain`
    /// committed entries (members further behind install the snapshot).
    /// `None`: no snapshots (every scenario recorded before them).
    pub snapshots: Option<(u64, u64)>,
    /// With snapshots: retention by age too (ms of `ts_ms`; 0: none).
    pub retain_ms: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            nodes: 3,
            heartbeat_interval_ms: 200,
            leader_timeout_ms: 1000,
            max_batch_entries: 1024,
            max_pending: 100_000,
            net: NetOptions::default(),
            client_timeout_ms: 3000,
            client_switch_ppm: 0,
            bug: None,
            trace: false,
            async_fsync_ms: None,
            dedup_window: None,
            room_events_ppm: 0,
            sessions: false,
            snapshots: None,
            retain_ms: 0,
        }
    }
}
