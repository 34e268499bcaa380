//! The client's checks of names, room ids and topics (as the nodes check
//! them, runtime-mio/PROTOCOL.md "Rooms and people"), so that a typo is
//! refused at once with a reason instead of being resent to a node that
//! refuses it every time; and the WHO answer as the UIs get it.

pub use chorus_core::client_wire::MemberInfo;

/// Longest room id or name the nodes accept (bytes).
pub const MAX_NAME_BYTES: usize = 64;
/// Longest topic the nodes accept (bytes).
pub const MAX_TOPIC_BYTES: usize = 390;

/// A room's members with presence, and its topic (the WHO answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    pub room_id: String,
    pub topic: String,
    pub members: Vec<MemberInfo>,
    pub truncated: bool,
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
