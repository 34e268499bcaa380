//! History answers and subscriptions, streamed from the core's log at the
//! client's reading pace (recent entries from the core's cache, older ones
//! read back from the log file through `cold.rs`).
//!
//! Invariants: only entries up to `delivered` (committed, durable, delivered
//! in order) are streamed; lines are produced only while the client has fewer
//! than `stream_low_water_bytes` unsent, so a slow reader costs no memory (it
//! simply falls behind); one stream scans at most `stream_scan_per_iteration`
//! entries per iteration. A connection's HISTORY answers run in request order,
//! each ending with HISTORY_END, before its subscription advances. A stream of
//! one room walks that room's index (the core's `Numbering`), so it reads
//! only the room's own entries.
//!
//! Fan-out: with thousands of subscribers, the work per iteration must not
//! grow with the number of *idle* streams, and a committed chat must not be
//! encoded once per subscriber. So streams are pumped only when something
//! can have changed for them (`StreamSet`: every stream when `delivered`
//! moved, else only the woken ones: new, out of scan budget, or whose
//! output drained below the low-water mark), and each chat line is encoded
//! once per dialect into `LineCache`, then copied into every subscriber's
//! output buffer.

use crate::conn::{Cursor, Role};
use crate::framing::{OutBuf, Overflow};
use crate::irc::IrcSession;
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::client_wire::{Delivered, SeedSeqChat, ServerLine};
use chorus_core::ErrorCode;
use chorus_core::{Node, Numbers, Seq};
use mio::Token;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tracing::warn;

/// Encoded chat lines kept for the subscribers that have not reached them.
/// Subscribers of one room move together, so a few hundred suffice; past
/// this, the oldest is dropped (and encoded again if someone needs it).
const LINE_CACHE_ENTRIES: usize = 1024;

/// The clients with a stream, and which of them to pump next.
#[derive(Debug, Default)]
pub(crate) struct StreamSet {
    all: BTreeSet<Token>,
    /// To pump at the next `pump_streams` even if nothing was delivered.
    wake: BTreeSet<Token>,
    /// Stopped at the low-water mark since then: woken once their output
    /// drains, disconnected if that takes `slow_subscriber_ms`.
    stalled: BTreeMap<Token, Instant>,
}

impl StreamSet {
    /// A client got a stream (HISTORY or SUBSCRIBE): pump it soon.
    pub(crate) fn insert(&mut self, t: Token) {
        self.all.insert(t);
        self.wake.insert(t);
    }

    pub(crate) fn remove(&mut self, t: &Token) {
        self.all.remove(t);
        self.wake.remove(t);
        self.stalled.remove(t);
    }

    /// Every client with a stream.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Token> {
        self.all.iter()
    }

    /// `t`'s output went below the low-water mark: a stalled stream resumes.
    pub(crate) fn drained(&mut self, t: Token) {
        if self.stalled.remove(&t).is_some() {
            self.wake.insert(t);
        }
    }

    /// When the longest-paused stream reaches `limit` (None: none paused).
    pub(crate) fn next_slow_deadline(&self, limit: Duration) -> Option<Instant> {
        self.stalled.values().min().map(|&since| since + limit)
    }

    /// The streams paused for `limit` or longer at `now`.
    fn slow(&self, now: Instant, limit: Duration) -> Vec<Token> {
        self.stalled
            .iter()
            .filter(|(_, &since)| since + limit <= now)
            .map(|(&t, _)| t)
            .collect()
    }

    /// Some stream has work without a new delivery (poll without waiting).
    pub(crate) fn has_woken(&self) -> bool {
        !self.wake.is_empty()
    }
}

/// A chat line as encoded once for every client of one dialect.
#[derive(Debug)]
struct Encoded {
    seq_no: u64,
    bytes: Vec<u8>,
}

/// Encoded lines by (log index, seed dialect); `None`: not a chat.
#[derive(Debug, Default)]
pub(crate) struct LineCache {
    lines: BTreeMap<(Seq, bool), Option<Encoded>>,
}

impl LineCache {
    fn get(&mut self, node: &mut Node, index: Seq, seed: bool) -> Option<&Encoded> {
        if !self.lines.contains_key(&(index, seed)) {
            if self.lines.len() >= LINE_CACHE_ENTRIES {
                self.lines.pop_first();
            }
            let enc = delivered_at(node, index).map(|d| Encoded {
                seq_no: d.seq_no,
                bytes: if seed {
                    encode(&SeedSeqChat::from_delivered(&d))
                } else {
                    encode(&ServerLine::SeqChat(d))
                },
            });
            self.lines.insert((index, seed), enc);
        }
        self.lines.get(&(index, seed)).and_then(Option::as_ref)
    }
}

/// The committed chat at log index `index` as clients see it (None for
/// other entries).
pub(crate) fn delivered_at(node: &mut Node, index: Seq) -> Option<Delivered> {
    let zero = Numbers {
        seq_no: 0,
        room_seq: 0,
    };
    let mut d = Delivered::from_entry(&*node.entry(index)?, zero)?;
    let n = node.numbering().numbers_at(&d.room_id, index)?;
    d.seq_no = n.seq_no;
    d.room_seq = n.room_seq;
    Some(d)
}

/// What one step of a cursor found.
enum Step {
    /// Nothing more is delivered yet.
    End,
    /// The entry at this log index was looked at (a chat or not).
    Saw(Seq),
}

/// The oldest history this node holds, once retention (or an installed
/// snapshot) removed what came before: (`seq_no`, the room's `room_seq`).
fn history_floor(node: &Node, cursor: &Cursor) -> (Option<u64>, Option<u64>) {
    let n = node.numbering();
    let first = n.first_seq_no();
    let room = match cursor {
        Cursor::Room { room, .. } => Some(n.first_room_seq(room)).filter(|&f| f > 1),
        _ => None,
    };
    ((first > 1).then_some(first), room)
}

/// Advances `cursor` by one entry, within what is `delivered`. A cursor
/// below the oldest history this node holds (deleted by retention, or
/// never held after an installed snapshot) moves up to it.
fn advance(node: &mut Node, cursor: &mut Cursor, delivered: Seq) -> Step {
    match cursor {
        Cursor::All(next) => {
            *next = (*next).max(node.first_seq());
            if *next > delivered {
                return Step::End;
            }
            let seq = *next;
            *next = seq.next();
            Step::Saw(seq)
        }
        Cursor::Rooms(rooms) => {
            let n = node.numbering();
            for (room, next) in rooms.iter_mut() {
                *next = (*next).max(n.first_room_seq(room));
            }
            let best = rooms
                .iter()
                .enumerate()
                .filter_map(|(k, (room, next))| n.room_index(room, *next).map(|i| (i, k)))
                .min();
            match best {
                Some((index, k)) if index <= delivered => {
                    rooms[k].1 += 1;
                    Step::Saw(index)
                }
                _ => Step::End,
            }
        }
        Cursor::Room { room, next } => {
            *next = (*next).max(node.numbering().first_room_seq(room));
            let Some(index) = node.numbering().room_index(room, *next) else {
                return Step::End;
            };
            if index > delivered {
                return Step::End;
            }
            *next += 1;
            Step::Saw(index)
        }
    }
}

/// Writes one full-dialect line: as is, or rendered for an IRC session
/// (which may make it several lines, or none).
fn push_full(
    out: &mut OutBuf,
    irc: Option<&mut IrcSession>,
    server: &str,
    line: &ServerLine,
    replay: bool,
) -> Result<(), Overflow> {
    match irc {
        Some(s) => {
            for bytes in crate::irc::render(s, server, line, replay) {
                out.push_line(&bytes)?;
            }
            Ok(())
        }
        None => out.push_line(&encode(line)),
    }
}

impl Runtime {
    /// Advances the client streams that can move: all of them when
    /// something new was delivered, else only the woken ones.
    pub(crate) fn pump_streams(&mut self) {
        let tokens: Vec<Token> = if self.delivered != self.pumped_delivered {
            self.pumped_delivered = self.delivered;
            self.streaming.wake.clear();
            self.streaming.all.iter().copied().collect()
        } else {
            std::mem::take(&mut self.streaming.wake)
                .into_iter()
                .collect()
        };
        for t in tokens {
            self.pump(t);
        }
    }

    /// Paced, then disconnected: a subscriber whose stream stayed paused
    /// (it does not read what it is sent) for `slow_subscriber_ms` loses its
    /// unsent lines and gets ERROR `slow_consumer` saying how to resume.
    /// The others never wait for it: each stream moves on its own.
    pub(crate) fn drop_slow_subscribers(&mut self) {
        let limit = Duration::from_millis(self.limits.slow_subscriber_ms);
        for token in self.streaming.slow(Instant::now(), limit) {
            self.streaming.remove(&token);
            let Some(c) = self.conns.get_mut(&token) else {
                continue;
            };
            c.out.drop_unsent_lines();
            self.metrics.slow_clients.inc();
            warn!(
                "{}: its stream waited {} ms for it to read; disconnecting (slow consumer)",
                c.label,
                limit.as_millis()
            );
            let msg = format!(
                "slow consumer: you read slower than your rooms are written, and your stream \
                 waited {} ms for you; the lines not yet sent are dropped and the connection \
                 is closed. Reconnect and SUBSCRIBE with from_seq = the seq_no after the last \
                 one you received",
                limit.as_millis()
            );
            self.fail_conn(token, ErrorCode::SlowConsumer, msg);
            // What is already queued (kernel buffers, at most the low-water
            // mark here) gets as long to drain as the stream waited, so a
            // reader that is slow but alive sees the ERROR before the close.
            if let Some(c) = self.conns.get_mut(&token) {
                c.deadline = Some(Instant::now() + limit);
            }
        }
    }

    fn pump(&mut self, token: Token) {
        let delivered = self.delivered;
        let delivered_chats = self.delivered_chats;
        let low_water = self.limits.stream_low_water_bytes;
        let mut scan = self.limits.stream_scan_per_iteration;
        let Some(c) = self.conns.get_mut(&token) else {
            self.streaming.remove(&token);
            return;
        };
        let Role::Client(st) = &mut c.role else {
            self.streaming.remove(&token);
            return;
        };
        let node = &mut self.node;
        let cache = &mut self.line_cache;
        let irc_server = self.irc.as_ref().map_or("", |i| i.name.as_str());
        let seed = st.is_seed();
        let mut wrote = false;
        let mut overflow = false;
        loop {
            if overflow {
                break;
            }
            if c.out.pending() >= low_water {
                self.streaming
                    .stalled
                    .entry(token)
                    .or_insert_with(Instant::now);
                break;
            }
            if scan == 0 {
                self.streaming.wake.insert(token);
                break;
            }
            // An IRC session's lines are rendered for it alone (its tags, its
            // own messages); JSON-line clients share one encoding per dialect.
            let replay = !st.history.is_empty();
            let pushed = if let Some(job) = st.history.front_mut() {
                let step = if job.remaining == 0 {
                    Step::End
                } else {
                    scan -= 1;
                    advance(node, &mut job.cursor, delivered)
                };
                match step {
                    Step::End => {
                        let exhausted = job.remaining > 0;
                        let next_seq = if exhausted {
                            job.next_seq_no.max(delivered_chats + 1)
                        } else {
                            job.next_seq_no
                        };
                        let (first_seq, first_room_seq) = history_floor(node, &job.cursor);
                        let end = ServerLine::HistoryEnd {
                            next_seq,
                            commit_seq: delivered_chats,
                            first_seq,
                            first_room_seq,
                        };
                        st.history.pop_front();
                        Some(push_full(
                            &mut c.out,
                            st.irc.as_deref_mut(),
                            irc_server,
                            &end,
                            replay,
                        ))
                    }
                    Step::Saw(index) if st.irc.is_some() => delivered_at(node, index).map(|d| {
                        job.remaining -= 1;
                        job.next_seq_no = d.seq_no + 1;
                        let line = ServerLine::SeqChat(d);
                        push_full(&mut c.out, st.irc.as_deref_mut(), irc_server, &line, replay)
                    }),
                    Step::Saw(index) => cache.get(node, index, false).map(|e| {
                        job.remaining -= 1;
                        job.next_seq_no = e.seq_no + 1;
                        c.out.push_line(&e.bytes)
                    }),
                }
            } else if let Some(sub) = &mut st.sub {
                scan -= 1;
                match advance(node, &mut sub.cursor, delivered) {
                    Step::End => break,
                    Step::Saw(index) if st.irc.is_some() => delivered_at(node, index)
                        .filter(|d| d.seq_no >= sub.min_seq_no)
                        .map(|d| {
                            let line = ServerLine::SeqChat(d);
                            push_full(&mut c.out, st.irc.as_deref_mut(), irc_server, &line, false)
                        }),
                    Step::Saw(index) => cache
                        .get(node, index, seed)
                        .filter(|e| e.seq_no >= sub.min_seq_no)
                        .map(|e| c.out.push_line(&e.bytes)),
                }
            } else {
                break;
            };
            if let Some(r) = pushed {
                overflow = r.is_err();
                wrote = true;
            }
        }
        if !st.has_streams() {
            self.streaming.remove(&token);
        }
        if overflow {
            self.close_conn(token, "output bound exceeded while streaming");
        } else if wrote {
            self.dirty.insert(token);
        }
    }
}
