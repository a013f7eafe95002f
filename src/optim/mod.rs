//! # Inner optimizers: SGD with momentum, forward and in reverse
//!
//! Maclaurin et al.'s form (SPEC §3), `v₀ = 0`, for t = 0..T−1:
//!
//! ```text
//! g = ∇L_t(θ_t)
//! v_{t+1} = γ·v_t − (1−γ)·g
//! θ_{t+1} = θ_t + α·v_{t+1}
//! ```
//!
//! and its inverse, run from t = T−1 down to 0:
//!
//! ```text
//! θ_t = θ_{t+1} − α·v_{t+1}
//! g   = ∇L_t(θ_t)                       (recomputed on the replayed batch t)
//! v_t = (v_{t+1} + (1−γ)·g) / γ
//! ```
//!
//! [`float`] does both in f64, where the division by γ amplifies rounding errors by 1/γ per
//! step; [`exact`] does them on fixed-point state with the rational γ, where the inverse is
//! bit-exact. Plain SGD (`θ ← θ − α·g`) is in [`float`] too, with the only reversal that needs
//! no stored gradients: `θ_t ≈ θ_{t+1} + α·∇L_t(θ_{t+1})`.

pub mod exact;
pub mod float;
pub mod verify;

pub use exact::{ExactMomentum, ExactState};
pub use float::{FloatMomentum, FloatSgd};

use serde::Serialize;

use crate::config::Hyper;
use crate::error::{Error, Result, show};
use crate::model::Objective;

/// The four differentiable hyperparameters of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyperparams {
    /// Learning rate α.
    pub alpha: f64,
    /// Momentum γ (as configured; exact runs use its rational approximation).
    pub gamma: f64,
    /// L2 penalty on the weights.
    pub l2: f64,
    /// Scale of the initial weights, θ₀ = init_scale·ε.
    pub init_scale: f64,
}

impl Hyperparams {
    /// θ₀ = init_scale·ε.
    pub fn theta0(&self, eps: &[f64]) -> Vec<f64> {
        eps.iter().map(|e| self.init_scale * e).collect()
    }

    /// The value of one hyperparameter.
    pub fn get(&self, which: Hyper) -> f64 {
        match which {
            Hyper::Alpha => self.alpha,
            Hyper::Gamma => self.gamma,
            Hyper::L2 => self.l2,
            Hyper::InitScale => self.init_scale,
        }
    }

    /// Set one hyperparameter.
    pub fn set(&mut self, which: Hyper, value: f64) {
        match which {
            Hyper::Alpha => self.alpha = value,
            Hyper::Gamma => self.gamma = value,
            Hyper::L2 => self.l2 = value,
            Hyper::InitScale => self.init_scale = value,
        }
    }
}

/// The error for a non-finite training loss at `step`.
pub(crate) fn diverged(step: usize, loss: f64, alpha: f64) -> Error {
    Error::Diverged {
        step,
        what: format!("training loss is {loss}"),
        hint: format!(
            "the inner run diverged; try a smaller inner.alpha (now {})",
            show(alpha)
        ),
    }
}

/// The error for a fixed-point value leaving the representable range at `step`.
pub(crate) fn overflow(step: usize, what: &str, alpha: f64) -> Error {
    Error::Overflow {
        step,
        what: format!(
            "{what} left the representable range ±{:.0}",
            crate::exact::MAX_VALUE
        ),
        hint: format!(
            "the inner run diverged; try a smaller inner.alpha (now {})",
            show(alpha)
        ),
    }
}

/// The error for initial weights outside the fixed-point range.
pub(crate) fn overflow_at_init() -> Error {
    Error::Overflow {
        step: 0,
        what: format!(
            "an initial weight is outside the representable range ±{:.0}",
            crate::exact::MAX_VALUE
        ),
        hint: "try a smaller model.init_scale, or check the values in model.init_file".into(),
    }
}

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `θ ← θ − α·g`.
    Sgd,
    /// SGD with momentum (SPEC §3).
    #[default]
    Momentum,
}

/// Which arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Arithmetic {
    /// f64 throughout.
    Float,
    /// Fixed-point state (with the rational γ and the information buffer for momentum).
    #[default]
    Exact,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Sgd => "sgd",
            Method::Momentum => "momentum",
        })
    }
}

impl std::fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arithmetic::Float => "float",
            Arithmetic::Exact => "exact",
        })
    }
}

/// Train `steps` steps from `theta0` and return θ_T in f64.
///
/// # Errors
/// Divergence or overflow, with the step; [`Error::Usage`] for exact plain SGD (there is no
/// exactly reversible plain SGD to run) or a γ without a rational form.
pub fn train(
    obj: &mut impl Objective,
    theta0: &[f64],
    hp: Hyperparams,
    steps: usize,
    method: Method,
    arithmetic: Arithmetic,
) -> Result<Vec<f64>> {
    let n = obj.dim();
    match (method, arithmetic) {
        (Method::Momentum, Arithmetic::Float) => {
            let (mut theta, mut v) = (theta0.to_vec(), vec![0.0; n]);
            let mut opt = FloatMomentum::new(n, hp.alpha, hp.gamma, hp.l2);
            for t in 0..steps {
                opt.step(obj, t, &mut theta, &mut v)?;
            }
            Ok(theta)
        }
        (Method::Sgd, Arithmetic::Float) => {
            let mut theta = theta0.to_vec();
            let mut opt = FloatSgd::new(n, hp.alpha, hp.l2);
            for t in 0..steps {
                opt.step(obj, t, &mut theta)?;
            }
            Ok(theta)
        }
        (Method::Momentum, Arithmetic::Exact) => {
            let gamma = crate::hypergrad::rational_gamma(hp.gamma)?;
            let (_, s) = ExactMomentum::run(obj, theta0, hp, gamma, steps)?;
            Ok(s.theta_f64())
        }
        (Method::Sgd, Arithmetic::Exact) => Err(Error::Usage(
            "exact arithmetic needs inner.optimizer = \"momentum\": plain SGD is not reversible"
                .into(),
        )),
    }
}
