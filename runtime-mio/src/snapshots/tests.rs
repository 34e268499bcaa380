//! Tests of the snapshot files: framing, fallbacks past damaged files,
//! bounded reads, and saves that fail part-way (a real write error, from a
//! file-size limit on a child process).

use super::*;

fn payload(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ salt)
        .collect()
}

fn file_of(dir: &Path, seq: u64) -> PathBuf {
    dir.join(snapshot_name(Seq(seq)))
}

#[test]
fn names_round_trip_and_tmp_is_not_a_snapshot() {
    assert_eq!(snapshot_name(Seq(7)), "snapshot.00000000000000000007");
    assert_eq!(
        parse_snapshot_name("snapshot.00000000000000000007"),
        Some(Seq(7))
    );
    for other in [
        "snapshot.00000000000000000007.tmp",
        "snapshot.7",
        "snapshot.0000000000000000000x",
        "chorus.log",
    ] {
        assert_eq!(parse_snapshot_name(other), None, "{other}");
    }
    assert!(is_tmp_name("snapshot.00000000000000000007.tmp"));
    assert!(!is_tmp_name("chorus.log.tmp"));
}

#[test]
fn piecewise_crc_equals_the_whole() {
    let data = payload(10_000, 3);
    for cut in [0, 1, 7, 8, 9, 4096, 9_999, 10_000] {
        let mut c = Crc32c::new();
        c.update(&data[..cut]);
        c.update(&data[cut..]);
        assert_eq!(c.finish(), crc32c(&data), "cut at {cut}");
    }
    let mut c = Crc32c::new();
    for ch in data.chunks(333) {
        c.update(ch);
    }
    assert_eq!(c.finish(), crc32c(&data));
    assert_eq!(Crc32c::new().finish(), crc32c(&[]));
}

#[test]
fn a_snapshot_round_trips_and_is_served_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    assert!(s.latest().is_none());
    assert!(s.load_latest().unwrap().is_none());
    let bytes = payload(100_000, 1);
    let saved = s.save(Seq(42), Term(3), &bytes).unwrap();
    assert_eq!(saved.meta.path, file_of(dir.path(), 42));
    assert_eq!(
        fs::metadata(&saved.meta.path).unwrap().len(),
        HEADER_BYTES + bytes.len() as u64
    );
    drop(s);
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    let meta = s.latest().unwrap().clone();
    assert_eq!((meta.seq, meta.term, meta.len), (Seq(42), Term(3), 100_000));
    let l = s.load_latest().unwrap().unwrap();
    assert_eq!(l.meta, meta);
    assert_eq!(l.bytes, bytes);
    assert!(l.skipped.is_empty());
    // Chunks from disk, each at most `max`, concatenate to the payload and
    // check against the crc the header carries.
    let mut got = Vec::new();
    let mut crc = Crc32c::new();
    loop {
        let c = s.read_chunk(Seq(42), got.len() as u64, 30_000).unwrap();
        assert!(c.len() <= 30_000);
        if c.is_empty() {
            break;
        }
        crc.update(&c);
        got.extend_from_slice(&c);
    }
    assert_eq!(got, bytes);
    assert_eq!(crc.finish(), meta.crc);
    assert!(s.read_chunk(Seq(42), 1 << 40, 10).unwrap().is_empty());
    let err = s.read_chunk(Seq(41), 0, 10).unwrap_err().to_string();
    assert!(err.contains("no such snapshot"), "{err}");
}

#[test]
fn a_read_only_store_reads_but_neither_saves_nor_removes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    s.save(Seq(10), Term(1), b"ten").unwrap();
    // Another process's save in progress.
    let tmp = tmp_path(dir.path(), Seq(20));
    fs::write(&tmp, b"half").unwrap();
    let mut r = SnapshotStore::open_read_only(dir.path(), DEFAULT_MAX_SNAPSHOT_BYTES).unwrap();
    assert!(tmp.exists(), "left alone");
    let l = r.load_latest().unwrap().unwrap();
    assert_eq!((l.meta.seq, &l.bytes[..]), (Seq(10), &b"ten"[..]));
    let err = r.save(Seq(30), Term(1), b"x").unwrap_err();
    assert!(matches!(err, SnapshotError::ReadOnly(_)), "{err}");
    assert!(!file_of(dir.path(), 30).exists());
}

#[test]
fn a_newer_save_replaces_the_older_and_an_older_save_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    s.save(Seq(10), Term(1), b"ten").unwrap();
    let saved = s.save(Seq(20), Term(2), b"twenty").unwrap();
    assert_eq!(saved.removed, vec![file_of(dir.path(), 10)]);
    assert!(!file_of(dir.path(), 10).exists());
    let err = s.save(Seq(15), Term(2), b"x").unwrap_err();
    assert!(matches!(err, SnapshotError::Older { .. }), "{err}");
    // The same position again (a retried save) is allowed.
    s.save(Seq(20), Term(2), b"twenty").unwrap();
    let l = s.load_latest().unwrap().unwrap();
    assert_eq!((l.meta.seq, &l.bytes[..]), (Seq(20), &b"twenty"[..]));
}

#[test]
fn a_corrupt_newest_falls_back_to_an_older_one_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    let old = payload(5000, 7);
    s.save(Seq(10), Term(1), &old).unwrap();
    let kept = fs::read(file_of(dir.path(), 10)).unwrap();
    s.save(Seq(20), Term(2), &payload(5000, 8)).unwrap();
    s.save(Seq(30), Term(2), &payload(5000, 9)).unwrap();
    // An older file survives (say, a crash before the deletion).
    fs::write(file_of(dir.path(), 10), &kept).unwrap();
    // Newest: a payload bit flipped; next: its term flipped in the header.
    let p30 = file_of(dir.path(), 30);
    let mut b = fs::read(&p30).unwrap();
    b[HEADER_BYTES as usize + 100] ^= 0x10;
    fs::write(&p30, &b).unwrap();
    let p20 = file_of(dir.path(), 20);
    fs::write(&p20, {
        let mut b = fs::read(file_of(dir.path(), 10)).unwrap();
        b[8..16].copy_from_slice(&20u64.to_le_bytes());
        b[16] ^= 1;
        b
    })
    .unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    let l = s.load_latest().unwrap().unwrap();
    assert_eq!((l.meta.seq, l.meta.term), (Seq(10), Term(1)));
    assert_eq!(l.bytes, old);
    let why: Vec<String> = l.skipped.iter().map(|k| k.to_string()).collect();
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why[0].contains("snapshot.00000000000000000030"), "{why:?}");
    assert!(why[0].contains("payload checksum mismatch"), "{why:?}");
    assert!(why[1].contains("snapshot.00000000000000000020"), "{why:?}");
    assert!(why[1].contains("header checksum mismatch"), "{why:?}");
    assert_eq!(s.latest().unwrap().seq, Seq(10));
    // Inspect's view: every file, each with its verdict.
    let r = report(dir.path(), DEFAULT_MAX_SNAPSHOT_BYTES).unwrap();
    let verdicts: Vec<_> = r.iter().map(|f| f.verdict.clone()).collect();
    assert_eq!(verdicts[2], Ok((Seq(10), Term(1))));
    assert!(verdicts[0].is_err() && verdicts[1].is_err());
}

#[test]
fn truncated_renamed_or_foreign_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    s.save(Seq(5), Term(1), &payload(1000, 1)).unwrap();
    let p5 = file_of(dir.path(), 5);
    let good = fs::read(&p5).unwrap();
    fs::write(file_of(dir.path(), 6), &good).unwrap();
    let mut seven = good.clone();
    seven[8..16].copy_from_slice(&7u64.to_le_bytes());
    let hcrc = crc32c(&seven[..36]);
    seven[36..40].copy_from_slice(&hcrc.to_le_bytes());
    fs::write(file_of(dir.path(), 7), &seven[..500]).unwrap();
    fs::write(file_of(dir.path(), 8), b"hello").unwrap();
    fs::write(file_of(dir.path(), 9), vec![0u8; 64]).unwrap();
    let l = s.load_latest().unwrap().unwrap();
    assert_eq!(l.meta.seq, Seq(5));
    let why: Vec<String> = l.skipped.iter().map(|k| k.reason.clone()).collect();
    assert!(why[0].contains("bad magic"), "{why:?}");
    assert!(why[1].contains("shorter than"), "{why:?}");
    assert!(why[2].contains("truncated"), "{why:?}");
    assert!(why[3].contains("header says seq 5"), "{why:?}");
}

#[test]
fn a_torn_tmp_is_ignored_and_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    s.save(Seq(10), Term(1), b"durable").unwrap();
    // A crash mid-save of seq 20: half a file, never renamed.
    let full = fs::read(file_of(dir.path(), 10)).unwrap();
    let tmp = tmp_path(dir.path(), Seq(20));
    fs::write(&tmp, &full[..full.len() / 2]).unwrap();
    let l = s.load_latest().unwrap().unwrap();
    assert_eq!((l.meta.seq, &l.bytes[..]), (Seq(10), &b"durable"[..]));
    assert!(l.skipped.is_empty(), "a .tmp is not a snapshot");
    let s = SnapshotStore::open(dir.path()).unwrap();
    assert!(!tmp.exists(), "open removes it");
    assert_eq!(s.latest().unwrap().seq, Seq(10));
}

#[test]
fn an_oversized_length_is_refused_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    // A valid header declaring 1 TiB (allocating it would abort the test).
    let mut h = Vec::new();
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&9u64.to_le_bytes());
    h.extend_from_slice(&1u64.to_le_bytes());
    h.extend_from_slice(&(1u64 << 40).to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    let hcrc = crc32c(&h);
    h.extend_from_slice(&hcrc.to_le_bytes());
    h.extend_from_slice(b"tiny");
    fs::write(file_of(dir.path(), 9), &h).unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    assert!(s.latest().is_none());
    assert!(s.load_latest().unwrap().is_none());
    let r = report(dir.path(), DEFAULT_MAX_SNAPSHOT_BYTES).unwrap();
    let why = r[0].verdict.clone().unwrap_err();
    assert!(why.contains("exceeds the bound of 1073741824"), "{why}");
    // The bound is configurable, and applies to saves too.
    let mut s = SnapshotStore::open_with_max(dir.path(), 1000).unwrap();
    let err = s.save(Seq(10), Term(1), &[0u8; 1001]).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::TooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err}"
    );
    assert!(!tmp_path(dir.path(), Seq(10)).exists());
}

/// Env vars telling the child of the tests below where to save and which
/// failure (`op:errno`) to expect.
const CHILD_DIR_ENV: &str = "CHORUS_SNAPSHOT_FAILING_SAVE_DIR";
const CHILD_EXPECT_ENV: &str = "CHORUS_SNAPSHOT_FAILING_SAVE_EXPECT";

/// Saves seq 10 in a fresh directory, then has a child process (this test
/// binary, run under `prefix`) try to save seq 20 there and fail with
/// `expect` (`op:errno`); checks that the directory then holds seq 10 only,
/// intact, and no `.tmp`.
fn failing_save_in_child(prefix: &[String], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SnapshotStore::open(dir.path()).unwrap();
    let old = payload(10_000, 5);
    s.save(Seq(10), Term(1), &old).unwrap();
    let prefix: Vec<String> = prefix
        .iter()
        .map(|a| {
            a.replace(
                "{tmp}",
                &tmp_path(dir.path(), Seq(20)).display().to_string(),
            )
        })
        .collect();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(&prefix[0])
        .args(&prefix[1..])
        .arg(&exe)
        .args([
            "--exact",
            "snapshots::tests::failing_save_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .env(CHILD_EXPECT_ENV, expect)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("child: save failed as expected"), "{text}");
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![snapshot_name(Seq(10))],
        "no .tmp left, old kept"
    );
    let l = SnapshotStore::open(dir.path())
        .unwrap()
        .load_latest()
        .unwrap()
        .unwrap();
    assert_eq!((l.meta.seq, l.bytes), (Seq(10), old));
}

#[test]
fn a_save_that_fails_mid_write_keeps_the_old_snapshot() {
    // A 32 KiB file-size limit (SIGXFSZ ignored): the 1 MiB save fails in
    // the middle of write(2) with EFBIG, a real error from the kernel.
    let sh = "trap '' XFSZ; ulimit -f 64 && exec \"$0\" \"$@\"";
    failing_save_in_child(&["sh".into(), "-c".into(), sh.into()], "write:27");
}

/// strace, or None (a skip, said so) where it is missing, except in CI.
fn strace() -> Option<&'static str> {
    let ok = std::process::Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is missing in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: strace is not installed (apt-get install -y strace)");
    }
    ok.then_some("strace")
}

/// `strace` tampering (`inject`) with the `trace` syscalls on the `.tmp`.
fn strace_on_tmp(trace: &str, inject: &str) -> Vec<String> {
    let args = [
        "-f",
        "-qq",
        "-e",
        trace,
        "-e",
        inject,
        "-P",
        "{tmp}",
        "-o",
        "/dev/null",
        "--",
    ];
    std::iter::once("strace")
        .chain(args)
        .map(str::to_string)
        .collect()
}

#[test]
fn a_full_disk_during_a_save_keeps_the_old_snapshot() {
    if strace().is_none() {
        return;
    }
    let prefix = strace_on_tmp("trace=write", "inject=write:error=ENOSPC:when=2");
    failing_save_in_child(&prefix, "write:28");
}

#[test]
fn a_failing_fsync_of_a_save_keeps_the_old_snapshot() {
    if strace().is_none() {
        return;
    }
    let prefix = strace_on_tmp("trace=fsync", "inject=fsync:error=EIO");
    failing_save_in_child(&prefix, "fsync:5");
}

/// Run only by the tests above, in a child process that fails its save.
#[test]
#[ignore = "run by failing_save_in_child"]
fn failing_save_child() {
    let (Some(dir), Some(expect)) = (
        std::env::var_os(CHILD_DIR_ENV),
        std::env::var(CHILD_EXPECT_ENV).ok(),
    ) else {
        return; // run directly with --ignored: nothing to do
    };
    let (want_op, want_errno) = expect.split_once(':').expect("op:errno");
    let dir = PathBuf::from(dir);
    let mut s = SnapshotStore::open(&dir).unwrap();
    let err = s.save(Seq(20), Term(2), &payload(1 << 20, 6)).unwrap_err();
    let SnapshotError::Io { op, err: e, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*op, want_op, "{err}");
    assert_eq!(
        e.raw_os_error().map(|n| n.to_string()).as_deref(),
        Some(want_errno),
        "{err}"
    );
    assert!(!tmp_path(&dir, Seq(20)).exists(), "the .tmp is removed");
    assert_eq!(s.latest().unwrap().seq, Seq(10));
    println!("child: save failed as expected: {err}");
}

/// Save time and fsync cost by payload size, on the disk of the worktree
/// (`CHORUS_BENCH_DIR` to choose another):
/// `cargo test --release -p chorus-runtime-mio snapshots::tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "a measurement; prints figures"]
fn timing_of_saves_and_loads() {
    let base =
        std::env::var_os("CHORUS_BENCH_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let mut s = SnapshotStore::open_with_max(dir.path(), 200 << 20).unwrap();
    for (k, mb) in [1usize, 30, 100].into_iter().enumerate() {
        let bytes = payload(mb << 20, k as u8);
        let mut runs = Vec::new();
        for r in 0..3u64 {
            let seq = Seq(1 + 10 * k as u64 + r);
            let t = Instant::now();
            let saved = s.save(seq, Term(1), &bytes).unwrap();
            runs.push((t.elapsed(), saved.write, saved.fsync));
        }
        let t = Instant::now();
        let l = s.load_latest().unwrap().unwrap();
        let load = t.elapsed();
        assert_eq!(l.bytes.len(), bytes.len());
        for (total, write, fsync) in runs {
            println!(
                "snapshot {mb:>3} MiB: save {:>7.1} ms (crc+write {:>7.1} ms, fsync file+dir {:>7.1} ms)",
                total.as_secs_f64() * 1e3,
                write.as_secs_f64() * 1e3,
                fsync.as_secs_f64() * 1e3
            );
        }
        println!(
            "snapshot {mb:>3} MiB: load_latest (read + verify) {:>7.1} ms",
            load.as_secs_f64() * 1e3
        );
    }
}
