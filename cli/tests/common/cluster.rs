//! A real local cluster for end-to-end tests: N `chorus node` processes (the
//! binary under test) on ephemeral loopback ports, each with its own data
//! directory under a per-test temporary directory (removed on success, kept
//! and printed on failure). Nodes are crashed with SIGKILL through their own
//! Child handles; Drop kills every node this helper started, and nothing else.
#![allow(dead_code)]

use chorus_core::client_wire::{ClientLine, NodeStatus, ServerLine};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Timings used by test clusters: faster than the defaults so failover tests
/// stay short, slow enough for a loaded 2-core CI machine.
pub const HEARTBEAT_MS: u64 = 200;
pub const LEADER_TIMEOUT_MS: u64 = 1200;

/// A cluster's failure-detection timings (the config keys of the same names).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub heartbeat_interval_ms: u64,
    pub leader_timeout_ms: u64,
}

impl Timing {
    /// `HEARTBEAT_MS` / `LEADER_TIMEOUT_MS`.
    pub const TEST: Timing = Timing {
        heartbeat_interval_ms: HEARTBEAT_MS,
        leader_timeout_ms: LEADER_TIMEOUT_MS,
    };
    /// 100 / 1000: end-to-end failover tests that stay short.
    pub const FAST: Timing = Timing {
        heartbeat_interval_ms: 100,
        leader_timeout_ms: 1000,
    };
    /// The defaults of `chorus node` (800 / 2500), for measurements.
    pub const DEFAULT: Timing = Timing {
        heartbeat_interval_ms: 800,
        leader_timeout_ms: 2500,
    };
}

#[derive(Debug)]
pub struct TestNode {
    pub id: u64,
    pub port: u16,
    /// The node's HTTP port (`Cluster::start_with_http`).
    pub http_port: Option<u16>,
    /// The node's IRC port (`Cluster::start_with_irc`).
    pub irc_port: Option<u16>,
    pub config: PathBuf,
    pub stderr_path: PathBuf,
    child: Option<Child>,
}

/// Which ports each node of a test cluster listens on.
#[derive(Clone, Copy, Debug)]
enum Ports {
    Peer,
    Http,
    HttpIrc,
}

#[derive(Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub nodes: Vec<TestNode>,
    pub timing: Timing,
    /// `chorus node --record DIR/nodeN` for every node (`start_recorded`).
    pub record: Option<PathBuf>,
}

/// Held by a test for its whole run so tests of one binary that take free
/// ports do not run at once: `free_ports` releases its ports before the
/// nodes bind them, and a parallel test could be handed the same ones.
#[allow(dead_code)] // not every test binary uses it
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("chorus-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` distinct free ports (bound together, then released: a small race
/// with other processes is accepted in tests).
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl Cluster {
    /// Starts `n` nodes and returns without waiting for a leader.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, Timing::TEST)
    }

    /// Starts `n` nodes with `timing`, without waiting for a leader.
    pub fn start_with(n: usize, timing: Timing) -> Cluster {
        Cluster::start_with_config(n, timing, "")
    }

    /// `start_with`, adding `extra` (top-level TOML keys) to every config.
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with_config(n: usize, timing: Timing, extra: &str) -> Cluster {
        Cluster::start_ports(n, timing, extra, Ports::Peer, false)
    }

    /// `start_with_http`, each node also running the IRC gateway on a free port.
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with_irc(n: usize, timing: Timing, extra: &str) -> Cluster {
        Cluster::start_ports(n, timing, extra, Ports::HttpIrc, false)
    }

    /// `start_with`, every node recording into `dir/rec/nodeN`.
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_recorded(n: usize, timing: Timing) -> Cluster {
        Cluster::start_ports(n, timing, "", Ports::Peer, true)
    }

    /// `start_with_config`, each node also serving HTTP on a free port.
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with_http(n: usize, timing: Timing, extra: &str) -> Cluster {
        Cluster::start_ports(n, timing, extra, Ports::Http, false)
    }

    fn start_ports(n: usize, timing: Timing, extra: &str, with: Ports, record: bool) -> Cluster {
        let dir = temp_dir("cluster");
        let kinds = match with {
            Ports::Peer => 1,
            Ports::Http => 2,
            Ports::HttpIrc => 3,
        };
        let all = free_ports(kinds * n);
        let (ports, rest) = all.split_at(n);
        let (http_ports, irc_ports) = rest.split_at(rest.len().min(n));
        let mut nodes = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let config = dir.join(format!("node{id}.toml"));
            let mut text = format!(
                "node_id = {id}\nhost = \"127.0.0.1\"\nport = {port}\nlog_dir = \"{}\"\n\
                 cluster_secret = \"test-secret\"\nheartbeat_interval_ms = {}\n\
                 leader_timeout_ms = {}\n",
                dir.join(format!("node{id}")).display(),
                timing.heartbeat_interval_ms,
                timing.leader_timeout_ms,
            );
            text.push_str(extra);
            let http_port = http_ports.get(i).copied();
            if let Some(h) = http_port {
                text.push_str(&format!("http_port = {h}\n"));
            }
            let irc_port = irc_ports.get(i).copied();
            if let Some(p) = irc_port {
                text.push_str(&format!("irc_port = {p}\n"));
            }
            for (j, p) in ports.iter().enumerate() {
                if j != i {
                    text.push_str(&format!(
                        "\n[[seed_nodes]]\nnode_id = {}\nhost = \"127.0.0.1\"\nport = {p}\n",
                        j + 1
                    ));
                }
            }
            fs::write(&config, text).unwrap();
            nodes.push(TestNode {
                id,
                port,
                http_port,
                irc_port,
                config,
                stderr_path: dir.join(format!("node{id}.log")),
                child: None,
            });
        }
        let record = record.then(|| dir.join("rec"));
        let mut c = Cluster {
            dir,
            nodes,
            timing,
            record,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let record = self
            .record
            .as_ref()
            .map(|r| r.join(format!("node{}", self.nodes[i].id)));
        let node = &mut self.nodes[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.stderr_path)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chorus"));
        cmd.arg("node");
        if let Some(r) = record {
            cmd.arg("--record").arg(r);
        }
        let child = cmd
            .arg("--config")
            .arg(&node.config)
            // These tests check durability: never the chaos harness's unsafe mode.
            .env_remove("CHORUS_UNSAFE_ACK_BEFORE_FSYNC")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start chorus node");
        node.child = Some(child);
    }

    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every address but node `i`'s, comma-separated (for --peers).
    pub fn peers_except(&self, i: usize) -> String {
        (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(|j| self.addr(j))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL (a crash); waits until the process is gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    /// SIGSTOP: node `i` freezes with its sockets open (a hung process or
    /// an unreachable host: peers see no connection loss, only silence).
    pub fn pause(&self, i: usize) {
        self.signal(i, rustix::process::Signal::STOP);
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self, i: usize) {
        self.signal(i, rustix::process::Signal::CONT);
    }

    fn signal(&self, i: usize, sig: rustix::process::Signal) {
        let child = self.nodes[i].child.as_ref().expect("node runs");
        let pid = rustix::process::Pid::from_child(child);
        rustix::process::kill_process(pid, sig).expect("signal our own child");
    }

    /// Starts node `i` again after a `kill` (no-op if it runs).
    pub fn start_node(&mut self, i: usize) {
        if self.nodes[i].child.is_none() {
            self.spawn(i);
        }
    }

    /// Whether node `i` was started and has not exited.
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Node `i`'s `log_dir`.
    pub fn log_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{}", self.nodes[i].id))
    }

    pub fn status(&self, i: usize) -> Option<NodeStatus> {
        status(&self.addr(i), Duration::from_millis(500))
    }

    /// Polls node `i`'s STATUS until `pred` holds; panics after `timeout`
    /// with the last answer and the node logs.
    pub fn wait_status(
        &self,
        i: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&NodeStatus) -> bool,
    ) -> NodeStatus {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.status(i);
            if let Some(st) = last.as_ref().filter(|st| pred(st)) {
                return st.clone();
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "node {}: not {what} within {timeout:?}; last STATUS {last:?}\n{}",
            i + 1,
            self.logs()
        );
    }

    /// The process id of node `i`, if it runs.
    #[allow(dead_code)] // not every test reads it
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Index of the node a majority of live nodes follow, once it says it
    /// leads; panics (with the node logs) after `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let majority = self.nodes.len() / 2 + 1;
        while Instant::now() < deadline {
            let st: Vec<_> = (0..self.nodes.len())
                .filter_map(|i| self.status(i))
                .collect();
            for s in &st {
                let agree = st.iter().filter(|o| o.leader == Some(s.node_id)).count();
                if s.role == "leader" && agree >= majority {
                    return s.node_id as usize - 1;
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("no leader within {timeout:?}\n{}", self.logs());
    }

    /// Every node's stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let text = fs::read_to_string(&n.stderr_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!(
                "--- node {} ({})\n",
                n.id,
                n.stderr_path.display()
            ));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if thread::panicking() {
            eprintln!("cluster files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// One STATUS round trip to `addr`.
pub fn status(addr: &str, timeout: Duration) -> Option<NodeStatus> {
    let sock = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut line = chorus_core::client_wire::hello_line("chorus-tests/0").into_bytes();
    line.push(b'\n');
    line.extend(serde_json::to_vec(&ClientLine::Status {}).ok()?);
    line.push(b'\n');
    s.write_all(&line).ok()?;
    let mut r = BufReader::new(s);
    for _ in 0..50 {
        let mut buf = String::new();
        if r.read_line(&mut buf).ok()? == 0 {
            return None;
        }
        if let Ok(ServerLine::Status(st)) = serde_json::from_str(&buf) {
            return Some(st);
        }
    }
    None
}
