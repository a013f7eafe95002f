//! # Hypergradients by reverse mode over a stored trajectory (the reference path)
//!
//! The textbook way: run the exact forward pass, keep every state in f64, then run the same
//! adjoint ([`Reversible::adjoint_step`]) reading states from memory instead of undoing the
//! dynamics. O(T·|θ|) memory. Because the forward run is exact, both paths see identical
//! states and gradients, so this checks the reversal itself: the two must agree bit for bit.
//!
//! [`hypergradient_stored_float`] is the textbook path all the way: the forward run is the
//! float64 optimizer (with the exact run's rational decays, so only the arithmetic
//! differs), its states stored, then the same adjoint. It checks the exact arithmetic: with
//! 52 fractional bits the two hypergradients agree to about 1e−12 relative on short runs.

use super::Setup;
use super::reverse::exact_of;
use crate::error::Result;
use crate::hyper::Hypers;
use crate::model::{Evaluate, Objective, RowTangents};
use crate::optim::{FloatOptimizer, FloatState, Optimizer, Reversible, Visit};
use crate::runtime::Phase;

/// `(∂f/∂every entry, f(θ_T))` by reverse mode over the stored exact trajectory of
/// `setup.optimizer`.
///
/// # Errors
/// As [`super::reverse::hypergradient`].
pub fn hypergradient_stored(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<(Hypers, f64)> {
    struct V<'a, 'o, Obj>(&'o mut Obj, Setup<'a>);
    impl<Obj: Objective + Evaluate + RowTangents> Visit for V<'_, '_, Obj> {
        type Output = Result<(Hypers, f64)>;
        fn visit<O: Optimizer>(self) -> Self::Output {
            let V(obj, setup) = self;
            stored_with(exact_of::<O>(setup)?, obj, setup)
        }
    }
    setup.require_reversible()?;
    setup.optimizer.visit(V(obj, setup))
}

/// The stored-trajectory hypergradient with any reversible optimizer.
///
/// # Errors
/// As [`super::reverse::hypergradient`].
pub fn stored_with<O: Reversible>(
    mut opt: O,
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<(Hypers, f64)> {
    let mut obj = setup.objective(obj);
    let mut state = opt.start(&setup.theta0())?;
    let mut snaps = Vec::with_capacity(setup.steps + 1);
    snaps.push(opt.snapshot(&state));
    setup.begin(Phase::Forward);
    for t in 0..setup.steps {
        opt.step(&mut obj, t, &mut state)?;
        snaps.push(opt.snapshot(&state));
        setup.tick(t + 1);
    }
    let theta_t = opt.theta_f64(&state);
    Ok(adjoint_over(opt, &mut obj, setup, &snaps, &theta_t))
}

/// `(∂f/∂every entry, f(θ_T))` by reverse mode over a stored **float64** trajectory: the
/// optimizer run in f64 with every decay replaced by its rational n_t/2^16 (the effective
/// decay of the exact run, step by step), each state kept, then the exact optimizer's
/// adjoint over those states.
///
/// # Errors
/// [`crate::Error::Diverged`] for a non-finite training loss; as
/// [`super::reverse::hypergradient`] for an optimizer that is not exactly reversible.
pub fn hypergradient_stored_float(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<(Hypers, f64)> {
    struct V<'a, 'o, Obj>(&'o mut Obj, Setup<'a>);
    impl<Obj: Objective + Evaluate + RowTangents> Visit for V<'_, '_, Obj> {
        type Output = Result<(Hypers, f64)>;
        fn visit<O: Optimizer>(self) -> Self::Output {
            let V(obj, setup) = self;
            stored_float_with::<O>(obj, setup)
        }
    }
    setup.require_reversible()?;
    setup.optimizer.visit(V(obj, setup))
}

/// [`hypergradient_stored_float`] with optimizer `O`.
///
/// # Errors
/// As [`hypergradient_stored_float`].
pub fn stored_float_with<O: Optimizer>(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<(Hypers, f64)> {
    let (h, l, steps) = (setup.hypers, setup.layout, setup.steps);
    let opt = exact_of::<O>(setup)?;
    let mut obj = setup.objective(obj);
    let mut f = O::float(h, l, steps, true);
    let mut state = FloatState::start(&setup.theta0(), O::info().aux_vectors);
    let mut snaps = Vec::with_capacity(steps + 1);
    snaps.push(state.clone());
    for t in 0..steps {
        f.step(&mut obj, t, &mut state)?;
        snaps.push(state.clone());
    }
    Ok(adjoint_over(opt, &mut obj, setup, &snaps, &state.theta))
}

/// The reverse pass over stored states `snaps[0..=T]` ending at `theta_t`: the validation
/// gradient, then the optimizer's adjoint step for t = T−1 down to 0.
fn adjoint_over<O: Reversible>(
    mut opt: O,
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
    snaps: &[FloatState],
    theta_t: &[f64],
) -> (Hypers, f64) {
    let mut val_grad = vec![0.0; obj.dim()];
    let (val_loss, _) = obj.validation_grad_into(theta_t, &mut val_grad);
    let mut grads = setup.zero_grads();
    opt.begin_adjoint(&val_grad);
    setup.begin(Phase::Reverse);
    for t in (0..setup.steps).rev() {
        opt.adjoint_step(obj, t, &snaps[t], &snaps[t + 1], &mut grads);
        setup.tick(setup.steps - t);
    }
    setup.finish(&opt, &mut grads);
    (grads, val_loss)
}
