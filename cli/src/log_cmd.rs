//! `chorus log inspect DIR [--all]` prints a node's log as JSON lines (one per
//! entry, in seq order; a summary goes to stderr). It reads without locking or
//! writing, so it works on a running or stopped node; a torn tail is reported
//! and left alone. Both read the log across its segment files, in order.
//! `chorus log repair DIR` cuts a corrupt log at its first bad record after
//! copying the damaged segment aside (the node must be stopped).
//!
//! A log_dir whose first segments were deleted by retention (their entries
//! are in a snapshot) is read from its first segment left: the entries then
//! start above log index 1 and take no `seq_no`/`room_seq` (numbering them
//! needs the snapshot's counts). Both commands also list the snapshot files
//! of the log_dir (seq, term, size, and whether they verify).
//!
//! "Committed" means committed as far as this log knows: the commit point is
//! a hint recorded after the fact, so the newest entries of a running
//! follower may show as uncommitted for a heartbeat or two.

use chorus_core::{Body, Entry, Numbering, Numbers, Seq};
use chorus_runtime_mio::storage;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect or repair a node's durable log.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: LogCmd,
}

#[derive(Debug, clap::Subcommand)]
enum LogCmd {
    /// Print the committed chat messages and room events as JSON lines
    /// (seq_no, room_seq, index, term, msg_id, room_id, sender, payload,
    /// ts_ms; `event` for a room event, which takes no seq_no).
    Inspect {
        /// The node's log_dir (or one of its segment files, or a single log
        /// file such as a repair backup).
        dir: PathBuf,
        /// Every entry: also leader no-ops and uncommitted entries, each with
        /// "kind" and "committed" fields.
        #[arg(long)]
        all: bool,
    },
    /// Write a log of ENTRIES committed chats offline, in the real format
    /// and segments (for measuring restart time and memory on long
    /// histories); DIR must hold no log yet.
    Generate {
        /// The log_dir to create.
        dir: PathBuf,
        /// Number of chats.
        #[arg(long)]
        entries: u64,
        /// Payload bytes per chat.
        #[arg(long, default_value_t = 100)]
        payload_bytes: usize,
        /// Chats are spread over this many rooms.
        #[arg(long, default_value_t = 1000)]
        rooms: u64,
    },
    /// Cut a corrupt log at its first damaged record, keeping a full backup
    /// of the damaged segment next to it (SEGMENT.corrupt-at-OFFSET) and
    /// moving any later segment aside (SEGMENT.after-corrupt). Stop the
    /// node first.
    Repair {
        /// The node's log_dir.
        dir: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        LogCmd::Inspect { dir, all } => inspect(dir, all),
        LogCmd::Repair { dir } => repair(dir),
        LogCmd::Generate {
            dir,
            entries,
            payload_bytes,
            rooms,
        } => generate(dir, entries, payload_bytes, rooms),
    }
}

/// Writes `entries` chats in term 1, committed, through the node's own
/// writer (`DurableLog`: same records, same segments), fsynced at the end.
fn generate(
    dir: PathBuf,
    entries: u64,
    payload_bytes: usize,
    rooms: u64,
) -> anyhow::Result<ExitCode> {
    use chorus_core::{Chat, NodeId, Record, Term};
    let mut o = storage::DurableLog::open(&dir)?;
    anyhow::ensure!(
        o.log.len_bytes() == 0,
        "{} already holds a log; generate into an empty directory",
        dir.display()
    );
    o.log.append(&Record::Term {
        term: Term(1),
        voted_for: Some(NodeId(1)),
    });
    let payload = "x".repeat(payload_bytes);
    let started = std::time::Instant::now();
    for k in 1..=entries {
        o.log.append(&Record::Entry(Entry {
            seq_no: Seq(k),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: format!("gen-{k:012}"),
                room_id: format!("room{}", k % rooms.max(1)),
                sender_id: 1,
                user: None,
                payload: payload.clone(),
                ts_ms: 1_800_000_000_000 + k,
                event: None,
            }),
        }));
        if k % 1000 == 0 || k == entries {
            o.log.append(&Record::Commit { seq: Seq(k) });
            o.log.write_queued()?;
        }
    }
    o.log.commit()?;
    println!(
        "{}: {entries} chats, {} bytes in {} segments, {:.1} s",
        dir.display(),
        o.log.len_bytes(),
        o.log.segments(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// One printed entry, fields in this order.
#[derive(Debug, Serialize)]
pub struct EntryLine<'a> {
    /// The client-visible chat number (committed chats only; no holes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_no: Option<u64>,
    /// The chat's number within its room (committed chats only; no holes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_seq: Option<u64>,
    /// The internal log index (no-ops and uncommitted entries have one too).
    pub index: u64,
    pub term: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<u64>,
    /// A room event's kind ("join", "leave", "topic", "nick"); its text
    /// (topic, new name) is `payload`. Events take no seq_no.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'static str>,
    /// A no-op's leader (with `--all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// "chat", "event" or "noop" (with `--all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Whether this log knows the entry committed (with `--all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<bool>,
}

/// The line of one entry numbered `numbers` (committed chats), or None if
/// it is not shown.
pub fn entry_line(
    e: &Entry,
    numbers: Option<Numbers>,
    committed: bool,
    all: bool,
) -> Option<EntryLine<'_>> {
    if !all && (!committed || e.chat().is_none()) {
        return None;
    }
    let c = e.chat();
    Some(EntryLine {
        seq_no: numbers.map(|n| n.seq_no),
        room_seq: numbers.map(|n| n.room_seq),
        index: e.seq_no.0,
        term: e.term.0,
        msg_id: c.map(|c| c.msg_id.as_str()),
        room_id: c.map(|c| c.room_id.as_str()),
        sender: c.map(|c| c.sender_id),
        user: c.and_then(|c| c.user.as_deref()),
        payload: c.map(|c| c.payload.as_str()),
        ts_ms: c.map(|c| c.ts_ms),
        event: c.and_then(|c| c.event).map(|ev| ev.name()),
        leader: match e.body {
            Body::Noop { leader } => Some(leader.0),
            Body::Chat(_) => None,
        },
        kind: all.then_some(match c {
            Some(c) if c.event.is_some() => "event",
            Some(_) => "chat",
            None => "noop",
        }),
        committed: all.then_some(committed),
    })
}

fn inspect(dir: PathBuf, all: bool) -> anyhow::Result<ExitCode> {
    let snap = storage::read_only(&dir)?;
    let rec = &snap.replayed.recovered;
    let commit: Seq = rec.commit_seq;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // The same fold the node computes (`chorus_core::numbering`).
    let mut numbering = Numbering::default();
    // Without the history before the first entry left, numbers would be off.
    let numbered = snap.start_seq == Seq(0);
    for e in &rec.entries {
        let committed = e.seq_no <= commit;
        let numbers = if committed && numbered {
            numbering.apply(e)
        } else {
            None
        };
        if let Some(line) = entry_line(e, numbers, committed, all) {
            let text = serde_json::to_string(&line).expect("plain data serializes");
            if writeln!(out, "{text}").is_err() {
                return Ok(ExitCode::SUCCESS); // e.g. piped into `head`
            }
        }
    }
    let _ = out.flush();
    eprintln!(
        "{}: {} segment{}, {} records, {} entries, committed up to log index {} ({} chats in {} rooms), term {}",
        snap.path.display(),
        snap.segments,
        if snap.segments == 1 { "" } else { "s" },
        snap.replayed.records,
        rec.entries.len(),
        commit.0,
        numbering.chats(),
        numbering.room_count(),
        rec.term.0
    );
    if !numbered {
        eprintln!(
            "note: the log starts after log index {} (retention deleted its first segments; a snapshot holds those entries), so seq_no and room_seq are not shown",
            snap.start_seq.0
        );
    }
    print_snapshots(&snap.snapshots);
    let torn = snap.file_len - snap.replayed.valid_len;
    if torn > 0 {
        eprintln!(
            "note: {torn} bytes of torn tail at log offset {} (an interrupted write, or a write in progress); the node cuts it from the last segment when it starts",
            snap.replayed.valid_len
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One stderr line per snapshot file: the tools' view of `snapshots.rs`.
fn print_snapshots(reports: &[chorus_runtime_mio::snapshots::FileReport]) {
    for r in reports {
        let name = r.path.display();
        match &r.verdict {
            Ok((seq, term)) => eprintln!(
                "{name}: snapshot at log index {}, term {}, {} bytes, valid",
                seq.0, term.0, r.file_len
            ),
            Err(why) => eprintln!("{name}: {} bytes, NOT a valid snapshot: {why}", r.file_len),
        }
    }
}

fn repair(dir: PathBuf) -> anyhow::Result<ExitCode> {
    let r = storage::repair(&dir)?;
    match r.backup {
        None => println!(
            "{}: no corruption found; nothing changed{}",
            r.path.display(),
            if r.dropped_bytes > 0 {
                format!(
                    " (a torn tail of {} bytes is cut when the node starts)",
                    r.dropped_bytes
                )
            } else {
                String::new()
            }
        ),
        Some(b) => println!(
            "{}: cut at byte offset {} ({}), dropping {} bytes; the whole file was saved as {}. \
             Start the node: it catches up from the cluster.",
            r.path.display(),
            r.cut_at,
            r.reason.unwrap_or_default(),
            r.dropped_bytes,
            b.display()
        ),
    }
    for m in &r.moved {
        println!(
            "{}: a later segment, moved aside (it followed the damage)",
            m.display()
        );
    }
    print_snapshots(&r.snapshots);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::{Chat, NodeId, Term};

    #[test]
    fn generate_writes_a_committed_log_the_node_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("g");
        generate(dir.clone(), 5000, 10, 7).unwrap();
        let snap = storage::read_only(&dir).unwrap();
        let rec = &snap.replayed.recovered;
        assert_eq!(rec.entries.len(), 5000);
        assert_eq!(rec.commit_seq, Seq(5000));
        assert_eq!(rec.entries[6].chat().unwrap().room_id, "room0");
        assert!(
            generate(dir, 1, 10, 7).is_err(),
            "refuses a directory with a log"
        );
    }

    fn show(e: &Entry, committed: bool, all: bool) -> Option<String> {
        // Numbered as the first chat after a leader's no-op.
        let numbers = (committed && e.chat().is_some()).then_some(Numbers {
            seq_no: 1,
            room_seq: 1,
        });
        entry_line(e, numbers, committed, all).map(|l| serde_json::to_string(&l).unwrap())
    }

    #[test]
    fn lines_have_the_documented_fields_in_order() {
        let e = Entry {
            seq_no: Seq(2),
            term: Term(1),
            body: Body::Chat(Chat {
                msg_id: "m".into(),
                room_id: "general".into(),
                sender_id: 9999,
                user: None,
                payload: "hi".into(),
                ts_ms: 5,
                event: None,
            }),
        };
        assert_eq!(
            show(&e, true, false).unwrap(),
            r#"{"seq_no":1,"room_seq":1,"index":2,"term":1,"msg_id":"m","room_id":"general","sender":9999,"payload":"hi","ts_ms":5}"#
        );
        assert!(show(&e, false, false).is_none(), "uncommitted hidden");
        assert!(show(&e, false, true)
            .unwrap()
            .ends_with(r#""kind":"chat","committed":false}"#));
        let noop = Entry {
            seq_no: Seq(1),
            term: Term(1),
            body: Body::Noop { leader: NodeId(3) },
        };
        assert!(show(&noop, true, false).is_none());
        assert_eq!(
            show(&noop, true, true).unwrap(),
            r#"{"index":1,"term":1,"leader":3,"kind":"noop","committed":true}"#
        );
    }
}
