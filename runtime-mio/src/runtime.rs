//! The event loop of one node: a single thread, one `mio::Poll`, one listening
//! port for peers and clients, and the core driven through `step`.
//!
//! One iteration: poll (timeout = the core's next deadline or a runtime timer),
//! read every ready connection and feed its lines to the core, fire due timers,
//! feed `Input::Flush`, then execute the collected actions with group commit
//! (`effects.rs`: records written here, fsynced by the thread of `syncer.rs`,
//! which wakes the loop when effects can go), stream history to clients
//! (`streams.rs`) and flush sockets.
//! Invariants: the clock is read once per iteration and only here; nothing is
//! acknowledged before the records preceding it are fsynced.

use crate::clock::Clock;
use crate::conn::Conn;
use crate::error::RuntimeError;
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::observe;
use crate::options::{
    Limits, NodeOptions, DEFAULT_CLUSTER_SECRET, UNSAFE_ACK_ENV, UNSAFE_SKIP_FSYNC_ENV,
};
use crate::peers::PeerTable;
use crate::recorder::Recorder;
use crate::recover::Recovery;
use crate::snapshots::SnapshotStore;
use crate::storage::DurableLog;
use crate::syncer::Syncer;
use crate::tls::{TlsContext, TlsPaths};
use chorus_core::gate::Gate;
use chorus_core::{Action, Input, Node, NodeId, Seq, Status};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);

/// Stops a running node from another thread (tests, embedding).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// Asks a running node to re-read its TLS files (SIGHUP in `chorus node`).
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ReloadHandle {
    pub fn reload(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// One node bound to its port and log, ready to `run`.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) poll: Poll,
    pub(crate) listener: TcpListener,
    local_addr: SocketAddr,
    pub(crate) conns: HashMap<Token, Conn>,
    next_token: usize,
    pub(crate) node: Node,
    /// `--record DIR`: every step of `node` goes through it (`step_core`).
    recorder: Option<Recorder>,
    pub(crate) log: DurableLog,
    /// The node's snapshot files (`snapshots.rs`).
    pub(crate) snapshots: SnapshotStore,
    /// The last snapshot save failed: no compaction until one succeeds.
    pub(crate) snapshot_failed: bool,
    /// The fsync thread (None in the unsafe modes, which never wait for it).
    pub(crate) syncer: Option<Syncer>,
    /// The log is durable up to this file offset.
    pub(crate) durable_bytes: u64,
    /// File offset where the last `Persist` record written ends.
    pub(crate) persist_end: u64,
    /// File offset where the last term or truncation record written ends.
    pub(crate) barrier_end: u64,
    /// Actions waiting for the records before them to be durable, each with
    /// the offset it needs, in emission order (`effects.rs`).
    pub(crate) gated: Gate,
    /// The durable point last reported to the core (`Input::Persisted`).
    reported_durable: Seq,
    /// The highest term durably recorded (what STATUS shows), and term
    /// records written but not yet durable with the offset each ends at.
    pub(crate) durable_term: u64,
    pub(crate) pending_terms: VecDeque<(u64, u64)>,
    clock: Clock,
    /// Core time of the current iteration.
    pub(crate) now: chorus_core::Instant,
    pub(crate) peers: PeerTable,
    pub(crate) secret: Vec<u8>,
    pub(crate) limits: Limits,
    pub(crate) unsafe_ack: bool,
    pub(crate) unsafe_skip_fsync: bool,
    pub(crate) me: NodeId,
    pub(crate) leader_timeout_ms: u64,
    /// `host:port` other nodes and clients reach this node at.
    pub(crate) advertised: String,
    /// Actions of the current iteration, executed at its end.
    pub(crate) actions: Vec<Action>,
    /// An input was fed this iteration (so `Flush` is due).
    fed: bool,
    /// Highest seq whose `Deliver` was performed (so it is committed and durable).
    pub(crate) delivered: Seq,
    /// Chats among them: the highest seq_no delivered to clients.
    pub(crate) delivered_chats: u64,
    /// Room events submitted without a msg_id so far, and this run's start
    /// (wall ms): together they make the msg_ids given to them (`rooms.rs`).
    pub(crate) event_ids: u64,
    pub(crate) boot_ms: u64,
    /// Connections with output to flush at the end of the iteration.
    pub(crate) dirty: BTreeSet<Token>,
    /// Clients with a history job or a subscription (`streams.rs`).
    pub(crate) streaming: crate::streams::StreamSet,
    /// `delivered` when every stream was last pumped.
    pub(crate) pumped_delivered: Seq,
    /// Chat lines encoded once for all subscribers (`streams.rs`).
    pub(crate) line_cache: crate::streams::LineCache,
    /// Connections whose read budget ran out with data possibly left.
    pub(crate) read_again: BTreeSet<Token>,
    last_status: Status,
    /// TLS settings in force (`None`: plaintext) and the files they came from.
    pub(crate) tls: Option<TlsContext>,
    tls_paths: Option<TlsPaths>,
    /// Open accepted connections per source address.
    pub(crate) per_address: crate::limits::PerAddress,
    reload: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
    waker: Arc<Waker>,
    /// Counters for `/metrics` (`metrics.rs`).
    pub(crate) metrics: Metrics,
    /// The HTTP port, when configured (`http/`).
    pub(crate) http: Option<HttpServer>,
    /// The IRC gateway's port, when configured (`irc/`).
    pub(crate) irc: Option<crate::irc::IrcServer>,
    /// Accounts, logins and their limits (`login.rs`).
    pub(crate) login: crate::login::LoginState,
    /// Peers' HTTP addresses from their HELLO (`http/addresses.rs`).
    pub(crate) peer_http: std::collections::BTreeMap<NodeId, String>,
}

/// Binds a nonblocking listener; `key` names the config key to change when
/// the port is taken.
pub(crate) fn bind(host: &str, port: u16, key: &str) -> Result<TcpListener, RuntimeError> {
    let addr_text = format!("{host}:{port}");
    let listen_err = |err, hint| RuntimeError::Listen {
        addr: addr_text.clone(),
        err,
        hint,
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| listen_err(e, "; check `host`"))?
        .next()
        .ok_or_else(|| listen_err(std::io::ErrorKind::NotFound.into(), "; check `host`"))?;
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                if key == "port" {
                    "; the port is in use (another chorus node?): stop it or change `port`"
                } else {
                    "; the port is in use (another chorus node?): stop it or change `http_port`"
                }
            }
            std::io::ErrorKind::AddrNotAvailable => "; `host` is not an address of this machine",
            _ => "",
        };
        listen_err(e, hint)
    })?;
    std_listener
        .set_nonblocking(true)
        .map_err(RuntimeError::Poll)?;
    Ok(TcpListener::from_std(std_listener))
}

fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random number generator is unavailable");
    u64::from_le_bytes(b)
}

impl Runtime {
    /// Binds the port, locks and recovers the log. Nothing runs until `run`.
    pub fn start(opts: NodeOptions) -> Result<Runtime, RuntimeError> {
        let mut core = opts.core;
        // This driver fsyncs on a thread and says how far it got (effects.rs).
        core.reports_durability = true;
        if opts.cluster_secret == DEFAULT_CLUSTER_SECRET {
            warn!("cluster_secret is the built-in default: anyone can join this cluster as a peer; set `cluster_secret` in every node's config");
        }
        if opts.unsafe_ack_before_fsync {
            warn!("!!! {UNSAFE_ACK_ENV}=1: acknowledging BEFORE fsync; acknowledged messages can be LOST in a crash. For the chaos harness only, never in production !!!");
        }
        if opts.unsafe_skip_fsync {
            warn!("!!! {UNSAFE_SKIP_FSYNC_ENV}=1: the log is NEVER fsynced, yet messages are acknowledged; acknowledged messages can be LOST in a power loss. For the chaos harness only, never in production !!!");
        }
        let tls = match &opts.tls {
            Some(p) => Some(TlsContext::load(p).map_err(RuntimeError::Tls)?),
            None => {
                warn!("no [tls] settings: clients and peers talk to this node in PLAINTEXT, readable and alterable on the network; set tls.cert, tls.key and tls.ca (see `chorus certs`)");
                None
            }
        };
        let listen_host = opts.listen_host.as_deref().unwrap_or(&core.me.host);
        let mut listener = bind(listen_host, core.me.port, "port")?;
        let local_addr = listener.local_addr().map_err(RuntimeError::Poll)?;
        if core.me.port == 0 {
            core.me.port = local_addr.port();
        }
        let rec = Recovery::open(&core, &opts.log_dir, opts.segment_bytes)?;
        if rec.torn_bytes > 0 {
            warn!(
                "{}: cut a torn tail of {} bytes at offset {} (a write interrupted by a crash; it was never acknowledged)",
                rec.log.path().display(),
                rec.torn_bytes,
                rec.valid_len
            );
        }
        let from = match rec.snapshot_seq {
            Some(s) => format!(
                "the snapshot at seq {} and the log after it ({} older segment files skipped)",
                s.0, rec.skipped_segments
            ),
            None => "the whole log".to_string(),
        };
        info!(
            "n{} recovered {} from {from}: {} records, log up to seq {}, committed up to seq {}, term {}; keeping the last {} entries in memory",
            core.me.node_id.0,
            rec.log.path().display(),
            rec.records,
            rec.last_seq.0,
            rec.commit_seq.0,
            rec.term.0,
            core.log_cache_entries
        );
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let me = core.me.node_id;
        let leader_timeout_ms = core.leader_timeout_ms;
        let advertised = format!("{}:{}", core.me.host, core.me.port);
        let delivered = rec.commit_seq;
        let recovered_bytes = rec.log.len_bytes();
        let reported_durable = rec.log.stable_seq();
        let metrics = Metrics::new();
        let syncer = if opts.unsafe_ack_before_fsync || opts.unsafe_skip_fsync {
            None
        } else {
            Some(
                Syncer::start(
                    rec.log.sync_target(),
                    recovered_bytes,
                    waker.clone(),
                    metrics.fsync_seconds.clone(),
                )
                .map_err(|err| RuntimeError::Storage {
                    file: rec.log.path().to_path_buf(),
                    op: "starting the fsync thread",
                    err,
                })?,
            )
        };
        let rng_seed = os_seed();
        let record = match opts.record {
            // A recording's base is the log from its first byte; a start
            // from a snapshot has no such base (`chorus sim replay` would
            // rebuild a different state), so it is not recorded.
            Some(r) if rec.snapshot_seq.is_some() => {
                warn!(
                    "--record {}: not recording: this node started from a snapshot, and replaying a recording needs the whole log (set snapshot_every = 0 on nodes to be recorded)",
                    r.dir.display()
                );
                None
            }
            other => other,
        };
        let recorder = match record {
            Some(r) => {
                let dir = r.dir.clone();
                let valid_len = rec.valid_len;
                Some(
                    Recorder::start(r, &core, rng_seed, rec.log.dir(), valid_len).map_err(
                        |err| RuntimeError::Storage {
                            file: dir,
                            op: "starting the recording (--record)",
                            err,
                        },
                    )?,
                )
            }
            None => None,
        };
        let (node, log, snapshots) = rec.into_node(core, rng_seed);
        let last_status = node.status();
        let delivered_chats = node.numbering().chats();
        let durable_term = node.status().term.0;
        let scheme = if tls.is_some() { "TLS" } else { "plaintext" };
        info!("n{} listening on {local_addr} ({scheme})", me.0);
        let mut runtime = Runtime {
            poll,
            listener,
            local_addr,
            conns: HashMap::new(),
            next_token: 2,
            node,
            recorder,
            log,
            snapshots,
            snapshot_failed: false,
            syncer,
            durable_bytes: recovered_bytes,
            persist_end: recovered_bytes,
            barrier_end: recovered_bytes,
            gated: Gate::new(),
            reported_durable,
            durable_term,
            pending_terms: VecDeque::new(),
            clock: Clock::new(),
            now: chorus_core::Instant(0),
            peers: PeerTable::new(opts.limits.reconnect_min_ms, opts.limits.reconnect_max_ms),
            secret: opts.cluster_secret.into_bytes(),
            limits: opts.limits,
            unsafe_ack: opts.unsafe_ack_before_fsync,
            unsafe_skip_fsync: opts.unsafe_skip_fsync,
            me,
            leader_timeout_ms,
            advertised,
            actions: Vec::new(),
            fed: false,
            delivered,
            delivered_chats,
            dirty: BTreeSet::new(),
            event_ids: 0,
            boot_ms: crate::clock::wall_ms(),
            streaming: Default::default(),
            pumped_delivered: Seq(0),
            line_cache: Default::default(),
            read_again: BTreeSet::new(),
            last_status,
            tls,
            tls_paths: opts.tls,
            per_address: Default::default(),
            reload: Arc::new(AtomicBool::new(false)),
            shutdown: Arc::new(AtomicBool::new(false)),
            login: crate::login::LoginState::new(opts.accounts, waker.clone())
                .map_err(RuntimeError::Accounts)?,
            waker,
            metrics,
            http: None,
            irc: None,
            peer_http: std::collections::BTreeMap::new(),
        };
        runtime.start_http(opts.http)?;
        runtime.start_irc(opts.irc)?;
        Ok(runtime)
    }

    /// The address the node listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The IRC port's address, when it has one.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.irc.as_ref().map(|i| i.local_addr())
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.shutdown.clone(),
            waker: self.waker.clone(),
        }
    }

    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            flag: self.reload.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Re-reads the TLS files: new connections use them, open ones keep
    /// theirs. A failure keeps the settings in force and says why.
    fn reload_tls(&mut self) {
        let Some(paths) = &self.tls_paths else {
            return info!("reload asked, but this node runs without TLS: nothing to reload");
        };
        match TlsContext::load(paths) {
            Ok(ctx) => {
                self.tls = Some(ctx);
                info!(
                    "reloaded TLS certificate {} (new connections use it)",
                    paths.cert.display()
                );
            }
            Err(e) => warn!("TLS reload failed, keeping the previous certificates: {e}"),
        }
    }

    /// Runs until shut down (Ok) or a fatal error (storage, poll).
    pub fn run(mut self) -> Result<(), RuntimeError> {
        // Large: with thousands of subscribers, one delivery makes as many
        // sockets ready, and each poll round costs a pass over the timers.
        let mut events = Events::with_capacity(4096);
        self.now = self.clock.now();
        self.feed(Input::Start);
        self.finish_iteration()?;
        while !self.shutdown.load(Ordering::SeqCst) {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            self.now = self.clock.now();
            if self.reload.swap(false, Ordering::SeqCst) {
                self.reload_tls();
            }
            // Our own links first: a link that died (PeerDown) is known before
            // messages of the same instant are answered ("is the leader alive?").
            for pass_links in [true, false] {
                for ev in events.iter() {
                    if self.is_link(ev.token()) != pass_links {
                        continue;
                    }
                    let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    self.on_event(ev.token(), readable, ev.is_writable());
                }
            }
            for t in std::mem::take(&mut self.read_again) {
                self.read_conn(t);
            }
            self.on_password_results();
            self.on_timers();
            self.finish_iteration()?;
        }
        info!("n{} stopped", self.me.0);
        Ok(())
    }

    fn is_link(&self, token: Token) -> bool {
        self.conns
            .get(&token)
            .is_some_and(|c| matches!(c.role, crate::conn::Role::Dial { .. }))
    }

    pub(crate) fn alloc_token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    /// Feeds one input; its actions run at the end of the iteration.
    pub(crate) fn feed(&mut self, input: Input) {
        self.step_core(input);
        self.fed = true;
    }

    /// The one place the core is stepped (so a recording sees every input).
    fn step_core(&mut self, input: Input) {
        match self.recorder.as_mut() {
            None => self.node.step(self.now, input, &mut self.actions),
            Some(r) => {
                let before = self.actions.len();
                r.before(&input);
                self.node.step(self.now, input, &mut self.actions);
                r.after(self.now, &self.actions[before..]);
            }
        }
    }

    fn finish_iteration(&mut self) -> Result<(), RuntimeError> {
        self.observe_durable()?;
        self.report_durable();
        if self.fed {
            self.step_core(Input::Flush);
            self.fed = false;
        }
        if let Some(r) = self.recorder.as_mut() {
            r.flush();
        }
        self.execute()?;
        let status = self.node.status();
        observe::status_change(&self.last_status, &status);
        self.metrics.role_change(self.last_status.role, status.role);
        self.last_status = status;
        self.pump_streams();
        self.flush_dirty();
        Ok(())
    }

    /// Tells the core how far its log is durable, when that changed.
    fn report_durable(&mut self) {
        let upto = self.log.stable_seq();
        if upto != self.reported_durable {
            self.reported_durable = upto;
            self.feed(Input::Persisted { upto });
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_again.is_empty()
            || self.streaming.has_woken()
            || !self.actions.is_empty()
            || self.fed
        {
            return Some(Duration::ZERO);
        }
        let core = self.node.next_deadline().map(|d| self.clock.at(d));
        let conns = self.conns.values().filter_map(|c| c.deadline).min();
        let http = self.http.as_ref().and_then(|h| h.next_deadline());
        let slow = self
            .streaming
            .next_slow_deadline(Duration::from_millis(self.limits.slow_subscriber_ms));
        [core, conns, self.peers.next_retry(), http, slow]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(std::time::Instant::now()))
    }

    /// Expired connection deadlines, due dials, and the core's timers.
    fn on_timers(&mut self) {
        let now = std::time::Instant::now();
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(&t, _)| t)
            .collect();
        for t in expired {
            let fresh = self.conns.get(&t).is_some_and(|c| {
                matches!(c.role, crate::conn::Role::Fresh) && !c.stream.is_handshaking()
            });
            let irc_unregistered = self.conns.get_mut(&t).is_some_and(|c| {
                !c.closing
                    && c.client_mut().is_some_and(|s| {
                        !s.read_closed && s.irc.as_ref().is_some_and(|i| !i.registered)
                    })
            });
            if fresh {
                // Silent, but past any TLS handshake: a seed client that
                // only listens (a stalled TLS handshake is closed instead).
                self.seed_listener(t);
            } else if irc_unregistered {
                self.irc_close(t, "registration timed out (send NICK and USER)");
            } else {
                self.close_conn(t, "timed out");
            }
        }
        self.drop_slow_subscribers();
        for id in self.peers.due(now) {
            self.dial(id);
        }
        if self.node.next_deadline().is_some_and(|d| d <= self.now) {
            self.feed(Input::Tick);
        }
        self.http_timers();
    }
}
