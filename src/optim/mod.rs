//! # Inner optimizers: float and exact forms, one registry
//!
//! Each inner optimizer is one file with its update rule, its exact form and the adjoint of
//! one step, and one entry in [`registry`]:
//!
//! | file | update (SPEC §3) | exact state |
//! |---|---|---|
//! | [`float`] (`sgd`) | `θ ← θ − α·g` | none (not reversible) |
//! | [`momentum`] | `v ← γv − (1−γ)g`, `θ ← θ + αv` | θ, v fixed point; γ rational |
//! | [`nesterov`] | momentum with g at `θ + αγv` | none (not reversible) |
//! | [`adam`] | `m ← β₁m + (1−β₁)g`, `s ← β₂s + (1−β₂)g²`, `θ ← θ − α·m̂/(√ŝ + ε)` | θ; m, s wide; β₁, β₂ rational |
//! | [`rmsprop`] | `s ← ρs + (1−ρ)g²`, `b ← γb − (1−γ)g/(√s + ε)`, `θ ← θ + αb` | θ; s, b wide; ρ, γ rational |
//!
//! A float optimizer ([`FloatOptimizer`]) steps f64 state ([`FloatState`]: θ and the
//! optimizer's other vectors) and undoes a step as well as f64 allows; an exact one
//! ([`Reversible`]) steps fixed-point state whose decays are rationals n/2^16 with their
//! remainders in an information buffer, undoes a step bit for bit, and runs the adjoint of a
//! step. Schedules and per-group values come from the hyperparameter blocks ([`plan`]).
//! [`train_with`] runs any of them ([`train_counted`] also ticks a progress bar's step
//! counter); the hypergradient paths ([`crate::hypergrad`]) and [`verify`] are written once
//! against the two traits.

pub mod adam;
pub mod float;
pub mod momentum;
pub mod nesterov;
pub mod plan;
pub mod registry;
pub mod rmsprop;
pub mod verify;

pub use adam::{Adam, AdamState, ExactAdam, FloatAdam};
pub use float::{FloatSgd, Sgd};
pub use momentum::{ExactMomentum, ExactState, FloatMomentum, Momentum};
pub use nesterov::{FloatNesterov, Nesterov};
pub use plan::Plan;
pub use registry::{Info, NotReversible, Optimizer, OptimizerId, Visit};
pub use rmsprop::{ExactRmsprop, FloatRmsprop, Rmsprop, RmspropState};

use serde::Serialize;

use crate::error::{Error, Result, show};
use crate::hyper::{Hypers, Kind};
use crate::model::{Layout, Objective, RowTangents, Threads};
use crate::runtime::{Phase, StepProgress};

/// An exactly reversible inner optimizer: a forward step on exact state, the exact undo of
/// a step, and the adjoint of a step. The hypergradient paths — exact reversal, reverse mode
/// over a stored trajectory, finite differences (see [`crate::hypergrad`]) — are written
/// once against this trait; an optimizer is one implementation.
pub trait Reversible {
    /// Exact state (fixed-point vectors and the information buffer).
    type State;

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
    /// The state in f64, as a stored trajectory keeps it (the vectors in the order of the
    /// float optimizer's [`FloatState::aux`]).
    fn snapshot(&self, s: &Self::State) -> FloatState;
    /// Bytes the information buffer holds.
    fn buffer_bytes(&self, s: &Self::State) -> usize;
    /// True if `s` is the start state at `theta0` bit for bit (other vectors 0, buffer empty).
    fn at_start(&self, s: &Self::State, theta0: &[i64]) -> bool;
    /// The least information the run must store, bits per parameter (Σ_t log₂(d/n_t)).
    fn information_floor_bits(&mut self) -> f64;
    /// Start the reverse pass with `dθ = ∂f/∂θ_T`, every other adjoint 0.
    fn begin_adjoint(&mut self, d_theta: &[f64]);
    /// Undo step t exactly (state t+1 → t), without the adjoint.
    fn undo_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut Self::State);
    /// Reverse step t: undo it exactly (state t+1 → t) and propagate the adjoint through it,
    /// adding the optimizer blocks' hypergradients to `grads` (the example weights' through
    /// `obj`'s row tangents).
    fn reverse_step(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        s: &mut Self::State,
        grads: &mut Hypers,
    );
    /// The adjoint of step t from stored states (`before` = state t, `after` = state t+1).
    fn adjoint_step(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        before: &FloatState,
        after: &FloatState,
        grads: &mut Hypers,
    );
    /// `∂f/∂θ` as of the reverse pass so far (`∂f/∂θ₀` at its end).
    fn d_theta(&self) -> &[f64];
    /// `∂f/∂λ` per parameter (the penalty ½Σλθ²) as of the reverse pass so far.
    fn d_lambda(&self) -> &[f64];
}

/// θ₀ in fixed point and an empty information buffer over it, each segment's stack
/// reserved to `bound` (what the run can put there at most, [`crate::exact::bound`]): the
/// start of every exact optimizer.
///
/// # Errors
/// [`Error::Overflow`] at step 0 if θ₀ is outside the fixed-point range.
pub(crate) fn exact_start(
    theta0: &[f64],
    bound: &crate::exact::BufferBound,
) -> Result<(Vec<i64>, crate::exact::InfoBuffer)> {
    let theta = crate::exact::fixed::from_f64_slice(theta0).map_err(|_| overflow_at_init())?;
    let mut buffer = crate::exact::InfoBuffer::new(theta.len());
    buffer.reserve(bound);
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

/// The error for a wide state vector (Adam's moments, RMSprop's s and b) leaving the wide
/// fixed-point range at `step`; `optimizer` names the optimizer in the hint.
pub(crate) fn wide_overflow(step: usize, optimizer: &str, what: &str, alpha: f64) -> Error {
    Error::Overflow {
        step,
        what: format!(
            "{what} left the representable range ±{:.0}",
            crate::exact::fixed::WIDE_MAX_VALUE
        ),
        hint: format!(
            "the gradients are too large for exact {optimizer}; try a smaller inner.alpha (now \
             {}), or data.standardize: true",
            show(alpha)
        ),
    }
}

/// How the hints above name α; [`blame`] puts the entry most likely responsible in its
/// place.
const ALPHA_NOW: &str = "a smaller inner.alpha (now ";

/// `e` with its hint naming the block entry most likely responsible for a divergence at its
/// step ([`Hypers::divergence_suspect`]: the largest α at that step, or an l2 or init_scale
/// entry far above its range) instead of the first group's α, which the optimizers name
/// when they fail. Other errors, and hints without α, are returned as they are.
pub fn blame(e: Error, hypers: &Hypers, steps: usize) -> Error {
    let rename = |hint: String, step: usize| -> String {
        let Some(start) = hint.find(ALPHA_NOW) else {
            return hint;
        };
        let Some(len) = hint[start..].find(')') else {
            return hint;
        };
        let suspect = hypers.divergence_suspect(Some(step), steps);
        format!("{}{suspect}{}", &hint[..start], &hint[start + len + 1..])
    };
    match e {
        Error::Diverged { step, what, hint } => Error::Diverged {
            step,
            what,
            hint: rename(hint, step),
        },
        Error::Overflow { step, what, hint } => Error::Overflow {
            step,
            what,
            hint: rename(hint, step),
        },
        other => other,
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

/// θ and an optimizer's other state vectors in f64: the state of a float run, and a state of
/// an exact run as the stored-trajectory path keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatState {
    /// θ.
    pub theta: Vec<f64>,
    /// The optimizer's other vectors (momentum: `[v]`; Adam: `[m, s]`; RMSprop: `[s, b]`).
    pub aux: Vec<Vec<f64>>,
}

impl FloatState {
    /// θ and the two vectors of an optimizer that keeps two (Adam's m and s, RMSprop's s
    /// and b).
    ///
    /// # Panics
    /// If the state has another number of vectors (a programming error).
    #[track_caller]
    pub fn split2(&mut self) -> (&mut [f64], &mut [f64], &mut [f64]) {
        match &mut self.aux[..] {
            [x, y] => (&mut self.theta, x, y),
            _ => panic!("a float state with two vectors besides θ was expected"),
        }
    }

    /// θ₀ with `aux` vectors of zeros: the start of every run.
    pub fn start(theta0: &[f64], aux: usize) -> Self {
        FloatState {
            theta: theta0.to_vec(),
            aux: vec![vec![0.0; theta0.len()]; aux],
        }
    }
}

/// An inner optimizer in f64: a step, and its undo as well as f64 allows (for
/// `verify-reversal`: the divisions by the decays amplify rounding errors, and an update
/// that depends on g directly cannot be undone without the gradient it used).
pub trait FloatOptimizer {
    /// Forward step t on `s`; returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`Error::Diverged`] for a non-finite loss.
    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) -> Result<f64>;
    /// Undo step t on `s` (state t+1 → approximately state t). Not exact.
    fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState);
}

/// Train `steps` steps of optimizer `O` from `theta0` with the blocks of `hypers` and return
/// θ_T in f64. `obj` is the (penalised) training objective; an exact optimizer runs its
/// element loops on `threads`.
///
/// # Errors
/// Divergence or overflow, with the step and the block entry most likely responsible
/// ([`blame`]); [`Error::Usage`] for exact arithmetic with an optimizer that has no exactly
/// reversible form.
pub fn train_with<O: Optimizer>(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    hypers: &Hypers,
    steps: usize,
    arithmetic: Arithmetic,
    threads: &Threads,
) -> Result<Vec<f64>> {
    train_steps::<O>(
        obj, layout, theta0, hypers, steps, arithmetic, threads, None,
    )
    .map_err(|e| blame(e, hypers, steps))
}

/// [`train_with`] without naming the suspect in a divergence's hint, ticking `progress`
/// after each step when given.
#[allow(clippy::too_many_arguments)]
fn train_steps<O: Optimizer>(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    hypers: &Hypers,
    steps: usize,
    arithmetic: Arithmetic,
    threads: &Threads,
    progress: Option<&StepProgress>,
) -> Result<Vec<f64>> {
    if let Some(p) = progress {
        p.begin(Phase::Train, steps);
    }
    let tick = |t: usize| {
        if let Some(p) = progress {
            p.tick(t + 1);
        }
    };
    match arithmetic {
        Arithmetic::Float => {
            let mut s = FloatState::start(theta0, O::info().aux_vectors);
            let mut opt = O::float(hypers, layout, steps, false);
            for t in 0..steps {
                opt.step(obj, t, &mut s)?;
                tick(t);
            }
            Ok(s.theta)
        }
        Arithmetic::Exact => {
            let Some(mut opt) = O::exact(hypers, layout, steps, threads) else {
                return Err(not_reversible(O::info().name));
            };
            let mut s = opt.start(theta0)?;
            for t in 0..steps {
                opt.step(obj, t, &mut s)?;
                tick(t);
            }
            Ok(opt.theta_f64(&s))
        }
    }
}

/// [`train_with`] for the registry entry `id`.
///
/// # Errors
/// As [`train_with`].
#[allow(clippy::too_many_arguments)]
pub fn train(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    hypers: &Hypers,
    steps: usize,
    id: OptimizerId,
    arithmetic: Arithmetic,
    threads: &Threads,
) -> Result<Vec<f64>> {
    train_counted(
        obj, layout, theta0, hypers, steps, id, arithmetic, threads, None,
    )
}

/// [`train`], counting its steps on `progress` as [`Phase::Train`] when given, for a
/// progress bar (θ_T is the same bits either way).
///
/// # Errors
/// As [`train_with`].
#[allow(clippy::too_many_arguments)]
pub fn train_counted(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    hypers: &Hypers,
    steps: usize,
    id: OptimizerId,
    arithmetic: Arithmetic,
    threads: &Threads,
    progress: Option<&StepProgress>,
) -> Result<Vec<f64>> {
    struct Train<'a, Obj> {
        obj: &'a mut Obj,
        layout: &'a Layout,
        theta0: &'a [f64],
        hypers: &'a Hypers,
        steps: usize,
        arithmetic: Arithmetic,
        threads: &'a Threads,
        progress: Option<&'a StepProgress>,
    }
    impl<Obj: Objective> Visit for Train<'_, Obj> {
        type Output = Result<Vec<f64>>;
        fn visit<O: Optimizer>(self) -> Self::Output {
            train_steps::<O>(
                self.obj,
                self.layout,
                self.theta0,
                self.hypers,
                self.steps,
                self.arithmetic,
                self.threads,
                self.progress,
            )
            .map_err(|e| blame(e, self.hypers, self.steps))
        }
    }
    id.visit(Train {
        obj,
        layout,
        theta0,
        hypers,
        steps,
        arithmetic,
        threads,
        progress,
    })
}

/// The per-row blocks' share of one adjoint step, for every optimizer: with `u` the
/// direction of the step's Hessian-vector product and `scale·⟨u, g_t⟩` the step's
/// dependence on the batch gradient g_t through that direction,
///
/// ```text
/// dc_i += scale·⟨u, ∂g_t/∂c_i⟩          (example_weight, per row of the batch)
/// dx_i += scale·∂⟨u, g_t⟩/∂x_i          (input, per learnable row of the batch and feature)
/// ```
///
/// both forward-mode quantities the Hessian-vector pass along u has already computed.
pub fn add_row_gradients(obj: &impl RowTangents, scale: f64, grads: &mut Hypers) {
    if let Some(b) = grads.find_mut(Kind::ExampleWeight) {
        obj.add_row_tangents(scale, &mut b.values);
    }
    if let Some(b) = grads.find_mut(Kind::Input) {
        obj.add_input_tangents(scale, &mut b.values);
    }
}

/// The error for exact arithmetic with an optimizer that has no exactly reversible form.
pub fn not_reversible(name: &str) -> Error {
    Error::Usage(format!(
        "exact arithmetic needs an exactly reversible inner.optimizer ({}): \"{name}\" is not \
         reversible",
        OptimizerId::reversible_names()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyper::{Block, Per};
    use crate::model::Quadratic;

    #[test]
    fn counted_training_ticks_every_step_and_gives_the_same_weights() {
        let layout = Layout::new(&[3, 4, 2]);
        let n = layout.len();
        let quadratic = || Quadratic {
            a: (0..n).map(|i| 0.5 + (i % 5) as f64 * 0.3).collect(),
            c: (0..n).map(|i| (i as f64 * 0.37).sin()).collect(),
            omega: 0.2,
        };
        let b = |kind, value| Block::filled(kind, Per::All, 1, &layout, value);
        let hypers = Hypers {
            blocks: vec![b(Kind::Alpha, 0.1), b(Kind::Gamma, 0.9), b(Kind::L2, 0.0)],
        };
        let theta0 = vec![0.5; n];
        let threads = Threads::one();
        let progress = StepProgress::new();
        for arithmetic in [Arithmetic::Float, Arithmetic::Exact] {
            let run = |progress| {
                let id = OptimizerId::Momentum;
                let mut q = quadratic();
                train_counted(
                    &mut q, &layout, &theta0, &hypers, 30, id, arithmetic, &threads, progress,
                )
                .unwrap()
            };
            let counted = run(Some(&progress));
            let end = progress.snapshot();
            assert_eq!((end.phase, end.done, end.total), (Phase::Train, 30, 30));
            let bits = |t: Vec<f64>| t.into_iter().map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(counted), bits(run(None)), "{arithmetic}");
        }
    }
}
