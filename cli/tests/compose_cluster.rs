//! The seed's demo scenario 2 in containers: builds the image
//! (deploy/build-image.sh around the binary under test), makes the CA and
//! node certificates (deploy/make-certs.sh, into a temporary directory the
//! compose file mounts through CHORUS_CERTS), brings deploy/compose.yaml up
//! with podman-compose on free published ports, every link TLS (the client
//! and HTTP ports are reached over TLS, verified against that CA),
//! chats through a published client port, stops the leader's container,
//! checks that a new leader sequences and nothing acknowledged is lost,
//! starts the container again and checks that it caught up (HISTORY on its
//! own published port). Everything it created (containers, network,
//! volumes, image) is removed by a guard, also when the test fails.
//!
//! Needs root, podman, runc and podman-compose (.ci/run installs them and
//! writes /etc/containers/containers.conf). Without podman-compose the test
//! says so and passes, except in CI, where it fails.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/tls_line.rs"]
mod tls_line;

use rustls::ClientConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tls_line::TlsConn;

const WAIT: Duration = Duration::from_secs(30);
const ACK_WAIT: Duration = Duration::from_secs(10);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The compose project; `down -v` and `rmi` on drop.
struct Project {
    name: String,
    image: String,
    env: Vec<(String, String)>,
}

impl Project {
    fn compose(&self, args: &[&str]) -> Output {
        let out = Command::new("podman-compose")
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(repo().join("deploy/compose.yaml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("podman-compose runs");
        assert!(
            out.status.success() || args[0] == "down",
            "podman-compose {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn container(&self, node: usize) -> String {
        format!("{}_chat_node{}_1", self.name, node + 1)
    }

    fn podman(&self, args: &[&str]) {
        let out = Command::new("podman").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..3 {
                let _ = Command::new("podman")
                    .args(["logs", "--tail", "30", &self.container(i)])
                    .status();
            }
        }
        self.compose(&["down", "-v"]);
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn status(http_port: u16, tls: &Arc<ClientConfig>) -> Option<Value> {
    let (code, body) = tls_line::https_get(http_port, "/status", tls)?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// Waits for one of `nodes` to be leader in a term above `after`.
fn wait_leader(http: &[u16], nodes: &[usize], after: u64, tls: &Arc<ClientConfig>) -> (usize, u64) {
    let until = Instant::now() + WAIT;
    loop {
        for &i in nodes {
            if let Some(s) = status(http[i], tls) {
                let term = s["term"].as_u64().unwrap_or(0);
                if s["role"] == "leader" && term > after {
                    return (i, term);
                }
            }
        }
        assert!(
            Instant::now() < until,
            "no leader among {nodes:?} within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every chat in node's log (HISTORY from seq 1): msg_id -> seq_no.
fn history(port: u16, tls: &Arc<ClientConfig>) -> BTreeMap<String, u64> {
    let mut c = TlsConn::connect(port, tls).unwrap();
    c.send(&json!({"type": "HISTORY", "from_seq": 1, "limit": 1000}))
        .unwrap();
    let mut seen = BTreeMap::new();
    loop {
        let v = c.recv(ACK_WAIT).unwrap().expect("HISTORY answered");
        match v["type"].as_str() {
            Some("SEQ_CHAT") => {
                seen.insert(
                    v["msg_id"].as_str().unwrap().to_string(),
                    v["seq_no"].as_u64().unwrap(),
                );
            }
            Some("HISTORY_END") => return seen,
            _ => panic!("unexpected {v}"),
        }
    }
}

fn chat_through(
    port: u16,
    prefix: &str,
    n: usize,
    acked: &mut BTreeMap<String, u64>,
    tls: &Arc<ClientConfig>,
) {
    let mut c = TlsConn::connect(port, tls).unwrap();
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let seq = c.chat_acked(&id, "hello from a container", ACK_WAIT);
        acked.insert(id, seq);
    }
}

#[test]
fn compose_cluster_survives_the_leader_container_stopping() {
    if Command::new("podman-compose")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").is_err(), "CI must have podman-compose");
        eprintln!("podman-compose not installed: skipping the container test");
        return;
    }
    let ports = cluster::free_ports(6);
    let (client, http) = (ports[..3].to_vec(), ports[3..].to_vec());
    let pid = std::process::id();
    let image = format!("localhost/chorus:e2e-{pid}");
    let certs = cluster::temp_dir("compose-certs");
    let made = Command::new(repo().join("deploy/make-certs.sh"))
        .arg("compose")
        .arg(&certs)
        .env("CHORUS", env!("CARGO_BIN_EXE_chorus"))
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "make-certs.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls = tls_line::trust(&certs.join("ca.pem"));
    let tls = &tls;
    let mut env = vec![
        ("CHORUS_IMAGE".to_string(), image.clone()),
        ("CHORUS_CERTS".to_string(), certs.display().to_string()),
    ];
    for i in 0..3 {
        env.push((format!("CHORUS_PORT{}", i + 1), client[i].to_string()));
        env.push((format!("CHORUS_HTTP{}", i + 1), http[i].to_string()));
    }
    let p = Project {
        name: format!("chorus-e2e-{pid}"),
        image: image.clone(),
        env,
    };
    let built = Command::new(repo().join("deploy/build-image.sh"))
        .arg(env!("CARGO_BIN_EXE_chorus"))
        .arg(&image)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    p.compose(&["up", "-d"]);
    let (leader, term) = wait_leader(&http, &[0, 1, 2], 0, tls);
    let mut acked = BTreeMap::new();
    // Through node 1's published port, whoever leads (followers forward).
    chat_through(client[0], "before-", 20, &mut acked, tls);
    // Stop the leader's container (SIGTERM, then SIGKILL after 5 s).
    p.podman(&["stop", "-t", "5", &p.container(leader)]);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (new_leader, _) = wait_leader(&http, &survivors, term, tls);
    assert_ne!(new_leader, leader);
    chat_through(client[survivors[0]], "after-", 20, &mut acked, tls);
    let top = *acked.values().max().unwrap();
    for &i in &survivors {
        let h = history(client[i], tls);
        for (id, seq) in &acked {
            assert_eq!(h.get(id), Some(seq), "n{} lost or moved {id}", i + 1);
        }
    }
    // Back again: it catches up on what it missed.
    p.podman(&["start", &p.container(leader)]);
    let until = Instant::now() + WAIT;
    while status(http[leader], tls)
        .and_then(|s| s["commit_seq"].as_u64())
        .unwrap_or(0)
        < top
    {
        assert!(Instant::now() < until, "the restarted node never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = history(client[leader], tls);
    for (id, seq) in &acked {
        assert_eq!(
            h.get(id),
            Some(seq),
            "restarted n{} misses {id}",
            leader + 1
        );
    }
    assert_eq!(h.len(), acked.len(), "no extra or duplicated chats");
    let _ = std::fs::remove_dir_all(&certs);
}
