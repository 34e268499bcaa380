//! Exact-output tests of the session: what it writes on (re)connect, how it
//! resumes, acknowledges, pages and polls.

use super::*;

fn session() -> Session {
    let mut s = Settings::new(vec!["general".into()], "alice".into(), 7);
    s.max_unacked = 3;
    s.page = 50;
    let mut s = Session::new(s, AddrBook::new("a:1".into(), ["b:2".to_string()]));
    // The TUI shows #general (and polls its members).
    s.request(
        String::new(),
        Request::View(Some("general".into())),
        Instant::now(),
        &mut vec![],
    );
    s
}

fn chat(seq: u64, room_seq: u64, room: &str, msg_id: &str) -> ServerLine {
    ServerLine::SeqChat(Delivered {
        room_seq,
        seq_no: seq,
        term: 1,
        msg_id: msg_id.into(),
        room_id: room.into(),
        sender_id: 7,
        user: Some("alice".into()),
        payload: format!("m{seq}"),
        ts_ms: 0,
    })
}

fn status(commit: u64) -> ServerLine {
    ServerLine::Status(NodeStatus {
        node_id: 1,
        role: "leader".into(),
        term: 1,
        leader: Some(1),
        leader_addr: Some("a:1".into()),
        commit_seq: commit,
        log_commit: commit,
        log_last: commit,
        log_first: 1,
        snapshot_seq: 0,
        snapshot_installs: 0,
        members: vec!["a:1".into(), "c:3".into()],
        http_members: Vec::new(),
    })
}

fn ack(msg_id: &str, seq_no: u64) -> ServerLine {
    ServerLine::ChatAck {
        msg_id: msg_id.into(),
        seq_no,
    }
}

fn rooms(list: &[(&str, u64)]) -> ServerLine {
    ServerLine::Rooms {
        rooms: list
            .iter()
            .map(|(r, n)| RoomInfo {
                room_id: r.to_string(),
                messages: *n,
                members: 1,
                online: 1,
                topic: String::new(),
            })
            .collect(),
        truncated: false,
    }
}

fn history_end() -> ServerLine {
    ServerLine::HistoryEnd {
        next_seq: 0,
        commit_seq: 0,
        first_seq: None,
        first_room_seq: None,
    }
}

fn sends(out: &[Out]) -> Vec<ClientLine> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn events(out: &[Out]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Out::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn subscribe(from: u64, rooms: &[&str]) -> ClientLine {
    ClientLine::Subscribe {
        from_seq: Some(from),
        room_id: None,
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
    }
}

fn page(room: &str, before: u64, limit: usize) -> ClientLine {
    ClientLine::History {
        from_seq: None,
        limit: Some(limit),
        room_id: Some(room.into()),
        after: None,
        before: Some(before),
    }
}

fn status_line() -> ClientLine {
    ClientLine::Status {}
}

fn who(room: &str) -> ClientLine {
    ClientLine::Who {
        room_id: room.into(),
    }
}

fn join_id(lines: &[ClientLine]) -> String {
    lines
        .iter()
        .find_map(|l| match l {
            ClientLine::Join { msg_id, .. } => msg_id.clone(),
            _ => None,
        })
        .expect("a JOIN was sent")
}

/// Connects, subscribes after STATUS(commit), loads `general` (count n).
fn connected(s: &mut Session, commit: u64, n: u64, t: Instant) -> Vec<Out> {
    let mut out = vec![];
    s.on_connected("a:1", t, &mut out);
    s.on_line(status(commit), t, &mut out);
    s.on_line(rooms(&[("general", n)]), t, &mut out);
    out
}

#[test]
fn connect_says_hello_with_name_joins_subscribes_then_fetches_one_page() {
    let mut s = session();
    let t = Instant::now();
    let mut out = vec![];
    s.on_connected("a:1", t, &mut out);
    let lines = sends(&out);
    assert_eq!(lines[0], hello("alice"));
    assert_eq!(lines[1], status_line());
    assert!(matches!(&lines[2], ClientLine::Join { room_id, .. } if room_id == "general"));
    assert_eq!(lines[3], who("general"));
    out.clear();
    s.on_line(status(1500), t, &mut out);
    assert_eq!(
        sends(&out),
        vec![
            subscribe(1501, &["general"]),
            status_line(),
            ClientLine::List {}
        ]
    );
    assert_eq!(s.addrs.all(), ["a:1", "b:2", "c:3"]);
    out.clear();
    // The room has 120 chats: only the last page (50) is asked.
    s.on_line(rooms(&[("general", 120), ("other", 5)]), t, &mut out);
    assert_eq!(sends(&out), vec![page("general", 121, 50)]);
    // A later STATUS does not subscribe again.
    out.clear();
    s.on_line(status(1600), t, &mut out);
    assert!(sends(&out).is_empty());
}

#[test]
fn page_lines_are_history_and_live_lines_are_delivered_once() {
    let mut s = session();
    let t = Instant::now();
    connected(&mut s, 1500, 120, t);
    let mut out = vec![];
    s.on_line(chat(1490, 119, "general", "h"), t, &mut out);
    s.on_line(chat(1501, 121, "general", "l"), t, &mut out);
    s.on_line(chat(1501, 121, "general", "l"), t, &mut out);
    s.on_line(history_end(), t, &mut out);
    let ev = events(&out);
    assert!(matches!(&ev[0], Event::History(d) if d.msg_id == "h"));
    assert!(matches!(&ev[1], Event::Delivered(d) if d.msg_id == "l"));
    assert_eq!(
        ev[2],
        Event::PageEnd {
            room: "general".into(),
            initial: true
        }
    );
    assert_eq!(ev.len(), 3);
    // PageUp: the page below the oldest shown.
    out.clear();
    s.request(
        "x".into(),
        Request::Older {
            room: "general".into(),
            before: 71,
        },
        t,
        &mut out,
    );
    assert_eq!(sends(&out), vec![page("general", 71, 50)]);
}

#[test]
fn failover_resumes_every_room_from_where_it_left_off_and_resends_commands() {
    let mut s = session();
    let t = Instant::now();
    let out = connected(&mut s, 10, 0, t);
    let general_join = join_id(&sends(&out));
    let mut out = vec![];
    s.on_line(ack(&general_join, 11), t, &mut out);
    // Join #random: a new SUBSCRIBE of both, then its first page.
    s.request(
        "j2".into(),
        Request::Do(Command::Join {
            room: "random".into(),
        }),
        t,
        &mut out,
    );
    s.request(
        "m-1".into(),
        Request::Do(Command::Chat {
            room: "random".into(),
            payload: "hello".into(),
        }),
        t,
        &mut out,
    );
    let lines = sends(&out);
    assert!(lines.contains(&subscribe(11, &["general", "random"])));
    // Lines of the old and new subscriptions are not told apart until the
    // barrier STATUS answer: a line of one room advances only that room.
    s.on_line(chat(12, 1, "general", "x"), t, &mut out);
    s.on_line(status(12), t, &mut out); // answers the first STATUS
    s.on_line(status(12), t, &mut out); // the barrier
    s.on_line(chat(20, 2, "general", "y"), t, &mut out);
    out.clear();
    s.on_closed("eof", &mut out);
    assert!(!s.is_connected());
    out.clear();
    s.on_connected("b:2", t, &mut out);
    let lines = sends(&out);
    assert_eq!(lines[0], hello("alice"));
    assert_eq!(lines[1], subscribe(20, &["general", "random"]));
    assert_eq!(lines[2], status_line());
    assert_eq!(lines[3], ClientLine::List {});
    // The unacknowledged JOIN and chat go again with their ids; the acked
    // JOIN does not.
    let resent: Vec<_> = lines[4..]
        .iter()
        .filter_map(|l| match l {
            ClientLine::Join { msg_id, .. } => msg_id.clone(),
            ClientLine::Chat { msg_id, user, .. } => {
                assert_eq!(user.as_deref(), Some("alice"));
                Some(msg_id.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(resent, ["j2", "m-1"]);
    // The new node replays chat 20: dropped.
    out.clear();
    s.on_line(chat(20, 2, "general", "y"), t, &mut out);
    assert!(events(&out).is_empty());
}

#[test]
fn nick_is_the_hello_name_once_acknowledged() {
    let mut s = session();
    let t = Instant::now();
    connected(&mut s, 0, 0, t);
    let mut out = vec![];
    s.request(
        "n".into(),
        Request::Do(Command::Nick { name: "bob".into() }),
        t,
        &mut out,
    );
    assert!(sends(&out).contains(&ClientLine::Nick {
        name: "bob".into(),
        msg_id: Some("n".into())
    }));
    out.clear();
    s.on_line(ack("n", 3), t, &mut out);
    assert_eq!(
        events(&out),
        vec![Event::Done {
            msg_id: "n".into(),
            cmd: Command::Nick { name: "bob".into() }
        }]
    );
    s.on_closed("eof", &mut out);
    out.clear();
    s.on_connected("b:2", t, &mut out);
    assert_eq!(sends(&out)[0], hello("bob"));
}

#[test]
fn ack_once_whether_by_chat_ack_or_own_seq_chat() {
    let mut s = session();
    let t = Instant::now();
    connected(&mut s, 4, 0, t);
    let mut out = vec![];
    s.request(
        "m-1".into(),
        Request::Do(Command::Chat {
            room: "general".into(),
            payload: "hello".into(),
        }),
        t,
        &mut out,
    );
    out.clear();
    s.on_line(chat(5, 1, "general", "m-1"), t, &mut out);
    s.on_line(ack("m-1", 5), t, &mut out);
    let acks: Vec<_> = events(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::Acked { .. }))
        .collect();
    assert_eq!(
        acks,
        vec![Event::Acked {
            msg_id: "m-1".into(),
            seq_no: 5
        }]
    );
}

#[test]
fn bounded_outbox_refuses() {
    let mut s = session(); // the JOIN of general takes one of three places
    let t = Instant::now();
    let mut out = vec![];
    for id in ["1", "2", "3"] {
        let cmd = Command::Chat {
            room: "general".into(),
            payload: id.into(),
        };
        s.request(id.into(), Request::Do(cmd), t, &mut out);
    }
    assert!(matches!(events(&out).last(), Some(Event::Refused { msg_id, .. }) if msg_id == "3"));
    assert_eq!(s.unacked(), 3);
    // Not connected: nothing was written.
    assert!(sends(&out).is_empty());
}

#[test]
fn retry_after_timeout_then_give_up_on_silent_node() {
    let mut s = session();
    let t = Instant::now();
    let mut out = vec![];
    s.on_connected("a:1", t, &mut out);
    let join = join_id(&sends(&out));
    out.clear();
    s.on_tick(t + Duration::from_secs(1), &mut out);
    assert!(!sends(&out)
        .iter()
        .any(|l| matches!(l, ClientLine::Join { .. })));
    s.on_tick(t + Duration::from_secs(3), &mut out);
    assert_eq!(join_id(&sends(&out)), join);
    out.clear();
    s.on_tick(t + Duration::from_secs(10), &mut out);
    assert!(matches!(out.last(), Some(Out::Drop(_))));
}

#[test]
fn members_are_polled_and_refreshed_after_a_room_event() {
    let mut s = session();
    let t = Instant::now();
    connected(&mut s, 0, 0, t);
    let mut out = vec![];
    s.on_tick(t + Duration::from_secs(1), &mut out);
    assert!(!sends(&out).contains(&who("general")));
    s.on_tick(t + Duration::from_secs(3), &mut out);
    assert!(sends(&out).contains(&who("general")));
    out.clear();
    let e = RoomEvent {
        room_id: "general".into(),
        event: "join".into(),
        user: "bob".into(),
        topic: None,
        name: None,
        term: 1,
        msg_id: "e".into(),
        ts_ms: 0,
        seq_no: 1,
    };
    s.on_line(ServerLine::RoomEvent(e.clone()), t, &mut out);
    assert_eq!(sends(&out), vec![who("general")]);
    assert_eq!(events(&out), vec![Event::RoomEvent(e)]);
}

#[test]
fn a_page_that_cannot_be_asked_ends_at_once_and_later_rooms_are_fetched() {
    let mut s = session();
    let t = Instant::now();
    connected(&mut s, 100, 10, t); // general's first page is out
    let mut out = vec![];
    let older = |room: &str, before| Request::Older {
        room: room.into(),
        before,
    };
    // Below room_seq 1 there is nothing: ended at once, nothing asked.
    s.request(String::new(), older("general", 1), t, &mut out);
    assert!(sends(&out).is_empty());
    assert_eq!(
        events(&out),
        vec![Event::PageEnd {
            room: "general".into(),
            initial: false
        }]
    );
    // Three more pages fill the bound (4): the fifth ends at once.
    for before in [9, 8, 7] {
        s.request(String::new(), older("general", before), t, &mut out);
    }
    out.clear();
    s.request(String::new(), older("general", 6), t, &mut out);
    assert!(sends(&out).is_empty());
    // A room joined meanwhile gets no page from its LIST answer (full)...
    let join = Command::Join { room: "dev".into() };
    s.request("j".into(), Request::Do(join), t, &mut out);
    s.on_line(rooms(&[("dev", 30), ("general", 10)]), t, &mut out);
    out.clear();
    // ...but once a page is answered, LIST again, and then its page.
    s.on_line(history_end(), t, &mut out);
    assert!(sends(&out).contains(&ClientLine::List {}));
    out.clear();
    s.on_line(rooms(&[("dev", 30), ("general", 10)]), t, &mut out);
    assert_eq!(sends(&out), vec![page("dev", 31, 50)]);
}
