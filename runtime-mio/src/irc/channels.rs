//! Channel commands: JOIN (subscribe to the room, replay its last
//! messages), PART, PRIVMSG and NOTICE (a CHAT of the session layer with a
//! msg_id made here), TOPIC, NAMES, WHO, WHOIS, LIST and a minimal MODE.
//! Who is in a channel: the IRC sessions of this node that joined it.

use super::codec::{line, Message};
use super::numerics::*;
use super::session::room_of;
use crate::clock::wall_ms;
use crate::conn::Role;
use crate::runtime::Runtime;
use chorus_core::client_wire::ServerLine;
use chorus_core::Chat;
use mio::Token;

/// Targets one PRIVMSG/NOTICE may name (ISUPPORT MAXTARGETS).
const MAX_TARGETS: usize = 4;
/// Channels one JOIN/PART line may name (each is one subscription change).
const MAX_JOIN_LIST: usize = 16;

/// A member of a channel as this node sees it.
struct Member {
    nick: String,
    user: String,
    realname: String,
    away: bool,
}

impl Runtime {
    fn irc_reply(&mut self, token: Token, prefix: &str, command: &str, params: &[&str]) {
        let l = line("", prefix, command, params);
        self.push_line_crlf(token, &l);
    }

    /// IRC sessions of this node in `room`, by nick.
    fn irc_members(&self, room: &str) -> Vec<Member> {
        let mut m: Vec<Member> = self
            .conns
            .values()
            .filter(|c| !c.closing)
            .filter_map(|c| match &c.role {
                Role::Client(st) => st.irc.as_deref(),
                _ => None,
            })
            .filter(|s| s.registered && s.channels.contains(room))
            .map(|s| Member {
                nick: s.target().to_string(),
                user: s.user.clone().unwrap_or_default(),
                realname: s.realname.clone(),
                away: s.away.is_some(),
            })
            .collect();
        m.sort_by(|a, b| a.nick.cmp(&b.nick));
        m
    }

    pub(crate) fn irc_join(&mut self, token: Token, m: &Message) {
        if m.params[0] == "0" {
            let joined = self
                .irc_session(token)
                .map(|s| s.channels.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            for room in joined {
                self.irc_part_one(token, &format!("#{room}"), "Left all channels");
            }
            return;
        }
        for chan in m.params[0].split(',').take(MAX_JOIN_LIST) {
            self.irc_join_one(token, chan);
        }
    }

    fn irc_join_one(&mut self, token: Token, chan: &str) {
        let Some(room) = room_of(chan).map(str::to_string) else {
            return self.irc_numeric(token, ERR_NOSUCHCHANNEL, &[chan, "No such channel"]);
        };
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if s.channels.contains(&room) {
            return;
        }
        let mask = s.mask();
        let Ok(next) = self.stream_add_room(token, &room) else {
            let why = "You have joined too many channels";
            return self.irc_numeric(token, ERR_TOOMANYCHANNELS, &[chan, why]);
        };
        if let Some(s) = self.irc_session(token) {
            s.channels.insert(room.clone());
        }
        self.irc_reply(token, &mask, "JOIN", &[chan]);
        self.irc_names_of(token, &room);
        let n = self.irc.as_ref().map_or(0, |i| i.opts.join_replay);
        self.replay_room(token, &room, next, n);
    }

    pub(crate) fn irc_part(&mut self, token: Token, m: &Message) {
        let reason = m.params.get(1).cloned().unwrap_or_default();
        for chan in m.params[0].split(',').take(MAX_JOIN_LIST) {
            self.irc_part_one(token, chan, &reason);
        }
    }

    fn irc_part_one(&mut self, token: Token, chan: &str, reason: &str) {
        let Some(room) = room_of(chan).map(str::to_string) else {
            return self.irc_numeric(token, ERR_NOSUCHCHANNEL, &[chan, "No such channel"]);
        };
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if !s.channels.remove(&room) {
            return self.irc_numeric(
                token,
                ERR_NOTONCHANNEL,
                &[chan, "You're not on that channel"],
            );
        }
        let mask = s.mask();
        self.stream_remove_room(token, &room);
        self.irc_reply(token, &mask, "PART", &[chan, reason]);
    }

    pub(crate) fn irc_privmsg(&mut self, token: Token, m: &Message) {
        self.irc_message(token, m, false);
    }

    /// NOTICE: the same path, but never answered with an error (RFC 2812).
    pub(crate) fn irc_notice(&mut self, token: Token, m: &Message) {
        self.irc_message(token, m, true);
    }

    fn irc_message(&mut self, token: Token, m: &Message, quiet: bool) {
        let cmd = m.command.as_str();
        let Some(targets) = m.params.first() else {
            if !quiet {
                let why = format!("No recipient given ({cmd})");
                self.irc_numeric(token, ERR_NORECIPIENT, &[&why]);
            }
            return;
        };
        let Some(text) = m.params.get(1).filter(|t| !t.is_empty()) else {
            if !quiet {
                self.irc_numeric(token, ERR_NOTEXTTOSEND, &["No text to send"]);
            }
            return;
        };
        let targets: Vec<&str> = targets.split(',').collect();
        if targets.len() > MAX_TARGETS {
            if !quiet {
                let why = format!("Too many recipients (at most {MAX_TARGETS})");
                self.irc_numeric(token, ERR_TOOMANYTARGETS, &[&m.params[0], &why]);
            }
            return;
        }
        for t in targets {
            if let Err((numeric, why)) = self.irc_send_to(token, t, text) {
                if !quiet {
                    self.irc_numeric(token, numeric, &[t, why]);
                }
            }
        }
    }

    /// One message to one target, as a CHAT of the session layer.
    fn irc_send_to(
        &mut self,
        token: Token,
        target: &str,
        text: &str,
    ) -> Result<(), (&'static str, &'static str)> {
        if !target.starts_with('#') {
            return Err((
                ERR_NOSUCHNICK,
                "No such nick/channel (chorus has rooms only: write to a #channel)",
            ));
        }
        let room = room_of(target).ok_or((ERR_NOSUCHCHANNEL, "No such channel"))?;
        let me = self.me.0;
        let s = self.irc_session(token).ok_or((ERR_NOSUCHCHANNEL, "gone"))?;
        if !s.channels.contains(room) {
            return Err((
                ERR_CANNOTSENDTOCHAN,
                "Cannot send to channel (join it first)",
            ));
        }
        let chat = Chat {
            msg_id: s.next_msg_id(),
            room_id: room.to_string(),
            sender_id: me,
            user: s.nick.clone(),
            payload: text.to_string(),
            ts_ms: wall_ms(),
        };
        self.on_chat(token, chat);
        Ok(())
    }

    pub(crate) fn irc_topic(&mut self, token: Token, m: &Message) {
        let chan = &m.params[0];
        if room_of(chan).is_none() {
            return self.irc_numeric(token, ERR_NOSUCHCHANNEL, &[chan, "No such channel"]);
        }
        if m.params.len() > 1 {
            let why = "You're not channel operator (chorus rooms have no topics yet)";
            return self.irc_numeric(token, ERR_CHANOPRIVSNEEDED, &[chan, why]);
        }
        self.irc_numeric(token, RPL_NOTOPIC, &[chan, "No topic is set"]);
    }

    pub(crate) fn irc_names_cmd(&mut self, token: Token, m: &Message) {
        let Some(list) = m.params.first() else {
            return self.irc_numeric(token, RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
        };
        for chan in list.split(',').take(MAX_JOIN_LIST) {
            match room_of(chan) {
                Some(room) => self.irc_names_of(token, &room.to_string()),
                None => self.irc_numeric(token, RPL_ENDOFNAMES, &[chan, "End of /NAMES list"]),
            }
        }
    }

    /// 353 lines (within 512 bytes each) and 366.
    fn irc_names_of(&mut self, token: Token, room: &str) {
        let chan = format!("#{room}");
        let nicks: Vec<String> = self.irc_members(room).into_iter().map(|m| m.nick).collect();
        for chunk in nicks.chunks(20) {
            self.irc_numeric(token, RPL_NAMREPLY, &["=", &chan, &chunk.join(" ")]);
        }
        self.irc_numeric(token, RPL_ENDOFNAMES, &[&chan, "End of /NAMES list"]);
    }

    pub(crate) fn irc_who(&mut self, token: Token, m: &Message) {
        let mask = m.params.first().cloned().unwrap_or_else(|| "*".into());
        let server = self
            .irc
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        if let Some(room) = room_of(&mask) {
            for mem in self.irc_members(room) {
                let flags = if mem.away { "G" } else { "H" };
                let last = format!("0 {}", mem.realname);
                let params = [&mask, &mem.user, "chorus", &server, &mem.nick, flags, &last];
                self.irc_numeric(token, RPL_WHOREPLY, &params.map(|p| p as &str));
            }
        }
        self.irc_numeric(token, RPL_ENDOFWHO, &[&mask, "End of WHO list"]);
    }

    pub(crate) fn irc_whois(&mut self, token: Token, m: &Message) {
        let nick = m.params.last().cloned().unwrap_or_default();
        let server = self
            .irc
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let found = self.conns.values().find_map(|c| match &c.role {
            Role::Client(st) => st
                .irc
                .as_deref()
                .filter(|s| s.registered && s.target().eq_ignore_ascii_case(&nick))
                .cloned(),
            _ => None,
        });
        match found {
            Some(s) => {
                let user = s.user.clone().unwrap_or_default();
                let real = s.realname.clone();
                let n = s.target().to_string();
                self.irc_numeric(token, RPL_WHOISUSER, &[&n, &user, "chorus", "*", &real]);
                let chans: Vec<String> = s.channels.iter().map(|r| format!("#{r}")).collect();
                if !chans.is_empty() {
                    self.irc_numeric(token, RPL_WHOISCHANNELS, &[&n, &chans.join(" ")]);
                }
                self.irc_numeric(token, RPL_WHOISSERVER, &[&n, &server, "a chorus node"]);
                if let Some(a) = &s.away {
                    self.irc_numeric(token, RPL_AWAY, &[&n, a]);
                }
            }
            None => self.irc_numeric(token, ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]),
        }
        self.irc_numeric(token, RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list"]);
    }

    pub(crate) fn irc_list(&mut self, token: Token, _m: &Message) {
        self.irc_numeric(token, RPL_LISTSTART, &["Channel", "Users  Name"]);
        if let ServerLine::Rooms { rooms, .. } = self.room_list() {
            for r in rooms {
                let users = self.irc_members(&r.room_id).len().to_string();
                let topic = format!("{} messages", r.messages);
                let chan = format!("#{}", r.room_id);
                self.irc_numeric(token, RPL_LIST, &[&chan, &users, &topic]);
            }
        }
        self.irc_numeric(token, RPL_LISTEND, &["End of /LIST"]);
    }

    pub(crate) fn irc_mode(&mut self, token: Token, m: &Message) {
        let target = m.params[0].clone();
        let modes = m.params.get(1).cloned().unwrap_or_default();
        if target.starts_with('#') {
            if room_of(&target).is_none() {
                return self.irc_numeric(token, ERR_NOSUCHCHANNEL, &[&target, "No such channel"]);
            }
            match modes.trim_start_matches('+') {
                "" => self.irc_numeric(token, RPL_CHANNELMODEIS, &[&target, "+nt"]),
                "b" => self.irc_numeric(
                    token,
                    RPL_ENDOFBANLIST,
                    &[&target, "End of channel ban list"],
                ),
                _ => {
                    let why = "You're not channel operator (chorus channel modes are fixed: +nt)";
                    self.irc_numeric(token, ERR_CHANOPRIVSNEEDED, &[&target, why]);
                }
            }
            return;
        }
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if !s.target().eq_ignore_ascii_case(&target) {
            let why = "Cant change mode for other users";
            return self.irc_numeric(token, ERR_USERSDONTMATCH, &[why]);
        }
        let mask = s.mask();
        match modes.as_str() {
            "" => self.irc_numeric(token, RPL_UMODEIS, &["+"]),
            // Invisible is what every chorus user already is to /WHO * :
            // acknowledged without state.
            "+i" | "-i" => self.irc_reply(token, &mask, "MODE", &[&target, &modes]),
            _ => self.irc_numeric(token, ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]),
        }
    }
}
