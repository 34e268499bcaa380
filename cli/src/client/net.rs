//! Runs a [`Session`] over real TCP connections on a background thread: connects
//! (and fails over) to the nodes of its address book, reads server lines on a
//! reader thread per connection, executes the session's outputs in order, and
//! hands [`Event`]s to the UI over a bounded channel.
//!
//! Bounds: a server line is at most `MAX_LINE_BYTES` (longer: the connection is
//! dropped and another node tried); both channels are bounded (a slow UI slows
//! reading, which the node answers by disconnecting a slow client, which the
//! session survives by failing over and resuming).

use super::request::{Command, Request};
use super::session::{Event, Out, Session};
use crate::tls_dial::{self, ClientTls, Stream};
use chorus_core::client_wire::{ClientLine, ServerLine};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest server line accepted (the node's own bound is 1 MiB per line; a
/// SEQ_CHAT wraps a payload in some JSON).
pub const MAX_LINE_BYTES: usize = 2 << 20;
/// Capacity of the UI → driver and driver → UI channels.
const QUEUE_LEN: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A node that does not take our bytes for this long is treated as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between connection attempts while some address is still untried, and
/// after every known address failed in a row.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const RETRY_PAUSE_ALL_FAILED: Duration = Duration::from_millis(700);
/// How often the session's timers (retry, status refresh) are checked.
const TICK: Duration = Duration::from_millis(100);

/// Inputs of the driver thread.
#[derive(Debug)]
enum Input {
    Request {
        msg_id: String,
        request: Request,
    },
    /// From the reader of connection number `generation`.
    Line {
        generation: u64,
        line: ServerLine,
    },
    Garbage {
        generation: u64,
        reason: String,
    },
    Closed {
        generation: u64,
        reason: String,
    },
}

/// The UI's handle on a running client.
#[derive(Debug)]
pub struct Client {
    inputs: SyncSender<Input>,
    pub events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The driver is busy (its input queue is full); try again shortly.
#[derive(Debug)]
pub struct Busy;

impl Client {
    /// Starts the driver thread; it connects right away.
    pub fn start(session: Session, tls: ClientTls) -> Client {
        let (in_tx, in_rx) = mpsc::sync_channel(QUEUE_LEN);
        let (ev_tx, ev_rx) = mpsc::sync_channel(QUEUE_LEN);
        let stop = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            session,
            tls,
            stream: None,
            generation: 0,
            failures_in_row: 0,
            next_attempt: Instant::now(),
            next_tick: Instant::now(),
            inputs_tx: in_tx.clone(),
            events: ev_tx,
            todo: VecDeque::new(),
            quit: false,
            stop: stop.clone(),
        };
        let thread = thread::Builder::new()
            .name("chorus-client-net".into())
            .spawn(move || driver.run(in_rx))
            .expect("spawn client network thread");
        Client {
            inputs: in_tx,
            events: ev_rx,
            stop,
            thread: Some(thread),
        }
    }

    /// Asks for `request` (a command under a fresh msg_id, returned)
    /// without blocking.
    pub fn try_request(&self, request: Request) -> Result<String, Busy> {
        let msg_id = uuid::Uuid::new_v4().to_string();
        match self.inputs.try_send(Input::Request {
            msg_id: msg_id.clone(),
            request,
        }) {
            Ok(()) => Ok(msg_id),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// A sender of chats to `room` usable from another thread (the plain
    /// mode's stdin reader).
    pub fn submitter(&self, room: String) -> Submitter {
        Submitter(self.inputs.clone(), room)
    }

    /// Stops the driver and closes the connection.
    pub fn quit(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // A flag, not a message: the input queue may be full.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // Unblock a driver waiting to hand us an event.
            while !t.is_finished() {
                while self.events.try_recv().is_ok() {}
                thread::sleep(Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Submits messages from another thread, blocking while the driver is busy.
#[derive(Debug, Clone)]
pub struct Submitter(SyncSender<Input>, String);

impl Submitter {
    /// Sends `payload` to the submitter's room under a fresh msg_id; Err
    /// when the client has stopped.
    pub fn submit(&self, payload: String) -> Result<String, Busy> {
        let msg_id = uuid::Uuid::new_v4().to_string();
        let cmd = Command::Chat {
            room: self.1.clone(),
            payload,
        };
        self.0
            .send(Input::Request {
                msg_id: msg_id.clone(),
                request: Request::Do(cmd),
            })
            .map_err(|_| Busy)?;
        Ok(msg_id)
    }
}

struct Driver {
    session: Session,
    tls: ClientTls,
    stream: Option<Stream>,
    /// Number of the current connection; lines of older ones are ignored.
    generation: u64,
    failures_in_row: usize,
    next_attempt: Instant,
    next_tick: Instant,
    inputs_tx: SyncSender<Input>,
    events: SyncSender<Event>,
    /// Session outputs not yet executed, in order.
    todo: VecDeque<Out>,
    /// The UI is gone.
    quit: bool,
    /// The UI asked to stop.
    stop: Arc<AtomicBool>,
}

impl Driver {
    fn run(mut self, inputs: Receiver<Input>) {
        while !self.quit && !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if self.stream.is_none() && now >= self.next_attempt {
                self.connect(now);
            }
            match inputs.recv_timeout(TICK) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= self.next_tick {
                self.next_tick = now + TICK;
                let mut out = Vec::new();
                self.session.on_tick(now, &mut out);
                self.execute(out);
            }
        }
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        let mut out = Vec::new();
        match input {
            Input::Request { msg_id, request } => {
                self.session.request(msg_id, request, now, &mut out)
            }
            Input::Line { generation, line } if generation == self.generation => {
                self.session.on_line(line, now, &mut out)
            }
            Input::Garbage { generation, reason } if generation == self.generation => self.emit(
                Event::Notice(format!("ignored a bad line from the node: {reason}")),
            ),
            Input::Closed { generation, reason } if generation == self.generation => {
                self.close(&reason)
            }
            Input::Line { .. } | Input::Garbage { .. } | Input::Closed { .. } => {}
        }
        self.execute(out);
    }

    fn connect(&mut self, now: Instant) {
        let addr = self.session.addrs.next_addr().to_string();
        match open(&addr, &self.tls) {
            Ok(stream) => {
                self.failures_in_row = 0;
                self.generation += 1;
                match stream.try_clone() {
                    Ok(read_half) => {
                        let tx = self.inputs_tx.clone();
                        let generation = self.generation;
                        let spawned = thread::Builder::new()
                            .name("chorus-client-read".into())
                            .spawn(move || read_loop(read_half, generation, tx));
                        if spawned.is_err() {
                            self.failed(&addr, "cannot start a reader thread".into(), now);
                            return;
                        }
                    }
                    Err(e) => return self.failed(&addr, e.to_string(), now),
                }
                self.stream = Some(stream);
                let mut out = Vec::new();
                self.session.on_connected(&addr, now, &mut out);
                self.execute(out);
            }
            Err(e) => self.failed(&addr, e, now),
        }
    }

    fn failed(&mut self, addr: &str, reason: String, now: Instant) {
        self.failures_in_row += 1;
        let pause = if self.failures_in_row >= self.session.addrs.len() {
            RETRY_PAUSE_ALL_FAILED
        } else {
            RETRY_PAUSE
        };
        self.next_attempt = now + pause;
        self.emit(Event::Disconnected {
            addr: addr.to_string(),
            reason: format!("cannot connect: {reason}"),
        });
    }

    /// Runs outputs in order; a write failure closes the connection and
    /// discards the rest of that connection's lines (the session regenerates
    /// what matters on the next connect).
    fn execute(&mut self, out: Vec<Out>) {
        self.todo.extend(out);
        while let Some(o) = self.todo.pop_front() {
            match o {
                Out::Send(line) => {
                    if let Err(e) = self.write(&line) {
                        self.close(&format!("write failed: {e}"));
                    }
                }
                Out::Event(ev) => self.emit(ev),
                Out::Drop(reason) => self.close(&reason),
            }
        }
    }

    fn write(&mut self, line: &ClientLine) -> std::io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(()); // closed earlier in this batch: resent on reconnect
        };
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        stream.write_all(&bytes)
    }

    fn close(&mut self, reason: &str) {
        let Some(s) = self.stream.take() else {
            return;
        };
        let _ = s.shutdown(Shutdown::Both);
        // Lines still queued from this connection are ignored from now on.
        self.generation += 1;
        self.next_attempt = Instant::now() + RETRY_PAUSE;
        let mut out = Vec::new();
        self.session.on_closed(reason, &mut out);
        self.todo.extend(out);
    }

    fn emit(&mut self, ev: Event) {
        if self.events.send(ev).is_err() {
            self.quit = true; // the UI is gone
        }
    }
}

/// Connects with a timeout to the first address `addr` resolves to.
fn open(addr: &str, tls: &ClientTls) -> Result<Stream, String> {
    let stream = tls_dial::connect_str(addr, tls, CONNECT_TIMEOUT)?;
    stream
        .tcp()
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Reads newline-delimited server lines until EOF or an error, each bounded.
fn read_loop(stream: Stream, generation: u64, tx: SyncSender<Input>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    let reason = loop {
        buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) => break "the node closed the connection".to_string(),
            Ok(_) if buf.last() != Some(&b'\n') => {
                break if buf.len() > MAX_LINE_BYTES {
                    format!("a line from the node exceeds {MAX_LINE_BYTES} bytes")
                } else {
                    "the node closed the connection mid-line".to_string()
                };
            }
            Ok(_) => {}
            Err(e) => break format!("read failed: {e}"),
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let input = match serde_json::from_str::<ServerLine>(text) {
            Ok(line) => Input::Line { generation, line },
            Err(e) => Input::Garbage {
                generation,
                reason: e.to_string(),
            },
        };
        if tx.send(input).is_err() {
            return;
        }
    };
    let _ = tx.send(Input::Closed { generation, reason });
}
