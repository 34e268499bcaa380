//! Accounts against real `chorus node` processes (`[accounts]` on, default
//! argon2id cost): REGISTER on one node and LOGIN on another (the account is
//! a committed entry every node folds); a wrong password refused, and an
//! unknown user answered as slowly (the dummy hash); impersonation refused on
//! JSON lines and on /ws (PyPI `websockets`), guests visibly `~name`; a
//! brute force slowed by the growing delays; the operators' `chorus user
//! add|disable`; TOPIC and KICK for the room's creator only; an account's message
//! rate over all its sessions; and a leader
//! SIGKILL while users are logged in: a session on a surviving node carries
//! on, and `chorus client --login` logs in again on its own after failing
//! over. Every wait is bounded; only processes started here are killed.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/client_proc.rs"]
mod client_proc;
#[path = "common/cluster.rs"]
mod cluster;

use chat::Conn;
use client_proc::PlainClient;
use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "test-secret"; // the cluster helper's cluster_secret

fn accounts_config(extra: &str) -> String {
    format!(
        "\n[accounts]\nenabled = true\nregistration = \"open\"\nlogin_free_failures = 3\n\
         login_delay_ms = 400\nlogin_delay_max_ms = 5000\n{extra}"
    )
}

fn conn(c: &Cluster, i: usize) -> Conn {
    Conn::connect(&c.addr(i)).expect("connect")
}

/// The next ERROR or `ty` line (others skipped).
fn answer(c: &mut Conn, ty: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left) {
            Ok(Some(v)) if v["type"] == ty || v["type"] == "ERROR" => return v,
            Ok(Some(_)) => {}
            other => panic!("no {ty} or ERROR: {other:?}"),
        }
    }
}

fn login(c: &mut Conn, user: &str, password: &str) -> Value {
    c.send(&json!({"type": "LOGIN", "user": user, "password": password}))
        .unwrap();
    answer(c, "LOGGED_IN")
}

fn register(c: &mut Conn, user: &str, password: &str) {
    c.send(&json!({"type": "REGISTER", "user": user, "password": password}))
        .unwrap();
    let a = answer(c, "ACCOUNT");
    assert_eq!(a["op"], "register", "{a}");
    assert_eq!(answer(c, "LOGGED_IN")["user"], user);
}

fn chat_as(c: &mut Conn, msg_id: &str, user: Option<&str>) -> Value {
    let mut line = json!({"type": "CHAT", "msg_id": msg_id, "payload": "hi", "room_id": "general"});
    if let Some(u) = user {
        line["user"] = u.into();
    }
    c.send(&line).unwrap();
    answer(c, "CHAT_ACK")
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or_default()
}

#[test]
fn accounts_are_replicated_logins_checked_and_impersonation_refused() {
    let c = Cluster::start_with_http(3, Timing::TEST, &accounts_config(""));
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);

    // Registered on one node, usable on another: a committed entry.
    let mut alice = conn(&c, a);
    register(&mut alice, "alice", "alice-password");
    let mut other = conn(&c, b);
    let t0 = Instant::now();
    let wrong = login(&mut other, "alice", "not-her-password");
    let wrong_ms = t0.elapsed().as_millis();
    assert_eq!(code(&wrong), "unauthorized", "{wrong}");
    let t0 = Instant::now();
    let unknown = login(&mut other, "nobody", "whatever-password");
    let unknown_ms = t0.elapsed().as_millis();
    assert_eq!(code(&unknown), "unauthorized", "{unknown}");
    assert_eq!(wrong["message"], unknown["message"], "one answer for both");
    // The unknown user cost a hash too (argon2id, ~tens of ms here).
    assert!(
        unknown_ms * 3 >= wrong_ms && unknown_ms >= 5,
        "unknown user answered in {unknown_ms} ms, wrong password in {wrong_ms} ms"
    );
    let ok = login(&mut other, "alice", "alice-password");
    assert_eq!(ok["type"], "LOGGED_IN", "{ok}");

    // Impersonation: a logged-in session cannot send as anyone else.
    let refused = chat_as(&mut other, "imp-1", Some("bob"));
    assert_eq!(code(&refused), "forbidden", "{refused}");
    assert_eq!(chat_as(&mut other, "mine-1", None)["type"], "CHAT_ACK");
    assert_eq!(
        chat_as(&mut other, "mine-2", Some("alice"))["type"],
        "CHAT_ACK"
    );
    let nick = {
        other.send(&json!({"type": "NICK", "name": "bob"})).unwrap();
        answer(&mut other, "CHAT_ACK")
    };
    assert_eq!(code(&nick), "forbidden", "{nick}");
    // A guest is visibly one, whatever name it claims.
    let mut guest = conn(&c, b);
    assert_eq!(
        chat_as(&mut guest, "guest-1", Some("alice"))["type"],
        "CHAT_ACK"
    );
    let history = history_users(&c, leader, "guest-1");
    assert_eq!(history.get("mine-1").map(String::as_str), Some("alice"));
    assert_eq!(history.get("mine-2").map(String::as_str), Some("alice"));
    assert_eq!(history.get("guest-1").map(String::as_str), Some("~alice"));
    assert!(!history.contains_key("imp-1"));

    // /ws: the same rules (the PyPI websockets client).
    ws_impersonation(&c, a);

    // Brute force: 3 free failures, then each attempt waits 400, 800, … ms
    // after the last failure; the right password is refused inside the wait.
    let mut brute = conn(&c, a);
    let mut checked = 0;
    let mut limited = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let v = login(&mut brute, "alice", &format!("guess-{checked}-{limited}"));
        match code(&v) {
            "unauthorized" => checked += 1,
            "rate_limited" => {
                limited += 1;
                assert!(v["message"].as_str().unwrap().contains("retry in"), "{v}");
            }
            _ => panic!("{v}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // ~50 ms per checked guess would allow ~30 in 1.5 s; the delays allow
    // 3 free + those after 400 and 800 ms.
    assert!(checked <= 6, "{checked} guesses checked in 1.5 s");
    assert!(limited > 0);
    let during = login(&mut brute, "alice", "alice-password");
    assert_eq!(code(&during), "rate_limited", "{during}");
    eprintln!("brute force: {checked} guesses checked, {limited} refused in 1.5 s");
    // The wait covers the address too (every test client is 127.0.0.1):
    // sit it out before the next logins.
    let wait_ms: u64 = during["message"]
        .as_str()
        .and_then(|m| m.split("retry in ").nth(1))
        .and_then(|m| m.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the wait is stated");
    std::thread::sleep(Duration::from_millis(wait_ms + 50));

    // Operators: `chorus user add` / `disable` with the cluster secret.
    let user = |args: &[&str], secret: &str| {
        Command::new(env!("CARGO_BIN_EXE_chorus"))
            .arg("user")
            .args(args)
            .env("CHORUS_CLUSTER_SECRET", secret)
            .env("CHORUS_PASSWORD", "carol-password")
            .output()
            .unwrap()
    };
    let addr = c.addr(b);
    let bad = user(&["add", "carol", "--connect", &addr], "wrong-secret");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let add = user(&["add", "carol", "--connect", &addr], SECRET);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let mut carol = conn(&c, a);
    assert_eq!(
        login(&mut carol, "carol", "carol-password")["type"],
        "LOGGED_IN"
    );
    let dis = user(&["disable", "carol", "--connect", &c.addr(leader)], SECRET);
    assert!(
        dis.status.success(),
        "{}",
        String::from_utf8_lossy(&dis.stderr)
    );
    let closed = answer(&mut carol, "NONE");
    assert_eq!(
        code(&closed),
        "unauthorized",
        "carol's session ends: {closed}"
    );
    let mut again = conn(&c, b);
    let v = login(&mut again, "carol", "carol-password");
    assert_eq!(code(&v), "unauthorized", "a disabled account: {v}");

    // Room operators: the creator sets the topic and removes members.
    let mut bob = conn(&c, b);
    register(&mut bob, "bob", "bob-password");
    let ack = |c: &mut Conn, line: Value| {
        c.send(&line).unwrap();
        answer(c, "CHAT_ACK")
    };
    assert_eq!(
        ack(&mut alice, json!({"type": "JOIN", "room_id": "ops"}))["type"],
        "CHAT_ACK"
    );
    assert_eq!(
        ack(&mut bob, json!({"type": "JOIN", "room_id": "ops"}))["type"],
        "CHAT_ACK"
    );
    let t = ack(
        &mut bob,
        json!({"type": "TOPIC", "room_id": "ops", "topic": "mine"}),
    );
    assert_eq!(code(&t), "forbidden", "{t}");
    let k = ack(
        &mut bob,
        json!({"type": "KICK", "room_id": "ops", "user": "alice"}),
    );
    assert_eq!(code(&k), "forbidden", "{k}");
    let t = ack(
        &mut alice,
        json!({"type": "TOPIC", "room_id": "ops", "topic": "alice's"}),
    );
    assert_eq!(t["type"], "CHAT_ACK", "{t}");
    let k = ack(
        &mut alice,
        json!({"type": "KICK", "room_id": "ops", "user": "bob"}),
    );
    assert_eq!(k["type"], "CHAT_ACK", "{k}");
    let mut who = conn(&c, leader);
    let deadline = Instant::now() + WAIT;
    loop {
        who.send(&json!({"type": "WHO", "room_id": "ops"})).unwrap();
        let w = answer(&mut who, "WHO");
        let members: Vec<&str> = w["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user"].as_str().unwrap())
            .collect();
        if members == ["alice"] && w["topic"] == "alice's" {
            break;
        }
        assert!(Instant::now() < deadline, "WHO ops: {w}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// msg_id → sender of every chat in `general`, from node `i`'s HISTORY
/// (asked again until it holds `want`, within `WAIT`).
fn history_users(c: &Cluster, i: usize, want: &str) -> std::collections::BTreeMap<String, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut r = conn(c, i);
        r.send(&json!({"type": "HISTORY", "from_seq": 1, "room_id": "general"}))
            .unwrap();
        let mut out = std::collections::BTreeMap::new();
        loop {
            let v = r.recv(WAIT).expect("a HISTORY line").expect("open");
            match v["type"].as_str() {
                Some("HISTORY_END") => break,
                Some("SEQ_CHAT") => {
                    let user = v["user"].as_str().unwrap_or_default().to_string();
                    out.insert(v["msg_id"].as_str().unwrap().to_string(), user);
                }
                _ => panic!("{v}"),
            }
        }
        if out.contains_key(want) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Impersonation over /ws: LOGIN, then a CHAT naming someone else.
fn ws_impersonation(c: &Cluster, i: usize) {
    let have = Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have python3 websockets"
        );
        eprintln!("python3 websockets not installed: skipping the /ws check");
        return;
    }
    let script = r#"
import asyncio, json, sys
import websockets
async def main():
    async with websockets.connect(sys.argv[1], open_timeout=10) as ws:
        async def next_of(*types):
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m["type"] in types:
                    return m
        await ws.send(json.dumps({"type": "HELLO", "proto": 2, "client": "accounts-test/0"}))
        await next_of("HELLO")
        await ws.send(json.dumps({"type": "LOGIN", "user": "alice", "password": "alice-password"}))
        m = await next_of("LOGGED_IN", "ERROR")
        assert m["type"] == "LOGGED_IN", m
        await ws.send(json.dumps({"type": "CHAT", "msg_id": "ws-imp", "payload": "x", "user": "bob"}))
        m = await next_of("CHAT_ACK", "ERROR")
        assert m["type"] == "ERROR" and m["code"] == "forbidden", m
        await ws.send(json.dumps({"type": "CHAT", "msg_id": "ws-ok", "payload": "x"}))
        m = await next_of("CHAT_ACK", "ERROR")
        assert m["type"] == "CHAT_ACK", m
        print("ws: impersonation refused, own chat acked")
asyncio.run(main())
"#;
    let url = format!("ws://127.0.0.1:{}/ws", c.nodes[i].http_port.unwrap());
    let out = Command::new("timeout")
        .args(["60", "python3", "-c", script, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_leader_kill_leaves_logged_in_sessions_working_and_clients_log_in_again() {
    let mut c = Cluster::start_with_http(3, Timing::TEST, &accounts_config(""));
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    let mut dave = conn(&c, follower);
    register(&mut dave, "dave", "dave-password");
    // A `chorus client` logged in on the leader, failing over to the others.
    let peers = format!("{},{}", c.addr(follower), c.addr((leader + 2) % 3));
    let port = c.nodes[leader].port.to_string();
    let mut client = PlainClient::start_with_env(
        &[
            "--port",
            &port,
            "--peers",
            &peers,
            "--name",
            "dave",
            "--login",
            "--retry-ms",
            "500",
        ],
        &[("CHORUS_PASSWORD", "dave-password")],
    );
    for i in 0..5 {
        client.send(&format!("before-{i}"));
    }
    assert!(
        client.wait_stdout(WAIT, |l| l.iter().filter(|x| x.contains("before-")).count()
            == 5),
        "{}",
        client.dump()
    );
    c.kill(leader);
    // The session on a surviving node carries on, still dave.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = chat_as(
            &mut dave,
            &format!("after-kill-{}", deadline.elapsed().as_millis()),
            None,
        );
        if v["type"] == "CHAT_ACK" {
            break;
        }
        assert!(Instant::now() < deadline, "dave's session: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..5 {
        client.send(&format!("after-{i}"));
    }
    client.close_stdin();
    let status = client.wait(Duration::from_secs(40));
    let logins = client
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("logged in as dave"))
        .count();
    assert!(status.is_some_and(|s| s.success()), "{}", client.dump());
    assert!(logins >= 2, "logged in {logins} times:\n{}", client.dump());
    // Every chat is dave's, the client's by text (its msg_ids are uuids).
    let history = history_users(&c, follower, "");
    assert!(
        history.values().all(|u| u == "dave"),
        "every chat is dave's: {history:?}"
    );
    assert!(history.len() >= 11, "{history:?}");
    let delivered = client.stdout_lines();
    for i in 0..5 {
        for p in ["before", "after"] {
            let text = format!("{p}-{i}");
            assert!(
                delivered
                    .iter()
                    .any(|l| l.ends_with(&format!("dave: {text}"))),
                "{text} not delivered as dave's:\n{}",
                client.dump()
            );
        }
    }
}

#[test]
fn an_account_over_its_message_rate_is_limited_across_its_sessions() {
    let c = Cluster::start_with_http(
        3,
        Timing::TEST,
        &accounts_config("account_rate_per_sec = 5\naccount_rate_burst = 5\n"),
    );
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let mut one = conn(&c, leader);
    register(&mut one, "erin", "erin-password");
    let mut two = conn(&c, leader);
    assert_eq!(
        login(&mut two, "erin", "erin-password")["type"],
        "LOGGED_IN"
    );
    // 10 CHATs from each of erin's two sessions at once: the account's
    // bucket (5, refilling 5/s) takes about 5 of the 20, whichever session.
    for i in 0..10 {
        for (s, c) in [("a", &mut one), ("b", &mut two)] {
            c.send(&json!({"type": "CHAT", "msg_id": format!("{s}{i}"), "payload": "x"}))
                .unwrap();
        }
    }
    let (mut acked, mut limited) = (0, 0);
    for c in [&mut one, &mut two] {
        for _ in 0..10 {
            let v = answer(c, "CHAT_ACK");
            if v["type"] == "CHAT_ACK" {
                acked += 1;
            } else {
                assert_eq!(code(&v), "rate_limited", "{v}");
                assert!(
                    v["message"].as_str().unwrap().contains("account erin"),
                    "{v}"
                );
                limited += 1;
            }
        }
    }
    assert!((5..=8).contains(&acked), "{acked} acked, {limited} limited");
    // A guest is not an account: its own connection's bound applies.
    let mut guest = conn(&c, leader);
    for i in 0..10 {
        assert_eq!(
            chat_as(&mut guest, &format!("g{i}"), None)["type"],
            "CHAT_ACK"
        );
    }
    // A second later erin is served again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(chat_as(&mut one, "later", None)["type"], "CHAT_ACK");
}
