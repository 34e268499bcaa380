//! `chorus status --connect` against real nodes: the table and `--json` with
//! every node up (exit 0), the client port answered through the STATUS line,
//! a killed node reported unreachable (exit 1); and `chorus node
//! --log-format json` writing one JSON object per line. Bounded waits; only
//! processes started here are killed.

#[path = "common/cluster.rs"]
mod cluster;

use cluster::{Cluster, Timing};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

fn status(addrs: &[String], json: bool) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["status", "--connect", &addrs.join(",")]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn status_table_json_and_exit_codes() {
    let _serial = cluster::one_at_a_time();
    let mut c = Cluster::start_with_http(3, Timing::TEST, "");
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let http: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.http_port.unwrap()))
        .collect();
    let (code, table) = status(&http, false);
    assert_eq!(code, 0, "{table}");
    assert!(table.starts_with("ADDRESS"), "{table}");
    assert_eq!(table.matches(" leader  ").count(), 1, "{table}");
    assert!(
        table.contains(&format!("ok: leader n{}", leader + 1)),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "no colour in a pipe");
    let (code, json) = status(&http, true);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["leader"], leader as u64 + 1);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
    assert!(v["nodes"][0]["status"]["uptime_s"].is_u64(), "{json}");
    // A client port works too (STATUS line; sessions unknown).
    let (code, t) = status(&[c.addr(leader)], false);
    assert_eq!(code, 0, "{t}");
    assert!(t.contains(" leader "), "{t}");
    // A dead node: reported, exit 1.
    let victim = (leader + 1) % 3;
    c.kill(victim);
    let (code, json) = status(&http, true);
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["nodes"][victim]["error"].is_string(), "{json}");
    assert_eq!(v["ok"], false);
}

#[test]
fn node_logs_json_lines() {
    let _serial = cluster::one_at_a_time();
    let dir = cluster::temp_dir("jsonlog");
    let port = cluster::free_ports(1)[0];
    let cfg = dir.join("n.toml");
    std::fs::write(
        &cfg,
        format!(
            "node_id = 1\nhost = \"127.0.0.1\"\nport = {port}\nlog_dir = \"{}\"\n",
            dir.join("d").display()
        ),
    )
    .unwrap();
    let err = dir.join("stderr");
    let mut child = Command::new(BIN)
        .args(["node", "--log-format", "json", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&err).unwrap_or_default();
        if t.contains("is the leader") || Instant::now() > until {
            break t;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|v| v["level"].is_string() && v["timestamp"].is_string()));
    let msg = |v: &serde_json::Value| v["fields"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        lines.iter().any(|v| msg(v).contains("listening on")),
        "{text}"
    );
    assert!(
        lines.iter().any(|v| msg(v).contains("is the leader")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
