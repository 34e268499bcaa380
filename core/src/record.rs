//! Durable log records and their binary encoding, plus `replay`, the recovery
//! code shared by the simulator and the real runtime.
//!
//! Frame: `len: u32 LE | hcrc: u32 LE (crc32c of len) | crc: u32 LE (crc32c of
//! payload) | payload[len]`. A torn tail (an incomplete or unchecksummable last
//! frame, or trailing zeros) is reported so the caller truncates it; a bad frame
//! followed by more data is corruption and an error naming the byte offset.
//!
//! Replay streams: entries go to an `EntrySink` (a `Vec` for tools and tests,
//! the node's compact `Log`), and `replay_read` pulls the bytes from a reader
//! through a bounded window, so recovery never holds the whole file or every
//! entry at once. Both paths share `read_frame` and give the same verdicts.

use crate::crc::crc32c;
use crate::entry::{Body, Chat, Entry, Event};
use crate::types::{NodeId, Seq, Term};
use std::io::{self, Read};

/// Largest payload a record may have; larger lengths are corruption.
pub const MAX_RECORD_BYTES: usize = 4 << 20;
const HEADER: usize = 12;

/// One durable fact.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// A snapshot at (`seq`, `term`) was installed (`snapshot.rs`), durable
    /// before this record: every earlier entry is gone and the log continues
    /// at `seq + 1`. Committed up to `seq`.
    Snapshot { seq: Seq, term: Term },
}

/// Where replay puts the log's entries, in order; a truncation removes a
/// suffix. Replay checks contiguity against `last_seq` before each push.
pub trait EntrySink {
    /// The seq of the last entry held (0 when empty).
    fn last_seq(&self) -> Seq;
    /// Appends `e` (at `last_seq() + 1`), whose record starts at byte `offset`.
    fn push(&mut self, e: Entry, offset: u64);
    /// Removes every entry from `from` on.
    fn truncate(&mut self, from: Seq);
    /// `truncate`, for a `Truncate` record that starts at byte `offset` (for
    /// sinks that index the log's bytes).
    fn truncate_at(&mut self, from: Seq, offset: u64) {
        let _ = offset;
        self.truncate(from);
    }
    /// A partial replay (after a snapshot) passed position (`seq`, `term`),
    /// an entry or a `Snapshot` record, inside the history the snapshot
    /// covers, without handing it over: a sink that checks the log agrees
    /// with the snapshot's last entry looks at it.
    fn covered(&mut self, seq: Seq, term: Term) {
        let _ = (seq, term);
    }
    /// A `Snapshot` record: every entry is dropped and the log continues
    /// after (`seq`, `term`). A sink that cannot hold a log that does not
    /// start at seq 1 refuses it (the replay then reports the record).
    fn rebase(&mut self, seq: Seq, term: Term) -> Result<(), String> {
        let _ = term;
        Err(format!(
            "a snapshot was installed at seq {}: read this log with its snapshot",
            seq.0
        ))
    }
}

impl EntrySink for Vec<Entry> {
    fn last_seq(&self) -> Seq {
        Seq(self.len() as u64)
    }
    fn push(&mut self, e: Entry, _offset: u64) {
        Vec::push(self, e);
    }
    fn truncate(&mut self, from: Seq) {
        Vec::truncate(self, from.0.saturating_sub(1) as usize);
    }
}

/// State rebuilt from a log; `entries` is where replay put them (all of them
/// in a `Vec` by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered<E = Vec<Entry>> {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub entries: E,
    pub commit_seq: Seq,
}

/// The outcome of a successful replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed<E = Vec<Entry>> {
    pub recovered: Recovered<E>,
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

fn corrupt(offset: u64, reason: impl Into<String>) -> ReplayError {
    ReplayError::Corrupt {
        offset,
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
                    // Tag 0: a chat message; tag 2: a room event, its kind next.
                    match c.event {
                        None => out.push(0),
                        Some(ev) => {
                            out.push(2);
                            out.push(ev.tag());
                        }
                    }
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
        Record::Snapshot { seq, term } => {
            out.push(5);
            out.extend_from_slice(&seq.0.to_le_bytes());
            out.extend_from_slice(&term.0.to_le_bytes());
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
                tag @ (0 | 2) => {
                    let event = if tag == 2 {
                        let t = r.u8()?;
                        Some(Event::from_tag(t).ok_or_else(|| format!("unknown room event {t}"))?)
                    } else {
                        None
                    };
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
                        event,
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
        5 => Record::Snapshot {
            seq: Seq(r.u64()?),
            term: Term(r.u64()?),
        },
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

/// The bytes of a log, read forward.
trait Source {
    /// The bytes from offset `at` on: at least `n` of them, fewer only if the
    /// log ends sooner. `at` never goes back before an earlier call's `at`.
    fn window(&mut self, at: u64, n: usize) -> io::Result<&[u8]>;
    /// True if every byte from `at` to the end of the log is zero.
    fn zeros_from(&mut self, at: u64) -> io::Result<bool>;
}

/// A log in memory.
struct SliceSource<'a>(&'a [u8]);

impl Source for SliceSource<'_> {
    fn window(&mut self, at: u64, _n: usize) -> io::Result<&[u8]> {
        Ok(&self.0[at as usize..])
    }
    fn zeros_from(&mut self, at: u64) -> io::Result<bool> {
        Ok(self.0[at as usize..].iter().all(|&b| b == 0))
    }
}

/// Reads of this size fill a `ReadSource` window.
const READ_CHUNK: usize = 256 * 1024;

/// A log pulled from a reader through a window of about one frame plus
/// `READ_CHUNK` bytes.
struct ReadSource<R> {
    r: R,
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the log.
    buf_at: u64,
    eof: bool,
}

impl<R: Read> ReadSource<R> {
    /// Reads until `n` bytes from `at` are buffered or the reader ends (the
    /// bytes before `at` are dropped first, only when more must be read);
    /// returns how many bytes from `at` are buffered.
    fn fill(&mut self, at: u64, n: usize) -> io::Result<usize> {
        let off = (at - self.buf_at) as usize;
        debug_assert!(
            off <= self.buf.len(),
            "the window only moves over read bytes"
        );
        if self.buf.len() - off >= n || self.eof {
            return Ok(self.buf.len() - off);
        }
        self.buf.drain(..off);
        self.buf_at = at;
        while self.buf.len() < n && !self.eof {
            let old = self.buf.len();
            self.buf.resize(old + READ_CHUNK.max(n - old), 0);
            match self.r.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(k) => self.buf.truncate(old + k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
        Ok(self.buf.len())
    }
}

impl<R: Read> Source for ReadSource<R> {
    fn window(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        self.fill(at, n)?;
        Ok(&self.buf[(at - self.buf_at) as usize..])
    }
    fn zeros_from(&mut self, mut at: u64) -> io::Result<bool> {
        loop {
            let have = self.fill(at, 1)?;
            if have == 0 {
                return Ok(true);
            }
            let off = (at - self.buf_at) as usize;
            if self.buf[off..].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += have as u64;
        }
    }
}

fn read_frame<S: Source>(src: &mut S, at: u64) -> io::Result<Frame<'_>> {
    let rest = src.window(at, HEADER)?;
    if rest.len() < HEADER {
        return Ok(Frame::Torn);
    }
    let len_bytes: [u8; 4] = rest[0..4].try_into().expect("4 bytes");
    let hcrc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if crc32c(&len_bytes) != hcrc {
        // Preallocated or partially written space reads as zeros.
        if src.zeros_from(at)? {
            return Ok(Frame::Torn);
        }
        return Ok(Frame::Bad("header checksum mismatch".into()));
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD_BYTES {
        return Ok(Frame::Bad(format!(
            "record length {len} exceeds {MAX_RECORD_BYTES}"
        )));
    }
    // One byte more than the frame: is this the last frame of the log?
    let rest = src.window(at, HEADER + len + 1)?;
    if rest.len() < HEADER + len {
        return Ok(Frame::Torn);
    }
    let crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    let payload = &rest[HEADER..HEADER + len];
    if crc32c(payload) != crc {
        if rest.len() == HEADER + len {
            return Ok(Frame::Torn);
        }
        return Ok(Frame::Bad("payload checksum mismatch".into()));
    }
    Ok(Frame::Ok(payload, HEADER + len))
}

/// A frame at the start of some bytes, as seen by a reader of a log that this
/// process wrote whole (no torn-tail judgement: that is `replay`'s).
#[derive(Debug, PartialEq, Eq)]
pub enum FramePeek<'a> {
    /// A whole frame with valid checksums: its payload and its total length.
    Whole { payload: &'a [u8], len: usize },
    /// Incomplete: this many bytes from the frame's start are needed.
    Need(usize),
    /// Checksum or length mismatch.
    Bad(String),
}

/// Looks at the frame that starts at `bytes[0]`.
pub fn peek_frame(bytes: &[u8]) -> FramePeek<'_> {
    peek(bytes, true)
}

/// `peek_frame` trusting the payload (only the header's checksum is checked):
/// for scanning the record boundaries of a log this process wrote, where a
/// payload is checked by `peek_frame` when it is actually read.
pub fn peek_frame_unverified(bytes: &[u8]) -> FramePeek<'_> {
    peek(bytes, false)
}

fn peek(bytes: &[u8], verify_payload: bool) -> FramePeek<'_> {
    if bytes.len() < HEADER {
        return FramePeek::Need(HEADER);
    }
    let len_bytes: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
    let hcrc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if crc32c(&len_bytes) != hcrc {
        return FramePeek::Bad("header checksum mismatch".into());
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD_BYTES {
        return FramePeek::Bad(format!("record length {len} exceeds {MAX_RECORD_BYTES}"));
    }
    if bytes.len() < HEADER + len {
        return FramePeek::Need(HEADER + len);
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..HEADER + len];
    if verify_payload && crc32c(payload) != crc {
        return FramePeek::Bad("payload checksum mismatch".into());
    }
    FramePeek::Whole {
        payload,
        len: HEADER + len,
    }
}

/// What a record does to the sequence of entries, read from its payload
/// without decoding the entry (for indexes over a log file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqEffect {
    /// An `Entry` record at this seq.
    Append(Seq),
    /// A `Truncate` record from this seq.
    Truncate(Seq),
    /// A `Snapshot` record: the log continues after this seq.
    Rebase(Seq),
    /// A `Term` or `Commit` record.
    Other,
}

/// The `SeqEffect` of a record payload (the layout of `encode_payload`).
pub fn seq_effect(payload: &[u8]) -> Result<SeqEffect, String> {
    let seq = || -> Result<Seq, String> {
        let b = payload.get(1..9).ok_or("record payload too short")?;
        Ok(Seq(u64::from_le_bytes(b.try_into().expect("8 bytes"))))
    };
    match payload.first() {
        Some(2) => Ok(SeqEffect::Append(seq()?)),
        Some(3) => Ok(SeqEffect::Truncate(seq()?)),
        Some(5) => Ok(SeqEffect::Rebase(seq()?)),
        Some(1 | 4) => Ok(SeqEffect::Other),
        Some(t) => Err(format!("unknown record tag {t}")),
        None => Err("empty record payload".into()),
    }
}

/// Rebuilds a node's durable state from the bytes of its log.
pub fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    replay_into(bytes, Vec::new())
}

/// `replay`, with the entries handed to `entries`.
pub fn replay_into<E: EntrySink>(bytes: &[u8], entries: E) -> Result<Replayed<E>, ReplayError> {
    match replay_source(&mut SliceSource(bytes), entries) {
        Ok(r) => r,
        Err(e) => unreachable!("reading memory cannot fail: {e}"),
    }
}

/// `replay_into` over a reader, holding about one frame plus 256 KiB of it
/// at a time. The outer error is the reader's; the inner one the log's.
pub fn replay_read<R: Read, E: EntrySink>(
    r: R,
    entries: E,
) -> io::Result<Result<Replayed<E>, ReplayError>> {
    let mut src = ReadSource {
        r,
        buf: Vec::new(),
        buf_at: 0,
        eof: false,
    };
    replay_source(&mut src, entries)
}

impl<E> Replayed<E> {
    /// Nothing replayed yet; entries go to `entries`.
    fn empty(entries: E) -> Replayed<E> {
        Replayed {
            recovered: Recovered {
                term: Term(0),
                voted_for: None,
                entries,
                commit_seq: Seq(0),
            },
            valid_len: 0,
            records: 0,
        }
    }
}

fn replay_source<S: Source, E: EntrySink>(
    src: &mut S,
    entries: E,
) -> io::Result<Result<Replayed<E>, ReplayError>> {
    let mut out = Replayed::empty(entries);
    Ok(replay_more(src, &mut out, 0)?.map(|valid| {
        out.valid_len = valid;
        out
    }))
}

/// Replays the records of `src` into `out`, `src` being the bytes of the log
/// from offset `base` on (offsets in errors and given to the sink are
/// offsets in the whole log); returns how many bytes of `src` are valid.
fn replay_more<S: Source, E: EntrySink>(
    src: &mut S,
    out: &mut Replayed<E>,
    base: u64,
) -> io::Result<Result<u64, ReplayError>> {
    let mut at = 0u64;
    loop {
        let (rec, n) = match read_frame(src, at)? {
            Frame::Ok(p, n) => (decode_payload(p), n),
            Frame::Torn => break,
            Frame::Bad(reason) => return Ok(Err(corrupt(base + at, reason))),
        };
        let applied = rec.and_then(|rec| apply_at(&mut out.recovered, rec, base + at));
        if let Err(reason) = applied {
            return Ok(Err(corrupt(base + at, reason)));
        }
        at += n as u64;
        out.records += 1;
    }
    Ok(Ok(at))
}

/// One file of a segmented log: where its first byte is in the whole log
/// (the concatenation of the segments), its length, and its bytes.
#[derive(Debug)]
pub struct SegmentSource<R> {
    pub base: u64,
    pub len: u64,
    pub reader: R,
}

/// Replays a log stored as segments, in order, each holding whole records
/// (a writer starts a segment only between records, after making the one
/// before it durable). Offsets given to the sink, in errors and in
/// `valid_len` are offsets in the whole log.
///
/// Verdicts beyond `replay`'s: a torn record is a crash's torn tail only in
/// the last segment; at the end of any other segment it is corruption (the
/// segment after it was created only once this one was fsynced whole). A
/// segment whose `base` is not where the one before ended (a missing or
/// shortened segment) is corruption too. An empty list is an empty log.
pub fn replay_segments<R: Read, E: EntrySink>(
    segments: impl IntoIterator<Item = SegmentSource<R>>,
    entries: E,
) -> io::Result<Result<Replayed<E>, ReplayError>> {
    let mut out = Replayed::empty(entries);
    let mut segments = segments.into_iter().peekable();
    let mut expected: Option<u64> = None;
    while let Some(seg) = segments.next() {
        if expected.is_some_and(|e| e != seg.base) {
            let e = expected.unwrap_or(0);
            return Ok(Err(corrupt(
                e,
                format!(
                    "the next segment starts at byte {} where {e} was expected: a segment is missing or was cut",
                    seg.base
                ),
            )));
        }
        let mut src = ReadSource {
            r: seg.reader,
            buf: Vec::new(),
            buf_at: 0,
            eof: false,
        };
        let valid = match replay_more(&mut src, &mut out, seg.base)? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        out.valid_len = seg.base + valid;
        if segments.peek().is_some() && valid < seg.len {
            return Ok(Err(corrupt(
                seg.base + valid,
                "an incomplete record at the end of a segment that another segment follows (not a crash's torn tail: a segment is made durable before the next one starts)",
            )));
        }
        expected = Some(seg.base + seg.len);
    }
    Ok(Ok(out))
}

/// Applies one record to recovered state, checking the log's own invariants.
pub fn apply<E: EntrySink>(state: &mut Recovered<E>, rec: Record) -> Result<(), String> {
    apply_at(state, rec, 0)
}

/// `apply` of the record that starts at byte `offset` of the log.
fn apply_at<E: EntrySink>(
    state: &mut Recovered<E>,
    rec: Record,
    offset: u64,
) -> Result<(), String> {
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
            let expected = state.entries.last_seq().0 + 1;
            if e.seq_no.0 != expected {
                return Err(format!(
                    "entry seq {} where {expected} was expected",
                    e.seq_no.0
                ));
            }
            state.entries.push(e, offset);
        }
        Record::Truncate { from } => {
            if from.0 == 0 || from <= state.commit_seq {
                return Err(format!("truncation at {} below commit point", from.0));
            }
            if from <= state.entries.last_seq() {
                state.entries.truncate_at(from, offset);
            }
        }
        Record::Commit { seq } => {
            if seq > state.entries.last_seq() {
                return Err(format!("commit point {} beyond the log end", seq.0));
            }
            state.commit_seq = state.commit_seq.max(seq);
        }
        Record::Snapshot { seq, term } => {
            if seq < state.commit_seq {
                return Err(format!(
                    "snapshot at {} below the commit point {}",
                    seq.0, state.commit_seq.0
                ));
            }
            state.entries.rebase(seq, term)?;
            state.commit_seq = seq;
        }
    }
    Ok(())
}
