//! A fan-out worker: `chorus bench --fanout-worker`, started by the fan-out
//! bench (`mod.rs`) as a child process because one process may hold only so
//! many open files (20,000 here). It holds its share of the subscribers in
//! one mio loop, and checks every delivery as it arrives.
//!
//! Invariants: at most `CONNECTING_MAX` sessions are between connect and
//! subscribed at once (a node's listen backlog is not flooded); a session
//! counts as ready only once the node answered its STATUS, sent after its
//! SUBSCRIBE (so the subscription is in place before anything is
//! published); per session only the next expected message index is kept, so
//! "got every message, in order, once" costs 8 bytes per subscriber.

use super::session::{self, State, Transport};
use super::wire::{mono_ns, Ready, WorkerResult, WorkerSpec};
use anyhow::{Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sessions connecting or subscribing at once.
const CONNECTING_MAX: usize = 256;
/// Sockets per source address when spreading (below a node's default
/// `max_connections_per_address`, 256).
const PER_SOURCE: u64 = 200;
/// Failure reasons kept for the report.
const ERRORS_KEPT: usize = 5;
const WAKER: Token = Token(usize::MAX);

/// What is known about one subscriber.
#[derive(Default)]
struct Book {
    ready: bool,
    failed: bool,
    /// The next message index expected (all before it arrived in order).
    next: u64,
    out_of_order: bool,
}

struct Sess {
    state: State,
    target: usize,
    transport: Transport,
    book: Book,
}

/// Counters over every session of this worker.
struct Totals {
    deliveries: u64,
    first_ns: u64,
    last_ns: u64,
    hist: hdrhistogram::Histogram<u64>,
    errors: Vec<String>,
    ready: u64,
    failed: u64,
    connecting: usize,
}

impl Totals {
    fn error(&mut self, e: String) {
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

/// Runs one worker: the spec on stdin, `Ready` and `WorkerResult` on stdout.
pub fn run() -> Result<ExitCode> {
    crate::node_cmd::raise_fd_limit();
    let mut line = String::new();
    let stdin = std::io::stdin();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the worker spec")?;
    let spec: WorkerSpec = serde_json::from_str(&line).context("bad worker spec")?;
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let stop = Arc::new(AtomicBool::new(false));
    watch_stdin(stop.clone(), waker);
    let mut w = Worker::new(spec);
    let mut events = Events::with_capacity(1024);
    let started = Instant::now();
    let ready_by = started + Duration::from_secs_f64(w.spec.ready_timeout_s.max(1.0));
    let mut ready_sent = false;
    loop {
        w.start_more(&poll);
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            if ev.token() != WAKER {
                w.on_event(
                    ev.token().0,
                    ev.is_writable(),
                    ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                );
            }
        }
        if !ready_sent && (w.all_settled() || Instant::now() >= ready_by) {
            w.give_up_unready();
            println!("{}", serde_json::to_string(&w.ready_report())?);
            ready_sent = true;
        }
        if ready_sent && (w.all_complete() || stop.load(Ordering::Relaxed)) {
            break;
        }
    }
    println!("{}", serde_json::to_string(&w.result())?);
    Ok(ExitCode::SUCCESS)
}

/// A thread that sets `stop` when the parent writes `stop` or goes away.
fn watch_stdin(stop: Arc<AtomicBool>, waker: Arc<Waker>) {
    std::thread::spawn(move || {
        let mut l = String::new();
        loop {
            l.clear();
            match std::io::stdin().lock().read_line(&mut l) {
                Ok(0) | Err(_) => break,
                Ok(_) if l.trim() == "stop" => break,
                Ok(_) => {}
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = waker.wake();
    });
}

struct Worker {
    spec: WorkerSpec,
    sessions: Vec<Sess>,
    /// Next session index to connect.
    next_start: usize,
    totals: Totals,
    scratch: Vec<u8>,
}

impl Worker {
    fn new(spec: WorkerSpec) -> Worker {
        Worker {
            sessions: Vec::with_capacity(spec.sessions as usize),
            next_start: 0,
            totals: Totals {
                deliveries: 0,
                first_ns: 0,
                last_ns: 0,
                hist: crate::bench::report::new_hist(),
                errors: Vec::new(),
                ready: 0,
                failed: 0,
                connecting: 0,
            },
            scratch: vec![0; 64 << 10],
            spec,
        }
    }

    fn start_more(&mut self, poll: &Poll) {
        while self.next_start < self.spec.sessions as usize
            && self.totals.connecting < CONNECTING_MAX
        {
            let g = self.spec.first + self.next_start as u64;
            let target = (g % self.spec.targets.len() as u64) as usize;
            let round = g / self.spec.targets.len() as u64;
            let transport =
                self.spec.transports[(round % self.spec.transports.len() as u64) as usize];
            let t = &self.spec.targets[target];
            let dst = match transport {
                Transport::Json => Some(t.tcp),
                Transport::Ws => t.http,
            };
            let src = self.spec.spread_sources.then(|| source_for(g));
            let opened = dst
                .context("this node has no HTTP port (needed for ws)")
                .and_then(|d| open(d, src).with_context(|| format!("connect to {d}")));
            let mut state = State::Closed;
            match opened {
                Ok(mut s) => {
                    let token = Token(self.sessions.len());
                    match poll.registry().register(
                        &mut s,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => {
                            state = State::Connecting(s);
                            self.totals.connecting += 1;
                        }
                        Err(e) => self.totals.error(format!("register: {e}")),
                    }
                }
                Err(e) => self.totals.error(format!("{e:#}")),
            }
            let failed = matches!(state, State::Closed);
            if failed {
                self.totals.failed += 1;
            }
            self.sessions.push(Sess {
                state,
                target,
                transport,
                book: Book {
                    failed,
                    ..Book::default()
                },
            });
            self.next_start += 1;
        }
    }

    fn on_event(&mut self, i: usize, writable: bool, readable: bool) {
        let room = self.spec.room.as_str();
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        if writable {
            if let State::Connecting(_) = s.state {
                let State::Connecting(sock) = std::mem::replace(&mut s.state, State::Closed) else {
                    unreachable!()
                };
                let host = self.spec.targets[s.target]
                    .http
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                if let Err(e) =
                    session::start(sock, s.transport, &host, room).map(|st| s.state = st)
                {
                    return self.fail(i, e);
                }
            } else if let Err(e) = s.state.on_writable() {
                return self.fail(i, e);
            }
        }
        if !readable {
            return;
        }
        let messages = self.spec.messages;
        let Sess { state, book, .. } = s;
        let totals = &mut self.totals;
        let result = state.on_readable(room, &mut self.scratch, &mut |line| {
            on_line(book, totals, messages, line)
        });
        if let Err(e) = result {
            self.fail(i, e);
        }
    }

    /// The session ended (closed, refused, protocol error).
    fn fail(&mut self, i: usize, why: String) {
        let s = &mut self.sessions[i];
        s.state = State::Closed;
        if s.book.failed {
            return;
        }
        s.book.failed = true;
        if s.book.ready && s.book.next >= self.spec.messages {
            return; // closed after it got everything: not a failure
        }
        if !s.book.ready {
            self.totals.connecting -= 1;
            self.totals.failed += 1;
        }
        let name = s.transport.name();
        self.totals.error(format!("session {i} ({name}): {why}"));
    }

    fn all_settled(&self) -> bool {
        self.next_start == self.spec.sessions as usize && self.totals.connecting == 0
    }

    /// Sessions not subscribed by the deadline are closed and count as failed.
    fn give_up_unready(&mut self) {
        for i in 0..self.sessions.len() {
            if !self.sessions[i].book.ready && !self.sessions[i].book.failed {
                self.fail(i, "not subscribed within the ready timeout".into());
            }
        }
        self.next_start = self.spec.sessions as usize;
    }

    fn ready_report(&self) -> Ready {
        let mut per_target = vec![0; self.spec.targets.len()];
        for s in self.sessions.iter().filter(|s| s.book.ready) {
            per_target[s.target] += 1;
        }
        Ready {
            ready: self.totals.ready,
            failed: self.totals.failed,
            per_target,
            errors: self.totals.errors.clone(),
            cpu_s: crate::bench::cluster::proc_stats(std::process::id()).map_or(0.0, |s| s.cpu_s),
        }
    }

    fn all_complete(&self) -> bool {
        let m = self.spec.messages;
        self.sessions
            .iter()
            .filter(|s| s.book.ready)
            .all(|s| s.book.next >= m || s.book.failed)
    }

    fn result(&self) -> WorkerResult {
        let m = self.spec.messages;
        let ready = self.sessions.iter().filter(|s| s.book.ready);
        let complete = ready
            .clone()
            .filter(|s| s.book.next == m && !s.book.out_of_order)
            .count() as u64;
        let dropped = ready
            .clone()
            .filter(|s| s.book.failed && s.book.next < m)
            .count() as u64;
        let out_of_order = ready.filter(|s| s.book.out_of_order).count() as u64;
        WorkerResult {
            deliveries: self.totals.deliveries,
            complete,
            out_of_order,
            dropped,
            first_ns: self.totals.first_ns,
            last_ns: self.totals.last_ns,
            latency_us: self
                .totals
                .hist
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            errors: self.totals.errors.clone(),
            cpu_s: crate::bench::cluster::proc_stats(std::process::id()).map_or(0.0, |s| s.cpu_s),
        }
    }
}

/// One server line of a session.
fn on_line(book: &mut Book, t: &mut Totals, messages: u64, line: &[u8]) {
    if !book.ready {
        if session::is_ready_line(line) {
            book.ready = true;
            t.ready += 1;
            t.connecting -= 1;
        } else if line.starts_with(b"{\"type\":\"ERROR\"") {
            t.error(String::from_utf8_lossy(line).into_owned());
        }
        return;
    }
    let Some((idx, sent_ns)) = super::wire::scan_payload(line) else {
        if line.starts_with(b"{\"type\":\"ERROR\"") {
            t.error(String::from_utf8_lossy(line).into_owned());
        }
        return;
    };
    let now = mono_ns();
    t.deliveries += 1;
    if t.first_ns == 0 {
        t.first_ns = now;
    }
    t.last_ns = now;
    t.hist
        .saturating_record((now.saturating_sub(sent_ns) / 1000).max(1));
    if idx != book.next || idx >= messages {
        book.out_of_order = true;
    }
    book.next = book.next.max(idx + 1);
}

/// The source address of session `g` when spreading: 127.1.x.1.
fn source_for(g: u64) -> Ipv4Addr {
    let k = g / PER_SOURCE;
    Ipv4Addr::new(127, 1 + (k / 250) as u8, (k % 250) as u8, 1)
}

/// A nonblocking connect, optionally from `src`.
fn open(dst: SocketAddr, src: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if dst.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    if let (Some(ip), true) = (src, dst.ip().is_loopback() && dst.is_ipv4()) {
        rustix::net::bind(&fd, &std::net::SocketAddrV4::new(ip, 0))?;
    }
    match rustix::net::connect(&fd, &dst) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals() -> Totals {
        Totals {
            deliveries: 0,
            first_ns: 0,
            last_ns: 0,
            hist: crate::bench::report::new_hist(),
            errors: Vec::new(),
            ready: 0,
            failed: 0,
            connecting: 1,
        }
    }

    fn chat(idx: u64) -> Vec<u8> {
        let p = super::super::wire::payload(idx, mono_ns(), 40);
        format!("{{\"type\":\"SEQ_CHAT\",\"payload\":\"{p}\"}}").into_bytes()
    }

    #[test]
    fn a_session_counts_only_after_its_status_and_notices_a_gap() {
        let (mut b, mut t) = (Book::default(), totals());
        on_line(&mut b, &mut t, 3, &chat(0)); // before STATUS: ignored
        assert_eq!(t.deliveries, 0);
        on_line(&mut b, &mut t, 3, b"{\"type\":\"STATUS\",\"node_id\":1}");
        assert!(b.ready && t.ready == 1 && t.connecting == 0);
        on_line(&mut b, &mut t, 3, &chat(0));
        on_line(&mut b, &mut t, 3, &chat(2)); // 1 skipped
        assert!(b.out_of_order);
        assert_eq!((t.deliveries, b.next), (2, 3));
    }

    #[test]
    fn a_repeat_is_out_of_order() {
        let (mut b, mut t) = (Book::default(), totals());
        on_line(&mut b, &mut t, 2, b"{\"type\":\"STATUS\"}");
        on_line(&mut b, &mut t, 2, &chat(0));
        on_line(&mut b, &mut t, 2, &chat(1));
        assert!(!b.out_of_order && b.next == 2);
        on_line(&mut b, &mut t, 2, &chat(1));
        assert!(b.out_of_order);
    }
}
