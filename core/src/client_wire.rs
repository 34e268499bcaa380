//! The client protocol on the wire (newline-delimited JSON), shared by the
//! runtime (server side) and the `chorus client` / `chorus bench` (client side).
//!
//! Two dialects share one port (runtime-mio/PROTOCOL.md):
//! - **full** (proto 2): the client's first line is
//!   `{"type":"HELLO","proto":2,"client":"name/version"}`, answered by the
//!   node's HELLO. Client → node: CHAT, HISTORY, SUBSCRIBE, STATUS. Node →
//!   client: HELLO, CHAT_ACK, SEQ_CHAT (a committed chat message),
//!   HISTORY_END, STATUS, ERROR.
//! - **seed**: a connection that never says HELLO sends the seed's CHAT lines
//!   and receives only seed-format SEQ_CHAT lines (`SeedSeqChat`), the seed's
//!   seven keys and nothing else.
//!
//! The seed's exact CHAT line is accepted in both; unknown fields are ignored.

use crate::entry::{Chat, Entry};
use crate::numbering::Numbers;
use crate::wire::ErrorCode;
use serde::{Deserialize, Serialize};

fn default_room() -> String {
    "general".to_string()
}

/// A line a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientLine {
    /// First line of a chorus client: "I speak `proto`" (extra keys allowed).
    Hello {
        proto: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        /// The session's name from the start (as NICK).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// Sequence a message. `msg_id` is the idempotency key: resend the same id
    /// after a timeout or on another node and it is delivered once.
    Chat {
        msg_id: String,
        payload: String,
        #[serde(default = "default_room")]
        room_id: String,
        #[serde(default)]
        sender_id: u64,
        /// Ignored (the seed sends 0); kept so the seed's line round-trips.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        term: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// Committed messages from `from_seq` (default 1), at most `limit` (default
    /// and cap 1000), optionally of one room; answered by SEQ_CHAT lines and a
    /// HISTORY_END.
    ///
    /// With `room_id`, `after` / `before` page by room_seq instead: the
    /// room's messages numbered above `after`, or the `limit` last ones below
    /// `before` (oldest first either way).
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
    },
    /// Push every committed message from `from_seq` on (default: only new ones),
    /// optionally of one room, in seq order, as SEQ_CHAT lines.
    /// `rooms` subscribes one connection to several rooms at once (in
    /// global seq order across them; `room_id` is then ignored).
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rooms: Vec<String>,
    },
    /// The rooms that have messages or members, with their counts and topics.
    List {},
    /// Become a member of `room_id` (a room event; needs a session name).
    Join {
        room_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// Stop being a member of `room_id` (a room event).
    Part {
        room_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// Set the topic of `room_id` (a room event).
    Topic {
        room_id: String,
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// Set the session's name; a rename is a room event.
    Nick {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// The members of `room_id`, with presence.
    Who { room_id: String },
    /// The room's creator removes member `user` from `room_id` (a room event).
    Kick {
        room_id: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// Log in to account `user` (with accounts on): `LOGGED_IN` or ERROR
    /// `unauthorized` / `rate_limited`.
    Login { user: String, password: String },
    /// Create account `user` (with `registration = "open"`), then log in:
    /// `ACCOUNT {op:"register"}` and `LOGGED_IN`, or ERROR `conflict`.
    Register { user: String, password: String },
    /// Operators (`chorus user …`): `op` is `add`, `passwd` or `disable`;
    /// `secret` is the cluster secret. Answered by `ACCOUNT` or ERROR.
    UserAdmin {
        op: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        secret: String,
    },
    /// Ask for the node's view of the cluster.
    Status {},
}

/// A line a node sends to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerLine {
    /// The answer to a client's HELLO: who answers, in which protocol, with
    /// which limits.
    Hello(NodeHello),
    /// The message `msg_id` is committed at `seq_no`.
    ChatAck { msg_id: String, seq_no: u64 },
    /// A committed chat message.
    SeqChat(Delivered),
    /// End of a HISTORY answer; `next_seq` is where to continue.
    /// `first_seq` / `first_room_seq`: the oldest `seq_no` (in the room,
    /// `room_seq`) this node still holds, present once retention deleted
    /// older history (or the node installed a snapshot): nothing before it
    /// can be paged to here.
    HistoryEnd {
        next_seq: u64,
        commit_seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_room_seq: Option<u64>,
    },
    /// The node's view of the cluster.
    Status(NodeStatus),
    /// The answer to LIST (`truncated`: more rooms exist than were listed).
    Rooms {
        rooms: Vec<RoomInfo>,
        truncated: bool,
    },
    /// The answer to WHO.
    Who {
        room_id: String,
        topic: String,
        members: Vec<MemberInfo>,
        /// More members exist than were listed.
        truncated: bool,
    },
    /// A committed room event of a subscribed room.
    RoomEvent(RoomEventLine),
    /// The session is now account `user`: its messages carry that name.
    LoggedIn { user: String },
    /// An account change is committed (`op`: register, add, passwd, disable).
    Account { op: String, user: String },
    /// Something went wrong with the last request (or the connection).
    Error { code: ErrorCode, message: String },
}

/// One member in a WHO answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub user: String,
    /// A session with this name is live on some node (presence).
    pub online: bool,
}

/// A committed room event as subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEventLine {
    pub room_id: String,
    /// "join", "leave", "topic", "nick" or "kick".
    pub event: String,
    /// Who did it (for a nick: the old name).
    pub user: String,
    /// A topic event's new topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// A nick event's new name; a kick event's removed member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub term: u64,
    pub msg_id: String,
    pub ts_ms: u64,
    /// The number of the next chat: the event comes before it.
    pub seq_no: u64,
}

/// The protocol version of the full dialect.
pub const PROTO: u64 = 2;

/// The node's HELLO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHello {
    pub node_id: u64,
    pub proto: u64,
    /// Longest line accepted (bytes).
    pub max_line_bytes: usize,
    /// Longest msg_id, room_id or user (bytes).
    pub max_id_bytes: usize,
    /// Largest HISTORY `limit`.
    pub history_limit: usize,
    /// Accounts are on here (LOGIN works; guests' names carry a `~`).
    /// Absent from older nodes: off.
    #[serde(default)]
    pub accounts: bool,
    /// Sessions that did not log in may post (as `~name`); false: LOGIN
    /// first. Absent: true.
    #[serde(default = "default_true")]
    pub guests: bool,
    /// REGISTER is open here. Absent: closed.
    #[serde(default)]
    pub registration: bool,
}

fn default_true() -> bool {
    true
}

/// The HELLO line a chorus client sends first (`client` is "name/version").
pub fn hello_line(client: &str) -> String {
    let hello = ClientLine::Hello {
        proto: PROTO,
        client: Some(client.to_string()),
        user: None,
    };
    serde_json::to_string(&hello).expect("plain data serializes")
}

/// A committed chat in the seed's own SEQ_CHAT shape: exactly the seed's
/// keys, `sender_id` an integer, `term` always present. `seq_no` is the
/// message's `room_seq`: a seed client sees one room and delivers "when seq
/// == next expected", so its numbers must have no holes within the room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedSeqChat {
    #[serde(rename = "type")]
    pub kind: String,
    pub sender_id: u64,
    pub term: u64,
    pub room_id: String,
    pub msg_id: String,
    pub seq_no: u64,
    pub payload: String,
}

impl SeedSeqChat {
    pub fn from_delivered(d: &Delivered) -> SeedSeqChat {
        SeedSeqChat {
            kind: "SEQ_CHAT".into(),
            sender_id: d.sender_id,
            term: d.term,
            room_id: d.room_id.clone(),
            msg_id: d.msg_id.clone(),
            seq_no: d.room_seq,
            payload: d.payload.clone(),
        }
    }
}

/// A committed chat message as clients see it. `seq_no` and `room_seq` are
/// the client-visible numbering (`numbering.rs`): 1, 2, 3, … without holes,
/// globally and within `room_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub seq_no: u64,
    #[serde(default)]
    pub room_seq: u64,
    pub term: u64,
    pub msg_id: String,
    pub room_id: String,
    pub sender_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub payload: String,
    pub ts_ms: u64,
}

impl Delivered {
    /// The client view of a committed entry numbered `n` (None for a
    /// leader's no-op).
    pub fn from_entry(e: &Entry, n: Numbers) -> Option<Delivered> {
        let c: &Chat = e.message()?;
        Some(Delivered {
            seq_no: n.seq_no,
            room_seq: n.room_seq,
            term: e.term.0,
            msg_id: c.msg_id.clone(),
            room_id: c.room_id.clone(),
            sender_id: c.sender_id,
            user: c.user.clone(),
            payload: c.payload.clone(),
            ts_ms: c.ts_ms,
        })
    }
}

/// One room in a ROOMS answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room_id: String,
    /// Committed messages (its highest room_seq).
    pub messages: u64,
    /// Members (room state).
    #[serde(default)]
    pub members: u64,
    /// Members online on some node (presence).
    #[serde(default)]
    pub online: u64,
    #[serde(default)]
    pub topic: String,
}

/// The STATUS answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: u64,
    /// "follower", "candidate" or "leader".
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    /// host:port of the leader, if known.
    pub leader_addr: Option<String>,
    /// Chats delivered here: the highest client-visible seq_no.
    pub commit_seq: u64,
    /// The internal log index delivered here (no-ops count; for operators).
    #[serde(default)]
    pub log_commit: u64,
    /// The internal log index of this node's last entry (for operators).
    #[serde(default)]
    pub log_last: u64,
    /// The first log index still held (older entries were compacted
    /// behind a snapshot by retention); 1 while all history is kept.
    #[serde(default)]
    pub log_first: u64,
    /// The log index of the newest snapshot (0: none yet).
    #[serde(default)]
    pub snapshot_seq: u64,
    /// Snapshots this process installed from a peer.
    #[serde(default)]
    pub snapshot_installs: u64,
    /// host:port of every member (for client failover).
    pub members: Vec<String>,
    /// host:port of every node's HTTP port that this node knows, its own
    /// first (for web pages: `/ws` on the others when this node fails).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_members: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_chat_line_parses() {
        let line = r#"{"type":"CHAT","sender_id":9999,"term":0,"room_id":"general","msg_id":"5f0c","payload":"hi"}"#;
        let parsed: ClientLine = serde_json::from_str(line).unwrap();
        assert_eq!(
            parsed,
            ClientLine::Chat {
                msg_id: "5f0c".into(),
                payload: "hi".into(),
                room_id: "general".into(),
                sender_id: 9999,
                term: Some(0),
                user: None,
            }
        );
    }

    #[test]
    fn hello_and_seed_lines_have_their_exact_shape() {
        assert_eq!(
            hello_line("chorus/0.1"),
            r#"{"type":"HELLO","proto":2,"client":"chorus/0.1"}"#
        );
        let with_extra = r#"{"type":"HELLO","proto":2,"client":"x","colour":"blue"}"#;
        assert!(matches!(
            serde_json::from_str::<ClientLine>(with_extra),
            Ok(ClientLine::Hello { proto: 2, .. })
        ));
        let d = Delivered {
            seq_no: 9,
            room_seq: 4,
            term: 2,
            msg_id: "m".into(),
            room_id: "general".into(),
            sender_id: 9999,
            user: Some("ann".into()),
            payload: "hi".into(),
            ts_ms: 5,
        };
        assert_eq!(
            serde_json::to_string(&SeedSeqChat::from_delivered(&d)).unwrap(),
            r#"{"type":"SEQ_CHAT","sender_id":9999,"term":2,"room_id":"general","msg_id":"m","seq_no":4,"payload":"hi"}"#
        );
    }

    #[test]
    fn server_lines_are_tagged() {
        let ack = ServerLine::ChatAck {
            msg_id: "a".into(),
            seq_no: 7,
        };
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"type":"CHAT_ACK","msg_id":"a","seq_no":7}"#
        );
    }

    #[test]
    fn an_older_node_hello_means_no_accounts() {
        let old = r#"{"type":"HELLO","node_id":1,"proto":2,"max_line_bytes":10,"max_id_bytes":5,"history_limit":3}"#;
        let Ok(ServerLine::Hello(h)) = serde_json::from_str::<ServerLine>(old) else {
            panic!("an older HELLO parses");
        };
        assert!(!h.accounts && h.guests && !h.registration, "{h:?}");
    }
}
