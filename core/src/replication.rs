//! Ordering: the leader sequences entries, replicates them in batches, and
//! commits an entry once a majority of voters persisted it; followers append
//! after a matching predecessor, overwrite conflicting uncommitted suffixes,
//! and deliver only committed entries, contiguously and in seq order.

use crate::config::InjectedBug;
use crate::entry::{Body, Entry};
use crate::io::Action;
use crate::node::{Node, State, Timer};
use crate::record::Record;
use crate::types::{NodeId, Seq, Term};
use crate::wire::{ClientReply, PeerMsg};

impl Node {
    /// Leader: appends an entry of the current term; persisted before anything
    /// that follows in the batch (replication, acks, delivery).
    pub(crate) fn append_local(&mut self, body: Body, out: &mut Vec<Action>) -> Seq {
        let seq = self.log.last_seq().next();
        let entry = Entry {
            seq_no: seq,
            term: self.term,
            body,
        };
        if let Some(id) = entry.msg_id() {
            self.pending.remove(id);
        }
        out.push(Action::Persist(Record::Entry(entry.clone())));
        self.log.append(entry);
        seq
    }

    /// Leader, at the end of a batch: one SEQ_CHAT per bounded chunk of new entries.
    pub(crate) fn broadcast_new_entries(&mut self, out: &mut Vec<Action>) {
        let State::Leader(l) = &self.state else {
            return;
        };
        let mut next = l.replicated.next();
        let last = self.log.last_seq();
        let sent_any = next <= last;
        let to = self.others();
        while next <= last {
            let entries =
                self.log
                    .slice(next, self.cfg.max_batch_entries, self.cfg.max_batch_bytes);
            let prev_seq = Seq(next.0 - 1);
            let n = entries.len() as u64;
            if !to.is_empty() {
                let msg = PeerMsg::SeqChat {
                    sender_id: self.id(),
                    term: self.term,
                    prev_seq,
                    prev_term: self.log.term_at(prev_seq).expect("prev exists"),
                    commit_seq: self.commit_seq,
                    entries,
                };
                out.push(Action::Broadcast {
                    to: to.clone(),
                    msg,
                });
            }
            next = Seq(next.0 + n);
        }
        if let State::Leader(l) = &mut self.state {
            l.replicated = last;
            if sent_any {
                l.commit_sent = l.commit_sent.max(self.commit_seq);
            }
        }
        self.update_commit(out);
    }

    pub(crate) fn on_seq_chat(
        &mut self,
        from: NodeId,
        prev_seq: Seq,
        prev_term: Term,
        commit: Seq,
        entries: Vec<Entry>,
        out: &mut Vec<Action>,
    ) {
        if !self.accept_leader(from, out) {
            return;
        }
        self.leader_commit = self.leader_commit.max(commit);
        match self.apply_entries(prev_seq, prev_term, entries, out) {
            Some(matched) => {
                self.leader_match = self.leader_match.max(matched);
                self.follower_commit(commit, out);
                self.ack_dirty = true;
            }
            None => self.request_catchup(from, out),
        }
    }

    /// Appends `entries` after (`prev_seq`, `prev_term`) if our log has that
    /// predecessor; returns the highest seq now known to match the sender.
    /// A conflicting entry (same seq, other term) and everything after it are
    /// removed first; they are never committed (asserted).
    pub(crate) fn apply_entries(
        &mut self,
        prev_seq: Seq,
        prev_term: Term,
        entries: Vec<Entry>,
        out: &mut Vec<Action>,
    ) -> Option<Seq> {
        if self.log.term_at(prev_seq) != Some(prev_term) {
            return None;
        }
        let mut matched = prev_seq;
        for e in entries {
            if e.seq_no != matched.next() {
                break; // malformed batch: keep what matched so far
            }
            match self.log.term_at(e.seq_no) {
                Some(t) if t == e.term => {}
                Some(_) => {
                    assert!(
                        e.seq_no > self.commit_seq,
                        "a committed entry can never conflict (seq {})",
                        e.seq_no
                    );
                    if self.cfg.bug == Some(InjectedBug::TruncateCommitted) && self.commit_seq.0 > 0
                    {
                        self.truncate_from(self.commit_seq, out);
                        return None; // re-fetched by catch-up
                    }
                    self.truncate_from(e.seq_no, out);
                    self.append_replica(e, out);
                }
                None => self.append_replica(e, out),
            }
            matched = matched.next();
        }
        Some(matched)
    }

    fn append_replica(&mut self, e: Entry, out: &mut Vec<Action>) {
        if let Some(id) = e.msg_id() {
            self.pending.remove(id);
        }
        out.push(Action::Persist(Record::Entry(e.clone())));
        self.log.append(e);
    }

    /// Drops the uncommitted suffix from `from`; chats that clients here still
    /// wait for go back to pending so they are forwarded again.
    pub(crate) fn truncate_from(&mut self, from: Seq, out: &mut Vec<Action>) {
        out.push(Action::Persist(Record::Truncate { from }));
        let mut repended = false;
        let (waiting, pending) = (&self.waiting, &mut self.pending);
        self.log
            .for_each_from(from, self.cfg.max_batch_entries, |e| {
                if let Some(c) = e.chat() {
                    if waiting.contains_key(&c.msg_id) {
                        pending.insert(c.clone());
                        repended = true;
                    }
                }
            });
        self.log.truncate_from(from);
        self.leader_match = self.leader_match.min(Seq(from.0 - 1));
        self.own_durable = self.own_durable.min(Seq(from.0 - 1));
        // Chats this node accepted while it led never armed the forward timer,
        // and a client's retry only joins `waiting`: without the timer they
        // would stay pending forever (found by `chorus sim explore`, seed 0x96).
        if repended && !self.is_armed(Timer::Forward) {
            self.arm(Timer::Forward, self.cfg.leader_timeout_ms / 2);
        }
    }

    /// Follower: the commit point is the leader's, bounded by what we verified.
    pub(crate) fn follower_commit(&mut self, leader_commit: Seq, out: &mut Vec<Action>) {
        self.leader_commit = self.leader_commit.max(leader_commit);
        let to = leader_commit.min(self.leader_match);
        if to > self.commit_seq {
            self.advance_commit(to, out);
        }
    }

    /// Commits up to `to`, then delivers and answers waiting clients, in order.
    pub(crate) fn advance_commit(&mut self, to: Seq, out: &mut Vec<Action>) {
        assert!(to <= self.log.last_seq(), "commit beyond the log end");
        self.commit_seq = to;
        out.push(Action::Note(Record::Commit { seq: to }));
        if self.cfg.bug == Some(InjectedBug::DeliverPastGap) && to.0 > self.delivered_seq.0 + 1 {
            self.delivered_seq = self.delivered_seq.next();
        }
        while self.delivered_seq < to {
            let next = self.delivered_seq.next();
            if self.log.is_cached(next) {
                // One at a time, as cached: no batch vector on the hot path.
                let entry = self.log.get(next).expect("cached").into_owned();
                self.deliver(entry, out);
                continue;
            }
            // After a restart or a long commit lag the entries may have left
            // the cache: read them back a bounded batch at a time.
            let n = (to.0 - self.delivered_seq.0).min(self.cfg.max_batch_entries.max(1) as u64);
            let batch = self.log.slice(next, n as usize, usize::MAX);
            assert!(!batch.is_empty(), "committed entries present");
            for entry in batch {
                self.deliver(entry, out);
            }
        }
        self.maybe_snapshot(out);
    }

    /// Delivers the next committed entry and answers the clients waiting for it.
    fn deliver(&mut self, entry: Entry, out: &mut Vec<Action>) {
        let seq = entry.seq_no;
        assert_eq!(seq, self.delivered_seq.next(), "deliveries are contiguous");
        let numbers = self.numbering.apply(&entry);
        if let Some(c) = entry.chat() {
            self.newest_ts = self.newest_ts.max(c.ts_ms);
        }
        self.rooms.apply(&entry);
        self.accounts.apply(&entry);
        if let Some(id) = entry.msg_id() {
            self.pending.remove(id);
            for client in self.waiting.remove(id).unwrap_or_default() {
                let msg_id = id.to_string();
                let reply = match numbers {
                    Some(n) => ClientReply::ChatAck {
                        msg_id,
                        seq_no: n.seq_no,
                    },
                    // A room event: before the next chat number.
                    None => ClientReply::EventAck {
                        msg_id,
                        seq_no: self.numbering.chats() + 1,
                    },
                };
                out.push(Action::Reply { client, reply });
            }
        }
        out.push(Action::Deliver(entry, numbers));
        self.delivered_seq = seq;
    }

    pub(crate) fn on_append_ack(&mut self, from: NodeId, match_seq: Seq, out: &mut Vec<Action>) {
        let now = self.now;
        let State::Leader(l) = &mut self.state else {
            return;
        };
        l.heard.insert(from, now);
        let m = l.match_seq.entry(from).or_insert(Seq(0));
        if match_seq > *m {
            *m = match_seq;
            self.update_commit(out);
        }
    }

    /// Leader: the highest seq of the current term persisted by a majority.
    pub(crate) fn update_commit(&mut self, out: &mut Vec<Action>) {
        let State::Leader(l) = &self.state else {
            return;
        };
        let me = self.id();
        let mut matches: Vec<Seq> = self
            .cfg
            .voters
            .iter()
            .map(|&v| {
                let early = self.cfg.bug == Some(InjectedBug::LeaderCountsItselfEarly);
                if v == me && self.cfg.reports_durability && !early {
                    // Raft §10.2.1: the leader's own write may lag; it counts
                    // only once durable, so a commit is always durable on a
                    // majority (possibly without the leader).
                    self.log.last_seq().min(self.own_durable)
                } else if v == me {
                    self.log.last_seq()
                } else {
                    l.match_seq.get(&v).copied().unwrap_or(Seq(0))
                }
            })
            .collect();
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let mut n = matches[self.cfg.majority() - 1];
        if self.cfg.bug == Some(InjectedBug::CommitWithoutMajority) {
            n = self.log.last_seq();
        }
        if n > self.commit_seq && self.log.term_at(n) == Some(self.term) {
            self.advance_commit(n, out);
        }
    }
}
