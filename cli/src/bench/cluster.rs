//! A throwaway local cluster for `chorus bench`: `chorus node` child processes
//! of the current executable, one temporary data directory each (fsync on, as
//! in production), free loopback ports, and a shared random cluster secret.
//!
//! Invariants: only processes this struct spawned are ever signalled (by their
//! own `Child` handle); every child is killed and reaped on drop, and the
//! temporary directory is removed unless `keep` is set.

use super::proto;
use anyhow::{bail, Context, Result};
use chorus_core::client_wire::NodeStatus;
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Linux reports process CPU time in USER_HZ ticks, 100 per second on every
/// mainstream architecture (it is a fixed ABI value, unlike the kernel's HZ).
const TICKS_PER_S: f64 = 100.0;

/// CPU and memory of one process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    /// User + system CPU time since the process started.
    pub cpu_s: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_kib: u64,
}

/// Seconds a process has spent runnable but waiting for a CPU
/// (/proc/PID/schedstat, second field): on a shared box, how much of a
/// latency figure is other processes' load.
pub fn run_queue_wait_s(pid: u32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// The 1-minute load average of the machine.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The current resident set size (VmRSS) of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Reads /proc/PID/stat and /proc/PID/status; None if the process is gone.
pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at `state`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcStats {
        cpu_s: (utime + stime) as f64 / TICKS_PER_S,
        peak_rss_kib,
    })
}

/// One node of the local cluster.
#[derive(Debug)]
pub struct NodeProc {
    pub id: u64,
    pub addr: SocketAddr,
    /// The HTTP port, when the bench serves HTTP (`serve_http`).
    pub http: Option<SocketAddr>,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Last stats read while the process was alive (kept across a kill).
    pub last_stats: Option<ProcStats>,
}

impl NodeProc {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Fresh stats (and remembers them for after a kill).
    pub fn stats(&mut self) -> Option<ProcStats> {
        let s = proc_stats(self.pid()?)?;
        self.last_stats = Some(s);
        Some(s)
    }
}

/// A local cluster of `chorus node` processes.
#[derive(Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub nodes: Vec<NodeProc>,
    exe: PathBuf,
    keep: bool,
    /// `--record`: nodes record into `dir/rec/nodeN`.
    record: bool,
}

/// Whether started nodes get an HTTP port (`chorus bench --http`); set once
/// by `bench::run` before any cluster starts.
static SERVE_HTTP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn serve_http(on: bool) {
    SERVE_HTTP.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Config lines every started node gets on top of the bench's own (the
/// fan-out bench raises the connection limits); set once before any start.
static EXTRA_CONFIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn extra_config(lines: &str) {
    let _ = EXTRA_CONFIG.set(lines.to_string());
}

/// A port the kernel just handed out on 127.0.0.1 (free at the time of asking).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(l.local_addr()?.port())
}

fn config_toml(
    me: usize,
    ports: &[u16],
    http_port: Option<u16>,
    hb_ms: u64,
    lt_ms: u64,
    dir: &Path,
    secret: &str,
) -> String {
    let mut s = String::new();
    let id = me + 1;
    let _ = writeln!(
        s,
        "node_id = {id}\nhost = \"127.0.0.1\"\nport = {}",
        ports[me]
    );
    let _ = writeln!(
        s,
        "heartbeat_interval_ms = {hb_ms}\nleader_timeout_ms = {lt_ms}"
    );
    let _ = writeln!(
        s,
        "log_dir = {:?}",
        dir.join(format!("n{id}")).display().to_string()
    );
    if let Some(p) = http_port {
        let _ = writeln!(s, "http_port = {p}");
    }
    if let Some(extra) = EXTRA_CONFIG.get() {
        s.push_str(extra);
    }
    let _ = writeln!(s, "cluster_secret = \"{secret}\"\nseed_nodes = [");
    for (i, p) in ports.iter().enumerate().filter(|&(i, _)| i != me) {
        let _ = writeln!(
            s,
            "  {{ node_id = {}, host = \"127.0.0.1\", port = {p} }},",
            i + 1
        );
    }
    s.push_str("]\n");
    if let Some(tls) = proto::tls_section(id as u64) {
        s.push_str(&tls);
    }
    s
}

impl Cluster {
    /// Writes configs and starts `n` nodes with the given timings.
    pub fn start(n: usize, hb_ms: u64, lt_ms: u64, keep: bool, record: bool) -> Result<Cluster> {
        if !(1..=9).contains(&n) {
            bail!("--nodes must be between 1 and 9");
        }
        let exe = std::env::current_exe().context("cannot find the chorus executable")?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("chorus-bench-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let secret = format!("bench-{:x}{:x}", std::process::id(), nanos);
        let mut ports = Vec::new();
        while ports.len() < n {
            let p = free_port()?;
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let mut cluster = Cluster {
            dir: dir.clone(),
            nodes: Vec::new(),
            exe,
            keep,
            record,
        };
        for i in 0..n {
            let config = dir.join(format!("node{}.toml", i + 1));
            let http_port = if SERVE_HTTP.load(std::sync::atomic::Ordering::SeqCst) {
                Some(free_port()?)
            } else {
                None
            };
            let text = config_toml(i, &ports, http_port, hb_ms, lt_ms, &dir, &secret);
            fs::write(&config, text)?;
            cluster.nodes.push(NodeProc {
                id: i as u64 + 1,
                addr: SocketAddr::from(([127, 0, 0, 1], ports[i])),
                http: http_port.map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
                config,
                log: dir.join(format!("node{}.log", i + 1)),
                child: None,
                last_stats: None,
            });
        }
        for i in 0..n {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Starts `n` nodes and waits for an agreed leader. A node can lose the
    /// race for its free port to another process between our probe and its
    /// bind, so a failed start is retried (twice) on fresh ports.
    pub fn start_elected(
        n: usize,
        hb_ms: u64,
        lt_ms: u64,
        keep: bool,
        record: bool,
    ) -> Result<(Cluster, usize, NodeStatus)> {
        let mut attempt = 1;
        loop {
            let mut c = Cluster::start(n, hb_ms, lt_ms, keep, record)?;
            match c.wait_for_leader(Duration::from_secs(30)) {
                Ok((i, st)) => return Ok((c, i, st)),
                Err(e) if attempt < 3 => {
                    eprintln!("bench: cluster start failed ({e:#}); retrying on fresh ports");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("node");
        if self.record {
            cmd.arg("--record")
                .arg(self.dir.join("rec").join(format!("node{}", node.id)));
        }
        let child = cmd
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} node", self.exe.display()))?;
        node.child = Some(child);
        Ok(())
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// SIGKILL (no clean shutdown: the crash we want to measure), then reap.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.stats();
        if let Some(mut c) = node.child.take() {
            c.kill().context("kill")?;
            c.wait().context("wait")?;
        }
        Ok(())
    }

    /// SIGTERM (a clean stop), reaped within `grace`, else SIGKILL. Returns
    /// true if it stopped by itself.
    pub fn terminate(&mut self, i: usize, grace: Duration) -> Result<bool> {
        let node = &mut self.nodes[i];
        node.stats();
        let Some(mut c) = node.child.take() else {
            return Ok(true);
        };
        let pid = rustix::process::Pid::from_raw(c.id() as i32).context("bad pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("SIGTERM")?;
        let t = std::time::Instant::now();
        while t.elapsed() < grace {
            if c.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        c.kill().context("kill")?;
        c.wait().context("wait")?;
        Ok(false)
    }

    /// SIGSTOP: the process hangs with its connections open, so peers must
    /// notice by timeout (a hung or cut-off machine, not a crashed process).
    pub fn pause(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.stats();
        let pid = node.pid().context("node is not running")?;
        let pid = rustix::process::Pid::from_raw(pid as i32).context("bad pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).context("SIGSTOP")?;
        Ok(())
    }

    /// Starts a killed node again on its data directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].is_running() {
            bail!("node {} is still running", self.nodes[i].id);
        }
        self.spawn(i)
    }

    /// Fails early, with the node's log, if a child exited on its own.
    pub fn check_alive(&mut self) -> Result<()> {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    n.child = None;
                    let tail = fs::read_to_string(&n.log).unwrap_or_default();
                    let tail: Vec<&str> = tail.lines().rev().take(15).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    bail!(
                        "node n{} exited ({st}); last lines of {}:\n{}",
                        n.id,
                        n.log.display(),
                        tail.join("\n")
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits until every running node answers STATUS and they agree on one
    /// leader; returns the leader's index and status.
    pub fn wait_for_leader(&mut self, timeout: Duration) -> Result<(usize, NodeStatus)> {
        let deadline = Instant::now() + timeout;
        let mut last_err = String::from("no answer yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            match self.agreed_leader() {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => last_err = "no agreed leader yet".into(),
                Err(e) => last_err = format!("{e:#}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "no leader within {:?} ({last_err}); node logs are in {}",
            timeout,
            self.dir.display()
        )
    }

    fn agreed_leader(&self) -> Result<Option<(usize, NodeStatus)>> {
        let mut leader = None;
        let mut views = Vec::new();
        for (i, n) in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_running())
        {
            let st = proto::status(n.addr, Duration::from_millis(500))?;
            if st.role == "leader" {
                leader = Some((i, st.clone()));
            }
            views.push(st.leader);
        }
        Ok(leader.filter(|(i, _)| views.iter().all(|v| *v == Some(self.nodes[*i].id))))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if self.keep {
            eprintln!(
                "bench: kept the cluster's data and logs in {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_other_node_as_seed() {
        let t = config_toml(
            1,
            &[7001, 7002, 7003],
            None,
            100,
            1000,
            Path::new("/d"),
            "s",
        );
        assert!(t.starts_with("node_id = 2\nhost = \"127.0.0.1\"\nport = 7002\n"));
        assert!(t.contains("heartbeat_interval_ms = 100\nleader_timeout_ms = 1000\n"));
        assert!(t.contains("log_dir = \"/d/n2\"\n"));
        assert!(t.contains("{ node_id = 1, host = \"127.0.0.1\", port = 7001 },"));
        assert!(t.contains("{ node_id = 3, host = \"127.0.0.1\", port = 7003 },"));
        assert!(!t.contains("node_id = 2,"));
    }

    #[test]
    fn own_process_stats_are_readable() {
        let s = proc_stats(std::process::id()).expect("own /proc entry");
        assert!(s.peak_rss_kib > 0);
    }
}
