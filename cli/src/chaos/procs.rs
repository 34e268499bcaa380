//! The harness's `chorus node` processes: one per namespace, started with
//! `ip netns exec` (which execs, so the child's PID is the node's), crashed
//! with SIGKILL, paused with SIGSTOP/SIGCONT, always through the PID of a
//! `Child` this harness spawned. `Drop` kills every node still running.
//! With power-loss faults on, each node runs under strace (`durable.rs`):
//! the Child is then strace and the node is its only child process, found
//! in `/proc/<strace>/task/<strace>/children`.

use super::durable;
use super::netns::{node_ip, ns_name};
use anyhow::{Context, Result};
use rustix::process::{kill_process, Pid, Signal};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Every node listens on this port inside its own namespace.
pub const NODE_PORT: u16 = 7000;

/// Timings of the chaos cluster (fast failure detection, so that many faults
/// fit in a short run: each fault that costs an election costs the run about
/// a leaderless second, and the leader faults wait for a leader; still slow
/// enough for 5 traced nodes on 2 loaded cores, where 150/1000 ms made half
/// as many elections fit and 45/450 ms keeps the terms seen close to the
/// elections the faults force).
pub const HEARTBEAT_MS: u64 = 45;
pub const LEADER_TIMEOUT_MS: u64 = 450;

#[derive(Debug)]
pub struct NodeProc {
    pub id: u64,
    pub log_dir: PathBuf,
    config: PathBuf,
    stderr_path: PathBuf,
    child: Option<Child>,
    /// Stopped with SIGSTOP (and not yet continued).
    pub paused: bool,
    /// How many times this node was started.
    pub starts: u32,
    /// The log's length when this incarnation started.
    start_len: u64,
    /// Each segment's length when this incarnation started (segmented runs).
    start_lens: BTreeMap<String, u64>,
    /// This incarnation's strace output (traced nodes only).
    trace: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Nodes {
    pub nodes: Vec<NodeProc>,
    exe: PathBuf,
    unsafe_ack: bool,
    unsafe_skip_fsync: bool,
    /// Run nodes under strace so power loss can be emulated.
    traced: bool,
    /// Small segments (`--log-segment-bytes` or retention): the log is many
    /// files, traced by path (`durable.rs`).
    segmented: bool,
    /// `--record DIR`: node N records into DIR/nodeN.
    pub record: Option<PathBuf>,
    /// `--slow-fsync-ms`: strace delays every fdatasync/fsync of the log by
    /// this much (traced nodes only), widening the window in which a node
    /// has written but not yet made durable what it may already have
    /// acknowledged (with `--unsafe-ack-before-fsync`).
    pub slow_fsync_ms: u64,
}

/// Snapshot and retention settings given to every node (`--snapshot-every`,
/// `--retain-entries`, `--log-segment-bytes`); None: the node's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Retention {
    pub snapshot_every: Option<u64>,
    pub retain_entries: Option<u64>,
    pub segment_bytes: Option<u64>,
}

fn config_text(id: u64, n: u64, log_dir: &Path, keep: &Retention) -> String {
    let mut t = format!(
        "node_id = {id}\nhost = \"{}\"\nport = {NODE_PORT}\nlog_dir = \"{}\"\n\
         cluster_secret = \"chaos-secret\"\nheartbeat_interval_ms = {HEARTBEAT_MS}\n\
         leader_timeout_ms = {LEADER_TIMEOUT_MS}\n",
        node_ip(id),
        log_dir.display()
    );
    for (key, v) in [
        ("snapshot_every", keep.snapshot_every),
        ("retain_entries", keep.retain_entries),
        ("log_segment_bytes", keep.segment_bytes),
    ] {
        if let Some(v) = v {
            t.push_str(&format!("{key} = {v}\n"));
        }
    }
    for j in (1..=n).filter(|&j| j != id) {
        t.push_str(&format!(
            "\n[[seed_nodes]]\nnode_id = {j}\nhost = \"{}\"\nport = {NODE_PORT}\n",
            node_ip(j)
        ));
    }
    if let Some(tls) = super::clients::tls_section(id) {
        t.push_str(&tls);
    }
    t
}

impl Nodes {
    /// Writes the configs under `dir` and starts every node.
    /// `unsafe_ack` / `unsafe_skip_fsync`: start them as a deliberately
    /// broken build (the runtime's test-only switches).
    // One call site (`mod.rs`), each argument one `chorus chaos` switch.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        dir: &Path,
        n: u64,
        unsafe_ack: bool,
        unsafe_skip_fsync: bool,
        traced: bool,
        record: Option<PathBuf>,
        slow_fsync_ms: u64,
        keep: &Retention,
    ) -> Result<Nodes> {
        let exe = std::env::current_exe().context("cannot find the chorus binary")?;
        let mut nodes = Vec::new();
        for id in 1..=n {
            let log_dir = dir.join(format!("node{id}"));
            let config = dir.join(format!("node{id}.toml"));
            fs::write(&config, config_text(id, n, &log_dir, keep))?;
            // The node's own checks (ranges of the retention keys), before
            // anything starts: a refused config is the caller's error.
            crate::config::load(&config)?;
            nodes.push(NodeProc {
                id,
                log_dir,
                config,
                stderr_path: dir.join(format!("node{id}.stderr")),
                child: None,
                paused: false,
                starts: 0,
                start_len: 0,
                start_lens: BTreeMap::new(),
                trace: None,
            });
        }
        let mut all = Nodes {
            nodes,
            exe,
            unsafe_ack,
            unsafe_skip_fsync,
            traced,
            segmented: keep.segment_bytes.is_some(),
            record,
            slow_fsync_ms: 0,
        };
        all.slow_fsync_ms = slow_fsync_ms;
        for i in 0..all.nodes.len() {
            all.spawn(i)?;
        }
        Ok(all)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let exe = self.exe.clone();
        let unsafe_ack = self.unsafe_ack;
        let unsafe_skip_fsync = self.unsafe_skip_fsync;
        let node = &mut self.nodes[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.stderr_path)?;
        let log_path = node.log_dir.join(chorus_runtime_mio::storage::LOG_FILE);
        node.start_len = fs::metadata(&log_path).map_or(0, |m| m.len());
        node.start_lens = segment_lens(&node.log_dir);
        let segmented = self.segmented;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns_name(node.id)]);
        node.trace = None;
        if self.traced {
            let trace = node
                .log_dir
                .with_extension(format!("strace.{}", node.starts + 1));
            let log = log_path.to_string_lossy();
            let watch = (!segmented).then_some(&*log);
            let mut args = durable::strace_args(watch, &trace.to_string_lossy());
            if self.slow_fsync_ms > 0 {
                let dash = args.pop().expect("strace_args ends with --");
                let us = self.slow_fsync_ms * 1000;
                args.push("-e".into());
                args.push(format!("inject=fdatasync,fsync:delay_enter={us}"));
                args.push(dash);
            }
            cmd.arg("strace").args(args);
            node.trace = Some(trace);
        }
        cmd.arg(&exe).arg("node");
        if let Some(r) = &self.record {
            cmd.arg("--record").arg(r.join(format!("node{}", node.id)));
        }
        cmd.arg("--config")
            .arg(&node.config)
            .env_remove(chorus_runtime_mio::UNSAFE_ACK_ENV)
            .env_remove(chorus_runtime_mio::UNSAFE_SKIP_FSYNC_ENV)
            // Own process group: a signal aimed at the harness's group
            // (a terminal's Ctrl-C) must not reach the nodes; the harness
            // tears them down itself.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if unsafe_ack {
            cmd.env(chorus_runtime_mio::UNSAFE_ACK_ENV, "1");
        }
        if unsafe_skip_fsync {
            cmd.env(chorus_runtime_mio::UNSAFE_SKIP_FSYNC_ENV, "1");
        }
        node.child = Some(cmd.spawn().context("cannot start chorus node")?);
        node.paused = false;
        node.starts += 1;
        Ok(())
    }

    /// The node's own PID (under strace: strace's child running our
    /// config, once it exists — strace also forks short-lived test
    /// children of its own at startup, which must never be taken for it).
    fn node_pid(&self, i: usize) -> Option<Pid> {
        let node = &self.nodes[i];
        let c = node.child.as_ref()?;
        if !self.traced {
            return Some(Pid::from_child(c));
        }
        let p = c.id();
        let config = node.config.to_string_lossy().into_owned();
        for _ in 0..300 {
            // strace exits once its node is dead: a zombie has no node.
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            if stat.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')) {
                return None;
            }
            let kids = fs::read_to_string(format!("/proc/{p}/task/{p}/children")).ok()?;
            for k in kids.split_whitespace() {
                let cmd = fs::read(format!("/proc/{k}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(&config) {
                    return Pid::from_raw(k.parse().ok()?);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    }

    fn signal(&self, i: usize, sig: Signal) {
        if let Some(pid) = self.node_pid(i) {
            let _ = kill_process(pid, sig);
        }
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// SIGKILL (a crash); waits until the process is gone.
    pub fn kill(&mut self, i: usize) {
        if self.traced {
            // Kill the node; strace exits with it (killing strace first
            // would leave the node running, detached). Bounded: if strace
            // is still there after 5 s, the node is looked up and killed
            // again, and strace last.
            for attempt in 0..3 {
                match self.node_pid(i) {
                    Some(pid) => {
                        let _ = kill_process(pid, Signal::KILL);
                        let _ = kill_process(pid, Signal::CONT);
                    }
                    None => break,
                }
                if self.wait_child(i, std::time::Duration::from_secs(5)) || attempt == 2 {
                    break;
                }
            }
        }
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.nodes[i].paused = false;
    }

    /// Waits up to `bound` for node `i`'s child to exit; true if it did.
    fn wait_child(&mut self, i: usize, bound: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            match self.nodes[i].child.as_mut().map(|c| c.try_wait()) {
                None | Some(Ok(Some(_))) | Some(Err(_)) => return true,
                Some(Ok(None)) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        false
    }

    /// A power failure of node `i`: SIGKILL, then the log loses what was
    /// not fsynced, except a `keep` fraction (0..=1) of it. Returns the
    /// bytes lost. Without tracing it is a plain SIGKILL.
    pub fn power_cut(&mut self, i: usize, keep: f64) -> Result<u64> {
        self.kill(i);
        self.drop_unsynced(i, keep)
    }

    /// A power failure of several nodes at the same instant: every node is
    /// sent SIGKILL before any is waited for (one after the other, the
    /// last ones would have time to finish their fsyncs).
    pub fn power_cut_many(&mut self, idx: &[usize], keep: f64) -> Result<u64> {
        for &i in idx {
            self.signal(i, Signal::KILL);
        }
        let mut lost = 0;
        for &i in idx {
            lost += self.power_cut(i, keep)?;
        }
        Ok(lost)
    }

    fn drop_unsynced(&mut self, i: usize, keep: f64) -> Result<u64> {
        let node = &self.nodes[i];
        let Some(trace) = &node.trace else {
            return Ok(0);
        };
        let text = fs::read_to_string(trace).unwrap_or_default();
        if self.segmented {
            let dir = node.log_dir.to_string_lossy().into_owned();
            let is_log = |p: &str| {
                let (d, name) = p.rsplit_once('/').unwrap_or(("", p));
                d == dir && chorus_runtime_mio::segments::parse_segment_name(name).is_some()
            };
            let durable = durable::durable_lens(&text, &node.start_lens, is_log);
            let mut lost = 0;
            for (path, len) in segment_lens(&node.log_dir) {
                let Some(&d) = durable.get(&path).filter(|&&d| len > d) else {
                    continue;
                };
                let cut = d + ((len - d) as f64 * keep.clamp(0.0, 1.0)) as u64;
                let f = File::options().write(true).open(&path)?;
                f.set_len(cut)?;
                f.sync_all()?;
                lost += len - cut;
            }
            return Ok(lost);
        }
        let durable = durable::durable_len(&text, node.start_len);
        let path = node.log_dir.join(chorus_runtime_mio::storage::LOG_FILE);
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        if len <= durable {
            return Ok(0);
        }
        let cut = durable + ((len - durable) as f64 * keep.clamp(0.0, 1.0)) as u64;
        let f = File::options().write(true).open(&path)?;
        f.set_len(cut)?;
        f.sync_all()?;
        Ok(len - cut)
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    pub fn pause(&mut self, i: usize) {
        self.signal(i, Signal::STOP);
        self.nodes[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.signal(i, Signal::CONT);
        self.nodes[i].paused = false;
    }

    /// A node that exited by itself (it should never): its id and status.
    pub fn exited(&mut self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for n in &mut self.nodes {
            if let Some(c) = &mut n.child {
                if let Ok(Some(st)) = c.try_wait() {
                    out.push((n.id, st.to_string()));
                    n.child = None;
                }
            }
        }
        out
    }

    /// Snapshot activity that node `i` logged over all its incarnations
    /// (its stderr file is appended to by each): the runtime's info lines
    /// of `effects.rs`.
    pub fn stderr_counts(&self, i: usize) -> Logged {
        let text = fs::read_to_string(&self.nodes[i].stderr_path).unwrap_or_default();
        logged_counts(&text)
    }

    /// The last lines of node `i`'s stderr.
    pub fn stderr_tail(&self, i: usize, lines: usize) -> String {
        let text = fs::read_to_string(&self.nodes[i].stderr_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The length of every log segment file of `dir`, by path.
fn segment_lens(dir: &Path) -> BTreeMap<String, u64> {
    chorus_runtime_mio::segments::list(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.path.to_string_lossy().into_owned(), f.len))
        .collect()
}

/// Counts of a node's snapshot log lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Logged {
    pub saved: u64,
    pub installs: u64,
    pub segments_deleted: u64,
}

fn logged_counts(text: &str) -> Logged {
    let mut c = Logged::default();
    for line in text.lines() {
        if line.contains(" saved a snapshot at seq ") {
            c.saved += 1;
        } else if line.contains(" installed the leader's snapshot at seq ") {
            c.installs += 1;
        } else if let Some((_, rest)) = line.split_once(" retention: deleted ") {
            let n = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            c.segments_deleted += n.unwrap_or(0);
        }
    }
    c
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lines_are_counted() {
        let text = "\
2026-12-05T18:00:00Z INFO n2 saved a snapshot at seq 2000 (9000 bytes) in 3 ms
2026-12-05T18:00:00Z INFO n2 retention: deleted 7 log segment files (114688 bytes) before seq 1001
2026-12-05T18:00:01Z INFO n2 installed the leader's snapshot at seq 4000 (delivered here up to 1500)
2026-12-05T18:00:02Z INFO n2 saved a snapshot at seq 6000 (9000 bytes) in 3 ms
2026-12-05T18:00:02Z INFO n2 retention: deleted 2 log segment files (32768 bytes) before seq 5001
";
        assert_eq!(
            logged_counts(text),
            Logged {
                saved: 2,
                installs: 1,
                segments_deleted: 9
            }
        );
    }
}
