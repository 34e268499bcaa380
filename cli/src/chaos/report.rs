//! The printed report of one chaos run: faults per kind, messages, snapshots
//! and installs, elections, availability, convergence, and every violation with the line that
//! reproduces the run.

use super::schedule::Kind;
use super::{Args, Outcome};

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

pub fn print(r: &Outcome, args: &Args, seed: u64) {
    let total: u64 = r.faults.values().sum();
    println!("\n== chorus chaos report (seed {seed:#x}) ==");
    println!("faults injected: {total} in {} s", args.duration);
    for k in Kind::ALL {
        println!(
            "  {:<34} {}",
            k.name(),
            r.faults.get(&k).copied().unwrap_or(0)
        );
    }
    println!(
        "node restarts: {}; unsynced log bytes dropped by power losses: {}",
        r.restarts, r.power_lost_bytes
    );
    if let Some(p) = &r.proxy {
        println!(
            "proxy: {} peer connections, {} bytes forwarded, {} chunks delayed, {} held by a stall, {} connections refused (target down or cut off)",
            p.connections, p.bytes, p.delayed_chunks, p.held_chunks, p.refused
        );
    }
    println!(
        "messages: {} sent, {} acknowledged, {} committed chats in the log, {} acks checked against every log ({} client attempts)",
        r.sent, r.acked, r.checked.committed_chats, r.checked.acks_checked, r.attempts
    );
    let sn = &r.snapshots;
    if args.retain_entries.is_some() || args.snapshot_every.is_some() || sn.saved > 0 {
        println!(
            "snapshots: {} saved, {} installs from a peer ({} seen by STATUS polls), {} log segment files deleted by retention (counts from the nodes' logs, every incarnation)",
            sn.saved, sn.installs_logged, sn.installs, sn.segments_deleted
        );
        let starts: Vec<String> = r
            .checked
            .log_starts
            .iter()
            .map(|(id, first, snap)| format!("n{id} {first} (snapshot {snap})"))
            .collect();
        println!("logs start at seq: {}", starts.join(", "));
        if let Some(o) = &r.outage {
            println!("long outage (to force an install): {o}");
        }
        let c = &r.checked;
        if c.deleted_everywhere > 0 {
            println!(
                "seqs 1..={} are in no log any more: checked through the newest snapshot only (chat numbers, every ack's presence and number, one id per chat, ids sent by a client), not their payloads, senders or entry-by-entry agreement; {} acks found that way",
                c.deleted_everywhere, c.acks_by_snapshot
            );
        }
    }
    if !r.errors.is_empty() {
        let e: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("ERROR answers (clients retried): {}", e.join(", "));
    }
    println!(
        "elections: {} terms with a leader seen, highest term {}; a leader known {}% of the fault phase",
        r.elections,
        r.max_term,
        (r.leader_known_ms * 100)
            .checked_div(args.duration * 1000)
            .unwrap_or(0)
    );
    println!(
        "longest unavailability (no client acknowledged anything): {}",
        secs(r.longest_unavailable_ms)
    );
    match r.converge_ms {
        Some(ms) => println!("converged {} after the heal", secs(ms)),
        None => println!(
            "did NOT converge within {} s after the heal",
            args.converge_timeout
        ),
    }
    if r.violations.is_empty() {
        println!("violations: 0");
    } else {
        println!("VIOLATIONS: {}", r.violations.len());
        for v in &r.violations {
            println!("  - {v}");
        }
        let mut broken = String::new();
        if args.unsafe_ack_before_fsync {
            broken.push_str(" --unsafe-ack-before-fsync");
        }
        if args.unsafe_skip_fsync {
            broken.push_str(" --unsafe-skip-fsync");
        }
        if !args.faults.is_empty() {
            let names: Vec<String> = args
                .faults
                .iter()
                .filter_map(clap::ValueEnum::to_possible_value)
                .map(|v| v.get_name().to_string())
                .collect();
            broken.push_str(&format!(" --faults {}", names.join(",")));
        }
        if args.fault_gap_ms != super::schedule::DEFAULT_GAP_MS {
            let (lo, hi) = args.fault_gap_ms;
            broken.push_str(&format!(" --fault-gap-ms {lo}-{hi}"));
        }
        if args.slow_fsync_ms > 0 {
            broken.push_str(&format!(" --slow-fsync-ms {}", args.slow_fsync_ms));
        }
        if args.no_power_loss {
            broken.push_str(" --no-power-loss");
        }
        if args.no_proxy {
            broken.push_str(" --no-proxy");
        }
        for (flag, v) in [
            ("--snapshot-every", args.snapshot_every),
            ("--retain-entries", args.retain_entries),
            ("--log-segment-bytes", args.log_segment_bytes),
        ] {
            if let Some(v) = v {
                broken.push_str(&format!(" {flag} {v}"));
            }
        }
        println!(
            "reproduce: chorus chaos --nodes {} --duration {} --clients {} --seed {seed:#x}{broken}",
            args.nodes, args.duration, args.clients
        );
        if let Some(dir) = &args.record {
            println!("recordings of this run (each node's own inputs, replayable exactly):");
            let mut all = String::new();
            for id in 1..=args.nodes {
                let d = dir.join(format!("node{id}"));
                println!(
                    "  n{id}: {}   replay: chorus sim replay {}",
                    d.display(),
                    d.display()
                );
                all.push_str(&format!(" {}", d.display()));
            }
            println!("  cross-node check: chorus sim replay{all}");
        }
    }
}
