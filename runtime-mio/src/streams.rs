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

use crate::conn::{Cursor, Role};
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::client_wire::{Delivered, SeedSeqChat, ServerLine};
use chorus_core::{Node, Numbers, Seq};
use mio::Token;

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

/// A line of either dialect.
enum Line {
    Full(ServerLine),
    Seed(SeedSeqChat),
}

/// What one step of a cursor found.
enum Step {
    /// Nothing more is delivered yet.
    End,
    /// An entry was looked at (a chat, or not: `None`).
    Saw(Option<Delivered>),
}

/// Advances `cursor` by one entry, within what is `delivered`.
fn advance(node: &mut Node, cursor: &mut Cursor, delivered: Seq) -> Step {
    match cursor {
        Cursor::All(next) => {
            if *next > delivered {
                return Step::End;
            }
            let seq = *next;
            *next = seq.next();
            Step::Saw(delivered_at(node, seq))
        }
        Cursor::Rooms(rooms) => {
            let n = node.numbering();
            let best = rooms
                .iter()
                .enumerate()
                .filter_map(|(k, (room, next))| n.room_index(room, *next).map(|i| (i, k)))
                .min();
            match best {
                Some((index, k)) if index <= delivered => {
                    rooms[k].1 += 1;
                    Step::Saw(delivered_at(node, index))
                }
                _ => Step::End,
            }
        }
        Cursor::Room { room, next } => {
            let Some(index) = node.numbering().room_index(room, *next) else {
                return Step::End;
            };
            if index > delivered {
                return Step::End;
            }
            *next += 1;
            Step::Saw(delivered_at(node, index))
        }
    }
}

impl Runtime {
    /// Advances every client stream as far as its buffer and budget allow.
    pub(crate) fn pump_streams(&mut self) {
        self.pump_again = false;
        let tokens: Vec<Token> = self.streaming.iter().copied().collect();
        for t in tokens {
            self.pump(t);
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
        let irc_server = self.irc.as_ref().map_or("", |i| i.name.as_str());
        let seed = st.is_seed();
        let mut wrote = false;
        let mut overflow = false;
        while c.out.pending() < low_water && !overflow {
            if scan == 0 {
                self.pump_again = true;
                break;
            }
            let replay = !st.history.is_empty();
            let line = if let Some(job) = st.history.front_mut() {
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
                        let end = ServerLine::HistoryEnd {
                            next_seq,
                            commit_seq: delivered_chats,
                        };
                        st.history.pop_front();
                        Some(Line::Full(end))
                    }
                    Step::Saw(d) => d.map(|d| {
                        job.remaining -= 1;
                        job.next_seq_no = d.seq_no + 1;
                        Line::Full(ServerLine::SeqChat(d))
                    }),
                }
            } else if let Some(sub) = &mut st.sub {
                scan -= 1;
                match advance(node, &mut sub.cursor, delivered) {
                    Step::End => break,
                    Step::Saw(d) => d.filter(|d| d.seq_no >= sub.min_seq_no).map(|d| {
                        if seed {
                            Line::Seed(SeedSeqChat::from_delivered(&d))
                        } else {
                            Line::Full(ServerLine::SeqChat(d))
                        }
                    }),
                }
            } else {
                break;
            };
            if let Some(l) = line {
                let lines = match (&l, st.irc.as_deref_mut()) {
                    (Line::Full(l), Some(s)) => crate::irc::render(s, irc_server, l, replay),
                    (Line::Full(l), None) => vec![encode(l)],
                    (Line::Seed(l), _) => vec![encode(l)],
                };
                for bytes in lines {
                    overflow = overflow || c.out.push_line(&bytes).is_err();
                }
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
