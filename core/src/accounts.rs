//! Accounts as a fold of the committed log: who exists, with which password
//! hash, and whether the account is disabled. Registration, password changes
//! and disabling are entries (`entry::Event::{Register, Passwd, Disable}`) in
//! the same total order as chats, so every node that delivered the same
//! prefix agrees on who exists and can check a login by itself; a restart
//! rebuilds the fold from the log (`Node::from_log`).
//!
//! The core never hashes: the node that accepts a registration or a password
//! change computes the argon2id hash (off its event loop, runtime-mio
//! `password.rs`) and submits the PHC string as the event's payload. The fold
//! only stores it. It is total and deterministic: a second registration of a
//! name changes nothing (the first committed wins, on every node alike; its
//! submitter learns it lost by finding another hash), a password change or
//! a disable of an unknown account changes nothing.
//!
//! Memory: one map entry per account (name, a ~100-byte PHC string, a flag);
//! accounts are bounded by `Config::max_accounts` at acceptance.
//!
//! Invariant: `upto` is the last folded log index; entries are folded in
//! index order without a gap (asserted).

use crate::codec::{Reader, Writer};
use crate::entry::{Entry, Event};
use crate::types::Seq;
use std::collections::BTreeMap;

/// One account's replicated state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub hash: String,
    pub disabled: bool,
    /// The log index of its registration.
    pub registered_at: Seq,
}

/// Every account, folded from the committed log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    upto: Seq,
    accounts: BTreeMap<String, Account>,
}

impl Accounts {
    /// Appends the fold to a snapshot (`snapshot.rs`).
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.upto.0);
        w.u64(self.accounts.len() as u64);
        for (name, a) in &self.accounts {
            w.str(name);
            w.str(&a.hash);
            w.u8(u8::from(a.disabled));
            w.u64(a.registered_at.0);
        }
    }

    /// The fold a snapshot carries.
    pub fn decode(r: &mut Reader<'_, '_>) -> Result<Accounts, String> {
        let upto = Seq(r.u64()?);
        let mut accounts = BTreeMap::new();
        for _ in 0..r.count(25)? {
            let name = r.str()?;
            let hash = r.str()?;
            let disabled = match r.u8()? {
                0 => false,
                1 => true,
                t => return Err(format!("bad account flag {t}")),
            };
            let registered_at = Seq(r.u64()?);
            accounts.insert(
                name,
                Account {
                    hash,
                    disabled,
                    registered_at,
                },
            );
        }
        Ok(Accounts { upto, accounts })
    }

    /// Folds `entries` (log order, from index 1).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Accounts {
        let mut a = Accounts::default();
        for e in entries {
            a.apply(e);
        }
        a
    }

    /// Folds the next committed entry; true if it changed the state.
    pub fn apply(&mut self, e: &Entry) -> bool {
        assert_eq!(e.seq_no, self.upto.next(), "the account fold is contiguous");
        self.upto = e.seq_no;
        let Some((event, c, user)) = e.event_by() else {
            return false;
        };
        match event {
            Event::Register => {
                if self.accounts.contains_key(user) || c.payload.is_empty() {
                    return false;
                }
                let account = Account {
                    hash: c.payload.clone(),
                    disabled: false,
                    registered_at: e.seq_no,
                };
                self.accounts.insert(user.to_string(), account);
                true
            }
            Event::Passwd => match self.accounts.get_mut(user) {
                Some(a) if !c.payload.is_empty() && a.hash != c.payload => {
                    a.hash = c.payload.clone();
                    true
                }
                _ => false,
            },
            Event::Disable => match self.accounts.get_mut(user) {
                Some(a) if !a.disabled => {
                    a.disabled = true;
                    true
                }
                _ => false,
            },
            Event::Join | Event::Leave | Event::Topic | Event::Nick | Event::Kick => false,
        }
    }

    /// Last log index folded.
    pub fn upto(&self) -> Seq {
        self.upto
    }

    pub fn get(&self, user: &str) -> Option<&Account> {
        self.accounts.get(user)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Body, Chat};
    use crate::types::{NodeId, Term};

    fn ev(seq: u64, event: Event, user: &str, payload: &str) -> Entry {
        Entry {
            seq_no: Seq(seq),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: format!("e{seq}"),
                room_id: String::new(),
                sender_id: 0,
                user: Some(user.into()),
                payload: payload.into(),
                ts_ms: 0,
                event: Some(event),
            }),
        }
    }

    #[test]
    fn registrations_password_changes_and_disables_fold() {
        let log = vec![
            ev(1, Event::Register, "ann", "h1"),
            Entry {
                seq_no: Seq(2),
                term: Term(2),
                body: Body::Noop { leader: NodeId(1) },
            },
            ev(3, Event::Register, "ann", "h-other"),
            ev(4, Event::Passwd, "ann", "h2"),
            ev(5, Event::Passwd, "bob", "h3"),
            ev(6, Event::Register, "bob", "h4"),
            ev(7, Event::Disable, "bob", ""),
            ev(8, Event::Disable, "bob", ""),
            ev(9, Event::Join, "general", ""),
            ev(10, Event::Register, "cat", ""),
        ];
        let mut a = Accounts::default();
        let changed: Vec<bool> = log.iter().map(|e| a.apply(e)).collect();
        assert_eq!(
            changed,
            vec![true, false, false, true, false, true, true, false, false, false]
        );
        let ann = a.get("ann").unwrap();
        assert_eq!(
            (ann.hash.as_str(), ann.disabled, ann.registered_at),
            ("h2", false, Seq(1))
        );
        let bob = a.get("bob").unwrap();
        assert_eq!((bob.hash.as_str(), bob.disabled), ("h4", true));
        assert!(
            a.get("cat").is_none(),
            "a registration without a hash is ignored"
        );
        assert_eq!(a.len(), 2);
        assert_eq!(Accounts::from_entries(&log), a);
        assert_eq!(a.upto(), Seq(10));
    }
}
