//! A real Prometheus (Debian's `prometheus`) scraping a 3-node cluster every
//! 200 ms, with the shipped alert rules loaded. The test kills the leader and
//! asks Prometheus' HTTP query API: exactly one node reports the leader role
//! and it is the new one; the committed counter keeps growing. Also
//! `promtool check rules` and `check config` on deploy/prometheus/ (its
//! https scrape configs, beside a CA made by `chorus certs`).
//! Without prometheus installed the test says so and passes, except in CI.
//! Every wait is bounded; only processes started here are killed.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/http.rs"]
mod http;

use chat::Conn;
use cluster::{Cluster, Timing};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's result vector: (labels, value) per series.
fn query(port: u16, q: &str) -> Vec<(Value, f64)> {
    let Some((200, body)) = http::get(port, &format!("/api/v1/query?query={}", encode(q))) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| {
                    let val = s["value"][1]
                        .as_str()
                        .unwrap_or("nan")
                        .parse()
                        .unwrap_or(f64::NAN);
                    (s["metric"].clone(), val)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < until, "{what} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_sees_one_new_leader_and_commits_growing() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").is_err(), "CI must have prometheus");
        eprintln!("prometheus not installed: skipping");
        return;
    }
    let rules = deploy().join("alerts.yml");
    promtool(&["check", "rules", rules.to_str().unwrap()]);
    let mut c = Cluster::start_with_http(3, Timing::TEST, "");
    // The shipped scrape configs use https with ../certs/ca.pem (what
    // deploy/make-certs.sh writes): check them in a copy of that layout.
    let shipped = c.dir.join("shipped");
    std::fs::create_dir_all(shipped.join("prometheus")).unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["certs", "init"])
        .arg(shipped.join("certs"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for f in ["prometheus.yml", "prometheus-host.yml", "alerts.yml"] {
        std::fs::copy(deploy().join(f), shipped.join("prometheus").join(f)).unwrap();
    }
    for f in ["prometheus.yml", "prometheus-host.yml"] {
        let copy = shipped.join("prometheus").join(f);
        promtool(&["check", "config", copy.to_str().unwrap()]);
    }
    let leader = c.wait_for_leader(WAIT);
    let dir = c.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let targets: Vec<String> = c
        .nodes
        .iter()
        .map(|n| {
            format!(
                "      - targets: [\"127.0.0.1:{}\"]\n        labels: {{ node: n{} }}\n",
                n.http_port.unwrap(),
                n.id
            )
        })
        .collect();
    let config = format!(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n  evaluation_interval: 200ms\n\
         rule_files:\n  - {}\nscrape_configs:\n  - job_name: chorus\n    static_configs:\n{}",
        rules.display(),
        targets.concat()
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = cluster::free_ports(1)[0];
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus starts"),
    );
    wait_for("Prometheus scrapes all 3 nodes", || {
        let up = query(port, "up{job=\"chorus\"} == 1");
        up.len() == 3
    });
    let node_of = |labels: &Value| labels["node"].as_str().unwrap_or("").to_string();
    let leaders = query(port, "chorus_role{role=\"leader\"} == 1");
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    assert_eq!(node_of(&leaders[0].0), format!("n{}", leader + 1));
    let mut conn = Conn::connect(&c.addr(leader)).unwrap();
    for i in 0..10 {
        conn.chat_acked(&format!("a{i}"), "x", Duration::from_secs(10));
    }
    let committed = |q: &str| query(port, q).first().map_or(0.0, |s| s.1);
    wait_for(
        "every node's scraped delivery point reaches the chats",
        || committed("min(chorus_delivered_seq)") >= 11.0,
    );
    let counter = |i: usize| {
        committed(&format!(
            "chorus_messages_committed_total{{node=\"n{}\"}}",
            i + 1
        ))
    };
    let before: Vec<f64> = (0..3).map(counter).collect();
    c.kill(leader);
    let new = c.wait_for_leader(WAIT);
    assert_ne!(new, leader);
    let mut conn = Conn::connect(&c.addr(new)).unwrap();
    for i in 0..10 {
        conn.chat_acked(&format!("b{i}"), "x", Duration::from_secs(10));
    }
    wait_for("exactly one leader, the new one, in Prometheus", || {
        let l = query(port, "chorus_role{role=\"leader\"} == 1");
        l.len() == 1 && node_of(&l[0].0) == format!("n{}", new + 1)
    });
    wait_for("the committed counter grows on both survivors", || {
        (0..3)
            .filter(|&i| i != leader)
            .all(|i| counter(i) >= before[i] + 10.0)
    });
    let down = query(port, "up{job=\"chorus\"} == 0");
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(node_of(&down[0].0), format!("n{}", leader + 1));
}
