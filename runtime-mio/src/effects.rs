//! Executing the core's actions with group commit — the action-order contract
//! of `chorus_core::io`.
//!
//! Per iteration: every `Persist` and `Note` record is written to the log in
//! one write, fsynced once if any `Persist` is among them, and only then are
//! the other actions performed, in order (peer sends, deliveries, client
//! replies, peer discovery). A failed write or fsync returns a fatal error:
//! none of the effects that depended on it is performed.
//! With `unsafe_ack_before_fsync` (chaos harness only) the order is reversed.

use crate::error::RuntimeError;
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::Action;

impl Runtime {
    pub(crate) fn execute(&mut self) -> Result<(), RuntimeError> {
        if self.actions.is_empty() {
            return Ok(());
        }
        let actions = std::mem::take(&mut self.actions);
        if self.unsafe_ack {
            self.perform(&actions);
            self.persist(&actions)?;
        } else {
            self.persist(&actions)?;
            self.perform(&actions);
        }
        Ok(())
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
            self.log.commit(sync)?;
        }
        Ok(())
    }

    fn perform(&mut self, actions: &[Action]) {
        for a in actions {
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
