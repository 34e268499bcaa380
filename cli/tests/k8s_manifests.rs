//! deploy/k8s, offline: every manifest validates against the Kubernetes
//! schemas (`kubernetes-validate --strict`, from PyPI, installed by .ci/run;
//! a broken manifest is refused, so the check is not vacuous); and the
//! ConfigMap's shared config forms a real cluster the way the StatefulSet
//! starts it: three `chorus node --node-id-from-hostname` processes with
//! HOSTNAME chorus-0..2 and CHORUS_CLUSTER_SECRET, the shared config's peer
//! names pointed at loopback and its TLS files (`/etc/chorus-tls`, the
//! Secret chorus-tls) at certificates deploy/make-certs.sh made; the pods
//! are asked /status over https, verified against that CA. Bounded waits; only processes started here
//! are killed.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/tls_line.rs"]
mod tls_line;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn k8s() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

fn validate(files: &[PathBuf]) -> Option<(bool, String)> {
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let files: Vec<PathBuf> = ["configmap", "secret", "services", "statefulset", "pdb"]
        .iter()
        .map(|f| k8s().join(format!("{f}.yaml")))
        .collect();
    let Some((ok, text)) = validate(&files) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have kubernetes-validate"
        );
        eprintln!("kubernetes-validate not installed: skipping");
        return;
    };
    assert!(ok, "{text}");
    for kind in [
        "statefulset",
        "poddisruptionbudget",
        "service/chorus-peers",
        "service/chorus",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{kind}: {text}"
        );
    }
    // Not vacuous: a wrong type in the StatefulSet is refused.
    let dir = cluster::temp_dir("k8s");
    let bad = dir.join("bad.yaml");
    let sts = std::fs::read_to_string(k8s().join("statefulset.yaml")).unwrap();
    std::fs::write(&bad, sts.replace("replicas: 3", "replicas: three")).unwrap();
    let (ok, text) = validate(&[bad]).unwrap();
    assert!(!ok, "a broken manifest passed: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ConfigMap's node.toml (the YAML block scalar, unindented).
fn shared_config() -> String {
    let cm = std::fs::read_to_string(k8s().join("configmap.yaml")).unwrap();
    let start = cm.find("node.toml: |\n").unwrap() + "node.toml: |\n".len();
    cm[start..]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn the_shared_config_forms_a_cluster_from_pod_hostnames() {
    let _serial = cluster::one_at_a_time();
    let dir = cluster::temp_dir("k8s-pods");
    let certs = dir.join("certs");
    let made = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/make-certs.sh"))
        .arg("k8s")
        .arg(&certs)
        .env("CHORUS", env!("CARGO_BIN_EXE_chorus"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "make-certs.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls = tls_line::trust(&certs.join("ca.pem"));
    // A port `free_ports` handed out can be taken again (by another
    // process's outgoing connection) before the pod binds it: then that pod
    // exits at once, and the three pods start again on new ports.
    let (ports, procs) = (0..3)
        .find_map(|_| start_pods(&dir))
        .expect("three attempts to start the pods on free ports failed");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let ready: Vec<serde_json::Value> = (0..3)
            .filter_map(|i| tls_line::https_get(ports[3 + i], "/status", &tls))
            .filter_map(|(_, b)| serde_json::from_str(&b).ok())
            .filter(|s: &serde_json::Value| s["ready"] == true)
            .collect();
        if ready.len() == 3 {
            let mut ids: Vec<u64> = ready
                .iter()
                .map(|s| s["node_id"].as_u64().unwrap())
                .collect();
            ids.sort();
            assert_eq!(ids, [1, 2, 3], "node ids from the pod ordinals");
            assert!(ready.iter().all(|s| s["peer_links_up"] == 2));
            break;
        }
        assert!(Instant::now() < until, "the pods never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the three pods on fresh ports; `None` if one exits at once.
fn start_pods(dir: &std::path::Path) -> Option<(Vec<u16>, Procs)> {
    let ports = cluster::free_ports(6);
    // Pods differ by name, not port: on one loopback they need their own ports.
    let mut text = shared_config().replace("log_dir = \"/data\"", "").replace(
        "/etc/chorus-tls/",
        &format!("{}/", dir.join("certs").display()),
    );
    assert!(text.contains("[tls]"), "the shared config runs TLS: {text}");
    for (i, p) in ports[..3].iter().enumerate() {
        text = text.replace(
            &format!("host = \"chorus-{i}.chorus-peers\", port = 5001"),
            &format!("host = \"127.0.0.1\", port = {p}"),
        );
    }
    text = text
        .replace("host = \"chorus-0.chorus-peers\"", "host = \"127.0.0.1\"")
        .replace("listen_host = \"0.0.0.0\"", "listen_host = \"127.0.0.1\"")
        .replace("port = 5001\n", &format!("port = {}\n", ports[0]));
    assert!(!text.contains("chorus-peers"), "{text}");
    let mut procs = Procs(Vec::new());
    for i in 0..3 {
        // The only per-pod differences: hostname, data dir, HTTP port.
        let cfg = dir.join(format!("pod{i}.toml"));
        let http_port = ports[3 + i];
        let pod = text.replace("http_port = 8001", &format!("http_port = {http_port}"));
        let pod = format!(
            "log_dir = \"{}\"\n{pod}",
            dir.join(format!("data{i}")).display()
        );
        std::fs::write(&cfg, pod).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args([
                "node",
                "--node-id-from-hostname",
                "--log-format",
                "json",
                "--config",
            ])
            .arg(&cfg)
            .env("HOSTNAME", format!("chorus-{i}"))
            .env("CHORUS_CLUSTER_SECRET", "k8s-test-secret")
            .env_remove("CHORUS_NODE_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("pod{i}.log"))).unwrap())
            .spawn()
            .unwrap();
        procs.0.push(child);
    }
    std::thread::sleep(Duration::from_millis(300));
    if procs
        .0
        .iter_mut()
        .any(|c| c.try_wait().ok().flatten().is_some())
    {
        return None;
    }
    Some((ports, procs))
}
