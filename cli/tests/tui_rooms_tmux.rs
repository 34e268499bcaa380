//! Issue 15's acceptance test of rooms and people, through the full-screen
//! client in real terminals: 3 real nodes, 3 TUI clients in tmux (one per
//! node), two rooms. The people join, set topics, rename and talk; the
//! leader is SIGKILLed in the middle and the TUI on it fails over and goes
//! on. Then, over JSON lines, every live node gives the same LIST, WHO and
//! HISTORY for each room, the global seq_no and every room_seq run 1..N
//! without a hole, and WHO's presence shows exactly the TUIs still
//! connected (one quits: it is offline everywhere within the leader timeout
//! plus two heartbeats). The screens are checked too (capture-pane): names
//! on messages, the room bar's unread count, the topic, the member list.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/tmux.rs"]
mod tmux;

use chat::Conn;
use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tmux::Tmux;

const WAIT: Duration = Duration::from_secs(15);
/// The screen: wide enough for the member list (100 columns).
const WIDTH: u16 = 120;
const HEIGHT: u16 = 30;

/// A TUI client of node `i` (the others as failover peers). With `user`
/// set, the name comes from $USER (the default); else from `--name`.
fn tui(c: &Cluster, i: usize, name: &str, from_user_env: bool) -> Tmux {
    let mut argv: Vec<String> = Vec::new();
    if from_user_env {
        argv.extend(["env".into(), format!("USER={name}")]);
    }
    argv.extend([
        env!("CARGO_BIN_EXE_chorus").to_string(),
        "client".into(),
        "--port".into(),
        c.nodes[i].port.to_string(),
        "--peers".into(),
        c.peers_except(i),
        "--retry-ms".into(),
        "1000".into(),
    ]);
    if !from_user_env {
        argv.extend(["--name".into(), name.into()]);
    }
    Tmux::start(&argv, WIDTH, HEIGHT)
}

/// Types a line and presses Enter.
fn say(t: &Tmux, line: &str) {
    t.type_text(line);
    t.press("Enter");
}

/// Waits until `t`'s screen satisfies `pred`; panics with the screen and
/// the node logs.
fn expect(t: &Tmux, c: &Cluster, what: &str, pred: impl Fn(&str) -> bool) -> String {
    t.wait_screen(WAIT, pred)
        .unwrap_or_else(|s| panic!("{what}: not on screen:\n{s}\n{}", c.logs()))
}

/// A screen line that shows `name: text` as a message (names on messages).
fn shows_message(screen: &str, name: &str, text: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains(&format!("{name}: {text}")) && !l.contains("sending"))
}

/// One request over JSON lines; the answer line of type `ty`.
fn ask(addr: &str, req: Value, ty: &str) -> Value {
    let mut conn = Conn::connect(addr).expect("connect");
    conn.send(&req).expect("send");
    conn.recv_type(ty, WAIT)
}

/// HISTORY (global from seq 1, or one room from room_seq 1): every chat.
fn history(addr: &str, room: Option<&str>) -> Vec<Value> {
    let mut conn = Conn::connect(addr).expect("connect");
    let req = match room {
        Some(r) => json!({"type": "HISTORY", "room_id": r, "after": 0, "limit": 1000}),
        None => json!({"type": "HISTORY", "from_seq": 1, "limit": 1000}),
    };
    conn.send(&req).expect("send");
    let mut chats = Vec::new();
    loop {
        let v = conn.recv(WAIT).expect("a HISTORY line").expect("open");
        match v["type"].as_str() {
            Some("SEQ_CHAT") => chats.push(v),
            Some("HISTORY_END") => return chats,
            _ => {}
        }
    }
}

/// What a node says about everything (compared across nodes).
fn node_view(addr: &str) -> Value {
    let mut rooms = BTreeMap::new();
    for room in ["general", "dev"] {
        let who = ask(addr, json!({"type": "WHO", "room_id": room}), "WHO");
        rooms.insert(
            room,
            json!({"who": who, "history": history(addr, Some(room))}),
        );
    }
    json!({
        "list": ask(addr, json!({"type": "LIST"}), "ROOMS"),
        "rooms": rooms,
        "all": history(addr, None),
    })
}

/// `user → online` in a WHO answer.
fn presence(who: &Value) -> BTreeMap<String, bool> {
    who["members"]
        .as_array()
        .expect("WHO has members")
        .iter()
        .map(|m| {
            let user = m["user"].as_str().unwrap_or("").to_string();
            (user, m["online"].as_bool().unwrap_or(false))
        })
        .collect()
}

fn payloads(chats: &[Value]) -> Vec<String> {
    chats
        .iter()
        .map(|c| format!("{}: {}", c["user"].as_str().unwrap_or("?"), c["payload"]))
        .collect()
}

/// seq_no runs 1..N over all chats; each room's room_seq 1..k.
fn check_no_holes(all: &[Value]) {
    let mut per_room: BTreeMap<String, u64> = BTreeMap::new();
    for (i, c) in all.iter().enumerate() {
        assert_eq!(c["seq_no"].as_u64(), Some(i as u64 + 1), "hole at {c}");
        let n = per_room
            .entry(c["room_id"].as_str().unwrap_or("").to_string())
            .or_insert(0);
        *n += 1;
        assert_eq!(c["room_seq"].as_u64(), Some(*n), "room hole at {c}");
    }
}

#[test]
fn three_tuis_two_rooms_a_leader_kill_and_everyone_agrees() {
    if !tmux::available() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let started = Instant::now();
    let timing = Timing::FAST;
    let mut c = Cluster::start_with(3, timing);
    let leader = c.wait_for_leader(WAIT);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // ann sits on the leader (her node dies), bob and cat on the others;
    // ann's name is the $USER default.
    let ann = tui(&c, leader, "ann", true);
    let bob = tui(&c, others[0], "bob", false);
    let cat = tui(&c, others[1], "cat", false);
    for (t, name) in [(&ann, "ann"), (&bob, "bob"), (&cat, "cat")] {
        expect(t, &c, "connected, in #general", |s| {
            s.contains("● node")
                && s.contains("[1 #general]")
                && s.contains(&format!("you are {name}"))
        });
    }

    // A topic for #general, seen in every header.
    say(&ann, "/topic welcome to general");
    for t in [&ann, &bob, &cat] {
        expect(t, &c, "the topic", |s| {
            s.contains("topic: welcome to general")
        });
    }
    // bob and cat move to #dev; ann talks in #general: unread for them.
    say(&bob, "/join #dev");
    say(&cat, "/join #dev");
    for t in [&bob, &cat] {
        expect(t, &c, "#dev on view", |s| s.contains("[2 #dev]"));
    }
    say(&ann, "hello from ann");
    expect(&ann, &c, "ann's message", |s| {
        shows_message(s, "ann", "hello from ann ✓")
    });
    for t in [&bob, &cat] {
        expect(t, &c, "unread count", |s| s.contains(" 1 #general (1) "));
    }
    say(&bob, "/topic dev talk");
    expect(&cat, &c, "#dev's topic", |s| s.contains("topic: dev talk"));
    // cat renames; the event and the new name show everywhere in #dev.
    say(&cat, "/nick cathy");
    expect(&bob, &c, "the rename", |s| {
        s.contains("cat is now known as cathy")
    });
    expect(&cat, &c, "cathy's name", |s| s.contains("you are cathy"));
    say(&cat, "first from cathy");
    expect(&bob, &c, "cathy's message", |s| {
        shows_message(s, "cathy", "first from cathy")
    });
    // bob's member list (wide screen) shows all of #dev online.
    expect(&bob, &c, "#dev's members", |s| {
        s.contains("● bob") && s.contains("● cathy") && s.contains("members 2/2")
    });

    // SIGKILL the leader: ann's node. ann's TUI fails over and goes on.
    c.kill(leader);
    say(&ann, "after the kill");
    expect(&ann, &c, "ann's message after failover", |s| {
        shows_message(s, "ann", "after the kill ✓")
    });
    say(&bob, "dev after the kill");
    expect(&cat, &c, "bob's message after the kill", |s| {
        shows_message(s, "bob", "dev after the kill")
    });
    for t in [&bob, &cat] {
        expect(t, &c, "two unread in #general", |s| {
            s.contains(" 1 #general (2) ")
        });
    }
    // ann joins #dev after her failover: its first page has the names.
    say(&ann, "/join #dev");
    expect(&ann, &c, "#dev's history on join", |s| {
        shows_message(s, "cathy", "first from cathy")
            && shows_message(s, "bob", "dev after the kill")
            && s.contains("topic: dev talk")
    });
    // Alt-1 back to #general on bob's screen: the count is read.
    bob.press("M-1");
    expect(&bob, &c, "#general on view, read", |s| {
        s.contains("[1 #general]")
            && shows_message(s, "ann", "after the kill")
            && s.contains("topic: welcome to general")
    });

    // The two live nodes agree on everything.
    let live: Vec<String> = others.iter().map(|&i| c.addr(i)).collect();
    let deadline = Instant::now() + WAIT;
    let views = loop {
        let views: Vec<Value> = live.iter().map(|a| node_view(a)).collect();
        if views.windows(2).all(|w| w[0] == w[1]) || Instant::now() >= deadline {
            break views;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(views[0], views[1], "the live nodes disagree\n{}", c.logs());
    let v = &views[0];
    check_no_holes(v["all"].as_array().unwrap());
    assert_eq!(
        payloads(v["rooms"]["general"]["history"].as_array().unwrap()),
        [r#"ann: "hello from ann""#, r#"ann: "after the kill""#]
    );
    assert_eq!(
        payloads(v["rooms"]["dev"]["history"].as_array().unwrap()),
        [
            r#"cathy: "first from cathy""#,
            r#"bob: "dev after the kill""#
        ]
    );
    assert_eq!(v["rooms"]["general"]["who"]["topic"], "welcome to general");
    assert_eq!(v["rooms"]["dev"]["who"]["topic"], "dev talk");
    let everyone = |flags: [bool; 3]| -> BTreeMap<String, bool> {
        ["ann", "bob", "cathy"]
            .iter()
            .zip(flags)
            .map(|(n, f)| (n.to_string(), f))
            .collect()
    };
    let online = everyone([true, true, true]);
    assert_eq!(presence(&v["rooms"]["general"]["who"]), online, "{v}");
    assert_eq!(presence(&v["rooms"]["dev"]["who"]), online, "{v}");
    let list = &v["list"]["rooms"];
    assert_eq!(list[0]["room_id"], "dev");
    assert_eq!(list[0]["members"], 3);
    assert_eq!(list[0]["messages"], 2);
    assert_eq!(list[1]["room_id"], "general");
    assert_eq!(list[1]["topic"], "welcome to general");

    // /rooms and /who print what the nodes said.
    say(&bob, "/rooms");
    expect(&bob, &c, "/rooms", |s| {
        s.contains("#dev · 2 messages · 3 members (3 online) · dev talk")
            && s.contains("#general · 2 messages · 3 members (3 online) · welcome to general")
    });
    say(&ann, "/who");
    expect(&ann, &c, "/who", |s| {
        s.contains("members of #dev (3): ●ann ●bob ●cathy")
    });

    // cathy quits: offline on every live node within the leader timeout
    // plus two heartbeats (her TCP connection closes; the gossip carries it).
    let quit_at = Instant::now();
    cat.press("Escape");
    assert_eq!(cat.wait_exit(WAIT), Some(0), "{}", cat.screen());
    let bound = Duration::from_millis(timing.leader_timeout_ms + 2 * timing.heartbeat_interval_ms);
    let want = everyone([true, true, false]);
    for addr in &live {
        loop {
            let who = ask(addr, json!({"type": "WHO", "room_id": "dev"}), "WHO");
            if presence(&who) == want {
                break;
            }
            assert!(
                quit_at.elapsed() <= bound,
                "{addr} still shows {who} after {:?} (bound {bound:?})",
                quit_at.elapsed()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // bob's member list catches up by polling.
    bob.press("C-n");
    expect(&bob, &c, "cathy away in bob's member list", |s| {
        s.contains("[2 #dev]") && s.contains("○ cathy") && s.contains("● ann")
    });
    for t in [&ann, &bob] {
        t.press("Escape");
        assert_eq!(t.wait_exit(WAIT), Some(0), "{}", t.screen());
    }
    eprintln!("took {:?}", started.elapsed());
}
