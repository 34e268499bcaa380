//! Session-layer operations that adapters call by name (today the IRC
//! gateway; the JSON dialect reaches the same state through SUBSCRIBE and
//! HISTORY lines): add a room to a connection's stream or drop one, replay a
//! room's last messages, and who is on this node.
//!
//! Invariants: a stream of several rooms (`Cursor::Rooms`) gains a room at
//! the room's first message after everything delivered so far, and the
//! replay page of that room ends just before it, so joining shows each
//! message once (replayed or streamed, never both, never neither). A
//! connection streams at most `MAX_SUBSCRIBED_ROOMS` rooms.

use crate::clients::HISTORY_LIMIT_MAX;
use crate::conn::{Cursor, HistoryJob, Subscription, MAX_SUBSCRIBED_ROOMS};
use crate::runtime::Runtime;
use mio::Token;

impl Runtime {
    /// Adds `room` to the connection's stream; the room_seq its stream
    /// starts at (messages below it are history). Err: the stream already
    /// holds `MAX_SUBSCRIBED_ROOMS` rooms.
    pub(crate) fn stream_add_room(&mut self, token: Token, room: &str) -> Result<u64, ()> {
        let next = self
            .node
            .numbering()
            .room_seq_from(room, self.delivered.next());
        let min_seq_no = self.delivered_chats + 1;
        let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) else {
            return Err(());
        };
        let sub = st.sub.get_or_insert(Subscription {
            cursor: Cursor::Rooms(Vec::new()),
            min_seq_no,
        });
        if !matches!(sub.cursor, Cursor::Rooms(_)) {
            sub.cursor = Cursor::Rooms(Vec::new());
        }
        let Cursor::Rooms(rooms) = &mut sub.cursor else {
            unreachable!("set just above")
        };
        if let Some((_, n)) = rooms.iter().find(|(r, _)| r == room) {
            return Ok(*n);
        }
        if rooms.len() >= MAX_SUBSCRIBED_ROOMS {
            return Err(());
        }
        rooms.push((room.to_string(), next));
        self.streaming.insert(token);
        Ok(next)
    }

    /// Drops `room` from the connection's stream (nothing more of it is sent).
    pub(crate) fn stream_remove_room(&mut self, token: Token, room: &str) {
        let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) else {
            return;
        };
        if let Some(Subscription {
            cursor: Cursor::Rooms(rooms),
            ..
        }) = &mut st.sub
        {
            rooms.retain(|(r, _)| r != room);
        }
    }

    /// Queues the last `n` messages of `room` numbered below `before` (a
    /// HISTORY page), sent before the stream continues.
    pub(crate) fn replay_room(&mut self, token: Token, room: &str, before: u64, n: usize) {
        let n = n.min(HISTORY_LIMIT_MAX);
        let last = before.saturating_sub(1);
        let first = last.saturating_sub(n as u64) + 1;
        let job = HistoryJob {
            cursor: Cursor::Room {
                room: room.to_string(),
                next: first,
            },
            next_seq_no: 1,
            remaining: (last + 1 - first) as usize,
        };
        self.on_history(token, job);
    }
}
