//! Micro-benchmarks of the hot paths of chorus-core (`cargo bench -p chorus-core`).
//!
//! What is measured, and why it matters for a 3-node cluster at 100 k msg/s:
//! - `record`: binary log encode/decode of one 100-byte chat entry, and
//!   `replay` of a log of N entries (recovery time after a crash);
//! - `json`: serde_json encode/decode of a 64-entry SEQ_CHAT, the peer message
//!   every follower receives for every batch;
//! - `step`: `Node::step` for a follower append (SEQ_CHAT in → persist + ack on
//!   flush), a leader sequencing client chats (CHAT in → persist; flush →
//!   SEQ_CHAT broadcast), and a leader commit (APPEND_ACK in → deliver + reply);
//! - `dedup`: the msg_id index of a log of N entries (SHA-256 fingerprint,
//!   lookup, and append with its amortized merge), and replay straight into
//!   the compact log.
//!
//! Every bench is bounded (`max_time`) so the whole run takes well under a
//! minute on 2 cores. Throughput counters are per entry, so divan prints
//! entries/s next to the time per call.

use chorus_core::record::{self, Record};
use chorus_core::*;
use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};

fn main() {
    divan::main();
}

const PAYLOAD_BYTES: usize = 100;

fn peer(id: u64) -> PeerInfo {
    PeerInfo {
        node_id: NodeId(id),
        host: "127.0.0.1".into(),
        port: 5000 + id as u16,
    }
}

fn chat(i: u64) -> Chat {
    Chat {
        msg_id: format!("{:08x}-bench-4000-8000-{:012x}", i, i),
        room_id: "general".into(),
        sender_id: 9999,
        user: None,
        payload: "x".repeat(PAYLOAD_BYTES),
        ts_ms: 1_764_000_000_000 + i,
        event: None,
    }
}

fn entry(seq: u64, term: u64) -> Entry {
    Entry {
        seq_no: Seq(seq),
        term: Term(term),
        body: Body::Chat(chat(seq)),
    }
}

fn entries(from: u64, n: u64, term: u64) -> Vec<Entry> {
    (from..from + n).map(|s| entry(s, term)).collect()
}

/// Node `id` of the cluster {1, 2, 3}, 100 ms heartbeats.
fn node(id: u64) -> Node {
    let peers = (1..=3).filter(|&p| p != id).map(peer).collect();
    let cfg = Config::new(peer(id), peers).with_timing(100, 1000);
    Node::new(cfg, Recovered::default(), id)
}

fn step(n: &mut Node, now: u64, input: Input) -> Vec<Action> {
    let mut out = Vec::new();
    n.step(Instant(now), input, &mut out);
    out
}

/// n1 as a follower of n3 in term 1 that holds `have` entries, `committed` of
/// them known committed (and delivered).
fn follower(have: u64, committed: u64) -> Node {
    let mut n = node(1);
    step(&mut n, 0, Input::Start);
    let msg = PeerMsg::SeqChat {
        sender_id: NodeId(3),
        term: Term(1),
        prev_seq: Seq(0),
        prev_term: Term(0),
        commit_seq: Seq(0),
        entries: entries(1, have, 1),
    };
    step(&mut n, 1, Input::Peer(msg));
    step(&mut n, 1, Input::Flush);
    let hb = PeerMsg::Heartbeat {
        sender_id: NodeId(3),
        term: Term(1),
        commit_seq: Seq(committed),
        last_seq: Seq(have),
        last_term: Term(1),
    };
    step(&mut n, 2, Input::Peer(hb));
    assert_eq!(n.status().role, Role::Follower);
    assert_eq!(n.status().commit_seq, Seq(committed));
    n
}

/// n3 as the leader of term 1 (n1 granted and promised), its no-op replicated.
fn leader() -> Node {
    let mut n = node(3);
    step(&mut n, 0, Input::Start);
    let t = n.next_deadline().expect("leader timeout armed").0;
    step(&mut n, t, Input::Tick);
    let ok = PeerMsg::ElectionOk {
        sender_id: NodeId(1),
        term: Term(0),
        grant: true,
        leader: None,
    };
    step(&mut n, t + 1, Input::Peer(ok));
    let sync = PeerMsg::SyncAck {
        sender_id: NodeId(1),
        term: Term(1),
        last_seq: Seq(0),
        last_term: Term(0),
        commit_seq: Seq(0),
    };
    step(&mut n, t + 2, Input::Peer(sync));
    step(&mut n, t + 3, Input::Flush);
    assert_eq!(n.status().role, Role::Leader);
    n
}

/// A leader with `k` client chats sequenced and broadcast, not yet acknowledged.
fn leader_with_pending(k: u64) -> Node {
    let mut n = leader();
    for i in 0..k {
        let request = ClientRequest::Chat(chat(1_000_000 + i));
        step(
            &mut n,
            10,
            Input::Client {
                client: ClientId(i % 16),
                request,
            },
        );
    }
    step(&mut n, 10, Input::Flush);
    n
}

fn seq_chat_64() -> PeerMsg {
    PeerMsg::SeqChat {
        sender_id: NodeId(3),
        term: Term(1),
        prev_seq: Seq(1000),
        prev_term: Term(1),
        commit_seq: Seq(990),
        entries: entries(1001, 64, 1),
    }
}

mod record_log {
    use super::*;

    #[divan::bench(max_time = 1)]
    fn encode_entry(b: Bencher) {
        let rec = Record::Entry(entry(42, 1));
        let mut buf = Vec::with_capacity(512);
        b.counter(ItemsCount::new(1usize)).bench_local(|| {
            buf.clear();
            record::encode(black_box(&rec), &mut buf);
            buf.len()
        });
    }

    #[divan::bench(max_time = 1)]
    fn decode_entry(b: Bencher) {
        let mut buf = Vec::new();
        record::encode(&Record::Entry(entry(42, 1)), &mut buf);
        let payload = buf[12..].to_vec(); // without the 12-byte frame header
        b.counter(ItemsCount::new(1usize))
            .bench_local(|| record::decode_payload(black_box(&payload)).expect("valid"));
    }

    /// Recovery: a log of N entries (plus a term record and commit hints).
    #[divan::bench(args = [1_000, 100_000], max_time = 2, sample_count = 20)]
    fn replay(b: Bencher, n: u64) {
        let mut bytes = Vec::new();
        let term = Record::Term {
            term: Term(1),
            voted_for: Some(NodeId(3)),
        };
        record::encode(&term, &mut bytes);
        for s in 1..=n {
            record::encode(&Record::Entry(entry(s, 1)), &mut bytes);
            if s % 64 == 0 {
                record::encode(&Record::Commit { seq: Seq(s) }, &mut bytes);
            }
        }
        b.counter(BytesCount::new(bytes.len()))
            .bench_local(|| chorus_core::replay(black_box(&bytes)).expect("valid log"));
    }
}

mod dedup {
    use super::*;

    /// A compact log of `n` chat entries keeping 4096 in memory.
    fn log_of(n: u64) -> Log {
        let mut log = Log::new(4096);
        for s in 1..=n {
            log.push(entry(s, 1), 0);
        }
        log
    }

    /// `seq_of` of 1,024 msg_ids spread over the log, half present and half
    /// absent (what a leader does for every chat it receives); different keys
    /// each time, so the index's cache misses are measured too.
    #[divan::bench(args = [10_000, 1_000_000], max_time = 2)]
    fn lookup_1024(b: Bencher, n: u64) {
        let log = log_of(n);
        let ids: Vec<String> = (0..1024u64)
            .map(|k| {
                let s = 1 + k * 7_919 % n;
                let id = chat(s).msg_id;
                if k % 2 == 0 {
                    id
                } else {
                    format!("{id}-absent")
                }
            })
            .collect();
        b.counter(ItemsCount::new(ids.len())).bench_local(|| {
            ids.iter()
                .filter(|id| log.seq_of(black_box(id)).is_some())
                .count()
        });
    }

    /// Appending 10,000 chats to a log of `n` (merges included).
    #[divan::bench(args = [10_000, 1_000_000], max_time = 2, sample_count = 10)]
    fn append_10k(b: Bencher, n: u64) {
        b.counter(ItemsCount::new(10_000usize))
            .with_inputs(|| (log_of(n), entries(n + 1, 10_000, 1)))
            .bench_local_values(|(mut log, es)| {
                for e in es {
                    log.append(e);
                }
                log
            });
    }

    /// Recovery into the compact log (what `chorus node` does at start).
    #[divan::bench(args = [100_000], max_time = 2, sample_count = 10)]
    fn replay_into_log(b: Bencher, n: u64) {
        let mut bytes = Vec::new();
        for s in 1..=n {
            record::encode(&Record::Entry(entry(s, 1)), &mut bytes);
        }
        b.counter(BytesCount::new(bytes.len())).bench_local(|| {
            record::replay_read(black_box(&bytes[..]), Log::new(4096))
                .expect("memory")
                .expect("valid log")
        });
    }
}

mod json {
    use super::*;

    /// One SEQ_CHAT of 64 entries of 100-byte chats, as a peer line.
    #[divan::bench(max_time = 1)]
    fn encode_seq_chat_64(b: Bencher) {
        let msg = seq_chat_64();
        let mut buf = Vec::with_capacity(64 * 1024);
        b.counter(ItemsCount::new(64usize)).bench_local(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&msg)).expect("serializable");
            buf.len()
        });
    }

    #[divan::bench(max_time = 1)]
    fn decode_seq_chat_64(b: Bencher) {
        let line = serde_json::to_vec(&seq_chat_64()).expect("serializable");
        b.counter(ItemsCount::new(64usize)).bench_local(|| {
            serde_json::from_slice::<PeerMsg>(black_box(&line)).expect("valid line")
        });
    }
}

mod step {
    use super::*;

    /// Follower in steady state: SEQ_CHAT of `k` entries in → k persists, the
    /// previous batch of `k` committed (k deliveries), then Flush → one APPEND_ACK.
    #[divan::bench(args = [1, 64], max_time = 2)]
    fn follower_append(b: Bencher, k: u64) {
        let have = 1_000;
        b.counter(ItemsCount::new(k as usize))
            .with_inputs(|| {
                let msg = PeerMsg::SeqChat {
                    sender_id: NodeId(3),
                    term: Term(1),
                    prev_seq: Seq(have),
                    prev_term: Term(1),
                    commit_seq: Seq(have),
                    entries: entries(have + 1, k, 1),
                };
                (follower(have, have - k), msg, Vec::with_capacity(256))
            })
            .bench_local_values(|(mut n, msg, mut out)| {
                n.step(Instant(20), Input::Peer(msg), &mut out);
                n.step(Instant(20), Input::Flush, &mut out);
                debug_assert!(matches!(out.last(), Some(Action::Send { .. })));
                (n, out)
            });
    }

    /// Leader: `k` client CHATs in → k persists, then Flush → one SEQ_CHAT broadcast.
    #[divan::bench(args = [1, 64], max_time = 2)]
    fn leader_sequence(b: Bencher, k: u64) {
        b.counter(ItemsCount::new(k as usize))
            .with_inputs(|| {
                let chats: Vec<Chat> = (0..k).map(|i| chat(1_000_000 + i)).collect();
                (leader(), chats, Vec::with_capacity(256))
            })
            .bench_local_values(|(mut n, chats, mut out)| {
                for (i, c) in chats.into_iter().enumerate() {
                    let input = Input::Client {
                        client: ClientId(i as u64 % 16),
                        request: ClientRequest::Chat(c),
                    };
                    n.step(Instant(20), input, &mut out);
                }
                n.step(Instant(20), Input::Flush, &mut out);
                (n, out)
            });
    }

    /// Leader: APPEND_ACK covering `k` pending entries in → commit, k deliveries
    /// and k client replies.
    #[divan::bench(args = [1, 64], max_time = 2)]
    fn leader_commit(b: Bencher, k: u64) {
        b.counter(ItemsCount::new(k as usize))
            .with_inputs(|| {
                let n = leader_with_pending(k);
                let ack = PeerMsg::AppendAck {
                    sender_id: NodeId(1),
                    term: Term(1),
                    match_seq: n.status().last_seq,
                };
                (n, ack, Vec::with_capacity(512))
            })
            .bench_local_values(|(mut n, ack, mut out)| {
                n.step(Instant(20), Input::Peer(ack), &mut out);
                debug_assert_eq!(n.status().commit_seq, n.status().last_seq);
                (n, out)
            });
    }
}

mod numbering {
    use super::*;

    /// Entry `s` of a log of chats round-robin over 100 rooms, a leader's
    /// no-op every 10th index (the shape of a busy cluster with churn).
    fn mixed(s: u64) -> Entry {
        if s.is_multiple_of(10) {
            return Entry {
                seq_no: Seq(s),
                term: Term(1),
                body: Body::Noop { leader: NodeId(1) },
            };
        }
        let mut c = chat(s);
        c.room_id = format!("room{}", s % 100);
        c.payload.clear();
        Entry {
            seq_no: Seq(s),
            term: Term(1),
            body: Body::Chat(c),
        }
    }

    fn fold_of(n: u64) -> Numbering {
        let log: Vec<Entry> = (1..=n).map(mixed).collect();
        Numbering::from_entries(&log)
    }

    /// Folding 10,000 committed entries onto a fold of `n` (the delivery
    /// path), a copy of one built fold each time.
    #[divan::bench(args = [10_000, 1_000_000], max_time = 2, sample_count = 40)]
    fn apply_10k(b: Bencher, n: u64) {
        let next: Vec<Entry> = (n + 1..=n + 10_000).map(mixed).collect();
        let base = fold_of(n);
        b.counter(ItemsCount::new(next.len()))
            .with_inputs(|| base.clone())
            .bench_local_values(|mut f| {
                for e in &next {
                    black_box(f.apply(e));
                }
                f
            });
    }

    /// 1,024 keys spread over a fold of 1M entries: (a seq_no or a log
    /// index, the room of that index). Different keys each time, so cache
    /// misses are measured too; none at the newest element (its fast path).
    fn keys(n: u64) -> Vec<(u64, String)> {
        (0..1024u64)
            .map(|k| 1 + k * 7_919 % n)
            .map(|k| (k, format!("room{}", k % 100)))
            .collect()
    }

    const N: u64 = 1_000_000;

    /// `lookup(fold, key, its room)` for 1,024 keys over a fold of `N`.
    fn lookups(b: Bencher, lookup: fn(&Numbering, u64, &str) -> u64) {
        let (f, keys) = (fold_of(N), keys(N));
        b.counter(ItemsCount::new(keys.len())).bench_local(|| {
            keys.iter()
                .map(|(k, room)| lookup(&f, black_box(*k), room))
                .sum::<u64>()
        });
    }

    #[divan::bench(max_time = 1)]
    fn index_of_1024(b: Bencher) {
        lookups(b, |f, k, _| f.index_of(k).map_or(0, |s| s.0));
    }

    #[divan::bench(max_time = 1)]
    fn seq_no_from_1024(b: Bencher) {
        lookups(b, |f, k, _| f.seq_no_from(Seq(k)));
    }

    #[divan::bench(max_time = 1)]
    fn room_index_1024(b: Bencher) {
        lookups(b, |f, k, room| {
            f.room_index(room, k / 100 + 1).map_or(0, |s| s.0)
        });
    }

    #[divan::bench(max_time = 1)]
    fn numbers_at_1024(b: Bencher) {
        lookups(b, |f, k, room| {
            f.numbers_at(room, Seq(k)).map_or(0, |x| x.room_seq)
        });
    }

    /// `numbers_at` of the newest chat of each of the 100 rooms: what every
    /// delivery to a stream asks (`delivered_at` in the runtime).
    #[divan::bench(max_time = 1)]
    fn numbers_at_newest_100(b: Bencher) {
        let f = fold_of(N);
        let newest: Vec<(String, Seq)> = f
            .rooms()
            .map(|(r, len)| (r.to_string(), f.room_index(r, len).expect("folded")))
            .collect();
        b.counter(ItemsCount::new(newest.len())).bench_local(|| {
            newest
                .iter()
                .map(|(room, i)| f.numbers_at(room, black_box(*i)).map_or(0, |x| x.seq_no))
                .sum::<u64>()
        });
    }

    /// The snapshot form of a fold of `N` entries (`Numbering::encode`).
    #[divan::bench(max_time = 1)]
    fn encode(b: Bencher) {
        let f = fold_of(N);
        let mut out = Vec::new();
        f.encode(&mut out);
        b.counter(BytesCount::new(out.len())).bench_local(|| {
            out.clear();
            black_box(&f).encode(&mut out);
            out.len()
        });
    }

    /// Reading it back, every block checked (`Numbering::decode`).
    #[divan::bench(max_time = 1)]
    fn decode(b: Bencher) {
        let mut bytes = Vec::new();
        fold_of(N).encode(&mut bytes);
        b.counter(BytesCount::new(bytes.len()))
            .bench_local(|| Numbering::decode(&mut black_box(&bytes[..])).expect("valid"));
    }
}
