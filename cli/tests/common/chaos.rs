//! Running `chorus chaos` from a test: whether this machine can (root,
//! iproute2, nftables, strace), and a bounded run that is stopped (SIGTERM,
//! then SIGKILL, by PID) if it overstays, returning its exit status and output.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Why the chaos harness cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    let why = missing_prerequisite();
    // .ci/run installs the tools and CI runs as root: a skip there would
    // hide a broken install step, so it is a failure.
    if let (Some(why), Ok(_)) = (&why, std::env::var("CI")) {
        panic!("chaos test cannot run in CI: {why} (.ci/run should provide it)");
    }
    why
}

fn missing_prerequisite() -> Option<String> {
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

/// The outcome of one harness run.
pub struct ChaosRun {
    /// None when it overstayed `bound` and was stopped.
    pub status: Option<ExitStatus>,
    pub report: String,
    pub stderr: String,
}

/// Runs `chorus chaos ARGS`, stopping it after `bound` (`grace` between TERM and KILL).
pub fn run_chaos(args: &[&str], bound: Duration, grace: Duration) -> ChaosRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .arg("chaos")
        .args(args)
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
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            thread::sleep(grace);
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let report = reader.join().unwrap();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    println!("{report}\n{stderr}");
    ChaosRun {
        status,
        report,
        stderr,
    }
}
