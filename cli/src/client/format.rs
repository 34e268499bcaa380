//! How a delivered message looks: one place for the time of day, the sender
//! and the plain-mode line, shared by the TUI and the plain mode.

use chorus_core::client_wire::Delivered;

/// `ts_ms` (milliseconds since the Unix epoch) as `HH:MM:SS` in UTC (no time
/// zone database is needed, and every node and client agree).
pub fn time_of_day(ts_ms: u64) -> String {
    let secs = (ts_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// The sender's name, else `#<sender_id>`.
pub fn sender(d: &Delivered) -> String {
    match &d.user {
        Some(u) if !u.is_empty() => u.clone(),
        _ => format!("#{}", d.sender_id),
    }
}

/// The plain mode's output line: `[#general 12] alice: hello`, numbered by
/// room_seq (newlines in the payload are escaped so that one message is
/// always one line).
pub fn plain_line(d: &Delivered) -> String {
    format!(
        "[#{} {}] {}: {}",
        d.room_id,
        d.room_seq,
        sender(d),
        one_line(&d.payload)
    )
}

/// Replaces line breaks so a message cannot fake extra output lines.
pub fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(user: Option<&str>) -> Delivered {
        Delivered {
            room_seq: 1,
            seq_no: 12,
            term: 1,
            msg_id: "m".into(),
            room_id: "general".into(),
            sender_id: 42,
            user: user.map(str::to_string),
            payload: "hello\nworld".into(),
            ts_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn golden() {
        assert_eq!(time_of_day(1_700_000_000_123), "22:13:20");
        assert_eq!(time_of_day(0), "00:00:00");
        assert_eq!(
            plain_line(&d(Some("alice"))),
            "[#general 1] alice: hello\\nworld"
        );
        assert_eq!(plain_line(&d(None)), "[#general 1] #42: hello\\nworld");
    }
}
