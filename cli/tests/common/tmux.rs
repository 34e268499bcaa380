//! Drives a program in a real terminal for tests: a private tmux server (its
//! own socket, so nothing else is touched), `send-keys` to type,
//! `capture-pane` to read the screen, and the dead pane's exit status (the
//! pane stays after exit: `remain-on-exit on`). The server is killed on Drop.
//!
//! CI needs the `tmux` package (.ci/run installs it).
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct Tmux {
    socket: String,
    conf: std::path::PathBuf,
    /// Where the wrapper shell writes the program's exit status.
    status_file: std::path::PathBuf,
}

/// Whether tmux can run here; tests skip (saying so) only when it cannot.
pub fn available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Tmux {
    /// Runs `argv` in a `width`x`height` terminal.
    pub fn start(argv: &[String], width: u16, height: u16) -> Tmux {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let socket = format!("chorus-test-{}-{n}", std::process::id());
        let conf = std::env::temp_dir().join(format!("{socket}.conf"));
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g history-limit 1000\n",
        )
        .unwrap();
        let status_file = std::env::temp_dir().join(format!("{socket}.status"));
        let _ = std::fs::remove_file(&status_file);
        // tmux's own #{pane_dead_status} stays empty when it has not reaped
        // the process yet (seen under load), so a wrapper shell records it.
        let script = format!(
            "\"$@\"; echo $? > {}",
            quote(&status_file.to_string_lossy())
        );
        let t = Tmux {
            socket,
            conf,
            status_file,
        };
        let mut cmd = vec!["sh".to_string(), "-c".into(), quote(&script), "sh".into()];
        cmd.extend(argv.iter().map(|a| quote(a)));
        let out = t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &cmd.join(" "),
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", text]);
    }

    /// Presses keys by tmux name (Enter, Escape, C-c, …).
    pub fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "main", key]);
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "main"]).stdout)
            .into_owned()
    }

    /// Waits until the screen satisfies `pred`; Err(last screen) on timeout.
    pub fn wait_screen(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(s);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The exit status once the program ended, waiting at most `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&self.status_file).unwrap_or_default();
            if text.ends_with('\n') {
                return text.trim().parse().ok();
            }
            thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Tmux {
    /// The pane's process (the wrapper shell) and its children's threads
    /// with their states, for failure messages (which thread is stuck where).
    pub fn diagnose(&self) -> String {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "main",
            "#{pane_pid} dead=#{pane_dead} status=#{pane_dead_status}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let pid = text.split_whitespace().next().unwrap_or("0").to_string();
        let mut report = format!("pane: {text}\n");
        let read = |p: std::path::PathBuf| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let children = read(format!("/proc/{pid}/task/{pid}/children").into());
        let pids =
            std::iter::once(pid.clone()).chain(children.split_whitespace().map(String::from));
        for pid in pids {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for t in tasks.flatten() {
                let p = t.path();
                let stat = read(p.join("stat"));
                let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
                report.push_str(&format!(
                    "  pid {pid} thread {} state {:?} wchan {}\n",
                    read(p.join("comm")),
                    state,
                    read(p.join("wchan"))
                ));
            }
        }
        report
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
        let _ = std::fs::remove_file(&self.conf);
        let _ = std::fs::remove_file(&self.status_file);
    }
}
