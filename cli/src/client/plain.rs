//! The plain (line) mode of `chorus client`, for scripts and pipes: it joins
//! `--room`; stdin lines become messages there; the room's messages go to
//! stdout as `[#room N] name: text` (N: room_seq), its first screenful
//! (a HISTORY page) before the live ones, each number once and in order;
//! events (`sent`, `ack`, `info:`, `warn:`) go to stderr. The format is
//! documented in `chorus client --help`.
//!
//! Bounds: a stdin line longer than `MAX_INPUT_BYTES` is refused (not split);
//! the stdin reader stops reading while `--max-unacked` messages wait for an
//! acknowledgement (backpressure instead of refusals); after stdin EOF the
//! wait for acknowledgements is bounded by `--drain-secs`.

use super::format::{one_line, plain_line};
use super::net::{Client, Submitter};
use super::request::Command;
use super::session::Event;
use super::Args;
use chorus_core::client_wire::Delivered;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest accepted input line (the node bounds whole lines at 1 MiB).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Counters shared by the stdin reader and the event loop.
#[derive(Debug, Default)]
struct Progress {
    /// Lines handed to the client.
    submitted: AtomicU64,
    /// Lines finished: acknowledged or refused.
    finished: AtomicU64,
    /// Lines refused (too long: never submitted; or refused by the client).
    failed: AtomicU64,
    eof: AtomicBool,
}

/// What the event loop has seen.
#[derive(Debug, Default)]
struct Seen {
    queued: u64,
    max_acked: u64,
    max_delivered: u64,
    /// The room's first screenful is complete: lines print as they come.
    started: bool,
    /// Highest room_seq printed.
    printed: u64,
    /// Lines held until the first screenful is complete (at most a page
    /// plus what arrives meanwhile: bounded by `HOLD_MAX`).
    held: BTreeMap<u64, Delivered>,
}

/// Most lines held back while the first screenful loads; beyond it the
/// oldest are printed at once (order over completeness of the wait).
const HOLD_MAX: usize = 10_000;

/// Most events handled between two end-of-input checks.
const EVENT_BURST: usize = 4096;

/// Runs until stdin ends and everything is acknowledged (or the drain time
/// runs out), or `stop` is set.
pub fn run(client: Client, args: &Args, stop: &AtomicBool) -> ExitCode {
    let progress = Arc::new(Progress::default());
    spawn_stdin_reader(
        client.submitter(args.room.trim_start_matches('#').to_string()),
        progress.clone(),
        args.max_unacked,
    );
    let mut out = std::io::stdout().lock();
    let mut seen = Seen::default();
    let mut drain_deadline: Option<Instant> = None;
    let mut done_at: Option<Instant> = None;
    let linger = Duration::from_millis(args.linger_ms);
    while !stop.load(Ordering::Relaxed) {
        match client.events.recv_timeout(Duration::from_millis(50)) {
            Ok(ev) => {
                on_event(ev, &mut seen, &progress, &mut out);
                for ev in client.events.try_iter().take(EVENT_BURST) {
                    on_event(ev, &mut seen, &progress, &mut out);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let _ = out.flush();
        let now = Instant::now();
        if let Some(t) = done_at {
            if now >= t {
                break;
            }
            continue;
        }
        if !progress.eof.load(Ordering::Acquire) {
            continue;
        }
        let deadline = *drain_deadline.get_or_insert(now + Duration::from_secs(args.drain_secs));
        let submitted = progress.submitted.load(Ordering::Acquire);
        let finished = progress.finished.load(Ordering::Relaxed);
        let all_acked = seen.queued == submitted && finished == submitted;
        // Wait for our own last message to come back too, so the output is
        // complete when we exit (bounded by the same deadline).
        if (all_acked && seen.max_delivered >= seen.max_acked) || now >= deadline {
            done_at = Some(now + linger);
        }
    }
    let _ = out.flush();
    drop(out);
    client.quit();
    let submitted = progress.submitted.load(Ordering::Acquire);
    let finished = progress.finished.load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    let never = submitted.saturating_sub(finished);
    if never > 0 {
        eprintln!("warn: {never} message(s) were never acknowledged");
    }
    if never > 0 || failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn on_event(ev: Event, seen: &mut Seen, progress: &Progress, out: &mut impl Write) {
    match ev {
        Event::Delivered(d) | Event::History(d) => {
            if d.room_seq > seen.printed {
                seen.held.insert(d.room_seq, d);
            }
            print_held(seen, out);
        }
        Event::PageEnd { initial: true, .. } => {
            seen.started = true;
            print_held(seen, out);
        }
        Event::Done { cmd, .. } => match cmd {
            Command::Join { room } => eprintln!("info: joined #{room}"),
            other => eprintln!("info: done: {other:?}"),
        },
        Event::PageEnd { .. } | Event::RoomEvent(_) | Event::Who(_) | Event::Rooms { .. } => {}
        Event::Acked { msg_id, seq_no } => {
            seen.max_acked = seen.max_acked.max(seq_no);
            progress.finished.fetch_add(1, Ordering::Relaxed);
            eprintln!("ack {msg_id} seq={seq_no}");
        }
        Event::Queued {
            msg_id, payload, ..
        } => {
            seen.queued += 1;
            eprintln!("sent {msg_id} {}", one_line(&payload));
        }
        Event::Refused { msg_id, reason } => {
            seen.queued += 1;
            progress.failed.fetch_add(1, Ordering::Relaxed);
            progress.finished.fetch_add(1, Ordering::Relaxed);
            eprintln!("warn: refused {msg_id}: {reason}");
        }
        Event::Connected { addr } => eprintln!("info: connected to {addr}"),
        Event::Disconnected { addr, reason } => {
            eprintln!("info: {addr}: {reason}; trying another node")
        }
        Event::Status(_) => {}
        Event::Notice(n) => eprintln!("warn: {n}"),
    }
}

/// Prints the held lines in room order once the first screenful is in (or
/// when too many wait).
fn print_held(seen: &mut Seen, out: &mut impl Write) {
    while seen.started || seen.held.len() > HOLD_MAX {
        let Some((n, d)) = seen.held.pop_first() else {
            return;
        };
        seen.printed = n;
        seen.max_delivered = seen.max_delivered.max(d.seq_no);
        // A closed stdout (e.g. `| head`) is the reader's choice; keep
        // sending and acknowledging regardless.
        let _ = writeln!(out, "{}", plain_line(&d));
    }
}

/// Reads stdin on its own thread (reading blocks), submitting each non-empty
/// line, pausing while `max_unacked` are in flight.
fn spawn_stdin_reader(submitter: Submitter, progress: Arc<Progress>, max_unacked: u64) {
    let spawned = thread::Builder::new()
        .name("chorus-client-stdin".into())
        .spawn(move || {
            read_stdin(&submitter, &progress, max_unacked);
            progress.eof.store(true, Ordering::Release);
        });
    if spawned.is_err() {
        eprintln!("warn: cannot start the stdin reader; nothing will be sent");
    }
}

fn read_stdin(submitter: &Submitter, progress: &Progress, max_unacked: u64) {
    let mut stdin = BufReader::new(std::io::stdin().lock());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let limit = MAX_INPUT_BYTES as u64 + 1;
        match (&mut stdin).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.len() > MAX_INPUT_BYTES && buf.last() != Some(&b'\n') {
            eprintln!("warn: refused a line longer than {MAX_INPUT_BYTES} bytes");
            progress.failed.fetch_add(1, Ordering::Relaxed);
            if !skip_rest_of_line(&mut stdin) {
                return;
            }
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        while progress.submitted.load(Ordering::Acquire)
            >= progress.finished.load(Ordering::Relaxed) + max_unacked
        {
            thread::sleep(Duration::from_millis(10));
        }
        // Count first so the event loop never sees more finished than submitted.
        progress.submitted.fetch_add(1, Ordering::Release);
        if submitter.submit(text.to_string()).is_err() {
            return; // the client stopped
        }
    }
}

/// Discards input up to and including the next newline; false at EOF.
fn skip_rest_of_line(r: &mut impl BufRead) -> bool {
    loop {
        let (consumed, found) = match r.fill_buf() {
            Ok([]) | Err(_) => return false,
            Ok(b) => match b.iter().position(|&c| c == b'\n') {
                Some(i) => (i + 1, true),
                None => (b.len(), false),
            },
        };
        r.consume(consumed);
        if found {
            return true;
        }
    }
}
