//! Runs `chorus client --plain` as a child process for tests: feed stdin lines,
//! watch stdout/stderr as they come, wait for exit with a deadline (the child
//! is killed, by its own handle, if it overstays). Also parses the plain
//! mode's output format (`[#room N] sender: text`, `ack <msg_id> seq=N`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub struct PlainClient {
    child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

impl PlainClient {
    /// `chorus client --plain <args>`.
    pub fn start(args: &[&str]) -> PlainClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .arg("client")
            .arg("--plain")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chorus client");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        PlainClient {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits until `pred(stdout lines)` holds; false after `timeout`.
    pub fn wait_stdout(&self, timeout: Duration, pred: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(&self.stdout.lock().unwrap()) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for exit; kills the child and returns None after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the collector threads drain the pipes.
                thread::sleep(Duration::from_millis(100));
                return Some(st);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything printed so far, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout_lines().join("\n"),
            self.stderr_lines().join("\n")
        )
    }
}

impl Drop for PlainClient {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `[#room N] sender: text` → (N, sender, text); N is the room's number
/// (room_seq).
pub fn parse_delivered(line: &str) -> Option<(u64, String, String)> {
    let rest = line.strip_prefix("[#")?;
    let (_room, rest) = rest.split_once(' ')?;
    let (n, rest) = rest.split_once("] ")?;
    let (sender, text) = rest.split_once(": ")?;
    Some((n.parse().ok()?, sender.to_string(), text.to_string()))
}

/// `ack <msg_id> seq=N` → (msg_id, N).
pub fn parse_ack(line: &str) -> Option<(String, u64)> {
    let rest = line.strip_prefix("ack ")?;
    let (id, seq) = rest.split_once(" seq=")?;
    Some((id.to_string(), seq.parse().ok()?))
}

/// `sent <msg_id> <text>` → (msg_id, text).
pub fn parse_sent(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("sent ")?;
    let (id, text) = rest.split_once(' ')?;
    Some((id.to_string(), text.to_string()))
}
