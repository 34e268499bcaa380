//! Drawing a swarm run's options from its seed (the Options stream): cluster
//! size 3–5, timings, network hostility, batch bounds, clients, and the pace
//! of faults. Bounds keep every run short and make liveness achievable.

use crate::net::NetOptions;
use crate::options::SimOptions;
use crate::seed::{below, between, rng, Stream};
use chorus_core::InjectedBug;

/// Options of one swarm run.
#[derive(Clone, Debug)]
pub struct SwarmOptions {
    pub sim: SimOptions,
    /// Length of the faulty phase.
    pub safety_ms: u64,
    /// Gap between fault decisions, drawn in this range.
    pub fault_gap_ms: (u64, u64),
    /// Chance (percent) that a crash is cut inside an action batch.
    pub mid_batch_pct: u64,
    pub clients: u32,
    pub messages: u32,
    /// Time allowed to converge once faults stop.
    pub liveness_bound_ms: u64,
    /// A node left down during the liveness phase (only a connected majority
    /// must converge then).
    pub leave_down: Option<usize>,
}

impl SwarmOptions {
    /// A one-line description for failure reports.
    pub fn describe(&self) -> String {
        let s = &self.sim;
        let n = &s.net;
        let mut d = format!(
            "nodes={} hb={}ms lt={}ms lat={}+{}ms batch={} pending={} clients={} msgs={} safety={}ms",
            s.nodes,
            s.heartbeat_interval_ms,
            s.leader_timeout_ms,
            n.latency_ms,
            n.jitter_ms,
            s.max_batch_entries,
            s.max_pending,
            self.clients,
            self.messages,
            self.safety_ms
        );
        if n.hostile() {
            d += &format!(
                " hostile(loss={}ppm dup={}ppm reorder={}ppm)",
                n.loss_ppm, n.dup_ppm, n.reorder_ppm
            );
        }
        if !n.peer_hints {
            d += " no-hints";
        }
        if let Some((lo, hi)) = s.async_fsync_ms {
            d += &format!(" async-fsync({lo}..={hi} ms)");
        }
        if s.room_events_ppm > 0 {
            d += &format!(" rooms({}ppm)", s.room_events_ppm);
        }
        if let Some((ids, ms)) = s.dedup_window {
            d += &format!(" dedup-window({ids} ids, {ms} ms)");
        }
        if let Some((every, retain)) = s.snapshots {
            d += &format!(" snapshots(every {every}, retain {retain})");
            if s.retain_ms > 0 {
                d += &format!(" retain-age({} ms)", s.retain_ms);
            }
        }
        if let Some(i) = self.leave_down {
            d += &format!(" n{}-down-in-liveness", i + 1);
        }
        d
    }
}

/// The options of swarm seed `seed`.
pub fn draw(seed: u64, bug: Option<InjectedBug>) -> SwarmOptions {
    let mut r = rng(seed, Stream::Options);
    let nodes = between(&mut r, 3, 5) as usize;
    let hb = between(&mut r, 20, 250);
    let lt = hb * between(&mut r, 3, 8);
    // One-way delay well under a heartbeat, so timeouts mean failures.
    let latency_ms = between(&mut r, 1, (hb / 6).clamp(1, 10));
    let jitter_ms = between(&mut r, 0, (hb / 6).min(10));
    let hostile = below(&mut r, 10) < 3;
    let ppm = |r: &mut _, max| {
        if hostile {
            between(r, 0, max) as u32
        } else {
            0
        }
    };
    let net = NetOptions {
        latency_ms,
        jitter_ms,
        loss_ppm: ppm(&mut r, 30_000),
        dup_ppm: ppm(&mut r, 30_000),
        reorder_ppm: ppm(&mut r, 100_000),
        peer_hints: below(&mut r, 2) == 0,
    };
    let max_batch_entries = [2, 8, 64, 1024][below(&mut r, 4) as usize];
    let client_timeout_ms = lt * between(&mut r, 2, 5);
    let sim = SimOptions {
        seed,
        nodes,
        heartbeat_interval_ms: hb,
        leader_timeout_ms: lt,
        max_batch_entries,
        // Sometimes tiny, so clients meet `Busy` and must retry.
        max_pending: if below(&mut r, 4) == 0 { 4 } else { 100_000 },
        net,
        client_timeout_ms,
        client_switch_ppm: if below(&mut r, 5) == 0 { 200_000 } else { 0 },
        bug,
        trace: false,
        async_fsync_ms: None,
        dedup_window: None,
        room_events_ppm: 0,
        sessions: false,
        snapshots: None,
        retain_ms: 0,
    };
    let safety_ms = lt * between(&mut r, 15, 40);
    let mut o = SwarmOptions {
        sim,
        safety_ms,
        fault_gap_ms: (lt / 2, lt * between(&mut r, 2, 5)),
        mid_batch_pct: between(&mut r, 20, 80),
        clients: between(&mut r, 1, 2 * nodes as u64) as u32,
        messages: between(&mut r, 5, 80) as u32,
        // Elections, then catch-up in small batches, then client retries.
        liveness_bound_ms: 40 * lt + 4 * client_timeout_ms + 5_000,
        leave_down: (below(&mut r, 4) == 0).then(|| below(&mut r, nodes as u64) as usize),
    };
    // Drawn last, so the options above keep their meaning per seed. Half the
    // seeds run the real runtime's disk: fsyncs that finish later (up to a
    // quarter heartbeat), acks that wait for them, the leader counting its
    // own copy only once durable.
    if below(&mut r, 2) == 0 {
        let mut hi = between(&mut r, 1, (hb / 4).max(1));
        // A third of those have a slow disk (an fsync up to a heartbeat, as
        // a loaded disk takes): messages then wait long enough for a leader
        // change, and the truncation it brings, to overtake them (the
        // window of issue 14, counted as `truncations_while_gated`).
        if below(&mut r, 3) == 0 {
            hi = between(&mut r, (hb / 2).max(1), hb);
        }
        o.sim.async_fsync_ms = Some((0, hi));
    }
    // Half the seeds are people in rooms: a tenth to two fifths of the
    // submissions are joins, leaves, topics and renames, and every client
    // holds a named session (presence).
    if below(&mut r, 2) == 0 {
        o.sim.room_events_ppm = between(&mut r, 100_000, 400_000) as u32;
        o.sim.sessions = true;
    }
    // Drawn last, for the same reason. A quarter of the seeds bound the
    // exactly-once window tightly (a few dozen ids, a few leader timeouts):
    // retries then also meet a window that has moved past their original,
    // and the checker holds the cluster to exactly-once within it.
    if below(&mut r, 4) == 0 {
        o.sim.dedup_window = Some((between(&mut r, 4, 40), lt * between(&mut r, 2, 20)));
    }
    // Drawn last, for the same reason. Half the seeds take snapshots every
    // few entries; two thirds of those also keep only a few entries of
    // history (retention), so a member that falls behind installs the
    // leader's snapshot (issue 16).
    if below(&mut r, 2) == 0 {
        let every = between(&mut r, 3, 20);
        let retain = if below(&mut r, 3) == 0 {
            0
        } else {
            between(&mut r, 1, 20)
        };
        o.sim.snapshots = Some((every, retain));
        // A third of them also bound history by age: a few leader timeouts.
        if below(&mut r, 3) == 0 {
            o.sim.retain_ms = lt * between(&mut r, 2, 10);
        }
    }
    o
}
