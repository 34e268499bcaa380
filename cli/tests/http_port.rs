//! The HTTP port of real nodes: /healthz, /readyz, /status and /metrics on a
//! 3-node cluster (metrics that count what the test did; `promtool check
//! metrics` on every node when promtool is installed, which CI does), and its
//! bounds against hostile scrapers: the connection limit answers 503, an
//! over-long head 431, a silent connection is closed at its deadline, a
//! scraper that never reads holds one response, and through all of it the
//! node keeps serving chats and other scrapers. The web page's files with
//! their types and ETag revalidation (304), every node's HTTP address in
//! `/status` (`http_members`), and one node's page allowed to open `/ws` on
//! another. Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/http.rs"]
mod http;

use chat::Conn;
use cluster::{Cluster, Timing};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEADER_WAIT: Duration = Duration::from_secs(20);
const ACK_WAIT: Duration = Duration::from_secs(10);

fn promtool_check(metrics: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var("CI").is_err(),
            "promtool is missing in CI (.ci/run installs prometheus)"
        );
        eprintln!("promtool not installed: skipping `promtool check metrics`");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_ready(port: u16) {
    let until = Instant::now() + LEADER_WAIT;
    loop {
        if http::get(port, "/readyz").is_some_and(|(s, _)| s == 200) {
            return;
        }
        assert!(Instant::now() < until, "/readyz on {port} never said 200");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn endpoints_report_the_cluster_and_pass_promtool() {
    let _serial = cluster::one_at_a_time();
    let c = Cluster::start_with_http(3, Timing::TEST, "");
    let leader = c.wait_for_leader(LEADER_WAIT);
    let hp: Vec<u16> = c.nodes.iter().map(|n| n.http_port.unwrap()).collect();
    for &p in &hp {
        wait_ready(p);
    }
    let mut conn = Conn::connect(&c.addr(leader)).unwrap();
    for i in 0..20 {
        conn.chat_acked(&format!("m{i}"), "hello", ACK_WAIT);
    }
    for (i, &p) in hp.iter().enumerate() {
        assert_eq!(http::get(p, "/healthz").unwrap(), (200, "ok\n".into()));
        let (code, body) = http::get(p, "/status").unwrap();
        assert_eq!(code, 200);
        let st: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(st["node_id"], i as u64 + 1, "{body}");
        assert_eq!(st["leader"], leader as u64 + 1, "{body}");
        assert_eq!(st["peer_links_up"], 2, "{body}");
        assert_eq!(st["ready"], true, "{body}");
        let role = if i == leader { "leader" } else { "follower" };
        assert_eq!(st["role"], role, "{body}");
        let (code, m) = http::get(p, "/metrics").unwrap();
        assert_eq!(code, 200);
        promtool_check(&m);
        let one = |name: &str| http::sample(&m, name).unwrap_or_else(|| panic!("{name}: {m}"));
        assert_eq!(one(&format!("chorus_role{{role=\"{role}\"}}")), 1.0);
        assert_eq!(one("chorus_leader_id"), leader as f64 + 1.0);
        assert!(one("chorus_fsync_seconds_count") >= 1.0);
        assert!(one("chorus_received_bytes_total") > 0.0);
        assert_eq!(one("chorus_peer_links_up"), 2.0);
        if i == leader {
            // 20 chats + the leader's no-op; each chat timed to its ack.
            assert!(one("chorus_messages_committed_total") >= 21.0, "{m}");
            assert!(one("chorus_commit_latency_seconds_count") >= 20.0, "{m}");
            assert_eq!(one("chorus_client_sessions"), 1.0);
            assert!(one("chorus_elections_won_total") >= 1.0);
        }
    }
    // A forbidden client line is counted by its code.
    conn.send_raw(b"{\"type\":\"HEARTBEAT\"}\n").unwrap();
    conn.recv_type("ERROR", ACK_WAIT);
    let (_, m) = http::get(hp[leader], "/metrics").unwrap();
    assert_eq!(
        http::sample(&m, "chorus_errors_total{code=\"forbidden\"}"),
        Some(1.0)
    );
    assert_eq!(http::get(hp[0], "/nope").unwrap().0, 404);
    page_and_http_members(&hp);
}

/// Sends `req` on a fresh connection; the whole answer.
fn exchange(port: u16, req: &str) -> String {
    let mut s = raw(port);
    s.write_all(req.as_bytes()).unwrap();
    read_all(s)
}

/// The web page's files (types, ETag revalidation), every node's HTTP
/// address in `/status`, and one node's page allowed to open `/ws` on
/// another (failover).
fn page_and_http_members(hp: &[u16]) {
    let all: Vec<String> = hp.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut sorted = all.clone();
    sorted.sort();
    for (i, &p) in hp.iter().enumerate() {
        let until = Instant::now() + LEADER_WAIT;
        loop {
            let (_, body) = http::get(p, "/status").unwrap();
            let st: serde_json::Value = serde_json::from_str(&body).unwrap();
            let mut got: Vec<String> = serde_json::from_value(st["http_members"].clone()).unwrap();
            assert_eq!(got[0], all[i], "its own address first: {body}");
            got.sort();
            if got == sorted {
                break;
            }
            assert!(
                Instant::now() < until,
                "http_members never listed every node: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
    ] {
        let get = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let full = exchange(hp[0], &get);
        let (head, body) = full.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{path}: {head}");
        assert!(head.contains(&format!("Content-Type: {ty}\r\n")), "{head}");
        assert!(head.contains("Cache-Control: no-cache\r\n"), "{head}");
        assert!(!body.is_empty());
        let tag = head
            .lines()
            .find_map(|l| l.strip_prefix("ETag: "))
            .expect("an ETag");
        let again = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nIf-None-Match: {tag}\r\nConnection: close\r\n\r\n"
        );
        let cached = exchange(hp[1], &again);
        assert!(cached.starts_with("HTTP/1.1 304 Not Modified"), "{cached}");
        assert!(cached.ends_with("\r\n\r\n"), "a 304 has no body: {cached}");
    }
    let page = http::get(hp[0], "/").unwrap().1;
    assert!(page.contains("<script src=\"/app.js\"") && page.contains("<label"));
    // Node 2 lets node 1's page open /ws (the page fails over to it).
    let upgrade = |origin: &str| {
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Origin: {origin}\r\n\r\n"
        );
        let mut s = raw(hp[1]);
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert_eq!(
        upgrade(&format!("http://localhost:{}", hp[0])),
        "HTTP/1.1 101"
    );
    assert_eq!(upgrade("http://localhost:1"), "HTTP/1.1 403");
}

fn raw(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_all(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hostile_scrapers_are_bounded_and_the_node_keeps_serving() {
    let _serial = cluster::one_at_a_time();
    let extra = "http_max_connections = 4\nhttp_timeout_ms = 2000\n";
    let c = Cluster::start_with_http(1, Timing::TEST, extra);
    c.wait_for_leader(LEADER_WAIT);
    let p = c.nodes[0].http_port.unwrap();
    wait_ready(p);
    // A scraper that sends many pipelined requests and never reads.
    let mut greedy = raw(p);
    let many = "GET /metrics HTTP/1.1\r\n\r\n".repeat(2000);
    greedy.write_all(many.as_bytes()).unwrap();
    // Two silent connections (slowloris: half a request head).
    let mut silent: Vec<TcpStream> = (0..2).map(|_| raw(p)).collect();
    for s in &mut silent {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x").unwrap();
    }
    // The fourth slot answers; over the limit the answer is 503.
    assert_eq!(http::get(p, "/healthz").unwrap().0, 200);
    let fillers: Vec<TcpStream> = (0..1).map(|_| raw(p)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let refused = read_all(raw(p));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // The node still sequences chats meanwhile.
    let mut conn = Conn::connect(&c.addr(0)).unwrap();
    conn.chat_acked("during", "x", ACK_WAIT);
    // Past the deadline the silent ones are closed (EOF, no answer).
    for s in silent {
        let t = Instant::now();
        assert_eq!(read_all(s), "", "a silent connection gets no answer");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "closed at its deadline"
        );
    }
    drop(fillers);
    drop(greedy);
    std::thread::sleep(Duration::from_millis(100));
    // An over-long head: 431 and closed.
    let mut big = raw(p);
    let head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    let _ = big.write_all(head.as_bytes());
    let answer = read_all(big);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Bad methods and bodies.
    let mut post = raw(p);
    post.write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    assert!(read_all(post).starts_with("HTTP/1.1 413"));
    let mut del = raw(p);
    del.write_all(b"DELETE / HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_all(del).starts_with("HTTP/1.1 405"));
    let (code, m) = http::get(p, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(http::sample(&m, "chorus_http_requests_total").unwrap() >= 3.0);
    conn.chat_acked("after", "x", ACK_WAIT);
}
