//! Accounts on the IRC gateway of a real `chorus node` (`[accounts]` on):
//! SASL PLAIN success (900 + 903) and failure (904), PASS success and
//! failure (464 and the link closed), a logged-in nick that cannot become
//! another name, a guest's PRIVMSG shown as `~nick` to a JSON-line
//! subscriber (and its claim of an account's name going nowhere), and, with
//! `guests = false`, an IRC client that did not log in refused a PRIVMSG.
//! Raw sockets speak IRC here; every wait is bounded.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/cluster.rs"]
mod cluster;

use chat::Conn;
use cluster::{Cluster, Timing};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn accounts(guests: bool) -> String {
    format!("\n[accounts]\nenabled = true\nregistration = \"open\"\nguests = {guests}\n")
}

/// A raw IRC connection that collects lines.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Raw { w, r }
    }

    fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\r\n").unwrap();
    }

    /// Lines until one contains `what` (panics after 10 s), that one included.
    fn until(&mut self, what: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let mut l = String::new();
            match self.r.read_line(&mut l) {
                Ok(0) => break,
                Ok(_) => {
                    let hit = l.contains(what);
                    got.push(l.trim_end().to_string());
                    if hit {
                        return got;
                    }
                }
                Err(_) => continue, // read timeout: look again
            }
        }
        panic!("no line with {what:?}; got:\n{}", got.join("\n"));
    }

    fn expect(&mut self, line: &str, what: &str) -> Vec<String> {
        self.send(line);
        self.until(what)
    }

    /// True once the server closed the connection (within 5 s).
    fn closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut l = String::new();
            match self.r.read_line(&mut l) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => {}
            }
        }
        false
    }
}

/// Standard base64 of `b` (for AUTHENTICATE PLAIN).
fn b64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in b.chunks(3) {
        let n = ch
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= ch.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Registers `user` over JSON lines (REGISTER logs the session in).
fn register(c: &Cluster, user: &str, password: &str) {
    let mut j = Conn::connect(&c.addr(0)).unwrap();
    j.send(&json!({"type": "REGISTER", "user": user, "password": password}))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = j.recv(left).unwrap().expect("an answer to REGISTER");
        match v["type"].as_str() {
            Some("LOGGED_IN") => return,
            Some("ERROR") => panic!("REGISTER {user}: {v}"),
            _ => {}
        }
    }
}

/// SASL PLAIN through CAP; the lines up to 903 or 904.
fn sasl(irc: &mut Raw, nick: &str, user: &str, password: &str) -> Vec<String> {
    irc.expect("CAP LS 302", "sasl");
    irc.send(&format!("NICK {nick}"));
    irc.send(&format!("USER {nick} 0 * :{nick}"));
    irc.expect("CAP REQ :sasl", "ACK");
    irc.expect("AUTHENTICATE PLAIN", "AUTHENTICATE +");
    let creds = b64(format!("{user}\0{user}\0{password}").as_bytes());
    irc.send(&format!("AUTHENTICATE {creds}"));
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let l = irc.until(" 90");
        let done = l.iter().any(|l| l.contains(" 903 ") || l.contains(" 904 "));
        got.extend(l);
        if done {
            return got;
        }
    }
    panic!("no 903/904: {got:?}");
}

/// The users of the messages of `room` so far, by msg payload, read by a
/// JSON-line subscriber (SUBSCRIBE from the first message).
fn subscriber_sees(c: &Cluster, room: &str, payload: &str) -> Value {
    let mut j = Conn::connect(&c.addr(0)).unwrap();
    j.send(&json!({"type": "SUBSCRIBE", "from_seq": 1, "room_id": room}))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = j
            .recv(left)
            .unwrap()
            .unwrap_or_else(|| panic!("no message {payload:?} in {room}"));
        if v["payload"] == payload {
            return v;
        }
    }
}

#[test]
fn irc_logins_by_sasl_and_pass_and_no_impersonation() {
    let _one = cluster::one_at_a_time();
    let c = Cluster::start_with_irc(1, Timing::TEST, &accounts(true));
    c.wait_for_leader(Duration::from_secs(20));
    let port = c.nodes[0].irc_port.unwrap();
    register(&c, "alice", "alice-password");
    register(&c, "carol", "carol-password");

    // SASL PLAIN, wrong password: 904, and no registration meanwhile.
    let mut bad = Raw::connect(port);
    let got = sasl(&mut bad, "alice", "alice", "not-her-password");
    assert!(got.iter().any(|l| l.contains(" 904 ")), "{got:?}");
    assert!(!got.iter().any(|l| l.contains(" 001 ")), "{got:?}");
    // An unknown mechanism lists PLAIN (908) and fails (904).
    bad.send("AUTHENTICATE EXTERNAL");
    let got = bad.until(" 904 ");
    assert!(
        got.iter()
            .any(|l| l.contains(" 908 ") && l.contains("PLAIN")),
        "{got:?}"
    );
    // Abort mid-exchange: 906.
    bad.expect("AUTHENTICATE PLAIN", "AUTHENTICATE +");
    bad.expect("AUTHENTICATE *", " 906 ");

    // SASL PLAIN success: 900 then 903; CAP END registers as the account
    // even though the NICK said otherwise.
    let mut alice = Raw::connect(port);
    let got = sasl(&mut alice, "wonder", "alice", "alice-password");
    assert!(
        got.iter()
            .any(|l| l.contains(" 900 ") && l.contains("alice")),
        "{got:?}"
    );
    assert!(got.iter().any(|l| l.contains(" 903 ")), "{got:?}");
    let welcome = alice.expect("CAP END", " 001 ");
    assert!(
        welcome.last().unwrap().contains(" 001 alice "),
        "{welcome:?}"
    );
    alice.until(" 376 ");
    // Already logged in: 907.
    alice.expect("AUTHENTICATE PLAIN", " 907 ");
    // Its nick is its account: another account's name, or any other, is refused.
    let r = alice.expect("NICK carol", " 433 ");
    assert!(r.last().unwrap().contains("logged in as alice"), "{r:?}");
    alice.expect("NICK bob", " 433 ");
    alice.expect("JOIN #general", " 366 ");
    alice.send("PRIVMSG #general :from alice over sasl");
    let v = subscriber_sees(&c, "general", "from alice over sasl");
    assert_eq!(v["user"], "alice", "{v}");

    // PASS user:password: registered as the account.
    let mut carol = Raw::connect(port);
    carol.send("PASS carol:carol-password");
    carol.send("NICK someone");
    carol.send("USER c 0 * :Carol");
    let got = carol.until(" 001 ");
    assert!(got.last().unwrap().contains(" 001 carol "), "{got:?}");
    assert!(got.iter().any(|l| l.contains(" 900 ")), "{got:?}");
    // PASS with the NICK as the user.
    let mut carol2 = Raw::connect(port);
    carol2.send("PASS carol-password");
    carol2.send("NICK carol");
    carol2.send("USER c 0 * :Carol");
    carol2.until(" 001 carol ");

    // PASS with a wrong password: 464, ERROR, closed; never registered.
    let mut liar = Raw::connect(port);
    liar.send("PASS alice:guessing-wrong");
    liar.send("NICK alice");
    liar.send("USER a 0 * :A");
    let got = liar.until(" 464 ");
    assert!(!got.iter().any(|l| l.contains(" 001 ")), "{got:?}");
    liar.until("ERROR :Closing link");
    assert!(liar.closed(), "the link stays open after a failed PASS");

    // A guest named like an account: registered, but its messages are
    // `~nick`'s for every other client, never the account's.
    let mut guest = Raw::connect(port);
    guest.send("NICK mallory");
    guest.send("USER m 0 * :M");
    guest.until(" 376 ");
    guest.expect("JOIN #general", " 366 ");
    guest.send("PRIVMSG #general :guest speaking");
    let v = subscriber_sees(&c, "general", "guest speaking");
    assert_eq!(v["user"], "~mallory", "{v}");
    // Renamed to an account's name (offline or not), it is still a guest.
    guest.send("NICK carol");
    guest.send("NICK dave");
    guest.send("PRIVMSG #general :still a guest");
    let v = subscriber_sees(&c, "general", "still a guest");
    assert_eq!(v["user"], "~dave", "{v}");
    drop(c);
}

#[test]
fn without_guests_an_irc_client_must_log_in_to_speak() {
    let _one = cluster::one_at_a_time();
    let c = Cluster::start_with_irc(1, Timing::TEST, &accounts(false));
    c.wait_for_leader(Duration::from_secs(20));
    let port = c.nodes[0].irc_port.unwrap();
    register(&c, "alice", "alice-password");

    let mut anon = Raw::connect(port);
    anon.send("NICK anon");
    anon.send("USER a 0 * :A");
    anon.until(" 376 ");
    let r = anon.expect("JOIN #general", " 477 ");
    assert!(r.last().unwrap().contains("log in"), "{r:?}");
    let r = anon.expect("PRIVMSG #general :hello", " 404 ");
    assert!(r.last().unwrap().contains("guests are off"), "{r:?}");

    let mut alice = Raw::connect(port);
    let got = sasl(&mut alice, "alice", "alice", "alice-password");
    assert!(got.iter().any(|l| l.contains(" 903 ")), "{got:?}");
    alice.expect("CAP END", " 001 alice ");
    alice.expect("JOIN #general", " 366 ");
    alice.send("PRIVMSG #general :logged in");
    assert_eq!(subscriber_sees(&c, "general", "logged in")["user"], "alice");
}
