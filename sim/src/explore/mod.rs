//! The random swarm ("explore"): for each seed, draw options and a fault
//! schedule, run a safety phase with faults and clients (invariants checked
//! after every step), then stop the faults and require liveness: convergence
//! within a bounded virtual time.
//!
//! A run is a pure function of (seed, injected bug): every failure reproduces
//! with `chorus sim explore --start <seed> --seeds 1`.

mod draw;
mod schedule;

pub use draw::{draw, SwarmOptions};

use crate::checker::Violation;
use crate::cluster::Sim;
use crate::coverage::Coverage;
use chorus_core::InjectedBug;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one seed did.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub seed: u64,
    pub options: String,
    pub violations: Vec<Violation>,
    pub coverage: Coverage,
    pub steps: u64,
    pub sim_ms: u64,
    pub digest: u64,
    /// Virtual ms from the end of faults to convergence (None if it failed).
    pub converged_ms: Option<u64>,
    pub committed: u64,
    pub messages: usize,
    /// The text trace, if requested.
    pub trace: String,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The one-line command that reproduces this run.
    pub fn repro(&self, bug: Option<InjectedBug>) -> String {
        let flag = bug.map_or(String::new(), |b| format!(" --inject-bug {}", b.name()));
        format!(
            "chorus sim explore --start {:#x} --seeds 1{flag}",
            self.seed
        )
    }
}

/// Runs one seed of the swarm.
pub fn run_seed(seed: u64, bug: Option<InjectedBug>, trace: bool) -> RunReport {
    let mut o = draw(seed, bug);
    o.sim.trace = trace;
    let options = o.describe();
    let mut sim = Sim::new(o.sim.clone());
    schedule::workload(&mut sim, &o);
    schedule::safety_phase(&mut sim, &o);
    let end_ms = sim.now();
    match o.leave_down {
        Some(i) => {
            let what = format!(
                "faults stop: heal, restart all but n{}, calm network",
                i + 1
            );
            sim.note("sim", &what);
            sim.crash(i);
        }
        None => sim.note("sim", "faults stop: heal, restart all, calm network"),
    }
    sim.stop_faults(o.leave_down);
    let deadline = end_ms + o.liveness_bound_ms;
    let converged_ms = match sim.run_to_convergence(deadline, o.sim.heartbeat_interval_ms) {
        Ok(t) => {
            if sim.check_presence(end_ms) {
                sim.coverage_mut().presence_converged += 1;
            }
            Some(t - end_ms)
        }
        Err(why) => {
            if !sim.halted() {
                let bound = o.liveness_bound_ms;
                sim.report(format!(
                    "liveness: not converged {bound} ms after faults stopped: {why}"
                ));
            }
            None
        }
    };
    let events = sim.checker().canon().iter().filter(|e| e.event().is_some());
    sim.coverage_mut().room_events += events.count() as u64;
    RunReport {
        seed,
        options,
        violations: sim.checker().violations().to_vec(),
        coverage: sim.coverage().clone(),
        steps: sim.steps(),
        sim_ms: sim.now(),
        digest: sim.digest(),
        converged_ms,
        committed: sim.checker().canon_len().0,
        messages: sim.clients().total_sent(),
        trace: sim.trace_text().to_string(),
    }
}

/// Totals of a sweep.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub failed: u64,
    pub coverage: Coverage,
    pub steps: u64,
    pub sim_ms: u64,
    pub committed: u64,
    pub max_converged_ms: u64,
}

impl Summary {
    pub fn add(&mut self, r: &RunReport) {
        self.runs += 1;
        if !r.passed() {
            self.failed += 1;
        }
        self.coverage.merge(&r.coverage);
        self.steps += r.steps;
        self.sim_ms += r.sim_ms;
        self.committed += r.committed;
        self.max_converged_ms = self.max_converged_ms.max(r.converged_ms.unwrap_or(0));
    }
}

/// Runs seeds `start..start + count` on `jobs` threads and hands every report
/// to `each` in seed order (so output does not depend on thread timing).
pub fn explore(
    start: u64,
    count: u64,
    jobs: usize,
    bug: Option<InjectedBug>,
    mut each: impl FnMut(&RunReport),
) -> Summary {
    let jobs = jobs.clamp(1, 64) as u64;
    let mut summary = Summary::default();
    // Chunks keep memory bounded and reports flowing in order.
    let chunk = 64 * jobs;
    let mut first = 0;
    while first < count {
        let n = chunk.min(count - first);
        // Workers pull the next seed from a shared counter: runs differ a lot
        // in length, so fixed strides would leave a core idle.
        let next = AtomicU64::new(0);
        let mut reports: Vec<RunReport> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..jobs)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= n {
                                return mine;
                            }
                            mine.push(run_seed(start.wrapping_add(first + k), bug, false));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("swarm worker panicked outside the core"))
                .collect()
        });
        reports.sort_by_key(|r| r.seed.wrapping_sub(start));
        for r in &reports {
            summary.add(r);
            each(r);
        }
        first += n;
    }
    summary
}
