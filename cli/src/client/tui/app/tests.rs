//! The full-screen client's reactions, without a terminal.

use super::*;
use crate::client::wire::{MemberInfo as Member, Who};
use chorus_core::client_wire::{Delivered, RoomEventLine as RoomEvent};

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn typed(app: &mut App, text: &str) -> Action {
    for c in text.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter))
}

fn d(seq: u64, room_seq: u64, room: &str, msg_id: &str) -> Delivered {
    Delivered {
        room_seq,
        seq_no: seq,
        term: 1,
        msg_id: msg_id.into(),
        room_id: room.into(),
        sender_id: 1,
        user: Some("bob".into()),
        payload: "hi".into(),
        ts_ms: 0,
    }
}

fn app() -> App {
    App::new(&["general".to_string()], "alice".into(), 2)
}

#[test]
fn typing_sending_acking_delivering() {
    let mut app = app();
    assert_eq!(
        typed(&mut app, "hi"),
        Action::Ask(vec![Request::Do(Command::Chat {
            room: "general".into(),
            payload: "hi".into()
        })])
    );
    assert!(app.input.is_empty());
    app.on_event(Event::Queued {
        msg_id: "m".into(),
        room: "general".into(),
        payload: "hi".into(),
    });
    app.on_event(Event::Queued {
        msg_id: "m2".into(),
        room: "general".into(),
        payload: "yo".into(),
    });
    // At the limit: Enter keeps the text and says why.
    assert_eq!(typed(&mut app, "x"), Action::None);
    assert_eq!(app.input, "x");
    app.on_event(Event::Acked {
        msg_id: "m".into(),
        seq_no: 3,
    });
    assert_eq!(app.rooms[0].pending[0].seq_no, Some(3));
    app.on_event(Event::Delivered(d(3, 1, "general", "m")));
    assert_eq!(app.rooms[0].pending.len(), 1);
    assert_eq!(app.unacked, 1);
    assert_eq!(app.rooms[0].unread, 0, "the room on view has no unread");
}

#[test]
fn join_switch_and_unread_counts() {
    let mut app = app();
    let asked = typed(&mut app, "/join #random");
    assert_eq!(
        asked,
        Action::Ask(vec![
            Request::Do(Command::Join {
                room: "random".into()
            }),
            Request::View(Some("random".into()))
        ])
    );
    assert_eq!(app.room().map(|r| r.name.as_str()), Some("random"));
    // Messages in #general while #random is on view count as unread.
    app.on_event(Event::Delivered(d(5, 1, "general", "a")));
    app.on_event(Event::Delivered(d(6, 2, "general", "b")));
    app.on_event(Event::Delivered(d(7, 1, "random", "c")));
    assert_eq!(app.rooms[0].unread, 2);
    assert_eq!(app.rooms[1].unread, 0);
    let alt1 = KeyEvent::new(KeyCode::Char('1'), KeyModifiers::ALT);
    assert_eq!(
        app.on_key(alt1),
        Action::Ask(vec![Request::View(Some("general".into()))])
    );
    assert_eq!(app.rooms[0].unread, 0);
    let ctrl_n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL);
    app.on_key(ctrl_n);
    assert_eq!(app.current, 1);
    // /part leaves the room on view.
    assert_eq!(
        typed(&mut app, "/part"),
        Action::Ask(vec![
            Request::Do(Command::Part {
                room: "random".into()
            }),
            Request::View(Some("general".into()))
        ])
    );
    assert_eq!(app.rooms.len(), 1);
}

#[test]
fn who_topic_nick_and_events() {
    let mut app = app();
    assert_eq!(
        typed(&mut app, "/topic ship it"),
        Action::Ask(vec![Request::Do(Command::Topic {
            room: "general".into(),
            topic: "ship it".into()
        })])
    );
    app.on_event(Event::RoomEvent(RoomEvent {
        room_id: "general".into(),
        event: "topic".into(),
        user: "alice".into(),
        topic: Some("ship it".into()),
        name: None,
        term: 1,
        msg_id: "t".into(),
        ts_ms: 0,
        seq_no: 1,
    }));
    assert_eq!(app.rooms[0].topic, "ship it");
    assert_eq!(
        typed(&mut app, "/who"),
        Action::Ask(vec![Request::Who("general".into())])
    );
    app.on_event(Event::Who(Who {
        room_id: "general".into(),
        topic: "ship it".into(),
        members: vec![
            Member {
                user: "alice".into(),
                online: true,
            },
            Member {
                user: "bob".into(),
                online: false,
            },
        ],
        truncated: false,
    }));
    assert_eq!(app.rooms[0].members.len(), 2);
    assert_eq!(app.rooms[0].len(), 2, "the topic event and the /who note");
    assert_eq!(
        typed(&mut app, "/nick carol"),
        Action::Ask(vec![Request::Do(Command::Nick {
            name: "carol".into()
        })])
    );
    app.on_event(Event::Done {
        msg_id: "n".into(),
        cmd: Command::Nick {
            name: "carol".into(),
        },
    });
    assert_eq!(app.me, "carol");
    assert_eq!(typed(&mut app, "/nick a b"), Action::None);
    assert!(app.notice.contains("no spaces"), "{}", app.notice);
}

#[test]
fn page_up_at_the_top_asks_for_the_page_before() {
    let mut app = app();
    app.view_height = 5;
    for i in 0..8 {
        app.on_event(Event::History(d(
            100 + i,
            50 + i,
            "general",
            &i.to_string(),
        )));
    }
    app.on_event(Event::PageEnd {
        room: "general".into(),
        initial: true,
    });
    // 8 lines under the header line, 5 on screen: the first PageUp
    // reaches the top and asks.
    assert_eq!(
        app.on_key(key(KeyCode::PageUp)),
        Action::Ask(vec![Request::Older {
            room: "general".into(),
            before: 50
        }])
    );
    // Not twice while it loads.
    assert_eq!(app.on_key(key(KeyCode::PageUp)), Action::None);
    app.on_event(Event::History(d(90, 49, "general", "old")));
    app.on_event(Event::PageEnd {
        room: "general".into(),
        initial: false,
    });
    assert_eq!(app.rooms[0].oldest_room_seq(), Some(49));
}

#[test]
fn quit_keys() {
    let mut app = app();
    assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.on_key(ctrl_c), Action::Quit);
    assert_eq!(typed(&mut app, "/quit"), Action::Quit);
}
