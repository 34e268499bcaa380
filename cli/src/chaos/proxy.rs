//! A user-space TCP proxy between the nodes, for the faults the kernel's
//! nftables cannot make (this kernel has no netem): **latency** added to
//! every chunk of bytes on a directed link, and **stalls** that hold a
//! link's bytes (the TCP connections stay up) until released.
//!
//! How peer traffic gets here: node j's front is `alias_ip(j)`:7000 on the
//! bridge (root namespace), where the proxy listens. Inside every node's
//! namespace a DNAT rule (`netns::Net::route_peers_through`) sends each
//! connection to another node's real address to that node's front, so
//! every peer link goes through the proxy whatever address a node dialed
//! (from its config or learned from a JOIN). The accepted connection's
//! source address names the dialer i, its destination the target j; the
//! proxy dials j's real address from `alias_ip(i)`, so node j (and its nft
//! partition rules) sees the bytes come from an address that names i.
//! Clients and STATUS polls from the harness address are not proxied.
//!
//! Bounds: at most [`MAX_CONNS`] proxied connections; per direction at most
//! [`QUEUE_CHUNKS`] chunks of [`CHUNK_BYTES`] in flight (a full queue stops
//! reading, so the sender feels TCP back-pressure, as on a slow link); every
//! blocking call has a timeout of at most [`TICK`], so every thread sees the
//! stop flag and exits; `Drop` stops and joins them all.

use super::netns::{alias_ip, node_ip};
use super::procs::NODE_PORT;
use super::schedule::LinkPlan;
use anyhow::{Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Most proxied connections at once (a node has one link per peer and
/// direction; restarts leave a few closing ones behind).
pub const MAX_CONNS: usize = 256;
/// Largest chunk read at once.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks queued per direction of one connection (1 MiB at most).
pub const QUEUE_CHUNKS: usize = 64;
/// The longest any proxy thread blocks before it looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// How long the proxy tries to reach the target node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The live state of every directed link, index `(from-1)*n + (to-1)`.
#[derive(Debug)]
pub struct Links {
    n: u64,
    delay_ms: Vec<AtomicU64>,
    stalled: Vec<AtomicBool>,
}

impl Links {
    fn new(n: u64) -> Links {
        let len = (n * n) as usize;
        Links {
            n,
            delay_ms: (0..len).map(|_| AtomicU64::new(0)).collect(),
            stalled: (0..len).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn idx(&self, from: u64, to: u64) -> usize {
        ((from - 1) * self.n + (to - 1)) as usize
    }

    fn delay(&self, from: u64, to: u64) -> Duration {
        Duration::from_millis(self.delay_ms[self.idx(from, to)].load(Ordering::Relaxed))
    }

    fn is_stalled(&self, from: u64, to: u64) -> bool {
        self.stalled[self.idx(from, to)].load(Ordering::Relaxed)
    }
}

/// What the proxy did, for the report.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub bytes: AtomicU64,
    /// Chunks forwarded later than they arrived because of a delay.
    pub delayed_chunks: AtomicU64,
    /// Chunks that waited for a stall to be released.
    pub held_chunks: AtomicU64,
    /// Connections refused at [`MAX_CONNS`] or because the target was unreachable.
    pub refused: AtomicU64,
}

/// The running proxy; stopped and joined on drop.
#[derive(Debug)]
pub struct Proxy {
    links: Arc<Links>,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
}

/// Everything a connection's threads share.
#[derive(Clone)]
struct Ctx {
    links: Arc<Links>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
}

impl Proxy {
    /// Listens on every node's front address (they must exist on the bridge).
    pub fn start(n: u64) -> Result<Proxy> {
        let ctx = Ctx {
            links: Arc::new(Links::new(n)),
            stats: Arc::new(Stats::default()),
            stop: Arc::new(AtomicBool::new(false)),
            active: Arc::new(AtomicUsize::new(0)),
        };
        let mut acceptors = Vec::new();
        for j in 1..=n {
            let at = format!("{}:{NODE_PORT}", alias_ip(j));
            let l =
                TcpListener::bind(&at).with_context(|| format!("proxy cannot listen on {at}"))?;
            l.set_nonblocking(true)?;
            let c = ctx.clone();
            acceptors.push(
                thread::Builder::new()
                    .name(format!("proxy-n{j}"))
                    .spawn(move || accept_loop(l, j, c))?,
            );
        }
        Ok(Proxy {
            links: ctx.links,
            stats: ctx.stats,
            stop: ctx.stop,
            acceptors,
        })
    }

    /// Puts every link in the state `plan` says (see `schedule::links`).
    pub fn apply(&self, plan: &LinkPlan) {
        for (i, (d, s)) in plan.iter().enumerate() {
            self.links.delay_ms[i].store(*d, Ordering::Relaxed);
            self.links.stalled[i].store(*s, Ordering::Relaxed);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
    }
}

/// The node id behind a bridge address (10.77.0.i), if it is one.
fn node_of(addr: SocketAddr, n: u64) -> Option<u64> {
    match addr {
        SocketAddr::V4(a) => {
            let i = u64::from(a.ip().octets()[3]);
            (a.ip().to_string() == node_ip(i) && (1..=n).contains(&i)).then_some(i)
        }
        SocketAddr::V6(_) => None,
    }
}

fn accept_loop(l: TcpListener, to: u64, ctx: Ctx) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !ctx.stop.load(Ordering::SeqCst) {
        conns.retain(|h| !h.is_finished());
        match l.accept() {
            Ok((s, peer)) => {
                let from = node_of(peer, ctx.links.n).filter(|&f| f != to);
                let full = ctx.active.load(Ordering::SeqCst) >= MAX_CONNS;
                let Some(from) = from.filter(|_| !full) else {
                    ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
                    continue; // dropping `s` closes it
                };
                ctx.active.fetch_add(1, Ordering::SeqCst);
                let c = ctx.clone();
                let h = thread::Builder::new()
                    .name(format!("proxy-{from}-{to}"))
                    .spawn(move || {
                        serve(s, from, to, &c);
                        c.active.fetch_sub(1, Ordering::SeqCst);
                    });
                match h {
                    Ok(h) => conns.push(h),
                    Err(_) => {
                        ctx.active.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(20)),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
    for h in conns {
        let _ = h.join();
    }
}

/// Dials node `to` from `from`'s alias address, so `to` sees who it is.
fn dial(from: u64, to: u64) -> std::io::Result<TcpStream> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let ip = |s: String| s.parse::<Ipv4Addr>().expect("a bridge address");
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(ip(alias_ip(from)), 0))?;
    // A blocking connect honours the send timeout (Linux), bounding it.
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(CONNECT_TIMEOUT))?;
    rustix::net::connect(&fd, &SocketAddrV4::new(ip(node_ip(to)), NODE_PORT))?;
    Ok(TcpStream::from(fd))
}

/// Forwards one connection from node `from` to node `to` both ways, until
/// either side closes or the proxy stops.
fn serve(client: TcpStream, from: u64, to: u64, ctx: &Ctx) {
    let Ok(server) = dial(from, to) else {
        ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
        return;
    };
    ctx.stats.connections.fetch_add(1, Ordering::Relaxed);
    let setup = |s: &TcpStream| -> std::io::Result<()> {
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(TICK))?;
        s.set_write_timeout(Some(TICK))
    };
    if setup(&client).is_err() || setup(&server).is_err() {
        return;
    }
    let dead = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (src, dst, link) in [
        (&client, &server, (from, to)),
        (&server, &client, (to, from)),
    ] {
        let (Ok(src), Ok(dst)) = (src.try_clone(), dst.try_clone()) else {
            dead.store(true, Ordering::SeqCst);
            break;
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
        let (c1, d1) = (ctx.clone(), dead.clone());
        let (c2, d2) = (ctx.clone(), dead.clone());
        threads.push(thread::spawn(move || read_side(src, tx, link, &c1, &d1)));
        threads.push(thread::spawn(move || write_side(dst, rx, link, &c2, &d2)));
    }
    for t in threads {
        let _ = t.join();
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// A chunk and when it may be forwarded; `None` is the sender's EOF.
type Chunk = Option<(Instant, Vec<u8>)>;

fn over(ctx: &Ctx, dead: &AtomicBool) -> bool {
    ctx.stop.load(Ordering::SeqCst) || dead.load(Ordering::SeqCst)
}

/// Reads from `src` into the bounded queue, stamping each chunk with the
/// time it may leave (now + the link's delay).
fn read_side(
    mut src: TcpStream,
    tx: SyncSender<Chunk>,
    (from, to): (u64, u64),
    ctx: &Ctx,
    dead: &AtomicBool,
) {
    let mut buf = vec![0u8; CHUNK_BYTES];
    while !over(ctx, dead) {
        let chunk = match src.read(&mut buf) {
            Ok(0) => None,
            Ok(k) => Some((
                Instant::now() + ctx.links.delay(from, to),
                buf[..k].to_vec(),
            )),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => {
                dead.store(true, Ordering::SeqCst);
                break;
            }
        };
        let eof = chunk.is_none();
        let mut item = chunk;
        loop {
            match tx.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if !over(ctx, dead) => {
                    item = back;
                    thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        if eof {
            return;
        }
    }
    let _ = src.shutdown(Shutdown::Both);
}

/// Forwards queued chunks to `dst` once due and while the link is not
/// stalled; passes the EOF on as a half-close.
fn write_side(
    mut dst: TcpStream,
    rx: Receiver<Chunk>,
    (from, to): (u64, u64),
    ctx: &Ctx,
    dead: &AtomicBool,
) {
    while !over(ctx, dead) {
        let (due, bytes) = match rx.recv_timeout(TICK) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let _ = dst.shutdown(Shutdown::Write);
                return;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let (mut delayed, mut held) = (false, false);
        loop {
            if over(ctx, dead) {
                return;
            }
            let now = Instant::now();
            if ctx.links.is_stalled(from, to) {
                held = true;
                thread::sleep(Duration::from_millis(10));
            } else if now < due {
                delayed = true;
                thread::sleep((due - now).min(Duration::from_millis(10)));
            } else {
                break;
            }
        }
        if delayed {
            ctx.stats.delayed_chunks.fetch_add(1, Ordering::Relaxed);
        }
        if held {
            ctx.stats.held_chunks.fetch_add(1, Ordering::Relaxed);
        }
        if !write_all(&mut dst, &bytes, ctx, dead) {
            dead.store(true, Ordering::SeqCst);
            break;
        }
        ctx.stats
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
    let _ = dst.shutdown(Shutdown::Both);
}

/// Writes all of `bytes`, looking at the stop flag between timed-out tries.
fn write_all(dst: &mut TcpStream, bytes: &[u8], ctx: &Ctx, dead: &AtomicBool) -> bool {
    let mut off = 0;
    while off < bytes.len() {
        if over(ctx, dead) {
            return false;
        }
        match dst.write(&bytes[off..]) {
            Ok(0) => return false,
            Ok(k) => off += k,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_node_addresses_name_a_link() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(node_of(a("10.77.0.3:4000"), 5), Some(3));
        assert_eq!(node_of(a("10.77.0.6:4000"), 5), None);
        assert_eq!(node_of(a("10.77.0.254:4000"), 5), None);
        assert_eq!(node_of(a("10.77.0.103:4000"), 5), None);
        assert_eq!(node_of(a("10.78.0.3:4000"), 5), None);
    }

    #[test]
    fn links_are_indexed_by_direction() {
        let l = Links::new(3);
        l.delay_ms[l.idx(1, 3)].store(40, Ordering::Relaxed);
        l.stalled[l.idx(3, 1)].store(true, Ordering::Relaxed);
        assert_eq!(l.delay(1, 3), Duration::from_millis(40));
        assert_eq!(l.delay(3, 1), Duration::ZERO);
        assert!(l.is_stalled(3, 1) && !l.is_stalled(1, 3));
    }
}
