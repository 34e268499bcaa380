//! The cross-node view of a real run: the simulator checker's invariants on
//! what each replayed node delivered, acknowledged and claimed, checked after
//! the fact over every node's recording.
//!
//! Checked (as in `checker.rs`):
//! - prefix agreement: all nodes deliver the same entry at every seq (the
//!   canonical history is the union of every delivery);
//! - contiguous delivery: within an incarnation a node delivers recovered
//!   commit + 1, + 2, … with no gap;
//! - no msg_id committed at two seqs;
//! - validity: every committed chat was received by some recorded node from
//!   a client (`Input::Client`), unchanged;
//! - acknowledgements: a ChatAck's (msg_id, seq) is the committed entry at
//!   seq, and a msg_id is never acked with two seqs;
//! - terms never decrease within an incarnation; at most one leader per term.
//!
//! Not checked here: durability on a majority (what a real disk kept is in
//! the log files, which `chorus chaos` checks itself) — a recording holds
//! the actions a node emitted, not which of them its kernel made durable.

use chorus_core::{Action, Body, Chat, ClientReply, ClientRequest, Entry, Input, Role, Status};
use std::collections::BTreeMap;

/// Most violations kept (the first ones are what matter).
const MAX_VIOLATIONS: usize = 32;

/// What one incarnation of one node did.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    pub node: u64,
    pub incarnation: u64,
    pub recovered_commit: u64,
    /// (now, entry) per Deliver, in order.
    pub delivered: Vec<(u64, Entry)>,
    /// (now, msg_id, seq) per ChatAck reply.
    pub acked: Vec<(u64, String, u64)>,
    /// Chats received from clients.
    pub submitted: Vec<Chat>,
    /// Terms this node led, with the time it was first seen leading.
    pub led: BTreeMap<u64, u64>,
    /// (now, from, to) when the term went down within the incarnation.
    pub term_regressions: Vec<(u64, u64, u64)>,
    last_term: u64,
}

impl RunFacts {
    pub fn new(node: u64, incarnation: u64, recovered_commit: u64) -> RunFacts {
        RunFacts {
            node,
            incarnation,
            recovered_commit,
            ..RunFacts::default()
        }
    }

    pub fn on_input(&mut self, input: &Input) {
        if let Input::Client {
            request: ClientRequest::Chat(c),
            ..
        } = input
        {
            self.submitted.push(c.clone());
        }
    }

    pub fn on_step(&mut self, now: u64, actions: &[Action], s: &Status) {
        for a in actions {
            match a {
                Action::Deliver(e) => self.delivered.push((now, e.clone())),
                Action::Reply {
                    reply: ClientReply::ChatAck { msg_id, seq_no },
                    ..
                } => self.acked.push((now, msg_id.clone(), seq_no.0)),
                _ => {}
            }
        }
        if s.term.0 < self.last_term {
            self.term_regressions.push((now, self.last_term, s.term.0));
        }
        self.last_term = s.term.0;
        if s.role == Role::Leader {
            self.led.entry(s.term.0).or_insert(now);
        }
    }
}

fn push(v: &mut Vec<String>, what: String) {
    if v.len() < MAX_VIOLATIONS {
        v.push(what);
    }
}

/// Checks every node's facts together; returns the violations found and the
/// length of the canonical history.
pub fn check(runs: &[&RunFacts]) -> (Vec<String>, u64) {
    let mut v = Vec::new();
    let mut canon: BTreeMap<u64, (u64, Entry)> = BTreeMap::new();
    for r in runs {
        let name = format!("n{} (incarnation {})", r.node, r.incarnation);
        let mut last = r.recovered_commit;
        for (now, e) in &r.delivered {
            let seq = e.seq_no.0;
            if seq != last + 1 {
                push(
                    &mut v,
                    format!("{name} at {now} ms: delivered {seq} after {last}"),
                );
            }
            last = seq;
            match canon.get(&seq) {
                Some((by, c)) if c != e => push(
                    &mut v,
                    format!(
                        "{name} at {now} ms: delivered {seq} {} {:?}, but n{by} delivered {} {:?} there",
                        e.term,
                        e.msg_id(),
                        c.term,
                        c.msg_id()
                    ),
                ),
                Some(_) => {}
                None => {
                    canon.insert(seq, (r.node, e.clone()));
                }
            }
        }
        for (now, from, to) in &r.term_regressions {
            push(
                &mut v,
                format!("{name} at {now} ms: term went down from {from} to {to}"),
            );
        }
    }
    // One leader per term.
    let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
    for r in runs {
        for term in r.led.keys() {
            match leaders.get(term) {
                Some(other) if *other != r.node => push(
                    &mut v,
                    format!("two leaders in term {term}: n{other} and n{}", r.node),
                ),
                _ => {
                    leaders.insert(*term, r.node);
                }
            }
        }
    }
    // No msg_id twice; validity.
    let mut seq_of: BTreeMap<&str, u64> = BTreeMap::new();
    let submitted: Vec<&Chat> = runs.iter().flat_map(|r| r.submitted.iter()).collect();
    for (seq, (_, e)) in &canon {
        let Body::Chat(c) = &e.body else { continue };
        if let Some(prev) = seq_of.insert(&c.msg_id, *seq) {
            push(
                &mut v,
                format!("{:?} committed twice: at {prev} and {seq}", c.msg_id),
            );
        }
        if !submitted.iter().any(|s| *s == c) {
            push(
                &mut v,
                format!(
                    "{seq} holds {:?}, which no recorded node received from a client as committed",
                    c.msg_id
                ),
            );
        }
    }
    // Acknowledgements.
    let mut acked_at: BTreeMap<&str, u64> = BTreeMap::new();
    for r in runs {
        for (now, msg_id, seq) in &r.acked {
            let name = format!("n{} at {now} ms", r.node);
            if let Some(before) = acked_at.insert(msg_id, *seq) {
                if before != *seq {
                    push(
                        &mut v,
                        format!("{name}: {msg_id:?} acked at {seq}, earlier at {before}"),
                    );
                }
            }
            match canon.get(seq).map(|(_, e)| e.msg_id()) {
                Some(Some(m)) if m == msg_id => {}
                Some(other) => push(
                    &mut v,
                    format!(
                        "{name}: acked {msg_id:?} at {seq}, but {seq} is committed as {other:?}"
                    ),
                ),
                None => push(
                    &mut v,
                    format!("{name}: acked {msg_id:?} at {seq}, which no recorded node delivered"),
                ),
            }
        }
    }
    (v, canon.len() as u64)
}
