//! Tests of the numbering: every answer of the compact fold against the
//! plain one it replaced (`Naive`, kept here as the reference model) over
//! deterministic pseudo-random logs of chats, no-ops and room events; the
//! snapshot codec (round trip, truncated and corrupt bytes); retention
//! (`forget_before`); and the memory per chat.

use super::*;
use crate::entry::{Body, Chat, Event};
use crate::types::{NodeId, Term};

/// The numbering before it was packed (8 bytes per chat, 16 per run): the
/// model every answer is compared with.
#[derive(Default)]
struct Naive {
    upto: Seq,
    chats: u64,
    runs: Vec<(u64, Seq)>,
    rooms: BTreeMap<String, Vec<Seq>>,
}

impl Naive {
    fn apply(&mut self, e: &Entry) -> Option<Numbers> {
        assert_eq!(e.seq_no, self.upto.next());
        self.upto = e.seq_no;
        let chat = e.message()?;
        self.chats += 1;
        let extends = self
            .runs
            .last()
            .is_some_and(|&(s, i)| i.0 + (self.chats - s) == e.seq_no.0);
        if !extends {
            self.runs.push((self.chats, e.seq_no));
        }
        let room = self.rooms.entry(chat.room_id.clone()).or_default();
        room.push(e.seq_no);
        Some(Numbers {
            seq_no: self.chats,
            room_seq: room.len() as u64,
        })
    }

    fn index_of(&self, seq_no: u64) -> Option<Seq> {
        if seq_no == 0 || seq_no > self.chats {
            return None;
        }
        let k = self.runs.partition_point(|&(s, _)| s <= seq_no);
        let (s, i) = self.runs[k - 1];
        Some(Seq(i.0 + (seq_no - s)))
    }

    fn seq_no_from(&self, index: Seq) -> u64 {
        let k = self.runs.partition_point(|&(_, i)| i <= index);
        if k == 0 {
            return 1;
        }
        let (s, i) = self.runs[k - 1];
        let end = self.runs.get(k).map_or(self.chats + 1, |&(s2, _)| s2);
        (s + (index.0 - i.0)).min(end)
    }

    fn chat_number_at(&self, index: Seq) -> Option<u64> {
        let n = self.seq_no_from(index);
        (self.index_of(n) == Some(index)).then_some(n)
    }

    fn numbers_at(&self, room: &str, index: Seq) -> Option<Numbers> {
        let r = self.rooms.get(room)?;
        let pos = r.binary_search(&index).ok()?;
        let k = self.runs.partition_point(|&(_, i)| i <= index);
        let (s, i) = self.runs[k - 1];
        Some(Numbers {
            seq_no: s + (index.0 - i.0),
            room_seq: pos as u64 + 1,
        })
    }

    fn room_index(&self, room: &str, room_seq: u64) -> Option<Seq> {
        let r = self.rooms.get(room)?;
        r.get(usize::try_from(room_seq).ok()?.checked_sub(1)?)
            .copied()
    }

    fn room_seq_from(&self, room: &str, index: Seq) -> u64 {
        self.rooms
            .get(room)
            .map_or(1, |r| r.partition_point(|&i| i < index) as u64 + 1)
    }
}

fn chat(seq: u64, room: &str) -> Entry {
    Entry {
        seq_no: Seq(seq),
        term: Term(1),
        body: Body::Chat(Chat {
            msg_id: format!("m{seq}"),
            room_id: room.into(),
            sender_id: 1,
            user: None,
            payload: "x".into(),
            ts_ms: 0,
            event: None,
        }),
    }
}

fn noop(seq: u64) -> Entry {
    Entry {
        seq_no: Seq(seq),
        term: Term(2),
        body: Body::Noop { leader: NodeId(1) },
    }
}

/// A room event: sequenced like a chat, but takes no number.
fn join(seq: u64, room: &str) -> Entry {
    let mut e = chat(seq, room);
    if let Body::Chat(c) = &mut e.body {
        c.event = Some(Event::Join);
        c.user = Some("ann".into());
    }
    e
}

/// splitmix64: deterministic, no dependency, good enough to shuffle shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A log of `n` entries for `seed`: chats over up to 7 rooms, skewed (room
/// k about twice as busy as room k + 1, so rare rooms have gaps of
/// hundreds), no-ops and room events sprinkled, and now and then a stretch
/// of 100–400 non-chat entries (a gap past one varint byte for every room).
fn random_log(seed: u64, n: u64) -> Vec<Entry> {
    let mut rng = Rng(seed);
    let rooms = 1 + rng.below(7);
    let noop_pm = [0, 20, 100, 300][rng.below(4) as usize];
    let event_pm = [0, 30, 150][rng.below(3) as usize];
    let mut log = Vec::new();
    let mut s = 0;
    while s < n {
        s += 1;
        if rng.below(500) == 0 {
            for _ in 0..100 + rng.below(300) {
                log.push(noop(s));
                s += 1;
            }
        }
        let room = format!("r{}", u64::from(rng.next().trailing_zeros()) % rooms);
        let r = rng.below(1000);
        log.push(if r < noop_pm {
            noop(s)
        } else if r < noop_pm + event_pm {
            join(s, &room)
        } else {
            chat(s, &room)
        });
    }
    log
}

/// Every answer of `n` against `m`, the model folded over the same log,
/// with history before `horizon` forgotten in `n` only: the indexes of
/// forgotten chats are gone, their numbers and every count are not.
fn check_all(n: &Numbering, m: &Naive, horizon: Seq) {
    assert_eq!((n.upto(), n.chats()), (m.upto, m.chats));
    let first_seq = m.seq_no_from(horizon);
    assert_eq!(n.first_seq_no(), first_seq);
    let names: Vec<(&str, u64)> = m
        .rooms
        .iter()
        .map(|(k, v)| (k.as_str(), v.len() as u64))
        .collect();
    assert_eq!(n.rooms().collect::<Vec<_>>(), names);
    assert_eq!(n.room_count(), m.rooms.len());
    for s in 0..=m.chats + 2 {
        let want = if s < first_seq { None } else { m.index_of(s) };
        assert_eq!(n.index_of(s), want, "index_of({s})");
    }
    let forgotten = |i: Seq| i < horizon;
    // The numbers of forgotten entries stay exact (a retry's answer).
    for i in (0..=m.upto.0 + 2).map(Seq) {
        assert_eq!(n.seq_no_from(i), m.seq_no_from(i), "seq_no_from({i:?})");
        assert_eq!(
            n.chat_number_at(i),
            m.chat_number_at(i),
            "chat_number_at({i:?})"
        );
    }
    for room in names.iter().map(|r| r.0).chain(["absent"]) {
        assert_eq!(n.has_room(room), m.rooms.contains_key(room));
        let len = m.rooms.get(room).map_or(0, |r| r.len() as u64);
        assert_eq!(n.room_len(room), len);
        let first_rs = m.room_seq_from(room, horizon);
        assert_eq!(n.first_room_seq(room), first_rs, "first_room_seq({room})");
        for rs in 0..=len + 2 {
            let want = m.room_index(room, rs).filter(|_| rs >= first_rs);
            assert_eq!(n.room_index(room, rs), want, "room_index({room}, {rs})");
        }
        for i in (0..=m.upto.0 + 2).map(Seq) {
            let want = m.numbers_at(room, i).filter(|_| !forgotten(i));
            assert_eq!(n.numbers_at(room, i), want, "numbers_at({room}, {i:?})");
            let want = if forgotten(i) {
                first_rs
            } else {
                m.room_seq_from(room, i)
            };
            assert_eq!(
                n.room_seq_from(room, i),
                want,
                "room_seq_from({room}, {i:?})"
            );
        }
    }
}

fn round_trip(n: &Numbering) {
    let mut bytes = Vec::new();
    n.encode(&mut bytes);
    bytes.extend_from_slice(b"next");
    let mut r = &bytes[..];
    assert_eq!(Numbering::decode(&mut r).as_ref(), Ok(n));
    assert_eq!(r, b"next", "decode reads exactly what encode wrote");
}

#[test]
fn noops_take_no_number() {
    let log = vec![
        noop(1),
        chat(2, "a"),
        chat(3, "b"),
        noop(4),
        chat(5, "a"),
        chat(6, "a"),
    ];
    let mut n = Numbering::default();
    let got: Vec<Option<Numbers>> = log.iter().map(|e| n.apply(e)).collect();
    let nums = |s, r| {
        Some(Numbers {
            seq_no: s,
            room_seq: r,
        })
    };
    assert_eq!(
        got,
        vec![None, nums(1, 1), nums(2, 1), None, nums(3, 2), nums(4, 3)]
    );
    assert_eq!(n.index_of(1), Some(Seq(2)));
    assert_eq!(n.index_of(3), Some(Seq(5)));
    assert_eq!(n.index_of(5), None);
    assert_eq!(n.seq_no_from(Seq(1)), 1);
    assert_eq!(n.seq_no_from(Seq(4)), 3);
    assert_eq!(n.seq_no_from(Seq(7)), 5);
    assert_eq!(n.numbers_at("a", Seq(6)), nums(4, 3));
    assert_eq!(n.numbers_at("b", Seq(6)), None);
    assert_eq!(n.room_index("a", 2), Some(Seq(5)));
    assert_eq!(n.room_index("a", 0), None);
    assert_eq!(n.room_seq_from("a", Seq(3)), 2);
    assert_eq!(n.room_len("a"), 3);
    assert_eq!(n.chat_number_at(Seq(5)), Some(3));
    assert_eq!(n.chat_number_at(Seq(4)), None);
    assert_eq!(Numbering::from_entries(&log), n);
}

#[test]
fn every_answer_matches_the_naive_fold() {
    for seed in 0..24 {
        let log = random_log(seed, 3_000);
        let (mut n, mut m) = (Numbering::default(), Naive::default());
        for (k, e) in log.iter().enumerate() {
            assert_eq!(n.apply(e), m.apply(e), "seed {seed} entry {k}");
            if k % 1_009 == 0 {
                check_all(&n, &m, Seq(0));
            }
        }
        check_all(&n, &m, Seq(0));
        round_trip(&n);
    }
}

#[test]
fn forgotten_chats_have_no_index_and_the_rest_is_unchanged() {
    for seed in 100..112 {
        let log = random_log(seed, 3_000);
        let (mut n, mut m) = (Numbering::default(), Naive::default());
        let mut horizon = Seq(0);
        let mut rng = Rng(seed);
        for chunk in log.chunks(600) {
            for e in chunk {
                assert_eq!(n.apply(e), m.apply(e));
            }
            let before = n.approx_bytes();
            // Sometimes everything folded, sometimes an older point (a no-op).
            horizon = Seq(horizon.0.max(1 + rng.below(m.upto.0 + 2)));
            n.forget_before(horizon);
            n.forget_before(Seq(horizon.0 / 2));
            horizon = horizon.min(m.upto.next());
            assert!(n.approx_bytes() <= before, "forgetting frees");
            check_all(&n, &m, horizon);
            round_trip(&n);
        }
    }
}

#[test]
fn forgetting_everything_keeps_the_counts_going() {
    let log: Vec<Entry> = (1..=1_000)
        .map(|s| chat(s, ["a", "b"][s as usize % 2]))
        .collect();
    let mut n = Numbering::from_entries(&log);
    n.forget_before(Seq(5_000));
    assert_eq!((n.first_seq_no(), n.first_room_seq("a")), (1_001, 501));
    assert_eq!((n.index_of(1_000), n.room_index("a", 500)), (None, None));
    assert!(n.approx_bytes() < 1_000, "{} bytes left", n.approx_bytes());
    let next = n.apply(&chat(1_001, "a"));
    assert_eq!(
        next,
        Some(Numbers {
            seq_no: 1_001,
            room_seq: 501
        })
    );
    assert_eq!(n.index_of(1_001), Some(Seq(1_001)));
    assert_eq!(n.room_index("a", 501), Some(Seq(1_001)));
    assert_eq!(n.numbers_at("a", Seq(1_001)), next);
    assert_eq!(
        (n.seq_no_from(Seq(5)), n.chat_number_at(Seq(5))),
        (5, Some(5))
    );
    round_trip(&n);
}

#[test]
fn every_truncation_of_an_encoding_is_an_error() {
    let mut n = Numbering::from_entries(&random_log(7, 400));
    n.forget_before(Seq(130));
    let mut bytes = Vec::new();
    n.encode(&mut bytes);
    for cut in 0..bytes.len() {
        assert!(
            Numbering::decode(&mut &bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut other = bytes.clone();
    other[0] = 2;
    let e = Numbering::decode(&mut &other[..]).expect_err("version 2");
    assert!(e.contains("version 2"), "{e}");
}

/// Whatever bytes come in: an error, or a fold every lookup can run on.
#[test]
fn corrupt_bytes_are_an_error_or_a_usable_fold_never_a_panic() {
    let mut rng = Rng(42);
    let mut good = Vec::new();
    Numbering::from_entries(&random_log(3, 700)).encode(&mut good);
    let mut accepted = 0;
    for k in 0..3_000 {
        let bytes: Vec<u8> = if k % 3 == 0 {
            let len = rng.below(200) as usize;
            std::iter::once(1)
                .chain((0..len).map(|_| rng.next() as u8))
                .collect()
        } else {
            let mut b = good.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] ^= 1 << rng.below(8);
            }
            b
        };
        let Ok(mut n) = Numbering::decode(&mut &bytes[..]) else {
            continue;
        };
        accepted += 1;
        let up = n.upto().0;
        for i in [0, 1, up / 2, up, up + 1, u64::MAX].map(Seq) {
            n.seq_no_from(i);
            n.chat_number_at(i);
            for room in ["r0", "r1", "r2"] {
                n.numbers_at(room, i);
                n.room_seq_from(room, i);
            }
        }
        for s in [0, 1, n.chats() / 2, n.chats(), u64::MAX] {
            n.index_of(s);
            n.room_index("r0", s);
        }
        n.forget_before(Seq(up / 2));
        n.apply(&chat(up + 1, "r0"));
    }
    // Bit flips in varint payloads can still decode: that path ran too.
    assert!(
        accepted > 0,
        "no corrupt encoding was accepted: the usable-fold path never ran"
    );
}

/// What the packed fold and the plain one (`Naive`: capacities of its
/// vectors, map entries) cost per chat, at one shape of `chats` chats.
fn bytes_per_chat(chats: u64, rooms: u64, noop_every: u64) -> (f64, f64) {
    let (mut n, mut m) = (Numbering::default(), Naive::default());
    let (mut s, mut c) = (0, 0);
    let names: Vec<String> = (0..rooms).map(|r| format!("room{r}")).collect();
    while c < chats {
        s += 1;
        let e = if noop_every > 0 && s % noop_every == 0 {
            noop(s)
        } else {
            c += 1;
            chat(s, &names[((c - 1) % rooms) as usize])
        };
        n.apply(&e);
        m.apply(&e);
    }
    let entry = std::mem::size_of::<String>() + std::mem::size_of::<Vec<Seq>>();
    let naive = m.runs.capacity() * 16
        + m.rooms
            .iter()
            .map(|(k, v)| entry + k.capacity() + v.capacity() * 8)
            .sum::<usize>();
    let per = |b: usize| b as f64 / chats as f64;
    (per(n.approx_bytes()), per(naive))
}

#[test]
fn typical_traffic_costs_at_most_two_bytes_per_chat() {
    for (rooms, noop_every) in [(1, 0), (100, 0), (1, 10)] {
        let (b, _) = bytes_per_chat(200_000, rooms, noop_every);
        assert!(
            b <= 2.0,
            "{rooms} rooms, no-op every {noop_every}: {b:.2} B/chat"
        );
    }
}

/// `cargo test --release -p chorus-core -- --ignored --nocapture memory_per_chat`
#[test]
#[ignore = "prints figures for BENCHMARKS.md"]
fn memory_per_chat() {
    for (what, rooms, noop_every) in [
        ("1 room", 1, 0),
        ("100 rooms round-robin", 100, 0),
        ("1 room, a no-op every 10", 1, 10),
        (
            "1,000 rooms round-robin (gaps of 1,000: two-byte varints)",
            1_000,
            0,
        ),
    ] {
        let (b, plain) = bytes_per_chat(1_000_000, rooms, noop_every);
        println!("1M chats, {what}: {b:.3} bytes per chat (plain vectors: {plain:.3})");
    }
}
