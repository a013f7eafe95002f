//! # Activation functions
//!
//! Hidden layers apply `h = act(z)` elementwise. The gradient needs `act'`, the exact
//! Hessian-vector product (R-operator) also needs `act''`:
//!
//! ```text
//! tanh:     a = tanh z           a' = 1 − a²              a'' = −2·a·a'
//! relu:     a = max(z, 0)        a' = [z > 0]             a'' = 0   (kink at 0 ignored)
//! softplus: a = ln(1 + eᶻ)       a' = σ(z) = 1/(1+e⁻ᶻ)    a'' = σ(z)·(1 − σ(z))
//! ```
//!
//! softplus is computed as `max(z, 0) + ln(1 + t)` with `t = e^−|z|`, so it neither overflows
//! for large `z` nor loses precision for very negative `z`, and `σ(z) = [z ≥ 0 ? 1 : t]/(1 + t)`
//! from the same `t`.
//!
//! tanh does not call libm (whose `tanh`/`expm1` took about 30% of a hypergradient): with
//! `e = expm1(2|z|)`, `tanh z = sign(z)·e/(e + 2)`, and `expm1` by Cody–Waite reduction
//! `y = k·ln 2 + r`, `|r| ≤ ln 2/2`, a degree-13 Taylor polynomial for `e^r − 1` (truncation
//! below 2⁻⁵⁵ relative) and `expm1 y = 2^k·(e^r − 1) + (2^k − 1)`. The path has no branch
//! but a select, so the compiler can vectorise the activation loop; it is plain IEEE
//! arithmetic, so it is deterministic on every machine. Accuracy: within 4 ulp of libm's
//! tanh everywhere (tested), |z| ≥ 22 gives ±1 exactly as libm does, NaN stays NaN.
//!
//! softplus does not call libm either: `e^x` for `x ≤ 0` by the same reduction (`2^k` applied
//! as two factors so results down to the subnormals are right), and `ln(1 + t)` for
//! `0 ≤ t ≤ 1` by fdlibm's `f − (f²/2 − s·(f²/2 + R(s²)))`, `s = f/(2 + f)`, with `f = t` for
//! `t < ½` and `f = (t − 1)/2` (exact) plus `ln 2` above, `R` the atanh series to s²⁰ (its
//! truncation is below 2⁻⁵⁵ for `|s| ≤ 0.2`). softplus and σ are within a few ulp of the
//! libm formulas (tested on 800k points).
//!
//! [`Activation::forward_slices`] applies `act`, `act'` and optionally `act''` over
//! contiguous slices, in loops without branches or calls, compiled for AVX-512, AVX2 or the
//! baseline by runtime detection. Every path runs the same IEEE operations per element (no
//! fused multiply-adds: Rust never contracts), so the bits do not depend on the path, and
//! [`Activation::value`]/[`Activation::derivatives`] return the same bits one at a time.

use serde::{Deserialize, Serialize};

/// Hidden-layer nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Hyperbolic tangent (default).
    #[default]
    Tanh,
    /// Rectified linear unit.
    Relu,
    /// ln(1 + eᶻ).
    Softplus,
}

impl Activation {
    /// Name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Softplus => "softplus",
        }
    }

    /// `act(z)`.
    #[inline]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => tanh(z),
            Activation::Relu => z.max(0.0),
            Activation::Softplus => softplus(z),
        }
    }

    /// `a ← act(z)`, `d1 ← act'(z)` and, when given, `d2 ← act''(z)`, elementwise over
    /// slices of equal length: the same bits as [`Activation::value`] and
    /// [`Activation::derivatives`], vectorised.
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn forward_slices(self, z: &[f64], a: &mut [f64], d1: &mut [f64], d2: Option<&mut [f64]>) {
        let n = z.len();
        assert!(a.len() == n && d1.len() == n, "slice lengths differ");
        assert!(
            d2.as_ref().is_none_or(|d| d.len() == n),
            "slice lengths differ"
        );
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") {
                // SAFETY: the feature was just detected.
                return unsafe { forward_avx512(self, z, a, d1, d2) };
            }
            if has!("avx2") {
                // SAFETY: the feature was just detected.
                return unsafe { forward_avx2(self, z, a, d1, d2) };
            }
        }
        forward_loops(self, z, a, d1, d2)
    }

    /// `(act'(z), act''(z))` given `z` and `a = act(z)`.
    ///
    /// ```
    /// use revgrad::model::Activation;
    /// let (z, a) = (0.5, Activation::Tanh.value(0.5));
    /// let (d1, d2) = Activation::Tanh.derivatives(z, a);
    /// assert!((d1 - (1.0 - a * a)).abs() < 1e-15);
    /// assert!((d2 + 2.0 * a * d1).abs() < 1e-15);
    /// ```
    #[inline]
    pub fn derivatives(self, z: f64, a: f64) -> (f64, f64) {
        match self {
            Activation::Tanh => {
                let d1 = 1.0 - a * a;
                (d1, -2.0 * a * d1)
            }
            Activation::Relu => (if z > 0.0 { 1.0 } else { 0.0 }, 0.0),
            Activation::Softplus => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn forward_avx512(
    act: Activation,
    z: &[f64],
    a: &mut [f64],
    d1: &mut [f64],
    d2: Option<&mut [f64]>,
) {
    forward_loops(act, z, a, d1, d2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(act: Activation, z: &[f64], a: &mut [f64], d1: &mut [f64], d2: Option<&mut [f64]>) {
    forward_loops(act, z, a, d1, d2)
}

/// The loops of [`Activation::forward_slices`], one per activation and `d2` or not.
#[inline(always)]
fn forward_loops(
    act: Activation,
    z: &[f64],
    a: &mut [f64],
    d1: &mut [f64],
    d2: Option<&mut [f64]>,
) {
    match act {
        Activation::Tanh => each(z, a, d1, d2, |z| {
            let a = tanh(z);
            let d1 = 1.0 - a * a;
            (a, d1, -2.0 * a * d1)
        }),
        Activation::Relu => each(z, a, d1, d2, |z| {
            (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }, 0.0)
        }),
        Activation::Softplus => each(z, a, d1, d2, |z| {
            let t = exp_nonpositive(-z.abs());
            let s = sigmoid_of(z, t);
            (z.max(0.0) + ln_1p_unit(t), s, s * (1.0 - s))
        }),
    }
}

/// `(a, d1, d2) = f(z)` over the slices; without `d2` its computation is dead code.
#[inline(always)]
fn each(
    z: &[f64],
    a: &mut [f64],
    d1: &mut [f64],
    d2: Option<&mut [f64]>,
    f: impl Fn(f64) -> (f64, f64, f64),
) {
    match d2 {
        Some(d2) => {
            for (((&z, a), d1), d2) in z.iter().zip(a.iter_mut()).zip(d1.iter_mut()).zip(d2) {
                (*a, *d1, *d2) = f(z);
            }
        }
        None => {
            for ((&z, a), d1) in z.iter().zip(a.iter_mut()).zip(d1.iter_mut()) {
                let (x, y, _) = f(z);
                (*a, *d1) = (x, y);
            }
        }
    }
}

/// `tanh z` without libm (see the module docs).
#[inline(always)]
pub fn tanh(z: f64) -> f64 {
    // |z| ≥ 22: e^(2·22) ≈ 1.3e19, so e/(e+2) rounds to 1. NaN compares false and stays NaN.
    let a = z.abs();
    let a = if a > 22.0 { 22.0 } else { a };
    let e = expm1_reduced(2.0 * a);
    (e / (e + 2.0)).copysign(z)
}

/// `e^y − 1` for `0 ≤ y ≤ 44` (or NaN), branch-free.
#[inline(always)]
fn expm1_reduced(y: f64) -> f64 {
    let km = y * INV_LN2 + MAGIC;
    let k = km - MAGIC;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = expm1_poly(r);
    // 2^k exactly (0 ≤ k ≤ 64 here; a NaN y makes p NaN, whatever the scale).
    let scale = pow2(km);
    scale * p + (scale - 1.0)
}

const INV_LN2: f64 = std::f64::consts::LOG2_E;
// ln 2 split so that k·LN2_HI is exact for |k| < 2^11 (Cody–Waite).
// (fdlibm's split: LN2_HI has 32 trailing zero bits.)
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// 1.5·2^52: `x + MAGIC − MAGIC` rounds x to the nearest integer, and the bits of
/// `k + MAGIC` are MAGIC's plus k.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// `2^k` from `km = k + MAGIC`, for integer `−1022 ≤ k ≤ 1023`: the low 12 bits of
/// `bits(km) + 1023` are `k + 1023`, shifted into the exponent field. Integer lane operations
/// only, so the loops stay vectorised (an `as i64` conversion would not, before AVX-512DQ).
#[inline(always)]
fn pow2(km: f64) -> f64 {
    f64::from_bits(km.to_bits().wrapping_add(1023) << 52)
}

/// `e^r − 1` for `|r| ≤ ln 2/2`: `r + r²/2! + … + r¹³/13!`, Horner in r.
#[inline(always)]
fn expm1_poly(r: f64) -> f64 {
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for c in [
        1.0 / 479_001_600.0, // 1/12!
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
    ] {
        p = p * r + c;
    }
    p * r
}

/// `e^x` for `x ≤ 0` (or NaN), branch-free, down to the subnormals.
#[inline(always)]
fn exp_nonpositive(x: f64) -> f64 {
    // e^−746 < 2^−1076: rounds to 0 either way. NaN compares false and stays NaN.
    let x = if x < -746.0 { -746.0 } else { x };
    let km = x * INV_LN2 + MAGIC;
    let k = km - MAGIC;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let er = 1.0 + expm1_poly(r);
    // 2^k (k ≥ −1076) as 2^k1·2^k2, k1 = round(k/2), both factors normal: the first product
    // is exact, the second rounds once (into the subnormals when the result is that small).
    let k1m = k * 0.5 + MAGIC;
    let k2m = (k - (k1m - MAGIC)) + MAGIC;
    er * pow2(k1m) * pow2(k2m)
}

/// `ln(1 + t)` for `0 ≤ t ≤ 1` (or NaN), branch-free (see the module docs).
#[inline(always)]
fn ln_1p_unit(t: f64) -> f64 {
    // t ≥ ½: 1 + t = 2·(1 + f) with f = (t − 1)/2 ∈ [−¼, 0], exact (Sterbenz, then halving).
    let big = t >= 0.5;
    let f = if big { 0.5 * (t - 1.0) } else { t };
    let k = if big { 1.0 } else { 0.0 };
    let s = f / (2.0 + f);
    let z = s * s;
    // R = Σ_{n=1..11} 2/(2n+1)·s^{2n}, Horner in z.
    let mut r = 2.0 / 23.0;
    for c in [
        2.0 / 21.0,
        2.0 / 19.0,
        2.0 / 17.0,
        2.0 / 15.0,
        2.0 / 13.0,
        2.0 / 11.0,
        2.0 / 9.0,
        2.0 / 7.0,
        2.0 / 5.0,
        2.0 / 3.0,
    ] {
        r = r * z + c;
    }
    let r = r * z;
    let hfsq = 0.5 * f * f;
    k * LN2_HI + (f - (hfsq - (s * (hfsq + r) + k * LN2_LO)))
}

/// `ln(1 + eᶻ)` without libm.
#[inline(always)]
pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + ln_1p_unit(exp_nonpositive(-z.abs()))
}

/// σ(z) given `t = e^−|z|`.
#[inline(always)]
fn sigmoid_of(z: f64, t: f64) -> f64 {
    (if z >= 0.0 { 1.0 } else { t }) / (1.0 + t)
}

/// Logistic function, without libm and without overflow.
#[inline(always)]
fn sigmoid(z: f64) -> f64 {
    sigmoid_of(z, exp_nonpositive(-z.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::{Rng, SeedableRng};

    /// Distance in units in the last place between two finite f64 of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn tanh_is_within_4_ulp_of_libm() {
        // A dense grid over ±30 (tanh is ±1 beyond 19.1), the small-argument region, and
        // random points.
        let worst = worst_ulps(30.0, tanh, f64::tanh);
        assert!(worst.0 <= 4, "{} ulp at z = {}", worst.0, worst.1);
    }

    #[test]
    fn tanh_special_values() {
        assert_eq!(tanh(0.0).to_bits(), 0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0f64).to_bits());
        assert_eq!(tanh(f64::INFINITY).to_bits(), 1f64.to_bits());
        assert_eq!(tanh(f64::NEG_INFINITY).to_bits(), (-1f64).to_bits());
        assert_eq!(tanh(30.0).to_bits(), 1f64.to_bits());
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(1e-300).to_bits(), 1e-300f64.to_bits());
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for act in [Activation::Tanh, Activation::Softplus, Activation::Relu] {
            for &z in &[-3.0, -0.7, 0.3, 1.9, 25.0, -40.0] {
                let h = 1e-5;
                let (d1, d2) = act.derivatives(z, act.value(z));
                let fd1 = (act.value(z + h) - act.value(z - h)) / (2.0 * h);
                let fd2 = (act.derivatives(z + h, act.value(z + h)).0
                    - act.derivatives(z - h, act.value(z - h)).0)
                    / (2.0 * h);
                assert!((d1 - fd1).abs() < 1e-8, "{act:?} z={z}: {d1} vs {fd1}");
                assert!((d2 - fd2).abs() < 1e-7, "{act:?} z={z}: {d2} vs {fd2}");
            }
        }
    }

    /// The worst ulp distance of `ours` from `reference` over a dense grid, powers of ten
    /// and random points in ±`range`, as (ulp, z).
    fn worst_ulps(
        range: f64,
        ours: impl Fn(f64) -> f64,
        reference: impl Fn(f64) -> f64,
    ) -> (u64, f64) {
        let mut worst = (0u64, 0.0);
        let mut check = |z: f64| {
            let (a, b) = (ours(z), reference(z));
            let u = if a.to_bits() == b.to_bits() {
                0
            } else {
                ulps(a, b)
            };
            if u > worst.0 {
                worst = (u, z);
            }
        };
        for i in -300_000..=300_000 {
            check(i as f64 * range / 300_000.0);
        }
        for e in -320..=2 {
            let z = 10f64.powi(e);
            for z in [z, -z, 1.37 * z, -1.37 * z] {
                if z.abs() <= range {
                    check(z);
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..200_000 {
            check(rng.random_range(-range..range));
        }
        worst
    }

    fn softplus_libm(z: f64) -> f64 {
        z.max(0.0) + (-z.abs()).exp().ln_1p()
    }

    fn sigmoid_libm(z: f64) -> f64 {
        if z >= 0.0 {
            1.0 / (1.0 + (-z).exp())
        } else {
            let e = z.exp();
            e / (1.0 + e)
        }
    }

    #[test]
    fn softplus_and_sigmoid_are_within_4_ulp_of_libm() {
        // ±745 reaches the subnormal results of softplus(z) ≈ eᶻ.
        for range in [40.0, 745.0] {
            let (u, z) = worst_ulps(range, softplus, softplus_libm);
            assert!(u <= 4, "softplus: {u} ulp at z = {z}");
            let (u, z) = worst_ulps(range, sigmoid, sigmoid_libm);
            assert!(u <= 4, "sigmoid: {u} ulp at z = {z}");
        }
    }

    #[test]
    fn exp_and_ln_1p_pieces_are_within_2_ulp_of_libm() {
        let (u, x) = worst_ulps(746.0, |x| exp_nonpositive(-x.abs()), |x| (-x.abs()).exp());
        assert!(u <= 2, "exp: {u} ulp at x = {x}");
        let (u, t) = worst_ulps(1.0, |t| ln_1p_unit(t.abs()), |t| t.abs().ln_1p());
        assert!(u <= 2, "ln_1p: {u} ulp at t = {t}");
    }

    #[test]
    fn softplus_special_values() {
        assert_eq!(softplus(f64::INFINITY).to_bits(), f64::INFINITY.to_bits());
        assert_eq!(softplus(f64::NEG_INFINITY).to_bits(), 0f64.to_bits());
        assert_eq!(softplus(-800.0).to_bits(), 0f64.to_bits());
        assert_eq!(softplus(0.0).to_bits(), std::f64::consts::LN_2.to_bits());
        assert_eq!(softplus(40.0).to_bits(), 40f64.to_bits());
        assert!(softplus(f64::NAN).is_nan());
        assert!(sigmoid(f64::NAN).is_nan());
        assert_eq!(sigmoid(f64::INFINITY).to_bits(), 1f64.to_bits());
        assert_eq!(sigmoid(f64::NEG_INFINITY).to_bits(), 0f64.to_bits());
        assert_eq!(sigmoid(0.0).to_bits(), 0.5f64.to_bits());
        assert_eq!(exp_nonpositive(0.0).to_bits(), 1f64.to_bits());
        assert_eq!(
            exp_nonpositive(-1075.0 * std::f64::consts::LN_2 + 0.1).to_bits(),
            5e-324f64.to_bits()
        );
    }

    /// The slice kernels give the scalar functions' bits, on every path this machine has.
    #[test]
    fn forward_slices_match_the_scalar_functions_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut z: Vec<f64> = (0..1003).map(|_| rng.random_range(-30.0..30.0)).collect();
        z.extend([
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            800.0,
            -800.0,
            f64::NAN,
            f64::INFINITY,
        ]);
        let n = z.len();
        type Path = fn(Activation, &[f64], &mut [f64], &mut [f64], Option<&mut [f64]>);
        let mut paths: Vec<(&str, Path)> = vec![("loops", forward_loops)];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                paths.push(("avx2", |act, z, a, d1, d2| unsafe {
                    forward_avx2(act, z, a, d1, d2)
                }));
            }
            if has!("avx512f") {
                paths.push(("avx512", |act, z, a, d1, d2| unsafe {
                    forward_avx512(act, z, a, d1, d2)
                }));
            }
        }
        let same = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
        for act in [Activation::Tanh, Activation::Relu, Activation::Softplus] {
            for (name, path) in &paths {
                let (mut a, mut d1, mut d2) = (vec![0.0; n], vec![0.0; n], vec![7.0; n]);
                path(act, &z, &mut a, &mut d1, Some(&mut d2));
                let (mut a1, mut d11, mut d21) = (vec![0.0; n], vec![0.0; n], vec![7f64; n]);
                path(act, &z, &mut a1, &mut d11, None);
                let _ = &mut d21;
                for i in 0..n {
                    let v = act.value(z[i]);
                    let (p, q) = act.derivatives(z[i], v);
                    assert!(
                        same(a[i], v) && same(d1[i], p) && same(d2[i], q),
                        "{act:?} {name} z={}",
                        z[i]
                    );
                    assert!(
                        same(a1[i], v) && same(d11[i], p) && d21[i].to_bits() == 7f64.to_bits(),
                        "{act:?} {name} z={}",
                        z[i]
                    );
                }
            }
        }
        let mut a = vec![0.0; n];
        let mut d1 = vec![0.0; n];
        Activation::Tanh.forward_slices(&z, &mut a, &mut d1, None);
        assert!(a.iter().zip(&z).all(|(&a, &z)| same(a, tanh(z))));
    }

    #[test]
    fn softplus_is_stable() {
        assert!((Activation::Softplus.value(800.0) - 800.0).abs() < 1e-12);
        assert!(Activation::Softplus.value(-800.0) >= 0.0);
    }
}
