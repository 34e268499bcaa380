//! The node: its state, the `step` dispatcher, timers and term bookkeeping.
//! Handlers per concern live in `election.rs`, `failure.rs`, `replication.rs`,
//! `catchup.rs`, `membership.rs` and `client.rs`.
//!
//! Invariants kept here: a term change is persisted before anything that
//! depends on it is emitted; the term never decreases; timers are a fixed
//! table and a stale fire is a no-op.

use crate::accounts::Accounts;
use crate::config::{Config, InjectedBug};
use crate::entry::Entry;
use crate::install::{Chunk, Held, Incoming};
use crate::io::{Action, Input, Role, Status};
use crate::log::{ColdLog, Log};
use crate::numbering::Numbering;
use crate::pending::Pending;
use crate::presence::Presence;
use crate::record::{Record, Recovered};
use crate::rooms::Rooms;
use crate::snapshot::{Restore, Snapshot, SnapshotImage};
use crate::types::{ClientId, Instant, NodeId, PeerInfo, Seq, Term};
use crate::wire::PeerMsg;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The timers of a node, one slot each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Leader: send heartbeats and check that a majority is still heard.
    Heartbeat = 0,
    /// Follower: the leader is suspected when this fires.
    LeaderTimeout,
    /// Candidate: the current election phase gave up waiting.
    Election,
    /// An outstanding CATCHUP_REQ may be lost: ask again.
    Catchup,
    /// Re-forward chats still pending at a follower (lost FORWARDs).
    Forward,
    /// A presence round (`gossip.rs`), armed only while presence is active.
    Presence,
}

const TIMERS: [Timer; 6] = [
    Timer::Heartbeat,
    Timer::LeaderTimeout,
    Timer::Election,
    Timer::Catchup,
    Timer::Forward,
    Timer::Presence,
];

/// What a candidate is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Election {
    /// Bully ELECTION sent to every voter (a pre-vote: no term is spent).
    /// `grants` are voters that lost the leader too; `higher_pending` are
    /// higher ids that have not answered yet.
    Probing {
        grants: BTreeSet<NodeId>,
        higher_pending: BTreeSet<NodeId>,
    },
    /// A higher node (or a live leader) told us to stand down.
    AwaitCoordinator,
    /// COORDINATOR sent for the current term; collecting log positions.
    Claiming {
        positions: BTreeMap<NodeId, (Term, Seq)>,
    },
    /// Adopting the most up-to-date log of the majority from `from`.
    Fetching { from: NodeId, target: (Term, Seq) },
}

/// Replication bookkeeping of a leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leading {
    /// Highest seq each member durably matches (voters and non-voters).
    pub match_seq: BTreeMap<NodeId, Seq>,
    /// When each member was last heard in this term.
    pub heard: BTreeMap<NodeId, Instant>,
    /// Highest seq already broadcast in a SEQ_CHAT.
    pub replicated: Seq,
    /// When this leadership began.
    pub since: Instant,
    /// Highest commit point sent to the members (in a SEQ_CHAT or HEARTBEAT).
    pub commit_sent: Seq,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Follower,
    Candidate(Election),
    Leader(Leading),
}

/// One chorus node as a pure state machine.
#[derive(Debug)]
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: Instant,
    // Durable state (mirrored by Persist actions).
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: Log,
    pub(crate) commit_seq: Seq,
    // Volatile state.
    pub(crate) delivered_seq: Seq,
    pub(crate) state: State,
    pub(crate) leader: Option<NodeId>,
    /// Last time the current leader was heard (heartbeat or append).
    pub(crate) leader_contact: Option<Instant>,
    /// The leader this node last followed and then suspected (not awaited
    /// again by its Bully probes); cleared once it follows a leader.
    pub(crate) lost_leader: Option<NodeId>,
    /// Highest seq verified to match the current leader's log in this term.
    pub(crate) leader_match: Seq,
    /// The highest commit point the current leader announced to us.
    pub(crate) leader_commit: Seq,
    /// How far this node's own log is durable (`Input::Persisted`); only
    /// read with `Config::reports_durability`.
    pub(crate) own_durable: Seq,
    pub(crate) ack_dirty: bool,
    pub(crate) catchup_inflight: bool,
    /// The last step was a `Flush`: the driver executes its batch before the
    /// next step (the `chorus_core::io` contract), so the log may evict it.
    batch_ended: bool,
    pub(crate) members: BTreeMap<NodeId, PeerInfo>,
    pub(crate) down: BTreeSet<NodeId>,
    timers: [Option<Instant>; 6],
    /// Clients waiting for the commit of a msg_id.
    pub(crate) waiting: BTreeMap<String, Vec<ClientId>>,
    /// Chats accepted here and not yet seen in the log (forwarded, or waiting
    /// for a leader). Bounded by `max_pending`.
    pub(crate) pending: Pending,
    /// The fold of the committed log: seq_no / room_seq and the room index.
    pub(crate) numbering: Numbering,
    /// The fold of the committed log: members, topics (`rooms.rs`).
    pub(crate) rooms: Rooms,
    /// The fold of the committed log: accounts (`accounts.rs`).
    pub(crate) accounts: Accounts,
    /// Who is online where: soft state (`presence.rs`).
    pub(crate) presence: Presence,
    /// The newest snapshot taken, installed or loaded (`install.rs`).
    pub(crate) snap_seq: Seq,
    /// Its image, kept to serve installs while the log is compacted.
    pub(crate) snap_image: Option<Held>,
    /// The image each member is being sent (kept until its last chunk
    /// leaves, even if a newer snapshot replaces `snap_image`).
    pub(crate) sending: BTreeMap<NodeId, (SnapshotImage, Instant)>,
    /// A snapshot being received (one at a time).
    pub(crate) incoming: Option<Incoming>,
    /// Snapshots installed in this incarnation.
    pub(crate) installs: u64,
    /// The newest `ts_ms` of a delivered chat (retention by age).
    pub(crate) newest_ts: u64,
    /// Bytes of the newest snapshot (paces the next one: `maybe_snapshot`).
    pub(crate) snap_len: u64,
    /// A restart whose log file must be told it continues after the loaded
    /// snapshot (`Restore::needs_marker`): written first thing at `Start`.
    pub(crate) marker_on_start: Option<(Seq, Term)>,
}

impl Node {
    /// A node with recovered durable state and its own rng stream (jitter only).
    /// Every entry stays in memory unless a `ColdLog` is attached.
    pub fn new(cfg: Config, recovered: Recovered, rng_seed: u64) -> Node {
        let recovered = Recovered {
            term: recovered.term,
            voted_for: recovered.voted_for,
            entries: Log::from_entries(recovered.entries),
            commit_seq: recovered.commit_seq,
        };
        Node::from_log(cfg, recovered, rng_seed)
    }

    /// `new` from a log replayed straight into its compact form
    /// (`record::replay_read` into a `Log`).
    pub fn from_log(cfg: Config, recovered: Recovered<Log>, rng_seed: u64) -> Node {
        Node::build(cfg, recovered, rng_seed, None)
    }

    /// A restart from the newest saved snapshot (`image`, decoded as
    /// `snap`) and the log replayed after it into a `Restore` sink.
    pub fn restored(
        cfg: Config,
        snap: Snapshot,
        image: SnapshotImage,
        recovered: Recovered<Restore>,
        rng_seed: u64,
    ) -> Node {
        let marker = recovered
            .entries
            .needs_marker()
            .then_some((snap.seq, snap.term));
        let recovered = Recovered {
            term: recovered.term,
            voted_for: recovered.voted_for,
            commit_seq: recovered.commit_seq.max(snap.seq),
            entries: recovered.entries.into_log(),
        };
        let seq = snap.seq;
        let held = image.clone();
        let mut node = Node::build(cfg, recovered, rng_seed, Some((snap, image)));
        if marker.is_some() {
            // The marker tells the file the log continues after the
            // snapshot: what the file held up to it is no longer readable
            // (nor was all of it durable), so the history starts after it.
            node.log.compact_before(seq.next());
            node.numbering.forget_before(seq.next());
            node.hold(held);
        }
        node.marker_on_start = marker;
        node
    }

    fn build(
        cfg: Config,
        recovered: Recovered<Log>,
        rng_seed: u64,
        snap: Option<(Snapshot, SnapshotImage)>,
    ) -> Node {
        let mut members = BTreeMap::new();
        for p in &cfg.peers {
            if p.node_id != cfg.me.node_id {
                members.insert(p.node_id, p.clone());
            }
        }
        // The recovered log was made durable before the node starts.
        let recovered_last = recovered.entries.last_seq();
        let mut entries = recovered.entries;
        // A log replayed into a bounded cache is folded once its ColdLog is
        // attached (`with_cold_log`): its evicted entries are read from there.
        let snap_len = snap.as_ref().map_or(0, |(_, i)| i.bytes.len() as u64);
        let (snap_seq, snap_image, folds) = match snap {
            Some((s, image)) => {
                let keep = (entries.first_seq().0 > 1).then_some(Held {
                    seq: image.seq,
                    term: image.term,
                    bytes: Some(image.bytes),
                });
                (s.seq, keep, (s.numbering, s.rooms, s.accounts))
            }
            None => (Seq(0), None, Default::default()),
        };
        let from = folds.0.upto().next();
        let (numbering, rooms, accounts) = if recovered.commit_seq < from || entries.is_cached(from)
        {
            fold_committed(&mut entries, recovered.commit_seq, folds)
        } else {
            folds
        };
        Node {
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            now: Instant(0),
            term: recovered.term,
            voted_for: recovered.voted_for,
            log: {
                let mut log = entries;
                // A second, distinct value from the same seed (not the jitter stream).
                log.set_index_key(rng_seed ^ 0x6465_6475_705f_6b65);
                let (ids, ms) = cfg.dedup_window();
                log.set_dedup_window(ids, ms);
                log
            },
            commit_seq: recovered.commit_seq,
            delivered_seq: recovered.commit_seq,
            state: State::Follower,
            leader: None,
            leader_contact: None,
            lost_leader: None,
            leader_match: Seq(0),
            leader_commit: Seq(0),
            own_durable: recovered_last,
            ack_dirty: false,
            catchup_inflight: false,
            batch_ended: false,
            members,
            down: BTreeSet::new(),
            timers: [None; 6],
            waiting: BTreeMap::new(),
            pending: Pending::default(),
            numbering,
            rooms,
            accounts,
            presence: Presence::default(),
            snap_seq,
            snap_image,
            sending: BTreeMap::new(),
            incoming: None,
            installs: 0,
            newest_ts: 0,
            snap_len,
            marker_on_start: None,
            cfg,
        }
    }

    /// The fold of the committed log (numbers and per-room index), up to the
    /// last delivered entry.
    pub fn numbering(&self) -> &Numbering {
        &self.numbering
    }

    /// The room state folded from the committed log, up to the last
    /// delivered entry (`rooms.rs`).
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// The accounts folded from the committed log, up to the last delivered
    /// entry (`accounts.rs`).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Who is online on any node, as far as this node knows (`presence.rs`).
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Keeps at most `cfg.log_cache_entries` written entries in memory and
    /// reads older ones through `cold`, which must serve every entry the
    /// driver wrote (see `ColdLog`).
    pub fn with_cold_log(mut self, cold: Box<dyn ColdLog>) -> Node {
        self.log.attach_cold(cold, self.cfg.log_cache_entries);
        if self.log.serves_snapshots() {
            // The driver reads its saved snapshot back when a member needs it.
            if let Some(h) = self.snap_image.as_mut() {
                h.bytes = None;
            }
        }
        if self.numbering.upto() != self.commit_seq {
            let folds = (
                std::mem::take(&mut self.numbering),
                std::mem::take(&mut self.rooms),
                std::mem::take(&mut self.accounts),
            );
            (self.numbering, self.rooms, self.accounts) =
                fold_committed(&mut self.log, self.commit_seq, folds);
        }
        self
    }

    pub fn id(&self) -> NodeId {
        self.cfg.me.node_id
    }

    /// Feeds one input; actions are appended to `out` in contract order.
    pub fn step(&mut self, now: Instant, input: Input, out: &mut Vec<Action>) {
        self.now = self.now.max(now);
        self.log.set_now(self.now);
        if self.batch_ended {
            self.log.batch_written();
        }
        self.batch_ended = matches!(input, Input::Flush);
        match input {
            Input::Start => self.on_start(out),
            Input::Tick => self.on_tick(out),
            Input::Peer(msg) => self.on_peer(msg, out),
            Input::Client { client, request } => self.on_client(client, request, out),
            Input::PeerUp(id) => self.on_peer_up(id, out),
            Input::PeerDown(id) => self.on_peer_down(id, out),
            Input::Flush => self.on_flush(out),
            Input::Persisted { upto } => self.on_persisted(upto, out),
        }
    }

    /// The earliest armed timer, if any: when the driver must send `Tick`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.id(),
            role: match self.state {
                State::Follower => Role::Follower,
                State::Candidate(_) => Role::Candidate,
                State::Leader(_) => Role::Leader,
            },
            term: self.term,
            leader: self.leader,
            commit_seq: self.commit_seq,
            last_seq: self.log.last_seq(),
            delivered_seq: self.delivered_seq,
            delivered_chats: self.numbering.chats(),
            first_seq: self.log.first_seq(),
            snapshot_seq: self.snap_seq,
            installs: self.installs,
            installing: self.incoming.is_some(),
        }
    }

    /// The first log entry this node holds (earlier ones were compacted
    /// behind a snapshot, or never held after an install).
    pub fn first_seq(&self) -> Seq {
        self.log.first_seq()
    }

    /// Every member known to this node, in id order.
    pub fn members(&self) -> Vec<PeerInfo> {
        self.members.values().cloned().collect()
    }

    /// The entry at `seq`, if this node has it (for history served by the
    /// driver): borrowed from the cache, or read back through the `ColdLog`.
    pub fn entry(&mut self, seq: Seq) -> Option<Cow<'_, Entry>> {
        self.log.get(seq)
    }

    /// Up to `max_n` entries from `from` on (history served by the driver).
    pub fn entries(&mut self, from: Seq, max_n: usize) -> Vec<Entry> {
        self.log.slice(from, max_n, usize::MAX)
    }

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        for t in TIMERS {
            match self.timers[t as usize] {
                Some(at) if at <= self.now => {
                    self.timers[t as usize] = None;
                    self.on_timer(t, out);
                }
                _ => {}
            }
        }
    }

    fn on_timer(&mut self, t: Timer, out: &mut Vec<Action>) {
        match t {
            Timer::Heartbeat => self.on_heartbeat_timer(out),
            Timer::LeaderTimeout => self.on_leader_timeout(out),
            Timer::Election => self.on_election_timer(out),
            Timer::Catchup => self.on_catchup_timer(out),
            Timer::Forward => self.on_forward_timer(out),
            Timer::Presence => self.on_presence_timer(out),
        }
    }

    pub(crate) fn arm(&mut self, t: Timer, after_ms: u64) {
        self.timers[t as usize] = Some(self.now.plus_ms(after_ms));
    }

    pub(crate) fn disarm(&mut self, t: Timer) {
        self.timers[t as usize] = None;
    }

    pub(crate) fn is_armed(&self, t: Timer) -> bool {
        self.timers[t as usize].is_some()
    }

    /// A fresh jitter in `0..=max_ms` from the node's own rng stream.
    pub(crate) fn jitter(&mut self, max_ms: u64) -> u64 {
        if max_ms == 0 {
            0
        } else {
            self.rng.next_u64() % (max_ms + 1)
        }
    }

    fn on_peer(&mut self, msg: PeerMsg, out: &mut Vec<Action>) {
        let from = msg.sender();
        if from == self.id() || msg.term() >= Term::LIMIT {
            return;
        }
        match msg {
            PeerMsg::Join { peer, relay, .. } => self.on_join(peer, relay, out),
            PeerMsg::JoinAck {
                term,
                members,
                leader,
                ..
            } => self.on_join_ack(term, members, leader, out),
            PeerMsg::Election { .. } => self.on_election(from, out),
            PeerMsg::ElectionOk { grant, .. } => self.on_election_ok(from, grant, out),
            PeerMsg::Coordinator { term, leader, .. } => self.on_coordinator(term, leader, out),
            PeerMsg::CatchupReq {
                term,
                from_seq,
                prev_term,
                commit_seq,
                ..
            } => self.on_catchup_req(from, term, from_seq, prev_term, commit_seq, out),
            PeerMsg::Forward { term, chat, .. } => self.on_forward(from, term, chat, out),
            PeerMsg::ForwardAck {
                msg_id,
                seq_no,
                event,
                ..
            } => self.on_forward_ack(msg_id, seq_no, event, out),
            PeerMsg::Presence {
                version,
                names,
                pull,
                ..
            } => self.on_presence(from, version, names, pull, out),
            PeerMsg::SnapshotReq { seq, offset, .. } => {
                self.send_snapshot_chunk(from, seq, offset, out)
            }
            other => self.on_termed(other, out),
        }
    }

    /// Messages whose term is authoritative: a higher term is adopted first, a
    /// lower one is stale (a stale leader is told our term so it steps down).
    fn on_termed(&mut self, msg: PeerMsg, out: &mut Vec<Action>) {
        let from = msg.sender();
        let term = msg.term();
        if term < self.term && self.cfg.bug != Some(InjectedBug::AcceptStaleTerm) {
            if matches!(msg, PeerMsg::Heartbeat { .. } | PeerMsg::SeqChat { .. }) {
                let reply = PeerMsg::AppendAck {
                    sender_id: self.id(),
                    term: self.term,
                    match_seq: Seq(0),
                };
                out.push(Action::Send {
                    to: from,
                    msg: reply,
                });
            }
            return;
        }
        if term > self.term {
            self.adopt_term(term, None, out);
        }
        match msg {
            PeerMsg::Heartbeat {
                commit_seq,
                last_seq,
                last_term,
                ..
            } => self.on_heartbeat(from, commit_seq, last_seq, last_term, out),
            PeerMsg::SeqChat {
                prev_seq,
                prev_term,
                commit_seq,
                entries,
                ..
            } => self.on_seq_chat(from, prev_seq, prev_term, commit_seq, entries, out),
            PeerMsg::AppendAck { match_seq, .. } => self.on_append_ack(from, match_seq, out),
            PeerMsg::SyncAck {
                last_seq,
                last_term,
                ..
            } => self.on_sync_ack(from, (last_term, last_seq), out),
            PeerMsg::CoordinatorNack { .. } => self.on_coordinator_nack(out),
            PeerMsg::CatchupResp {
                prev_seq,
                prev_term,
                commit_seq,
                last_seq,
                entries,
                leading,
                ..
            } => self.on_catchup_resp(
                from, prev_seq, prev_term, commit_seq, last_seq, entries, leading, out,
            ),
            PeerMsg::SnapshotChunk {
                seq,
                snap_term,
                total,
                offset,
                data,
                leading,
                ..
            } => {
                let chunk = Chunk {
                    seq,
                    snap_term,
                    total,
                    offset,
                    data,
                    leading,
                };
                self.on_snapshot_chunk(from, chunk, out)
            }
            _ => {}
        }
    }

    /// Moves to `term` (higher, or the same term with a new promise): persisted
    /// before anything else; a leadership or candidacy of an older term ends.
    pub(crate) fn adopt_term(&mut self, term: Term, vote: Option<NodeId>, out: &mut Vec<Action>) {
        let stale_ok = self.cfg.bug == Some(InjectedBug::AcceptStaleTerm);
        assert!(term >= self.term || stale_ok, "terms never decrease");
        let newer = term != self.term;
        self.term = term;
        self.voted_for = vote;
        out.push(Action::Persist(Record::Term {
            term,
            voted_for: vote,
        }));
        if newer {
            self.become_follower(None);
        }
    }

    /// Follower of `leader` (or of nobody yet) in the current term.
    pub(crate) fn become_follower(&mut self, leader: Option<NodeId>) {
        if matches!(self.state, State::Leader(_)) {
            self.disarm(Timer::Heartbeat);
        }
        self.state = State::Follower;
        self.disarm(Timer::Election);
        if self.leader != leader {
            self.leader_match = Seq(0);
            self.leader_commit = Seq(0);
            self.leader_contact = None;
        }
        self.leader = leader;
        let wait = self.cfg.leader_timeout_ms;
        let j = self.jitter(self.cfg.heartbeat_interval_ms / 4);
        self.arm(Timer::LeaderTimeout, wait + j);
    }

    pub(crate) fn others(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }

    pub(crate) fn other_voters(&self) -> Vec<NodeId> {
        let me = self.id();
        self.cfg
            .voters
            .iter()
            .copied()
            .filter(|&v| v != me)
            .collect()
    }

    pub(crate) fn is_leader(&self) -> bool {
        matches!(self.state, State::Leader(_))
    }

    /// True while this node follows a leader it heard within the leader timeout.
    pub(crate) fn has_live_leader(&self) -> bool {
        if self.is_leader() {
            return true;
        }
        match (self.leader, self.leader_contact) {
            // A leader our link to is down is not live for us, whatever
            // still arrives from it: messages it sent before it died can
            // come in late (delayed on its own link), and we could not
            // acknowledge anything it sends anyway.
            (Some(l), Some(at)) => {
                !self.down.contains(&l) && self.now.ms_since(at) < self.cfg.leader_timeout_ms
            }
            _ => false,
        }
    }

    fn on_start(&mut self, out: &mut Vec<Action>) {
        if let Some((seq, term)) = self.marker_on_start.take() {
            out.push(Action::Persist(Record::Snapshot { seq, term }));
        }
        for p in self.members.values() {
            out.push(Action::PeerKnown(p.clone()));
        }
        let join = self.join_msg(false);
        let to = self.others();
        if !to.is_empty() {
            out.push(Action::Broadcast { to, msg: join });
        }
        self.become_follower(None);
        // Bully: a process that recovers holds an election at once rather
        // than wait out the leader timeout. The pre-vote makes this harmless
        // where a leader lives (its followers answer "stand down" and name
        // it); after a whole-cluster restart it saves the timeout.
        if self.cfg.is_voter() {
            self.start_election(out);
        }
    }

    fn on_peer_up(&mut self, id: NodeId, out: &mut Vec<Action>) {
        self.down.remove(&id);
        if self.members.contains_key(&id) {
            out.push(Action::Send {
                to: id,
                msg: self.join_msg(false),
            });
            self.presence_peer_up(id, out);
        }
    }

    fn on_peer_down(&mut self, id: NodeId, out: &mut Vec<Action>) {
        self.down.insert(id);
        self.presence_peer_down(id);
        if let State::Candidate(Election::Probing { higher_pending, .. }) = &mut self.state {
            higher_pending.remove(&id);
            self.maybe_claim(out);
        } else if self.leader == Some(id) && !self.is_leader() && self.cfg.is_voter() {
            // The transport to the leader broke (e.g. its process died): suspect it
            // now rather than after the timeout. The pre-vote keeps this harmless
            // if others still hear the leader.
            self.start_election(out);
        }
    }

    /// The driver made the log durable up to `upto`: a leader may now count
    /// its own copy of those entries towards a majority.
    fn on_persisted(&mut self, upto: Seq, out: &mut Vec<Action>) {
        self.own_durable = upto.min(self.log.last_seq());
        if self.is_leader() {
            self.update_commit(out);
        }
    }

    fn on_flush(&mut self, out: &mut Vec<Action>) {
        if self.is_leader() {
            self.broadcast_new_entries(out);
            // A commit point nobody was told about yet (the acks of this batch
            // committed entries, but no new entry carries it): tell the members
            // now, so followers deliver and answer their clients within a round
            // trip instead of at the next heartbeat tick (up to 800 ms).
            if let State::Leader(l) = &self.state {
                if self.commit_seq > l.commit_sent {
                    self.send_heartbeats(out);
                }
            }
        } else if self.ack_dirty {
            self.ack_dirty = false;
            if let Some(l) = self.leader {
                out.push(Action::Send {
                    to: l,
                    msg: PeerMsg::AppendAck {
                        sender_id: self.id(),
                        term: self.term,
                        match_seq: self.leader_match,
                    },
                });
            }
        }
    }
}

/// Recovery: the numbering and the room state of the committed prefix of a
/// replayed log, so both survive restarts (`replay` recovers the log, this
/// recomputes the folds from where `folds` stand, a loaded snapshot or
/// nothing; evicted entries are read back in bounded batches).
fn fold_committed(
    log: &mut Log,
    commit: Seq,
    folds: (Numbering, Rooms, Accounts),
) -> (Numbering, Rooms, Accounts) {
    let (mut n, mut r, mut a) = folds;
    let from = n.upto().next();
    log.for_each_from(from, 1024, |e| {
        if e.seq_no >= from && e.seq_no <= commit {
            n.apply(e);
            r.apply(e);
            a.apply(e);
        }
    });
    assert!(n.upto() >= commit, "the committed prefix is in the log");
    (n, r, a)
}
