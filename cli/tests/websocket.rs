//! `/ws` on the HTTP port of real nodes, driven by a WebSocket client nobody
//! on chorus wrote (PyPI `websockets`, `ws_client.py`): CHAT and acks, two
//! lines in one frame, a follower's subscriber receiving a JSON-line client's
//! chats in order, a foreign Origin refused (403), an oversized frame closed
//! with 1009, a binary frame with 1003, a client that never answers pings
//! closed with 1008, a client that never reads disconnected with the leader's
//! RSS bounded while another session keeps chatting. Every wait is bounded.

#[path = "common/cluster.rs"]
mod cluster;

use cluster::{Cluster, Timing};
use std::process::Command;
use std::time::Duration;

const MAX_LINE: usize = 64 << 10;

fn have_websockets() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "python3 websockets is missing in CI (.ci/run installs it)"
        );
        eprintln!("python3 websockets not installed: skipping");
    }
    ok
}

pub fn run_client(c: &Cluster, leader: usize, ca: Option<&str>) {
    let follower = (leader + 1) % c.nodes.len();
    let mut args = serde_json::json!({
        "leader_http": c.nodes[leader].http_port.unwrap(),
        "follower_http": c.nodes[follower].http_port.unwrap(),
        "leader_port": c.nodes[leader].port,
        "leader_pid": c.pid(leader).unwrap(),
        "max_line": MAX_LINE,
    });
    if let Some(ca) = ca {
        args["ca"] = ca.into();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_client.py");
    let out = Command::new("timeout")
        .args(["120", "python3", script, &args.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "ws_client.py failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    assert!(stdout.contains("a normal close is answered with 1000"));
}

#[test]
fn websocket_sessions_carry_the_client_protocol_within_bounds() {
    if !have_websockets() {
        return;
    }
    let extra = format!(
        "max_line_bytes = {MAX_LINE}\nws_ping_interval_ms = 300\nws_pong_timeout_ms = 600\n"
    );
    let c = Cluster::start_with_http(3, Timing::TEST, &extra);
    let leader = c.wait_for_leader(Duration::from_secs(20));
    run_client(&c, leader, None);
}
