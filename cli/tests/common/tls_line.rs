//! TLS clients for tests of nodes that run `[tls]` (as the shipped compose
//! and Kubernetes files do): `TlsConn`, a JSON-line connection verifying the
//! node against a CA, with every read bounded by a deadline; `https_get`,
//! one HTTP/1.1 GET over TLS. Both check the name `127.0.0.1` (every
//! certificate `chorus certs node` makes carries it).
#![allow(dead_code)]

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::{json, Value};
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client config trusting only the CA in `ca` (PEM).
pub fn trust(ca: &Path) -> Arc<ClientConfig> {
    chorus_runtime_mio::tls::client_config(ca, None).expect("a readable CA")
}

fn dial(
    port: u16,
    tls: &Arc<ClientConfig>,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let sock = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("127.0.0.1").expect("an IP name");
    let conn = ClientConnection::new(tls.clone(), name).map_err(io::Error::other)?;
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// `GET path` over https on 127.0.0.1:`port`: (status, body), or None.
pub fn https_get(port: u16, path: &str, tls: &Arc<ClientConfig>) -> Option<(u16, String)> {
    let mut s = dial(port, tls).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    // The node ends with close_notify; an abrupt end after the body is fine.
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A chorus client connection over TLS (HELLO said and answered).
pub struct TlsConn {
    s: StreamOwned<ClientConnection, TcpStream>,
    /// Bytes of a line not complete yet (kept across read timeouts).
    partial: Vec<u8>,
}

impl TlsConn {
    pub fn connect(port: u16, tls: &Arc<ClientConfig>) -> io::Result<TlsConn> {
        let mut c = TlsConn {
            s: dial(port, tls)?,
            partial: Vec::new(),
        };
        c.send(&json!({"type": "HELLO", "proto": 2, "client": "chorus-tests/0"}))?;
        match c.recv(Duration::from_secs(5)) {
            Ok(Some(v)) if v["type"] == "HELLO" => Ok(c),
            other => Err(io::Error::other(format!("HELLO answered with {other:?}"))),
        }
    }

    pub fn send(&mut self, v: &Value) -> io::Result<()> {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.s.write_all(&line)?;
        self.s.flush()
    }

    /// The next line within `timeout`: `Ok(None)` when the node closed.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Value>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=i).collect();
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|e| format!("not a JSON line ({e}): {line:?}"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no line within {timeout:?}"));
            }
            self.s.sock.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.s.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Ok(None),
            }
        }
    }

    /// The next line of type `ty` (others skipped); panics with what was seen.
    pub fn recv_type(&mut self, ty: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(Some(v)) if v["type"] == ty => return v,
                Ok(Some(v)) => seen.push(v),
                Ok(None) => panic!("connection closed while waiting for {ty}; saw {seen:?}"),
                Err(e) => panic!("no {ty} line: {e}; saw {seen:?}"),
            }
        }
    }

    /// One CHAT, waiting for its CHAT_ACK; returns the seq_no.
    pub fn chat_acked(&mut self, msg_id: &str, payload: &str, timeout: Duration) -> u64 {
        let chat =
            json!({"type": "CHAT", "room_id": "general", "msg_id": msg_id, "payload": payload});
        self.send(&chat).expect("send CHAT");
        let ack = self.recv_type("CHAT_ACK", timeout);
        assert_eq!(ack["msg_id"], msg_id, "{ack}");
        ack["seq_no"].as_u64().expect("CHAT_ACK has a seq_no")
    }
}
