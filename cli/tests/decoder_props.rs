//! Property tests over everything that decodes bytes from the network or
//! the disk: the peer and client JSON decoders (`PeerMsg`, `ClientLine`),
//! the runtime's bounded line framing (`LineReader`), and the log replay
//! (`chorus_core::replay`). Arbitrary and mutated inputs never panic; the
//! framing never buffers more than its bound; replay of any prefix of a
//! valid log succeeds (a torn tail), and any corruption is an error naming
//! an offset inside the file, never a panic or a silently different log.

use chorus_core::client_wire::ClientLine;
use chorus_core::record::{self, Record};
use chorus_core::{Body, Chat, Entry, NodeId, PeerMsg, Seq, Term};
use chorus_runtime_mio::framing::{LineReader, ReadStatus};
use proptest::prelude::*;
use std::io::{self, Read};

/// Real lines of every type, to mutate.
const SEEDS: &[&str] = &[
    r#"{"type":"CHAT","sender_id":9999,"term":0,"room_id":"general","msg_id":"a","payload":"hi"}"#,
    r#"{"type":"HISTORY","from_seq":1,"limit":1000,"room_id":"general"}"#,
    r#"{"type":"SUBSCRIBE","from_seq":42}"#,
    r#"{"type":"STATUS"}"#,
    r#"{"type":"HEARTBEAT","sender_id":2,"term":3,"commit_seq":4,"last_seq":5,"last_term":3}"#,
    r#"{"type":"SEQ_CHAT","sender_id":1,"term":2,"prev_seq":1,"prev_term":1,"commit_seq":1,"entries":[{"seq_no":2,"term":2,"msg_id":"m","room_id":"r","sender_id":1,"payload":"p","ts_ms":0}]}"#,
    r#"{"type":"COORDINATOR","sender_id":7,"term":50,"leader":{"node_id":7,"host":"127.0.0.1","port":1}}"#,
    r#"{"type":"JOIN","sender_id":4,"term":0,"peer":{"node_id":4,"host":"h","port":2}}"#,
];

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(at, v) in edits {
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = v;
        }
    }
    b.truncate(cut % (b.len() + 1));
    b
}

fn decode_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<PeerMsg>(bytes);
    let _ = serde_json::from_slice::<ClientLine>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn json_decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn json_decoders_never_panic_on_mutated_lines(
        which in 0..SEEDS.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        decode_all(&mutate(SEEDS[which].as_bytes(), &edits, cut));
    }

    #[test]
    fn replay_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = record::replay(&bytes);
    }

    #[test]
    fn replay_of_a_valid_log_survives_any_cut_and_reports_any_flip(
        n in 1u64..40,
        cut in any::<usize>(),
        flip_at in any::<usize>(),
        flip_bit in 0u8..8,
    ) {
        let log = valid_log(n);
        let full = record::replay(&log).unwrap();
        prop_assert_eq!(full.valid_len as usize, log.len());
        // Any prefix is a torn tail: replay succeeds with a prefix of the state.
        let prefix = &log[..cut % (log.len() + 1)];
        let part = record::replay(prefix).unwrap();
        prop_assert!(part.valid_len as usize <= prefix.len());
        prop_assert!(full.recovered.entries.starts_with(&part.recovered.entries));
        // Any flipped bit: an error at an offset inside the file, or (a flip
        // in the last record) a torn tail that drops it — never a different
        // entry accepted as valid.
        let mut bad = log.clone();
        let i = flip_at % bad.len();
        bad[i] ^= 1 << flip_bit;
        match record::replay(&bad) {
            Err(record::ReplayError::Corrupt { offset, .. }) => prop_assert!((offset as usize) <= i),
            Ok(r) => {
                prop_assert!(full.recovered.entries.starts_with(&r.recovered.entries));
                prop_assert!((r.valid_len as usize) <= i);
            }
        }
    }
}

proptest! {
    // Each read of LineReader prepares a 64 KiB chunk: fewer, larger cases.
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn framing_stays_bounded_and_never_panics(
        data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..4096),
        step in 16usize..300,
        max_line in 1usize..200,
    ) {
        let mut src = Trickle { data, pos: 0, step };
        let mut r = LineReader::new(max_line);
        loop {
            let st = r.read_from(&mut src).unwrap();
            let mut failed = false;
            loop {
                match r.next_line() {
                    Ok(Some(l)) => prop_assert!(l.len() <= max_line),
                    Ok(None) => break,
                    Err(_) => { failed = true; break; }
                }
            }
            if failed {
                break; // the runtime closes the connection here
            }
            prop_assert!(r.buffered() <= max_line + 64 * 1024 + step);
            if !matches!(st, ReadStatus::Data(_)) {
                break;
            }
        }
    }

}

/// A source yielding `data` in pieces of `step`, then EOF.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn valid_log(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode(
        &Record::Term {
            term: Term(1),
            voted_for: Some(NodeId(1)),
        },
        &mut out,
    );
    for s in 1..=n {
        let body = if s == 1 {
            Body::Noop { leader: NodeId(1) }
        } else {
            Body::Chat(Chat {
                msg_id: format!("m{s}"),
                room_id: "general".into(),
                sender_id: 7,
                user: (s % 3 == 0).then(|| "alice".to_string()),
                payload: "x".repeat(s as usize),
                ts_ms: s,
                event: None,
            })
        };
        record::encode(
            &Record::Entry(Entry {
                seq_no: Seq(s),
                term: Term(1),
                body,
            }),
            &mut out,
        );
        if s % 5 == 0 {
            record::encode(&Record::Commit { seq: Seq(s) }, &mut out);
        }
    }
    out
}
