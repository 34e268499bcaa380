//! `/ws`: the WebSocket upgrade of the HTTP port (RFC 6455 §4.2), then the
//! hand-over of the socket to an ordinary client connection whose transport
//! is a `WsStream` (`ws.rs`), and the keepalive pings of those sessions.
//!
//! Refusals happen in HTTP, before the upgrade: not a WebSocket request
//! (426), a version other than 13 (426), no key (400), an `Origin` not in
//! `ws_allowed_origins` (403, as RFC 6455 §4.2.2 asks), the node's
//! connection bound reached (503). A request without `Origin` is not from a
//! browser page (browsers always send it) and is accepted: the check exists
//! to stop other sites' pages from using a visitor's browser as a client.
//! The default list also has the other nodes' HTTP ports (learned from their
//! HELLO, `addresses.rs`): the web page of one node fails over to the others.
//!
//! Once upgraded, the session is a client connection like those of the
//! JSON-line port: counted in `max_connections`, in
//! `max_connections_per_address` (over it: close 1013), in the
//! `client_sessions` gauge, and its lines enter the same dispatch
//! (`net.rs` `on_line`), so the line protocol is the same on both.

use super::conn::HttpConn;
use super::routes::Response;
use crate::conn::{Conn, Role};
use crate::limits::TokenBucket;
use crate::runtime::Runtime;
use crate::transport::Transport;
use crate::ws::WsStream;
use mio::Token;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, warn};
use tungstenite::protocol::frame::coding::CloseCode;

/// Where the WebSocket is served.
pub(super) const WS_PATH: &str = "/ws";

/// The request headers an upgrade needs.
#[derive(Clone, Debug, Default)]
pub(super) struct WsHeaders {
    upgrade_ws: bool,
    connection_upgrade: bool,
    key: Option<String>,
    version: Option<String>,
    origin: Option<String>,
}

impl WsHeaders {
    pub(super) fn note(&mut self, name: &str, value: &[u8]) {
        let v = String::from_utf8_lossy(value).trim().to_string();
        let lower = v.to_ascii_lowercase();
        let has_token = |t: &str| lower.split(',').any(|x| x.trim() == t);
        if name.eq_ignore_ascii_case("upgrade") {
            self.upgrade_ws = has_token("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            self.connection_upgrade |= has_token("upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            self.key = Some(v);
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            self.version = Some(v);
        } else if name.eq_ignore_ascii_case("origin") {
            self.origin = Some(v);
        }
    }
}

/// The origins allowed by default: this node's HTTP address under the names
/// a local browser uses for it, over http and https.
pub(crate) fn default_origins(host: &str, port: u16, advertised: &str) -> Vec<String> {
    let mut hosts = vec!["localhost", "127.0.0.1", "[::1]"];
    for h in [host, advertised] {
        if !h.is_empty() && h != "0.0.0.0" && h != "::" && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let mut out = Vec::new();
    for h in hosts {
        out.push(format!("http://{h}:{port}"));
        out.push(format!("https://{h}:{port}"));
    }
    out
}

fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

impl Runtime {
    /// Answers a `/ws` request: 101 (the connection becomes a session once
    /// it is written) or a refusal.
    pub(super) fn ws_upgrade(&mut self, token: Token, head: &super::Head) {
        let ws = &head.ws;
        let refuse = |status: u16, why: String, header: Option<&str>| {
            let mut r = Response::text(status, why);
            r.headers.extend(header.map(str::to_string));
            r
        };
        let refusal = if !ws.upgrade_ws || !ws.connection_upgrade {
            Some(refuse(
                426,
                "/ws is a WebSocket: send Upgrade: websocket and Connection: Upgrade\n".into(),
                Some("Upgrade: websocket"),
            ))
        } else if ws.version.as_deref() != Some("13") {
            Some(refuse(
                426,
                "WebSocket version 13 only\n".into(),
                Some("Sec-WebSocket-Version: 13"),
            ))
        } else if ws.key.is_none() {
            Some(refuse(400, "no Sec-WebSocket-Key\n".into(), None))
        } else if let Some(origin) = ws
            .origin
            .as_deref()
            .filter(|o| !origin_allowed(&self.ws_origins(), o))
        {
            warn!("ws: refused Origin {origin:?} (not in ws_allowed_origins)");
            Some(refuse(
                403,
                format!("Origin {origin} is not allowed (ws_allowed_origins)\n"),
                None,
            ))
        } else if self.conns.len() >= self.limits.max_connections {
            let why = "too many connections; retry later or use another node\n";
            Some(refuse(503, why.into(), None))
        } else {
            None
        };
        if let Some(r) = refusal {
            return self.http_answer(token, &r, false, true);
        }
        let key = ws.key.clone().unwrap_or_default();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let bytes = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        if let Some(c) = self.http.as_mut().and_then(|h| h.conns.get_mut(&token)) {
            c.upgrade = true;
            c.queue(bytes.into_bytes());
        }
    }

    /// The allow-list in force (`ws_allowed_origins`, or the defaults).
    fn ws_origins(&self) -> Vec<String> {
        let Some(h) = &self.http else {
            return Vec::new();
        };
        if !h.opts.ws_allowed_origins.is_empty() {
            return h.opts.ws_allowed_origins.clone();
        }
        let advertised = self.advertised.rsplit_once(':').map_or("", |(h, _)| h);
        let mut out = default_origins(&h.opts.host, h.local_addr().port(), advertised);
        // The other nodes' pages fail over here (`http/addresses.rs`).
        for (host, port) in self
            .peer_http
            .values()
            .filter_map(|a| super::addresses::split_host_port(a))
        {
            out.extend(default_origins(host, port, ""));
        }
        out
    }

    /// The 101 is written: the socket leaves HTTP and becomes a client
    /// connection (same token, same mio registration).
    pub(super) fn ws_take_over(&mut self, token: Token) {
        let Some(h) = self.http.as_mut() else {
            return;
        };
        h.again.remove(&token);
        let Some(c): Option<HttpConn> = h.conns.remove(&token) else {
            return;
        };
        h.ws.insert(token);
        let peer = c.peer.clone();
        let (stream, early) = c.into_parts();
        let l = &self.limits;
        let ws = WsStream::new(Transport::Plain(stream), early, l.max_line_bytes);
        let mut conn = Conn::new(
            Transport::Ws(Box::new(ws)),
            Role::Fresh,
            l.max_line_bytes,
            l.max_client_output_bytes,
            format!("ws {peer}"),
        );
        conn.rate = Some(TokenBucket::new(
            l.client_rate_per_sec,
            l.client_rate_burst,
            self.now.0,
        ));
        let ip = peer.parse::<SocketAddr>().ok().map(|a| a.ip());
        let per_address = l.max_connections_per_address;
        if let Some(ip) = ip {
            if !self.per_address.admit(ip, per_address) {
                if let Transport::Ws(w) = &mut conn.stream {
                    let why = format!("more than {per_address} connections from {ip}");
                    w.close(CloseCode::Again, &why);
                }
                debug!("ws {peer} refused: {per_address} connections from its address");
                if let Some(h) = self.http.as_mut() {
                    h.ws.remove(&token);
                }
                let _ = self.poll.registry().deregister(conn.stream.tcp_mut());
                return;
            }
            conn.from = Some(ip);
        }
        self.conns.insert(token, conn);
        debug!("ws {peer}: session opened");
        self.read_conn(token);
        self.dirty.insert(token);
    }

    /// Pings idle WebSocket sessions; closes those whose ping went unanswered.
    pub(super) fn ws_sweep(&mut self, now: Instant) {
        let Some(h) = self.http.as_mut() else {
            return;
        };
        if h.ws.is_empty() || now < h.ws_sweep {
            return;
        }
        let every = Duration::from_millis(h.opts.ws_ping_interval_ms.max(1));
        let patience = Duration::from_millis(h.opts.ws_pong_timeout_ms.max(1));
        h.ws_sweep = now + every.min(patience) / 2;
        let tokens: Vec<Token> = h.ws.iter().copied().collect();
        let mut late = Vec::new();
        for t in tokens {
            let Some(Transport::Ws(w)) = self.conns.get_mut(&t).map(|c| &mut c.stream) else {
                if let Some(h) = self.http.as_mut() {
                    h.ws.remove(&t);
                }
                continue;
            };
            match w.ping_sent {
                Some(at) if now.saturating_duration_since(at) >= patience => late.push(t),
                Some(_) => {}
                None if now.saturating_duration_since(w.last_heard) >= every => {
                    w.ping();
                    self.dirty.insert(t);
                }
                None => {}
            }
        }
        for t in late {
            let why = format!("no pong within {} ms", patience.as_millis());
            self.close_conn(t, &why);
            if let Some(h) = self.http.as_mut() {
                h.ws.remove(&t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let d = default_origins("0.0.0.0", 8001, "chorus-1");
        assert!(origin_allowed(&d, "http://localhost:8001"));
        assert!(origin_allowed(&d, "https://chorus-1:8001/"));
        assert!(!origin_allowed(&d, "http://localhost:9999"));
        assert!(!origin_allowed(&d, "https://evil.example"));
        assert!(origin_allowed(&["*".into()], "https://evil.example"));
    }

    #[test]
    fn headers() {
        let mut h = WsHeaders::default();
        h.note("Upgrade", b"WebSocket");
        h.note("Connection", b"keep-alive, Upgrade");
        h.note("Sec-WebSocket-Version", b"13");
        assert!(h.upgrade_ws && h.connection_upgrade);
        assert_eq!(h.version.as_deref(), Some("13"));
    }
}
