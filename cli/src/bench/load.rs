//! The load generator: every client connection driven by one mio thread, so
//! the generator costs one core at most and usually far less (the nodes share
//! the same 2 cores).
//!
//! - Closed loop: client c owns the msg indexes `[c*M/N, (c+1)*M/N)` and keeps
//!   up to `window` of them unacknowledged.
//! - Open loop (`rate`): message k is due at `k / rate` seconds and goes to
//!   client `k % N`; its latency counts from that intended time, so a stall
//!   shows up in the percentiles instead of silently slowing the sender
//!   (no coordinated omission).
//!
//! A connection that breaks, or gives no acknowledgement for `retry_ms` while
//! messages are in flight, is replaced by one to the next address, and every
//! unacknowledged message is resent there with the same msg_id, so the
//! cluster's dedup keeps each message delivered once. The run is bounded by a message count and by
//! `max_duration`; `stop` ends issuing early and drains what is in flight.

use super::proto::{self, Hot, MsgIds};
use super::Clock;
use chorus_runtime_mio::transport::Transport;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What to send.
#[derive(Clone, Debug)]
pub struct Spec {
    pub addrs: Vec<SocketAddr>,
    pub clients: usize,
    pub window: usize,
    pub total: u64,
    /// Messages per second over all clients (open loop); None = closed loop.
    pub rate: Option<f64>,
    pub payload: String,
    pub retry_ms: u64,
    /// Hard bound on the whole run, draining included.
    pub max_duration: Duration,
    /// After `stop`, how long to wait for in-flight acknowledgements.
    pub drain: Duration,
}

/// Counters readable while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    pub issued: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    pub resent: AtomicU64,
    pub reconnects: AtomicU64,
    pub done: AtomicBool,
}

/// What happened to every message.
#[derive(Debug, Default)]
pub struct Outcome {
    /// First send time (closed loop) or intended send time (open loop), µs + 1.
    pub sent_us: Vec<u32>,
    /// First acknowledgement time, µs + 1 (0 = never acknowledged).
    pub ack_us: Vec<u32>,
    /// seq_no of the first acknowledgement.
    pub ack_seq: Vec<u64>,
    pub issued: u64,
    pub acked: u64,
    /// Extra acknowledgements of a msg_id (answers to our own resends).
    pub dup_acks: u64,
    /// A second acknowledgement of a msg_id with another seq_no: a safety bug.
    pub seq_conflicts: u64,
    pub errors: u64,
    pub resent: u64,
    pub reconnects: u64,
    /// The run hit `max_duration` with messages still unacknowledged.
    pub timed_out: bool,
}

#[derive(Debug)]
struct Conn {
    stream: Transport,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
}

#[derive(Debug)]
struct Client {
    target: usize,
    conn: Option<Conn>,
    reconnect_at_us: u64,
    /// Issued messages in issue order; acknowledged ones are popped lazily.
    queue: VecDeque<u64>,
    inflight: usize,
    next: u64,
    end: u64,
    last_progress_us: u64,
}

struct Gen<'a> {
    spec: &'a Spec,
    ids: &'a MsgIds,
    clock: &'a Clock,
    live: &'a Live,
    poll: Poll,
    clients: Vec<Client>,
    out: Outcome,
    /// Open loop: the next message index to issue.
    next_k: u64,
    /// When the run started (open-loop schedule origin), µs on `clock`.
    t0: u64,
    /// Socket reads land here first.
    scratch: Vec<u8>,
}

/// Runs the load to completion (or `stop` + drain, or `max_duration`).
pub fn run(spec: &Spec, ids: &MsgIds, clock: &Clock, live: &Live, stop: &AtomicBool) -> Outcome {
    let n = spec.total as usize;
    let clients = (0..spec.clients)
        .map(|c| Client {
            target: c % spec.addrs.len(),
            conn: None,
            reconnect_at_us: 0,
            queue: VecDeque::new(),
            inflight: 0,
            next: spec.total * c as u64 / spec.clients as u64,
            end: spec.total * (c as u64 + 1) / spec.clients as u64,
            last_progress_us: 0,
        })
        .collect();
    let mut g = Gen {
        spec,
        ids,
        clock,
        live,
        poll: Poll::new().expect("create a mio poll"),
        clients,
        out: Outcome {
            sent_us: vec![0; n],
            ack_us: vec![0; n],
            ack_seq: vec![0; n],
            ..Outcome::default()
        },
        next_k: 0,
        t0: clock.now_us(),
        scratch: vec![0; 64 * 1024],
    };
    g.run(stop);
    live.done.store(true, Ordering::Relaxed);
    g.out
}

impl Gen<'_> {
    fn run(&mut self, stop: &AtomicBool) {
        let mut events = Events::with_capacity(1024);
        let started = self.t0;
        let hard_end = started + self.spec.max_duration.as_micros() as u64;
        let mut drain_end: Option<u64> = None;
        let mut last_housekeeping = 0u64;
        for c in 0..self.clients.len() {
            self.connect(c, started);
        }
        loop {
            let now = self.clock.now_us();
            let stopping = stop.load(Ordering::Relaxed);
            if stopping && drain_end.is_none() {
                drain_end = Some(now + self.spec.drain.as_micros() as u64);
            }
            if !stopping {
                self.issue_due(now);
            }
            if self.all_acked(stopping) {
                break;
            }
            if now >= hard_end || drain_end.is_some_and(|d| now >= d) {
                self.out.timed_out = !self.all_acked(true);
                break;
            }
            if now >= last_housekeeping + 10_000 {
                last_housekeeping = now;
                self.housekeeping(now);
            }
            self.flush_all();
            let timeout = self.poll_timeout(now, stopping);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    panic!("mio poll failed: {e}");
                }
            }
            let now = self.clock.now_us();
            for ev in events.iter() {
                let c = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read(c, now);
                }
                if ev.is_writable() {
                    self.flush(c, now);
                }
            }
        }
        self.out.errors = self.live.errors.load(Ordering::Relaxed);
        self.out.resent = self.live.resent.load(Ordering::Relaxed);
        self.out.reconnects = self.live.reconnects.load(Ordering::Relaxed);
    }

    fn all_acked(&self, stopping: bool) -> bool {
        let issued_all = stopping
            || match self.spec.rate {
                Some(_) => self.next_k >= self.spec.total,
                None => self.clients.iter().all(|c| c.next >= c.end),
            };
        issued_all && self.clients.iter().all(|c| c.inflight == 0)
    }

    fn poll_timeout(&self, now: u64, stopping: bool) -> Duration {
        let mut us = 10_000;
        if let (Some(rate), false) = (self.spec.rate, stopping) {
            if self.next_k < self.spec.total {
                let due = self.t0 + intended_us(self.next_k, rate);
                us = us.min(due.saturating_sub(now));
            }
        }
        Duration::from_micros(us)
    }

    /// Issues everything the schedule allows now.
    fn issue_due(&mut self, now: u64) {
        match self.spec.rate {
            Some(rate) => {
                let base = self.t0;
                while self.next_k < self.spec.total {
                    let at = base + intended_us(self.next_k, rate);
                    if at > now {
                        break;
                    }
                    let c = (self.next_k % self.clients.len() as u64) as usize;
                    self.issue(c, self.next_k, at);
                    self.next_k += 1;
                }
            }
            None => {
                for c in 0..self.clients.len() {
                    self.top_up(c, now);
                }
            }
        }
    }

    fn top_up(&mut self, c: usize, now: u64) {
        while self.clients[c].inflight < self.spec.window
            && self.clients[c].next < self.clients[c].end
        {
            let g = self.clients[c].next;
            self.clients[c].next += 1;
            self.issue(c, g, now);
        }
    }

    fn issue(&mut self, c: usize, g: u64, sent_us: u64) {
        self.out.sent_us[g as usize] = to_u32_plus1(sent_us);
        self.out.issued += 1;
        self.live.issued.fetch_add(1, Ordering::Relaxed);
        let cl = &mut self.clients[c];
        cl.queue.push_back(g);
        cl.inflight += 1;
        if cl.inflight == 1 {
            cl.last_progress_us = sent_us.max(cl.last_progress_us);
        }
        if let Some(conn) = cl.conn.as_mut() {
            proto::write_chat(&mut conn.wbuf, self.ids, g, &self.spec.payload);
        }
    }

    fn connect(&mut self, c: usize, now: u64) {
        let addr = self.spec.addrs[self.clients[c].target];
        let std = match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => s,
            Err(_) => return self.disconnected(c, now),
        };
        if std.set_nodelay(true).is_err() || std.set_nonblocking(true).is_err() {
            return self.disconnected(c, now);
        }
        let mut tcp = TcpStream::from_std(std);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut tcp, Token(c), interest)
            .is_err()
        {
            return self.disconnected(c, now);
        }
        let stream = match proto::tls() {
            None => Transport::Plain(tcp),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                match Transport::tls_client(tcp, cfg.clone(), name) {
                    Ok(t) => t,
                    Err(_) => return self.disconnected(c, now),
                }
            }
        };
        self.clients[c].conn = Some(Conn {
            stream,
            rbuf: Vec::with_capacity(64 * 1024),
            wbuf: Vec::with_capacity(64 * 1024),
            wpos: 0,
        });
        self.clients[c].last_progress_us = now;
        if let Some(conn) = self.clients[c].conn.as_mut() {
            // The node's HELLO answer is skipped by `proto::scan` (Other).
            conn.wbuf.extend_from_slice(proto::hello().as_bytes());
        }
        self.resend_unacked(c);
    }

    /// The connection broke: try the next node after a short pause.
    fn disconnected(&mut self, c: usize, now: u64) {
        let cl = &mut self.clients[c];
        if let Some(mut conn) = cl.conn.take() {
            let _ = self.poll.registry().deregister(conn.stream.tcp_mut());
        }
        cl.target = (cl.target + 1) % self.spec.addrs.len();
        cl.reconnect_at_us = now + 20_000;
        self.live.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Reconnects, and resends what made no progress for `retry_ms`.
    fn housekeeping(&mut self, now: u64) {
        for c in 0..self.clients.len() {
            let ack_us = &self.out.ack_us;
            let cl = &mut self.clients[c];
            while cl.queue.front().is_some_and(|&g| ack_us[g as usize] != 0) {
                cl.queue.pop_front();
            }
            if cl.conn.is_none() {
                if now >= cl.reconnect_at_us {
                    self.connect(c, now);
                }
            } else if cl.inflight > 0
                && now.saturating_sub(cl.last_progress_us) > self.spec.retry_ms * 1000
            {
                // No answer for retry_ms: the node may hang with the socket
                // open. Move to the next node; the reconnect resends all that
                // is unacknowledged, with the same msg_ids.
                cl.last_progress_us = now;
                self.disconnected(c, now);
            }
        }
    }

    /// Writes every unacknowledged message of client `c` again (same msg_ids).
    fn resend_unacked(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        let Some(conn) = cl.conn.as_mut() else {
            return;
        };
        let mut resent = 0;
        for &g in &cl.queue {
            if self.out.ack_us[g as usize] == 0 {
                proto::write_chat(&mut conn.wbuf, self.ids, g, &self.spec.payload);
                resent += 1;
            }
        }
        self.live.resent.fetch_add(resent, Ordering::Relaxed);
    }

    fn flush_all(&mut self) {
        let now = self.clock.now_us();
        for c in 0..self.clients.len() {
            let pending = self.clients[c]
                .conn
                .as_ref()
                .is_some_and(|k| k.wpos < k.wbuf.len() || k.stream.has_pending_tls());
            if pending {
                self.flush(c, now);
            }
        }
    }

    fn flush(&mut self, c: usize, now: u64) {
        let Some(conn) = self.clients[c].conn.as_mut() else {
            return;
        };
        while conn.wpos < conn.wbuf.len() {
            match conn.stream.write(&conn.wbuf[conn.wpos..]) {
                Ok(0) => return self.disconnected(c, now),
                Ok(n) => conn.wpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.disconnected(c, now),
            }
        }
        conn.wbuf.clear();
        conn.wpos = 0;
        if conn.stream.flush_tls().is_err() {
            self.disconnected(c, now);
        }
    }

    fn read(&mut self, c: usize, now: u64) {
        let mut closed = false;
        let Some(conn) = self.clients[c].conn.as_mut() else {
            return;
        };
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        // Read into a scratch buffer that stays zeroed-once, then copy only
        // what arrived (zero-filling 64 KiB per read was 23% of the
        // generator's CPU in perf).
        let scratch = &mut self.scratch;
        loop {
            match conn.stream.read(&mut scratch[..]) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => rbuf.extend_from_slice(&scratch[..n]),
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock => break,
                    ErrorKind::Interrupted => continue,
                    _ => {
                        closed = true;
                        break;
                    }
                },
            }
        }
        let mut start = 0;
        while let Some(nl) = rbuf[start..].iter().position(|&b| b == b'\n') {
            self.on_line(c, &rbuf[start..start + nl], now);
            start += nl + 1;
        }
        rbuf.drain(..start);
        if closed {
            self.disconnected(c, now);
        } else if let Some(conn) = self.clients[c].conn.as_mut() {
            conn.rbuf = rbuf;
        }
    }

    fn on_line(&mut self, c: usize, line: &[u8], now: u64) {
        match proto::scan(line) {
            Hot::Ack { msg_id, seq_no } => {
                let Some(g) = self.ids.parse(msg_id).filter(|&g| g < self.spec.total) else {
                    return;
                };
                let g = g as usize;
                if self.out.ack_us[g] != 0 {
                    self.out.dup_acks += 1;
                    if self.out.ack_seq[g] != seq_no {
                        self.out.seq_conflicts += 1;
                    }
                    return;
                }
                self.out.ack_us[g] = to_u32_plus1(now);
                self.out.ack_seq[g] = seq_no;
                self.out.acked += 1;
                self.live.acked.fetch_add(1, Ordering::Relaxed);
                let cl = &mut self.clients[c];
                cl.inflight = cl.inflight.saturating_sub(1);
                cl.last_progress_us = now;
                if self.spec.rate.is_none() {
                    self.top_up(c, now);
                }
            }
            Hot::Error => {
                self.live.errors.fetch_add(1, Ordering::Relaxed);
            }
            Hot::Chat { .. } | Hot::Other => {}
        }
    }
}

/// When message k of an open-loop run is due, in µs after the run start.
fn intended_us(k: u64, rate: f64) -> u64 {
    (k as f64 * 1e6 / rate) as u64
}

fn to_u32_plus1(us: u64) -> u32 {
    (us + 1).min(u64::from(u32::MAX)) as u32
}
