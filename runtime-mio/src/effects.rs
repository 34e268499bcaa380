//! Executing the core's actions with asynchronous group commit — the
//! action-order contract of `chorus_core::io`.
//!
//! Per iteration, every `Persist` and `Note` record is written to the log in
//! one write; the fsync thread (`syncer.rs`) is asked to make it durable and
//! the loop goes on. Every other action waits in a FIFO for what it depends
//! on to be durable, then is performed in emission order:
//! - messages to peers (and peer discovery) wait for every `Persist` record
//!   emitted before them (`gated`, by file offset) — the contract as written;
//! - deliveries and client replies wait, in their own FIFO (`gated_clients`),
//!   for the log up to the seq they deliver or acknowledge to be durable
//!   (`DurableLog::stable_seq`): that is all an acknowledgement promises, and
//!   it keeps an ack from waiting for the fsync of entries sequenced after it.
//!   Other replies (errors, status) keep their place in that FIFO.
//!
//! So while one fdatasync runs, the loop keeps reading, sequencing and
//! replicating, and the next fdatasync covers everything written meanwhile —
//! group commit with no stall. A failed write or fsync is fatal: nothing that
//! waited for it is performed.
//!
//! Two exceptions, both allowed by the contract:
//! - the leader's parallel write (Raft §10.2.1): SEQ_CHAT broadcasts (and
//!   CATCHUP_REQ, which only asks for entries) leave at once, before the
//!   leader's own fsync, so leader and follower fsyncs overlap. Only when no
//!   term or truncation record is waiting for durability (a message must never
//!   carry a term that is not durable), when the commit point they carry is
//!   durable here, and when nothing gated is queued for the same peer (links
//!   stay FIFO);
//! - which is why an APPEND_ACK must not be fed before the leader's own copy
//!   of the entries it acknowledges is durable: such acks (and whatever that
//!   peer sends after them) are held (`hold_peer_msg`) until the fsync
//!   running when they arrived finishes. The core then never counts its own
//!   log towards a majority before it is durable.
//!
//! With `unsafe_ack_before_fsync` (chaos harness only) the order is reversed:
//! every effect is performed and flushed to the sockets before the write.
//! With `unsafe_skip_fsync` (chaos harness only) the records are written but
//! never fdatasynced, and everything else goes on as if they were durable.

use crate::error::RuntimeError;
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::record::Record;
use chorus_core::{Action, ClientReply, Input, NodeId, PeerMsg, Seq};

/// Backpressure: past this many written-but-not-durable bytes, or this many
/// actions waiting for durability, the loop waits for the disk (as a
/// synchronous fsync would) instead of taking more work it cannot settle.
const MAX_UNSYNCED_BYTES: u64 = 32 << 20;
const MAX_GATED: usize = 1 << 16;

impl Runtime {
    pub(crate) fn execute(&mut self) -> Result<(), RuntimeError> {
        if !self.actions.is_empty() {
            let actions = std::mem::take(&mut self.actions);
            if self.unsafe_ack {
                for a in &actions {
                    self.perform(a);
                }
                // Put the acknowledgements on the wire now: `perform` only
                // queues output, and the end-of-iteration flush comes after
                // the fsync, which made this switch as safe as the normal path.
                self.flush_dirty();
                self.write_records(&actions)?;
                self.log.commit()?;
                self.mark_durable(self.log.len_bytes());
            } else {
                self.enqueue(actions)?;
            }
        }
        self.release_gated();
        Ok(())
    }

    /// Reads what the fsync thread made durable since the last look.
    pub(crate) fn observe_durable(&mut self) -> Result<(), RuntimeError> {
        let Some(s) = &self.syncer else {
            return Ok(());
        };
        let d = s.durable().map_err(|err| RuntimeError::Storage {
            file: self.log.path().to_path_buf(),
            op: "fsync",
            err,
        })?;
        if d > self.durable_bytes {
            self.mark_durable(d);
        }
        Ok(())
    }

    fn mark_durable(&mut self, offset: u64) {
        self.durable_bytes = offset;
        self.log.durable_up_to(offset);
    }

    fn write_records(&mut self, actions: &[Action]) -> Result<(), RuntimeError> {
        for a in actions {
            if let Action::Persist(r) | Action::Note(r) = a {
                self.log.append(r);
            }
        }
        self.log.write_queued()?;
        Ok(())
    }

    /// Appends the records, sends what may go early, queues the rest behind
    /// the records before it, then writes and asks for durability.
    fn enqueue(&mut self, actions: Vec<Action>) -> Result<(), RuntimeError> {
        let mut persisted = false;
        let mut early = false;
        for a in actions {
            match a {
                Action::Persist(r) => {
                    let end = self.log.append(&r);
                    self.persist_end = end;
                    persisted = true;
                    if matches!(r, Record::Term { .. } | Record::Truncate { .. }) {
                        self.barrier_end = end;
                    }
                }
                Action::Note(r) => {
                    self.log.append(&r);
                }
                a if self.may_go_early(&a) => {
                    self.perform(&a);
                    early = true;
                }
                a => match acknowledged_seq(&a) {
                    Some(seq) => self.gated_clients.push_back((seq, a)),
                    None => {
                        for to in destinations(&a) {
                            *self.gated_to.entry(*to).or_default() += 1;
                        }
                        self.gated.push_back((self.persist_end, a));
                    }
                },
            }
        }
        if early {
            // Output buffered before this batch never depends on it.
            self.flush_dirty();
        }
        let end = self.log.write_queued()?;
        if self.unsafe_skip_fsync {
            // The deliberately broken build: written, never made durable.
            self.mark_durable(end);
        } else if persisted {
            if let Some(s) = &self.syncer {
                // Up to the end of the write (notes included) so that the
                // durable offset lands on a write boundary.
                s.request(end);
                let backlog = self.gated.len() + self.gated_clients.len();
                if end - self.durable_bytes > MAX_UNSYNCED_BYTES || backlog > MAX_GATED {
                    s.wait_durable(end);
                    self.observe_durable()?;
                }
            }
        }
        Ok(())
    }

    /// The parallel-write exception (see the module comment).
    fn may_go_early(&self, a: &Action) -> bool {
        let ok_msg = match a {
            Action::Broadcast {
                msg: PeerMsg::SeqChat { commit_seq, .. },
                ..
            } => *commit_seq <= self.log.stable_seq(),
            Action::Send {
                msg: PeerMsg::CatchupReq { .. },
                ..
            } => true,
            _ => false,
        };
        ok_msg
            && self.durable_bytes >= self.barrier_end
            && destinations(a)
                .iter()
                .all(|t| !self.gated_to.contains_key(t))
    }

    /// Performs, in order, every gated action whose records are durable.
    fn release_gated(&mut self) {
        while let Some((need, _)) = self.gated.front() {
            if *need > self.durable_bytes {
                break;
            }
            let (_, a) = self.gated.pop_front().expect("front exists");
            for to in destinations(&a) {
                if let Some(n) = self.gated_to.get_mut(to) {
                    *n -= 1;
                    if *n == 0 {
                        self.gated_to.remove(to);
                    }
                }
            }
            self.perform(&a);
        }
        let stable = self.log.stable_seq();
        while let Some((need, _)) = self.gated_clients.front() {
            if *need > stable {
                break;
            }
            let (_, a) = self.gated_clients.pop_front().expect("front exists");
            self.perform(&a);
        }
    }

    /// A message from peer `from`: fed now, or held behind the fsync that is
    /// running if it acknowledges entries not yet durable here (see the
    /// module comment); a peer's messages are fed in the order they came.
    pub(crate) fn feed_peer_msg(&mut self, from: NodeId, msg: PeerMsg) {
        let behind = self.held.get(&from).is_some_and(|q| !q.is_empty());
        let early_ack = matches!(msg, PeerMsg::AppendAck { match_seq, .. }
            if match_seq > self.log.stable_seq())
            && self.durable_bytes < self.persist_end;
        if behind || early_ack {
            let need = if early_ack { self.persist_end } else { 0 };
            self.held.entry(from).or_default().push_back((need, msg));
        } else {
            self.feed(Input::Peer(msg));
        }
    }

    /// Feeds every held peer message whose wait is over.
    pub(crate) fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut ready = Vec::new();
        let durable = self.durable_bytes;
        self.held.retain(|_, q| {
            while let Some((need, _)) = q.front() {
                if *need > durable {
                    break;
                }
                ready.push(q.pop_front().expect("front exists").1);
            }
            !q.is_empty()
        });
        for msg in ready {
            self.feed(Input::Peer(msg));
        }
    }

    fn perform(&mut self, a: &Action) {
        match a {
            Action::Persist(_) | Action::Note(_) => {}
            Action::Send { to, msg } => {
                let line = encode(msg);
                self.send_peer(*to, &line);
            }
            Action::Broadcast { to, msg } => {
                let line = encode(msg);
                for &t in to {
                    self.send_peer(t, &line);
                }
            }
            Action::Deliver(e) => {
                assert_eq!(e.seq_no, self.delivered.next(), "deliveries are contiguous");
                self.delivered = e.seq_no;
            }
            Action::Reply { client, reply } => self.reply_client(*client, reply),
            Action::PeerKnown(info) => self.peer_known(info.clone()),
        }
    }
}

/// For a client-facing action, the seq the log must be durable up to before
/// it is performed (0: nothing, only its place in the FIFO); None for the rest.
fn acknowledged_seq(a: &Action) -> Option<Seq> {
    match a {
        Action::Deliver(e) => Some(e.seq_no),
        Action::Reply {
            reply: ClientReply::ChatAck { seq_no, .. },
            ..
        } => Some(*seq_no),
        Action::Reply { .. } => Some(Seq(0)),
        _ => None,
    }
}

/// The peers an action sends to (none for local effects and client replies).
fn destinations(a: &Action) -> &[NodeId] {
    match a {
        Action::Send { to, .. } => std::slice::from_ref(to),
        Action::Broadcast { to, .. } => to,
        _ => &[],
    }
}
