//! The session layer's lines as IRC lines: a committed chat becomes
//! `PRIVMSG #room` from `nick!nick@chorus` (with `time=` when the client
//! negotiated `server-time`, `msgid=` with `message-tags`), an ERROR a
//! NOTICE from the server. Acks, HISTORY_END, STATUS and HELLO have no IRC
//! form and render as nothing. Every line returned ends with `\r` (the
//! output buffer adds the `\n`).

use super::codec::{as_nick, escape_tag, line, server_time, split_text, MAX_BODY};
use super::session::IrcSession;
use chorus_core::client_wire::{Delivered, ServerLine};

/// IRC lines for one session-layer line. `replay`: from a JOIN's history
/// page (the session's own messages are shown then too).
pub(crate) fn render(s: &IrcSession, server: &str, l: &ServerLine, replay: bool) -> Vec<Vec<u8>> {
    let mut out = match l {
        ServerLine::SeqChat(d) => {
            if !replay && s.is_mine(&d.msg_id) && !s.echo_message {
                return Vec::new();
            }
            chat_lines(s, d)
        }
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

fn chat_lines(s: &IrcSession, d: &Delivered) -> Vec<Vec<u8>> {
    let nick = as_nick(d.user.as_deref().unwrap_or(""));
    let prefix = format!("{nick}!{nick}@chorus");
    let target = format!("#{}", d.room_id);
    let mut tags = Vec::new();
    if s.server_time {
        tags.push(format!("time={}", server_time(d.ts_ms)));
    }
    if s.message_tags {
        tags.push(format!("msgid={}", escape_tag(&d.msg_id)));
    }
    let tags = tags.join(";");
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
            text(render(&s, "n1.chorus", &l, false)),
            vec![":bob!bob@chorus PRIVMSG #general :hi\r"]
        );
        s.server_time = true;
        s.message_tags = true;
        assert_eq!(
            text(render(&s, "n1.chorus", &l, false)),
            vec!["@time=2024-12-05T12:00:00.123Z;msgid=x1 :bob!bob@chorus PRIVMSG #general :hi\r"]
        );
    }

    #[test]
    fn own_messages_come_back_only_in_replays_or_with_echo() {
        let mut s = IrcSession::new("me-".into());
        let l = chat("me-1", Some("alice"), "mine");
        assert!(render(&s, "n1", &l, false).is_empty());
        assert_eq!(render(&s, "n1", &l, true).len(), 1);
        s.echo_message = true;
        assert_eq!(render(&s, "n1", &l, false).len(), 1);
    }

    #[test]
    fn multi_line_and_long_chats_become_several_safe_lines() {
        let s = IrcSession::new("me-".into());
        let l = chat("x", Some("a b"), "one\r\nQUIT :bye\nthree");
        let lines = text(render(&s, "n1", &l, false));
        assert_eq!(
            lines,
            vec![
                ":a_b!a_b@chorus PRIVMSG #general :one\r",
                ":a_b!a_b@chorus PRIVMSG #general :QUIT :bye\r",
                ":a_b!a_b@chorus PRIVMSG #general :three\r",
            ]
        );
        let long = chat("x", None, &"z".repeat(2000));
        let lines = render(&s, "n1", &long, false);
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| l.len() < 512));
    }
}
