//! The full-screen client's input line: a message, or a `/command` (the
//! table below is also what `/help` shows). Arguments are checked here, as
//! the nodes would check them, so a mistake gets its reason at once.

use crate::client::wire;

/// What the user typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// A message to the room on view.
    Say(String),
    Join(String),
    /// Leave the room on view, or the one named.
    Part(Option<String>),
    Rooms,
    Nick(String),
    Who,
    /// Set the topic (None: show it).
    Topic(Option<String>),
    Help,
    Quit,
}

/// `/help`'s text, one entry a line.
pub const HELP: &[&str] = &[
    "/join #room    join a room and switch to it",
    "/part          leave the room on view (/part #room: that room)",
    "/rooms         list the cluster's rooms (members, topics)",
    "/who           list this room's members (● online, ○ away)",
    "/nick NAME     change your name (everyone sees the change)",
    "/topic TEXT    set this room's topic (/topic: show it)",
    "/quit          quit (also Esc, Ctrl-C)",
    "//text         send a message starting with /",
    "keys: Alt-1..9 room 1..9 · Ctrl-N/Ctrl-P or Tab/Shift-Tab next/previous room",
    "      PageUp/PageDown scroll (PageUp at the top loads older messages)",
];

/// Parses one input line (already non-empty).
pub fn parse(line: &str) -> Result<Cmd, String> {
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Cmd::Say(line.to_string()));
    };
    if rest.starts_with('/') {
        return Ok(Cmd::Say(rest.to_string()));
    }
    let (word, arg) = match rest.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (rest, ""),
    };
    let none = |c: Cmd| {
        if arg.is_empty() {
            Ok(c)
        } else {
            Err(format!("/{word} takes no argument"))
        }
    };
    match word {
        "join" | "j" => {
            if arg.is_empty() {
                return Err("usage: /join #room".into());
            }
            Ok(Cmd::Join(wire::room_id(arg)?))
        }
        "part" | "leave" => {
            if arg.is_empty() {
                Ok(Cmd::Part(None))
            } else {
                Ok(Cmd::Part(Some(wire::room_id(arg)?)))
            }
        }
        "rooms" | "list" => none(Cmd::Rooms),
        "nick" => {
            if arg.is_empty() {
                return Err("usage: /nick NAME".into());
            }
            Ok(Cmd::Nick(wire::name(arg)?))
        }
        "who" | "names" => none(Cmd::Who),
        "topic" => {
            if arg.is_empty() {
                Ok(Cmd::Topic(None))
            } else {
                Ok(Cmd::Topic(Some(wire::topic(arg)?)))
            }
        }
        "help" | "h" | "?" => Ok(Cmd::Help),
        "quit" | "exit" | "q" => Ok(Cmd::Quit),
        _ => Err(format!("unknown command /{word}: /help lists them")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_their_errors() {
        assert_eq!(parse("hi /there"), Ok(Cmd::Say("hi /there".into())));
        assert_eq!(parse("//etc"), Ok(Cmd::Say("/etc".into())));
        assert_eq!(parse("/join #random"), Ok(Cmd::Join("random".into())));
        assert_eq!(parse("/join random"), Ok(Cmd::Join("random".into())));
        assert!(parse("/join").is_err());
        assert!(parse("/join #a b").is_err());
        assert_eq!(parse("/part"), Ok(Cmd::Part(None)));
        assert_eq!(parse("/nick bob"), Ok(Cmd::Nick("bob".into())));
        assert!(parse("/nick #bob").is_err());
        assert!(parse("/nick a b").is_err());
        assert_eq!(
            parse("/topic release on friday"),
            Ok(Cmd::Topic(Some("release on friday".into())))
        );
        assert_eq!(parse("/topic"), Ok(Cmd::Topic(None)));
        assert!(parse("/who x").is_err());
        assert!(parse("/frobnicate").is_err());
    }
}
