//! IRC line codec: one client line in (IRCv3 message tags, an optional
//! prefix, the command, up to 15 parameters), server lines out.
//!
//! Limits (RFC 1459 §2.3, IRCv3 message-tags): the part after the tags is at
//! most 512 bytes with its CRLF, the tags part at most 8191 bytes. An input
//! line past either is answered 417 (ERR_INPUTTOOLONG) and dropped; a line past
//! both together never reaches here (the line reader's bound, `MAX_LINE`).
//! Output lines are built within 512 bytes: a message longer than one line is
//! split at UTF-8 boundaries, and a message with line breaks becomes one line
//! per line, so a chat's text can never smuggle an IRC command (`\r`, `\n` and
//! NUL never reach the wire inside a parameter).

/// The longest line without tags, CRLF included (RFC 1459).
pub const MAX_BODY: usize = 512;
/// The longest tags part, `@` and the space after included (IRCv3).
pub const MAX_TAGS: usize = 8191;
/// The line reader's bound for an IRC connection: both parts together.
pub const MAX_LINE: usize = MAX_TAGS + MAX_BODY;
/// Parameters kept from one line (RFC 1459: 15 at most).
const MAX_PARAMS: usize = 15;

/// One parsed client line. Tags and the prefix are parsed past and ignored
/// (a client sends none that the gateway acts on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Upper-cased command name or numeric.
    pub command: String,
    pub params: Vec<String>,
}

/// Why a line is not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Blank or only tags/prefix: ignored (RFC 1459 says empty lines are).
    Empty,
    /// Past `MAX_BODY` or `MAX_TAGS`: answered 417.
    TooLong,
}

/// Parses one line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Message, ParseError> {
    let text = String::from_utf8_lossy(line);
    let mut rest: &str = &text;
    if let Some(tagged) = rest.strip_prefix('@') {
        let end = tagged.find(' ').unwrap_or(tagged.len());
        if end + 2 > MAX_TAGS {
            return Err(ParseError::TooLong);
        }
        rest = tagged[end..].trim_start_matches(' ');
    }
    // The body limit counts the CRLF the client sent with it.
    if rest.len() + 2 > MAX_BODY {
        return Err(ParseError::TooLong);
    }
    if let Some(prefixed) = rest.strip_prefix(':') {
        let end = prefixed.find(' ').unwrap_or(prefixed.len());
        rest = prefixed[end..].trim_start_matches(' ');
    }
    let end = rest.find(' ').unwrap_or(rest.len());
    let command = rest[..end].to_ascii_uppercase();
    if command.is_empty() {
        return Err(ParseError::Empty);
    }
    rest = &rest[end..];
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if params.len() == MAX_PARAMS - 1 {
            // The 15th parameter takes the rest of the line (RFC 1459).
            params.push(rest.strip_prefix(':').unwrap_or(rest).to_string());
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing.to_string());
            break;
        }
        let end = rest.find(' ').unwrap_or(rest.len());
        params.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    Ok(Message { command, params })
}

/// A parameter as it may appear inside a line: no CR, LF or NUL.
fn clean(p: &str) -> String {
    p.chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A name usable as a nick or user in a prefix (`nick!user@host`): chat
/// senders of other protocols may have names IRC cannot carry.
pub fn as_nick(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || matches!(c, '!' | '@' | ':' | ',' | '*' | '?')
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    match n.chars().next() {
        None => "anonymous".into(),
        Some('#' | '&' | '$') => format!("_{n}"),
        Some(_) => n,
    }
}

/// Builds `[@tags ][:prefix ]COMMAND p1 p2 :last` (without line ending).
/// Every parameter but the last must be a word (no space, no leading `:`);
/// the last is sent as a trailing parameter.
pub fn line(tags: &str, prefix: &str, command: &str, params: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    if !tags.is_empty() {
        out.push('@');
        out.push_str(tags);
        out.push(' ');
    }
    if !prefix.is_empty() {
        out.push(':');
        out.push_str(prefix);
        out.push(' ');
    }
    out.push_str(command);
    if let Some((last, words)) = params.split_last() {
        for w in words {
            out.push(' ');
            out.push_str(&clean(w).replace(' ', "_"));
        }
        out.push_str(" :");
        out.push_str(&clean(last));
    }
    let body_start = if tags.is_empty() { 0 } else { tags.len() + 2 };
    truncate_at(&mut out, body_start + MAX_BODY - 2);
    out.into_bytes()
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_at(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// `text` as pieces that each fit in `room` bytes: one per line of the
/// text, long lines split at character boundaries. Never empty (an empty
/// text is one empty piece).
pub fn split_text(text: &str, room: usize) -> Vec<String> {
    let room = room.max(16);
    let mut out = Vec::new();
    for l in text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        let l = l.replace('\0', " ");
        let mut rest = l.as_str();
        while rest.len() > room {
            let mut end = room;
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
        out.push(rest.to_string());
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// A tag value escaped per IRCv3 message-tags.
pub fn escape_tag(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds since the Unix epoch as the `server-time` tag wants them:
/// `YYYY-MM-DDThh:mm:ss.sssZ` (UTC).
pub fn server_time(ts_ms: u64) -> String {
    let secs = ts_ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        ts_ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Message {
        parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_prefix_tags_params_and_trailing() {
        let m = p("@time=x;a=b :nick!u@h PRIVMSG #general :hello  there");
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, vec!["#general", "hello  there"]);
        assert_eq!(p("nick  alice").params, vec!["alice"]);
        assert_eq!(p("USER a 0 * :A B").params, vec!["a", "0", "*", "A B"]);
        assert_eq!(p("privmsg #a :").params, vec!["#a", ""]);
        assert_eq!(p("cap ls 302").command, "CAP");
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b":only.prefix"), Err(ParseError::Empty));
    }

    #[test]
    fn fifteen_params_at_most() {
        let m = p("X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
        assert_eq!(m.params.len(), 15);
        assert_eq!(m.params[14], "15 16 17");
    }

    #[test]
    fn body_over_512_and_tags_over_8191_are_too_long() {
        let body = format!("PRIVMSG #a :{}", "x".repeat(498));
        assert_eq!(body.len() + 2, 512);
        assert!(parse(body.as_bytes()).is_ok());
        let over = format!("{body}x");
        assert_eq!(parse(over.as_bytes()), Err(ParseError::TooLong));
        let tagged = format!("@a={} {body}", "v".repeat(8000));
        assert!(parse(tagged.as_bytes()).is_ok());
        let tagged = format!("@a={} {body}", "v".repeat(8200));
        assert_eq!(parse(tagged.as_bytes()), Err(ParseError::TooLong));
    }

    #[test]
    fn output_lines_stay_within_512_and_carry_no_line_breaks() {
        let l = line("", "srv", "NOTICE", &["a b", "x\r\nQUIT"]);
        assert_eq!(l, b":srv NOTICE a_b :x  QUIT");
        let long = "é".repeat(400);
        let l = line("time=1", "srv", "PRIVMSG", &["#a", &long]);
        let body = &l[b"@time=1 ".len()..];
        assert!(body.len() <= 510, "{}", body.len());
        assert!(std::str::from_utf8(&l).is_ok());
    }

    #[test]
    fn split_text_per_line_and_length() {
        assert_eq!(split_text("a\nb\r\n\nc", 100), vec!["a", "b", "c"]);
        assert_eq!(split_text("", 100), vec![""]);
        let parts = split_text(&"ab".repeat(20), 16);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= 16));
        assert_eq!(parts.concat(), "ab".repeat(20));
    }

    #[test]
    fn nicks_and_tags_are_made_safe() {
        assert_eq!(as_nick("a b!c@d"), "a_b_c_d");
        assert_eq!(as_nick(""), "anonymous");
        assert_eq!(as_nick("#x"), "_#x");
        assert_eq!(escape_tag("a;b c\\"), "a\\:b\\sc\\\\");
    }

    #[test]
    fn server_time_is_rfc3339_utc_with_millis() {
        assert_eq!(server_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(server_time(1_733_400_000_123), "2024-12-05T12:00:00.123Z");
        assert_eq!(server_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
