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
            Activation::Tanh => z.tanh(),
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
