//! Catch-up: a lagging, restarted or diverged node pulls entries in bounded
//! batches (one request in flight), from the leader, or during a new-leader
//! sync from the member with the most up-to-date log. Entries the source
//! compacted come as its snapshot instead (`install.rs`).

use crate::entry::Entry;
use crate::io::Action;
use crate::node::{Election, Node, State, Timer};
use crate::types::{NodeId, Seq, Term};
use crate::wire::PeerMsg;

impl Node {
    /// Asks `to` for entries after our log end (one request in flight).
    pub(crate) fn request_catchup(&mut self, to: NodeId, out: &mut Vec<Action>) {
        self.request_catchup_after(to, self.log.last_seq(), out);
    }

    /// Asks `to` for entries after `after` (our log end, or the highest seq a
    /// previous response verified to match `to`'s log), one request in flight.
    pub(crate) fn request_catchup_after(&mut self, to: NodeId, after: Seq, out: &mut Vec<Action>) {
        if self.catchup_inflight {
            return;
        }
        self.catchup_inflight = true;
        let after = after.min(self.log.last_seq());
        let msg = PeerMsg::CatchupReq {
            sender_id: self.id(),
            term: self.term,
            from_seq: after.next(),
            prev_term: self.log.term_at(after).unwrap_or(Term(0)),
            commit_seq: self.commit_seq,
        };
        out.push(Action::Send { to, msg });
        self.arm(Timer::Catchup, (self.cfg.leader_timeout_ms / 2).max(1));
    }

    /// The outstanding request got no answer: ask again.
    pub(crate) fn on_catchup_timer(&mut self, out: &mut Vec<Action>) {
        self.catchup_inflight = false;
        let source = match &self.state {
            State::Candidate(Election::Fetching { from, .. }) => Some(*from),
            State::Follower => self.leader,
            _ => None,
        };
        // An install in flight continues from its source, or is dropped
        // once that node is no longer the one we catch up from.
        if self
            .incoming
            .as_ref()
            .is_some_and(|i| Some(i.from) == source)
        {
            self.request_snapshot_chunk(out);
            return;
        }
        self.incoming = None;
        if let Some(to) = source {
            self.request_catchup(to, out);
        }
    }

    /// Serves a bounded batch. If the requester's last entry is not ours, its
    /// uncommitted tail may diverge, so the batch starts after its commit point
    /// (a committed prefix is the same on every node).
    pub(crate) fn on_catchup_req(
        &mut self,
        from: NodeId,
        _term: Term,
        from_seq: Seq,
        prev_term: Term,
        their_commit: Seq,
        out: &mut Vec<Action>,
    ) {
        let last = self.log.last_seq();
        let prev = Seq(from_seq.0.saturating_sub(1));
        let mut start = if self.log.term_at(prev) == Some(prev_term) {
            from_seq
        } else {
            their_commit.next()
        };
        start = start.min(last.next()).max(Seq(1));
        if start < self.log.first_seq() {
            // Compacted behind our snapshot: the requester installs it.
            self.send_snapshot_chunk(from, Seq(0), 0, out);
            return;
        }
        let prev_seq = Seq(start.0 - 1);
        let entries = self
            .log
            .slice(start, self.cfg.max_batch_entries, self.cfg.max_batch_bytes);
        let msg = PeerMsg::CatchupResp {
            sender_id: self.id(),
            term: self.term,
            prev_seq,
            prev_term: self.log.term_at(prev_seq).unwrap_or(Term(0)),
            commit_seq: self.commit_seq,
            last_seq: last,
            entries,
            leading: self.is_leader(),
        };
        out.push(Action::Send { to: from, msg });
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_catchup_resp(
        &mut self,
        from: NodeId,
        prev_seq: Seq,
        prev_term: Term,
        commit: Seq,
        their_last: Seq,
        entries: Vec<Entry>,
        leading: bool,
        out: &mut Vec<Action>,
    ) {
        match self.state.clone() {
            State::Candidate(Election::Fetching { from: src, .. }) if src == from => {
                self.catchup_inflight = false;
                self.disarm(Timer::Catchup);
                let matched = self.apply_entries(prev_seq, prev_term, entries, out);
                // Continue after what this batch verified, not after our log
                // end: past a diverged tail the source answers from our commit
                // point, and asking again from the log end would fetch that
                // same batch forever (seed 0x2580 of `chorus sim explore`).
                let after = matched.unwrap_or(self.log.last_seq());
                self.continue_catchup(src, after, out);
            }
            // Only the leader's log may overwrite ours: the node we follow
            // may be a claimant still fetching, or one that gave up, whose
            // log is whatever it had (a stale tail, possibly below our
            // committed prefix).
            State::Follower if self.leader == Some(from) && leading => {
                self.catchup_inflight = false;
                self.disarm(Timer::Catchup);
                self.follow(from, out);
                let matched = self.apply_entries(prev_seq, prev_term, entries, out);
                if let Some(m) = matched {
                    self.leader_match = self.leader_match.max(m);
                    self.follower_commit(commit, out);
                    self.ack_dirty = true;
                }
                if self.leader_match < their_last {
                    // As above: continue after the verified prefix.
                    let after = matched.unwrap_or(self.log.last_seq());
                    self.request_catchup_after(from, after, out);
                }
            }
            _ => {}
        }
    }
}
