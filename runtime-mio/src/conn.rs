//! One TCP connection and what it is to the node: a fresh connection (no line
//! yet), a client, a peer proving itself, an authenticated incoming peer link,
//! or our own outgoing link to a peer.
//!
//! Invariants: a connection is a client unless its *first* line was HELLO and
//! the handshake then succeeded; only `PeerIn` links feed peer messages to the
//! core, and only `Dial { stage: Up }` links carry the core's sends. Every
//! buffer is bounded (`LineReader`, `OutBuf`, the history queue).

use crate::framing::{LineReader, OutBuf};
use crate::transport::Transport;
use chorus_core::{NodeId, Seq};
use std::collections::VecDeque;

/// Where a stream of committed chats stands. Per-room streams walk the
/// room's index (`chorus_core::Numbering`), never the whole log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// Every room: the next log index to consider.
    All(Seq),
    /// One room: its next room_seq.
    Room { room: String, next: u64 },
    /// Several rooms (at most `MAX_SUBSCRIBED_ROOMS`), each with its next
    /// room_seq, merged in log order.
    Rooms(Vec<(String, u64)>),
}

/// Most rooms one SUBSCRIBE may name; more is `ERROR bad_request`.
pub const MAX_SUBSCRIBED_ROOMS: usize = 64;

/// Which protocol a client connection speaks (decided by its first line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// No HELLO: the seed's CHAT lines in, seed-format SEQ_CHAT lines of its
    /// room out, and no other line (no CHAT_ACK, no ERROR, no unknown type).
    #[default]
    Seed,
    /// HELLO {proto: 2}: the full protocol.
    Full,
    /// The IRC gateway (`irc/`): IRC lines in and out, rendered from the
    /// same session-layer lines (`irc/render.rs`).
    Irc,
}

/// A client's stream of committed chats (SUBSCRIBE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub cursor: Cursor,
    /// Chats numbered below this are skipped (a `from_seq` not reached yet).
    pub min_seq_no: u64,
}

/// A HISTORY request being answered as the client reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryJob {
    pub cursor: Cursor,
    /// The global seq_no to continue from (HISTORY_END `next_seq`).
    pub next_seq_no: u64,
    /// Chat lines still to send.
    pub remaining: usize,
}

/// A client's streams: history answers first, in order, then the subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    pub dialect: Dialect,
    pub history: VecDeque<HistoryJob>,
    pub sub: Option<Subscription>,
    /// CHATs sent to the core and not yet answered (ack or error).
    pub outstanding: usize,
    /// The client closed its sending side; the connection stays open only
    /// until its outstanding answers are written (or the linger deadline).
    pub read_closed: bool,
    /// The session's name (HELLO `user` or NICK), if it has one (`rooms.rs`).
    pub name: Option<String>,
    /// An IRC connection's own state (`Dialect::Irc` only).
    pub irc: Option<Box<crate::irc::IrcSession>>,
}

impl ClientState {
    pub fn is_seed(&self) -> bool {
        self.dialect == Dialect::Seed
    }

    pub fn has_streams(&self) -> bool {
        !self.history.is_empty() || self.sub.is_some()
    }

    /// A half-closed client that has nothing more coming.
    pub fn finished(&self) -> bool {
        self.read_closed && self.outstanding == 0 && self.history.is_empty()
    }
}

/// Progress of our outgoing link to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialStage {
    /// Nonblocking connect in progress (done on writable + `take_error()`).
    Connecting,
    /// HELLO sent with this nonce; waiting for CHALLENGE.
    AwaitChallenge { nonce: String },
    /// Authenticated both ways: the core's sends to this peer go here.
    Up,
}

/// What a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepted, no line yet.
    Fresh,
    Client(ClientState),
    /// Accepted a HELLO and sent CHALLENGE; waiting for AUTH.
    AwaitAuth {
        dialer: NodeId,
        dialer_nonce: String,
        nonce: String,
        /// The HTTP address its HELLO gave (kept once it authenticates).
        http: Option<String>,
    },
    /// An authenticated peer's link to us: its messages arrive here.
    PeerIn(NodeId),
    /// Our link to `peer`.
    Dial {
        peer: NodeId,
        stage: DialStage,
    },
}

/// A connection with its bounded buffers.
#[derive(Debug)]
pub struct Conn {
    /// Plain TCP or TLS; `Read`/`Write` give the plaintext either way.
    pub stream: Transport,
    pub reader: LineReader,
    pub out: OutBuf,
    pub role: Role,
    /// Ends once its output is flushed (after an ERROR); reads are ignored.
    pub closing: bool,
    /// When the handshake, connect or closing flush must be done.
    pub deadline: Option<std::time::Instant>,
    /// Short description for logs ("client 127.0.0.1:5555", "n2").
    pub label: String,
    /// Source address of an accepted connection (per-address limit).
    pub from: Option<std::net::IpAddr>,
    /// The CHAT rate limit of an accepted connection.
    pub rate: Option<crate::limits::TokenBucket>,
    /// Registered for WRITABLE too. An accepted connection asks for it only
    /// while it has output pending (`net.rs` `flush_conn`): otherwise every
    /// ACK freeing send-buffer space would wake the loop once per
    /// subscriber per message.
    pub write_interest: bool,
}

impl Conn {
    pub fn new(
        stream: Transport,
        role: Role,
        max_line: usize,
        max_out: usize,
        label: String,
    ) -> Conn {
        Conn {
            stream,
            reader: LineReader::new(max_line),
            out: OutBuf::new(max_out),
            role,
            closing: false,
            deadline: None,
            label,
            from: None,
            rate: None,
            write_interest: true,
        }
    }

    pub fn client_mut(&mut self) -> Option<&mut ClientState> {
        match &mut self.role {
            Role::Client(c) => Some(c),
            _ => None,
        }
    }

    /// The peer this link is up to, if it is an authenticated outgoing link.
    pub fn up_peer(&self) -> Option<NodeId> {
        match self.role {
            Role::Dial {
                peer,
                stage: DialStage::Up,
            } => Some(peer),
            _ => None,
        }
    }
}
