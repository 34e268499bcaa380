//! Bully election with terms: who leads, and the new-leader sync.
//!
//! 1. Probing (a pre-vote): ELECTION goes to every other voter. A higher node
//!    that lost the leader answers "stand down" and runs its own election; a
//!    node that still hears a leader answers "stand down"; a lower node that
//!    lost the leader grants. With a majority of grants and no higher node
//!    answering in time, the candidate claims.
//! 2. Claiming: a new term is persisted with the vote for ourselves, then
//!    COORDINATOR goes to every member. Each node promises at most one claimant
//!    per term (so at most one leader per term) and answers SYNC_ACK with its
//!    log position.
//! 3. Fetching: with a majority of positions, the claimant adopts the most up
//!    to date log (by (last_term, last_seq)) before it sequences anything, so a
//!    stale node never reassigns a committed seq_no.

use crate::config::InjectedBug;
use crate::entry::Body;
use crate::io::Action;
use crate::node::{Election, Leading, Node, State, Timer};
use crate::types::{NodeId, PeerInfo, Seq, Term};
use crate::wire::PeerMsg;
use std::collections::{BTreeMap, BTreeSet};

impl Node {
    pub(crate) fn on_leader_timeout(&mut self, out: &mut Vec<Action>) {
        if self.is_leader() || matches!(self.state, State::Candidate(_)) {
            return;
        }
        if !self.cfg.is_voter() {
            // A non-voter never leads; it keeps looking for the leader.
            let to = self.others();
            let msg = self.join_msg(false);
            out.push(Action::Broadcast { to, msg });
            self.arm(Timer::LeaderTimeout, self.cfg.leader_timeout_ms);
            return;
        }
        if let Some(at) = self.leader_contact.filter(|_| self.has_live_leader()) {
            let left = self.cfg.leader_timeout_ms - self.now.ms_since(at);
            self.arm(Timer::LeaderTimeout, left.max(1));
            return;
        }
        self.start_election(out);
    }

    /// Starts (or restarts) Bully probing. No term is spent here.
    pub(crate) fn start_election(&mut self, out: &mut Vec<Action>) {
        if !self.cfg.is_voter() || self.is_leader() {
            return;
        }
        if let Some(l) = self.leader.take() {
            self.lost_leader = Some(l);
        }
        self.leader_contact = None;
        self.disarm(Timer::LeaderTimeout);
        let me = self.id();
        let others = self.other_voters();
        // Bully waits for higher nodes to answer, but not for the leader we just
        // found silent: waiting for it would only add the answer timeout to
        // every timeout-based failover. If it is alive after all, it answers
        // and our claim, at worst, costs a term.
        let higher_pending: BTreeSet<NodeId> = others
            .iter()
            .copied()
            .filter(|&v| v > me && !self.down.contains(&v) && Some(v) != self.lost_leader)
            .collect();
        self.state = State::Candidate(Election::Probing {
            grants: BTreeSet::from([me]),
            higher_pending,
        });
        if !others.is_empty() {
            let msg = PeerMsg::Election {
                sender_id: me,
                term: self.term,
            };
            out.push(Action::Broadcast { to: others, msg });
        }
        let wait = self.cfg.election_timeout_ms;
        let j = self.jitter(wait / 4);
        self.arm(Timer::Election, wait + j);
        self.maybe_claim(out);
    }

    /// Claims as soon as a majority granted and every higher node answered or is down.
    pub(crate) fn maybe_claim(&mut self, out: &mut Vec<Action>) {
        if let State::Candidate(Election::Probing {
            grants,
            higher_pending,
        }) = &self.state
        {
            if grants.len() >= self.cfg.majority() && higher_pending.is_empty() {
                self.claim(out);
            }
        }
    }

    pub(crate) fn on_election_timer(&mut self, out: &mut Vec<Action>) {
        match &self.state {
            State::Candidate(Election::Probing { grants, .. }) => {
                if grants.len() >= self.cfg.majority() {
                    // Higher nodes did not answer in time: Bully says they are down.
                    self.claim(out);
                } else {
                    self.start_election(out);
                }
            }
            State::Candidate(_) => self.start_election(out),
            _ => {}
        }
    }

    /// ELECTION from `from`: stand it down or grant it (see the module doc).
    pub(crate) fn on_election(&mut self, from: NodeId, out: &mut Vec<Action>) {
        let me = self.id();
        // ELECTION from the leader we follow: it lost its majority and
        // stepped down (a leader never probes), so it is no live leader.
        let live = self.has_live_leader() && (self.is_leader() || self.leader != Some(from));
        let grant = !live && from > me;
        let msg = PeerMsg::ElectionOk {
            sender_id: me,
            term: self.term,
            grant,
            leader: if live { self.leader } else { None },
        };
        out.push(Action::Send { to: from, msg });
        if self.is_leader() {
            // It lost us: remind it who leads.
            let hb = self.heartbeat_msg();
            out.push(Action::Send { to: from, msg: hb });
        } else if !live && !grant && self.cfg.is_voter() && self.idle_for_election() {
            // Bully: a lower node lost the leader, so we (higher) run. Also when
            // we were told to stand down and wait: whoever told us may have been
            // this very node, still hearing a leader that has died since.
            self.start_election(out);
        }
    }

    /// Not already probing, claiming or fetching.
    fn idle_for_election(&self) -> bool {
        matches!(
            self.state,
            State::Follower | State::Candidate(Election::AwaitCoordinator)
        )
    }

    pub(crate) fn on_election_ok(&mut self, from: NodeId, grant: bool, out: &mut Vec<Action>) {
        let State::Candidate(Election::Probing {
            grants,
            higher_pending,
        }) = &mut self.state
        else {
            return;
        };
        higher_pending.remove(&from);
        if grant {
            if self.cfg.voters.contains(&from) {
                grants.insert(from);
            }
            self.maybe_claim(out);
        } else {
            self.state = State::Candidate(Election::AwaitCoordinator);
            self.arm(Timer::Election, self.cfg.leader_timeout_ms);
        }
    }

    /// Spends a new term on a claim: persisted with our own vote before COORDINATOR.
    fn claim(&mut self, out: &mut Vec<Action>) {
        let me = self.id();
        let term = Term(self.term.0 + 1);
        self.adopt_term(term, Some(me), out);
        self.disarm(Timer::LeaderTimeout);
        self.state = State::Candidate(Election::Claiming {
            positions: BTreeMap::from([(me, self.log.position())]),
        });
        let msg = PeerMsg::Coordinator {
            sender_id: me,
            term,
            leader: self.cfg.me.clone(),
        };
        let to = self.others();
        if !to.is_empty() {
            out.push(Action::Broadcast { to, msg });
        }
        self.arm(Timer::Election, self.cfg.leader_timeout_ms);
        self.maybe_finish_claim(out);
    }

    /// COORDINATOR: promise the claimant (once per term) or refuse it.
    pub(crate) fn on_coordinator(&mut self, term: Term, leader: PeerInfo, out: &mut Vec<Action>) {
        let me = self.id();
        let claimant = leader.node_id;
        self.learn_member(leader, out);
        let promised_other = term == self.term
            && self.voted_for.is_some_and(|v| v != claimant)
            && self.cfg.bug != Some(InjectedBug::PromiseTwoCoordinators);
        let non_voter = !self.cfg.voters.contains(&claimant);
        let stale = term < self.term && self.cfg.bug != Some(InjectedBug::AcceptStaleTerm);
        if stale || promised_other || non_voter {
            let nack = PeerMsg::CoordinatorNack {
                sender_id: me,
                term: self.term,
            };
            out.push(Action::Send {
                to: claimant,
                msg: nack,
            });
            // Bully priority: a higher claimant of our own term wins the next term,
            // so stop pursuing ours.
            if promised_other && claimant > me && matches!(self.state, State::Candidate(_)) {
                self.become_follower(None);
            }
            return;
        }
        if term > self.term || self.voted_for.is_none() {
            self.adopt_term(term, Some(claimant), out);
        }
        self.follow(claimant, out);
        let ack = PeerMsg::SyncAck {
            sender_id: me,
            term,
            last_seq: self.log.last_seq(),
            last_term: self.log.last_term(),
            commit_seq: self.commit_seq,
        };
        out.push(Action::Send {
            to: claimant,
            msg: ack,
        });
    }

    pub(crate) fn on_coordinator_nack(&mut self, out: &mut Vec<Action>) {
        if let State::Candidate(Election::Claiming { .. }) = &self.state {
            // A voter promised another claimant of our term. Waiting for the
            // others to promise us would cost the claim timer (a leader
            // timeout) whenever they did too, typically after a crash left
            // several claimants in one term: probe again at once (the next
            // claim takes a new term; lower claimants stand down to our
            // probe, so this does not duel).
            self.start_election(out);
        }
    }

    pub(crate) fn on_sync_ack(&mut self, from: NodeId, pos: (Term, Seq), out: &mut Vec<Action>) {
        if !self.cfg.voters.contains(&from) {
            return;
        }
        if let State::Candidate(Election::Claiming { positions, .. }) = &mut self.state {
            positions.insert(from, pos);
            self.maybe_finish_claim(out);
        }
    }

    /// With a majority of positions: lead at once, or first fetch the best log.
    fn maybe_finish_claim(&mut self, out: &mut Vec<Action>) {
        let State::Candidate(Election::Claiming { positions, .. }) = &self.state else {
            return;
        };
        if positions.len() < self.cfg.majority() {
            return;
        }
        let mine = self.log.position();
        // The most up-to-date log; on a tie our own (no fetch needed).
        let (best, target) = positions
            .iter()
            .map(|(&n, &p)| (p, n == self.id(), n))
            .max()
            .map(|(p, _, n)| (n, p))
            .expect("a majority is never empty");
        if target == mine || self.cfg.bug == Some(InjectedBug::SkipLeaderSync) {
            self.become_leader(out);
        } else {
            self.state = State::Candidate(Election::Fetching { from: best, target });
            self.catchup_inflight = false;
            self.request_catchup(best, out);
            self.arm(Timer::Election, self.cfg.leader_timeout_ms);
        }
    }

    /// Leadership of the current term begins: a no-op of this term first (it
    /// commits the previous terms' tail), then whatever clients left pending.
    pub(crate) fn become_leader(&mut self, out: &mut Vec<Action>) {
        let me = self.id();
        let mut match_seq = BTreeMap::new();
        for &m in self.members.keys() {
            match_seq.insert(m, Seq(0));
        }
        self.state = State::Leader(Leading {
            match_seq,
            heard: BTreeMap::new(),
            replicated: self.log.last_seq(),
            since: self.now,
            commit_sent: self.commit_seq,
        });
        self.leader = Some(me);
        self.leader_contact = Some(self.now);
        self.disarm(Timer::LeaderTimeout);
        self.disarm(Timer::Election);
        self.disarm(Timer::Catchup);
        self.disarm(Timer::Forward);
        self.catchup_inflight = false;
        self.append_local(Body::Noop { leader: me }, out);
        let pending = self.pending.take();
        for chat in pending {
            if self.log.seq_of(&chat.msg_id).is_none() {
                self.append_local(Body::Chat(chat), out);
            }
        }
        self.send_heartbeats(out);
        self.arm(Timer::Heartbeat, self.cfg.heartbeat_interval_ms);
    }
}
