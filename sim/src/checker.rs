//! The safety checker, consulted on every effect a node performs and after
//! every step (TigerBeetle-style: one canonical committed history that every
//! delivery is compared against; once a seq is in it, it never changes).
//!
//! Invariants checked:
//! - prefix agreement: every node delivers the canonical entry at every seq;
//! - contiguous delivery: a node's deliveries are last + 1, also across
//!   restarts (resuming at the recovered commit point, which may not exceed
//!   what the node had delivered before);
//! - no duplicate msg_id in the canonical history, or, where the run bounds
//!   the exactly-once window, none within it (`past_window`);
//! - validity: every chat in it was submitted by a simulated client, unchanged;
//! - no loss of acknowledged messages: a ChatAck's (msg_id, seq) is the
//!   canonical entry at seq, and one msg_id is never acked with two seqs;
//! - terms never decrease within an incarnation, and a term is durable before
//!   any message carries it, so a restarted node never recovers a term lower
//!   than one it used;
//! - numbering without holes: every delivered chat carries the seq_no and
//!   room_seq that the canonical history gives it (chats only, counted from
//!   1, per room from 1), and after every step each node's count of
//!   delivered chats is that of the canonical history up to its delivery
//!   point (also right after a restart, when the node rebuilt it);
//! - room state: every node's rooms (members, topics, creators) are the fold
//!   of the committed history up to where it delivered (checked whenever it
//!   has delivered all of it), and a room event is acknowledged only once
//!   committed, durably on a majority;
//! - at most one leader per term;
//! - persist-before-effect: a delivered entry is durable on the delivering node
//!   and on a majority; an acked chat is durable on a majority; an APPEND_ACK or
//!   SYNC_ACK describes only durable entries; a durable committed entry is never
//!   truncated. (Appending a different entry at a committed seq is not checked
//!   here: a deposed leader that has not heard of its successor may do so, and
//!   it can never commit it, which the delivery checks cover.)

use crate::storage::{Disk, EntryId};
use crate::workload::{Clients, MsgKey};
use chorus_core::record::Record;
use chorus_core::rooms::Rooms;
use chorus_core::snapshot::{fingerprint, Snapshot, SnapshotImage};
use chorus_core::{Body, Chat, Entry, NodeId, Numbers, PeerMsg, Role, Seq, Status, Term};
use std::collections::BTreeMap;
use std::fmt;

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at_ms: u64,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {} ms: {}", self.at_ms, self.what)
    }
}

/// Most violations kept per run (the first one is what matters).
const MAX_VIOLATIONS: usize = 16;

#[derive(Debug)]
pub struct Checker {
    majority: usize,
    /// Asynchronous disks: a node may deliver a committed entry before its
    /// own copy is durable (a majority's is).
    async_disks: bool,
    /// The canonical committed history, seq `s` at index `s - 1`.
    canon: Vec<Entry>,
    /// The numbers of each canonical entry, counted here independently.
    canon_numbers: Vec<Option<Numbers>>,
    /// Entries with a msg_id (chats and room events: what the exactly-once
    /// window counts) in the canonical history up to seq `s`, at `s - 1`.
    canon_ids: Vec<u64>,
    /// Canonical log index of chat seq_no `n` at `n - 1`.
    chat_index: Vec<Seq>,
    /// Chats per room in the canonical history.
    room_chats: BTreeMap<String, u64>,
    /// The room state of the canonical history (`chorus_core::rooms`).
    canon_rooms: Rooms,
    seq_of_key: BTreeMap<MsgKey, Seq>,
    /// Chat seq_no → the message acked with it.
    acked_at: BTreeMap<u64, MsgKey>,
    /// Per node: last seq delivered in this incarnation, and ever.
    delivered: Vec<Seq>,
    delivered_max: Vec<Seq>,
    /// Per node: the highest snapshot it saved (committed state it holds).
    snapshot_max: Vec<Seq>,
    /// Per node: highest term seen in this incarnation.
    term: Vec<Term>,
    /// Per node: highest term it ever put on the wire (must survive restarts).
    term_sent: Vec<Term>,
    leaders: BTreeMap<Term, NodeId>,
    violations: Vec<Violation>,
    /// The exactly-once window's bounds (ids, ms), if the run sets them.
    dedup_window: Option<(u64, u64)>,
    /// Retries committed again because their original was past the window.
    pub retries_past_window: u64,
    /// The earlier commits of ids committed again past the window.
    earlier_commits: BTreeMap<MsgKey, Vec<Seq>>,
}

fn fail(v: &mut Vec<Violation>, at_ms: u64, what: String) {
    if v.len() < MAX_VIOLATIONS {
        v.push(Violation { at_ms, what });
    }
}

/// How many of `disks` hold `id` at `seq` durably: as a log entry, or
/// covered by a saved snapshot (whose content `on_snapshot` checked against
/// the committed history; `canon` is the committed `id` at `seq`, if any).
fn durable_copies(disks: &[Disk], seq: Seq, id: EntryId, canon: Option<EntryId>) -> usize {
    disks
        .iter()
        .filter(|d| d.entry(seq) == Some(id) || (canon == Some(id) && d.covers(seq)))
        .count()
}

impl Checker {
    /// A checker for `n` voting nodes.
    pub fn new(n: usize) -> Checker {
        Checker {
            majority: n / 2 + 1,
            async_disks: false,
            canon: Vec::new(),
            canon_numbers: Vec::new(),
            canon_ids: Vec::new(),
            chat_index: Vec::new(),
            room_chats: BTreeMap::new(),
            canon_rooms: Rooms::default(),
            seq_of_key: BTreeMap::new(),
            acked_at: BTreeMap::new(),
            delivered: vec![Seq(0); n],
            delivered_max: vec![Seq(0); n],
            snapshot_max: vec![Seq(0); n],
            term: vec![Term(0); n],
            term_sent: vec![Term(0); n],
            leaders: BTreeMap::new(),
            violations: Vec::new(),
            dedup_window: None,
            retries_past_window: 0,
            earlier_commits: BTreeMap::new(),
        }
    }

    /// The run bounds the exactly-once window to `(ids, ms)`.
    pub fn with_dedup_window(mut self, window: Option<(u64, u64)>) -> Checker {
        self.dedup_window = window;
        self
    }

    /// True if a retry of a submission made at `submitted_ms`, with
    /// `between` ids committed between its first commit and its second, may
    /// be committed again at `now`: its original was past the window then. A
    /// node forgets an id only once `ids` newer ids are in its log, all of
    /// which are committed before the retry's entry (they precede it in the
    /// leader's log), or once it has held the id for `ms` (it learned the id
    /// after its submission, and the retry commits after it is appended).
    fn past_window(&self, between: u64, submitted_ms: u64, now: u64) -> bool {
        self.dedup_window
            .is_some_and(|(ids, ms)| between >= ids || now.saturating_sub(submitted_ms) >= ms)
    }

    /// Ids committed strictly between canonical seqs `a < b` (`b` may be
    /// past the history: then those up to its end).
    fn ids_between(&self, a: Seq, b: Option<Seq>) -> u64 {
        let at = |s: Seq| self.canon_ids.get(s.0 as usize - 1).copied().unwrap_or(0);
        let end = match b {
            Some(b) if (b.0 as usize) <= self.canon_ids.len() => at(b).saturating_sub(1),
            _ => self.canon_ids.last().copied().unwrap_or(0),
        };
        end.saturating_sub(at(a))
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a violation found outside the checker (a panic, a replay error,
    /// a liveness failure).
    pub fn report(&mut self, at_ms: u64, what: String) {
        fail(&mut self.violations, at_ms, what);
    }

    /// Length of the canonical committed history.
    pub fn canon_len(&self) -> Seq {
        Seq(self.canon.len() as u64)
    }

    pub fn canon(&self) -> &[Entry] {
        &self.canon
    }

    /// Chat messages (not room events) in the canonical history up to `seq`.
    pub fn chats_upto(&self, seq: Seq) -> usize {
        let end = (seq.0 as usize).min(self.canon.len());
        self.canon[..end]
            .iter()
            .filter(|e| e.message().is_some())
            .count()
    }

    /// After every step: terms only grow; one leader per term.
    pub fn on_status(&mut self, now: u64, i: usize, s: &Status) {
        if s.term < self.term[i] {
            let what = format!(
                "n{} term went back from {} to {}",
                i + 1,
                self.term[i],
                s.term
            );
            fail(&mut self.violations, now, what);
        }
        self.term[i] = s.term;
        if s.role == Role::Leader {
            let first = *self.leaders.entry(s.term).or_insert(s.id);
            if first != s.id {
                let what = format!("two leaders in {}: {first} and {}", s.term, s.id);
                fail(&mut self.violations, now, what);
            }
        }
    }

    /// After a step's actions were performed (its deliveries checked): the
    /// node's count of numbered chats is the committed history's up to where
    /// it delivered.
    pub fn on_numbered(&mut self, now: u64, i: usize, s: &Status) {
        let chats = self.chat_index.partition_point(|&x| x <= s.delivered_seq) as u64;
        if s.delivered_chats != chats {
            let what = format!(
                "n{} numbered {} chats up to {}, the committed history holds {chats}",
                i + 1,
                s.delivered_chats,
                s.delivered_seq
            );
            fail(&mut self.violations, now, what);
        }
    }

    /// Before `Persist(rec)` is applied to node `i`'s disk.
    pub fn on_persist(&mut self, now: u64, i: usize, rec: &Record, disk: &Disk) {
        match rec {
            Record::Truncate { from } if *from <= self.canon_len() => {
                let committed = EntryId::of(&self.canon[from.0 as usize - 1]);
                if disk.entry(*from) == Some(committed) {
                    let what = format!("n{} truncated committed entry {from}", i + 1);
                    fail(&mut self.violations, now, what);
                }
            }
            _ => {}
        }
    }

    /// Before node `i` sends `msg`: its term and what it acknowledges are durable.
    pub fn on_send(&mut self, now: u64, i: usize, msg: &PeerMsg, disk: &Disk) {
        self.term_sent[i] = self.term_sent[i].max(msg.term());
        if msg.term() > disk.term() {
            let what = format!(
                "n{} sent {} in {} before persisting that term (durable {})",
                i + 1,
                msg.kind(),
                msg.term(),
                disk.term()
            );
            fail(&mut self.violations, now, what);
        }
        let ok = match msg {
            PeerMsg::AppendAck { match_seq, .. } => *match_seq <= disk.last_seq(),
            // With asynchronous disks a SYNC_ACK leaves once the records
            // before it are durable, by which time later ones may be too:
            // its position must be in the durable log (entry and term), not
            // be the whole durable log.
            PeerMsg::SyncAck {
                last_seq,
                last_term,
                ..
            } if self.async_disks => durable_at(disk, *last_seq, *last_term),
            // Entries served to a requester are durable here, as they are.
            PeerMsg::CatchupResp { entries, .. } => entries
                .iter()
                .all(|e| disk.entry(e.seq_no) == Some(EntryId::of(e))),
            PeerMsg::SyncAck {
                last_seq,
                last_term,
                ..
            } => *last_seq == disk.last_seq() && disk.holds(*last_seq, *last_term),
            _ => true,
        };
        if !ok {
            let what = format!(
                "n{} sent {} for entries it has not persisted",
                i + 1,
                msg.kind()
            );
            fail(&mut self.violations, now, what);
        }
    }

    /// The disks are asynchronous (see `async_disks`).
    pub fn with_async_disks(mut self, on: bool) -> Checker {
        self.async_disks = on;
        self
    }

    /// Node `i` delivers `e`, numbered `numbers`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_deliver(
        &mut self,
        now: u64,
        i: usize,
        e: &Entry,
        numbers: Option<Numbers>,
        disks: &[Disk],
        clients: &Clients,
    ) {
        let seq = e.seq_no;
        let name = format!("n{}", i + 1);
        if seq != self.delivered[i].next() {
            let what = format!("{name} delivered {seq} after {}", self.delivered[i]);
            fail(&mut self.violations, now, what);
        }
        self.delivered[i] = seq;
        self.delivered_max[i] = self.delivered_max[i].max(seq);
        let id = EntryId::of(e);
        if !self.async_disks && disks[i].entry(seq) != Some(id) {
            let what = format!("{name} delivered {seq} before persisting it");
            fail(&mut self.violations, now, what);
        }
        let canon = self.canon.get(seq.0 as usize - 1).map(EntryId::of);
        let copies = durable_copies(disks, seq, id, canon);
        if copies < self.majority {
            let what = format!(
                "{name} delivered {seq} durable on {copies} nodes, fewer than a majority ({})",
                self.majority
            );
            fail(&mut self.violations, now, what);
        }
        let len = self.canon.len() as u64;
        if seq.0 <= len {
            let c = &self.canon[seq.0 as usize - 1];
            if c != e {
                let what = format!(
                    "{name} delivered {seq} {} {:?}, but {seq} is committed as {} {:?}",
                    e.term,
                    e.msg_id(),
                    c.term,
                    c.msg_id()
                );
                fail(&mut self.violations, now, what);
            }
        } else if seq.0 == len + 1 {
            self.extend_canon(now, e, clients);
        } else {
            let what = format!("{name} delivered {seq} beyond the committed history ({len})");
            fail(&mut self.violations, now, what);
        }
        let expect = self
            .canon_numbers
            .get(seq.0 as usize - 1)
            .copied()
            .flatten();
        if seq.0 <= self.canon.len() as u64 && numbers != expect {
            let what = format!(
                "{name} numbered {seq} {numbers:?}, the committed history gives {expect:?}"
            );
            fail(&mut self.violations, now, what);
        }
    }

    /// A new seq enters the canonical history: validity, no duplicates, acks.
    fn extend_canon(&mut self, now: u64, e: &Entry, clients: &Clients) {
        let seq = e.seq_no;
        self.canon.push(e.clone());
        let ids = self.canon_ids.last().copied().unwrap_or(0);
        self.canon_ids.push(ids + u64::from(e.msg_id().is_some()));
        self.canon_rooms.apply(e);
        let Body::Chat(chat) = &e.body else {
            self.canon_numbers.push(None);
            return;
        };
        if chat.event.is_some() {
            self.canon_numbers.push(None);
            self.check_submitted(now, seq, chat, clients);
            return;
        }
        self.chat_index.push(seq);
        let in_room = self.room_chats.entry(chat.room_id.clone()).or_insert(0);
        *in_room += 1;
        let chat_no = self.chat_index.len() as u64;
        self.canon_numbers.push(Some(Numbers {
            seq_no: chat_no,
            room_seq: *in_room,
        }));
        let Some(key) = self.check_submitted(now, seq, chat, clients) else {
            return;
        };
        if let Some(acked) = self.acked_at.get(&chat_no) {
            if *acked != key {
                let what =
                    format!("{acked} was acked as #{chat_no}, but {key} was committed as it");
                fail(&mut self.violations, now, what);
            }
        }
    }

    /// Validity and no duplicates for a submission entering the history at
    /// `seq`; its client key.
    fn check_submitted(
        &mut self,
        now: u64,
        seq: Seq,
        chat: &Chat,
        clients: &Clients,
    ) -> Option<MsgKey> {
        let Some(key) = MsgKey::parse(&chat.msg_id) else {
            let what = format!("{seq} holds msg_id {:?} no client submitted", chat.msg_id);
            fail(&mut self.violations, now, what);
            return None;
        };
        match clients.sent(key) {
            Some(s)
                if s.chat.room_id == chat.room_id
                    && s.chat.payload == chat.payload
                    && s.chat.sender_id == chat.sender_id
                    && s.chat.event == chat.event
                    && s.chat.user == chat.user => {}
            _ => {
                let what = format!("{seq} holds {key}, which differs from what was submitted");
                fail(&mut self.violations, now, what);
            }
        }
        if let Some(prev) = self.seq_of_key.insert(key, seq) {
            let between = self.ids_between(prev, Some(seq));
            let submitted = clients.sent(key).map_or(now, |s| s.submitted_ms);
            if self.past_window(between, submitted, now) {
                self.retries_past_window += 1;
                self.earlier_commits.entry(key).or_default().push(prev);
            } else {
                let what = format!("{key} committed twice: at {prev} and {seq}");
                fail(&mut self.violations, now, what);
            }
        }
        Some(key)
    }

    /// After a step of node `i`: if it delivered the whole committed history,
    /// its room state is that history's fold.
    pub fn on_rooms(&mut self, now: u64, i: usize, delivered: Seq, rooms: &Rooms) {
        if delivered != self.canon_len() || *rooms == self.canon_rooms {
            return;
        }
        let what = format!(
            "n{} room state at {delivered} differs from the fold of the committed history",
            i + 1
        );
        fail(&mut self.violations, now, what);
    }

    /// Node `i` answers a client: room event `msg_id` is committed, before
    /// chat `seq_no`. It answers just before it delivers the entry, so the
    /// event may be its next delivery.
    #[allow(clippy::too_many_arguments)]
    pub fn on_event_ack(
        &mut self,
        now: u64,
        i: usize,
        msg_id: &str,
        seq_no: u64,
        disks: &[Disk],
        clients: &mut Clients,
    ) {
        let Some(key) = MsgKey::parse(msg_id) else {
            let what = format!("n{} acked unknown msg_id {msg_id:?}", i + 1);
            fail(&mut self.violations, now, what);
            return;
        };
        // Where the event is committed: once; or, past a bounded window,
        // any of its commits or the node's next delivery (a retry's second
        // commit, acked just before it is delivered).
        let next = self.delivered[i].next();
        let mut commits: Vec<Seq> = self.earlier_commits.get(&key).cloned().unwrap_or_default();
        commits.push(self.seq_of_key.get(&key).copied().unwrap_or(next));
        if self.dedup_window.is_some() {
            commits.push(next);
        }
        let chats_before = |seq: Seq| self.chat_index.partition_point(|&x| x < seq) as u64;
        let seq = commits
            .iter()
            .copied()
            .find(|&s| chats_before(s) + 1 == seq_no)
            .unwrap_or(commits[0]);
        if let Some(before) = clients.ack(key, seq_no) {
            if before != seq_no && (self.dedup_window.is_none() || commits.len() < 2) {
                let what = format!("{key} acked before #{before} and later before #{seq_no}");
                fail(&mut self.violations, now, what);
            }
        }
        let chats_before = chats_before(seq);
        if seq_no != chats_before + 1 {
            let what = format!(
                "n{} acked event {key} ({seq}) before #{seq_no}, but {chats_before} chats precede it",
                i + 1
            );
            fail(&mut self.violations, now, what);
        }
        self.check_acked_durable(now, i, key, seq, disks, "event ");
    }

    /// Node `i` answers a client: `msg_id` is committed as chat `seq_no`.
    /// A node answers just before it delivers the entry, so `seq_no` may be
    /// one past the canonical history: then it is node `i`'s next delivery.
    #[allow(clippy::too_many_arguments)]
    pub fn on_ack(
        &mut self,
        now: u64,
        i: usize,
        msg_id: &str,
        seq_no: u64,
        disks: &[Disk],
        clients: &mut Clients,
    ) {
        let Some(key) = MsgKey::parse(msg_id) else {
            let what = format!("n{} acked unknown msg_id {msg_id:?}", i + 1);
            fail(&mut self.violations, now, what);
            return;
        };
        let submitted = clients.sent(key).map_or(now, |s| s.submitted_ms);
        if let Some(before) = clients.ack(key, seq_no) {
            // Past the window both commits are the msg_id's, and their
            // acks may arrive in either order (a node that still holds the
            // first one answers a late retry with it).
            let (lo, hi) = (before.min(seq_no), before.max(seq_no));
            let seq_of = |n: u64| self.chat_index.get((n as usize).wrapping_sub(1)).copied();
            let between = seq_of(lo).map_or(0, |a| self.ids_between(a, seq_of(hi)));
            if before != seq_no && !self.past_window(between, submitted, now) {
                let what = format!("{key} acked as #{before} and later as #{seq_no}");
                fail(&mut self.violations, now, what);
            }
        }
        if let Some(other) = self.acked_at.insert(seq_no, key) {
            if other != key {
                let what = format!("{other} and {key} both acked as #{seq_no}");
                fail(&mut self.violations, now, what);
            }
        }
        let chats = self.chat_index.len() as u64;
        let seq = match seq_no {
            0 => None,
            n if n <= chats => Some(self.chat_index[n as usize - 1]),
            n if n == chats + 1 => Some(self.delivered[i].next()),
            _ => None,
        };
        let Some(seq) = seq else {
            let what = format!(
                "n{} acked {key} as #{seq_no}, beyond the {chats} committed chats",
                i + 1
            );
            fail(&mut self.violations, now, what);
            return;
        };
        if let Some(c) = self.canon.get((seq.0 as usize).wrapping_sub(1)) {
            if c.msg_id() != Some(msg_id) {
                let what = format!(
                    "{key} acked as #{seq_no} ({seq}), but {seq} is {:?}",
                    c.msg_id()
                );
                fail(&mut self.violations, now, what);
            }
        }
        self.check_acked_durable(now, i, key, seq, disks, "");
    }

    /// An acknowledgement of `key` at `seq` by node `i` needs it durable on
    /// a majority (`what`: "event " for a room event's).
    fn check_acked_durable(
        &mut self,
        now: u64,
        i: usize,
        key: MsgKey,
        seq: Seq,
        disks: &[Disk],
        what: &str,
    ) {
        let canon_has = self
            .canon
            .get((seq.0 as usize).wrapping_sub(1))
            .is_some_and(|e| EntryId::of(e).key == Some(key));
        let copies = disks
            .iter()
            .filter(|d| {
                d.entry(seq).is_some_and(|e| e.key == Some(key)) || (canon_has && d.covers(seq))
            })
            .count();
        if copies < self.majority {
            let what = format!(
                "n{} acked {what}{key} at {seq} while only {copies} nodes had it durably",
                i + 1
            );
            fail(&mut self.violations, now, what);
        }
    }

    /// Node `i` saves a snapshot: it must be committed state, and exactly
    /// the committed history's folds at its seq (numbers, rooms, accounts,
    /// exactly-once ids).
    pub fn on_snapshot(&mut self, now: u64, i: usize, image: &SnapshotImage) {
        let name = format!("n{}", i + 1);
        let snap = match Snapshot::decode(&image.bytes) {
            Ok(s) => s,
            Err(e) => {
                let what = format!("{name} saved a snapshot it cannot read back: {e}");
                return fail(&mut self.violations, now, what);
            }
        };
        let seq = snap.seq;
        if seq > self.canon_len() || (snap.seq, snap.term) != (image.seq, image.term) {
            let what = format!(
                "{name} saved a snapshot at {seq} beyond the committed history ({})",
                self.canon_len()
            );
            return fail(&mut self.violations, now, what);
        }
        self.snapshot_max[i] = self.snapshot_max[i].max(seq);
        let upto = &self.canon[..seq.0 as usize];
        if snap.term != upto[upto.len() - 1].term {
            let what = format!("{name}'s snapshot at {seq} has term {}", snap.term);
            fail(&mut self.violations, now, what);
        }
        let chats = self.canon_numbers[..seq.0 as usize]
            .iter()
            .flatten()
            .last()
            .map_or(0, |n| n.seq_no);
        if snap.numbering.chats() != chats {
            let what = format!(
                "{name}'s snapshot at {seq} counts {} chats, the committed history {chats}",
                snap.numbering.chats()
            );
            fail(&mut self.violations, now, what);
        }
        if snap.rooms != Rooms::from_entries(upto) {
            let what =
                format!("{name}'s snapshot at {seq} holds other rooms than the committed history");
            fail(&mut self.violations, now, what);
        }
        for &(hi, lo, s) in &snap.dedup {
            let ok = s <= seq
                && s.0 > 0
                && upto[s.0 as usize - 1]
                    .msg_id()
                    .is_some_and(|id| fingerprint(id) == (hi, lo));
            if !ok {
                let what = format!("{name}'s snapshot at {seq} maps an exactly-once id to {s}, which is not that message");
                return fail(&mut self.violations, now, what);
            }
        }
    }

    /// Node `i` compacts its log before `before`: a saved snapshot covers it.
    pub fn on_compact(&mut self, now: u64, i: usize, before: Seq, disk: &Disk) {
        if before.0 > 1 && !disk.covers(Seq(before.0 - 1)) {
            let what = format!(
                "n{} compacted its log before {before} with no saved snapshot covering it",
                i + 1
            );
            fail(&mut self.violations, now, what);
        }
    }

    /// Node `i` installed a snapshot at `seq` (its log continues after it):
    /// delivery resumes after `seq`, which a saved snapshot must cover.
    /// True for an install, false for a restart's marker (`seq` recovered).
    pub fn on_install(&mut self, now: u64, i: usize, seq: Seq, disk: &Disk) -> bool {
        if !disk.covers(seq) || seq > self.canon_len() {
            let what = format!(
                "n{} installed a snapshot at {seq} without saving it first, or past the committed history",
                i + 1
            );
            fail(&mut self.violations, now, what);
        }
        if seq <= self.delivered[i] {
            // A restart's marker: the log file continues after the
            // snapshot it loaded (already delivered, or recovered).
            return false;
        }
        self.delivered[i] = seq;
        self.delivered_max[i] = self.delivered_max[i].max(seq);
        true
    }

    /// Node `i` restarted from `rec`: delivery resumes after the recovered
    /// commit point, which it must have delivered before.
    pub fn on_restart(&mut self, now: u64, i: usize, term: Term, commit: Seq) {
        if commit > self.delivered_max[i].max(self.snapshot_max[i]) {
            let what = format!(
                "n{} recovered commit point {} beyond anything it delivered ({})",
                i + 1,
                commit,
                self.delivered_max[i]
            );
            fail(&mut self.violations, now, what);
        }
        if term < self.term_sent[i] {
            let what = format!(
                "n{} restarted in {} after sending messages in {}",
                i + 1,
                term,
                self.term_sent[i]
            );
            fail(&mut self.violations, now, what);
        }
        self.delivered[i] = commit;
        self.term[i] = term;
    }
}

/// `disk`'s durable log holds position `(term, seq)` (seq 0: the empty log).
fn durable_at(disk: &Disk, seq: Seq, term: Term) -> bool {
    disk.holds(seq, term)
}
