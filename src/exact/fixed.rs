//! # Fixed-point vectors
//!
//! A value `a` is stored as the i64 `x = round(a · 2^F)` with `F = FRAC_BITS = 52`
//! fractional bits (quantum 2^−52 ≈ 2.2e−16, the spacing of f64 at 1). Magnitudes are
//! limited to `|x| ≤ 2^63 − 1` ([`LIMIT`]), values up to [`MAX_VALUE`] = 2048 − 2^−42, the
//! largest f64 below 2048; anything larger is reported as overflow. The rational multiply
//! never forms `x·n` (it could take 79 bits): it divides first (see
//! [`crate::exact::InfoBuffer::mul_at`]). Converting back, `x · 2^−F` is exact in f64 for
//! `|a| < 2` and correctly rounded above (a deterministic function of `x`, which is all
//! exact reversal needs; the float computations only read the state).
//!
//! Increments are computed in f64 from exactly known state, rounded to the nearest integer
//! (ties to even below 2^51 quanta, without a libm call), and added with an overflow check:
//!
//! ```text
//! x ← x + round(s·a · 2^F)        (exact; undone by x ← x − round(s·a · 2^F))
//! ```
//!
//! An increment of magnitude ≥ 2^51 quanta (≥ 0.5) is already (almost) an integer in f64:
//! it has at most one fractional bit, which the conversion truncates (a tie goes toward
//! zero there). The increment is still a deterministic function of `(s, a)`, so the undo
//! subtracts the same integer.

/// Fractional bits of the fixed-point representation.
pub const FRAC_BITS: u32 = 52;
/// Largest representable magnitude of the integer representation (`i64::MIN` is excluded,
/// so negation never overflows).
pub const LIMIT: i64 = i64::MAX;
const SCALE: f64 = (1u64 << FRAC_BITS) as f64;
const INV_SCALE: f64 = 1.0 / SCALE;
/// 2^63: integers of f64 strictly below it in magnitude convert to i64 exactly.
const BOUND_F: f64 = 9_223_372_036_854_775_808.0;
/// Largest representable magnitude of a value: 2048 − 2^−42, the largest f64 below 2048
/// (its fixed-point integer 2^63 − 2^10 is in range; 2048 itself is not).
pub const MAX_VALUE: f64 = 2048.0 - 1.0 / (1u64 << 42) as f64;

/// The fixed-point integer nearest `a`, or `None` if `a` is not finite or out of range.
///
/// ```
/// use revgrad::exact::fixed::{from_f64, to_f64};
/// assert_eq!(to_f64(from_f64(0.75).unwrap()).to_bits(), 0.75f64.to_bits());
/// assert!(from_f64(2048.0).is_none());
/// assert!(from_f64(f64::NAN).is_none());
/// ```
#[inline]
pub fn from_f64(a: f64) -> Option<i64> {
    let (x, ok) = increment(SCALE, a);
    ok.then_some(x)
}

/// The value of the fixed-point integer `x` (exact below 2 in magnitude, else correctly
/// rounded).
#[inline]
pub fn to_f64(x: i64) -> f64 {
    x as f64 * INV_SCALE
}

/// Convert a whole vector to fixed point; `Err(i)` names the first element out of range.
pub fn from_f64_slice(a: &[f64]) -> Result<Vec<i64>, usize> {
    a.iter()
        .enumerate()
        .map(|(i, &v)| from_f64(v).ok_or(i))
        .collect()
}

/// `out ← x · 2^−F` elementwise.
#[inline]
pub fn to_f64_into(x: &[i64], out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = to_f64(v);
    }
}

/// Nearest integer (ties to even) of `v`, as f64, by the `1.5·2^52` trick: exact for
/// |v| < 2^51 and free of libm calls (baseline x86-64 has no rounding instruction), so the
/// loops below vectorise. Larger or non-finite `v` come out beyond the range or NaN, which
/// every caller's range check rejects.
#[inline(always)]
fn round_nearest(v: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    (v + MAGIC) - MAGIC
}

/// `v` rounded to an integer-valued f64: to nearest (ties to even) below 2^51, where f64
/// still has fractional bits; above, `v` has at most one fractional bit and is returned as
/// is (the integer conversion truncates it). A deterministic function of `v` either way.
#[inline(always)]
fn integral(v: f64) -> f64 {
    if v.abs() < 2_251_799_813_685_248.0 {
        round_nearest(v)
    } else {
        v
    }
}

/// The fixed-point increment `round(s·a · 2^F)` for a pre-scaled factor `s_scaled = s·2^F`,
/// and whether it is in range (`|inc| ≤ LIMIT`; NaN and ±∞ are out of range).
#[inline(always)]
pub fn increment(s_scaled: f64, a: f64) -> (i64, bool) {
    let inc = integral(s_scaled * a);
    let ok = inc.abs() < BOUND_F;
    (to_i64(if ok { inc } else { 0.0 }), ok)
}

/// An integer-valued f64 of magnitude below 2^63 as an i64: one truncating conversion,
/// without the saturation and NaN fix-ups that `as` adds (a third of the exact step's
/// instructions). Callers select a value in range first.
#[inline(always)]
fn to_i64(v: f64) -> i64 {
    debug_assert!(v.abs() < BOUND_F);
    // SAFETY: |v| < 2^63 and v is not NaN (callers replace anything else by 0.0), so
    // the truncated value is representable in an i64.
    unsafe { v.to_int_unchecked::<i64>() }
}

/// `s·2^F`: the factor [`increment`] takes.
#[inline(always)]
pub fn scaled(s: f64) -> f64 {
    s * SCALE
}

/// `x + inc`, and whether the sum is in range (no wrap, and not `i64::MIN`).
#[inline(always)]
pub fn checked_sum(x: i64, inc: i64) -> (i64, bool) {
    let (y, wrapped) = x.overflowing_add(inc);
    (y, !wrapped & (y != i64::MIN))
}

/// `x ← x + round(s·a · 2^F)` elementwise. Returns `false` if any increment or result left
/// the representable range (the state is then unusable, and the caller reports overflow).
#[inline]
pub fn add_scaled(x: &mut [i64], s: f64, a: &[f64]) -> bool {
    let s = scaled(s);
    let mut ok = true;
    for (x, &a) in x.iter_mut().zip(a) {
        let (inc, ok1) = increment(s, a);
        let (y, ok2) = checked_sum(*x, inc);
        ok &= ok1 & ok2;
        *x = y;
    }
    ok
}

/// `x ← x − round(s·a · 2^F)`: the exact inverse of [`add_scaled`] with the same `s, a`.
#[inline]
pub fn sub_scaled(x: &mut [i64], s: f64, a: &[f64]) -> bool {
    let s = scaled(s);
    let mut ok = true;
    for (x, &a) in x.iter_mut().zip(a) {
        let (inc, ok1) = increment(s, a);
        let (y, ok2) = checked_sum(*x, inc.wrapping_neg());
        ok &= ok1 & ok2;
        *x = y;
    }
    ok
}

/// Fractional bits of the wide (i128) fixed point that Adam's moments m and s use.
pub const WIDE_FRAC_BITS: u32 = 92;
/// Largest magnitude of a wide integer: `x·n + c` with `n < 2^16` must fit an i128.
pub const WIDE_LIMIT: i128 = (1 << 111) - 1;
const WIDE_SCALE: f64 = (1u128 << WIDE_FRAC_BITS) as f64;
const WIDE_INV_SCALE: f64 = 1.0 / WIDE_SCALE;
const WIDE_LIMIT_F: f64 = WIDE_LIMIT as f64;
/// Largest magnitude of a wide value, 2^19 = 524288 (quantum 2^−92 ≈ 2.0e−28).
pub const WIDE_MAX_VALUE: f64 = WIDE_LIMIT_F / WIDE_SCALE;

/// The value of the wide fixed-point integer `x`, as `(⌊x/2^48⌋·2^48 + (x mod 2^48))·2^−92`
/// from two hardware i64→f64 conversions (|x| < 2^111, so the high part fits an i64): at
/// most one rounding more than the correctly rounded value (the software 128-bit
/// conversion cost more than the whole rest of an Adam step's element), and a
/// deterministic function of `x`, which is what exact reversal needs.
#[inline(always)]
pub fn wide_to_f64(x: i128) -> f64 {
    const TWO_48: f64 = (1u64 << 48) as f64;
    let hi = (x >> 48) as i64;
    let lo = (x as i64) & ((1 << 48) - 1);
    (hi as f64 * TWO_48 + lo as f64) * WIDE_INV_SCALE
}

/// `s·2^92`: the factor [`wide_increment`] takes.
#[inline(always)]
pub fn wide_scaled(s: f64) -> f64 {
    s * WIDE_SCALE
}

/// The wide increment `round(s·a · 2^92)` for `s_scaled = s·2^92`, and whether it is in
/// range (rounded as [`increment`] rounds: to nearest below 2^51, else the f64 as is).
#[inline(always)]
pub fn wide_increment(s_scaled: f64, a: f64) -> (i128, bool) {
    let r = integral(s_scaled * a);
    (integral_to_i128(r), r.abs() <= WIDE_LIMIT_F)
}

/// An integer-valued f64 as an i128, branch-free and without the software 128-bit
/// conversion: `h = trunc(r·2^−62)` (exact scaling, |h| ≤ 2^49 in range) and `l = r − h·2^62`,
/// which is exact (|l| < 2^62 and, when |r| ≥ 2^62, a multiple of r's spacing 2^10 or more,
/// so at most 52 significant bits); then `r = h·2^62 + l` in integers. Beyond the wide range
/// (and NaN) it gives 0: callers reject those by their range check. An increment's
/// magnitude straddles 2^63 from element to element, so a branch there mispredicted often.
#[inline(always)]
fn integral_to_i128(r: f64) -> i128 {
    const TWO_62: f64 = (1u64 << 62) as f64;
    let r = if r.abs() <= WIDE_LIMIT_F { r } else { 0.0 };
    let h = to_i64(r * (1.0 / TWO_62));
    let l = to_i64(r - h as f64 * TWO_62);
    ((h as i128) << 62) + l as i128
}

/// `x + inc` for wide integers, and whether the sum is in range.
#[inline(always)]
pub fn wide_checked_sum(x: i128, inc: i128) -> (i128, bool) {
    let y = x.wrapping_add(inc);
    (y, y.unsigned_abs() <= WIDE_LIMIT as u128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn range_limits_are_errors() {
        assert_eq!(from_f64(0.0), Some(0));
        assert!(from_f64(MAX_VALUE).is_some());
        assert!(from_f64(-MAX_VALUE).is_some());
        assert!(from_f64(MAX_VALUE * 1.0001).is_none());
        assert!(from_f64(f64::NAN).is_none());
        assert!(from_f64(f64::INFINITY).is_none());
        let mut x = vec![LIMIT - 1];
        assert!(
            !add_scaled(&mut x, 1.0, &[1.0]),
            "overflow must be reported"
        );
        let mut x = vec![-LIMIT + 1];
        assert!(!sub_scaled(&mut x, 1.0, &[1.0]));
        let mut x = vec![0];
        assert!(!add_scaled(&mut x, 1.0, &[f64::NAN]));
    }

    #[test]
    fn fast_rounding_matches_ties_to_even() {
        for v in [
            0.0,
            0.4,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.6,
            1e10 + 0.5,
            -(2f64.powi(50)) - 0.5,
        ] {
            // Compared as integers: −0.5 gives +0.0 here and −0.0 in std, the same integer.
            assert_eq!(round_nearest(v) as i64, v.round_ties_even() as i64, "{v}");
        }
        // Out-of-range inputs are flagged, never silently wrapped.
        for v in [
            2f64.powi(63),
            -(2f64.powi(63)),
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NAN,
        ] {
            assert!(!increment(1.0, v).1, "{v}");
        }
        // Beyond 2^51 the increment is the f64 itself (at most one fractional bit,
        // truncated), up to the largest f64 below 2^63.
        for v in [
            2f64.powi(51) + 0.5,
            -(2f64.powi(52)) - 2.0,
            2f64.powi(63) - 1024.0,
        ] {
            let (x, ok) = increment(1.0, v);
            assert!(ok, "{v}");
            assert_eq!(x, v.trunc() as i64, "{v}");
        }
    }

    #[test]
    fn sums_detect_wrapping() {
        assert_eq!(checked_sum(LIMIT - 1, 1), (LIMIT, true));
        assert!(!checked_sum(LIMIT, 1).1);
        assert!(!checked_sum(-LIMIT, -1).1, "i64::MIN is out of range");
        assert!(!checked_sum(-LIMIT, i64::MIN + 1).1);
        assert_eq!(checked_sum(-5, 3), (-2, true));
    }

    #[test]
    fn wide_conversions_match_the_software_ones() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..200_000 {
            // Integers of every magnitude up to 2^111, both signs.
            let bits = (next() % 112) as u32;
            let x = ((next() as i128) << 64 | next() as i128) >> (127 - bits.min(126));
            let x = if next() & 1 == 1 { -x } else { x };
            let exact = x as f64 * WIDE_INV_SCALE;
            let fast = wide_to_f64(x);
            assert!(
                (fast - exact).abs() <= exact.abs() * f64::EPSILON,
                "{x}: {fast} vs {exact}"
            );
            // Integral f64 of every magnitude: the two-part conversion is exact.
            let exponent = 1023 + next() % 115;
            let sign = next() & (1 << 63);
            let r = integral(f64::from_bits(sign | exponent << 52 | next() >> 12));
            if r.abs() <= WIDE_LIMIT_F {
                assert_eq!(integral_to_i128(r), r as i128, "{r}");
            }
        }
        assert_eq!(integral_to_i128(f64::NAN), 0);
        assert_eq!(integral_to_i128(-(2f64.powi(100))), -(1i128 << 100));
    }

    #[test]
    fn wide_range_limits_are_errors() {
        assert!(wide_increment(wide_scaled(1.0), WIDE_MAX_VALUE * 0.99).1);
        assert!(!wide_increment(wide_scaled(1.0), WIDE_MAX_VALUE * 1.01).1);
        assert!(!wide_increment(wide_scaled(1.0), f64::NAN).1);
        assert!(!wide_checked_sum(WIDE_LIMIT, 1).1);
        assert!(wide_checked_sum(WIDE_LIMIT, -1).1);
        let (x, ok) = wide_increment(wide_scaled(0.25), 3.0);
        assert!(ok);
        assert_eq!(wide_to_f64(x).to_bits(), 0.75f64.to_bits());
    }

    proptest! {
        #[test]
        fn fast_rounding_is_exact_in_range(v in -(2f64.powi(50))..2f64.powi(50)) {
            prop_assert_eq!(round_nearest(v) as i64, v.round_ties_even() as i64);
        }

        #[test]
        fn add_then_sub_is_identity(x0 in -LIMIT / 2..LIMIT / 2, s in -10.0f64..10.0, a in -50.0f64..50.0) {
            let mut x = vec![x0];
            prop_assert!(add_scaled(&mut x, s, &[a]));
            prop_assert!(sub_scaled(&mut x, s, &[a]));
            prop_assert_eq!(x[0], x0);
        }

        #[test]
        fn round_trip_within_half_quantum(a in -2000.0f64..2000.0) {
            let x = from_f64(a).unwrap();
            prop_assert!((to_f64(x) - a).abs() <= 0.5 / SCALE);
        }
    }
}
