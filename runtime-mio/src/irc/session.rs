//! What one IRC connection is, beyond the session layer's `ClientState`:
//! its nick and user, where registration stands, the capabilities it
//! negotiated, its channels and its away message.
//!
//! Invariants: `channels` holds at most `MAX_SUBSCRIBED_ROOMS` rooms and is
//! exactly the set of rooms of the connection's subscription; a session is
//! registered once it has a nick and a user and is not negotiating
//! capabilities (then, and only then, it has received 001–005 and the MOTD).

use std::collections::BTreeSet;

/// The capabilities offered in `CAP LS` (and `sasl` when accounts are on).
pub const CAPS: &[&str] = &["echo-message", "message-tags", "server-time"];

/// Where an `AUTHENTICATE PLAIN` exchange stands (IRCv3 SASL 3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sasl {
    #[default]
    Idle,
    /// `AUTHENTICATE +` was sent: base64 chunks of 400 bytes come next.
    Data,
    /// The credentials are being checked (`Runtime::begin_login`).
    Checking,
}

/// Which command asked for the login being checked (how it is answered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoginVia {
    #[default]
    Sasl,
    Pass,
}

/// One IRC connection's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IrcSession {
    pub nick: Option<String>,
    pub user: Option<String>,
    pub realname: String,
    /// Between `CAP LS`/`CAP REQ` and `CAP END`: registration waits.
    pub negotiating: bool,
    pub registered: bool,
    pub server_time: bool,
    pub message_tags: bool,
    pub echo_message: bool,
    /// Rooms joined (without `#`), in name order.
    pub channels: BTreeSet<String>,
    pub away: Option<String>,
    /// msg_ids this connection made start with this (`<node>-<boot>-<token>-`),
    /// so its own messages are told apart when they come back.
    pub msg_prefix: String,
    /// Messages sent so far (the rest of each msg_id).
    pub sent: u64,
    /// The msg_id of the last rename shown (one is pushed per shared room).
    pub last_rename: String,
    /// The `sasl` capability was negotiated.
    pub sasl: bool,
    pub sasl_state: Sasl,
    /// The base64 received so far of an AUTHENTICATE exchange.
    pub sasl_buf: String,
    /// `PASS` before registration: checked when NICK and USER are in.
    pub pass: Option<String>,
    /// The PASS login was started (it is checked once).
    pub pass_tried: bool,
    pub login_via: LoginVia,
}

impl IrcSession {
    pub fn new(msg_prefix: String) -> IrcSession {
        IrcSession {
            msg_prefix,
            ..Default::default()
        }
    }

    /// The nick, or `*` before one is set (the target of early numerics).
    pub fn target(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    /// `nick!user@chorus`.
    pub fn mask(&self) -> String {
        let user = self.user.as_deref().unwrap_or("user");
        format!("{}!{user}@chorus", self.target())
    }

    /// A fresh idempotency key for a message of this connection.
    pub fn next_msg_id(&mut self) -> String {
        self.sent += 1;
        format!("{}{}", self.msg_prefix, self.sent)
    }

    pub fn is_mine(&self, msg_id: &str) -> bool {
        msg_id.starts_with(&self.msg_prefix)
    }

    /// Turns a negotiated capability on or off; false if it is not offered.
    pub fn set_cap(&mut self, cap: &str, on: bool) -> bool {
        match cap {
            "server-time" => self.server_time = on,
            "message-tags" => self.message_tags = on,
            "echo-message" => self.echo_message = on,
            "sasl" => self.sasl = on,
            _ => return false,
        }
        true
    }

    /// The capabilities in force, space-separated.
    pub fn caps(&self) -> String {
        let on = [
            self.echo_message,
            self.message_tags,
            self.server_time,
            self.sasl,
        ];
        CAPS.iter()
            .chain(&["sasl"])
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A nick the gateway accepts: 1..=30 bytes of letters, digits and
/// `[]\`_^{|}-`, not starting with a digit or `-` (RFC 2812's shape; the
/// session layer's names are wider, but IRC clients must be able to
/// parse every nick they are shown as their own).
pub fn valid_nick(n: &str) -> bool {
    let special = |c: char| "[]\\`_^{|}-".contains(c);
    !n.is_empty()
        && n.len() <= 30
        && n.chars().all(|c| c.is_ascii_alphanumeric() || special(c))
        && !n.starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// The room of a channel name: `#general` is room `general`. None if it is
/// not a channel name this gateway serves.
pub fn room_of(channel: &str) -> Option<&str> {
    let room = channel.strip_prefix('#')?;
    let ok = !room.is_empty()
        && room.len() <= 64
        && !room.starts_with('#')
        && room
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ',' && c != '\u{7}');
    ok.then_some(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_and_channels() {
        assert!(valid_nick("alice"));
        assert!(valid_nick("a[1]_`^{|}-"));
        assert!(!valid_nick("1alice"));
        assert!(!valid_nick("al ice"));
        assert!(!valid_nick(""));
        assert!(!valid_nick(&"a".repeat(31)));
        assert_eq!(room_of("#general"), Some("general"));
        assert_eq!(room_of("general"), None);
        assert_eq!(room_of("#"), None);
        assert_eq!(room_of("##x"), None);
        assert_eq!(room_of(&format!("#{}", "r".repeat(65))), None);
    }

    #[test]
    fn caps_and_ids() {
        let mut s = IrcSession::new("1-2-3-".into());
        assert!(s.set_cap("server-time", true));
        assert!(!s.set_cap("bogus", true));
        assert_eq!(s.caps(), "server-time");
        let id = s.next_msg_id();
        assert_eq!(id, "1-2-3-1");
        assert!(s.is_mine(&id));
        assert!(!s.is_mine("1-2-4-1"));
    }
}
