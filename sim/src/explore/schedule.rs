//! A swarm run's workload and fault schedule, both drawn from their own
//! streams: messages at random instants of the safety phase, and a fault
//! decision at random gaps (crash the leader or any node, possibly inside an
//! action batch; restart; partition symmetrically, isolate the leader, or cut
//! links one way; heal).
//!
//! Invariant: at most a minority is down at once unless the draw explicitly
//! allows one more (so progress is possible most of the time, but the
//! no-majority case is still exercised).

use super::SwarmOptions;
use crate::cluster::Sim;
use crate::seed::{below, between, rng, Stream};
use chorus_core::Role;
use rand_chacha::ChaCha8Rng;

const ROOMS: [&str; 3] = ["general", "random", "dev"];

/// Pre-schedules every client message of the safety phase.
pub fn workload(sim: &mut Sim, o: &SwarmOptions) {
    let mut r = rng(o.sim.seed, Stream::Workload);
    let n = o.sim.nodes as u64;
    let home: Vec<usize> = (0..o.clients).map(|_| below(&mut r, n) as usize).collect();
    for _ in 0..o.messages {
        let at = between(&mut r, 0, o.safety_ms.saturating_sub(1));
        let c = below(&mut r, u64::from(o.clients)) as u32 + 1;
        let room = ROOMS[below(&mut r, ROOMS.len() as u64) as usize];
        sim.submit_at(at, c, home[c as usize - 1], room);
    }
}

/// Runs the faulty phase to its end.
pub fn safety_phase(sim: &mut Sim, o: &SwarmOptions) {
    let mut r = rng(o.sim.seed, Stream::Schedule);
    let (lo, hi) = o.fault_gap_ms;
    let mut at = between(&mut r, lo, hi);
    while at < o.safety_ms && !sim.halted() {
        sim.run_until(at);
        fault(sim, o, &mut r);
        at += between(&mut r, lo, hi);
    }
    sim.run_until(o.safety_ms);
}

fn leader(sim: &Sim) -> Option<usize> {
    (0..sim.nodes()).find(|&i| sim.status(i).is_some_and(|s| s.role == Role::Leader))
}

fn pick(r: &mut ChaCha8Rng, v: &[usize]) -> Option<usize> {
    (!v.is_empty()).then(|| v[below(r, v.len() as u64) as usize])
}

/// One fault decision.
fn fault(sim: &mut Sim, o: &SwarmOptions, r: &mut ChaCha8Rng) {
    let n = sim.nodes();
    let up: Vec<usize> = (0..n).filter(|&i| sim.alive(i)).collect();
    let down: Vec<usize> = (0..n).filter(|&i| !sim.alive(i)).collect();
    let mut max_down = (n - 1) / 2;
    if below(r, 10) == 0 {
        max_down += 1;
    }
    let can_crash = down.len() < max_down;
    match below(r, 100) {
        0..=19 if can_crash => {
            if let Some(l) = leader(sim).or_else(|| pick(r, &up)) {
                crash(sim, o, r, l);
            }
        }
        20..=34 if can_crash => {
            if let Some(i) = pick(r, &up) {
                crash(sim, o, r, i);
            }
        }
        0..=54 => {
            if let Some(i) = pick(r, &down) {
                sim.restart(i);
            }
        }
        55..=66 => {
            // A random split into two non-empty sides.
            let mask = between(r, 1, (1u64 << n) - 2);
            let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| mask >> i & 1 == 1);
            sim.partition(&[a, b]);
        }
        67..=74 => {
            if let Some(l) = leader(sim) {
                let rest: Vec<usize> = (0..n).filter(|&i| i != l).collect();
                sim.partition(&[vec![l], rest]);
            }
        }
        75..=81 => {
            let from = pick(r, &(0..n).collect::<Vec<_>>()).unwrap_or(0);
            let to: Vec<usize> = (0..n).filter(|&i| i != from && below(r, 2) == 0).collect();
            if !to.is_empty() {
                sim.cut_one_way(&[from], &to);
            }
        }
        82..=94 => sim.heal(),
        _ => {}
    }
}

fn crash(sim: &mut Sim, o: &SwarmOptions, r: &mut ChaCha8Rng, i: usize) {
    if below(r, 100) < o.mid_batch_pct {
        sim.crash_mid_batch(i, 2 * o.sim.heartbeat_interval_ms);
    } else {
        sim.crash(i);
    }
}
