//! Client-protocol helpers for end-to-end tests against real nodes: `Conn`, a
//! raw line connection where every read has a deadline; `chat`, the seed
//! client's exact CHAT line; `Pacer`, a client that sends one CHAT every
//! `interval` (or a pipelined burst), records when each CHAT_ACK arrived,
//! fails over to the next address when its node dies and resends every
//! unacknowledged message with the same msg_id (the design's client
//! contract), so tests can check "every acknowledged message is in every log".
//!
//! Invariant kept: a msg_id acknowledged twice with two different seq_nos is
//! recorded as an error (tests assert there are none).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The seed client's exact CHAT line.
pub fn chat(msg_id: &str, payload: &str) -> Value {
    json!({"type":"CHAT","sender_id":9999,"term":0,"room_id":"general","msg_id":msg_id,"payload":payload})
}

/// The HELLO line (with its newline) chorus's test clients open with.
pub fn hello() -> String {
    chorus_core::client_wire::hello_line("chorus-tests/0") + "\n"
}

/// A line connection to a node; reads are bounded by explicit deadlines.
pub struct Conn {
    pub w: TcpStream,
    r: BufReader<TcpStream>,
    /// Bytes of a line not complete yet (kept across read timeouts).
    partial: Vec<u8>,
}

impl Conn {
    /// A chorus client connection: HELLO sent and the node's HELLO read.
    pub fn connect(addr: &str) -> io::Result<Conn> {
        let mut c = Conn::connect_seed(addr)?;
        c.send_raw(hello().as_bytes())?;
        match c.recv(Duration::from_secs(5)) {
            Ok(Some(v)) if v["type"] == "HELLO" => Ok(c),
            other => Err(io::Error::other(format!("HELLO answered with {other:?}"))),
        }
    }

    /// A connection that never says HELLO (the seed dialect).
    pub fn connect_seed(addr: &str) -> io::Result<Conn> {
        let sock: SocketAddr = addr.parse().map_err(io::Error::other)?;
        let w = TcpStream::connect_timeout(&sock, Duration::from_secs(1))?;
        w.set_nodelay(true)?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Conn {
            w,
            r,
            partial: Vec::new(),
        })
    }

    pub fn send(&mut self, v: &Value) -> io::Result<()> {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.w.write_all(&line)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)
    }

    /// The next line within `timeout`: `Ok(Some)`, `Ok(None)` when the node
    /// closed the connection (EOF or reset), `Err` on timeout.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Value>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no line within {timeout:?}"));
            }
            self.r.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.r.read_until(b'\n', &mut self.partial) {
                Ok(0) => return Ok(None),
                Ok(_) if self.partial.ends_with(b"\n") => {
                    let line = std::mem::take(&mut self.partial);
                    return serde_json::from_slice(&line).map(Some).map_err(|e| {
                        format!(
                            "not a JSON line ({e}): {:?}",
                            String::from_utf8_lossy(&line)
                        )
                    });
                }
                Ok(_) => return Ok(None), // EOF inside a line
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Ok(None), // reset: closed
            }
        }
    }

    /// The next line of type `ty` (others skipped); panics with what was seen.
    pub fn recv_type(&mut self, ty: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(Some(v)) if v["type"] == ty => return v,
                Ok(Some(v)) => seen.push(v),
                Ok(None) => panic!("connection closed while waiting for {ty}; saw {seen:?}"),
                Err(e) => panic!("no {ty} line: {e}; saw {seen:?}"),
            }
        }
    }

    /// One CHAT, waiting for its CHAT_ACK; returns the seq_no.
    pub fn chat_acked(&mut self, msg_id: &str, payload: &str, timeout: Duration) -> u64 {
        self.send(&chat(msg_id, payload)).expect("send CHAT");
        let ack = self.recv_type("CHAT_ACK", timeout);
        assert_eq!(ack["msg_id"], msg_id, "{ack}");
        ack["seq_no"].as_u64().expect("CHAT_ACK has a seq_no")
    }
}

/// When a CHAT_ACK arrived and what it said.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    pub seq_no: u64,
    pub at: Instant,
}

/// What a pacer did, for assertions.
#[derive(Debug, Default)]
pub struct PacerReport {
    /// Every msg_id issued, in the order first sent.
    pub sent: Vec<String>,
    /// msg_id → its first acknowledgement.
    pub acks: BTreeMap<String, Ack>,
    /// ERROR lines, conflicting acks, unparsable lines.
    pub errors: Vec<String>,
    /// Connections opened after the first (failovers).
    pub reconnects: usize,
    /// Messages sent again with the same msg_id (after a timeout or failover).
    pub resends: usize,
}

impl PacerReport {
    pub fn unacked(&self) -> Vec<&String> {
        self.sent
            .iter()
            .filter(|id| !self.acks.contains_key(*id))
            .collect()
    }

    /// msg_id → acknowledged seq_no (for `logs::wait_converged`).
    pub fn acked_seqs(&self) -> BTreeMap<String, u64> {
        self.acks
            .iter()
            .map(|(id, a)| (id.clone(), a.seq_no))
            .collect()
    }

    /// Acknowledgement instants, sorted.
    pub fn ack_times(&self) -> Vec<Instant> {
        let mut t: Vec<Instant> = self.acks.values().map(|a| a.at).collect();
        t.sort();
        t
    }

    /// One line for failure messages.
    pub fn summary(&self) -> String {
        let un = self.unacked();
        format!(
            "sent {}, acked {}, unacked {} (first: {:?}), reconnects {}, resends {}, errors {:?}",
            self.sent.len(),
            self.acks.len(),
            un.len(),
            un.iter().take(5).collect::<Vec<_>>(),
            self.reconnects,
            self.resends,
            self.errors.iter().take(5).collect::<Vec<_>>()
        )
    }
}

/// How a pacer sends.
#[derive(Clone, Debug)]
pub struct PacerOpts {
    /// msg_ids are `<tag>-<n>`, payloads `<tag> <n>`.
    pub tag: String,
    /// Nodes to use, the first first; on a failure the next one (cyclically).
    pub addrs: Vec<String>,
    /// Time between two sends of `batch` new messages; zero sends `max` as
    /// one pipelined burst.
    pub interval: Duration,
    /// New messages written back to back at each tick (default 1).
    pub batch: usize,
    /// Stop issuing new messages after this many.
    pub max: Option<usize>,
    /// Resend an unacknowledged message (same msg_id) after this long.
    pub retry_after: Duration,
    /// Pad each payload with `.` to at least this many bytes.
    pub payload_bytes: usize,
}

impl PacerOpts {
    pub fn new(tag: &str, addrs: Vec<String>, interval: Duration) -> PacerOpts {
        PacerOpts {
            tag: tag.to_string(),
            addrs,
            interval,
            batch: 1,
            max: None,
            retry_after: Duration::from_secs(3),
            payload_bytes: 0,
        }
    }
}

#[derive(Default)]
struct Shared {
    report: PacerReport,
    /// Generation of the live connection; readers of older ones are ignored.
    generation: usize,
    dead: bool,
}

/// A paced chat client running on its own thread.
pub struct Pacer {
    shared: Arc<Mutex<Shared>>,
    stopping: Arc<AtomicBool>,
    drain_deadline: Arc<Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    pub fn start(opts: PacerOpts) -> Pacer {
        assert!(!opts.addrs.is_empty(), "a pacer needs an address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let drain_deadline = Arc::new(Mutex::new(None));
        let (s, st, dd) = (shared.clone(), stopping.clone(), drain_deadline.clone());
        let thread = thread::spawn(move || run(opts, s, st, dd));
        Pacer {
            shared,
            stopping,
            drain_deadline,
            thread: Some(thread),
        }
    }

    pub fn sent(&self) -> usize {
        self.shared.lock().unwrap().report.sent.len()
    }

    pub fn acked(&self) -> usize {
        self.shared.lock().unwrap().report.acks.len()
    }

    /// msg_id → seq_no of every acknowledgement so far.
    pub fn acked_seqs(&self) -> BTreeMap<String, u64> {
        self.shared.lock().unwrap().report.acked_seqs()
    }

    /// Waits until at least `n` messages were issued; false after `timeout`.
    pub fn wait_sent(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.sent() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Waits until at least `acked` messages are acknowledged while at least
    /// `in_flight` more are sent and not acknowledged (a moment to crash a
    /// node with work in the pipe); false after `timeout`.
    pub fn wait_in_flight(&self, acked: usize, in_flight: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let s = self.shared.lock().unwrap();
            let (n, a) = (s.report.sent.len(), s.report.acks.len());
            drop(s);
            if a >= acked && n >= a + in_flight {
                return true;
            }
            thread::sleep(Duration::from_micros(200));
        }
        false
    }

    /// Waits until at least `n` messages are acknowledged; false after `timeout`.
    pub fn wait_acked(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.acked() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Stops issuing new messages, keeps resending the unacknowledged ones
    /// until all are acknowledged or `drain` has passed, and reports.
    pub fn finish(mut self, drain: Duration) -> PacerReport {
        *self.drain_deadline.lock().unwrap() = Some(Instant::now() + drain);
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("pacer thread");
        }
        std::mem::take(&mut self.shared.lock().unwrap().report)
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        *self.drain_deadline.lock().unwrap() = Some(Instant::now());
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one connection's answers into `shared` until it closes.
fn reader(mut conn: Conn, generation: usize, shared: Arc<Mutex<Shared>>) {
    loop {
        let line = conn.recv(Duration::from_millis(200));
        let mut s = shared.lock().unwrap();
        if s.generation != generation {
            return;
        }
        match line {
            Err(_) => {} // a quiet moment
            Ok(None) => {
                s.dead = true;
                return;
            }
            Ok(Some(v)) if v["type"] == "CHAT_ACK" => {
                let at = Instant::now();
                let id = v["msg_id"].as_str().unwrap_or_default().to_string();
                let seq_no = v["seq_no"].as_u64().unwrap_or(0);
                match s.report.acks.get(&id) {
                    Some(a) if a.seq_no != seq_no => {
                        let e =
                            format!("{id} acknowledged at seq {} and at seq {seq_no}", a.seq_no);
                        s.report.errors.push(e);
                    }
                    Some(_) => {}
                    None => {
                        s.report.acks.insert(id, Ack { seq_no, at });
                    }
                }
            }
            Ok(Some(v)) => s.report.errors.push(v.to_string()),
        }
    }
}

struct Writer {
    opts: PacerOpts,
    shared: Arc<Mutex<Shared>>,
    conn: Option<TcpStream>,
    next_addr: usize,
    /// msg_id → (payload, last time sent).
    pending: BTreeMap<String, (String, Instant)>,
}

impl Writer {
    /// Opens a connection to the next address that answers (one attempt each).
    fn connect(&mut self) -> bool {
        let n = self.opts.addrs.len();
        for _ in 0..n {
            let addr = self.opts.addrs[self.next_addr % n].clone();
            if let Ok(conn) = Conn::connect(&addr) {
                let w = conn.w.try_clone().expect("clone socket");
                let mut s = self.shared.lock().unwrap();
                s.generation += 1;
                s.dead = false;
                if s.generation > 1 {
                    s.report.reconnects += 1;
                }
                let (g, sh) = (s.generation, self.shared.clone());
                drop(s);
                thread::spawn(move || reader(conn, g, sh));
                self.conn = Some(w);
                return true;
            }
            self.next_addr += 1;
        }
        false
    }

    fn write(&mut self, msg_id: &str, payload: &str) {
        let Some(w) = self.conn.as_mut() else {
            return;
        };
        let mut line = chat(msg_id, payload).to_string().into_bytes();
        line.push(b'\n');
        if w.write_all(&line).is_err() {
            self.drop_conn();
        }
    }

    fn drop_conn(&mut self) {
        if let Some(w) = self.conn.take() {
            let _ = w.shutdown(Shutdown::Both);
        }
        let mut s = self.shared.lock().unwrap();
        s.generation += 1; // retire the old reader
        s.dead = false;
        self.next_addr += 1;
    }

    /// Forgets acknowledged messages; resends those older than `retry_after`
    /// (all of them on a fresh connection).
    fn resend(&mut self, all: bool) {
        let now = Instant::now();
        {
            let s = self.shared.lock().unwrap();
            self.pending.retain(|id, _| !s.report.acks.contains_key(id));
        }
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, (_, at))| all || now.duration_since(*at) >= self.opts.retry_after)
            .map(|(id, (p, _))| (id.clone(), p.clone()))
            .collect();
        for (id, p) in due {
            self.write(&id, &p);
            self.pending.insert(id, (p, now));
            self.shared.lock().unwrap().report.resends += 1;
        }
    }

    fn issue(&mut self, n: usize) {
        let id = format!("{}-{n:05}", self.opts.tag);
        let mut payload = format!("{} {n} ", self.opts.tag);
        let pad = self.opts.payload_bytes.saturating_sub(payload.len());
        payload.extend(std::iter::repeat_n('.', pad));
        self.shared.lock().unwrap().report.sent.push(id.clone());
        self.write(&id, &payload);
        self.pending.insert(id, (payload, Instant::now()));
    }
}

fn run(
    opts: PacerOpts,
    shared: Arc<Mutex<Shared>>,
    stopping: Arc<AtomicBool>,
    drain_deadline: Arc<Mutex<Option<Instant>>>,
) {
    let interval = opts.interval;
    let max = opts.max.unwrap_or(usize::MAX);
    let mut w = Writer {
        opts,
        shared,
        conn: None,
        next_addr: 0,
        pending: BTreeMap::new(),
    };
    let mut issued = 0usize;
    let mut next_send = Instant::now();
    loop {
        let stop = stopping.load(Ordering::SeqCst);
        if w.shared.lock().unwrap().dead {
            w.drop_conn();
        }
        if w.conn.is_none() {
            if w.connect() {
                w.resend(true);
            } else {
                thread::sleep(Duration::from_millis(50));
            }
        }
        if stop {
            w.resend(false);
            let deadline = drain_deadline.lock().unwrap().unwrap_or_else(Instant::now);
            if w.pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        let now = Instant::now();
        if interval.is_zero() {
            while issued < max {
                w.issue(issued);
                issued += 1;
            }
        } else if issued < max && now >= next_send {
            for _ in 0..w.opts.batch.min(max - issued) {
                w.issue(issued);
                issued += 1;
            }
            // Keep the pace without a catch-up burst after a stall.
            next_send = if now.duration_since(next_send) > interval {
                now + interval
            } else {
                next_send + interval
            };
        }
        w.resend(false);
        let wake = next_send.min(Instant::now() + Duration::from_millis(5));
        thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    if let Some(c) = w.conn.take() {
        let _ = c.shutdown(Shutdown::Both);
    }
    w.shared.lock().unwrap().generation += 1;
}
