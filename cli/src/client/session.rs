//! The client's protocol logic, free of sockets, threads and terminals: what to
//! send on (re)connect, what to show, what to resend. The driver (`net`) feeds
//! it connection events, server lines and ticks, and executes its outputs in
//! order; the UIs (`tui`, `plain`) only see the resulting [`Event`]s.
//!
//! Invariants kept here:
//! - every message is shown at most once and in increasing `seq_no` order (the
//!   subscription resumes from the last seen seq + 1 after a failover, and
//!   anything at or below the last seen seq is dropped), so no duplicates;
//! - resuming from last seen + 1 on the new node means no gaps either;
//! - an unacknowledged message is resent with the same `msg_id` on every
//!   (re)connect and after `retry_after` without an ack, and is reported
//!   acknowledged exactly once (by CHAT_ACK or by its own SEQ_CHAT, whichever
//!   comes first);
//! - at most `max_unacked` messages are in flight; more are refused.

use super::addrs::AddrBook;
use super::outbox::Outbox;
use chorus_core::client_wire::{ClientLine, Delivered, NodeStatus, ServerLine};
use std::time::{Duration, Instant};

/// The HELLO this client opens every connection with (full dialect).
pub fn hello() -> ClientLine {
    ClientLine::Hello {
        proto: chorus_core::client_wire::PROTO,
        client: Some(concat!("chorus-client/", env!("CARGO_PKG_VERSION")).into()),
        user: None,
    }
}

/// Tunables of a client session.
#[derive(Clone, Debug)]
pub struct Settings {
    pub room: String,
    /// Shown as the sender (the `user` field); None shows the sender id.
    pub name: Option<String>,
    pub sender_id: u64,
    /// Most messages sent but not acknowledged; more are refused.
    pub max_unacked: usize,
    /// Resend an unacknowledged message after this long without an ack.
    pub retry_after: Duration,
    /// Give up on a node that acknowledges nothing for this long while
    /// messages are pending (e.g. it sits in a minority partition).
    pub failover_after: Duration,
    /// Refresh the status line this often.
    pub status_every: Duration,
    /// On the first connect, show history from this many sequence numbers
    /// before the commit point (all rooms count; other rooms are filtered).
    pub history_window: u64,
}

impl Settings {
    pub fn new(room: String, name: Option<String>, sender_id: u64) -> Settings {
        Settings {
            room,
            name,
            sender_id,
            max_unacked: 1000,
            retry_after: Duration::from_secs(3),
            failover_after: Duration::from_secs(10),
            status_every: Duration::from_secs(2),
            history_window: 1000,
        }
    }
}

/// What the UI is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Connected to a node.
    Connected { addr: String },
    /// The connection ended or could not be made; the client tries another node.
    Disconnected { addr: String, reason: String },
    /// A message was accepted for sending (it is pending until `Acked`).
    Queued { msg_id: String, payload: String },
    /// A message was not accepted (the outbox is full).
    Refused { msg_id: String, reason: String },
    /// A committed message of the room, each seq once, in increasing order.
    Delivered(Delivered),
    /// One of our messages is committed at `seq_no` (reported once).
    Acked { msg_id: String, seq_no: u64 },
    /// The connected node's view of the cluster.
    Status(NodeStatus),
    /// Something worth showing (an ERROR line, a bad line from the node).
    Notice(String),
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// Write this line on the current connection.
    Send(ClientLine),
    /// Hand this to the UI.
    Event(Event),
    /// Close the current connection (and fail over) for this reason.
    Drop(String),
}

#[derive(Debug)]
struct Conn {
    addr: String,
    subscribed: bool,
    last_status_at: Instant,
}

/// The client state across connections.
#[derive(Debug)]
pub struct Session {
    s: Settings,
    conn: Option<Conn>,
    /// Where the subscription continues (None: never subscribed yet).
    resume_from: Option<u64>,
    /// Highest seq handed to the UI.
    last_seq: u64,
    outbox: Outbox,
    /// Since when pending messages have waited without any ack on this
    /// connection (None while nothing is pending).
    stalled_since: Option<Instant>,
    pub addrs: AddrBook,
}

impl Session {
    pub fn new(s: Settings, addrs: AddrBook) -> Session {
        let outbox = Outbox::new(s.max_unacked);
        Session {
            s,
            conn: None,
            resume_from: None,
            last_seq: 0,
            outbox,
            stalled_since: None,
            addrs,
        }
    }

    #[cfg(test)]
    pub fn unacked(&self) -> usize {
        self.outbox.len()
    }

    #[cfg(test)]
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// A new connection to `addr` is up: say HELLO, ask for status, resume the
    /// subscription if we had one, resend everything unacknowledged.
    pub fn on_connected(&mut self, addr: &str, now: Instant, out: &mut Vec<Out>) {
        out.push(Out::Event(Event::Connected {
            addr: addr.to_string(),
        }));
        // chorus's own dialect (PROTOCOL.md): HELLO before anything else.
        out.push(Out::Send(hello()));
        out.push(Out::Send(ClientLine::Status {}));
        let mut conn = Conn {
            addr: addr.to_string(),
            subscribed: false,
            last_status_at: now,
        };
        if let Some(from) = self.resume_from {
            out.push(Out::Send(self.subscribe_line(from)));
            conn.subscribed = true;
        }
        self.conn = Some(conn);
        for u in self.outbox.take_all_for_send(now) {
            out.push(Out::Send(self.chat_line(u.msg_id, u.payload)));
        }
        if !self.outbox.is_empty() {
            self.stalled_since = Some(now);
        }
    }

    /// The current connection ended.
    pub fn on_closed(&mut self, reason: &str, out: &mut Vec<Out>) {
        if let Some(c) = self.conn.take() {
            out.push(Out::Event(Event::Disconnected {
                addr: c.addr,
                reason: reason.to_string(),
            }));
        }
    }

    /// The user wants to send `payload` with the id `msg_id`.
    pub fn submit(&mut self, msg_id: String, payload: String, now: Instant, out: &mut Vec<Out>) {
        if let Err(full) = self.outbox.push(msg_id.clone(), payload.clone()) {
            let reason = format!(
                "{} messages are waiting for acknowledgement (the limit); wait for the cluster",
                full.cap
            );
            out.push(Out::Event(Event::Refused { msg_id, reason }));
            return;
        }
        out.push(Out::Event(Event::Queued {
            msg_id: msg_id.clone(),
            payload: payload.clone(),
        }));
        if self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
        if self.conn.is_some() {
            self.outbox.mark_sent(&msg_id, now);
            out.push(Out::Send(self.chat_line(msg_id, payload)));
        }
    }

    /// A line from the current connection.
    pub fn on_line(&mut self, line: ServerLine, now: Instant, out: &mut Vec<Out>) {
        match line {
            ServerLine::ChatAck { msg_id, seq_no } => self.acked(msg_id, seq_no, now, out),
            ServerLine::SeqChat(d) => self.delivered(d, now, out),
            ServerLine::Status(st) => self.status(st, out),
            ServerLine::HistoryEnd { .. }
            | ServerLine::Hello(_)
            | ServerLine::Rooms { .. }
            | ServerLine::Who { .. }
            | ServerLine::RoomEvent(_) => {}
            ServerLine::Error { code, message } => out.push(Out::Event(Event::Notice(format!(
                "node error ({code:?}): {message}"
            )))),
        }
    }

    /// Periodic work: resend what waited too long, refresh the status, give
    /// up on a node that acknowledges nothing.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<Out>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if now.saturating_duration_since(conn.last_status_at) >= self.s.status_every {
            conn.last_status_at = now;
            out.push(Out::Send(ClientLine::Status {}));
        }
        if let Some(since) = self.stalled_since {
            if now.saturating_duration_since(since) >= self.s.failover_after {
                self.stalled_since = Some(now);
                out.push(Out::Drop(format!(
                    "no acknowledgement for {} s",
                    self.s.failover_after.as_secs()
                )));
                return;
            }
        }
        for u in self.outbox.take_due(now, self.s.retry_after) {
            out.push(Out::Send(self.chat_line(u.msg_id, u.payload)));
        }
    }

    fn acked(&mut self, msg_id: String, seq_no: u64, now: Instant, out: &mut Vec<Out>) {
        if self.outbox.ack(&msg_id).is_none() {
            return; // already acknowledged (a retry's second ack) or not ours
        }
        self.stalled_since = if self.outbox.is_empty() {
            None
        } else {
            Some(now)
        };
        out.push(Out::Event(Event::Acked { msg_id, seq_no }));
    }

    fn delivered(&mut self, d: Delivered, now: Instant, out: &mut Vec<Out>) {
        if d.seq_no <= self.last_seq {
            return; // seen before this failover
        }
        self.last_seq = d.seq_no;
        self.resume_from = Some(d.seq_no + 1);
        if d.room_id != self.s.room {
            return;
        }
        if self.outbox.contains(&d.msg_id) {
            // Committed means acknowledged, even if the CHAT_ACK got lost
            // with a connection.
            self.acked(d.msg_id.clone(), d.seq_no, now, out);
        }
        out.push(Out::Event(Event::Delivered(d)));
    }

    fn status(&mut self, st: NodeStatus, out: &mut Vec<Out>) {
        for m in &st.members {
            self.addrs.learn(m.clone());
        }
        if let Some(a) = &st.leader_addr {
            self.addrs.learn(a.clone());
        }
        let first_subscribe = self.conn.as_ref().is_some_and(|c| !c.subscribed);
        if first_subscribe {
            let from = st
                .commit_seq
                .saturating_sub(self.s.history_window)
                .saturating_add(1)
                .max(self.last_seq + 1);
            self.resume_from = Some(from);
            out.push(Out::Send(self.subscribe_line(from)));
            if let Some(c) = self.conn.as_mut() {
                c.subscribed = true;
            }
        }
        out.push(Out::Event(Event::Status(st)));
    }

    fn subscribe_line(&self, from: u64) -> ClientLine {
        ClientLine::Subscribe {
            from_seq: Some(from),
            room_id: Some(self.s.room.clone()),
            rooms: Vec::new(),
        }
    }

    fn chat_line(&self, msg_id: String, payload: String) -> ClientLine {
        ClientLine::Chat {
            msg_id,
            payload,
            room_id: self.s.room.clone(),
            sender_id: self.s.sender_id,
            term: None,
            user: self.s.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let mut s = Settings::new("general".into(), Some("alice".into()), 7);
        s.max_unacked = 2;
        Session::new(s, AddrBook::new("a:1".into(), ["b:2".to_string()]))
    }

    fn delivered(seq: u64, msg_id: &str) -> ServerLine {
        ServerLine::SeqChat(Delivered {
            room_seq: 1,
            seq_no: seq,
            term: 1,
            msg_id: msg_id.into(),
            room_id: "general".into(),
            sender_id: 7,
            user: Some("alice".into()),
            payload: format!("m{seq}"),
            ts_ms: 0,
        })
    }

    fn status(commit: u64) -> ServerLine {
        ServerLine::Status(NodeStatus {
            node_id: 1,
            role: "leader".into(),
            term: 1,
            leader: Some(1),
            leader_addr: Some("a:1".into()),
            commit_seq: commit,
            log_commit: commit,
            log_last: commit,
            members: vec!["a:1".into(), "c:3".into()],
        })
    }

    fn sends(out: &[Out]) -> Vec<ClientLine> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    fn events(out: &[Out]) -> Vec<Event> {
        out.iter()
            .filter_map(|o| match o {
                Out::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn first_connect_subscribes_from_history_window_after_status() {
        let mut s = session();
        let t = Instant::now();
        let mut out = vec![];
        s.on_connected("a:1", t, &mut out);
        assert_eq!(sends(&out), vec![hello(), ClientLine::Status {}]);
        out.clear();
        s.on_line(status(1500), t, &mut out);
        assert_eq!(
            sends(&out),
            vec![ClientLine::Subscribe {
                from_seq: Some(501),
                room_id: Some("general".into()),
                rooms: Vec::new(),
            }]
        );
        assert_eq!(s.addrs.all(), ["a:1", "b:2", "c:3"]);
        // A later STATUS does not subscribe twice.
        out.clear();
        s.on_line(status(1600), t, &mut out);
        assert!(sends(&out).is_empty());
    }

    #[test]
    fn failover_resumes_after_last_seen_and_resends_same_msg_id() {
        let mut s = session();
        let t = Instant::now();
        let mut out = vec![];
        s.on_connected("a:1", t, &mut out);
        s.on_line(status(0), t, &mut out);
        s.submit("m-1".into(), "hello".into(), t, &mut out);
        s.on_line(delivered(1, "x"), t, &mut out);
        s.on_line(delivered(2, "y"), t, &mut out);
        out.clear();
        s.on_closed("eof", &mut out);
        assert!(!s.is_connected());
        out.clear();
        s.on_connected("b:2", t, &mut out);
        let lines = sends(&out);
        assert_eq!(lines[0], hello());
        assert_eq!(lines[1], ClientLine::Status {});
        assert_eq!(
            lines[2],
            ClientLine::Subscribe {
                from_seq: Some(3),
                room_id: Some("general".into()),
                rooms: Vec::new(),
            }
        );
        assert!(matches!(&lines[3], ClientLine::Chat { msg_id, .. } if msg_id == "m-1"));
        // The new node replays seq 2 (already shown): dropped.
        out.clear();
        s.on_line(delivered(2, "y"), t, &mut out);
        assert!(events(&out).is_empty());
    }

    #[test]
    fn ack_once_whether_by_chat_ack_or_own_seq_chat() {
        let mut s = session();
        let t = Instant::now();
        let mut out = vec![];
        s.on_connected("a:1", t, &mut out);
        s.submit("m-1".into(), "hello".into(), t, &mut out);
        out.clear();
        s.on_line(delivered(5, "m-1"), t, &mut out);
        s.on_line(
            ServerLine::ChatAck {
                msg_id: "m-1".into(),
                seq_no: 5,
            },
            t,
            &mut out,
        );
        let acks: Vec<_> = events(&out)
            .into_iter()
            .filter(|e| matches!(e, Event::Acked { .. }))
            .collect();
        assert_eq!(
            acks,
            vec![Event::Acked {
                msg_id: "m-1".into(),
                seq_no: 5
            }]
        );
        assert_eq!(s.unacked(), 0);
    }

    #[test]
    fn bounded_outbox_refuses() {
        let mut s = session();
        let t = Instant::now();
        let mut out = vec![];
        s.submit("1".into(), "a".into(), t, &mut out);
        s.submit("2".into(), "b".into(), t, &mut out);
        out.clear();
        s.submit("3".into(), "c".into(), t, &mut out);
        assert!(matches!(&events(&out)[0], Event::Refused { msg_id, .. } if msg_id == "3"));
        // Not connected: nothing was written.
        assert!(sends(&out).is_empty());
    }

    #[test]
    fn retry_after_timeout_then_give_up_on_silent_node() {
        let mut s = session();
        let t = Instant::now();
        let mut out = vec![];
        s.on_connected("a:1", t, &mut out);
        s.submit("m-1".into(), "hello".into(), t, &mut out);
        out.clear();
        s.on_tick(t + Duration::from_secs(1), &mut out);
        assert!(sends(&out).is_empty());
        s.on_tick(t + Duration::from_secs(3), &mut out);
        assert!(sends(&out)
            .iter()
            .any(|l| matches!(l, ClientLine::Chat { msg_id, .. } if msg_id == "m-1")));
        out.clear();
        s.on_tick(t + Duration::from_secs(10), &mut out);
        assert!(matches!(out.last(), Some(Out::Drop(_))));
    }

    #[test]
    fn other_rooms_are_skipped_but_advance_the_resume_point() {
        let mut s = session();
        let t = Instant::now();
        let mut out = vec![];
        s.on_connected("a:1", t, &mut out);
        let mut other = delivered(4, "z");
        if let ServerLine::SeqChat(d) = &mut other {
            d.room_id = "random".into();
        }
        out.clear();
        s.on_line(other, t, &mut out);
        assert!(events(&out).is_empty());
        s.on_closed("eof", &mut out);
        out.clear();
        s.on_connected("b:2", t, &mut out);
        assert!(sends(&out).contains(&ClientLine::Subscribe {
            from_seq: Some(5),
            room_id: Some("general".into()),
            rooms: Vec::new(),
        }));
    }
}
