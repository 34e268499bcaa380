//! Record a real run, replay it in the simulator: three `chorus node
//! --record` processes commit messages, the leader is SIGKILLed, a new leader
//! commits more, the old leader restarts and catches up, more commits go
//! through it. Then `chorus sim replay` must find every node's replay
//! identical to its recording step for step (the killed node with two
//! incarnations) and the cross-node check clean. On copies of one node's
//! recording: one input rewritten (with a valid checksum) must make the
//! replay diverge at exactly that step; a segment cut in the middle of a
//! frame must replay, identically, up to the cut. Every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logs.rs"]
mod logs;

use chat::Conn;
use chorus_core::recording::{self, decode_frame, decode_step, encode_step, Frame};
use chorus_core::{Input, Seq};
use cluster::{Cluster, Timing};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LEADER_WAIT: Duration = Duration::from_secs(20);
const ACK_WAIT: Duration = Duration::from_secs(10);
const CONVERGE_WAIT: Duration = Duration::from_secs(20);

fn send(c: &Cluster, i: usize, tag: &str, n: usize, acked: &mut BTreeMap<String, u64>) {
    let mut conn = Conn::connect(&c.addr(i)).expect("connect");
    for k in 0..n {
        let id = format!("{tag}-{k:03}");
        let seq = conn.chat_acked(&id, &format!("{tag} {k}"), ACK_WAIT);
        acked.insert(id, seq);
    }
}

/// `chorus sim replay ARGS…`: exit code and stdout.
fn replay(args: &[&Path]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["sim", "replay"])
        .args(args)
        .output()
        .expect("run chorus sim replay");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The frames of a segment file after its magic: header payload, then steps.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut body = &bytes[recording::MAGIC.len()..];
    let mut out = Vec::new();
    while let Frame::Whole { payload, used } = decode_frame(body) {
        out.push(payload.to_vec());
        body = &body[used..];
    }
    out
}

/// The last segment of the last incarnation in `dir`.
fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rec"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

/// A recorded 3-node run with a leader crash, restart and catch-up.
fn recorded_run() -> (Cluster, usize) {
    let mut c = Cluster::start_recorded(3, Timing::FAST);
    let leader = c.wait_for_leader(LEADER_WAIT);
    let other = (leader + 1) % 3;
    let mut acked = BTreeMap::new();
    send(&c, other, "a", 20, &mut acked);
    c.kill(leader);
    let next = c.wait_for_leader(LEADER_WAIT);
    assert_ne!(next, leader);
    send(&c, next, "b", 20, &mut acked);
    c.start_node(leader);
    let live: Vec<usize> = (0..3).collect();
    logs::wait_converged(&c, &live, &acked, CONVERGE_WAIT);
    send(&c, leader, "c", 10, &mut acked);
    logs::wait_converged(&c, &live, &acked, CONVERGE_WAIT);
    for i in 0..3 {
        c.kill(i);
    }
    (c, leader)
}

#[test]
fn a_recorded_run_replays_identically_and_corruption_and_cuts_are_found() {
    let (c, killed) = recorded_run();
    let rec = c.record.clone().unwrap();
    let dirs: Vec<PathBuf> = (1..=3).map(|id| rec.join(format!("node{id}"))).collect();
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let (code, out) = replay(&refs);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches("steps replayed: identical").count(), 3, "{out}");
    let killed_line = out
        .lines()
        .find(|l| l.contains(&format!("node{}:", killed + 1)))
        .unwrap();
    assert!(killed_line.contains("2 incarnation(s)"), "{out}");
    assert!(
        out.contains("50 acknowledgements, 0 violations") && out.contains("verdict: PASS"),
        "{out}"
    );
    // The parent directory stands for its node* subdirectories.
    let (code, out2) = replay(&[rec.as_path()]);
    assert_eq!(code, Some(0), "{out2}");
    assert!(out2.contains("cross-node check over 3 nodes"), "{out2}");

    // One input rewritten, checksum valid: divergence at that step.
    let bad = c.dir.join("corrupt");
    copy_dir(&dirs[killed], &bad);
    let seg = last_segment(&bad);
    let bytes = fs::read(&seg).unwrap();
    let fr = frames(&bytes);
    let header = recording::decode_header(&fr[0]).unwrap();
    assert_eq!(header.incarnation, 2, "the restarted incarnation");
    let k = (10..fr.len() - 1)
        .find(|&k| {
            let s = decode_step(&fr[k]).unwrap();
            matches!(s.input, Input::Peer(_)) && !s.actions.is_empty()
        })
        .expect("a peer input with actions");
    let mut out_bytes = recording::MAGIC.to_vec();
    recording::encode_frame(&fr[0], &mut out_bytes);
    for (j, p) in fr.iter().enumerate().skip(1) {
        let mut s = decode_step(p).unwrap();
        if j == k {
            s.input = Input::Persisted { upto: Seq(0) };
        }
        encode_step(&s, &mut out_bytes);
    }
    fs::write(&seg, out_bytes).unwrap();
    let (code, out) = replay(&[bad.as_path()]);
    assert_eq!(code, Some(1), "{out}");
    // Step numbers run across incarnations: incarnation 2's step k-1 (frame
    // k is its step k-1, frame 0 being the header).
    assert!(
        out.contains(&format!("incarnation 2, step {} of it", k - 1)),
        "divergence not at the rewritten step {}:\n{out}",
        k - 1
    );
    assert!(
        out.contains("input: Persisted { upto: Seq(0) }") && out.contains("recorded: "),
        "{out}"
    );

    // A segment cut in the middle of a frame replays up to the cut.
    let cut = c.dir.join("cut");
    copy_dir(&dirs[(killed + 1) % 3], &cut);
    let seg = last_segment(&cut);
    let bytes = fs::read(&seg).unwrap();
    let at = bytes.len() * 3 / 5;
    fs::write(&seg, &bytes[..at]).unwrap();
    let whole = frames(&bytes[..at]).len() - 1;
    let before: usize = fs::read_dir(&cut)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rec") && *p != seg)
        .map(|p| frames(&fs::read(p).unwrap()).len() - 1)
        .sum();
    let (code, out) = replay(&[cut.as_path()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("{} steps replayed: identical", before + whole)),
        "expected {before} + {whole} steps:\n{out}"
    );
    assert!(out.contains("torn tail cut"), "{out}");
    let _ = fs::remove_dir_all(&c.dir);
}
