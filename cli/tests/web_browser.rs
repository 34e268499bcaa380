//! The web page served at `/` in a real browser: headless Debian `chromium`
//! driven by PyPI `selenium` (`web_browser.py`) against three real nodes.
//! Two pages on different nodes and a `chorus client --plain` chat in one
//! room; the leader is SIGKILLed mid-conversation; the pages fail over and
//! keep working; everyone sees every message once, in one order (the pages'
//! DOM, carol's client, and here the surviving nodes' HISTORY). Also older
//! history on scroll, unread counts, presence and labelled controls.
//! Screenshots are kept in `target/tmp/web_browser/` (printed).
//!
//! Needs chromium, chromedriver and selenium: skipped without them, except
//! under CI=true, where missing tools fail the test (`.ci/run` installs them).

#[path = "common/cluster.rs"]
mod cluster;

use cluster::{Cluster, Timing};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

/// Every chat of `room` on the node at `addr`, by HISTORY: msg_ids in order.
fn room_history(addr: &str, room: &str) -> Vec<String> {
    let mut s = TcpStream::connect(addr).expect("connect for HISTORY");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ids = Vec::new();
    let mut after = 0u64;
    loop {
        let req =
            serde_json::json!({"type": "HISTORY", "room_id": room, "after": after, "limit": 1000});
        let hello = if after == 0 {
            "{\"type\":\"HELLO\",\"proto\":2,\"client\":\"web_browser.rs/1\"}\n"
        } else {
            ""
        };
        writeln!(s, "{hello}{req}").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let before = ids.len();
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "{addr} closed");
            let v: Value = serde_json::from_str(&line).unwrap();
            match v["type"].as_str() {
                Some("SEQ_CHAT") => {
                    after = v["room_seq"].as_u64().unwrap();
                    ids.push(v["msg_id"].as_str().unwrap().to_string());
                }
                Some("HISTORY_END") => break,
                Some("ERROR") => panic!("{addr}: {line}"),
                _ => {}
            }
        }
        if ids.len() == before {
            return ids;
        }
    }
}

#[test]
fn two_pages_and_a_plain_client_chat_through_a_leader_kill() {
    if !have_browser() {
        return;
    }
    let c = Cluster::start_with_http(3, Timing::TEST, "");
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    eprintln!("screenshots: {}", artifacts.display());
    let args = serde_json::json!({
        "http": c.nodes.iter().map(|n| n.http_port.unwrap()).collect::<Vec<_>>(),
        "ports": c.nodes.iter().map(|n| n.port).collect::<Vec<_>>(),
        "leader": leader,
        "leader_pid": c.pid(leader).unwrap(),
        "chorus": env!("CARGO_BIN_EXE_chorus"),
        "artifacts": artifacts,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web_browser.py");
    let out = Command::new("timeout")
        .args(["300", "python3", script, &args.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "web_browser.py failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    // The pages' order is the surviving nodes' committed order.
    let order = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ORDER "))
        .expect("the script prints ORDER");
    let (room, ids) = order.split_once(' ').unwrap();
    let page: Vec<String> = serde_json::from_str(ids).unwrap();
    for i in (0..3).filter(|&i| i != leader) {
        let nodes = room_history(&c.addr(i), room);
        assert_eq!(
            nodes,
            page,
            "node {}'s HISTORY of #{room} differs from the pages",
            i + 1
        );
    }
    assert!(artifacts.join("phone-bob.png").exists());
}
