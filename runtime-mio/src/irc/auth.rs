//! Logging in on IRC when `[accounts] enabled`: SASL PLAIN (the `sasl`
//! capability, `AUTHENTICATE PLAIN`, base64 chunks of 400 bytes, numerics
//! 900 and 903–908 of IRCv3 sasl-3.1) and `PASS` (`PASS user:password`, or
//! `PASS password` with the NICK as the user). Both go through the session
//! layer's `Runtime::begin_login`; its outcome comes back through
//! `Runtime::answer_login` (`login.rs`), which calls `irc_login_answer`
//! here. Registration waits while a login is being checked.

use super::codec::Message;
use super::numerics::*;
use super::session::{LoginVia, Sasl};
use crate::runtime::Runtime;
use chorus_core::ErrorCode;
use mio::Token;

/// Bytes of base64 per AUTHENTICATE line; a shorter one (or `+`) ends it.
const CHUNK: usize = 400;
/// Most base64 one exchange may carry: a name, the password bound, slack.
const MAX_SASL_B64: usize = 4 * (crate::login::MAX_PASSWORD_BYTES + 256) / 3 + 4;

impl Runtime {
    /// True if this node asks IRC clients for accounts.
    pub(crate) fn irc_accounts(&self) -> bool {
        self.login.enabled()
    }

    /// AUTHENTICATE (before registration only: the nick of a registered
    /// session is not swapped for an account under it).
    pub(crate) fn irc_authenticate(&mut self, token: Token, m: &Message) {
        let enabled = self.irc_accounts();
        let logged_in = self.account_of(token).is_some();
        let Some(s) = self.irc_session(token) else {
            return;
        };
        let arg = m.params[0].clone();
        if !enabled || !s.sasl {
            let why = "SASL authentication failed: CAP REQ :sasl first (accounts must be on)";
            return self.irc_numeric(token, ERR_SASLFAIL, &[why]);
        }
        if logged_in {
            return self.irc_numeric(token, ERR_SASLALREADY, &["You have already authenticated"]);
        }
        if s.registered {
            let why = "SASL authentication failed: log in before registration";
            return self.irc_numeric(token, ERR_SASLFAIL, &[why]);
        }
        if arg == "*" {
            s.sasl_state = Sasl::Idle;
            s.sasl_buf.clear();
            return self.irc_numeric(token, ERR_SASLABORTED, &["SASL authentication aborted"]);
        }
        match s.sasl_state {
            Sasl::Checking => {
                let why = "SASL authentication failed: a login is being checked";
                self.irc_numeric(token, ERR_SASLFAIL, &[why]);
            }
            Sasl::Idle => {
                if !arg.eq_ignore_ascii_case("PLAIN") {
                    self.irc_numeric(
                        token,
                        RPL_SASLMECHS,
                        &["PLAIN", "are available SASL mechanisms"],
                    );
                    return self.irc_numeric(token, ERR_SASLFAIL, &["SASL authentication failed"]);
                }
                s.sasl_state = Sasl::Data;
                s.sasl_buf.clear();
                // Literally `AUTHENTICATE +` (not `:+`): some clients
                // compare the line, not its parsed parameter.
                self.push_line_crlf(token, b"AUTHENTICATE +");
            }
            Sasl::Data => {
                if arg.len() > CHUNK || s.sasl_buf.len() + arg.len() > MAX_SASL_B64 {
                    s.sasl_state = Sasl::Idle;
                    s.sasl_buf.clear();
                    return self.irc_numeric(token, ERR_SASLTOOLONG, &["SASL message too long"]);
                }
                if arg != "+" {
                    s.sasl_buf.push_str(&arg);
                }
                if arg.len() == CHUNK {
                    return; // more chunks follow
                }
                let data = std::mem::take(&mut s.sasl_buf);
                match plain(&data) {
                    Some((user, password)) => {
                        s.sasl_state = Sasl::Checking;
                        s.login_via = LoginVia::Sasl;
                        self.begin_login(token, user, password);
                    }
                    None => {
                        s.sasl_state = Sasl::Idle;
                        let why = "SASL authentication failed: malformed PLAIN credentials";
                        self.irc_numeric(token, ERR_SASLFAIL, &[why]);
                    }
                }
            }
        }
    }

    /// PASS before registration: kept until NICK and USER are in.
    pub(crate) fn irc_pass(&mut self, token: Token, m: &Message) {
        let enabled = self.irc_accounts();
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if s.registered {
            let why = "You may not reregister";
            return self.irc_numeric(token, ERR_ALREADYREGISTERED, &[why]);
        }
        if enabled {
            s.pass = Some(m.params[0].clone());
        }
    }

    /// Starts the PASS login at registration time; true if registration
    /// must wait for its answer.
    pub(crate) fn irc_pass_login(&mut self, token: Token) -> bool {
        if !self.irc_accounts() || self.account_of(token).is_some() {
            return false;
        }
        let Some(s) = self.irc_session(token) else {
            return false;
        };
        if s.pass_tried {
            return false;
        }
        let Some(pass) = s.pass.take() else {
            return false;
        };
        s.pass_tried = true;
        s.login_via = LoginVia::Pass;
        let (user, password) = match pass.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (s.nick.clone().unwrap_or_default(), pass),
        };
        self.begin_login(token, user, password);
        true
    }

    /// The outcome of a login of an IRC connection (from `answer_login`).
    pub(crate) fn irc_login_answer(
        &mut self,
        token: Token,
        outcome: Result<String, (ErrorCode, String)>,
    ) {
        let Some(s) = self.irc_session(token) else {
            return;
        };
        let via = s.login_via;
        s.sasl_state = Sasl::Idle;
        match (via, outcome) {
            (_, Ok(user)) => {
                if let Some(s) = self.irc_session(token) {
                    // The session's nick is its account from now on.
                    s.nick = Some(user.clone());
                }
                let mask = self
                    .irc_session(token)
                    .map(|s| s.mask())
                    .unwrap_or_default();
                let text = format!("You are now logged in as {user}");
                self.irc_numeric(token, RPL_LOGGEDIN, &[&mask, &user, &text]);
                if via == LoginVia::Sasl {
                    self.irc_numeric(token, RPL_SASLSUCCESS, &["SASL authentication successful"]);
                }
                self.irc_try_register(token);
            }
            (LoginVia::Sasl, Err((_, why))) => {
                let text = format!("SASL authentication failed: {why}");
                self.irc_numeric(token, ERR_SASLFAIL, &[&text]);
            }
            (LoginVia::Pass, Err((_, why))) => {
                self.irc_numeric(token, ERR_PASSWDMISMATCH, &["Password incorrect"]);
                self.irc_close(token, &format!("login refused: {why}"));
            }
        }
    }
}

/// `authzid NUL authcid NUL password` of base64 `data` (an authzid, if
/// given, must be the authcid: nobody logs in as someone else).
fn plain(data: &str) -> Option<(String, String)> {
    let raw = base64_decode(data)?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\0');
    let (authz, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || (!authz.is_empty() && authz != user) {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 with padding (RFC 4648 §4); None on any other input.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, q) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_credentials() {
        // "\0alice\0sesame99" and "alice\0alice\0sesame99"
        assert_eq!(
            plain("AGFsaWNlAHNlc2FtZTk5"),
            Some(("alice".into(), "sesame99".into()))
        );
        assert_eq!(
            plain("YWxpY2UAYWxpY2UAc2VzYW1lOTk="),
            Some(("alice".into(), "sesame99".into()))
        );
        // authzid bob for authcid alice: refused.
        assert_eq!(plain("Ym9iAGFsaWNlAHNlc2FtZTk5"), None);
        assert_eq!(plain("not base64!"), None);
        assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
        assert_eq!(base64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(base64_decode("YQ==YQ=="), None);
    }
}
