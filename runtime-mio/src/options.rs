//! What the runtime needs to run one node: the core's protocol config plus the
//! log directory, the cluster secret and every bound the runtime enforces.
//!
//! Invariant: every buffer and queue of the runtime has its limit here, with
//! the overflow behaviour documented on the field.

use crate::recorder::RecordOptions;
use chorus_core::Config;
use std::path::PathBuf;

/// The secret used when a config sets none. Anyone who reads this source knows
/// it, so a node using it warns loudly at startup.
pub const DEFAULT_CLUSTER_SECRET: &str = "chorus-insecure-default-secret";

/// The environment switch of the chaos harness (see [`NodeOptions::unsafe_ack_before_fsync`]).
pub const UNSAFE_ACK_ENV: &str = "CHORUS_UNSAFE_ACK_BEFORE_FSYNC";

/// The second chaos-harness switch (see [`NodeOptions::unsafe_skip_fsync`]).
pub const UNSAFE_SKIP_FSYNC_ENV: &str = "CHORUS_UNSAFE_SKIP_FSYNC";

/// Bounds of the runtime. Defaults suit a laptop cluster and a benchmark.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest line a client may send (bytes, newline excluded). Longer: an
    /// ERROR `too_large` and the connection is closed.
    pub max_line_bytes: usize,
    /// Longest line a peer may send: a SEQ_CHAT batch holds many chats, each up
    /// to `max_line_bytes`. Longer: the link is closed (and re-dialed).
    pub max_peer_line_bytes: usize,
    /// Unsent bytes a client connection may hold. More: the client is not
    /// reading, so it is disconnected.
    pub max_client_output_bytes: usize,
    /// Unsent bytes on a link to a peer. More: the link is dropped and re-dialed;
    /// the protocol repairs what was lost (catch-up).
    pub max_peer_output_bytes: usize,
    /// History and subscription lines are only produced while a client has
    /// fewer unsent bytes than this: streams follow the client's reading pace.
    pub stream_low_water_bytes: usize,
    /// A client whose stream stays paused at `stream_low_water_bytes` this
    /// long (it reads slower than the room is written) is disconnected:
    /// its unsent whole lines are dropped, ERROR `slow_consumer` is sent
    /// (it says how to resume) and the connection closed. Default 10 s.
    pub slow_subscriber_ms: u64,
    /// Log entries one client stream may scan per loop iteration (room filters
    /// can skip many); the rest continues in the next iteration.
    pub stream_scan_per_iteration: usize,
    /// Open connections (clients and peers). More: accepted, told `busy`, closed.
    pub max_connections: usize,
    /// Bytes read from one connection per loop iteration before others get a turn.
    pub read_budget_bytes: usize,
    /// HISTORY requests queued on one connection. More: ERROR `busy`.
    pub max_history_jobs: usize,
    /// Open connections from one source IP address. More: closed at accept
    /// (a plain client is told `busy` first). Default 256.
    pub max_connections_per_address: usize,
    /// CHAT lines one connection may send per second, on average (a token
    /// bucket). More: ERROR `rate_limited`, the CHAT is not taken, the
    /// connection stays open. Default 10,000.
    pub client_rate_per_sec: u32,
    /// CHATs a connection may send in a burst above the rate. Default 20,000.
    pub client_rate_burst: u32,
    /// A peer handshake (connect, HELLO, CHALLENGE, AUTH) must finish within this.
    pub handshake_timeout_ms: u64,
    /// First and largest delay between attempts to dial a peer (doubling).
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line_bytes: 1 << 20,
            max_peer_line_bytes: 16 << 20,
            max_client_output_bytes: 8 << 20,
            max_peer_output_bytes: 64 << 20,
            stream_low_water_bytes: 256 << 10,
            slow_subscriber_ms: 10_000,
            stream_scan_per_iteration: 4096,
            max_connections: 1024,
            read_budget_bytes: 1 << 20,
            max_history_jobs: 16,
            max_connections_per_address: 256,
            client_rate_per_sec: 10_000,
            client_rate_burst: 20_000,
            handshake_timeout_ms: 3000,
            reconnect_min_ms: 50,
            reconnect_max_ms: 1000,
        }
    }
}

/// The HTTP port (`/metrics`, `/healthz`, `/readyz`, `/status`), with its
/// bounds: a slow or hostile scraper can hold at most one connection's
/// buffers and never stalls the loop.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Where it listens (port 0 picks a free port, for tests).
    pub host: String,
    pub port: u16,
    /// Open HTTP connections. More: answered 503 and closed.
    pub max_connections: usize,
    /// Longest request head (request line and headers). Longer: 431 and closed.
    /// Requests with a body are refused (413): every route is a GET.
    pub max_request_bytes: usize,
    /// Largest response. Larger (cannot happen with today's routes): 500.
    pub max_response_bytes: usize,
    /// Each request must arrive and its response be written within this
    /// (also the keep-alive idle limit). Later: the connection is closed.
    pub timeout_ms: u64,
    /// `/readyz` answers 200 only if a leader is known and this node has
    /// delivered up to at most this many entries short of its commit point.
    pub ready_max_lag: u64,
    /// `Origin`s a `/ws` upgrade may come from (`"*"`: any). Empty: this
    /// node's HTTP port as `http(s)://{localhost,127.0.0.1,[::1],host}:port`,
    /// and the same for every other node's HTTP port learned from its peer
    /// HELLO (`http/upgrade.rs`), so one node's page may fail over to the
    /// others. A request without `Origin` (not a browser) is accepted; any
    /// other origin is refused with 403.
    pub ws_allowed_origins: Vec<String>,
    /// A `/ws` session silent this long is pinged.
    pub ws_ping_interval_ms: u64,
    /// A ping unanswered this long closes the session (close code 1008).
    pub ws_pong_timeout_ms: u64,
    /// With `[tls]`: serve https and wss on this port with the node's
    /// certificate (the default). False keeps it plaintext (e.g. behind a
    /// proxy that terminates TLS), with a warning at start.
    pub tls: bool,
}

impl HttpOptions {
    pub fn new(host: String, port: u16) -> HttpOptions {
        HttpOptions {
            host,
            port,
            max_connections: 64,
            max_request_bytes: 8 << 10,
            max_response_bytes: 4 << 20,
            timeout_ms: 10_000,
            ready_max_lag: 1000,
            ws_allowed_origins: Vec::new(),
            ws_ping_interval_ms: 20_000,
            ws_pong_timeout_ms: 20_000,
            tls: true,
        }
    }
}

/// Who may register an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may REGISTER a free name.
    Open,
    /// Only operators create accounts (`chorus user add`).
    Closed,
}

/// Accounts and logins (`accounts.rs`, `password.rs`). Off by default: a
/// config without `[accounts]` keeps today's unauthenticated names.
#[derive(Clone, Debug)]
pub struct AccountOptions {
    pub enabled: bool,
    pub registration: Registration,
    /// Sessions that did not log in may post, under their name with a `~`
    /// in front (`~bob`), which no account can have. False: ERROR
    /// `unauthorized` until LOGIN. Default true.
    pub guests: bool,
    /// Cost of new hashes (default m = 19,456 KiB, t = 2, p = 1).
    pub argon2: crate::password::Argon2Params,
    /// Hashing threads (default 2) and jobs waiting for them (default 64;
    /// more: ERROR `busy`).
    pub hash_workers: usize,
    pub hash_queue: usize,
    /// Accounts the cluster holds (default 100,000; more: REGISTER gets
    /// ERROR `busy`).
    pub max_accounts: usize,
    /// CHATs one account may send per second over all its sessions on this
    /// node (a token bucket; default 20) and in a burst (default 40). More:
    /// ERROR `rate_limited`.
    pub account_rate_per_sec: u32,
    pub account_rate_burst: u32,
    /// Failed logins for one account, or from one address, allowed without
    /// delay (default 3). Each further failure doubles the wait before the
    /// next attempt is even checked, from `login_delay_ms` (default 500) up
    /// to `login_delay_max_ms` (default 30,000); an attempt inside the wait
    /// gets ERROR `rate_limited` with the time left. A success clears the
    /// account's and the address's count.
    pub login_free_failures: u32,
    pub login_delay_ms: u64,
    pub login_delay_max_ms: u64,
}

impl Default for AccountOptions {
    fn default() -> AccountOptions {
        AccountOptions {
            enabled: false,
            registration: Registration::Closed,
            guests: true,
            argon2: crate::password::Argon2Params::default(),
            hash_workers: 2,
            hash_queue: 64,
            max_accounts: 100_000,
            account_rate_per_sec: 20,
            account_rate_burst: 40,
            login_free_failures: 3,
            login_delay_ms: 500,
            login_delay_max_ms: 30_000,
        }
    }
}

/// The IRC gateway's port (`irc/`). Plaintext, like the HTTP port: bind it
/// to loopback or a trusted network.
#[derive(Clone, Debug)]
pub struct IrcOptions {
    /// Where it listens (port 0 picks a free port, for tests).
    pub host: String,
    pub port: u16,
    /// Messages a JOIN replays from the channel's history (at most 1000).
    pub join_replay: usize,
    /// A connection must finish registration (NICK, USER, CAP END) within
    /// this; later: `ERROR` and closed.
    pub register_timeout_ms: u64,
    /// A second IRC port speaking TLS with the node's `[tls]` certificate
    /// (6697 by convention); needs `[tls]`.
    pub tls_port: Option<u16>,
}

impl IrcOptions {
    pub fn new(host: String, port: u16) -> IrcOptions {
        IrcOptions {
            host,
            port,
            join_replay: 50,
            register_timeout_ms: 60_000,
            tls_port: None,
        }
    }
}

/// Everything one node needs.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The protocol config; `core.me` is also where the node listens (port 0
    /// picks a free port, for tests).
    pub core: Config,
    /// Holds the log's segment files (`chorus.log`, `chorus.log.<offset>`,
    /// with their `.idx` indexes) and the `LOCK` file.
    pub log_dir: PathBuf,
    /// A new log segment starts once the last one holds this many bytes.
    pub segment_bytes: u64,
    /// Shared by every member; peers prove knowledge of it (HMAC) on connect.
    pub cluster_secret: String,
    pub limits: Limits,
    /// Where the peer/client port listens, if not `core.me.host` (which stays
    /// the address advertised to others): `0.0.0.0` in a container whose
    /// name resolves to an address only from the outside.
    pub listen_host: Option<String>,
    /// The HTTP port; None: no HTTP port.
    pub http: Option<HttpOptions>,
    /// The IRC gateway's port; None: no IRC port.
    pub irc: Option<IrcOptions>,
    /// TLS on the port (clients and peers); `None`: plaintext, with a warning.
    pub tls: Option<crate::tls::TlsPaths>,
    /// Chaos-harness only: perform sends, deliveries and client replies
    /// *before* the log is fsynced, breaking the durability contract on
    /// purpose so a test can prove the harness notices. Never in production.
    pub unsafe_ack_before_fsync: bool,
    /// Chaos-harness only: never fdatasync the log records the node appends
    /// while running (they stay in the page cache), yet acknowledge as if
    /// they were durable: a power loss can lose acknowledged messages on
    /// every node. A deliberately broken build, so a test can prove the
    /// harness catches it. Never in production.
    pub unsafe_skip_fsync: bool,
    /// `--record DIR`: record every core input for `chorus sim replay`.
    pub record: Option<RecordOptions>,
    /// Accounts and logins (off by default).
    pub accounts: AccountOptions,
}

impl NodeOptions {
    pub fn new(core: Config, log_dir: PathBuf, cluster_secret: String) -> NodeOptions {
        NodeOptions {
            core,
            log_dir,
            segment_bytes: crate::storage::DEFAULT_SEGMENT_BYTES,
            cluster_secret,
            limits: Limits::default(),
            listen_host: None,
            http: None,
            irc: None,
            tls: None,
            unsafe_ack_before_fsync: false,
            unsafe_skip_fsync: false,
            record: None,
            accounts: AccountOptions::default(),
        }
    }
}

/// True if the chaos-harness switch `CHORUS_UNSAFE_ACK_BEFORE_FSYNC=1` is set.
pub fn unsafe_ack_from_env() -> bool {
    std::env::var(UNSAFE_ACK_ENV).is_ok_and(|v| v == "1")
}

/// True if the chaos-harness switch `CHORUS_UNSAFE_SKIP_FSYNC=1` is set.
pub fn unsafe_skip_fsync_from_env() -> bool {
    std::env::var(UNSAFE_SKIP_FSYNC_ENV).is_ok_and(|v| v == "1")
}
