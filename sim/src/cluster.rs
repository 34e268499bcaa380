//! The simulation engine: virtual time, the event queue, and the driver loop
//! that feeds each node its inputs.
//!
//! Driver contract (as the real runtime): for one input, `step(input)` then
//! `step(Flush)`, then execute the concatenated actions strictly in order;
//! schedule a `Tick` at `next_deadline()`. A crash may cut that execution after
//! any action (the rest is never performed). Invariants kept here:
//! - time never goes backwards; events at one instant run in insertion order;
//! - a node's pending tick is the earliest deadline it asked for (at most one
//!   live tick per node, so the queue stays bounded);
//! - a core panic is caught and recorded as a violation; the run then halts.

use crate::checker::Checker;
use crate::coverage::Coverage;
use crate::net::Network;
use crate::options::SimOptions;
use crate::queue::Queue;
use crate::seed::{self, Stream};
use crate::storage::{Disk, Recovery};
use crate::trace::{self, Digest, Trace};
use crate::workload::Clients;
use chorus_core::gate::Gate;
use chorus_core::record::Recovered;
use chorus_core::{Action, Config, Input, Instant, Node, NodeId, PeerInfo, PeerMsg, Role, Status};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Something that happens at a point of virtual time.
#[derive(Debug)]
pub(crate) enum Event {
    /// A peer message arrives (if both ends and the link survived).
    Deliver {
        from: usize,
        to: usize,
        epoch: u32,
        from_inc: u32,
        to_inc: u32,
        msg: PeerMsg,
    },
    /// A transport hint (`PeerUp`/`PeerDown`) reaches a node.
    Hint {
        to: usize,
        to_inc: u32,
        input: Input,
    },
    /// A node's timer deadline.
    Tick { node: usize, inc: u32 },
    /// A client submits a new message.
    Submit {
        client: u32,
        node: usize,
        room: String,
        /// A scripted room event; None: the workload decides.
        kind: Option<chorus_core::Event>,
    },
    /// A client's wait for an ack of message `n` ran out.
    Retry { client: u32, n: u32 },
    /// An armed mid-batch crash found no batch to cut in time: crash now.
    CrashFallback { node: usize, inc: u32 },
    /// Asynchronous disks: node `node`'s fsync of its first `upto` records
    /// finished.
    Synced { node: usize, inc: u32, upto: u64 },
}

/// One node position: the running node (if up) and its driver bookkeeping.
#[derive(Debug)]
pub(crate) struct Slot {
    pub node: Option<Node>,
    /// Bumped at every crash: messages and timers of an old incarnation are void.
    pub inc: u32,
    pub tick_at: Option<u64>,
    /// Crash inside the next non-empty action batch.
    pub crash_armed: bool,
    /// Last status, for role-change trace lines and role counting.
    pub shown: Option<Status>,
    /// Asynchronous disks: peer messages waiting until the first `n`
    /// records are durable, in the order the core emitted them.
    pub gated: Gate,
    /// Asynchronous disks: an fsync is running.
    pub syncing: bool,
}

/// A running simulation.
#[derive(Debug)]
pub struct Sim {
    pub(crate) opts: SimOptions,
    pub(crate) now: u64,
    pub(crate) queue: Queue<Event>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) disks: Vec<Disk>,
    pub(crate) net: Network,
    pub(crate) clients: Clients,
    pub(crate) checker: Checker,
    pub(crate) coverage: Coverage,
    pub(crate) trace: Trace,
    pub(crate) digest: Digest,
    pub(crate) workload_rng: ChaCha8Rng,
    pub(crate) fault_rng: ChaCha8Rng,
    pub(crate) disk_rng: ChaCha8Rng,
    pub(crate) steps: u64,
    pub(crate) halted: bool,
    /// True while two or more nodes are candidates (one coverage count per episode).
    pub(crate) competing: bool,
    out: Vec<Action>,
}

/// Entries a simulated node keeps in memory: tiny, so that every run reads
/// evicted entries back through the node's `ColdLog` (catch-up, delivery
/// after a restart, truncation).
pub const SIM_LOG_CACHE_ENTRIES: usize = 8;

/// Bytes per SNAPSHOT_CHUNK in the simulator: a snapshot of a run's few
/// dozen entries is a few hundred bytes, so installs take several chunks.
pub const SIM_SNAPSHOT_CHUNK_BYTES: usize = 96;

/// The address book entry of node index `i` (no real address: the sim routes by id).
pub(crate) fn peer_info(i: usize) -> PeerInfo {
    PeerInfo {
        node_id: NodeId(i as u64 + 1),
        host: format!("n{}", i + 1),
        port: 0,
    }
}

impl Sim {
    /// A cluster of `opts.nodes` fresh nodes, all started at time 0.
    pub fn new(opts: SimOptions) -> Sim {
        let n = opts.nodes;
        assert!((1..=64).contains(&n), "1..=64 nodes");
        let mut sim = Sim {
            now: 0,
            queue: Queue::default(),
            slots: (0..n)
                .map(|_| Slot {
                    node: None,
                    inc: 0,
                    tick_at: None,
                    crash_armed: false,
                    shown: None,
                    gated: Gate::new(),
                    syncing: false,
                })
                .collect(),
            disks: (0..n).map(|_| Disk::default()).collect(),
            net: Network::new(n, opts.net.clone(), opts.seed),
            clients: Clients::default(),
            checker: Checker::new(n)
                .with_async_disks(opts.async_fsync_ms.is_some())
                .with_dedup_window(opts.dedup_window),
            coverage: Coverage::default(),
            trace: Trace::new(opts.trace),
            digest: Digest::default(),
            workload_rng: seed::rng(opts.seed, Stream::Workload),
            fault_rng: seed::rng(opts.seed, Stream::Faults),
            disk_rng: seed::rng(opts.seed, Stream::Disk),
            steps: 0,
            halted: false,
            competing: false,
            out: Vec::new(),
            opts,
        };
        for i in 0..n {
            sim.boot(i, Recovery::Log(Recovered::default()));
        }
        sim
    }

    /// Builds node `i` of the current incarnation from `rec` and starts it.
    pub(crate) fn boot(&mut self, i: usize, rec: Recovery) {
        let n = self.opts.nodes;
        let peers = (0..n).filter(|&j| j != i).map(peer_info).collect();
        let mut cfg = Config::new(peer_info(i), peers)
            .with_timing(self.opts.heartbeat_interval_ms, self.opts.leader_timeout_ms);
        cfg.max_batch_entries = self.opts.max_batch_entries.max(1);
        cfg.max_pending = self.opts.max_pending.max(1);
        cfg.bug = self.opts.bug;
        cfg.log_cache_entries = SIM_LOG_CACHE_ENTRIES;
        cfg.reports_durability = self.opts.async_fsync_ms.is_some();
        if let Some((ids, ms)) = self.opts.dedup_window {
            cfg.dedup_window_ids = ids;
            cfg.dedup_window_ms = ms;
        }
        (cfg.snapshot_every, cfg.retain_entries) = self.opts.snapshots.unwrap_or((0, 0));
        cfg.retain_ms = self.opts.retain_ms;
        // Small chunks: an install takes many round trips, which faults cut.
        cfg.snapshot_chunk_bytes = SIM_SNAPSHOT_CHUNK_BYTES;
        let node_seed = seed::derive(
            self.opts.seed,
            Stream::Node {
                index: i,
                incarnation: self.slots[i].inc,
            },
        );
        let cold = Box::new(self.disks[i].cold());
        let node = match rec {
            Recovery::Log(rec) => Node::new(cfg, rec, node_seed),
            Recovery::Snapshot(b) => {
                let (snap, image, rec) = *b;
                Node::restored(cfg, snap, image, rec, node_seed)
            }
        };
        self.slots[i].node = Some(node.with_cold_log(cold));
        self.slots[i].shown = None;
        self.activate(i, Input::Start);
    }

    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    /// Current virtual time in ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Node steps so far (each input and each flush is one `Node::step`).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// True once a violation halted the run (a panic, a broken replay).
    pub fn halted(&self) -> bool {
        self.halted
    }

    pub fn alive(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    pub fn status(&self, i: usize) -> Option<Status> {
        self.slots[i].node.as_ref().map(Node::status)
    }

    pub fn nodes(&self) -> usize {
        self.opts.nodes
    }

    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    pub fn coverage_mut(&mut self) -> &mut Coverage {
        &mut self.coverage
    }

    pub fn trace_text(&self) -> &str {
        self.trace.text()
    }

    pub fn digest(&self) -> u64 {
        self.digest.0
    }

    /// Adds a line to the trace (scenario steps, checks).
    pub fn note(&mut self, who: &str, what: &str) {
        self.trace.line(self.now, who, what);
    }

    /// Records a violation found outside the per-step checks (liveness).
    pub fn report(&mut self, what: String) {
        self.checker.report(self.now, what);
    }

    /// Processes every event due strictly before `limit_ms`, then sets the
    /// clock to `limit_ms` (if later).
    pub fn run_until(&mut self, limit_ms: u64) {
        while self.step_event(limit_ms) {}
        self.now = self.now.max(limit_ms);
    }

    /// Processes the next event if it is due before `limit_ms`.
    pub fn step_event(&mut self, limit_ms: u64) -> bool {
        if self.halted {
            return false;
        }
        let Some((at, ev)) = self.queue.pop_before(limit_ms) else {
            return false;
        };
        self.now = self.now.max(at);
        self.dispatch(at, ev);
        true
    }

    /// Time of the next pending event.
    pub fn next_event_ms(&self) -> Option<u64> {
        self.queue.peek_ms()
    }

    fn dispatch(&mut self, at: u64, ev: Event) {
        match ev {
            Event::Deliver {
                from,
                to,
                epoch,
                from_inc,
                to_inc,
                msg,
            } => {
                let live = self.slots[to].node.is_some()
                    && self.slots[to].inc == to_inc
                    && self.slots[from].inc == from_inc
                    && self.net.open(from, to, epoch);
                if live {
                    self.activate(to, Input::Peer(msg));
                }
            }
            Event::Hint { to, to_inc, input } => {
                if self.slots[to].node.is_some() && self.slots[to].inc == to_inc {
                    self.activate(to, input);
                }
            }
            Event::Tick { node, inc } => {
                let s = &mut self.slots[node];
                if s.inc == inc && s.tick_at == Some(at) {
                    s.tick_at = None;
                    self.activate(node, Input::Tick);
                }
            }
            Event::Submit {
                client,
                node,
                room,
                kind: None,
            } => self.submit(client, node, &room),
            Event::Submit {
                client,
                node,
                room,
                kind,
            } => self.submit_kind(client, node, &room, kind),
            Event::Retry { client, n } => self.retry(client, n),
            Event::CrashFallback { node, inc } => {
                if self.slots[node].inc == inc && self.slots[node].crash_armed {
                    self.crash(node);
                }
            }
            Event::Synced { node, inc, upto } => {
                if self.slots[node].inc == inc && self.slots[node].node.is_some() {
                    self.synced(node, upto);
                }
            }
        }
    }

    /// Feeds `input` then `Flush` to node `i` and executes the actions in order
    /// (cut short by an armed crash).
    pub(crate) fn activate(&mut self, i: usize, input: Input) {
        if self.halted {
            return;
        }
        let now = self.now;
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        let label = if self.trace.enabled() {
            trace::input_text(&input)
        } else {
            None
        };
        if let Input::Peer(PeerMsg::CatchupResp { entries, .. }) = &input {
            if !entries.is_empty() {
                self.coverage.catch_up += 1;
            }
        }
        let is_tick = input == Input::Tick;
        self.digest.add(now);
        self.digest.add(i as u64);
        self.digest.add(trace::input_tag(&input));
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            node.step(Instant(now), input, &mut out);
            node.step(Instant(now), Input::Flush, &mut out);
            node.status()
        }));
        self.steps += 2;
        self.coverage.cold_reads += self.disks[i].take_cold_reads();
        let status = match stepped {
            Ok(s) => s,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                self.report(format!("n{} panicked: {msg}", i + 1));
                self.halted = true;
                self.out = out;
                return;
            }
        };
        if let Some(l) = label.filter(|_| !(is_tick && out.is_empty())) {
            self.trace.line(now, &trace::node_name(i), &l);
        }
        self.checker.on_status(now, i, &status);
        if self.execute_batch(i, &mut out) {
            self.after_activation(i, status);
        } else {
            self.slots[i].shown = Some(status);
            self.crash(i);
        }
        self.out = out;
    }

    /// Executes `out` in order; false if an armed crash cut it (the node must
    /// then crash: what follows the cut never happened).
    fn execute_batch(&mut self, i: usize, out: &mut Vec<Action>) -> bool {
        let cut = if self.slots[i].crash_armed && !out.is_empty() {
            Some(self.choose_cut(out))
        } else {
            None
        };
        let total = out.len();
        for (k, a) in out.drain(..).enumerate() {
            if cut == Some(k) {
                break;
            }
            self.execute(i, a);
        }
        let Some(k) = cut else { return true };
        let what = format!("crash after {k} of {total} actions");
        self.trace.line(self.now, &trace::node_name(i), &what);
        self.coverage.mid_batch_crashes += 1;
        false
    }

    /// Role-change trace line, role counting, and the node's next tick.
    fn after_activation(&mut self, i: usize, status: Status) {
        self.checker.on_numbered(self.now, i, &status);
        if let Some(node) = self.slots[i].node.as_ref() {
            self.checker
                .on_rooms(self.now, i, status.delivered_seq, node.rooms());
        }
        let changed = self.slots[i].shown.as_ref().is_none_or(|s| {
            (s.role, s.term, s.leader) != (status.role, status.term, status.leader)
        });
        if changed {
            if status.role == Role::Leader {
                self.coverage.leader_elected += 1;
            }
            if self.trace.enabled() {
                let text = trace::role_text(&status);
                self.trace.line(self.now, &trace::node_name(i), &text);
            }
            self.slots[i].shown = Some(status);
            self.count_candidates();
        }
        let Some(deadline) = self.slots[i].node.as_ref().and_then(Node::next_deadline) else {
            return;
        };
        let at = deadline.0.max(self.now);
        let slot = &mut self.slots[i];
        if slot.tick_at.is_none_or(|t| at < t) {
            slot.tick_at = Some(at);
            let inc = slot.inc;
            self.queue.push(at, Event::Tick { node: i, inc });
        }
    }

    /// Coverage: an episode of two or more simultaneous candidates.
    pub(crate) fn count_candidates(&mut self) {
        let candidates = self
            .slots
            .iter()
            .filter(|s| s.node.is_some())
            .filter(|s| {
                s.shown
                    .as_ref()
                    .is_some_and(|st| st.role == Role::Candidate)
            })
            .count();
        if candidates >= 2 && !self.competing {
            self.coverage.competing_candidates += 1;
        }
        self.competing = candidates >= 2;
    }
}
