//! The session layer's accounts: LOGIN, REGISTER and the operators'
//! USER_ADMIN on the JSON-line port (and `/ws`, which shares the dispatch),
//! who a session's messages are from, guests, room operators, and the
//! per-account and failed-login limits. Off unless `[accounts] enabled`.
//!
//! Passwords are never hashed on the loop: `password.rs` runs argon2id on a
//! bounded worker pool and wakes the loop with the result
//! (`on_password_results`). Account changes are committed entries
//! (`chorus_core::accounts`); their submitter answers once the entry is
//! delivered here, reading the fold, so the answer is what every node agrees
//! on (a registration that lost a race to the same name gets `conflict`).
//!
//! For the IRC and web adapters (other protocol front ends of a session):
//! - `Runtime::begin_login(token, user, password)` starts a login of the
//!   client connection `token` (any transport: it only needs the
//!   connection to be a `Role::Client`); the outcome arrives later through
//!   `Runtime::login_finished`, which records the account on the session
//!   and calls `Runtime::answer_login(token, Ok(user) | Err((code, text)))`.
//!   That function is the one place that formats the answer: today it
//!   writes LOGGED_IN / ERROR lines; an adapter adds its own branch there
//!   (IRC: 903 / 904 numerics; web: the form's result).
//! - `Runtime::sender_name(token, claimed)` is what every message's sender
//!   must be (Err: refuse with that code and text); `Runtime::account_of`
//!   the logged-in account, if any.
//!
//! Rules: with accounts on, a logged-in session's messages carry its account
//! name and a CHAT naming anyone else is refused (`forbidden`); NICK to
//! another name is refused; a session that did not log in is a guest whose
//! name is shown as `~name` (no account name starts with `~`), or, with
//! `guests = false`, may not post or take a name (`unauthorized`). TOPIC
//! and KICK of a room are its creator's (KICK always: the fold checks it).

use crate::clients::client_id;
use crate::conn::Role;
use crate::limits::{LoginFailures, TokenBucket};
use crate::options::{AccountOptions, Registration};
use crate::password::{self, Job, Outcome, Pool};
use crate::runtime::Runtime;
use chorus_core::client_wire::ServerLine;
use chorus_core::{ClientRequest, Entry, ErrorCode, Event, Input};
use mio::{Token, Waker};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::{info, warn};

/// Longest password accepted (bytes): argon2 takes any length, but a
/// megabyte line of password would be hashed for nothing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password a registration accepts.
pub const MIN_PASSWORD_BYTES: usize = 8;
/// Account changes waiting for their entry (more: ERROR `busy`).
const MAX_PENDING_OPS: usize = 10_000;
/// Per-account buckets kept (idle full ones are dropped past it).
const MAX_BUCKETS: usize = 100_000;

/// What a worker's result is for.
#[derive(Debug)]
pub enum Tag {
    /// A LOGIN of `token` as `user`; `real`: the account exists and is
    /// enabled (otherwise the dummy hash was checked, and it fails anyway).
    Login {
        token: Token,
        user: String,
        real: bool,
        from: Option<IpAddr>,
    },
    /// A hash for an account change `op` of `user`, then submitted.
    Hash {
        token: Token,
        op: Event,
        user: String,
        /// Log the session in once committed (REGISTER).
        login_after: bool,
    },
}

/// An account change submitted and not yet answered.
#[derive(Debug)]
struct PendingOp {
    token: Token,
    user: String,
    payload: String,
    login_after: bool,
    delivered: bool,
    acked: bool,
}

/// The account state of one node's runtime.
#[derive(Debug)]
pub struct LoginState {
    pub opts: AccountOptions,
    pool: Option<Pool<Tag>>,
    /// The hash checked for unknown or disabled accounts.
    dummy: String,
    failures: LoginFailures,
    buckets: HashMap<String, (TokenBucket, u64)>,
    pending: HashMap<String, PendingOp>,
}

impl LoginState {
    /// Starts the hashing pool when accounts are on.
    pub fn new(opts: AccountOptions, waker: Arc<Waker>) -> Result<LoginState, String> {
        let (pool, dummy) = if opts.enabled {
            opts.argon2.check()?;
            let dummy = password::dummy(&opts.argon2)?;
            let pool = Pool::start(opts.hash_workers, opts.hash_queue, opts.argon2, waker);
            (Some(pool), dummy)
        } else {
            (None, String::new())
        };
        Ok(LoginState {
            opts,
            pool,
            dummy,
            failures: LoginFailures::default(),
            buckets: HashMap::new(),
            pending: HashMap::new(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.opts.enabled
    }
}

/// `~name`: how a guest's name is shown.
pub fn guest(name: &str) -> String {
    format!("~{}", name.trim_start_matches('~'))
}

/// Constant-time equality of two secrets (length aside).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_password(p: &str) -> Result<(), String> {
    if p.len() < MIN_PASSWORD_BYTES || p.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "a password has {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

fn check_account_name(name: &str) -> Result<(), String> {
    crate::rooms::check_name(name)?;
    if name.starts_with('~') {
        return Err("an account name does not start with ~ (guests' names do)".into());
    }
    Ok(())
}

impl Runtime {
    fn client_from(&self, token: Token) -> Option<IpAddr> {
        self.conns.get(&token).and_then(|c| c.from)
    }

    /// The account `token` is logged in as.
    pub fn account_of(&mut self, token: Token) -> Option<String> {
        self.conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .and_then(|st| st.account.clone())
    }

    /// Who a message of `token` is from, given the name it `claimed`
    /// (CHAT's `user`); Err: refuse it with this code and text.
    pub fn sender_name(
        &mut self,
        token: Token,
        claimed: Option<String>,
    ) -> Result<Option<String>, (ErrorCode, String)> {
        let session = self.session_name(token);
        if !self.login.enabled() {
            // Names are not authenticated: the session's, else the line's.
            return Ok(session.or(claimed));
        }
        if let Some(account) = self.account_of(token) {
            return match claimed {
                Some(c) if c != account => Err((
                    ErrorCode::Forbidden,
                    format!("logged in as {account}: a message cannot be sent as {c}"),
                )),
                _ => Ok(Some(account)),
            };
        }
        if !self.login.opts.guests {
            return Err((
                ErrorCode::Unauthorized,
                "this node needs a LOGIN before messages (guests are off)".into(),
            ));
        }
        let name = session.or(claimed).unwrap_or_else(|| "guest".into());
        Ok(Some(guest(&name)))
    }

    /// The name a NICK (or HELLO `user`) of `token` gives the session.
    pub(crate) fn nick_name(
        &mut self,
        token: Token,
        name: String,
    ) -> Result<String, (ErrorCode, String)> {
        if !self.login.enabled() {
            return Ok(name);
        }
        if let Some(account) = self.account_of(token) {
            if name == account {
                return Ok(name);
            }
            return Err((
                ErrorCode::Forbidden,
                format!("logged in as {account}: the session's name is its account"),
            ));
        }
        if !self.login.opts.guests {
            return Err((
                ErrorCode::Unauthorized,
                "LOGIN first: guests are off".into(),
            ));
        }
        Ok(guest(&name))
    }

    /// TOPIC and KICK with accounts on: the room's creator only.
    pub(crate) fn room_operator_check(
        &mut self,
        token: Token,
        event: Event,
        room: &str,
    ) -> Result<(), String> {
        if event != Event::Kick && !(event == Event::Topic && self.login.enabled()) {
            return Ok(());
        }
        let me = self.session_name(token).unwrap_or_default();
        match self.node.rooms().get(room) {
            Some(r) if r.creator == me => Ok(()),
            Some(r) => Err(format!(
                "{} {room}: only the room's creator ({}) may",
                event.name().to_uppercase(),
                r.creator
            )),
            None => Err(format!(
                "{} {room}: no such room",
                event.name().to_uppercase()
            )),
        }
    }

    /// The per-account message rate: false if `account` is over it.
    pub(crate) fn account_rate_ok(&mut self, account: &str) -> bool {
        let now = self.now.0;
        let (rate, burst) = (
            self.login.opts.account_rate_per_sec,
            self.login.opts.account_rate_burst,
        );
        let buckets = &mut self.login.buckets;
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(account) {
            buckets.retain(|_, (_, last)| now.saturating_sub(*last) < 60_000);
        }
        let (b, last) = buckets
            .entry(account.to_string())
            .or_insert_with(|| (TokenBucket::new(rate, burst, now), now));
        *last = now;
        b.take(now)
    }

    fn accounts_off(&mut self, token: Token, what: &str) -> bool {
        if self.login.enabled() {
            return false;
        }
        let msg = format!("{what}: accounts are off on this node ([accounts] enabled = false)");
        self.refuse(token, ErrorCode::BadRequest, msg);
        true
    }

    /// LOGIN on the JSON-line port (and /ws).
    pub(crate) fn on_login(&mut self, token: Token, user: String, password: String) {
        if self.accounts_off(token, "LOGIN") {
            return;
        }
        self.begin_login(token, user, password);
    }

    /// Starts a login of the client connection `token` (for every front
    /// end: see the module doc). The answer comes through `answer_login`.
    pub fn begin_login(&mut self, token: Token, user: String, password: String) {
        let pending = self
            .conns
            .get_mut(&token)
            .and_then(|c| c.client_mut())
            .map(|st| std::mem::replace(&mut st.login_pending, true));
        match pending {
            None => return, // not a client connection
            Some(true) => {
                let msg = "a LOGIN is already being checked on this connection".into();
                return self.answer_login(token, Err((ErrorCode::Busy, msg)));
            }
            Some(false) => {}
        }
        if password.len() > MAX_PASSWORD_BYTES || crate::rooms::check_name(&user).is_err() {
            return self.login_finished(token, user, false, None);
        }
        let from = self.client_from(token);
        let now = self.now.0;
        let o = &self.login.opts;
        let (free, base, max) = (
            o.login_free_failures,
            o.login_delay_ms,
            o.login_delay_max_ms,
        );
        let wait = [Some(format!("u:{user}")), from.map(|ip| format!("a:{ip}"))]
            .into_iter()
            .flatten()
            .map(|k| self.login.failures.wait_ms(&k, now, free, base, max))
            .max()
            .unwrap_or(0);
        if wait > 0 {
            self.clear_login_pending(token);
            let msg = format!(
                "too many failed logins for this account or from this address; retry in {wait} ms"
            );
            return self.answer_login(token, Err((ErrorCode::RateLimited, msg)));
        }
        let account = self.node.accounts().get(&user).filter(|a| !a.disabled);
        let real = account.is_some();
        let phc = account.map_or_else(|| self.login.dummy.clone(), |a| a.hash.clone());
        let tag = Tag::Login {
            token,
            user,
            real,
            from,
        };
        let queued = self
            .login
            .pool
            .as_ref()
            .is_some_and(|p| p.submit(tag, Job::Verify { phc, password }));
        if !queued {
            self.clear_login_pending(token);
            let msg = "too many logins being checked; retry in a moment".into();
            self.answer_login(token, Err((ErrorCode::Busy, msg)));
        }
    }

    fn clear_login_pending(&mut self, token: Token) {
        if let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
            st.login_pending = false;
        }
    }

    /// A checked login: records the account on the session (or the failure
    /// against the account and the address) and answers.
    pub fn login_finished(&mut self, token: Token, user: String, ok: bool, from: Option<IpAddr>) {
        self.clear_login_pending(token);
        let now = self.now.0;
        let keys = [Some(format!("u:{user}")), from.map(|ip| format!("a:{ip}"))];
        if !ok {
            for k in keys.iter().flatten() {
                self.login.failures.fail(k, now);
            }
            info!("login as {user:?} from {from:?} refused");
            let msg = "wrong user or password".to_string();
            return self.answer_login(token, Err((ErrorCode::Unauthorized, msg)));
        }
        for k in keys.iter().flatten() {
            self.login.failures.clear(k);
        }
        let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) else {
            return;
        };
        st.account = Some(user.clone());
        self.set_session_name(token, Some(user.clone()));
        self.answer_login(token, Ok(user));
    }

    /// The one place a login's outcome is written to the session: LOGGED_IN
    /// or ERROR on JSON lines and /ws. Other front ends add their branch here.
    pub fn answer_login(&mut self, token: Token, outcome: Result<String, (ErrorCode, String)>) {
        if self.irc_session(token).is_some() {
            // IRC: 900 + 903, 904, or 464 and the link closed (`irc/auth.rs`).
            return self.irc_login_answer(token, outcome);
        }
        match outcome {
            Ok(user) => self.answer(token, &ServerLine::LoggedIn { user }),
            Err((code, message)) => self.refuse(token, code, message),
        }
    }

    /// REGISTER: hash, commit, then log in.
    pub(crate) fn on_register(&mut self, token: Token, user: String, password: String) {
        if self.accounts_off(token, "REGISTER") {
            return;
        }
        if self.login.opts.registration == Registration::Closed {
            let msg = "REGISTER: registration is closed here; ask an operator (chorus user add)";
            return self.refuse(token, ErrorCode::Forbidden, msg.into());
        }
        self.account_change(token, Event::Register, user, Some(password), true);
    }

    /// USER_ADMIN from an operator holding the cluster secret.
    pub(crate) fn on_user_admin(
        &mut self,
        token: Token,
        op: &str,
        user: String,
        password: Option<String>,
        secret: &str,
    ) {
        if self.accounts_off(token, "USER_ADMIN") {
            return;
        }
        if !same_secret(secret.as_bytes(), &self.secret) {
            warn!(
                "USER_ADMIN with a wrong cluster secret from {:?}",
                self.client_from(token)
            );
            let msg = "USER_ADMIN: wrong cluster secret".to_string();
            return self.refuse(token, ErrorCode::Unauthorized, msg);
        }
        let event = match op {
            "add" => Event::Register,
            "passwd" => Event::Passwd,
            "disable" => Event::Disable,
            _ => {
                let msg = format!("USER_ADMIN: op {op:?} is not add, passwd or disable");
                return self.refuse(token, ErrorCode::BadRequest, msg);
            }
        };
        self.account_change(token, event, user, password, false);
    }

    /// Checks an account change, then hashes (register, passwd) or submits
    /// (disable) it.
    fn account_change(
        &mut self,
        token: Token,
        op: Event,
        user: String,
        password: Option<String>,
        login_after: bool,
    ) {
        let what = op.name().to_uppercase();
        if let Err(why) = check_account_name(&user) {
            return self.refuse(token, ErrorCode::BadRequest, format!("{what}: {why}"));
        }
        let accounts = self.node.accounts();
        let exists = accounts.get(&user).is_some();
        let full = accounts.len() >= self.login.opts.max_accounts;
        let refusal = match op {
            Event::Register if exists => {
                Some((ErrorCode::Conflict, format!("{what}: {user} exists")))
            }
            Event::Register if full => Some((
                ErrorCode::Busy,
                format!("{what}: the cluster holds its limit of accounts (max_accounts)"),
            )),
            Event::Passwd | Event::Disable if !exists => {
                Some((ErrorCode::BadRequest, format!("{what}: no account {user}")))
            }
            _ => None,
        };
        if let Some((code, msg)) = refusal {
            return self.refuse(token, code, msg);
        }
        if op == Event::Disable {
            return self.submit_account_event(token, op, user, String::new(), false);
        }
        let Some(password) = password else {
            return self.refuse(token, ErrorCode::BadRequest, format!("{what}: no password"));
        };
        if let Err(why) = check_password(&password) {
            return self.refuse(token, ErrorCode::BadRequest, format!("{what}: {why}"));
        }
        let tag = Tag::Hash {
            token,
            op,
            user,
            login_after,
        };
        let queued = self
            .login
            .pool
            .as_ref()
            .is_some_and(|p| p.submit(tag, Job::Hash { password }));
        if !queued {
            let msg = format!("{what}: too many passwords being hashed; retry in a moment");
            self.refuse(token, ErrorCode::Busy, msg);
        }
    }

    fn submit_account_event(
        &mut self,
        token: Token,
        op: Event,
        user: String,
        payload: String,
        login_after: bool,
    ) {
        if self.login.pending.len() >= MAX_PENDING_OPS {
            let msg = "too many account changes in flight; retry in a moment".into();
            return self.refuse(token, ErrorCode::Busy, msg);
        }
        let msg_id = self.event_msg_id();
        self.login.pending.insert(
            msg_id.clone(),
            PendingOp {
                token,
                user: user.clone(),
                payload: payload.clone(),
                login_after,
                delivered: false,
                acked: false,
            },
        );
        let chat = chorus_core::Chat {
            msg_id,
            room_id: String::new(),
            sender_id: 0,
            user: Some(user),
            payload,
            ts_ms: crate::clock::wall_ms(),
            event: Some(op),
        };
        if let Some(st) = self.conns.get_mut(&token).and_then(|c| c.client_mut()) {
            st.outstanding += 1;
        }
        self.feed(Input::Client {
            client: client_id(token),
            request: ClientRequest::Chat(chat),
        });
    }

    /// Results of the hashing pool (the loop was woken for them).
    pub(crate) fn on_password_results(&mut self) {
        let Some(pool) = self.login.pool.as_ref() else {
            return;
        };
        for done in pool.take_done() {
            match (done.tag, done.outcome) {
                (
                    Tag::Login {
                        token,
                        user,
                        real,
                        from,
                    },
                    Outcome::Verified(ok),
                ) => {
                    // A disabled or vanished account fails even with its
                    // password (the check ran on the dummy hash, or late).
                    let still = self.node.accounts().get(&user).is_some_and(|a| !a.disabled);
                    self.login_finished(token, user, ok && real && still, from);
                }
                (
                    Tag::Hash {
                        token,
                        op,
                        user,
                        login_after,
                    },
                    Outcome::Hashed(Ok(phc)),
                ) => {
                    if self.conns.contains_key(&token) {
                        self.submit_account_event(token, op, user, phc, login_after);
                    }
                }
                (Tag::Hash { token, .. }, Outcome::Hashed(Err(e))) => {
                    warn!("hashing a password failed: {e}");
                    self.refuse(
                        token,
                        ErrorCode::Unavailable,
                        format!("hashing failed: {e}"),
                    );
                }
                (tag, outcome) => warn!("password pool: {tag:?} got {outcome:?}"),
            }
        }
    }

    /// A reply of the core for a submission: true if it was an account
    /// change's (answered at delivery instead; an ERROR passes through).
    pub(crate) fn account_reply(&mut self, msg_id: &str, error: bool) -> bool {
        let Some(p) = self.login.pending.get_mut(msg_id) else {
            return false;
        };
        if error || p.delivered {
            self.login.pending.remove(msg_id);
        } else {
            p.acked = true;
        }
        !error
    }

    /// An ERROR of the core for `token`: its account changes still waiting
    /// for their entry will not get one (an ERROR carries no msg_id, so all
    /// of this connection's are dropped; it rarely has more than one).
    pub(crate) fn account_failed(&mut self, token: Token) {
        self.login
            .pending
            .retain(|_, p| p.token != token || p.delivered || p.acked);
    }

    /// A delivered entry: answers the account change it completes, if this
    /// node submitted it.
    pub(crate) fn on_account_delivered(&mut self, e: &Entry) {
        let Some((op, c)) = e.event().filter(|(ev, _)| ev.is_account()) else {
            return;
        };
        if op == Event::Disable {
            // On every node: the account's sessions end here too.
            let user = c.user.clone().unwrap_or_default();
            self.end_sessions_of(&user);
        }
        let Some(p) = self.login.pending.get_mut(&c.msg_id) else {
            return;
        };
        p.delivered = true;
        let (token, user, payload, login_after) =
            (p.token, p.user.clone(), p.payload.clone(), p.login_after);
        if p.acked {
            self.login.pending.remove(&c.msg_id);
        }
        let account = self.node.accounts().get(&user);
        let took = match op {
            Event::Register | Event::Passwd => account.is_some_and(|a| a.hash == payload),
            _ => account.is_some_and(|a| a.disabled),
        };
        if !took {
            let msg = format!(
                "{}: {user} was registered by someone else meanwhile",
                op.name().to_uppercase()
            );
            return self.refuse(token, ErrorCode::Conflict, msg);
        }
        let name = match op {
            Event::Register if !login_after => "add",
            _ => op.name(),
        };
        info!("account {user}: {name} committed");
        let line = ServerLine::Account {
            op: name.to_string(),
            user: user.clone(),
        };
        self.answer(token, &line);
        if login_after {
            self.login_finished(token, user, true, None);
        }
    }

    /// A disabled account's sessions on this node end (ERROR
    /// `unauthorized`, then the connection is closed).
    fn end_sessions_of(&mut self, user: &str) {
        let tokens: Vec<Token> = self
            .conns
            .iter()
            .filter(
                |(_, c)| matches!(&c.role, Role::Client(st) if st.account.as_deref() == Some(user)),
            )
            .map(|(&t, _)| t)
            .collect();
        for t in tokens {
            let msg = format!("account {user} was disabled");
            self.fail_conn(t, ErrorCode::Unauthorized, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_and_secrets() {
        assert_eq!(guest("bob"), "~bob");
        assert_eq!(guest("~bob"), "~bob");
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(check_account_name("~x").is_err());
        assert!(check_account_name("alice").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
    }
}
