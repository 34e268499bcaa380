//! The client's side of the rooms-and-people lines (runtime-mio/PROTOCOL.md,
//! "Rooms and people"): what `chorus client` writes (HELLO with a name, JOIN,
//! PART, TOPIC, NICK, WHO) and the answers it reads (WHO, ROOM_EVENT, ROOMS
//! with members and topics). Lines of the older protocol go through
//! `chorus_core::client_wire` unchanged; [`Up`] and [`Down`] wrap both.
//!
//! Also the client-side checks of names and room ids, so that a typo is
//! refused at once with a reason instead of being resent to a node that
//! refuses it every time.

use chorus_core::client_wire::{ClientLine, ServerLine};
use serde::{Deserialize, Serialize};

/// Longest room id or name the nodes accept (bytes).
pub const MAX_NAME_BYTES: usize = 64;
/// Longest topic the nodes accept (bytes).
pub const MAX_TOPIC_BYTES: usize = 390;

/// A line the client writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Up {
    Core(ClientLine),
    Rooms(RoomsUp),
}

/// The client lines added for rooms and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoomsUp {
    /// HELLO naming the session from the start.
    Hello {
        proto: u64,
        client: String,
        user: String,
    },
    Join {
        room_id: String,
        msg_id: String,
    },
    Part {
        room_id: String,
        msg_id: String,
    },
    Topic {
        room_id: String,
        topic: String,
        msg_id: String,
    },
    Nick {
        name: String,
        msg_id: String,
    },
    Who {
        room_id: String,
    },
}

/// A line the client reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    Core(ServerLine),
    Rooms(RoomsDown),
}

/// The node lines added for rooms and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoomsDown {
    /// A room's members with presence, and its topic.
    Who(Who),
    /// A committed join / leave / topic / nick, pushed to a room's subscribers.
    RoomEvent(RoomEvent),
    /// The LIST answer (with members, presence and topics).
    Rooms {
        rooms: Vec<RoomInfo>,
        #[serde(default)]
        truncated: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub room_id: String,
    #[serde(default)]
    pub topic: String,
    pub members: Vec<Member>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: String,
    pub online: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvent {
    pub room_id: String,
    /// `join`, `leave`, `topic` or `nick` (others are shown as they are).
    pub event: String,
    /// Who did it (for `nick`: the old name).
    pub user: String,
    #[serde(default)]
    pub topic: Option<String>,
    /// For `nick`: the new name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub msg_id: String,
    #[serde(default)]
    pub ts_ms: u64,
    /// The global number of the next chat: the event sits just before it.
    pub seq_no: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room_id: String,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub members: u64,
    #[serde(default)]
    pub online: u64,
    #[serde(default)]
    pub topic: String,
}

/// Parses one node line. ROOMS is read with its rooms-and-people fields
/// (the older shape parses too: the new fields default).
pub fn parse_down(text: &str) -> Result<Down, String> {
    match serde_json::from_str::<ServerLine>(text) {
        Ok(ServerLine::Rooms { .. }) | Err(_) => {}
        Ok(line) => return Ok(Down::Core(line)),
    }
    match serde_json::from_str::<RoomsDown>(text) {
        Ok(line) => Ok(Down::Rooms(line)),
        Err(e) => Err(e.to_string()),
    }
}

/// Strips one leading `#` and checks a room id as the nodes do.
pub fn room_id(text: &str) -> Result<String, String> {
    let id = text.strip_prefix('#').unwrap_or(text);
    if id.is_empty() {
        return Err("a room needs a name, e.g. #general".into());
    }
    check_token("a room id", id)?;
    Ok(id.to_string())
}

/// Checks a session name as the nodes do.
pub fn name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("a name must not be empty".into());
    }
    if text.starts_with('#') {
        return Err("a name must not start with # (that is a room)".into());
    }
    check_token("a name", text)?;
    Ok(text.to_string())
}

/// Checks a topic's length (any text is allowed).
pub fn topic(text: &str) -> Result<String, String> {
    if text.len() > MAX_TOPIC_BYTES {
        return Err(format!("a topic is at most {MAX_TOPIC_BYTES} bytes"));
    }
    Ok(text.to_string())
}

fn check_token(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_NAME_BYTES {
        return Err(format!("{what} is at most {MAX_NAME_BYTES} bytes"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} has no spaces or control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_protocol_shape() {
        let hello = Up::Rooms(RoomsUp::Hello {
            proto: 2,
            client: "chorus/0.1".into(),
            user: "alice".into(),
        });
        assert_eq!(
            serde_json::to_string(&hello).unwrap(),
            r#"{"type":"HELLO","proto":2,"client":"chorus/0.1","user":"alice"}"#
        );
        let join = Up::Rooms(RoomsUp::Join {
            room_id: "general".into(),
            msg_id: "m".into(),
        });
        assert_eq!(
            serde_json::to_string(&join).unwrap(),
            r#"{"type":"JOIN","room_id":"general","msg_id":"m"}"#
        );
        let status = Up::Core(ClientLine::Status {});
        assert_eq!(serde_json::to_string(&status).unwrap(), r#"{"type":"STATUS"}"#);
    }

    #[test]
    fn answers_parse() {
        let who = r#"{"type":"WHO","room_id":"general","topic":"t","members":[{"user":"alice","online":true}],"truncated":false}"#;
        assert!(matches!(parse_down(who), Ok(Down::Rooms(RoomsDown::Who(w))) if w.members[0].online));
        let ev = r#"{"type":"ROOM_EVENT","room_id":"general","event":"nick","user":"a","name":"b","term":3,"msg_id":"x","ts_ms":1,"seq_no":13}"#;
        assert!(matches!(parse_down(ev), Ok(Down::Rooms(RoomsDown::RoomEvent(e))) if e.name.as_deref() == Some("b")));
        let rooms = r#"{"type":"ROOMS","rooms":[{"room_id":"general","messages":12,"members":3,"online":2,"topic":"t"}],"truncated":false}"#;
        assert!(matches!(parse_down(rooms), Ok(Down::Rooms(RoomsDown::Rooms { rooms, .. })) if rooms[0].online == 2));
        let ack = r#"{"type":"CHAT_ACK","msg_id":"a","seq_no":7}"#;
        assert!(matches!(parse_down(ack), Ok(Down::Core(ServerLine::ChatAck { .. }))));
        assert!(parse_down(r#"{"type":"NOPE"}"#).is_err());
    }

    #[test]
    fn names_and_rooms_are_checked() {
        assert_eq!(room_id("#general"), Ok("general".into()));
        assert!(room_id("#").is_err());
        assert!(room_id("a b").is_err());
        assert!(room_id(&"x".repeat(65)).is_err());
        assert_eq!(name("bob"), Ok("bob".into()));
        assert!(name("#bob").is_err());
        assert!(name("bo\tb").is_err());
        assert!(topic(&"t".repeat(391)).is_err());
    }
}
