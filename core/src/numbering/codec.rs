//! The numbering's snapshot form: a deterministic binary encoding of the
//! compact fold, close to a memcpy of it (the varint blocks are copied as
//! they are), so a snapshot at 50M chats costs tens of megabytes written in
//! one pass.
//!
//! Layout (version 1; integers are little-endian u64, names u64-length-
//! prefixed UTF-8):
//! `1, upto, chats, horizon, forgotten_chats, runs, room count,
//! (name, room)*` with rooms in name order, each sequence as
//! `Packed::encode` writes it.
//!
//! `decode` trusts nothing: every length is checked against the bytes left
//! before anything is allocated, every block is decoded and checked
//! (`Packed::check`), and the cross-invariants the lookups rely on are
//! checked here, so a corrupt snapshot is an `Err`, never a panic, a huge
//! allocation or a fold that answers out of range later.

use super::packed::Packed;
use super::Numbering;
use crate::codec::{Reader, Writer};
use crate::types::Seq;
use std::collections::BTreeMap;

/// The first byte of the encoding; bump it when the layout changes.
const VERSION: u8 = 1;

/// Fewest bytes a room takes: its name length and an empty sequence
/// (len, skipped, last, block count, varint byte count).
const ROOM_MIN_BYTES: usize = 8 + 5 * 8;

impl Numbering {
    /// Appends the snapshot form of the fold to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.u8(VERSION);
        w.u64(self.upto.0);
        w.u64(self.chats);
        w.u64(self.horizon.0);
        w.u64(self.forgotten_chats);
        self.runs.encode(w.0);
        w.u64(self.rooms.len() as u64);
        for (name, r) in &self.rooms {
            w.str(name);
            r.encode(w.0);
        }
    }

    /// Reads a fold `encode` wrote from the front of `bytes`, advancing it
    /// past what was read. Err: the bytes are not such a fold (truncated,
    /// another version, or inconsistent).
    pub fn decode(bytes: &mut &[u8]) -> Result<Numbering, String> {
        let (&version, rest) = bytes.split_first().ok_or("numbering: empty")?;
        if version != VERSION {
            return Err(format!(
                "numbering: version {version}, this build reads {VERSION}"
            ));
        }
        *bytes = rest;
        let n = read(bytes).map_err(|e| format!("numbering: {e}"))?;
        n.check().map_err(|e| format!("numbering: {e}"))?;
        Ok(n)
    }

    /// The invariants between the parts that the lookups rely on.
    fn check(&self) -> Result<(), String> {
        // A log index is one per entry ever written: far below 2^63, which
        // leaves room for the `+ 1`s of the lookups. Each chat takes one.
        if self.upto.0 > i64::MAX as u64 || self.chats > self.upto.0 {
            return Err(format!("{} chats up to index {}", self.chats, self.upto.0));
        }
        let total = self
            .rooms
            .values()
            .try_fold(0u64, |t, r| t.checked_add(r.len()))
            .ok_or("room lengths overflow")?;
        if total != self.chats {
            return Err(format!(
                "rooms hold {total} chats, the count is {}",
                self.chats
            ));
        }
        if self.horizon > self.upto.next() || self.forgotten_chats > self.chats {
            return Err("forgotten past the folded prefix".into());
        }
        if let Some([s, i]) = self.runs.last() {
            let end = i.checked_add(self.chats - s.min(self.chats));
            if s > self.chats || end.is_none_or(|e| e > self.upto.0) {
                return Err(format!("last run [{s}, {i}] past the folded prefix"));
            }
        } else if self.chats > 0 {
            return Err("chats without runs".into());
        }
        if self.runs.skipped() != 0 {
            return Err("runs are never forgotten".into());
        }
        let first = self.forgotten_chats + 1;
        if self.chats > 0 && self.runs.locate(0, first).is_none() {
            return Err(format!("seq_no {first} is in no stored run"));
        }
        for (name, r) in &self.rooms {
            if r.last().is_some_and(|[i]| i > self.upto.0) {
                return Err(format!("room {name:?} past the folded prefix"));
            }
        }
        Ok(())
    }
}

fn read(bytes: &mut &[u8]) -> Result<Numbering, String> {
    let mut r = Reader(bytes);
    let upto = Seq(r.u64()?);
    let chats = r.u64()?;
    let horizon = Seq(r.u64()?);
    let forgotten_chats = r.u64()?;
    let runs = Packed::decode(r.0).map_err(|e| format!("runs: {e}"))?;
    let mut rooms = BTreeMap::new();
    let mut prev: Option<String> = None;
    for _ in 0..r.count(ROOM_MIN_BYTES)? {
        let name = r.str()?;
        if prev.as_ref().is_some_and(|p| *p >= name) {
            return Err(format!("room {name:?} out of name order"));
        }
        let seq = Packed::decode(r.0).map_err(|e| format!("room {name:?}: {e}"))?;
        if seq.len() == 0 {
            return Err(format!("room {name:?} without a chat"));
        }
        prev = Some(name.clone());
        rooms.insert(name, seq);
    }
    Ok(Numbering {
        upto,
        chats,
        horizon,
        forgotten_chats,
        runs,
        rooms,
    })
}
