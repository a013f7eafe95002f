//! # Division by an invariant integer: one multiply and one shift
//!
//! The information buffer divides by the same few numbers (a rational's numerator n and
//! its rANS slot widths) millions of times, and every dividend is below 2^63. For such
//! dividends one 64×64→128 multiply suffices (the general 64-bit method needs a 65-bit
//! multiplier, so two multiplies and an add, which `strength_reduce` did).
//!
//! For a divisor `f` of bit length `b` that is not a power of two, take `K = 63 + b` and
//! `M = ⌈2^K/f⌉`. Then `f ≥ 2^(b−1) + 1`, so `2^K/f ≤ 2^64/(1 + 2^(1−b)) < 2^64 − 1` and M
//! fits 64 bits; and `e = M·f − 2^K` lies in `[1, f)`. For `0 ≤ x < 2^63`:
//!
//! ```text
//! x·M/2^K = x/f + x·e/(f·2^K),   0 < x·e/(f·2^K) < 2^63·2^b/(f·2^K) = 1/f
//! ```
//!
//! and `x/f` is at most `⌊x/f⌋ + (f−1)/f`, so `⌊x·M/2^K⌋ = ⌊x/f⌋`. It is computed as
//! `⌊(2x)·M/2^64⌋ ≫ b` (the high word of one product, then a shift), which a power of two
//! `f = 2^j` also fits, with `M = 2^63` and shift j, including f = 1. The remainder is
//! `x − q·f`.

/// A divisor `f ≥ 1` (below 2^63) prepared for [`Divisor::div_rem`].
#[derive(Debug, Clone, Copy)]
pub struct Divisor {
    f: u64,
    m: u64,
    shift: u32,
}

impl Divisor {
    /// Prepare `f`.
    ///
    /// # Panics
    /// If `f` is 0 or at least 2^63 (a programming error: the buffer's divisors are below
    /// 2^32).
    pub fn new(f: u64) -> Self {
        assert!(f > 0 && f < 1 << 63, "divisor {f} out of range");
        if f.is_power_of_two() {
            return Divisor {
                f,
                m: 1 << 63,
                shift: f.trailing_zeros(),
            };
        }
        let b = u64::BITS - f.leading_zeros();
        let k = 63 + b;
        let m = (1u128 << k).div_ceil(u128::from(f));
        Divisor {
            f,
            m: u64::try_from(m).expect("M < 2^64 for a divisor that is not a power of two"),
            shift: b,
        }
    }

    /// `(⌊x/f⌋, x mod f)` for `x < 2^63`. A larger `x` gives a wrong result (checked in
    /// debug builds only: this is the information buffer's innermost loop, whose dividends
    /// are all below 2^63; the module is private to the crate).
    #[inline(always)]
    pub fn div_rem(&self, x: u64) -> (u64, u64) {
        debug_assert!(x < 1 << 63, "dividend {x} ≥ 2^63");
        let q = ((u128::from(x << 1) * u128::from(self.m)) >> 64) as u64 >> self.shift;
        (q, x - q * self.f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(f: u64, x: u64) {
        let d = Divisor::new(f);
        assert_eq!(d.div_rem(x), (x / f, x % f), "{x} / {f}");
    }

    #[test]
    fn edges() {
        let top = (1u64 << 63) - 1;
        let mut divisors = vec![1, 2, 3, 5, 7, 65535, 65536, 65537, (1 << 32) - 1, 1 << 32];
        for b in 1..63 {
            divisors.extend([1u64 << b, (1 << b) + 1, (1 << (b + 1)) - 1]);
        }
        for f in divisors {
            for x in [
                0,
                1,
                f - 1,
                f,
                f + 1,
                top,
                top - 1,
                top - (top % f),
                1 << 48,
            ] {
                if x <= top {
                    check(f, x);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn matches_hardware_division(f in 1u64..1 << 33, x in 0u64..1 << 63) {
            check(f, x);
        }

        #[test]
        fn matches_for_small_divisors_near_multiples(f in 1u64..65536, k in 0u64..(1 << 47), off in 0u64..3) {
            // x = k·f − 1 + off: just below, at and above multiples, where a wrong M shows.
            check(f, (k * f + off).saturating_sub(1).min((1 << 63) - 1));
        }

        #[test]
        fn matches_for_wide_divisors(f in 1u64..1 << 62, x in 0u64..1 << 63) {
            check(f, x);
        }
    }
}
