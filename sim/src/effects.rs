//! Executing a node's actions: persisting, sending over the simulated network,
//! delivering, answering clients — each checked by the checker first.
//!
//! Invariant: actions run strictly in the order the core emitted them; the
//! checker sees every effect before it takes effect (a send before it is on
//! the network, a persist before the disk changes).

use crate::cluster::{Event, Sim};
use crate::net::Fate;
use crate::seed;
use crate::trace;
use chorus_core::gate::{destinations, may_leave_early};
use chorus_core::{Action, ClientReply, Input, NodeId, PeerMsg, Record};

impl Sim {
    pub(crate) fn execute(&mut self, i: usize, a: Action) {
        let now = self.now;
        if self.trace.enabled() {
            self.trace
                .line(now, &trace::node_name(i), &trace::action_text(&a));
        }
        self.digest.add(trace::action_tag(&a));
        match a {
            Action::Persist(rec) => {
                self.checker.on_persist(now, i, &rec, &self.disks[i]);
                if let Record::Truncate { from } = rec {
                    self.coverage.truncations += 1;
                    if !self.slots[i].gated.is_empty() {
                        self.coverage.truncations_while_gated += 1;
                    }
                    let dropped = self.slots[i].gated.truncated(from);
                    self.coverage.stale_reports_dropped += dropped as u64;
                }
                if let Record::Snapshot { seq, .. } = rec {
                    if self.checker.on_install(now, i, seq, &self.disks[i]) {
                        self.coverage.installs += 1;
                    } else {
                        self.coverage.restart_markers += 1;
                    }
                }
                if self.opts.async_fsync_ms.is_some() {
                    self.disks[i].write(rec);
                    self.start_sync(i);
                } else {
                    self.disks[i].persist(rec);
                }
            }
            Action::Note(rec) => {
                if self.opts.async_fsync_ms.is_some() {
                    self.disks[i].write(rec);
                    self.start_sync(i);
                } else {
                    self.disks[i].note(rec);
                }
            }
            a @ (Action::Send { .. } | Action::Broadcast { .. }) => {
                if self.must_wait_for_disk(i, &a) {
                    let mark = self.disks[i].written_count();
                    self.slots[i].gated.push(mark, a);
                    self.coverage.gated_sends += 1;
                } else {
                    self.transmit(i, a);
                }
            }
            Action::Deliver(e, numbers) => {
                let before = self.checker.retries_past_window;
                self.checker
                    .on_deliver(now, i, &e, numbers, &self.disks, &self.clients);
                self.coverage.retries_past_window += self.checker.retries_past_window - before;
            }
            Action::Reply { reply, .. } => {
                match reply {
                    ClientReply::ChatAck { msg_id, seq_no } => {
                        self.checker.on_ack(
                            now,
                            i,
                            &msg_id,
                            seq_no,
                            &self.disks,
                            &mut self.clients,
                        );
                    }
                    ClientReply::EventAck { msg_id, seq_no } => self.checker.on_event_ack(
                        now,
                        i,
                        &msg_id,
                        seq_no,
                        &self.disks,
                        &mut self.clients,
                    ),
                    _ => {}
                }
                // Errors (Busy) need nothing: the client's timer resends.
            }
            Action::PeerKnown(_) => {}
            Action::SaveSnapshot(image) => {
                self.checker.on_snapshot(now, i, &image);
                self.coverage.snapshots += 1;
                self.disks[i].save_snapshot(image);
            }
            Action::Compact { before } => {
                self.checker.on_compact(now, i, before, &self.disks[i]);
                self.coverage.compactions += 1;
                self.disks[i].compact(before);
            }
        }
    }

    /// Asynchronous disks: does this send wait for the records before it to
    /// be durable? As the runtime (`runtime-mio/src/effects.rs`), by the
    /// core's `gate` rules: every peer message does while anything written
    /// is not durable, except the leader's SEQ_CHAT / HEARTBEAT and
    /// CATCHUP_REQ when no term or truncation record is pending; and nothing
    /// overtakes a waiting message to the same peer.
    fn must_wait_for_disk(&self, i: usize, a: &Action) -> bool {
        if self.opts.async_fsync_ms.is_none() {
            return false;
        }
        if self.slots[i].gated.waits_for_any(destinations(a)) {
            return true;
        }
        let d = &self.disks[i];
        if d.written_count() == d.durable_count() {
            return false;
        }
        let msg = match a {
            Action::Send { msg, .. } | Action::Broadcast { msg, .. } => msg,
            _ => return false,
        };
        !may_leave_early(msg) || d.barrier_pending()
    }

    /// Asynchronous disks: starts an fsync of everything written so far,
    /// unless one is running (the next one starts when it ends).
    pub(crate) fn start_sync(&mut self, i: usize) {
        let Some((lo, hi)) = self.opts.async_fsync_ms else {
            return;
        };
        if self.slots[i].syncing {
            return;
        }
        self.slots[i].syncing = true;
        let upto = self.disks[i].written_count();
        let ms = lo + seed::below(&mut self.disk_rng, hi.saturating_sub(lo) + 1);
        let inc = self.slots[i].inc;
        self.queue
            .push(self.now + ms, Event::Synced { node: i, inc, upto });
    }

    /// Asynchronous disks: node `i`'s fsync of its first `upto` records
    /// ended. The waiting messages go out, the node learns how far its log
    /// is durable, and the next fsync starts if more was written meanwhile.
    pub(crate) fn synced(&mut self, i: usize, upto: u64) {
        self.slots[i].syncing = false;
        self.disks[i].sync(upto);
        let durable = self.disks[i].durable_count();
        while let Some(a) = self.slots[i].gated.pop_durable(durable) {
            self.transmit(i, a);
        }
        let stable = self.disks[i].stable_seq();
        self.activate(i, Input::Persisted { upto: stable });
        if self.slots[i].node.is_some()
            && self.disks[i].written_count() > self.disks[i].durable_count()
        {
            self.start_sync(i);
        }
    }

    /// Puts a peer message on the network, checked first.
    fn transmit(&mut self, i: usize, a: Action) {
        let now = self.now;
        match a {
            Action::Send { to, msg } => {
                self.checker.on_send(now, i, &msg, &self.disks[i]);
                self.send(i, to, msg);
            }
            Action::Broadcast { to, mut msg } => {
                self.checker.on_send(now, i, &msg, &self.disks[i]);
                let last = to.len().saturating_sub(1);
                for (k, &dest) in to.iter().enumerate() {
                    // The last destination takes the message itself: one clone fewer.
                    let m = if k == last {
                        std::mem::replace(
                            &mut msg,
                            PeerMsg::Election {
                                sender_id: NodeId(0),
                                term: Default::default(),
                            },
                        )
                    } else {
                        msg.clone()
                    };
                    self.send(i, dest, m);
                }
            }
            _ => unreachable!("transmit is only given peer messages"),
        }
    }

    /// Puts `msg` from node `i` on the link to `to`.
    fn send(&mut self, i: usize, to: NodeId, msg: PeerMsg) {
        let Some(j) = (to.0 as usize)
            .checked_sub(1)
            .filter(|&j| j < self.opts.nodes)
        else {
            self.report(format!(
                "n{} sent {} to unknown node {to}",
                i + 1,
                msg.kind()
            ));
            return;
        };
        if j == i || self.slots[j].node.is_none() {
            return; // nobody listening: the connection is refused
        }
        let Fate::Deliver {
            at_ms,
            dup_ms,
            epoch,
        } = self.net.route(i, j, self.now)
        else {
            return;
        };
        let (from_inc, to_inc) = (self.slots[i].inc, self.slots[j].inc);
        if let Some(d) = dup_ms {
            let copy = Event::Deliver {
                from: i,
                to: j,
                epoch,
                from_inc,
                to_inc,
                msg: msg.clone(),
            };
            self.queue.push(d, copy);
        }
        let ev = Event::Deliver {
            from: i,
            to: j,
            epoch,
            from_inc,
            to_inc,
            msg,
        };
        self.queue.push(at_ms, ev);
    }

    /// Where an armed crash cuts a batch: usually right after a persist that
    /// something later depends on (the window the persist-before-effect rule
    /// protects), otherwise anywhere, before the first action or after the last.
    pub(crate) fn choose_cut(&mut self, out: &[Action]) -> usize {
        let interesting: Vec<usize> = (1..out.len())
            .filter(|&k| matches!(out[k - 1], Action::Persist(_)))
            .filter(|&k| out[k..].iter().any(is_effect))
            .collect();
        let k = if !interesting.is_empty() && seed::below(&mut self.fault_rng, 4) != 0 {
            interesting[seed::below(&mut self.fault_rng, interesting.len() as u64) as usize]
        } else {
            seed::below(&mut self.fault_rng, out.len() as u64 + 1) as usize
        };
        let persisted = out[..k].iter().any(|a| matches!(a, Action::Persist(_)));
        if persisted && out[k..].iter().any(is_ack) {
            self.coverage.crash_between_persist_and_ack += 1;
        }
        k
    }
}

/// An action with an effect outside the node.
fn is_effect(a: &Action) -> bool {
    matches!(
        a,
        Action::Send { .. } | Action::Broadcast { .. } | Action::Deliver(..) | Action::Reply { .. }
    )
}

/// An acknowledgement or delivery that depends on what was persisted before it.
fn is_ack(a: &Action) -> bool {
    match a {
        Action::Send { msg, .. } | Action::Broadcast { msg, .. } => matches!(
            msg,
            PeerMsg::AppendAck { .. } | PeerMsg::SyncAck { .. } | PeerMsg::ForwardAck { .. }
        ),
        Action::Deliver(..) => true,
        Action::Reply { reply, .. } => matches!(reply, ClientReply::ChatAck { .. }),
        _ => false,
    }
}
