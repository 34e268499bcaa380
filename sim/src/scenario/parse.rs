//! Reading a scenario file: TOML → validated `Scenario`.
//!
//! Unknown keys are errors (a typo must not silently change a scenario). Every
//! error names the line and the key: toml's syntax and type errors carry their
//! own span; semantic errors (a node that does not exist, two actions in one
//! entry) use the span of the timeline entry.

use super::file::FileDef;
use super::steps::step_action;
use super::{Scenario, Step};
use crate::net::NetOptions;
use crate::options::SimOptions;

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a missing key or a wrong type.
    #[error("{path}: {source}")]
    Toml {
        path: String,
        source: Box<toml::de::Error>,
    },
    /// A well-formed file that describes something impossible.
    #[error("{path}: line {line}, key `{key}`: {message}")]
    Invalid {
        path: String,
        line: usize,
        key: String,
        message: String,
    },
}

/// Context for semantic errors: file, source text, cluster size.
pub(super) struct Ctx<'a> {
    pub(super) path: &'a str,
    pub(super) src: &'a str,
    pub(super) nodes: usize,
}

impl Ctx<'_> {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())].matches('\n').count() + 1
    }

    pub(super) fn invalid(
        &self,
        offset: usize,
        key: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_string(),
            line: self.line_of(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// File node number (1-based) → index, or an error naming the key.
    pub(super) fn node(&self, at: usize, key: &str, n: usize) -> Result<usize, ScenarioError> {
        if n == 0 || n > self.nodes {
            let msg = format!("node {n} does not exist (nodes are 1..={})", self.nodes);
            return Err(self.invalid(at, key, msg));
        }
        Ok(n - 1)
    }

    pub(super) fn nodes_of(
        &self,
        at: usize,
        key: &str,
        v: &[usize],
    ) -> Result<Vec<usize>, ScenarioError> {
        v.iter().map(|&n| self.node(at, key, n)).collect()
    }
}

/// Parses and validates scenario text; `path` is used in messages and its
/// file stem is the default name.
pub fn parse(path: &str, src: &str) -> Result<Scenario, ScenarioError> {
    let def: FileDef = toml::from_str(src).map_err(|e| ScenarioError::Toml {
        path: path.to_string(),
        source: Box::new(e),
    })?;
    let nodes = *def.nodes.get_ref();
    let ctx = Ctx { path, src, nodes };
    if !(1..=64).contains(&nodes) {
        return Err(ctx.invalid(def.nodes.span().start, "nodes", "must be 1..=64"));
    }
    let options = options(&ctx, &def)?;
    let mut timeline = Vec::with_capacity(def.timeline.len());
    for (k, spanned) in def.timeline.iter().enumerate() {
        let at = spanned.span().start;
        let step = spanned.get_ref();
        let key = format!("timeline[{k}]");
        let action = step_action(&ctx, at, &key, step)?;
        timeline.push(Step {
            at_ms: step.at_ms,
            line: ctx.line_of(at),
            action,
        });
    }
    timeline.sort_by_key(|s| s.at_ms);
    let name = def.name.clone().unwrap_or_else(|| {
        std::path::Path::new(path)
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    Ok(Scenario {
        name,
        description: def.description.clone(),
        options,
        duration_ms: def.duration_ms,
        timeline,
    })
}

fn ppm(ctx: &Ctx<'_>, key: &str, p: f64) -> Result<u32, ScenarioError> {
    if !(0.0..=1.0).contains(&p) {
        let at = ctx
            .src
            .find(key.rsplit('.').next().unwrap_or(key))
            .unwrap_or(0);
        return Err(ctx.invalid(at, key, format!("{p} is not a probability in 0..=1")));
    }
    Ok((p * 1_000_000.0).round() as u32)
}

fn options(ctx: &Ctx<'_>, def: &FileDef) -> Result<SimOptions, ScenarioError> {
    let n = &def.network;
    Ok(SimOptions {
        seed: def.seed,
        nodes: ctx.nodes,
        heartbeat_interval_ms: def.timing.heartbeat_interval_ms,
        leader_timeout_ms: def.timing.leader_timeout_ms,
        max_batch_entries: def.timing.max_batch_entries,
        max_pending: 100_000,
        net: NetOptions {
            latency_ms: n.latency_ms,
            jitter_ms: n.jitter_ms,
            loss_ppm: ppm(ctx, "network.loss", n.loss)?,
            dup_ppm: ppm(ctx, "network.duplicate", n.duplicate)?,
            reorder_ppm: ppm(ctx, "network.reorder", n.reorder)?,
            peer_hints: n.peer_hints,
        },
        client_timeout_ms: def.clients.timeout_ms,
        client_switch_ppm: 0,
        bug: None,
        trace: false,
        async_fsync_ms: None,
        dedup_window: None,
        room_events_ppm: 0,
        snapshots: (def.timing.snapshot_every > 0)
            .then_some((def.timing.snapshot_every, def.timing.retain_entries)),
        retain_ms: 0,
        // Scenarios with room steps are people: their clients hold sessions.
        sessions: def
            .timeline
            .iter()
            .any(|s| s.get_ref().room.is_some() || s.get_ref().expect_online.is_some()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        "nodes = 3\nduration_ms = 100\n[[timeline]]\nat_ms = 5\ncrash = { node = 3 }\n";

    #[test]
    fn parses_a_minimal_file() {
        let s = parse("x/min.toml", OK).unwrap();
        assert_eq!(s.name, "min");
        assert_eq!(s.timeline.len(), 1);
        assert_eq!(s.timeline[0].line, 3);
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad = OK.replace("node = 3", "node = 4");
        let e = parse("f.toml", &bad).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("timeline[0].crash.node"),
            "{e}"
        );
        let typo = OK.replace("crash =", "crsh =");
        let e = parse("f.toml", &typo).unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("crsh"), "{e}");
        let two = format!("{OK}heal = {{}}\n");
        let e = parse("f.toml", &two).unwrap_err().to_string();
        assert!(e.contains("crash and heal"), "{e}");
    }
}
