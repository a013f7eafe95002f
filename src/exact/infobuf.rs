//! # Information buffer: the remainders of `v ← (n/d)·v`, stored near the entropy floor
//!
//! Each vector element `i` owns an rANS coder state `s_i ∈ [L, 2^32·L)` with
//! `L = n·2^16` (a multiple of both `n` and `d = 2^16`, as rANS needs for exact inverses).
//! The buffer is the big number `stack ‖ s_i` in mixed radix, with digits
//!
//! ```text
//! push_d(r):  if s ≥ n·2^32 { emit low 32 bits of s; s ← s >> 32 };  s ← s·d + r
//! pop_d():    r = s mod d;  s ← s / d;   if s < L { s ← s·2^32 + read() };   → r
//! push_n(c):  if s ≥ 2^48   { emit low 32 bits of s; s ← s >> 32 };  s ← s·n + c
//! pop_n():    c = s mod n;  s ← s / n;   if s < L { s ← s·2^32 + read() };   → c
//! ```
//!
//! `pop_d` undoes `push_d` and `push_n` undoes `pop_n` exactly, renormalisation included.
//! All elements share one 32-bit word stack: the forward multiply walks elements
//! `0, 1, …, N−1` and the undo walks `N−1, …, 0`, so the stack stays last-in first-out.
//!
//! Reading from an empty stack yields 0 (the stack sits on an endless floor of zero words;
//! `borrowed` counts how many were taken), and emitting 0 onto an empty stack with a
//! positive `borrowed` returns one. Both are value-preserving, so exactness does not depend
//! on them; after a full reversal every state is `L` again, the stack is empty and nothing
//! is borrowed.
//!
//! Net cost per multiply: `log₂ d − log₂ n` bits. Memory held: 8 bytes of state per element
//! plus 4 bytes per stack word.

use strength_reduce::StrengthReducedU64;

use super::rational::{DEN_BITS, Rational};

const WORD_BITS: u32 = 32;
/// Largest up-front reservation (1 GiB of words); longer runs grow the stack as they go.
const MAX_RESERVE_WORDS: usize = 1 << 28;
const D_MASK: i64 = (1 << DEN_BITS) - 1;

/// Per-element rANS states plus a shared stack of 32-bit words, for the rational `n/d`.
#[derive(Debug, Clone)]
pub struct InfoBuffer {
    rational: Rational,
    n: u64,
    n_reduced: StrengthReducedU64,
    lower: u64,
    states: Vec<u64>,
    stack: Vec<u32>,
    borrowed: u64,
}

impl InfoBuffer {
    /// An empty buffer for `len` elements multiplied by `rational`.
    pub fn new(len: usize, rational: Rational) -> Self {
        let n = rational.n();
        let lower = n << DEN_BITS;
        InfoBuffer {
            rational,
            n,
            n_reduced: StrengthReducedU64::new(n),
            lower,
            states: vec![lower; len],
            stack: Vec::new(),
            borrowed: 0,
        }
    }

    /// Reserve stack space for `steps` more multiplies at the entropy rate plus 2% and one
    /// word per element, so a run of known length neither reallocates in its hot loop nor
    /// holds the up-to-2× slack of a doubling vector.
    pub fn reserve_steps(&mut self, steps: usize) {
        let bits = self.states.len() as f64 * steps as f64 * self.rational.bits_per_multiply();
        let words = (bits / WORD_BITS as f64 * 1.02).ceil() as usize + self.states.len();
        // Best effort: a run too long to reserve for up front just grows the stack as it goes.
        let _ = self.stack.try_reserve(words.min(MAX_RESERVE_WORDS));
    }

    /// The rational this buffer multiplies by.
    pub fn rational(&self) -> Rational {
        self.rational
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
        self.stack.is_empty() && self.borrowed == 0 && self.states.iter().all(|&s| s == self.lower)
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

    #[inline]
    fn pop_n(&mut self, i: usize) -> u64 {
        let (q, c) = StrengthReducedU64::div_rem(self.states[i], self.n_reduced);
        self.states[i] = if q < self.lower {
            (q << WORD_BITS) | self.read()
        } else {
            q
        };
        c
    }

    #[inline]
    fn push_n(&mut self, i: usize, c: u64) {
        let mut s = self.states[i];
        if s >= 1 << (WORD_BITS + DEN_BITS) {
            self.emit(s as u32);
            s >>= WORD_BITS;
        }
        self.states[i] = s * self.n + c;
    }

    #[inline]
    fn push_d(&mut self, i: usize, r: u64) {
        let mut s = self.states[i];
        if s >= self.n << WORD_BITS {
            self.emit(s as u32);
            s >>= WORD_BITS;
        }
        self.states[i] = (s << DEN_BITS) | r;
    }

    #[inline]
    fn pop_d(&mut self, i: usize) -> u64 {
        let s = self.states[i];
        let r = s & D_MASK as u64;
        let q = s >> DEN_BITS;
        self.states[i] = if q < self.lower {
            (q << WORD_BITS) | self.read()
        } else {
            q
        };
        r
    }

    /// `x ← (n/d)·x` elementwise, exactly invertible by [`InfoBuffer::unmul_inplace`]:
    /// `x' = ⌊(x·n + c)/d⌋` with `c` popped from the buffer, `(x·n + c) mod d` pushed.
    ///
    /// `x` must be fixed-point integers within `±(2^47 − 1)` (so `x·n` fits in an i64);
    /// the result is within that range too.
    ///
    /// ```
    /// use revgrad::exact::{InfoBuffer, Rational};
    /// let mut buf = InfoBuffer::new(3, Rational::approximate(0.9).unwrap());
    /// let x0 = vec![4365_i64, -7, 0];
    /// let mut x = x0.clone();
    /// for _ in 0..100 {
    ///     buf.mul_inplace(&mut x);
    /// }
    /// for _ in 0..100 {
    ///     buf.unmul_inplace(&mut x);
    /// }
    /// assert_eq!(x, x0);
    /// assert!(buf.is_empty_of_information());
    /// ```
    ///
    /// # Panics
    /// If `x` is not as long as the buffer (a programming error).
    #[track_caller]
    pub fn mul_inplace(&mut self, x: &mut [i64]) {
        assert_eq!(x.len(), self.states.len(), "buffer length mismatch");
        for (i, x) in x.iter_mut().enumerate() {
            *x = self.mul_at(i, *x);
        }
    }

    /// Element `i` of [`InfoBuffer::mul_inplace`], for loops that fuse other work with the
    /// multiply. A multiply must visit the elements in increasing order, and its undo
    /// ([`InfoBuffer::unmul_at`]) in decreasing order, so the shared stack stays LIFO.
    #[inline]
    pub fn mul_at(&mut self, i: usize, x: i64) -> i64 {
        let c = self.pop_n(i) as i64;
        let y = x * self.n as i64 + c;
        self.push_d(i, (y & D_MASK) as u64);
        y >> DEN_BITS
    }

    /// Exact inverse of [`InfoBuffer::mul_inplace`].
    ///
    /// # Panics
    /// If `x` is not as long as the buffer (a programming error).
    #[track_caller]
    pub fn unmul_inplace(&mut self, x: &mut [i64]) {
        assert_eq!(x.len(), self.states.len(), "buffer length mismatch");
        for i in (0..x.len()).rev() {
            x[i] = self.unmul_at(i, x[i]);
        }
    }

    /// Element `i` of [`InfoBuffer::unmul_inplace`]; see [`InfoBuffer::mul_at`] for the
    /// order in which elements must be visited.
    #[inline]
    pub fn unmul_at(&mut self, i: usize, x: i64) -> i64 {
        let r = self.pop_d(i) as i64;
        let y = (x << DEN_BITS) + r;
        let (q, c) = self.floor_div_n(y);
        self.push_n(i, c);
        q
    }

    /// `(⌊y/n⌋, y mod n)` with floor semantics, for any sign of `y`.
    #[inline]
    fn floor_div_n(&self, y: i64) -> (i64, u64) {
        if y >= 0 {
            let (q, r) = StrengthReducedU64::div_rem(y as u64, self.n_reduced);
            (q as i64, r)
        } else {
            // y = −1 − t with t ≥ 0:  ⌊y/n⌋ = −1 − ⌊t/n⌋,  y mod n = n − 1 − (t mod n).
            let t = (-1 - y) as u64;
            let (q, r) = StrengthReducedU64::div_rem(t, self.n_reduced);
            (-1 - q as i64, self.n - 1 - r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixed::LIMIT;
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(x0: &[i64], n: u64, steps: usize) -> InfoBuffer {
        let r = Rational::from_numerator(n).unwrap();
        let mut buf = InfoBuffer::new(x0.len(), r);
        let mut x = x0.to_vec();
        let mut trace = Vec::new();
        for _ in 0..steps {
            trace.push(x.clone());
            buf.mul_inplace(&mut x);
            for (a, b) in x.iter().zip(trace.last().unwrap()) {
                // Within one quantum of x·n/d.
                let exact = *b as f64 * r.value();
                assert!(
                    (*a as f64 - exact).abs() <= 1.0 + 1e-9 * exact.abs(),
                    "{a} vs {exact}"
                );
            }
        }
        for t in (0..steps).rev() {
            buf.unmul_inplace(&mut x);
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
            roundtrip(&xs, n, 40);
        }
    }

    #[test]
    fn long_runs_exercise_emit_and_refill() {
        // 3000 multiplies at γ ≈ 0.9 store ~460 bits per element: many 32-bit words emitted
        // and read back, in both the pop_n and pop_d refill paths.
        let xs: Vec<i64> = (0..50).map(|i| (i * 7919 - 200_000) << 20).collect();
        let r = Rational::approximate(0.9).unwrap();
        let mut buf = InfoBuffer::new(xs.len(), r);
        let mut x = xs.clone();
        for _ in 0..3000 {
            buf.mul_inplace(&mut x);
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
            buf.unmul_inplace(&mut x);
        }
        assert_eq!(x, xs);
        assert!(buf.is_empty_of_information());
    }

    #[test]
    fn close_to_the_entropy_floor() {
        let r = Rational::approximate(0.9).unwrap();
        let len = 200;
        let steps = 10_000;
        let mut buf = InfoBuffer::new(len, r);
        let mut x: Vec<i64> = (0..len as i64).map(|i| (i - 100) << 30).collect();
        for _ in 0..steps {
            buf.mul_inplace(&mut x);
            for v in x.iter_mut() {
                *v += 3 << 28;
            }
        }
        let bits = 8.0 * buf.bytes() as f64 / (len * steps) as f64;
        let ratio = bits / r.bits_per_multiply();
        assert!(
            ratio < 1.1,
            "buffer holds {bits} bits/elem/step, {ratio}x the floor"
        );
    }

    proptest! {
        #[test]
        fn mul_unmul_round_trips(
            xs in proptest::collection::vec(-LIMIT..=LIMIT, 1..20),
            n in 1u64..65536,
            steps in 1usize..200,
        ) {
            roundtrip(&xs, n, steps);
        }
    }
}
