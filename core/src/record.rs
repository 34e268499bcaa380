//! Durable log records and their binary encoding, plus `replay`, the recovery
//! code shared by the simulator and the real runtime.
//!
//! Frame: `len: u32 LE | hcrc: u32 LE (crc32c of len) | crc: u32 LE (crc32c of
//! payload) | payload[len]`. A torn tail (an incomplete or unchecksummable last
//! frame, or trailing zeros) is reported so the caller truncates it; a bad frame
//! followed by more data is corruption and an error naming the byte offset.

use crate::crc::crc32c;
use crate::entry::{Body, Chat, Entry};
use crate::types::{NodeId, Seq, Term};

/// Largest payload a record may have; larger lengths are corruption.
pub const MAX_RECORD_BYTES: usize = 4 << 20;
const HEADER: usize = 12;

/// One durable fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The node's current term and the claimant it promised in that term.
    Term {
        term: Term,
        voted_for: Option<NodeId>,
    },
    /// A log entry at `entry.seq_no` (always last + 1 at the time it is written).
    Entry(Entry),
    /// Entries from `from` on were removed (an uncommitted conflicting suffix).
    Truncate { from: Seq },
    /// Everything up to `seq` is known committed (a hint; may lag the truth).
    Commit { seq: Seq },
}

/// State rebuilt from a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub entries: Vec<Entry>,
    pub commit_seq: Seq,
}

/// The outcome of a successful replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub recovered: Recovered,
    /// Bytes of valid records; anything after is a torn tail to truncate.
    pub valid_len: u64,
    /// Number of records applied.
    pub records: u64,
}

/// Why a log cannot be replayed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplayError {
    /// A damaged record with valid data after it: not a torn write, real corruption.
    #[error("corrupt record at byte offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

fn corrupt(offset: usize, reason: impl Into<String>) -> ReplayError {
    ReplayError::Corrupt {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Appends the framed encoding of `rec` to `out`.
pub fn encode(rec: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    encode_payload(rec, out);
    let len = (out.len() - start - HEADER) as u32;
    let len_bytes = len.to_le_bytes();
    let crc = crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc32c(&len_bytes).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_payload(rec: &Record, out: &mut Vec<u8>) {
    match rec {
        Record::Term { term, voted_for } => {
            out.push(1);
            out.extend_from_slice(&term.0.to_le_bytes());
            out.extend_from_slice(&voted_for.map_or(0, |n| n.0 + 1).to_le_bytes());
        }
        Record::Entry(e) => {
            out.push(2);
            out.extend_from_slice(&e.seq_no.0.to_le_bytes());
            out.extend_from_slice(&e.term.0.to_le_bytes());
            match &e.body {
                Body::Chat(c) => {
                    out.push(0);
                    put_str(&c.msg_id, out);
                    put_str(&c.room_id, out);
                    out.extend_from_slice(&c.sender_id.to_le_bytes());
                    match &c.user {
                        Some(u) => {
                            out.push(1);
                            put_str(u, out);
                        }
                        None => out.push(0),
                    }
                    put_str(&c.payload, out);
                    out.extend_from_slice(&c.ts_ms.to_le_bytes());
                }
                Body::Noop { leader } => {
                    out.push(1);
                    out.extend_from_slice(&leader.0.to_le_bytes());
                }
            }
        }
        Record::Truncate { from } => {
            out.push(3);
            out.extend_from_slice(&from.0.to_le_bytes());
        }
        Record::Commit { seq } => {
            out.push(4);
            out.extend_from_slice(&seq.0.to_le_bytes());
        }
    }
}

/// A cursor over one payload; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| "record payload too short".to_string())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Result<String, String> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
}

/// Decodes one payload (without its frame).
pub fn decode_payload(payload: &[u8]) -> Result<Record, String> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let rec = match r.u8()? {
        1 => {
            let term = Term(r.u64()?);
            let v = r.u64()?;
            Record::Term {
                term,
                voted_for: if v == 0 { None } else { Some(NodeId(v - 1)) },
            }
        }
        2 => {
            let seq_no = Seq(r.u64()?);
            let term = Term(r.u64()?);
            let body = match r.u8()? {
                0 => {
                    let msg_id = r.str()?;
                    let room_id = r.str()?;
                    let sender_id = r.u64()?;
                    let user = match r.u8()? {
                        0 => None,
                        1 => Some(r.str()?),
                        t => return Err(format!("bad user flag {t}")),
                    };
                    let payload = r.str()?;
                    let ts_ms = r.u64()?;
                    Body::Chat(Chat {
                        msg_id,
                        room_id,
                        sender_id,
                        user,
                        payload,
                        ts_ms,
                    })
                }
                1 => Body::Noop {
                    leader: NodeId(r.u64()?),
                },
                t => return Err(format!("unknown entry body tag {t}")),
            };
            Record::Entry(Entry { seq_no, term, body })
        }
        3 => Record::Truncate {
            from: Seq(r.u64()?),
        },
        4 => Record::Commit { seq: Seq(r.u64()?) },
        t => return Err(format!("unknown record tag {t}")),
    };
    if r.pos != payload.len() {
        return Err("trailing bytes in record payload".into());
    }
    Ok(rec)
}

/// Outcome of reading the frame at one offset.
enum Frame<'a> {
    Ok(&'a [u8], usize),
    /// Damaged, and nothing valid can follow: a torn write.
    Torn,
    Bad(String),
}

fn read_frame(bytes: &[u8], at: usize) -> Frame<'_> {
    let rest = &bytes[at..];
    if rest.len() < HEADER {
        return Frame::Torn;
    }
    let len_bytes: [u8; 4] = rest[0..4].try_into().expect("4 bytes");
    let hcrc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if crc32c(&len_bytes) != hcrc {
        // Preallocated or partially written space reads as zeros.
        if rest.iter().all(|&b| b == 0) {
            return Frame::Torn;
        }
        return Frame::Bad("header checksum mismatch".into());
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD_BYTES {
        return Frame::Bad(format!("record length {len} exceeds {MAX_RECORD_BYTES}"));
    }
    if rest.len() < HEADER + len {
        return Frame::Torn;
    }
    let crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    let payload = &rest[HEADER..HEADER + len];
    if crc32c(payload) != crc {
        if rest.len() == HEADER + len {
            return Frame::Torn;
        }
        return Frame::Bad("payload checksum mismatch".into());
    }
    Frame::Ok(payload, HEADER + len)
}

/// Rebuilds a node's durable state from the bytes of its log.
pub fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let mut out = Replayed::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let (payload, n) = match read_frame(bytes, at) {
            Frame::Ok(p, n) => (p, n),
            Frame::Torn => break,
            Frame::Bad(reason) => return Err(corrupt(at, reason)),
        };
        let rec = decode_payload(payload).map_err(|r| corrupt(at, r))?;
        apply(&mut out.recovered, rec).map_err(|r| corrupt(at, r))?;
        at += n;
        out.records += 1;
    }
    out.valid_len = at as u64;
    Ok(out)
}

/// Applies one record to recovered state, checking the log's own invariants.
pub fn apply(state: &mut Recovered, rec: Record) -> Result<(), String> {
    match rec {
        Record::Term { term, voted_for } => {
            if term < state.term {
                return Err(format!(
                    "term went backwards: {} after {}",
                    term.0, state.term.0
                ));
            }
            state.term = term;
            state.voted_for = voted_for;
        }
        Record::Entry(e) => {
            let expected = state.entries.len() as u64 + 1;
            if e.seq_no.0 != expected {
                return Err(format!(
                    "entry seq {} where {expected} was expected",
                    e.seq_no.0
                ));
            }
            state.entries.push(e);
        }
        Record::Truncate { from } => {
            if from.0 == 0 || from <= state.commit_seq {
                return Err(format!("truncation at {} below commit point", from.0));
            }
            state.entries.truncate(from.0 as usize - 1);
        }
        Record::Commit { seq } => {
            if seq.0 as usize > state.entries.len() {
                return Err(format!("commit point {} beyond the log end", seq.0));
            }
            state.commit_seq = state.commit_seq.max(seq);
        }
    }
    Ok(())
}
