//! A WebSocket (RFC 6455, tungstenite) as a byte stream of client lines, so
//! that a `/ws` session is an ordinary client connection (`Conn` with the
//! same `LineReader`, `OutBuf`, roles, limits and entry point as the
//! JSON-line port) and only the framing differs.
//!
//! Read: each text message becomes its payload plus `\n` (a message may hold
//! several `\n`-separated lines; a line never spans two messages). Pings are
//! answered by tungstenite (the pong goes out on the next flush); a close
//! frame is end of input. Binary messages are refused (close 1003), a message
//! or frame over `max_line_bytes` is refused (close 1009), a protocol
//! violation closes with 1002 and invalid UTF-8 with 1007.
//!
//! Write: the connection's `OutBuf` hands over whole lines; each line becomes
//! one text message. Bound: new lines are taken only once tungstenite has
//! flushed everything it holds into the transport, and at most `WRITE_CHUNK`
//! bytes of lines per call, so tungstenite holds at most that plus one line;
//! the rest stays in the `OutBuf`, whose bound (`max_client_output_bytes`)
//! disconnects a reader that falls too far behind (close 1008).
//!
//! Nothing blocks: every tungstenite call that meets `WouldBlock` is
//! reported as `WouldBlock` and called again on the next event, with the
//! pending frame kept in tungstenite's buffer.

use crate::transport::Transport;
use std::io::{self, Read, Write};
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocket, WebSocketConfig};
use tungstenite::{Error, Message};

/// Bytes of lines turned into frames per `write` call.
const WRITE_CHUNK: usize = 64 << 10;
/// tungstenite's read buffer per session (its default is 128 KiB).
const READ_BUFFER: usize = 4 << 10;

/// The server side of one WebSocket.
#[derive(Debug)]
pub struct WsStream {
    ws: WebSocket<Transport>,
    /// The current message's bytes (payload + `\n`) not yet read out.
    inbuf: Vec<u8>,
    in_head: usize,
    /// tungstenite holds frames (pongs, close, data) not yet flushed.
    pending: bool,
    /// We queued a close frame: nothing more is sent.
    closed: bool,
    /// When the client last sent anything (a frame of any kind).
    pub last_heard: Instant,
    /// When our unanswered ping went out.
    pub ping_sent: Option<Instant>,
}

impl WsStream {
    /// Takes over an upgraded connection; `early` is what the client sent
    /// after its request head.
    pub fn new(inner: Transport, early: Vec<u8>, max_message: usize) -> WsStream {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        WsStream {
            ws: WebSocket::from_partially_read(inner, early, Role::Server, Some(config)),
            inbuf: Vec::new(),
            in_head: 0,
            pending: false,
            closed: false,
            last_heard: Instant::now(),
            ping_sent: None,
        }
    }

    pub fn inner(&self) -> &Transport {
        self.ws.get_ref()
    }

    pub fn inner_mut(&mut self) -> &mut Transport {
        self.ws.get_mut()
    }

    /// Frames or TLS records still waiting for the socket.
    pub fn has_pending(&self) -> bool {
        self.pending || self.inner().has_pending_tls()
    }

    /// Flushes tungstenite, then the transport; Ok(true) if all went out.
    pub fn flush_out(&mut self) -> io::Result<bool> {
        match self.ws.flush() {
            Ok(()) => self.pending = false,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => self.pending = false,
            Err(e) => return Err(io::Error::other(e)),
        }
        self.ws.get_mut().flush_tls()?;
        Ok(!self.inner().has_pending_tls())
    }

    /// Sends a ping (keepalive); the answer resets `ping_sent`.
    pub fn ping(&mut self) {
        if self.closed {
            return;
        }
        self.ping_sent = Some(Instant::now());
        let _ = self.ws.write(Message::Ping(Vec::new().into()));
        self.pending = true;
        let _ = self.flush_out();
    }

    /// Queues a close frame (once) and tries to send it.
    /// Also flushes a close reply tungstenite queued for the client's close.
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        if self.closed {
            let _ = self.flush_out();
            return;
        }
        self.closed = true;
        // A close reason is at most 123 bytes (a control frame's payload).
        let mut reason = reason.to_string();
        while reason.len() > 123 {
            reason.pop();
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.ws.close(Some(frame));
        self.pending = true;
        let _ = self.flush_out();
    }

    /// The close code for a connection the node ends for `why` (the
    /// reason strings of `net.rs`'s `close_conn`).
    pub fn close_for(&mut self, why: &str) {
        let code = if why.contains("output bound") {
            CloseCode::Policy
        } else if why == "done" || why.starts_with("closed by") || why == "shutting down" {
            CloseCode::Normal
        } else if why.contains("timed out") || why.contains("pong") || why.contains("ERROR") {
            CloseCode::Policy
        } else {
            CloseCode::Error
        };
        let reason = match code {
            CloseCode::Policy if why.contains("output bound") => {
                "output bound exceeded: the client does not read fast enough"
            }
            CloseCode::Normal => "",
            _ => why,
        };
        self.close(code, reason);
    }

    fn fail(&mut self, code: CloseCode, reason: &str) -> io::Error {
        self.close(code, reason);
        io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
    }

    fn next_message(&mut self) -> io::Result<bool> {
        loop {
            let m = match self.ws.read() {
                Ok(m) => m,
                Err(Error::Io(e)) => {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        return Ok(false);
                    }
                    return Err(e);
                }
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => return Ok(false),
                Err(Error::Capacity(e)) => {
                    let max = self.ws.get_config().max_message_size.unwrap_or(0);
                    let why = format!("message larger than {max} bytes ({e})");
                    return Err(self.fail(CloseCode::Size, &why));
                }
                Err(Error::Utf8(_)) => return Err(self.fail(CloseCode::Invalid, "invalid UTF-8")),
                Err(Error::Protocol(e)) => {
                    return Err(self.fail(CloseCode::Protocol, &e.to_string()))
                }
                Err(e) => return Err(self.fail(CloseCode::Error, &e.to_string())),
            };
            self.last_heard = Instant::now();
            match m {
                Message::Text(t) => {
                    self.inbuf.clear();
                    self.inbuf.extend_from_slice(t.as_bytes());
                    self.inbuf.push(b'\n');
                    self.in_head = 0;
                    return Ok(true);
                }
                Message::Binary(_) => {
                    let why = "binary frames are not accepted: send JSON lines as text";
                    return Err(self.fail(CloseCode::Unsupported, why));
                }
                Message::Pong(_) => self.ping_sent = None,
                // tungstenite queued the pong / the close reply.
                Message::Ping(_) => self.pending = true,
                Message::Close(_) => {
                    self.pending = true;
                    self.closed = true;
                    return Ok(false);
                }
                Message::Frame(_) => {}
            }
        }
    }
}

impl Read for WsStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.in_head >= self.inbuf.len() && !self.next_message()? {
            return Ok(0);
        }
        let n = out.len().min(self.inbuf.len() - self.in_head);
        out[..n].copy_from_slice(&self.inbuf[self.in_head..self.in_head + n]);
        self.in_head += n;
        if self.in_head == self.inbuf.len() && self.inbuf.capacity() > READ_BUFFER {
            self.inbuf = Vec::new(); // do not keep a large message's buffer
            self.in_head = 0;
        }
        Ok(n)
    }
}

impl Write for WsStream {
    /// Takes whole lines from `buf` (as `OutBuf` hands them) as text frames.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !self.flush_out()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut taken = 0;
        while taken < buf.len() && taken < WRITE_CHUNK {
            let rest = &buf[taken..];
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            // Our lines are JSON from serde, so valid UTF-8: checked once,
            // copied once (the lossy path is only a safety net).
            let line = match std::str::from_utf8(&rest[..end]) {
                Ok(l) => l.to_owned(),
                Err(_) => String::from_utf8_lossy(&rest[..end]).into_owned(),
            };
            taken += (end + 1).min(rest.len());
            match self.ws.write(Message::text(line)) {
                Ok(()) => {}
                // Kept in tungstenite's buffer: it goes out on the next flush.
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(io::Error::other(e)),
            }
            self.pending = true;
        }
        let _ = self.flush_out()?;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_out().map(|_| ())
    }
}
