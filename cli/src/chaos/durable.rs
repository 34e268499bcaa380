//! Power-loss emulation. A SIGKILL loses nothing that reached the page
//! cache, so it can never expose an "acknowledged before fsync" bug; a power
//! failure does. Each node therefore runs under `strace -P <its chorus.log>`,
//! which records every write, ftruncate, fsync and fdatasync on its log; when
//! the harness "cuts the power" it kills the node and truncates the log to
//! what the last completed fsync/fdatasync covered, plus a random part of
//! the unsynced rest (as a disk that wrote some pages back on its own).
//!
//! Simplification, stated: the log as it was when an incarnation started is
//! taken as durable (its previous incarnation may have died by SIGKILL with
//! unsynced writes that the OS would write back later).
//!
//! With small segments (a retention run) the log is many files whose names
//! are not known in advance, so strace traces every file (no `-P`) and
//! `durable_lens` follows each segment of the log_dir by the path `-y`
//! prints; only the last segment can hold unsynced bytes (a segment is
//! fsynced whole before the next one starts). Snapshot files are not cut:
//! each is fsynced before its rename. A segment deleted by retention and a
//! name used again can only make the estimate too long (nothing cut), never
//! cut what was synced.

use std::collections::BTreeMap;

/// Tracing arguments for `strace` watching `log` (every file if None) and
/// writing to `out`.
pub fn strace_args(log: Option<&str>, out: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=write,fdatasync,fsync,ftruncate",
        "-e",
        "signal=none",
        "-y",
        "-s",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(log) = log {
        args.extend(["-P".to_string(), log.to_string()]);
    }
    args.extend(["-o".to_string(), out.to_string(), "--".to_string()]);
    args
}

/// The PID and, for a call that names its fd (`write(3</d/x>, …`), the
/// path `-y` printed.
fn pid_and_path(line: &str) -> (&str, Option<&str>) {
    let (pid, rest) = line.split_once(' ').unwrap_or(("", line));
    let path = rest
        .split_once('(')
        .and_then(|(_, a)| a.split_once('<'))
        .and_then(|(fd, p)| fd.bytes().all(|b| b.is_ascii_digit()).then_some(p))
        .and_then(|p| p.split_once('>'))
        .map(|(p, _)| p);
    (pid, path)
}

/// Bytes made durable of each file `is_log` accepts, by a traced
/// incarnation that started with the lengths `start` (files absent from it
/// started empty). Files without a traced call are left out.
pub fn durable_lens(
    trace: &str,
    start: &BTreeMap<String, u64>,
    is_log: impl Fn(&str) -> bool,
) -> BTreeMap<String, u64> {
    // path → (end of what was written, durable length)
    let mut files: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // pid → the path of its call left unfinished
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    for line in trace.lines() {
        let (pid, named) = pid_and_path(line);
        let path = match named {
            Some(p) => {
                if line.contains("<unfinished ...>") {
                    pending.insert(pid.to_string(), p.to_string());
                }
                p.to_string()
            }
            None if line.contains(" resumed>") => match pending.remove(pid) {
                Some(p) => p,
                None => continue,
            },
            None => continue,
        };
        if !is_log(&path) {
            continue;
        }
        let Some((name, ret, args)) = call(line) else {
            continue;
        };
        if ret < 0 {
            continue;
        }
        let len0 = start.get(&path).copied().unwrap_or(0);
        let (pos, durable) = files.entry(path).or_insert((len0, len0));
        match name.trim() {
            "write" => *pos += ret as u64,
            "ftruncate" => {
                let len = args
                    .trim()
                    .trim_end_matches(')')
                    .rsplit(", ")
                    .next()
                    .and_then(|s| s.trim().parse().ok());
                if let Some(len) = len {
                    *pos = len;
                    *durable = (*durable).min(len);
                }
            }
            "fdatasync" | "fsync" => *durable = *pos,
            _ => {}
        }
    }
    files.into_iter().map(|(p, (_, d))| (p, d)).collect()
}

/// The syscall name and return value of one strace line (`<... x resumed>`
/// lines included), or None for an unfinished or failed call.
fn call(line: &str) -> Option<(&str, i64, &str)> {
    let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
    let (name, args) = if let Some(r) = rest.strip_prefix("<... ") {
        let (n, a) = r.split_once(" resumed>")?;
        (n, a)
    } else {
        let (n, a) = rest.split_once('(')?;
        (n, a)
    };
    let (args, ret) = args.rsplit_once(" = ")?;
    let ret: i64 = ret.split_whitespace().next()?.parse().ok()?;
    Some((name, ret, args))
}

/// Bytes of the log made durable by the traced incarnation that started
/// with a file of `start_len` bytes.
pub fn durable_len(trace: &str, start_len: u64) -> u64 {
    let (mut pos, mut durable) = (start_len, start_len);
    for line in trace.lines() {
        let Some((name, ret, args)) = call(line) else {
            continue;
        };
        if ret < 0 {
            continue;
        }
        match name.trim() {
            "write" => pos += ret as u64,
            "ftruncate" => {
                let len = args
                    .trim()
                    .trim_end_matches(')')
                    .rsplit(", ")
                    .next()
                    .and_then(|s| s.trim().parse().ok());
                if let Some(len) = len {
                    pos = len;
                    durable = durable.min(pos);
                }
            }
            "fdatasync" | "fsync" => durable = pos,
            _ => {}
        }
    }
    durable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_is_followed_by_its_path() {
        let t = "\
9 write(3</d/chorus.log>, \"\"..., 30) = 30
9 write(7<socket:[123]>, \"\"..., 99) = 99
9 fdatasync(3</d/chorus.log>)      = 0
9 write(4</d/chorus.log.00000000000000000040>, \"\"..., 5) = 5
10 fdatasync(4</d/chorus.log.00000000000000000040> <unfinished ...>
9 write(4</d/chorus.log.00000000000000000040>, \"\"..., 7) = 7
10 <... fdatasync resumed>)      = 0
9 write(4</d/chorus.log.00000000000000000040>, \"\"..., 3) = 3
";
        let start = BTreeMap::from([("/d/chorus.log".to_string(), 10)]);
        let d = durable_lens(t, &start, |p| p.starts_with("/d/chorus.log"));
        assert_eq!(d.get("/d/chorus.log"), Some(&40));
        // The fsync that began before the second write may or may not cover
        // it: strace saw it end after, so it counts (as a kernel may have).
        assert_eq!(d.get("/d/chorus.log.00000000000000000040"), Some(&12));
        assert_eq!(d.len(), 2, "sockets are not the log");
    }

    #[test]
    fn only_synced_writes_count() {
        let t = "\
26175 write(3</d/chorus.log>, \"\"..., 3) = 3
26175 fdatasync(3</d/chorus.log>)      = 0
26175 write(3</d/chorus.log>, \"\"..., 2) = 2
";
        assert_eq!(durable_len(t, 10), 13);
        let t2 = format!("{t}26175 fdatasync(3</d/chorus.log> <unfinished ...>)\n");
        assert_eq!(
            durable_len(&t2, 10),
            13,
            "an fsync cut short is not durable"
        );
        let t3 = format!("{t}26175 <... fdatasync resumed>)      = 0\n");
        assert_eq!(durable_len(&t3, 10), 15);
    }

    #[test]
    fn a_truncation_moves_the_end() {
        let t = "\
7 ftruncate(3</d/chorus.log>, 100)   = 0
7 fsync(3</d/chorus.log>) = 0
7 write(3</d/chorus.log>, \"\"..., 20) = 20
7 write(3</d/chorus.log>, \"\"..., 5) = -1 ENOSPC (No space left on device)
7 fdatasync(3</d/chorus.log>) = -1 EIO (Input/output error)
";
        assert_eq!(durable_len(t, 150), 100);
    }
}
