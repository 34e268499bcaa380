//! What the outside world does to the cluster: crashes, restarts, partitions,
//! heals, and client submissions and retries.
//!
//! Invariants:
//! - a crash drops the node, its unsynced writes, its pending timers and every
//!   message it had in flight (messages and timers carry the incarnation);
//! - a restart rebuilds the node from its durable records through the core's
//!   own encoder and `replay`, and feeds `Start`;
//! - a client resends an unacknowledged message with the same msg_id.

use crate::cluster::{Event, Sim};
use crate::seed;
use crate::storage::Recovery;
use crate::trace::node_name;
use crate::workload::client_id;
use chorus_core::{ClientRequest, Event as RoomEvent, Input, NodeId, Role};

impl Sim {
    /// Crashes node `i` now (no-op if it is down).
    pub fn crash(&mut self, i: usize) {
        let Some(node) = self.slots[i].node.take() else {
            return;
        };
        if node.status().installing {
            self.coverage.install_interrupted += 1;
        }
        let slot = &mut self.slots[i];
        let was_leader = slot.shown.as_ref().is_some_and(|s| s.role == Role::Leader);
        slot.inc += 1;
        slot.tick_at = None;
        slot.crash_armed = false;
        slot.gated.clear();
        slot.syncing = false;
        self.disks[i].crash();
        self.coverage.crashes += 1;
        if was_leader {
            self.coverage.leader_crash += 1;
        }
        self.note(
            &node_name(i),
            if was_leader {
                "CRASH (leader)"
            } else {
                "CRASH"
            },
        );
        self.count_candidates();
        if self.opts.net.peer_hints {
            // The OS resets the dead process's connections: peers notice soon.
            for j in (0..self.opts.nodes).filter(|&j| j != i) {
                self.hint(j, Input::PeerDown(NodeId(i as u64 + 1)));
            }
        }
    }

    /// Arms a crash of node `i` inside its next non-empty action batch, or
    /// after `within_ms` if it acts on nothing before.
    pub fn crash_mid_batch(&mut self, i: usize, within_ms: u64) {
        if self.slots[i].node.is_none() {
            return;
        }
        self.slots[i].crash_armed = true;
        let inc = self.slots[i].inc;
        self.queue
            .push(self.now + within_ms, Event::CrashFallback { node: i, inc });
    }

    /// Disarms every pending mid-batch crash (the liveness phase).
    pub fn disarm_crashes(&mut self) {
        for s in &mut self.slots {
            s.crash_armed = false;
        }
    }

    /// Restarts node `i` from its durable records (no-op if it is up).
    pub fn restart(&mut self, i: usize) {
        if self.slots[i].node.is_some() || self.halted {
            return;
        }
        let rec = match self.disks[i].recover() {
            Ok(r) => r,
            Err(e) => {
                self.report(format!("n{} cannot replay its log: {e}", i + 1));
                self.halted = true;
                return;
            }
        };
        self.coverage.restarts += 1;
        let (term, commit, last) = rec.position();
        let behind = last < self.checker.canon_len();
        if i + 1 == self.opts.nodes && behind {
            self.coverage.stale_higher_id_rejoin += 1;
        }
        if matches!(rec, Recovery::Snapshot(_)) {
            self.coverage.restarts_from_snapshot += 1;
        }
        let what = format!("RESTART (term {term}, log {last}, commit {commit})");
        self.note(&node_name(i), &what);
        self.checker.on_restart(self.now, i, term, commit);
        self.boot(i, rec);
        if self.opts.net.peer_hints {
            let live: Vec<usize> = (0..self.opts.nodes)
                .filter(|&j| j != i && self.alive(j))
                .collect();
            for j in live {
                self.hint(j, Input::PeerUp(NodeId(i as u64 + 1)));
                self.hint(i, Input::PeerUp(NodeId(j as u64 + 1)));
            }
        }
    }

    /// Delivers a transport hint to node `j` after one network latency.
    fn hint(&mut self, j: usize, input: Input) {
        if self.slots[j].node.is_none() {
            return;
        }
        let at = self.now + self.net.latency();
        let to_inc = self.slots[j].inc;
        self.queue.push(
            at,
            Event::Hint {
                to: j,
                to_inc,
                input,
            },
        );
    }

    /// Splits the cluster: links between different groups are cut both ways.
    /// Nodes named in no group form one more group together.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        let n = self.opts.nodes;
        let mut group_of = vec![usize::MAX; n];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                group_of[m] = g;
            }
        }
        for a in 0..n {
            for b in 0..n {
                if group_of[a] != group_of[b] {
                    self.net.cut(a, b);
                }
            }
        }
        let text: Vec<String> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&m| node_name(m))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        self.note("net", &format!("PARTITION {}", text.join(" | ")));
    }

    /// Cuts every link from a node in `from` to a node in `to` (one way).
    pub fn cut_one_way(&mut self, from: &[usize], to: &[usize]) {
        for &a in from {
            for &b in to {
                self.net.cut(a, b);
            }
        }
        let names = |v: &[usize]| {
            v.iter()
                .map(|&m| node_name(m))
                .collect::<Vec<_>>()
                .join(",")
        };
        self.note("net", &format!("CUT {} -> {}", names(from), names(to)));
    }

    /// Opens every link.
    pub fn heal(&mut self) {
        let healed = self.net.heal();
        if healed.is_empty() {
            return;
        }
        self.coverage.partition_heal += 1;
        self.note("net", "HEAL");
        if self.opts.net.peer_hints {
            // Connections re-established: both ends learn the peer is reachable.
            for (a, b) in healed {
                self.hint(a, Input::PeerUp(NodeId(b as u64 + 1)));
            }
        }
    }

    /// Stops hostile network behaviour (loss, duplication, reordering).
    pub fn calm_network(&mut self) {
        self.net.set_hostile(false);
    }

    /// Schedules client `client` to submit one message to `node` at `at_ms`.
    pub fn submit_at(&mut self, at_ms: u64, client: u32, node: usize, room: &str) {
        let ev = Event::Submit {
            client,
            node,
            room: room.to_string(),
            kind: None,
        };
        self.queue.push(at_ms.max(self.now), ev);
    }

    /// Schedules client `client` to submit `kind` (a room event) to `node`
    /// at `at_ms`.
    pub fn submit_kind_at(
        &mut self,
        at_ms: u64,
        client: u32,
        node: usize,
        room: &str,
        kind: Option<RoomEvent>,
    ) {
        let ev = Event::Submit {
            client,
            node,
            room: room.to_string(),
            kind,
        };
        self.queue.push(at_ms.max(self.now), ev);
    }

    /// Client `client` submits a new message through `node` now (with room
    /// events on, possibly a room event instead).
    pub fn submit(&mut self, client: u32, node: usize, room: &str) {
        let kind = self.draw_room_event();
        self.submit_kind(client, node, room, kind);
    }

    /// What a client submits next: a chat (None) or a room event, drawn
    /// from the workload stream only when room events are on (so runs
    /// without them keep their streams).
    fn draw_room_event(&mut self) -> Option<RoomEvent> {
        let ppm = self.opts.room_events_ppm;
        if ppm == 0 || !seed::chance(&mut self.workload_rng, ppm) {
            return None;
        }
        Some(match seed::below(&mut self.workload_rng, 10) {
            0..=3 => RoomEvent::Join,
            4..=5 => RoomEvent::Leave,
            6..=7 => RoomEvent::Topic,
            _ => RoomEvent::Nick,
        })
    }

    /// Client `client` submits `kind` (a chat, or a room event) through
    /// `node` now.
    pub fn submit_kind(&mut self, client: u32, node: usize, room: &str, kind: Option<RoomEvent>) {
        self.clients.get_or_create(client, node);
        self.ensure_session(client, node);
        let chat = self.clients.submit_kind(client, node, room, self.now, kind);
        if kind == Some(RoomEvent::Nick) {
            self.rename_session(client);
        }
        let n = self
            .clients
            .client(client)
            .map_or(0, |c| c.sent.len() as u32);
        self.send_chat(client, node, chat);
        let at = self.now + self.opts.client_timeout_ms;
        self.queue.push(at, Event::Retry { client, n });
    }

    /// The ack of message `n` of `client` did not come in time: resend it.
    pub(crate) fn retry(&mut self, client: u32, n: u32) {
        let Some(c) = self.clients.client(client) else {
            return;
        };
        let Some(sent) = c.sent.get(n as usize - 1) else {
            return;
        };
        if sent.acked.is_some() {
            return;
        }
        let chat = sent.chat.clone();
        let mut node = c.node;
        let switch = seed::chance(&mut self.workload_rng, self.opts.client_switch_ppm);
        if !self.alive(node) || switch {
            node = self.other_node(node);
        }
        if let Some(c) = self.clients.client_mut(client) {
            c.node = node;
            c.sent[n as usize - 1].attempts += 1;
        }
        self.ensure_session(client, node);
        self.send_chat(client, node, chat);
        let at = self.now + self.opts.client_timeout_ms;
        self.queue.push(at, Event::Retry { client, n });
    }

    /// A live node other than `cur`, picked by the workload stream (or `cur`).
    fn other_node(&mut self, cur: usize) -> usize {
        let live: Vec<usize> = (0..self.opts.nodes)
            .filter(|&j| j != cur && self.alive(j))
            .collect();
        if live.is_empty() {
            return cur;
        }
        live[seed::below(&mut self.workload_rng, live.len() as u64) as usize]
    }

    fn send_chat(&mut self, client: u32, node: usize, chat: chorus_core::Chat) {
        let input = Input::Client {
            client: client_id(client),
            request: ClientRequest::Chat(chat),
        };
        // A down node refuses the connection; the retry timer tries elsewhere.
        self.activate(node, input);
    }
}
