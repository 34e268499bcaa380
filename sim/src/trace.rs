//! The run's trace and its determinism digest.
//!
//! A trace is one compact line per input and action, times in ms from 0, nodes
//! as n1..nN, clients as c1..cK, and nothing a run could vary on between
//! machines (no addresses, ports or random ids). Formatting costs time, so the
//! text is built only when a trace is wanted; the digest (FNV-1a over compact
//! facts of every step) is always kept, so two runs of a seed can be compared
//! cheaply.

use chorus_core::record::Record;
use chorus_core::{Action, Body, ClientReply, Entry, Input, NodeId, PeerMsg, Role, Status};
use std::fmt::Write;

/// FNV-1a, 64 bit: tiny, deterministic, good enough to spot divergence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(pub u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    pub fn add(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Collects trace lines (if enabled).
#[derive(Debug, Default)]
pub struct Trace {
    enabled: bool,
    text: String,
}

impl Trace {
    pub fn new(enabled: bool) -> Trace {
        Trace {
            enabled,
            text: String::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Appends `   812 <who> <what>`.
    pub fn line(&mut self, now_ms: u64, who: &str, what: &str) {
        if self.enabled {
            let _ = writeln!(self.text, "{now_ms:>6} {who} {what}");
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `n3` for node index 2.
pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

fn ids(to: &[NodeId]) -> String {
    let v: Vec<String> = to.iter().map(|n| n.to_string()).collect();
    v.join(",")
}

fn span(entries: &[Entry]) -> String {
    match (entries.first(), entries.last()) {
        (Some(a), Some(b)) if a.seq_no == b.seq_no => format!("[{}]", a.seq_no),
        (Some(a), Some(b)) => format!("[{}..{}]", a.seq_no, b.seq_no),
        _ => "[]".into(),
    }
}

/// `c1-3 general` or `noop`.
pub fn entry_text(e: &Entry) -> String {
    match &e.body {
        Body::Chat(c) => match c.event {
            None => format!("{} {}", c.msg_id, c.room_id),
            Some(ev) => format!("{} {} {}", c.msg_id, ev.name(), c.room_id),
        },
        Body::Noop { .. } => "noop".into(),
    }
}

/// A peer message, compactly: type, term and the fields that matter.
pub fn msg_text(m: &PeerMsg) -> String {
    let k = m.kind();
    let t = m.term();
    match m {
        PeerMsg::Join { peer, relay, .. } if *relay => format!("{k} {t} for {}", peer.node_id),
        PeerMsg::JoinAck { leader, .. } => match leader {
            Some(l) => format!("{k} {t} leader={}", l.node_id),
            None => format!("{k} {t} leader=none"),
        },
        PeerMsg::Heartbeat {
            commit_seq,
            last_seq,
            ..
        } => format!("{k} {t} commit={commit_seq} last={last_seq}"),
        PeerMsg::ElectionOk { grant, leader, .. } => match (grant, leader) {
            (true, _) => format!("{k} {t} grant"),
            (false, Some(l)) => format!("{k} {t} stand-down leader={l}"),
            (false, None) => format!("{k} {t} stand-down"),
        },
        PeerMsg::Coordinator { leader, .. } => format!("{k} {t} leader={}", leader.node_id),
        PeerMsg::SyncAck {
            last_seq,
            last_term,
            commit_seq,
            ..
        } => format!("{k} {t} last={last_seq}@{last_term} commit={commit_seq}"),
        PeerMsg::SeqChat {
            prev_seq,
            prev_term,
            commit_seq,
            entries,
            ..
        } => format!(
            "{k} {t} prev={prev_seq}@{prev_term} commit={commit_seq} {}",
            span(entries)
        ),
        PeerMsg::AppendAck { match_seq, .. } => format!("{k} {t} match={match_seq}"),
        PeerMsg::CatchupReq {
            from_seq,
            prev_term,
            commit_seq,
            ..
        } => format!("{k} {t} from={from_seq} prev_term={prev_term} commit={commit_seq}"),
        PeerMsg::CatchupResp {
            prev_seq,
            prev_term,
            commit_seq,
            last_seq,
            entries,
            ..
        } => format!(
            "{k} {t} prev={prev_seq}@{prev_term} commit={commit_seq} last={last_seq} {}",
            span(entries)
        ),
        PeerMsg::Forward { chat, .. } => format!("{k} {t} {}", chat.msg_id),
        PeerMsg::ForwardAck { msg_id, seq_no, .. } => format!("{k} {t} {msg_id} seq={seq_no}"),
        PeerMsg::Presence {
            version,
            names,
            pull,
            ..
        } => match names {
            Some(n) => format!("{k} {t} v{version} {} names pull={pull}", n.len()),
            None => format!("{k} {t} v{version} pull={pull}"),
        },
        PeerMsg::SnapshotReq { seq, offset, .. } => format!("{k} {t} snap={seq} at={offset}"),
        PeerMsg::SnapshotChunk {
            seq,
            snap_term,
            total,
            offset,
            data,
            ..
        } => format!(
            "{k} {t} snap={seq}@{snap_term} at={offset} of={total} ({} b64)",
            data.len()
        ),
        _ => format!("{k} {t}"),
    }
}

/// The line for an input (without time and node), or None for inputs the
/// trace leaves out (a tick is shown only if it produced actions).
pub fn input_text(input: &Input) -> Option<String> {
    Some(match input {
        Input::Start => "start".into(),
        Input::Tick => "tick".into(),
        Input::Flush => return None,
        Input::Persisted { upto } => format!("persisted {upto}"),
        Input::Peer(m) => format!("<- {} {}", m.sender(), msg_text(m)),
        Input::Client { client, request } => match request {
            chorus_core::ClientRequest::Chat(c) => match c.event {
                None => format!("<= c{} CHAT {} {}", client.0, c.msg_id, c.room_id),
                Some(ev) => format!(
                    "<= c{} {} {} {} {}",
                    client.0,
                    ev.name().to_uppercase(),
                    c.msg_id,
                    c.room_id,
                    c.user.as_deref().unwrap_or("")
                ),
            },
            chorus_core::ClientRequest::Session { name } => {
                format!(
                    "<= c{} SESSION {}",
                    client.0,
                    name.as_deref().unwrap_or("-")
                )
            }
            chorus_core::ClientRequest::History { from_seq, limit } => {
                format!("<= c{} HISTORY from={from_seq} limit={limit}", client.0)
            }
        },
        Input::PeerUp(n) => format!("<- {n} connected"),
        Input::PeerDown(n) => format!("<- {n} disconnected"),
    })
}

fn record_text(r: &Record) -> String {
    match r {
        Record::Term { term, voted_for } => match voted_for {
            Some(v) => format!("term {term} vote={v}"),
            None => format!("term {term}"),
        },
        Record::Entry(e) => format!("entry {} {} {}", e.seq_no, e.term, entry_text(e)),
        Record::Truncate { from } => format!("truncate from={from}"),
        Record::Commit { seq } => format!("commit {seq}"),
        Record::Snapshot { seq, term } => format!("log after snapshot {seq} {term}"),
    }
}

/// The line for an action (without time and node).
pub fn action_text(a: &Action) -> String {
    match a {
        Action::Persist(r) => format!("persist {}", record_text(r)),
        Action::Note(r) => format!("note {}", record_text(r)),
        Action::Send { to, msg } => format!("-> {to} {}", msg_text(msg)),
        Action::Broadcast { to, msg } => format!("-> {} {}", ids(to), msg_text(msg)),
        Action::Deliver(e, _) => format!("deliver {} {} {}", e.seq_no, e.term, entry_text(e)),
        Action::Reply { client, reply } => match reply {
            ClientReply::ChatAck { msg_id, seq_no } => {
                format!("=> c{} ACK {msg_id} seq={seq_no}", client.0)
            }
            ClientReply::EventAck { msg_id, seq_no } => {
                format!("=> c{} EVENT_ACK {msg_id} before={seq_no}", client.0)
            }
            ClientReply::History { entries, .. } => {
                format!("=> c{} HISTORY {}", client.0, span(entries))
            }
            ClientReply::Error { code, .. } => format!("=> c{} ERROR {code:?}", client.0),
        },
        Action::PeerKnown(p) => format!("knows {}", p.node_id),
        Action::SaveSnapshot(img) => format!(
            "save snapshot {} {} ({} bytes)",
            img.seq,
            img.term,
            img.bytes.len()
        ),
        Action::Compact { before } => format!("compact before={before}"),
    }
}

/// `leader t3`, `candidate t2`, `follower t3 of n2` or `follower t3`.
pub fn role_text(s: &Status) -> String {
    match (s.role, s.leader) {
        (Role::Leader, _) => format!("leader {}", s.term),
        (Role::Candidate, _) => format!("candidate {}", s.term),
        (Role::Follower, Some(l)) => format!("follower {} of {l}", s.term),
        (Role::Follower, None) => format!("follower {}", s.term),
    }
}

/// A compact fingerprint of an input for the digest.
pub fn input_tag(input: &Input) -> u64 {
    match input {
        Input::Start => 1,
        Input::Tick => 2,
        Input::Peer(m) => 3 | (m.sender().0 << 8) | (m.term().0 << 16),
        Input::Client { client, .. } => 4 | (client.0 << 8),
        Input::PeerUp(n) => 5 | (n.0 << 8),
        Input::PeerDown(n) => 6 | (n.0 << 8),
        Input::Flush => 7,
        Input::Persisted { upto } => 8 | (upto.0 << 8),
    }
}

/// A compact fingerprint of an action for the digest.
pub fn action_tag(a: &Action) -> u64 {
    match a {
        Action::Persist(r) | Action::Note(r) => match r {
            Record::Term { term, .. } => 10 | (term.0 << 8),
            Record::Entry(e) => 11 | (e.seq_no.0 << 8),
            Record::Truncate { from } => 12 | (from.0 << 8),
            Record::Commit { seq } => 13 | (seq.0 << 8),
            Record::Snapshot { seq, .. } => 19 | (seq.0 << 8),
        },
        Action::Send { to, msg } => 14 | (to.0 << 8) | (msg.term().0 << 16),
        Action::Broadcast { to, msg } => 15 | ((to.len() as u64) << 8) | (msg.term().0 << 16),
        Action::Deliver(e, _) => 16 | (e.seq_no.0 << 8),
        Action::Reply { client, .. } => 17 | (client.0 << 8),
        Action::PeerKnown(p) => 18 | (p.node_id.0 << 8),
        Action::SaveSnapshot(img) => 20 | (img.seq.0 << 8),
        Action::Compact { before } => 21 | (before.0 << 8),
    }
}
