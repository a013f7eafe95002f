//! # Hypergradients by central finite differences of the exact forward run
//!
//! `∂f/∂h ≈ (f(h + δ) − f(h − δ)) / 2δ` for each hyperparameter, each f from a fresh exact
//! forward run. For γ the step is a whole number of quanta of the rational: γ± = (n ± m)/d,
//! so the difference quotient is taken around the effective γ = n/d exactly, and rounding
//! γ to the rational does not dominate the difference. The other steps are relative:
//! `δ = REL_STEP·max(|h|, floor)`.

use super::PerHyper;
use super::rational_gamma;
use crate::error::{Error, Result};
use crate::exact::{Rational, rational::DEN};
use crate::model::Objective;
use crate::optim::{ExactMomentum, Hyperparams};

/// Relative step for α, l2 and init_scale.
pub const REL_STEP: f64 = 1e-4;
/// Quanta of 2^−16 in the γ step.
pub const GAMMA_QUANTA: u64 = 8;

/// Finite-difference hypergradients and the steps used.
#[derive(Debug, Clone)]
pub struct FiniteDiff {
    /// The difference quotients.
    pub grads: PerHyper,
    /// The step δ used for each hyperparameter.
    pub steps: PerHyper,
    /// The effective γ = n/d around which the γ difference is taken.
    pub effective_gamma: f64,
}

/// Validation loss after an exact forward run with rational γ.
pub fn exact_val_loss(
    obj: &mut impl Objective,
    eps: &[f64],
    hp: Hyperparams,
    gamma: Rational,
    steps: usize,
) -> Result<f64> {
    let (_, state) = ExactMomentum::run(obj, &hp.theta0(eps), hp, gamma, steps)?;
    let mut g = vec![0.0; obj.dim()];
    Ok(obj.validation_grad_into(&state.theta_f64(), &mut g).0)
}

/// Central differences of the validation loss for all four hyperparameters (8 runs).
///
/// # Errors
/// As the exact forward run; [`Error::Usage`] if γ ± the step leaves (0, 1).
pub fn finite_differences(
    obj: &mut impl Objective,
    eps: &[f64],
    hp: Hyperparams,
    steps: usize,
) -> Result<FiniteDiff> {
    let gamma = rational_gamma(hp.gamma)?;
    // (f(h + δ) − f(h − δ)) / 2δ for the hyperparameter read by `get` and written by `set`.
    let mut central =
        |get: fn(&Hyperparams) -> f64, set: fn(&mut Hyperparams, f64), delta: f64| -> Result<f64> {
            let (mut plus, mut minus) = (hp, hp);
            set(&mut plus, get(&hp) + delta);
            set(&mut minus, get(&hp) - delta);
            let fp = exact_val_loss(obj, eps, plus, gamma, steps)?;
            let fm = exact_val_loss(obj, eps, minus, gamma, steps)?;
            Ok((fp - fm) / (2.0 * delta))
        };
    let ha = REL_STEP * hp.alpha;
    let d_alpha = central(|h| h.alpha, |h, v| h.alpha = v, ha)?;
    let hl = REL_STEP * hp.l2.abs().max(1e-2);
    let d_l2 = central(|h| h.l2, |h, v| h.l2 = v, hl)?;
    let hs = REL_STEP * hp.init_scale;
    let d_init = central(|h| h.init_scale, |h, v| h.init_scale = v, hs)?;
    let m = GAMMA_QUANTA;
    let gp = Rational::from_numerator(gamma.n() + m);
    let gm = gamma.n().checked_sub(m).and_then(Rational::from_numerator);
    let (gp, gm) = gp.zip(gm).ok_or_else(|| {
        Error::Usage(format!(
            "inner.gamma = {} is too close to 0 or 1 for a finite-difference step of {m}/{DEN}",
            hp.gamma
        ))
    })?;
    let hg = m as f64 / DEN as f64;
    let d_gamma = (exact_val_loss(obj, eps, hp, gp, steps)?
        - exact_val_loss(obj, eps, hp, gm, steps)?)
        / (2.0 * hg);
    Ok(FiniteDiff {
        grads: PerHyper {
            alpha: d_alpha,
            gamma: d_gamma,
            l2: d_l2,
            init_scale: d_init,
        },
        steps: PerHyper {
            alpha: ha,
            gamma: hg,
            l2: hl,
            init_scale: hs,
        },
        effective_gamma: gamma.value(),
    })
}
