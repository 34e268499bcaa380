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

/// Tracing arguments for `strace` watching `log` and writing to `out`.
pub fn strace_args(log: &str, out: &str) -> Vec<String> {
    [
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
        "-P",
        log,
        "-o",
        out,
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
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
