//! The full-screen client's state and its reactions to keys and client events,
//! kept apart from the terminal so it can be tested without one: the joined
//! rooms in switcher order (each a [`RoomView`]), which one is on view, the
//! input line, the connection's status.
//!
//! Bounds: at most `joined::MAX_ROOMS` rooms, each bounded by `room.rs`; the
//! input line holds at most `MAX_INPUT_CHARS`.

use super::commands::{self, Cmd};
use super::room::{Pending, RoomView};
use crate::client::joined::MAX_ROOMS;
use crate::client::request::{Command, Request};
use crate::client::session::Event;
use chorus_core::client_wire::{NodeStatus, RoomInfo};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeSet;

pub const MAX_INPUT_CHARS: usize = 4000;
/// Lines one PageUp / PageDown moves.
const PAGE_LINES: usize = 10;

/// What a key asks the loop to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Ask the client for these, in order.
    Ask(Vec<Request>),
}

#[derive(Debug)]
pub struct App {
    pub rooms: Vec<RoomView>,
    /// Index of the room on view in `rooms` (meaningless when empty).
    pub current: usize,
    pub me: String,
    pub input: String,
    pub connected: Option<String>,
    pub status: Option<NodeStatus>,
    pub unacked: usize,
    pub max_unacked: usize,
    pub notice: String,
    /// Highest chat number seen: notes are placed after it.
    pub high_seq: u64,
    /// Message lines on screen (set by the drawing loop; paging uses it).
    pub view_height: usize,
    /// Rooms whose next WHO answer the user asked to see (/who).
    who_asked: BTreeSet<String>,
    /// The next ROOMS answer is shown (/rooms).
    rooms_asked: bool,
}

impl App {
    pub fn new(rooms: &[String], me: String, max_unacked: usize) -> App {
        App {
            rooms: rooms.iter().map(|r| RoomView::new(r.clone())).collect(),
            current: 0,
            me,
            input: String::new(),
            connected: None,
            status: None,
            unacked: 0,
            max_unacked,
            notice: "connecting…".into(),
            high_seq: 0,
            view_height: 20,
            who_asked: BTreeSet::new(),
            rooms_asked: false,
        }
    }

    pub fn room(&self) -> Option<&RoomView> {
        self.rooms.get(self.current)
    }

    fn room_mut(&mut self) -> Option<&mut RoomView> {
        self.rooms.get_mut(self.current)
    }

    fn find(&mut self, name: &str) -> Option<&mut RoomView> {
        self.rooms.iter_mut().find(|r| r.name == name)
    }

    /// A note in the room on view (or the status line without a room).
    fn note(&mut self, text: String) {
        let high = self.high_seq;
        match self.room_mut() {
            Some(r) => r.note(high, text),
            None => self.notice = text,
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
                for r in &mut self.rooms {
                    r.loading_older = false;
                }
                self.notice = format!("{addr}: {reason}; trying another node…");
            }
            Event::Queued {
                msg_id,
                room,
                payload,
            } => {
                self.unacked += 1;
                if let Some(r) = self.find(&room) {
                    r.pending.push_back(Pending {
                        msg_id,
                        payload,
                        seq_no: None,
                    });
                }
            }
            Event::Refused { reason, .. } => self.notice = reason,
            Event::Acked { msg_id, seq_no } => {
                self.unacked = self.unacked.saturating_sub(1);
                for r in &mut self.rooms {
                    if r.acked(&msg_id, seq_no) {
                        break;
                    }
                }
            }
            Event::Done { cmd, .. } => self.done(cmd),
            Event::Delivered(d) => {
                self.high_seq = self.high_seq.max(d.seq_no);
                let on_view = self.room().is_some_and(|r| r.name == d.room_id);
                if let Some(r) = self.find(&d.room_id) {
                    if r.live(d) && !on_view {
                        r.unread += 1;
                    }
                }
            }
            Event::History(d) => {
                let me = self.me.clone();
                if let Some(r) = self.find(&d.room_id) {
                    r.history(d, &me);
                }
            }
            Event::PageEnd { room, initial } => {
                if let Some(r) = self.find(&room) {
                    r.loading_older = false;
                    if initial {
                        r.loaded = true;
                    }
                }
            }
            Event::RoomEvent(e) => {
                if let Some(r) = self.find(&e.room_id) {
                    r.event(&e);
                }
            }
            Event::Who(w) => self.who(w),
            Event::Rooms { rooms, truncated } => self.rooms_list(rooms, truncated),
            Event::Status(st) => {
                self.high_seq = self.high_seq.max(st.commit_seq);
                self.status = Some(st);
            }
            Event::Notice(n) => self.notice = n,
        }
    }

    fn done(&mut self, cmd: Command) {
        match cmd {
            Command::Nick { name } => {
                self.notice = format!("you are now {name}");
                self.me = name;
            }
            Command::Join { room } => self.notice = format!("joined #{room}"),
            Command::Part { room } => self.notice = format!("left #{room}"),
            Command::Topic { room, .. } => self.notice = format!("topic of #{room} set"),
            Command::Chat { .. } => {}
        }
    }

    fn who(&mut self, w: crate::client::wire::Who) {
        let show = self.who_asked.remove(&w.room_id);
        if !self.rooms.iter().any(|r| r.name == w.room_id) {
            return;
        }
        if show {
            let list: Vec<String> = w
                .members
                .iter()
                .map(|m| format!("{}{}", if m.online { "●" } else { "○" }, m.user))
                .collect();
            let text = format!(
                "members of #{} ({}{}): {}",
                w.room_id,
                w.members.len(),
                if w.truncated { "+" } else { "" },
                list.join(" ")
            );
            let high = self.high_seq;
            if let Some(r) = self.find(&w.room_id) {
                r.note(high, text);
            }
        }
        if let Some(r) = self.find(&w.room_id) {
            r.who(w);
        }
    }

    fn rooms_list(&mut self, rooms: Vec<RoomInfo>, truncated: bool) {
        if !std::mem::take(&mut self.rooms_asked) {
            return;
        }
        if rooms.is_empty() {
            return self.note("no rooms yet: /join #name creates one".into());
        }
        self.note(format!(
            "{} room(s){}:",
            rooms.len(),
            if truncated { " (more not listed)" } else { "" }
        ));
        for r in rooms {
            let topic = if r.topic.is_empty() {
                String::new()
            } else {
                format!(" · {}", r.topic)
            };
            self.note(format!(
                "  #{} · {} messages · {} members ({} online){topic}",
                r.room_id, r.messages, r.members, r.online
            ));
        }
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        if k.kind != KeyEventKind::Press {
            return Action::None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        match k.code {
            KeyCode::Esc => Action::Quit,
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => Action::Quit,
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                Action::None
            }
            KeyCode::Char('n') if ctrl => self.switch_by(1),
            KeyCode::Char('p') if ctrl => self.switch_by(self.rooms.len().saturating_sub(1)),
            KeyCode::Tab => self.switch_by(1),
            KeyCode::BackTab => self.switch_by(self.rooms.len().saturating_sub(1)),
            KeyCode::Char(c @ '1'..='9') if alt => self.switch_to(c as usize - '1' as usize),
            KeyCode::Enter => self.enter(),
            KeyCode::Backspace => {
                self.input.pop();
                Action::None
            }
            KeyCode::PageUp => self.page_up(),
            KeyCode::PageDown => {
                if let Some(r) = self.room_mut() {
                    r.scroll = r.scroll.saturating_sub(PAGE_LINES);
                }
                Action::None
            }
            KeyCode::Char(c) if !ctrl && !alt => {
                if self.input.chars().count() < MAX_INPUT_CHARS {
                    self.input.push(c);
                }
                Action::None
            }
            _ => Action::None,
        }
    }

    fn switch_by(&mut self, step: usize) -> Action {
        if self.rooms.is_empty() {
            return Action::None;
        }
        self.switch_to((self.current + step) % self.rooms.len())
    }

    fn switch_to(&mut self, i: usize) -> Action {
        if i >= self.rooms.len() || i == self.current {
            return Action::None;
        }
        self.current = i;
        let r = &mut self.rooms[i];
        r.unread = 0;
        Action::Ask(vec![Request::View(Some(r.name.clone()))])
    }

    /// Scrolls up; at the top of what is loaded, asks for the page before.
    fn page_up(&mut self) -> Action {
        let height = self.view_height.max(1);
        let Some(r) = self.room_mut() else {
            return Action::None;
        };
        // The view's first line is a header above the room's lines.
        let top = (r.len() + 1).saturating_sub(height);
        r.scroll = (r.scroll + PAGE_LINES).min(top);
        if r.scroll < top || r.loading_older || !r.loaded || r.full {
            return Action::None;
        }
        match r.oldest_room_seq() {
            Some(before) if before > 1 => {
                r.loading_older = true;
                Action::Ask(vec![Request::Older {
                    room: r.name.clone(),
                    before,
                }])
            }
            _ => Action::None,
        }
    }

    fn enter(&mut self) -> Action {
        let line = self.input.trim().to_string();
        if line.is_empty() {
            return Action::None;
        }
        match commands::parse(&line) {
            Ok(cmd) => {
                self.input.clear();
                self.command(cmd)
            }
            Err(why) => {
                self.notice = why;
                Action::None
            }
        }
    }

    fn command(&mut self, cmd: Cmd) -> Action {
        let room = self.room().map(|r| r.name.clone());
        match cmd {
            Cmd::Say(text) => self.say(room, text),
            Cmd::Join(name) => self.join(name),
            Cmd::Part(name) => match name.or(room) {
                Some(name) => self.part(name),
                None => self.refuse("no room on view: /join #room first"),
            },
            Cmd::Rooms => {
                self.rooms_asked = true;
                Action::Ask(vec![Request::List])
            }
            Cmd::Nick(name) => Action::Ask(vec![Request::Do(Command::Nick { name })]),
            Cmd::Who => match room {
                Some(room) => {
                    self.who_asked.insert(room.clone());
                    Action::Ask(vec![Request::Who(room)])
                }
                None => self.refuse("no room on view: /join #room first"),
            },
            Cmd::Topic(None) => {
                let text = match self.room() {
                    Some(r) if !r.topic.is_empty() => format!("topic: {}", r.topic),
                    Some(_) => "no topic: /topic TEXT sets one".into(),
                    None => "no room on view".into(),
                };
                self.note(text);
                Action::None
            }
            Cmd::Topic(Some(topic)) => match room {
                Some(room) => Action::Ask(vec![Request::Do(Command::Topic { room, topic })]),
                None => self.refuse("no room on view: /join #room first"),
            },
            Cmd::Help => {
                for line in commands::HELP {
                    self.note((*line).to_string());
                }
                Action::None
            }
            Cmd::Quit => Action::Quit,
        }
    }

    fn refuse(&mut self, why: &str) -> Action {
        self.notice = why.to_string();
        Action::None
    }

    fn say(&mut self, room: Option<String>, payload: String) -> Action {
        let Some(room) = room else {
            return self.refuse("no room on view: /join #room first");
        };
        if self.unacked >= self.max_unacked {
            self.notice = format!(
                "{} messages wait for acknowledgement (the limit): input paused",
                self.unacked
            );
            self.input = payload;
            return Action::None;
        }
        if let Some(r) = self.room_mut() {
            r.scroll = 0;
        }
        Action::Ask(vec![Request::Do(Command::Chat { room, payload })])
    }

    fn join(&mut self, name: String) -> Action {
        if let Some(i) = self.rooms.iter().position(|r| r.name == name) {
            return self.switch_to(i);
        }
        if self.rooms.len() >= MAX_ROOMS {
            return self.refuse("at most 64 rooms at once: /part one first");
        }
        self.rooms.push(RoomView::new(name.clone()));
        self.current = self.rooms.len() - 1;
        Action::Ask(vec![
            Request::Do(Command::Join { room: name.clone() }),
            Request::View(Some(name)),
        ])
    }

    fn part(&mut self, name: String) -> Action {
        let Some(i) = self.rooms.iter().position(|r| r.name == name) else {
            return self.refuse("you are not in that room");
        };
        self.rooms.remove(i);
        if self.current >= i && self.current > 0 {
            self.current -= 1;
        }
        let view = self.room().map(|r| r.name.clone());
        Action::Ask(vec![
            Request::Do(Command::Part { room: name }),
            Request::View(view),
        ])
    }

    /// The client could not take the request right now: give the text back.
    pub fn send_failed(&mut self, req: Request) {
        if let Request::Do(Command::Chat { payload, .. }) = req {
            if self.input.is_empty() {
                self.input = payload;
            }
        }
        self.notice = "the client is busy; try again".into();
    }
}

#[cfg(test)]
mod tests;
