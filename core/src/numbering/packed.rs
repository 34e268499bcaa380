//! A compact, append-only sequence of `W`-tuples of u64, strictly increasing
//! in every column: what the numbering keeps per room (W = 1: the log index
//! of each chat) and per run of chats (W = 2: first seq_no, its log index).
//!
//! Layout: positions are cut into blocks of `B` (a parameter: the room
//! indexes use 64, the runs 16). Each block has a head holding its first
//! tuple absolutely and the byte offset of the rest, in one byte vector:
//! - the last block, still open to pushes: the other tuples as LEB128
//!   varints of their difference from the previous one, columns
//!   interleaved;
//! - every full block before it, sealed when the next one starts (O(B) once
//!   per B pushes): a width byte `w`, then each difference in `w` bits, `w`
//!   the widest of the block's. A width of 0 marks the varints kept (a
//!   difference of 2^56 or more, which no log reaches).
//!
//! So a room's chats cost the bits of its widest gap per block: a room
//! that gets every other entry, 2 bits; one chat every 1,000 entries, 10
//! bits; plus a 16-byte head per 64 chats and capacity slack. The worst case
//! is bounded by the history itself: a room's gaps sum to at most the
//! highest log index, so wide gaps are few.
//!
//! Lookups: by position, straight to the block (`pos / B`); by value, a
//! binary search over the heads; then one block decoded: O(log n + B). The
//! newest element is kept decoded (`last`) and a value at or past the last
//! head skips the search, so the live paths (a stream at the end of a
//! room, the chat just delivered) are O(1) or one short block. `push` is
//! O(1) amortized; vectors grow by an eighth, so capacity stays within
//! 12.5 % of use.
//!
//! Forgetting (`forget_below`): positions below `skipped` are no longer
//! answered; every whole block below the one holding `skipped` is freed.
//! The numbering of later elements does not move: positions are absolute.
//!
//! Invariants (checked by `decode` on untrusted bytes, relied on by every
//! lookup): `heads` holds exactly the blocks from `skipped / B` up to the
//! one holding position `len - 1`; each head's `at` is where its block's
//! bytes start, every block but the last is sealed, the blocks' bytes are
//! contiguous and end at `deltas.len()`; every difference is at least 1,
//! a sealed block's padding bits are 0; `last` is the tuple at
//! `len - 1` (all zeros when empty).

use crate::codec::{Reader, Writer};

/// Widest bit-packed difference: wider ones stay varints (`seal_last`),
/// so an unpacked difference always fits the reader's 64-bit window.
const MAX_WIDTH: u32 = 56;

/// Most differences in one block (`(B - 1) * W`), sealed on the stack.
const SEAL_MAX: usize = 128;

/// Most bytes of one LEB128 u64.
const VARINT_MAX: usize = 10;

/// Where `locate` found the last element at or below a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Found<const W: usize> {
    /// Its position (it may be below `skipped`: the caller decides).
    pub pos: u64,
    pub value: [u64; W],
    /// The element after it, if any.
    pub next: Option<[u64; W]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head<const W: usize> {
    /// The block's first tuple.
    first: [u64; W],
    /// Offset in `deltas` of the block's second tuple.
    at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Packed<const W: usize, const B: u64> {
    heads: Vec<Head<W>>,
    deltas: Vec<u8>,
    /// The tuple at `len - 1`.
    last: [u64; W],
    /// Elements ever pushed (forgotten ones included).
    len: u64,
    /// First position still answered.
    skipped: u64,
}

impl<const W: usize, const B: u64> Default for Packed<W, B> {
    fn default() -> Self {
        Packed {
            heads: Vec::new(),
            deltas: Vec::new(),
            last: [0; W],
            len: 0,
            skipped: 0,
        }
    }
}

impl<const W: usize, const B: u64> Packed<W, B> {
    const FITS: () = assert!(
        (B as usize - 1) * W <= SEAL_MAX,
        "a block fits the seal buffer"
    );

    /// Elements ever pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The first position still answered (`forget_below`).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn last(&self) -> Option<[u64; W]> {
        (self.len > 0).then_some(self.last)
    }

    /// Appends `v`, greater than the last element in every column.
    pub fn push(&mut self, v: [u64; W]) {
        let above = |(x, l): (&u64, &u64)| x > l;
        assert!(
            self.len == 0 || v.iter().zip(&self.last).all(above),
            "a packed column is strictly increasing"
        );
        let () = Self::FITS;
        if self.len.is_multiple_of(B) {
            if !self.heads.is_empty() {
                self.seal_last();
            }
            reserve(&mut self.heads, 1, 4);
            self.heads.push(Head {
                first: v,
                at: self.deltas.len() as u64,
            });
        } else {
            reserve(&mut self.deltas, W * VARINT_MAX, 64);
            for (x, l) in v.iter().zip(&self.last) {
                put_varint(&mut self.deltas, x - l);
            }
        }
        self.last = v;
        self.len += 1;
    }

    /// The element at `pos`, unless forgotten or not pushed yet.
    pub fn get(&self, pos: u64) -> Option<[u64; W]> {
        if pos < self.skipped || pos >= self.len {
            return None;
        }
        if pos == self.len - 1 {
            return Some(self.last);
        }
        let b = self.block_of(pos);
        let mut v = self.heads[b].first;
        let mut g = self.gaps(b);
        for _ in 0..pos % B {
            v.iter_mut().for_each(|x| *x += g.next());
        }
        Some(v)
    }

    /// The last element whose column `col` is at most `x`, among those
    /// still stored (None if every stored one is above `x`).
    pub fn locate(&self, col: usize, x: u64) -> Option<Found<W>> {
        if self.len == 0 {
            return None;
        }
        if x >= self.last[col] {
            let (pos, value) = (self.len - 1, self.last);
            return Some(Found {
                pos,
                value,
                next: None,
            });
        }
        // Recent values (a delivery, a live stream) sit in the last block:
        // no binary search for them.
        let k = match self.heads.last() {
            Some(h) if h.first[col] <= x => self.heads.len(),
            _ => self.heads.partition_point(|h| h.first[col] <= x),
        };
        let h = self.heads.get(k.checked_sub(1)?)?;
        let start = (self.skipped / B + k as u64 - 1) * B;
        let count = (self.len - start).min(B);
        let mut v = h.first;
        // Element j + 1 of the block is n, element j (at start + j) is v.
        let step = |j: u64, n: [u64; W], v: &mut [u64; W]| {
            if n[col] > x {
                return Some(Found {
                    pos: start + j,
                    value: *v,
                    next: Some(n),
                });
            }
            *v = n;
            None
        };
        let mut g = self.gaps(k - 1);
        for j in 0..count - 1 {
            let mut n = v;
            n.iter_mut().for_each(|c| *c += g.next());
            if let Some(f) = step(j, n, &mut v) {
                return Some(f);
            }
        }
        Some(Found {
            pos: start + count - 1,
            value: v,
            next: self.heads.get(k).map(|h| h.first),
        })
    }

    /// How many elements have column `col` below `x`, counting forgotten
    /// ones as below: never less than `skipped`.
    pub fn count_below(&self, col: usize, x: u64) -> u64 {
        let below = x
            .checked_sub(1)
            .and_then(|x| self.locate(col, x))
            .map_or(0, |f| f.pos + 1);
        below.max(self.skipped)
    }

    /// Positions below `pos` are no longer answered; the blocks wholly below
    /// the one holding `pos` are freed.
    pub fn forget_below(&mut self, pos: u64) {
        let pos = pos.min(self.len);
        if pos <= self.skipped {
            return;
        }
        let drop = (pos / B - self.skipped / B) as usize;
        if drop > 0 {
            let cut = self
                .heads
                .get(drop)
                .map_or(self.deltas.len(), |h| h.at as usize);
            self.heads.drain(..drop);
            self.deltas.drain(..cut);
            for h in &mut self.heads {
                h.at -= cut as u64;
            }
            let (nh, nd) = (self.heads.len(), self.deltas.len());
            self.heads.shrink_to(nh + nh / 8);
            self.deltas.shrink_to(nd + nd / 8);
        }
        self.skipped = pos;
    }

    /// Heap bytes held (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.heads.capacity() * std::mem::size_of::<Head<W>>() + self.deltas.capacity()
    }

    /// The differences of block `b` (an index in `heads`), in order.
    fn gaps(&self, b: usize) -> Gaps<'_> {
        let at = self.heads[b].at as usize;
        if b + 1 == self.heads.len() {
            return Gaps::new(&self.deltas, at, 0); // the open block
        }
        Gaps::new(&self.deltas, at + 1, u32::from(self.deltas[at]))
    }

    /// Re-encodes the last block, full, as `width` bits per difference
    /// (the widest of its differences): it takes no more pushes. O(B), once
    /// per B pushes.
    fn seal_last(&mut self) {
        let at = self.heads[self.heads.len() - 1].at as usize;
        let mut g = Gaps::new(&self.deltas, at, 0);
        let mut buf = [0u64; SEAL_MAX];
        let gaps = &mut buf[..(B as usize - 1) * W];
        gaps.iter_mut().for_each(|d| *d = g.next());
        let width = 64 - gaps.iter().fold(0, |m, &d| m | d).leading_zeros();
        if width > MAX_WIDTH {
            // A difference of 2^56 or more: keep the varints (never seen).
            self.deltas.insert(at, 0);
            return;
        }
        self.deltas.truncate(at);
        self.deltas.push(width as u8);
        let (mut acc, mut bits) = (0u64, 0u32);
        for &mut d in gaps {
            acc |= d << bits;
            bits += width;
            while bits >= 8 {
                self.deltas.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        if bits > 0 {
            self.deltas.push(acc as u8);
        }
    }

    /// Index in `heads` of the block holding `pos` (not forgotten).
    fn block_of(&self, pos: u64) -> usize {
        (pos / B - self.skipped / B) as usize
    }

    /// Appends the binary form: len, skipped, last, the heads, the varints
    /// (little-endian u64s; the varints as they are, one memcpy).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(8 * (3 + W) + self.heads.len() * 8 * (W + 1) + 8 + self.deltas.len());
        let mut w = Writer(out);
        w.u64(self.len);
        w.u64(self.skipped);
        self.last.iter().for_each(|&x| w.u64(x));
        w.u64(self.heads.len() as u64);
        for h in &self.heads {
            h.first.iter().for_each(|&x| w.u64(x));
            w.u64(h.at);
        }
        w.u64(self.deltas.len() as u64);
        w.0.extend_from_slice(&self.deltas);
    }

    /// Reads what `encode` wrote, checking every invariant (the bytes may be
    /// corrupt) and every length against the bytes left before allocating.
    pub fn decode(bytes: &mut &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        let len = r.u64()?;
        let skipped = r.u64()?;
        if skipped > len {
            return Err(format!("first position {skipped} past the count {len}"));
        }
        let mut last = [0; W];
        for x in &mut last {
            *x = r.u64()?;
        }
        let blocks = len.div_ceil(B) - skipped / B;
        let n = r.count(8 * (W + 1))?;
        if n as u64 != blocks {
            return Err(format!(
                "{n} blocks for elements {skipped}..{len}: want {blocks}"
            ));
        }
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            let mut first = [0; W];
            for x in &mut first {
                *x = r.u64()?;
            }
            heads.push(Head {
                first,
                at: r.u64()?,
            });
        }
        let d = r.count(1)?;
        let deltas = r.take(d)?;
        let p = Packed {
            heads,
            deltas: deltas.to_vec(),
            last,
            len,
            skipped,
        };
        p.check()?;
        Ok(p)
    }

    /// Decodes every block with bounds and overflow checks: after this, no
    /// lookup can index out of range or overflow.
    fn check(&self) -> Result<(), String> {
        if self.len == 0 && self.last != [0; W] {
            return Err("an empty sequence with a last element".into());
        }
        let mut at = 0usize;
        let mut prev: Option<[u64; W]> = None;
        for (b, h) in self.heads.iter().enumerate() {
            if h.at != at as u64 {
                return Err(format!("block {b} starts at byte {}, want {at}", h.at));
            }
            let start = (self.skipped / B + b as u64) * B;
            let count = (self.len - start).min(B);
            let mut v = h.first;
            if let Some(p) = prev {
                increasing(&p, &v)?;
            }
            if b + 1 == self.heads.len() {
                // The open block: varints. Differences are at least 1
                // (`checked_varint`), so each element is above the last.
                for _ in 1..count {
                    for x in &mut v {
                        let d = checked_varint(&self.deltas, &mut at)?;
                        *x = x.checked_add(d).ok_or("an element overflows u64")?;
                    }
                }
            } else {
                self.check_sealed(b, &mut at, &mut v)?;
            }
            prev = Some(v);
        }
        if at != self.deltas.len() {
            return Err(format!(
                "{} varint bytes, the blocks use {at}",
                self.deltas.len()
            ));
        }
        match prev {
            Some(p) if p != self.last => Err("the last element differs from the last block".into()),
            _ => Ok(()),
        }
    }
}

impl<const W: usize, const B: u64> Packed<W, B> {
    /// Checks sealed block `b` at byte `at` (its mode byte), adding its
    /// differences to `v`, its first element; `at` ends past the block.
    fn check_sealed(&self, b: usize, at: &mut usize, v: &mut [u64; W]) -> Result<(), String> {
        let width = u32::from(
            *self
                .deltas
                .get(*at)
                .ok_or("a block past the varint bytes")?,
        );
        *at += 1;
        let n = (B as usize - 1) * W;
        if width == 0 {
            for k in 0..n {
                let d = checked_varint(&self.deltas, at)?;
                v[k % W] = v[k % W].checked_add(d).ok_or("an element overflows u64")?;
            }
            return Ok(());
        }
        if width > MAX_WIDTH {
            return Err(format!("block {b}: {width}-bit differences"));
        }
        let len = (n * width as usize).div_ceil(8);
        let bytes = self
            .deltas
            .get(*at..*at + len)
            .ok_or("a sealed block runs past its bytes")?;
        let mut g = Gaps::new(bytes, 0, width);
        for k in 0..n {
            let d = g.next();
            if d == 0 {
                return Err("a zero difference in an increasing sequence".into());
            }
            v[k % W] = v[k % W].checked_add(d).ok_or("an element overflows u64")?;
        }
        if g.acc != 0 {
            return Err(format!("block {b}: padding bits set"));
        }
        *at += len;
        Ok(())
    }
}

/// Reads the differences of one block, `W` per element: LEB128 varints
/// (`width` 0: the open block, or a sealed one too wide for bits), or
/// `width` bits each, least significant first.
struct Gaps<'a> {
    bytes: &'a [u8],
    at: usize,
    width: u32,
    acc: u64,
    bits: u32,
}

impl<'a> Gaps<'a> {
    fn new(bytes: &'a [u8], at: usize, width: u32) -> Self {
        Gaps {
            bytes,
            at,
            width,
            acc: 0,
            bits: 0,
        }
    }

    /// The next difference (of bytes `Packed::check` accepted).
    #[inline]
    fn next(&mut self) -> u64 {
        if self.width == 0 {
            return varint(self.bytes, &mut self.at);
        }
        while self.bits < self.width {
            self.acc |= u64::from(self.bytes[self.at]) << self.bits;
            self.at += 1;
            self.bits += 8;
        }
        let d = self.acc & ((1 << self.width) - 1);
        self.acc >>= self.width;
        self.bits -= self.width;
        d
    }
}

/// Room for `n` more elements, growing by an eighth (at least `min`) rather
/// than doubling: capacity stays within 12.5% of use at any size, and the
/// copies stay amortized O(1) per push.
fn reserve<T>(v: &mut Vec<T>, n: usize, min: usize) {
    if v.capacity() - v.len() < n {
        v.reserve_exact(n + (v.len() / 8).max(min));
    }
}

fn increasing<const W: usize>(a: &[u64; W], b: &[u64; W]) -> Result<(), String> {
    if a.iter().zip(b).all(|(x, y)| x < y) {
        Ok(())
    } else {
        Err(format!("elements not increasing: {a:?} then {b:?}"))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint of bytes already checked (`Packed::check`).
#[inline]
fn varint(b: &[u8], at: &mut usize) -> u64 {
    let x = b[*at];
    *at += 1;
    if x < 0x80 {
        return u64::from(x);
    }
    let mut v = u64::from(x & 0x7f);
    let mut shift = 7;
    loop {
        let x = b[*at];
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// A varint of untrusted bytes: in bounds, at most 10 bytes, no bits past
/// 64, no redundant trailing zero byte (one encoding per value), at least 1.
fn checked_varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    if let Some(&x @ 1..0x80) = b.get(*at) {
        *at += 1;
        return Ok(u64::from(x));
    }
    let mut v = 0u64;
    for k in 0..VARINT_MAX {
        let x = *b.get(*at).ok_or("a varint runs past its bytes")?;
        *at += 1;
        let bits = u64::from(x & 0x7f);
        if k == VARINT_MAX - 1 && x > 1 {
            return Err("a varint overflows u64".into());
        }
        v |= bits << (7 * k);
        if x < 0x80 {
            if k > 0 && x == 0 {
                return Err("a varint with a redundant zero byte".into());
            }
            if v == 0 {
                return Err("a zero difference in an increasing sequence".into());
            }
            return Ok(v);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_bad_forms() {
        for v in [1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let (mut at, mut at2) = (0, 0);
            assert_eq!(varint(&b, &mut at), v);
            assert_eq!(checked_varint(&b, &mut at2), Ok(v));
            assert_eq!((at, at2), (b.len(), b.len()));
        }
        let bad: [&[u8]; 5] = [
            &[],
            &[0x80],
            &[0],
            &[0x81, 0],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2],
        ];
        for b in bad {
            assert!(checked_varint(b, &mut 0).is_err(), "{b:?}");
        }
    }

    /// Differences too wide to bit-pack (2^56 and up) keep their varints
    /// in a sealed block; narrow ones next to them are packed.
    #[test]
    fn wide_and_narrow_blocks_answer_alike() {
        let mut p = Packed::<2, 16>::default();
        let mut want = Vec::new();
        let mut v = [0u64, 0];
        for k in 0..130u64 {
            let wide = (16..32).contains(&k) || k == 70;
            v[0] += if wide { (1 << 56) + k } else { 1 + k % 3 };
            v[1] += 1 + k % 200;
            p.push(v);
            want.push(v);
        }
        assert_eq!(
            p.deltas[p.heads[1].at as usize], 0,
            "block 1 stayed varints"
        );
        let widest = "block 0: 5 bits, for the widest difference of both columns (16)";
        assert_eq!(p.deltas[p.heads[0].at as usize], 5, "{widest}");
        for (k, w) in want.iter().enumerate() {
            assert_eq!(p.get(k as u64), Some(*w));
            let f = p.locate(0, w[0]).expect("stored");
            assert_eq!(
                (f.pos, f.value, f.next),
                (k as u64, *w, want.get(k + 1).copied())
            );
            assert_eq!(p.locate(1, w[1]).expect("stored").pos, k as u64);
            assert_eq!(p.count_below(0, w[0]), k as u64);
        }
        let mut b = Vec::new();
        p.encode(&mut b);
        assert_eq!(Packed::<2, 16>::decode(&mut &b[..]), Ok(p));
    }

    #[test]
    fn positions_survive_forgetting_and_pushes_continue() {
        let mut p = Packed::<1, 64>::default();
        let mut v = 0;
        for k in 0..1000u64 {
            v += 1 + k * k % 7 * 100; // gaps of 1 to 601: one or two bytes
            p.push([v]);
        }
        let all: Vec<u64> = (0..1000).map(|k| p.get(k).unwrap()[0]).collect();
        p.forget_below(130);
        assert_eq!(p.skipped(), 130);
        assert_eq!(p.get(129), None);
        assert_eq!(p.get(130), Some([all[130]]));
        assert_eq!(p.count_below(0, all[5]), 130);
        assert_eq!(p.count_below(0, all[500]), 500);
        assert_eq!(p.heads.len(), 1000usize.div_ceil(64) - 2);
        p.push([all[999] + 1]);
        assert_eq!(p.get(1000), Some([all[999] + 1]));
        let mut b = Vec::new();
        p.encode(&mut b);
        assert_eq!(Packed::<1, 64>::decode(&mut &b[..]), Ok(p));
    }
}
