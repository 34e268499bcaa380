//! The shape of a scenario file as serde sees it: every table and key, with
//! defaults. Unknown keys are refused (`deny_unknown_fields`), so a typo is an
//! error naming its line rather than a silently different scenario.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDef {
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default = "one")]
    pub(super) seed: u64,
    pub(super) nodes: Spanned<usize>,
    pub(super) duration_ms: u64,
    #[serde(default)]
    pub(super) timing: TimingDef,
    #[serde(default)]
    pub(super) network: NetworkDef,
    #[serde(default)]
    pub(super) clients: ClientsDef,
    #[serde(default)]
    pub(super) timeline: Vec<Spanned<StepDef>>,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimingDef {
    #[serde(default = "hb")]
    pub(super) heartbeat_interval_ms: u64,
    #[serde(default = "lt")]
    pub(super) leader_timeout_ms: u64,
    #[serde(default = "batch")]
    pub(super) max_batch_entries: usize,
    /// Snapshot every this many delivered entries (0: never).
    #[serde(default)]
    pub(super) snapshot_every: u64,
    /// Keep only this many newest committed entries (0: all).
    #[serde(default)]
    pub(super) retain_entries: u64,
}
fn hb() -> u64 {
    200
}
fn lt() -> u64 {
    1000
}
fn batch() -> usize {
    1024
}
impl Default for TimingDef {
    fn default() -> Self {
        TimingDef {
            heartbeat_interval_ms: hb(),
            leader_timeout_ms: lt(),
            max_batch_entries: batch(),
            snapshot_every: 0,
            retain_entries: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NetworkDef {
    #[serde(default = "lat")]
    pub(super) latency_ms: u64,
    #[serde(default = "jit")]
    pub(super) jitter_ms: u64,
    #[serde(default = "yes")]
    pub(super) peer_hints: bool,
    #[serde(default)]
    pub(super) loss: f64,
    #[serde(default)]
    pub(super) duplicate: f64,
    #[serde(default)]
    pub(super) reorder: f64,
}
fn lat() -> u64 {
    1
}
fn jit() -> u64 {
    2
}
fn yes() -> bool {
    true
}
impl Default for NetworkDef {
    fn default() -> Self {
        NetworkDef {
            latency_ms: lat(),
            jitter_ms: jit(),
            peer_hints: true,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientsDef {
    #[serde(default = "cto")]
    pub(super) timeout_ms: u64,
}
fn cto() -> u64 {
    3000
}
impl Default for ClientsDef {
    fn default() -> Self {
        ClientsDef { timeout_ms: cto() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepDef {
    pub(super) at_ms: u64,
    pub(super) chat: Option<ChatDef>,
    pub(super) crash: Option<CrashDef>,
    pub(super) restart: Option<NodeDef>,
    pub(super) partition: Option<PartitionDef>,
    pub(super) heal: Option<Empty>,
    pub(super) expect_leader: Option<RoleDef>,
    pub(super) expect_follower: Option<RoleDef>,
    pub(super) expect_role: Option<RoleDef>,
    pub(super) expect_delivered: Option<DeliveredDef>,
    pub(super) expect_acked: Option<AckedDef>,
    pub(super) expect_converged: Option<ByDef>,
    pub(super) expect_coverage: Option<CoverageDef>,
    pub(super) expect_no_commit: Option<NoCommitDef>,
    pub(super) room: Option<RoomDef>,
    pub(super) expect_room: Option<ExpectRoomDef>,
    pub(super) expect_online: Option<ExpectOnlineDef>,
}

/// A room event by a client (`event`: join, leave, topic or nick; a nick
/// renames the client `u<client>` to `u<client>n<k>`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoomDef {
    pub(super) node: usize,
    pub(super) client: Option<u32>,
    pub(super) event: String,
    #[serde(default = "general")]
    pub(super) room: String,
}

/// Every live node holds this room state (members in any order).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectRoomDef {
    #[serde(default = "general")]
    pub(super) room: String,
    pub(super) members: Vec<String>,
    pub(super) topic: Option<String>,
    pub(super) by_ms: Option<u64>,
}

/// Every live node sees exactly these names online.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectOnlineDef {
    pub(super) names: Vec<String>,
    pub(super) by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChatDef {
    pub(super) node: usize,
    #[serde(default = "one_u32")]
    pub(super) count: u32,
    #[serde(default = "general")]
    pub(super) room: String,
    pub(super) client: Option<u32>,
    #[serde(default)]
    pub(super) interval_ms: u64,
}
fn one_u32() -> u32 {
    1
}
fn general() -> String {
    "general".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CrashDef {
    pub(super) node: usize,
    #[serde(default)]
    pub(super) mid_batch: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeDef {
    pub(super) node: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartitionDef {
    pub(super) groups: Option<Vec<Vec<usize>>>,
    pub(super) from: Option<Vec<usize>>,
    pub(super) to: Option<Vec<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleDef {
    pub(super) node: usize,
    pub(super) role: Option<String>,
    pub(super) leader: Option<usize>,
    pub(super) term: Option<u64>,
    pub(super) by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveredDef {
    pub(super) node: usize,
    pub(super) count: usize,
    pub(super) by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AckedDef {
    pub(super) count: usize,
    pub(super) by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ByDef {
    pub(super) by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CoverageDef {
    pub(super) counter: String,
    #[serde(default = "one")]
    pub(super) min: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoCommitDef {
    pub(super) node: usize,
    pub(super) until_ms: u64,
}
