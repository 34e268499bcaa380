//! The verdict, from durable logs and client records only: every node's log
//! (read as `chorus log inspect` reads it) and every CHAT_ACK a client got.
//!
//! Checked: (1) prefix agreement — every node's log holds, at every seq up to
//! the highest commit point any log records, the same entry as the most
//! advanced log (the cluster converged, so every node must hold all of it);
//! (2) every acknowledged msg_id sits at its acknowledged seq_no (the
//! client-visible chat number, `chorus_core::numbering`), with the
//! payload that was sent; (3) no msg_id is committed twice; (4) validity —
//! every committed chat was sent by a client, with that payload; (5) no
//! msg_id was acknowledged with two different seq_nos.

use super::clients::ClientLog;
use chorus_core::{Body, Entry, Numbering};
use std::collections::BTreeMap;

/// One node's recovered log.
#[derive(Debug)]
pub struct NodeLog {
    pub id: u64,
    pub entries: Vec<Entry>,
    pub commit_seq: u64,
}

/// What was checked (for the report).
#[derive(Debug, Default)]
pub struct Checked {
    pub committed_entries: u64,
    pub committed_chats: u64,
    pub acks_checked: u64,
}

/// At most this many violations of one rule are listed.
const MAX_LISTED: usize = 10;

fn push(v: &mut Vec<String>, count: &mut usize, msg: String) {
    *count += 1;
    if *count <= MAX_LISTED {
        v.push(msg);
    }
}

/// Checks logs against client records; returns the violations.
pub fn check(logs: &[NodeLog], clients: &[ClientLog]) -> (Checked, Vec<String>) {
    let mut v = Vec::new();
    let mut checked = Checked::default();
    let Some(best) = logs.iter().max_by_key(|l| (l.commit_seq, l.id)) else {
        return (checked, vec!["no node log to check".into()]);
    };
    let commit = best.commit_seq as usize;
    let canon = &best.entries[..commit.min(best.entries.len())];
    checked.committed_entries = canon.len() as u64;

    let mut n = 0;
    for l in logs {
        if l.entries.len() < canon.len() {
            push(
                &mut v,
                &mut n,
                format!(
                    "n{} holds {} entries, but n{} committed {}: the cluster did not converge",
                    l.id,
                    l.entries.len(),
                    best.id,
                    canon.len()
                ),
            );
        }
        if let Some((i, (a, b))) = l
            .entries
            .iter()
            .zip(canon)
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            push(
                &mut v,
                &mut n,
                format!(
                    "n{} and n{} disagree at seq {}: {:?} vs {:?}",
                    l.id,
                    best.id,
                    i + 1,
                    a,
                    b
                ),
            );
        }
    }

    let mut sent: BTreeMap<&str, &str> = BTreeMap::new();
    for c in clients {
        for (id, p) in &c.sent {
            sent.insert(id, p);
        }
        for msg in c.conflicts.iter().take(MAX_LISTED) {
            v.push(msg.clone());
        }
    }
    let mut at: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut dups, mut invalid) = (0, 0);
    // Acks name the client-visible seq_no, the fold the nodes compute.
    let mut numbering = Numbering::default();
    for e in canon {
        let numbers = numbering.apply(e);
        let (Body::Chat(c), Some(num)) = (&e.body, numbers) else {
            continue;
        };
        checked.committed_chats += 1;
        if let Some(first) = at.insert(&c.msg_id, num.seq_no) {
            push(
                &mut v,
                &mut dups,
                format!(
                    "msg_id {} is committed twice: as #{first} and #{}",
                    c.msg_id, num.seq_no
                ),
            );
        }
        match sent.get(c.msg_id.as_str()) {
            None => push(
                &mut v,
                &mut invalid,
                format!(
                    "seq {} holds msg_id {}, which no client sent",
                    e.seq_no.0, c.msg_id
                ),
            ),
            Some(p) if *p != c.payload => push(
                &mut v,
                &mut invalid,
                format!(
                    "seq {} holds msg_id {} with payload {:?}; the client sent {:?}",
                    e.seq_no.0, c.msg_id, c.payload, p
                ),
            ),
            Some(_) => {}
        }
    }

    let mut lost = 0;
    for c in clients {
        for (id, &seq) in &c.acks {
            checked.acks_checked += 1;
            match at.get(id.as_str()) {
                Some(&s) if s == seq => {}
                Some(&s) => push(
                    &mut v,
                    &mut lost,
                    format!(
                        "msg_id {id} was acknowledged at seq {seq} but is committed at seq {s}"
                    ),
                ),
                None => push(
                    &mut v,
                    &mut lost,
                    format!(
                    "msg_id {id} was acknowledged at seq {seq} but is not in the committed log \
                     (an acknowledged message was lost)"
                ),
                ),
            }
        }
    }
    for (what, count) in [
        ("disagreements", n),
        ("duplicates", dups),
        ("invalid entries", invalid),
        ("lost acks", lost),
    ] {
        if count > MAX_LISTED {
            v.push(format!("… {} {what} in all", count));
        }
    }
    (checked, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::{Chat, NodeId, Seq, Term};

    fn chat(seq: u64, id: &str) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: id.into(),
                room_id: "r".into(),
                sender_id: 1,
                user: None,
                payload: format!("p-{id}"),
                ts_ms: 0,
                event: None,
            }),
        }
    }

    fn noop(seq: u64) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(1),
            body: Body::Noop { leader: NodeId(1) },
        }
    }

    fn client(ids: &[&str], acks: &[(&str, u64)]) -> ClientLog {
        let mut c = ClientLog::default();
        for id in ids {
            c.sent.insert(id.to_string(), format!("p-{id}"));
        }
        for (id, s) in acks {
            c.acks.insert(id.to_string(), *s);
        }
        c
    }

    fn log(id: u64, entries: Vec<Entry>, commit: u64) -> NodeLog {
        NodeLog {
            id,
            entries,
            commit_seq: commit,
        }
    }

    #[test]
    fn a_converged_cluster_passes() {
        let e = vec![noop(1), chat(2, "a"), chat(3, "b")];
        let logs = [log(1, e.clone(), 3), log(2, e, 2)];
        // Acks name chat numbers: the no-op takes none.
        let (c, v) = check(&logs, &[client(&["a", "b", "c"], &[("a", 1), ("b", 2)])]);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!((c.committed_chats, c.acks_checked), (2, 2));
    }

    #[test]
    fn each_rule_is_caught() {
        let good = vec![noop(1), chat(2, "a"), chat(3, "b")];
        let clients = [client(&["a", "b"], &[("a", 1), ("b", 2)])];
        // A lost acknowledged message and a disagreement.
        let short = vec![noop(1), chat(2, "a"), chat(3, "x")];
        let (_, v) = check(
            &[log(1, short.clone(), 3), log(2, good.clone(), 2)],
            &clients,
        );
        assert!(v.iter().any(|m| m.contains("disagree at seq 3")), "{v:?}");
        assert!(
            v.iter().any(|m| m.contains("msg_id b was acknowledged")),
            "{v:?}"
        );
        assert!(v.iter().any(|m| m.contains("no client sent")), "{v:?}");
        // A duplicate.
        let dup = vec![noop(1), chat(2, "a"), chat(3, "b"), chat(4, "a")];
        let (_, v) = check(&[log(1, dup, 4)], &clients);
        assert!(v.iter().any(|m| m.contains("committed twice")), "{v:?}");
        // A node that did not catch up.
        let (_, v) = check(&[log(1, good, 3), log(2, vec![noop(1)], 1)], &clients);
        assert!(v.iter().any(|m| m.contains("did not converge")), "{v:?}");
    }
}
