//! Socket-level tests of one real node (in-process, ephemeral port, temp dir):
//! the client protocol, the peer handshake with a good and a bad secret,
//! forbidden peer types, over-long and malformed lines, and recovery.
//! Every read has a timeout, so every test is bounded in time.

use chorus_core::{Config, NodeId, PeerInfo};
use chorus_runtime_mio::auth::{self, Handshake, Side, Transcript};
use chorus_runtime_mio::{NodeOptions, Runtime, ShutdownHandle};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

const SECRET: &str = "test-secret";

struct Node {
    addr: SocketAddr,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// A one-voter cluster: it elects itself within a few hundred ms.
fn start(dir: &Path) -> Node {
    start_with(dir, |_| {})
}

fn start_with(dir: &Path, tune: impl FnOnce(&mut NodeOptions)) -> Node {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let me = PeerInfo {
        node_id: NodeId(1),
        host: "127.0.0.1".into(),
        port: 0,
    };
    let core = Config::new(me, vec![]).with_timing(50, 200);
    let mut opts = NodeOptions::new(core, dir.to_path_buf(), SECRET.into());
    tune(&mut opts);
    let rt = Runtime::start(opts).expect("node starts");
    let addr = rt.local_addr();
    let stop = rt.shutdown_handle();
    let thread = Some(std::thread::spawn(move || rt.run().expect("node runs")));
    Node { addr, stop, thread }
}

struct Line {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Line {
    /// A raw connection (no HELLO: a seed client, or a peer to be).
    fn raw(addr: SocketAddr) -> Line {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Line { w, r }
    }
    /// A chorus client connection (HELLO said, the node's HELLO read).
    fn connect(addr: SocketAddr) -> Line {
        let mut l = Line::raw(addr);
        l.send_raw(br#"{"type":"HELLO","proto":2,"client":"single_node-test/0"}"#);
        assert_eq!(l.recv().expect("HELLO answer")["type"], "HELLO");
        l
    }
    fn send(&mut self, v: &Value) {
        self.send_raw(v.to_string().as_bytes());
    }
    fn send_raw(&mut self, b: &[u8]) {
        self.w.write_all(b).unwrap();
        self.w.write_all(b"\n").unwrap();
    }
    /// The next line, or None at EOF.
    fn recv(&mut self) -> Option<Value> {
        let mut s = String::new();
        match self.r.read_line(&mut s) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&s).expect("a JSON line")),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }
    /// The next line of type `ty`, skipping others (at most 10 s).
    fn recv_type(&mut self, ty: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let v = self.recv().expect("connection open");
            if v["type"] == ty {
                return v;
            }
        }
        panic!("no {ty} line within 10 s");
    }
}

/// Polls STATUS until the node leads (at most 10 s).
fn wait_leader(addr: SocketAddr) {
    let mut c = Line::connect(addr);
    for _ in 0..200 {
        c.send(&json!({"type":"STATUS"}));
        if c.recv_type("STATUS")["role"] == "leader" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no leader within 10 s");
}

fn chat(id: &str, payload: &str) -> Value {
    json!({"type":"CHAT","sender_id":9999,"term":0,"room_id":"general","msg_id":id,"payload":payload})
}

#[test]
fn seed_chat_line_is_acknowledged_and_served_as_history() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let mut c = Line::connect(node.addr);
    c.send(&chat("m-1", "hi"));
    let ack = c.recv_type("CHAT_ACK");
    assert_eq!(ack["msg_id"], "m-1");
    let seq = ack["seq_no"].as_u64().unwrap();
    assert_eq!(
        seq, 1,
        "the first chat is #1 (the leader's no-op takes no number)"
    );
    c.send(&chat("m-1", "hi"));
    assert_eq!(
        c.recv_type("CHAT_ACK")["seq_no"],
        seq,
        "a retry gets the same seq_no"
    );
    c.send(&chat("m-2", "there"));
    c.recv_type("CHAT_ACK");
    c.send(&json!({"type":"HISTORY","from_seq":1}));
    let a = c.recv_type("SEQ_CHAT");
    assert_eq!(
        (a["msg_id"].as_str(), a["payload"].as_str()),
        (Some("m-1"), Some("hi"))
    );
    assert!(a["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(c.recv_type("SEQ_CHAT")["msg_id"], "m-2");
    let end = c.recv_type("HISTORY_END");
    assert_eq!(end["next_seq"], seq + 2);
    c.send(&json!({"type":"STATUS"}));
    let st = c.recv_type("STATUS");
    assert_eq!(
        (st["role"].as_str(), st["leader"].as_u64()),
        (Some("leader"), Some(1))
    );
}

#[test]
fn subscribers_get_new_messages_and_plain_clients_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let mut sub = Line::connect(node.addr);
    sub.send(&json!({"type":"SUBSCRIBE","room_id":"general"}));
    let mut other_room = Line::connect(node.addr);
    other_room.send(&json!({"type":"SUBSCRIBE","from_seq":1,"room_id":"random"}));
    let mut plain = Line::connect(node.addr);
    plain.send(&chat("a", "1"));
    plain.send(&json!({"type":"CHAT","msg_id":"b","payload":"2","room_id":"random"}));
    plain.send(&chat("c", "3"));
    for id in ["a", "b", "c"] {
        assert_eq!(
            plain.recv().unwrap()["msg_id"],
            id,
            "a plain client sees only its acks"
        );
    }
    assert_eq!(sub.recv_type("SEQ_CHAT")["msg_id"], "a");
    assert_eq!(sub.recv_type("SEQ_CHAT")["msg_id"], "c");
    assert_eq!(other_room.recv_type("SEQ_CHAT")["msg_id"], "b");
}

#[test]
fn a_client_cannot_inject_peer_messages() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let mut c = Line::connect(node.addr);
    c.send(&chat("x", "before"));
    let seq = c.recv_type("CHAT_ACK")["seq_no"].as_u64().unwrap();
    for forged in [
        json!({"type":"SEQ_CHAT","sender_id":1,"term":99,"prev_seq":seq,"prev_term":1,"commit_seq":seq+1,
               "entries":[{"seq_no":seq+1,"term":99,"msg_id":"evil","room_id":"general","sender_id":1,"payload":"forged","ts_ms":0}]}),
        json!({"type":"COORDINATOR","sender_id":7,"term":50,"leader":{"node_id":7,"host":"127.0.0.1","port":1}}),
        json!({"type":"HEARTBEAT","sender_id":7,"term":50,"commit_seq":0,"last_seq":0,"last_term":0}),
    ] {
        c.send(&forged);
        let e = c.recv_type("ERROR");
        assert_eq!(e["code"], "forbidden", "{e}");
    }
    c.send(&json!({"type":"STATUS"}));
    let st = c.recv_type("STATUS");
    assert_eq!(
        (st["term"].as_u64(), st["leader"].as_u64()),
        (Some(1), Some(1)),
        "nothing changed"
    );
    c.send(&json!({"type":"HISTORY","from_seq":1}));
    assert_eq!(c.recv_type("SEQ_CHAT")["msg_id"], "x");
    assert_eq!(
        c.recv_type("HISTORY_END")["next_seq"],
        seq + 1,
        "no forged entry"
    );
}

#[test]
fn over_long_and_malformed_lines_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let mut bystander = Line::connect(node.addr);
    bystander.send(&chat("ok-1", "first"));
    bystander.recv_type("CHAT_ACK");

    let mut big = Line::connect(node.addr);
    let line = vec![b'a'; 10 << 20];
    // The node may close before reading it all; a write error is fine then.
    let _ = big.w.write_all(&line);
    let e = big.recv().expect("an ERROR before the close");
    assert_eq!(e["code"], "too_large");
    assert!(big.recv().is_none(), "closed");

    let mut garbage = Line::connect(node.addr);
    garbage.send_raw(b"this is not json");
    assert_eq!(garbage.recv().unwrap()["code"], "bad_request");
    assert!(garbage.recv().is_none(), "closed");

    bystander.send(&chat("ok-2", "still here"));
    assert_eq!(bystander.recv_type("CHAT_ACK")["msg_id"], "ok-2");
}

/// Plays a peer (node 9) with `secret` against the node: HELLO, check the
/// CHALLENGE, AUTH. Returns the connection and whether the node's proof held.
fn dial_as_peer(addr: SocketAddr, secret: &str) -> (Line, bool) {
    let mut p = Line::raw(addr);
    let nonce = auth::fresh_nonce();
    p.send(&json!({"type":"HELLO","node_id":9,"nonce":nonce}));
    let ch: Handshake = serde_json::from_value(p.recv().unwrap()).unwrap();
    let Handshake::Challenge {
        node_id,
        nonce: an,
        mac,
    } = ch
    else {
        panic!("expected CHALLENGE");
    };
    assert_eq!(node_id, NodeId(1));
    let t = Transcript {
        dialer: NodeId(9),
        acceptor: NodeId(1),
        dialer_nonce: nonce,
        acceptor_nonce: an,
    };
    let node_ok = auth::verify(secret.as_bytes(), Side::Acceptor, &t, &mac);
    let proof = auth::prove(secret.as_bytes(), Side::Dialer, &t);
    p.send(&json!({"type":"AUTH","mac":proof}));
    (p, node_ok)
}

#[test]
fn handshake_with_the_right_secret_links_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    wait_leader(node.addr);
    let me = TcpListener::bind("127.0.0.1:0").unwrap();
    me.set_nonblocking(true).unwrap();
    let (mut p, node_ok) = dial_as_peer(node.addr, SECRET);
    assert!(node_ok, "the node proves it knows the secret");
    let port = me.local_addr().unwrap().port();
    p.send(&json!({"type":"JOIN","sender_id":9,"term":0,"peer":{"node_id":9,"host":"127.0.0.1","port":port}}));

    // The node learns n9 and dials it back: play the acceptor side.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let back = loop {
        match me.accept() {
            Ok((s, _)) => break s,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("the node never dialed back: {e}"),
        }
    };
    back.set_nonblocking(false).unwrap();
    back.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut back = Line {
        r: BufReader::new(back.try_clone().unwrap()),
        w: back,
    };
    let Handshake::Hello { node_id, nonce, .. } =
        serde_json::from_value(back.recv().unwrap()).unwrap()
    else {
        panic!("expected HELLO");
    };
    assert_eq!(node_id, NodeId(1));
    let t = Transcript {
        dialer: NodeId(1),
        acceptor: NodeId(9),
        dialer_nonce: nonce,
        acceptor_nonce: auth::fresh_nonce(),
    };
    let mac = auth::prove(SECRET.as_bytes(), Side::Acceptor, &t);
    back.send(&json!({"type":"CHALLENGE","node_id":9,"nonce":t.acceptor_nonce,"mac":mac}));
    let Handshake::Auth { mac } = serde_json::from_value(back.recv().unwrap()).unwrap() else {
        panic!("expected AUTH");
    };
    assert!(auth::verify(SECRET.as_bytes(), Side::Dialer, &t, &mac));
    let ack = back.recv_type("JOIN_ACK");
    assert_eq!(ack["sender_id"], 1);
    assert_eq!(
        ack["leader"]["node_id"], 1,
        "the node tells the joiner who leads"
    );
}

#[test]
fn handshake_with_a_wrong_secret_is_refused_and_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (mut p, node_ok) = dial_as_peer(node.addr, "not-the-secret");
    assert!(!node_ok, "a node with another secret cannot prove itself");
    let e = p.recv().expect("an ERROR");
    assert_eq!(e["code"], "forbidden");
    assert!(p.recv().is_none(), "closed");
    let mut c = Line::connect(node.addr);
    c.send(&chat("after", "still serving"));
    assert_eq!(c.recv_type("CHAT_ACK")["msg_id"], "after");
}

#[test]
fn acknowledged_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let seq = {
        let node = start(dir.path());
        let mut c = Line::connect(node.addr);
        c.send(&chat("durable", "kept"));
        c.recv_type("CHAT_ACK")["seq_no"].as_u64().unwrap()
    };
    let node = start(dir.path());
    let mut c = Line::connect(node.addr);
    c.send(&chat("durable", "kept"));
    assert_eq!(
        c.recv_type("CHAT_ACK")["seq_no"],
        seq,
        "dedup index rebuilt from the log"
    );
    c.send(&json!({"type":"HISTORY","from_seq":seq}));
    assert_eq!(c.recv_type("SEQ_CHAT")["payload"], "kept");
}

#[test]
fn a_half_closed_client_still_gets_its_ack() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let mut c = Line::connect(node.addr);
    c.send(&chat("half", "closed"));
    c.w.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.recv_type("CHAT_ACK")["msg_id"], "half");
    assert!(c.recv().is_none(), "then closed");
}

#[test]
fn large_history_streams_intact_to_a_slow_reader() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_with(dir.path(), |o| o.limits.stream_low_water_bytes = 16 * 1024);
    let mut c = Line::connect(node.addr);
    let payload = "p".repeat(10_000);
    for i in 0..300 {
        c.send(&chat(&format!("big-{i}"), &payload));
    }
    for _ in 0..300 {
        c.recv_type("CHAT_ACK");
    }
    c.send(&json!({"type":"HISTORY","from_seq":1}));
    std::thread::sleep(Duration::from_millis(300)); // let socket buffers fill
    let mut seqs = Vec::new();
    loop {
        let v = c.recv().expect("open");
        match v["type"].as_str() {
            Some("SEQ_CHAT") => {
                assert_eq!(v["payload"].as_str().map(str::len), Some(10_000));
                seqs.push(v["seq_no"].as_u64().unwrap());
            }
            Some("HISTORY_END") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seqs.len(), 300);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gaps"
    );
}

#[test]
fn a_client_that_never_reads_is_disconnected_and_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_with(dir.path(), |o| {
        o.limits.max_client_output_bytes = 256 * 1024
    });
    let mut hog = Line::connect(node.addr);
    let status = b"{\"type\":\"STATUS\"}\n".repeat(100_000);
    let _ = hog.w.write_all(&status); // fails once the node hangs up: fine
    let mut answers = 0usize;
    let closed = loop {
        let mut s = String::new();
        match hog.r.read_line(&mut s) {
            Ok(0) => break true,
            Ok(_) => answers += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) => panic!("the node neither answered nor closed: {e}"),
        }
    };
    assert!(closed && answers < 100_000, "{answers} answers");
    let mut c = Line::connect(node.addr);
    c.send(&chat("fine", "others go on"));
    assert_eq!(c.recv_type("CHAT_ACK")["msg_id"], "fine");
}

/// The room_seq of every SEQ_CHAT of one HISTORY answer, up to its HISTORY_END.
fn page(c: &mut Line, req: Value) -> Vec<u64> {
    c.send(&req);
    let mut got = Vec::new();
    loop {
        let v = c.recv().expect("a line");
        match v["type"].as_str() {
            Some("SEQ_CHAT") => {
                assert_eq!(v["room_id"], req["room_id"], "{v}");
                got.push(v["room_seq"].as_u64().unwrap());
            }
            Some("HISTORY_END") => return got,
            _ => panic!("unexpected {v}"),
        }
    }
}

#[test]
fn rooms_are_listed_paged_by_room_seq_and_subscribed_together() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    wait_leader(node.addr);
    let mut c = Line::connect(node.addr);
    for i in 0..30 {
        for room in ["a", "b", "c"] {
            c.send(
                &json!({"type":"CHAT","msg_id":format!("{room}-{i}"),"payload":"x","room_id":room}),
            );
        }
    }
    let mut last = 0;
    for _ in 0..90 {
        last = c.recv_type("CHAT_ACK")["seq_no"]
            .as_u64()
            .unwrap()
            .max(last);
    }
    assert_eq!(last, 90, "90 chats numbered 1..90");
    c.send(&json!({"type":"LIST"}));
    let rooms = c.recv_type("ROOMS");
    assert_eq!(
        rooms["rooms"],
        json!([
            {"room_id":"a","messages":30,"members":0,"online":0,"topic":""},
            {"room_id":"b","messages":30,"members":0,"online":0,"topic":""},
            {"room_id":"c","messages":30,"members":0,"online":0,"topic":""}
        ])
    );
    let h = |after: Option<u64>, before: Option<u64>, limit: u64| json!({"type":"HISTORY","room_id":"a","after":after,"before":before,"limit":limit});
    assert_eq!(
        page(&mut c, h(None, Some(31), 10)),
        (21..=30).collect::<Vec<_>>()
    );
    assert_eq!(page(&mut c, h(None, Some(5), 10)), vec![1, 2, 3, 4]);
    // Past the end: the newest page (not an empty one).
    assert_eq!(page(&mut c, h(None, Some(1000), 3)), vec![28, 29, 30]);
    assert_eq!(
        page(&mut c, h(Some(25), None, 100)),
        vec![26, 27, 28, 29, 30]
    );
    assert_eq!(page(&mut c, h(Some(10), Some(14), 100)), vec![11, 12, 13]);
    c.send(&json!({"type":"HISTORY","after":3}));
    assert_eq!(c.recv_type("ERROR")["code"], "bad_request");

    let mut sub = Line::connect(node.addr);
    sub.send(&json!({"type":"SUBSCRIBE","from_seq":1,"rooms":["b","a"]}));
    let mut seqs = Vec::new();
    let mut per_room = std::collections::BTreeMap::new();
    while seqs.len() < 60 {
        let v = sub.recv_type("SEQ_CHAT");
        assert_ne!(v["room_id"], "c", "{v}");
        let n = per_room
            .entry(v["room_id"].as_str().unwrap().to_string())
            .or_insert(0);
        *n += 1;
        assert_eq!(v["room_seq"], *n, "{v}");
        seqs.push(v["seq_no"].as_u64().unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "global order: {seqs:?}"
    );
    let too_many: Vec<String> = (0..65).map(|i| format!("r{i}")).collect();
    sub.send(&json!({"type":"SUBSCRIBE","rooms":too_many}));
    assert_eq!(sub.recv_type("ERROR")["code"], "bad_request");
}

#[test]
fn people_join_rename_set_topics_and_are_online_while_connected() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    wait_leader(node.addr);
    let mut ann = Line::raw(node.addr);
    ann.send(&json!({"type":"HELLO","proto":2,"client":"t/0","user":"ann"}));
    assert_eq!(ann.recv_type("HELLO")["proto"], 2);
    ann.send(&json!({"type":"SUBSCRIBE","rooms":["general"]}));
    ann.send(&json!({"type":"JOIN","room_id":"#general","msg_id":"j1"}));
    assert_eq!(ann.recv_type("CHAT_ACK")["msg_id"], "j1");
    let ev = ann.recv_type("ROOM_EVENT");
    assert_eq!(
        (ev["event"].as_str(), ev["user"].as_str()),
        (Some("join"), Some("ann"))
    );
    // An unnamed session may not join; a bad room id is refused; both keep
    // the connection open.
    let mut anon = Line::connect(node.addr);
    anon.send(&json!({"type":"JOIN","room_id":"general"}));
    assert_eq!(anon.recv_type("ERROR")["code"], "bad_request");
    anon.send(&json!({"type":"NICK","name":"bad name"}));
    assert_eq!(anon.recv_type("ERROR")["code"], "bad_request");
    anon.send(&json!({"type":"NICK","name":"bob"}));
    anon.recv_type("CHAT_ACK");
    anon.send(&json!({"type":"JOIN","room_id":"general"}));
    anon.recv_type("CHAT_ACK");
    anon.send(&json!({"type":"TOPIC","room_id":"general","topic":"ship it"}));
    anon.recv_type("CHAT_ACK");
    anon.send(&json!({"type":"CHAT","msg_id":"m1","payload":"hi","user":"mallory"}));
    assert_eq!(
        anon.recv_type("CHAT_ACK")["seq_no"],
        1,
        "events take no number"
    );
    let seq = ann.recv_type("SEQ_CHAT");
    assert_eq!(seq["user"], "bob", "a named session posts under its name");
    anon.send(&json!({"type":"NICK","name":"rob","msg_id":"n1"}));
    anon.recv_type("CHAT_ACK");
    // (bob's join and topic came before the chat, skipped by recv_type.)
    let ev = ann.recv_type("ROOM_EVENT");
    assert_eq!(
        (ev["event"].as_str(), ev["user"].as_str()),
        (Some("nick"), Some("bob"))
    );
    assert_eq!(ev["name"], "rob");
    ann.send(&json!({"type":"WHO","room_id":"general"}));
    let who = ann.recv_type("WHO");
    assert_eq!(who["topic"], "ship it");
    assert_eq!(
        who["members"],
        json!([{"user":"ann","online":true},{"user":"rob","online":true}])
    );
    ann.send(&json!({"type":"LIST"}));
    assert_eq!(
        ann.recv_type("ROOMS")["rooms"],
        json!([{"room_id":"general","messages":1,"members":2,"online":2,"topic":"ship it"}])
    );
    // rob disconnects: still a member, no longer online.
    drop(anon);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        ann.send(&json!({"type":"WHO","room_id":"general"}));
        let who = ann.recv_type("WHO");
        if who["members"][1] == json!({"user":"rob","online":false}) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rob still online: {who}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
