//! The IRC gateway (`irc_port`) of real nodes: the PyPI `irc` library
//! (`irc_client.py`) chatting with a JSON-line client across a leader
//! SIGKILL (a session on a follower keeps its connection, one on the dead
//! node reconnects to another and carries on, one order everywhere), and a
//! raw socket checking registration, CAP and the numerics of bad input.
//! Every wait is bounded.

#[path = "common/cluster.rs"]
mod cluster;

use cluster::{Cluster, Timing};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn have_irc_library() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import irc.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "python3 irc is missing in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python3 irc not installed (python3 -m pip install irc)");
    }
    ok
}

#[test]
fn irc_library_sessions_survive_a_leader_kill_in_one_order() {
    if !have_irc_library() {
        return;
    }
    let _one = cluster::one_at_a_time();
    let c = Cluster::start_with_irc(3, Timing::TEST, "");
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let args = serde_json::json!({
        "ports": c.nodes.iter().map(|n| n.port).collect::<Vec<_>>(),
        "irc_ports": c.nodes.iter().map(|n| n.irc_port.unwrap()).collect::<Vec<_>>(),
        "pids": (0..3).map(|i| c.pid(i).unwrap()).collect::<Vec<_>>(),
        "leader": leader,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/irc_client.py");
    let out = Command::new("timeout")
        .args(["150", "python3", script, &args.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "irc_client.py failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
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
        self.until_within(what, Duration::from_secs(10))
    }

    fn until_within(&mut self, what: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            let mut l = String::new();
            match self.r.read_line(&mut l) {
                Ok(0) => break,
                Ok(_) => {
                    assert!(l.ends_with("\r\n"), "not CRLF-terminated: {l:?}");
                    assert!(l.len() <= 512 || l.starts_with('@'), "over 512 bytes: {l}");
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

    /// Sends `line` and expects a reply containing `what`.
    fn expect(&mut self, line: &str, what: &str) {
        self.send(line);
        self.until(what);
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

#[test]
fn irc_registration_caps_and_bad_input_get_the_numerics_of_the_spec() {
    let _one = cluster::one_at_a_time();
    let c = Cluster::start_with_irc(1, Timing::TEST, "irc_join_replay = 3\n");
    c.wait_for_leader(Duration::from_secs(20));
    let port = c.nodes[0].irc_port.unwrap();

    let mut a = Raw::connect(port);
    a.expect("JOIN #early", " 451 * :You have not registered");
    a.expect("NICK 9lives", " 432 * 9lives :Erroneous nickname");
    a.expect("NICK", " 431 * :No nickname given");
    a.expect("USER onlyone", " 461 * USER :Not enough parameters");
    a.expect(
        "CAP LS 302",
        "CAP * LS :echo-message message-tags server-time",
    );
    a.expect("CAP REQ :server-time sasl", "CAP * NAK :server-time sasl");
    a.expect("CAP REQ :server-time", "CAP * ACK :server-time");
    a.send("NICK alice");
    a.send("USER al 0 * :Alice Liddell");
    // Registration waits for CAP END.
    a.send("PING :before-end");
    a.until("PONG n1.chorus :before-end");
    a.send("CAP END");
    for n in ["001", "002", "003", "004", "005", "375", "372"] {
        a.until(&format!(" {n} alice "));
    }
    a.until(" 376 alice :End of /MOTD");
    a.expect("CAP LIST", "CAP alice LIST :server-time");
    a.expect("FROB x", " 421 alice FROB :Unknown command");
    a.expect("USER al 0 * :again", " 462 alice :You may not reregister");
    a.expect("PRIVMSG", " 411 alice :No recipient given (PRIVMSG)");
    a.expect("PRIVMSG #general", " 412 alice :No text to send");
    a.expect(
        "PRIVMSG #general :hi",
        " 404 alice #general :Cannot send to channel",
    );
    a.expect("PRIVMSG bob :hi", " 401 alice bob :No such nick/channel");
    a.expect("JOIN general", " 403 alice general :No such channel");
    a.expect(
        "PART #general",
        " 442 alice #general :You're not on that channel",
    );
    a.expect("JOIN", " 461 alice JOIN :Not enough parameters");
    a.send("JOIN #general");
    a.until(":alice!al@chorus JOIN :#general");
    a.until(" 353 alice = #general :alice");
    a.until(" 366 alice #general :End of /NAMES list");
    a.expect("MODE #general", " 324 alice #general :+nt");
    a.expect(
        "MODE #general b",
        " 368 alice #general :End of channel ban list",
    );
    a.expect("MODE #general +o alice", " 482 alice #general :");
    a.expect("MODE alice", " 221 alice :+");
    a.expect("MODE bob", " 502 alice :");
    a.expect("TOPIC #general", " 331 alice #general :No topic is set");
    a.expect(
        "AWAY :lunch",
        " 306 alice :You have been marked as being away",
    );
    a.expect(
        "WHO #general",
        " 352 alice #general al chorus n1.chorus alice G :0 Alice Liddell",
    );
    a.expect("AWAY", " 305 alice :");
    a.expect("WHOIS alice", " 311 alice alice al chorus * :Alice Liddell");
    a.until(" 318 alice alice :End of /WHOIS list");
    a.expect("WHOIS nobody", " 401 alice nobody :No such nick/channel");
    let long = format!("PRIVMSG #general :{}", "x".repeat(500));
    a.expect(&long, " 417 alice :Input line was too long");
    // Still connected and served after every refusal.
    a.expect("PING :still-here", "PONG n1.chorus :still-here");

    // A second session: nick in use, then chat both ways.
    let mut b = Raw::connect(port);
    b.expect("NICK alice", " 433 * alice :Nickname is already in use");
    b.send("NICK bob");
    b.send("USER bob 0 * :Bob");
    b.until(" 376 bob ");
    b.send("JOIN #general");
    b.until(" 353 bob = #general :alice bob");
    // Room events: bob's join reaches alice; a topic set by alice reaches
    // both when it commits, and is what TOPIC and a JOIN's 332 show.
    a.until(":bob!bob@chorus JOIN :#general");
    a.send("TOPIC #general :the plan");
    a.until(":alice!alice@chorus TOPIC #general :the plan");
    b.until(":alice!alice@chorus TOPIC #general :the plan");
    b.expect("TOPIC #general", " 332 bob #general :the plan");
    b.expect(
        "LIST",
        " 322 bob #general 2 :[0 messages, 2 online] the plan",
    );
    b.expect("WHOIS alice", " 319 bob alice :#general");
    b.send("PRIVMSG #general :one\u{1}two");
    a.until("@time=");
    b.send("PRIVMSG #general,#other :to two targets");
    b.until(" 404 bob #other :");
    // JSON clients' text with line breaks arrives as separate lines, never
    // as a command.
    let mut j = TcpStream::connect(("127.0.0.1", c.nodes[0].port)).unwrap();
    j.write_all(
        b"{\"type\":\"HELLO\",\"proto\":2,\"client\":\"t/1\"}\n{\"type\":\"CHAT\",\"msg_id\":\"j1\",\"room_id\":\"general\",\"user\":\"j son\",\"payload\":\"line1\\r\\nQUIT :x\"}\n",
    )
    .unwrap();
    let got = b.until("QUIT :x");
    assert!(
        got.iter()
            .any(|l| l == ":j_son!j_son@chorus PRIVMSG #general :line1"),
        "{got:?}"
    );
    assert!(got
        .iter()
        .any(|l| l == ":j_son!j_son@chorus PRIVMSG #general :QUIT :x"));

    // A newcomer's JOIN replays the last irc_join_replay (3) messages.
    let mut r = Raw::connect(port);
    r.send("CAP REQ :server-time message-tags");
    r.send("NICK carol");
    r.send("USER c 0 * :C");
    r.send("CAP END");
    r.send("JOIN #general");
    let got = r.until("QUIT :x");
    let replayed: Vec<&String> = got.iter().filter(|l| l.contains(" PRIVMSG ")).collect();
    // The three are bob's two and the JSON client's (two IRC lines).
    assert_eq!(replayed.len(), 4, "{got:?}");
    assert!(replayed[0].starts_with("@time=20"), "{got:?}");
    assert!(replayed[0].contains(";msgid=irc-n1-"), "{got:?}");
    assert!(
        replayed[0].ends_with(":bob!bob@chorus PRIVMSG #general :one\u{1}two"),
        "{got:?}"
    );
    assert!(
        replayed[1].ends_with("PRIVMSG #general :to two targets"),
        "{got:?}"
    );

    // A rename is a committed nick event: answered at once, shown to the
    // room when it commits; the old nick is free again.
    b.send("NICK bobby");
    b.until(":bob!bob@chorus NICK :bobby");
    a.until(":bob!bob@chorus NICK :bobby");
    a.expect("NAMES #general", " 353 alice = #general :alice bobby carol");
    // PART is a leave event.
    r.send("PART #general :done");
    r.until(":carol!c@chorus PART #general :done");
    a.until(":carol!carol@chorus PART :#general");

    // Past both limits together (8191 + 512): ERROR and closed.
    let huge = format!("PRIVMSG #general :{}", "y".repeat(9000));
    b.send(&huge);
    b.until("ERROR :Closing link: input line longer than");
    assert!(b.closed(), "an over-long line must close the connection");

    a.send("QUIT :bye");
    a.until("ERROR :Closing link: Quit: bye");
    assert!(a.closed());
}

/// The node's resident memory (kB), from /proc.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn an_irc_client_that_never_reads_is_paced_and_costs_bounded_memory() {
    let _one = cluster::one_at_a_time();
    // A small log cache, so the node's memory is mostly what clients hold.
    let c = Cluster::start_with_irc(1, Timing::TEST, "log_cache_entries = 64\n");
    c.wait_for_leader(Duration::from_secs(20));
    let port = c.nodes[0].irc_port.unwrap();
    let pid = c.pid(0).unwrap();
    let join = |nick: &str| {
        let mut r = Raw::connect(port);
        r.send(&format!("NICK {nick}"));
        r.send(&format!("USER {nick} 0 * :{nick}"));
        r.send("JOIN #flood");
        r.until(" 366 ");
        r
    };
    let mut slow = join("slow");
    let mut fast = join("fast");
    let before = rss_kb(pid);
    // 80 MB of chat from a JSON client: 400 messages of 200 KB, each 400+
    // IRC lines for the two IRC sessions.
    let mut j = TcpStream::connect(("127.0.0.1", c.nodes[0].port)).unwrap();
    j.write_all(b"{\"type\":\"HELLO\",\"proto\":2,\"client\":\"flood/1\"}\n")
        .unwrap();
    let body = "x".repeat(200_000);
    let drain = j.try_clone().unwrap();
    std::thread::spawn(move || std::io::copy(&mut &drain, &mut std::io::sink()));
    for i in 0..400 {
        let line = serde_json::json!({"type":"CHAT","msg_id":format!("f{i}"),"room_id":"flood","user":"flood","payload":format!("m{i}:{body}")});
        j.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    j.write_all(b"{\"type\":\"CHAT\",\"msg_id\":\"fdone\",\"room_id\":\"flood\",\"user\":\"flood\",\"payload\":\"done\"}\n")
        .unwrap();
    // The reader gets everything while the other reads nothing.
    let t = Instant::now();
    let got = fast.until_within("PRIVMSG #flood :done", Duration::from_secs(90));
    let lines = got.len();
    let peak = rss_kb(pid);
    eprintln!(
        "fast reader: {lines} lines in {:?}; node RSS {before} kB before, {peak} kB with a non-reader behind by ~80 MB",
        t.elapsed()
    );
    assert!(lines > 80_000, "{lines} lines");
    // Unbounded, the non-reader's backlog alone would be ~80 MB.
    assert!(
        peak < before + 48_000,
        "node RSS grew from {before} kB to {peak} kB: a non-reading IRC client is buffered"
    );
    // Paced, not dropped: the non-reader catches up when it reads.
    let got = slow.until_within("PRIVMSG #flood :done", Duration::from_secs(90));
    assert!(got.len() > 80_000, "{}", got.len());
    assert!(got.iter().any(|l| l.contains("PRIVMSG #flood :m0:xxx")));
}
