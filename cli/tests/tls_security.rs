//! TLS against real `chorus node` processes, with certificates made by
//! `chorus certs`: a TLS 3-node cluster elects, chats and survives a leader
//! kill; a plaintext client on the TLS port gets nothing useful and the node
//! keeps serving; a node whose certificate comes from another CA cannot join,
//! nor one that presents another node's certificate;
//! a man in the middle on a peer link (a proxy terminating TLS with its own
//! certificate for the same names, even a CA of the same name) is refused; hostile TLS input (garbage,
//! truncated handshakes, 2,000 idle handshakes) leaves RSS bounded and the
//! node serving; SIGHUP replaces the certificate without a restart.
//! Every wait is bounded; only processes started here are killed, by handle.

#[path = "common/cluster.rs"]
mod cluster;

use chorus_core::client_wire::{NodeStatus, ServerLine};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");
const WAIT: Duration = Duration::from_secs(20);

fn chorus(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().expect("run chorus");
    assert!(
        out.status.success(),
        "chorus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA in `dir` and certificates for nodes `ids`.
fn make_ca(dir: &Path, ids: &[u64]) {
    chorus(&["certs", "init", dir.to_str().unwrap()]);
    for id in ids {
        chorus(&[
            "certs",
            "node",
            &id.to_string(),
            "--dir",
            dir.to_str().unwrap(),
        ]);
    }
}

/// Nodes of one test: killed (by their own handle) when dropped.
struct Nodes {
    dir: PathBuf,
    ports: Vec<u16>,
    /// HTTP ports (https with `[tls]`), when the test asked for them.
    http_ports: Vec<u16>,
    procs: Vec<Option<Child>>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in self.procs.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where node `id` finds its certificate, key and CA.
struct Certs {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn certs_in(dir: &Path, id: u64) -> Certs {
    Certs {
        cert: dir.join(format!("node{id}.pem")),
        key: dir.join(format!("node{id}.key")),
        ca: dir.join("ca.pem"),
    }
}

impl Nodes {
    /// Configs for `n` nodes; node i dials node j at `dial_port(i, j)`.
    fn write(
        dir: &Path,
        n: usize,
        certs: impl Fn(u64) -> Certs,
        dial_port: impl Fn(usize, usize, &[u16]) -> u16,
    ) -> Nodes {
        Nodes::write_with(dir, n, certs, dial_port, None)
    }

    /// `write`; with `http`, each node also serves HTTP on a free port, with
    /// `http` (top-level TOML keys) added to its config.
    fn write_with(
        dir: &Path,
        n: usize,
        certs: impl Fn(u64) -> Certs,
        dial_port: impl Fn(usize, usize, &[u16]) -> u16,
        http: Option<&str>,
    ) -> Nodes {
        let all = cluster::free_ports(if http.is_some() { 2 * n } else { n });
        let (ports, http_ports) = all.split_at(n);
        let (ports, http_ports) = (ports.to_vec(), http_ports.to_vec());
        for i in 0..n {
            let id = i as u64 + 1;
            let c = certs(id);
            let mut t = format!(
                "node_id = {id}\nhost = \"127.0.0.1\"\nport = {}\nlog_dir = {:?}\n\
                 cluster_secret = \"tls-test\"\nheartbeat_interval_ms = 200\nleader_timeout_ms = 1200\n",
                ports[i],
                dir.join(format!("node{id}")).display().to_string(),
            );
            if let Some(extra) = http {
                t.push_str(&format!("http_port = {}\n{extra}", http_ports[i]));
            }
            for j in (0..n).filter(|&j| j != i) {
                t.push_str(&format!(
                    "\n[[seed_nodes]]\nnode_id = {}\nhost = \"127.0.0.1\"\nport = {}\n",
                    j + 1,
                    dial_port(i, j, &ports)
                ));
            }
            t.push_str(&format!(
                "\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
                c.cert.display().to_string(),
                c.key.display().to_string(),
                c.ca.display().to_string()
            ));
            fs::write(dir.join(format!("node{id}.toml")), t).unwrap();
        }
        Nodes {
            dir: dir.to_path_buf(),
            ports,
            http_ports,
            procs: (0..n).map(|_| None).collect(),
        }
    }

    fn start(&mut self, i: usize) {
        let log = fs::File::create(self.log_path(i)).unwrap();
        let child = Command::new(BIN)
            .arg("node")
            .arg("--config")
            .arg(self.dir.join(format!("node{}.toml", i + 1)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start chorus node");
        self.procs[i] = Some(child);
    }

    fn start_all(&mut self) {
        for i in 0..self.procs.len() {
            self.start(i);
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pid(&self, i: usize) -> u32 {
        self.procs[i].as_ref().expect("node runs").id()
    }

    fn running(&mut self, i: usize) -> bool {
        self.procs[i]
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{}.log", i + 1))
    }

    fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        (0..self.procs.len())
            .map(|i| format!("--- node {}\n{}", i + 1, self.log(i)))
            .collect()
    }

    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    fn status(&self, i: usize, tls: &Arc<ClientConfig>) -> Option<NodeStatus> {
        let mut c = TlsLine::connect(&self.addr(i), tls).ok()?;
        c.send(br#"{"type":"STATUS"}"#).ok()?;
        for _ in 0..50 {
            if let ServerLine::Status(st) = c.recv(Duration::from_secs(1))? {
                return Some(st);
            }
        }
        None
    }

    /// Index of a leader that a majority of `of` follows.
    fn wait_leader(&self, of: &[usize], tls: &Arc<ClientConfig>) -> usize {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let st: Vec<_> = of.iter().filter_map(|&i| self.status(i, tls)).collect();
            for s in &st {
                let agree = st.iter().filter(|o| o.leader == Some(s.node_id)).count();
                if s.role == "leader" && agree > of.len() / 2 {
                    return s.node_id as usize - 1;
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("no leader among {of:?} within {WAIT:?}\n{}", self.logs());
    }
}

/// A blocking TLS line connection, as a chorus client makes.
struct TlsLine {
    s: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsLine {
    fn connect(addr: &str, tls: &Arc<ClientConfig>) -> std::io::Result<TlsLine> {
        let sock = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1))?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        sock.set_write_timeout(Some(Duration::from_secs(2)))?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut conn = ClientConnection::new(tls.clone(), name).map_err(std::io::Error::other)?;
        let mut sock = sock;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        let mut line = TlsLine {
            s: BufReader::new(StreamOwned::new(conn, sock)),
        };
        // chorus's dialect: without HELLO a client gets only SEQ_CHAT lines.
        line.send(br#"{"type":"HELLO","proto":2,"client":"tls_security-test/0"}"#)?;
        Ok(line)
    }

    fn peer_cert(&self) -> Vec<u8> {
        self.s.get_ref().conn.peer_certificates().unwrap()[0].to_vec()
    }

    fn send(&mut self, line: &[u8]) -> std::io::Result<()> {
        let w = self.s.get_mut();
        w.write_all(line)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    fn recv(&mut self, timeout: Duration) -> Option<ServerLine> {
        self.s.get_ref().sock.set_read_timeout(Some(timeout)).ok()?;
        let mut line = String::new();
        match self.s.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).ok(),
            _ => None,
        }
    }

    /// One CHAT until its CHAT_ACK (other lines skipped); the seq_no.
    fn chat(&mut self, msg_id: &str) -> Option<u64> {
        let line = format!(
            r#"{{"type":"CHAT","sender_id":7,"room_id":"general","msg_id":"{msg_id}","payload":"hi"}}"#
        );
        self.send(line.as_bytes()).ok()?;
        for _ in 0..50 {
            match self.recv(Duration::from_secs(5))? {
                ServerLine::ChatAck { msg_id: m, seq_no } if m == msg_id => return Some(seq_no),
                ServerLine::Error { .. } => return None,
                _ => {}
            }
        }
        None
    }
}

fn client_tls(ca: &Path) -> Arc<ClientConfig> {
    chorus_runtime_mio::tls::client_config(ca, None).unwrap()
}

/// A chat acknowledged on node `i` within `WAIT` (retried: a failover may
/// be in progress).
fn chat_eventually(n: &Nodes, i: usize, tls: &Arc<ClientConfig>, msg_id: &str) -> u64 {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(seq) = TlsLine::connect(&n.addr(i), tls)
            .ok()
            .and_then(|mut c| c.chat(msg_id))
        {
            return seq;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("{msg_id} not acknowledged on node {}\n{}", i + 1, n.logs());
}

#[test]
fn tls_cluster_elects_chats_survives_a_leader_kill_and_ignores_plaintext() {
    let dir = cluster::temp_dir("tls-cluster");
    make_ca(&dir.join("ca"), &[1, 2, 3]);
    let mut n = Nodes::write(&dir, 3, |id| certs_in(&dir.join("ca"), id), |_, j, p| p[j]);
    n.start_all();
    let tls = client_tls(&dir.join("ca/ca.pem"));
    let leader = n.wait_leader(&[0, 1, 2], &tls);
    let follower = (leader + 1) % 3;
    let s1 = chat_eventually(&n, follower, &tls, "tls-1");

    // A plaintext client on the TLS port: no chorus line comes back, only a
    // TLS alert; its connection is closed; the node serves the next client.
    let mut plain = TcpStream::connect(n.addr(follower)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"{\"type\":\"STATUS\"}\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("STATUS"),
        "a plaintext client got {got:?}"
    );
    assert!(got.len() < 16, "more than an alert: {got:?}");
    assert!(n.log(follower).contains("(TLS)"), "{}", n.log(follower));
    assert!(!n.log(follower).contains("PLAINTEXT"));

    n.kill(leader);
    let rest: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = n.wait_leader(&rest, &tls);
    assert_ne!(new_leader, leader);
    let s2 = chat_eventually(&n, rest[0], &tls, "tls-2");
    assert!(s2 > s1, "seq {s2} after {s1}");
    // Nodes log peer links as TLS-authenticated both ways.
    assert!(n.log(new_leader).contains("authenticated"), "{}", n.logs());
}

#[test]
fn a_node_with_a_certificate_of_another_ca_cannot_join() {
    let dir = cluster::temp_dir("tls-foreign");
    make_ca(&dir.join("ca"), &[1, 2]);
    make_ca(&dir.join("evil"), &[3]);
    // Node 3 trusts the real CA but its own certificate is from another one.
    let certs = |id| {
        let mut c = certs_in(&dir.join(if id == 3 { "evil" } else { "ca" }), id);
        c.ca = dir.join("ca/ca.pem");
        c
    };
    let mut n = Nodes::write(&dir, 3, certs, |_, j, p| p[j]);
    n.start_all();
    let tls = client_tls(&dir.join("ca/ca.pem"));
    n.wait_leader(&[0, 1], &tls);
    thread::sleep(Duration::from_secs(2)); // many dial attempts both ways
    for i in 0..2 {
        let log = n.log(i);
        assert!(!log.contains("n3 authenticated"), "{log}");
        assert!(!log.contains("linked to n3"), "{log}");
    }
    let log3 = n.log(2);
    assert!(!log3.contains("linked to"), "{log3}");
    assert!(!log3.contains("authenticated"), "{log3}");
    let evil = client_tls(&dir.join("evil/ca.pem"));
    let st3 = n.status(2, &evil).expect("node 3 answers its own clients");
    assert_eq!(st3.leader, None, "node 3 joined: {st3:?}");
}

#[test]
fn a_node_presenting_another_nodes_certificate_cannot_join() {
    let dir = cluster::temp_dir("tls-stolen");
    make_ca(&dir.join("ca"), &[1, 2]);
    // Node 3 holds node 2's key and certificate (valid, same CA) and the
    // cluster secret, but claims id 3: peers check the id the certificate names.
    let certs = |id| certs_in(&dir.join("ca"), if id == 3 { 2 } else { id });
    let mut n = Nodes::write(&dir, 3, certs, |_, j, p| p[j]);
    n.start_all();
    let tls = client_tls(&dir.join("ca/ca.pem"));
    n.wait_leader(&[0, 1], &tls);
    thread::sleep(Duration::from_secs(2)); // many dial attempts both ways
    for i in 0..2 {
        let log = n.log(i);
        assert!(!log.contains("n3 authenticated"), "{log}");
        assert!(!log.contains("linked to n3"), "{log}");
        assert!(
            log.contains("not for node3.chorus"),
            "no refusal logged on node {}: {log}",
            i + 1
        );
    }
    assert_eq!(n.status(2, &tls).expect("node 3 answers").leader, None);
}

/// A proxy that terminates TLS with its own certificate (valid names, wrong
/// CA), where a node expects its peer; counts handshakes begun and completed.
/// It never gets far enough to relay anything.
fn mitm_proxy(cert: &Certs) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (begun, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b, d) = (begun.clone(), done.clone());
    thread::spawn(move || {
        // Bounded: the test ends well before this many connections.
        for mut sock in listener.incoming().take(200).flatten() {
            b.fetch_add(1, Ordering::SeqCst);
            let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut ok = true;
            while conn.is_handshaking() && ok {
                ok = conn.complete_io(&mut sock).is_ok();
            }
            if ok {
                d.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, begun, done)
}

#[test]
fn a_man_in_the_middle_on_a_peer_link_is_refused() {
    let dir = cluster::temp_dir("tls-mitm");
    make_ca(&dir.join("ca"), &[1, 2, 3]);
    make_ca(&dir.join("evil"), &[2]); // the proxy impersonates node 2
    let (proxy, begun, done) = mitm_proxy(&certs_in(&dir.join("evil"), 2));
    // Node 1 reaches node 2 through the proxy; every other link is direct.
    let via = |i: usize, j: usize, ports: &[u16]| if (i, j) == (0, 1) { proxy } else { ports[j] };
    let mut n = Nodes::write(&dir, 3, |id| certs_in(&dir.join("ca"), id), via);
    n.start_all();
    let tls = client_tls(&dir.join("ca/ca.pem"));
    n.wait_leader(&[0, 1, 2], &tls);
    let deadline = Instant::now() + WAIT;
    while begun.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        begun.load(Ordering::SeqCst) >= 2,
        "node 1 never dialed the proxy\n{}",
        n.logs()
    );
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "a TLS handshake with the proxy succeeded"
    );
    // Node 1 refused the proxy's certificate and never linked through it
    // (it may link to node 2 directly once the cluster tells it node 2's
    // real address).
    // The refusal is logged when node 1's dial fails; under load that line
    // can land a moment after the proxy saw the handshake begin.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = |log: &str| {
        log.lines()
            .any(|l| l.contains("cannot reach n2") && l.contains("invalid peer certificate"))
    };
    let mut log1 = n.log(0);
    while !refused(&log1) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        log1 = n.log(0);
    }
    assert!(
        !log1.contains(&format!("(127.0.0.1:{proxy}))")),
        "linked via the proxy: {log1}"
    );
    // Node 1 logs the refusal when its own dial through the proxy fails.
    // Sometimes node 2 dials node 1 first: node 1's dial is then superseded
    // and it learns node 2's real address before its handshake with the
    // proxy ends, so no refusal is logged; what must hold either way is
    // asserted above (no handshake with the proxy completed) and just here
    // (no link through it).
    assert!(
        refused(&log1) || log1.contains("peer n2 moved to"),
        "neither refused the proxy nor learned n2's real address: {log1}"
    );
    // The cluster carries on over the other links.
    chat_eventually(&n, 0, &tls, "around-the-mitm");
}

fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The first bytes of a real TLS ClientHello.
fn client_hello_prefix(tls: &Arc<ClientConfig>, len: usize) -> Vec<u8> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut c = ClientConnection::new(tls.clone(), name).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    out.truncate(len);
    out
}

#[test]
fn hostile_tls_input_leaves_the_node_serving_with_bounded_memory() {
    // The node inherits our fd limit: 2,000 sockets need more than 1,024.
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(lim.maximum.unwrap_or(8192).min(8192)),
            maximum: lim.maximum,
        },
    )
    .unwrap();
    let dir = cluster::temp_dir("tls-hostile");
    make_ca(&dir.join("ca"), &[1]);
    let mut n = Nodes::write(&dir, 1, |id| certs_in(&dir.join("ca"), id), |_, j, p| p[j]);
    // All come from 127.0.0.1: lift the per-address bound (256) so the node
    // holds as many half-handshakes as its overall bound (1,024) allows.
    let cfg = dir.join("node1.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("max_connections_per_address = 4000\n{text}")).unwrap();
    n.start_all();
    let tls = client_tls(&dir.join("ca/ca.pem"));
    n.wait_leader(&[0], &tls);
    let pid = n.pid(0);
    let before = rss_kib(pid);

    // Garbage, and a truncated handshake that then hangs up.
    for bytes in [
        b"\x16\x03\x01\xff\xffgarbage that is not TLS at all".to_vec(),
        vec![0u8; 4096],
        client_hello_prefix(&tls, 40),
    ] {
        let mut s = TcpStream::connect(n.addr(0)).unwrap();
        s.write_all(&bytes).unwrap();
        drop(s);
    }
    // 2,000 idle handshakes: half a ClientHello each, then silence.
    let hello = client_hello_prefix(&tls, 60);
    let mut idle = Vec::new();
    for _ in 0..2000 {
        if let Ok(mut s) = TcpStream::connect(n.addr(0)) {
            let _ = s.write_all(&hello);
            idle.push(s);
        }
    }
    thread::sleep(Duration::from_millis(500));
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!("{} idle handshakes open, node RSS +{grown} KiB", idle.len());
    assert!(n.running(0), "{}", n.log(0));
    assert!(grown < 32 * 1024, "2,000 idle handshakes cost {grown} KiB");
    // Unfinished handshakes are dropped after handshake_timeout (3 s), so a
    // real client gets in at the latest then, while the idle ones stay open.
    let served = chat_eventually(&n, 0, &tls, "after-the-flood");
    assert!(served >= 1);
    drop(idle);
    assert!(n.running(0));
    let after = n.status(0, &tls).expect("STATUS after the flood");
    assert_eq!(after.role, "leader");
}

#[test]
fn sighup_replaces_the_certificate_without_a_restart() {
    let dir = cluster::temp_dir("tls-reload");
    make_ca(&dir.join("ca"), &[1]);
    let mut n = Nodes::write(&dir, 1, |id| certs_in(&dir.join("ca"), id), |_, j, p| p[j]);
    n.start_all();
    let tls = client_tls(&dir.join("ca/ca.pem"));
    n.wait_leader(&[0], &tls);
    let mut old = TlsLine::connect(&n.addr(0), &tls).unwrap();
    let old_cert = old.peer_cert();

    // A new certificate from the same CA, moved over the files in place.
    let fresh = dir.join("fresh");
    fs::create_dir_all(&fresh).unwrap();
    fs::copy(dir.join("ca/ca.pem"), fresh.join("ca.pem")).unwrap();
    fs::copy(dir.join("ca/ca.key"), fresh.join("ca.key")).unwrap();
    chorus(&["certs", "node", "1", "--dir", fresh.to_str().unwrap()]);
    fs::copy(fresh.join("node1.pem"), dir.join("ca/node1.pem")).unwrap();
    fs::copy(fresh.join("node1.key"), dir.join("ca/node1.key")).unwrap();
    let hup = |n: &Nodes| {
        let pid = rustix::process::Pid::from_raw(n.pid(0) as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    };
    let wait_log = |n: &Nodes, what: &str, count: usize| {
        let deadline = Instant::now() + WAIT;
        while n.log(0).matches(what).count() < count {
            assert!(Instant::now() < deadline, "no {what:?} in\n{}", n.log(0));
            thread::sleep(Duration::from_millis(50));
        }
    };
    hup(&n);
    wait_log(&n, "reloaded TLS certificate", 1);
    let new = TlsLine::connect(&n.addr(0), &tls).unwrap();
    assert_ne!(new.peer_cert(), old_cert, "still the old certificate");
    assert_eq!(new.peer_cert(), {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_file(fresh.join("node1.pem"))
            .unwrap()
            .to_vec()
    });
    // The connection made before the reload carries on.
    assert!(old.chat("before-reload-conn").is_some());

    // A broken file: the reload is refused and the node keeps the last good one.
    fs::write(dir.join("ca/node1.pem"), "not a certificate").unwrap();
    hup(&n);
    wait_log(&n, "TLS reload failed", 1);
    assert!(n.running(0));
    let after = TlsLine::connect(&n.addr(0), &tls).unwrap();
    assert_eq!(after.peer_cert(), new.peer_cert());
}

/// `GET path` over https to `addr`, verifying the node against `tls`'s CA;
/// the whole answer (the node closes after it: `Connection: close`).
fn https_get(addr: &str, path: &str, tls: &Arc<ClientConfig>) -> std::io::Result<String> {
    let sock = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = ClientConnection::new(tls.clone(), name).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, sock);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The /ws checks of `websocket.rs` (PyPI `websockets`, `ws_client.py`), over
/// wss with an ssl context that trusts only `ca`; the JSON-line client there
/// uses TLS too.
fn wss_client_checks(n: &Nodes, leader: usize, ca: &Path) {
    let have = Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("CI").is_err(),
            "python3 websockets is missing in CI (.ci/run installs it)"
        );
        eprintln!("python3 websockets not installed: skipping the wss checks");
        return;
    }
    let follower = (leader + 1) % n.ports.len();
    let args = serde_json::json!({
        "leader_http": n.http_ports[leader],
        "follower_http": n.http_ports[follower],
        "leader_port": n.ports[leader],
        "leader_pid": n.pid(leader),
        "max_line": 64 << 10,
        "ca": ca.display().to_string(),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_client.py");
    let out = Command::new("timeout")
        .args(["120", "python3", script, &args.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "ws_client.py over wss failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        n.logs()
    );
    assert!(stdout.contains("a normal close is answered with 1000"));
}

#[test]
fn the_http_port_serves_https_and_wss_with_the_node_certificate() {
    let dir = cluster::temp_dir("tls-http");
    make_ca(&dir.join("ca"), &[1, 2, 3]);
    let http = "max_line_bytes = 65536\nws_ping_interval_ms = 300\nws_pong_timeout_ms = 600\n";
    let mut n = Nodes::write_with(
        &dir,
        3,
        |id| certs_in(&dir.join("ca"), id),
        |_, j, p| p[j],
        Some(http),
    );
    n.start_all();
    let ca = dir.join("ca/ca.pem");
    let tls = client_tls(&ca);
    let leader = n.wait_leader(&[0, 1, 2], &tls);
    let http_addrs: Vec<String> = n
        .http_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    for i in 0..3 {
        assert!(n.log(i).contains("serves HTTPS"), "{}", n.log(i));
    }

    // https: /metrics and /status, the node verified against the CA.
    let metrics = https_get(&http_addrs[leader], "/metrics", &tls).unwrap();
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("chorus_messages_committed_total"));
    // A client trusting another CA refuses the node.
    let other = dir.join("other");
    make_ca(&other, &[]);
    let err = https_get(
        &http_addrs[leader],
        "/healthz",
        &client_tls(&other.join("ca.pem")),
    );
    assert!(
        err.as_ref().map_or(true, |a| a.is_empty()),
        "a client of another CA got {err:?}"
    );

    // `chorus status --ca` over https: every node, one leader.
    let connect = http_addrs.join(",");
    let out = Command::new(BIN)
        .args(["status", "--json", "--connect", &connect, "--ca"])
        .arg(&ca)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chorus status --ca: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        report["leader"],
        serde_json::json!(leader as u64 + 1),
        "{text}"
    );
    assert!(
        text.contains("\"client_sessions\""),
        "answered by /status: {text}"
    );
    // Without --ca it speaks plaintext HTTP, which a TLS port does not answer.
    let out = Command::new(BIN)
        .args([
            "status",
            "--json",
            "--timeout-ms",
            "1000",
            "--connect",
            &http_addrs[0],
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Plaintext HTTP on the https port: no HTTP answer (a TLS alert at most),
    // and the port serves the next client.
    let mut plain = TcpStream::connect(&http_addrs[leader]).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
        "{got:?}"
    );
    assert!(got.len() < 16, "more than an alert: {got:?}");
    let again = https_get(&http_addrs[leader], "/healthz", &tls).unwrap();
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");

    wss_client_checks(&n, leader, &ca);
}
