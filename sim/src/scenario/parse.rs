//! Reading a scenario file: TOML → validated `Scenario`.
//!
//! Unknown keys are errors (a typo must not silently change a scenario). Every
//! error names the line and the key: toml's syntax and type errors carry their
//! own span; semantic errors (a node that does not exist, two actions in one
//! entry) use the span of the timeline entry.

use super::{Expect, Scenario, Step, StepAction};
use crate::net::NetOptions;
use crate::options::SimOptions;
use chorus_core::Role;
use serde::Deserialize;
use toml::Spanned;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "one")]
    seed: u64,
    nodes: Spanned<usize>,
    duration_ms: u64,
    #[serde(default)]
    timing: TimingDef,
    #[serde(default)]
    network: NetworkDef,
    #[serde(default)]
    clients: ClientsDef,
    #[serde(default)]
    timeline: Vec<Spanned<StepDef>>,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingDef {
    #[serde(default = "hb")]
    heartbeat_interval_ms: u64,
    #[serde(default = "lt")]
    leader_timeout_ms: u64,
    #[serde(default = "batch")]
    max_batch_entries: usize,
}
fn hb() -> u64 {
    200
}
fn lt() -> u64 {
    1000
}
fn batch() -> usize {
    1024
}
impl Default for TimingDef {
    fn default() -> Self {
        TimingDef {
            heartbeat_interval_ms: hb(),
            leader_timeout_ms: lt(),
            max_batch_entries: batch(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkDef {
    #[serde(default = "lat")]
    latency_ms: u64,
    #[serde(default = "jit")]
    jitter_ms: u64,
    #[serde(default = "yes")]
    peer_hints: bool,
    #[serde(default)]
    loss: f64,
    #[serde(default)]
    duplicate: f64,
    #[serde(default)]
    reorder: f64,
}
fn lat() -> u64 {
    1
}
fn jit() -> u64 {
    2
}
fn yes() -> bool {
    true
}
impl Default for NetworkDef {
    fn default() -> Self {
        NetworkDef {
            latency_ms: lat(),
            jitter_ms: jit(),
            peer_hints: true,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsDef {
    #[serde(default = "cto")]
    timeout_ms: u64,
}
fn cto() -> u64 {
    3000
}
impl Default for ClientsDef {
    fn default() -> Self {
        ClientsDef { timeout_ms: cto() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDef {
    at_ms: u64,
    chat: Option<ChatDef>,
    crash: Option<CrashDef>,
    restart: Option<NodeDef>,
    partition: Option<PartitionDef>,
    heal: Option<Empty>,
    expect_leader: Option<RoleDef>,
    expect_follower: Option<RoleDef>,
    expect_role: Option<RoleDef>,
    expect_delivered: Option<DeliveredDef>,
    expect_acked: Option<AckedDef>,
    expect_converged: Option<ByDef>,
    expect_coverage: Option<CoverageDef>,
    expect_no_commit: Option<NoCommitDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatDef {
    node: usize,
    #[serde(default = "one_u32")]
    count: u32,
    #[serde(default = "general")]
    room: String,
    client: Option<u32>,
    #[serde(default)]
    interval_ms: u64,
}
fn one_u32() -> u32 {
    1
}
fn general() -> String {
    "general".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashDef {
    node: usize,
    #[serde(default)]
    mid_batch: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeDef {
    node: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionDef {
    groups: Option<Vec<Vec<usize>>>,
    from: Option<Vec<usize>>,
    to: Option<Vec<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDef {
    node: usize,
    role: Option<String>,
    leader: Option<usize>,
    term: Option<u64>,
    by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveredDef {
    node: usize,
    count: usize,
    by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckedDef {
    count: usize,
    by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByDef {
    by_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverageDef {
    counter: String,
    #[serde(default = "one")]
    min: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoCommitDef {
    node: usize,
    until_ms: u64,
}

/// Context for semantic errors: file, source text, cluster size.
struct Ctx<'a> {
    path: &'a str,
    src: &'a str,
    nodes: usize,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())].matches('\n').count() + 1
    }

    fn invalid(&self, offset: usize, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_string(),
            line: self.line_of(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// File node number (1-based) → index, or an error naming the key.
    fn node(&self, at: usize, key: &str, n: usize) -> Result<usize, ScenarioError> {
        if n == 0 || n > self.nodes {
            let msg = format!("node {n} does not exist (nodes are 1..={})", self.nodes);
            return Err(self.invalid(at, key, msg));
        }
        Ok(n - 1)
    }

    fn nodes_of(&self, at: usize, key: &str, v: &[usize]) -> Result<Vec<usize>, ScenarioError> {
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
    })
}

fn role(ctx: &Ctx<'_>, at: usize, key: &str, name: &str) -> Result<Role, ScenarioError> {
    match name {
        "leader" => Ok(Role::Leader),
        "follower" => Ok(Role::Follower),
        "candidate" => Ok(Role::Candidate),
        other => Err(ctx.invalid(
            at,
            key,
            format!("unknown role {other:?} (leader, follower or candidate)"),
        )),
    }
}

fn role_expect(
    ctx: &Ctx<'_>,
    at: usize,
    key: &str,
    d: &RoleDef,
    fixed: Option<Role>,
) -> Result<StepAction, ScenarioError> {
    let node = ctx.node(at, &format!("{key}.node"), d.node)?;
    let role = match (fixed, &d.role) {
        (Some(r), None) => r,
        (None, Some(name)) => role(ctx, at, &format!("{key}.role"), name)?,
        (Some(_), Some(_)) => return Err(ctx.invalid(at, key, "`role` is implied here")),
        (None, None) => return Err(ctx.invalid(at, key, "missing `role`")),
    };
    let leader = match d.leader {
        Some(l) => Some(ctx.node(at, &format!("{key}.leader"), l)?),
        None => None,
    };
    Ok(StepAction::Expect {
        expect: Expect::Role {
            node,
            role,
            leader,
            term: d.term,
        },
        by_ms: d.by_ms,
    })
}

fn step_action(
    ctx: &Ctx<'_>,
    at: usize,
    key: &str,
    s: &StepDef,
) -> Result<StepAction, ScenarioError> {
    let mut found: Vec<(&str, StepAction)> = Vec::new();
    let k = |name: &str| format!("{key}.{name}");
    if let Some(c) = &s.chat {
        let node = ctx.node(at, &k("chat.node"), c.node)?;
        if c.count == 0 {
            return Err(ctx.invalid(at, &k("chat.count"), "must be at least 1"));
        }
        let client = c.client.unwrap_or(c.node as u32);
        if client == 0 {
            return Err(ctx.invalid(at, &k("chat.client"), "client numbers start at 1"));
        }
        let action = StepAction::Chat {
            node,
            client,
            count: c.count,
            room: c.room.clone(),
            interval_ms: c.interval_ms,
        };
        found.push(("chat", action));
    }
    if let Some(c) = &s.crash {
        let node = ctx.node(at, &k("crash.node"), c.node)?;
        let mid_batch = c.mid_batch;
        found.push(("crash", StepAction::Crash { node, mid_batch }));
    }
    if let Some(r) = &s.restart {
        let node = ctx.node(at, &k("restart.node"), r.node)?;
        found.push(("restart", StepAction::Restart { node }));
    }
    if let Some(p) = &s.partition {
        let action = match (&p.groups, &p.from, &p.to) {
            (Some(g), None, None) => {
                let mut groups = Vec::new();
                let mut seen = vec![false; ctx.nodes];
                for grp in g {
                    let idx = ctx.nodes_of(at, &k("partition.groups"), grp)?;
                    for &i in &idx {
                        if std::mem::replace(&mut seen[i], true) {
                            let msg = format!("node {} is in two groups", i + 1);
                            return Err(ctx.invalid(at, &k("partition.groups"), msg));
                        }
                    }
                    groups.push(idx);
                }
                StepAction::Partition { groups }
            }
            (None, Some(f), Some(t)) => StepAction::Cut {
                from: ctx.nodes_of(at, &k("partition.from"), f)?,
                to: ctx.nodes_of(at, &k("partition.to"), t)?,
            },
            _ => {
                let msg = "give either `groups` (symmetric) or `from` and `to` (one-way)";
                return Err(ctx.invalid(at, &k("partition"), msg));
            }
        };
        found.push(("partition", action));
    }
    if s.heal.is_some() {
        found.push(("heal", StepAction::Heal));
    }
    if let Some(d) = &s.expect_leader {
        let a = role_expect(ctx, at, &k("expect_leader"), d, Some(Role::Leader))?;
        found.push(("expect_leader", a));
    }
    if let Some(d) = &s.expect_follower {
        let a = role_expect(ctx, at, &k("expect_follower"), d, Some(Role::Follower))?;
        found.push(("expect_follower", a));
    }
    if let Some(d) = &s.expect_role {
        found.push((
            "expect_role",
            role_expect(ctx, at, &k("expect_role"), d, None)?,
        ));
    }
    if let Some(d) = &s.expect_delivered {
        let node = ctx.node(at, &k("expect_delivered.node"), d.node)?;
        let expect = Expect::Delivered {
            node,
            count: d.count,
        };
        let by_ms = d.by_ms;
        found.push(("expect_delivered", StepAction::Expect { expect, by_ms }));
    }
    if let Some(d) = &s.expect_acked {
        let expect = Expect::Acked { count: d.count };
        let by_ms = d.by_ms;
        found.push(("expect_acked", StepAction::Expect { expect, by_ms }));
    }
    if let Some(d) = &s.expect_converged {
        let (expect, by_ms) = (Expect::Converged, d.by_ms);
        found.push(("expect_converged", StepAction::Expect { expect, by_ms }));
    }
    if let Some(d) = &s.expect_coverage {
        if crate::coverage::Coverage::default()
            .get(&d.counter)
            .is_none()
        {
            let names: Vec<_> = crate::coverage::Coverage::default()
                .counters()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let msg = format!(
                "unknown counter {:?} (one of {})",
                d.counter,
                names.join(", ")
            );
            return Err(ctx.invalid(at, &k("expect_coverage.counter"), msg));
        }
        let expect = Expect::Coverage {
            counter: d.counter.clone(),
            min: d.min,
        };
        found.push((
            "expect_coverage",
            StepAction::Expect {
                expect,
                by_ms: None,
            },
        ));
    }
    if let Some(d) = &s.expect_no_commit {
        let node = ctx.node(at, &k("expect_no_commit.node"), d.node)?;
        if d.until_ms < s.at_ms {
            let msg = "until_ms is before at_ms";
            return Err(ctx.invalid(at, &k("expect_no_commit.until_ms"), msg));
        }
        let until_ms = d.until_ms;
        found.push((
            "expect_no_commit",
            StepAction::ExpectNoCommit { node, until_ms },
        ));
    }
    if let Some(by) = by_ms_of(&found) {
        if by < s.at_ms {
            return Err(ctx.invalid(at, &k("by_ms"), "by_ms is before at_ms"));
        }
    }
    match found.len() {
        1 => Ok(found.pop().expect("one").1),
        0 => Err(ctx.invalid(
            at,
            key,
            "no action: give one of chat, crash, restart, partition, heal, expect_*",
        )),
        _ => {
            let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
            let msg = format!("one action per entry, found {}", names.join(" and "));
            Err(ctx.invalid(at, key, msg))
        }
    }
}

fn by_ms_of(found: &[(&str, StepAction)]) -> Option<u64> {
    found.iter().find_map(|(_, a)| match a {
        StepAction::Expect { by_ms, .. } => *by_ms,
        _ => None,
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
