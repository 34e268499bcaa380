//! Tests of retention and partial replay: deleting the segments a snapshot
//! covers, reopening what is left, replaying only from the segment a
//! snapshot needs, and the Term record copy that makes both recover the
//! term and the vote.

use super::*;
use chorus_core::{Body, Chat};

const SEG: u64 = 300;

fn chat(seq: u64, term: u64) -> Record {
    Record::Entry(Entry {
        seq_no: Seq(seq),
        term: Term(term),
        body: Body::Chat(Chat {
            msg_id: format!("m{seq}-{term}"),
            room_id: "general".into(),
            sender_id: 7,
            user: None,
            payload: "hi".into(),
            ts_ms: 1,
            event: None,
        }),
    })
}

fn term(t: u64, v: u64) -> Record {
    Record::Term {
        term: Term(t),
        voted_for: Some(NodeId(v)),
    }
}

/// Entries 1..=40: term 1 (vote n1) for 1..=15, term 2 (vote n2) for
/// 16..=30, term 3 (vote n3) for 31..=40, each committed; small segments.
fn three_terms(dir: &Path) -> Vec<SegmentFile> {
    let mut o = DurableLog::open_into(dir, Vec::new(), SEG).unwrap();
    for s in 1..=40 {
        let t = 1 + (s - 1) / 15;
        if s == 1 || s == 16 || s == 31 {
            o.log.append(&term(t, t));
        }
        o.log.append(&chat(s, t));
        o.log.append(&Record::Commit { seq: Seq(s) });
        o.log.commit().unwrap();
    }
    drop(o);
    segments::list(dir).unwrap()
}

/// A sink holding the entries above a snapshot at `after`.
#[derive(Debug)]
struct After {
    after: Seq,
    entries: Vec<Entry>,
}

impl EntrySink for After {
    fn last_seq(&self) -> Seq {
        self.entries.last().map_or(self.after, |e| e.seq_no)
    }
    fn push(&mut self, e: Entry, _offset: u64) {
        assert_eq!(
            e.seq_no.0,
            self.last_seq().0 + 1,
            "contiguous above the snapshot"
        );
        self.entries.push(e);
    }
    fn truncate(&mut self, from: Seq) {
        assert!(from > self.after, "never below the snapshot");
        let keep = self.entries.partition_point(|e| e.seq_no < from);
        self.entries.truncate(keep);
    }
    fn rebase(&mut self, seq: Seq, _term: Term) -> Result<(), String> {
        self.entries.clear();
        self.after = seq;
        Ok(())
    }
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq_no.0).collect()
}

#[test]
fn every_new_segment_opens_with_the_current_term_record() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_terms(dir.path());
    assert!(files.len() > 8, "{files:?}");
    for f in &files[1..] {
        let head = segments::head(&f.path, f.len).unwrap();
        assert!(head.term_first, "{}", f.path.display());
        // The copy is the term of the entries that follow it.
        let bytes = fs::read(&f.path).unwrap();
        let frame = record::peek_frame(&bytes);
        let record::FramePeek::Whole { payload, .. } = frame else {
            panic!("{frame:?}");
        };
        let Record::Term { term: t, voted_for } = record::decode_payload(payload).unwrap() else {
            panic!("not a Term record");
        };
        let Some(SeqEffect::Append(first)) = head.first_effect else {
            panic!("{head:?}");
        };
        // Entry k is in term 1 + (k-1)/15, unless the Term record for the
        // next term comes right after the copy (first entry of a term).
        let entry_term = 1 + (first.0 - 1) / 15;
        assert!(
            t.0 == entry_term || t.0 + 1 == entry_term,
            "{t:?} {first:?}"
        );
        assert_eq!(voted_for, Some(NodeId(t.0)));
    }
}

#[test]
fn retention_keeps_the_segment_holding_the_bound_and_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_terms(dir.path());
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    let r = o.log.delete_segments_before(Seq(20)).unwrap();
    assert!(r.segments >= 3, "{r:?}");
    assert_eq!(
        r.paths,
        files[..r.segments]
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        r.bytes,
        files[..r.segments].iter().map(|f| f.len).sum::<u64>()
    );
    let Some(Stopped::Holds(max)) = r.stopped else {
        panic!("{r:?}");
    };
    assert!(max >= Seq(20));
    for f in &files[..r.segments] {
        assert!(!f.path.exists() && !index_path(&f.path).exists());
    }
    let left = segments::list(dir.path()).unwrap();
    assert_eq!(left, files[r.segments..].to_vec());
    assert_eq!(o.log.segments(), left.len());
    // The first segment left holds entry 20, and none before it does.
    let first = segments::head(&left[0].path, left[0].len).unwrap();
    let Some(SeqEffect::Append(s)) = first.first_effect else {
        panic!("{first:?}");
    };
    assert!(s <= Seq(20), "{s:?}");
    // Everything below a bound past the end: all but the active segment.
    let r = o.log.delete_segments_before(Seq(1_000)).unwrap();
    assert_eq!(r.stopped, None);
    assert_eq!(
        segments::list(dir.path()).unwrap(),
        vec![files.last().unwrap().clone()]
    );
    assert_eq!(
        o.log.delete_segments_before(Seq(1_000)).unwrap().segments,
        0
    );
    // The log goes on being written and rolled.
    for s in 41..=60 {
        o.log.append(&chat(s, 3));
        o.log.append(&Record::Commit { seq: Seq(s) });
        o.log.commit().unwrap();
    }
    assert!(o.log.segments() > 3);
}

#[test]
fn a_log_whose_first_segments_are_gone_reopens_from_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    three_terms(dir.path());
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    let r = o.log.delete_segments_before(Seq(25)).unwrap();
    assert!(r.segments > 0);
    drop(o);
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    let k = o.start_seq;
    assert!(k > Seq(0) && k < Seq(25), "{k:?}");
    assert_eq!(
        seqs(&o.replayed.recovered.entries),
        (k.0 + 1..=40).collect::<Vec<_>>()
    );
    let rec = &o.replayed.recovered;
    assert_eq!(
        (rec.term, rec.voted_for, rec.commit_seq),
        (Term(3), Some(NodeId(3)), Seq(40))
    );
    // Appending continues at 41; a reopen sees it all.
    o.log.append(&chat(41, 3));
    o.log.commit().unwrap();
    drop(o);
    let o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    assert_eq!(o.replayed.recovered.entries.last().unwrap().seq_no, Seq(41));
    drop(o);
    // The tools read it too, and say where it starts.
    let snap = read_only(dir.path()).unwrap();
    assert_eq!(snap.start_seq, k);
    assert_eq!(
        seqs(&snap.replayed.recovered.entries),
        (k.0 + 1..=41).collect::<Vec<_>>()
    );
    let rep = repair(dir.path()).unwrap();
    assert!(rep.backup.is_none(), "healthy: {rep:?}");
    // A gap in the middle is still corruption.
    let files = segments::list(dir.path()).unwrap();
    fs::remove_file(&files[1].path).unwrap();
    let err = DurableLog::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("a segment is missing"), "{err}");
}

#[test]
fn open_after_a_snapshot_skips_earlier_segments_and_recovers_term_and_vote() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_terms(dir.path());
    for snap in [Seq(5), Seq(25), Seq(33), Seq(39), Seq(40)] {
        let sink = After {
            after: snap,
            entries: Vec::new(),
        };
        let o = DurableLog::open_after(dir.path(), snap, sink, SEG).unwrap();
        assert!(o.skipped_segments > 0, "{snap:?}");
        assert!(o.skipped_segments < files.len());
        assert!(o.start_seq <= snap, "{snap:?}: {:?}", o.start_seq);
        let rec = &o.replayed.recovered;
        assert_eq!(
            seqs(&rec.entries.entries),
            (snap.0 + 1..=40).collect::<Vec<_>>()
        );
        assert_eq!(
            (rec.term, rec.voted_for),
            (Term(3), Some(NodeId(3))),
            "{snap:?}"
        );
        assert_eq!(o.log.stable_seq(), Seq(40));
    }
    // A snapshot in term 2 with the log ending in term 2: term 2's vote.
    let dir = tempfile::tempdir().unwrap();
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    o.log.append(&term(1, 1));
    for s in 1..=30 {
        if s == 10 {
            o.log.append(&term(2, 5));
        }
        o.log.append(&chat(s, 1 + u64::from(s >= 10)));
        o.log.commit().unwrap();
    }
    drop(o);
    let sink = After {
        after: Seq(28),
        entries: Vec::new(),
    };
    let o = DurableLog::open_after(dir.path(), Seq(28), sink, SEG).unwrap();
    assert!(o.skipped_segments > 2);
    let rec = &o.replayed.recovered;
    assert_eq!((rec.term, rec.voted_for), (Term(2), Some(NodeId(5))));
    assert_eq!(seqs(&rec.entries.entries), vec![29, 30]);
}

#[test]
fn open_after_follows_truncations_across_the_skipped_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    o.log.append(&term(1, 1));
    for s in 1..=20 {
        o.log.append(&chat(s, 1));
        o.log.commit().unwrap();
    }
    o.log.append(&Record::Commit { seq: Seq(12) });
    // A new leader replaces the uncommitted 13..=20, several segments later.
    o.log.append(&term(2, 2));
    o.log.append(&Record::Truncate { from: Seq(13) });
    for s in 13..=30 {
        o.log.append(&chat(s, 2));
        o.log.commit().unwrap();
    }
    drop(o);
    for snap in [Seq(12), Seq(14), Seq(18), Seq(25)] {
        let sink = After {
            after: snap,
            entries: Vec::new(),
        };
        let o = DurableLog::open_after(dir.path(), snap, sink, SEG).unwrap();
        let e = &o.replayed.recovered.entries.entries;
        assert_eq!(seqs(e), (snap.0 + 1..=30).collect::<Vec<_>>(), "{snap:?}");
        assert!(
            e.iter().all(|e| e.term == Term(2)),
            "{snap:?}: only the current versions"
        );
    }
}

#[test]
fn an_installed_snapshot_record_restarts_the_entries_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    o.log.append(&term(1, 1));
    for s in 1..=12 {
        o.log.append(&chat(s, 1));
        o.log.commit().unwrap();
    }
    o.log.append(&Record::Commit { seq: Seq(8) });
    // Behind (and with an uncommitted suffix 9..=12): a snapshot at 30 is
    // installed, and the log continues at 31.
    o.log.append(&term(2, 2));
    o.log.append(&Record::Snapshot {
        seq: Seq(30),
        term: Term(2),
    });
    for s in 31..=45 {
        o.log.append(&chat(s, 2));
        o.log.commit().unwrap();
    }
    drop(o);
    for snap in [Seq(30), Seq(33), Seq(44)] {
        let sink = After {
            after: snap,
            entries: Vec::new(),
        };
        let o = DurableLog::open_after(dir.path(), snap, sink, SEG).unwrap();
        let rec = &o.replayed.recovered;
        assert_eq!(
            seqs(&rec.entries.entries),
            (snap.0 + 1..=45).collect::<Vec<_>>(),
            "{snap:?}"
        );
        assert_eq!((rec.term, rec.voted_for), (Term(2), Some(NodeId(2))));
        // Reads find the current entries, and nothing from before the install.
        let ix = o.log.index();
        let mut ix = lock_index(&ix);
        assert!(
            ix.span(Seq(9), 1).unwrap().is_none(),
            "replaced by the snapshot"
        );
        let span = ix.span(Seq(45), 1).unwrap().unwrap();
        assert!(span.start < span.stop);
    }
    // A full replay sees the install too (the tools' view).
    let snap = read_only(dir.path()).unwrap();
    assert_eq!(snap.start_seq, Seq(30));
    assert_eq!(
        seqs(&snap.replayed.recovered.entries),
        (31..=45).collect::<Vec<_>>()
    );
    assert_eq!(snap.replayed.recovered.commit_seq, Seq(30));
    // Retention after it: the segments before the one holding 40 go.
    let sink = After {
        after: Seq(40),
        entries: Vec::new(),
    };
    let mut o = DurableLog::open_after(dir.path(), Seq(40), sink, SEG).unwrap();
    let r = o.log.delete_segments_before(Seq(40)).unwrap();
    assert!(r.segments > 2, "{r:?}");
    drop(o);
    let snap = read_only(dir.path()).unwrap();
    assert!(
        snap.start_seq >= Seq(30) && snap.start_seq < Seq(40),
        "{:?}",
        snap.start_seq
    );
    assert_eq!(
        snap.replayed.recovered.entries.last().unwrap().seq_no,
        Seq(45)
    );
}

#[test]
fn a_segment_created_just_before_a_crash_still_opens_with_the_term_copy() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_terms(dir.path());
    let last = files.last().unwrap();
    // The crash: the new segment's file exists, nothing written to it yet.
    let empty = dir.path().join(segment_name(last.base + last.len));
    File::create(&empty).unwrap();
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    o.log.append(&chat(41, 3));
    o.log.commit().unwrap();
    let len = fs::metadata(&empty).unwrap().len();
    assert!(segments::head(&empty, len).unwrap().term_first);
    // So retention may leave it first, and a replay from it has the vote.
    let r = o.log.delete_segments_before(Seq(41)).unwrap();
    assert_eq!(r.segments, files.len(), "{r:?}");
    drop(o);
    let o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    let rec = &o.replayed.recovered;
    assert_eq!((rec.term, rec.voted_for), (Term(3), Some(NodeId(3))));
    assert_eq!(seqs(&rec.entries), vec![41]);
    assert_eq!(o.start_seq, Seq(40));
}

/// The current entries of the log in `dir`, by a full replay.
fn current(dir: &Path) -> Vec<Entry> {
    read_only(dir).unwrap().replayed.recovered.entries
}

/// Reads `from..=to` back through the node's reader of evicted entries.
fn read_back(log: &DurableLog, from: u64, to: u64) -> Vec<Entry> {
    use chorus_core::ColdLog;
    let mut r = crate::cold::ColdReader::new(log.index());
    let mut out = Vec::new();
    while out.len() < (to + 1 - from) as usize {
        let got = r.read(Seq(from + out.len() as u64), 7, usize::MAX);
        if got.is_empty() {
            break;
        }
        out.extend(got);
    }
    out.truncate((to + 1 - from) as usize);
    out
}

#[test]
fn entries_before_where_replay_starts_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    o.log.append(&term(1, 1));
    for s in 1..=20 {
        o.log.append(&chat(s, 1));
        o.log.commit().unwrap();
    }
    o.log.append(&Record::Commit { seq: Seq(9) });
    // Two new leaders replace uncommitted suffixes, segments apart.
    o.log.append(&term(2, 2));
    o.log.append(&Record::Truncate { from: Seq(10) });
    for s in 10..=25 {
        o.log.append(&chat(s, 2));
        o.log.commit().unwrap();
    }
    o.log.append(&Record::Commit { seq: Seq(18) });
    o.log.append(&term(3, 3));
    o.log.append(&Record::Truncate { from: Seq(19) });
    for s in 19..=40 {
        o.log.append(&chat(s, 3));
        o.log.commit().unwrap();
    }
    drop(o);
    let want = current(dir.path());
    assert_eq!(seqs(&want), (1..=40).collect::<Vec<_>>());
    for snap in [Seq(12), Seq(21), Seq(30), Seq(39)] {
        let sink = After {
            after: snap,
            entries: Vec::new(),
        };
        let o = DurableLog::open_after(dir.path(), snap, sink, SEG).unwrap();
        assert!(o.skipped_segments > 2, "{snap:?}");
        // Every entry, before and after where replay began, reads back as
        // its current version (terms 1, 2, 3 where the leaders left them).
        assert_eq!(read_back(&o.log, 1, 40), want, "{snap:?}");
    }
    // After retention too, from the first entry left.
    let sink = After {
        after: Seq(30),
        entries: Vec::new(),
    };
    let mut o = DurableLog::open_after(dir.path(), Seq(30), sink, SEG).unwrap();
    let r = o.log.delete_segments_before(Seq(20)).unwrap();
    assert!(r.segments > 2);
    drop(o);
    let sink = After {
        after: Seq(30),
        entries: Vec::new(),
    };
    let o = DurableLog::open_after(dir.path(), Seq(30), sink, SEG).unwrap();
    let first_left = read_only(dir.path()).unwrap().replayed.recovered.entries[0]
        .seq_no
        .0;
    assert!(first_left > 1 && first_left <= 20, "{first_left}");
    let k = (first_left - 1) as usize;
    assert_eq!(read_back(&o.log, first_left, 40), want[k..].to_vec());
    let ix = o.log.index();
    let ix = lock_index(&ix);
    let ranges: Vec<_> = (0..ix.segments()).map(|k| ix.range(k)).collect();
    let mut next = first_left;
    for (lo, hi) in ranges.into_iter().flatten() {
        assert_eq!(lo.0, next, "ranges tile the log: {next}");
        next = hi.0 + 1;
    }
    assert_eq!(next, 41);
}

/// The sequence the node runs (issue 16's wiring): save a snapshot, compact
/// behind it, write on, restart from the snapshot and the log after it.
#[test]
fn a_restart_loads_the_snapshot_then_replays_only_the_log_after_it() {
    use crate::snapshots::{SnapshotStore, DEFAULT_MAX_SNAPSHOT_BYTES};
    let dir = tempfile::tempdir().unwrap();
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    o.log.append(&term(1, 1));
    for s in 1..=30 {
        o.log.append(&chat(s, 1));
        o.log.append(&Record::Commit { seq: Seq(s) });
        o.log.commit().unwrap();
    }
    // SaveSnapshot at 25, then Compact { before: 26 }.
    let mut store = SnapshotStore::open(dir.path()).unwrap();
    store.save(Seq(25), Term(1), b"state at 25").unwrap();
    let removed = o.log.delete_segments_before(Seq(26)).unwrap();
    assert!(removed.segments > 3, "{removed:?}");
    o.log.append(&term(2, 3));
    for s in 31..=35 {
        o.log.append(&chat(s, 2));
        o.log.commit().unwrap();
    }
    drop((o, store));
    // Restart: read the snapshot before taking the lock, open the log after it.
    let mut view = SnapshotStore::open_read_only(dir.path(), DEFAULT_MAX_SNAPSHOT_BYTES).unwrap();
    let snap = view.load_latest().unwrap().unwrap();
    assert_eq!(
        (snap.meta.seq, &snap.bytes[..]),
        (Seq(25), &b"state at 25"[..])
    );
    let sink = After {
        after: snap.meta.seq,
        entries: Vec::new(),
    };
    let o = DurableLog::open_after(dir.path(), snap.meta.seq, sink, SEG).unwrap();
    let rec = &o.replayed.recovered;
    assert_eq!(seqs(&rec.entries.entries), (26..=35).collect::<Vec<_>>());
    assert_eq!((rec.term, rec.voted_for), (Term(2), Some(NodeId(3))));
    assert!(o.start_seq <= Seq(25));
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert_eq!(store.latest().unwrap().seq, Seq(25));
    // Entries kept behind the snapshot (not yet compacted) read back.
    let first_left = o.start_seq.0 + 1;
    assert_eq!(
        seqs(&read_back(&o.log, first_left, 35)),
        (first_left..=35).collect::<Vec<_>>()
    );
}

/// Writes one segment file per element of `segments`, as the writer cuts
/// them (contiguous bases), for layouts a test must control exactly.
fn write_segments(dir: &Path, segments: &[Vec<Record>]) {
    let mut base = 0u64;
    for recs in segments {
        let mut b = Vec::new();
        for r in recs {
            record::encode(r, &mut b);
        }
        fs::write(dir.join(segment_name(base)), &b).unwrap();
        base += b.len() as u64;
    }
}

#[test]
fn entries_before_an_install_at_a_segment_top_are_not_read_as_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg0 = vec![term(1, 1)];
    seg0.extend((1..=12).map(|s| chat(s, 1)));
    seg0.push(Record::Commit { seq: Seq(8) });
    let mut seg1 = vec![
        term(2, 2),
        Record::Snapshot {
            seq: Seq(30),
            term: Term(2),
        },
    ];
    seg1.extend((31..=35).map(|s| chat(s, 2)));
    let mut seg2 = vec![term(2, 2)];
    seg2.extend((36..=40).map(|s| chat(s, 2)));
    write_segments(dir.path(), &[seg0, seg1, seg2]);
    let sink = After {
        after: Seq(32),
        entries: Vec::new(),
    };
    let o = DurableLog::open_after(dir.path(), Seq(32), sink, SEG).unwrap();
    assert_eq!(o.skipped_segments, 1);
    assert_eq!(o.start_seq, Seq(30));
    let rec = &o.replayed.recovered;
    assert_eq!(seqs(&rec.entries.entries), (33..=40).collect::<Vec<_>>());
    // 9..=12 were never committed: the installed snapshot replaced them.
    assert!(read_back(&o.log, 9, 9).is_empty());
    assert!(read_back(&o.log, 1, 1).is_empty());
    assert_eq!(
        seqs(&read_back(&o.log, 31, 40)),
        (31..=40).collect::<Vec<_>>()
    );
}

/// Writes `records` as the previous version's writer did: segments cut
/// after `SEG` bytes, with no Term record copy at their tops.
fn old_format(dir: &Path, records: &[Record]) {
    let (mut base, mut cur) = (0u64, Vec::new());
    for r in records {
        if cur.len() as u64 >= SEG {
            fs::write(dir.join(segment_name(base)), &cur).unwrap();
            base += cur.len() as u64;
            cur.clear();
        }
        record::encode(r, &mut cur);
    }
    fs::write(dir.join(segment_name(base)), &cur).unwrap();
}

#[test]
fn segments_without_a_term_copy_are_kept_and_replayed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = vec![term(1, 4)];
    records.extend((1..=25).map(|s| chat(s, 1)));
    old_format(dir.path(), &records);
    let before = segments::list(dir.path()).unwrap();
    assert!(before.len() > 4);
    let sink = After {
        after: Seq(22),
        entries: Vec::new(),
    };
    let mut o = DurableLog::open_after(dir.path(), Seq(22), sink, SEG).unwrap();
    assert_eq!(o.skipped_segments, 0, "replayed whole");
    let rec = &o.replayed.recovered;
    assert_eq!((rec.term, rec.voted_for), (Term(1), Some(NodeId(4))));
    assert_eq!(seqs(&rec.entries.entries), vec![23, 24, 25]);
    let r = o.log.delete_segments_before(Seq(22)).unwrap();
    assert_eq!(r.segments, 0, "the vote would be lost: {r:?}");
    assert!(matches!(r.stopped, Some(Stopped::NoTermCopy(_))), "{r:?}");
    // New segments open with the copy: retention reaches the first of them.
    for s in 26..=40 {
        o.log.append(&chat(s, 1));
        o.log.commit().unwrap();
    }
    let r = o.log.delete_segments_before(Seq(35)).unwrap();
    assert!(r.segments >= before.len(), "every old segment: {r:?}");
    assert!(before.iter().all(|f| !f.path.exists()));
    drop(o);
    let o = DurableLog::open_into(dir.path(), Vec::new(), SEG).unwrap();
    let rec = &o.replayed.recovered;
    assert_eq!((rec.term, rec.voted_for), (Term(1), Some(NodeId(4))));
    assert_eq!(rec.entries.last().unwrap().seq_no, Seq(40));
}

#[test]
fn index_files_of_the_first_format_still_serve_retention() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_terms(dir.path());
    // Rewrite every index in the first format (points only, no bounds).
    for f in &files[..files.len() - 1] {
        let (points, _) = segments::read_index(&index_path(&f.path), f.len).unwrap();
        let mut b = Vec::new();
        b.extend_from_slice(b"CHIDX001");
        b.extend_from_slice(&f.len.to_le_bytes());
        b.extend_from_slice(&(points.len() as u64).to_le_bytes());
        for p in &points {
            b.extend_from_slice(&p.seq.0.to_le_bytes());
            b.extend_from_slice(&p.off.to_le_bytes());
        }
        let crc = chorus_core::crc::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        fs::write(index_path(&f.path), &b).unwrap();
        assert_eq!(
            segments::read_index(&index_path(&f.path), f.len),
            Some((points, None))
        );
    }
    let sink = After {
        after: Seq(30),
        entries: Vec::new(),
    };
    let mut o = DurableLog::open_after(dir.path(), Seq(30), sink, SEG).unwrap();
    assert!(o.skipped_segments > 0);
    assert_eq!(
        seqs(&o.replayed.recovered.entries.entries),
        (31..=40).collect::<Vec<_>>()
    );
    let r = o.log.delete_segments_before(Seq(20)).unwrap();
    assert!(r.segments >= 3, "{r:?}");
    assert!(
        matches!(r.stopped, Some(Stopped::Holds(m)) if m >= Seq(20)),
        "{r:?}"
    );
    // The scanned bounds were written back in the current format.
    let left = segments::list(dir.path()).unwrap();
    let (_, b) = segments::read_index(&index_path(&left[0].path), left[0].len).unwrap();
    assert!(b.is_some());
}

/// Deleting segments: time per segment of the default size, on the disk of
/// the worktree (`CHORUS_BENCH_DIR` to choose another):
/// `cargo test --release -p chorus-runtime-mio retention_tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "a measurement; prints figures"]
fn timing_of_segment_deletion() {
    let base =
        std::env::var_os("CHORUS_BENCH_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let seg = DEFAULT_SEGMENT_BYTES;
    let mut o = DurableLog::open_into(dir.path(), Vec::new(), seg).unwrap();
    o.log.append(&term(1, 1));
    let big = "x".repeat(1000);
    let mut s = 0;
    let t = std::time::Instant::now();
    while o.log.segments() < 9 {
        s += 1;
        o.log.append(&Record::Entry(Entry {
            seq_no: Seq(s),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: format!("m{s}"),
                room_id: "general".into(),
                sender_id: 7,
                user: None,
                payload: big.clone(),
                ts_ms: 1,
                event: None,
            }),
        }));
        if s % 1000 == 0 {
            o.log.append(&Record::Commit { seq: Seq(s) });
            o.log.write_queued().unwrap();
        }
    }
    o.log.commit().unwrap();
    println!(
        "wrote {s} entries, {} MiB in {} segments in {:.1} s",
        o.log.len_bytes() >> 20,
        o.log.segments(),
        t.elapsed().as_secs_f64()
    );
    let t = std::time::Instant::now();
    let r = o.log.delete_segments_before(Seq(s / 2)).unwrap();
    let took = t.elapsed();
    println!(
        "delete_segments_before({}): {} segments, {} MiB in {:.1} ms ({:.2} ms per segment, fsyncs included); kept the next: {:?}",
        s / 2,
        r.segments,
        r.bytes >> 20,
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3 / r.segments.max(1) as f64,
        r.stopped
    );
    drop(o);
    let t = std::time::Instant::now();
    let o = DurableLog::open_after(dir.path(), Seq(s - 10), Vec::<Entry>::new(), seg);
    // A Vec sink is not "the log up to the snapshot": only the timing counts.
    let _ = o.map(|o| o.replayed.records);
    println!(
        "open_after near the end: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = std::time::Instant::now();
    let o = DurableLog::open_into(dir.path(), LastSeq(Seq(0)), seg).unwrap();
    println!(
        "open_into (every segment left, {} records): {:.1} ms",
        o.replayed.records,
        t.elapsed().as_secs_f64() * 1e3
    );
}
