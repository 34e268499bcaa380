//! The HTTP port, served on the node's own mio loop: accepting, reading
//! request heads (parsed by httparse), answering through `routes.rs`, writing.
//!
//! Bounds (`HttpOptions`): connections (more are answered 503 and closed),
//! request head size (431), no request bodies (413), one response in flight
//! per connection (the next pipelined request is read only once the previous
//! answer is written, so a client that does not read holds one response at
//! most), a deadline per request/response cycle (slow or idle clients are
//! closed), and `REQUESTS_PER_PASS` requests per connection per loop
//! iteration (the rest waits for the next iteration). Nothing here blocks:
//! every socket operation stops at WouldBlock.
//!
//! Tokens: the listener and the connections take tokens from the runtime's
//! counter, so they never collide with client or peer connections.

mod addresses;
mod assets;
mod conn;
mod routes;
mod upgrade;

use crate::options::HttpOptions;
use crate::runtime::Runtime;
use crate::RuntimeError;
use conn::{Filled, HttpConn};
use mio::net::TcpListener;
use mio::{Interest, Token};
use routes::{Response, Routed};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Requests answered on one connection per loop iteration.
const REQUESTS_PER_PASS: usize = 8;
/// Headers parsed per request; more: 431.
const MAX_HEADERS: usize = 32;

/// The HTTP side of one node.
#[derive(Debug)]
pub(crate) struct HttpServer {
    listener: TcpListener,
    token: Token,
    local_addr: SocketAddr,
    conns: HashMap<Token, HttpConn>,
    /// WebSocket sessions taken over from HTTP (they live in `Runtime::conns`;
    /// this set only drives their pings).
    ws: BTreeSet<Token>,
    /// When the next WebSocket ping sweep is due.
    ws_sweep: Instant,
    /// Connections that stopped on `REQUESTS_PER_PASS` with requests left.
    again: BTreeSet<Token>,
    pub opts: HttpOptions,
    pub started: Instant,
}

impl HttpServer {
    /// Binds the port (registered with the poll by `Runtime::start_http`).
    pub(crate) fn bind(opts: HttpOptions) -> Result<(TcpListener, SocketAddr), RuntimeError> {
        let listener = crate::runtime::bind(&opts.host, opts.port, "http_port")?;
        let addr = listener.local_addr().map_err(RuntimeError::Poll)?;
        Ok((listener, addr))
    }

    pub(crate) fn owns(&self, token: Token) -> bool {
        token == self.token || self.conns.contains_key(&token)
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The earliest connection deadline (now, if some connection has work left).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if !self.again.is_empty() {
            return Some(Instant::now());
        }
        let ws = (!self.ws.is_empty()).then_some(self.ws_sweep);
        self.conns.values().map(|c| c.deadline).chain(ws).min()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        304 => "Not Modified",
        403 => "Forbidden",
        426 => "Upgrade Required",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The bytes of a response (HEAD: the headers only).
fn render(r: &Response, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
        r.cache_control,
    )
    .into_bytes();
    if let Some(tag) = &r.etag {
        out.extend_from_slice(format!("ETag: {tag}\r\n").as_bytes());
    }
    for h in &r.headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&r.body);
    }
    out
}

/// One parsed request head: what routing and the connection need.
struct Head {
    len: usize,
    get: bool,
    head_only: bool,
    path: String,
    close: bool,
    has_body: bool,
    /// The headers a WebSocket upgrade (`upgrade.rs`) looks at.
    ws: upgrade::WsHeaders,
    /// `If-None-Match` (a cached copy of a static file is still good?).
    if_none_match: Option<String>,
}

enum Parsed {
    Complete(Head),
    Partial,
    Bad(u16, String),
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Bad(431, format!("more than {MAX_HEADERS} headers\n"))
        }
        Err(e) => return Parsed::Bad(400, format!("bad request: {e}\n")),
    };
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("/");
    let mut close = req.version == Some(0);
    let mut has_body = false;
    let mut ws = upgrade::WsHeaders::default();
    let mut if_none_match = None;
    for h in req.headers.iter() {
        ws.note(h.name, h.value);
        let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
        if h.name.eq_ignore_ascii_case("connection") {
            close = value.contains("close") || (close && !value.contains("keep-alive"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            has_body |= value.trim() != "0";
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        } else if h.name.eq_ignore_ascii_case("if-none-match") {
            if_none_match = Some(String::from_utf8_lossy(h.value).into_owned());
        }
    }
    Parsed::Complete(Head {
        len,
        get: method == "GET" || method == "HEAD",
        head_only: method == "HEAD",
        path: target.split('?').next().unwrap_or("/").to_string(),
        close,
        has_body,
        ws,
        if_none_match,
    })
}

impl Runtime {
    /// Binds and registers the HTTP port, if configured.
    pub(crate) fn start_http(&mut self, opts: Option<HttpOptions>) -> Result<(), RuntimeError> {
        let Some(opts) = opts else {
            return Ok(());
        };
        let (mut listener, local_addr) = HttpServer::bind(opts.clone())?;
        let token = self.alloc_token();
        self.poll
            .registry()
            .register(&mut listener, token, Interest::READABLE)?;
        info!("n{} serves HTTP on {local_addr}", self.me.0);
        self.http = Some(HttpServer {
            listener,
            token,
            local_addr,
            conns: HashMap::new(),
            again: BTreeSet::new(),
            ws: BTreeSet::new(),
            ws_sweep: Instant::now(),
            opts,
            started: Instant::now(),
        });
        Ok(())
    }

    pub(crate) fn is_http(&self, token: Token) -> bool {
        self.http.as_ref().is_some_and(|h| h.owns(token))
    }

    pub(crate) fn on_http_event(&mut self, token: Token) {
        let Some(h) = &self.http else {
            return;
        };
        if token == h.token {
            self.http_accept();
        } else {
            self.http_drive(token);
        }
    }

    fn http_accept(&mut self) {
        loop {
            let Some(h) = self.http.as_mut() else {
                return;
            };
            let (mut stream, addr) = match h.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("http accept failed: {e}");
                    return;
                }
            };
            if h.conns.len() >= h.opts.max_connections {
                let busy = Response::text(503, "too many HTTP connections\n");
                let _ = stream.write(&render(&busy, false, true));
                warn!("http: refused {addr}: {} connections open", h.conns.len());
                continue;
            }
            let deadline = Instant::now() + Duration::from_millis(h.opts.timeout_ms);
            let max_in = h.opts.max_request_bytes;
            let token = self.alloc_token();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                warn!("http: cannot register {addr}: {e}");
                continue;
            }
            let conn = HttpConn::new(stream, max_in, deadline, addr.to_string());
            if let Some(h) = self.http.as_mut() {
                h.conns.insert(token, conn);
            }
        }
    }

    fn http_close(&mut self, token: Token, why: &str) {
        let Some(h) = self.http.as_mut() else {
            return;
        };
        h.again.remove(&token);
        if let Some(mut c) = h.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            debug!("http {} closed: {why}", c.peer);
        }
    }

    /// Writes what is pending, then reads and answers requests, one at a
    /// time, until the socket would block or a bound is reached.
    fn http_drive(&mut self, token: Token) {
        for _ in 0..REQUESTS_PER_PASS {
            let Some(h) = self.http.as_mut() else {
                return;
            };
            let timeout = Duration::from_millis(h.opts.timeout_ms);
            let Some(c) = h.conns.get_mut(&token) else {
                return;
            };
            match c.flush() {
                Ok(n) => {
                    self.metrics.bytes_out.inc_by(n as u64);
                }
                Err(e) => return self.http_close(token, &format!("write error: {e}")),
            }
            let Some(c) = self.http.as_mut().and_then(|h| h.conns.get_mut(&token)) else {
                return;
            };
            if c.writing() {
                return; // the writable event brings us back
            }
            if c.upgrade {
                return self.ws_take_over(token);
            }
            if c.close_after {
                return self.http_close(token, "answered");
            }
            let filled = match c.fill() {
                Ok((n, f)) => {
                    self.metrics.bytes_in.inc_by(n as u64);
                    f
                }
                Err(e) => return self.http_close(token, &format!("read error: {e}")),
            };
            let Some(c) = self.http.as_mut().and_then(|h| h.conns.get_mut(&token)) else {
                return;
            };
            match parse(&c.inbuf) {
                Parsed::Partial => match filled {
                    Filled::Eof => return self.http_close(token, "closed by the client"),
                    Filled::Full => {
                        let r = Response::text(431, "request head too large\n");
                        self.http_answer(token, &r, false, true);
                    }
                    Filled::WouldBlock => return,
                },
                Parsed::Bad(status, why) => {
                    self.http_answer(token, &Response::text(status, why), false, true)
                }
                Parsed::Complete(head) => {
                    c.inbuf.drain(..head.len);
                    c.deadline = Instant::now() + timeout;
                    self.http_request(token, head);
                }
            }
        }
        // Budget spent with requests possibly left: continue next iteration.
        if let Some(h) = self.http.as_mut() {
            if h.conns.contains_key(&token) {
                h.again.insert(token);
            }
        }
    }

    fn http_request(&mut self, token: Token, head: Head) {
        self.metrics.http_requests.inc();
        if head.has_body {
            let r = Response::text(413, "request bodies are not accepted\n");
            return self.http_answer(token, &r, false, true);
        }
        if !head.get {
            let mut r = Response::text(405, "only GET and HEAD\n");
            r.headers.push("Allow: GET, HEAD".into());
            return self.http_answer(token, &r, false, true);
        }
        if head.path == upgrade::WS_PATH {
            return self.ws_upgrade(token, &head);
        }
        match self.route(&head.path) {
            Routed::Reply(mut r) => {
                // A cached static file still current: its headers, no body
                // (Content-Length stays the file's, as RFC 9110 §8.6 allows).
                let fresh = r.status == 200
                    && r.etag
                        .as_deref()
                        .zip(head.if_none_match.as_deref())
                        .is_some_and(|(tag, inm)| assets::matches(inm, tag));
                if fresh {
                    r.status = 304;
                }
                self.http_answer(token, &r, head.head_only || fresh, head.close)
            }
        }
    }

    /// Queues a response (500 if it passes the output bound).
    fn http_answer(&mut self, token: Token, r: &Response, head_only: bool, close: bool) {
        let Some(h) = self.http.as_mut() else {
            return;
        };
        let max = h.opts.max_response_bytes;
        let Some(c) = h.conns.get_mut(&token) else {
            return;
        };
        let mut bytes = render(r, head_only, close);
        if bytes.len() > max {
            warn!(
                "http: a {} byte response passes the {max} byte bound",
                bytes.len()
            );
            bytes = render(&Response::text(500, "response too large\n"), false, true);
        }
        c.close_after |= close;
        c.queue(bytes);
    }

    /// Closes connections past their deadline; continues those with work left.
    pub(crate) fn http_timers(&mut self) {
        let Some(h) = self.http.as_mut() else {
            return;
        };
        let now = Instant::now();
        let late: Vec<Token> = h
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        let again = std::mem::take(&mut h.again);
        for t in late {
            self.http_close(t, "timed out");
        }
        self.ws_sweep(now);
        for t in again {
            self.http_drive(t);
        }
    }

    /// The HTTP port's address, if it has one (useful with port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_request_heads() {
        let Parsed::Complete(h) = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET") else {
            panic!("complete");
        };
        assert_eq!(
            (h.path.as_str(), h.get, h.close, h.len),
            ("/metrics", true, false, 38)
        );
        let Parsed::Complete(h) = parse(b"HEAD /x HTTP/1.0\r\n\r\n") else {
            panic!("complete");
        };
        assert!(h.head_only && h.close, "HTTP/1.0 closes by default");
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHo"), Parsed::Partial));
        assert!(matches!(
            parse(b"\x00\x01 / HTTP/1.1\r\n\r\n"),
            Parsed::Bad(400, _)
        ));
        let many: String = (0..40).map(|i| format!("h{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse(req.as_bytes()), Parsed::Bad(431, _)));
        let Parsed::Complete(h) = parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n") else {
            panic!("complete");
        };
        assert!(h.has_body && !h.get);
    }

    #[test]
    fn render_has_length_and_close() {
        let r = Response::text(200, "ok\n");
        let s = String::from_utf8(render(&r, false, true)).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("Content-Length: 3\r\n") && s.contains("Connection: close"));
        assert!(s.ends_with("\r\n\r\nok\n"));
        let head = render(&r, true, false);
        assert!(head.ends_with(b"\r\n\r\n"));
    }
}
