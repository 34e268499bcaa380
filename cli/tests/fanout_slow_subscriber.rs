//! A slow subscriber never slows the others (a real node process): one
//! subscriber that never reads, with a small receive buffer, and three that
//! read; a publisher sends ~12 MiB to the room as fast as it is
//! acknowledged. The readers get every message, in order, as fast as the
//! publisher is acknowledged; the non-reader's stream is paced (the node
//! stops producing for it at the low-water mark) and, after
//! `slow_subscriber_ms`, it is disconnected: when it finally reads, it finds
//! whole lines in seq order, then `ERROR slow_consumer` (saying how to
//! resume), then the end of the connection.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;

use chat::Conn;
use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const MESSAGES: u64 = 400;
const PAYLOAD: usize = 32 << 10;
const SLOW_MS: u64 = 2000;

/// A subscriber of room `fan` whose receive buffer is 16 KiB (set before
/// connecting, so the kernel does not grow it): the node's side fills fast.
fn small_buffer_subscriber(addr: &str) -> TcpStream {
    use rustix::net::{connect, socket, sockopt, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 16 << 10).unwrap();
    let dst: SocketAddr = addr.parse().unwrap();
    connect(&fd, &dst).unwrap();
    let mut s = TcpStream::from(fd);
    s.write_all(chat::hello().as_bytes()).unwrap();
    s.write_all(b"{\"type\":\"SUBSCRIBE\",\"room_id\":\"fan\"}\n{\"type\":\"STATUS\"}\n")
        .unwrap();
    s
}

/// A reading subscriber: (arrival time of each message, seq_nos in order).
fn reader(addr: String, stop: Arc<AtomicBool>) -> thread::JoinHandle<(Vec<Instant>, Vec<u64>)> {
    let mut c = Conn::connect(&addr).unwrap();
    c.send(&json!({"type":"SUBSCRIBE","room_id":"fan"}))
        .unwrap();
    c.send(&json!({"type":"STATUS"})).unwrap();
    c.recv_type("STATUS", Duration::from_secs(5));
    thread::spawn(move || {
        let (mut at, mut seqs) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) && (seqs.len() as u64) < MESSAGES {
            match c.recv(Duration::from_millis(200)) {
                Ok(Some(v)) if v["type"] == "SEQ_CHAT" => {
                    at.push(Instant::now());
                    seqs.push(v["room_seq"].as_u64().unwrap());
                }
                Ok(Some(v)) => panic!("a reader got {v}"),
                Ok(None) => panic!("a reader was disconnected"),
                Err(_) => {}
            }
        }
        (at, seqs)
    })
}

/// Publishes every message, 16 in flight; returns when the last was acknowledged.
fn publish(addr: &str) -> Instant {
    let mut c = Conn::connect(addr).unwrap();
    let payload = "p".repeat(PAYLOAD);
    let mut acked = 0;
    for i in 0..MESSAGES {
        let chat =
            json!({"type":"CHAT","room_id":"fan","msg_id":format!("slow-{i}"),"payload":payload});
        c.send(&chat).unwrap();
        if i >= 16 {
            c.recv_type("CHAT_ACK", Duration::from_secs(20));
            acked += 1;
        }
    }
    while acked < MESSAGES {
        c.recv_type("CHAT_ACK", Duration::from_secs(20));
        acked += 1;
    }
    Instant::now()
}

#[test]
fn a_subscriber_that_does_not_read_is_paced_then_disconnected_and_slows_no_one() {
    let extra = format!("slow_subscriber_ms = {SLOW_MS}\n");
    let c = Cluster::start_with_config(1, Timing::TEST, &extra);
    c.wait_for_leader(Duration::from_secs(20));
    let addr = c.addr(0);
    let slow = small_buffer_subscriber(&addr);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3).map(|_| reader(addr.clone(), stop.clone())).collect();
    let started = Instant::now();
    let last_ack = publish(&addr);
    let publish_s = (last_ack - started).as_secs_f64();
    let got: Vec<(Vec<Instant>, Vec<u64>)> =
        readers.into_iter().map(|r| r.join().unwrap()).collect();
    for (at, seqs) in &got {
        let want: Vec<u64> = (1..=MESSAGES).collect();
        assert_eq!(seqs, &want, "a reader missed or reordered messages");
        // Full rate: the readers kept up with the publisher (it waits for
        // commits, not for them), so their last message came right after
        // the last acknowledgement, however far behind the slow one is.
        let lag = at.last().unwrap().saturating_duration_since(last_ack);
        assert!(
            lag < Duration::from_secs(2),
            "a reader got the last message {lag:?} after its ack (publishing took {publish_s:.2} s)"
        );
    }

    // The node decides after SLOW_MS of pacing; it logs it.
    let log_path = c.nodes[0].stderr_path.clone();
    let deadline = Instant::now() + Duration::from_millis(SLOW_MS) + Duration::from_secs(15);
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("slow consumer")
    {
        assert!(
            Instant::now() < deadline,
            "never disconnected\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(100));
    }

    // Now it reads: whole lines in order, then the ERROR, then the end.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut r = BufReader::new(slow);
    let (mut seqs, mut error) = (Vec::new(), None);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => break, // closed by the node
            Ok(_) => {}
            Err(e) => panic!("the slow subscriber's connection was not closed: {e}"),
        }
        assert!(line.ends_with('\n'), "a cut line: {line:?}");
        let v: Value = serde_json::from_str(&line).expect("a whole JSON line");
        match v["type"].as_str() {
            Some("SEQ_CHAT") => seqs.push(v["room_seq"].as_u64().unwrap()),
            Some("ERROR") => error = Some(v),
            _ => {}
        }
    }
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(
        seqs, want,
        "the slow subscriber's lines are in order, from the first"
    );
    assert!(
        (seqs.len() as u64) < MESSAGES,
        "the slow subscriber was paced: it cannot have been sent everything"
    );
    let error = error.expect("an ERROR line before the close");
    assert_eq!(error["code"], "slow_consumer", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("from_seq"),
        "{error}"
    );
    stop.store(true, Ordering::Relaxed);
}

/// The soft and hard "Max open files" of a process (/proc/PID/limits).
fn open_file_limits(pid: u32) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[4].to_string())
}

#[test]
fn a_node_raises_its_open_file_limit_and_keeps_max_connections_within_it() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    // Start the node with a low soft limit (it inherits ours), as a shell
    // with the usual `ulimit -n 1024` would.
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum;
    lim.current = Some(hard.map_or(1024, |h| h.min(1024)));
    setrlimit(Resource::Nofile, lim).unwrap();
    let c = Cluster::start_with_config(1, Timing::TEST, "max_connections = 100000000\n");
    c.wait_for_leader(Duration::from_secs(20));
    let (soft, hard_seen) = open_file_limits(c.pid(0).unwrap());
    assert_eq!(
        soft, hard_seen,
        "the node runs with its soft limit raised to the hard one"
    );
    let log = std::fs::read_to_string(&c.nodes[0].stderr_path).unwrap();
    assert!(
        log.contains("max_connections 100000000 is above what the open-file limit"),
        "{log}"
    );
    assert!(log.contains("open-file limit"), "{log}");
}
