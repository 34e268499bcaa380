//! A peer message whose term leaves no room for another election
//! (`Term::LIMIT` and above) is ignored: before, a HEARTBEAT in term
//! u64::MAX was adopted and the next election's `term + 1` overflowed
//! (a panic in debug builds; in release a wrap to term 0, persisted after
//! term u64::MAX, so the log no longer replayed: "term went backwards").

use chorus_core::*;

fn peer(id: u64) -> PeerInfo {
    PeerInfo {
        node_id: NodeId(id),
        host: "127.0.0.1".into(),
        port: 5000 + id as u16,
    }
}

fn heartbeat(term: u64) -> Input {
    Input::Peer(PeerMsg::Heartbeat {
        sender_id: NodeId(2),
        term: Term(term),
        commit_seq: Seq(0),
        last_seq: Seq(0),
        last_term: Term(0),
    })
}

#[test]
fn terms_at_the_limit_are_ignored_and_elections_go_on() {
    let cfg = Config::new(peer(1), vec![peer(2), peer(3)]).with_timing(100, 1000);
    let mut n = Node::new(cfg, Recovered::default(), 1);
    let mut out = Vec::new();
    n.step(Instant(0), Input::Start, &mut out);
    for term in [u64::MAX, u64::MAX - 1, Term::LIMIT.0] {
        out.clear();
        n.step(Instant(1), heartbeat(term), &mut out);
        assert!(out.is_empty(), "term {term}: {out:?}");
        assert_eq!(n.status().term, Term(0));
    }
    // Just below the limit: adopted, and the elections that follow do not overflow.
    n.step(Instant(2), heartbeat(Term::LIMIT.0 - 1), &mut out);
    assert_eq!(n.status().term, Term(Term::LIMIT.0 - 1));
    let mut t = 2;
    for _ in 0..20 {
        t = n.next_deadline().map_or(t + 100, |d| d.0.max(t + 1));
        n.step(Instant(t), Input::Tick, &mut out);
    }
    assert!(n.status().term >= Term(Term::LIMIT.0 - 1));
}
