//! The harness's chat clients: one thread each, one message in flight, sent
//! to some node, retried with the same msg_id on the next node after a
//! timeout, an ERROR or a broken connection — exactly what a real client does
//! (DESIGN §4.5). Every msg_id a client ever sent and every CHAT_ACK it got
//! are recorded for the verifier.
//!
//! Bounds: connect 500 ms, an answer within `ATTEMPT_MS`, and the thread
//! stops when told (`stop`), leaving its last message recorded as unacked.

use super::netns::node_ip;
use super::procs::NODE_PORT;
use crate::tls_dial::{self, ClientTls, Stream};
use chorus_core::client_wire::{ClientLine, NodeStatus, ServerLine};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a client waits for the answer to one attempt.
const ATTEMPT_MS: u64 = 1500;

/// Flags and counters shared by the harness and its clients.
#[derive(Debug)]
pub struct Shared {
    /// Finish the message in flight, then stop (the heal phase).
    pub stop_new: AtomicBool,
    /// Stop now (the convergence bound ran out, or an interrupt).
    pub stop: AtomicBool,
    /// Clients that finished after `stop_new`.
    pub idle: AtomicUsize,
    pub acked: AtomicU64,
    /// Milliseconds since `start` of every ack, merged over clients.
    pub ack_times_ms: Mutex<Vec<u64>>,
    pub start: Instant,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            stop_new: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            idle: AtomicUsize::new(0),
            acked: AtomicU64::new(0),
            ack_times_ms: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }
}

/// What one client did.
#[derive(Debug, Default)]
pub struct ClientLog {
    /// msg_id → payload of every message sent (at least once).
    pub sent: BTreeMap<String, String>,
    /// msg_id → the seq_no of its first CHAT_ACK.
    pub acks: BTreeMap<String, u64>,
    /// A msg_id acknowledged twice with different seq_nos.
    pub conflicts: Vec<String>,
    /// The message in flight when the client was stopped.
    pub unacked: Vec<String>,
    pub attempts: u64,
    /// ERROR answers by code.
    pub errors: BTreeMap<String, u64>,
}

fn addr(node: u64) -> SocketAddr {
    format!("{}:{NODE_PORT}", node_ip(node))
        .parse()
        .expect("a literal address")
}

/// `--tls`: where the cluster's certificates are, and how clients verify
/// the nodes (set once, before the nodes start).
static TLS: OnceLock<(PathBuf, ClientTls)> = OnceLock::new();

/// `--tls`: a CA in `dir` and a certificate per node naming its address.
pub fn use_tls(dir: &Path, nodes: u64) -> anyhow::Result<()> {
    crate::certs::init(dir)?;
    for id in 1..=nodes {
        crate::certs::node(id, dir, &[node_ip(id)])?;
    }
    let tls = tls_dial::from_ca(Some(&dir.join("ca.pem")))?;
    let _ = TLS.set((dir.to_path_buf(), tls));
    Ok(())
}

/// The `[tls]` section of node `id`'s config under `--tls`.
pub fn tls_section(id: u64) -> Option<String> {
    let (dir, _) = TLS.get()?;
    let (cert, key) = crate::certs::node_files(dir, id);
    Some(format!(
        "\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
        cert.display().to_string(),
        key.display().to_string(),
        dir.join("ca.pem").display().to_string()
    ))
}

fn open(node: u64, timeout: Duration) -> Option<Stream> {
    let tls = TLS.get().and_then(|(_, t)| t.clone());
    tls_dial::connect(&addr(node), &node_ip(node), &tls, timeout).ok()
}

struct Conn {
    w: Stream,
    r: BufReader<Stream>,
}

/// The HELLO chorus's chaos clients open every connection with.
fn hello() -> String {
    chorus_core::client_wire::hello_line(concat!("chorus-chaos/", env!("CARGO_PKG_VERSION"))) + "\n"
}

fn connect(node: u64) -> Option<Conn> {
    let mut w = open(node, Duration::from_millis(500))?;
    w.write_all(hello().as_bytes()).ok()?;
    let r = BufReader::new(w.try_clone().ok()?);
    Some(Conn { w, r })
}

/// One STATUS round trip to node `node` (None on any failure or timeout).
pub fn status(node: u64, timeout: Duration) -> Option<NodeStatus> {
    let mut s = open(node, timeout)?;
    s.tcp().set_read_timeout(Some(timeout)).ok()?;
    s.tcp().set_write_timeout(Some(timeout)).ok()?;
    let req = hello() + "{\"type\":\"STATUS\"}\n";
    s.write_all(req.as_bytes()).ok()?;
    let mut r = BufReader::new(s);
    // The node's HELLO, then the STATUS.
    for _ in 0..2 {
        let mut buf = String::new();
        r.read_line(&mut buf).ok()?;
        match serde_json::from_str(&buf) {
            Ok(ServerLine::Status(st)) => return Some(st),
            Ok(ServerLine::Hello(_)) => {}
            _ => return None,
        }
    }
    None
}

/// The outcome of one attempt.
enum Outcome {
    Acked,
    Retry,
}

struct Client {
    id: usize,
    nodes: u64,
    node: u64,
    conn: Option<Conn>,
    log: ClientLog,
    shared: Arc<Shared>,
}

impl Client {
    fn rotate(&mut self) {
        self.conn = None;
        self.node = self.node % self.nodes + 1;
    }

    fn record_ack(&mut self, msg_id: &str, seq: u64) {
        match self.log.acks.get(msg_id) {
            Some(&s) if s != seq => self.log.conflicts.push(format!(
                "msg_id {msg_id} was acknowledged with seq_no {s} and later with seq_no {seq}"
            )),
            Some(_) => {}
            None => {
                self.log.acks.insert(msg_id.to_string(), seq);
                self.shared.acked.fetch_add(1, Ordering::Relaxed);
                let ms = self.shared.start.elapsed().as_millis() as u64;
                self.shared.ack_times_ms.lock().unwrap().push(ms);
            }
        }
    }

    /// Sends `line` once and waits for the ack of `msg_id`.
    fn attempt(&mut self, msg_id: &str, line: &[u8]) -> Outcome {
        self.log.attempts += 1;
        if self.conn.is_none() {
            self.conn = connect(self.node);
        }
        let Some(c) = self.conn.as_mut() else {
            self.rotate();
            thread::sleep(Duration::from_millis(50));
            return Outcome::Retry;
        };
        if c.w.write_all(line).is_err() {
            self.rotate();
            return Outcome::Retry;
        }
        let deadline = Instant::now() + Duration::from_millis(ATTEMPT_MS);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(c) = self.conn.as_mut() else {
                return Outcome::Retry;
            };
            if left.is_zero() || c.w.tcp().set_read_timeout(Some(left)).is_err() {
                self.rotate();
                return Outcome::Retry;
            }
            let mut buf = String::new();
            match c.r.read_line(&mut buf) {
                Ok(0) => {
                    self.rotate();
                    return Outcome::Retry;
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.rotate();
                    return Outcome::Retry;
                }
                Err(_) => {
                    self.rotate();
                    return Outcome::Retry;
                }
            }
            match serde_json::from_str::<ServerLine>(&buf) {
                Ok(ServerLine::ChatAck { msg_id: m, seq_no }) => {
                    self.record_ack(&m, seq_no);
                    if m == msg_id {
                        return Outcome::Acked;
                    }
                }
                Ok(ServerLine::Error { code, .. }) => {
                    let code = format!("{code:?}").to_lowercase();
                    *self.log.errors.entry(code).or_default() += 1;
                    self.rotate();
                    thread::sleep(Duration::from_millis(100));
                    return Outcome::Retry;
                }
                _ => {}
            }
        }
    }

    fn run(mut self, seed: u64) -> ClientLog {
        let mut n = 0u64;
        while !self.shared.stop_new.load(Ordering::SeqCst) {
            let msg_id = format!("chaos-{seed:x}-c{}-{n}", self.id);
            let payload = format!("client {} message {n}", self.id);
            self.log.sent.insert(msg_id.clone(), payload.clone());
            let chat = ClientLine::Chat {
                msg_id: msg_id.clone(),
                payload,
                room_id: format!("room{}", self.id % 3),
                sender_id: 1000 + self.id as u64,
                term: None,
                user: None,
            };
            let mut line = serde_json::to_vec(&chat).expect("serializes");
            line.push(b'\n');
            loop {
                if self.shared.stop.load(Ordering::SeqCst) {
                    self.log.unacked.push(msg_id);
                    return self.log;
                }
                if let Outcome::Acked = self.attempt(&msg_id, &line) {
                    break;
                }
            }
            n += 1;
        }
        self.shared.idle.fetch_add(1, Ordering::SeqCst);
        self.log
    }
}

/// Starts `k` clients against nodes 1..=`nodes`.
pub fn start(k: usize, nodes: u64, seed: u64, shared: &Arc<Shared>) -> Vec<JoinHandle<ClientLog>> {
    (0..k)
        .map(|id| {
            let c = Client {
                id,
                nodes,
                node: id as u64 % nodes + 1,
                conn: None,
                log: ClientLog::default(),
                shared: shared.clone(),
            };
            thread::spawn(move || c.run(seed))
        })
        .collect()
}
