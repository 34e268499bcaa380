//! The node's counters and gauges for `/metrics`, declared once with the
//! prometheus-client crate, which also writes the text format (no format is
//! written by hand here).
//!
//! Counters and histograms are bumped where the event happens (a few hooks in
//! the runtime: `net.rs`, `clients.rs`, `effects.rs`, `links.rs`, the fsync
//! thread); gauges that mirror state (role, term, commit, sessions, links) are
//! set from the runtime only when a scrape asks, so an unscraped node pays for
//! the counters alone. Every update is an atomic add or one uncontended
//! mutex (histograms): never blocking the loop.
//!
//! Bound: the commit-latency clock keeps at most `COMMIT_TIMERS_MAX` chats in
//! flight (an ERROR reply names no msg_id, so a refused chat's clock is only
//! dropped when its client leaves); when full, every running clock is dropped
//! and counted in `chorus_commit_latency_unmeasured`. The clock runs only on a
//! node with an HTTP port (nobody could read it otherwise).

use chorus_core::{ErrorCode, Role};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::time::Instant;

/// Chats whose receipt time is remembered for the commit-latency histogram.
pub(crate) const COMMIT_TIMERS_MAX: usize = 1 << 16;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum RoleName {
    follower,
    candidate,
    leader,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RoleLabel {
    pub role: RoleName,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CodeLabel {
    pub code: String,
}

/// Every metric of one node.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub role: Family<RoleLabel, Gauge>,
    pub term: Gauge,
    pub leader_id: Gauge,
    pub commit_seq: Gauge,
    pub last_seq: Gauge,
    pub delivered_seq: Gauge,
    pub committed: Counter,
    pub client_sessions: Gauge,
    pub peer_links_up: Gauge,
    pub elections_started: Counter,
    pub elections_won: Counter,
    pub fsync_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub commit_unmeasured: Counter,
    pub catchup_sent: Counter,
    pub catchup_received: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub slow_clients: Counter,
    pub errors: Family<CodeLabel, Counter>,
    pub http_requests: Counter,
    pub first_seq: Gauge,
    pub snapshot_seq: Gauge,
    pub snapshots_saved: Counter,
    pub snapshot_installs: Gauge,
    pub snapshot_seconds: Histogram,
    pub segments_deleted: Counter,
    /// When each chat in flight arrived, by (client token, msg_id).
    commit_timers: HashMap<(usize, String), Instant>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("chorus"),
            role: Family::default(),
            term: Gauge::default(),
            leader_id: Gauge::default(),
            commit_seq: Gauge::default(),
            last_seq: Gauge::default(),
            delivered_seq: Gauge::default(),
            committed: Counter::default(),
            client_sessions: Gauge::default(),
            peer_links_up: Gauge::default(),
            elections_started: Counter::default(),
            elections_won: Counter::default(),
            // 50 µs .. ~3.3 s: a tmpfs fsync to a disk in trouble.
            fsync_seconds: Histogram::new(exponential_buckets(50e-6, 2.0, 17)),
            // 100 µs .. ~6.5 s: one LAN round trip plus fsyncs, to a failover.
            commit_seconds: Histogram::new(exponential_buckets(100e-6, 2.0, 17)),
            commit_unmeasured: Counter::default(),
            catchup_sent: Counter::default(),
            catchup_received: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            slow_clients: Counter::default(),
            errors: Family::default(),
            http_requests: Counter::default(),
            first_seq: Gauge::default(),
            snapshot_seq: Gauge::default(),
            snapshots_saved: Counter::default(),
            snapshot_installs: Gauge::default(),
            // 1 ms .. ~65 s: encoding plus one fsync of a large file.
            snapshot_seconds: Histogram::new(exponential_buckets(1e-3, 2.0, 17)),
            segments_deleted: Counter::default(),
            commit_timers: HashMap::new(),
        };
        m.register();
        m
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register("role", "1 for this node's current role", self.role.clone());
        r.register("term", "Current term", self.term.clone());
        r.register(
            "leader_id",
            "Node id of the known leader (0: none known)",
            self.leader_id.clone(),
        );
        r.register(
            "commit_seq",
            "Highest seq known committed",
            self.commit_seq.clone(),
        );
        r.register(
            "last_seq",
            "Last seq in this node's log",
            self.last_seq.clone(),
        );
        r.register(
            "delivered_seq",
            "Highest seq delivered (applied) on this node",
            self.delivered_seq.clone(),
        );
        r.register(
            "messages_committed",
            "Log entries delivered since this process started",
            self.committed.clone(),
        );
        r.register(
            "client_sessions",
            "Client connections open",
            self.client_sessions.clone(),
        );
        r.register(
            "peer_links_up",
            "Authenticated outgoing links to peers",
            self.peer_links_up.clone(),
        );
        r.register(
            "elections_started",
            "Elections this node started",
            self.elections_started.clone(),
        );
        r.register(
            "elections_won",
            "Times this node became leader",
            self.elections_won.clone(),
        );
        r.register_with_unit(
            "fsync",
            "Duration of one fdatasync of the log",
            Unit::Seconds,
            self.fsync_seconds.clone(),
        );
        r.register_with_unit(
            "commit_latency",
            "From a CHAT's receipt to its CHAT_ACK (durable on a majority)",
            Unit::Seconds,
            self.commit_seconds.clone(),
        );
        r.register(
            "commit_latency_unmeasured",
            "Chats not timed because too many were in flight",
            self.commit_unmeasured.clone(),
        );
        r.register(
            "catchup_entries_sent",
            "Log entries sent in CATCHUP_RESP",
            self.catchup_sent.clone(),
        );
        r.register(
            "catchup_entries_received",
            "Log entries received in CATCHUP_RESP",
            self.catchup_received.clone(),
        );
        r.register_with_unit(
            "received",
            "Bytes read from client and peer connections",
            Unit::Bytes,
            self.bytes_in.clone(),
        );
        r.register_with_unit(
            "sent",
            "Bytes written to client and peer connections",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
        r.register(
            "slow_clients_disconnected",
            "Clients disconnected because they did not read their output",
            self.slow_clients.clone(),
        );
        r.register(
            "errors",
            "ERROR lines sent to clients, by code",
            self.errors.clone(),
        );
        r.register(
            "http_requests",
            "Requests answered on the HTTP port",
            self.http_requests.clone(),
        );
        r.register(
            "log_first_seq",
            "First seq still in the log (older ones compacted behind a snapshot)",
            self.first_seq.clone(),
        );
        r.register(
            "snapshot_seq",
            "Seq of the newest snapshot taken, installed or loaded (0: none)",
            self.snapshot_seq.clone(),
        );
        r.register(
            "snapshots_saved",
            "Snapshots made durable by this process",
            self.snapshots_saved.clone(),
        );
        r.register(
            "snapshot_installs",
            "Snapshots installed from a peer by this process",
            self.snapshot_installs.clone(),
        );
        r.register_with_unit(
            "snapshot_save",
            "Time to write and fsync one snapshot",
            Unit::Seconds,
            self.snapshot_seconds.clone(),
        );
        r.register(
            "log_segments_deleted",
            "Log segment files deleted by retention",
            self.segments_deleted.clone(),
        );
    }

    /// Counts one ERROR sent to a client.
    pub(crate) fn error(&self, code: ErrorCode) {
        let code = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{code:?}"));
        self.errors.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts role changes: a new candidacy, a won election.
    pub(crate) fn role_change(&self, before: Role, after: Role) {
        if after == before {
            return;
        }
        match after {
            Role::Candidate => self.elections_started.inc(),
            Role::Leader => self.elections_won.inc(),
            Role::Follower => 0,
        };
    }

    /// A chat arrived: start its commit clock (if within the bound).
    pub(crate) fn chat_received(&mut self, token: usize, msg_id: &str) {
        if self.commit_timers.len() >= COMMIT_TIMERS_MAX {
            self.commit_unmeasured
                .inc_by(self.commit_timers.len() as u64);
            self.commit_timers.clear();
        }
        self.commit_timers
            .insert((token, msg_id.to_string()), Instant::now());
    }

    /// A chat was answered (ack or error): stop its clock; an ack is observed.
    pub(crate) fn chat_answered(&mut self, token: usize, msg_id: Option<&str>, acked: bool) {
        let Some(id) = msg_id else {
            return;
        };
        if let Some(t) = self.commit_timers.remove(&(token, id.to_string())) {
            if acked {
                self.commit_seconds.observe(t.elapsed().as_secs_f64());
            }
        }
    }

    /// A client left: its chats in flight will never be answered to it.
    pub(crate) fn client_gone(&mut self, token: usize) {
        if !self.commit_timers.is_empty() {
            self.commit_timers.retain(|(t, _), _| *t != token);
        }
    }

    /// Sets the role gauges (1 for `role`, 0 for the others).
    pub(crate) fn set_role(&self, role: Role) {
        for (name, r) in [
            (RoleName::follower, Role::Follower),
            (RoleName::candidate, Role::Candidate),
            (RoleName::leader, Role::Leader),
        ] {
            let v = i64::from(r == role);
            self.role.get_or_create(&RoleLabel { role: name }).set(v);
        }
    }

    /// The registry in the Prometheus text format 0.0.4 (what every
    /// Prometheus scrapes and `promtool check metrics` reads; the crate's
    /// OpenMetrics output names counters in a way promtool flags).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
