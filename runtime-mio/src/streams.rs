//! History answers and subscriptions, streamed from the core's log at the
//! client's reading pace (recent entries from the core's cache, older ones
//! read back from the log file through `cold.rs`).
//!
//! Invariants: only entries up to `delivered` (committed, durable, delivered
//! in order) are streamed; lines are produced only while the client has fewer
//! than `stream_low_water_bytes` unsent, so a slow reader costs no memory (it
//! simply falls behind); one stream scans at most `stream_scan_per_iteration`
//! entries per iteration. A connection's HISTORY answers run in request order,
//! each ending with HISTORY_END, before its subscription advances.

use crate::conn::Role;
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::client_wire::{Delivered, ServerLine};
use chorus_core::{Entry, Seq};
use mio::Token;

fn matching(entry: Option<&Entry>, room: &Option<String>) -> Option<Delivered> {
    let d = Delivered::from_entry(entry?)?;
    match room {
        Some(r) if *r != d.room_id => None,
        _ => Some(d),
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
        let mut wrote = false;
        let mut overflow = false;
        while c.out.pending() < low_water && !overflow {
            if scan == 0 {
                self.pump_again = true;
                break;
            }
            let line = if let Some(job) = st.history.front_mut() {
                if job.remaining == 0 || job.next > delivered {
                    let end = ServerLine::HistoryEnd {
                        next_seq: job.next.0,
                        commit_seq: delivered.0,
                    };
                    st.history.pop_front();
                    Some(end)
                } else {
                    scan -= 1;
                    let seq = job.next;
                    job.next = seq.next();
                    let d = matching(self.node.entry(seq).as_deref(), &job.room);
                    job.remaining -= usize::from(d.is_some());
                    d.map(ServerLine::SeqChat)
                }
            } else if let Some(sub) = &mut st.sub {
                if sub.next > delivered {
                    break;
                }
                scan -= 1;
                let seq: Seq = sub.next;
                sub.next = seq.next();
                matching(self.node.entry(seq).as_deref(), &sub.room).map(ServerLine::SeqChat)
            } else {
                break;
            };
            if let Some(l) = line {
                overflow = c.out.push_line(&encode(&l)).is_err();
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
