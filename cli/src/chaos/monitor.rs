//! A STATUS poller: asks every node for its role, term and leader (and its
//! log range and snapshot installs) a few times a second, tells the fault loop who leads, counts elections (terms in
//! which some node led) and checks two safety rules online: a node's term
//! never goes backwards (also across restarts: terms are persisted), and no
//! term ever has two leaders.

use super::clients::status;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const POLL_MS: u64 = 25;
const STATUS_TIMEOUT_MS: u64 = 150;

#[derive(Debug, Default)]
pub struct Observed {
    /// term → nodes seen leading it.
    pub leaders: BTreeMap<u64, BTreeSet<u64>>,
    /// node → highest term seen.
    pub terms: BTreeMap<u64, u64>,
    pub violations: Vec<String>,
    pub polls: u64,
    /// node → (term, leads it) from its last answer.
    pub last: BTreeMap<u64, (u64, bool)>,
    /// node → snapshot installs of its earlier incarnations (STATUS's
    /// `snapshot_installs` counts per process: a restart starts it at 0).
    pub installs_before: BTreeMap<u64, u64>,
    /// node → `snapshot_installs` of its current incarnation (last answer).
    pub installs_now: BTreeMap<u64, u64>,
    /// node → (`log_first`, `log_last`) of its last answer: where its log
    /// starts (retention) and ends.
    pub log_range: BTreeMap<u64, (u64, u64)>,
}

#[derive(Debug)]
pub struct Monitor {
    /// The node that leads the highest term seen (0: none known).
    pub leader: Arc<AtomicU64>,
    pub observed: Arc<Mutex<Observed>>,
    /// Per node (index id - 1): bumped by [`Monitor::forget`]; an answer
    /// asked for under an older generation is dropped.
    generation: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Observed {
    /// Takes one STATUS answer into account.
    pub fn note(&mut self, node: u64, role: &str, term: u64, leader: Option<u64>) {
        let prev = self.terms.entry(node).or_default();
        if term < *prev {
            self.violations.push(format!(
                "n{node}'s term went backwards: {term} after {}",
                *prev
            ));
        }
        *prev = (*prev).max(term);
        if role == "leader" {
            let set = self.leaders.entry(term).or_default();
            set.insert(node);
            if set.len() > 1 {
                self.violations
                    .push(format!("two leaders in term {term}: {set:?}"));
            }
        }
        let _ = leader;
        self.last.insert(node, (term, role == "leader"));
    }

    /// Takes one answer's `snapshot_installs` into account: a value below
    /// the last one is a new incarnation, whose count starts again at 0.
    /// (Missed: installs of an incarnation killed before any poll saw them,
    /// polled every 25 ms; the nodes' logs give the exact count too.)
    pub fn note_installs(&mut self, node: u64, n: u64) {
        let now = self.installs_now.entry(node).or_default();
        if n < *now {
            *self.installs_before.entry(node).or_default() += *now;
        }
        *now = n;
    }

    /// Snapshot installs seen, summed over nodes and incarnations.
    pub fn installs(&self) -> u64 {
        self.installs_before.values().sum::<u64>() + self.installs_now.values().sum::<u64>()
    }

    /// The leader of the highest term seen so far, if its last answer
    /// still says it leads that term (a restarted old leader does not, so
    /// it is not taken for the leader until a new one is seen).
    pub fn current_leader(&self) -> Option<u64> {
        let (term, set) = self.leaders.iter().next_back()?;
        let l = set.iter().next().copied()?;
        (self.last.get(&l) == Some(&(*term, true))).then_some(l)
    }
}

impl Monitor {
    /// One polling thread per node: a paused or lossy node costs its own
    /// thread a timeout, not everyone's view of who leads (polled in
    /// turn, five nodes behind timeouts hid a new leader for most of a
    /// second, and the leader faults waited for it).
    pub fn start(nodes: u64) -> Monitor {
        let leader = Arc::new(AtomicU64::new(0));
        let observed = Arc::new(Mutex::new(Observed::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let generation: Arc<Vec<AtomicU64>> =
            Arc::new((0..nodes).map(|_| AtomicU64::new(0)).collect());
        let threads = (1..=nodes)
            .map(|id| {
                let (l, o, s) = (leader.clone(), observed.clone(), stop.clone());
                let g = generation.clone();
                thread::spawn(move || {
                    while !s.load(Ordering::SeqCst) {
                        let asked = g[id as usize - 1].load(Ordering::SeqCst);
                        if let Some(st) = status(id, Duration::from_millis(STATUS_TIMEOUT_MS)) {
                            let mut obs = o.lock().unwrap();
                            if g[id as usize - 1].load(Ordering::SeqCst) != asked {
                                // Answered by the incarnation the harness just killed.
                                continue;
                            }
                            obs.note(id, &st.role, st.term, st.leader);
                            obs.note_installs(id, st.snapshot_installs);
                            obs.log_range.insert(id, (st.log_first, st.log_last));
                            obs.polls += 1;
                            // Who leads now: the newest term with a leader.
                            l.store(obs.current_leader().unwrap_or(0), Ordering::SeqCst);
                        }
                        thread::sleep(Duration::from_millis(POLL_MS));
                    }
                })
            })
            .collect();
        Monitor {
            leader,
            observed,
            generation,
            stop,
            threads,
        }
    }

    /// The harness crashed `node`: its last answer no longer tells who
    /// leads (a leader fault aimed at it after its restart would hit a
    /// follower), nor does any answer still in flight.
    pub fn forget(&self, node: u64) {
        self.generation[node as usize - 1].fetch_add(1, Ordering::SeqCst);
        let mut obs = self.observed.lock().unwrap();
        obs.last.remove(&node);
        self.leader
            .store(obs.current_leader().unwrap_or(0), Ordering::SeqCst);
    }

    /// Node `node`'s (`log_first`, `log_last`) from its last answer.
    pub fn log_range(&self, node: u64) -> Option<(u64, u64)> {
        self.observed.lock().unwrap().log_range.get(&node).copied()
    }

    /// The lowest `log_first` the nodes but `except` last reported (None
    /// until each has answered once): a node behind it can catch up from
    /// nobody's log, only by installing a snapshot.
    pub fn min_log_first(&self, except: u64) -> Option<u64> {
        let obs = self.observed.lock().unwrap();
        let firsts: Vec<u64> = (1..=self.generation.len() as u64)
            .filter(|&n| n != except)
            .map(|n| obs.log_range.get(&n).map(|r| r.0))
            .collect::<Option<_>>()?;
        firsts.into_iter().min()
    }

    pub fn leader(&self) -> Option<u64> {
        Some(self.leader.load(Ordering::SeqCst)).filter(|&l| l != 0)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backwards_terms_and_double_leaders_are_violations() {
        let mut o = Observed::default();
        o.note(1, "leader", 3, Some(1));
        o.note(2, "follower", 3, Some(1));
        o.note(2, "leader", 4, Some(2));
        assert!(o.violations.is_empty());
        assert_eq!(o.current_leader(), Some(2));
        o.note(1, "follower", 2, None);
        o.note(3, "leader", 4, Some(3));
        assert_eq!(o.violations.len(), 2, "{:?}", o.violations);
        // n3 leads term 4 until it answers as a follower (restarted).
        assert_eq!(o.current_leader(), Some(2));
        o.note(2, "follower", 4, None);
        assert_eq!(o.current_leader(), None);
    }

    #[test]
    fn installs_add_up_across_incarnations() {
        let mut o = Observed::default();
        o.note_installs(1, 1);
        o.note_installs(1, 2);
        o.note_installs(2, 1);
        // n1 restarted: its counter starts again.
        o.note_installs(1, 0);
        o.note_installs(1, 1);
        assert_eq!(o.installs(), 2 + 1 + 1);
    }
}
