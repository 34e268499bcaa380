//! Exact-action tests per handler: each test drives a node through its public
//! API and asserts the ordered list of actions a step produced (the order is
//! the durability contract, see `chorus_core::io`).

use chorus_core::record::Record;
use chorus_core::*;

fn peer(id: u64) -> PeerInfo {
    PeerInfo {
        node_id: NodeId(id),
        host: "127.0.0.1".into(),
        port: 5000 + id as u16,
    }
}

/// Node `id` of the cluster {1, 2, 3} with fixed timings (100 ms heartbeats).
fn node(id: u64, rec: Recovered) -> Node {
    node_with(id, rec, |_| {})
}

/// `node`, with `f` applied to its config first.
fn node_with(id: u64, rec: Recovered, f: impl FnOnce(&mut Config)) -> Node {
    let peers = (1..=3).filter(|&p| p != id).map(peer).collect();
    let mut cfg = Config::new(peer(id), peers).with_timing(100, 1000);
    f(&mut cfg);
    Node::new(cfg, rec, id)
}

fn step(n: &mut Node, now: u64, input: Input) -> Vec<Action> {
    let mut out = Vec::new();
    n.step(Instant(now), input, &mut out);
    out
}

fn chat(id: &str) -> Chat {
    Chat {
        msg_id: id.into(),
        room_id: "general".into(),
        sender_id: 7,
        user: None,
        payload: format!("payload of {id}"),
        ts_ms: 0,
        event: None,
    }
}

fn entry(seq: u64, term: u64, id: &str) -> Entry {
    Entry {
        seq_no: Seq(seq),
        term: Term(term),
        body: Body::Chat(chat(id)),
    }
}

/// n`from`'s APPEND_ACK in term 1 up to `m`.
fn append_ack(from: u64, m: u64) -> Input {
    Input::Peer(PeerMsg::AppendAck {
        sender_id: NodeId(from),
        term: Term(1),
        match_seq: Seq(m),
    })
}

/// The numbers of the first chat: #1 globally and in its room.
fn first() -> Numbers {
    Numbers {
        seq_no: 1,
        room_seq: 1,
    }
}

/// What the leader of `leader_n3` does when client 1's chat "m1" (log index
/// 2, after the no-op) commits: note the commit point, acknowledge it as
/// chat #1 (the no-op takes no number), deliver.
fn committed_m1_at_2() -> Vec<Action> {
    vec![
        Action::Note(Record::Commit { seq: Seq(2) }),
        Action::Reply {
            client: ClientId(1),
            reply: ClientReply::ChatAck {
                msg_id: "m1".into(),
                seq_no: 1,
            },
        },
        Action::Deliver(entry(2, 1, "m1"), Some(first())),
    ]
}

/// Makes n3 the leader of term 1 (n1 grants, n1 promises). Returns the node at t=2000.
fn leader_n3() -> Node {
    leader_n3_with(|_| {})
}

/// `leader_n3` with `f` applied to n3's config.
fn leader_n3_with(f: impl FnOnce(&mut Config)) -> Node {
    let mut n = node_with(3, Recovered::default(), f);
    step(&mut n, 0, Input::Start);
    let t = n.next_deadline().unwrap().0;
    step(&mut n, t, Input::Tick);
    assert_eq!(n.status().role, Role::Candidate);
    let out = step(
        &mut n,
        t + 1,
        Input::Peer(PeerMsg::ElectionOk {
            sender_id: NodeId(1),
            term: Term(0),
            grant: true,
            leader: None,
        }),
    );
    assert_eq!(
        out[0],
        Action::Persist(Record::Term {
            term: Term(1),
            voted_for: Some(NodeId(3))
        }),
        "the claimed term is persisted before the claim is sent"
    );
    assert!(matches!(
        &out[1],
        Action::Broadcast {
            msg: PeerMsg::Coordinator { term: Term(1), .. },
            ..
        }
    ));
    step(
        &mut n,
        t + 2,
        Input::Peer(PeerMsg::SyncAck {
            sender_id: NodeId(1),
            term: Term(1),
            last_seq: Seq(0),
            last_term: Term(0),
            commit_seq: Seq(0),
        }),
    );
    assert_eq!(n.status().role, Role::Leader);
    step(&mut n, t + 3, Input::Flush);
    n
}

#[test]
fn follower_persists_before_it_acknowledges() {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    let mut out = step(
        &mut n,
        10,
        Input::Peer(PeerMsg::SeqChat {
            sender_id: NodeId(3),
            term: Term(1),
            prev_seq: Seq(0),
            prev_term: Term(0),
            commit_seq: Seq(0),
            entries: vec![entry(1, 1, "a"), entry(2, 1, "b")],
        }),
    );
    out.extend(step(&mut n, 10, Input::Flush));
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::Term {
                term: Term(1),
                voted_for: None
            }),
            Action::Persist(Record::Entry(entry(1, 1, "a"))),
            Action::Persist(Record::Entry(entry(2, 1, "b"))),
            Action::Send {
                to: NodeId(3),
                msg: PeerMsg::AppendAck {
                    sender_id: NodeId(1),
                    term: Term(1),
                    match_seq: Seq(2)
                }
            },
        ]
    );
    assert_eq!(n.status().leader, Some(NodeId(3)));
    assert_eq!(
        n.status().commit_seq,
        Seq(0),
        "nothing is committed before the leader says so"
    );
}

#[test]
fn follower_delivers_only_what_the_leader_committed() {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    let append = |commit| {
        Input::Peer(PeerMsg::SeqChat {
            sender_id: NodeId(3),
            term: Term(1),
            prev_seq: Seq(0),
            prev_term: Term(0),
            commit_seq: Seq(commit),
            entries: vec![entry(1, 1, "a")],
        })
    };
    step(&mut n, 10, append(0));
    let out = step(
        &mut n,
        20,
        Input::Peer(PeerMsg::Heartbeat {
            sender_id: NodeId(3),
            term: Term(1),
            commit_seq: Seq(1),
            last_seq: Seq(1),
            last_term: Term(1),
        }),
    );
    assert_eq!(
        out,
        vec![
            Action::Note(Record::Commit { seq: Seq(1) }),
            Action::Deliver(entry(1, 1, "a"), Some(first())),
        ]
    );
}

#[test]
fn coordinator_from_higher_id_cancels_a_running_election() {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    let t = n.next_deadline().unwrap().0;
    let out = step(&mut n, t, Input::Tick);
    assert!(matches!(
        &out[0],
        Action::Broadcast {
            msg: PeerMsg::Election { .. },
            ..
        }
    ));
    assert_eq!(n.status().role, Role::Candidate);
    let out = step(
        &mut n,
        t + 5,
        Input::Peer(PeerMsg::Coordinator {
            sender_id: NodeId(3),
            term: Term(1),
            leader: peer(3),
        }),
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::Term {
                term: Term(1),
                voted_for: Some(NodeId(3))
            }),
            Action::Send {
                to: NodeId(3),
                msg: PeerMsg::SyncAck {
                    sender_id: NodeId(1),
                    term: Term(1),
                    last_seq: Seq(0),
                    last_term: Term(0),
                    commit_seq: Seq(0)
                }
            },
        ]
    );
    let s = n.status();
    assert_eq!((s.role, s.leader), (Role::Follower, Some(NodeId(3))));
}

#[test]
fn one_promise_per_term() {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    let claim = |id| {
        Input::Peer(PeerMsg::Coordinator {
            sender_id: NodeId(id),
            term: Term(4),
            leader: peer(id),
        })
    };
    step(&mut n, 1, claim(2));
    let out = step(&mut n, 2, claim(3));
    assert_eq!(
        out,
        vec![Action::Send {
            to: NodeId(3),
            msg: PeerMsg::CoordinatorNack {
                sender_id: NodeId(1),
                term: Term(4)
            }
        }],
        "a second claimant of the same term is refused, never 'last one wins'"
    );
    assert_eq!(n.status().leader, Some(NodeId(2)));
}

#[test]
fn lower_term_message_changes_nothing() {
    let rec = Recovered {
        term: Term(5),
        ..Recovered::default()
    };
    let mut n = node(1, rec);
    step(&mut n, 0, Input::Start);
    let before = n.status();
    let out = step(
        &mut n,
        10,
        Input::Peer(PeerMsg::SeqChat {
            sender_id: NodeId(2),
            term: Term(3),
            prev_seq: Seq(0),
            prev_term: Term(0),
            commit_seq: Seq(1),
            entries: vec![entry(1, 3, "stale")],
        }),
    );
    assert_eq!(
        out,
        vec![Action::Send {
            to: NodeId(2),
            msg: PeerMsg::AppendAck {
                sender_id: NodeId(1),
                term: Term(5),
                match_seq: Seq(0)
            }
        }],
        "the stale leader only learns our term"
    );
    assert_eq!(n.status(), before);
}

#[test]
fn leader_delivers_only_after_a_majority_persisted() {
    let mut n = leader_n3();
    let out = step(
        &mut n,
        3000,
        Input::Client {
            client: ClientId(1),
            request: ClientRequest::Chat(chat("m1")),
        },
    );
    assert_eq!(out, vec![Action::Persist(Record::Entry(entry(2, 1, "m1")))]);
    let out = step(&mut n, 3000, Input::Flush);
    assert!(matches!(
        &out[..],
        [Action::Broadcast {
            msg: PeerMsg::SeqChat {
                prev_seq: Seq(1),
                ..
            },
            ..
        }]
    ));
    // n1 persisted the no-op only: nothing of this term's chat is committed.
    let out = step(&mut n, 3001, append_ack(1, 1));
    assert_eq!(
        out,
        vec![
            Action::Note(Record::Commit { seq: Seq(1) }),
            Action::Deliver(
                Entry {
                    seq_no: Seq(1),
                    term: Term(1),
                    body: Body::Noop { leader: NodeId(3) }
                },
                None
            )
        ]
    );
    let out = step(&mut n, 3002, append_ack(1, 2));
    assert_eq!(out, committed_m1_at_2());
}

#[test]
fn retry_of_a_committed_msg_id_returns_its_original_seq_no() {
    let mut n = leader_n3();
    let send = |c| Input::Client {
        client: ClientId(c),
        request: ClientRequest::Chat(chat("m1")),
    };
    step(&mut n, 3000, send(1));
    step(&mut n, 3000, Input::Flush);
    step(
        &mut n,
        3001,
        Input::Peer(PeerMsg::AppendAck {
            sender_id: NodeId(2),
            term: Term(1),
            match_seq: Seq(2),
        }),
    );
    let out = step(&mut n, 3002, send(9));
    assert_eq!(
        out,
        vec![Action::Reply {
            client: ClientId(9),
            reply: ClientReply::ChatAck {
                msg_id: "m1".into(),
                seq_no: 1
            }
        }],
        "no new entry, the original seq_no"
    );
    assert_eq!(n.status().last_seq, Seq(2));
}

#[test]
fn stale_claimant_fetches_the_best_log_before_leading() {
    // n3 restarts with nothing; n2 has entries 1..=2 of term 1.
    let mut n = node(3, Recovered::default());
    step(&mut n, 0, Input::Start);
    let t = n.next_deadline().unwrap().0;
    step(&mut n, t, Input::Tick);
    step(
        &mut n,
        t + 1,
        Input::Peer(PeerMsg::ElectionOk {
            sender_id: NodeId(2),
            term: Term(1),
            grant: true,
            leader: None,
        }),
    );
    let out = step(
        &mut n,
        t + 2,
        Input::Peer(PeerMsg::SyncAck {
            sender_id: NodeId(2),
            term: Term(1),
            last_seq: Seq(2),
            last_term: Term(1),
            commit_seq: Seq(2),
        }),
    );
    assert_eq!(
        out,
        vec![Action::Send {
            to: NodeId(2),
            msg: PeerMsg::CatchupReq {
                sender_id: NodeId(3),
                term: Term(1),
                from_seq: Seq(1),
                prev_term: Term(0),
                commit_seq: Seq(0)
            }
        }],
        "no sequencing before the sync"
    );
    assert_eq!(n.status().role, Role::Candidate);
    let out = step(
        &mut n,
        t + 3,
        Input::Peer(PeerMsg::CatchupResp {
            sender_id: NodeId(2),
            term: Term(1),
            prev_seq: Seq(0),
            prev_term: Term(0),
            commit_seq: Seq(2),
            last_seq: Seq(2),
            entries: vec![entry(1, 1, "a"), entry(2, 1, "b")],
            leading: false,
        }),
    );
    assert_eq!(out[0], Action::Persist(Record::Entry(entry(1, 1, "a"))));
    assert_eq!(out[1], Action::Persist(Record::Entry(entry(2, 1, "b"))));
    assert_eq!(
        out[2],
        Action::Persist(Record::Entry(Entry {
            seq_no: Seq(3),
            term: Term(1),
            body: Body::Noop { leader: NodeId(3) }
        })),
        "the new leader continues after the adopted log: seq 1 and 2 are never reused"
    );
    assert_eq!(n.status().role, Role::Leader);
}

#[test]
fn follower_overwrites_a_conflicting_uncommitted_suffix() {
    let rec = Recovered {
        term: Term(1),
        voted_for: None,
        entries: vec![entry(1, 1, "a"), entry(2, 1, "old")],
        commit_seq: Seq(1),
    };
    let mut n = node(1, rec);
    step(&mut n, 0, Input::Start);
    let out = step(
        &mut n,
        10,
        Input::Peer(PeerMsg::SeqChat {
            sender_id: NodeId(2),
            term: Term(2),
            prev_seq: Seq(1),
            prev_term: Term(1),
            commit_seq: Seq(1),
            entries: vec![entry(2, 2, "new")],
        }),
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::Term {
                term: Term(2),
                voted_for: None
            }),
            Action::Persist(Record::Truncate { from: Seq(2) }),
            Action::Persist(Record::Entry(entry(2, 2, "new"))),
        ]
    );
}

#[test]
fn restarted_node_follows_the_live_leader_it_learns_from_join_ack() {
    let mut n = node(3, Recovered::default());
    let out = step(&mut n, 0, Input::Start);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            msg: PeerMsg::Join { .. },
            ..
        }
    )));
    step(
        &mut n,
        5,
        Input::Peer(PeerMsg::JoinAck {
            sender_id: NodeId(1),
            term: Term(4),
            members: vec![peer(1), peer(2), peer(3)],
            leader: Some(peer(2)),
        }),
    );
    step(
        &mut n,
        50,
        Input::Peer(PeerMsg::Heartbeat {
            sender_id: NodeId(2),
            term: Term(4),
            commit_seq: Seq(0),
            last_seq: Seq(0),
            last_term: Term(0),
        }),
    );
    let s = n.status();
    assert_eq!(
        (s.role, s.leader, s.term),
        (Role::Follower, Some(NodeId(2)), Term(4))
    );
}

#[test]
fn follower_forwards_chats_to_the_leader_and_acks_on_commit() {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    let hb = |commit: u64, last: u64| {
        Input::Peer(PeerMsg::Heartbeat {
            sender_id: NodeId(3),
            term: Term(1),
            commit_seq: Seq(commit),
            last_seq: Seq(last),
            last_term: Term(if last == 0 { 0 } else { 1 }),
        })
    };
    step(&mut n, 1, hb(0, 0));
    let out = step(
        &mut n,
        2,
        Input::Client {
            client: ClientId(4),
            request: ClientRequest::Chat(chat("f1")),
        },
    );
    assert_eq!(
        out,
        vec![Action::Send {
            to: NodeId(3),
            msg: PeerMsg::Forward {
                sender_id: NodeId(1),
                term: Term(1),
                chat: chat("f1")
            }
        }]
    );
    step(
        &mut n,
        3,
        Input::Peer(PeerMsg::SeqChat {
            sender_id: NodeId(3),
            term: Term(1),
            prev_seq: Seq(0),
            prev_term: Term(0),
            commit_seq: Seq(0),
            entries: vec![entry(1, 1, "f1")],
        }),
    );
    let out = step(&mut n, 4, hb(1, 1));
    assert_eq!(
        out[1],
        Action::Reply {
            client: ClientId(4),
            reply: ClientReply::ChatAck {
                msg_id: "f1".into(),
                seq_no: 1
            }
        }
    );
}

#[test]
fn leader_without_a_majority_steps_down() {
    let mut n = leader_n3();
    let mut now = 2000;
    while n.status().role == Role::Leader && now < 10_000 {
        now += 100;
        step(&mut n, now, Input::Tick);
    }
    assert_ne!(
        n.status().role,
        Role::Leader,
        "no acks for a leader timeout"
    );
    assert!(
        now <= 2000 + 1000 + 200,
        "steps down one leader timeout after it lost the majority"
    );
}

#[test]
fn leader_tells_followers_a_new_commit_point_at_its_next_flush() {
    let mut n = leader_n3();
    let request = ClientRequest::Chat(chat("m1"));
    step(
        &mut n,
        3000,
        Input::Client {
            client: ClientId(1),
            request,
        },
    );
    step(&mut n, 3000, Input::Flush);
    let ack = Input::Peer(PeerMsg::AppendAck {
        sender_id: NodeId(1),
        term: Term(1),
        match_seq: Seq(2),
    });
    step(&mut n, 3001, ack);
    assert_eq!(n.status().commit_seq, Seq(2));
    // No new entry would carry commit=2, so a HEARTBEAT does, right away
    // (followers deliver and answer their clients without waiting a tick).
    let out = step(&mut n, 3001, Input::Flush);
    assert_eq!(
        out,
        vec![Action::Broadcast {
            to: vec![NodeId(1), NodeId(2)],
            msg: PeerMsg::Heartbeat {
                sender_id: NodeId(3),
                term: Term(1),
                commit_seq: Seq(2),
                last_seq: Seq(2),
                last_term: Term(1),
            },
        }]
    );
    assert_eq!(step(&mut n, 3002, Input::Flush), vec![], "told once");
}

#[test]
fn a_candidate_told_to_wait_runs_again_when_a_lower_node_lost_the_leader() {
    let mut n = node(2, Recovered::default());
    step(&mut n, 0, Input::Start);
    let t = n.next_deadline().unwrap().0;
    step(&mut n, t, Input::Tick);
    // n1 still heard the leader and told us to stand down ...
    step(
        &mut n,
        t + 1,
        Input::Peer(PeerMsg::ElectionOk {
            sender_id: NodeId(1),
            term: Term(0),
            grant: false,
            leader: Some(NodeId(3)),
        }),
    );
    // ... then lost it too and asks us, the higher node: we probe again at once.
    let out = step(
        &mut n,
        t + 2,
        Input::Peer(PeerMsg::Election {
            sender_id: NodeId(1),
            term: Term(0),
        }),
    );
    assert!(matches!(
        &out[0],
        Action::Send {
            msg: PeerMsg::ElectionOk { grant: false, .. },
            ..
        }
    ));
    assert!(matches!(
        &out[1],
        Action::Broadcast {
            msg: PeerMsg::Election { .. },
            ..
        }
    ));
}

#[test]
fn a_non_voter_is_never_followed_as_leader() {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    let out = step(
        &mut n,
        1,
        Input::Peer(PeerMsg::Coordinator {
            sender_id: NodeId(9),
            term: Term(3),
            leader: peer(9),
        }),
    );
    assert_eq!(
        out.last(),
        Some(&Action::Send {
            to: NodeId(9),
            msg: PeerMsg::CoordinatorNack {
                sender_id: NodeId(1),
                term: Term(0)
            }
        })
    );
    step(
        &mut n,
        2,
        Input::Peer(PeerMsg::Heartbeat {
            sender_id: NodeId(9),
            term: Term(0),
            commit_seq: Seq(0),
            last_seq: Seq(0),
            last_term: Term(0),
        }),
    );
    assert_eq!(n.status().leader, None);
    assert_eq!(n.status().term, Term(0));
}

#[test]
fn with_reported_durability_the_leader_counts_itself_only_once_durable() {
    let mut n = leader_n3_with(|c| c.reports_durability = true);
    // n1 has the no-op, the leader's own copy is not durable yet: no majority.
    assert_eq!(step(&mut n, 3000, append_ack(1, 1)), vec![]);
    assert_eq!(n.status().commit_seq, Seq(0));
    let noop = Entry {
        seq_no: Seq(1),
        term: Term(1),
        body: Body::Noop { leader: NodeId(3) },
    };
    assert_eq!(
        step(&mut n, 3001, Input::Persisted { upto: Seq(1) }),
        vec![
            Action::Note(Record::Commit { seq: Seq(1) }),
            Action::Deliver(noop, None)
        ],
        "n1 + the leader's now durable copy are a majority"
    );
    step(
        &mut n,
        3002,
        Input::Client {
            client: ClientId(1),
            request: ClientRequest::Chat(chat("m1")),
        },
    );
    step(&mut n, 3002, Input::Flush);
    assert_eq!(
        step(&mut n, 3003, append_ack(1, 2)),
        vec![],
        "one follower is not a majority"
    );
    assert_eq!(
        step(&mut n, 3004, append_ack(2, 2)),
        committed_m1_at_2(),
        "two followers are a majority without the leader's pending fsync"
    );
}

/// n`from`'s ELECTION in term `t`.
fn election(from: u64, t: u64) -> Input {
    Input::Peer(PeerMsg::Election {
        sender_id: NodeId(from),
        term: Term(t),
    })
}

/// The ELECTION_OK in `out`, as (grant, leader named).
fn election_ok(out: &[Action]) -> (bool, Option<NodeId>) {
    out.iter()
        .find_map(|a| match a {
            Action::Send {
                msg: PeerMsg::ElectionOk { grant, leader, .. },
                ..
            } => Some((*grant, *leader)),
            _ => None,
        })
        .expect("an ELECTION_OK")
}

/// n2's heartbeat in term 1 over an empty log.
fn n2_heartbeat() -> Input {
    Input::Peer(PeerMsg::Heartbeat {
        sender_id: NodeId(2),
        term: Term(1),
        commit_seq: Seq(0),
        last_seq: Seq(0),
        last_term: Term(0),
    })
}

/// n1 following n2 in term 1 (COORDINATOR, then a heartbeat at t=10).
fn n1_following_n2() -> Node {
    let mut n = node(1, Recovered::default());
    step(&mut n, 0, Input::Start);
    step(
        &mut n,
        5,
        Input::Peer(PeerMsg::Coordinator {
            sender_id: NodeId(2),
            term: Term(1),
            leader: peer(2),
        }),
    );
    step(&mut n, 10, n2_heartbeat());
    assert_eq!(n.status().leader, Some(NodeId(2)));
    n
}

#[test]
fn a_node_probes_for_a_leader_as_soon_as_it_starts() {
    let mut n = node(2, Recovered::default());
    let out = step(&mut n, 0, Input::Start);
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Broadcast {
                msg: PeerMsg::Election { term: Term(0), .. },
                ..
            }
        )),
        "{out:?}"
    );
    assert_eq!(n.status().role, Role::Candidate);
    // No term is spent on it: a live leader's followers stand it down.
    assert_eq!(n.status().term, Term(0));
}

#[test]
fn an_election_from_our_own_leader_means_it_stepped_down() {
    let mut n = n1_following_n2();
    // n3 probes while n1 still hears n2: stand down, n2 leads.
    let out = step(&mut n, 20, election(3, 1));
    assert_eq!(election_ok(&out), (false, Some(NodeId(2))));
    // n2 itself probes: it no longer leads, so n1 grants.
    let out = step(&mut n, 30, election(2, 1));
    assert_eq!(election_ok(&out), (true, None));
}

#[test]
fn a_leader_whose_link_is_down_is_not_live_even_if_late_messages_arrive() {
    let mut n = n1_following_n2();
    step(&mut n, 20, Input::PeerDown(NodeId(2)));
    // A heartbeat n2 sent before it died, delivered late on its own link.
    step(&mut n, 25, n2_heartbeat());
    // n3 probes: n1 cannot reach n2, so it grants rather than wait a timeout.
    let out = step(&mut n, 30, election(3, 1));
    assert!(election_ok(&out).0);
    // Once the link is back, n2 is live again.
    step(&mut n, 40, Input::PeerUp(NodeId(2)));
    step(&mut n, 45, n2_heartbeat());
    let out = step(&mut n, 50, election(3, 1));
    assert_eq!(election_ok(&out), (false, Some(NodeId(2))));
}

#[test]
fn a_refused_claim_probes_again_at_once() {
    let mut n = node(3, Recovered::default());
    step(&mut n, 0, Input::Start);
    let out = step(
        &mut n,
        1,
        Input::Peer(PeerMsg::ElectionOk {
            sender_id: NodeId(1),
            term: Term(0),
            grant: true,
            leader: None,
        }),
    );
    assert!(matches!(
        &out[1],
        Action::Broadcast {
            msg: PeerMsg::Coordinator { term: Term(1), .. },
            ..
        }
    ));
    // n2 promised another claimant of term 1.
    let out = step(
        &mut n,
        3,
        Input::Peer(PeerMsg::CoordinatorNack {
            sender_id: NodeId(2),
            term: Term(1),
        }),
    );
    assert_eq!(
        out,
        vec![Action::Broadcast {
            to: vec![NodeId(1), NodeId(2)],
            msg: PeerMsg::Election {
                sender_id: NodeId(3),
                term: Term(1)
            }
        }]
    );
    assert_eq!(n.status().role, Role::Candidate);
}

/// Issue 14 (swarm seed 0x309c79), the minimal sequence: a leader appends,
/// promises a higher COORDINATOR (its SYNC_ACK waits for the fsync of the
/// term), then the new leader's SEQ_CHAT truncates the entry the SYNC_ACK
/// reports. The core's actions are the same as ever; the driver's gate
/// (`chorus_core::gate`, used by the simulator and runtime-mio alike) must
/// not let that SYNC_ACK out with the fsync that makes the truncation
/// durable, and must let out what was said after the truncation.
#[test]
fn a_truncation_drops_a_waiting_position_report_it_makes_stale() {
    use chorus_core::gate::Gate;
    let mut n = leader_n3_with(|c| c.reports_durability = true);
    let mut gate = Gate::new();
    let mut written = 0u64; // records handed to the disk (the gate's marks)
    let mut drive = |out: Vec<Action>, gate: &mut Gate| {
        for a in out {
            match a {
                Action::Persist(r) => {
                    if let Record::Truncate { from } = r {
                        gate.truncated(from);
                    }
                    written += 1;
                }
                Action::Note(_) => written += 1,
                a @ (Action::Send { .. } | Action::Broadcast { .. }) => gate.push(written, a),
                _ => {}
            }
        }
        written
    };
    let out = step(
        &mut n,
        3000,
        Input::Client {
            client: ClientId(1),
            request: ClientRequest::Chat(chat("m1")),
        },
    );
    assert_eq!(out, vec![Action::Persist(Record::Entry(entry(2, 1, "m1")))]);
    drive(out, &mut gate);
    let out = step(
        &mut n,
        3010,
        Input::Peer(PeerMsg::Coordinator {
            sender_id: NodeId(2),
            term: Term(2),
            leader: peer(2),
        }),
    );
    let sync_ack = Action::Send {
        to: NodeId(2),
        msg: PeerMsg::SyncAck {
            sender_id: NodeId(3),
            term: Term(2),
            last_seq: Seq(2),
            last_term: Term(1),
            commit_seq: Seq(0),
        },
    };
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::Term {
                term: Term(2),
                voted_for: Some(NodeId(2))
            }),
            sync_ack.clone(),
        ],
        "the promise reports 2@t1, true of the log as the core emits it"
    );
    drive(out, &mut gate);
    let out = step(
        &mut n,
        3020,
        Input::Peer(PeerMsg::SeqChat {
            sender_id: NodeId(2),
            term: Term(2),
            prev_seq: Seq(1),
            prev_term: Term(1),
            commit_seq: Seq(0),
            entries: vec![entry(2, 2, "n2")],
        }),
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::Truncate { from: Seq(2) }),
            Action::Persist(Record::Entry(entry(2, 2, "n2"))),
        ]
    );
    let durable = drive(out, &mut gate);
    let out = step(&mut n, 3021, Input::Flush);
    let ack = Action::Send {
        to: NodeId(2),
        msg: PeerMsg::AppendAck {
            sender_id: NodeId(3),
            term: Term(2),
            match_seq: Seq(2),
        },
    };
    assert_eq!(out, vec![ack.clone()]);
    drive(out, &mut gate);
    // One fsync makes 2@t1, the term, the cut and 2@t2 durable at once.
    let released: Vec<Action> = std::iter::from_fn(|| gate.pop_durable(durable)).collect();
    assert_eq!(
        released,
        vec![ack],
        "the SYNC_ACK claiming 2@t1 is dropped; the APPEND_ACK for 2@t2 leaves"
    );
    assert!(gate.is_empty());
}

/// Soak seed 0xa07d, the minimal sequence: n1 promises claimant n3 (so it
/// "follows" n3), then n3, still fetching for its sync, answers a catch-up
/// request with its own stale log. n1 must not let it overwrite its suffix;
/// the same batch from n3 once it leads is applied.
#[test]
fn a_follower_ignores_catch_up_from_a_claimant_that_does_not_lead_yet() {
    let rec = Recovered {
        term: Term(2),
        voted_for: None,
        entries: vec![entry(1, 1, "a"), entry(2, 2, "b")],
        commit_seq: Seq(1),
    };
    let mut n = node(1, rec);
    step(&mut n, 0, Input::Start);
    step(
        &mut n,
        10,
        Input::Peer(PeerMsg::Coordinator {
            sender_id: NodeId(3),
            term: Term(3),
            leader: peer(3),
        }),
    );
    let stale = |leading| {
        Input::Peer(PeerMsg::CatchupResp {
            sender_id: NodeId(3),
            term: Term(3),
            prev_seq: Seq(1),
            prev_term: Term(1),
            commit_seq: Seq(0),
            last_seq: Seq(2),
            entries: vec![entry(2, 1, "stale")],
            leading,
        })
    };
    assert_eq!(
        step(&mut n, 20, stale(false)),
        vec![],
        "not the leader's log"
    );
    assert_eq!(n.status().last_seq, Seq(2));
    let out = step(&mut n, 30, stale(true));
    assert_eq!(
        out[..2],
        [
            Action::Persist(Record::Truncate { from: Seq(2) }),
            Action::Persist(Record::Entry(entry(2, 1, "stale"))),
        ],
        "a leading leader's log overwrites the uncommitted suffix"
    );
}

/// Client 1's room event `event` in `room` as `user` (msg_id `id`).
fn room_event(id: &str, event: Event, room: &str, user: &str, payload: &str) -> Chat {
    Chat {
        room_id: room.into(),
        user: Some(user.into()),
        payload: payload.into(),
        event: Some(event),
        ..chat(id)
    }
}

#[test]
fn a_room_event_commits_without_a_number_and_is_acked_before_the_next_chat() {
    let mut n = leader_n3();
    let join = room_event("j1", Event::Join, "general", "ann", "");
    let submit = |c: Chat| Input::Client {
        client: ClientId(1),
        request: ClientRequest::Chat(c),
    };
    step(&mut n, 3000, submit(join.clone()));
    step(&mut n, 3000, Input::Flush);
    let out = step(&mut n, 3001, append_ack(1, 2));
    let joined = Entry {
        seq_no: Seq(2),
        term: Term(1),
        body: Body::Chat(join.clone()),
    };
    assert_eq!(
        out[2..],
        vec![
            Action::Reply {
                client: ClientId(1),
                reply: ClientReply::EventAck {
                    msg_id: "j1".into(),
                    seq_no: 1
                }
            },
            Action::Deliver(joined, None),
        ],
        "the event is acked as coming before chat #1, and takes no number"
    );
    let general = n
        .rooms()
        .get("general")
        .expect("the first join creates the room");
    assert!(general.members.contains("ann"));
    assert_eq!(general.creator, "ann");
    // The next chat is still #1; a retry of the event answers the same.
    step(&mut n, 3002, submit(chat("m1")));
    step(&mut n, 3002, Input::Flush);
    step(&mut n, 3003, append_ack(1, 3));
    let out = step(&mut n, 3004, submit(join));
    assert_eq!(
        out,
        vec![Action::Reply {
            client: ClientId(1),
            reply: ClientReply::EventAck {
                msg_id: "j1".into(),
                seq_no: 1
            }
        }]
    );
    assert_eq!(n.status().delivered_chats, 1);
}

#[test]
fn presence_goes_out_in_the_next_round_and_a_stale_beat_is_pulled() {
    let mut n = leader_n3();
    let session = |name: Option<&str>| Input::Client {
        client: ClientId(7),
        request: ClientRequest::Session {
            name: name.map(str::to_string),
        },
    };
    assert!(step(&mut n, 3000, session(Some("ann"))).is_empty());
    assert!(n.presence().is_online("ann"));
    // The next round (one heartbeat interval) carries the full set.
    let out = step(&mut n, 3100, Input::Tick);
    let presence: Vec<&PeerMsg> = out
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast {
                msg: m @ PeerMsg::Presence { .. },
                ..
            } => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(
        presence,
        vec![&PeerMsg::Presence {
            sender_id: NodeId(3),
            term: Term(1),
            version: 1,
            names: Some(vec!["ann".into()]),
            pull: false,
        }]
    );
    // A beat from n1 at a version we never saw: pull its full set.
    let beat = Input::Peer(PeerMsg::Presence {
        sender_id: NodeId(1),
        term: Term(1),
        version: 4,
        names: None,
        pull: false,
    });
    let out = step(&mut n, 3101, beat);
    assert_eq!(
        out,
        vec![Action::Send {
            to: NodeId(1),
            msg: PeerMsg::Presence {
                sender_id: NodeId(3),
                term: Term(1),
                version: 1,
                names: None,
                pull: true,
            }
        }]
    );
    // Its links reset: its sessions are forgotten at once.
    let full = Input::Peer(PeerMsg::Presence {
        sender_id: NodeId(1),
        term: Term(1),
        version: 4,
        names: Some(vec!["bob".into()]),
        pull: false,
    });
    step(&mut n, 3102, full);
    assert!(n.presence().is_online("bob"));
    step(&mut n, 3103, Input::PeerDown(NodeId(1)));
    assert!(!n.presence().is_online("bob"));
    assert!(step(&mut n, 3104, session(None)).is_empty());
    assert!(!n.presence().is_online("ann"));
}
