//! Channel commands onto the session layer's rooms (`rooms.rs`,
//! `sessions.rs`): JOIN (the room event, unless the nick is a member
//! already; the room added to the connection's stream; its last messages
//! replayed), PART (the leave event), TOPIC (read, or the topic event),
//! PRIVMSG and NOTICE (a CHAT with a msg_id made here), NAMES, WHO and LIST
//! (the committed members and topics with presence), WHOIS (presence and
//! the rooms of a name) and a minimal MODE. Every event and message carries
//! a msg_id of this connection, so its commit is recognised when it comes
//! back (`render.rs`).

use super::codec::{as_nick, line, Message};
use super::numerics::*;
use super::session::room_of;
use crate::clock::wall_ms;
use crate::conn::Role;
use crate::runtime::Runtime;
use chorus_core::client_wire::ServerLine;
use chorus_core::{Chat, Event};
use mio::Token;

/// Targets one PRIVMSG/NOTICE may name (ISUPPORT MAXTARGETS).
const MAX_TARGETS: usize = 4;
/// Channels one JOIN/PART line may name (each is one subscription change).
const MAX_JOIN_LIST: usize = 16;

/// A member of a channel: the committed membership, presence, and what
/// this node knows of it if it is one of its IRC sessions.
struct Member {
    nick: String,
    user: String,
    realname: String,
    /// Online (presence) and not marked away.
    here: bool,
}

impl Runtime {
    fn irc_reply(&mut self, token: Token, prefix: &str, command: &str, params: &[&str]) {
        let l = line("", prefix, command, params);
        self.push_line_crlf(token, &l);
    }

    /// This node's registered IRC session named `nick`, if any.
    fn local_irc(&self, nick: &str) -> Option<&super::IrcSession> {
        self.conns.values().find_map(|c| match &c.role {
            Role::Client(st) => st
                .irc
                .as_deref()
                .filter(|s| s.registered && s.target() == nick),
            _ => None,
        })
    }

    /// The members of `room` in name order (WHO of the session layer), with
    /// `me` added while its own join is not committed yet.
    fn irc_members(&self, room: &str, me: Option<&str>) -> Vec<Member> {
        let mut names: Vec<(String, bool)> = match self.who(room) {
            ServerLine::Who { members, .. } => {
                members.into_iter().map(|m| (m.user, m.online)).collect()
            }
            _ => Vec::new(),
        };
        if let Some(me) = me {
            if !names.iter().any(|(n, _)| n == me) {
                names.push((me.to_string(), true));
                names.sort();
            }
        }
        names
            .into_iter()
            .map(|(nick, online)| {
                let local = self.local_irc(&nick);
                Member {
                    user: local
                        .and_then(|s| s.user.clone())
                        .unwrap_or_else(|| as_nick(&nick)),
                    realname: local.map(|s| s.realname.clone()).unwrap_or_default(),
                    here: online && local.is_none_or(|s| s.away.is_none()),
                    nick: as_nick(&nick),
                }
            })
            .collect()
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
        let msg_id = s.next_msg_id();
        // The session's name (a guest's `~nick` with accounts on); none:
        // guests are off and this connection did not log in.
        let Some(nick) = self.session_name(token) else {
            let why = "Cannot join channel: log in first (SASL or PASS; guests are off)";
            return self.irc_numeric(token, ERR_NEEDREGGEDNICK, &[chan, why]);
        };
        let Ok(next) = self.stream_add_room(token, &room) else {
            let why = "You have joined too many channels";
            return self.irc_numeric(token, ERR_TOOMANYCHANNELS, &[chan, why]);
        };
        if let Some(s) = self.irc_session(token) {
            s.channels.insert(room.clone());
        }
        // Membership is committed and outlives the connection: a nick that
        // is a member already (a reconnect) is not joined twice.
        let member = self
            .node
            .rooms()
            .get(&room)
            .is_some_and(|r| r.members.contains(&nick));
        if !member {
            self.on_room_request(token, Event::Join, &room, None, Some(msg_id));
        }
        self.irc_reply(token, &mask, "JOIN", &[chan]);
        self.irc_topic_of(token, &room, false);
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
        let msg_id = s.next_msg_id();
        self.stream_remove_room(token, &room);
        self.on_room_request(token, Event::Leave, &room, None, Some(msg_id));
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
                    self.irc_numeric(token, numeric, &[t, &why]);
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
    ) -> Result<(), (&'static str, String)> {
        if !target.starts_with('#') {
            return Err((
                ERR_NOSUCHNICK,
                "No such nick/channel (chorus has rooms only: write to a #channel)".into(),
            ));
        }
        let room = room_of(target).ok_or((ERR_NOSUCHCHANNEL, "No such channel".into()))?;
        let me = self.me.0;
        // The same sender rule as a JSON-line CHAT (`login.rs`): the
        // account, a guest's `~nick`, or refused when guests are off.
        let user = self.sender_name(token, None).map_err(|(_, why)| {
            (
                ERR_CANNOTSENDTOCHAN,
                format!("Cannot send to channel: {why}"),
            )
        })?;
        let s = self
            .irc_session(token)
            .ok_or((ERR_NOSUCHCHANNEL, "gone".into()))?;
        if !s.channels.contains(room) {
            return Err((
                ERR_CANNOTSENDTOCHAN,
                "Cannot send to channel (join it first)".into(),
            ));
        }
        let chat = Chat {
            msg_id: s.next_msg_id(),
            room_id: room.to_string(),
            sender_id: me,
            user,
            payload: text.to_string(),
            ts_ms: wall_ms(),
            event: None,
        };
        self.on_chat(token, chat);
        Ok(())
    }

    /// TOPIC #chan: the committed topic; TOPIC #chan :text sets it (a room
    /// event; every member's client shows it when it commits).
    pub(crate) fn irc_topic(&mut self, token: Token, m: &Message) {
        let chan = m.params[0].clone();
        let Some(room) = room_of(&chan).map(str::to_string) else {
            return self.irc_numeric(token, ERR_NOSUCHCHANNEL, &[&chan, "No such channel"]);
        };
        let Some(text) = m.params.get(1) else {
            return self.irc_topic_of(token, &room, true);
        };
        let Some(s) = self.irc_session(token) else {
            return;
        };
        if !s.channels.contains(&room) {
            let why = "You're not on that channel";
            return self.irc_numeric(token, ERR_NOTONCHANNEL, &[&chan, why]);
        }
        let msg_id = s.next_msg_id();
        let topic = Some(text.clone());
        self.on_room_request(token, Event::Topic, &room, topic, Some(msg_id));
    }

    /// 332 with the room's topic; 331 if it has none and `always`.
    fn irc_topic_of(&mut self, token: Token, room: &str, always: bool) {
        let topic = match self.who(room) {
            ServerLine::Who { topic, .. } => topic,
            _ => String::new(),
        };
        let chan = format!("#{room}");
        if !topic.is_empty() {
            self.irc_numeric(token, RPL_TOPIC, &[&chan, &topic]);
        } else if always {
            self.irc_numeric(token, RPL_NOTOPIC, &[&chan, "No topic is set"]);
        }
    }

    pub(crate) fn irc_names_cmd(&mut self, token: Token, m: &Message) {
        let Some(list) = m.params.first() else {
            return self.irc_numeric(token, RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
        };
        for chan in list.split(',').take(MAX_JOIN_LIST) {
            match room_of(chan) {
                Some(room) => self.irc_names_of(token, room),
                None => self.irc_numeric(token, RPL_ENDOFNAMES, &[chan, "End of /NAMES list"]),
            }
        }
    }

    /// 353 lines (within 512 bytes each) and 366.
    fn irc_names_of(&mut self, token: Token, room: &str) {
        let chan = format!("#{room}");
        let me = self
            .irc_session(token)
            .is_some_and(|s| s.channels.contains(room))
            .then(|| self.session_name(token))
            .flatten();
        let members = self.irc_members(room, me.as_deref());
        let nicks: Vec<String> = members.into_iter().map(|m| m.nick).collect();
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
        if let Some(room) = room_of(&mask).map(str::to_string) {
            let me = self
                .irc_session(token)
                .is_some_and(|s| s.channels.contains(&room))
                .then(|| self.session_name(token))
                .flatten();
            for mem in self.irc_members(&room, me.as_deref()) {
                let flags = if mem.here { "H" } else { "G" };
                let last = format!("0 {}", mem.realname);
                let params = [&mask, &mem.user, "chorus", &server, &mem.nick, flags, &last];
                self.irc_numeric(token, RPL_WHOREPLY, &params.map(|p| p as &str));
            }
        }
        self.irc_numeric(token, RPL_ENDOFWHO, &[&mask, "End of WHO list"]);
    }

    /// WHOIS: anyone online anywhere in the cluster (presence), with the
    /// rooms the name is a member of; user, real name and away are known
    /// for this node's own IRC sessions.
    pub(crate) fn irc_whois(&mut self, token: Token, m: &Message) {
        let nick = m.params.last().cloned().unwrap_or_default();
        if !self.node.presence().is_online(&nick) {
            self.irc_numeric(token, ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
            return self.irc_numeric(token, RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list"]);
        }
        let local = self.local_irc(&nick).cloned();
        let server = match &local {
            Some(_) => self
                .irc
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or_default(),
            None => "chorus".to_string(),
        };
        let chans: Vec<String> = self
            .node
            .rooms()
            .rooms_of(&nick)
            .map(|r| format!("#{r}"))
            .collect();
        let user = local
            .as_ref()
            .and_then(|s| s.user.clone())
            .unwrap_or_else(|| as_nick(&nick));
        let real = local
            .as_ref()
            .map(|s| s.realname.clone())
            .unwrap_or_default();
        self.irc_numeric(token, RPL_WHOISUSER, &[&nick, &user, "chorus", "*", &real]);
        for chunk in chans.chunks(20) {
            self.irc_numeric(token, RPL_WHOISCHANNELS, &[&nick, &chunk.join(" ")]);
        }
        self.irc_numeric(token, RPL_WHOISSERVER, &[&nick, &server, "a chorus node"]);
        if let Some(a) = local.as_ref().and_then(|s| s.away.clone()) {
            self.irc_numeric(token, RPL_AWAY, &[&nick, &a]);
        }
        self.irc_numeric(token, RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list"]);
    }

    /// LIST: every room with its members, presence and topic.
    pub(crate) fn irc_list(&mut self, token: Token, _m: &Message) {
        self.irc_numeric(token, RPL_LISTSTART, &["Channel", "Users  Name"]);
        if let ServerLine::Rooms { rooms, .. } = self.room_list() {
            for r in rooms {
                let users = r.members.to_string();
                let topic = format!("[{} messages, {} online] {}", r.messages, r.online, r.topic);
                let chan = format!("#{}", r.room_id);
                self.irc_numeric(token, RPL_LIST, &[&chan, &users, topic.trim_end()]);
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
