//! Running a scenario: apply the timeline at its instants, check expectations
//! (at their instant, or continuously until their `by_ms`), and judge.
//!
//! A scenario passes only when no invariant was violated and every expectation
//! held. The runner adds `check` lines to the trace so a reader sees where each
//! expectation was settled.

use super::{Expect, Scenario, StepAction};
use crate::checker::Violation;
use crate::cluster::Sim;
use crate::coverage::Coverage;
use chorus_core::{NodeId, Seq};

/// The result of one scenario run.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub seed: u64,
    pub violations: Vec<Violation>,
    /// Failed expectations, each naming its file line.
    pub failed: Vec<String>,
    pub expectations: usize,
    pub trace: String,
    pub digest: u64,
    pub steps: u64,
    pub sim_ms: u64,
    pub committed: u64,
    pub coverage: Coverage,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.failed.is_empty()
    }

    /// The final one-line verdict.
    pub fn verdict(&self) -> String {
        let word = if self.passed() { "PASS" } else { "FAIL" };
        format!(
            "{word} {} seed={:#x}: {} violations, {}/{} expectations held, {} entries committed, {} node steps, {} ms simulated, digest {:016x}",
            self.name,
            self.seed,
            self.violations.len(),
            self.expectations - self.failed.len(),
            self.expectations,
            self.committed,
            self.steps,
            self.sim_ms,
            self.digest
        )
    }
}

/// An expectation still being watched.
enum Watch {
    /// Passes the first time it holds; fails if `by_ms` passes first.
    Until {
        line: usize,
        expect: Expect,
        by_ms: u64,
    },
    /// Fails if `node`'s commit point moves from `commit` before `until_ms`.
    NoCommit {
        line: usize,
        node: usize,
        commit: Seq,
        until_ms: u64,
    },
}

struct Runner {
    sim: Sim,
    watches: Vec<Watch>,
    failed: Vec<String>,
}

/// Runs `scn` (with `seed` instead of the file's, if given).
pub fn run(scn: &Scenario, seed: Option<u64>, trace: bool) -> Outcome {
    let mut opts = scn.options.clone();
    if let Some(s) = seed {
        opts.seed = s;
    }
    opts.trace = trace;
    let seed = opts.seed;
    let mut r = Runner {
        sim: Sim::new(opts),
        watches: Vec::new(),
        failed: Vec::new(),
    };
    let mut expectations = 0;
    for step in &scn.timeline {
        if step.at_ms > scn.duration_ms {
            break;
        }
        r.run_to(step.at_ms);
        if matches!(
            step.action,
            StepAction::Expect { .. } | StepAction::ExpectNoCommit { .. }
        ) {
            expectations += 1;
        }
        r.apply(step.line, &step.action);
    }
    r.run_to(scn.duration_ms);
    r.expire(u64::MAX);
    let sim = r.sim;
    Outcome {
        name: scn.name.clone(),
        seed,
        violations: sim.checker().violations().to_vec(),
        failed: r.failed,
        expectations,
        trace: sim.trace_text().to_string(),
        digest: sim.digest(),
        steps: sim.steps(),
        sim_ms: sim.now(),
        committed: sim.checker().canon_len().0,
        coverage: sim.coverage().clone(),
    }
}

impl Runner {
    /// Runs events before `limit_ms`, settling watches after each one.
    fn run_to(&mut self, limit_ms: u64) {
        while let Some(t) = self.sim.next_event_ms().filter(|&t| t < limit_ms) {
            self.expire(t);
            if !self.sim.step_event(limit_ms) {
                break;
            }
            self.settle();
        }
        self.sim.run_until(limit_ms);
        self.expire(limit_ms);
    }

    fn apply(&mut self, line: usize, action: &StepAction) {
        let now = self.sim.now();
        match action {
            StepAction::Chat {
                node,
                client,
                count,
                room,
                interval_ms,
            } => {
                for k in 0..u64::from(*count) {
                    self.sim
                        .submit_at(now + k * interval_ms, *client, *node, room);
                }
            }
            StepAction::Room {
                node,
                client,
                event,
                room,
            } => {
                self.sim
                    .submit_kind_at(now, *client, *node, room, Some(*event));
            }
            StepAction::Crash { node, mid_batch } => {
                if *mid_batch {
                    let within = self.sim.options().heartbeat_interval_ms * 2;
                    self.sim.crash_mid_batch(*node, within);
                } else {
                    self.sim.crash(*node);
                }
            }
            StepAction::Restart { node } => self.sim.restart(*node),
            StepAction::Partition { groups } => self.sim.partition(groups),
            StepAction::Cut { from, to } => self.sim.cut_one_way(from, to),
            StepAction::Heal => self.sim.heal(),
            StepAction::Expect { expect, by_ms } => {
                let by_ms = by_ms.unwrap_or(now);
                self.watches.push(Watch::Until {
                    line,
                    expect: expect.clone(),
                    by_ms,
                });
                self.settle();
                self.expire(now + 1);
            }
            StepAction::ExpectNoCommit { node, until_ms } => {
                let commit = self.sim.status(*node).map_or(Seq(0), |s| s.commit_seq);
                self.watches.push(Watch::NoCommit {
                    line,
                    node: *node,
                    commit,
                    until_ms: *until_ms,
                });
                self.settle();
            }
        }
    }

    /// Resolves every watch that holds (or broke) now.
    fn settle(&mut self) {
        let mut keep = Vec::new();
        for w in std::mem::take(&mut self.watches) {
            match &w {
                Watch::Until { line, expect, .. } => match check(&self.sim, expect) {
                    Ok(()) => {
                        let text = format!("line {line}: {} ok", describe(expect));
                        self.sim.note("check", &text);
                    }
                    Err(_) => keep.push(w),
                },
                Watch::NoCommit {
                    line, node, commit, ..
                } => {
                    let now_commit = self.sim.status(*node).map(|s| s.commit_seq);
                    if now_commit != Some(*commit) {
                        let why = match now_commit {
                            Some(c) => format!("commit point moved from {commit} to {c}"),
                            None => "the node went down".to_string(),
                        };
                        self.fail(*line, &format!("n{} commits nothing", node + 1), &why);
                    } else {
                        keep.push(w);
                    }
                }
            }
        }
        self.watches = keep;
    }

    /// Settles every watch whose deadline is before `t`.
    fn expire(&mut self, t: u64) {
        let mut keep = Vec::new();
        for w in std::mem::take(&mut self.watches) {
            match &w {
                Watch::Until {
                    line,
                    expect,
                    by_ms,
                } if *by_ms < t => {
                    // Nothing happens between by_ms and t: report at the deadline.
                    self.sim.run_until(*by_ms);
                    let why = check(&self.sim, expect).err().unwrap_or_default();
                    self.fail(*line, &describe(expect), &why);
                }
                Watch::NoCommit {
                    line,
                    node,
                    until_ms,
                    ..
                } if *until_ms < t => {
                    self.sim.run_until(*until_ms);
                    let text = format!("line {line}: n{} commits nothing ok", node + 1);
                    self.sim.note("check", &text);
                }
                _ => keep.push(w),
            }
        }
        self.watches = keep;
    }

    fn fail(&mut self, line: usize, what: &str, why: &str) {
        let text = format!("line {line}: {what} FAILED: {why}");
        self.sim.note("check", &text);
        self.failed
            .push(format!("at {} ms, {text}", self.sim.now()));
    }
}

/// A short description of an expectation for trace and verdict.
fn describe(e: &Expect) -> String {
    match e {
        Expect::Role {
            node,
            role,
            leader,
            term,
        } => {
            let mut s = format!("n{} is {role:?}", node + 1).to_lowercase();
            if let Some(l) = leader {
                s += &format!(" of n{}", l + 1);
            }
            if let Some(t) = term {
                s += &format!(" in t{t}");
            }
            s
        }
        Expect::Delivered { node, count } => format!("n{} delivered {count} chats", node + 1),
        Expect::Acked { count } => format!("{count} chats acknowledged"),
        Expect::Converged => "converged".into(),
        Expect::Coverage { counter, min } => format!("coverage {counter} >= {min}"),
        Expect::Room { room, members, .. } => format!("#{room} has {members:?}"),
        Expect::Online { names } => format!("online {names:?}"),
    }
}

/// Whether `e` holds now; the error says what was seen instead.
fn check(sim: &Sim, e: &Expect) -> Result<(), String> {
    match e {
        Expect::Role {
            node,
            role,
            leader,
            term,
        } => {
            let s = sim.status(*node).ok_or("it is down")?;
            let leader_ok = leader.is_none_or_eq(s.leader);
            if s.role != *role || !leader_ok || term.is_some_and(|t| s.term.0 != t) {
                return Err(format!("it is {:?} {} of {:?}", s.role, s.term, s.leader));
            }
            Ok(())
        }
        Expect::Delivered { node, count } => {
            let s = sim.status(*node).ok_or("it is down")?;
            let got = sim.checker().chats_upto(s.delivered_seq);
            if got == *count {
                Ok(())
            } else {
                Err(format!(
                    "it delivered {got} chats (up to seq {})",
                    s.delivered_seq
                ))
            }
        }
        Expect::Acked { count } => {
            let got = sim.clients().total_sent() - sim.clients().unacked();
            if got == *count {
                Ok(())
            } else {
                Err(format!("{got} acknowledged"))
            }
        }
        Expect::Converged => sim.converged(),
        Expect::Room {
            room,
            members,
            topic,
        } => sim.check_room(room, members, topic.as_deref()),
        Expect::Online { names } => sim.check_online(names),
        Expect::Coverage { counter, min } => {
            let got = sim.coverage().get(counter).unwrap_or(0);
            if got >= *min {
                Ok(())
            } else {
                Err(format!("{counter} is {got}"))
            }
        }
    }
}

/// `None` matches anything; `Some(i)` matches node index `i`.
trait LeaderMatch {
    fn is_none_or_eq(&self, actual: Option<NodeId>) -> bool;
}

impl LeaderMatch for Option<usize> {
    fn is_none_or_eq(&self, actual: Option<NodeId>) -> bool {
        match self {
            None => true,
            Some(i) => actual == Some(NodeId(*i as u64 + 1)),
        }
    }
}
