//! Node configuration files: TOML (`.toml`, the default) or the seed's YAML
//! (`.yml` / `.yaml`), with the seed's keys plus `cluster_secret`, `voters`
//! and `max_line_bytes`, mapped onto the runtime's `NodeOptions`.
//!
//! Invariants: unknown keys are refused; node ids are unique and so are
//! addresses; every error is one line that names the file and what to fix.
//! A relative `log_dir` is relative to the current directory (as the seed).

use chorus_core::{Config, NodeId, PeerInfo};
use chorus_runtime_mio::{HttpOptions, IrcOptions, NodeOptions, TlsPaths, DEFAULT_CLUSTER_SECRET};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A seed node: another member to contact at startup.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SeedNode {
    pub node_id: u64,
    pub host: String,
    pub port: u16,
}

fn default_heartbeat() -> u64 {
    800
}
fn default_leader_timeout() -> u64 {
    2500
}

/// `[tls]`: the node's certificate, key and the cluster CA (PEM files, as
/// `chorus certs` writes them). All three or none; none is plaintext.
/// `{node_id}` in `cert` or `key` is replaced by the node's id.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    /// TLS on the HTTP port too (https, wss); default true.
    #[serde(default = "default_true")]
    pub http: bool,
}

fn default_true() -> bool {
    true
}

/// `[accounts]`: logins and their limits (runtime-mio `AccountOptions`;
/// every key but `enabled` has the default documented there).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountsFile {
    #[serde(default)]
    pub enabled: bool,
    /// "open" (anyone may REGISTER) or "closed" (operators: `chorus user add`).
    #[serde(default)]
    pub registration: Option<String>,
    pub guests: Option<bool>,
    pub argon2_memory_kib: Option<u32>,
    pub argon2_iterations: Option<u32>,
    pub argon2_parallelism: Option<u32>,
    pub hash_workers: Option<usize>,
    pub hash_queue: Option<usize>,
    pub max_accounts: Option<usize>,
    pub account_rate_per_sec: Option<u32>,
    pub account_rate_burst: Option<u32>,
    pub login_free_failures: Option<u32>,
    pub login_delay_ms: Option<u64>,
    pub login_delay_max_ms: Option<u64>,
}

impl AccountsFile {
    fn to_options(&self) -> chorus_runtime_mio::AccountOptions {
        let mut o = chorus_runtime_mio::AccountOptions {
            enabled: self.enabled,
            ..Default::default()
        };
        if self.registration.as_deref() == Some("open") {
            o.registration = chorus_runtime_mio::Registration::Open;
        }
        o.guests = self.guests.unwrap_or(o.guests);
        o.argon2.memory_kib = self.argon2_memory_kib.unwrap_or(o.argon2.memory_kib);
        o.argon2.iterations = self.argon2_iterations.unwrap_or(o.argon2.iterations);
        o.argon2.parallelism = self.argon2_parallelism.unwrap_or(o.argon2.parallelism);
        o.hash_workers = self.hash_workers.unwrap_or(o.hash_workers);
        o.hash_queue = self.hash_queue.unwrap_or(o.hash_queue);
        o.max_accounts = self.max_accounts.unwrap_or(o.max_accounts);
        o.account_rate_per_sec = self.account_rate_per_sec.unwrap_or(o.account_rate_per_sec);
        o.account_rate_burst = self.account_rate_burst.unwrap_or(o.account_rate_burst);
        o.login_free_failures = self.login_free_failures.unwrap_or(o.login_free_failures);
        o.login_delay_ms = self.login_delay_ms.unwrap_or(o.login_delay_ms);
        o.login_delay_max_ms = self.login_delay_max_ms.unwrap_or(o.login_delay_max_ms);
        o
    }
}

/// The file format of one node's config.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub node_id: u64,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub seed_nodes: Vec<SeedNode>,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "default_leader_timeout")]
    pub leader_timeout_ms: u64,
    /// Default: `data/node<ID>`.
    #[serde(default)]
    pub log_dir: Option<PathBuf>,
    /// Default: the built-in insecure secret (the node warns).
    #[serde(default)]
    pub cluster_secret: Option<String>,
    /// The voting members; default: this node and every seed node.
    #[serde(default)]
    pub voters: Option<Vec<u64>>,
    /// Longest client line in bytes (default 1 MiB).
    #[serde(default)]
    pub max_line_bytes: Option<usize>,
    /// Recent log entries kept in memory (default 4096); older ones are read
    /// back from the log file when a lagging node or a HISTORY asks for them.
    #[serde(default)]
    pub log_cache_entries: Option<usize>,
    /// Bytes of log per segment file (default 64 MiB): a new segment file
    /// starts once the last one holds this much.
    #[serde(default)]
    pub log_segment_bytes: Option<u64>,
    /// The exactly-once window: a retried msg_id is recognised if its
    /// original is among the newest `dedup_window_ids` chats (default
    /// 10,000,000; about 24 bytes of memory each) or this node has held it
    /// less than `dedup_window_ms` (default 24 h); past both it is new.
    #[serde(default)]
    pub dedup_window_ids: Option<u64>,
    #[serde(default)]
    pub dedup_window_ms: Option<u64>,
    /// A snapshot of the folded state every this many committed entries
    /// (default 100,000; 0: never): a restart replays only the log after
    /// the newest one.
    #[serde(default)]
    pub snapshot_every: Option<u64>,
    /// Retention: keep this many newest committed entries and delete older
    /// segments behind a snapshot (default 0: keep the whole history).
    #[serde(default)]
    pub retain_entries: Option<u64>,
    /// Retention by age: delete history older than this many ms (by the
    /// time the accepting node stamped on each message; default 0: none).
    #[serde(default)]
    pub retain_ms: Option<u64>,
    /// Where the peer/client port is bound if not `host` (e.g. "0.0.0.0" in
    /// a container; `host` stays the address given to others).
    #[serde(default)]
    pub listen_host: Option<String>,
    /// The HTTP port (/metrics, /healthz, /readyz, /status); none: no HTTP.
    #[serde(default)]
    pub http_port: Option<u16>,
    /// Where the HTTP port is bound (default: `listen_host`, else `host`).
    #[serde(default)]
    pub http_host: Option<String>,
    /// `/readyz` needs the node delivered within this many entries of its
    /// commit point (default 1000).
    #[serde(default)]
    pub ready_max_lag: Option<u64>,
    /// Open HTTP connections (default 64); more are answered 503.
    #[serde(default)]
    pub http_max_connections: Option<usize>,
    /// Each HTTP request must arrive and be answered within this (default
    /// 10000 ms; also the keep-alive idle limit).
    #[serde(default)]
    pub http_timeout_ms: Option<u64>,
    /// Origins a browser page may open `/ws` from (`"*"`: any). Default:
    /// this node's HTTP port as http(s)://localhost, 127.0.0.1, [::1] and
    /// its own host; a request without Origin (not a browser) is accepted.
    #[serde(default)]
    pub ws_allowed_origins: Option<Vec<String>>,
    /// A silent `/ws` session is pinged after this (default 20000 ms) ...
    #[serde(default)]
    pub ws_ping_interval_ms: Option<u64>,
    /// ... and closed (code 1008) if no pong comes within this (default 20000 ms).
    #[serde(default)]
    pub ws_pong_timeout_ms: Option<u64>,
    /// Open client connections (JSON lines and `/ws` sessions together,
    /// plus peer links; default 1024). More are told `busy` and closed. A
    /// node raises its open-file limit to the hard limit at start and holds
    /// this to what that limit allows.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// A subscriber whose stream stays paused this long because it does not
    /// read is disconnected with ERROR `slow_consumer` (default 10000 ms).
    #[serde(default)]
    pub slow_subscriber_ms: Option<u64>,
    /// The IRC gateway's port (irssi: `/connect 127.0.0.1 6667`); none
    /// (the default): no IRC port. Plaintext, like the HTTP port.
    #[serde(default)]
    pub irc_port: Option<u16>,
    /// A second IRC port speaking TLS with the `[tls]` certificate (6697 by
    /// convention); none (the default): no IRC TLS port. Needs `[tls]`.
    #[serde(default)]
    pub irc_tls_port: Option<u16>,
    /// Where the IRC port is bound (default: `listen_host`, else `host`).
    #[serde(default)]
    pub irc_host: Option<String>,
    /// Messages a JOIN replays from the channel's history (default 50, at
    /// most 1000).
    #[serde(default)]
    pub irc_join_replay: Option<usize>,
    /// Open connections from one source IP address (default 256).
    #[serde(default)]
    pub max_connections_per_address: Option<usize>,
    /// CHATs per second one connection may send on average (default 10000);
    /// more get ERROR `rate_limited`.
    #[serde(default)]
    pub client_rate_per_sec: Option<u32>,
    /// CHATs one connection may send in a burst (default 20000).
    #[serde(default)]
    pub client_rate_burst: Option<u32>,
    /// TLS on the port; absent: plaintext (the node warns at start).
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// Accounts and logins; absent: off (names are not authenticated).
    #[serde(default)]
    pub accounts: Option<AccountsFile>,
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    /// The file does not parse (syntax, unknown key, wrong type).
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The values contradict each other or are out of range.
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Largest accepted `max_line_bytes`: one chat must fit in one log record.
const MAX_LINE_BYTES_CAP: usize = 2 << 20;
/// Accepted `log_cache_entries`: at least a few batches (fewer would read
/// back entries still being replicated), at most ~1.6 GiB of 100-byte chats.
const LOG_CACHE_MIN: usize = 64;
const LOG_CACHE_MAX: usize = 1 << 24;
/// Accepted `log_segment_bytes`: small ones for tests, at most 1 GiB (a
/// segment is fsynced whole before the next starts, on the event loop).
const SEGMENT_MIN: u64 = 4096;
const SEGMENT_MAX: u64 = 1 << 30;
/// Accepted dedup window: at least what a burst of retries needs, at most
/// ~2.4 GB of fingerprints; from 10 s (client timeouts are seconds) to a year.
const DEDUP_IDS: std::ops::RangeInclusive<u64> = 1000..=100_000_000;
const DEDUP_MS: std::ops::RangeInclusive<u64> = 10_000..=365 * 24 * 3600 * 1000;
const SNAPSHOT_EVERY: std::ops::RangeInclusive<u64> = 100..=1_000_000_000;
const RETAIN: std::ops::RangeInclusive<u64> = 1000..=u64::MAX;

/// Line `l`, column `c` (1-based) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `text` as the format named by `path`'s extension.
pub fn parse(path: &Path, text: &str) -> Result<NodeFile, ConfigError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let parse_err = |message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    if matches!(ext, "yml" | "yaml") {
        serde_saphyr::from_str::<NodeFile>(text).map_err(|e| {
            let msg = e.to_string();
            parse_err(one_line(msg.lines().next().unwrap_or(&msg)))
        })
    } else {
        toml::from_str::<NodeFile>(text).map_err(|e| {
            let at = e.span().map(|s| line_col(text, s.start));
            let place = at.map_or(String::new(), |(l, c)| format!("line {l}, column {c}: "));
            parse_err(format!("{place}{}", one_line(e.message())))
        })
    }
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<NodeFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    let file = parse(path, &text)?;
    validate(&file).map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(file)
}

/// Checks what serde cannot: uniqueness, ranges, consistency.
pub fn validate(f: &NodeFile) -> Result<(), String> {
    if f.port == 0 {
        return Err("port must be between 1 and 65535".into());
    }
    let mut ids = BTreeSet::from([f.node_id]);
    let mut addrs = BTreeSet::from([(f.host.clone(), f.port)]);
    for s in &f.seed_nodes {
        let same_as_me = s.node_id == f.node_id && s.host == f.host && s.port == f.port;
        if same_as_me {
            continue; // a shared seed list may name this node itself
        }
        if !ids.insert(s.node_id) {
            return Err(format!(
                "node_id {} appears twice (node_id and seed_nodes must be unique ids)",
                s.node_id
            ));
        }
        if !addrs.insert((s.host.clone(), s.port)) {
            return Err(format!(
                "{}:{} is given to two nodes (seed node {}); every node needs its own host:port",
                s.host, s.port, s.node_id
            ));
        }
    }
    if f.heartbeat_interval_ms == 0 {
        return Err("heartbeat_interval_ms must be at least 1".into());
    }
    if f.leader_timeout_ms < 2 * f.heartbeat_interval_ms {
        return Err(format!(
            "leader_timeout_ms ({}) must be at least twice heartbeat_interval_ms ({})",
            f.leader_timeout_ms, f.heartbeat_interval_ms
        ));
    }
    if let Some(voters) = &f.voters {
        if voters.is_empty() {
            return Err("voters must not be empty".into());
        }
        if let Some(v) = voters.iter().find(|v| !ids.contains(v)) {
            return Err(format!(
                "voter {v} is neither this node nor a seed node; list it in seed_nodes"
            ));
        }
    }
    if let Some(n) = f.max_line_bytes {
        if !(1024..=MAX_LINE_BYTES_CAP).contains(&n) {
            return Err(format!(
                "max_line_bytes must be between 1024 and {MAX_LINE_BYTES_CAP}"
            ));
        }
    }
    if let Some(n) = f.log_cache_entries {
        if !(LOG_CACHE_MIN..=LOG_CACHE_MAX).contains(&n) {
            return Err(format!(
                "log_cache_entries must be between {LOG_CACHE_MIN} and {LOG_CACHE_MAX}"
            ));
        }
    }
    if let Some(n) = f.log_segment_bytes {
        if !(SEGMENT_MIN..=SEGMENT_MAX).contains(&n) {
            return Err(format!(
                "log_segment_bytes must be between {SEGMENT_MIN} and {SEGMENT_MAX}"
            ));
        }
    }
    if let Some(n) = f.dedup_window_ids {
        if !DEDUP_IDS.contains(&n) {
            return Err(format!(
                "dedup_window_ids must be between {} and {}",
                DEDUP_IDS.start(),
                DEDUP_IDS.end()
            ));
        }
    }
    if let Some(n) = f.snapshot_every.filter(|&n| n != 0) {
        if !SNAPSHOT_EVERY.contains(&n) {
            return Err(format!(
                "snapshot_every must be 0 (never) or between {} and {}",
                SNAPSHOT_EVERY.start(),
                SNAPSHOT_EVERY.end()
            ));
        }
    }
    if let Some(n) = f.retain_entries.filter(|&n| n != 0) {
        if !RETAIN.contains(&n) {
            return Err(format!(
                "retain_entries must be 0 (keep everything) or at least {}",
                RETAIN.start()
            ));
        }
        if f.snapshot_every == Some(0) {
            return Err(
                "retain_entries needs snapshots (the log is compacted behind one): \
                 snapshot_every must not be 0"
                    .into(),
            );
        }
    }
    if let Some(n) = f.retain_ms.filter(|&n| n != 0) {
        if n < 60_000 {
            return Err("retain_ms must be 0 (no age bound) or at least 60000 (a minute)".into());
        }
        if f.snapshot_every == Some(0) {
            return Err(
                "retain_ms needs snapshots (the log is compacted behind one): \
                 snapshot_every must not be 0"
                    .into(),
            );
        }
    }
    if let Some(n) = f.dedup_window_ms {
        if !DEDUP_MS.contains(&n) {
            return Err(format!(
                "dedup_window_ms must be between {} and {}",
                DEDUP_MS.start(),
                DEDUP_MS.end()
            ));
        }
    }
    if f.http_port == Some(f.port) && f.http_host.is_none() {
        return Err(format!(
            "http_port {} is also `port`; give the HTTP port its own number",
            f.port
        ));
    }
    if f.irc_port.is_some() && (f.irc_port == Some(f.port) || f.irc_port == f.http_port) {
        return Err(format!(
            "irc_port {} is also `port` or `http_port`; give the IRC port its own number",
            f.irc_port.unwrap_or_default()
        ));
    }
    if f.irc_join_replay
        .is_some_and(|n| n > chorus_runtime_mio::HISTORY_LIMIT_MAX)
    {
        return Err(format!(
            "irc_join_replay must be at most {}",
            chorus_runtime_mio::HISTORY_LIMIT_MAX
        ));
    }
    if f.http_timeout_ms == Some(0) {
        return Err("http_timeout_ms must be at least 1".into());
    }
    if let Some(a) = &f.accounts {
        if let Some(r) = a
            .registration
            .as_deref()
            .filter(|r| !["open", "closed"].contains(r))
        {
            return Err(format!(
                "[accounts] registration = {r:?}: \"open\" or \"closed\""
            ));
        }
        a.to_options().argon2.check()?;
    }
    if f.ws_ping_interval_ms == Some(0) || f.ws_pong_timeout_ms == Some(0) {
        return Err("ws_ping_interval_ms and ws_pong_timeout_ms must be at least 1".into());
    }
    if f.http_max_connections == Some(0) {
        return Err("http_max_connections must be at least 1".into());
    }
    if f.max_connections_per_address == Some(0)
        || f.max_connections == Some(0)
        || f.slow_subscriber_ms == Some(0)
        || f.client_rate_per_sec == Some(0)
        || f.client_rate_burst == Some(0)
    {
        return Err(
            "max_connections, slow_subscriber_ms, max_connections_per_address, client_rate_per_sec and client_rate_burst must be at least 1"
                .into(),
        );
    }
    if f.cluster_secret.as_deref() == Some("") {
        return Err(
            "cluster_secret must not be empty (omit it to use the insecure default)".into(),
        );
    }
    Ok(())
}

/// `f` as node `id`: the host and port of seed node `id` when listed there
/// (so one config serves every member), checked again.
pub fn with_node_id(mut f: NodeFile, id: u64) -> Result<NodeFile, String> {
    if id == 0 {
        return Err("node_id must be at least 1".into());
    }
    if let Some(me) = f.seed_nodes.iter().find(|s| s.node_id == id) {
        f.host = me.host.clone();
        f.port = me.port;
    }
    f.node_id = id;
    validate(&f)?;
    Ok(f)
}

impl NodeFile {
    /// The log directory (default `data/node<ID>`).
    pub fn log_dir(&self) -> PathBuf {
        self.log_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("data/node{}", self.node_id)))
    }

    /// The runtime options this file describes.
    pub fn to_options(&self) -> NodeOptions {
        let me = PeerInfo {
            node_id: NodeId(self.node_id),
            host: self.host.clone(),
            port: self.port,
        };
        let peers: Vec<PeerInfo> = self
            .seed_nodes
            .iter()
            .filter(|s| s.node_id != self.node_id)
            .map(|s| PeerInfo {
                node_id: NodeId(s.node_id),
                host: s.host.clone(),
                port: s.port,
            })
            .collect();
        let mut core =
            Config::new(me, peers).with_timing(self.heartbeat_interval_ms, self.leader_timeout_ms);
        if let Some(v) = &self.voters {
            core.voters = v.iter().map(|&id| NodeId(id)).collect();
        }
        if let Some(n) = self.log_cache_entries {
            core.log_cache_entries = n;
        }
        if let Some(n) = self.dedup_window_ids {
            core.dedup_window_ids = n;
        }
        if let Some(n) = self.dedup_window_ms {
            core.dedup_window_ms = n;
        }
        if let Some(n) = self.snapshot_every {
            core.snapshot_every = n;
        }
        if let Some(n) = self.retain_entries {
            core.retain_entries = n;
        }
        if let Some(n) = self.retain_ms {
            core.retain_ms = n;
        }
        let secret = self
            .cluster_secret
            .clone()
            .unwrap_or_else(|| DEFAULT_CLUSTER_SECRET.to_string());
        let mut opts = NodeOptions::new(core, self.log_dir(), secret);
        if let Some(n) = self.log_segment_bytes {
            opts.segment_bytes = n;
        }
        opts.listen_host = self.listen_host.clone();
        if let Some(port) = self.http_port {
            let host = self
                .http_host
                .clone()
                .or_else(|| self.listen_host.clone())
                .unwrap_or_else(|| self.host.clone());
            let mut http = HttpOptions::new(host, port);
            if let Some(n) = self.ready_max_lag {
                http.ready_max_lag = n;
            }
            if let Some(n) = self.http_max_connections {
                http.max_connections = n;
            }
            if let Some(n) = self.http_timeout_ms {
                http.timeout_ms = n;
            }
            if let Some(o) = &self.ws_allowed_origins {
                http.ws_allowed_origins = o.clone();
            }
            if let Some(n) = self.ws_ping_interval_ms {
                http.ws_ping_interval_ms = n;
            }
            if let Some(n) = self.ws_pong_timeout_ms {
                http.ws_pong_timeout_ms = n;
            }
            http.tls = self.tls.as_ref().is_none_or(|t| t.http);
            opts.http = Some(http);
        }
        if let Some(port) = self.irc_port {
            let host = self
                .irc_host
                .clone()
                .or_else(|| self.listen_host.clone())
                .unwrap_or_else(|| self.host.clone());
            let mut irc = IrcOptions::new(host, port);
            if let Some(n) = self.irc_join_replay {
                irc.join_replay = n;
            }
            irc.tls_port = self.irc_tls_port;
            opts.irc = Some(irc);
        }
        let l = &mut opts.limits;
        l.max_connections = self.max_connections.unwrap_or(l.max_connections);
        l.slow_subscriber_ms = self.slow_subscriber_ms.unwrap_or(l.slow_subscriber_ms);
        l.max_connections_per_address = self
            .max_connections_per_address
            .unwrap_or(l.max_connections_per_address);
        l.client_rate_per_sec = self.client_rate_per_sec.unwrap_or(l.client_rate_per_sec);
        l.client_rate_burst = self.client_rate_burst.unwrap_or(l.client_rate_burst);
        // `{node_id}` in a path is this node's id: one config shared by every
        // member (deploy/k8s) names each node's own certificate.
        let id = self.node_id.to_string();
        let own = |p: &PathBuf| PathBuf::from(p.to_string_lossy().replace("{node_id}", &id));
        opts.tls = self.tls.as_ref().map(|t| TlsPaths {
            cert: own(&t.cert),
            key: own(&t.key),
            ca: t.ca.clone(),
        });
        if let Some(a) = &self.accounts {
            opts.accounts = a.to_options();
        }
        if let Some(n) = self.max_line_bytes {
            opts.limits.max_line_bytes = n;
            opts.limits.max_peer_line_bytes = opts.limits.max_peer_line_bytes.max(n * 16);
        }
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
node_id = 1
host = "127.0.0.1"
port = 5001
log_dir = "data/node1"
cluster_secret = "s"
seed_nodes = [
  { node_id = 2, host = "127.0.0.1", port = 5002 },
  { node_id = 3, host = "127.0.0.1", port = 5003 },
]
"#;

    fn parse_toml(text: &str) -> Result<NodeFile, String> {
        let f = parse(Path::new("n.toml"), text).map_err(|e| e.to_string())?;
        validate(&f)?;
        Ok(f)
    }

    #[test]
    fn toml_with_defaults() {
        let f = parse_toml(TOML).unwrap();
        assert_eq!((f.heartbeat_interval_ms, f.leader_timeout_ms), (800, 2500));
        let o = f.to_options();
        assert_eq!(o.core.voters.len(), 3);
        assert_eq!(o.core.peers.len(), 2);
        assert_eq!(o.log_dir, PathBuf::from("data/node1"));
    }

    #[test]
    fn the_seed_yaml_loads() {
        let yaml = "node_id: 1\nhost: 127.0.0.1\nport: 5001\nseed_nodes:\n  - node_id: 2\n    host: 127.0.0.1\n    port: 5002\nheartbeat_interval_ms: 800\nleader_timeout_ms: 2500\nlog_dir: logs/node1\n";
        let f = parse(Path::new("node1.yaml"), yaml).unwrap();
        assert_eq!(f.seed_nodes.len(), 1);
        assert_eq!(f.log_dir(), PathBuf::from("logs/node1"));
        let bad = parse(
            Path::new("n.yml"),
            "node_id: 1\nhost: x\nport: 1\ncolour: red\n",
        );
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("colour"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn unknown_keys_are_one_line_errors_with_a_position() {
        let e = parse_toml(&format!("{TOML}\nheartbeat_ms = 5\n")).unwrap_err();
        assert!(e.contains("unknown field `heartbeat_ms`"), "{e}");
        assert!(e.contains("line 12, column 1"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn duplicate_ids_and_addresses_are_refused() {
        let dup = TOML.replace("node_id = 3", "node_id = 2");
        assert!(parse_toml(&dup)
            .unwrap_err()
            .contains("node_id 2 appears twice"));
        let same = TOML.replace("port = 5003", "port = 5002");
        assert!(parse_toml(&same)
            .unwrap_err()
            .contains("127.0.0.1:5002 is given to two nodes"));
        let me_listed = TOML.replace(
            "node_id = 3, host = \"127.0.0.1\", port = 5003",
            "node_id = 1, host = \"127.0.0.1\", port = 5001",
        );
        assert!(
            parse_toml(&me_listed).is_ok(),
            "a seed list may include this node"
        );
    }

    #[test]
    fn voters_and_timings_are_checked() {
        let v = format!("voters = [1, 2, 9]\n{TOML}");
        assert!(parse_toml(&v).unwrap_err().contains("voter 9"));
        let t = format!("heartbeat_interval_ms = 2000\n{TOML}");
        assert!(parse_toml(&t)
            .unwrap_err()
            .contains("twice heartbeat_interval_ms"));
        let ok = format!("voters = [1, 2]\n{TOML}");
        assert_eq!(parse_toml(&ok).unwrap().to_options().core.voters.len(), 2);
    }

    #[test]
    fn tls_table_is_optional_and_complete() {
        assert_eq!(parse_toml(TOML).unwrap().to_options().tls, None);
        let t = format!("{TOML}\n[tls]\ncert = \"n1.pem\"\nkey = \"n1.key\"\nca = \"ca.pem\"\n");
        let tls = parse_toml(&t).unwrap().to_options().tls.unwrap();
        assert_eq!(tls.ca, PathBuf::from("ca.pem"));
        let shared = format!("{TOML}\n[tls]\ncert = \"n{{node_id}}.pem\"\nkey = \"t/n{{node_id}}.key\"\nca = \"ca.pem\"\nhttp = false\n");
        let opts = parse_toml(&shared).unwrap().to_options();
        let tls = opts.tls.unwrap();
        assert_eq!(
            (tls.cert, tls.key),
            (PathBuf::from("n1.pem"), PathBuf::from("t/n1.key"))
        );
        let partial = format!("{TOML}\n[tls]\ncert = \"n1.pem\"\n");
        assert!(parse_toml(&partial)
            .unwrap_err()
            .contains("missing field `key`"));
    }

    #[test]
    fn log_cache_entries_is_passed_on_and_bounded() {
        assert_eq!(
            parse_toml(TOML)
                .unwrap()
                .to_options()
                .core
                .log_cache_entries,
            4096
        );
        let ok = format!("log_cache_entries = 100000\n{TOML}");
        let f = parse_toml(&ok).unwrap();
        assert_eq!(f.to_options().core.log_cache_entries, 100_000);
        let low = format!("log_cache_entries = 3\n{TOML}");
        assert!(parse_toml(&low)
            .unwrap_err()
            .contains("log_cache_entries must be between 64"));
    }

    #[test]
    fn the_dedup_window_is_passed_on_and_bounded() {
        let core = parse_toml(TOML).unwrap().to_options().core;
        assert_eq!(
            (core.dedup_window_ids, core.dedup_window_ms),
            (10_000_000, 86_400_000)
        );
        let ok = format!("dedup_window_ids = 5000\ndedup_window_ms = 60000\n{TOML}");
        let core = parse_toml(&ok).unwrap().to_options().core;
        assert_eq!(
            (core.dedup_window_ids, core.dedup_window_ms),
            (5000, 60_000)
        );
        for bad in ["dedup_window_ids = 10", "dedup_window_ms = 5"] {
            let t = format!("{bad}\n{TOML}");
            let err = parse_toml(&t).unwrap_err();
            assert!(err.contains("must be between"), "{err}");
        }
    }

    #[test]
    fn log_segment_bytes_is_passed_on_and_bounded() {
        let f = parse_toml(TOML).unwrap();
        assert_eq!(f.to_options().segment_bytes, 64 << 20);
        let ok = format!("log_segment_bytes = 65536\n{TOML}");
        assert_eq!(parse_toml(&ok).unwrap().to_options().segment_bytes, 65536);
        let low = format!("log_segment_bytes = 100\n{TOML}");
        assert!(parse_toml(&low)
            .unwrap_err()
            .contains("log_segment_bytes must be between 4096"));
    }

    #[test]
    fn one_shared_config_serves_every_member() {
        let shared = TOML.replace(
            "seed_nodes = [",
            "seed_nodes = [\n  { node_id = 1, host = \"127.0.0.1\", port = 5001 },",
        );
        let f = parse_toml(&shared).unwrap();
        let n3 = with_node_id(f.clone(), 3).unwrap();
        assert_eq!(
            (n3.node_id, n3.host.as_str(), n3.port),
            (3, "127.0.0.1", 5003)
        );
        let o = n3.to_options();
        assert_eq!(o.core.peers.len(), 2, "itself is not its own peer");
        assert_eq!(o.core.voters.len(), 3);
        assert!(with_node_id(f, 0).is_err());
    }

    #[test]
    fn http_port_is_off_unless_given() {
        assert!(parse_toml(TOML).unwrap().to_options().http.is_none());
        let on = format!("http_port = 8001\nready_max_lag = 5\nlisten_host = \"0.0.0.0\"\n{TOML}");
        let o = parse_toml(&on).unwrap().to_options();
        let http = o.http.unwrap();
        assert_eq!(
            (http.host.as_str(), http.port, http.ready_max_lag),
            ("0.0.0.0", 8001, 5)
        );
        assert_eq!(o.listen_host.as_deref(), Some("0.0.0.0"));
        let same = format!("http_port = 5001\n{TOML}");
        assert!(parse_toml(&same).unwrap_err().contains("its own number"));
    }

    #[test]
    fn irc_port_is_off_unless_given() {
        assert!(parse_toml(TOML).unwrap().to_options().irc.is_none());
        let on = format!("irc_port = 6667\nirc_join_replay = 20\n{TOML}");
        let irc = parse_toml(&on).unwrap().to_options().irc.unwrap();
        assert_eq!(
            (irc.host.as_str(), irc.port, irc.join_replay),
            ("127.0.0.1", 6667, 20)
        );
        let same = format!("irc_port = 5001\n{TOML}");
        assert!(parse_toml(&same).unwrap_err().contains("its own number"));
        let big = format!("irc_port = 6667\nirc_join_replay = 5000\n{TOML}");
        assert!(parse_toml(&big).unwrap_err().contains("at most 1000"));
    }
}
