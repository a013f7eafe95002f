//! # How large the information buffer can grow
//!
//! The floor `F = Σ_j log₂(d/n_j)` bits (one term per multiply) is the least an element's
//! remainders take; the memory check before an exact run (`--memory-limit`) and the stack
//! reservation at its start need the most they can take. This module bounds it element by
//! element from the coder of [`super::infobuf`].
//!
//! ## One element
//!
//! With `M = 2^32` (a word), `d = 2^16` and `s` the element's coder state, a multiply by
//! `n/d` with `n ≥ 2` decodes a digit and pushes one:
//!
//! ```text
//! h = ⌊s/M⌋    slot = s mod M ∈ [cum_c, cum_c + f_c)    δ = slot − cum_c ∈ [0, f_c)
//! s' = f_c·h + δ                                  slot widths f_c ≤ M/n + 1, so δ ≤ M/n
//! if s' ≥ 2^48:  emit s' mod M,  s' ← ⌊s'/M⌋       (one word more on the stack)
//! s'' = d·s' + r                                  r ∈ [0, d)
//! ```
//!
//! (`n = 1` skips the decode: `s' = s`). The forward run never reads a word (the coder's
//! fused pairs skip the refill), so the words an element puts on its segment's stack are
//! the number W of its emits.
//!
//! Take the potential `Φ = log₂(s + K) + 32·W` with `K ≥ d·(M + n)/(d − n)` for every `n`
//! the element is multiplied by (the largest one decides; `K/M ≈ 1/(1 − γ)`). One multiply:
//!
//! ```text
//! s' + 1 + K/d ≤ (1 + n/M)·(s + K)/n       f_c·h ≤ (1 + n/M)·h·M/n, and δ + 1 + K/d ≤ (δ + K)/n
//!                                          ⇔ δ·(1 − 1/n) + 1 ≤ K·(d − n)/(n·d), true for δ ≤ M/n
//!                                          (for n = 1, s' = s: true for K ≥ 2)
//! no emit:  s'' + K ≤ d·s' + d − 1 + K < d·(s' + 1 + K/d)
//! emit:     M·(s'' + K) ≤ d·s' + M·(d − 1) + M·K < (1 + 2^−16 + K/M)·d·(s' + 1 + K/d)
//!                                          since d·s' ≥ 2^16·2^48 = 2^64
//! ```
//!
//! so Φ grows by less than `log₂(d/n) + log₂(1 + n/M)`, plus `ρ = log₂(1 + 2^−16 + K/M)`
//! when the multiply emits. Summed over the element's m multiplies from `s = M`, `W = 0`,
//! and with `s + K ≥ K` at the end:
//!
//! ```text
//! 32·W + log₂ K < log₂(M + K) + F + m·log₂(1 + 2^−16) + ρ·W
//! W < (F + m·log₂(1 + 2^−16) + log₂(1 + M/K)) / (32 − ρ)           ([`words_bound`])
//! ```
//!
//! The words above the floor's `F/32` are what an emit can cost when the state it leaves is
//! small: `ρ` bits per word, `log₂(1 + 1/(1 − γ))` roughly. At γ = 0.9 the bound is 1.12 × the
//! floor's words, at β₂ = 0.999 1.45 ×, and never more than 2 × (n < 2^16 makes ρ < 16.01).
//! The first words are free: the state holds up to 32 bits above its start, so a short run
//! emits nothing.
//!
//! ## The buffer
//!
//! Every element of a parameter array is multiplied by the same decays, so the bound is a
//! number of words per element for each array ([`BufferBound`]). A buffer holds 8 bytes of
//! state per element and 4 per word; [`BufferBound::bytes`] adds its segments' own
//! structs. The optimizers reserve each segment's stack to its bound
//! ([`super::InfoBuffer::reserve`]), so a stack never reallocates during a run and the
//! buffer's memory is at most [`BufferBound::bytes`].

use std::ops::Range;

use super::infobuf::{InfoBuffer, SEGMENT_LEN, Segment};
use super::rational::{DEN, DEN_BITS};

/// Bits of a word of the stack.
const WORD_BITS: f64 = 32.0;

/// An upper bound on the stack words one element emits over `multiplies` multiplies whose
/// floor is `floor_bits` (`Σ_j log₂(d/n_j)`) and whose largest numerator is `n_max`
/// (see the module doc for the derivation).
///
/// ```
/// use revgrad::exact::bound::words_bound;
/// // γ = 0.9 (n = 58983): 0.152 bits per multiply; 10,000 multiplies.
/// let floor = 10_000.0 * (65536.0f64 / 58983.0).log2();
/// let w = words_bound(floor, 10_000, 58983);
/// assert!(w as f64 >= floor / 32.0 && (w as f64) < 1.13 * floor / 32.0);
/// // 100 multiplies fit in the state: no word.
/// assert_eq!(words_bound(floor / 100.0, 100, 58983), 0);
/// ```
pub fn words_bound(floor_bits: f64, multiplies: u64, n_max: u64) -> u64 {
    let (m, d) = (2f64.powi(32), DEN as f64);
    let n = n_max.clamp(1, DEN - 1) as f64;
    let k = d * (m + n) / (d - n);
    let rho = (1.0 + 2f64.powi(-(DEN_BITS as i32)) + k / m).log2();
    let per_multiply = (2f64.powi(-(DEN_BITS as i32))).ln_1p() / std::f64::consts::LN_2;
    let x =
        (floor_bits + multiplies as f64 * per_multiply + (m / k).ln_1p() / std::f64::consts::LN_2)
            / (WORD_BITS - rho);
    // W < x, so W ≤ ⌊x⌋; the margin covers the rounding of the float sums that gave x.
    (x * (1.0 + 1e-9) + 1e-9).floor() as u64
}

/// Words per element over runs of elements (the parameter arrays): an upper bound on an
/// [`InfoBuffer`]'s stacks after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferBound {
    len: usize,
    /// `(elements, words per element)`, in element order, covering `0..len`.
    runs: Vec<(Range<usize>, u64)>,
}

impl BufferBound {
    /// The bound of a buffer of `len` elements whose elements in each range of `runs` emit
    /// at most that many words each ([`words_bound`]); elements in no range emit none.
    pub fn new(len: usize, runs: Vec<(Range<usize>, u64)>) -> Self {
        BufferBound { len, runs }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a buffer of no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Words on all stacks at most (saturating).
    pub fn words(&self) -> u64 {
        self.runs.iter().fold(0u64, |acc, (r, w)| {
            acc.saturating_add((r.len() as u64).saturating_mul(*w))
        })
    }

    /// Words on the stack of each segment at most (segment `j` holds elements
    /// `j·SEGMENT_LEN ..`), saturating.
    pub fn segment_words(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.len.div_ceil(SEGMENT_LEN)];
        for (r, w) in &self.runs {
            let mut i = r.start;
            while i < r.end.min(self.len) {
                let j = i / SEGMENT_LEN;
                let end = ((j + 1) * SEGMENT_LEN).min(r.end).min(self.len);
                out[j] = out[j].saturating_add(((end - i) as u64).saturating_mul(*w));
                i = end;
            }
        }
        out
    }

    /// Bytes the buffer holds at most, its stacks reserved to this bound: 8 per element
    /// state, 4 per word, and the structs of the buffer and its segments (saturating).
    pub fn bytes(&self) -> u64 {
        let structs = std::mem::size_of::<InfoBuffer>() as u64
            + self.len.div_ceil(SEGMENT_LEN) as u64 * std::mem::size_of::<Segment>() as u64;
        (8 * self.len as u64)
            .saturating_add(self.words().saturating_mul(4))
            .saturating_add(structs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::{Coder, Rational};

    /// Every element against its bound, for numerators from 1 to 65535, one per multiply
    /// or two in turn on one state (as Adam's β₁ and β₂), on pseudo-random values.
    #[test]
    fn no_element_emits_more_words_than_its_bound() {
        for (ns, steps) in [
            (&[58983u64][..], 5000usize),
            (&[32768], 3000),
            (&[58983, 65471], 4000),
            (&[6554, 65535], 1000),
            (&[65535], 2000),
            (&[2], 300),
            (&[1], 300),
        ] {
            let coders: Vec<Coder> = ns
                .iter()
                .map(|&n| Coder::new(Rational::from_numerator(n).unwrap()))
                .collect();
            let len = 8;
            let mut buf = InfoBuffer::new(len);
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            for i in 0..len {
                let mut x = 0i64;
                for _ in 0..steps {
                    for k in &coders {
                        seed = seed
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        x = buf.mul_at(i, x ^ ((seed >> 20) as i64), k);
                    }
                }
            }
            let floor: f64 = ns
                .iter()
                .map(|&n| steps as f64 * Rational::from_numerator(n).unwrap().bits_per_multiply())
                .sum();
            let multiplies = (steps * ns.len()) as u64;
            let bound = words_bound(floor, multiplies, *ns.iter().max().unwrap());
            let words = buf.stack_words() as u64;
            assert!(
                words <= bound * len as u64,
                "{ns:?}: {words} words, bound {bound} per element"
            );
            // And not far above what the coder does.
            let per = words as f64 / len as f64;
            assert!(bound as f64 <= 2.1 * per + 2.0, "{ns:?}: {per} vs {bound}");
        }
    }

    #[test]
    fn a_short_run_needs_no_words_and_the_ratio_to_the_floor_is_bounded() {
        let bits = |n: u64| Rational::from_numerator(n).unwrap().bits_per_multiply();
        assert_eq!(words_bound(100.0 * bits(58983), 100, 58983), 0);
        for n in [1u64, 2, 32768, 58983, 65471, 65535] {
            let t = 1_000_000u64;
            let w = words_bound(t as f64 * bits(n), t, n) as f64;
            let floor_words = t as f64 * bits(n) / 32.0;
            assert!(w >= floor_words, "n = {n}");
            assert!(
                w <= 2.01 * floor_words + 1.0,
                "n = {n}: {w} vs {floor_words}"
            );
        }
        let r = |n: u64| {
            let t = 1_000_000u64;
            words_bound(t as f64 * bits(n), t, n) as f64 / (t as f64 * bits(n) / 32.0)
        };
        assert!((1.11..1.13).contains(&r(58983)), "{}", r(58983));
    }

    #[test]
    fn segment_words_split_runs_at_segment_edges() {
        let b = BufferBound::new(2500, vec![(0..1000, 3), (1000..2100, 5), (2100..2500, 0)]);
        assert_eq!(b.segment_words(), vec![1000 * 3 + 24 * 5, 1024 * 5, 52 * 5]);
        assert_eq!(b.words(), 3000 + 1100 * 5);
        assert!(b.bytes() >= 8 * 2500 + 4 * b.words());
        let huge = BufferBound::new(10, vec![(0..10, u64::MAX / 3)]);
        assert_eq!(huge.bytes(), u64::MAX);
    }
}
