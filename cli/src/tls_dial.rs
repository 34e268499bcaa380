//! The client end of a connection to a node for chorus's own blocking clients
//! (`chorus client`, `up`'s probe, bench's cold paths and subscribers, chaos
//! clients): plain TCP, or TLS that verifies the node against a CA (`--ca`).
//!
//! A [`Stream`] can be cloned (`try_clone`) so that one thread reads while
//! another writes, like a `TcpStream`: the clones share one rustls session
//! behind a mutex. The reader waits on the socket *without* the lock, then
//! takes it only to hand the ciphertext to rustls, so a blocked read never
//! holds up a write. The TLS handshake is finished in `connect`, within the
//! socket's timeouts.

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Ciphertext read from the socket at once: small enough that what it
/// decrypts to always fits rustls' received-plaintext buffer.
const READ_CHUNK: usize = 4096;

/// How chorus's clients reach nodes: `None` is plaintext.
pub type ClientTls = Option<Arc<ClientConfig>>;

/// The client TLS settings for `--ca FILE` (none: plaintext).
pub fn from_ca(ca: Option<&Path>) -> anyhow::Result<ClientTls> {
    match ca {
        None => Ok(None),
        Some(p) => Ok(Some(
            chorus_runtime_mio::tls::client_config(p, None).map_err(anyhow::Error::msg)?,
        )),
    }
}

/// A connection to a node, plain or TLS.
#[derive(Debug)]
pub struct Stream {
    sock: TcpStream,
    tls: Option<Arc<Mutex<ClientConnection>>>,
}

fn lock(c: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

/// Connects to `addr` within `timeout`; with TLS, checks the node's
/// certificate names `host` and finishes the handshake within it too.
pub fn connect(
    addr: &SocketAddr,
    host: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> io::Result<Stream> {
    let mut sock = TcpStream::connect_timeout(addr, timeout)?;
    let _ = sock.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Stream { sock, tls: None });
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    let mut conn = ClientConnection::new(config.clone(), name).map_err(invalid)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(None)?;
    Ok(Stream {
        sock,
        tls: Some(Arc::new(Mutex::new(conn))),
    })
}

/// `connect` for a `host:port` text (the host is the name checked).
pub fn connect_str(addr: &str, tls: &ClientTls, timeout: Duration) -> Result<Stream, String> {
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to nothing"))?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    connect(&sock, host, tls, timeout).map_err(|e| e.to_string())
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            sock: self.sock.try_clone()?,
            tls: self.tls.clone(),
        })
    }

    /// The TCP socket (timeouts, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Some(c) = &self.tls {
            let mut c = lock(c);
            c.send_close_notify();
            let _ = c.write_tls(&mut &self.sock);
        }
        self.sock.shutdown(how)
    }

    fn send_pending(&self, c: &mut ClientConnection) -> io::Result<()> {
        while c.wants_write() {
            c.write_tls(&mut &self.sock)?;
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.clone() else {
            return self.sock.read(out);
        };
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match lock(&tls).reader().read(out) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = self.sock.read(&mut chunk)?; // without the lock
            let mut c = lock(&tls);
            let mut data = &chunk[..n];
            loop {
                let took = c.read_tls(&mut data)?;
                c.process_new_packets().map_err(invalid)?;
                if data.is_empty() || took == 0 {
                    break;
                }
            }
            self.send_pending(&mut c)?;
            if n == 0 {
                return match c.reader().read(out) {
                    Ok(n) => Ok(n),
                    Err(_) => Ok(0),
                };
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.clone() else {
            return self.sock.write(buf);
        };
        let mut c = lock(&tls);
        // rustls queues a bounded amount: hand it what it takes, send, repeat.
        let mut done = 0;
        while done < buf.len() {
            done += c.writer().write(&buf[done..])?;
            self.send_pending(&mut c)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.tls.clone() {
            None => self.sock.flush(),
            Some(tls) => self.send_pending(&mut lock(&tls)),
        }
    }
}
