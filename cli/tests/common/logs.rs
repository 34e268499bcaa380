//! Nodes' durable logs as end-to-end tests see them: `chorus log inspect DIR`
//! (the binary under test; committed chat entries as JSON lines) parsed and
//! compared. `wait_converged` polls until every given node's log is the same
//! and holds every acknowledged msg_id at its acknowledged seq_no exactly
//! once, or panics with what differs and the nodes' stderr.
#![allow(dead_code)]

use super::cluster::Cluster;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// `chorus log inspect DIR [--all]`, one JSON value per line.
pub fn inspect(dir: &Path, all: bool) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chorus"));
    cmd.args(["log", "inspect"]).arg(dir);
    if all {
        cmd.arg("--all");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("run chorus log inspect: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "chorus log inspect {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("inspect line {l:?}: {e}")))
        .collect()
}

/// Every complete record of the log segments in `dir`, in log order (a
/// partial last frame of a running node is left out). Shows what replay
/// hides, such as entries later truncated.
pub fn raw_records(dir: &Path) -> Vec<chorus_core::Record> {
    let mut bytes = Vec::new();
    for seg in chorus_runtime_mio::segments::list(dir).unwrap_or_default() {
        bytes.extend(std::fs::read(&seg.path).unwrap_or_default());
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(payload) = bytes.get(at + 12..at + 12 + len) else {
            break;
        };
        match chorus_core::record::decode_payload(payload) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
        at += 12 + len;
    }
    out
}

/// (seq_no, msg_id) of every entry, for compact messages.
pub fn seq_ids(log: &[Value]) -> Vec<(u64, String)> {
    log.iter()
        .map(|e| {
            let seq = e["seq_no"].as_u64().unwrap_or(0);
            (seq, e["msg_id"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// seq_no → msg_id.
pub fn by_seq(log: &[Value]) -> BTreeMap<u64, String> {
    seq_ids(log).into_iter().collect()
}

/// The committed chats are numbered 1..N without a hole, and each room's
/// room_seq 1..k without a hole (the log as `chorus log inspect` prints it).
pub fn check_no_holes(log: &[Value]) -> Result<(), String> {
    let mut rooms: BTreeMap<String, u64> = BTreeMap::new();
    for (i, e) in log.iter().enumerate() {
        let seq = e["seq_no"].as_u64();
        if seq != Some(i as u64 + 1) {
            return Err(format!("chat {} is numbered {seq:?}: {e}", i + 1));
        }
        let room = e["room_id"].as_str().unwrap_or("").to_string();
        let n = rooms.entry(room.clone()).or_insert(0);
        *n += 1;
        if e["room_seq"].as_u64() != Some(*n) {
            return Err(format!(
                "message {n} of room {room} has room_seq {}: {e}",
                e["room_seq"]
            ));
        }
    }
    Ok(())
}

/// seq_nos are 1..N without a hole (also per room), terms never decrease,
/// and no msg_id appears twice.
pub fn check_exactly_once(log: &[Value]) -> Result<(), String> {
    check_no_holes(log)?;
    let ids = seq_ids(log);
    if let Some(w) = ids.windows(2).find(|w| w[0].0 >= w[1].0) {
        return Err(format!(
            "seq_no does not increase: {:?} then {:?}",
            w[0], w[1]
        ));
    }
    if let Some(w) = log
        .windows(2)
        .find(|w| w[0]["term"].as_u64() > w[1]["term"].as_u64())
    {
        return Err(format!("term decreases: {} then {}", w[0], w[1]));
    }
    let mut seen = BTreeSet::new();
    for (seq, id) in &ids {
        if !seen.insert(id) {
            return Err(format!("msg_id {id} appears twice (again at seq {seq})"));
        }
    }
    Ok(())
}

/// Every acknowledged msg_id is in `log` at the seq_no its ack named.
pub fn check_acked(log: &[Value], acked: &BTreeMap<String, u64>) -> Result<(), String> {
    let at: BTreeMap<String, u64> = seq_ids(log).into_iter().map(|(s, id)| (id, s)).collect();
    let mut missing = Vec::new();
    for (id, seq) in acked {
        match at.get(id) {
            Some(s) if s == seq => {}
            Some(s) => return Err(format!("{id} was acknowledged at seq {seq} but is at {s}")),
            None => missing.push((id, seq)),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} acknowledged messages missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ))
    }
}

/// Where two logs first differ, for failure messages.
pub fn first_difference(a: &[Value], b: &[Value]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("entry {i}: {} vs {}", a[i], b[i]),
        None => format!("lengths {} vs {} (one is a prefix)", a.len(), b.len()),
    }
}

/// Polls until the logs of `nodes` are identical, exactly-once, and hold
/// every `acked` msg_id at its seq_no; returns that log. Panics after
/// `timeout` with the differences and the nodes' stderr.
pub fn wait_converged(
    c: &Cluster,
    nodes: &[usize],
    acked: &BTreeMap<String, u64>,
    timeout: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let problem = match converged(c, nodes, acked) {
            Ok(log) => return log,
            Err(p) => p,
        };
        if Instant::now() >= deadline {
            panic!(
                "logs of nodes {:?} did not converge within {timeout:?}: {problem}\n{}",
                nodes.iter().map(|i| i + 1).collect::<Vec<_>>(),
                c.logs()
            );
        }
        thread::sleep(Duration::from_millis(150));
    }
}

/// For logs that are still growing: polls until every log of `nodes` holds
/// every `acked` msg_id at its seq_no exactly once and the logs agree on
/// their common prefix (one order); panics after `timeout`.
pub fn wait_consistent(
    c: &Cluster,
    nodes: &[usize],
    acked: &BTreeMap<String, u64>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let problem = match consistent(c, nodes, acked) {
            Ok(()) => return,
            Err(p) => p,
        };
        if Instant::now() >= deadline {
            panic!(
                "logs of nodes {:?} not consistent within {timeout:?}: {problem}\n{}",
                nodes.iter().map(|i| i + 1).collect::<Vec<_>>(),
                c.logs()
            );
        }
        thread::sleep(Duration::from_millis(150));
    }
}

fn consistent(c: &Cluster, nodes: &[usize], acked: &BTreeMap<String, u64>) -> Result<(), String> {
    let mut logs: Vec<(usize, Vec<Value>)> = Vec::new();
    for &i in nodes {
        let log = inspect(&c.log_dir(i), false)?;
        check_exactly_once(&log).map_err(|e| format!("node {}: {e}", i + 1))?;
        check_acked(&log, acked).map_err(|e| format!("node {}: {e}", i + 1))?;
        for (j, other) in &logs {
            let n = log.len().min(other.len());
            if log[..n] != other[..n] {
                return Err(format!(
                    "nodes {} and {} disagree at {}",
                    j + 1,
                    i + 1,
                    first_difference(&other[..n], &log[..n])
                ));
            }
        }
        logs.push((i, log));
    }
    Ok(())
}

fn converged(
    c: &Cluster,
    nodes: &[usize],
    acked: &BTreeMap<String, u64>,
) -> Result<Vec<Value>, String> {
    let mut logs = Vec::new();
    for &i in nodes {
        let log = inspect(&c.log_dir(i), false)?;
        check_exactly_once(&log).map_err(|e| format!("node {}: {e}", i + 1))?;
        check_acked(&log, acked).map_err(|e| format!("node {}: {e}", i + 1))?;
        logs.push((i, log));
    }
    let (first, base) = &logs[0];
    for (i, log) in &logs[1..] {
        if log != base {
            return Err(format!(
                "node {} ({} entries) and node {} ({} entries) differ at {}",
                first + 1,
                base.len(),
                i + 1,
                log.len(),
                first_difference(base, log)
            ));
        }
    }
    Ok(logs.swap_remove(0).1)
}
