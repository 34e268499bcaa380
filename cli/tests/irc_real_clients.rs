//! irssi and weechat (Debian's, driven in tmux like a person would) chat
//! through the IRC gateway with the terminal client (`chorus client
//! --plain`) and a JSON-line client, in one room, across a leader SIGKILL:
//! irssi is on the leader and its server list names the other nodes, so it
//! reconnects to one of them and carries on; weechat is on a follower and
//! keeps its connection. Every message from every client reaches every
//! client, and each shows them in the JSON client's seq_no order. Every
//! wait is bounded; the tmux servers, clients and nodes are stopped on drop.

#[path = "common/client_proc.rs"]
mod client_proc;
#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/tmux.rs"]
mod tmux;

use client_proc::{parse_delivered, PlainClient};
use cluster::{Cluster, Timing};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tmux::Tmux;

/// True if `prog` runs; under CI=true a missing one fails the test.
fn have(prog: &str, arg: &str) -> bool {
    let ok = Command::new(prog)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{prog} is missing in CI (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED: {prog} is not installed (apt-get install -y irssi weechat-curses tmux)"
        );
    }
    ok
}

/// The message tokens (`m-<who>-<n>`) on a screen or in lines, in order.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '│' || c == '|')
        .filter(|w| w.starts_with("m-") && w.len() > 4)
        .map(str::to_string)
        .collect()
}

/// `seen` without repeats (first occurrence kept).
fn first_seen(seen: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in seen {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// A JSON-line client subscribed to #general that records what it receives.
struct JsonClient {
    w: TcpStream,
    seen: Arc<Mutex<Vec<(u64, String)>>>,
    n: u32,
}

impl JsonClient {
    fn connect(port: u16) -> JsonClient {
        let mut w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let hello = json!({"type":"HELLO","proto":2,"client":"irc_real_clients/1","user":"jason"});
        let sub = json!({"type":"SUBSCRIBE","rooms":["general"]});
        w.write_all(format!("{hello}\n{sub}\n").as_bytes()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let r = BufReader::new(w.try_clone().unwrap());
        let into = seen.clone();
        thread::spawn(move || {
            for l in r.lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_default();
                if v["type"] == "SEQ_CHAT" {
                    let text = v["payload"].as_str().unwrap_or_default().to_string();
                    into.lock()
                        .unwrap()
                        .push((v["seq_no"].as_u64().unwrap(), text));
                }
            }
        });
        JsonClient { w, seen, n: 0 }
    }

    fn say(&mut self, text: &str) {
        self.n += 1;
        let chat = json!({"type":"CHAT","msg_id":format!("jason-{}", self.n),"room_id":"general","payload":text});
        self.w.write_all(format!("{chat}\n").as_bytes()).unwrap();
    }

    /// What it received, in seq_no order.
    fn order(&self) -> Vec<String> {
        let mut s = self.seen.lock().unwrap().clone();
        s.sort();
        s.into_iter().map(|(_, t)| t).collect()
    }
}

fn irssi(dir: &std::path::Path, ports: &[u16]) -> Tmux {
    let home = dir.join("irssi");
    std::fs::create_dir_all(&home).unwrap();
    let servers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let auto = if i == 0 {
                " autoconnect = \"yes\";"
            } else {
                ""
            };
            format!("  {{ address = \"127.0.0.1\"; port = \"{p}\"; chatnet = \"chorus\";{auto} }}")
        })
        .collect();
    let config = format!(
        "servers = (\n{}\n);\nchatnets = {{ chorus = {{ type = \"IRC\"; }}; }};\n\
         settings = {{\n  core = {{ real_name = \"Ann Irssi\"; user_name = \"ann\"; nick = \"ann\";\n    \
         server_reconnect_time = \"1\"; settings_autosave = \"no\"; }};\n  \
         \"irc/core\" = {{ cmd_queue_speed = \"10msec\"; cmds_max_at_once = \"50\"; }};\n}};\n",
        servers.join(",\n")
    );
    std::fs::write(home.join("config"), config).unwrap();
    let argv = ["irssi".to_string(), format!("--home={}", home.display())];
    Tmux::start(&argv, 140, 100)
}

fn weechat(dir: &std::path::Path, ports: &[u16]) -> Tmux {
    let home = dir.join("weechat");
    std::fs::create_dir_all(&home).unwrap();
    let servers: Vec<String> = ports.iter().map(|p| format!("127.0.0.1/{p}")).collect();
    let commands = format!(
        // paste_max_lines -1: two lines typed in quick succession are not
        // taken for a paste (weechat would hold them for a confirmation).
        "/set weechat.startup.display_logo off;/set weechat.startup.display_version off;\
         /set weechat.look.paste_max_lines -1;\
         /server add chorus {} -notls;/set irc.server.chorus.nicks wes;\
         /set irc.server.chorus.autojoin #general;/set irc.server.chorus.autoreconnect_delay 1;\
         /set irc.server.chorus.anti_flood_prio_high 0;/set irc.server.chorus.anti_flood_prio_low 0;\
         /connect chorus",
        servers.join(",")
    );
    let argv = [
        "weechat".to_string(),
        "-d".into(),
        home.display().to_string(),
        "-r".into(),
        commands,
    ];
    Tmux::start(&argv, 140, 100)
}

fn say(t: &Tmux, text: &str) {
    t.type_text(text);
    t.press("Enter");
}

#[test]
fn irssi_weechat_tui_and_json_chat_in_one_order_across_a_leader_kill() {
    if !(have("tmux", "-V") && have("irssi", "--version") && have("weechat", "--version")) {
        return;
    }
    let _one = cluster::one_at_a_time();
    let mut c = Cluster::start_with_irc(3, Timing::TEST, "");
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    let irc = |i: usize| c.nodes[i].irc_port.unwrap();
    // irssi on the leader, then the others in its server list.
    let ann = irssi(&c.dir, &[irc(leader), irc(f1), irc(f2)]);
    // weechat on a follower.
    let wes = weechat(&c.dir, &[irc(f1), irc(f2)]);
    let joined = |t: &Tmux, who: &str| {
        t.wait_screen(Duration::from_secs(30), |s| {
            s.contains(who) && s.contains("has joined #general")
        })
        .unwrap_or_else(|s| panic!("{who} did not join #general:\n{s}\n{}", c.logs()))
    };
    // irssi joins as a person would (an autojoin would open the channel
    // in a background window); it rejoins by itself after a reconnect.
    ann.wait_screen(Duration::from_secs(30), |s| s.contains("End of /MOTD"))
        .unwrap_or_else(|s| panic!("irssi did not register:\n{s}\n{}", c.logs()));
    say(&ann, "/join #general");
    joined(&ann, "ann");
    joined(&wes, "wes");
    let peers = format!(
        "127.0.0.1:{},127.0.0.1:{}",
        c.nodes[f1].port, c.nodes[leader].port
    );
    let mut tui = PlainClient::start(&[
        "--port",
        &c.nodes[f2].port.to_string(),
        "--peers",
        &peers,
        "--name",
        "tui",
        "--room",
        "general",
    ]);
    let mut jason = JsonClient::connect(c.nodes[f2].port);

    let mut sent: Vec<String> = Vec::new();
    let round = |k: usize,
                 ann_too: bool,
                 tui: &mut PlainClient,
                 jason: &mut JsonClient,
                 sent: &mut Vec<String>| {
        if ann_too {
            say(&ann, &format!("m-irssi-{k}"));
            sent.push(format!("m-irssi-{k}"));
        }
        say(&wes, &format!("m-weechat-{k}"));
        tui.send(&format!("m-tui-{k}"));
        jason.say(&format!("m-json-{k}"));
        sent.extend([
            format!("m-weechat-{k}"),
            format!("m-tui-{k}"),
            format!("m-json-{k}"),
        ]);
    };
    // IRC has no acknowledgement: what irssi wrote to the leader before it
    // died may be lost, so its rounds before the kill are let commit.
    let settled = |sent: &[String], json: &JsonClient| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let seen = json.order();
            if sent.iter().all(|m| seen.contains(m)) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("not committed: {sent:?} vs {:?}", json.order());
    };
    round(1, true, &mut tui, &mut jason, &mut sent);
    settled(&sent, &jason);
    round(2, true, &mut tui, &mut jason, &mut sent);
    settled(&sent, &jason);
    // Mid-conversation: round 3 (weechat, tui, json, all on followers) is
    // in flight when the leader dies, and round 4 is sent while there is
    // no leader; the followers hold and re-forward them.
    round(3, false, &mut tui, &mut jason, &mut sent);
    c.kill(leader);
    round(4, false, &mut tui, &mut jason, &mut sent);
    // irssi notices, reconnects to the next server of its list, rejoins.
    ann.wait_screen(Duration::from_secs(30), |s| {
        s.matches("[ann@chorus] has joined #general").count() >= 2
    })
    .unwrap_or_else(|s| panic!("irssi did not rejoin after the leader kill:\n{s}"));
    round(5, true, &mut tui, &mut jason, &mut sent);
    round(6, true, &mut tui, &mut jason, &mut sent);

    // Every message in every view.
    let all_in = |view: &[String]| sent.iter().all(|m| view.contains(m));
    let deadline = Instant::now() + Duration::from_secs(40);
    let views = loop {
        let tui_view: Vec<String> = tui
            .stdout_lines()
            .iter()
            .filter_map(|l| parse_delivered(l))
            .map(|(_, _, t)| t)
            .collect();
        let v = (
            tokens(&ann.screen()),
            tokens(&wes.screen()),
            tui_view,
            jason.order(),
        );
        if (all_in(&v.0) && all_in(&v.1) && all_in(&v.2) && all_in(&v.3))
            || Instant::now() > deadline
        {
            break v;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let (ann_v, wes_v, tui_v, json_v) = views;
    let (ann_screen, wes_screen) = (ann.screen(), wes.screen());
    // Their status windows (connection notices), for the report.
    say(&ann, "/window 1");
    say(&wes, "/buffer 1");
    thread::sleep(Duration::from_millis(300));
    let report = format!(
        "sent {sent:?}\nirssi {ann_v:?}\nweechat {wes_v:?}\ntui {tui_v:?}\njson {json_v:?}\n\
         --- irssi\n{ann_screen}\n--- irssi status\n{}\n--- weechat\n{wes_screen}\n\
         --- weechat status\n{}\n{}",
        ann.screen(),
        wes.screen(),
        c.logs()
    );
    for (name, v) in [
        ("irssi", &ann_v),
        ("weechat", &wes_v),
        ("tui", &tui_v),
        ("json", &json_v),
    ] {
        assert!(all_in(v), "{name} misses messages\n{report}");
    }
    // One order: the JSON client's seq_no order, with nothing doubled
    // (irssi's JOIN replay after its reconnect re-shows what it had seen:
    // first occurrences count).
    assert_eq!(
        json_v.len(),
        sent.len(),
        "doubled or extra messages\n{report}"
    );
    let in_order = |v: &[String]| {
        json_v
            .iter()
            .filter(|m| v.contains(m))
            .cloned()
            .collect::<Vec<_>>()
    };
    // irssi and weechat (no echo-message) show their own lines when they
    // send them; everyone else's come in commit order.
    let others = |v: &[String], own: &str| {
        v.iter()
            .filter(|m| !m.starts_with(own))
            .cloned()
            .collect::<Vec<_>>()
    };
    let ann_others = first_seen(&others(&ann_v, "m-irssi-"));
    assert_eq!(ann_others, in_order(&ann_others), "irssi's order\n{report}");
    let wes_others = others(&wes_v, "m-weechat-");
    assert_eq!(
        wes_others,
        in_order(&wes_others),
        "weechat's order (or a double)\n{report}"
    );
    assert_eq!(
        tui_v,
        in_order(&tui_v),
        "the terminal client's order\n{report}"
    );
    // weechat, on a follower, never lost its connection.
    assert!(
        !wes_screen.contains("disconnected from server"),
        "weechat was disconnected\n{report}"
    );
    let wes_joins = wes_screen
        .lines()
        .filter(|l| l.contains(" wes (") && l.contains("has joined #general"))
        .count();
    assert_eq!(wes_joins, 1, "weechat joined more than once\n{report}");
    // The screens, for whoever runs this with --nocapture.
    eprintln!("{report}");
}
