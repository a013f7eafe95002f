//! # Hypergradients by exact reversal (the product path)
//!
//! Train T steps with [`ExactMomentum`], then run the adjoint recursion of
//! [`crate::hypergrad`] while undoing the steps one by one. Each reverse step needs
//! `∇L_t(θ_t)` (to undo the velocity) and `H_t·dv` (for the adjoint) at the same point; one
//! forward-over-reverse pass gives both. Memory: θ, v, the information buffer and a few
//! |θ|-vectors of scratch, independent of T.

use std::time::Instant;

use super::{Adjoint, PerHyper, rational_gamma, store_all_bytes};
use crate::error::{Error, Result, show};
use crate::exact::fixed;
use crate::model::Objective;
use crate::optim::{ExactMomentum, Hyperparams};

/// Everything one exact forward run and its reversal produce.
#[derive(Debug, Clone)]
pub struct Hypergradient {
    /// Hyperparameters as given.
    pub hyper: Hyperparams,
    /// The γ actually used, n/d.
    pub effective_gamma: f64,
    /// Mean training cross-entropy at θ_T (whole training set, no penalty).
    pub train_loss: f64,
    /// Validation loss f(θ_T).
    pub val_loss: f64,
    /// Validation accuracy at θ_T.
    pub val_accuracy: f64,
    /// ∂f/∂(α, γ, l2, init_scale).
    pub grads: PerHyper,
    /// True if the reversal restored θ₀, v₀ = 0 and an empty buffer bit for bit.
    pub exact: bool,
    /// max |θ₀(reversed) − θ₀|.
    pub theta0_error: f64,
    /// Bytes the information buffer held at θ_T.
    pub info_buffer_bytes: u64,
    /// 8·info_buffer_bytes / (|θ|·T): includes the 8-byte coder state per parameter.
    pub info_bits_per_param_step: f64,
    /// The information-theoretic floor log₂(d/n) bits per parameter per step.
    pub info_floor_bits: f64,
    /// Bytes a stored trajectory would take.
    pub store_all_bytes: u64,
    /// Wall time of the forward run, seconds.
    pub forward_seconds: f64,
    /// Wall time of the reversal, seconds.
    pub reverse_seconds: f64,
}

/// Hypergradients of the validation loss after `steps` exact momentum steps from
/// `θ₀ = init_scale·eps`.
///
/// # Errors
/// [`Error::Diverged`] / [`Error::Overflow`] if the forward run diverges; [`Error::Usage`] if
/// γ has no rational form.
pub fn hypergradient(
    obj: &mut impl Objective,
    eps: &[f64],
    hp: Hyperparams,
    steps: usize,
) -> Result<Hypergradient> {
    let gamma = rational_gamma(hp.gamma)?;
    let n = obj.dim();
    let start = Instant::now();
    let theta0 = hp.theta0(eps);
    let theta0_fixed =
        fixed::from_f64_slice(&theta0).map_err(|_| crate::optim::overflow_at_init())?;
    let (mut opt, mut state) = ExactMomentum::run(obj, &theta0, hp, gamma, steps)?;
    let theta_t = state.theta_f64();
    let mut val_grad = vec![0.0; n];
    let (val_loss, val_accuracy) = obj.validation_grad_into(&theta_t, &mut val_grad);
    if !val_loss.is_finite() {
        return Err(Error::Diverged {
            step: steps,
            what: format!("validation loss is {val_loss}"),
            hint: format!("try a smaller inner.alpha (now {})", show(hp.alpha)),
        });
    }
    let train_loss = obj.train_loss(&theta_t);
    let info_buffer_bytes = state.buffer.bytes() as u64;
    let forward_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut adj = Adjoint::new(val_grad);
    let mut grad = vec![0.0; n];
    let mut hv = vec![0.0; n];
    let mut v_next = vec![0.0; n];
    let mask = obj.penalty_mask().to_vec();
    let g = gamma.value();
    for t in (0..steps).rev() {
        opt.undo_position(&mut state);
        v_next.copy_from_slice(opt.velocity());
        adj.through_position(&v_next, hp.alpha);
        obj.grad_hvp_into(t, opt.theta(), hp.l2, &adj.d_v, &mut grad, &mut hv);
        opt.undo_velocity(&mut state, &grad);
        adj.through_velocity(opt.theta(), opt.velocity(), &grad, &hv, &mask, g);
    }
    let theta0_error = state
        .theta
        .iter()
        .zip(&theta0_fixed)
        .map(|(&a, &b)| fixed::to_f64(a) - fixed::to_f64(b))
        .fold(0.0f64, |m, d| m.max(d.abs()));
    let exact = state.theta == theta0_fixed
        && state.v.iter().all(|&v| v == 0)
        && state.buffer.is_empty_of_information();
    let grads = adj.finish(eps);
    if !grads.is_finite() {
        return Err(Error::Diverged {
            step: 0,
            what: "the hypergradient is not finite (reversing the run amplified it past f64)"
                .into(),
            hint: format!(
                "the inner dynamics are chaotic at this step size and horizon; try a smaller \
                 inner.alpha (now {}) or fewer inner.steps (now {steps})",
                show(hp.alpha)
            ),
        });
    }
    Ok(Hypergradient {
        hyper: hp,
        effective_gamma: g,
        train_loss,
        val_loss,
        val_accuracy,
        grads,
        exact,
        theta0_error,
        info_buffer_bytes,
        info_bits_per_param_step: 8.0 * info_buffer_bytes as f64 / (n as f64 * steps.max(1) as f64),
        info_floor_bits: gamma.bits_per_multiply(),
        store_all_bytes: store_all_bytes(n, steps),
        forward_seconds,
        reverse_seconds: start.elapsed().as_secs_f64(),
    })
}
