//! The full-screen client in a real terminal (tmux) against a fake node: it
//! shows history, a typed message appears with its seq_no and the ✓ mark, the
//! status line names the node, and Esc quits with exit status 0 and a restored
//! terminal. The same against real nodes is in `client_cluster.rs`.

#[path = "common/fake_node.rs"]
mod fake_node;
#[path = "common/tmux.rs"]
mod tmux;

use fake_node::FakeCluster;
use std::time::Duration;

#[test]
fn tui_sends_and_shows_seq_numbers() {
    if !tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (apt-get install -y tmux)");
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
