//! The command table (after Ergo's `irc/commands.go`): each command declares
//! how many parameters it needs, whether it may run before registration, and
//! its handler. `irc_run` answers ERR_UNKNOWNCOMMAND, ERR_NOTREGISTERED and
//! ERR_NEEDMOREPARAMS before any handler runs, so no handler checks them.

use super::codec::Message;
use super::numerics::{ERR_NEEDMOREPARAMS, ERR_NOTREGISTERED, ERR_UNKNOWNCOMMAND};
use crate::runtime::Runtime;
use mio::Token;

type Handler = fn(&mut Runtime, Token, &Message);

/// One row of the table.
struct Command {
    name: &'static str,
    min_params: usize,
    /// May run before registration (001) is complete.
    pre_registration: bool,
    handler: Handler,
}

const fn cmd(name: &'static str, min_params: usize, pre: bool, handler: Handler) -> Command {
    Command {
        name,
        min_params,
        pre_registration: pre,
        handler,
    }
}

/// Every command the gateway knows. NICK and PRIVMSG/NOTICE check their
/// own parameters: their missing-parameter numerics are 431, 411 and 412.
const COMMANDS: &[Command] = &[
    cmd("CAP", 1, true, Runtime::irc_cap),
    cmd("NICK", 0, true, Runtime::irc_nick),
    cmd("USER", 4, true, Runtime::irc_user),
    cmd("PASS", 1, true, Runtime::irc_pass),
    cmd("AUTHENTICATE", 1, true, Runtime::irc_authenticate),
    cmd("PING", 1, true, Runtime::irc_ping),
    cmd("PONG", 0, true, Runtime::irc_pong),
    cmd("QUIT", 0, true, Runtime::irc_quit),
    cmd("JOIN", 1, false, Runtime::irc_join),
    cmd("PART", 1, false, Runtime::irc_part),
    cmd("PRIVMSG", 0, false, Runtime::irc_privmsg),
    cmd("NOTICE", 0, false, Runtime::irc_notice),
    cmd("TOPIC", 1, false, Runtime::irc_topic),
    cmd("NAMES", 0, false, Runtime::irc_names_cmd),
    cmd("WHO", 0, false, Runtime::irc_who),
    cmd("WHOIS", 1, false, Runtime::irc_whois),
    cmd("LIST", 0, false, Runtime::irc_list),
    cmd("MODE", 1, false, Runtime::irc_mode),
    cmd("AWAY", 0, false, Runtime::irc_away),
    cmd("MOTD", 0, false, Runtime::irc_motd),
];

impl Runtime {
    /// Runs one parsed line through the table.
    pub(crate) fn irc_run(&mut self, token: Token, m: Message) {
        let Some(c) = COMMANDS.iter().find(|c| c.name == m.command) else {
            return self.irc_numeric(token, ERR_UNKNOWNCOMMAND, &[&m.command, "Unknown command"]);
        };
        let registered = self.irc_session(token).is_some_and(|s| s.registered);
        if !registered && !c.pre_registration {
            return self.irc_numeric(token, ERR_NOTREGISTERED, &["You have not registered"]);
        }
        if m.params.len() < c.min_params {
            return self.irc_numeric(
                token,
                ERR_NEEDMOREPARAMS,
                &[c.name, "Not enough parameters"],
            );
        }
        (c.handler)(self, token, &m);
    }
}

#[cfg(test)]
mod tests {
    use super::COMMANDS;

    #[test]
    fn the_table_has_each_command_once_in_upper_case() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_uppercase())));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        // Only the registration commands run before 001.
        let pre: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.pre_registration)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            pre,
            [
                "CAP",
                "NICK",
                "USER",
                "PASS",
                "AUTHENTICATE",
                "PING",
                "PONG",
                "QUIT"
            ]
        );
    }
}
