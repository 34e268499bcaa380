//! Log record encoding and recovery: round trip, torn tails, corruption.

use chorus_core::record::{encode, replay, replay_segments, Record, ReplayError, SegmentSource};
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
                event: None,
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

/// A reader that hands out at most a few bytes per call (the worst case for
/// `replay_read`'s window).
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fn replay_trickled(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let r = Trickle { bytes, step: 0 };
    chorus_core::record::replay_read(r, Vec::new()).expect("memory reads do not fail")
}

#[test]
fn streaming_replay_agrees_on_every_cut_flip_and_zero_tail() {
    let (bytes, _) = bytes_of(&sample());
    for cut in 0..=bytes.len() {
        assert_eq!(
            replay_trickled(&bytes[..cut]),
            replay(&bytes[..cut]),
            "cut {cut}"
        );
    }
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x04;
        assert_eq!(replay_trickled(&bad), replay(&bad), "flip at {at}");
    }
    let mut zeros = bytes.clone();
    zeros.extend_from_slice(&[0u8; 600_000]);
    assert_eq!(replay_trickled(&zeros), replay(&zeros));
    zeros.push(1);
    assert_eq!(replay_trickled(&zeros), replay(&zeros));
    assert!(replay(&zeros).is_err(), "data after zeros is corruption");
}

#[test]
fn streaming_replay_into_a_compact_log_hands_over_offsets() {
    #[derive(Default)]
    struct Offsets(Vec<(u64, u64)>);
    impl EntrySink for Offsets {
        fn last_seq(&self) -> Seq {
            Seq(self.0.len() as u64)
        }
        fn push(&mut self, e: Entry, offset: u64) {
            self.0.push((e.seq_no.0, offset));
        }
        fn truncate(&mut self, from: Seq) {
            self.0.truncate(from.0 as usize - 1);
        }
    }
    let (bytes, ends) = bytes_of(&sample());
    let r = chorus_core::record::replay_read(&bytes[..], Offsets::default())
        .unwrap()
        .unwrap();
    // seq 1 is the second record, seq 2 the third, seq 3 the re-written seventh.
    let want = vec![
        (1, ends[0] as u64),
        (2, ends[1] as u64),
        (3, ends[5] as u64),
    ];
    assert_eq!(r.recovered.entries.0, want);
    let log = chorus_core::record::replay_read(&bytes[..], Log::new(1))
        .unwrap()
        .unwrap()
        .recovered
        .entries;
    assert_eq!((log.last_seq(), log.cached()), (Seq(3), 1));
    assert_eq!(log.seq_of("c"), Some(Seq(3)));
    assert_eq!(log.seq_of("b"), None);
    assert_eq!(log.term_at(Seq(1)), Some(Term(2)));
}

#[test]
fn frame_peeks_and_seq_effects_follow_the_encoding() {
    use chorus_core::record::{peek_frame, seq_effect, FramePeek, SeqEffect};
    let (bytes, ends) = bytes_of(&sample());
    let mut at = 0;
    let mut effects = Vec::new();
    for &end in &ends {
        assert_eq!(peek_frame(&bytes[at..end - 1]), FramePeek::Need(end - at));
        let FramePeek::Whole { payload, len } = peek_frame(&bytes[at..]) else {
            panic!("whole frame at {at}");
        };
        assert_eq!(at + len, end);
        effects.push(seq_effect(payload).unwrap());
        at = end;
    }
    use SeqEffect::{Append, Other, Truncate};
    let want = [Other, Append(Seq(1)), Append(Seq(2)), Append(Seq(3)), Other];
    assert_eq!(&effects[..5], &want);
    assert_eq!(&effects[5..], &[Truncate(Seq(3)), Append(Seq(3))]);
    assert_eq!(peek_frame(&bytes[..5]), FramePeek::Need(12));
    let mut bad = bytes.clone();
    bad[ends[0] + 13] ^= 1;
    assert!(matches!(peek_frame(&bad[ends[0]..]), FramePeek::Bad(_)));
    let unverified = chorus_core::record::peek_frame_unverified(&bad[ends[0]..]);
    assert!(matches!(unverified, FramePeek::Whole { len, .. } if len == ends[1] - ends[0]));
}

/// `replay_segments` over in-memory segments.
fn replay_segs(
    segs: Vec<SegmentSource<Vec<u8>>>,
) -> std::io::Result<Result<Replayed, ReplayError>> {
    let segs = segs.into_iter().map(|s| SegmentSource {
        base: s.base,
        len: s.len,
        reader: std::io::Cursor::new(s.reader),
    });
    replay_segments(segs, Vec::new())
}

/// The sample log cut into segments after the records numbered in `cuts`.
fn segments_of(bytes: &[u8], ends: &[usize], cuts: &[usize]) -> Vec<SegmentSource<Vec<u8>>> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain([&ends.len()]) {
        let end = if c == 0 { 0 } else { ends[c - 1] };
        out.push(SegmentSource {
            base: start as u64,
            len: (end - start) as u64,
            reader: bytes[start..end].to_vec(),
        });
        start = end;
    }
    out
}

#[test]
fn segmented_replay_agrees_with_replay_of_the_whole_log() {
    let (bytes, ends) = bytes_of(&sample());
    let whole = replay(&bytes).unwrap();
    for cuts in [vec![], vec![1], vec![1, 2], vec![2, 4], vec![0, 3]] {
        let segs = segments_of(&bytes, &ends, &cuts);
        let got = replay_segs(segs).unwrap().unwrap();
        assert_eq!(got, whole, "cut after records {cuts:?}");
    }
    assert_eq!(
        replay_segs(Vec::new()).unwrap().unwrap(),
        replay(&[]).unwrap()
    );
}

#[test]
fn segmented_replay_cuts_a_torn_tail_only_in_the_last_segment() {
    let (bytes, ends) = bytes_of(&sample());
    // Torn in the last segment: cut, as in a single file.
    let mut segs = segments_of(&bytes, &ends, &[2]);
    let last = segs.last_mut().unwrap();
    last.reader.truncate(last.reader.len() - 3);
    last.len -= 3;
    let got = replay_segs(segs).unwrap().unwrap();
    assert_eq!(got.valid_len, ends[ends.len() - 2] as u64);
    // The same bytes missing at the end of a segment that another follows.
    let mut segs = segments_of(&bytes, &ends, &[2, 4]);
    let n = segs[0].reader.len();
    segs[0].reader.truncate(n - 3);
    segs[0].len -= 3;
    segs[1].base -= 3;
    segs[2].base -= 3;
    let err = replay_segs(segs).unwrap().unwrap_err();
    let ReplayError::Corrupt { offset, reason } = err;
    assert_eq!(offset, ends[0] as u64, "where the torn record starts");
    assert!(reason.contains("another segment follows"), "{reason}");
    // Trailing zeros there too.
    let mut segs = segments_of(&bytes, &ends, &[2, 4]);
    segs[0].reader.extend([0u8; 16]);
    segs[0].len += 16;
    segs[1].base += 16;
    segs[2].base += 16;
    let err = replay_segs(segs).unwrap().unwrap_err();
    assert!(err.to_string().contains("another segment follows"), "{err}");
}

#[test]
fn segmented_replay_refuses_a_missing_or_overlapping_segment() {
    let (bytes, ends) = bytes_of(&sample());
    let mut segs = segments_of(&bytes, &ends, &[1, 2, 4]);
    segs.remove(1);
    let err = replay_segs(segs).unwrap().unwrap_err();
    let ReplayError::Corrupt { offset, reason } = err;
    assert_eq!(offset, ends[0] as u64);
    assert!(reason.contains("a segment is missing"), "{reason}");
    let mut segs = segments_of(&bytes, &ends, &[1, 2]);
    segs[2].base -= 1;
    assert!(replay_segs(segs).unwrap().is_err());
}
