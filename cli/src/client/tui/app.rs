//! The full-screen client's state and its reactions to keys and client events,
//! kept apart from the terminal so it can be tested without one.
//!
//! Bounds: at most `MAX_SHOWN` delivered messages are kept (older ones scroll
//! away for good), the input line holds at most `MAX_INPUT_CHARS`, and the
//! pending list is bounded by the client's unacknowledged limit plus the
//! acknowledged-but-not-yet-delivered messages (at most `MAX_SHOWN` of those).

use crate::client::session::Event;
use chorus_core::client_wire::{Delivered, NodeStatus};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::VecDeque;

pub const MAX_SHOWN: usize = 5000;
pub const MAX_INPUT_CHARS: usize = 4000;

/// A delivered message as shown.
#[derive(Debug, Clone)]
pub struct Shown {
    pub d: Delivered,
    /// Sent by this client.
    pub own: bool,
}

/// One of our messages not yet seen in the room's order.
#[derive(Debug, Clone)]
pub struct Pending {
    pub msg_id: String,
    pub payload: String,
    /// Set once acknowledged.
    pub seq_no: Option<u64>,
}

/// What a key asks the loop to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Send(String),
}

#[derive(Debug)]
pub struct App {
    pub room: String,
    pub me: String,
    pub shown: VecDeque<Shown>,
    pub pending: VecDeque<Pending>,
    pub input: String,
    pub connected: Option<String>,
    pub status: Option<NodeStatus>,
    pub unacked: usize,
    pub max_unacked: usize,
    pub notice: String,
    /// Lines scrolled up from the bottom.
    pub scroll: usize,
}

impl App {
    pub fn new(room: String, me: String, max_unacked: usize) -> App {
        App {
            room,
            me,
            shown: VecDeque::new(),
            pending: VecDeque::new(),
            input: String::new(),
            connected: None,
            status: None,
            unacked: 0,
            max_unacked,
            notice: "connecting…".into(),
            scroll: 0,
        }
    }

    pub fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Connected { addr } => {
                self.notice = format!("connected to {addr}");
                self.connected = Some(addr);
            }
            Event::Disconnected { addr, reason } => {
                if self.connected.as_deref() == Some(addr.as_str()) {
                    self.connected = None;
                }
                self.notice = format!("{addr}: {reason}; trying another node…");
            }
            Event::Queued { msg_id, payload } => {
                self.unacked += 1;
                self.pending.push_back(Pending {
                    msg_id,
                    payload,
                    seq_no: None,
                });
            }
            Event::Refused { reason, .. } => self.notice = reason,
            Event::Acked { msg_id, seq_no } => {
                self.unacked = self.unacked.saturating_sub(1);
                if let Some(p) = self.pending.iter_mut().find(|p| p.msg_id == msg_id) {
                    p.seq_no = Some(seq_no);
                }
                self.trim_pending();
            }
            Event::Delivered(d) => self.delivered(d),
            Event::Status(st) => self.status = Some(st),
            Event::Notice(n) => self.notice = n,
        }
    }

    fn delivered(&mut self, d: Delivered) {
        let own = match self.pending.iter().position(|p| p.msg_id == d.msg_id) {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        };
        if self.shown.len() >= MAX_SHOWN {
            self.shown.pop_front();
        }
        self.shown.push_back(Shown { d, own });
    }

    /// Acknowledged messages normally leave the pending list when delivered;
    /// if deliveries lag far behind, forget the oldest acknowledged ones.
    fn trim_pending(&mut self) {
        let acked = self.pending.iter().filter(|p| p.seq_no.is_some()).count();
        if acked > MAX_SHOWN {
            if let Some(i) = self.pending.iter().position(|p| p.seq_no.is_some()) {
                self.pending.remove(i);
            }
        }
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        if k.kind != KeyEventKind::Press {
            return Action::None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Esc => Action::Quit,
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => Action::Quit,
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                Action::None
            }
            KeyCode::Enter => self.enter(),
            KeyCode::Backspace => {
                self.input.pop();
                Action::None
            }
            KeyCode::PageUp => {
                self.scroll = (self.scroll + 10).min(self.shown.len());
                Action::None
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(10);
                Action::None
            }
            KeyCode::Char(c) if !ctrl => {
                if self.input.chars().count() < MAX_INPUT_CHARS {
                    self.input.push(c);
                }
                Action::None
            }
            _ => Action::None,
        }
    }

    fn enter(&mut self) -> Action {
        if self.input.trim().is_empty() {
            return Action::None;
        }
        if self.unacked >= self.max_unacked {
            self.notice = format!(
                "{} messages wait for acknowledgement (the limit): input paused",
                self.unacked
            );
            return Action::None;
        }
        self.scroll = 0;
        Action::Send(std::mem::take(&mut self.input))
    }

    /// The client could not take the message right now: give the text back.
    pub fn send_failed(&mut self, text: String) {
        if self.input.is_empty() {
            self.input = text;
        }
        self.notice = "the client is busy; press Enter again".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn d(seq: u64, msg_id: &str) -> Delivered {
        Delivered {
            room_seq: 1,
            seq_no: seq,
            term: 1,
            msg_id: msg_id.into(),
            room_id: "general".into(),
            sender_id: 1,
            user: Some("alice".into()),
            payload: "hi".into(),
            ts_ms: 0,
        }
    }

    #[test]
    fn typing_sending_acking_delivering() {
        let mut app = App::new("general".into(), "alice".into(), 1);
        app.on_key(key(KeyCode::Char('h')));
        app.on_key(key(KeyCode::Char('i')));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::Send("hi".into()));
        assert!(app.input.is_empty());
        app.on_event(Event::Queued {
            msg_id: "m".into(),
            payload: "hi".into(),
        });
        assert_eq!(app.unacked, 1);
        // At the limit: Enter keeps the text and says why.
        app.on_key(key(KeyCode::Char('x')));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::None);
        assert_eq!(app.input, "x");
        app.on_event(Event::Acked {
            msg_id: "m".into(),
            seq_no: 3,
        });
        assert_eq!(app.pending[0].seq_no, Some(3));
        app.on_event(Event::Delivered(d(3, "m")));
        assert!(app.pending.is_empty());
        assert!(app.shown[0].own);
        assert_eq!(app.unacked, 0);
    }

    #[test]
    fn quit_keys() {
        let mut app = App::new("general".into(), "a".into(), 10);
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(ctrl_c), Action::Quit);
    }
}
