//! The fan-out bench's publisher: one connection to the leader sending
//! `messages` CHATs to the room open-loop at `rate` per second (on schedule,
//! several per write when behind), each payload carrying its index and its
//! CLOCK_MONOTONIC send time; a reader thread counts the CHAT_ACKs.
//!
//! One connection to the leader keeps the messages in send order in the
//! room, which is what lets a subscriber check "every message, in order,
//! once" with one counter.

use super::wire::{mono_ns, payload};
use crate::bench::proto::{self, Hot};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the publisher waits for the last acknowledgements.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// What the publisher did.
#[derive(Debug, Default)]
pub struct Published {
    pub acked: u64,
    pub errors: u64,
    /// CLOCK_MONOTONIC ns of the first send.
    pub first_ns: u64,
    /// From the first send to the last acknowledgement.
    pub seconds: f64,
}

pub fn run(to: SocketAddr, room: &str, messages: u64, rate: f64, size: usize) -> Result<Published> {
    let mut s = proto::open(to, Duration::from_secs(2))
        .with_context(|| format!("publisher: cannot connect to {to}"))?;
    s.write_all(proto::hello().as_bytes())?;
    let reader = s.try_clone()?;
    reader
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(200)))?;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (a, e) = (acked.clone(), errors.clone());
    let handle = std::thread::spawn(move || read_acks(reader, messages, &a, &e));
    let tag = format!("fan{:x}{:x}", std::process::id(), mono_ns() & 0xffff_ffff);
    let room_json = serde_json::to_string(room)?;
    let started = Instant::now();
    let first_ns = mono_ns();
    let mut sent = 0u64;
    let mut buf = Vec::new();
    while sent < messages {
        let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(messages);
        buf.clear();
        while sent < due {
            let p = payload(sent, mono_ns(), size);
            buf.extend_from_slice(
                format!(
                    "{{\"type\":\"CHAT\",\"room_id\":{room_json},\"msg_id\":\"{tag}-{sent}\",\"payload\":\"{p}\"}}\n"
                )
                .as_bytes(),
            );
            sent += 1;
        }
        if !buf.is_empty() {
            s.write_all(&buf).context("publisher: write failed")?;
        }
        let next = Duration::from_secs_f64((sent as f64) / rate);
        let wait = next
            .saturating_sub(started.elapsed())
            .min(Duration::from_millis(5));
        if sent < messages && !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
    let last_ack = handle.join().expect("ack reader panicked");
    Ok(Published {
        acked: acked.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_ns,
        seconds: last_ack.map_or(0.0, |t| t.saturating_sub(first_ns) as f64 / 1e9),
    })
}

/// Counts acknowledgements until all came or none came for `ACK_WAIT`;
/// returns when the last one came.
fn read_acks(
    r: crate::tls_dial::Stream,
    messages: u64,
    acked: &AtomicU64,
    errors: &AtomicU64,
) -> Option<u64> {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    let mut last = None;
    let mut quiet_since = Instant::now();
    while acked.load(Ordering::Relaxed) < messages && quiet_since.elapsed() < ACK_WAIT {
        match r.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) if line.last() == Some(&b'\n') => {}
            Ok(_) => break,
            Err(_) => continue, // timeout: the partial line stays in `line`
        }
        match proto::scan(&line) {
            Hot::Ack { .. } => {
                acked.fetch_add(1, Ordering::Relaxed);
                last = Some(mono_ns());
                quiet_since = Instant::now();
            }
            Hot::Error => {
                errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("publisher: {}", String::from_utf8_lossy(&line).trim_end());
            }
            _ => {}
        }
        line.clear();
    }
    last
}
