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
//! softplus is computed as `max(z, 0) + ln(1 + e^−|z|)` so it neither overflows for large
//! `z` nor loses precision for very negative `z`.
//!
//! tanh does not call libm (whose `tanh`/`expm1` took about 30% of a hypergradient): with
//! `e = expm1(2|z|)`, `tanh z = sign(z)·e/(e + 2)`, and `expm1` by Cody–Waite reduction
//! `y = k·ln 2 + r`, `|r| ≤ ln 2/2`, a degree-13 Taylor polynomial for `e^r − 1` (truncation
//! below 2⁻⁵⁵ relative) and `expm1 y = 2^k·(e^r − 1) + (2^k − 1)`. The path has no branch
//! but a select, so the compiler can vectorise the activation loop; it is plain IEEE
//! arithmetic, so it is deterministic on every machine. Accuracy: within 4 ulp of libm's
//! tanh everywhere (tested), |z| ≥ 22 gives ±1 exactly as libm does, NaN stays NaN.

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
            Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
        }
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
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    // ln 2 split so that k·LN2_HI is exact for |k| < 2^11 (Cody–Waite).
    // (fdlibm's split: LN2_HI has 32 trailing zero bits.)
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52: round to nearest
    let k = (y * INV_LN2 + MAGIC) - MAGIC;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    // e^r − 1 = r + r²/2! + … + r¹³/13!, Horner in r.
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
    let p = p * r;
    // 2^k exactly, from its bits (0 ≤ k ≤ 64 here; a NaN y gives k = NaN → 0 → 1, and p
    // carries the NaN).
    let scale = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    scale * p + (scale - 1.0)
}

/// Numerically stable logistic function.
#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
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
        let mut worst = (0u64, 0.0);
        let mut check = |z: f64| {
            let (a, b) = (tanh(z), z.tanh());
            let u = if a.to_bits() == b.to_bits() {
                0
            } else {
                ulps(a, b)
            };
            if u > worst.0 {
                worst = (u, z);
            }
        };
        // A dense grid over the whole range, the small-argument region, and random points.
        for i in -300_000..=300_000 {
            check(i as f64 * 1e-4);
        }
        for e in -320..=2 {
            let z = 10f64.powi(e);
            check(z);
            check(-z);
            check(1.37 * z);
        }
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            check(rng.random_range(-25.0..25.0));
        }
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

    #[test]
    fn softplus_is_stable() {
        assert!((Activation::Softplus.value(800.0) - 800.0).abs() < 1e-12);
        assert!(Activation::Softplus.value(-800.0) >= 0.0);
    }
}
