//! The node's side of presence (`presence.rs`): local sessions in, PRESENCE
//! rounds out every heartbeat interval while there is anything to say, and
//! the answers to other nodes' rounds.
//!
//! The PRESENCE timer is armed only while presence is active (named sessions
//! here, a change to announce, remote sets to expire), so a cluster without
//! named sessions sends nothing extra. Presence is soft state: it persists
//! nothing and its messages never change the term.

use crate::io::Action;
use crate::node::{Node, Timer};
use crate::types::{ClientId, NodeId};
use crate::wire::PeerMsg;

impl Node {
    /// The driver says client `client`'s session is now called `name`.
    pub(crate) fn on_session(&mut self, client: ClientId, name: Option<String>) {
        self.presence.set_session(client, name);
        self.arm_presence();
    }

    fn arm_presence(&mut self) {
        if self.presence.active() && !self.is_armed(Timer::Presence) {
            self.arm(Timer::Presence, self.cfg.heartbeat_interval_ms);
        }
    }

    fn presence_msg(&self, full: bool, pull: bool) -> PeerMsg {
        PeerMsg::Presence {
            sender_id: self.id(),
            term: self.term,
            version: self.presence.version(),
            names: full.then(|| self.presence.local_names()),
            pull,
        }
    }

    /// A round: expire silent nodes, then announce (the full set if it
    /// changed, else a beat while we have names).
    pub(crate) fn on_presence_timer(&mut self, out: &mut Vec<Action>) {
        self.presence.expire(self.now, self.cfg.leader_timeout_ms);
        let full = self.presence.round_needs_full();
        let to = self.others();
        if (full || self.presence.has_local()) && !to.is_empty() {
            let msg = self.presence_msg(full, false);
            out.push(Action::Broadcast { to, msg });
        }
        self.arm_presence();
    }

    /// Another node's round, beat or pull.
    pub(crate) fn on_presence(
        &mut self,
        from: NodeId,
        version: u64,
        names: Option<Vec<String>>,
        pull: bool,
        out: &mut Vec<Action>,
    ) {
        if !self.members.contains_key(&from) {
            return;
        }
        let max = self.cfg.max_presence_names;
        let r = self
            .presence
            .on_gossip(from, version, names, pull, self.now, max);
        if r.send_full || r.pull {
            let msg = self.presence_msg(r.send_full, r.pull);
            out.push(Action::Send { to: from, msg });
        }
        self.arm_presence();
    }

    /// A (re)connected peer may have restarted and forgotten our sessions.
    pub(crate) fn presence_peer_up(&mut self, id: NodeId, out: &mut Vec<Action>) {
        if self.presence.has_local() {
            let msg = self.presence_msg(true, false);
            out.push(Action::Send { to: id, msg });
        }
    }

    /// Its links reset: a dead node's sessions are gone at once.
    pub(crate) fn presence_peer_down(&mut self, id: NodeId) {
        self.presence.forget(id);
    }
}
