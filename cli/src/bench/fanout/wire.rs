//! What the fan-out bench's processes tell each other, and the published
//! payload's format.
//!
//! The parent writes one `WorkerSpec` line on a worker's stdin, and later
//! `stop` (give up waiting); the worker writes one `Ready` line once its
//! sessions are subscribed (or failed) and one `WorkerResult` line at the
//! end, both on stdout. Latency needs one clock in every process:
//! CLOCK_MONOTONIC is system-wide on Linux, so the publisher writes its
//! reading into each payload and a subscriber subtracts it from its own.

use super::session::Transport;
use serde::{Deserialize, Serialize};

/// Nanoseconds of CLOCK_MONOTONIC (the same clock in every process).
pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One node as a worker reaches it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    /// The client (JSON-line) port.
    pub tcp: std::net::SocketAddr,
    /// The HTTP port (for `/ws`), if the node has one.
    pub http: Option<std::net::SocketAddr>,
}

/// What one worker process does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub targets: Vec<Target>,
    /// Global index of this worker's first session; session g goes to
    /// target `g % targets.len()` over `transports[(g / targets.len()) %
    /// transports.len()]`, so every node gets every transport evenly.
    pub first: u64,
    pub sessions: u64,
    pub transports: Vec<Transport>,
    pub room: String,
    /// Messages every subscriber must receive; the worker ends once each
    /// ready session has them all.
    pub messages: u64,
    /// Give up on sessions not subscribed after this long.
    pub ready_timeout_s: f64,
    /// Spread the sockets over source addresses 127.1.x.1 (at most 200
    /// per address), so a node's `max_connections_per_address` is not the
    /// limit.
    pub spread_sources: bool,
}

/// Sent once every session is subscribed or has failed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ready {
    pub ready: u64,
    pub failed: u64,
    /// Ready sessions per target index.
    pub per_target: Vec<u64>,
    /// A few failure reasons (at most 5), for the report.
    pub errors: Vec<String>,
    /// CPU seconds used so far (connecting and subscribing).
    pub cpu_s: f64,
}

/// The end of a worker.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Chat lines received (over all sessions).
    pub deliveries: u64,
    /// Ready sessions that received every message, in order, once.
    pub complete: u64,
    /// Sessions that saw a message twice or out of order, or skipped one.
    pub out_of_order: u64,
    /// Ready sessions the node closed during the run.
    pub dropped: u64,
    /// CLOCK_MONOTONIC ns of the first and last delivery (0: none).
    pub first_ns: u64,
    pub last_ns: u64,
    /// send→received latency: (µs, count) of each recorded histogram bucket.
    pub latency_us: Vec<(u64, u64)>,
    pub errors: Vec<String>,
    /// CPU seconds this worker used (user + system), to see whether the
    /// subscribers' side was the bottleneck.
    pub cpu_s: f64,
}

/// The payload of message `idx`: `f<idx> <send ns>` padded to `size`.
pub fn payload(idx: u64, sent_ns: u64, size: usize) -> String {
    let mut p = format!("f{idx} {sent_ns} ");
    while p.len() < size {
        p.push('x');
    }
    p
}

/// (idx, send ns) of a SEQ_CHAT line carrying a fan-out payload.
pub fn scan_payload(line: &[u8]) -> Option<(u64, u64)> {
    const KEY: &[u8] = b"\"payload\":\"f";
    let at = find(line, KEY)? + KEY.len();
    let rest = &line[at..];
    let (idx, rest) = number(rest)?;
    let rest = rest.strip_prefix(b" ")?;
    let (ns, _) = number(rest)?;
    Some((idx, ns))
}

/// Where `needle` starts in `hay`: a scan for its first byte, then a
/// compare (a byte-by-byte `windows` search was most of a worker's time).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == needle[0]) {
        let at = from + i;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |a, &c| a * 10 + u64::from(c - b'0'));
    Some((v, &b[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_a_seq_chat_line() {
        let p = payload(42, 123_456_789, 64);
        assert_eq!(p.len(), 64);
        let line = format!(
            "{{\"type\":\"SEQ_CHAT\",\"seq_no\":3,\"room_id\":\"fan\",\"payload\":\"{p}\",\"ts_ms\":1}}"
        );
        assert_eq!(scan_payload(line.as_bytes()), Some((42, 123_456_789)));
        assert_eq!(scan_payload(b"{\"payload\":\"hello\"}"), None);
    }

    #[test]
    fn clock_is_monotonic() {
        let a = mono_ns();
        assert!(mono_ns() >= a);
    }
}
