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
use chorus_core::{Action, ClientReply, NodeId, PeerMsg, Record};

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
                if matches!(rec, Record::Truncate { .. }) {
                    self.coverage.truncations += 1;
                }
                self.disks[i].persist(rec);
            }
            Action::Note(rec) => self.disks[i].note(rec),
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
            Action::Deliver(e) => {
                self.checker
                    .on_deliver(now, i, &e, &self.disks, &self.clients);
            }
            Action::Reply { reply, .. } => {
                if let ClientReply::ChatAck { msg_id, seq_no } = reply {
                    self.checker
                        .on_ack(now, i, &msg_id, seq_no, &self.disks, &mut self.clients);
                }
                // Errors (Busy) need nothing: the client's timer resends.
            }
            Action::PeerKnown(_) => {}
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
        Action::Send { .. } | Action::Broadcast { .. } | Action::Deliver(_) | Action::Reply { .. }
    )
}

/// An acknowledgement or delivery that depends on what was persisted before it.
fn is_ack(a: &Action) -> bool {
    match a {
        Action::Send { msg, .. } | Action::Broadcast { msg, .. } => matches!(
            msg,
            PeerMsg::AppendAck { .. } | PeerMsg::SyncAck { .. } | PeerMsg::ForwardAck { .. }
        ),
        Action::Deliver(_) => true,
        Action::Reply { reply, .. } => matches!(reply, ClientReply::ChatAck { .. }),
        _ => false,
    }
}
