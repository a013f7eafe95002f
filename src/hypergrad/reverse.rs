//! # Hypergradients by exact reversal (the product path)
//!
//! Train T steps exactly, then run the adjoint recursion while undoing the steps one by one
//! ([`Reversible::reverse_step`]). Each reverse step needs `∇L_t(θ_t)` (to undo the velocity)
//! and `H_t·dv` (for the adjoint) at the same point; one forward-over-reverse pass gives
//! both. Memory: the state, the information buffer and a few |θ|-vectors of scratch,
//! independent of T. With a step counter in the [`Setup`], each step ticks it: the forward
//! run as [`Phase::Forward`], the reversal as [`Phase::Reverse`].

use std::time::Instant;

use super::{Setup, store_all_bytes};
use crate::error::{Error, Result};
use crate::exact::fixed;
use crate::hyper::{Block, Hypers};
use crate::model::{Evaluate, Objective, RowTangents};
use crate::optim::{Optimizer, Reversible, Visit};
use crate::runtime::Phase;

/// Everything one exact forward run and its reversal produce.
#[derive(Debug, Clone)]
pub struct Hypergradient {
    /// The decays (γ, or β₁ and β₂) actually used per entry, n/d.
    pub effective: Vec<Block>,
    /// Mean training cross-entropy at θ_T (whole training set, no penalty).
    pub train_loss: f64,
    /// Validation loss f(θ_T).
    pub val_loss: f64,
    /// Validation accuracy at θ_T.
    pub val_accuracy: f64,
    /// Test loss and accuracy at θ_T, when there is a test set.
    pub test: Option<(f64, f64)>,
    /// ∂f/∂(every entry), shaped like the blocks.
    pub grads: Hypers,
    /// True if the reversal restored the start state and an empty buffer bit for bit.
    pub exact: bool,
    /// max |θ₀(reversed) − θ₀|.
    pub theta0_error: f64,
    /// Bytes the information buffer held at θ_T.
    pub info_buffer_bytes: u64,
    /// 8·info_buffer_bytes / (|θ|·T): includes the 8-byte coder state per parameter.
    pub info_bits_per_param_step: f64,
    /// The information-theoretic floor Σ_t log₂(d/n_t)/T bits per parameter per step.
    pub info_floor_bits: f64,
    /// Bytes a stored trajectory would take.
    pub store_all_bytes: u64,
    /// Wall time of the forward run, seconds.
    pub forward_seconds: f64,
    /// Wall time of the reversal, seconds.
    pub reverse_seconds: f64,
}

/// An error unless `v` is finite: a report must never hold NaN. `what` names the number,
/// `step` is where the run stood.
///
/// # Errors
/// [`Error::Diverged`] with a hint naming the block entry most likely responsible
/// ([`crate::hyper::Hypers::divergence_suspect`]).
pub fn finite(v: f64, what: &str, step: usize, setup: &Setup) -> Result<f64> {
    if v.is_finite() {
        return Ok(v);
    }
    Err(Error::Diverged {
        step,
        what: format!("{what} is {v}"),
        hint: format!(
            "try {}, or data.standardize: true for large features",
            setup.hypers.divergence_suspect(None, setup.steps)
        ),
    })
}

/// Hypergradients of the validation loss after `setup.steps` exact steps of
/// `setup.optimizer`.
///
/// # Errors
/// [`Error::Usage`] for an optimizer that is not exactly reversible with these blocks;
/// [`Error::Diverged`] / [`Error::Overflow`] if the forward run diverges or a reported
/// number is not finite.
pub fn hypergradient(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<Hypergradient> {
    struct V<'a, 'o, Obj>(&'o mut Obj, Setup<'a>);
    impl<Obj: Objective + Evaluate + RowTangents> Visit for V<'_, '_, Obj> {
        type Output = Result<Hypergradient>;
        fn visit<O: Optimizer>(self) -> Self::Output {
            let V(obj, setup) = self;
            reverse_with(exact_of::<O>(setup)?, obj, setup)
        }
    }
    setup.require_reversible()?;
    setup.optimizer.visit(V(obj, setup))
}

/// Optimizer `O`'s exact form for `setup`.
///
/// # Errors
/// [`Error::Usage`] when `O` has none.
pub fn exact_of<O: Optimizer>(setup: Setup) -> Result<O::Exact> {
    O::exact(setup.hypers, setup.layout, setup.steps, setup.threads)
        .ok_or_else(|| crate::optim::not_reversible(O::info().name))
}

/// The exact-reversal hypergradient with any reversible optimizer.
///
/// # Errors
/// As [`hypergradient`].
pub fn reverse_with<O: Reversible>(
    mut opt: O,
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<Hypergradient> {
    let steps = setup.steps;
    let mut obj = setup.objective(obj);
    let n = obj.dim();
    let start = Instant::now();
    let theta0 = setup.theta0();
    let blame = |e| crate::optim::blame(e, setup.hypers, steps);
    let mut state = opt.start(&theta0).map_err(blame)?;
    let theta0_fixed = opt.theta_fixed(&state).to_vec();
    setup.begin(Phase::Forward);
    for t in 0..steps {
        opt.step(&mut obj, t, &mut state).map_err(blame)?;
        setup.tick(t + 1);
    }
    let theta_t = opt.theta_f64(&state);
    let mut val_grad = vec![0.0; n];
    let (val_loss, val_accuracy) = obj.validation_grad_into(&theta_t, &mut val_grad);
    let val_loss = finite(val_loss, "the validation loss", steps, &setup)?;
    let train_loss = finite(obj.train_loss(&theta_t), "the training loss", steps, &setup)?;
    // The test set is only reported, never a reason to reject the point (an overflowed
    // test loss comes back finite, flagged: `problem::OVERFLOWED_LOSS`).
    let test = obj.test_metrics(&theta_t);
    let info_buffer_bytes = opt.buffer_bytes(&state) as u64;
    let forward_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut grads = setup.zero_grads();
    opt.begin_adjoint(&val_grad);
    setup.begin(Phase::Reverse);
    for t in (0..steps).rev() {
        opt.reverse_step(&mut obj, t, &mut state, &mut grads);
        setup.tick(steps - t);
    }
    let exact = opt.at_start(&state, &theta0_fixed);
    let theta0_error = opt
        .theta_fixed(&state)
        .iter()
        .zip(&theta0_fixed)
        .map(|(&a, &b)| (fixed::to_f64(a) - fixed::to_f64(b)).abs())
        .fold(0.0f64, f64::max);
    setup.finish(&opt, &mut grads);
    if !grads.is_finite() {
        return Err(Error::Diverged {
            step: 0,
            what: "the hypergradient is not finite (reversing the run amplified it past f64)"
                .into(),
            hint: format!(
                "the inner dynamics are chaotic at this step size and horizon; try {} or \
                 fewer inner.steps (now {steps})",
                setup.hypers.divergence_suspect(None, steps)
            ),
        });
    }
    let reverse_seconds = start.elapsed().as_secs_f64();
    Ok(Hypergradient {
        effective: setup.effective(),
        train_loss,
        val_loss,
        val_accuracy,
        test,
        grads,
        exact,
        theta0_error,
        info_buffer_bytes,
        info_bits_per_param_step: 8.0 * info_buffer_bytes as f64 / (n as f64 * steps.max(1) as f64),
        info_floor_bits: opt.information_floor_bits() / steps.max(1) as f64,
        store_all_bytes: store_all_bytes(n, steps, setup.optimizer.info().state_vectors()),
        forward_seconds,
        reverse_seconds,
    })
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::data::{Data, Dataset};
    use crate::hyper::{Kind, OptimizerId, Per};
    use crate::model::{Activation, Layout, Threads, init_noise};
    use crate::problem::Problem;
    use crate::runtime::StepProgress;

    /// An objective that notes the counter's phase and steps done whenever a batch
    /// gradient is taken.
    struct Noting<O> {
        obj: O,
        progress: StepProgress,
        seen: Vec<(Phase, usize)>,
    }

    impl<O> Noting<O> {
        fn note(&mut self) {
            let s = self.progress.snapshot();
            self.seen.push((s.phase, s.done));
        }
    }

    impl<O: Objective> Objective for Noting<O> {
        fn dim(&self) -> usize {
            self.obj.dim()
        }
        fn grad_into(&mut self, step: usize, theta: &[f64], grad: &mut [f64]) -> f64 {
            self.note();
            self.obj.grad_into(step, theta, grad)
        }
        fn grad_hvp_into(
            &mut self,
            step: usize,
            theta: &[f64],
            u: &[f64],
            grad: &mut [f64],
            hu: &mut [f64],
        ) -> f64 {
            self.note();
            self.obj.grad_hvp_into(step, theta, u, grad, hu)
        }
        fn grad_then_hvp_into(
            &mut self,
            step: usize,
            theta: &[f64],
            grad: &mut [f64],
            u: &mut [f64],
            make_u: &mut dyn FnMut(&mut [f64], &mut [f64]),
            hu: &mut [f64],
        ) -> f64 {
            self.note();
            self.obj
                .grad_then_hvp_into(step, theta, grad, u, make_u, hu)
        }
    }

    impl<O: Evaluate> Evaluate for Noting<O> {
        fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
            self.obj.validation_grad_into(theta, grad)
        }
        fn train_loss(&mut self, theta: &[f64]) -> f64 {
            self.obj.train_loss(theta)
        }
        fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
            self.obj.test_metrics(theta)
        }
    }

    impl<O: RowTangents> RowTangents for Noting<O> {
        fn set_row_weights(&mut self, weights: Option<&[f64]>) {
            self.obj.set_row_weights(weights);
        }
        fn add_row_tangents(&self, scale: f64, out: &mut [f64]) {
            self.obj.add_row_tangents(scale, out);
        }
        fn set_row_inputs(&mut self, inputs: Option<&[f64]>) {
            self.obj.set_row_inputs(inputs);
        }
        fn add_input_tangents(&self, scale: f64, out: &mut [f64]) {
            self.obj.add_input_tangents(scale, out);
        }
    }

    /// `n` rows of 4 deterministic features in 3 classes.
    fn rows(n: usize, shift: f64) -> Dataset {
        let x = Array2::from_shape_fn((n, 4), |(i, j)| ((i * 4 + j) as f64 * 0.7 + shift).sin());
        Dataset {
            x,
            y: (0..n).map(|i| i % 3).collect(),
        }
    }

    fn data() -> Data {
        Data {
            train: rows(24, 0.0),
            validation: rows(12, 0.3),
            test: None,
            n_features: 4,
            n_classes: 3,
            flipped: Vec::new(),
            learnable: None,
            poison: Vec::new(),
            feature_names: None,
        }
    }

    fn blocks(optimizer: OptimizerId, layout: &Layout) -> Hypers {
        let b = |kind, value| Block::filled(kind, Per::All, 1, layout, value);
        let mut blocks = vec![b(Kind::Alpha, 0.1)];
        match optimizer {
            OptimizerId::Adam => {
                blocks.extend([
                    b(Kind::Beta1, 0.9),
                    b(Kind::Beta2, 0.99),
                    b(Kind::Eps, 1e-8),
                ]);
            }
            _ => blocks.push(b(Kind::Gamma, 0.9)),
        }
        blocks.extend([b(Kind::L2, 1e-3), b(Kind::InitScale, 1.0)]);
        Hypers { blocks }
    }

    #[test]
    fn the_counter_follows_the_forward_and_reverse_steps_and_changes_no_bit() {
        const STEPS: usize = 12;
        let data = data();
        for optimizer in [OptimizerId::Momentum, OptimizerId::Adam] {
            let problem = || Problem::new(&data, &[5], Activation::Tanh, 6, true, 3);
            let layout = problem().layout().clone();
            let eps = init_noise(&layout, 3);
            let hypers = blocks(optimizer, &layout);
            let threads = Threads::one();
            let progress = StepProgress::new();
            let setup = Setup {
                optimizer,
                hypers: &hypers,
                eps: &eps,
                layout: &layout,
                steps: STEPS,
                threads: &threads,
                progress: Some(&progress),
            };
            let mut noting = Noting {
                obj: problem(),
                progress: progress.clone(),
                seen: Vec::new(),
            };
            let counted = hypergradient(&mut noting, setup).unwrap();

            // Step t of each phase runs with t steps of it done, and the count ends at T.
            let mut seen = noting.seen;
            seen.dedup();
            let expected: Vec<_> = [Phase::Forward, Phase::Reverse]
                .into_iter()
                .flat_map(|phase| (0..STEPS).map(move |t| (phase, t)))
                .collect();
            assert_eq!(seen, expected, "{optimizer}");
            let end = progress.snapshot();
            assert_eq!(
                (end.phase, end.done, end.total),
                (Phase::Reverse, STEPS, STEPS)
            );

            let plain = Setup {
                progress: None,
                ..setup
            };
            let quiet = hypergradient(&mut problem(), plain).unwrap();
            let bits = |h: &Hypergradient| -> Vec<u64> {
                let grads = h.grads.blocks.iter().flat_map(|b| b.values.iter());
                [h.val_loss, h.train_loss]
                    .iter()
                    .chain(grads)
                    .map(|v| v.to_bits())
                    .collect()
            };
            assert!(counted.exact, "{optimizer}");
            assert_eq!(bits(&counted), bits(&quiet), "{optimizer}");
        }
    }
}
