//! Simulated clients: each submits chats with unique, deterministic msg_ids
//! (`c3-17` is client 3's 17th message), waits for a `ChatAck`, and on timeout
//! retries with the SAME msg_id — on the same node, or on another one if its
//! node is down (or, with a per-run chance, anyway).
//!
//! With room events on (`SimOptions::room_events_ppm`) a client is also a
//! person: it has a name (`u3`, renamed `u3n1`, `u3n2`, …) and a session on
//! the node it talks to (presence), and some of its submissions are room
//! events (join, leave, topic, rename) under that name.
//!
//! Invariants: a msg_id names exactly one (room, payload) forever; a message
//! is acknowledged with at most one seq (checked by the checker, recorded here);
//! no two clients ever share a name.

use chorus_core::{Chat, ClientId, Event};
use std::fmt;

/// A message's identity: client number and the client's message number (both from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgKey {
    pub client: u32,
    pub n: u32,
}

impl MsgKey {
    /// Parses `c<client>-<n>`; anything else is not a simulated client's id.
    pub fn parse(s: &str) -> Option<MsgKey> {
        let rest = s.strip_prefix('c')?;
        let (c, n) = rest.split_once('-')?;
        Some(MsgKey {
            client: c.parse().ok()?,
            n: n.parse().ok()?,
        })
    }

    pub fn id(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MsgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}-{}", self.client, self.n)
    }
}

/// One message a client submitted.
#[derive(Clone, Debug)]
pub struct Sent {
    pub chat: Chat,
    /// The chat number (client-visible seq_no) it was acked with.
    pub acked: Option<u64>,
    pub attempts: u32,
    pub submitted_ms: u64,
}

/// One client: the node it talks to and what it sent.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub node: usize,
    pub sent: Vec<Sent>,
    /// Its current name (room events on).
    pub name: String,
    /// Renames so far.
    pub renames: u32,
    /// The (node, incarnation) its named session lives on, if any.
    pub session: Option<(usize, u32)>,
}

/// Every client of a run, by number (client `c` at index `c - 1`).
#[derive(Debug, Default)]
pub struct Clients {
    list: Vec<Client>,
    unacked: usize,
}

impl Clients {
    /// The client numbered `c`, created (attached to `node`) if new.
    pub fn get_or_create(&mut self, c: u32, node: usize) -> &mut Client {
        assert!(c >= 1, "client numbers start at 1");
        let idx = c as usize - 1;
        while self.list.len() <= idx {
            let c = self.list.len() + 1;
            self.list.push(Client {
                node,
                sent: Vec::new(),
                name: format!("u{c}"),
                renames: 0,
                session: None,
            });
        }
        &mut self.list[idx]
    }

    pub fn client(&self, c: u32) -> Option<&Client> {
        self.list.get((c as usize).checked_sub(1)?)
    }

    pub fn client_mut(&mut self, c: u32) -> Option<&mut Client> {
        self.list.get_mut((c as usize).checked_sub(1)?)
    }

    /// Records a new message of client `c`; returns its chat.
    pub fn submit(&mut self, c: u32, node: usize, room: &str, now_ms: u64) -> Chat {
        self.submit_kind(c, node, room, now_ms, None)
    }

    /// Records a new submission of client `c`, a chat or a room event
    /// (under its name; a rename takes its new name at once); returns it.
    pub fn submit_kind(
        &mut self,
        c: u32,
        node: usize,
        room: &str,
        now_ms: u64,
        event: Option<Event>,
    ) -> Chat {
        let client = self.get_or_create(c, node);
        client.node = node;
        let key = MsgKey {
            client: c,
            n: client.sent.len() as u32 + 1,
        };
        let (user, room, payload) = match event {
            None => (None, room.to_string(), format!("m{}", key.n)),
            Some(Event::Nick) => {
                let old = client.name.clone();
                client.renames += 1;
                client.name = format!("u{c}n{}", client.renames);
                (Some(old), String::new(), client.name.clone())
            }
            Some(Event::Topic) => (
                Some(client.name.clone()),
                room.to_string(),
                format!("topic {}", key.n),
            ),
            Some(_) => (Some(client.name.clone()), room.to_string(), String::new()),
        };
        let chat = Chat {
            msg_id: key.id(),
            room_id: room,
            sender_id: u64::from(c),
            user,
            payload,
            ts_ms: now_ms,
            event,
        };
        client.sent.push(Sent {
            chat: chat.clone(),
            acked: None,
            attempts: 1,
            submitted_ms: now_ms,
        });
        self.unacked += 1;
        chat
    }

    /// The message `key`, if it was submitted.
    pub fn sent(&self, key: MsgKey) -> Option<&Sent> {
        self.client(key.client)?
            .sent
            .get((key.n as usize).checked_sub(1)?)
    }

    /// Records an acknowledgement; returns the seq_no it was acked with before, if any.
    pub fn ack(&mut self, key: MsgKey, seq: u64) -> Option<u64> {
        let sent = self
            .client_mut(key.client)?
            .sent
            .get_mut((key.n as usize).checked_sub(1)?)?;
        let before = sent.acked;
        if before.is_none() {
            sent.acked = Some(seq);
            self.unacked -= 1;
        }
        before
    }

    /// Messages submitted and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked
    }

    /// Every client, by number from 1.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Client)> {
        self.list.iter().enumerate().map(|(k, c)| (k as u32 + 1, c))
    }

    pub fn total_sent(&self) -> usize {
        self.list.iter().map(|c| c.sent.len()).sum()
    }

    /// The first unacknowledged messages (for liveness failure reports).
    pub fn first_unacked(&self, max: usize) -> Vec<MsgKey> {
        let mut out = Vec::new();
        for (ci, c) in self.list.iter().enumerate() {
            for (ni, s) in c.sent.iter().enumerate() {
                if s.acked.is_none() && out.len() < max {
                    out.push(MsgKey {
                        client: ci as u32 + 1,
                        n: ni as u32 + 1,
                    });
                }
            }
        }
        out
    }
}

/// The `ClientId` the core sees for client `c` (one id per simulated client).
pub fn client_id(c: u32) -> ClientId {
    ClientId(u64::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let k = MsgKey { client: 3, n: 17 };
        assert_eq!(k.id(), "c3-17");
        assert_eq!(MsgKey::parse("c3-17"), Some(k));
        assert_eq!(MsgKey::parse("x3-17"), None);
        assert_eq!(MsgKey::parse("c3-"), None);
    }

    #[test]
    fn acks_count_once() {
        let mut cl = Clients::default();
        cl.submit(1, 0, "general", 0);
        let k = MsgKey { client: 1, n: 1 };
        assert_eq!(cl.unacked(), 1);
        assert_eq!(cl.ack(k, 2), None);
        assert_eq!(cl.ack(k, 2), Some(2));
        assert_eq!(cl.unacked(), 0);
    }
}
