//! What goes into `Node::step` and what comes out.
//!
//! **The order of actions is the contract.** A driver executes the actions of
//! one step in order; a `Persist` must be durable before any later action of
//! the same (or a later) step takes effect. A driver may defer effects to batch
//! fsyncs (group commit: write every `Persist` of several steps, fsync once,
//! then perform the other actions in order) but may never perform an effect
//! before the persists that precede it are durable.
//!
//! One exception is allowed, Raft's parallel leader write (§10.2.1): a
//! leader's `Broadcast` of SEQ_CHAT may be sent before the batch's `Persist`
//! of its entries is durable, as long as no `Persist` of a term or a
//! truncation precedes it in the batch. The core never acknowledges on the
//! strength of that send: a follower's APPEND_ACK for those entries is a later
//! input, and the driver finishes the batch's fsync before feeding it. The
//! same holds for a `Send` of CATCHUP_REQ (it only asks for entries), which
//! lets catch-up batches pipeline with the requester's fsync.
//!
//! **Asynchronous durability (`Config::reports_durability`, runtime-mio).**
//! The driver fsyncs in the background and feeds `Input::Persisted { upto }`
//! whenever its log is durable further, in its current version. The leader
//! then counts its own log towards a majority only up to that point, so a
//! commit always means "durable on a majority" whether or not the leader is
//! part of it, and the driver may then:
//! - perform `Deliver` and `Reply` at once (in order), without waiting for its
//!   own `Persist`s: they only ever report committed entries;
//! - feed APPEND_ACKs as they come;
//! - send the leader's SEQ_CHAT and HEARTBEAT (and CATCHUP_REQ) before the
//!   preceding `Persist`s of entries are durable, unless a `Persist` of a term
//!   or a truncation is still pending (a message must never carry a term that
//!   is not durable), keeping each link FIFO.
//!
//! Everything else (APPEND_ACK, votes, COORDINATOR, CATCHUP_RESP, …) still
//! waits for every `Persist` before it. A `Persist` of a truncation emitted
//! while such messages wait **drops** those that report this node's log at
//! or past the cut (`PeerMsg::reports_log_upto`): the fsync that would
//! release them makes the cut durable too, so they would vouch for entries
//! the node no longer has (issue 14). Both drivers share one implementation
//! of these rules, `gate::Gate`. The simulator models this driver too
//! (`SimOptions::async_fsync_ms`, half the explored seeds).
//!
//! **A batch ends with `Flush`.** Before the first step after a `Flush`, the
//! driver has written (handed to the OS, not necessarily fsynced) every
//! `Persist` and `Note` record of the steps up to that `Flush`, in order. A
//! node with a `ColdLog` (`Node::with_cold_log`) relies on it: it then drops
//! the entries of that batch from memory when its cache is full, and reads
//! them back through the `ColdLog` later. A driver that never sends `Flush`
//! keeps every entry in memory.

use crate::entry::Entry;
use crate::numbering::Numbers;
use crate::record::Record;
use crate::snapshot::SnapshotImage;
use crate::types::{ClientId, NodeId, PeerInfo, Seq, Term};
use crate::wire::{ClientReply, ClientRequest, PeerMsg};

/// An event fed to the node. Serializable so a recording (`recording.rs`)
/// stores every variant, present and future, without format work.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Input {
    /// First input after construction (also after a restart).
    Start,
    /// Time passed; the node fires every expired timer. Spurious ticks are no-ops.
    Tick,
    /// A message from an authenticated peer.
    Peer(PeerMsg),
    /// A request from a client connection.
    Client {
        client: ClientId,
        request: ClientRequest,
    },
    /// The driver's transport to `node` is up (send it a JOIN) ...
    PeerUp(NodeId),
    /// ... or was lost (a hint: a dead leader is suspected at once).
    PeerDown(NodeId),
    /// The end of a batch of inputs: emit batched replication and acks.
    Flush,
    /// With `Config::reports_durability`: this node's log is durable, in its
    /// current version, up to `upto` (monotone except after a truncation).
    Persisted { upto: Seq },
}

/// An effect the driver performs, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Append `record` to the durable log. It must be durable (fsynced) before
    /// any later action is performed.
    Persist(Record),
    /// Append `record` to the log without waiting for it to be durable: a commit
    /// hint that may be lost in a crash (it is re-learned from the leader).
    Note(Record),
    /// Send `msg` to one peer. Best effort: the protocol tolerates loss.
    Send { to: NodeId, msg: PeerMsg },
    /// Send `msg` to each of `to` (one encoding, several connections).
    Broadcast { to: Vec<NodeId>, msg: PeerMsg },
    /// `entry` is committed: deliver it to subscribed clients. Emitted exactly
    /// once per seq per incarnation, in seq order, contiguously. A chat
    /// carries its client-visible numbers (`numbering.rs`), other entries None.
    Deliver(Entry, Option<Numbers>),
    /// Answer one client.
    Reply {
        client: ClientId,
        reply: ClientReply,
    },
    /// A member was discovered or changed address: the driver should connect.
    PeerKnown(PeerInfo),
    /// Make this snapshot durable (`snapshot.rs`), replacing the previous
    /// one only once it is: like a `Persist`, before any later action takes
    /// effect. A restart loads the newest saved snapshot, then the log.
    SaveSnapshot(SnapshotImage),
    /// Log entries before `before` are covered by a saved snapshot: the
    /// driver may delete them (whole segments), and the node never reads
    /// them again. Always preceded by the `SaveSnapshot` that covers them.
    Compact { before: Seq },
}

/// The node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Follower,
    /// Running a Bully election or a new-leader sync.
    Candidate,
    Leader,
}

/// A snapshot of the node for logs, status lines and the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_seq: Seq,
    pub last_seq: Seq,
    /// Highest seq delivered in this incarnation (== commit_seq once caught up).
    pub delivered_seq: Seq,
    /// Chats delivered: the highest client-visible seq_no (`numbering.rs`).
    pub delivered_chats: u64,
    /// The first log entry held (earlier ones are compacted behind a
    /// snapshot, `snapshot.rs`); 1 while the whole history is kept.
    pub first_seq: Seq,
    /// The newest snapshot taken, installed or loaded (0: none).
    pub snapshot_seq: Seq,
    /// Snapshots installed from a peer in this incarnation.
    pub installs: u64,
    /// A snapshot is being received from a peer.
    pub installing: bool,
}
