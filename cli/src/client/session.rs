//! The client's protocol logic, free of sockets, threads and terminals: what to
//! send on (re)connect, what to show, what to resend. The driver (`net`) feeds
//! it connection events, server lines, UI requests and ticks, and executes its
//! outputs in order; the UIs (`tui`, `plain`) only see the resulting [`Event`]s.
//!
//! Invariants kept here:
//! - a connection opens with HELLO carrying the session's name; then one
//!   SUBSCRIBE of every joined room, from where each room left off
//!   (`joined.rs` keeps the per-room marks), so after a failover nothing is
//!   missed; a live chat is handed to the UI once per room number;
//! - a room's first screenful is asked as a HISTORY page below the room's
//!   count in a LIST answer taken after the subscription started (so the
//!   page and the live stream leave no gap between them); older pages only
//!   when the UI asks: the history is never fetched whole;
//! - every chat and room command (JOIN, PART, TOPIC, NICK) waits in the
//!   outbox until its CHAT_ACK, and is resent with the same `msg_id` on every
//!   (re)connect and after `retry_after` (the cluster applies it once); it is
//!   reported done exactly once;
//! - at most `max_unacked` of them are in flight; more are refused.

use super::addrs::AddrBook;
use super::joined::{Fetch, Joined, Kind, Page};
use super::outbox::Outbox;
use super::request::{Command, Request};
use super::wire::Who;
use chorus_core::client_wire::{
    ClientLine, Delivered, NodeStatus, RoomEventLine as RoomEvent, RoomInfo, ServerLine,
};
use std::time::{Duration, Instant};

/// What this client calls itself in HELLO.
const CLIENT: &str = concat!("chorus-client/", env!("CARGO_PKG_VERSION"));

/// The HELLO this client opens every connection with (full dialect), naming
/// the session.
pub fn hello(user: &str) -> ClientLine {
    ClientLine::Hello {
        proto: chorus_core::client_wire::PROTO,
        client: Some(CLIENT.into()),
        user: Some(user.to_string()),
    }
}

/// Tunables of a client session.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Rooms joined at start.
    pub rooms: Vec<String>,
    /// The session's name (HELLO `user`), shown on its messages.
    pub name: String,
    pub sender_id: u64,
    /// Most messages and commands sent but not acknowledged; more are refused.
    pub max_unacked: usize,
    /// Resend an unacknowledged message after this long without an ack.
    pub retry_after: Duration,
    /// Give up on a node that acknowledges nothing for this long while
    /// messages are pending (e.g. it sits in a minority partition).
    pub failover_after: Duration,
    /// Refresh the status line this often.
    pub status_every: Duration,
    /// Refresh the member list of the room on view this often (presence is
    /// not pushed).
    pub who_every: Duration,
    /// Chats per HISTORY page: the first screenful of a room, and each page
    /// further back.
    pub page: u64,
}

impl Settings {
    pub fn new(rooms: Vec<String>, name: String, sender_id: u64) -> Settings {
        Settings {
            rooms,
            name,
            sender_id,
            max_unacked: 1000,
            retry_after: Duration::from_secs(3),
            failover_after: Duration::from_secs(10),
            status_every: Duration::from_secs(2),
            who_every: Duration::from_secs(3),
            page: 100,
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
    /// A chat was accepted for sending (it is pending until `Acked`).
    Queued {
        msg_id: String,
        room: String,
        payload: String,
    },
    /// A chat or command was not accepted (the outbox is full).
    Refused { msg_id: String, reason: String },
    /// A committed chat of a joined room, live: once per room number, in
    /// increasing order within the room.
    Delivered(Delivered),
    /// A committed chat from a HISTORY page (older than the live ones; may
    /// repeat one already delivered).
    History(Delivered),
    /// A HISTORY page of `room` is complete (`initial`: its first screenful).
    PageEnd { room: String, initial: bool },
    /// One of our chats is committed at `seq_no` (reported once).
    Acked { msg_id: String, seq_no: u64 },
    /// One of our room commands is committed (reported once).
    Done { msg_id: String, cmd: Command },
    /// A join / leave / topic / nick in a joined room.
    RoomEvent(RoomEvent),
    /// A room's members and topic (polled while the room is on view).
    Who(Who),
    /// The LIST answer.
    Rooms {
        rooms: Vec<RoomInfo>,
        truncated: bool,
    },
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

fn send(line: ClientLine) -> Out {
    Out::Send(line)
}

fn who_line(room: &str) -> Out {
    Out::Send(ClientLine::Who {
        room_id: room.to_string(),
    })
}

#[derive(Debug)]
struct Conn {
    addr: String,
    last_status_at: Instant,
    last_who_at: Instant,
    /// STATUS lines written / answered on this connection.
    statuses_sent: u64,
    statuses_seen: u64,
    /// The STATUS answer after which the latest SUBSCRIBE is the one streaming.
    barrier: Option<u64>,
    /// LIST asked so that first screenfuls can be fetched after its answer.
    list_for_fetch: bool,
}

/// The client state across connections.
#[derive(Debug)]
pub struct Session {
    s: Settings,
    conn: Option<Conn>,
    /// The committed name (HELLO `user`); a NICK changes it once acknowledged.
    name: String,
    joined: Joined,
    /// A SUBSCRIBE was sent once (later connections resume it).
    subscribed: bool,
    /// Highest chat number known to exist (STATUS or a live line): where a
    /// room joined now starts live.
    high_seq: u64,
    /// The room on view, whose members are polled (None: no UI shows
    /// members, e.g. the plain mode).
    view: Option<String>,
    outbox: Outbox,
    /// Since when pending messages have waited without any ack on this
    /// connection (None while nothing is pending).
    stalled_since: Option<Instant>,
    pub addrs: AddrBook,
}

impl Session {
    /// A session that joins `s.rooms` once connected.
    pub fn new(s: Settings, addrs: AddrBook) -> Session {
        let mut session = Session {
            outbox: Outbox::new(s.max_unacked),
            name: s.name.clone(),
            conn: None,
            joined: Joined::default(),
            subscribed: false,
            high_seq: 0,
            view: None,
            stalled_since: None,
            addrs,
            s,
        };
        let now = Instant::now();
        let mut out = Vec::new();
        for room in session.s.rooms.clone() {
            let id = uuid::Uuid::new_v4().to_string();
            session.request(id, Request::Do(Command::Join { room }), now, &mut out);
        }
        session
    }

    #[cfg(test)]
    pub fn unacked(&self) -> usize {
        self.outbox.len()
    }

    #[cfg(test)]
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// A new connection to `addr` is up: HELLO with our name, resume the
    /// subscription (or ask STATUS to start one), resend everything
    /// unacknowledged.
    pub fn on_connected(&mut self, addr: &str, now: Instant, out: &mut Vec<Out>) {
        out.push(Out::Event(Event::Connected {
            addr: addr.to_string(),
        }));
        out.push(Out::Send(hello(&self.name)));
        self.conn = Some(Conn {
            addr: addr.to_string(),
            last_status_at: now,
            last_who_at: now,
            statuses_sent: 0,
            statuses_seen: 0,
            barrier: None,
            list_for_fetch: false,
        });
        if self.subscribed {
            self.subscribe(out);
        } else {
            self.ask_status(out);
        }
        for u in self.outbox.take_all_for_send(now) {
            out.push(Out::Send(u.cmd.line(
                u.msg_id,
                self.s.sender_id,
                Some(&self.name),
            )));
        }
        if !self.outbox.is_empty() {
            self.stalled_since = Some(now);
        }
        self.ask_who(now, out);
    }

    /// The current connection ended.
    pub fn on_closed(&mut self, reason: &str, out: &mut Vec<Out>) {
        if let Some(c) = self.conn.take() {
            self.joined.disconnected();
            out.push(Out::Event(Event::Disconnected {
                addr: c.addr,
                reason: reason.to_string(),
            }));
        }
    }

    /// The UI asks for something (`msg_id` names it if it is a command).
    pub fn request(&mut self, msg_id: String, r: Request, now: Instant, out: &mut Vec<Out>) {
        match r {
            Request::Do(cmd) => self.submit(msg_id, cmd, now, out),
            Request::Who(room) => {
                if self.conn.is_some() {
                    out.push(who_line(&room));
                }
            }
            Request::List => {
                if self.conn.is_some() {
                    out.push(send(ClientLine::List {}));
                }
            }
            Request::Older { room, before } => self.older(room, before, out),
            Request::View(room) => {
                self.view = room;
                self.ask_who(now, out);
            }
        }
    }

    fn submit(&mut self, msg_id: String, cmd: Command, now: Instant, out: &mut Vec<Out>) {
        if let Err(full) = self.outbox.push(msg_id.clone(), cmd.clone()) {
            let reason = format!(
                "{} messages are waiting for acknowledgement (the limit); wait for the cluster",
                full.cap
            );
            out.push(Out::Event(Event::Refused { msg_id, reason }));
            return;
        }
        if let Command::Chat { room, payload } = &cmd {
            out.push(Out::Event(Event::Queued {
                msg_id: msg_id.clone(),
                room: room.clone(),
                payload: payload.clone(),
            }));
        }
        if self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
        if self.conn.is_some() {
            self.outbox.mark_sent(&msg_id, now);
            out.push(Out::Send(cmd.line(
                msg_id,
                self.s.sender_id,
                Some(&self.name),
            )));
        }
        // Rooms are streamed from the moment they are asked for (a SUBSCRIBE
        // needs no membership), so the user sees the room at once.
        match cmd {
            Command::Join { room } => {
                let added = self.joined.add(&room, self.high_seq);
                if added && self.subscribed {
                    self.subscribe(out);
                }
            }
            Command::Part { room } => {
                self.joined.remove(&room);
                if self.subscribed && !self.joined.is_empty() {
                    self.subscribe(out);
                }
            }
            _ => {}
        }
    }

    /// A line from the current connection.
    pub fn on_line(&mut self, line: ServerLine, now: Instant, out: &mut Vec<Out>) {
        match line {
            ServerLine::ChatAck { msg_id, seq_no } => self.acked(msg_id, seq_no, now, out),
            ServerLine::SeqChat(d) => self.delivered(d, now, out),
            ServerLine::Status(st) => self.status(st, out),
            ServerLine::HistoryEnd { .. } => {
                if let Some(p) = self.joined.page_done() {
                    out.push(Out::Event(Event::PageEnd {
                        room: p.room,
                        initial: p.initial,
                    }));
                }
                self.list_if_unfetched(out);
            }
            ServerLine::Hello(_) => {}
            ServerLine::Rooms { rooms, truncated } => self.rooms(rooms, truncated, out),
            ServerLine::Error { code, message } => out.push(Out::Event(Event::Notice(format!(
                "node error ({code:?}): {message}"
            )))),
            ServerLine::Who {
                room_id,
                topic,
                members,
                truncated,
            } => out.push(Out::Event(Event::Who(Who {
                room_id,
                topic,
                members,
                truncated,
            }))),
            ServerLine::RoomEvent(e) => {
                if !self.joined.contains(&e.room_id) {
                    return;
                }
                if self.view.as_deref() == Some(e.room_id.as_str()) {
                    // Members changed: refresh the list now, not at the next poll.
                    out.push(who_line(&e.room_id));
                }
                out.push(Out::Event(Event::RoomEvent(e)));
            }
        }
    }

    /// Periodic work: resend what waited too long, refresh the status and
    /// the members on view, give up on a node that acknowledges nothing.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<Out>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if now.saturating_duration_since(conn.last_status_at) >= self.s.status_every {
            conn.last_status_at = now;
            self.ask_status(out);
        }
        self.ask_who(now, out);
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
            out.push(Out::Send(u.cmd.line(
                u.msg_id,
                self.s.sender_id,
                Some(&self.name),
            )));
        }
    }

    fn ask_status(&mut self, out: &mut Vec<Out>) {
        if let Some(c) = self.conn.as_mut() {
            c.statuses_sent += 1;
            out.push(send(ClientLine::Status {}));
        }
    }

    /// WHO of the room on view, if due (or `now` is the first time).
    fn ask_who(&mut self, now: Instant, out: &mut Vec<Out>) {
        let (Some(c), Some(room)) = (self.conn.as_mut(), self.view.as_ref()) else {
            return;
        };
        let fresh = c.last_who_at == now;
        if fresh || now.saturating_duration_since(c.last_who_at) >= self.s.who_every {
            c.last_who_at = now;
            out.push(who_line(room));
        }
    }

    /// One SUBSCRIBE of every joined room from where they left off, then a
    /// STATUS as its barrier, then LIST if a first screenful is missing.
    fn subscribe(&mut self, out: &mut Vec<Out>) {
        self.subscribed = true;
        if self.conn.is_none() || self.joined.is_empty() {
            return;
        }
        out.push(send(ClientLine::Subscribe {
            from_seq: Some(self.joined.resume_from()),
            room_id: None,
            rooms: self.joined.names(),
        }));
        self.joined.resubscribed();
        self.ask_status(out);
        if let Some(c) = self.conn.as_mut() {
            c.barrier = Some(c.statuses_sent);
        }
        self.list_if_unfetched(out);
    }

    /// Asks LIST if a room's first screenful is still to be fetched (after
    /// a subscription, or once a page is answered when too many were out).
    fn list_if_unfetched(&mut self, out: &mut Vec<Out>) {
        if let Some(c) = self.conn.as_mut() {
            if !self.joined.to_fetch().is_empty() && !c.list_for_fetch {
                c.list_for_fetch = true;
                out.push(send(ClientLine::List {}));
            }
        }
    }

    /// A page further back in `room`, below room_seq `before`.
    /// When it cannot be asked now (no connection, too many pages out),
    /// the UI is told the page ended, so that it may ask again.
    fn older(&mut self, room: String, before: u64, out: &mut Vec<Out>) {
        let page = Page {
            lo: before.saturating_sub(self.s.page).max(1),
            hi: before.saturating_sub(1),
            room: room.clone(),
            initial: false,
        };
        let ok = self.conn.is_some() && before > 1 && self.joined.contains(&room);
        if ok && self.joined.ask_page(page) {
            out.push(self.page_line(room, before));
        } else {
            out.push(Out::Event(Event::PageEnd {
                room,
                initial: false,
            }));
        }
    }

    fn page_line(&self, room: String, before: u64) -> Out {
        send(ClientLine::History {
            from_seq: None,
            limit: Some(self.s.page as usize),
            room_id: Some(room),
            after: None,
            before: Some(before),
        })
    }

    /// A LIST answer: ask the first screenful of every room that lacks one
    /// (rooms not listed have no messages yet).
    fn rooms(&mut self, rooms: Vec<RoomInfo>, truncated: bool, out: &mut Vec<Out>) {
        let fetch = self
            .conn
            .as_mut()
            .is_some_and(|c| std::mem::take(&mut c.list_for_fetch));
        if fetch {
            for room in self.joined.to_fetch() {
                let count = rooms
                    .iter()
                    .find(|r| r.room_id == room)
                    .map_or(0, |r| r.messages);
                let page = Page {
                    room: room.clone(),
                    lo: count.saturating_sub(self.s.page) + 1,
                    hi: count,
                    initial: true,
                };
                if count == 0 {
                    self.joined.set_fetch(&room, Fetch::Done);
                    out.push(Out::Event(Event::PageEnd {
                        room,
                        initial: true,
                    }));
                } else if self.joined.ask_page(page) {
                    self.joined.set_fetch(&room, Fetch::Asked);
                    out.push(self.page_line(room, count + 1));
                }
            }
        }
        out.push(Out::Event(Event::Rooms { rooms, truncated }));
    }

    fn acked(&mut self, msg_id: String, seq_no: u64, now: Instant, out: &mut Vec<Out>) {
        let Some(u) = self.outbox.ack(&msg_id) else {
            return; // already acknowledged (a retry's second ack) or not ours
        };
        self.stalled_since = if self.outbox.is_empty() {
            None
        } else {
            Some(now)
        };
        match u.cmd {
            Command::Chat { .. } => out.push(Out::Event(Event::Acked { msg_id, seq_no })),
            cmd => {
                if let Command::Nick { name } = &cmd {
                    self.name = name.clone();
                }
                out.push(Out::Event(Event::Done { msg_id, cmd }));
            }
        }
    }

    fn delivered(&mut self, d: Delivered, now: Instant, out: &mut Vec<Out>) {
        match self.joined.classify(&d.room_id, d.seq_no, d.room_seq) {
            Kind::Skip => {}
            Kind::History => out.push(Out::Event(Event::History(d))),
            Kind::Live => {
                self.high_seq = self.high_seq.max(d.seq_no);
                if self.outbox.contains(&d.msg_id) {
                    // Committed means acknowledged, even if the CHAT_ACK got
                    // lost with a connection.
                    self.acked(d.msg_id.clone(), d.seq_no, now, out);
                }
                out.push(Out::Event(Event::Delivered(d)));
            }
        }
    }

    fn status(&mut self, st: NodeStatus, out: &mut Vec<Out>) {
        for m in &st.members {
            self.addrs.learn(m.clone());
        }
        if let Some(a) = &st.leader_addr {
            self.addrs.learn(a.clone());
        }
        self.high_seq = self.high_seq.max(st.commit_seq);
        if let Some(c) = self.conn.as_mut() {
            c.statuses_seen += 1;
            if c.barrier.is_some_and(|b| c.statuses_seen >= b) {
                c.barrier = None;
                self.joined.settle();
            }
        }
        if !self.subscribed {
            // The first subscription: live from here on, the first
            // screenfuls come as HISTORY pages.
            self.joined.cover_all(st.commit_seq);
            self.subscribe(out);
        }
        out.push(Out::Event(Event::Status(st)));
    }
}

#[cfg(test)]
mod tests;
