//! Validating one timeline entry: exactly one action, nodes that exist, and
//! expectations that make sense; errors name the entry's line and key.

use super::file::{RoleDef, StepDef};
use super::parse::{Ctx, ScenarioError};
use super::{Expect, StepAction};
use chorus_core::Role;

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

pub(super) fn step_action(
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
    if let Some(r) = &s.room {
        let node = ctx.node(at, &k("room.node"), r.node)?;
        let client = r.client.unwrap_or(r.node as u32);
        if client == 0 {
            return Err(ctx.invalid(at, &k("room.client"), "client numbers start at 1"));
        }
        let event = match r.event.as_str() {
            "join" => chorus_core::Event::Join,
            "leave" => chorus_core::Event::Leave,
            "topic" => chorus_core::Event::Topic,
            "nick" => chorus_core::Event::Nick,
            other => {
                let msg = format!("unknown event {other:?} (join, leave, topic or nick)");
                return Err(ctx.invalid(at, &k("room.event"), msg));
            }
        };
        let room = r.room.clone();
        let action = StepAction::Room {
            node,
            client,
            event,
            room,
        };
        found.push(("room", action));
    }
    if let Some(d) = &s.expect_room {
        let expect = Expect::Room {
            room: d.room.clone(),
            members: d.members.clone(),
            topic: d.topic.clone(),
        };
        let by_ms = d.by_ms;
        found.push(("expect_room", StepAction::Expect { expect, by_ms }));
    }
    if let Some(d) = &s.expect_online {
        let expect = Expect::Online {
            names: d.names.clone(),
        };
        let by_ms = d.by_ms;
        found.push(("expect_online", StepAction::Expect { expect, by_ms }));
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
