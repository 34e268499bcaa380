//! `chorus sim replay DIR…`: a real node's recorded run, redone by a fresh
//! core, checked step for step against the recorded action digest, optionally
//! printed in the simulator's trace format, and (with several nodes) checked
//! after the fact by the cross-node invariants of `cross.rs`.
//!
//! Per incarnation: the base copy of the log goes through the core's own
//! recovery (`record::replay_into` into a `Log`), the node is built with the
//! recorded config and rng seed (`Node::from_log`, without a `ColdLog`: every
//! entry stays in memory, and a cold read returns what the cache would have),
//! then every recorded input is stepped at its recorded `now`. After each step
//! the chain of the produced actions must equal the recorded one; the first
//! step where it does not is the divergence, reported with its input, the
//! recorded action hashes and the produced actions (each marked with whether
//! its hash is the recorded one at that position). Replay stops there.

pub mod cross;
pub mod files;

use crate::trace;
use chorus_core::recording::{action_hash, chain_mix, Header, Step, CHAIN_START};
use chorus_core::{record, Action, Input, Log, Node, Status};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What to print besides the verdict.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayOptions {
    /// Build the trace (simulator format).
    pub trace: bool,
    /// Trace only steps `from..=to` (global step numbers, across incarnations).
    pub from: u64,
    pub to: u64,
}

/// The first step whose actions differ from the recording.
#[derive(Clone, Debug)]
pub struct Divergence {
    pub incarnation: u64,
    /// Step number within the incarnation, and across the whole recording.
    pub step: u64,
    pub global_step: u64,
    pub now_ms: u64,
    pub input: Input,
    /// Recorded: low 32 bits of each action's hash.
    pub expected: Vec<u32>,
    pub produced: Vec<Action>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "DIVERGED at step {} (incarnation {}, step {} of it, now {} ms)",
            self.global_step, self.incarnation, self.step, self.now_ms
        )?;
        writeln!(f, "  input: {:?}", self.input)?;
        let hashes: Vec<String> = self.expected.iter().map(|h| format!("{h:08x}")).collect();
        writeln!(
            f,
            "  recorded: {} actions, hashes [{}]",
            self.expected.len(),
            hashes.join(" ")
        )?;
        writeln!(f, "  produced: {} actions", self.produced.len())?;
        for (k, a) in self.produced.iter().enumerate() {
            let h = action_hash(a) as u32;
            let mark = if self.expected.get(k) == Some(&h) {
                "same"
            } else {
                "DIFFERS"
            };
            writeln!(f, "    [{k}] {h:08x} {mark}: {a:?}")?;
        }
        Ok(())
    }
}

/// One incarnation as replayed.
#[derive(Clone, Debug)]
pub struct RunReplay {
    pub incarnation: u64,
    pub node_id: u64,
    pub steps: u64,
    /// How reading stopped, if not at a clean end (torn tail, bad frame, gap).
    pub cut: Option<String>,
    /// Recovered commit point (delivery resumes after it).
    pub recovered_commit: u64,
    /// What the node did, for the cross-node check.
    pub facts: cross::RunFacts,
}

/// A node's whole recording, replayed.
#[derive(Debug, Default)]
pub struct NodeReplay {
    pub dir: PathBuf,
    pub runs: Vec<RunReplay>,
    pub divergence: Option<Divergence>,
    /// Why a run could not be replayed at all (no base, unreadable header).
    pub errors: Vec<String>,
    pub trace: String,
}

impl NodeReplay {
    pub fn steps(&self) -> u64 {
        self.runs.iter().map(|r| r.steps).sum()
    }
    pub fn identical(&self) -> bool {
        self.divergence.is_none() && self.errors.is_empty()
    }
}

/// Replays every incarnation recorded in `dir`, stopping at a divergence.
pub fn replay_dir(dir: &Path, opts: ReplayOptions) -> Result<NodeReplay, String> {
    let runs = files::runs(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if runs.is_empty() {
        return Err(format!(
            "{}: no recording here (expected run-*.rec files from `chorus node --record`)",
            dir.display()
        ));
    }
    let mut out = NodeReplay {
        dir: dir.to_path_buf(),
        ..NodeReplay::default()
    };
    let mut global = 0u64;
    for r in runs {
        if out.divergence.is_some() {
            break;
        }
        match replay_run(&r, opts, &mut global, &mut out) {
            Ok(run) => out.runs.push(run),
            Err(e) => out
                .errors
                .push(format!("incarnation {}: {e}", r.incarnation)),
        }
    }
    Ok(out)
}

/// The node an incarnation started as.
fn start_node(h: &Header, base: &Path) -> Result<(Node, u64), String> {
    let bytes = std::fs::read(base).map_err(|e| format!("{}: {e}", base.display()))?;
    if bytes.len() as u64 != h.base_len {
        return Err(format!(
            "{} holds {} bytes, the header says {}",
            base.display(),
            bytes.len(),
            h.base_len
        ));
    }
    let replayed = record::replay_into(&bytes, Log::new(h.config.log_cache_entries))
        .map_err(|e| format!("{}: {e}", base.display()))?;
    let commit = replayed.recovered.commit_seq.0;
    Ok((
        Node::from_log(h.config.clone(), replayed.recovered, h.rng_seed),
        commit,
    ))
}

/// The steps of an incarnation, segment by segment, with how reading ended.
fn read_steps(r: &files::RunFiles) -> Result<(Header, Vec<Step>, Option<String>), String> {
    let mut header: Option<Header> = None;
    let mut steps = Vec::new();
    let mut cut = None;
    let last = r.segments.len().saturating_sub(1);
    for (k, (seg, path)) in r.segments.iter().enumerate() {
        if *seg as usize != k {
            cut = Some(format!("segment {k} is missing (next is {seg})"));
            break;
        }
        let s = match files::read_segment(path) {
            Ok(s) => s,
            Err(e) if k > 0 => {
                cut = Some(e);
                break;
            }
            Err(e) => return Err(e),
        };
        if s.header.first_step != steps.len() as u64 {
            cut = Some(format!(
                "{} starts at step {}, but {} steps came before it",
                path.display(),
                s.header.first_step,
                steps.len()
            ));
            break;
        }
        header.get_or_insert(s.header);
        steps.extend(s.steps);
        if let Some(b) = s.bad {
            cut = Some(b);
            break;
        }
        if s.torn_bytes > 0 {
            let what = if k == last {
                "torn tail cut"
            } else {
                "torn frame inside the run (not its last segment)"
            };
            cut = Some(format!(
                "{what}: {} bytes of {}",
                s.torn_bytes,
                path.display()
            ));
            break;
        }
    }
    let header = header.ok_or("no segment")?;
    Ok((header, steps, cut))
}

fn replay_run(
    r: &files::RunFiles,
    opts: ReplayOptions,
    global: &mut u64,
    out: &mut NodeReplay,
) -> Result<RunReplay, String> {
    let (h, steps, cut) = read_steps(r)?;
    let base = r
        .base
        .as_ref()
        .ok_or("its base copy (run-*.base) is missing")?;
    let (mut node, recovered_commit) = start_node(&h, base)?;
    let id = h.config.me.node_id.0;
    let who = format!("n{id}");
    let mut facts = cross::RunFacts::new(id, h.incarnation, recovered_commit);
    let mut chain = CHAIN_START;
    let mut shown: Option<Status> = None;
    let mut acts = Vec::new();
    let mut n = 0u64;
    if opts.trace && *global <= opts.to {
        let _ = writeln!(
            out.trace,
            "# n{id} incarnation {} (recovered commit {recovered_commit}, step {})",
            h.incarnation, *global
        );
    }
    for s in steps {
        acts.clear();
        let input_for_report = s.input.clone();
        let label = if opts.trace {
            trace::input_text(&s.input)
        } else {
            None
        };
        let is_tick = s.input == Input::Tick;
        facts.on_input(&s.input);
        node.step(s.now, s.input, &mut acts);
        for a in &acts {
            chain = chain_mix(chain, action_hash(a));
        }
        let status = node.status();
        if chain != s.chain {
            out.divergence = Some(Divergence {
                incarnation: h.incarnation,
                step: n,
                global_step: *global,
                now_ms: s.now.0,
                input: input_for_report,
                expected: s.actions,
                produced: acts.clone(),
            });
            break;
        }
        facts.on_step(s.now.0, &acts, &status);
        if opts.trace && (opts.from..=opts.to).contains(global) {
            let now = s.now.0;
            if let Some(l) = label.filter(|_| !(is_tick && acts.is_empty())) {
                let _ = writeln!(out.trace, "{now:>6} {who} {l}");
            }
            for a in &acts {
                let _ = writeln!(out.trace, "{now:>6} {who} {}", trace::action_text(a));
            }
            let changed = shown.as_ref().is_none_or(|p| {
                (p.role, p.term, p.leader) != (status.role, status.term, status.leader)
            });
            if changed {
                let _ = writeln!(out.trace, "{now:>6} {who} {}", trace::role_text(&status));
            }
        }
        shown = Some(status);
        n += 1;
        *global += 1;
    }
    Ok(RunReplay {
        incarnation: h.incarnation,
        node_id: id,
        steps: n,
        cut,
        recovered_commit,
        facts,
    })
}
