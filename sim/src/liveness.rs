//! The liveness predicate: after faults stop (every link open, every node up
//! except possibly a minority left down), the cluster must converge within a
//! bounded virtual time.
//!
//! Converged means: a majority is up; exactly one live leader, every other
//! live node follows it in its term; the leader's log is fully committed;
//! every live node has that log and has delivered all of it; every message any
//! client submitted is acknowledged.

use crate::cluster::Sim;
use chorus_core::{NodeId, Role};

impl Sim {
    /// Ok once converged; otherwise the first reason it is not.
    pub fn converged(&self) -> Result<(), String> {
        let statuses: Vec<_> = (0..self.opts.nodes)
            .filter_map(|i| self.status(i))
            .collect();
        let majority = self.opts.nodes / 2 + 1;
        if statuses.len() < majority {
            return Err(format!("only {} nodes are up", statuses.len()));
        }
        let leaders: Vec<NodeId> = statuses
            .iter()
            .filter(|s| s.role == Role::Leader)
            .map(|s| s.id)
            .collect();
        let [leader] = leaders[..] else {
            return Err(format!("{} leaders: {leaders:?}", leaders.len()));
        };
        let l = statuses
            .iter()
            .find(|s| s.id == leader)
            .expect("the leader is among the statuses");
        if l.commit_seq != l.last_seq {
            return Err(format!(
                "leader {leader} committed {} of {}",
                l.commit_seq, l.last_seq
            ));
        }
        for s in &statuses {
            if s.id != leader && (s.role != Role::Follower || s.leader != Some(leader)) {
                return Err(format!("{} is {:?} of {:?}", s.id, s.role, s.leader));
            }
            if s.term != l.term {
                return Err(format!("{} is in {}, leader in {}", s.id, s.term, l.term));
            }
            if s.last_seq != l.last_seq || s.delivered_seq != l.commit_seq {
                return Err(format!(
                    "{} has log {} delivered {}, leader {}",
                    s.id, s.last_seq, s.delivered_seq, l.commit_seq
                ));
            }
        }
        if self.clients.unacked() > 0 {
            let keys: Vec<String> = self
                .clients
                .first_unacked(5)
                .iter()
                .map(|k| k.to_string())
                .collect();
            return Err(format!(
                "{} messages unacknowledged (first: {})",
                self.clients.unacked(),
                keys.join(", ")
            ));
        }
        Ok(())
    }

    /// Ends faults: opens every link, calms the network, disarms pending
    /// crashes and restarts every down node except `keep_down`.
    pub fn stop_faults(&mut self, keep_down: Option<usize>) {
        self.disarm_crashes();
        self.heal();
        self.calm_network();
        for i in (0..self.opts.nodes).filter(|&i| Some(i) != keep_down) {
            self.restart(i);
        }
    }

    /// Runs until converged (checking every `poll_ms`) or until `deadline_ms`;
    /// returns the time it converged or the last reason it had not.
    pub fn run_to_convergence(&mut self, deadline_ms: u64, poll_ms: u64) -> Result<u64, String> {
        loop {
            if self.halted {
                return Err("halted by a violation".into());
            }
            if self.converged().is_ok() {
                return Ok(self.now);
            }
            if self.now >= deadline_ms {
                return self.converged().map(|_| self.now);
            }
            let next = (self.now + poll_ms).min(deadline_ms);
            self.run_until(next);
        }
    }
}
