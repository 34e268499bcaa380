//! The web page's login form in a real browser: headless Debian `chromium`
//! driven by PyPI `selenium` (`web_login.py`) against three real nodes with
//! `[accounts]` on. The account `alice` is made here with the operators'
//! `chorus user add`; in the page a wrong password shows an error, the right
//! one logs in, her messages carry `alice`, a guest page is `~bob`; the
//! leader (alice's node) is SIGKILLed and her page fails over and logs in
//! again by itself; dave registers from the page; repeated wrong passwords
//! show the rate limit. Here the surviving nodes' HISTORY must hold alice's
//! messages under `alice`.
//! Screenshots are kept in `target/tmp/web_login/` (printed).
//!
//! Needs chromium, chromedriver and selenium: skipped without them, except
//! under CI=true, where missing tools fail the test (`.ci/run` installs them).

#[path = "common/cluster.rs"]
mod cluster;

use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "test-secret"; // the cluster helper's cluster_secret
const PASSWORD: &str = "correct horse battery";
// Three failures free, then a wait of 5 s: long enough that the page's next
// attempt surely falls inside it.
const ACCOUNTS: &str = "\n[accounts]\nenabled = true\nregistration = \"open\"\nguests = true\n\
    login_free_failures = 3\nlogin_delay_ms = 5000\nlogin_delay_max_ms = 10000\n";

fn have_browser() -> bool {
    let missing: Vec<&str> = [
        ("/usr/bin/chromium", "chromium (apt)"),
        ("/usr/bin/chromedriver", "chromium-driver (apt)"),
    ]
    .iter()
    .filter(|(p, _)| !Path::new(p).exists())
    .map(|(_, what)| *what)
    .chain(
        (!Command::new("python3")
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success()))
        .then_some("selenium (pip)"),
    )
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "missing in CI: {missing:?} (.ci/run installs them)"
    );
    eprintln!("SKIPPED: missing {missing:?}");
    false
}

/// msg_id → user of every chat in `room` on the node at `addr` (HISTORY).
fn room_users(addr: &str, room: &str) -> HashMap<String, String> {
    let mut s = TcpStream::connect(addr).expect("connect for HISTORY");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = json!({"type": "HELLO", "proto": 2, "client": "web_login.rs/1"});
    let req = json!({"type": "HISTORY", "room_id": room, "after": 0, "limit": 1000});
    writeln!(s, "{hello}\n{req}").unwrap();
    let mut users = HashMap::new();
    for line in BufReader::new(s).lines() {
        let v: Value = serde_json::from_str(&line.expect("HISTORY answer")).unwrap();
        match v["type"].as_str() {
            Some("SEQ_CHAT") => {
                users.insert(
                    v["msg_id"].as_str().unwrap().to_string(),
                    v["user"].as_str().unwrap_or_default().to_string(),
                );
            }
            Some("HISTORY_END") => return users,
            Some("ERROR") => panic!("{addr}: {v}"),
            _ => {}
        }
    }
    panic!("{addr} closed before HISTORY_END");
}

#[test]
fn login_form_wrong_password_guest_and_relogin_after_leader_kill() {
    if !have_browser() {
        return;
    }
    let c = Cluster::start_with_http(3, Timing::TEST, ACCOUNTS);
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let add = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["user", "add", "alice", "--connect", &c.addr(leader)])
        .env("CHORUS_CLUSTER_SECRET", SECRET)
        .env("CHORUS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "chorus user add: {}",
        String::from_utf8_lossy(&add.stderr)
    );
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_login");
    let _ = std::fs::remove_dir_all(&artifacts);
    eprintln!("screenshots: {}", artifacts.display());
    let args = json!({
        "http": c.nodes.iter().map(|n| n.http_port.unwrap()).collect::<Vec<_>>(),
        "ports": c.nodes.iter().map(|n| n.port).collect::<Vec<_>>(),
        "leader": leader,
        "leader_pid": c.pid(leader).unwrap(),
        "password": PASSWORD,
        "artifacts": artifacts,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web_login.py");
    let out = Command::new("timeout")
        .args(["300", "python3", script, &args.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "web_login.py failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    // What the pages showed is what the surviving nodes committed.
    let ids: Vec<String> = serde_json::from_str(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("ALICE "))
            .expect("the script prints ALICE"),
    )
    .unwrap();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for i in (0..3).filter(|&i| i != leader) {
        let users = room_users(&c.addr(i), "lobby");
        for id in &ids {
            assert_eq!(
                users.get(id).map(String::as_str),
                Some("alice"),
                "node {}: {id}",
                i + 1
            );
        }
    }
    for shot in [
        "alice-wrong-password",
        "alice-after-failover",
        "bob-guest",
        "eve-rate-limited",
    ] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "{shot}");
    }
}
