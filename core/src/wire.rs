//! Wire messages: what peers say to each other and what clients and nodes
//! exchange. Newline-delimited JSON; field names as the seed (`type, sender_id,
//! term, msg_id, seq_no, room_id, payload`).
//!
//! Every peer message carries its sender and term; a receiver ignores messages
//! from lower terms and adopts higher ones (see `node.rs`). Framing, size limits
//! and peer authentication live in the runtime; this module only defines shapes.

use crate::entry::{Chat, Entry};
use crate::types::{NodeId, PeerInfo, Seq, Term};
use serde::{Deserialize, Serialize};

/// A message between cluster members.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerMsg {
    /// "I exist, here is how to reach me." `relay` marks a copy forwarded by the
    /// member that received the original, so it is not forwarded again.
    Join {
        sender_id: NodeId,
        term: Term,
        peer: PeerInfo,
        #[serde(default)]
        relay: bool,
    },
    /// Answer to a JOIN: every member known to the sender and the leader it follows.
    JoinAck {
        sender_id: NodeId,
        term: Term,
        members: Vec<PeerInfo>,
        leader: Option<PeerInfo>,
    },
    /// Leader liveness plus its log position and commit point.
    Heartbeat {
        sender_id: NodeId,
        term: Term,
        commit_seq: Seq,
        last_seq: Seq,
        last_term: Term,
    },
    /// Bully: "I suspect the leader; is anyone higher alive?" (sent to higher ids).
    Election { sender_id: NodeId, term: Term },
    /// Answer to ELECTION. `grant: false` is Bully's "I am higher and alive (or
    /// still hear a leader): stand down"; `grant: true` means the sender lost the
    /// leader too and is lower, so it supports the candidate (a pre-vote: no term
    /// is spent until a majority agrees the leader is gone). `leader` names the
    /// leader the sender still follows, if any.
    ElectionOk {
        sender_id: NodeId,
        term: Term,
        grant: bool,
        leader: Option<NodeId>,
    },
    /// A claim to lead `term`. Receivers that promise it answer SYNC_ACK with their
    /// log position; a claim is granted at most once per term per node.
    Coordinator {
        sender_id: NodeId,
        term: Term,
        leader: PeerInfo,
    },
    /// Refusal of a claim: the sender's term is higher, or it already promised
    /// this term to another node.
    CoordinatorNack { sender_id: NodeId, term: Term },
    /// Promise to follow the claimant of `term`, with the promiser's log position
    /// (new-leader sync: the claimant adopts the most up-to-date of a majority).
    SyncAck {
        sender_id: NodeId,
        term: Term,
        last_seq: Seq,
        last_term: Term,
        commit_seq: Seq,
    },
    /// Leader → members: entries following (`prev_seq`, `prev_term`), batched.
    SeqChat {
        sender_id: NodeId,
        term: Term,
        prev_seq: Seq,
        prev_term: Term,
        commit_seq: Seq,
        entries: Vec<Entry>,
    },
    /// Member → leader: my log matches yours up to `match_seq`, durably.
    AppendAck {
        sender_id: NodeId,
        term: Term,
        match_seq: Seq,
    },
    /// "Send me entries from `from_seq`; my entry at `from_seq - 1` has `prev_term`;
    /// my committed prefix ends at `commit_seq`."
    CatchupReq {
        sender_id: NodeId,
        term: Term,
        from_seq: Seq,
        prev_term: Term,
        commit_seq: Seq,
    },
    /// A bounded batch of entries following (`prev_seq`, `prev_term`); `last_seq`
    /// is the responder's log end, so the requester knows whether to ask again.
    CatchupResp {
        sender_id: NodeId,
        term: Term,
        prev_seq: Seq,
        prev_term: Term,
        commit_seq: Seq,
        last_seq: Seq,
        entries: Vec<Entry>,
        /// The sender leads `term`, so its log is authoritative for it: only
        /// then may a follower let these entries overwrite its own suffix. A
        /// claimant's sync fetch reads the member it chose whatever this says.
        /// (Found by the 1M-seed soak, seed 0xa07d: a claimant still fetching
        /// served its stale log to a follower that had promised it, which cut
        /// a committed entry.)
        #[serde(default)]
        leading: bool,
    },
    /// Follower → leader: a client's chat to sequence.
    Forward {
        sender_id: NodeId,
        term: Term,
        chat: Chat,
    },
    /// Leader → follower: that msg_id is already committed as chat number
    /// `seq_no` (the client-visible numbering, not a log index); `event`:
    /// it is a room event, committed before chat `seq_no`.
    ForwardAck {
        sender_id: NodeId,
        term: Term,
        msg_id: String,
        seq_no: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        event: bool,
    },
    /// Presence gossip (`presence.rs`): the sender's local session names at
    /// `version` (`names`), or only the version (a beat); `pull` asks the
    /// receiver for its full set. Soft state: the term is informational.
    Presence {
        sender_id: NodeId,
        term: Term,
        version: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        names: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pull: bool,
    },
    /// Member → leader (or the member a claimant syncs from): "send the
    /// chunk at `offset` of your snapshot at `seq`" (InstallSnapshot,
    /// `snapshot.rs`), pulled one chunk at a time like catch-up.
    SnapshotReq {
        sender_id: NodeId,
        term: Term,
        seq: Seq,
        offset: u64,
    },
    /// A bounded chunk of the sender's snapshot at (`seq`, `snap_term`),
    /// `total` bytes long: `data` (base64) is bytes `offset..`. Sent for a
    /// CATCHUP_REQ that asks for compacted entries, and for SNAPSHOT_REQ; a
    /// member that asks for a snapshot the sender replaced meanwhile gets
    /// the new one from offset 0. `leading` as in CATCHUP_RESP.
    SnapshotChunk {
        sender_id: NodeId,
        term: Term,
        seq: Seq,
        snap_term: Term,
        total: u64,
        offset: u64,
        data: String,
        #[serde(default)]
        leading: bool,
    },
}

impl PeerMsg {
    pub fn sender(&self) -> NodeId {
        match self {
            PeerMsg::Join { sender_id, .. }
            | PeerMsg::JoinAck { sender_id, .. }
            | PeerMsg::Heartbeat { sender_id, .. }
            | PeerMsg::Election { sender_id, .. }
            | PeerMsg::ElectionOk { sender_id, .. }
            | PeerMsg::Coordinator { sender_id, .. }
            | PeerMsg::CoordinatorNack { sender_id, .. }
            | PeerMsg::SyncAck { sender_id, .. }
            | PeerMsg::SeqChat { sender_id, .. }
            | PeerMsg::AppendAck { sender_id, .. }
            | PeerMsg::CatchupReq { sender_id, .. }
            | PeerMsg::CatchupResp { sender_id, .. }
            | PeerMsg::Forward { sender_id, .. }
            | PeerMsg::ForwardAck { sender_id, .. }
            | PeerMsg::Presence { sender_id, .. }
            | PeerMsg::SnapshotReq { sender_id, .. }
            | PeerMsg::SnapshotChunk { sender_id, .. } => *sender_id,
        }
    }

    pub fn term(&self) -> Term {
        match self {
            PeerMsg::Join { term, .. }
            | PeerMsg::JoinAck { term, .. }
            | PeerMsg::Heartbeat { term, .. }
            | PeerMsg::Election { term, .. }
            | PeerMsg::ElectionOk { term, .. }
            | PeerMsg::Coordinator { term, .. }
            | PeerMsg::CoordinatorNack { term, .. }
            | PeerMsg::SyncAck { term, .. }
            | PeerMsg::SeqChat { term, .. }
            | PeerMsg::AppendAck { term, .. }
            | PeerMsg::CatchupReq { term, .. }
            | PeerMsg::CatchupResp { term, .. }
            | PeerMsg::Forward { term, .. }
            | PeerMsg::ForwardAck { term, .. }
            | PeerMsg::Presence { term, .. }
            | PeerMsg::SnapshotReq { term, .. }
            | PeerMsg::SnapshotChunk { term, .. } => *term,
        }
    }

    /// The highest seq of the *sender's own log* this message reports: a
    /// SYNC_ACK position, an APPEND_ACK match, the end of the entries a
    /// SEQ_CHAT or CATCHUP_RESP carries (or the log end it announces), a
    /// HEARTBEAT's log end. `None` for messages that say nothing about it.
    /// A truncation from a seq at or below it makes the report stale
    /// (`gate.rs`).
    pub fn reports_log_upto(&self) -> Option<Seq> {
        let end = |prev: &Seq, n: usize| Seq(prev.0 + n as u64);
        match self {
            PeerMsg::SyncAck { last_seq, .. } | PeerMsg::Heartbeat { last_seq, .. } => {
                Some(*last_seq)
            }
            PeerMsg::AppendAck { match_seq, .. } => Some(*match_seq),
            PeerMsg::SeqChat {
                prev_seq, entries, ..
            } => Some(end(prev_seq, entries.len())),
            PeerMsg::CatchupResp {
                prev_seq,
                entries,
                last_seq,
                ..
            } => Some(end(prev_seq, entries.len()).max(*last_seq)),
            _ => None,
        }
    }

    /// The wire `type` name (for traces and errors).
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMsg::Join { .. } => "JOIN",
            PeerMsg::JoinAck { .. } => "JOIN_ACK",
            PeerMsg::Heartbeat { .. } => "HEARTBEAT",
            PeerMsg::Election { .. } => "ELECTION",
            PeerMsg::ElectionOk { .. } => "ELECTION_OK",
            PeerMsg::Coordinator { .. } => "COORDINATOR",
            PeerMsg::CoordinatorNack { .. } => "COORDINATOR_NACK",
            PeerMsg::SyncAck { .. } => "SYNC_ACK",
            PeerMsg::SeqChat { .. } => "SEQ_CHAT",
            PeerMsg::AppendAck { .. } => "APPEND_ACK",
            PeerMsg::CatchupReq { .. } => "CATCHUP_REQ",
            PeerMsg::CatchupResp { .. } => "CATCHUP_RESP",
            PeerMsg::Forward { .. } => "FORWARD",
            PeerMsg::ForwardAck { .. } => "FORWARD_ACK",
            PeerMsg::Presence { .. } => "PRESENCE",
            PeerMsg::SnapshotReq { .. } => "SNAPSHOT_REQ",
            PeerMsg::SnapshotChunk { .. } => "SNAPSHOT_CHUNK",
        }
    }
}

/// Every `type` a peer may send; a client connection sending one of these is refused.
pub const PEER_TYPES: &[&str] = &[
    "HELLO",
    "JOIN",
    "JOIN_ACK",
    "HEARTBEAT",
    "ELECTION",
    "ELECTION_OK",
    "COORDINATOR",
    "COORDINATOR_NACK",
    "SYNC_ACK",
    "SEQ_CHAT",
    "APPEND_ACK",
    "CATCHUP_REQ",
    "CATCHUP_RESP",
    "FORWARD",
    "FORWARD_ACK",
    "PRESENCE",
    "SNAPSHOT_REQ",
    "SNAPSHOT_CHUNK",
];

/// A request from a client connection, already parsed and validated by the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Sequence this chat (idempotent by `msg_id`).
    Chat(Chat),
    /// Committed entries from `from_seq`, at most `limit`.
    History { from_seq: Seq, limit: usize },
    /// This client's session is now called `name` (None: it closed, or has
    /// no name): presence, soft state (`presence.rs`). Never answered.
    Session { name: Option<String> },
}

/// What the core tells one client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientReply {
    /// The chat is committed as chat number `seq_no` (the client-visible
    /// numbering of `numbering.rs`; also the answer to a retry).
    ChatAck { msg_id: String, seq_no: u64 },
    /// The room event `msg_id` is committed, before chat number `seq_no`
    /// (also the answer to a retry).
    EventAck { msg_id: String, seq_no: u64 },
    /// Committed entries answering a History request; `commit_seq` is the
    /// node's commit point, so the client knows whether more exist.
    History {
        entries: Vec<Entry>,
        commit_seq: Seq,
    },
    /// The request cannot be served now; `code` is machine-readable.
    Error { code: ErrorCode, message: String },
}

/// Machine-readable error codes sent to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Too many requests pending on this node; retry later (same msg_id).
    Busy,
    /// The line could not be parsed or lacks a field.
    BadRequest,
    /// The line is longer than the node accepts.
    TooLarge,
    /// A client sent a peer-only message type.
    Forbidden,
    /// The node stopped (e.g. storage failure).
    Unavailable,
    /// The session sends faster than its rate limit; retry later (same msg_id).
    RateLimited,
    /// A subscriber read its stream too slowly for too long and is
    /// disconnected; SUBSCRIBE again from the seq_no after its last one.
    SlowConsumer,
    /// Wrong user or password, or the request needs a login first.
    Unauthorized,
    /// The name is taken (a registration), or the state changed meanwhile.
    Conflict,
}
