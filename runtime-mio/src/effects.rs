//! Executing the core's actions with group commit — the action-order contract
//! of `chorus_core::io`.
//!
//! Per iteration: every `Persist` and `Note` record is written to the log in
//! one write, fsynced once if any `Persist` is among them, and only then are
//! the other actions performed, in order (peer sends, deliveries, client
//! replies, peer discovery). A failed write or fsync returns a fatal error:
//! none of the effects that depended on it is performed.
//! One exception, the leader's parallel write (`replicate_early`): a leader's
//! SEQ_CHAT goes out before its own fsync, so leader and follower fsyncs
//! overlap; no acknowledgement depends on that send (see the function).
//! With `unsafe_ack_before_fsync` (chaos harness only) the order is reversed:
//! every effect is performed and flushed to the sockets before the write.
//! With `unsafe_skip_fsync` (chaos harness only) the records are written but
//! never fdatasynced, and everything else goes on as if they were durable.

use crate::error::RuntimeError;
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::record::Record;
use chorus_core::{Action, PeerMsg};

impl Runtime {
    pub(crate) fn execute(&mut self) -> Result<(), RuntimeError> {
        if self.actions.is_empty() {
            return Ok(());
        }
        let actions = std::mem::take(&mut self.actions);
        if self.unsafe_ack {
            self.perform(&actions, vec![false; actions.len()]);
            // Put the acknowledgements on the wire now: `perform` only queues
            // output, and the end-of-iteration flush comes after the fsync,
            // which made this switch as safe as the normal path.
            self.flush_dirty();
            self.persist(&actions)?;
        } else {
            let early = self.replicate_early(&actions);
            self.persist(&actions)?;
            self.perform(&actions, early);
        }
        Ok(())
    }

    /// A leader's SEQ_CHAT broadcasts leave before the leader's own fsync
    /// (Raft's parallel leader write, §10.2.1), so the leader's and the
    /// followers' fsyncs overlap instead of adding up. Safe because nothing
    /// is acknowledged on the strength of this send: a follower's APPEND_ACK
    /// for these entries is read in a later iteration, after this iteration's
    /// fsync finished (or the node died on its failure, having acknowledged
    /// nothing). Only broadcasts before any term or truncation record of the
    /// batch go early: a message must never carry a term that is not durable.
    /// CATCHUP_REQ goes early too (it acknowledges nothing).
    /// Returns which actions were performed (they are skipped afterwards).
    fn replicate_early(&mut self, actions: &[Action]) -> Vec<bool> {
        let mut early = vec![false; actions.len()];
        let mut any = false;
        for (i, a) in actions.iter().enumerate() {
            match a {
                Action::Persist(Record::Term { .. } | Record::Truncate { .. }) => break,
                Action::Broadcast {
                    to,
                    msg: msg @ PeerMsg::SeqChat { .. },
                } => {
                    let line = encode(msg);
                    for &t in to {
                        self.send_peer(t, &line);
                    }
                    early[i] = true;
                    any = true;
                }
                // A catch-up request asks for entries; it acknowledges nothing,
                // so the next batch can be on its way while this one is fsynced
                // (pipelined catch-up instead of fsync + round trip per batch).
                Action::Send {
                    to,
                    msg: msg @ PeerMsg::CatchupReq { .. },
                } => {
                    self.send_peer(*to, &encode(msg));
                    early[i] = true;
                    any = true;
                }
                _ => {}
            }
        }
        if any {
            // Output already buffered before this batch never depends on it.
            self.flush_dirty();
        }
        early
    }

    fn persist(&mut self, actions: &[Action]) -> Result<(), RuntimeError> {
        let mut sync = false;
        let mut any = false;
        for a in actions {
            match a {
                Action::Persist(r) => {
                    self.log.append(r);
                    sync = true;
                    any = true;
                }
                Action::Note(r) => {
                    self.log.append(r);
                    any = true;
                }
                _ => {}
            }
        }
        if any {
            // The deliberately broken build: written, never made durable.
            self.log.commit(sync && !self.unsafe_skip_fsync)?;
        }
        Ok(())
    }

    fn perform(&mut self, actions: &[Action], early: Vec<bool>) {
        for (a, sent) in actions.iter().zip(early) {
            if sent {
                continue;
            }
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
}
