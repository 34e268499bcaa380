//! The chaos harness catches a deliberately broken build: five real nodes
//! started with `CHORUS_UNSAFE_SKIP_FSYNC=1` (they acknowledge messages but
//! never fsync their log) through 25 s of the ordinary seeded fault mix.
//! The harness knows nothing of the switch beyond passing it on; the power
//! losses drop what was never fsynced, and its ordinary verdict must report
//! an acknowledged message lost or two nodes disagreeing on the order (exit
//! 1, with the line that reproduces the run). Needs root, iproute2, nftables
//! and strace; elsewhere it is skipped with a message saying why. Bounded:
//! under 60 s, the harness is stopped (SIGTERM, then SIGKILL, by PID) if it
//! overstays.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const DURATION_S: u64 = 25;
const SEED: &str = "0x51";

fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root (network namespaces need it)".into());
    }
    for (tool, arg) in [("ip", "-V"), ("nft", "-v"), ("strace", "-V")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

#[test]
fn the_harness_catches_a_build_that_never_fsyncs() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED chorus chaos broken-build test: {why}");
        return;
    }
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "chaos",
            "--nodes",
            "5",
            "--seed",
            SEED,
            "--unsafe-skip-fsync",
        ])
        .args(["--duration", &DURATION_S.to_string()])
        .args(["--converge-timeout", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chorus chaos");
    let mut out = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = started + Duration::from_secs(55);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            thread::sleep(Duration::from_secs(3));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let report = reader.join().unwrap();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    println!("{report}\n{err}");
    let status = status.expect("chorus chaos overstayed its bound");
    assert_eq!(
        status.code(),
        Some(1),
        "the broken build was not caught ({status}):\n{report}\n{err}"
    );
    assert!(report.contains("VIOLATIONS: "), "{report}");
    assert!(
        report.contains("(an acknowledged message was lost)")
            || report.contains(" disagree at seq "),
        "a violation, but neither a lost acknowledgement nor an order disagreement:\n{report}"
    );
    assert!(
        report.contains("reproduce: chorus chaos") && report.contains("--unsafe-skip-fsync"),
        "{report}"
    );
    println!("caught in {:.1} s", started.elapsed().as_secs_f64());
}
