//! One subscriber per node: a blocking connection that sends SUBSCRIBE and
//! records, for each of this run's messages, when that node delivered it, at
//! which seq_no and in which term. After the run these per-node records give
//! send→delivered-on-every-node latency, duplicates, and order agreement.
//!
//! A subscriber reconnects (from the seq after the last one it saw) if the
//! node drops it, and stops at `stop` or when its node is gone for good.

use super::proto::{self, Hot, MsgIds};
use super::Clock;
use crate::tls_dial::Stream;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What one node delivered, indexed by global message index.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// µs since the run's start + 1 (0 = never delivered).
    pub at_us: Vec<u32>,
    pub seq_no: Vec<u64>,
    pub term: Vec<u32>,
    /// A msg_id delivered a second time (at any seq).
    pub duplicates: u64,
    /// A seq_no that did not increase along the stream.
    pub out_of_order: u64,
    pub reconnects: u64,
}

/// Counters readable while the run goes on (for the progress line).
#[derive(Debug, Default)]
pub struct Live {
    pub delivered: AtomicU64,
    pub connected: AtomicBool,
}

#[derive(Debug)]
pub struct Subscriber {
    pub live: Arc<Live>,
    handle: JoinHandle<Deliveries>,
}

impl Subscriber {
    /// Subscribes to `addr` from `from_seq` (None: only new messages).
    pub fn start(
        addr: SocketAddr,
        from_seq: Option<u64>,
        ids: MsgIds,
        total: u64,
        clock: Clock,
        stop: Arc<AtomicBool>,
    ) -> Subscriber {
        let live = Arc::new(Live::default());
        let l = live.clone();
        let handle = std::thread::Builder::new()
            .name(format!("sub-{addr}"))
            .spawn(move || run(addr, from_seq, &ids, total, &clock, &stop, &l))
            .expect("spawn subscriber thread");
        Subscriber { live, handle }
    }

    pub fn join(self) -> Deliveries {
        self.handle.join().expect("subscriber thread panicked")
    }
}

fn subscribe(addr: SocketAddr, from_seq: Option<u64>) -> std::io::Result<BufReader<Stream>> {
    let mut s = super::proto::open(addr, Duration::from_millis(500))?;
    s.tcp().set_read_timeout(Some(Duration::from_millis(100)))?;
    s.write_all(super::proto::hello().as_bytes())?;
    match from_seq {
        Some(f) => writeln!(s, "{{\"type\":\"SUBSCRIBE\",\"from_seq\":{f}}}")?,
        None => s.write_all(b"{\"type\":\"SUBSCRIBE\"}\n")?,
    }
    Ok(BufReader::with_capacity(1 << 20, s))
}

fn run(
    addr: SocketAddr,
    mut from_seq: Option<u64>,
    ids: &MsgIds,
    total: u64,
    clock: &Clock,
    stop: &AtomicBool,
    live: &Live,
) -> Deliveries {
    let n = total as usize;
    let mut d = Deliveries {
        at_us: vec![0; n],
        seq_no: vec![0; n],
        term: vec![0; n],
        ..Deliveries::default()
    };
    let mut last_seq = 0u64;
    let mut line = Vec::with_capacity(1024);
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let mut r = match subscribe(addr, from_seq) {
            Ok(r) => r,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if !first {
            d.reconnects += 1;
        }
        first = false;
        live.connected.store(true, Ordering::Relaxed);
        line.clear();
        loop {
            // On a read timeout the bytes read so far stay in `line`; it is
            // cleared only after a complete line was handled.
            match r.read_until(b'\n', &mut line) {
                Ok(_) if line.last() == Some(&b'\n') => {}
                Ok(_) => break, // end of stream
                Err(e) if is_timeout(&e) => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    continue;
                }
                Err(_) => break,
            }
            if let Hot::Chat {
                msg_id,
                seq_no,
                term,
            } = proto::scan(&line)
            {
                if seq_no <= last_seq {
                    d.out_of_order += 1;
                }
                last_seq = last_seq.max(seq_no);
                from_seq = Some(last_seq + 1);
                if let Some(g) = ids.parse(msg_id).filter(|&g| g < total) {
                    d.record(g as usize, clock.now_us1(), seq_no, term, live);
                }
            }
            line.clear();
        }
        live.connected.store(false, Ordering::Relaxed);
    }
    d
}

impl Deliveries {
    fn record(&mut self, g: usize, at_us1: u32, seq_no: u64, term: u64, live: &Live) {
        if self.at_us[g] != 0 {
            self.duplicates += 1;
            return;
        }
        self.at_us[g] = at_us1;
        self.seq_no[g] = seq_no;
        self.term[g] = term as u32;
        live.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
