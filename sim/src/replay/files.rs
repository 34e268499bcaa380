//! Reading a node's recording directory (`chorus node --record DIR`): its
//! incarnations in order, each with its base log copy and its segments, and
//! the steps of a segment, cutting a torn tail.
//!
//! Verdicts: a torn frame at the end of an incarnation's last segment is the
//! expected end of a run killed or powered off mid-write (cut, noted); a torn
//! frame anywhere else, a missing segment or a bad header stops the
//! incarnation there and is reported as such (what was read still replays).

use chorus_core::recording::{self, decode_frame, decode_header, decode_step, Frame, Header, Step};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One incarnation's files.
#[derive(Clone, Debug)]
pub struct RunFiles {
    pub incarnation: u64,
    pub base: Option<PathBuf>,
    /// By segment number (gaps are reported when read).
    pub segments: Vec<(u32, PathBuf)>,
}

/// Every incarnation recorded in `dir`, oldest first.
pub fn runs(dir: &Path) -> io::Result<Vec<RunFiles>> {
    let mut found: Vec<(u64, Option<u32>, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if let Some((inc, seg)) = e.file_name().to_str().and_then(recording::parse_name) {
            found.push((inc, seg, e.path()));
        }
    }
    found.sort();
    let mut out: Vec<RunFiles> = Vec::new();
    for (inc, seg, path) in found {
        if out.last().is_none_or(|r| r.incarnation != inc) {
            out.push(RunFiles {
                incarnation: inc,
                base: None,
                segments: Vec::new(),
            });
        }
        let r = out.last_mut().expect("just pushed");
        match seg {
            None => r.base = Some(path),
            Some(s) => r.segments.push((s, path)),
        }
    }
    Ok(out)
}

/// One segment: its header and its readable steps.
#[derive(Debug)]
pub struct Segment {
    pub header: Header,
    pub steps: Vec<Step>,
    /// Bytes after the last whole frame (a torn tail), if any.
    pub torn_bytes: usize,
    /// A frame that checks out but does not decode (a bug or another version).
    pub bad: Option<String>,
}

/// Reads one segment file; `Ok(None)` if it holds less than its magic and
/// header (the process died before its first write reached the file).
pub fn read_segment(path: &Path) -> Result<Option<Segment>, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if recording::MAGIC.starts_with(&bytes[..bytes.len().min(recording::MAGIC.len())])
        && matches!(
            decode_frame(bytes.get(recording::MAGIC.len()..).unwrap_or_default()),
            Frame::Torn | Frame::End
        )
    {
        return Ok(None);
    }
    let body = bytes
        .strip_prefix(recording::MAGIC.as_slice())
        .ok_or_else(|| format!("{}: not a chorus recording (bad magic)", path.display()))?;
    let (header, mut at) = match decode_frame(body) {
        Frame::Whole { payload, used } => (
            decode_header(payload).map_err(|e| format!("{}: {e}", path.display()))?,
            used,
        ),
        _ => unreachable!("a torn or missing header returned above"),
    };
    let mut steps = Vec::new();
    let mut bad = None;
    while let Frame::Whole { payload, used } = decode_frame(&body[at..]) {
        match decode_step(payload) {
            Ok(s) => {
                steps.push(s);
                at += used;
            }
            Err(e) => {
                bad = Some(format!("{} at byte {}: {e}", path.display(), at + 8));
                break;
            }
        }
    }
    Ok(Some(Segment {
        header,
        steps,
        torn_bytes: body.len() - at,
        bad,
    }))
}
