//! The client protocol as the load generator speaks it.
//!
//! Hot path (per message): CHAT lines are written without serde, and the two
//! replies that arrive per message (CHAT_ACK on the sending connection, SEQ_CHAT
//! on every subscription) are scanned for the few fields we need instead of
//! being parsed, so the generator stays cheap next to the nodes on a 2-core box.
//! Cold path (a few per run): STATUS and HISTORY use serde_json and the shared
//! `chorus_core::client_wire` types.
//!
//! Message ids are `<tag>-<g>` where `tag` is unique per run and `g` is the
//! message's global index (0-based, zero-padded to 10 digits): any reply maps
//! back to its send-time slot without a hash map.

use crate::tls_dial::{ClientTls, Stream};
use anyhow::{anyhow, bail, Context, Result};
use chorus_core::client_wire::{NodeStatus, ServerLine};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Width of the zero-padded message index in a msg_id.
const G_DIGITS: usize = 10;

/// Builds and parses this run's msg_ids.
#[derive(Clone, Debug)]
pub struct MsgIds {
    tag: String,
}

impl MsgIds {
    /// A tag unique to this run (pid and clock), so reruns against a long-lived
    /// cluster never collide with earlier msg_ids (which would be deduplicated).
    pub fn new_for_run() -> MsgIds {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        MsgIds {
            tag: format!("b{:x}{:06x}", std::process::id(), nanos & 0xff_ffff),
        }
    }

    /// The global index of one of our msg_ids; None for anyone else's.
    pub fn parse(&self, msg_id: &[u8]) -> Option<u64> {
        let tag = self.tag.as_bytes();
        if msg_id.len() != tag.len() + 1 + G_DIGITS
            || !msg_id.starts_with(tag)
            || msg_id[tag.len()] != b'-'
        {
            return None;
        }
        parse_u64(&msg_id[tag.len() + 1..])
    }
}

/// Appends one seed-format CHAT line (the exact shape the seed's client sends).
pub fn write_chat(out: &mut Vec<u8>, ids: &MsgIds, g: u64, payload: &str) {
    out.extend_from_slice(
        br#"{"type":"CHAT","sender_id":9999,"term":0,"room_id":"general","msg_id":""#,
    );
    out.extend_from_slice(ids.tag.as_bytes());
    // `write!` on a Vec cannot fail.
    let _ = write!(out, "-{:0w$}", g, w = G_DIGITS);
    out.extend_from_slice(br#"","payload":""#);
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The fields of a hot reply line.
#[derive(Debug, PartialEq, Eq)]
pub enum Hot<'a> {
    /// CHAT_ACK: `msg_id` is committed at `seq_no`.
    Ack { msg_id: &'a [u8], seq_no: u64 },
    /// SEQ_CHAT: a committed message pushed to a subscriber.
    Chat {
        msg_id: &'a [u8],
        seq_no: u64,
        term: u64,
    },
    /// An ERROR line (busy, bad request, unavailable ...).
    Error,
    /// Anything else (HISTORY_END, STATUS, unknown).
    Other,
}

/// Classifies a reply line by scanning for its fields. Server lines come from
/// serde with fixed field names; a msg_id we generated never needs unescaping.
pub fn scan(line: &[u8]) -> Hot<'_> {
    match str_field(line, b"\"type\":\"") {
        Some(b"CHAT_ACK") => match (
            str_field(line, b"\"msg_id\":\""),
            num_field(line, b"\"seq_no\":"),
        ) {
            (Some(msg_id), Some(seq_no)) => Hot::Ack { msg_id, seq_no },
            _ => Hot::Other,
        },
        Some(b"SEQ_CHAT") => match (
            str_field(line, b"\"msg_id\":\""),
            num_field(line, b"\"seq_no\":"),
            num_field(line, b"\"term\":"),
        ) {
            (Some(msg_id), Some(seq_no), Some(term)) => Hot::Chat {
                msg_id,
                seq_no,
                term,
            },
            _ => Hot::Other,
        },
        Some(b"ERROR") => Hot::Error,
        _ => Hot::Other,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn str_field<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = find(line, key)? + key.len();
    let len = line[start..].iter().position(|&b| b == b'"')?;
    Some(&line[start..start + len])
}

fn num_field(line: &[u8], key: &[u8]) -> Option<u64> {
    let start = find(line, key)? + key.len();
    let len = line[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(line.len() - start);
    parse_u64(&line[start..start + len])
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// How every bench connection talks to the nodes (set once at start).
static TLS: OnceLock<ClientTls> = OnceLock::new();
/// Where the certificates of a bench-started TLS cluster are (`--tls`).
static CERTS: OnceLock<PathBuf> = OnceLock::new();

pub fn set_tls(tls: ClientTls) {
    let _ = TLS.set(tls);
}

pub fn tls() -> &'static ClientTls {
    TLS.get_or_init(|| None)
}

/// `--tls`: a CA and certificates for `nodes` nodes in a temporary directory,
/// used by every cluster the bench starts and trusted by its clients.
pub fn use_tls_certs(nodes: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("chorus-bench-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crate::certs::init(&dir)?;
    for id in 1..=nodes as u64 {
        crate::certs::node(id, &dir, &[])?;
    }
    set_tls(crate::tls_dial::from_ca(Some(&dir.join("ca.pem")))?);
    let _ = CERTS.set(dir);
    Ok(())
}

/// The `[tls]` section of node `id`'s config, when the bench runs TLS.
pub fn tls_section(id: u64) -> Option<String> {
    let dir = CERTS.get()?;
    let (cert, key) = crate::certs::node_files(dir, id);
    Some(format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
        cert.display().to_string(),
        key.display().to_string(),
        dir.join("ca.pem").display().to_string()
    ))
}

/// A bench connection (plain or TLS as set at start) within `timeout`.
pub fn open(addr: SocketAddr, timeout: Duration) -> std::io::Result<Stream> {
    crate::tls_dial::connect(&addr, &addr.ip().to_string(), tls(), timeout)
}

/// A short-lived blocking connection for cold-path requests.
fn connect(addr: SocketAddr, timeout: Duration) -> Result<(Stream, BufReader<Stream>)> {
    let mut s = open(addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    s.tcp().set_read_timeout(Some(timeout))?;
    s.tcp().set_write_timeout(Some(timeout))?;
    let mut r = BufReader::new(s.try_clone()?);
    s.write_all(hello().as_bytes())?;
    let mut line = String::new();
    match read_server_line(&mut r, &mut line)? {
        ServerLine::Hello(_) => Ok((s, r)),
        other => bail!("{addr} answered HELLO with {other:?}"),
    }
}

/// The HELLO chorus bench opens every connection with (full dialect).
pub fn hello() -> String {
    chorus_core::client_wire::hello_line(concat!("chorus-bench/", env!("CARGO_PKG_VERSION"))) + "\n"
}

fn read_server_line(r: &mut BufReader<Stream>, line: &mut String) -> Result<ServerLine> {
    line.clear();
    let n = r.read_line(line)?;
    if n == 0 {
        bail!("connection closed");
    }
    serde_json::from_str(line.trim_end()).with_context(|| format!("bad reply line {line:?}"))
}

/// Asks one node for its STATUS.
pub fn status(addr: SocketAddr, timeout: Duration) -> Result<NodeStatus> {
    let (mut s, mut r) = connect(addr, timeout)?;
    s.write_all(b"{\"type\":\"STATUS\"}\n")?;
    let mut line = String::new();
    for _ in 0..16 {
        match read_server_line(&mut r, &mut line)? {
            ServerLine::Status(st) => return Ok(st),
            ServerLine::Error { code, message } => bail!("{addr}: {code:?}: {message}"),
            _ => {}
        }
    }
    Err(anyhow!("{addr}: no STATUS answer"))
}

/// One committed chat entry as read back from a node's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logged {
    pub seq_no: u64,
    pub term: u64,
    /// Our global message index.
    pub g: u64,
}

/// Reads a node's whole committed history (HISTORY pages of 1000) and keeps
/// this run's messages. Bounded by `max_pages`.
pub fn history(addr: SocketAddr, ids: &MsgIds, max_pages: usize) -> Result<Vec<Logged>> {
    let (mut s, mut r) = connect(addr, Duration::from_secs(10))?;
    let mut out = Vec::new();
    let mut from = 1u64;
    let mut line = String::new();
    for _ in 0..max_pages {
        writeln!(
            s,
            "{{\"type\":\"HISTORY\",\"from_seq\":{from},\"limit\":1000}}"
        )?;
        loop {
            match read_server_line(&mut r, &mut line)? {
                ServerLine::SeqChat(d) => {
                    if let Some(g) = ids.parse(d.msg_id.as_bytes()) {
                        out.push(Logged {
                            seq_no: d.seq_no,
                            term: d.term,
                            g,
                        });
                    }
                }
                ServerLine::HistoryEnd {
                    next_seq,
                    commit_seq,
                    ..
                } => {
                    if next_seq > commit_seq || next_seq <= from {
                        return Ok(out);
                    }
                    from = next_seq;
                    break;
                }
                ServerLine::Error { code, message } => bail!("{addr}: {code:?}: {message}"),
                _ => {}
            }
        }
    }
    Err(anyhow!("{addr}: history longer than {max_pages} pages"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_line_is_the_seed_shape_and_round_trips_its_index() {
        let ids = MsgIds { tag: "bt".into() };
        let mut out = Vec::new();
        write_chat(&mut out, &ids, 42, "hi");
        let line = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            line,
            "{\"type\":\"CHAT\",\"sender_id\":9999,\"term\":0,\"room_id\":\"general\",\"msg_id\":\"bt-0000000042\",\"payload\":\"hi\"}\n"
        );
        let parsed: chorus_core::client_wire::ClientLine =
            serde_json::from_str(line.trim_end()).unwrap();
        assert!(matches!(
            parsed,
            chorus_core::client_wire::ClientLine::Chat { .. }
        ));
        assert_eq!(ids.parse(b"bt-0000000042"), Some(42));
        assert_eq!(ids.parse(b"xx-0000000042"), None);
        assert_eq!(ids.parse(b"bt-42"), None);
    }

    #[test]
    fn scanner_reads_what_the_server_serializes() {
        let ack = ServerLine::ChatAck {
            msg_id: "bt-0000000007".into(),
            seq_no: 12,
        };
        let ack = serde_json::to_vec(&ack).unwrap();
        assert_eq!(
            scan(&ack),
            Hot::Ack {
                msg_id: b"bt-0000000007",
                seq_no: 12
            }
        );
        let d = chorus_core::client_wire::Delivered {
            room_seq: 1,
            seq_no: 99,
            term: 3,
            msg_id: "bt-0000000001".into(),
            room_id: "general".into(),
            sender_id: 9999,
            user: None,
            payload: "\"msg_id\":\"evil".into(),
            ts_ms: 5,
        };
        let line = serde_json::to_vec(&ServerLine::SeqChat(d)).unwrap();
        assert_eq!(
            scan(&line),
            Hot::Chat {
                msg_id: b"bt-0000000001",
                seq_no: 99,
                term: 3
            }
        );
        assert_eq!(
            scan(br#"{"type":"ERROR","code":"busy","message":"x"}"#),
            Hot::Error
        );
        assert_eq!(scan(b"garbage"), Hot::Other);
    }
}
