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
//! [`momentum::FloatMomentum`] does both in f64, where the division by γ amplifies rounding
//! errors by 1/γ per step; [`momentum::ExactMomentum`] does them on fixed-point state with
//! the rational γ, where the inverse is bit-exact. α and γ come per step and parameter array
//! from their blocks ([`plan`]). Plain SGD (`θ ← θ − α·g`) is in [`float`] too, with the only reversal that needs
//! no stored gradients: `θ_t ≈ θ_{t+1} + α·∇L_t(θ_{t+1})`.

pub mod adam;
pub mod float;
pub mod momentum;
pub mod plan;
pub mod verify;

pub use adam::{AdamState, ExactAdam, FloatAdam};
pub use float::FloatSgd;
pub use momentum::{ExactMomentum, ExactState, FloatMomentum};
pub use plan::Plan;

use serde::Serialize;

use crate::config::InnerOptimizer;
use crate::error::{Error, Result, show};
use crate::hyper::Hypers;
use crate::model::{Layout, Objective};

/// An exactly reversible inner optimizer: a forward step on exact state, the exact undo of
/// a step, and the adjoint of a step. The hypergradient paths — exact reversal, reverse mode
/// over a stored trajectory, finite differences (see [`crate::hypergrad`]) — are written
/// once against this trait; an optimizer is one implementation.
pub trait Reversible {
    /// Exact state (fixed-point vectors and the information buffer).
    type State;
    /// The state in f64, as a stored trajectory keeps it.
    type Snapshot;

    /// The exact state at θ₀ (other state vectors 0, buffer empty, room reserved for the run).
    ///
    /// # Errors
    /// [`Error::Overflow`] at step 0 if θ₀ is outside the fixed-point range.
    fn start(&mut self, theta0: &[f64]) -> Result<Self::State>;
    /// Forward step t; returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`Error::Diverged`] for a non-finite loss, [`Error::Overflow`] when a value leaves the
    /// fixed-point range.
    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut Self::State) -> Result<f64>;
    /// θ of a state in fixed point.
    fn theta_fixed<'s>(&self, s: &'s Self::State) -> &'s [i64];
    /// θ of a state in f64.
    fn theta_f64(&self, s: &Self::State) -> Vec<f64> {
        self.theta_fixed(s)
            .iter()
            .map(|&x| crate::exact::fixed::to_f64(x))
            .collect()
    }
    /// The state in f64.
    fn snapshot(&self, s: &Self::State) -> Self::Snapshot;
    /// Bytes the information buffer holds.
    fn buffer_bytes(&self, s: &Self::State) -> usize;
    /// True if `s` is the start state at `theta0` bit for bit (other vectors 0, buffer empty).
    fn at_start(&self, s: &Self::State, theta0: &[i64]) -> bool;
    /// The least information the run must store, bits per parameter (Σ_t log₂(d/n_t)).
    fn information_floor_bits(&mut self) -> f64;
    /// State vectors per parameter (θ, v, …), for the stored-trajectory size.
    fn state_vectors(&self) -> usize;
    /// Start the reverse pass with `dθ = ∂f/∂θ_T`, every other adjoint 0.
    fn begin_adjoint(&mut self, d_theta: &[f64]);
    /// Undo step t exactly (state t+1 → t), without the adjoint.
    fn undo_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut Self::State);
    /// Reverse step t: undo it exactly (state t+1 → t) and propagate the adjoint through it,
    /// adding the optimizer blocks' hypergradients to `grads`.
    fn reverse_step(
        &mut self,
        obj: &mut impl Objective,
        t: usize,
        s: &mut Self::State,
        grads: &mut Hypers,
    );
    /// The adjoint of step t from stored states (`before` = state t, `after` = state t+1).
    fn adjoint_step(
        &mut self,
        obj: &mut impl Objective,
        t: usize,
        before: &Self::Snapshot,
        after: &Self::Snapshot,
        grads: &mut Hypers,
    );
    /// `∂f/∂θ` as of the reverse pass so far (`∂f/∂θ₀` at its end).
    fn d_theta(&self) -> &[f64];
    /// `∂f/∂λ` per parameter (the penalty ½Σλθ²) as of the reverse pass so far.
    fn d_lambda(&self) -> &[f64];
}

/// θ₀ in fixed point and an empty information buffer over it, with stack room reserved for
/// `floor_bits` bits per parameter: the start of every exact optimizer.
///
/// # Errors
/// [`Error::Overflow`] at step 0 if θ₀ is outside the fixed-point range.
pub(crate) fn exact_start(
    theta0: &[f64],
    floor_bits: f64,
) -> Result<(Vec<i64>, crate::exact::InfoBuffer)> {
    let theta = crate::exact::fixed::from_f64_slice(theta0).map_err(|_| overflow_at_init())?;
    let mut buffer = crate::exact::InfoBuffer::new(theta.len());
    buffer.reserve_bits(floor_bits * theta.len() as f64);
    Ok((theta, buffer))
}

/// `grad ← ∇L_t(θ)` at the fixed-point `theta`, whose f64 value is left in `theta_f`;
/// returns the loss, or [`Error::Diverged`] (with α = `alpha` in the hint) if it is not
/// finite: the first half of every exact optimizer's forward step.
pub(crate) fn exact_gradient(
    obj: &mut impl Objective,
    t: usize,
    theta: &[i64],
    theta_f: &mut [f64],
    grad: &mut [f64],
    alpha: f64,
) -> Result<f64> {
    crate::exact::fixed::to_f64_into(theta, theta_f);
    let loss = obj.grad_into(t, theta_f, grad);
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(diverged(t, loss, alpha))
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

impl std::fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arithmetic::Float => "float",
            Arithmetic::Exact => "exact",
        })
    }
}

/// Train `steps` steps from `theta0` with the optimizer blocks of `hypers` and return θ_T in
/// f64. `obj` is the (penalised) training objective.
///
/// # Errors
/// Divergence or overflow, with the step; [`Error::Usage`] for exact plain SGD (there is no
/// exactly reversible plain SGD to run).
pub fn train(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    hypers: &Hypers,
    steps: usize,
    method: InnerOptimizer,
    arithmetic: Arithmetic,
) -> Result<Vec<f64>> {
    let n = obj.dim();
    match (method, arithmetic) {
        (InnerOptimizer::Momentum, Arithmetic::Float) => {
            let (mut theta, mut v) = (theta0.to_vec(), vec![0.0; n]);
            let mut opt = FloatMomentum::new(hypers, layout, steps);
            for t in 0..steps {
                opt.step(obj, t, &mut theta, &mut v)?;
            }
            Ok(theta)
        }
        (InnerOptimizer::Sgd, Arithmetic::Float) => {
            let mut theta = theta0.to_vec();
            let mut opt = FloatSgd::new(hypers, layout, steps);
            for t in 0..steps {
                opt.step(obj, t, &mut theta)?;
            }
            Ok(theta)
        }
        (InnerOptimizer::Momentum, Arithmetic::Exact) => {
            let mut opt = ExactMomentum::new(hypers, layout, steps);
            let mut s = opt.start(theta0)?;
            for t in 0..steps {
                opt.step(obj, t, &mut s)?;
            }
            Ok(opt.theta_f64(&s))
        }
        (InnerOptimizer::Adam, Arithmetic::Float) => {
            let (mut theta, mut m, mut s) = (theta0.to_vec(), vec![0.0; n], vec![0.0; n]);
            let mut opt = FloatAdam::new(hypers, layout, steps);
            for t in 0..steps {
                opt.step(obj, t, &mut theta, &mut m, &mut s)?;
            }
            Ok(theta)
        }
        (InnerOptimizer::Adam, Arithmetic::Exact) => {
            let mut opt = ExactAdam::new(hypers, layout, steps);
            let mut s = opt.start(theta0)?;
            for t in 0..steps {
                opt.step(obj, t, &mut s)?;
            }
            Ok(opt.theta_f64(&s))
        }
        (InnerOptimizer::Sgd, Arithmetic::Exact) => Err(Error::Usage(
            "exact arithmetic needs inner.optimizer = \"momentum\" or \"adam\": plain SGD is not reversible"
                .into(),
        )),
    }
}
