//! # Hypergradients by reverse mode over a stored trajectory (the reference path)
//!
//! The textbook way: run the exact forward pass, keep every state in f64, then run the same
//! adjoint ([`Reversible::adjoint_step`]) reading states from memory instead of undoing the
//! dynamics. O(T·|θ|) memory. Because the forward run is exact, both paths see identical
//! states and gradients, so this checks the reversal itself: the two must agree bit for bit.

use super::Setup;
use crate::config::InnerOptimizer;
use crate::error::Result;
use crate::hyper::Hypers;
use crate::model::Objective;
use crate::optim::{ExactAdam, ExactMomentum, Reversible};

/// `(∂f/∂every entry, f(θ_T))` by reverse mode over the stored exact trajectory of the
/// blocks' optimizer.
///
/// # Errors
/// As [`super::reverse::hypergradient`].
pub fn hypergradient_stored(obj: &mut impl Objective, setup: Setup) -> Result<(Hypers, f64)> {
    let (h, l, t) = (setup.hypers, setup.layout, setup.steps);
    match setup.optimizer() {
        InnerOptimizer::Adam => stored_with(ExactAdam::new(h, l, t), obj, setup),
        _ => stored_with(ExactMomentum::new(h, l, t), obj, setup),
    }
}

/// The stored-trajectory hypergradient with any reversible optimizer.
///
/// # Errors
/// As [`super::reverse::hypergradient`].
pub fn stored_with<O: Reversible>(
    mut opt: O,
    obj: &mut impl Objective,
    setup: Setup,
) -> Result<(Hypers, f64)> {
    let mut obj = setup.objective(obj);
    let mut state = opt.start(&setup.theta0())?;
    let mut snaps = Vec::with_capacity(setup.steps + 1);
    snaps.push(opt.snapshot(&state));
    for t in 0..setup.steps {
        opt.step(&mut obj, t, &mut state)?;
        snaps.push(opt.snapshot(&state));
    }
    let theta_t = opt.theta_f64(&state);
    let mut val_grad = vec![0.0; obj.dim()];
    let (val_loss, _) = obj.validation_grad_into(&theta_t, &mut val_grad);
    let mut grads = setup.zero_grads();
    opt.begin_adjoint(&val_grad);
    for t in (0..setup.steps).rev() {
        opt.adjoint_step(&mut obj, t, &snaps[t], &snaps[t + 1], &mut grads);
    }
    setup.finish(&opt, &mut grads);
    Ok((grads, val_loss))
}
