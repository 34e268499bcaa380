//! The runtime's per-client limits against a real node: connections per
//! source address (`max_connections_per_address`: the next one is told
//! `busy` and closed, another address still gets in, a closed one frees its
//! slot) and the CHAT rate of one session (`client_rate_per_sec`,
//! `client_rate_burst`: over it, ERROR `rate_limited`, the connection stays
//! open, and the session may send again once the bucket refills).

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;

use chat::Conn;
use cluster::{Cluster, Timing};
use std::io::BufRead;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// A TCP connection to `to` from the loopback address `from` (127.0.0.x).
fn connect_from(from: &str, to: &str) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let src: SocketAddr = format!("{from}:0").parse().unwrap();
    bind(&fd, &src).unwrap();
    let dst: SocketAddr = to.parse().unwrap();
    connect(&fd, &dst).unwrap();
    TcpStream::from(fd)
}

/// The first line the node sends on `s` within `T` (empty on EOF).
fn first_line(s: &TcpStream) -> String {
    s.set_read_timeout(Some(T)).unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(s).read_line(&mut line);
    line
}

/// A STATUS answer on `s`: the node serves this connection.
fn served(s: &TcpStream) -> bool {
    use std::io::Write;
    let mut w = s;
    // chorus's dialect (a connection without HELLO gets only SEQ_CHAT lines).
    w.write_all(chat::hello().as_bytes()).unwrap();
    w.write_all(b"{\"type\":\"STATUS\"}\n").unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut r = std::io::BufReader::new(s);
    (0..2).any(|_| {
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        line.contains("\"STATUS\"")
    })
}

#[test]
fn connections_per_source_address_are_bounded() {
    let c = Cluster::start_with_config(1, Timing::TEST, "max_connections_per_address = 4\n");
    c.wait_for_leader(Duration::from_secs(20));
    // A config without [tls] keeps plaintext, and says so at start.
    assert!(c.logs().contains("PLAINTEXT"), "{}", c.logs());
    thread::sleep(Duration::from_millis(300)); // the helper's STATUS connections close
    let addr = c.addr(0);
    let held: Vec<TcpStream> = (0..4).map(|_| connect_from("127.0.0.1", &addr)).collect();
    assert!(served(&held[0]));
    let fifth = connect_from("127.0.0.1", &addr);
    let refused = first_line(&fifth);
    assert!(
        refused.contains("\"busy\"") && refused.contains("connections from 127.0.0.1"),
        "{refused}"
    );
    // Another source address is not affected.
    let other = connect_from("127.0.0.2", &addr);
    assert!(served(&other), "127.0.0.2 refused");
    // Closing one frees a slot for its address.
    drop(held);
    thread::sleep(Duration::from_millis(300));
    let again = connect_from("127.0.0.1", &addr);
    assert!(served(&again), "slot not released");
}

#[test]
fn a_session_over_its_message_rate_gets_rate_limited_and_stays_open() {
    let c = Cluster::start_with_config(
        1,
        Timing::TEST,
        "client_rate_per_sec = 5\nclient_rate_burst = 5\n",
    );
    c.wait_for_leader(Duration::from_secs(20));
    let mut conn = Conn::connect(&c.addr(0)).unwrap();
    for i in 0..20 {
        conn.send(&chat::chat(&format!("r{i}"), "flood")).unwrap();
    }
    let (mut acks, mut limited) = (0, 0);
    while acks + limited < 20 {
        let v = conn.recv(T).unwrap().expect("connection stays open");
        match v["type"].as_str() {
            Some("CHAT_ACK") => acks += 1,
            Some("ERROR") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited += 1;
            }
            _ => {}
        }
    }
    // The burst (5) plus what refilled while the 20 lines arrived.
    assert!((5..=7).contains(&acks), "{acks} acked");
    assert!(limited >= 13, "{limited} limited");
    // A second later the bucket has refilled: the same session is served.
    thread::sleep(Duration::from_millis(1100));
    let seq = conn.chat_acked("after-refill", "ok", T);
    assert!(seq >= 5);
}
