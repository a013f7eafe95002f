//! # Information buffer: the remainders of `x ← (n/d)·x`, stored near the entropy floor
//!
//! Each vector element `i` owns an rANS coder state `s_i ∈ [L, 2^32·L)` with `L = 2^32`;
//! the elements of one [`Segment`] (1024 of them) share one stack of 32-bit words. One
//! multiply by `n/d` (`d = 2^16`) is
//!
//! ```text
//! c  = pop_n(i)            a digit in [0, n), decoded from the state (bits back)
//! y  = x·n + c
//! x' = ⌊y / d⌋             within one quantum of x·n/d
//! push_d(i, y mod d)       a digit in [0, d)
//! ```
//!
//! and its undo is `y = x'·d + pop_d(i)`, `x = ⌊y/n⌋`, `push_n(i, y mod n)`.
//!
//! The digits of radix `d` are coded uniformly (`s ← s·d + r`). The digits of radix `n` are
//! coded with the rANS scale `M = 2^32`: digit `c` gets the slot range
//! `[cum_c, cum_{c+1})` with `cum_c = ⌊c·2^32/n⌋`, so every slot width is `⌊2^32/n⌋` or one
//! more. Because `L` is a multiple of `M` and of `d` whatever `n` is, the renormalisation
//! is exact for **every** n: each multiply may use its own rational, so a γ schedule (a
//! different n per step and per parameter group) reverses bit for bit. A state with a
//! non-power-of-two scale `L = n·2^16`, as in plain mixed-radix coding, would only be
//! exact for one fixed n.
//!
//! ```text
//! pop_n:   slot = s mod 2^32;  c = ⌊((slot+1)·n − 1) / 2^32⌋;
//!          s ← f_c·⌊s/2^32⌋ + slot − cum_c;   if s < L { s ← s·2^32 + read() }
//! push_n:  if s ≥ f_c·2^32 { emit(s mod 2^32); s ← ⌊s/2^32⌋ };
//!          s ← ⌊s/f_c⌋·2^32 + (s mod f_c) + cum_c
//! push_d:  if s ≥ 2^48 { emit(s mod 2^32); s ← ⌊s/2^32⌋ };  s ← s·d + r
//! pop_d:   r = s mod d;  s ← ⌊s/d⌋;  if s < L { s ← s·2^32 + read() }
//! ```
//!
//! A multiply is pop_n then push_d on the same state, and an undo pop_d then push_n, so
//! the code runs them as fused pairs. When pop_n's refill fires (`s < L`), push_d always
//! emits the word just read: the decoded state is at least `f_c ≥ 2^16`, so the refilled
//! one is at least 2^48. The pair therefore skips both (the forward multiply never reads),
//! and push_d emits only when the decoded state is at least 2^48. Likewise in the undo the
//! refill-then-emit of the same word happens exactly when `f_c ≤ ⌊s/d⌋ < L`, so the undo
//! reads a word only when `⌊s/d⌋ < f_c` and never emits. States and stacks are the same as
//! the four operations' after every multiply and undo (a test checks it against them); a
//! state below 2^48 after a multiply no longer costs a word read and written back on
//! every later multiply (with γ = 0.9, about half of them did).
//!
//! The forward multiply walks elements `0, 1, …, N−1` and the undo walks `N−1, …, 0`, so
//! the shared stack stays last-in first-out. Reading from an empty stack yields 0 (the
//! stack sits on an endless floor of zero words; `borrowed` counts them), and emitting 0
//! onto an empty stack with a positive `borrowed` gives one back; both preserve values, so
//! after a full reversal every state is `L` again, the stack is empty and nothing is
//! borrowed.
//!
//! The stack is per [`Segment`] of [`SEGMENT_LEN`] elements ([`InfoBuffer`] holds the
//! segments), so the segments can be worked on by different threads; the LIFO order above
//! holds within each segment.
//!
//! Net cost per multiply: `log₂ d − log₂ n` bits plus the slot-width rounding,
//! `log₂(2^32/n) − log₂ f_c < 2^−15` bits. Memory: 8 bytes of state per element plus 4 bytes
//! per stack word.

use super::bound::BufferBound;
use super::divide::Divisor;
use super::rational::{DEN, DEN_BITS, Rational};

const WORD_BITS: u32 = 32;
const LOWER: u64 = 1 << WORD_BITS;
const SLOT_MASK: u64 = LOWER - 1;
const D_MASK: i64 = (1 << DEN_BITS) - 1;

/// A rational `n/2^16` with the constants its multiplies need, built once per rational
/// (once per step and parameter group for a schedule), so the per-element work has no
/// hardware division.
#[derive(Debug, Clone, Copy)]
pub struct Coder {
    rational: Rational,
    n: u64,
    n_div: Divisor,
    /// ⌊2^32/n⌋ (the narrow slot width).
    q: u64,
    /// 2^32 mod n.
    r32: u64,
    narrow: Divisor,
    wide: Divisor,
}

impl Coder {
    /// The coder for `rational`.
    pub fn new(rational: Rational) -> Self {
        let n = rational.n();
        let q = LOWER / n;
        Coder {
            rational,
            n,
            n_div: Divisor::new(n),
            q,
            r32: LOWER % n,
            narrow: Divisor::new(q),
            wide: Divisor::new(q + 1),
        }
    }

    /// The rational.
    pub fn rational(&self) -> Rational {
        self.rational
    }

    /// `(cum_c, f_c)`: the slot range of digit `c` is `[cum_c, cum_c + f_c)`.
    #[inline(always)]
    fn slot(&self, c: u64) -> (u64, bool) {
        // c·2^32 = c·q·n + c·r32, so ⌊c·2^32/n⌋ = c·q + ⌊c·r32/n⌋, and the next boundary
        // adds q plus one more exactly when the remainders carry.
        let (a, b) = self.n_div.div_rem(c * self.r32);
        (c * self.q + a, b + self.r32 >= self.n)
    }
}

/// One segment of an [`InfoBuffer`]: per-element rANS states plus their shared stack of
/// 32-bit words. Element indices are local to the segment.
#[derive(Debug, Clone)]
pub struct Segment {
    states: Vec<u64>,
    stack: Vec<u32>,
    borrowed: u64,
}

impl Segment {
    /// An empty segment for `len` elements.
    pub fn new(len: usize) -> Self {
        Segment {
            states: vec![LOWER; len],
            stack: Vec::new(),
            borrowed: 0,
        }
    }

    /// Reserve room on the stack for `words` more words (exactly that many, so a stack
    /// reserved to a run's bound never reallocates in its hot loop nor holds a doubling
    /// vector's slack). Best effort: a refused reservation leaves the stack to grow as it
    /// goes.
    pub fn reserve_words(&mut self, words: u64) {
        if let Ok(words) = usize::try_from(words) {
            let _ = self.stack.try_reserve_exact(words);
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True for a buffer of no elements.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Bytes held: 8 per element state plus 4 per stack word.
    pub fn bytes(&self) -> usize {
        8 * self.states.len() + 4 * self.stack.len()
    }

    /// Words on the shared stack.
    pub fn stack_words(&self) -> usize {
        self.stack.len()
    }

    /// Zero words taken from below the bottom of the stack.
    pub fn borrowed(&self) -> u64 {
        self.borrowed
    }

    /// True when the buffer holds no information: every state at its start value, the stack
    /// empty, nothing borrowed.
    pub fn is_empty_of_information(&self) -> bool {
        self.stack.is_empty() && self.borrowed == 0 && self.states.iter().all(|&s| s == LOWER)
    }

    #[inline]
    fn read(&mut self) -> u64 {
        match self.stack.pop() {
            Some(w) => w as u64,
            None => {
                self.borrowed += 1;
                0
            }
        }
    }

    #[inline]
    fn emit(&mut self, w: u32) {
        if w == 0 && self.borrowed > 0 && self.stack.is_empty() {
            self.borrowed -= 1;
        } else {
            self.stack.push(w);
        }
    }

    /// Forward half one: decode a digit `c ∈ [0, n)` from element `i`'s state (pop_n
    /// without its refill; see the module doc). Returns `c` and the decoded state.
    #[inline(always)]
    fn decode_n(&self, i: usize, k: &Coder) -> (u64, u64) {
        let s = self.states[i];
        if k.n == 1 {
            return (0, s); // a digit of radix 1 carries no information
        }
        let slot = s & SLOT_MASK;
        let c = ((slot + 1) * k.n - 1) >> WORD_BITS;
        let (cum, carry) = k.slot(c);
        let f = k.q + carry as u64;
        (c, f * (s >> WORD_BITS) + slot - cum)
    }

    /// Forward half two: append the digit `r ∈ [0, d)` to the decoded state `s` (push_d),
    /// emitting a word first when `s ≥ 2^48`.
    #[inline(always)]
    fn encode_d(&mut self, i: usize, mut s: u64, r: u64) {
        if s >= 1 << (WORD_BITS + DEN_BITS) {
            self.emit(s as u32);
            s >>= WORD_BITS;
        }
        self.states[i] = (s << DEN_BITS) | r;
    }

    /// Undo half one: the digit `r ∈ [0, d)` on top of element `i`'s state, and the state
    /// without it (pop_d without its refill).
    #[inline(always)]
    fn decode_d(&self, i: usize) -> (u64, u64) {
        let s = self.states[i];
        (s & D_MASK as u64, s >> DEN_BITS)
    }

    /// Undo half two: encode the digit `c ∈ [0, n)` into the state `s` from
    /// [`Segment::decode_d`] (push_n), reading a word first when `s < f_c` (`s < L` for
    /// n = 1, whose digits are not coded).
    #[inline(always)]
    fn encode_n(&mut self, i: usize, s: u64, c: u64, k: &Coder) {
        if k.n == 1 {
            self.states[i] = if s < LOWER {
                (s << WORD_BITS) | self.read()
            } else {
                s
            };
            return;
        }
        let (cum, carry) = k.slot(c);
        let f = k.q + carry as u64;
        let s = if s < f {
            (s << WORD_BITS) | self.read()
        } else {
            s
        };
        // Select the divisor, then divide once: `carry` is a coin flip per element, and a
        // branch around two divisions mispredicts half the time. `s < f·2^32 ≤ 2^63`.
        let div = if carry { &k.wide } else { &k.narrow };
        let (quot, rem) = div.div_rem(s);
        self.states[i] = (quot << WORD_BITS) + rem + cum;
    }

    /// `x ← (n/d)·x` elementwise, exactly invertible by [`Segment::unmul_inplace`]:
    /// `x' = ⌊(x·n + c)/d⌋` with `c` popped from the buffer, `(x·n + c) mod d` pushed.
    ///
    /// Any `x` except `i64::MIN` is accepted (the fixed point's whole range); the result's
    /// magnitude is at most `x`'s.
    ///
    /// ```
    /// use revgrad::exact::{Coder, InfoBuffer, Rational};
    /// let mut buf = InfoBuffer::new(3);
    /// let k = Coder::new(Rational::approximate(0.9).unwrap());
    /// let x0 = vec![4365_i64, -7, 0];
    /// let mut x = x0.clone();
    /// for _ in 0..100 {
    ///     buf.mul_inplace(&mut x, &k);
    /// }
    /// for _ in 0..100 {
    ///     buf.unmul_inplace(&mut x, &k);
    /// }
    /// assert_eq!(x, x0);
    /// assert!(buf.is_empty_of_information());
    /// ```
    ///
    /// # Panics
    /// If `x` is not as long as the buffer (a programming error).
    #[track_caller]
    pub fn mul_inplace(&mut self, x: &mut [i64], k: &Coder) {
        assert_eq!(x.len(), self.states.len(), "buffer length mismatch");
        for (i, x) in x.iter_mut().enumerate() {
            *x = self.mul_at(i, *x, k);
        }
    }

    /// Element `i` of [`Segment::mul_inplace`], for loops that fuse other work with the
    /// multiply. Within one step, the multiplies must visit the elements in increasing
    /// order, and their undo ([`Segment::unmul_at`]) in decreasing order, so the shared
    /// stack stays LIFO; each element may use its own coder.
    ///
    /// `x·n` can take 79 bits, so it is never formed: with `x = q·d + r` (`q = ⌊x/d⌋`, an
    /// arithmetic shift, `0 ≤ r < d`), `x·n + c = q·n·d + (r·n + c)`, hence
    /// `x' = q·n + ⌊(r·n + c)/d⌋` and the pushed digit is `(r·n + c) mod d`; `r·n + c <
    /// 2^32` and `|q·n| < 2^63`.
    #[inline(always)]
    pub fn mul_at(&mut self, i: usize, x: i64, k: &Coder) -> i64 {
        let (c, s) = self.decode_n(i, k);
        let (q, r) = (x >> DEN_BITS, (x & D_MASK) as u64);
        let t = r * k.n + c;
        self.encode_d(i, s, t & D_MASK as u64);
        q * k.n as i64 + (t >> DEN_BITS) as i64
    }

    /// Exact inverse of [`Segment::mul_inplace`] with the same coder.
    ///
    /// # Panics
    /// If `x` is not as long as the segment (a programming error).
    #[track_caller]
    pub fn unmul_inplace(&mut self, x: &mut [i64], k: &Coder) {
        assert_eq!(x.len(), self.states.len(), "buffer length mismatch");
        for i in (0..x.len()).rev() {
            x[i] = self.unmul_at(i, x[i], k);
        }
    }

    /// Element `i` of [`InfoBuffer::unmul_inplace`]; see [`InfoBuffer::mul_at`] for the
    /// order in which elements must be visited.
    ///
    /// Divide-first, as the multiply: with `x' = p·n + e` (`p = ⌊x'/n⌋`, `0 ≤ e < n`) and
    /// the popped digit `r`, `y = x'·d + r = p·n·d + (e·d + r)`, so `⌊y/n⌋ = p·d + ⌊(e·d +
    /// r)/n⌋` and `y mod n = (e·d + r) mod n`, with `e·d + r < 2^32`.
    #[inline(always)]
    pub fn unmul_at(&mut self, i: usize, x: i64, k: &Coder) -> i64 {
        let (r, s) = self.decode_d(i);
        let (p, e) = floor_div(x, k);
        let (q, c) = k.n_div.div_rem((e << DEN_BITS) | r);
        self.encode_n(i, s, c, k);
        // Wrapping: an undo of a real multiply lands in range; anything else (a caller
        // undoing arbitrary values, as verify-reversal's drifting runs do) must not panic.
        p.wrapping_mul(DEN as i64).wrapping_add(q as i64)
    }
}

impl Segment {
    /// [`InfoBuffer::mul_at`] for a wide (i128) fixed-point value, sharing element `i`'s
    /// coder state and the stack with the i64 multiplies (Adam multiplies m and s of one
    /// parameter on one state, so the buffer keeps one 8-byte state per parameter):
    /// `x' = ⌊(x·n + c)/d⌋`, `c` popped, `(x·n + c) mod d` pushed.
    ///
    /// `x` must be within `±(2^111 − 1)` (so `x·n` fits an i128); so is the result.
    #[inline(always)]
    pub fn mul_wide_at(&mut self, i: usize, x: i128, k: &Coder) -> i128 {
        let (c, s) = self.decode_n(i, k);
        let y = x * k.n as i128 + c as i128;
        self.encode_d(i, s, (y & D_MASK as i128) as u64);
        y >> DEN_BITS
    }

    /// Exact inverse of [`InfoBuffer::mul_wide_at`] with the same coder.
    #[inline(always)]
    pub fn unmul_wide_at(&mut self, i: usize, x: i128, k: &Coder) -> i128 {
        let (r, s) = self.decode_d(i);
        let y = (x << DEN_BITS) + r as i128;
        let (q, c) = floor_div_wide(y, k);
        self.encode_n(i, s, c, k);
        q
    }
}

/// Elements per [`Segment`] (the last one may be shorter).
pub const SEGMENT_LEN: usize = 1024;

/// The information buffer of a vector: its elements in fixed segments of [`SEGMENT_LEN`]
/// (a partition that depends on the length alone), each segment with its own stack. The
/// segments are independent, so an optimizer may run them on different threads with
/// bit-identical results; within a segment the multiplies visit the elements in
/// increasing order and the undos in decreasing order ([`InfoBuffer::mul_at`]). Cost: one
/// partly filled word per segment, against one stack for the whole vector.
#[derive(Debug, Clone)]
pub struct InfoBuffer {
    segments: Vec<Segment>,
    len: usize,
}

impl InfoBuffer {
    /// An empty buffer for `len` elements.
    pub fn new(len: usize) -> Self {
        let segments = (0..len.div_ceil(SEGMENT_LEN))
            .map(|j| Segment::new(SEGMENT_LEN.min(len - j * SEGMENT_LEN)))
            .collect();
        InfoBuffer { segments, len }
    }

    /// Reserve each segment's stack to `bound` ([`super::bound`]): the words a run can put
    /// there at most, so that its stacks never reallocate and the buffer holds at most
    /// [`BufferBound::bytes`].
    ///
    /// # Panics
    /// If `bound` is for another length (a programming error).
    #[track_caller]
    pub fn reserve(&mut self, bound: &BufferBound) {
        assert_eq!(bound.len(), self.len, "buffer length mismatch");
        for (seg, words) in self.segments.iter_mut().zip(bound.segment_words()) {
            seg.reserve_words(words);
        }
    }

    /// The segments, element `i` in segment `i / SEGMENT_LEN` at index `i % SEGMENT_LEN`.
    pub fn segments_mut(&mut self) -> &mut [Segment] {
        &mut self.segments
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a buffer of no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held: 8 per element state plus 4 per stack word.
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(Segment::bytes).sum()
    }

    /// Words on the stacks.
    pub fn stack_words(&self) -> usize {
        self.segments.iter().map(Segment::stack_words).sum()
    }

    /// Zero words taken from below the bottoms of the stacks.
    pub fn borrowed(&self) -> u64 {
        self.segments.iter().map(Segment::borrowed).sum()
    }

    /// True when the buffer holds no information (every segment empty of it).
    pub fn is_empty_of_information(&self) -> bool {
        self.segments.iter().all(Segment::is_empty_of_information)
    }

    #[inline(always)]
    fn at(&mut self, i: usize) -> (&mut Segment, usize) {
        (&mut self.segments[i / SEGMENT_LEN], i % SEGMENT_LEN)
    }

    /// `x ← (n/d)·x` elementwise ([`Segment::mul_inplace`] on every segment).
    ///
    /// ```
    /// use revgrad::exact::{Coder, InfoBuffer, Rational};
    /// let mut buf = InfoBuffer::new(3000);
    /// let k = Coder::new(Rational::approximate(0.9).unwrap());
    /// let x0: Vec<i64> = (0..3000).map(|i| (i - 1500) << 40).collect();
    /// let mut x = x0.clone();
    /// for _ in 0..100 {
    ///     buf.mul_inplace(&mut x, &k);
    /// }
    /// for _ in 0..100 {
    ///     buf.unmul_inplace(&mut x, &k);
    /// }
    /// assert_eq!(x, x0);
    /// assert!(buf.is_empty_of_information());
    /// ```
    ///
    /// # Panics
    /// If `x` is not as long as the buffer (a programming error).
    #[track_caller]
    pub fn mul_inplace(&mut self, x: &mut [i64], k: &Coder) {
        assert_eq!(x.len(), self.len, "buffer length mismatch");
        for (seg, x) in self.segments.iter_mut().zip(x.chunks_mut(SEGMENT_LEN)) {
            seg.mul_inplace(x, k);
        }
    }

    /// Exact inverse of [`InfoBuffer::mul_inplace`] with the same coder.
    ///
    /// # Panics
    /// If `x` is not as long as the buffer (a programming error).
    #[track_caller]
    pub fn unmul_inplace(&mut self, x: &mut [i64], k: &Coder) {
        assert_eq!(x.len(), self.len, "buffer length mismatch");
        for (seg, x) in self.segments.iter_mut().zip(x.chunks_mut(SEGMENT_LEN)) {
            seg.unmul_inplace(x, k);
        }
    }

    /// Element `i` of [`InfoBuffer::mul_inplace`] ([`Segment::mul_at`] in its segment):
    /// within a segment, the multiplies of one step visit the elements in increasing order
    /// and their undos in decreasing order; segments are independent of each other.
    #[inline]
    pub fn mul_at(&mut self, i: usize, x: i64, k: &Coder) -> i64 {
        let (seg, j) = self.at(i);
        seg.mul_at(j, x, k)
    }

    /// Element `i` of [`InfoBuffer::unmul_inplace`].
    #[inline]
    pub fn unmul_at(&mut self, i: usize, x: i64, k: &Coder) -> i64 {
        let (seg, j) = self.at(i);
        seg.unmul_at(j, x, k)
    }

    /// [`Segment::mul_wide_at`] of element `i`.
    #[inline]
    pub fn mul_wide_at(&mut self, i: usize, x: i128, k: &Coder) -> i128 {
        let (seg, j) = self.at(i);
        seg.mul_wide_at(j, x, k)
    }

    /// [`Segment::unmul_wide_at`] of element `i`.
    #[inline]
    pub fn unmul_wide_at(&mut self, i: usize, x: i128, k: &Coder) -> i128 {
        let (seg, j) = self.at(i);
        seg.unmul_wide_at(j, x, k)
    }
}

/// `⌊u/n⌋` and `u mod n` for a u128 and `n < 2^16`, as three 64-bit divisions by the
/// prepared n ([`Divisor`]) (no software 128-bit division): the high word, then two 32-bit
/// limbs, each with the running remainder (< 2^16) on top, so every dividend fits 48 bits.
#[inline(always)]
fn div_rem_u128(u: u128, k: &Coder) -> (u128, u64) {
    let (hi, lo) = ((u >> 64) as u64, u as u64);
    let (q2, r) = k.n_div.div_rem(hi);
    let (q1, r) = k.n_div.div_rem((r << 32) | (lo >> 32));
    let (q0, r) = k.n_div.div_rem((r << 32) | (lo & 0xffff_ffff));
    (((q2 as u128) << 64) | ((q1 as u128) << 32) | q0 as u128, r)
}

/// `(⌊y/n⌋, y mod n)` with floor semantics for an i128 `y`, branch-free as [`floor_div`].
#[inline(always)]
fn floor_div_wide(y: i128, k: &Coder) -> (i128, u64) {
    let sign = y >> 127;
    let (q, r) = div_rem_u128((y ^ sign) as u128, k);
    let neg = (sign as u64) & (k.n - 1).wrapping_sub(2 * r);
    (q as i128 ^ sign, r.wrapping_add(neg))
}

/// `(⌊y/n⌋, y mod n)` with floor semantics, for any sign of `y`. For `y < 0` write
/// `y = −1 − t` (`t = !y ≥ 0`): `⌊y/n⌋ = −1 − ⌊t/n⌋ = !⌊t/n⌋` and `y mod n = n − 1 − (t
/// mod n)`. Branch-free (the sign of a velocity is a coin flip per element): one division
/// of `y ^ (y >> 63)`, then the sign mask applied to both results.
#[inline(always)]
fn floor_div(y: i64, k: &Coder) -> (i64, u64) {
    let sign = y >> 63;
    let (q, r) = k.n_div.div_rem((y ^ sign) as u64);
    let neg = (sign as u64) & (k.n - 1).wrapping_sub(2 * r);
    (q as i64 ^ sign, r.wrapping_add(neg))
}

#[cfg(test)]
mod tests {
    use super::super::fixed::LIMIT;
    use super::*;
    use proptest::prelude::*;

    /// Multiplies `steps` times, element `i` of step `t` by `ns[(t·len + i) % ns.len()]/d`,
    /// then undoes every step and checks each intermediate state.
    fn roundtrip(x0: &[i64], ns: &[u64], steps: usize) -> InfoBuffer {
        let coders: Vec<Coder> = ns
            .iter()
            .map(|&n| Coder::new(Rational::from_numerator(n).unwrap()))
            .collect();
        let k = |t: usize, i: usize| &coders[(t * x0.len() + i) % coders.len()];
        let mut buf = InfoBuffer::new(x0.len());
        let mut x = x0.to_vec();
        let mut trace = Vec::new();
        for t in 0..steps {
            trace.push(x.clone());
            for (i, x) in x.iter_mut().enumerate() {
                let before = *x;
                *x = buf.mul_at(i, before, k(t, i));
                // Within one quantum of x·n/d.
                let exact = before as f64 * k(t, i).rational().value();
                assert!(
                    (*x as f64 - exact).abs() <= 1.0 + 1e-9 * exact.abs(),
                    "{x} vs {exact}"
                );
            }
        }
        for t in (0..steps).rev() {
            for i in (0..x.len()).rev() {
                x[i] = buf.unmul_at(i, x[i], k(t, i));
            }
            assert_eq!(x, trace[t], "step {t} not restored");
        }
        assert!(buf.is_empty_of_information());
        buf
    }

    #[test]
    fn extremes_round_trip() {
        let xs = [
            0,
            1,
            -1,
            LIMIT,
            -LIMIT,
            LIMIT - 1,
            -LIMIT + 1,
            12345,
            -98765,
        ];
        for n in [1, 2, 3, 32768, 58983, 65535] {
            roundtrip(&xs, &[n], 40);
        }
        roundtrip(&xs, &[1, 2, 3, 32768, 58983, 65535, 7], 40);
    }

    #[test]
    fn long_runs_exercise_emit_and_refill() {
        // 3000 multiplies at γ ≈ 0.9 store ~460 bits per element: many 32-bit words emitted
        // and read back, in both the pop_n and pop_d refill paths.
        let xs: Vec<i64> = (0..50).map(|i| (i * 7919 - 200_000) << 20).collect();
        let k = Coder::new(Rational::approximate(0.9).unwrap());
        let mut buf = InfoBuffer::new(xs.len());
        let mut x = xs.clone();
        for _ in 0..3000 {
            buf.mul_inplace(&mut x, &k);
            // keep values from decaying to 0 so the remainders stay informative
            for v in x.iter_mut() {
                *v += 1 << 30;
            }
        }
        assert!(buf.stack_words() > 50 * 10);
        for _ in 0..3000 {
            for v in x.iter_mut() {
                *v -= 1 << 30;
            }
            buf.unmul_inplace(&mut x, &k);
        }
        assert_eq!(x, xs);
        assert!(buf.is_empty_of_information());
    }

    /// Bits per element per multiply over `steps` multiplies by the schedule `gamma(t)`,
    /// and the floor Σ_t log₂(d/n_t)/steps.
    fn bits_and_floor(gamma: impl Fn(usize) -> f64, steps: usize) -> (f64, f64) {
        let len = 200;
        let mut buf = InfoBuffer::new(len);
        let mut x: Vec<i64> = (0..len as i64).map(|i| (i - 100) << 30).collect();
        let mut floor = 0.0;
        for t in 0..steps {
            let r = Rational::approximate(gamma(t)).unwrap();
            floor += r.bits_per_multiply();
            buf.mul_inplace(&mut x, &Coder::new(r));
            for v in x.iter_mut() {
                *v += 3 << 28;
            }
        }
        let bits = 8.0 * buf.bytes() as f64 / (len * steps) as f64;
        (bits, floor / steps as f64)
    }

    #[test]
    fn close_to_the_entropy_floor() {
        let (bits, floor) = bits_and_floor(|_| 0.9, 10_000);
        assert!(
            bits / floor < 1.05,
            "buffer holds {bits} bits/elem/step, {}x the floor {floor}",
            bits / floor
        );
        // A schedule: γ_t sweeping from 0.5 to 0.99.
        let (bits, floor) = bits_and_floor(|t| 0.5 + 0.49 * t as f64 / 10_000.0, 10_000);
        assert!(
            bits / floor < 1.05,
            "schedule: {bits} bits/elem/step, {}x the floor {floor}",
            bits / floor
        );
    }

    /// The coder as first written: four operations, each renormalising on its own
    /// (`pop_n` and `pop_d` refill below L, `push_n` and `push_d` emit first when the result
    /// would overflow). [`Segment`] fuses them in pairs and skips the refill-then-emit of
    /// the same word; its states and stacks must equal these after every operation.
    struct Reference {
        states: Vec<u64>,
        stack: Vec<u32>,
        borrowed: u64,
    }

    impl Reference {
        fn read(&mut self) -> u64 {
            self.stack.pop().map_or_else(
                || {
                    self.borrowed += 1;
                    0
                },
                u64::from,
            )
        }
        fn emit(&mut self, w: u32) {
            if w == 0 && self.borrowed > 0 && self.stack.is_empty() {
                self.borrowed -= 1;
            } else {
                self.stack.push(w);
            }
        }
        fn refill(&mut self, i: usize, s: u64) {
            self.states[i] = if s < LOWER {
                (s << 32) | self.read()
            } else {
                s
            };
        }
        /// `(cum_c, f_c)` with `cum_c = ⌊c·2^32/n⌋`, by hardware division.
        fn slot(c: u64, n: u64) -> (u64, u64) {
            let cum = (c << 32) / n;
            (cum, ((c + 1) << 32) / n - cum)
        }
        fn pop_n(&mut self, i: usize, k: &Coder) -> u64 {
            if k.n == 1 {
                return 0;
            }
            let s = self.states[i];
            let slot = s & SLOT_MASK;
            let c = ((slot + 1) * k.n - 1) >> 32;
            let (cum, f) = Self::slot(c, k.n);
            self.refill(i, f * (s >> 32) + slot - cum);
            c
        }
        fn push_n(&mut self, i: usize, c: u64, k: &Coder) {
            if k.n == 1 {
                return;
            }
            let mut s = self.states[i];
            let (cum, f) = Self::slot(c, k.n);
            if s >= f << 32 {
                self.emit(s as u32);
                s >>= 32;
            }
            self.states[i] = ((s / f) << 32) + s % f + cum;
        }
        fn push_d(&mut self, i: usize, r: u64) {
            let mut s = self.states[i];
            if s >= 1 << 48 {
                self.emit(s as u32);
                s >>= 32;
            }
            self.states[i] = (s << 16) | r;
        }
        fn pop_d(&mut self, i: usize) -> u64 {
            let s = self.states[i];
            self.refill(i, s >> 16);
            s & 0xffff
        }
        fn mul(&mut self, i: usize, x: i128, k: &Coder) -> i128 {
            let y = x * k.n as i128 + self.pop_n(i, k) as i128;
            self.push_d(i, (y & 0xffff) as u64);
            y >> 16
        }
        fn unmul(&mut self, i: usize, x: i128, k: &Coder) -> i128 {
            let y = (x << 16) + self.pop_d(i) as i128;
            let n = k.n as i128;
            self.push_n(i, y.rem_euclid(n) as u64, k);
            y.div_euclid(n)
        }
    }

    proptest! {
        /// Multiplies and undos in any order, on any element, including undos past the
        /// start: the stack runs dry, zero words are borrowed and given back (emit's special
        /// case), and the fused coder still equals the four-operation one.
        #[test]
        fn fused_coder_equals_the_four_operation_coder_in_any_order(
            ops in proptest::collection::vec(
                (any::<bool>(), 0usize..4, 0usize..3, -(1i64 << 40)..(1i64 << 40)), 1..400),
            ns in proptest::collection::vec(
                prop_oneof![1u64..4, 1u64..65536, 65000u64..65536], 3),
        ) {
            let coders: Vec<Coder> = ns
                .iter()
                .map(|&n| Coder::new(Rational::from_numerator(n).unwrap()))
                .collect();
            let mut seg = Segment::new(4);
            let mut reference = Reference {
                states: vec![LOWER; 4],
                stack: Vec::new(),
                borrowed: 0,
            };
            for (j, &(undo, i, c, x)) in ops.iter().enumerate() {
                let k = &coders[c];
                let wide = j % 2 == 1;
                let (got, want) = match (undo, wide) {
                    (false, false) => (seg.mul_at(i, x, k) as i128, reference.mul(i, x as i128, k)),
                    (false, true) => (seg.mul_wide_at(i, x as i128, k), reference.mul(i, x as i128, k)),
                    (true, false) => (seg.unmul_at(i, x, k) as i128, reference.unmul(i, x as i128, k)),
                    (true, true) => (seg.unmul_wide_at(i, x as i128, k), reference.unmul(i, x as i128, k)),
                };
                prop_assert_eq!(got, want, "operation {}", j);
                prop_assert!(
                    seg.states == reference.states
                        && seg.stack == reference.stack
                        && seg.borrowed == reference.borrowed,
                    "operation {}", j
                );
            }
        }

        #[test]
        #[allow(clippy::needless_range_loop)] // i indexes the buffer's elements too
        fn fused_coder_equals_the_four_operation_coder(
            xs in proptest::collection::vec(-(1i64 << 60)..(1i64 << 60), 1..8),
            ns in proptest::collection::vec(
                prop_oneof![1u64..4, 1u64..65536, 65000u64..65536], 1..6),
            steps in 1usize..300,
        ) {
            let coders: Vec<Coder> = ns
                .iter()
                .map(|&n| Coder::new(Rational::from_numerator(n).unwrap()))
                .collect();
            let k = |t: usize, i: usize| &coders[(t * 5 + i) % coders.len()];
            let mut seg = Segment::new(xs.len());
            let mut reference = Reference {
                states: vec![LOWER; xs.len()],
                stack: Vec::new(),
                borrowed: 0,
            };
            let same = |seg: &Segment, r: &Reference| {
                seg.states == r.states && seg.stack == r.stack && seg.borrowed == r.borrowed
            };
            let mut x: Vec<i64> = xs.clone();
            for t in 0..steps {
                for i in 0..x.len() {
                    // Narrow and wide multiplies on the same state, as momentum and Adam do.
                    let want = reference.mul(i, x[i] as i128, k(t, i));
                    if t % 3 == 2 {
                        prop_assert_eq!(seg.mul_wide_at(i, x[i] as i128, k(t, i)), want);
                    } else {
                        prop_assert_eq!(seg.mul_at(i, x[i], k(t, i)) as i128, want);
                    }
                    prop_assert!(same(&seg, &reference), "step {} element {}", t, i);
                    x[i] = want as i64 + (1 << 40) * (i as i64 % 3 - 1);
                }
            }
            for t in (0..steps).rev() {
                for i in (0..x.len()).rev() {
                    x[i] -= (1 << 40) * (i as i64 % 3 - 1);
                    let want = reference.unmul(i, x[i] as i128, k(t, i));
                    if t % 3 == 2 {
                        prop_assert_eq!(seg.unmul_wide_at(i, x[i] as i128, k(t, i)), want);
                    } else {
                        prop_assert_eq!(seg.unmul_at(i, x[i], k(t, i)) as i128, want);
                    }
                    prop_assert!(same(&seg, &reference), "undo {} element {}", t, i);
                    x[i] = want as i64;
                }
            }
            prop_assert_eq!(x, xs);
            prop_assert!(seg.is_empty_of_information());
        }

        #[test]
        fn wide_mul_unmul_round_trips_interleaved_with_narrow(
            xs in proptest::collection::vec(
                -super::super::fixed::WIDE_LIMIT..=super::super::fixed::WIDE_LIMIT, 1..12),
            ns in proptest::collection::vec(1u64..65536, 1..5),
            steps in 1usize..120,
        ) {
            let coders: Vec<Coder> = ns
                .iter()
                .map(|&n| Coder::new(Rational::from_numerator(n).unwrap()))
                .collect();
            let k = |t: usize, i: usize, j: usize| &coders[(t * 7 + i * 3 + j) % coders.len()];
            let mut buf = InfoBuffer::new(xs.len());
            let mut x = xs.clone();
            let mut v: Vec<i64> = xs.iter().map(|&x| (x >> 70) as i64).collect();
            let v0 = v.clone();
            for t in 0..steps {
                for i in 0..x.len() {
                    let before = x[i];
                    x[i] = buf.mul_wide_at(i, x[i], k(t, i, 0));
                    let exact = before as f64 * k(t, i, 0).rational().value();
                    prop_assert!((x[i] as f64 - exact).abs() <= 1.0 + 1e-12 * exact.abs());
                    v[i] = buf.mul_at(i, v[i], k(t, i, 1));
                }
            }
            for t in (0..steps).rev() {
                for i in (0..x.len()).rev() {
                    v[i] = buf.unmul_at(i, v[i], k(t, i, 1));
                    x[i] = buf.unmul_wide_at(i, x[i], k(t, i, 0));
                }
            }
            prop_assert_eq!(&x, &xs);
            prop_assert_eq!(&v, &v0);
            prop_assert!(buf.is_empty_of_information());
        }

        #[test]
        fn mul_unmul_round_trips(
            xs in proptest::collection::vec(-LIMIT..=LIMIT, 1..20),
            ns in proptest::collection::vec(1u64..65536, 1..7),
            steps in 1usize..200,
        ) {
            roundtrip(&xs, &ns, steps);
        }
    }
}
