//! Disk faults against the real `chorus node` binary: a torn record at the
//! log's tail, a flipped bit in the middle, a full disk (ENOSPC on write) and
//! a failing fdatasync (EIO). The write faults are injected with
//! `strace -e inject=…` on the log file only (`-P`); these tests are skipped,
//! saying so, where strace is missing (`.ci/run` installs it).
//!
//! Promises checked: a torn tail is cut at restart and nothing acknowledged
//! is lost; mid-file corruption stops the node with an error naming the file,
//! the byte offset and `chorus log repair`, which fixes it, after which the
//! node catches up from the cluster; ENOSPC and EIO stop the node (exit 1,
//! a clear error) and every message acknowledged before is in the log after
//! a restart without the fault. Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::Conn;
use chorus_core::record::{self, Record};
use chorus_core::{Body, Chat, Entry, Seq, Term};
use cluster::{free_ports, status, temp_dir, Cluster};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A one-node cluster (it elects itself), optionally run under a prefix
/// command such as strace.
struct Solo {
    dir: PathBuf,
    port: u16,
    config: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
}

impl Solo {
    fn new(tag: &str) -> Solo {
        let dir = temp_dir(tag);
        let port = free_ports(1)[0];
        let config = dir.join("node1.toml");
        let text = format!(
            "node_id = 1\nhost = \"127.0.0.1\"\nport = {port}\nlog_dir = \"{}\"\n\
             cluster_secret = \"test-secret\"\nheartbeat_interval_ms = 100\nleader_timeout_ms = 600\n",
            dir.join("node1").display()
        );
        fs::write(&config, text).unwrap();
        Solo {
            stderr: dir.join("node1.stderr"),
            dir,
            port,
            config,
            child: None,
        }
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("node1")
    }

    fn log_file(&self) -> PathBuf {
        self.log_dir().join("chorus.log")
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn start(&mut self, prefix: &[String]) {
        let log = fs::File::create(&self.stderr).unwrap();
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(env!("CARGO_BIN_EXE_chorus"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_chorus")),
        };
        cmd.args(["node", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start chorus node"));
    }

    fn wait_leader(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if status(&self.addr(), Duration::from_millis(500)).is_some_and(|s| s.role == "leader")
            {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader within 15 s\n{}", self.stderr_text());
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL the node (under strace: the node itself first, then strace,
    /// so no node is ever left running detached).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let p = c.id();
            let kids =
                fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            for k in kids
                .split_whitespace()
                .filter_map(|k| k.parse::<i32>().ok())
            {
                if let Some(pid) = rustix::process::Pid::from_raw(k) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Solo {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// One CHAT on `c`; its ack's seq_no, or None once the node stops answering.
fn try_chat(c: &mut Conn, msg_id: &str) -> Option<u64> {
    c.send(&chat::chat(msg_id, &format!("p-{msg_id}"))).ok()?;
    loop {
        match c.recv(Duration::from_secs(5)) {
            Ok(Some(v)) if v["type"] == "CHAT_ACK" && v["msg_id"] == msg_id => {
                return v["seq_no"].as_u64()
            }
            Ok(Some(v)) if v["type"] == "ERROR" => return None,
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

fn connect(addr: &str) -> Conn {
    Conn::connect(addr).expect("connect")
}

/// Every acknowledged message is in the log of `dir` (read by `chorus log
/// inspect`) at its acknowledged seq_no, and no msg_id appears twice.
fn assert_all_acked_present(dir: &Path, acked: &BTreeMap<String, u64>) -> Vec<serde_json::Value> {
    let log = logs::inspect(dir, false).unwrap();
    logs::check_exactly_once(&log).unwrap();
    logs::check_acked(&log, acked).unwrap();
    log
}

fn has_strace() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: strace is not installed (apt-get install -y strace)");
    }
    ok
}

#[test]
fn a_torn_tail_is_cut_at_restart_and_nothing_acknowledged_is_lost() {
    let mut n = Solo::new("torn");
    n.start(&[]);
    n.wait_leader();
    let mut c = connect(&n.addr());
    let acked: BTreeMap<String, u64> = (0..5)
        .map(|i| {
            let id = format!("torn-{i}");
            let seq = try_chat(&mut c, &id).expect("acked");
            (id, seq)
        })
        .collect();
    let last = acked.values().max().copied().unwrap();
    n.kill();
    let good_len = fs::metadata(n.log_file()).unwrap().len();
    // Half of a well-formed record: a write the crash interrupted.
    let mut rec = Vec::new();
    record::encode(
        &Record::Entry(Entry {
            seq_no: Seq(last + 1),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: "never-acked".into(),
                room_id: "general".into(),
                sender_id: 0,
                user: None,
                payload: "half written".into(),
                ts_ms: 0,
                event: None,
            }),
        }),
        &mut rec,
    );
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(n.log_file())
        .unwrap();
    f.write_all(&rec[..rec.len() / 2]).unwrap();
    drop(f);
    n.start(&[]);
    n.wait_leader();
    assert!(
        n.stderr_text().contains("cut a torn tail"),
        "{}",
        n.stderr_text()
    );
    assert!(fs::metadata(n.log_file()).unwrap().len() >= good_len);
    let mut c = connect(&n.addr());
    let after = try_chat(&mut c, "after-restart").expect("serves again");
    assert!(after > last);
    n.kill();
    let log = assert_all_acked_present(&n.log_dir(), &acked);
    assert!(!log.iter().any(|e| e["msg_id"] == "never-acked"));
}

#[test]
fn a_flipped_bit_stops_the_node_and_log_repair_lets_it_catch_up() {
    let mut cl = Cluster::start(3);
    let leader = cl.wait_for_leader(Duration::from_secs(20));
    let mut c = connect(&cl.addr(leader));
    let acked: BTreeMap<String, u64> = (0..40)
        .map(|i| {
            let id = format!("flip-{i}");
            let seq = try_chat(&mut c, &id).expect("acked");
            (id, seq)
        })
        .collect();
    let victim = (leader + 1) % 3;
    let dir = cl.log_dir(victim);
    // Let the victim persist everything, then crash it.
    thread::sleep(Duration::from_millis(800));
    cl.kill(victim);
    let path = dir.join("chorus.log");
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    fs::write(&path, &bytes).unwrap();

    cl.restart(victim);
    let stderr = &cl.nodes[victim].stderr_path;
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = fs::read_to_string(stderr).unwrap_or_default();
        if t.contains("corrupt at byte offset") || Instant::now() > deadline {
            break t;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        text.contains("chorus.log is corrupt at byte offset"),
        "{text}"
    );
    assert!(text.contains("chorus log repair"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cl.is_running(victim) {
        assert!(Instant::now() < deadline, "a corrupt node keeps running");
        thread::sleep(Duration::from_millis(20));
    }
    cl.kill(victim);

    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["log", "repair"])
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("cut at byte offset"), "{said}");
    let cut: u64 = said
        .split("cut at byte offset ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(cut <= mid as u64 && cut > 0, "cut {cut}, flipped {mid}");
    assert_eq!(fs::metadata(&path).unwrap().len(), cut);

    cl.restart(victim);
    let want = acked.values().max().copied().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&cl.addr(victim), Duration::from_millis(500)).is_none_or(|s| s.commit_seq < want) {
        assert!(Instant::now() < deadline, "no catch-up\n{}", cl.logs());
        thread::sleep(Duration::from_millis(100));
    }
    cl.kill(victim);
    assert_all_acked_present(&dir, &acked);
}

/// The command prefix that runs a node under strace, tampering (`inject`)
/// only with the syscalls on `log` that `trace` selects, in every thread.
fn strace_prefix(log: &Path, trace: &str, inject: &str) -> Vec<String> {
    let log = log.display().to_string();
    [
        "strace",
        "-f",
        "-qq",
        "-e",
        trace,
        "-e",
        inject,
        "-P",
        &log,
        "-o",
        "/dev/null",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs a one-node cluster under `strace` injecting `fault` into the log
/// file's syscalls, chats until the node stops answering, and checks the
/// promises of a persistence failure.
fn persistence_failure(tag: &str, trace: &str, inject: &str, expect: &str) {
    if !has_strace() {
        return;
    }
    let mut n = Solo::new(tag);
    n.start(&strace_prefix(&n.log_file(), trace, inject));
    n.wait_leader();
    let mut c = connect(&n.addr());
    let mut acked = BTreeMap::new();
    for i in 0..500 {
        let id = format!("{tag}-{i}");
        match try_chat(&mut c, &id) {
            Some(seq) => acked.insert(id, seq),
            None => break,
        };
    }
    assert!(!acked.is_empty(), "the fault came before any ack");
    assert!(acked.len() < 500, "the fault was never injected");
    let st = n
        .wait_exit(Duration::from_secs(10))
        .expect("the node stops on a persistence failure");
    let text = n.stderr_text();
    assert_eq!(st.code(), Some(1), "{text}");
    assert!(text.contains(expect), "{text}");
    assert!(
        text.contains("chorus.log"),
        "the error names the file: {text}"
    );

    // Without the fault: everything acknowledged before it is there.
    n.start(&[]);
    n.wait_leader();
    let mut c = connect(&n.addr());
    for (id, seq) in &acked {
        assert_eq!(
            try_chat(&mut c, id),
            Some(*seq),
            "{id}: a retry gets its original seq"
        );
    }
    n.kill();
    assert_all_acked_present(&n.log_dir(), &acked);
}

#[test]
fn enospc_on_write_stops_the_node_and_loses_nothing_acknowledged() {
    persistence_failure(
        "enospc",
        "trace=write",
        "inject=write:error=ENOSPC:when=12+",
        "No space left on device",
    );
}

#[test]
fn eio_on_fdatasync_stops_the_node_and_loses_nothing_acknowledged() {
    persistence_failure(
        "eio",
        "trace=fdatasync",
        "inject=fdatasync:error=EIO:when=8+",
        "Input/output error",
    );
}

/// The fsync runs on its own thread: while a (deliberately 400 ms slow)
/// fdatasync is in progress, the node still answers other clients at once,
/// and the chat it is making durable is acknowledged only after it returns.
#[test]
fn a_slow_fsync_delays_the_acknowledgement_but_not_the_event_loop() {
    if !has_strace() {
        return;
    }
    const DELAY: Duration = Duration::from_millis(400);
    let mut n = Solo::new("slowsync");
    let inject = format!("inject=fdatasync:delay_exit={}", DELAY.as_micros());
    n.start(&strace_prefix(&n.log_file(), "trace=fdatasync", &inject));
    n.wait_leader();
    // Let the election's own (slow) fsyncs finish first.
    thread::sleep(DELAY * 2);
    let mut c = connect(&n.addr());
    let sent = Instant::now();
    c.send(&chat::chat("slow-1", "p")).unwrap();
    thread::sleep(Duration::from_millis(50));
    let asked = Instant::now();
    let s = status(&n.addr(), Duration::from_secs(2)).expect("STATUS answered during the fsync");
    let status_took = asked.elapsed();
    assert_eq!(s.role, "leader");
    let ack = c.recv_type("CHAT_ACK", Duration::from_secs(10));
    let ack_took = sent.elapsed();
    assert_eq!(ack["msg_id"], "slow-1");
    assert!(
        ack_took >= DELAY - Duration::from_millis(20),
        "acknowledged after {ack_took:?}, before the {DELAY:?} fdatasync returned\n{}",
        n.stderr_text()
    );
    assert!(
        status_took < DELAY / 2,
        "STATUS took {status_took:?}: the event loop waited for the fsync\n{}",
        n.stderr_text()
    );
    let seq = ack["seq_no"].as_u64().unwrap();
    n.kill();
    assert_all_acked_present(&n.log_dir(), &BTreeMap::from([("slow-1".to_string(), seq)]));
}
