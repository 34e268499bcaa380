//! `chorus up`: starts a local cluster whose nodes serve clients, stops every
//! node it started on SIGTERM (and when its client exits), and refuses a busy
//! port with a message naming the port and --base-port. Bounded in time; the
//! only processes signalled are the `chorus up` children of this test.

#[path = "common/client_proc.rs"]
mod client_proc;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/tmux.rs"]
mod tmux;

use client_proc::{parse_delivered, PlainClient};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A base port whose `n` ports are free right now, and so are the ports
/// `chorus up` puts beside them: HTTP 3000 above, IRC over TLS 30 above.
/// Drawn below the kernel's ephemeral range (32768..), where no client
/// socket of a concurrent test, nor its TIME_WAIT remains, can take one
/// between this check and `chorus up` binding it (CI failed that way once).
fn free_base_port(n: u16) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut x = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) | 1;
    for _ in 0..500 {
        // xorshift: a different walk per process and call.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = 12000 + (x % 16000) as u16; // 12000..28000, + 3000 < 32768
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if [0, 30, 3000]
            .iter()
            .all(|off| (0..n).all(|i| free(base + off + i)))
        {
            return base;
        }
    }
    panic!("no run of free ports found");
}

/// `chorus up ARGS` with its IRC ports on free ports (the default, 6667..,
/// would collide between tests running at once).
fn up(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let irc = free_base_port(3).to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .arg("up")
        .args(["--irc-base-port", &irc])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (child, rx)
}

/// Collects stderr lines until one contains `what` (or the deadline).
fn wait_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, what: &str, t: Duration) -> bool {
    let deadline = Instant::now() + t;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(what);
                seen.push(l);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

fn wait_exit(child: &mut Child, t: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + t;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn pid_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// `chorus up --no-client` on free ports in a fresh temp dir, once it is ready:
/// the process, its data dir, its base port and the node PIDs it printed.
fn up_no_client(name: &str) -> (Child, std::path::PathBuf, u16, Vec<i32>) {
    let dir = cluster::temp_dir(name);
    let base = free_base_port(3);
    let (child, rx) = up(&[
        "--no-client",
        "--data-dir",
        dir.to_str().unwrap(),
        "--base-port",
        &base.to_string(),
    ]);
    let mut seen = Vec::new();
    let ready = wait_line(&rx, &mut seen, "stop: Ctrl-C", Duration::from_secs(40));
    assert!(ready, "chorus up did not come up:\n{}", seen.join("\n"));
    let pids = node_pids(&seen);
    assert_eq!(pids.len(), 3, "{}", seen.join("\n"));
    (child, dir, base, pids)
}

#[test]
fn up_no_client_serves_and_stops_cleanly_on_sigterm() {
    let _one = cluster::one_at_a_time();
    let (mut child, dir, base, pids) = up_no_client("up");
    for n in 1..=3 {
        assert!(dir.join(format!("node{n}.toml")).exists());
    }

    let port = (base + 1).to_string();
    // `up` runs TLS by default: the client verifies the nodes with its CA.
    let ca = dir.join("certs/ca.pem");
    assert!(ca.exists(), "chorus up made no CA");
    let toml = std::fs::read_to_string(dir.join("node1.toml")).unwrap();
    assert!(toml.contains("[tls]"), "{toml}");
    let mut c = PlainClient::start(&[
        "--port",
        &port,
        "--name",
        "bob",
        "--ca",
        ca.to_str().unwrap(),
    ]);
    c.send("through chorus up");
    c.close_stdin();
    assert_eq!(
        c.wait(Duration::from_secs(30)).map(|s| s.code()),
        Some(Some(0)),
        "{}",
        c.dump()
    );
    let shown: Vec<_> = c
        .stdout_lines()
        .iter()
        .filter_map(|l| parse_delivered(l))
        .collect();
    assert_eq!(shown.len(), 1, "{}", c.dump());
    assert_eq!(shown[0].2, "through chorus up");
    irc_sees_the_history(&toml);
    irc_over_tls_registers(&toml, &ca);

    let up_pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(up_pid, rustix::process::Signal::TERM).unwrap();
    let st = wait_exit(&mut child, Duration::from_secs(20));
    assert!(st.is_some_and(|s| s.success()), "exit {st:?}");
    for pid in pids {
        assert!(!pid_alive(pid), "node pid {pid} still running");
    }
    // The ports are free again.
    for p in base..base + 3 {
        assert!(
            TcpListener::bind(("127.0.0.1", p)).is_ok(),
            "port {p} still bound"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// With TLS (`chorus up`'s default) node 1 also serves IRC over TLS on
/// `irc_tls_port`: a client verifying the node against the CA registers
/// there, and the port speaks no plaintext IRC.
fn irc_over_tls_registers(node1_toml: &str, ca: &std::path::Path) {
    use std::io::{Read, Write};
    let port: u16 = node1_toml
        .lines()
        .find_map(|l| l.strip_prefix("irc_tls_port = "))
        .unwrap_or_else(|| panic!("no irc_tls_port in {node1_toml}"))
        .parse()
        .unwrap();
    let cfg = chorus_runtime_mio::tls::client_config(ca, None).expect("a readable CA");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(b"NICK tlsirc\r\nUSER t 0 * :Tls Irc\r\n")
        .unwrap();
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while !got.contains(" 001 tlsirc ") && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    assert!(got.contains(" 001 tlsirc :Welcome to chorus"), "{got}");
    // Plaintext IRC on the TLS port registers nothing.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _ = plain.write_all(b"NICK plain\r\nUSER p 0 * :P\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 001 "),
        "plaintext IRC registered on the TLS port"
    );
}

/// `chorus up` turned node 1's IRC gateway on: an IRC session registers,
/// and its JOIN replays the message the terminal client sent.
fn irc_sees_the_history(node1_toml: &str) {
    use std::io::{Read, Write};
    let port: u16 = node1_toml
        .lines()
        .find_map(|l| l.strip_prefix("irc_port = "))
        .unwrap_or_else(|| panic!("no irc_port in {node1_toml}"))
        .parse()
        .unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(b"NICK upirc\r\nUSER u 0 * :Up Irc\r\nJOIN #general\r\n")
        .unwrap();
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while !got.contains("PRIVMSG #general :through chorus up") && Instant::now() < deadline {
        if let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(got.contains(" 001 upirc :Welcome to chorus"), "{got}");
    assert!(
        got.contains(":bob!bob@chorus PRIVMSG #general :through chorus up"),
        "{got}"
    );
}

/// The node PIDs `chorus up` printed.
fn node_pids(seen: &[String]) -> Vec<i32> {
    seen.iter()
        .filter_map(|l| {
            l.split_once(" pid ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn nodes_do_not_outlive_a_sigkilled_up() {
    let _one = cluster::one_at_a_time();
    let (mut child, dir, _base, pids) = up_no_client("up-kill");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| pid_alive(p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<i32> = pids.iter().copied().filter(|&p| pid_alive(p)).collect();
    for &p in &left {
        // Our own grandchildren: never leave them running, even on failure.
        if let Some(pid) = rustix::process::Pid::from_raw(p) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    assert!(left.is_empty(), "nodes {left:?} outlived their chorus up");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn up_reports_a_busy_port_and_how_to_pick_another() {
    let _one = cluster::one_at_a_time();
    let dir = cluster::temp_dir("up-busy");
    let base = free_base_port(3);
    let _busy = TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
    let (mut child, rx) = up(&[
        "--no-client",
        "--data-dir",
        dir.to_str().unwrap(),
        "--base-port",
        &base.to_string(),
    ]);
    let st = wait_exit(&mut child, Duration::from_secs(10));
    assert!(st.is_some_and(|s| !s.success()), "{st:?}");
    // Read stderr to its end (the reader thread may lag the exit).
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(l);
    }
    let text = lines.join("\n");
    assert!(text.contains(&format!("port {}", base + 1)), "{text}");
    assert!(text.contains("--base-port"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn up_with_its_client_in_a_terminal_then_quit_stops_the_nodes() {
    let _one = cluster::one_at_a_time();
    if !tmux::available() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let dir = cluster::temp_dir("up-tui");
    let base = free_base_port(3);
    let argv = [
        env!("CARGO_BIN_EXE_chorus").to_string(),
        "up".into(),
        "--data-dir".into(),
        dir.to_str().unwrap().to_string(),
        "--base-port".into(),
        base.to_string(),
        "--name".into(),
        "carol".into(),
        "--no-irc".into(),
    ];
    let t = tmux::Tmux::start(&argv, 110, 24);
    t.wait_screen(Duration::from_secs(40), |s| {
        s.contains("● node") && s.contains("leader n")
    })
    .unwrap_or_else(|s| panic!("client not up:\n{s}"));
    t.type_text("one command");
    t.press("Enter");
    t.wait_screen(Duration::from_secs(15), |s| {
        s.lines().any(|l| {
            let seq = l.trim_start_matches('│').strip_prefix('#');
            seq.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                && l.contains("carol: one command ✓")
        })
    })
    .unwrap_or_else(|s| panic!("not delivered:\n{s}"));
    t.press("Escape");
    assert_eq!(
        t.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}\n{}",
        t.screen(),
        t.diagnose()
    );
    for p in base..base + 3 {
        assert!(
            TcpListener::bind(("127.0.0.1", p)).is_ok(),
            "port {p} still bound"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
