//! The session layer's lines as IRC lines: a committed chat becomes
//! `PRIVMSG #room` from `nick!nick@chorus` (with `time=` when the client
//! negotiated `server-time`, `msgid=` with `message-tags`), a committed room
//! event JOIN, PART, TOPIC or NICK from its user, an ERROR a NOTICE from the
//! server. Acks, HISTORY_END, STATUS and HELLO have no IRC form and render
//! as nothing. The session's own JOIN, PART and NICK were answered when it
//! sent them, so their commits are not shown again; a rename is pushed once
//! per room it touches, and shown once. Every line returned ends with `\r`
//! (the output buffer adds the `\n`).

use super::codec::{as_nick, escape_tag, line, server_time, split_text, MAX_BODY};
use super::session::IrcSession;
use chorus_core::client_wire::{Delivered, RoomEventLine, ServerLine};

/// IRC lines for one session-layer line. `replay`: from a JOIN's history
/// page (the session's own messages are shown then too).
pub(crate) fn render(
    s: &mut IrcSession,
    server: &str,
    l: &ServerLine,
    replay: bool,
) -> Vec<Vec<u8>> {
    let mut out = match l {
        ServerLine::SeqChat(d) => {
            if !replay && s.is_mine(&d.msg_id) && !s.echo_message {
                return Vec::new();
            }
            chat_lines(s, d)
        }
        ServerLine::RoomEvent(e) => event_lines(s, e),
        ServerLine::Error { code, message } => {
            let text = format!("chorus refused ({code:?}): {message}");
            vec![line("", server, "NOTICE", &[s.target(), &text])]
        }
        _ => Vec::new(),
    };
    for l in &mut out {
        l.push(b'\r');
    }
    out
}

/// The tags a session negotiated for a line committed at `ts_ms`.
fn tags(s: &IrcSession, ts_ms: u64, msg_id: &str) -> String {
    let mut tags = Vec::new();
    if s.server_time {
        tags.push(format!("time={}", server_time(ts_ms)));
    }
    if s.message_tags {
        tags.push(format!("msgid={}", escape_tag(msg_id)));
    }
    tags.join(";")
}

fn event_lines(s: &mut IrcSession, e: &RoomEventLine) -> Vec<Vec<u8>> {
    let mine = s.is_mine(&e.msg_id);
    let nick = as_nick(&e.user);
    let prefix = format!("{nick}!{nick}@chorus");
    let chan = format!("#{}", e.room_id);
    let tags = tags(s, e.ts_ms, &e.msg_id);
    let l = match e.event.as_str() {
        "join" if !mine => line(&tags, &prefix, "JOIN", &[&chan]),
        "leave" if !mine => line(&tags, &prefix, "PART", &[&chan]),
        "topic" => {
            let topic = e.topic.as_deref().unwrap_or("");
            line(&tags, &prefix, "TOPIC", &[&chan, topic])
        }
        "nick" if !mine && s.last_rename != e.msg_id => {
            s.last_rename.clone_from(&e.msg_id);
            let new = as_nick(e.name.as_deref().unwrap_or(""));
            line(&tags, &prefix, "NICK", &[&new])
        }
        _ => return Vec::new(),
    };
    vec![l]
}

fn chat_lines(s: &IrcSession, d: &Delivered) -> Vec<Vec<u8>> {
    let nick = as_nick(d.user.as_deref().unwrap_or(""));
    let prefix = format!("{nick}!{nick}@chorus");
    let target = format!("#{}", d.room_id);
    let tags = tags(s, d.ts_ms, &d.msg_id);
    // ":prefix PRIVMSG #room :" and the CRLF take this much of 512.
    let overhead = prefix.len() + target.len() + 14;
    split_text(&d.payload, MAX_BODY.saturating_sub(overhead))
        .iter()
        .map(|piece| line(&tags, &prefix, "PRIVMSG", &[&target, piece]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(msg_id: &str, user: Option<&str>, payload: &str) -> ServerLine {
        ServerLine::SeqChat(Delivered {
            seq_no: 7,
            room_seq: 3,
            term: 2,
            msg_id: msg_id.into(),
            room_id: "general".into(),
            sender_id: 0,
            user: user.map(String::from),
            payload: payload.into(),
            ts_ms: 1_733_400_000_123,
        })
    }

    fn text(lines: Vec<Vec<u8>>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn a_chat_is_a_privmsg_with_optional_tags() {
        let mut s = IrcSession::new("me-".into());
        let l = chat("x1", Some("bob"), "hi");
        assert_eq!(
            text(render(&mut s, "n1.chorus", &l, false)),
            vec![":bob!bob@chorus PRIVMSG #general :hi\r"]
        );
        s.server_time = true;
        s.message_tags = true;
        assert_eq!(
            text(render(&mut s, "n1.chorus", &l, false)),
            vec!["@time=2024-12-05T12:00:00.123Z;msgid=x1 :bob!bob@chorus PRIVMSG #general :hi\r"]
        );
    }

    #[test]
    fn own_messages_come_back_only_in_replays_or_with_echo() {
        let mut s = IrcSession::new("me-".into());
        let l = chat("me-1", Some("alice"), "mine");
        assert!(render(&mut s, "n1", &l, false).is_empty());
        assert_eq!(render(&mut s, "n1", &l, true).len(), 1);
        s.echo_message = true;
        assert_eq!(render(&mut s, "n1", &l, false).len(), 1);
    }

    fn event(kind: &str, msg_id: &str, room: &str) -> ServerLine {
        ServerLine::RoomEvent(RoomEventLine {
            room_id: room.into(),
            event: kind.into(),
            user: "bob".into(),
            topic: (kind == "topic").then(|| "new topic".into()),
            name: (kind == "nick").then(|| "robert".into()),
            term: 1,
            msg_id: msg_id.into(),
            ts_ms: 0,
            seq_no: 1,
        })
    }

    #[test]
    fn room_events_become_join_part_topic_nick_once() {
        let mut s = IrcSession::new("me-".into());
        let mut r = |l: ServerLine| text(render(&mut s, "n1", &l, false));
        assert_eq!(
            r(event("join", "e1", "a")),
            vec![":bob!bob@chorus JOIN :#a\r"]
        );
        assert_eq!(
            r(event("leave", "e2", "a")),
            vec![":bob!bob@chorus PART :#a\r"]
        );
        assert_eq!(
            r(event("topic", "e3", "a")),
            vec![":bob!bob@chorus TOPIC #a :new topic\r"]
        );
        assert_eq!(
            r(event("nick", "e4", "a")),
            vec![":bob!bob@chorus NICK :robert\r"]
        );
        // The same rename pushed for a second room: shown once.
        assert!(r(event("nick", "e4", "b")).is_empty());
        // Own join and rename were answered at once; own topic shows on commit.
        assert!(r(event("join", "me-1", "a")).is_empty());
        assert!(r(event("nick", "me-2", "a")).is_empty());
        assert_eq!(r(event("topic", "me-3", "a")).len(), 1);
    }

    #[test]
    fn multi_line_and_long_chats_become_several_safe_lines() {
        let mut s = IrcSession::new("me-".into());
        let l = chat("x", Some("a b"), "one\r\nQUIT :bye\nthree");
        let lines = text(render(&mut s, "n1", &l, false));
        assert_eq!(
            lines,
            vec![
                ":a_b!a_b@chorus PRIVMSG #general :one\r",
                ":a_b!a_b@chorus PRIVMSG #general :QUIT :bye\r",
                ":a_b!a_b@chorus PRIVMSG #general :three\r",
            ]
        );
        let long = chat("x", None, &"z".repeat(2000));
        let lines = render(&mut s, "n1", &long, false);
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| l.len() < 512));
    }
}
