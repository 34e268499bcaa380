//! `--record DIR`: writes every input the core receives, with its time and a
//! digest of the actions it produced, in the format of
//! `chorus_core::recording`, so `chorus sim replay DIR` can redo the run.
//!
//! Hooked in at the one place the runtime steps the core
//! (`Runtime::step_core`). Per incarnation (one process start) it writes
//! `run-IIIIII.base`, a copy of the valid log prefix that recovery read (the
//! starting state; see the format's docs for why a copy and not the
//! `Recovered` state: replay then runs the very recovery code the runtime
//! ran), then `run-IIIIII-SSSS.rec` segments of steps.
//!
//! Bounds: a segment rotates at `segment_bytes`; when the directory would
//! exceed `max_bytes`, the oldest incarnations are deleted whole (a run cannot
//! be replayed without its base and first segments). If the current
//! incarnation alone reaches the bound, recording stops with a warning: the
//! files hold a replayable prefix of the run. No fsync: frames go to the OS at
//! the end of every loop iteration (a SIGKILL loses nothing, a power loss
//! leaves a torn tail that readers cut). A write error stops recording with a
//! warning; the node keeps serving (a recording is a diagnostic, not data).

use chorus_core::recording::{
    self, chain_mix, encode_frame, header_payload, input_json, step_payload, Header,
};
use chorus_core::{Action, Config, Input, Instant};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// Where and how much to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub dir: PathBuf,
    /// Bound on all recording files in `dir` together (default 1 GiB).
    pub max_bytes: u64,
    /// A segment file is closed and the next one started past this size
    /// (default 64 MiB).
    pub segment_bytes: u64,
}

impl RecordOptions {
    pub fn new(dir: PathBuf) -> RecordOptions {
        RecordOptions {
            dir,
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
        }
    }
}

fn base_path(dir: &Path, inc: u64) -> PathBuf {
    dir.join(recording::base_name(inc))
}

fn segment_path(dir: &Path, inc: u64, seg: u32) -> PathBuf {
    dir.join(recording::segment_name(inc, seg))
}

/// One recording file: (incarnation, segment or None for the base, path, bytes).
type FileEntry = (u64, Option<u32>, PathBuf, u64);

/// Recording files in `dir`, sorted.
fn list(dir: &Path) -> io::Result<Vec<FileEntry>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if let Some((inc, seg)) = name.to_str().and_then(recording::parse_name) {
            v.push((inc, seg, e.path(), e.metadata()?.len()));
        }
    }
    v.sort();
    Ok(v)
}

/// Records one incarnation of one node.
#[derive(Debug)]
pub struct Recorder {
    opts: RecordOptions,
    header: Header,
    file: File,
    /// Frames not yet handed to the OS (written at the end of the iteration).
    buf: Vec<u8>,
    seg_written: u64,
    /// Bytes of every recording file in the directory (this run included).
    total: u64,
    chain: u64,
    step: u64,
    /// The JSON of the input being stepped (kept between `before` and `after`).
    input: Vec<u8>,
    hashes: Vec<u32>,
    payload: Vec<u8>,
    stopped: bool,
}

impl Recorder {
    /// Starts a new incarnation in `opts.dir`: copies the first `valid_len`
    /// bytes of the log in `log_dir` (its segments as one stream) as its
    /// base and writes the first segment's header.
    pub fn start(
        opts: RecordOptions,
        config: &Config,
        rng_seed: u64,
        log_dir: &Path,
        valid_len: u64,
    ) -> io::Result<Recorder> {
        fs::create_dir_all(&opts.dir)?;
        let existing = list(&opts.dir)?;
        let inc = existing.last().map_or(1, |f| f.0 + 1);
        let mut total: u64 = existing.iter().map(|f| f.3).sum();
        // Make room for this run's base: drop the oldest runs whole.
        let mut runs: Vec<u64> = existing.iter().map(|f| f.0).collect();
        runs.dedup();
        for old in runs {
            if total + valid_len + opts.segment_bytes <= opts.max_bytes {
                break;
            }
            for f in existing.iter().filter(|f| f.0 == old) {
                fs::remove_file(&f.2)?;
                total -= f.3;
            }
            info!(
                "recording: deleted incarnation {old} (--record bound {} bytes)",
                opts.max_bytes
            );
        }
        let mut src = crate::storage::read_all(log_dir, valid_len)?;
        let mut base = File::create(base_path(&opts.dir, inc))?;
        let copied = io::copy(&mut src, &mut base)?;
        if copied != valid_len {
            return Err(io::Error::other(format!(
                "the log in {} shrank while being copied ({copied} of {valid_len} bytes)",
                log_dir.display()
            )));
        }
        total += copied;
        let header = Header {
            version: recording::VERSION,
            incarnation: inc,
            segment: 0,
            first_step: 0,
            rng_seed,
            base_len: valid_len,
            config: config.clone(),
        };
        let file = File::create(segment_path(&opts.dir, inc, 0))?;
        info!(
            "recording incarnation {inc} into {} (base {valid_len} bytes)",
            opts.dir.display()
        );
        let mut r = Recorder {
            opts,
            header,
            file,
            buf: Vec::with_capacity(64 << 10),
            seg_written: 0,
            total,
            chain: recording::CHAIN_START,
            step: 0,
            input: Vec::new(),
            hashes: Vec::new(),
            payload: Vec::new(),
            stopped: false,
        };
        r.begin_segment();
        // The header on disk at once: a process killed before its first
        // iteration still leaves a recording that says what it was.
        r.flush();
        Ok(r)
    }

    fn begin_segment(&mut self) {
        self.buf.extend_from_slice(recording::MAGIC);
        encode_frame(&header_payload(&self.header), &mut self.buf);
    }

    /// Called just before `Node::step(now, input)`.
    pub fn before(&mut self, input: &Input) {
        if self.stopped {
            return;
        }
        self.input.clear();
        input_json(input, &mut self.input);
    }

    /// Called just after that step, with the actions it pushed.
    pub fn after(&mut self, now: Instant, produced: &[Action]) {
        if self.stopped {
            return;
        }
        self.hashes.clear();
        for a in produced {
            let h = recording::action_hash(a);
            self.chain = chain_mix(self.chain, h);
            self.hashes.push(h as u32);
        }
        self.payload.clear();
        step_payload(
            now,
            self.chain,
            &self.hashes,
            &self.input,
            &mut self.payload,
        );
        encode_frame(&self.payload, &mut self.buf);
        self.step += 1;
    }

    /// Hands the buffered frames to the OS; rotates or stops at the bounds.
    /// Called once per loop iteration.
    pub fn flush(&mut self) {
        if self.stopped || self.buf.is_empty() {
            return;
        }
        let n = self.buf.len() as u64;
        if self.total + n > self.opts.max_bytes {
            warn!(
                "recording stopped at step {} of incarnation {}: {} holds {} bytes (bound {}); the files replay up to here",
                self.step,
                self.header.incarnation,
                self.opts.dir.display(),
                self.total,
                self.opts.max_bytes
            );
            self.stopped = true;
            return;
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            warn!(
                "recording stopped: writing {}: {e}",
                self.opts.dir.display()
            );
            self.stopped = true;
            return;
        }
        self.buf.clear();
        self.seg_written += n;
        self.total += n;
        if self.seg_written >= self.opts.segment_bytes {
            self.rotate();
        }
    }

    fn rotate(&mut self) {
        self.header.segment += 1;
        self.header.first_step = self.step;
        let path = segment_path(&self.opts.dir, self.header.incarnation, self.header.segment);
        match File::create(&path) {
            Ok(f) => {
                self.file = f;
                self.seg_written = 0;
                self.begin_segment();
            }
            Err(e) => {
                warn!("recording stopped: creating {}: {e}", path.display());
                self.stopped = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::{NodeId, PeerInfo, Seq};

    fn config() -> Config {
        let me = PeerInfo {
            node_id: NodeId(1),
            host: "127.0.0.1".into(),
            port: 1,
        };
        Config::new(me, Vec::new())
    }

    /// Feeds `n` steps, each with one action, flushing after every step.
    fn feed(r: &mut Recorder, n: u64) {
        for k in 0..n {
            let input = Input::Persisted { upto: Seq(k) };
            r.before(&input);
            r.after(
                Instant(k),
                &[Action::Note(chorus_core::Record::Commit { seq: Seq(k) })],
            );
            r.flush();
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn segments_rotate_old_runs_go_and_a_run_at_the_bound_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("chorus.log");
        fs::write(&log, vec![7u8; 1000]).unwrap();
        let dir = tmp.path().join("rec");
        let opts = RecordOptions {
            dir: dir.clone(),
            max_bytes: 20_000,
            segment_bytes: 2_000,
        };
        let mut r = Recorder::start(opts.clone(), &config(), 9, tmp.path(), 600).unwrap();
        feed(&mut r, 100);
        let first = names(&dir);
        assert_eq!(
            fs::metadata(dir.join("run-000001.base")).unwrap().len(),
            600
        );
        assert!(
            first.iter().filter(|n| n.ends_with(".rec")).count() >= 3,
            "rotated: {first:?}"
        );
        // Keep feeding: the run alone reaches the bound and stops.
        feed(&mut r, 2000);
        assert!(r.stopped);
        let total: u64 = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= 20_000, "{total} bytes");
        drop(r);
        // The next incarnation deletes the old one whole to make room.
        let mut r2 = Recorder::start(opts, &config(), 10, tmp.path(), 600).unwrap();
        feed(&mut r2, 10);
        let now = names(&dir);
        assert!(now.iter().all(|n| n.starts_with("run-000002")), "{now:?}");
    }
}
