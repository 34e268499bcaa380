//! The format of a node recording (`chorus node --record DIR`): everything a
//! fresh core needs to redo a real node's run step for step, and a digest of
//! what the real core emitted so a replay finds the first divergence.
//!
//! Pure encoding and decoding over byte slices; the runtime writes the files
//! (`chorus_runtime_mio::recorder`), the simulator reads them back
//! (`chorus_sim::replay`).
//!
//! One node run (one process, an *incarnation*) is:
//! - `run-IIIIII.base`: a byte copy of the node's `chorus.log` as recovery read
//!   it at start (its valid prefix): replaying it with `record::replay_into`
//!   rebuilds exactly the `Recovered` state the real core started from;
//! - `run-IIIIII-SSSS.rec`, segments `S = 0, 1, …`: [`MAGIC`], then frames.
//!   The first frame of every segment is a [`Header`] (JSON: format version,
//!   config, rng seed, the first step of the segment); every other frame is
//!   one [`Step`].
//!
//! Frame: `len: u32 LE | crc: u32 LE (crc32c of payload) | payload[len]`.
//! Nothing is fsynced: a torn or unchecksummable frame ends the readable part
//! of a segment (`decode_frame` says `Torn`), and a replay stops there.
//!
//! Step payload: `now: u64 | chain: u64 | n: u32 | n × u32 action hashes |
//! the input as JSON` (integers LE). The input is serde JSON of `Input`, so
//! an input variant added later is recorded without format work; a change of
//! the step layout bumps [`VERSION`].
//!
//! Digest: every action hashes to 64 bits (its derived `Hash`, every field,
//! through a stable word-at-a-time hasher; no hash-ordered containers are
//! involved); the chain is
//! `chain' = mix(chain, hash)` over the step's actions in order, starting
//! from [`CHAIN_START`] in each incarnation. The low 32 bits of each action's
//! hash are stored too, so a divergence can say which action differs.

use crate::config::Config;
use crate::crc::crc32c;
use crate::io::{Action, Input};
use crate::types::Instant;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// First bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"CHORUSRC";
/// The format version written in every header; readers refuse other versions.
pub const VERSION: u32 = 1;
/// Largest frame payload a reader accepts (a bigger length is a torn frame).
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// The chain value before the first step of an incarnation.
pub const CHAIN_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The file name of incarnation `inc`'s base copy.
pub fn base_name(inc: u64) -> String {
    format!("run-{inc:06}.base")
}

/// The file name of segment `seg` of incarnation `inc`.
pub fn segment_name(inc: u64, seg: u32) -> String {
    format!("run-{inc:06}-{seg:04}.rec")
}

/// `(incarnation, Some(segment))` for a segment file name, `(incarnation,
/// None)` for a base copy, None for anything else.
pub fn parse_name(name: &str) -> Option<(u64, Option<u32>)> {
    let rest = name.strip_prefix("run-")?;
    if let Some(inc) = rest.strip_suffix(".base") {
        return Some((inc.parse().ok()?, None));
    }
    let (inc, seg) = rest.strip_suffix(".rec")?.split_once('-')?;
    Some((inc.parse().ok()?, Some(seg.parse().ok()?)))
}

/// What a segment starts with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    /// Incarnation number (1 for the first run recorded in the directory).
    pub incarnation: u64,
    /// Segment number within the incarnation.
    pub segment: u32,
    /// Index of the first step in this segment (0-based within the incarnation).
    pub first_step: u64,
    /// The jitter seed the runtime gave `Node::from_log`.
    pub rng_seed: u64,
    /// Bytes of `run-IIIIII.base` (the valid log prefix recovered at start).
    pub base_len: u64,
    /// The core config exactly as the runtime built the node with it.
    pub config: Config,
}

/// One recorded step: the input, its time and what it produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub now: Instant,
    pub input: Input,
    /// The chain after this step's actions.
    pub chain: u64,
    /// Low 32 bits of each action's hash, in order.
    pub actions: Vec<u32>,
}

/// A fast, stable 64-bit hasher for `Hash` (word at a time, FxHash-style
/// mixing): every run of one chorus build on a 64-bit little-endian machine
/// hashes an action the same way (std's `DefaultHasher` promises no such
/// stability). Strength is not needed: only a divergence must change it.
struct StableHasher(u64);

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl StableHasher {
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        // Final avalanche so the low 32 bits (stored per action) depend on all.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 59));
    }
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.mix(i as u64);
    }
}

/// The 64-bit hash of one action: every field (derived `Hash`), no
/// formatting, no allocation.
pub fn action_hash(a: &Action) -> u64 {
    let mut h = StableHasher(CHAIN_START);
    a.hash(&mut h);
    h.finish()
}

/// The chain after one more action.
pub fn chain_mix(chain: u64, action_hash: u64) -> u64 {
    // A multiply-xorshift mix: order matters and one changed bit spreads.
    let x = (chain ^ action_hash).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Appends one frame holding `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A header frame's payload.
pub fn header_payload(h: &Header) -> Vec<u8> {
    serde_json::to_vec(h).expect("a config always serializes")
}

/// The payload of a step whose input JSON is `input_json`.
pub fn step_payload(
    now: Instant,
    chain: u64,
    hashes: &[u32],
    input_json: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&now.0.to_le_bytes());
    out.extend_from_slice(&chain.to_le_bytes());
    out.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
    for h in hashes {
        out.extend_from_slice(&h.to_le_bytes());
    }
    out.extend_from_slice(input_json);
}

/// The JSON form of an input, as a step stores it.
pub fn input_json(input: &Input, out: &mut Vec<u8>) {
    serde_json::to_writer(out, input).expect("an input always serializes");
}

/// What the next bytes of a segment hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame: its payload and the bytes it used.
    Whole { payload: &'a [u8], used: usize },
    /// The bytes end inside a frame or it does not check out: a torn tail.
    Torn,
    /// No bytes left.
    End,
}

/// The frame at the start of `bytes`.
pub fn decode_frame(bytes: &[u8]) -> Frame<'_> {
    if bytes.is_empty() {
        return Frame::End;
    }
    if bytes.len() < 8 {
        return Frame::Torn;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len > MAX_FRAME_BYTES || bytes.len() < 8 + len {
        return Frame::Torn;
    }
    let payload = &bytes[8..8 + len];
    if crc32c(payload) != crc {
        return Frame::Torn;
    }
    Frame::Whole {
        payload,
        used: 8 + len,
    }
}

/// Decodes a header payload; refuses another format version.
pub fn decode_header(payload: &[u8]) -> Result<Header, String> {
    let h: Header =
        serde_json::from_slice(payload).map_err(|e| format!("not a recording header: {e}"))?;
    if h.version != VERSION {
        return Err(format!(
            "recording format version {} (this chorus reads version {VERSION})",
            h.version
        ));
    }
    Ok(h)
}

/// Decodes a step payload.
pub fn decode_step(payload: &[u8]) -> Result<Step, String> {
    let u64_at = |i: usize| -> Result<u64, String> {
        payload
            .get(i..i + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| "step too short".to_string())
    };
    let now = Instant(u64_at(0)?);
    let chain = u64_at(8)?;
    let n = payload
        .get(16..20)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("step too short")?;
    let hashes_end = 20usize
        .checked_add(n.checked_mul(4).ok_or("bad action count")?)
        .ok_or("bad action count")?;
    let hb = payload.get(20..hashes_end).ok_or("step too short")?;
    let actions = hb
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let input = serde_json::from_slice(&payload[hashes_end..])
        .map_err(|e| format!("input does not decode: {e}"))?;
    Ok(Step {
        now,
        input,
        chain,
        actions,
    })
}

/// Encodes a whole step (tests and tools that rewrite recordings).
pub fn encode_step(s: &Step, out: &mut Vec<u8>) {
    let mut json = Vec::new();
    input_json(&s.input, &mut json);
    let mut payload = Vec::new();
    step_payload(s.now, s.chain, &s.actions, &json, &mut payload);
    encode_frame(&payload, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NodeId, Seq};

    #[test]
    fn a_step_round_trips_and_a_cut_frame_is_torn() {
        let s = Step {
            now: Instant(812),
            input: Input::Persisted { upto: Seq(7) },
            chain: 0xdead_beef,
            actions: vec![1, 2, 3],
        };
        let mut buf = Vec::new();
        encode_step(&s, &mut buf);
        let Frame::Whole { payload, used } = decode_frame(&buf) else {
            panic!("whole frame expected");
        };
        assert_eq!(used, buf.len());
        assert_eq!(decode_step(payload).unwrap(), s);
        assert_eq!(decode_frame(&buf[..buf.len() - 1]), Frame::Torn);
        let mut bad = buf.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decode_frame(&bad), Frame::Torn);
        assert_eq!(decode_frame(&[]), Frame::End);
    }

    #[test]
    fn the_chain_depends_on_order() {
        let a = action_hash(&Action::PeerKnown(crate::types::PeerInfo {
            node_id: NodeId(1),
            host: "h".into(),
            port: 1,
        }));
        let b = action_hash(&Action::Deliver(crate::entry::Entry {
            seq_no: Seq(1),
            term: crate::types::Term(1),
            body: crate::entry::Body::Noop { leader: NodeId(1) },
        }));
        assert_ne!(
            chain_mix(chain_mix(CHAIN_START, a), b),
            chain_mix(chain_mix(CHAIN_START, b), a)
        );
    }
}
