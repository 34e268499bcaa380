//! Peer links: dialing members (with backoff), the HELLO / CHALLENGE / AUTH
//! handshake on both sides (see `auth.rs`), peer messages in, core sends out.
//!
//! Invariants: the core hears `PeerUp(n)` only once our outgoing link to n is
//! authenticated both ways, and `PeerDown(n)` only when such a link is lost;
//! peer messages are accepted only on an authenticated incoming link and only
//! with that peer's own `sender_id`; sends to a peer without a link wait in a
//! small bounded queue (`peers.rs`) and are dropped if the dial fails (the
//! protocol tolerates loss and repairs it).

use crate::auth::{self, Handshake, Side, Transcript};
use crate::conn::{Conn, DialStage, Role};
use crate::net::encode;
use crate::observe;
use crate::peers::Learned;
use crate::runtime::Runtime;
use crate::tls;
use crate::transport::Transport;
use chorus_core::client_wire::ServerLine;
use chorus_core::{ErrorCode, Input, NodeId, PeerInfo, PeerMsg};
use mio::net::TcpStream;
use mio::{Interest, Token};
use rustls::pki_types::ServerName;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

impl Runtime {
    fn handshake_deadline(&self) -> Option<Instant> {
        Some(self.handshake_deadline_at())
    }

    pub(crate) fn handshake_deadline_at(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.limits.handshake_timeout_ms)
    }

    /// The core learned a member (or its new address): dial it.
    pub(crate) fn peer_known(&mut self, info: PeerInfo) {
        let addr = format!("{}:{}", info.host, info.port);
        let id = info.node_id;
        match self.peers.learn(info, Instant::now()) {
            Learned::New => info!("discovered peer n{} at {addr}", id.0),
            Learned::Moved(old) => {
                info!("peer n{} moved to {addr}", id.0);
                if let Some(t) = old {
                    self.close_conn(t, "peer moved");
                }
            }
            Learned::Same => {}
        }
    }

    pub(crate) fn dial(&mut self, id: NodeId) {
        let Some(info) = self.peers.info(id).cloned() else {
            return;
        };
        let addr = match (info.host.as_str(), info.port).to_socket_addrs() {
            Ok(mut a) => a.next(),
            Err(e) => {
                debug!("cannot resolve n{} at {}: {e}", id.0, info.host);
                None
            }
        };
        let stream = addr.map(TcpStream::connect);
        let mut stream = match stream {
            Some(Ok(s)) => s,
            other => {
                let why = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "address does not resolve".into(),
                };
                self.dial_failed(id, &why);
                return;
            }
        };
        let token = self.alloc_token();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
            self.dial_failed(id, &e.to_string());
            return;
        }
        let stream = match &self.tls {
            None => Transport::Plain(stream),
            Some(t) => {
                // The acceptor's certificate must name the host we dialed.
                let name = ServerName::try_from(info.host.clone()).map_err(|e| e.to_string());
                let client = t.client.clone();
                match name {
                    Ok(name) => match Transport::tls_client(stream, client, name) {
                        Ok(s) => s,
                        Err(e) => return self.dial_failed(id, &format!("TLS: {e}")),
                    },
                    Err(e) => {
                        let _ = self.poll.registry().deregister(&mut stream);
                        return self.dial_failed(id, &format!("TLS to {}: {e}", info.host));
                    }
                }
            }
        };
        let l = &self.limits;
        let role = Role::Dial {
            peer: id,
            stage: DialStage::Connecting,
        };
        let label = format!("link to n{} ({}:{})", id.0, info.host, info.port);
        let mut conn = Conn::new(
            stream,
            role,
            l.max_line_bytes,
            l.max_peer_output_bytes,
            label,
        );
        conn.deadline = self.handshake_deadline();
        self.conns.insert(token, conn);
        self.peers.attached(id, token);
    }

    fn dial_failed(&mut self, id: NodeId, why: &str) {
        if let Some((delay, failures)) = self.peers.dial_failed(id, Instant::now()) {
            self.log_retry(id, why, delay, failures);
        }
    }

    fn log_retry(&self, id: NodeId, why: &str, delay: u64, failures: u32) {
        if failures == 1 {
            info!(
                "cannot reach n{}: {why}; retrying (backoff up to {} ms)",
                id.0, self.limits.reconnect_max_ms
            );
        } else {
            debug!("cannot reach n{}: {why}; retry in {delay} ms", id.0);
        }
    }

    /// Writable on a connecting link: finish the connect, then say HELLO.
    pub(crate) fn on_connect_ready(&mut self, token: Token) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        match c.stream.tcp().take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.close_conn(token, &format!("connect: {e}")),
        }
        match c.stream.tcp().peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
            Err(e) => return self.close_conn(token, &format!("connect: {e}")),
        }
        let _ = c.stream.tcp().set_nodelay(true);
        let nonce = auth::fresh_nonce();
        let http = self.own_http_addr();
        let hello = encode(&Handshake::Hello {
            node_id: self.me,
            nonce: nonce.clone(),
            http,
        });
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        if let Role::Dial { stage, .. } = &mut c.role {
            *stage = DialStage::AwaitChallenge { nonce };
        }
        self.push_line(token, &hello);
    }

    /// Acceptor: a first line of type HELLO. Answer with our nonce and proof.
    pub(crate) fn on_hello(&mut self, token: Token, line: &[u8]) {
        let (dialer, dialer_nonce, http) = match serde_json::from_slice(line) {
            Ok(Handshake::Hello {
                node_id,
                nonce,
                http,
            }) if auth::nonce_ok(&nonce) => (node_id, nonce, http),
            _ => {
                let msg = "malformed HELLO".to_string();
                return self.fail_conn(token, ErrorCode::BadRequest, msg);
            }
        };
        if self.conns.get(&token).is_some_and(|c| c.stream.is_ws()) {
            let msg = "a peer link cannot run over a WebSocket".to_string();
            return self.fail_conn(token, ErrorCode::Forbidden, msg);
        }
        let anonymous = self
            .conns
            .get(&token)
            .is_some_and(|c| c.stream.is_tls() && c.stream.peer_certificates().is_none());
        if anonymous {
            let msg = "a peer link needs a node certificate of the cluster CA".to_string();
            warn!(
                "HELLO as n{} without a client certificate: refused",
                dialer.0
            );
            return self.fail_conn(token, ErrorCode::Forbidden, msg);
        }
        let not_its_cert = self.conns.get(&token).is_some_and(|c| {
            c.stream.is_tls() && !tls::is_node_cert(c.stream.peer_certificates(), dialer.0)
        });
        if not_its_cert {
            let name = tls::node_name(dialer.0);
            warn!(
                "HELLO as n{} with a certificate not for {name}: refused",
                dialer.0
            );
            let msg = format!("the certificate on this link is not for {name}");
            return self.fail_conn(token, ErrorCode::Forbidden, msg);
        }
        if dialer == self.me {
            let msg = "HELLO from this node's own id".to_string();
            return self.fail_conn(token, ErrorCode::Forbidden, msg);
        }
        let nonce = auth::fresh_nonce();
        let t = Transcript {
            dialer,
            acceptor: self.me,
            dialer_nonce: dialer_nonce.clone(),
            acceptor_nonce: nonce.clone(),
        };
        let challenge = encode(&Handshake::Challenge {
            node_id: self.me,
            nonce: nonce.clone(),
            mac: auth::prove(&self.secret, Side::Acceptor, &t),
        });
        let deadline = self.handshake_deadline();
        if let Some(c) = self.conns.get_mut(&token) {
            c.role = Role::AwaitAuth {
                dialer,
                dialer_nonce,
                nonce,
                http,
            };
            c.deadline = deadline;
        }
        self.push_line(token, &challenge);
    }

    /// Acceptor: the dialer's AUTH. A good MAC makes this an incoming peer link.
    pub(crate) fn on_auth(&mut self, token: Token, line: &[u8]) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let Role::AwaitAuth {
            dialer,
            dialer_nonce,
            nonce,
            http,
        } = c.role.clone()
        else {
            return;
        };
        let t = Transcript {
            dialer,
            acceptor: self.me,
            dialer_nonce,
            acceptor_nonce: nonce,
        };
        let ok = matches!(serde_json::from_slice(line),
            Ok(Handshake::Auth { mac }) if auth::verify(&self.secret, Side::Dialer, &t, &mac));
        if !ok {
            warn!(
                "{}: peer claiming to be n{} failed authentication (a different cluster_secret?)",
                c.label, dialer.0
            );
            let msg = "peer authentication failed".to_string();
            return self.fail_conn(token, ErrorCode::Forbidden, msg);
        }
        c.role = Role::PeerIn(dialer);
        c.deadline = None;
        c.reader.set_max_line(self.limits.max_peer_line_bytes);
        c.out.set_max(self.limits.max_peer_output_bytes);
        info!(
            "n{} authenticated (incoming link from {})",
            dialer.0, c.label
        );
        self.note_peer_http(dialer, http);
        self.redial_now(dialer);
    }

    /// `peer` just dialed us and proved who it is, so it is up and
    /// reachable: if our own link to it is not up, dial now instead of
    /// after the backoff (a restarted peer would otherwise not hear us for
    /// up to `reconnect_max_ms`), and give up a dial still in progress: it
    /// was made while the peer was down or cut off, and may hang until the
    /// handshake timeout (a SYN the kernel retries after a second, a proxy
    /// still trying the old address). This cannot ping-pong: our own dial,
    /// once the peer has authenticated it, is already up on our side.
    fn redial_now(&mut self, peer: NodeId) {
        if let Some(t) = self.peers.token(peer) {
            if self.conns.get(&t).and_then(Conn::up_peer) == Some(peer) {
                return;
            }
            self.close_conn(t, "superseded: the peer dialed us");
        }
        self.peers.heard_from(peer, Instant::now());
    }

    /// A line on our own link: the CHALLENGE, or an ERROR from the acceptor.
    pub(crate) fn on_dial_line(&mut self, token: Token, line: &[u8]) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let Role::Dial { peer, stage } = c.role.clone() else {
            return;
        };
        if let Ok(ServerLine::Error { message, .. }) = serde_json::from_slice(line) {
            warn!(
                "n{} refused our link: {message} (is cluster_secret the same on every node?)",
                peer.0
            );
            return self.close_conn(token, "refused");
        }
        let DialStage::AwaitChallenge { nonce } = stage else {
            return debug!("ignoring a line on our link to n{}", peer.0);
        };
        let Ok(Handshake::Challenge {
            node_id,
            nonce: acceptor_nonce,
            mac,
        }) = serde_json::from_slice(line)
        else {
            return self.close_conn(token, "expected CHALLENGE");
        };
        if node_id != peer {
            warn!(
                "{} answers as n{}; expected n{} (check seed_nodes)",
                c.label, node_id.0, peer.0
            );
            return self.close_conn(token, "wrong node");
        }
        if c.stream.is_tls() && !tls::is_node_cert(c.stream.peer_certificates(), peer.0) {
            warn!(
                "{}: its certificate is not for {}; not linking",
                c.label,
                tls::node_name(peer.0)
            );
            return self.close_conn(token, "certificate of another node");
        }
        let t = Transcript {
            dialer: self.me,
            acceptor: peer,
            dialer_nonce: nonce,
            acceptor_nonce,
        };
        if !auth::nonce_ok(&t.acceptor_nonce)
            || !auth::verify(&self.secret, Side::Acceptor, &t, &mac)
        {
            warn!(
                "n{} failed authentication (a different cluster_secret?)",
                peer.0
            );
            return self.close_conn(token, "bad CHALLENGE");
        }
        let proof = encode(&Handshake::Auth {
            mac: auth::prove(&self.secret, Side::Dialer, &t),
        });
        c.role = Role::Dial {
            peer,
            stage: DialStage::Up,
        };
        c.deadline = None;
        info!("linked to n{} ({})", peer.0, c.label);
        if !self.push_line(token, &proof) {
            return;
        }
        for line in self.peers.take_queue(peer) {
            if !self.push_line(token, &line) {
                return;
            }
        }
        self.peers.up(peer);
        self.feed(Input::PeerUp(peer));
    }

    /// A message on an authenticated incoming link.
    pub(crate) fn on_peer_line(&mut self, token: Token, from: NodeId, line: &[u8]) {
        let msg: PeerMsg = match serde_json::from_slice(line) {
            Ok(m) => m,
            Err(e) => {
                warn!("malformed message from n{}: {e}; dropping the link", from.0);
                return self.close_conn(token, "malformed peer line");
            }
        };
        if msg.sender() != from {
            warn!(
                "n{} sent a {} as n{}; ignored",
                from.0,
                msg.kind(),
                msg.sender().0
            );
            return;
        }
        observe::peer_msg(self.me, &msg);
        if let PeerMsg::CatchupResp { entries, .. } = &msg {
            self.metrics.catchup_received.inc_by(entries.len() as u64);
        }
        self.feed(Input::Peer(msg));
    }

    /// Our link to `peer` ended (token `token`, at `stage`).
    pub(crate) fn link_down(&mut self, token: Token, peer: NodeId, stage: DialStage, why: &str) {
        if stage == DialStage::Up {
            info!("lost link to n{}: {why}", peer.0);
            self.feed(Input::PeerDown(peer));
        }
        if let Some((delay, failures)) = self.peers.detached(peer, token, Instant::now()) {
            if stage != DialStage::Up {
                self.log_retry(peer, why, delay, failures);
            }
        }
    }

    /// Queues `line` on our link to `to`, or until that link is up.
    pub(crate) fn send_peer(&mut self, to: NodeId, line: &[u8]) {
        let token = self.peers.token(to);
        match token.filter(|t| self.conns.get(t).and_then(Conn::up_peer) == Some(to)) {
            Some(t) => {
                self.push_line(t, line);
            }
            None => {
                if !self.peers.enqueue(to, line) {
                    debug!("n{} is not a known peer: message dropped", to.0);
                }
            }
        }
    }
}
