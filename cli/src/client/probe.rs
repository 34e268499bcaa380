//! One-shot STATUS request to a node (used by `chorus up` to wait for a
//! leader): connect, send `{"type":"STATUS"}`, read lines until the STATUS
//! answer, all within one deadline.

use chorus_core::client_wire::{ClientLine, NodeStatus, ServerLine};
use std::io::{BufRead, BufReader, Read, Write};

use std::time::{Duration, Instant};

/// Longest line read while waiting for the STATUS answer.
const MAX_LINE_BYTES: u64 = 1 << 20;
/// Most lines skipped while waiting (a node answers STATUS right away).
const MAX_LINES: usize = 100;

/// Asks `addr` (host:port) for its status, giving up after `timeout`.
pub fn status(
    addr: &str,
    timeout: Duration,
    tls: &crate::tls_dial::ClientTls,
) -> Result<NodeStatus, String> {
    let deadline = Instant::now() + timeout;
    let mut stream = crate::tls_dial::connect_str(addr, tls, timeout)?;
    // An anonymous session: a probe must not show up as anyone's presence.
    let mut line = chorus_core::client_wire::hello_line("chorus-status").into_bytes();
    line.push(b'\n');
    line.extend(serde_json::to_vec(&ClientLine::Status {}).map_err(|e| e.to_string())?);
    line.push(b'\n');
    stream
        .tcp()
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream.write_all(&line).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    for _ in 0..MAX_LINES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        reader
            .get_ref()
            .tcp()
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the STATUS answer".into());
        }
        if let Ok(ServerLine::Status(st)) = serde_json::from_slice::<ServerLine>(&buf) {
            return Ok(st);
        }
    }
    Err("no STATUS answer in time".into())
}
