//! The verdict, from durable state and client records only: every node's log
//! (read as `chorus log inspect` reads it), its newest snapshot, and every
//! CHAT_ACK a client got.
//!
//! Checked: (1) agreement — at every seq up to the highest commit point any
//! node records (log or snapshot), every log that still holds the seq holds
//! the same entry, and every node holds the whole committed prefix (in its
//! log, or below its log's start covered by its own snapshot: the cluster
//! converged); (2) every acknowledged msg_id sits at its acknowledged seq_no
//! (the client-visible chat number, `chorus_core::numbering`), with the
//! payload that was sent; (3) no msg_id is committed twice; (4) validity —
//! every committed chat was sent by a client, with that payload; (5) no
//! msg_id was acknowledged with two different seq_nos.
//!
//! With retention (`--retain-entries`) the logs start above seq 1: entries
//! 1..=K are gone from every log once every node compacted past K. Then the
//! snapshots stand in for them (`snapshot.rs`: the numbering's runs, which
//! give the chat number of any log index, and the exactly-once window, which
//! maps each msg_id's fingerprint to its log index):
//! - an acknowledged msg_id that no log holds any more must be in the newest
//!   snapshot's window, at a log index whose chat number is the acked seq_no;
//! - every snapshot agrees with the logs where they overlap (term at its seq,
//!   chat numbers and window ids of the entries still held) and with the
//!   newest snapshot (chat number of every index it covers, window ids);
//! - the newest snapshot's window holds one id per chat it numbers (a msg_id
//!   committed twice would leave one id for two chats), and each is the
//!   fingerprint of a msg_id some client sent.
//!
//! What cannot be checked for deleted history: payloads (a snapshot keeps
//! none), entry-by-entry agreement between nodes (each keeps only its own
//! snapshot), and which sender a deleted chat had; numbering, presence of
//! every acknowledged message, exactly-once and msg_id validity still are.

use super::clients::ClientLog;
use chorus_core::snapshot::{fingerprint, Fingerprint};
use chorus_core::{Body, Entry, Numbering, Seq, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

/// One node's recovered durable state.
#[derive(Debug)]
pub struct NodeLog {
    pub id: u64,
    /// Its log's entries, at seqs `start_seq + 1`, `start_seq + 2`, ….
    pub entries: Vec<Entry>,
    /// The last seq before its log's first entry: 0 for a whole log; K once
    /// retention deleted 1..=K, or after an install of a snapshot at K.
    pub start_seq: u64,
    pub commit_seq: u64,
    /// Its newest snapshot file that verifies, decoded.
    pub snapshot: Option<Snapshot>,
}

impl NodeLog {
    /// The last seq it holds (log or snapshot).
    fn last(&self) -> u64 {
        let log = self.start_seq + self.entries.len() as u64;
        log.max(self.snap_seq())
    }

    fn snap_seq(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.seq.0)
    }

    /// Its commit point: a snapshot is only ever of committed entries.
    fn commit(&self) -> u64 {
        self.commit_seq.max(self.snap_seq())
    }
}

/// What was checked (for the report).
#[derive(Debug, Default)]
pub struct Checked {
    pub committed_entries: u64,
    pub committed_chats: u64,
    pub acks_checked: u64,
    /// Seqs 1..=N are in no log any more (retention): checked through the
    /// snapshots only.
    pub deleted_everywhere: u64,
    /// Acknowledged messages found only through a snapshot's window.
    pub acks_by_snapshot: u64,
    /// Per node: (id, first seq its log holds, its snapshot's seq or 0).
    pub log_starts: Vec<(u64, u64, u64)>,
}

/// At most this many violations of one rule are listed.
const MAX_LISTED: usize = 10;

fn push(v: &mut Vec<String>, count: &mut usize, msg: String) {
    *count += 1;
    if *count <= MAX_LISTED {
        v.push(msg);
    }
}

/// The term of log index `i` from a snapshot's term runs, if they cover it.
fn run_term(s: &Snapshot, i: u64) -> Option<u64> {
    if i + 1 < s.first.0 || i > s.seq.0 {
        return None;
    }
    s.terms
        .iter()
        .rev()
        .find(|(start, _)| start.0 <= i)
        .map(|(_, t)| t.0)
}

/// Checks logs and snapshots against client records; returns the violations.
pub fn check(logs: &[NodeLog], clients: &[ClientLog]) -> (Checked, Vec<String>) {
    let mut v = Vec::new();
    let mut checked = Checked::default();
    let Some(best) = logs.iter().max_by_key(|l| (l.commit(), l.id)) else {
        return (checked, vec!["no node log to check".into()]);
    };
    let commit = best.commit();
    checked.committed_entries = commit;

    // (1) Agreement where logs overlap, and convergence. The canonical entry
    // of a seq is the best node's, else the first other log's holding it.
    let mut canon: BTreeMap<u64, (&Entry, u64)> = BTreeMap::new();
    let mut n = 0;
    let order = std::iter::once(best).chain(logs.iter().filter(|l| l.id != best.id));
    for l in order {
        checked
            .log_starts
            .push((l.id, l.start_seq + 1, l.snap_seq()));
        if let Some((i, e)) = l
            .entries
            .iter()
            .enumerate()
            .find(|(i, e)| e.seq_no.0 != l.start_seq + 1 + *i as u64)
        {
            push(
                &mut v,
                &mut n,
                format!(
                    "n{}'s log holds seq {} where seq {} belongs",
                    l.id,
                    e.seq_no.0,
                    l.start_seq + 1 + i as u64
                ),
            );
            continue;
        }
        if l.last() < commit {
            push(
                &mut v,
                &mut n,
                format!(
                    "n{} holds entries up to seq {}, but n{} committed {}: the cluster did not converge",
                    l.id,
                    l.last(),
                    best.id,
                    commit
                ),
            );
        }
        if l.start_seq > l.snap_seq() {
            push(
                &mut v,
                &mut n,
                format!(
                    "n{}'s log starts after seq {}, but its newest snapshot is at seq {}: history is lost",
                    l.id,
                    l.start_seq,
                    l.snap_seq()
                ),
            );
        }
        for e in l.entries.iter().take_while(|e| e.seq_no.0 <= commit) {
            match canon.get(&e.seq_no.0) {
                None => {
                    canon.insert(e.seq_no.0, (e, l.id));
                }
                Some((c, by)) if *c != e => {
                    push(
                        &mut v,
                        &mut n,
                        format!(
                            "n{} and n{by} disagree at seq {}: {e:?} vs {c:?}",
                            l.id, e.seq_no.0
                        ),
                    );
                    break;
                }
                Some(_) => {}
            }
        }
    }
    // The committed seqs some log still holds without a hole up to the
    // commit point: (held_from - 1, commit].
    let mut held_from = commit + 1;
    while held_from > 1 && canon.contains_key(&(held_from - 1)) {
        held_from -= 1;
    }
    if let Some((&hole_top, _)) = canon.range(..held_from).next_back() {
        push(
            &mut v,
            &mut n,
            format!(
                "no log holds seq {} to {}, below the commit point {commit}",
                hole_top + 1,
                held_from - 1
            ),
        );
    }
    checked.deleted_everywhere = held_from - 1;

    // The snapshots, newest first; the newest stands in for deleted history.
    let mut snaps: Vec<(u64, &Snapshot)> = logs
        .iter()
        .filter_map(|l| l.snapshot.as_ref().map(|s| (l.id, s)))
        .collect();
    snaps.sort_by_key(|(id, s)| (std::cmp::Reverse(s.seq), *id));
    if held_from > 1 && !snaps.iter().any(|(_, s)| s.seq.0 + 1 >= held_from) {
        push(
            &mut v,
            &mut n,
            format!(
                "seqs 1..={} are in no log and no snapshot reaches them",
                held_from - 1
            ),
        );
    }

    // (2)–(4) over what the logs hold: chat numbers from the fold (from
    // seq 1 when a log still starts there, else from the oldest snapshot
    // that reaches the held range, whose numbering's runs also number the
    // held entries at or below its seq).
    let mut sent: BTreeMap<&str, &str> = BTreeMap::new();
    for c in clients {
        for (id, p) in &c.sent {
            sent.insert(id, p);
        }
        for msg in c.conflicts.iter().take(MAX_LISTED) {
            v.push(msg.clone());
        }
    }
    let base: Option<&Snapshot> = if held_from == 1 {
        None
    } else {
        snaps
            .iter()
            .rev()
            .map(|(_, s)| *s)
            .find(|s| s.seq.0 + 1 >= held_from)
    };
    let mut numbering = base.map_or_else(Numbering::default, |s| s.numbering.clone());
    let fold_from = base.map_or(1, |s| s.seq.0 + 1);
    let mut at: BTreeMap<&str, u64> = BTreeMap::new();
    let mut chat_no: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut dups, mut invalid, mut numbers) = (0, 0, 0);
    if held_from == 1 || base.is_some() {
        for (&seq, (e, _)) in canon.range(held_from..) {
            let num = if seq >= fold_from {
                numbering.apply(e).map(|x| x.seq_no)
            } else {
                let b = base.expect("a base below the fold");
                let num = b.numbering.chat_number_at(Seq(seq));
                if num.is_some() != e.message().is_some() {
                    push(
                        &mut v,
                        &mut numbers,
                        format!(
                            "seq {seq}: the log's entry {e:?} and the snapshot at {} number it differently ({num:?})",
                            b.seq.0
                        ),
                    );
                }
                num
            };
            let (Body::Chat(c), Some(num)) = (&e.body, num) else {
                continue;
            };
            checked.committed_chats += 1;
            chat_no.insert(seq, num);
            if let Some(first) = at.insert(&c.msg_id, num) {
                push(
                    &mut v,
                    &mut dups,
                    format!(
                        "msg_id {} is committed twice: as #{first} and #{num}",
                        c.msg_id
                    ),
                );
            }
            match sent.get(c.msg_id.as_str()) {
                None => push(
                    &mut v,
                    &mut invalid,
                    format!("seq {seq} holds msg_id {}, which no client sent", c.msg_id),
                ),
                Some(p) if *p != c.payload => push(
                    &mut v,
                    &mut invalid,
                    format!(
                        "seq {seq} holds msg_id {} with payload {:?}; the client sent {:?}",
                        c.msg_id, c.payload, p
                    ),
                ),
                Some(_) => {}
            }
        }
    }

    // Every snapshot against the logs and against the newest one.
    let newest = snaps.first().map(|(_, s)| *s);
    let window: BTreeMap<Fingerprint, u64> = newest
        .map(|s| s.dedup.iter().map(|&(h, l, q)| ((h, l), q.0)).collect())
        .unwrap_or_default();
    for &(id, s) in &snaps {
        if let Some((e, by)) = canon.get(&s.seq.0) {
            if e.term != s.term {
                push(
                    &mut v,
                    &mut numbers,
                    format!(
                        "n{id}'s snapshot at seq {} names term {}, but n{by}'s log holds term {} there",
                        s.seq.0, s.term.0, e.term.0
                    ),
                );
            }
        }
        let ids: BTreeMap<u64, Fingerprint> =
            s.dedup.iter().map(|&(h, l, q)| (q.0, (h, l))).collect();
        for (&seq, (e, by)) in canon.range(..=s.seq.0) {
            if let Some(t) = run_term(s, seq).filter(|&t| t != e.term.0) {
                push(
                    &mut v,
                    &mut numbers,
                    format!(
                        "n{id}'s snapshot says seq {seq} is of term {t}; n{by}'s log holds {e:?}"
                    ),
                );
            }
            let want = chat_no.get(&seq).copied();
            let got = s.numbering.chat_number_at(Seq(seq));
            if seq >= held_from && want != got {
                push(
                    &mut v,
                    &mut numbers,
                    format!("n{id}'s snapshot numbers seq {seq} as {got:?}, the logs as {want:?}"),
                );
            }
            if let (Some(fp), Body::Chat(c)) = (ids.get(&seq), &e.body) {
                if *fp != fingerprint(&c.msg_id) {
                    push(
                        &mut v,
                        &mut numbers,
                        format!(
                            "n{id}'s snapshot has another msg_id than {} at seq {seq}",
                            c.msg_id
                        ),
                    );
                }
            }
        }
        let Some(top) = newest.filter(|t| t.seq > s.seq) else {
            continue;
        };
        if let Some(i) = (1..=s.seq.0)
            .find(|&i| s.numbering.chat_number_at(Seq(i)) != top.numbering.chat_number_at(Seq(i)))
        {
            push(
                &mut v,
                &mut numbers,
                format!(
                    "the snapshots at {} (n{id}) and {} disagree on the chat number of seq {i}",
                    s.seq.0, top.seq.0
                ),
            );
        }
        for &(h, l, q) in &s.dedup {
            if window.get(&(h, l)) != Some(&q.0) {
                push(
                    &mut v,
                    &mut numbers,
                    format!(
                        "n{id}'s snapshot at {} has a msg_id at seq {}, which the newest snapshot (at {}) places at {:?}",
                        s.seq.0, q.0, top.seq.0, window.get(&(h, l))
                    ),
                );
                break;
            }
        }
    }
    if let Some(top) = newest {
        // The chaos clients send chats only (no room or account events), so
        // every committed entry with a msg_id is a numbered chat: one window
        // id per chat number, unless a msg_id was committed twice.
        if window.len() as u64 != top.numbering.chats() {
            push(
                &mut v,
                &mut dups,
                format!(
                    "the newest snapshot (seq {}) numbers {} chats but its exactly-once window holds {} msg_ids: a msg_id was committed twice, or a chat lost its id",
                    top.seq.0,
                    top.numbering.chats(),
                    window.len()
                ),
            );
        }
        let sent_fps: BTreeSet<Fingerprint> = sent.keys().map(|id| fingerprint(id)).collect();
        for (fp, &seq) in &window {
            if seq < held_from && !sent_fps.contains(fp) {
                push(
                    &mut v,
                    &mut invalid,
                    format!("seq {seq} (deleted from every log) held a msg_id no client sent (by the snapshot's window)"),
                );
            }
        }
    }

    let mut lost = 0;
    for c in clients {
        for (id, &seq) in &c.acks {
            checked.acks_checked += 1;
            if let Some(&s) = at.get(id.as_str()) {
                if s != seq {
                    push(
                        &mut v,
                        &mut lost,
                        format!(
                            "msg_id {id} was acknowledged at seq {seq} but is committed at seq {s}"
                        ),
                    );
                }
                continue;
            }
            // Not in any log: deleted history, known by the newest snapshot.
            let found = window.get(&fingerprint(id)).filter(|&&i| i < held_from);
            match (found, newest) {
                (Some(&i), Some(top)) => {
                    checked.acks_by_snapshot += 1;
                    let num = top.numbering.chat_number_at(Seq(i));
                    if num != Some(seq) {
                        push(
                            &mut v,
                            &mut lost,
                            format!(
                                "msg_id {id} was acknowledged at seq {seq}, but the snapshot at {} numbers its entry (log index {i}) {num:?}",
                                top.seq.0
                            ),
                        );
                    }
                }
                _ => push(
                    &mut v,
                    &mut lost,
                    format!(
                        "msg_id {id} was acknowledged at seq {seq} but is not in the committed log \
                         nor in a snapshot (an acknowledged message was lost)"
                    ),
                ),
            }
        }
    }
    for (what, count) in [
        ("disagreements", n),
        ("duplicates", dups),
        ("invalid entries", invalid),
        ("numbering disagreements", numbers),
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
            start_seq: 0,
            commit_seq: commit,
            snapshot: None,
        }
    }

    /// The snapshot a node takes at `seq` of the log `all` (from seq 1).
    fn snap_of(all: &[Entry], seq: u64) -> Snapshot {
        let upto = &all[..seq as usize];
        let dedup = upto
            .iter()
            .filter_map(|e| e.message().map(|c| (fingerprint(&c.msg_id), e.seq_no)))
            .map(|((h, l), s)| (h, l, s))
            .collect();
        let mut rooms = chorus_core::rooms::Rooms::default();
        let mut accounts = chorus_core::Accounts::default();
        for e in upto {
            rooms.apply(e);
            accounts.apply(e);
        }
        let s = Snapshot {
            seq: Seq(seq),
            term: Term(1),
            first: Seq(1),
            terms: vec![(Seq(1), Term(1))],
            numbering: Numbering::from_entries(upto),
            rooms,
            accounts,
            dedup,
        };
        // Through the codec, as a node's file is read.
        Snapshot::decode(&s.encode()).expect("a valid snapshot")
    }

    /// A node whose log retention cut before `start + 1`, with its snapshot at `snap`.
    fn compacted(id: u64, all: &[Entry], start: u64, snap: u64, commit: u64) -> NodeLog {
        NodeLog {
            id,
            entries: all[start as usize..].to_vec(),
            start_seq: start,
            commit_seq: commit,
            snapshot: Some(snap_of(all, snap)),
        }
    }

    fn history(n: u64) -> (Vec<Entry>, Vec<(String, u64)>) {
        let mut e = vec![noop(1)];
        let mut acks = Vec::new();
        for s in 2..=n {
            e.push(chat(s, &format!("m{s}")));
            acks.push((format!("m{s}"), s - 1));
        }
        (e, acks)
    }

    fn client_of(acks: &[(String, u64)], extra: &[&str]) -> ClientLog {
        let mut c = ClientLog::default();
        for (id, s) in acks {
            c.sent.insert(id.clone(), format!("p-{id}"));
            c.acks.insert(id.clone(), *s);
        }
        for id in extra {
            c.sent.insert(id.to_string(), format!("p-{id}"));
        }
        c
    }

    #[test]
    fn compacted_logs_are_checked_through_the_snapshots() {
        let (all, acks) = history(40);
        // n1 compacted before 21 (snapshot at 30), n2 installed a snapshot
        // at 25 and holds 26.., n3 compacted before 11 (snapshot at 20).
        let logs = [
            compacted(1, &all, 20, 30, 40),
            compacted(2, &all, 25, 25, 40),
            compacted(3, &all, 10, 20, 40),
        ];
        let (c, v) = check(&logs, &[client_of(&acks, &[])]);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(c.deleted_everywhere, 10);
        assert_eq!(c.acks_by_snapshot, 9, "m2..=m10 only in the snapshots");
        assert_eq!(c.acks_checked, 39);
    }

    #[test]
    fn compaction_does_not_hide_a_lost_or_misnumbered_ack() {
        let (all, mut acks) = history(40);
        // An ack of a message no log nor snapshot holds.
        acks.push(("ghost".into(), 40));
        // An ack of a deleted message with the wrong number.
        acks[3].1 = 99;
        let logs = [
            compacted(1, &all, 20, 30, 40),
            compacted(2, &all, 20, 30, 40),
        ];
        let (_, v) = check(&logs, &[client_of(&acks, &[])]);
        assert!(
            v.iter()
                .any(|m| m.contains("msg_id ghost") && m.contains("lost")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|m| m.contains("msg_id m5 was acknowledged at seq 99")),
            "{v:?}"
        );
        // A log that starts past its snapshot lost history.
        let bad = [
            compacted(1, &all, 20, 30, 40),
            compacted(2, &all, 35, 30, 40),
        ];
        let (_, v) = check(&bad, &[client_of(&history(40).1, &[])]);
        assert!(v.iter().any(|m| m.contains("history is lost")), "{v:?}");
    }

    #[test]
    fn a_snapshot_that_disagrees_with_the_logs_is_caught() {
        let (all, acks) = history(40);
        // n2's snapshot was taken of another history: m12 and m13 swapped.
        let mut other = all.clone();
        other[11] = chat(12, "m13");
        other[12] = chat(13, "m12");
        let mut n2 = compacted(2, &all, 20, 30, 40);
        n2.snapshot = Some(snap_of(&other, 30));
        let logs = [compacted(1, &all, 10, 30, 40), n2];
        let (_, v) = check(&logs, &[client_of(&acks, &[])]);
        assert!(
            v.iter().any(|m| m.contains("another msg_id than m12")),
            "{v:?}"
        );
        // A duplicate in deleted history: fewer window ids than chats.
        let mut dup = all.clone();
        dup[5] = chat(6, "m3");
        let logs = [
            compacted(1, &dup, 20, 30, 40),
            compacted(2, &dup, 20, 30, 40),
        ];
        let (_, v) = check(&logs, &[client_of(&acks, &[])]);
        assert!(v.iter().any(|m| m.contains("committed twice")), "{v:?}");
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
