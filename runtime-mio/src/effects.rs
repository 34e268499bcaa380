//! Executing the core's actions with asynchronous group commit — the
//! action-order contract of `chorus_core::io`, with `reports_durability`.
//!
//! Per iteration, every `Persist` and `Note` record is written to the log in
//! one write; the fsync thread (`syncer.rs`) is asked to make it durable and
//! the loop goes on; when it reports progress, the core is told how far the
//! log is durable (`Input::Persisted`, fed by `runtime.rs`). So while one
//! fdatasync runs, the loop keeps reading, sequencing and replicating, and the
//! next fdatasync covers everything written meanwhile — group commit with no
//! stall. A failed write or fsync is fatal: nothing that waited for it is
//! performed.
//!
//! What waits for what:
//! - messages to peers (and peer discovery) wait, in one FIFO (`gated`, the
//!   core's `gate::Gate`, which the simulator uses too), for every `Persist`
//!   record emitted before them: an APPEND_ACK or a vote must never promise
//!   what this node could still lose. A truncation emitted while they wait
//!   drops those that report entries it cuts (`chorus_core::gate`): they
//!   would leave with the fsync that makes the cut durable, vouching for
//!   entries this node no longer has;
//! - deliveries and client replies are performed at once, in order: the core
//!   commits only what a majority has durably (the leader's own log counts
//!   only up to its `Persisted` point), so an acknowledgement never depends on
//!   this node's pending fsync;
//! - the leader's replication (SEQ_CHAT, HEARTBEAT) and CATCHUP_REQ leave at
//!   once too (Raft §10.2.1, the leader's parallel write), so leader and
//!   follower fsyncs overlap — but only when no term or truncation record is
//!   waiting for durability (a message must never carry a term that is not
//!   durable) and nothing gated is queued for the same peer (links stay FIFO).
//!
//! With `unsafe_ack_before_fsync` (chaos harness only) the order is reversed:
//! every effect is performed and flushed to the sockets before the write.
//! With `unsafe_skip_fsync` (chaos harness only) the records are written but
//! never fdatasynced, and everything else goes on as if they were durable.

use crate::error::RuntimeError;
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::gate::{destinations, may_leave_early};
use chorus_core::record::Record;
use chorus_core::snapshot::SnapshotImage;
use chorus_core::{Action, PeerMsg, Seq};
use tracing::{info, warn};

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
        while let Some(&(end, term)) = self.pending_terms.front() {
            if end > offset {
                break;
            }
            self.durable_term = self.durable_term.max(term);
            self.pending_terms.pop_front();
        }
    }

    /// A term record ending at file offset `end` was appended: STATUS shows
    /// it once it is durable (a power loss before then restarts the node
    /// in the term before, which is allowed: no message carried it).
    fn note_term(&mut self, end: u64, r: &Record) {
        if let Record::Term { term, .. } = r {
            self.pending_terms.push_back((end, term.0));
        }
    }

    /// `Action::SaveSnapshot`: written and fsynced before anything after it.
    /// A failure keeps the previous snapshot: the log is then not compacted
    /// (nothing is lost, the history stays), and it is fatal only for an
    /// install, whose log record would name a snapshot that is not there.
    fn save_snapshot(&mut self, image: &SnapshotImage) -> Result<(), RuntimeError> {
        let started = std::time::Instant::now();
        match self.snapshots.save(image.seq, image.term, &image.bytes) {
            Ok(_) => {
                self.snapshot_failed = false;
                self.metrics.snapshots_saved.inc();
                self.metrics
                    .snapshot_seconds
                    .observe(started.elapsed().as_secs_f64());
                info!(
                    "n{} saved a snapshot at seq {} ({} bytes) in {} ms",
                    self.me.0,
                    image.seq.0,
                    image.bytes.len(),
                    started.elapsed().as_millis()
                );
            }
            Err(e) => {
                self.snapshot_failed = true;
                warn!(
                    "n{} could not save the snapshot at seq {}: {e}; the log is kept whole until a later snapshot succeeds",
                    self.me.0, image.seq.0
                );
            }
        }
        Ok(())
    }

    /// An installed snapshot (its log record): delivery continues after
    /// `seq`; what it covers was never delivered here one by one.
    fn installed(&mut self, seq: Seq) {
        if seq > self.delivered {
            info!(
                "n{} installed the leader's snapshot at seq {} (delivered here up to {})",
                self.me.0, seq.0, self.delivered.0
            );
            self.delivered = seq;
            self.delivered_chats = self.node.numbering().chats();
        }
    }

    /// `Action::Compact`: deletes the segments wholly before `before`, if
    /// the snapshot that covers them was saved.
    fn compact(&mut self, before: Seq) -> Result<(), RuntimeError> {
        if self.snapshot_failed {
            return Ok(());
        }
        let removed = self.log.delete_segments_before(before)?;
        if removed.segments > 0 {
            self.metrics
                .segments_deleted
                .inc_by(removed.segments as u64);
            info!(
                "n{} retention: deleted {} log segment files ({} bytes) before seq {}",
                self.me.0, removed.segments, removed.bytes, before.0
            );
        }
        Ok(())
    }

    fn write_records(&mut self, actions: &[Action]) -> Result<(), RuntimeError> {
        for a in actions {
            match a {
                Action::Persist(r) | Action::Note(r) => {
                    let end = self.log.append(r);
                    self.note_term(end, r);
                }
                Action::SaveSnapshot(image) => self.save_snapshot(image)?,
                Action::Compact { before } => self.compact(*before)?,
                _ => {}
            }
        }
        self.log.write_queued()?;
        Ok(())
    }

    /// Appends the records, performs what needs no durability, queues the
    /// rest behind the records before it, then writes and asks for an fsync.
    fn enqueue(&mut self, actions: Vec<Action>) -> Result<(), RuntimeError> {
        let mut persisted = false;
        let mut early = false;
        for a in actions {
            match a {
                Action::Persist(r) => {
                    if matches!(r, Record::Snapshot { .. }) && self.snapshot_failed {
                        return Err(RuntimeError::Storage {
                            file: self.snapshots.dir().to_path_buf(),
                            op: "saving an installed snapshot",
                            err: std::io::Error::other(
                                "the snapshot received from the leader could not be saved",
                            ),
                        });
                    }
                    if let Record::Snapshot { seq, .. } = r {
                        self.installed(seq);
                    }
                    if let Record::Truncate { from } = r {
                        // What waits and reports the cut entries would
                        // leave with the fsync that makes the cut durable.
                        self.gated.truncated(from);
                    }
                    let end = self.log.append(&r);
                    self.note_term(end, &r);
                    self.persist_end = end;
                    persisted = true;
                    if matches!(r, Record::Term { .. } | Record::Truncate { .. }) {
                        self.barrier_end = end;
                    }
                }
                Action::Note(r) => {
                    self.log.append(&r);
                }
                // In order, on this thread: a record after it (an install's
                // `Snapshot` record) must never be durable before it is.
                Action::SaveSnapshot(image) => self.save_snapshot(&image)?,
                Action::Compact { before } => self.compact(before)?,
                a @ (Action::Deliver(..) | Action::Reply { .. }) => self.perform(&a),
                a if self.may_go_early(&a) => {
                    self.perform(&a);
                    early = true;
                }
                a => self.gated.push(self.persist_end, a),
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
                if end - self.durable_bytes > MAX_UNSYNCED_BYTES || self.gated.len() > MAX_GATED {
                    s.wait_durable(end);
                    self.observe_durable()?;
                }
            }
        }
        Ok(())
    }

    /// The parallel-write exception (see the module comment).
    fn may_go_early(&self, a: &Action) -> bool {
        let replication = match a {
            Action::Broadcast { msg, .. } | Action::Send { msg, .. } => may_leave_early(msg),
            _ => false,
        };
        replication
            && self.durable_bytes >= self.barrier_end
            && !self.gated.waits_for_any(destinations(a))
    }

    /// Performs, in order, every gated action whose records are durable.
    fn release_gated(&mut self) {
        while let Some(a) = self.gated.pop_durable(self.durable_bytes) {
            self.perform(&a);
        }
    }

    fn perform(&mut self, a: &Action) {
        match a {
            Action::Persist(_) | Action::Note(_) => {}
            // Executed in order where the records are written (`enqueue`).
            Action::SaveSnapshot(_) | Action::Compact { .. } => {}
            Action::Send { to, msg } => {
                if let PeerMsg::CatchupResp { entries, .. } = msg {
                    self.metrics.catchup_sent.inc_by(entries.len() as u64);
                }
                let line = encode(msg);
                self.send_peer(*to, &line);
            }
            Action::Broadcast { to, msg } => {
                let line = encode(msg);
                for &t in to {
                    self.send_peer(t, &line);
                }
            }
            Action::Deliver(e, numbers) => {
                assert_eq!(e.seq_no, self.delivered.next(), "deliveries are contiguous");
                self.delivered = e.seq_no;
                self.metrics.committed.inc();
                if let Some(n) = numbers {
                    self.delivered_chats = n.seq_no;
                }
                self.push_room_event(e);
                self.on_account_delivered(e);
            }
            Action::Reply { client, reply } => self.reply_client(*client, reply),
            Action::PeerKnown(info) => self.peer_known(info.clone()),
        }
    }
}
