//! One HTTP connection: its socket, the bytes of the request being read
//! (bounded by `max_request_bytes`), the response being written (bounded by
//! `max_response_bytes`, one response at a time) and its deadline.
//!
//! The socket is a `Transport`: plain TCP, or TLS when the node has `[tls]`
//! (https and wss on the same port, with the node's certificate). rustls
//! may hold handshake messages or records it could not yet write; those
//! count as "still writing", so the writable event brings us back.
//!
//! A connection can leave HTTP (`into_parts`): a route that upgrades (the
//! WebSocket of the web-client issue) takes the socket and whatever the
//! client sent after its request head, and runs its own protocol on them.

use crate::transport::Transport;
use std::io::{self, Read, Write};
use std::time::Instant;

/// What one read pass found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    /// The socket has nothing more for now.
    WouldBlock,
    /// The buffer reached its bound (the socket may hold more).
    Full,
    /// The client closed its side.
    Eof,
}

#[derive(Debug)]
pub(crate) struct HttpConn {
    pub stream: Transport,
    /// Request bytes not yet consumed (at most `max_in`).
    pub inbuf: Vec<u8>,
    max_in: usize,
    out: Vec<u8>,
    out_head: usize,
    /// Close once the response is written (Connection: close, an error).
    pub close_after: bool,
    /// Becomes a WebSocket once the 101 response is written.
    pub upgrade: bool,
    /// The current request/response cycle must be over by then.
    pub deadline: Instant,
    pub peer: String,
}

impl HttpConn {
    pub fn new(stream: Transport, max_in: usize, deadline: Instant, peer: String) -> HttpConn {
        HttpConn {
            stream,
            inbuf: Vec::new(),
            max_in,
            out: Vec::new(),
            out_head: 0,
            close_after: false,
            upgrade: false,
            deadline,
            peer,
        }
    }

    /// Reads until WouldBlock, EOF or the request bound; returns the bytes
    /// read and why it stopped.
    pub fn fill(&mut self) -> io::Result<(usize, Filled)> {
        let mut total = 0;
        let mut chunk = [0u8; 4096];
        loop {
            let room = self.max_in.saturating_sub(self.inbuf.len());
            if room == 0 {
                return Ok((total, Filled::Full));
            }
            let want = room.min(chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => return Ok((total, Filled::Eof)),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((total, Filled::WouldBlock))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A response is still being written.
    pub fn writing(&self) -> bool {
        self.out_head < self.out.len() || self.stream.has_pending_tls()
    }

    /// Queues a whole response (the caller checked its size).
    pub fn queue(&mut self, bytes: Vec<u8>) {
        debug_assert!(self.out_head >= self.out.len(), "one response at a time");
        self.out = bytes;
        self.out_head = 0;
    }

    /// Writes until done or WouldBlock; returns the bytes written.
    pub fn flush(&mut self) -> io::Result<usize> {
        let mut total = 0;
        while self.out_head < self.out.len() {
            match self.stream.write(&self.out[self.out_head..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_head += n;
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.stream.flush_tls()?;
        if self.out_head >= self.out.len() {
            self.out = Vec::new();
            self.out_head = 0;
        }
        Ok(total)
    }

    /// The socket and the bytes received after the last request consumed,
    /// for a protocol that takes the connection over (the caller
    /// deregisters the socket from HTTP first).
    pub fn into_parts(self) -> (Transport, Vec<u8>) {
        (self.stream, self.inbuf)
    }
}
