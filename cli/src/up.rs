//! `chorus up`: a local cluster in one command. Starts N `chorus node` child
//! processes (this same executable) on 127.0.0.1 with generated configs, waits
//! until they elected a leader, then opens the chat client on node 1 (or, with
//! `--no-client`, waits), and stops every node it started when the client exits
//! or on Ctrl-C / SIGTERM / SIGHUP.
//!
//! Invariants: only processes this command spawned are signalled, by PID
//! (SIGTERM, then SIGKILL after `STOP_GRACE`); every exit path, including
//! errors, goes through `Cluster`'s Drop, which stops them; every wait is
//! bounded. The nodes run in their own process group, so a terminal's Ctrl-C
//! reaches only `chorus up`, which then stops them in order.

use crate::client;
use anyhow::{bail, Context};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const HOST: &str = "127.0.0.1";
/// With TLS, each node's IRC-over-TLS port is its IRC port plus this
/// (6697 for 6667, the convention).
const IRC_TLS_OFFSET: u16 = 30;
/// How long stopped nodes get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long one STATUS probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Lines of a node's log shown when it dies during start-up.
const LOG_TAIL_LINES: usize = 20;

const AFTER_HELP: &str = "\
Files: DATA_DIR/nodeN.toml (generated config), DATA_DIR/nodeN/ (the node's
log), DATA_DIR/nodeN.log (its stderr). The data survives: run `chorus up`
again with the same --data-dir and the cluster recovers its history; delete
the directory for a fresh start.

Nodes listen on 127.0.0.1, ports BASE_PORT .. BASE_PORT+N-1. If a port is in
use, pick others with --base-port (e.g. --base-port 6001). Each node also
serves HTTP (/metrics, /healthz, /readyz, /status, /ws) on HTTP_BASE_PORT+N-1
(default BASE_PORT+3000, so 8001.. for 5001..); --no-http turns that off.
Each node also runs the IRC gateway on IRC_BASE_PORT+N-1 (default 6667..,
so irssi's `/connect 127.0.0.1 6667` reaches node 1); --no-irc turns it off.
With TLS (the default) the HTTP port is https/wss with the same certificates
(the IRC port stays plaintext; IRC over TLS listens 30 above it, 6697..).
`chorus status --connect 127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003
--ca DATA_DIR/certs/ca.pem` shows the cluster.

The client is the full-screen one on a terminal; without a terminal (stdin
or stdout redirected) it runs in plain mode on stdin/stdout and `chorus up`
stops when stdin ends. For a cluster in the background use --no-client.

Stopping: Ctrl-C (or SIGTERM/SIGHUP to `chorus up`), or quitting the client,
stops every node it started (SIGTERM, SIGKILL after 5 s). If `chorus up`
itself is killed with SIGKILL, the kernel sends its nodes SIGTERM (they run
with `--exit-with-parent`), so none outlives it.";

/// Run a local cluster: N nodes on 127.0.0.1 and a chat client on node 1.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub nodes: u16,
    /// Do not open the client; run until Ctrl-C / SIGTERM.
    #[arg(long)]
    pub no_client: bool,
    /// Where configs, node logs and stderr files go (relative to the current
    /// directory).
    #[arg(long, default_value = "data/up")]
    pub data_dir: PathBuf,
    /// Port of node 1; node N listens on BASE_PORT+N-1.
    #[arg(long, default_value_t = 5001)]
    pub base_port: u16,
    /// HTTP port of node 1 [default: BASE_PORT+3000].
    #[arg(long)]
    pub http_base_port: Option<u16>,
    /// No HTTP ports.
    #[arg(long, conflicts_with = "http_base_port")]
    pub no_http: bool,
    /// IRC port of node 1; node N's is IRC_BASE_PORT+N-1.
    #[arg(long, default_value_t = 6667)]
    pub irc_base_port: u16,
    /// No IRC gateway.
    #[arg(long)]
    pub no_irc: bool,
    /// Seconds to wait for the nodes to elect a leader.
    #[arg(long, default_value_t = 30)]
    pub leader_wait_secs: u64,
    /// Your name in the client [default: $USER].
    #[arg(long)]
    pub name: Option<String>,
    /// The client's room.
    #[arg(long, default_value = "general")]
    pub room: String,
    /// Record every node's core inputs into DIR/nodeN (`chorus node --record`),
    /// for `chorus sim replay DIR`.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Run the nodes without TLS (by default `up` makes a CA and node
    /// certificates in DATA_DIR/certs and every link uses TLS).
    #[arg(long)]
    pub plaintext: bool,
    /// Turn accounts on (`[accounts] enabled`, registration open): users
    /// log in (`chorus client --login`), operators use `chorus user`.
    #[arg(long)]
    pub accounts: bool,
}

/// One started node.
#[derive(Debug)]
struct NodeProc {
    id: u16,
    port: u16,
    child: Child,
    log_path: PathBuf,
    /// Reported once, when first seen exited.
    exited: Option<ExitStatus>,
}

/// The nodes this command started; stops them when dropped.
#[derive(Debug, Default)]
struct Cluster {
    nodes: Vec<NodeProc>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = crate::signals::stop_flag()?;
    let ports = port_range(args.base_port, args.nodes)?;
    check_ports_free(&ports, args.base_port, "--base-port")?;
    let http_ports = if args.no_http {
        None
    } else {
        let base = match args.http_base_port {
            Some(b) => b,
            None => args.base_port.checked_add(3000).with_context(|| {
                format!(
                    "--base-port {} + 3000 passes 65535; give --http-base-port or --no-http",
                    args.base_port
                )
            })?,
        };
        let ports = port_range(base, args.nodes)?;
        check_ports_free(&ports, base, "--http-base-port")?;
        Some(ports)
    };
    let irc_ports = if args.no_irc {
        None
    } else {
        let ports = port_range(args.irc_base_port, args.nodes)?;
        check_ports_free(&ports, args.irc_base_port, "--irc-base-port")
            .context("the IRC ports (or give --no-irc)")?;
        if !args.plaintext {
            // With TLS, IRC over TLS too, 30 above (6697 for 6667).
            let base = args.irc_base_port.saturating_add(IRC_TLS_OFFSET);
            let tls = port_range(base, args.nodes)?;
            check_ports_free(&tls, args.irc_base_port, "--irc-base-port")
                .context("the IRC TLS ports, 30 above the IRC ports (or give --no-irc)")?;
        }
        Some(ports)
    };
    fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let record = match &args.record {
        Some(d) => {
            fs::create_dir_all(d)
                .with_context(|| format!("cannot create --record {}", d.display()))?;
            Some(d.canonicalize()?)
        }
        None => None,
    };
    let certs = if args.plaintext {
        None
    } else {
        Some(make_certs(&data_dir, args.nodes)?)
    };
    let tls = crate::tls_dial::from_ca(certs.as_ref().map(|d| d.join("ca.pem")).as_deref())?;
    let mut cluster = Cluster::default();
    for (i, &port) in ports.iter().enumerate() {
        let id = i as u16 + 1;
        let http = http_ports.as_ref().map(|p| p[i]);
        let irc = irc_ports.as_ref().map(|p| p[i]);
        let extra = Extra { http, irc };
        let mut config = write_config(&data_dir, id, &ports, extra, &secret, certs.as_deref())?;
        if args.accounts {
            config = append_accounts(config)?;
        }
        cluster
            .nodes
            .push(spawn_node(&data_dir, id, port, &config, record.as_deref())?);
    }
    let (leader, term) = match wait_for_leader(&mut cluster, &stop, args.leader_wait_secs, &tls)? {
        Some(found) => found,
        None => return Ok(ExitCode::from(130)), // interrupted while waiting
    };
    print_summary(
        &cluster,
        &data_dir,
        leader,
        term,
        http_ports.as_deref(),
        irc_ports.as_deref(),
        certs.as_deref(),
    );
    let code = if args.no_client {
        watch(&mut cluster, &stop);
        ExitCode::SUCCESS
    } else {
        let peers = ports[1..].iter().map(|p| format!("{HOST}:{p}")).collect();
        let mut c = client::Args::for_node(HOST, ports[0], peers);
        c.name = args.name.clone();
        c.room = args.room.clone();
        c.ca = certs.as_ref().map(|d| d.join("ca.pem"));
        let code = client::run_until(c, &stop);
        eprintln!("chorus up: client exited; stopping the nodes");
        code?
    };
    cluster.stop_all();
    Ok(code)
}

fn port_range(base: u16, n: u16) -> anyhow::Result<Vec<u16>> {
    let Some(last) = base.checked_add(n - 1) else {
        bail!("--base-port {base} + {n} nodes exceeds port 65535; choose a lower --base-port");
    };
    if base == 0 {
        bail!("--base-port must be at least 1");
    }
    Ok((base..=last).collect())
}

/// Binds each port briefly, so a clash is reported before anything starts.
fn check_ports_free(ports: &[u16], base: u16, flag: &str) -> anyhow::Result<()> {
    for &p in ports {
        // Bound as the node binds (mio sets SO_REUSEADDR): a plain bind also
        // refuses a port whose old connections linger in TIME_WAIT, so a
        // cluster stopped a moment ago could not start again on its ports.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], p));
        if let Err(e) = mio::net::TcpListener::bind(addr) {
            let suggestion = base.checked_add(100).unwrap_or(6001);
            bail!(
                "port {p} on {HOST} is not available ({e}); is another `chorus up` or \
                 `chorus node` running? Stop it, or choose other ports with \
                 {flag} {suggestion}"
            );
        }
    }
    Ok(())
}

/// Writes DATA_DIR/nodeN.toml in the node config format (the seed's keys).
/// A CA and one certificate per node in `DATA_DIR/certs`: the CA is made
/// once and kept (clients may trust it), node certificates anew each run.
fn make_certs(data_dir: &Path, nodes: u16) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("certs");
    if !dir.join("ca.key").exists() {
        crate::certs::init(&dir)?;
    }
    for id in 1..=u64::from(nodes) {
        let (cert, key) = crate::certs::node_files(&dir, id);
        let _ = fs::remove_file(&cert);
        let _ = fs::remove_file(&key);
        crate::certs::node(id, &dir, &[])?;
    }
    Ok(dir)
}

/// The optional ports of one node's config.
#[derive(Clone, Copy, Debug, Default)]
struct Extra {
    http: Option<u16>,
    irc: Option<u16>,
}

fn write_config(
    dir: &Path,
    id: u16,
    ports: &[u16],
    extra: Extra,
    secret: &str,
    certs: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let log_dir = dir.join(format!("node{id}"));
    let mut text = format!(
        "# generated by `chorus up`; rewritten on every run\n\
         node_id = {id}\nhost = \"{HOST}\"\nport = {port}\nlog_dir = {log_dir}\n\
         cluster_secret = \"{secret}\"\nheartbeat_interval_ms = 800\nleader_timeout_ms = 2500\n",
        port = ports[id as usize - 1],
        log_dir = toml_string(&log_dir.to_string_lossy()),
    );
    if let Some(p) = extra.http {
        text.push_str(&format!("http_port = {p}\n"));
    }
    if let Some(p) = extra.irc {
        text.push_str(&format!("irc_port = {p}\n"));
        if certs.is_some() {
            let tls = p + IRC_TLS_OFFSET;
            text.push_str(&format!("irc_tls_port = {tls}\n"));
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let other = i as u16 + 1;
        if other != id {
            text.push_str(&format!(
                "\n[[seed_nodes]]\nnode_id = {other}\nhost = \"{HOST}\"\nport = {p}\n"
            ));
        }
    }
    if let Some(c) = certs {
        let (cert, key) = crate::certs::node_files(c, u64::from(id));
        text.push_str(&format!(
            "\n[tls]\ncert = {}\nkey = {}\nca = {}\n",
            toml_string(&cert.to_string_lossy()),
            toml_string(&key.to_string_lossy()),
            toml_string(&c.join("ca.pem").to_string_lossy()),
        ));
    }
    let path = dir.join(format!("node{id}.toml"));
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Adds `[accounts]` (on, registration open) to a written config.
fn append_accounts(path: PathBuf) -> anyhow::Result<PathBuf> {
    let mut text = fs::read_to_string(&path)?;
    text.push_str("\n[accounts]\nenabled = true\nregistration = \"open\"\n");
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A TOML basic string (quotes, backslashes and control characters escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn spawn_node(
    dir: &Path,
    id: u16,
    port: u16,
    config: &Path,
    record: Option<&Path>,
) -> anyhow::Result<NodeProc> {
    let exe = std::env::current_exe().context("cannot find the chorus executable")?;
    let log_path = dir.join(format!("node{id}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    if let Some(r) = record {
        cmd.arg("node")
            .arg("--record")
            .arg(r.join(format!("node{id}")));
    } else {
        cmd.arg("node");
    }
    let child = cmd
        .arg("--config")
        .arg(config)
        .arg("--exit-with-parent")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Own process group: the terminal's Ctrl-C goes to us, not to them.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start node {id}"))?;
    Ok(NodeProc {
        id,
        port,
        child,
        log_path,
        exited: None,
    })
}

/// Polls STATUS until a majority of nodes name the same leader and that node
/// says it leads. None if interrupted; an error on timeout or a node's death.
fn wait_for_leader(
    cluster: &mut Cluster,
    stop: &AtomicBool,
    wait_secs: u64,
    tls: &crate::tls_dial::ClientTls,
) -> anyhow::Result<Option<(u64, u64)>> {
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    let majority = cluster.nodes.len() / 2 + 1;
    eprintln!("chorus up: waiting for the nodes to elect a leader…");
    while Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        for n in &mut cluster.nodes {
            if let Some(status) = n.child.try_wait()? {
                bail!(
                    "node {} exited during start-up ({status}); its log {}:\n{}",
                    n.id,
                    n.log_path.display(),
                    tail(&n.log_path, LOG_TAIL_LINES)
                );
            }
        }
        let statuses: Vec<_> = cluster
            .nodes
            .iter()
            .filter_map(|n| {
                client::probe::status(&format!("{HOST}:{}", n.port), PROBE_TIMEOUT, tls).ok()
            })
            .collect();
        for st in &statuses {
            if st.role == "leader" {
                let agree = statuses
                    .iter()
                    .filter(|o| o.leader == Some(st.node_id))
                    .count();
                if agree >= majority {
                    return Ok(Some((st.node_id, st.term)));
                }
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "no leader elected within {wait_secs} s; see the node logs in {}",
        cluster
            .nodes
            .first()
            .and_then(|n| n.log_path.parent())
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )
}

fn print_summary(
    cluster: &Cluster,
    dir: &Path,
    leader: u64,
    term: u64,
    http_ports: Option<&[u16]>,
    irc_ports: Option<&[u16]>,
    certs: Option<&Path>,
) {
    eprintln!(
        "chorus up: {} nodes running, leader n{leader} (term {term}); data in {}",
        cluster.nodes.len(),
        dir.display()
    );
    for n in &cluster.nodes {
        eprintln!(
            "  n{}  {HOST}:{}  pid {}  config {}  stderr {}",
            n.id,
            n.port,
            n.child.id(),
            dir.join(format!("node{}.toml", n.id)).display(),
            n.log_path.display()
        );
    }
    if let Some((last, others)) = cluster.nodes.split_last() {
        let peers: Vec<String> = others
            .iter()
            .map(|n| format!("{HOST}:{}", n.port))
            .collect();
        let ca = certs.map_or(String::new(), |c| {
            format!(" --ca {}", c.join("ca.pem").display())
        });
        eprintln!(
            "  another client: chorus client --port {} --peers {}{ca}",
            last.port,
            peers.join(",")
        );
    }
    if let Some(ports) = http_ports {
        let list: Vec<String> = ports.iter().map(|p| format!("{HOST}:{p}")).collect();
        let (scheme, ca, curl) = match certs {
            Some(c) => {
                let ca = c.join("ca.pem");
                let ca = ca.display();
                (
                    "https",
                    format!(" --ca {ca}"),
                    format!("curl --cacert {ca} "),
                )
            }
            None => ("http", String::new(), "curl ".into()),
        };
        eprintln!(
            "  web chat: {}",
            list.iter()
                .map(|a| format!("{scheme}://{a}/"))
                .collect::<Vec<_>>()
                .join("  ")
        );
        eprintln!(
            "  metrics: {curl}{scheme}://{}/metrics   table: chorus status --connect {}{ca}",
            list[0],
            list.join(",")
        );
    }
    if let Some(ports) = irc_ports {
        let servers: Vec<String> = ports.iter().map(|p| format!("{HOST}/{p}")).collect();
        eprintln!(
            "  IRC: irssi -c {HOST} -p {} (or /connect {HOST} {}); weechat: /server add chorus {}",
            ports[0],
            ports[0],
            servers.join(",")
        );
        if let Some(c) = certs {
            eprintln!(
                "  IRC over TLS: irssi -c {HOST} -p {} -tls -tls_cafile {}",
                ports[0] + IRC_TLS_OFFSET,
                c.join("ca.pem").display()
            );
        }
    }
    eprintln!("  stop: Ctrl-C, or kill -TERM {}", std::process::id());
}

/// With --no-client: wait for a signal, reporting nodes that die meanwhile
/// (a killed node is a legitimate experiment, not a reason to stop).
fn watch(cluster: &mut Cluster, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        for n in &mut cluster.nodes {
            if n.exited.is_none() {
                if let Ok(Some(status)) = n.child.try_wait() {
                    n.exited = Some(status);
                    eprintln!(
                        "chorus up: node {} (pid {}) exited: {status}; see {}",
                        n.id,
                        n.child.id(),
                        n.log_path.display()
                    );
                }
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    eprintln!("chorus up: stopping the nodes");
}

impl Cluster {
    /// SIGTERM to every running node, then SIGKILL to those still running
    /// after the grace period; reaps all of them.
    fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if matches!(n.child.try_wait(), Ok(None)) {
                let pid = rustix::process::Pid::from_child(&n.child);
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for n in &mut self.nodes {
            loop {
                match n.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!("chorus up: node {} ignored SIGTERM; killing it", n.id);
                        let _ = n.child.kill();
                        let _ = n.child.wait();
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.nodes.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The last `n` lines of a file (for an error message).
fn tail(path: &Path, n: usize) -> String {
    let Ok(f) = File::open(path) else {
        return String::from("(no log)");
    };
    let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        if last.len() == n {
            last.pop_front();
        }
        last.push_back(line);
    }
    last.into_iter().collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text_lists_the_other_nodes() {
        let dir = std::env::temp_dir().join(format!("chorus-up-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = write_config(
            &dir,
            2,
            &[7001, 7002, 7003],
            Extra {
                http: Some(10002),
                irc: Some(6668),
            },
            "s3cret",
            None,
        )
        .unwrap();
        let text = fs::read_to_string(p).unwrap();
        assert!(text.contains("node_id = 2\nhost = \"127.0.0.1\"\nport = 7002\n"));
        assert!(text.contains("[[seed_nodes]]\nnode_id = 1\nhost = \"127.0.0.1\"\nport = 7001\n"));
        assert!(text.contains("[[seed_nodes]]\nnode_id = 3\n"));
        assert!(text.contains("http_port = 10002\n"), "{text}");
        assert!(text.contains("irc_port = 6668\n"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn port_range_bounds() {
        assert_eq!(port_range(5001, 3).unwrap(), vec![5001, 5002, 5003]);
        assert!(port_range(65535, 2).is_err());
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
