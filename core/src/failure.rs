//! Failure detection: leader heartbeats, accepting a leader, and a leader's
//! step-down when it no longer hears a majority (so a minority never commits
//! for long and a partitioned leader stops accepting work).

use crate::io::Action;
use crate::node::{Node, State, Timer};
use crate::types::{NodeId, Seq, Term};
use crate::wire::PeerMsg;

impl Node {
    pub(crate) fn heartbeat_msg(&self) -> PeerMsg {
        let last = match &self.state {
            State::Leader(l) => l.replicated,
            _ => self.log.last_seq(),
        };
        PeerMsg::Heartbeat {
            sender_id: self.id(),
            term: self.term,
            commit_seq: self.commit_seq,
            last_seq: last,
            last_term: self.log.term_at(last).unwrap_or(Term(0)),
        }
    }

    pub(crate) fn send_heartbeats(&mut self, out: &mut Vec<Action>) {
        let commit = self.commit_seq;
        if let State::Leader(l) = &mut self.state {
            l.commit_sent = l.commit_sent.max(commit);
        }
        let to = self.others();
        if !to.is_empty() {
            let msg = self.heartbeat_msg();
            out.push(Action::Broadcast { to, msg });
        }
    }

    pub(crate) fn on_heartbeat_timer(&mut self, out: &mut Vec<Action>) {
        let State::Leader(l) = &self.state else {
            return;
        };
        let timeout = self.cfg.leader_timeout_ms;
        let now = self.now;
        let me = self.id();
        let heard = self
            .cfg
            .voters
            .iter()
            .filter(|&&v| v == me || l.heard.get(&v).is_some_and(|&t| now.ms_since(t) < timeout))
            .count();
        if heard < self.cfg.majority() && now.ms_since(l.since) >= timeout {
            // Cut off from a majority: stop leading; the majority side elects.
            self.become_follower(None);
            return;
        }
        self.send_heartbeats(out);
        self.arm(Timer::Heartbeat, self.cfg.heartbeat_interval_ms);
    }

    /// Follows `leader` in the current term (a COORDINATOR we promised, or a
    /// heartbeat/append of this term). Cancels any election of ours.
    pub(crate) fn follow(&mut self, leader: NodeId, out: &mut Vec<Action>) {
        let changed = self.leader != Some(leader) || !matches!(self.state, State::Follower);
        if changed {
            self.become_follower(Some(leader));
            self.reforward_pending(out);
        }
        self.leader_contact = Some(self.now);
        self.lost_leader = None;
        let j = self.jitter(self.cfg.heartbeat_interval_ms / 4);
        self.arm(Timer::LeaderTimeout, self.cfg.leader_timeout_ms + j);
    }

    /// Accepts `from` as the leader of the current term; false if we lead it
    /// ourselves (two leaders in one term cannot happen: one promise per term).
    /// A non-voter never leads (DESIGN §4.3), so its leader messages are ignored.
    pub(crate) fn accept_leader(&mut self, from: NodeId, out: &mut Vec<Action>) -> bool {
        if self.is_leader() || !self.cfg.voters.contains(&from) {
            return false;
        }
        self.follow(from, out);
        true
    }

    pub(crate) fn on_heartbeat(
        &mut self,
        from: NodeId,
        commit: Seq,
        last_seq: Seq,
        last_term: Term,
        out: &mut Vec<Action>,
    ) {
        if !self.accept_leader(from, out) {
            return;
        }
        self.leader_commit = self.leader_commit.max(commit);
        if self.log.term_at(last_seq) == Some(last_term) {
            // Log Matching: equal (seq, term) means equal prefixes.
            self.leader_match = self.leader_match.max(last_seq);
            self.follower_commit(commit, out);
        } else {
            self.request_catchup(from, out);
        }
        self.ack_dirty = true;
    }
}
