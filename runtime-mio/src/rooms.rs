//! The session layer's rooms and people (full dialect): a session's name
//! (HELLO `user`, NICK), room events (JOIN, PART, TOPIC, NICK) submitted as
//! idempotent entries through the same path as CHAT, the reads WHO and LIST
//! from the core's folds (`chorus_core::rooms`, `chorus_core::presence`), and
//! ROOM_EVENT lines pushed to the subscribers of a room as events commit.
//!
//! Rules kept here: names and room ids are validated before anything is
//! submitted (a clear ERROR, the connection stays open); a room id's leading
//! `#` is dropped (`#general` is `general`); an event without a `msg_id` gets
//! one unique to this node's run; the core hears a session's name whenever it
//! changes and once more, as None, when the connection closes (presence).

use crate::clients::{client_id, MAX_ID_BYTES};
use crate::clock::wall_ms;
use crate::conn::{Cursor, Role};
use crate::net::encode;
use crate::runtime::Runtime;
use chorus_core::client_wire::{MemberInfo, RoomEventLine, RoomInfo, ServerLine};
use chorus_core::{Chat, ClientRequest, Entry, ErrorCode, Event, Input};
use mio::Token;
use std::collections::BTreeMap;

/// Longest session name (bytes).
pub const MAX_NAME_BYTES: usize = 64;
/// Longest topic (bytes).
pub const MAX_TOPIC_BYTES: usize = 390;
/// Most rooms in a ROOMS answer and members in a WHO answer.
pub const MAX_LISTED: usize = 1000;

/// A session name: 1..=64 bytes, no whitespace or control characters, not
/// starting with `#` (that is a room).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!("a name has 1 to {MAX_NAME_BYTES} bytes"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a name has no spaces or control characters".into());
    }
    if name.starts_with('#') {
        return Err("a name does not start with # (rooms do)".into());
    }
    Ok(())
}

/// A room id as given (`#general` or `general`) → `general`, checked.
pub fn room_name(given: &str) -> Result<String, String> {
    let room = given.strip_prefix('#').unwrap_or(given);
    if room.is_empty() || room.len() > MAX_ID_BYTES {
        return Err(format!("a room id has 1 to {MAX_ID_BYTES} bytes"));
    }
    if room.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a room id has no spaces or control characters".into());
    }
    Ok(room.to_string())
}

/// True if a subscription's cursor covers `room`.
fn covers(cursor: &Cursor, room: &str) -> bool {
    match cursor {
        Cursor::All(_) => true,
        Cursor::Room { room: r, .. } => r == room,
        Cursor::Rooms(rooms) => rooms.iter().any(|(r, _)| r == room),
    }
}

impl Runtime {
    /// The session name of `token`, if it has one.
    pub(crate) fn session_name(&mut self, token: Token) -> Option<String> {
        self.conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .and_then(|st| st.name.clone())
    }

    /// Names the session of `token` and tells the core (presence).
    pub(crate) fn set_session_name(&mut self, token: Token, name: Option<String>) {
        if let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
            if st.name == name {
                return;
            }
            st.name.clone_from(&name);
        }
        self.feed(Input::Client {
            client: client_id(token),
            request: ClientRequest::Session { name },
        });
    }

    /// A msg_id for an event submitted without one: unique to this run.
    fn event_msg_id(&mut self) -> String {
        self.event_ids += 1;
        format!("n{}-{}-{}", self.me.0, self.boot_ms, self.event_ids)
    }

    /// Submits a room event of the session `token` (through `on_chat`: the
    /// same rate limit, checks, idempotency and CHAT_ACK as a message).
    fn submit_event(
        &mut self,
        token: Token,
        event: Event,
        room_id: String,
        user: String,
        payload: String,
        msg_id: Option<String>,
    ) {
        let msg_id = match msg_id {
            Some(id) => id,
            None => self.event_msg_id(),
        };
        let chat = Chat {
            msg_id,
            room_id,
            sender_id: 0,
            user: Some(user),
            payload,
            ts_ms: wall_ms(),
            event: Some(event),
        };
        self.on_chat(token, chat);
    }

    /// JOIN, PART and TOPIC: a room event of the named session.
    pub(crate) fn on_room_request(
        &mut self,
        token: Token,
        event: Event,
        room: &str,
        topic: Option<String>,
        msg_id: Option<String>,
    ) {
        let what = event.name().to_uppercase();
        let room = match room_name(room) {
            Ok(r) => r,
            Err(why) => return self.refuse(token, ErrorCode::BadRequest, format!("{what}: {why}")),
        };
        let Some(user) = self.session_name(token) else {
            let msg = format!("{what} {room}: say NICK first (or HELLO with a user)");
            return self.refuse(token, ErrorCode::BadRequest, msg);
        };
        let topic = topic.unwrap_or_default();
        if topic.len() > MAX_TOPIC_BYTES {
            let msg = format!("TOPIC {room}: a topic has at most {MAX_TOPIC_BYTES} bytes");
            return self.refuse(token, ErrorCode::BadRequest, msg);
        }
        self.submit_event(token, event, room, user, topic, msg_id);
    }

    /// NICK: names the session; a rename is committed as a room event, a
    /// first name only answered.
    pub(crate) fn on_nick(&mut self, token: Token, name: String, msg_id: Option<String>) {
        if let Err(why) = check_name(&name) {
            return self.refuse(token, ErrorCode::BadRequest, format!("NICK: {why}"));
        }
        let old = self.session_name(token);
        self.set_session_name(token, Some(name.clone()));
        match old {
            Some(old) if old != name => {
                self.submit_event(token, Event::Nick, String::new(), old, name, msg_id);
            }
            _ => {
                let msg_id = msg_id.unwrap_or_else(|| self.event_msg_id());
                let ack = ServerLine::ChatAck {
                    msg_id,
                    seq_no: self.delivered_chats + 1,
                };
                self.answer(token, &ack);
            }
        }
    }

    /// WHO: a room's members in name order with presence, and its topic.
    pub(crate) fn who(&self, room: &str) -> ServerLine {
        let room = room.strip_prefix('#').unwrap_or(room);
        let (rooms, presence) = (self.node.rooms(), self.node.presence());
        let (topic, members, truncated) = match rooms.get(room) {
            Some(r) => (
                r.topic.clone(),
                r.members
                    .iter()
                    .take(MAX_LISTED)
                    .map(|u| MemberInfo {
                        user: u.clone(),
                        online: presence.is_online(u),
                    })
                    .collect(),
                r.members.len() > MAX_LISTED,
            ),
            None => (String::new(), Vec::new(), false),
        };
        ServerLine::Who {
            room_id: room.to_string(),
            topic,
            members,
            truncated,
        }
    }

    /// LIST: every room with messages or members, in name order, at most
    /// `MAX_LISTED`.
    pub(crate) fn room_list(&self) -> ServerLine {
        let (numbering, rooms, presence) = (
            self.node.numbering(),
            self.node.rooms(),
            self.node.presence(),
        );
        let mut all: BTreeMap<&str, RoomInfo> = BTreeMap::new();
        let info = |room: &str| RoomInfo {
            room_id: room.to_string(),
            messages: numbering.room_len(room),
            members: 0,
            online: 0,
            topic: String::new(),
        };
        for (room, _) in numbering.rooms().take(MAX_LISTED + 1) {
            all.insert(room, info(room));
        }
        for (room, r) in rooms.iter().take(MAX_LISTED + 1) {
            let i = all.entry(room).or_insert_with(|| info(room));
            i.members = r.members.len() as u64;
            i.online = r.members.iter().filter(|u| presence.is_online(u)).count() as u64;
            i.topic.clone_from(&r.topic);
        }
        let truncated = all.len() > MAX_LISTED;
        ServerLine::Rooms {
            rooms: all.into_values().take(MAX_LISTED).collect(),
            truncated,
        }
    }

    /// A committed room event: a ROOM_EVENT line to every full-dialect
    /// subscriber of its room (a rename: of every room the new name is in).
    pub(crate) fn push_room_event(&mut self, e: &Entry) {
        let Some((event, c)) = e.event() else {
            return;
        };
        let user = c.user.clone().unwrap_or_default();
        let rooms: Vec<String> = match event {
            Event::Nick => self
                .node
                .rooms()
                .rooms_of(&c.payload)
                .map(str::to_string)
                .collect(),
            _ => vec![c.room_id.clone()],
        };
        for room in rooms {
            let line = ServerLine::RoomEvent(RoomEventLine {
                room_id: room.clone(),
                event: event.name().to_string(),
                user: user.clone(),
                topic: (event == Event::Topic).then(|| c.payload.clone()),
                name: (event == Event::Nick).then(|| c.payload.clone()),
                term: e.term.0,
                msg_id: c.msg_id.clone(),
                ts_ms: c.ts_ms,
                seq_no: self.delivered_chats + 1,
            });
            let json = encode(&line);
            let to: Vec<Token> = self
                .streaming
                .iter()
                .copied()
                .filter(|t| {
                    self.conns.get(t).is_some_and(|c| match &c.role {
                        Role::Client(st) => {
                            !st.is_seed()
                                && st.sub.as_ref().is_some_and(|s| covers(&s.cursor, &room))
                        }
                        _ => false,
                    })
                })
                .collect();
            for t in to {
                // An IRC session gets its own rendering (`irc/render.rs`).
                let lines = self
                    .irc_render(t, &line)
                    .unwrap_or_else(|| vec![json.clone()]);
                for bytes in lines {
                    if !self.push_line(t, &bytes) {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rooms_are_checked() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("#x").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert_eq!(room_name("#general").unwrap(), "general");
        assert_eq!(room_name("general").unwrap(), "general");
        assert!(room_name("#").is_err());
        assert!(room_name("a\tb").is_err());
    }
}
