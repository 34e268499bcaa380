//! End-to-end: three real `chorus node` processes (the binary under test) on
//! ephemeral loopback ports with temporary log dirs. A client sends the seed's
//! exact CHAT line, gets CHAT_ACK with a seq_no, and `chorus log inspect` on
//! every node's log_dir shows that same entry. Also: config errors are one
//! line, and a second node on the same log_dir is refused.
//! Every wait is bounded; only the processes started here are killed, by
//! their own Child handles.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

/// Child processes killed (by their own handle) when the test ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn write_configs(dir: &Path, ports: &[u16]) -> Vec<PathBuf> {
    (0..ports.len())
        .map(|i| {
            let id = i + 1;
            let mut text = format!(
                "node_id = {id}\nhost = \"127.0.0.1\"\nport = {}\nlog_dir = {:?}\n\
                 cluster_secret = \"e2e-secret\"\nheartbeat_interval_ms = 200\n\
                 leader_timeout_ms = 1000\nseed_nodes = [\n",
                ports[i],
                dir.join(format!("node{id}")).display().to_string()
            );
            for (j, p) in ports.iter().enumerate().filter(|&(j, _)| j != i) {
                text.push_str(&format!(
                    "  {{ node_id = {}, host = \"127.0.0.1\", port = {p} }},\n",
                    j + 1
                ));
            }
            text.push_str("]\n");
            let path = dir.join(format!("node{id}.toml"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

fn spawn_node(config: &Path, stderr: &Path) -> Child {
    Command::new(BIN)
        .args(["node", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("chorus node starts")
}

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Option<Client> {
        let w = TcpStream::connect(("127.0.0.1", port)).ok()?;
        w.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        let mut c = Client { w, r };
        // chorus's dialect (the seed's CHAT lines then get CHAT_ACKs).
        c.send(r#"{"type":"HELLO","proto":2,"client":"node_cluster-test/0"}"#);
        (c.recv()?["type"] == "HELLO").then_some(c)
    }
    fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }
    fn recv(&mut self) -> Option<Value> {
        let mut s = String::new();
        match self.r.read_line(&mut s) {
            Ok(n) if n > 0 => serde_json::from_str(&s).ok(),
            _ => None,
        }
    }
}

/// Polls STATUS on every node until all name the same leader (≤ 20 s).
fn wait_for_leader(ports: &[u16]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let leaders: Vec<Option<u64>> = ports
            .iter()
            .map(|&p| {
                let mut c = Client::connect(p)?;
                c.send(r#"{"type":"STATUS"}"#);
                c.recv()?["leader"].as_u64()
            })
            .collect();
        if let Some(Some(l)) = leaders.first() {
            if leaders.iter().all(|x| *x == Some(*l)) {
                return *l;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no common leader within 20 s");
}

fn inspect(dir: &Path) -> Output {
    Command::new(BIN)
        .args(["log", "inspect"])
        .arg(dir)
        .output()
        .unwrap()
}

fn dump_logs(dir: &Path) {
    for i in 1..=3 {
        let p = dir.join(format!("node{i}.stderr"));
        eprintln!(
            "--- {}:\n{}",
            p.display(),
            std::fs::read_to_string(&p).unwrap_or_default()
        );
    }
}

#[test]
fn three_nodes_sequence_a_seed_chat_line_and_every_log_has_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ports = free_ports(3);
    let configs = write_configs(dir, &ports);
    let mut procs = Procs(Vec::new());
    for (i, c) in configs.iter().enumerate() {
        procs
            .0
            .push(spawn_node(c, &dir.join(format!("node{}.stderr", i + 1))));
    }
    let leader = wait_for_leader(&ports);
    assert_eq!(leader, 3, "Bully: the highest id leads");

    // Through a follower: the chat is forwarded, sequenced, acknowledged.
    let mut c = Client::connect(ports[0]).unwrap();
    let msg_id = "0b9e7c1e-6c61-4a43-9a4e-6d1f7f1f0d11";
    c.send(&format!(
        r#"{{"type":"CHAT","sender_id":9999,"term":0,"room_id":"general","msg_id":"{msg_id}","payload":"hi"}}"#
    ));
    let ack = c.recv().unwrap_or_else(|| {
        dump_logs(dir);
        panic!("no CHAT_ACK")
    });
    assert_eq!(ack["type"], "CHAT_ACK", "{ack}");
    assert_eq!(ack["msg_id"], msg_id);
    let seq = ack["seq_no"].as_u64().expect("seq_no");
    assert_eq!(
        seq, 1,
        "a fresh cluster's first chat is #1 (the no-op takes no number)"
    );

    let expected = json!({"seq_no": seq, "msg_id": msg_id, "room_id": "general", "sender": 9999, "payload": "hi"});
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 1..=3 {
        let log_dir = dir.join(format!("node{i}"));
        loop {
            let out = inspect(&log_dir);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lines: Vec<Value> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let found = lines.iter().any(|l| {
                ["seq_no", "msg_id", "room_id", "sender", "payload"]
                    .iter()
                    .all(|k| l[k] == expected[k])
            });
            if found {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node{i}'s log lacks the entry after 10 s: {lines:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // The log_dir is locked: a second node on node 1's directory is refused.
    let dup = dir.join("dup.toml");
    let text = std::fs::read_to_string(&configs[0]).unwrap().replace(
        &format!("port = {}", ports[0]),
        &format!("port = {}", free_ports(1)[0]),
    );
    std::fs::write(&dup, text).unwrap();
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&dup)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is in use by another chorus node"), "{err}");
}

#[test]
fn config_errors_are_one_line_and_say_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, text: &str| -> String {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        let out = Command::new(BIN)
            .args(["node", "--config"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        let last = err.lines().last().unwrap_or("").to_string();
        assert!(last.starts_with("error: "), "{err}");
        last
    };
    let base = "node_id = 1\nhost = \"127.0.0.1\"\nport = PORT\nlog_dir = \"LOG\"\n";
    let port = free_ports(1)[0];
    let log = tmp.path().join("n1");
    let ok = base
        .replace("PORT", &port.to_string())
        .replace("LOG", &log.display().to_string());

    let e = run("a.toml", &format!("{ok}colour = \"red\"\n"));
    assert!(e.contains("unknown field `colour`"), "{e}");
    let e = run(
        "b.toml",
        &format!("{ok}seed_nodes = [{{node_id = 2, host = \"127.0.0.1\", port = 1}}, {{node_id = 2, host = \"127.0.0.1\", port = 2}}]\n"),
    );
    assert!(e.contains("node_id 2 appears twice"), "{e}");

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let e = run(
        "c.toml",
        &base
            .replace("PORT", &busy_port.to_string())
            .replace("LOG", &log.display().to_string()),
    );
    assert!(e.contains("port is in use"), "{e}");
    drop(busy);

    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let e = run(
        "d.toml",
        &base
            .replace("PORT", &port.to_string())
            .replace("LOG", &file.join("sub").display().to_string()),
    );
    assert!(
        e.contains("is not usable") && e.contains("writable directory"),
        "{e}"
    );
}
