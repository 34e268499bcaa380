//! Sockets: accepting, reading lines within budgets, dispatching each line by
//! what the connection is, flushing output, and closing.
//!
//! Invariants: reads are drained to WouldBlock unless the per-iteration read
//! budget runs out (the connection is then read again next iteration, so one
//! busy connection cannot starve the others); a connection marked `closing`
//! sends what it has and ends; an over-long or malformed line never affects
//! another connection.

use crate::conn::{Conn, DialStage, Role};
use crate::framing::{LineTooLong, ReadStatus};
use crate::limits::TokenBucket;
use crate::runtime::{Runtime, LISTENER, WAKER};
use crate::transport::Transport;
use chorus_core::client_wire::ServerLine;
use chorus_core::ErrorCode;
use mio::{Interest, Token};
use serde::Deserialize;
use std::io::Write;
use std::time::Duration;
use tracing::{debug, warn};

/// A fresh connection silent this long is a seed-dialect client that only
/// listens: it is subscribed to the seed's room, `general`. Long enough that
/// a peer's HELLO (sent as soon as its dial connects) is never mistaken for
/// silence; below the 3 s handshake timeout.
pub(crate) const SEED_IDLE: Duration = Duration::from_secs(2);
/// The seed's one room.
pub(crate) const SEED_ROOM: &str = "general";

/// How long a connection that was sent an ERROR may take to receive it.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// Just the `type` of a line (to classify one that is not a valid client line).
#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    ty: Option<String>,
}

pub(crate) fn line_type(line: &[u8]) -> Option<String> {
    serde_json::from_slice::<TypeOnly>(line).ok()?.ty
}

/// True if `line` is a JSON object with the top-level key `key`.
pub(crate) fn has_key(line: &[u8], key: &str) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line)
        .is_ok_and(|m| m.contains_key(key))
}

pub(crate) fn encode(line: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(line).expect("wire types always serialize")
}

impl Runtime {
    pub(crate) fn on_event(&mut self, token: Token, readable: bool, writable: bool) {
        match token {
            LISTENER => self.accept_all(),
            WAKER => {}
            t if self.is_irc_listener(t) => self.irc_accept(t),
            t if self.is_http(t) => self.on_http_event(t),
            _ => {
                if writable {
                    self.on_writable(token);
                }
                if readable {
                    self.read_conn(token);
                }
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    if self.conns.len() >= self.limits.max_connections {
                        if self.tls.is_some() {
                            // A plaintext ERROR means nothing to a TLS client.
                            warn!("refused {addr}: {} connections open", self.conns.len());
                            continue;
                        }
                        let busy = ServerLine::Error {
                            code: ErrorCode::Busy,
                            message: "too many connections; retry later or use another node".into(),
                        };
                        let mut line = encode(&busy);
                        line.push(b'\n');
                        let _ = stream.write(&line);
                        self.metrics.error(ErrorCode::Busy);
                        warn!("refused {addr}: {} connections open", self.conns.len());
                        continue;
                    }
                    let per_address = self.limits.max_connections_per_address;
                    if !self.per_address.admit(addr.ip(), per_address) {
                        if self.tls.is_none() {
                            let busy = ServerLine::Error {
                                code: ErrorCode::Busy,
                                message: format!(
                                    "more than {per_address} connections from {}",
                                    addr.ip()
                                ),
                            };
                            let mut line = encode(&busy);
                            line.push(b'\n');
                            let _ = stream.write(&line);
                        }
                        debug!("refused {addr}: {per_address} connections from its address");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let token = self.alloc_token();
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                        warn!("cannot register {addr}: {e}");
                        self.per_address.release(addr.ip());
                        continue;
                    }
                    let (transport, deadline) = match &self.tls {
                        Some(t) => (
                            Transport::tls_server(stream, t.server.clone()),
                            // Until its TLS handshake is done, a connection
                            // is held to the peer handshake timeout.
                            Some(self.handshake_deadline_at()),
                        ),
                        None => (Transport::Plain(stream), None),
                    };
                    let l = &self.limits;
                    let mut conn = Conn::new(
                        transport,
                        Role::Fresh,
                        l.max_line_bytes,
                        l.max_client_output_bytes,
                        addr.to_string(),
                    );
                    // Silent this long: a seed client that only listens. A TLS
                    // connection is first held to the handshake deadline.
                    conn.deadline =
                        deadline.or_else(|| Some(std::time::Instant::now() + SEED_IDLE));
                    conn.from = Some(addr.ip());
                    conn.rate = Some(TokenBucket::new(
                        l.client_rate_per_sec,
                        l.client_rate_burst,
                        self.now.0,
                    ));
                    self.conns.insert(token, conn);
                    debug!("accepted {addr}");
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn on_writable(&mut self, token: Token) {
        let connecting = self.conns.get(&token).is_some_and(|c| {
            matches!(
                c.role,
                Role::Dial {
                    stage: DialStage::Connecting,
                    ..
                }
            )
        });
        if connecting {
            self.on_connect_ready(token);
        } else {
            self.flush_conn(token);
        }
    }

    /// Reads lines until WouldBlock, EOF, an error, or the read budget is spent.
    pub(crate) fn read_conn(&mut self, token: Token) {
        let mut budget = self.limits.read_budget_bytes;
        loop {
            let Some(c) = self.conns.get_mut(&token) else {
                return;
            };
            if c.closing || matches!(c.client_mut(), Some(s) if s.read_closed) {
                return;
            }
            if matches!(
                c.role,
                Role::Dial {
                    stage: DialStage::Connecting,
                    ..
                }
            ) {
                return; // not connected yet: the writable event comes first
            }
            let status = match c.reader.read_from(&mut c.stream) {
                Ok(s) => s,
                Err(e) => return self.close_conn(token, &format!("read error: {e}")),
            };
            if matches!(c.role, Role::Fresh) && c.deadline.is_some() && !c.stream.is_handshaking() {
                // TLS is up: from here on, as a plain connection (whose
                // silence for SEED_IDLE makes it a listening seed client).
                c.deadline = Some(std::time::Instant::now() + SEED_IDLE);
            }
            if c.stream.has_pending_tls() {
                self.dirty.insert(token); // a handshake answer to send
            }
            let mut lines = Vec::new();
            let mut too_long = None;
            loop {
                match c.reader.next_line() {
                    Ok(Some(l)) => lines.push(l),
                    Ok(None) => break,
                    Err(e) => {
                        too_long = Some(e);
                        break;
                    }
                }
            }
            for line in lines {
                if self.conns.get(&token).is_none_or(|c| c.closing) {
                    return;
                }
                if !line.iter().all(u8::is_ascii_whitespace) {
                    self.on_line(token, &line);
                }
            }
            if let Some(e) = too_long {
                return self.on_too_long(token, e);
            }
            match status {
                ReadStatus::Data(n) => {
                    self.metrics.bytes_in.inc_by(n as u64);
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.read_again.insert(token);
                        return;
                    }
                }
                ReadStatus::WouldBlock => {
                    // Not yet a client or peer (e.g. a TLS handshake that
                    // stalls): hold no read buffer while it waits.
                    if let Some(c) = self.conns.get_mut(&token) {
                        if matches!(c.role, Role::Fresh) {
                            c.reader.release_if_empty();
                        }
                    }
                    return;
                }
                ReadStatus::Eof => return self.on_eof(token),
            }
        }
    }

    /// One complete line, dispatched by what the connection is.
    fn on_line(&mut self, token: Token, line: &[u8]) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        match &c.role {
            Role::Fresh => {
                c.deadline = None;
                if line_type(line).as_deref() == Some("HELLO") {
                    // A client's HELLO names a `proto`; a peer's names its
                    // `node_id` and `nonce` (auth.rs).
                    if has_key(line, "proto") {
                        self.on_client_hello(token, line);
                    } else {
                        self.on_hello(token, line);
                    }
                } else {
                    c.role = Role::Client(Default::default());
                    self.on_client_line(token, line);
                }
            }
            Role::Client(st) if st.irc.is_some() => self.on_irc_line(token, line),
            Role::Client(_) => self.on_client_line(token, line),
            Role::AwaitAuth { .. } => self.on_auth(token, line),
            Role::PeerIn(from) => {
                let from = *from;
                self.on_peer_line(token, from, line);
            }
            Role::Dial { .. } => self.on_dial_line(token, line),
        }
    }

    fn on_too_long(&mut self, token: Token, e: LineTooLong) {
        let Some(c) = self.conns.get(&token) else {
            return;
        };
        match &c.role {
            Role::Client(st) if st.irc.is_some() => {
                let why = format!("input line longer than {} bytes", e.max);
                self.irc_close(token, &why);
            }
            Role::Fresh | Role::Client(_) | Role::AwaitAuth { .. } => {
                debug!("{}: line longer than {} bytes", c.label, e.max);
                let msg = format!("line longer than {} bytes; the connection is closed", e.max);
                self.fail_conn(token, ErrorCode::TooLarge, msg);
            }
            _ => {
                warn!(
                    "{}: peer line longer than {} bytes; dropping the link",
                    c.label, e.max
                );
                self.close_conn(token, "over-long line");
            }
        }
    }

    fn on_eof(&mut self, token: Token) {
        let linger = self.linger();
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let pending = c.out.pending() > 0;
        if let Some(st) = c.client_mut() {
            // A half-closed client still gets the answers to what it sent.
            st.read_closed = true;
            if !st.finished() || pending {
                c.deadline = Some(std::time::Instant::now() + linger);
                return;
            }
        }
        self.close_conn(token, "closed by the other side");
    }

    /// How long a half-closed client waits for its outstanding answers.
    fn linger(&self) -> Duration {
        Duration::from_millis(self.leader_timeout_ms * 4 + 2000)
    }

    /// Queues one line on `token`; a client or link over its bound is dropped.
    pub(crate) fn push_line(&mut self, token: Token, line: &[u8]) -> bool {
        let Some(c) = self.conns.get_mut(&token) else {
            return false;
        };
        if c.out.push_line(line).is_err() {
            if c.client_mut().is_some() {
                self.metrics.slow_clients.inc();
            }
            let pending = c.out.pending();
            warn!(
                "{}: {} unsent bytes (it does not read fast enough); disconnecting",
                c.label, pending
            );
            self.close_conn(token, "output bound exceeded");
            return false;
        }
        self.dirty.insert(token);
        true
    }

    /// Sends an ERROR and closes the connection once it is flushed.
    pub(crate) fn fail_conn(&mut self, token: Token, code: ErrorCode, message: String) {
        self.metrics.error(code);
        let irc = self
            .conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .is_some_and(|st| st.irc.is_some());
        if irc {
            return self.irc_close(token, &message);
        }
        let seed = self
            .conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .is_some_and(|st| st.is_seed());
        if seed {
            // The seed dialect has no ERROR line: say it in our log only.
            debug!("seed client {token:?}: {message}; closing");
        } else {
            let line = encode(&ServerLine::Error { code, message });
            if !self.push_line(token, &line) {
                return;
            }
        }
        if let Some(c) = self.conns.get_mut(&token) {
            c.closing = true;
            c.deadline = Some(std::time::Instant::now() + CLOSE_FLUSH);
        }
        self.streaming.remove(&token);
    }

    pub(crate) fn flush_dirty(&mut self) {
        for t in std::mem::take(&mut self.dirty) {
            self.flush_conn(t);
        }
    }

    pub(crate) fn flush_conn(&mut self, token: Token) {
        let low_water = self.limits.stream_low_water_bytes;
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let before = c.out.pending();
        let written = c
            .out
            .write_to(&mut c.stream)
            .and_then(|empty| c.stream.flush_tls().map(|()| empty));
        if c.out.pending() < low_water {
            self.streaming.drained(token); // a stream paused on its pace goes on
        }
        let pending = c.out.pending() > 0 || c.stream.has_pending_tls();
        if written.is_ok() && c.from.is_some() && pending != c.write_interest {
            // Accepted connections wait for WRITABLE only with output pending.
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let registry = self.poll.registry();
            if registry
                .reregister(c.stream.tcp_mut(), token, interest)
                .is_ok()
            {
                c.write_interest = pending;
            }
        }
        self.metrics
            .bytes_out
            .inc_by(before.saturating_sub(c.out.pending()) as u64);
        match written {
            Ok(true) if c.stream.has_pending_tls() => {}
            Ok(true) => {
                let done = c.closing || c.client_mut().is_some_and(|s| s.finished());
                if done {
                    self.close_conn(token, "done");
                }
            }
            Ok(false) => {}
            Err(e) => self.close_conn(token, &format!("write error: {e}")),
        }
    }

    /// Removes the connection; a lost link to a peer is reported to the core.
    pub(crate) fn close_conn(&mut self, token: Token, why: &str) {
        let Some(mut c) = self.conns.remove(&token) else {
            return;
        };
        // A WebSocket's close code says why (`ws.rs`); "done" after an ERROR
        // (`fail_conn`) is a refusal, not a normal end.
        let ws_why = if c.closing && why == "done" {
            "closed after an ERROR line"
        } else {
            why
        };
        c.stream.close_because(ws_why);
        if let Some(ip) = c.from {
            self.per_address.release(ip);
        }
        let _ = self.poll.registry().deregister(c.stream.tcp_mut());
        self.dirty.remove(&token);
        self.streaming.remove(&token);
        self.read_again.remove(&token);
        if self.http.is_some() {
            self.metrics.client_gone(token.0);
        }
        if let Role::Client(st) = &c.role {
            if st.name.is_some() {
                // Presence: this session is gone (fed now, run with the batch).
                self.feed(chorus_core::Input::Client {
                    client: chorus_core::ClientId(token.0 as u64),
                    request: chorus_core::ClientRequest::Session { name: None },
                });
            }
        }
        match c.role {
            Role::Dial { peer, stage } => self.link_down(token, peer, stage, why),
            Role::PeerIn(id) => debug!("incoming link from n{} closed: {why}", id.0),
            _ => debug!("{} closed: {why}", c.label),
        }
    }
}
