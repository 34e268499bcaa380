//! Connection registration and the commands around it: CAP (LS, LIST, REQ,
//! END; registration waits while capabilities are negotiated), NICK, USER,
//! PING/PONG, QUIT, AWAY and MOTD; then the welcome burst 001–005 and the
//! MOTD. With accounts on, registration also waits for a login being
//! checked (SASL or PASS, `auth.rs`), a logged-in session's nick is its
//! account, and a guest's session name is `~nick` (`login.rs`).

use super::codec::{as_nick, line, server_time, Message};
use super::numerics::*;
use super::session::{valid_nick, CAPS};
use crate::conn::MAX_SUBSCRIBED_ROOMS;
use crate::runtime::Runtime;
use mio::Token;

/// The MOTD, one line each (372).
const MOTD: &[&str] = &[
    "chorus: every message in one total order on every node.",
    "Channels are rooms (#general is room general); JOIN replays recent messages.",
    "Messages from IRC, the terminal client and the web arrive here in commit order.",
];
const VERSION: &str = concat!("chorus-", env!("CARGO_PKG_VERSION"));

impl Runtime {
    fn irc_server_name(&self) -> String {
        self.irc
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default()
    }

    fn irc_send(&mut self, token: Token, prefix: &str, command: &str, params: &[&str]) {
        let l = line("", prefix, command, params);
        self.push_line_crlf(token, &l);
    }

    pub(crate) fn irc_cap(&mut self, token: Token, m: &Message) {
        let server = self.irc_server_name();
        // `sasl` is offered only where there are accounts to log in to.
        let mut offered = CAPS.to_vec();
        if self.irc_accounts() {
            offered.push("sasl");
        }
        let Some(s) = self.irc_session(token) else {
            return;
        };
        let target = s.target().to_string();
        let sub = m.params[0].to_ascii_uppercase();
        match sub.as_str() {
            "LS" => {
                if !s.registered {
                    s.negotiating = true;
                }
                let caps = offered.join(" ");
                self.irc_send(token, &server, "CAP", &[&target, "LS", &caps]);
            }
            "LIST" => {
                let caps = s.caps();
                self.irc_send(token, &server, "CAP", &[&target, "LIST", &caps]);
            }
            "REQ" => {
                if !s.registered {
                    s.negotiating = true;
                }
                let asked = m.params.get(1).cloned().unwrap_or_default();
                let wanted: Vec<(&str, bool)> = asked
                    .split_whitespace()
                    .map(|c| match c.strip_prefix('-') {
                        Some(c) => (c, false),
                        None => (c, true),
                    })
                    .collect();
                let known = wanted.iter().all(|(c, _)| offered.contains(c));
                if known {
                    for (c, on) in &wanted {
                        s.set_cap(c, *on);
                    }
                }
                let verdict = if known { "ACK" } else { "NAK" };
                self.irc_send(token, &server, "CAP", &[&target, verdict, &asked]);
            }
            "END" => {
                s.negotiating = false;
                self.irc_try_register(token);
            }
            _ => self.irc_numeric(token, ERR_INVALIDCAPCMD, &[&sub, "Invalid CAP command"]),
        }
    }

    /// True if `nick` is online anywhere in the cluster (presence) or
    /// another IRC connection of this node chose it during registration.
    fn irc_nick_taken(&self, token: Token, nick: &str) -> bool {
        self.node.presence().is_online(nick) || self.conns.iter().any(|(t, c)| {
            *t != token
                && matches!(&c.role, crate::conn::Role::Client(st)
                    if st.irc.as_ref().is_some_and(|s| s.nick.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(nick)))
                        && !c.closing)
        })
    }

    pub(crate) fn irc_nick(&mut self, token: Token, m: &Message) {
        let Some(nick) = m.params.first().filter(|n| !n.is_empty()).cloned() else {
            return self.irc_numeric(token, ERR_NONICKNAMEGIVEN, &["No nickname given"]);
        };
        if !valid_nick(&nick) {
            return self.irc_numeric(token, ERR_ERRONEUSNICKNAME, &[&nick, "Erroneous nickname"]);
        }
        if self
            .irc_session(token)
            .is_some_and(|s| s.nick.as_deref() == Some(nick.as_str()))
        {
            return; // already its nick (it is online as itself)
        }
        let registered = self.irc_session(token).is_some_and(|s| s.registered);
        if registered || self.account_of(token).is_some() {
            // With accounts on, a logged-in session's nick is its account
            // and a guest without guests allowed may take no name.
            if let Err((_, why)) = self.nick_name(token, nick.clone()) {
                return self.irc_numeric(token, ERR_NICKNAMEINUSE, &[&nick, &why]);
            }
        }
        // With accounts on, a name before registration is not yet claimed:
        // the login decides it (an account's sessions share its name, a
        // guest's is `~nick`), so only renames check presence.
        let claim_later = !registered && self.irc_accounts();
        if !claim_later && self.irc_nick_taken(token, &nick) {
            let why = "Nickname is already in use";
            return self.irc_numeric(token, ERR_NICKNAMEINUSE, &[&nick, why]);
        }
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if s.registered {
            // A rename of the session: committed as a nick event that
            // renames it in every room (`rooms.rs`); answered at once.
            let old = s.mask();
            let msg_id = s.next_msg_id();
            s.nick = Some(nick.clone());
            self.on_nick(token, nick.clone(), Some(msg_id));
            self.irc_send(token, &old, "NICK", &[&nick]);
        } else {
            s.nick = Some(nick);
            self.irc_try_register(token);
        }
    }

    pub(crate) fn irc_user(&mut self, token: Token, m: &Message) {
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if s.registered {
            let why = "You may not reregister";
            return self.irc_numeric(token, ERR_ALREADYREGISTERED, &[why]);
        }
        let mut user = as_nick(&m.params[0]);
        user.truncate(user.char_indices().nth(16).map_or(user.len(), |(i, _)| i));
        s.user = Some(user);
        s.realname = m.params[3].clone();
        self.irc_try_register(token);
    }

    pub(crate) fn irc_ping(&mut self, token: Token, m: &Message) {
        let server = self.irc_server_name();
        self.irc_send(token, &server, "PONG", &[&server, &m.params[0]]);
    }

    pub(crate) fn irc_pong(&mut self, _token: Token, _m: &Message) {}

    pub(crate) fn irc_quit(&mut self, token: Token, m: &Message) {
        let why = m.params.first().map_or("Quit", String::as_str).to_string();
        self.irc_close(token, &format!("Quit: {why}"));
    }

    pub(crate) fn irc_away(&mut self, token: Token, m: &Message) {
        let Some(s) = self.irc_session(token) else {
            return;
        };
        match m.params.first().filter(|t| !t.is_empty()) {
            Some(text) => {
                s.away = Some(text.clone());
                self.irc_numeric(token, RPL_NOWAWAY, &["You have been marked as being away"]);
            }
            None => {
                s.away = None;
                let why = "You are no longer marked as being away";
                self.irc_numeric(token, RPL_UNAWAY, &[why]);
            }
        }
    }

    pub(crate) fn irc_motd(&mut self, token: Token, _m: &Message) {
        let server = self.irc_server_name();
        let start = format!("- {server} Message of the day -");
        self.irc_numeric(token, RPL_MOTDSTART, &[&start]);
        for l in MOTD {
            self.irc_numeric(token, RPL_MOTD, &[&format!("- {l}")]);
        }
        self.irc_numeric(token, RPL_ENDOFMOTD, &["End of /MOTD command."]);
    }

    /// Completes registration once NICK and USER are in, CAP is done and
    /// no login is being checked (a PASS login starts here).
    pub(crate) fn irc_try_register(&mut self, token: Token) {
        let pending = self
            .conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .is_some_and(|st| st.login_pending);
        let account = self.account_of(token);
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if s.registered || s.negotiating || pending || s.nick.is_none() || s.user.is_none() {
            return;
        }
        if self.irc_pass_login(token) {
            return; // registration completes in the login's answer
        }
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if account.is_some() {
            s.nick.clone_from(&account); // a logged-in session is its account
        }
        s.registered = true;
        let mask = s.mask();
        // The nick is the session's name from now on (presence: online);
        // with accounts on, a guest's is `~nick` (none if guests are off).
        let nick = s.nick.clone().unwrap_or_default();
        let name = self.nick_name(token, nick).ok();
        self.set_session_name(token, name);
        if let Some(c) = self.conns.get_mut(&token) {
            c.deadline = None; // the registration deadline no longer applies
        }
        let server = self.irc_server_name();
        let created = server_time(self.irc.as_ref().map_or(0, |i| i.started_ms));
        let welcome = format!("Welcome to chorus, {mask}");
        self.irc_numeric(token, RPL_WELCOME, &[&welcome]);
        let host = format!("Your host is {server}, running {VERSION}");
        self.irc_numeric(token, RPL_YOURHOST, &[&host]);
        let created = format!("This server was created {created}");
        self.irc_numeric(token, RPL_CREATED, &[&created]);
        self.irc_numeric(token, RPL_MYINFO, &[&server, VERSION, "i", "nt"]);
        let chanlimit = format!("CHANLIMIT=#:{MAX_SUBSCRIBED_ROOMS}");
        let isupport = [
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            &chanlimit,
            "CHANMODES=,,,nt",
            "CHANNELLEN=65",
            "NICKLEN=30",
            "TOPICLEN=390",
            "MAXTARGETS=4",
            "NETWORK=chorus",
            "PREFIX=",
            "are supported by this server",
        ];
        self.irc_numeric(token, RPL_ISUPPORT, &isupport);
        self.irc_motd(
            token,
            &Message {
                command: "MOTD".into(),
                params: Vec::new(),
            },
        );
    }
}
