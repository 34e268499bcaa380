//! What a connection's bytes travel over: a plain TCP stream, or TLS (rustls)
//! over one, behind the same `Read` / `Write` so the line framing
//! (`framing.rs`) and everything above it do not know which.
//!
//! The TLS side follows rustls' `tlsserver-mio` example: on read, ciphertext
//! is taken from the socket (`read_tls`), decrypted (`process_new_packets`) and
//! the plaintext handed out; whatever TLS wants to send (handshake messages,
//! alerts, encrypted records) is written to the socket (`write_tls`) until it
//! would block. Bounds: rustls keeps at most one TLS record of ciphertext
//! being deframed and at most its received-plaintext limit (16 KiB) decrypted;
//! we only read the socket once that plaintext is drained. What it queues to
//! send is capped by `TLS_SEND_BUFFER`: past it, `write` takes nothing and
//! reports `WouldBlock`, so the caller's own bounded buffer (`OutBuf`) holds
//! the rest, as with a plain socket whose kernel buffer is full.

use mio::net::TcpStream;
use rustls::pki_types::CertificateDer;
use std::io::{self, Read, Write};

/// Plaintext plus ciphertext rustls may hold for sending on one connection.
pub const TLS_SEND_BUFFER: usize = 256 << 10;

/// A connection's byte stream.
#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
    /// Boxed: a rustls connection is a few KiB and most fields of `Conn` are small.
    Tls(Box<TlsStream>),
    /// A WebSocket of the HTTP port (`ws.rs`) over plain TCP or TLS: its
    /// text frames read and written as lines.
    Ws(Box<crate::ws::WsStream>),
}

/// A rustls connection (either side) over a nonblocking TCP stream.
#[derive(Debug)]
pub struct TlsStream {
    sock: TcpStream,
    tls: rustls::Connection,
    /// The peer closed (EOF or close_notify): no more plaintext will come.
    eof: bool,
}

impl Transport {
    /// The server side of TLS on an accepted stream.
    pub fn tls_server(sock: TcpStream, config: std::sync::Arc<rustls::ServerConfig>) -> Transport {
        let conn = rustls::ServerConnection::new(config).expect("a valid server config");
        Transport::tls(sock, conn.into())
    }

    /// The client side of TLS on a dialed stream, checking the server is `name`.
    pub fn tls_client(
        sock: TcpStream,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<Transport, rustls::Error> {
        let conn = rustls::ClientConnection::new(config, name)?;
        Ok(Transport::tls(sock, conn.into()))
    }

    fn tls(sock: TcpStream, mut tls: rustls::Connection) -> Transport {
        tls.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Transport::Tls(Box::new(TlsStream {
            sock,
            tls,
            eof: false,
        }))
    }

    /// The TCP stream (to register with mio, ask for errors, set options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.sock,
            Transport::Ws(w) => w.inner().tcp(),
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.sock,
            Transport::Ws(w) => w.inner_mut().tcp_mut(),
        }
    }

    pub fn is_tls(&self) -> bool {
        match self {
            Transport::Ws(w) => w.inner().is_tls(),
            t => matches!(t, Transport::Tls(_)),
        }
    }

    /// A WebSocket session of the HTTP port (never a peer link).
    pub fn is_ws(&self) -> bool {
        matches!(self, Transport::Ws(_))
    }

    /// Still negotiating TLS (always false for plain TCP).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) | Transport::Ws(_) => false,
            Transport::Tls(t) => t.tls.is_handshaking(),
        }
    }

    /// The certificate chain the other side presented (TLS only; a client of
    /// ours presents none, a peer node its node certificate).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            Transport::Plain(_) | Transport::Ws(_) => None,
            Transport::Tls(t) => t.tls.peer_certificates(),
        }
    }

    /// TLS bytes queued inside rustls and not yet on the socket.
    pub fn has_pending_tls(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.tls.wants_write(),
            Transport::Ws(w) => w.has_pending(),
        }
    }

    /// Writes what TLS has queued until done or the socket would block.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.write_out(),
            Transport::Ws(w) => w.flush_out().map(|_| ()),
        }
    }

    /// Best effort on close: tell a TLS peer we are done (close_notify).
    pub fn close_notify(&mut self) {
        match self {
            Transport::Plain(_) => {}
            Transport::Tls(t) => {
                t.tls.send_close_notify();
                let _ = t.write_out();
            }
            Transport::Ws(w) => {
                w.close_for("done");
                w.inner_mut().close_notify();
            }
        }
    }

    /// `close_notify`, with a WebSocket close code chosen for `why`.
    pub fn close_because(&mut self, why: &str) {
        if let Transport::Ws(w) = self {
            w.close_for(why);
        }
        self.close_notify();
    }
}

impl TlsStream {
    fn write_out(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read_plain(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(out) {
                Ok(n) => return Ok(n), // 0 only after close_notify
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EOF without close_notify: a truncation; the connection ends.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e), // WouldBlock included
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls queued an alert saying why; send it, then fail.
                let _ = self.write_out();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages to answer, key updates, alerts.
            self.write_out()?;
        }
    }
}

impl Read for Transport {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(out),
            Transport::Tls(t) => t.read_plain(out),
            Transport::Ws(w) => w.read(out),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => {
                let n = t.tls.writer().write(buf)?;
                t.write_out()?;
                if n == 0 && !buf.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }
            Transport::Ws(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(t) => t.write_out(),
            Transport::Ws(w) => w.flush_out().map(|_| ()),
        }
    }
}
