//! The IRC gateway: an adapter that lets irssi, weechat or any IRC library
//! talk to the node (config `irc_port`). It owns only IRC: the listener,
//! line framing (`codec.rs`), the command table (`commands.rs`: each command
//! with its `minParams`, whether it may run before registration, and its
//! handler, as in Ergo's `irc/commands.go`), the replies and numerics
//! (`numerics.rs`, `render.rs`). What a command does is the session layer's
//! (`clients.rs`, `sessions.rs`, `streams.rs`): PRIVMSG is a CHAT with an
//! idempotent msg_id made here, JOIN subscribes to the room and replays its
//! last messages (a HISTORY page), committed messages come back through the
//! same streams as every client's, and the same bounds apply (line length,
//! output bytes with pacing and disconnection, CHAT rate, connections in all
//! and per address).
//!
//! An IRC connection is a `Conn` with `Role::Client` whose `ClientState`
//! speaks `Dialect::Irc` and carries an `IrcSession`; the JSON-line and
//! WebSocket ports never see it and it never sees their lines.

mod auth;
mod channels;
mod codec;
mod commands;
mod numerics;
mod register;
mod render;
mod session;

pub(crate) use render::render;
pub(crate) use session::IrcSession;

use crate::conn::{ClientState, Conn, Dialect, Role};
use crate::limits::TokenBucket;
use crate::options::IrcOptions;
use crate::runtime::Runtime;
use crate::transport::Transport;
use crate::RuntimeError;
use chorus_core::client_wire::ServerLine;
use mio::net::TcpListener;
use mio::{Interest, Token};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How long a connection that sent an ERROR-worthy line may take to read it.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// The IRC port of one node.
#[derive(Debug)]
pub(crate) struct IrcServer {
    listener: TcpListener,
    token: Token,
    local_addr: SocketAddr,
    /// The TLS port (`irc_tls_port`), if any: its listener and token.
    tls_listener: Option<(TcpListener, Token)>,
    pub opts: IrcOptions,
    /// `n<id>.chorus`: the prefix of the gateway's own lines.
    pub name: String,
    /// A per-start random part of every msg_id made here, so ids of two runs
    /// of the node never meet.
    boot: u64,
    pub started_ms: u64,
}

impl IrcServer {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Runtime {
    /// Binds the IRC port when configured.
    pub(crate) fn start_irc(&mut self, opts: Option<IrcOptions>) -> Result<(), RuntimeError> {
        let Some(opts) = opts else {
            return Ok(());
        };
        let mut listener = crate::runtime::bind(&opts.host, opts.port, "irc_port")?;
        let local_addr = listener.local_addr().map_err(RuntimeError::Poll)?;
        let token = self.alloc_token();
        self.poll
            .registry()
            .register(&mut listener, token, Interest::READABLE)?;
        info!("n{} serves IRC on {local_addr}", self.me.0);
        let tls_listener = match (opts.tls_port, &self.tls) {
            (None, _) => None,
            (Some(port), None) => {
                warn!("irc_tls_port = {port} needs [tls] (cert, key, ca): no IRC TLS port");
                None
            }
            (Some(port), Some(_)) => {
                let mut l = crate::runtime::bind(&opts.host, port, "irc_tls_port")?;
                let t = self.alloc_token();
                self.poll
                    .registry()
                    .register(&mut l, t, Interest::READABLE)?;
                info!("n{} serves IRC over TLS on {}:{port}", self.me.0, opts.host);
                Some((l, t))
            }
        };
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("the OS random number generator is unavailable");
        self.irc = Some(IrcServer {
            listener,
            token,
            local_addr,
            tls_listener,
            opts,
            name: format!("n{}.chorus", self.me.0),
            boot: u64::from_le_bytes(b) & 0xffff_ffff,
            started_ms: crate::clock::wall_ms(),
        });
        Ok(())
    }

    pub(crate) fn is_irc_listener(&self, token: Token) -> bool {
        self.irc.as_ref().is_some_and(|i| {
            i.token == token || i.tls_listener.as_ref().is_some_and(|(_, t)| *t == token)
        })
    }

    /// Accepts until WouldBlock on the listener `listener_token`; each
    /// connection starts unregistered, held to the registration deadline
    /// (which also bounds a TLS handshake that never ends).
    pub(crate) fn irc_accept(&mut self, listener_token: Token) {
        loop {
            let Some(irc) = &self.irc else { return };
            let (boot, register_timeout_ms) = (irc.boot, irc.opts.register_timeout_ms);
            let tls = irc
                .tls_listener
                .as_ref()
                .filter(|(_, t)| *t == listener_token);
            let accepted = match tls {
                Some((l, _)) => l.accept(),
                None => irc.listener.accept(),
            };
            let over_tls = tls.is_some();
            let (mut stream, addr) = match accepted {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return warn!("IRC accept failed: {e}"),
            };
            let refuse = if self.conns.len() >= self.limits.max_connections {
                Some("too many connections; try another node".to_string())
            } else if !self
                .per_address
                .admit(addr.ip(), self.limits.max_connections_per_address)
            {
                Some(format!(
                    "more than {} connections from {}",
                    self.limits.max_connections_per_address,
                    addr.ip()
                ))
            } else {
                None
            };
            if let Some(why) = refuse {
                if !over_tls {
                    let _ = stream.write(format!("ERROR :Closing link: {why}\r\n").as_bytes());
                }
                debug!("IRC {addr} refused: {why}");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let token = self.alloc_token();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                warn!("cannot register IRC {addr}: {e}");
                self.per_address.release(addr.ip());
                continue;
            }
            let prefix = format!("irc-n{}-{boot:08x}-{}-", self.me.0, token.0);
            let deadline = Instant::now() + Duration::from_millis(register_timeout_ms);
            let l = &self.limits;
            let state = ClientState {
                dialect: Dialect::Irc,
                irc: Some(Box::new(IrcSession::new(prefix))),
                ..Default::default()
            };
            // TLS as on the HTTP port: the node's certificate, no client
            // certificate asked (IRC clients have none).
            let transport = match (&self.tls, over_tls) {
                (Some(t), true) => Transport::tls_server(stream, t.http_server.clone()),
                _ => Transport::Plain(stream),
            };
            let mut conn = Conn::new(
                transport,
                Role::Client(state),
                codec::MAX_LINE,
                l.max_client_output_bytes,
                format!("irc {addr}"),
            );
            conn.deadline = Some(deadline);
            conn.from = Some(addr.ip());
            conn.rate = Some(TokenBucket::new(
                l.client_rate_per_sec,
                l.client_rate_burst,
                self.now.0,
            ));
            self.conns.insert(token, conn);
            debug!("IRC {addr} connected");
        }
    }

    /// One line from an IRC connection.
    pub(crate) fn on_irc_line(&mut self, token: Token, line: &[u8]) {
        match codec::parse(line) {
            Ok(m) => self.irc_run(token, m),
            Err(codec::ParseError::Empty) => {}
            Err(codec::ParseError::TooLong) => {
                let why = "Input line was too long (512 bytes, 8191 of tags)";
                self.irc_numeric(token, numerics::ERR_INPUTTOOLONG, &[why]);
            }
        }
    }

    /// Sends `ERROR :why` and closes once it is written (QUIT, bad input
    /// past every bound, a registration that never finished).
    pub(crate) fn irc_close(&mut self, token: Token, why: &str) {
        let line = codec::line("", "", "ERROR", &[&format!("Closing link: {why}")]);
        if !self.push_line_crlf(token, &line) {
            return;
        }
        if let Some(c) = self.conns.get_mut(&token) {
            c.closing = true;
            c.deadline = Some(Instant::now() + CLOSE_FLUSH);
        }
        self.streaming.remove(&token);
    }

    /// Queues one IRC line (with CRLF: `OutBuf` adds the LF).
    pub(crate) fn push_line_crlf(&mut self, token: Token, line: &[u8]) -> bool {
        let mut l = Vec::with_capacity(line.len() + 1);
        l.extend_from_slice(line);
        l.push(b'\r');
        self.push_line(token, &l)
    }

    /// `:server NNN nick params…` to one connection.
    pub(crate) fn irc_numeric(&mut self, token: Token, numeric: &str, params: &[&str]) {
        let Some((server, target)) = self.irc_names(token) else {
            return;
        };
        let mut all = vec![target.as_str()];
        all.extend_from_slice(params);
        let line = codec::line("", &server, numeric, &all);
        self.push_line_crlf(token, &line);
    }

    /// The server's name and the connection's nick (`*` before one).
    fn irc_names(&mut self, token: Token) -> Option<(String, String)> {
        let server = self.irc.as_ref()?.name.clone();
        let s = self.irc_session(token)?;
        Some((server, s.target().to_string()))
    }

    /// The IRC lines for a session-layer line, if `token` is an IRC
    /// connection (None: it is not one; encode the line as JSON).
    pub(crate) fn irc_render(&mut self, token: Token, l: &ServerLine) -> Option<Vec<Vec<u8>>> {
        let server = self.irc.as_ref()?.name.clone();
        let s = self.irc_session(token)?;
        Some(render(s, &server, l, false))
    }

    pub(crate) fn irc_session(&mut self, token: Token) -> Option<&mut IrcSession> {
        self.conns.get_mut(&token)?.client_mut()?.irc.as_deref_mut()
    }
}
