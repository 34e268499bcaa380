//! One subscriber session of the fan-out bench, over one of the client
//! transports: JSON lines on the client port, or a WebSocket on `/ws` of the
//! HTTP port (tungstenite, nonblocking).
//!
//! Every transport is reduced to the same thing: bytes to send once the
//! socket is connected (`HELLO`, `SUBSCRIBE` to the room, then `STATUS`, whose
//! answer proves the subscription is in place), and the server's lines handed
//! to `on_line` one by one. Adding a transport (IRC: `NICK`/`USER`, `JOIN
//! #room`, then PRIVMSG lines) means one `Transport` variant, one `State`
//! variant and its arms in `start`, `on_readable` and `is_ready_line`; the
//! worker loop, the bookkeeping and the report stay as they are.
//!
//! Bounds: a JSON-line session keeps at most one partial line (the worker's
//! shared read buffer takes the socket's bytes); a WebSocket session keeps
//! tungstenite's 4 KiB read buffer and one message.

use mio::net::TcpStream;
use std::io::{self, Read, Write};
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// Longest server line a session accepts (the node's `max_line_bytes`).
const MAX_LINE: usize = 1 << 20;

/// How a subscriber reaches its node.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON lines on the client port.
    Json,
    /// JSON lines as text messages of a WebSocket on `/ws` of the HTTP port.
    Ws,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Json => "json",
            Transport::Ws => "ws",
        }
    }
}

/// Where a session is in its life.
pub enum State {
    /// Nonblocking connect in flight.
    Connecting(TcpStream),
    /// JSON lines: the partial line carried over between reads.
    Json { sock: TcpStream, partial: Vec<u8> },
    /// WebSocket upgrade request sent, answer not complete yet.
    WsHandshake(Box<MidHandshake<ClientHandshake<TcpStream>>>),
    /// An open WebSocket.
    Ws(Box<WebSocket<TcpStream>>),
    /// Over (closed by either side); the reason is kept by the worker.
    Closed,
}

/// What the opening lines of every transport ask for.
fn opening(room: &str) -> [String; 3] {
    [
        chorus_core::client_wire::hello_line(concat!(
            "chorus-bench-fanout/",
            env!("CARGO_PKG_VERSION")
        )),
        format!("{{\"type\":\"SUBSCRIBE\",\"room_id\":{}}}", json_str(room)),
        "{\"type\":\"STATUS\"}".to_string(),
    ]
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 << 10)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_LINE))
        .max_frame_size(Some(MAX_LINE))
}

/// The STATUS answer: the SUBSCRIBE before it has been taken.
pub fn is_ready_line(line: &[u8]) -> bool {
    line.starts_with(b"{\"type\":\"STATUS\"")
}

/// The socket has connected: send the opening (JSON) or the upgrade (WS).
pub fn start(
    sock: TcpStream,
    transport: Transport,
    http_host: &str,
    room: &str,
) -> Result<State, String> {
    if let Ok(Some(e)) | Err(e) = sock.take_error() {
        return Err(format!("connect failed: {e}"));
    }
    if let Err(e) = sock.peer_addr() {
        return Err(format!("connect failed: {e}"));
    }
    match transport {
        Transport::Json => {
            let mut sock = sock;
            let mut out = Vec::new();
            for l in opening(room) {
                out.extend_from_slice(l.as_bytes());
                out.push(b'\n');
            }
            // Well under a fresh socket's send buffer: written in one go.
            sock.write_all(&out)
                .map_err(|e| format!("write failed: {e}"))?;
            Ok(State::Json {
                sock,
                partial: Vec::new(),
            })
        }
        Transport::Ws => {
            let url = format!("ws://{http_host}/ws");
            match tungstenite::client::client_with_config(url.as_str(), sock, Some(ws_config())) {
                Ok((ws, _)) => ws_open(ws, room),
                Err(HandshakeError::Interrupted(mid)) => Ok(State::WsHandshake(Box::new(mid))),
                Err(HandshakeError::Failure(e)) => Err(format!("websocket upgrade failed: {e}")),
            }
        }
    }
}

fn ws_open(mut ws: WebSocket<TcpStream>, room: &str) -> Result<State, String> {
    for l in opening(room) {
        match ws.write(Message::text(l)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("websocket write failed: {e}")),
        }
    }
    flush_ws(&mut ws)?;
    Ok(State::Ws(Box::new(ws)))
}

fn flush_ws(ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
    match ws.flush() {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(format!("websocket write failed: {e}")),
    }
}

impl State {
    /// Reads until the socket would block, handing every complete server
    /// line to `on_line`. Err: the session is over, with the reason.
    pub fn on_readable(
        &mut self,
        room: &str,
        scratch: &mut [u8],
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<(), String> {
        match self {
            State::Connecting(_) | State::Closed => Ok(()),
            State::Json { sock, partial } => read_json(sock, partial, scratch, on_line),
            State::WsHandshake(_) => {
                let State::WsHandshake(mid) = std::mem::replace(self, State::Closed) else {
                    unreachable!()
                };
                match mid.handshake() {
                    Ok((ws, _)) => {
                        *self = ws_open(ws, room)?;
                        self.on_readable(room, scratch, on_line)
                    }
                    Err(HandshakeError::Interrupted(m)) => {
                        *self = State::WsHandshake(Box::new(m));
                        Ok(())
                    }
                    Err(HandshakeError::Failure(e)) => {
                        Err(format!("websocket upgrade failed: {e}"))
                    }
                }
            }
            State::Ws(ws) => read_ws(ws, on_line),
        }
    }

    /// Flushes what tungstenite still holds (pongs) once the socket is writable.
    pub fn on_writable(&mut self) -> Result<(), String> {
        match self {
            State::Ws(ws) => flush_ws(ws),
            _ => Ok(()),
        }
    }
}

fn read_json(
    sock: &mut TcpStream,
    partial: &mut Vec<u8>,
    scratch: &mut [u8],
    on_line: &mut dyn FnMut(&[u8]),
) -> Result<(), String> {
    loop {
        let n = match sock.read(scratch) {
            Ok(0) => return Err(closed_reason(partial)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed: {e}")),
        };
        let mut data = &scratch[..n];
        if !partial.is_empty() {
            let Some(i) = data.iter().position(|&b| b == b'\n') else {
                partial.extend_from_slice(data);
                if partial.len() > MAX_LINE {
                    return Err("server line longer than 1 MiB".into());
                }
                continue;
            };
            partial.extend_from_slice(&data[..i]);
            on_line(partial);
            partial.clear();
            data = &data[i + 1..];
        }
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            on_line(&data[..i]);
            data = &data[i + 1..];
        }
        partial.extend_from_slice(data);
        if partial.is_empty() && partial.capacity() > 4096 {
            *partial = Vec::new();
        }
    }
}

/// EOF: what the node said last, if it was an ERROR line cut short.
fn closed_reason(partial: &[u8]) -> String {
    if partial.is_empty() {
        "closed by the node".into()
    } else {
        format!(
            "closed by the node mid-line: {}",
            String::from_utf8_lossy(&partial[..partial.len().min(200)])
        )
    }
}

fn read_ws(ws: &mut WebSocket<TcpStream>, on_line: &mut dyn FnMut(&[u8])) -> Result<(), String> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => on_line(t.as_bytes()),
            Ok(Message::Close(f)) => {
                let _ = flush_ws(ws);
                return Err(match f {
                    Some(f) => format!("websocket closed by the node: {} {}", f.code, f.reason),
                    None => "websocket closed by the node".into(),
                });
            }
            Ok(Message::Ping(_)) => flush_ws(ws)?, // tungstenite queued the pong
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(())
            }
            Err(e) => return Err(format!("websocket: {e}")),
        }
    }
}
