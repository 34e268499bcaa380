//! Membership: JOIN / JOIN_ACK. A node joining through any member becomes known
//! to every member (the receiver relays the JOIN once); the JOIN_ACK tells the
//! joiner every member and the current leader, so a restarted node follows the
//! live leader instead of starting an election (leader stickiness).
//! Voting rights come from configuration only (`Config::voters`).

use crate::io::Action;
use crate::node::{Node, State, Timer};
use crate::types::{PeerInfo, Term};
use crate::wire::PeerMsg;

impl Node {
    pub(crate) fn join_msg(&self, relay: bool) -> PeerMsg {
        PeerMsg::Join {
            sender_id: self.id(),
            term: self.term,
            peer: self.cfg.me.clone(),
            relay,
        }
    }

    /// Records a member; true if it is new or moved.
    pub(crate) fn learn_member(&mut self, p: PeerInfo, out: &mut Vec<Action>) -> bool {
        if p.node_id == self.id() || self.members.get(&p.node_id) == Some(&p) {
            return false;
        }
        self.members.insert(p.node_id, p.clone());
        out.push(Action::PeerKnown(p.clone()));
        if let State::Leader(l) = &mut self.state {
            l.match_seq.entry(p.node_id).or_default();
        }
        true
    }

    pub(crate) fn on_join(&mut self, peer: PeerInfo, relay: bool, out: &mut Vec<Action>) {
        let joiner = peer.node_id;
        let new = self.learn_member(peer.clone(), out);
        if relay {
            return;
        }
        if new {
            let to: Vec<_> = self.others().into_iter().filter(|&n| n != joiner).collect();
            if !to.is_empty() {
                let msg = PeerMsg::Join {
                    sender_id: self.id(),
                    term: self.term,
                    peer,
                    relay: true,
                };
                out.push(Action::Broadcast { to, msg });
            }
        }
        let mut members = self.members();
        members.push(self.cfg.me.clone());
        members.sort();
        let leader = self.leader.and_then(|l| {
            if l == self.id() {
                Some(self.cfg.me.clone())
            } else {
                self.members.get(&l).cloned()
            }
        });
        let ack = PeerMsg::JoinAck {
            sender_id: self.id(),
            term: self.term,
            members,
            leader,
        };
        out.push(Action::Send {
            to: joiner,
            msg: ack,
        });
        if self.is_leader() {
            // Let the joiner start catching up now, not at the next heartbeat.
            let hb = self.heartbeat_msg();
            out.push(Action::Send {
                to: joiner,
                msg: hb,
            });
        }
    }

    pub(crate) fn on_join_ack(
        &mut self,
        term: Term,
        members: Vec<PeerInfo>,
        leader: Option<PeerInfo>,
        out: &mut Vec<Action>,
    ) {
        for m in members {
            self.learn_member(m, out);
        }
        let Some(l) = leader else { return };
        let unled = matches!(self.state, State::Follower) && self.leader.is_none();
        let voter = self.cfg.voters.contains(&l.node_id);
        if l.node_id == self.id() || term < self.term || !unled || !voter {
            return;
        }
        if term > self.term {
            self.adopt_term(term, None, out);
        }
        // A hint: wait one leader timeout for that leader's heartbeat before
        // suspecting it, instead of starting an election of our own.
        self.leader = Some(l.node_id);
        self.leader_match = crate::types::Seq(0);
        self.arm(Timer::LeaderTimeout, self.cfg.leader_timeout_ms);
    }
}
