//! The full-screen client in a real terminal (tmux) against a fake node: it
//! shows history, a typed message appears with its seq_no and the ✓ mark, the
//! status line names the node, and Esc quits with exit status 0 and a restored
//! terminal; the room's history arrives a page at a time, older pages as
//! PageUp reaches the top. The same against real nodes is in
//! `client_cluster.rs` and `tui_rooms_tmux.rs`.

#[path = "common/fake_node.rs"]
mod fake_node;
#[path = "common/tmux.rs"]
mod tmux;

use fake_node::FakeCluster;
use std::time::Duration;

/// Whether to run: tmux must be there in CI (.ci/run installs it).
fn have_tmux() -> bool {
    if tmux::available() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "tmux is missing in CI (.ci/run installs it)"
    );
    eprintln!("SKIPPED: tmux is not installed (apt-get install -y tmux)");
    false
}

#[test]
fn tui_sends_and_shows_seq_numbers() {
    if !have_tmux() {
        return;
    }
    let cluster = FakeCluster::new();
    let node = cluster.node(false);
    cluster.commit_other("general", "welcome");
    let argv = [
        env!("CARGO_BIN_EXE_chorus").to_string(),
        "client".into(),
        "--port".into(),
        node.port().to_string(),
        "--name".into(),
        "alice".into(),
    ];
    let t = tmux::Tmux::start(&argv, 100, 20);
    let screen = t.wait_screen(Duration::from_secs(10), |s| s.contains("bob: welcome"));
    let screen = screen.unwrap_or_else(|s| panic!("history not shown:\n{s}"));
    assert!(screen.contains("#1"), "{screen}");
    assert!(screen.contains(&format!("node {}", node.addr)), "{screen}");
    t.type_text("hello from tmux");
    t.press("Enter");
    let screen = t
        .wait_screen(Duration::from_secs(10), |s| {
            s.lines()
                .any(|l| l.contains("#2") && l.contains("alice: hello from tmux ✓"))
        })
        .unwrap_or_else(|s| panic!("message not delivered with its seq_no:\n{s}"));
    assert!(screen.contains("unacked 0"), "{screen}");
    assert_eq!(cluster.payloads(), ["welcome", "hello from tmux"]);
    t.press("Escape");
    assert_eq!(
        t.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}\n{}",
        t.screen(),
        t.diagnose()
    );
    // The alternate screen is gone: the chat is no longer on the terminal.
    assert!(!t.screen().contains("hello from tmux"), "{}", t.screen());
}

#[test]
fn history_is_paged_from_the_node_as_page_up_reaches_the_top() {
    if !have_tmux() {
        return;
    }
    let cluster = FakeCluster::new();
    let node = cluster.node(false);
    for i in 1..=150 {
        cluster.commit_other("general", &format!("old {i}"));
    }
    let argv = [
        env!("CARGO_BIN_EXE_chorus").to_string(),
        "client".into(),
        "--port".into(),
        node.port().to_string(),
        "--name".into(),
        "alice".into(),
    ];
    // 20 rows: pages of 40 (two screens).
    let t = tmux::Tmux::start(&argv, 100, 20);
    t.wait_screen(Duration::from_secs(10), |s| s.contains("bob: old 150"))
        .unwrap_or_else(|s| panic!("last message not shown:\n{s}"));
    // Connecting fetched one page, not the room.
    assert_eq!(
        cluster.pages(),
        [("general".to_string(), Some(151), Some(40))],
        "{}",
        t.screen()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let top = loop {
        t.press("PageUp");
        std::thread::sleep(Duration::from_millis(50));
        let s = t.screen();
        if s.contains("the beginning of the room") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached the top:\n{s}"
        );
    };
    assert!(
        top.lines()
            .any(|l| l.starts_with("│#1 ") && l.contains("bob: old 1 ")),
        "{top}"
    );
    // Three more pages, each below the oldest line shown.
    let befores: Vec<Option<u64>> = cluster.pages().iter().map(|p| p.1).collect();
    assert_eq!(befores, [Some(151), Some(111), Some(71), Some(31)]);
    // PageDown returns to the newest.
    for _ in 0..20 {
        t.press("PageDown");
    }
    t.wait_screen(Duration::from_secs(5), |s| s.contains("bob: old 150"))
        .unwrap_or_else(|s| panic!("PageDown did not return:\n{s}"));
    t.press("Escape");
    assert_eq!(
        t.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        t.screen()
    );
}
