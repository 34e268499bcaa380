//! Snapshots in the node (`snapshot.rs` is the format): taking one every
//! `Config::snapshot_every` delivered entries and compacting the log behind
//! it (retention), serving it in chunks to a member that asks for compacted
//! entries, and installing one received whole.
//!
//! Invariants:
//! - a snapshot covers only delivered (so committed) entries, and the log is
//!   compacted only behind a snapshot emitted before the `Compact`;
//! - a node whose log was compacted (`first > 1`) keeps its newest snapshot
//!   to serve: its bytes only if the driver cannot read them back
//!   (`ColdLog::saved_snapshot`), else loaded for a transfer and released
//!   when its last chunk leaves (or the member stops asking);
//! - an install replaces the log only if it lacks the snapshot's last entry
//!   (or holds another term there); a log that holds it agrees with the
//!   snapshot on everything before it (Log Matching) and just continues;
//! - a node serves each member one image at a time (`Node::sending`, at
//!   most one per member, dropped when its last chunk leaves);
//! - one install is in flight at a time, from one source, bounded by
//!   `Config::max_snapshot_bytes`; a chunk that does not continue it exactly
//!   is dropped (the catch-up timer asks again).

use crate::io::Action;
use crate::node::{Election, Node, State, Timer};
use crate::record::Record;
use crate::snapshot::{Snapshot, SnapshotImage};
use crate::types::{NodeId, Seq, Term};
use crate::wire::PeerMsg;
use base64::Engine;
use std::sync::Arc;

/// A snapshot being received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub from: NodeId,
    pub seq: Seq,
    pub term: Term,
    pub total: u64,
    pub buf: Vec<u8>,
}

/// This node's newest snapshot, kept to serve installs: its bytes only when
/// the driver cannot read its saved snapshots back (`ColdLog`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub seq: Seq,
    pub term: Term,
    pub bytes: Option<Arc<Vec<u8>>>,
}

/// One chunk of a snapshot transfer, as received.
pub(crate) struct Chunk {
    pub seq: Seq,
    pub snap_term: Term,
    pub total: u64,
    pub offset: u64,
    pub data: String,
    pub leading: bool,
}

/// Snapshots cost at most about this many bytes written per log entry
/// (a log entry is ~190 bytes on disk): see `maybe_snapshot`.
const SNAPSHOT_BYTES_PER_ENTRY: u64 = 100;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Node {
    /// After deliveries: a snapshot if `snapshot_every` entries were
    /// delivered since the last one.
    pub(crate) fn maybe_snapshot(&mut self, out: &mut Vec<Action>) {
        // Never more often than one entry per SNAPSHOT_BYTES_PER_ENTRY bytes
        // of the last snapshot: its cost (encoding, writing, fsyncing on
        // the driver's loop) grows with the exactly-once window and the
        // numbering, and would otherwise come every `snapshot_every`
        // entries however large it got (255 MB per 100,000 entries with a
        // full 10M-id window: a node saving snapshots much of the time).
        let every = self
            .cfg
            .snapshot_every
            .max(self.snap_len / SNAPSHOT_BYTES_PER_ENTRY);
        if self.cfg.snapshot_every > 0 && self.delivered_seq.0 >= self.snap_seq.0 + every {
            self.take_snapshot(out);
        }
    }

    /// Snapshots the folds at the last delivered entry, then compacts the
    /// log to the retention bound.
    pub(crate) fn take_snapshot(&mut self, out: &mut Vec<Action>) {
        let seq = self.delivered_seq;
        let Some(term) = self.log.term_at(seq).filter(|_| seq.0 > 0) else {
            return;
        };
        let retain = self.cfg.retain_entries;
        let mut first = if retain == 0 {
            self.log.first_seq()
        } else {
            self.log
                .first_seq()
                .max(Seq((seq.0 + 1).saturating_sub(retain)))
        };
        if self.cfg.retain_ms > 0 {
            first = first.max(self.first_by_age(seq));
        }
        let compacts = first > self.log.first_seq();
        if compacts {
            self.numbering.forget_before(first);
        }
        let snap = Snapshot {
            seq,
            term,
            first,
            terms: Vec::new(),
            numbering: Default::default(),
            rooms: Default::default(),
            accounts: Default::default(),
            dedup: self.log.dedup_upto(seq),
        };
        let bytes = snap.encode_with(
            &self.log.term_runs_from(first, seq),
            &self.numbering,
            &self.rooms,
            &self.accounts,
        );
        let image = SnapshotImage {
            seq,
            term,
            bytes: Arc::new(bytes),
        };
        out.push(Action::SaveSnapshot(image.clone()));
        if compacts {
            self.log.compact_before(first);
            out.push(Action::Compact { before: first });
        }
        self.snap_seq = seq;
        self.hold(image);
    }

    /// The first entry younger than `retain_ms` (by `ts_ms`, against the
    /// newest delivered chat), at most `upto + 1`: the entries before it
    /// are read once, as they are compacted (no-ops count as old).
    fn first_by_age(&mut self, upto: Seq) -> Seq {
        let horizon = self.newest_ts.saturating_sub(self.cfg.retain_ms);
        let mut at = self.log.first_seq();
        while at <= upto {
            let batch = self
                .log
                .slice(at, self.cfg.max_batch_entries.max(1), usize::MAX);
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                if e.seq_no > upto || e.chat().is_some_and(|c| c.ts_ms >= horizon) {
                    return e.seq_no;
                }
                at = e.seq_no.next();
            }
        }
        at.min(upto.next())
    }

    /// Keeps `image` to serve installs while the log is compacted (without
    /// its bytes when the driver reads saved snapshots back).
    pub(crate) fn hold(&mut self, image: SnapshotImage) {
        self.snap_len = image.bytes.len() as u64;
        self.snap_image = (self.log.first_seq().0 > 1).then(|| Held {
            seq: image.seq,
            term: image.term,
            bytes: (!self.log.serves_snapshots()).then_some(image.bytes),
        });
    }

    /// The bytes of the snapshot this node holds: shared with a transfer in
    /// flight, or in memory, or read back from the driver.
    fn load_held(&mut self) -> Option<SnapshotImage> {
        let h = self.snap_image.clone()?;
        let image = |bytes| SnapshotImage {
            seq: h.seq,
            term: h.term,
            bytes,
        };
        if let Some(b) = h.bytes {
            return Some(image(b));
        }
        if let Some((img, _)) = self.sending.values().find(|(i, _)| i.seq == h.seq) {
            return Some(img.clone());
        }
        self.log.saved_snapshot(h.seq).map(|b| image(Arc::new(b)))
    }

    /// Serves the chunk at `offset` of our snapshot at `seq` (from the start
    /// of the newest one if that one is gone).
    pub(crate) fn send_snapshot_chunk(
        &mut self,
        to: NodeId,
        seq: Seq,
        offset: u64,
        out: &mut Vec<Action>,
    ) {
        // A transfer continues with the image it started with, even after a
        // newer snapshot replaced it here: a follower slower than our
        // snapshot rate would otherwise start over forever.
        // Transfers a member stopped asking for (it died, or caught up
        // another way) release their image.
        let idle = self.cfg.leader_timeout_ms.saturating_mul(8);
        let now = self.now;
        self.sending.retain(|_, (_, at)| now.ms_since(*at) < idle);
        let img = match self.sending.get(&to) {
            Some((img, _)) if img.seq == seq => img.clone(),
            _ => match self.load_held() {
                Some(img) => img,
                None => return,
            },
        };
        let total = img.bytes.len() as u64;
        let offset = if img.seq == seq && offset < total {
            offset
        } else {
            0
        };
        let chunk = self.cfg.snapshot_chunk_bytes.max(1) as u64;
        let end = (offset + chunk).min(total);
        let data = b64().encode(&img.bytes[offset as usize..end as usize]);
        if end < total {
            self.sending.insert(to, (img.clone(), self.now));
        } else {
            self.sending.remove(&to);
        }
        let msg = PeerMsg::SnapshotChunk {
            sender_id: self.id(),
            term: self.term,
            seq: img.seq,
            snap_term: img.term,
            total,
            offset,
            data,
            leading: self.is_leader(),
        };
        out.push(Action::Send { to, msg });
    }

    /// Asks the source of the install in flight for its next chunk.
    pub(crate) fn request_snapshot_chunk(&mut self, out: &mut Vec<Action>) {
        let Some(inc) = &self.incoming else {
            return;
        };
        let msg = PeerMsg::SnapshotReq {
            sender_id: self.id(),
            term: self.term,
            seq: inc.seq,
            offset: inc.buf.len() as u64,
        };
        out.push(Action::Send { to: inc.from, msg });
        self.catchup_inflight = true;
        self.arm(Timer::Catchup, (self.cfg.leader_timeout_ms / 2).max(1));
    }

    /// A chunk from the node we catch up from (the leader, or the member a
    /// claimant syncs from).
    pub(crate) fn on_snapshot_chunk(&mut self, from: NodeId, c: Chunk, out: &mut Vec<Action>) {
        let source = match &self.state {
            State::Candidate(Election::Fetching { from: src, .. }) => *src == from,
            State::Follower => self.leader == Some(from) && c.leading,
            _ => false,
        };
        if !source {
            return;
        }
        self.catchup_inflight = false;
        self.disarm(Timer::Catchup);
        if c.seq <= self.commit_seq {
            // Nothing we lack: continue with entries.
            self.incoming = None;
            self.continue_catchup(from, self.log.last_seq(), out);
            return;
        }
        if c.total > self.cfg.max_snapshot_bytes {
            self.incoming = None;
            return; // refused; the catch-up timer asks again
        }
        let Ok(data) = b64().decode(c.data.as_bytes()) else {
            return;
        };
        if c.offset == 0 {
            self.incoming = Some(Incoming {
                from,
                seq: c.seq,
                term: c.snap_term,
                total: c.total,
                buf: Vec::new(),
            });
        }
        let fits = self.incoming.as_ref().is_some_and(|inc| {
            inc.from == from
                && inc.seq == c.seq
                && inc.total == c.total
                && inc.buf.len() as u64 == c.offset
                && c.offset + data.len() as u64 <= c.total
        });
        if !fits {
            self.request_snapshot_chunk(out);
            return;
        }
        if matches!(self.state, State::Candidate(_)) {
            // A claimant's sync makes progress: as with entries, its
            // election waits while chunks keep coming.
            self.arm(Timer::Election, self.cfg.leader_timeout_ms);
        }
        let inc = self.incoming.as_mut().expect("checked");
        inc.buf.extend_from_slice(&data);
        if (inc.buf.len() as u64) < inc.total {
            if data.is_empty() {
                self.incoming = None; // a source that sends nothing: start over later
                return;
            }
            self.request_snapshot_chunk(out);
            return;
        }
        let inc = self.incoming.take().expect("checked");
        self.install(inc, out);
    }

    /// A whole snapshot arrived: check it, install it, continue with entries.
    fn install(&mut self, inc: Incoming, out: &mut Vec<Action>) {
        let snap = match Snapshot::decode(&inc.buf) {
            Ok(s) if s.seq == inc.seq && s.term == inc.term => s,
            _ => return, // corrupt in transit: the catch-up timer starts over
        };
        if snap.seq <= self.commit_seq || self.log.term_at(snap.seq) == Some(snap.term) {
            // We hold its last entry: our log agrees with it up to there.
            self.continue_catchup(inc.from, snap.seq.min(self.log.last_seq()), out);
            return;
        }
        let snap = snap.as_installed();
        let image = SnapshotImage {
            seq: snap.seq,
            term: snap.term,
            bytes: Arc::new(snap.encode()),
        };
        out.push(Action::SaveSnapshot(image.clone()));
        out.push(Action::Persist(Record::Snapshot {
            seq: snap.seq,
            term: snap.term,
        }));
        let seq = snap.seq;
        // Our uncommitted suffix goes: chats clients here still wait for go
        // back to pending (as in a truncation), unless the snapshot has them.
        let mut dropped = Vec::new();
        let waiting = &self.waiting;
        self.log
            .for_each_from(self.commit_seq.next(), self.cfg.max_batch_entries, |e| {
                if let Some(c) = e.chat() {
                    if waiting.contains_key(&c.msg_id) {
                        dropped.push(c.clone());
                    }
                }
            });
        self.log.reset_to(seq, snap.term, &snap.dedup);
        for c in dropped {
            if self.log.seq_of(&c.msg_id).is_none() {
                self.pending.insert(c);
                if !self.is_armed(Timer::Forward) {
                    self.arm(Timer::Forward, self.cfg.leader_timeout_ms / 2);
                }
            }
        }
        self.numbering = snap.numbering;
        self.rooms = snap.rooms;
        self.accounts = snap.accounts;
        self.commit_seq = seq;
        self.delivered_seq = seq;
        self.own_durable = self.own_durable.min(seq);
        self.snap_seq = seq;
        self.hold(image);
        self.installs += 1;
        // Pending submissions the snapshot covers are committed: not forwarded again.
        let covered: Vec<String> = self
            .pending
            .iter()
            .filter(|c| self.log.seq_of(&c.msg_id).is_some_and(|s| s <= seq))
            .map(|c| c.msg_id.clone())
            .collect();
        for id in covered {
            self.pending.remove(&id);
        }
        // Clients waiting for submissions the snapshot covers are answered.
        let covered: Vec<(String, Seq)> = self
            .waiting
            .keys()
            .filter_map(|id| self.log.seq_of(id).map(|s| (id.clone(), s)))
            .filter(|&(_, s)| s <= seq)
            .collect();
        for (id, index) in covered {
            self.pending.remove(&id);
            for client in self.waiting.remove(&id).unwrap_or_default() {
                let reply = self.committed_reply(id.clone(), index);
                out.push(Action::Reply { client, reply });
            }
        }
        if matches!(self.state, State::Follower) {
            self.leader_match = seq;
            self.ack_dirty = true;
        }
        self.continue_catchup(inc.from, seq, out);
    }

    /// After a snapshot or a catch-up batch: entries after `after` from
    /// `from`, or (a claimant that reached its sync target) leadership.
    pub(crate) fn continue_catchup(&mut self, from: NodeId, after: Seq, out: &mut Vec<Action>) {
        if let State::Candidate(Election::Fetching { target, .. }) = self.state {
            if self.log.term_at(target.1) == Some(target.0) {
                if self.log.last_seq() > target.1 {
                    self.truncate_from(target.1.next(), out);
                }
                self.become_leader(out);
                return;
            }
            self.arm(Timer::Election, self.cfg.leader_timeout_ms);
        }
        self.request_catchup_after(from, after, out);
    }
}
