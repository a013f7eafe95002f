//! # Hypergradients by reverse mode over a stored trajectory (the reference path)
//!
//! The textbook way: run the exact forward pass, keep every (θ_t, v_t) in f64, then run the
//! same adjoint recursion reading states from memory instead of reversing the dynamics.
//! O(T·|θ|) memory. Because the forward run is exact, both paths see identical states and
//! gradients, so this checks the reversal itself.

use super::{Adjoint, PerHyper, rational_gamma};
use crate::error::Result;
use crate::exact::fixed;
use crate::model::Objective;
use crate::optim::{ExactMomentum, ExactState, Hyperparams};

/// `(∂f/∂hyper, f(θ_T))` by reverse mode over the stored exact trajectory.
///
/// # Errors
/// As [`super::reverse::hypergradient`].
pub fn hypergradient_stored(
    obj: &mut impl Objective,
    eps: &[f64],
    hp: Hyperparams,
    steps: usize,
) -> Result<(PerHyper, f64)> {
    let gamma = rational_gamma(hp.gamma)?;
    let n = obj.dim();
    let theta0 = hp.theta0(eps);
    let mut state = ExactState::start(&theta0, gamma, steps)?;
    let mut opt = ExactMomentum::new(n, hp.alpha, gamma, hp.l2);
    let to_f64 = |x: &[i64]| -> Vec<f64> { x.iter().map(|&v| fixed::to_f64(v)).collect() };
    let mut thetas = vec![to_f64(&state.theta)];
    let mut vs = vec![to_f64(&state.v)];
    for t in 0..steps {
        opt.step(obj, t, &mut state)?;
        thetas.push(to_f64(&state.theta));
        vs.push(to_f64(&state.v));
    }
    let mut val_grad = vec![0.0; n];
    let (val_loss, _) = obj.validation_grad_into(&thetas[steps], &mut val_grad);
    let mut adj = Adjoint::new(val_grad);
    let mut grad = vec![0.0; n];
    let mut hv = vec![0.0; n];
    let mask = obj.penalty_mask().to_vec();
    for t in (0..steps).rev() {
        adj.through_position(&vs[t + 1], hp.alpha);
        obj.grad_hvp_into(t, &thetas[t], hp.l2, &adj.d_v, &mut grad, &mut hv);
        adj.through_velocity(&thetas[t], &vs[t], &grad, &hv, &mask, gamma.value());
    }
    Ok((adj.finish(eps), val_loss))
}
