//! People in the simulation: with room events on, every client holds a named
//! session on the node it talks to (as a real client's connection does), so
//! presence is exercised through crashes, restarts, partitions and switches;
//! and once faults stop, presence must converge.
//!
//! Rules (as the runtime): a client's session moves with it (the old node
//! hears the session close if that incarnation still runs); a crash ends
//! every session of the node; a rename renames the session at once.
//!
//! Presence convergence (`presence_converged`): after the liveness phase,
//! within the leader timeout plus two heartbeat intervals of the last fault
//! (and two intervals of convergence), every live node sees exactly the
//! names whose sessions live on a running node.

use crate::cluster::Sim;
use crate::workload::client_id;
use chorus_core::{ClientRequest, Input};
use std::collections::BTreeSet;

impl Sim {
    fn people_on(&self) -> bool {
        self.opts.sessions
    }

    /// Client `client` talks to `node` now: its session lives there (opened
    /// if new, moved from its previous node).
    pub(crate) fn ensure_session(&mut self, client: u32, node: usize) {
        if !self.people_on() || self.slots[node].node.is_none() {
            return;
        }
        let inc = self.slots[node].inc;
        let Some(c) = self.clients.client(client) else {
            return;
        };
        let prev = c.session;
        if prev == Some((node, inc)) {
            return;
        }
        let name = c.name.clone();
        if let Some((pn, pi)) = prev {
            if self.slots[pn].inc == pi && self.slots[pn].node.is_some() {
                self.session(pn, client, None);
            }
        }
        if let Some(c) = self.clients.client_mut(client) {
            c.session = Some((node, inc));
        }
        self.session(node, client, Some(name));
    }

    /// A rename: the session (if it lives) takes the client's new name.
    pub(crate) fn rename_session(&mut self, client: u32) {
        let Some(c) = self.clients.client(client) else {
            return;
        };
        let name = c.name.clone();
        if let Some((n, i)) = c.session {
            if self.slots[n].inc == i && self.slots[n].node.is_some() {
                self.session(n, client, Some(name));
            }
        }
    }

    fn session(&mut self, node: usize, client: u32, name: Option<String>) {
        let input = Input::Client {
            client: client_id(client),
            request: ClientRequest::Session { name },
        };
        self.activate(node, input);
    }

    /// Scenario check: every live node holds `room` with exactly `members`
    /// (and `topic`, if given).
    pub fn check_room(
        &self,
        room: &str,
        members: &[String],
        topic: Option<&str>,
    ) -> Result<(), String> {
        let want: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        for (i, s) in self.slots.iter().enumerate() {
            let Some(node) = s.node.as_ref() else {
                continue;
            };
            let r = node.rooms().get(room);
            let got: BTreeSet<&str> = r.map_or(BTreeSet::new(), |r| {
                r.members.iter().map(String::as_str).collect()
            });
            let topic_ok = topic.is_none_or(|t| r.is_some_and(|r| r.topic == t));
            if got != want || !topic_ok {
                let seen = r.map_or(String::new(), |r| r.topic.clone());
                return Err(format!("n{} has {got:?} topic {seen:?}", i + 1));
            }
        }
        Ok(())
    }

    /// Scenario check: every live node sees exactly `names` online.
    pub fn check_online(&self, names: &[String]) -> Result<(), String> {
        let want: BTreeSet<String> = names.iter().cloned().collect();
        for (i, s) in self.slots.iter().enumerate() {
            let Some(node) = s.node.as_ref() else {
                continue;
            };
            let got = node.presence().online();
            if got != want {
                return Err(format!("n{} sees {got:?}", i + 1));
            }
        }
        Ok(())
    }

    /// The names whose sessions live on a running node.
    pub fn expected_online(&self) -> BTreeSet<String> {
        self.clients
            .iter()
            .filter(|(_, c)| {
                c.session
                    .is_some_and(|(n, i)| self.slots[n].inc == i && self.slots[n].node.is_some())
            })
            .map(|(_, c)| c.name.clone())
            .collect()
    }

    /// After convergence (faults stopped at `faults_end_ms`): runs until
    /// presence must have converged, then checks every live node. True if
    /// there were sessions and every node agreed.
    pub fn check_presence(&mut self, faults_end_ms: u64) -> bool {
        if !self.people_on() || self.halted() {
            return false;
        }
        let hb = self.opts.heartbeat_interval_ms;
        // A round trip of slack past the bound (the calm network's latency).
        let slack = hb / 2;
        let at = (self.now() + 2 * hb).max(faults_end_ms + self.opts.leader_timeout_ms + 2 * hb);
        self.run_until(at + slack);
        let expected = self.expected_online();
        for i in 0..self.opts.nodes {
            let Some(node) = self.slots[i].node.as_ref() else {
                continue;
            };
            let seen = node.presence().online();
            if seen != expected {
                let missing: Vec<&String> = expected.difference(&seen).collect();
                let extra: Vec<&String> = seen.difference(&expected).collect();
                self.report(format!(
                    "presence: n{} has not converged: missing {missing:?}, stale {extra:?}",
                    i + 1
                ));
                return false;
            }
        }
        !expected.is_empty()
    }
}
