//! Newline-delimited framing over nonblocking sockets, with hard bounds.
//!
//! `LineReader` holds at most one partial line (≤ its `max_line`) plus one read
//! chunk; a line longer than `max_line` is an error, never a bigger buffer.
//! The socket is read into one chunk shared by every connection of the
//! thread, and a connection keeps only the bytes it has not consumed yet: an
//! idle connection holds no read buffer at all (a node holds tens of
//! thousands of them), and a drained buffer over `KEEP_BYTES` is freed.
//! `OutBuf` keeps the unsent tail of partial writes (so framing survives short
//! writes) and refuses to grow past its `max`: the caller then disconnects.

use std::io::{self, Read, Write};

/// Bytes asked of the socket per read.
const CHUNK: usize = 64 * 1024;
/// A drained buffer (read or write) keeps at most this much capacity, so an
/// idle connection costs little and a busy one does not reallocate per line.
const KEEP_BYTES: usize = 4 * 1024;

std::thread_local! {
    /// The one read chunk of this thread (the node's loop is one thread).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; CHUNK]);
}

/// The outcome of one read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// This many bytes arrived.
    Data(usize),
    /// Nothing more for now (the socket is drained).
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

/// A line exceeded the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineTooLong {
    pub max: usize,
}

/// Splits a byte stream into bounded lines.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte.
    start: usize,
    /// Bytes before this index (from `start`) hold no newline.
    scanned: usize,
    max_line: usize,
}

impl LineReader {
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
        }
    }

    /// Raises or lowers the bound (a connection that turns out to be a peer).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    /// Unconsumed bytes held.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Gives the read chunk back when nothing is pending, so a connection
    /// that is idle keeps no 64 KiB buffer (`net.rs` calls it for
    /// connections that have not sent a first line: half-open handshakes).
    pub fn release_if_empty(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }

    /// One read of at most a chunk. Call `next_line` until `None` before the
    /// next read, so the buffer never holds more than one partial line.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<ReadStatus> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        SCRATCH.with_borrow_mut(|chunk| loop {
            match r.read(chunk) {
                Ok(0) => return Ok(ReadStatus::Eof),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(ReadStatus::Data(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadStatus::WouldBlock)
                }
                Err(e) => return Err(e),
            }
        })
    }

    /// The next complete line without its `\n` (and a trailing `\r`).
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        let from = self.start.max(self.scanned);
        match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = from + i;
                let mut line = &self.buf[self.start..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                if line.len() > self.max_line {
                    return Err(LineTooLong { max: self.max_line });
                }
                let line = line.to_vec();
                self.start = end + 1;
                self.scanned = self.start;
                Ok(Some(line))
            }
            None => {
                if self.start == self.buf.len() {
                    // Everything consumed: keep no large buffer.
                    self.start = 0;
                    self.scanned = 0;
                    if self.buf.capacity() > KEEP_BYTES {
                        self.buf = Vec::new();
                    } else {
                        self.buf.clear();
                    }
                    return Ok(None);
                }
                self.scanned = self.buf.len();
                if self.buffered() > self.max_line {
                    return Err(LineTooLong { max: self.max_line });
                }
                Ok(None)
            }
        }
    }
}

/// The output buffer would exceed its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// A bounded write buffer that keeps the unsent tail of partial writes.
#[derive(Debug)]
pub struct OutBuf {
    buf: Vec<u8>,
    head: usize,
    max: usize,
    /// What was written so far ends with a whole line (`head` is at a line
    /// start), so the unsent bytes can be dropped without cutting a line.
    at_line_start: bool,
}

impl OutBuf {
    pub fn new(max: usize) -> OutBuf {
        OutBuf {
            buf: Vec::new(),
            head: 0,
            max,
            at_line_start: true,
        }
    }

    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Unsent bytes.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Queues `line` plus a newline, or refuses if that would pass the bound.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), Overflow> {
        if self.pending() + line.len() + 1 > self.max {
            return Err(Overflow);
        }
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        Ok(())
    }

    /// Drops the unsent lines, except the rest of one partly written (the
    /// receiver must never see a cut line). For a subscriber being
    /// disconnected: what it missed it can ask for again, by seq_no.
    pub fn drop_unsent_lines(&mut self) {
        let keep = if self.at_line_start {
            self.head
        } else {
            self.buf[self.head..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.buf.len(), |i| self.head + i + 1)
        };
        self.buf.truncate(keep);
    }

    /// Writes until drained or the socket would block. `Ok(true)` when empty.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<bool> {
        while self.head < self.buf.len() {
            match w.write(&self.buf[self.head..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.head += n;
                    self.at_line_start = self.buf[self.head - 1] == b'\n';
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.head = 0;
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new(); // an idle connection keeps no large buffer
        } else {
            self.buf.clear();
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket stand-in: yields `data` in pieces of `step`, then WouldBlock or EOF.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        eof: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = self.step.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn drain(
        r: &mut LineReader,
        src: &mut Trickle,
    ) -> Result<(Vec<String>, ReadStatus), LineTooLong> {
        let mut lines = Vec::new();
        loop {
            let st = r.read_from(src).unwrap();
            while let Some(l) = r.next_line()? {
                lines.push(String::from_utf8(l).unwrap());
            }
            if !matches!(st, ReadStatus::Data(_)) {
                return Ok((lines, st));
            }
        }
    }

    #[test]
    fn lines_split_across_reads() {
        let mut src = Trickle {
            data: b"{\"a\":1}\r\n{\"b\":2}\n\n{\"c\"".to_vec(),
            pos: 0,
            step: 3,
            eof: false,
        };
        let mut r = LineReader::new(100);
        let (lines, st) = drain(&mut r, &mut src).unwrap();
        assert_eq!(lines, vec!["{\"a\":1}", "{\"b\":2}", ""]);
        assert_eq!(st, ReadStatus::WouldBlock);
        assert_eq!(r.buffered(), 4);
    }

    #[test]
    fn over_long_line_is_an_error_and_the_buffer_stays_bounded() {
        let mut src = Trickle {
            data: vec![b'x'; 10 << 20],
            pos: 0,
            step: usize::MAX,
            eof: true,
        };
        let mut r = LineReader::new(1 << 20);
        assert_eq!(drain(&mut r, &mut src), Err(LineTooLong { max: 1 << 20 }));
        assert!(r.buffered() <= (1 << 20) + CHUNK);
        assert!(src.pos < 2 << 20, "stopped reading soon after the bound");
    }

    #[test]
    fn a_complete_line_over_the_bound_is_refused() {
        let mut src = Trickle {
            data: b"0123456789\nok\n".to_vec(),
            pos: 0,
            step: 100,
            eof: true,
        };
        let mut r = LineReader::new(5);
        assert!(drain(&mut r, &mut src).is_err());
    }

    #[test]
    fn eof_is_reported() {
        let mut src = Trickle {
            data: b"a\n".to_vec(),
            pos: 0,
            step: 1,
            eof: true,
        };
        let mut r = LineReader::new(10);
        let (lines, st) = drain(&mut r, &mut src).unwrap();
        assert_eq!((lines, st), (vec!["a".to_string()], ReadStatus::Eof));
    }

    /// A socket stand-in that accepts `step` bytes per write, `budget` writes
    /// before it would block.
    struct Sink {
        got: Vec<u8>,
        step: usize,
        budget: usize,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.budget -= 1;
            let n = self.step.min(b.len());
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_the_unsent_tail_in_order() {
        let mut out = OutBuf::new(1000);
        out.push_line(b"hello").unwrap();
        out.push_line(b"world").unwrap();
        let mut sink = Sink {
            got: Vec::new(),
            step: 4,
            budget: 2,
        };
        assert!(!out.write_to(&mut sink).unwrap());
        assert_eq!(out.pending(), 4);
        out.push_line(b"!").unwrap();
        sink.budget = 100;
        assert!(out.write_to(&mut sink).unwrap());
        assert_eq!(sink.got, b"hello\nworld\n!\n");
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn dropping_unsent_lines_keeps_the_partly_written_one() {
        let mut out = OutBuf::new(1000);
        for l in [&b"first"[..], b"second", b"third"] {
            out.push_line(l).unwrap();
        }
        let mut sink = Sink {
            got: Vec::new(),
            step: 8,
            budget: 1,
        };
        assert!(!out.write_to(&mut sink).unwrap()); // "first\nse" went out
        out.drop_unsent_lines();
        out.push_line(b"ERR").unwrap();
        sink.budget = 100;
        assert!(out.write_to(&mut sink).unwrap());
        assert_eq!(sink.got, b"first\nsecond\nERR\n");
        out.push_line(b"x").unwrap();
        out.drop_unsent_lines(); // at a line start: everything unsent goes
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn output_is_bounded() {
        let mut out = OutBuf::new(10);
        out.push_line(b"12345678").unwrap();
        assert_eq!(out.push_line(b"x"), Err(Overflow));
        assert_eq!(out.pending(), 9);
    }

    #[test]
    fn a_drained_reader_and_writer_keep_no_large_buffer() {
        let mut r = LineReader::new(1 << 20);
        let big = [vec![b'x'; 50_000], b"\n".to_vec()].concat();
        r.read_from(&mut &big[..]).unwrap();
        assert_eq!(r.next_line().unwrap().map(|l| l.len()), Some(50_000));
        assert_eq!(r.next_line().unwrap(), None);
        assert!(r.buf.capacity() <= KEEP_BYTES);
        let mut out = OutBuf::new(1 << 20);
        out.push_line(&big).unwrap();
        let mut sink = Sink {
            got: Vec::new(),
            step: usize::MAX,
            budget: 10,
        };
        assert!(out.write_to(&mut sink).unwrap());
        assert!(out.buf.capacity() <= KEEP_BYTES);
    }

    #[test]
    fn release_if_empty_keeps_a_partial_line_and_frees_an_idle_buffer() {
        let mut r = LineReader::new(1024);
        r.read_from(&mut &b"ab"[..]).unwrap();
        r.release_if_empty();
        r.read_from(&mut &b"c\nd"[..]).unwrap();
        assert_eq!(r.next_line().unwrap(), Some(b"abc".to_vec()));
        r.release_if_empty(); // "d" is pending: kept
        r.read_from(&mut &b"e\n"[..]).unwrap();
        assert_eq!(r.next_line().unwrap(), Some(b"de".to_vec()));
        assert_eq!(r.next_line().unwrap(), None);
        r.release_if_empty();
        assert_eq!(r.buffered(), 0);
        r.read_from(&mut &b"f\n"[..]).unwrap();
        assert_eq!(r.next_line().unwrap(), Some(b"f".to_vec()));
    }
}
