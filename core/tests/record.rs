//! Log record encoding and recovery: round trip, torn tails, corruption.

use chorus_core::record::{encode, replay, Record, ReplayError};
use chorus_core::*;

fn sample() -> Vec<Record> {
    let chat = |seq: u64, id: &str| {
        Record::Entry(Entry {
            seq_no: Seq(seq),
            term: Term(2),
            body: Body::Chat(Chat {
                msg_id: id.into(),
                room_id: "general".into(),
                sender_id: 9999,
                user: Some("alice".into()),
                payload: "héllo".into(),
                ts_ms: 1_700_000_000_000,
            }),
        })
    };
    vec![
        Record::Term {
            term: Term(2),
            voted_for: Some(NodeId(3)),
        },
        Record::Entry(Entry {
            seq_no: Seq(1),
            term: Term(2),
            body: Body::Noop { leader: NodeId(3) },
        }),
        chat(2, "a"),
        chat(3, "b"),
        Record::Commit { seq: Seq(2) },
        Record::Truncate { from: Seq(3) },
        chat(3, "c"),
    ]
}

fn bytes_of(recs: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for r in recs {
        encode(r, &mut out);
        ends.push(out.len());
    }
    (out, ends)
}

#[test]
fn round_trip_rebuilds_state() {
    let (bytes, _) = bytes_of(&sample());
    let r = replay(&bytes).unwrap();
    assert_eq!(r.valid_len, bytes.len() as u64);
    assert_eq!(r.records, 7);
    let rec = r.recovered;
    assert_eq!((rec.term, rec.voted_for), (Term(2), Some(NodeId(3))));
    assert_eq!(rec.commit_seq, Seq(2));
    let ids: Vec<_> = rec.entries.iter().map(|e| e.msg_id()).collect();
    assert_eq!(ids, vec![None, Some("a"), Some("c")]);
}

#[test]
fn every_torn_tail_is_cut_at_the_last_whole_record() {
    let (bytes, ends) = bytes_of(&sample());
    for cut in 1..bytes.len() {
        let r = replay(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let whole = ends
            .iter()
            .copied()
            .filter(|&e| e <= cut)
            .max()
            .unwrap_or(0);
        assert_eq!(r.valid_len, whole as u64, "cut at {cut}");
    }
}

#[test]
fn trailing_zeros_are_a_torn_tail() {
    let (mut bytes, _) = bytes_of(&sample());
    let len = bytes.len();
    bytes.extend_from_slice(&[0u8; 4096]);
    assert_eq!(replay(&bytes).unwrap().valid_len, len as u64);
}

#[test]
fn a_flipped_bit_in_the_middle_is_corruption_with_its_offset() {
    let (bytes, ends) = bytes_of(&sample());
    // Flip one bit inside the third record's payload.
    let mut bad = bytes.clone();
    bad[ends[1] + 20] ^= 0x10;
    match replay(&bad) {
        Err(ReplayError::Corrupt { offset, .. }) => assert_eq!(offset, ends[1] as u64),
        other => panic!("expected corruption, got {other:?}"),
    }
    // And in a header length.
    let mut bad = bytes;
    bad[ends[2]] ^= 0x01;
    assert!(
        matches!(replay(&bad), Err(ReplayError::Corrupt { offset, .. }) if offset == ends[2] as u64)
    );
}

#[test]
fn garbage_never_panics() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in 0..2000usize {
        let mut buf = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        let _ = replay(&buf);
    }
}
