//! # Hypergradients by central finite differences of the exact forward run
//!
//! A probe moves the entries of one block along `δ` (one entry, or a random direction over
//! many): `g(s) = f(h + s·δ)`, whose derivative at 0 the reversal gives as `Σ_e ∂f/∂h_e·δ_e`.
//! Each `g` comes from a fresh exact forward run. With `D(k) = (g(k) − g(−k))/2k`:
//!
//! ```text
//! R₁ = (4·D(1) − D(2))/3        R₂ = (4·D(2) − D(4))/3          (Richardson, error O(δ⁴))
//! estimate = R₁                 error ≈ |R₁ − R₂|
//! ```
//!
//! The error estimate is what makes a disagreement explainable: fixed-point quantisation
//! and γ's rounding to n/2^16 add noise to `g` that no step size removes, and it shows up as
//! inconsistency between R₁ and R₂; it is never taken below the few ulps of rounding every
//! f64 loss carries (`1.5·4·ε·|g|`: R₁ and R₂ can agree better than that by chance). Steps: `δ_e = 10⁻³·|h_e|` for α, init_scale and example
//! weights, `10⁻³·max(|h_e|, 0.3)` for l2 (so l2 = 0 and the tiny effect of one per-weight
//! penalty get a step above the fixed-point rounding); `δ_e = 0.05·ε_e` for Adam's ε, whose
//! effect is tiny; for the decays (γ, β₁, β₂, ρ) a whole number of quanta 2^−16 (at most 8, fewer near 0
//! or 1), so a constant decay moves between exact rationals; `δ_e = 10⁻³·σ_f` for an input
//! entry of feature f (a pixel at 0 still moves).

use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

use super::Setup;
use crate::error::Result;
use crate::exact::rational::DEN;
use crate::hyper::{Hypers, Kind, MAX_GAMMA};
use crate::model::{Evaluate, Objective, RowTangents};
use crate::optim::{Optimizer, Reversible, Visit};

/// Relative step for α, l2 and init_scale.
pub const REL_STEP: f64 = 1e-3;
/// Relative step for ε: its effect on the loss is tiny (it matters only where √ŝ is
/// comparable), so a 10⁻³ step would be swamped by θ's fixed-point quantisation; 5% keeps
/// the Richardson estimate's O(δ⁴) error far below its quantisation noise.
pub const EPS_REL_STEP: f64 = 0.05;
/// Step of an input feature, in standard deviations of the feature.
pub const INPUT_STEP: f64 = 1e-3;
/// Most quanta of 2^−16 in a γ step.
pub const GAMMA_QUANTA: u64 = 8;

/// A direction in the entries of one block.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The block.
    pub kind: Kind,
    /// What it probes, for people (`entry 3 (W1)`, `random direction 1`).
    pub label: String,
    /// δ per entry of the block.
    pub delta: Vec<f64>,
}

impl Probe {
    /// The derivative the reversal predicts, `Σ_e grad_e·δ_e`.
    pub fn predicted(&self, grads: &Hypers) -> f64 {
        grads
            .get(self.kind)
            .values
            .iter()
            .zip(&self.delta)
            .map(|(g, d)| g * d)
            .sum()
    }
}

/// A finite-difference estimate and its own error estimate.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    /// Richardson-extrapolated `dg/ds`.
    pub value: f64,
    /// `|R₁ − R₂|`.
    pub error: f64,
}

/// Validation loss after an exact forward run.
///
/// # Errors
/// As the exact forward run.
pub fn exact_val_loss(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<f64> {
    struct V<'a, 'o, Obj>(&'o mut Obj, Setup<'a>);
    impl<Obj: Objective + Evaluate + RowTangents> Visit for V<'_, '_, Obj> {
        type Output = Result<f64>;
        fn visit<O: Optimizer>(self) -> Self::Output {
            let V(obj, setup) = self;
            val_loss_with(super::reverse::exact_of::<O>(setup)?, obj, setup)
        }
    }
    setup.require_reversible()?;
    setup.optimizer.visit(V(obj, setup))
}

fn val_loss_with<O: Reversible>(
    mut opt: O,
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<f64> {
    let mut obj = setup.objective(obj);
    let mut s = opt.start(&setup.theta0())?;
    for t in 0..setup.steps {
        opt.step(&mut obj, t, &mut s)?;
    }
    let mut g = vec![0.0; obj.dim()];
    Ok(obj.validation_grad_into(&opt.theta_f64(&s), &mut g).0)
}

/// The step of entry value `h` of `kind` in a probe (its sign and size along δ).
fn step(b: &crate::hyper::Block, e: usize, h: f64) -> f64 {
    let kind = b.kind();
    if let Some(fb) = b.feature_box() {
        // An input feature: 0.1% of its standard deviation, whatever its value (a pixel at 0
        // still moves).
        return INPUT_STEP * fb.std[e % b.width()];
    }
    match kind {
        k if k.info().decay => {
            let n = (h * DEN as f64).ceil() as u64;
            let room =
                (n.saturating_sub(1)).min(((MAX_GAMMA * DEN as f64) as u64).saturating_sub(n));
            (room / 4).min(GAMMA_QUANTA) as f64 / DEN as f64
        }
        // One per-weight penalty moves the validation loss by ~1e-8 per unit: a step of
        // 1e-6 changes f by less than the fixed-point rounding does. 3e-4 is well above it
        // (and still far from where the Richardson error estimate grows).
        Kind::L2 => REL_STEP * h.abs().max(0.3),
        Kind::Eps => EPS_REL_STEP * h.abs(),
        _ => REL_STEP * h.abs(),
    }
}

/// Probes for `kind`: every entry if there are at most `entries`, else `entries` sampled
/// ones (first, last, and seeded picks between), plus `directions` seeded random directions
/// over all entries (each entry ±its step). Entries whose γ is too close to 0 or 1 for a
/// step are left out.
pub fn probes(
    hypers: &Hypers,
    kind: Kind,
    entries: usize,
    directions: usize,
    seed: u64,
) -> Vec<Probe> {
    let b = hypers.get(kind);
    let n = b.len();
    let steps: Vec<f64> = b
        .values
        .iter()
        .enumerate()
        .map(|(e, &h)| step(b, e, h))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ kind as u64);
    let mut picks: Vec<usize> = if n <= entries {
        (0..n).collect()
    } else {
        let mut p = vec![0, n - 1];
        while p.len() < entries {
            p.push(rng.random_range(1..n - 1));
        }
        p.sort_unstable();
        p.dedup();
        p
    };
    picks.retain(|&e| steps[e] > 0.0);
    let mut out: Vec<Probe> = picks
        .into_iter()
        .map(|e| {
            let mut delta = vec![0.0; n];
            delta[e] = steps[e];
            let (group, knot, index) = b.entry(e);
            let mut label = format!("entry {e} ({group}");
            if b.knots() > 1 {
                label += &format!(", knot {knot}");
            }
            if let Some(i) = index {
                label += &format!(", index {i}");
            }
            Probe {
                kind,
                label: label + ")",
                delta,
            }
        })
        .collect();
    if n > 1 {
        for d in 0..directions {
            let delta = steps
                .iter()
                .map(|&s| if rng.random_bool(0.5) { s } else { -s })
                .collect();
            out.push(Probe {
                kind,
                label: format!("random direction {}", d + 1),
                delta,
            });
        }
    }
    out
}

/// `dg/ds` at 0 for `g(s) = f(h + s·δ)`, by Richardson extrapolation over s = ±1, ±2, ±4.
///
/// # Errors
/// As the exact forward run (at any of the six points).
pub fn estimate(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
    probe: &Probe,
) -> Result<Estimate> {
    let mut g = |s: f64| -> Result<f64> {
        let mut h = setup.hypers.clone();
        for (v, d) in h.get_mut(probe.kind).values.iter_mut().zip(&probe.delta) {
            *v += s * d;
        }
        exact_val_loss(
            obj,
            Setup {
                hypers: &h,
                ..setup
            },
        )
    };
    let mut largest = 0.0f64;
    let mut d = |k: f64| -> Result<f64> {
        let (a, b) = (g(k)?, g(-k)?);
        largest = largest.max(a.abs()).max(b.abs());
        Ok((a - b) / (2.0 * k))
    };
    let (d1, d2, d4) = (d(1.0)?, d(2.0)?, d(4.0)?);
    let r1 = (4.0 * d1 - d2) / 3.0;
    let r2 = (4.0 * d2 - d4) / 3.0;
    Ok(Estimate {
        value: r1,
        error: (r1 - r2).abs().max(rounding_floor(largest)),
    })
}

/// The least error a Richardson estimate can have: each loss `g(s)` is an f64 sum (and the
/// end of a fixed-point run quantised at 2^−52), so it carries a few ulps of rounding,
/// `u = ROUNDING_ULPS·ε·|g|`, that no step size removes; `R₁ = (4·D(1) − D(2))/3` weighs the
/// six losses by coefficients whose magnitudes sum to 1.5, so `R₁` is uncertain by `1.5·u`.
/// `|R₁ − R₂|` can come out below that by chance (two noisy estimates agreeing), so the
/// estimate's error is never taken smaller.
fn rounding_floor(largest_loss: f64) -> f64 {
    1.5 * ROUNDING_ULPS * f64::EPSILON * largest_loss
}

/// Ulps of rounding assumed in one validation loss (see [`estimate`]'s error floor).
pub const ROUNDING_ULPS: f64 = 4.0;

/// How a probe's reversal value compares with its finite-difference estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the relative tolerance.
    Ok,
    /// Beyond the tolerance but within [`EXPLAINED`] times the estimate's own error.
    Explained,
    /// Neither: a disagreement the finite differences cannot explain.
    Fail,
}

/// A disagreement up to this many times the finite differences' error estimate is explained.
pub const EXPLAINED: f64 = 3.0;

/// `|a − b| / max(|a|, |b|, floor)`.
pub fn relative_error(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}

/// The verdict on `predicted` (from the reversal) against `fd` at relative `tolerance`.
pub fn verdict(predicted: f64, fd: Estimate, tolerance: f64) -> Verdict {
    if relative_error(predicted, fd.value, 1e-12) <= tolerance {
        Verdict::Ok
    } else if (predicted - fd.value).abs() <= EXPLAINED * fd.error {
        Verdict::Explained
    } else {
        Verdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let fd = |value, error| Estimate { value, error };
        assert_eq!(verdict(1.0, fd(1.0 + 1e-6, 0.0), 1e-4), Verdict::Ok);
        assert_eq!(verdict(1.0, fd(1.01, 0.004), 1e-4), Verdict::Explained);
        assert_eq!(verdict(1.0, fd(1.01, 0.003), 1e-4), Verdict::Fail);
        assert_eq!(verdict(1.0, fd(f64::NAN, 0.0), 1e-4), Verdict::Fail);
        // A zero derivative compares absolutely, through the floor.
        assert_eq!(verdict(0.0, fd(1e-17, 0.0), 1e-4), Verdict::Ok);
    }
}
