//! # Hypergradients by central finite differences of the exact forward run
//!
//! A probe moves the entries of one block along `δ` (one entry, or a random direction over
//! many): `g(s) = f(h + s·δ)`, whose derivative at 0 the reversal gives as `Σ_e ∂f/∂h_e·δ_e`.
//! Each `g` comes from a fresh exact forward run. With `D(k) = (g(k) − g(−k))/2k`:
//!
//! ```text
//! R₁ = (4·D(1) − D(2))/3        R₂ = (4·D(2) − D(4))/3          (Richardson, error O(δ⁴))
//! estimate = R₁                 error ≈ |R₁ − R₂| + rounding bound (scheduled decays)
//! ```
//!
//! The error estimate is what makes a disagreement explainable. Fixed-point quantisation
//! adds noise to `g` that no step size removes; it shows up as inconsistency between R₁ and
//! R₂, and the estimate is never taken below the few ulps of rounding every f64 loss carries
//! (`1.5·4·ε·|g|`: R₁ and R₂ can agree better than that by chance).
//!
//! A decay (γ, β₁, β₂, ρ) runs as the rational `⌈γ_t·2^16⌉/2^16` of its value at each step,
//! and the reversal differentiates that run with the rational as the step's value
//! ([`super`]): the smooth map. A probe of a constant decay moves it by whole quanta, so
//! every step moves between exact rationals. A knot of a schedule moves the interpolated
//! steps between knots by fractions of a quantum, so each `g(s)` also carries the rounding
//! `r_t(s) = ⌈h_t(s)·2^16⌉/2^16 − h_t(s) ∈ [0, 2^−16)` of every step and group it touches: to
//! first order `g(s) = f̃(s) + Σ_t ∂f/∂γ_t·r_t(s)`, with `f̃` the smooth map. The offsets jump
//! as `s` moves, so the loss is a step function of the knot, and |R₁ − R₂| sees the jumps
//! only by chance. [`DecaySteps`] bounds their effect on R₁ from the offsets themselves
//! (known exactly for each `s`) and the per-step hypergradients `∂f/∂γ_t` of one more
//! reversal:
//!
//! ```text
//! Q(k) = Σ_{t,g} |∂f/∂γ_{t,g}|·|r_{t,g}(k) − r_{t,g}(−k)| / 2k        bound = (4·Q(1) + Q(2))/3
//! ```
//!
//! and the bound is added to the error. It takes the magnitudes of the per-step
//! hypergradients only (the triangle inequality, with no cancellation assumed), so a wrong
//! sign in the decay's adjoint leaves the bound as it is and still fails wherever the bound
//! is small next to the derivative.
//!
//! Steps: `δ_e = 10⁻³·|h_e|` for α, init_scale and example weights, `10⁻³·max(|h_e|, 0.3)`
//! for l2 (so l2 = 0 and the tiny effect of one per-weight penalty get a step above the
//! fixed-point rounding); `δ_e = 0.05·ε_e` for Adam's ε, whose effect is tiny; for the
//! decays (γ, β₁, β₂, ρ) a whole number of quanta 2^−16 (at most 8 for a constant decay, 64
//! for a schedule's knot, fewer near 0 or 1), so a constant decay moves between exact
//! rationals and a knot's rounding noise (≈ 2^−16/δ) stays small; `δ_e = 10⁻³·σ_f` for an
//! input entry of feature f (a pixel at 0 still moves).

use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

use super::Setup;
use crate::error::Result;
use crate::exact::Rational;
use crate::exact::rational::DEN;
use crate::hyper::{Block, Hypers, Kind, MAX_GAMMA};
use crate::model::{Evaluate, Objective, RowTangents};
use crate::optim::{Optimizer, Reversible, Visit};
use crate::runtime::Phase;

/// Relative step for α, l2 and init_scale.
pub const REL_STEP: f64 = 1e-3;
/// Relative step for ε: its effect on the loss is tiny (it matters only where √ŝ is
/// comparable), so a 10⁻³ step would be swamped by θ's fixed-point quantisation; 5% keeps
/// the Richardson estimate's O(δ⁴) error far below its quantisation noise.
pub const EPS_REL_STEP: f64 = 0.05;
/// Step of an input feature, in standard deviations of the feature.
pub const INPUT_STEP: f64 = 1e-3;
/// Most quanta of 2^−16 in the step of a constant decay (γ, β₁, β₂, ρ).
pub const GAMMA_QUANTA: u64 = 8;
/// Most quanta of 2^−16 in the step of a decay schedule's knot: the rounding of its
/// interpolated steps adds noise of about 2^−16/δ relative to its finite differences
/// ([`DecaySteps`]), so a knot takes a larger step than a constant decay; 64 quanta is
/// ≈ 10⁻³, the size of α's relative step.
pub const KNOT_QUANTA: u64 = 64;

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
    /// `|R₁ − R₂|` (at least the rounding floor of the losses), plus `rounding`.
    pub error: f64,
    /// The part of `error` from rounding a scheduled decay's interpolated steps to n/2^16
    /// ([`DecaySteps::rounding`]); 0 for every other probe.
    pub rounding: f64,
}

impl Estimate {
    /// The estimate with `bound` (from [`DecaySteps::rounding`]) added to its error.
    pub fn with_rounding(self, bound: f64) -> Self {
        Estimate {
            error: self.error + bound,
            rounding: self.rounding + bound,
            ..self
        }
    }
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
    setup.begin(Phase::Forward);
    for t in 0..setup.steps {
        opt.step(&mut obj, t, &mut s)?;
        setup.tick(t + 1);
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
            let most = if b.knots() > 1 {
                KNOT_QUANTA
            } else {
                GAMMA_QUANTA
            };
            (room / 4).min(most) as f64 / DEN as f64
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
        rounding: 0.0,
    })
}

/// The per-step hypergradients of every scheduled decay, for bounding what rounding its
/// interpolated steps to n/2^16 does to a finite difference of its knots (see the module
/// docs). Empty, at no cost, when no decay has a schedule.
#[derive(Debug, Clone, Default)]
pub struct DecaySteps {
    /// Per scheduled decay: its kind and `|∂f/∂γ_{t,g}|` laid out `[t][g]`.
    blocks: Vec<(Kind, Vec<f64>)>,
}

impl DecaySteps {
    /// One exact reversal of the same run with every scheduled decay given one knot per
    /// step, holding that step's rational: the run is the same bit for bit (each step takes
    /// its knot as it is, and a rational rounds to itself), and the knots' hypergradients
    /// are the per-step ones.
    ///
    /// # Errors
    /// As [`super::reverse::hypergradient`].
    pub fn of(obj: &mut (impl Objective + Evaluate + RowTangents), setup: Setup) -> Result<Self> {
        let per_step = per_step(setup);
        if per_step.is_empty() {
            return Ok(DecaySteps::default());
        }
        let mut hypers = setup.hypers.clone();
        for b in &per_step {
            *hypers.get_mut(b.kind()) = b.clone();
        }
        let rev = super::reverse::hypergradient(
            obj,
            Setup {
                hypers: &hypers,
                ..setup
            },
        )?;
        let blocks = per_step
            .iter()
            .map(|b| {
                let d = rev.grads.get(b.kind()).values.iter().map(|d| d.abs());
                (b.kind(), d.collect())
            })
            .collect();
        Ok(DecaySteps { blocks })
    }

    /// True when no decay has a schedule (every bound is 0).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// A bound on what rounding the interpolated steps of `probe`'s block to n/2^16 does
    /// to its Richardson estimate R₁ = (4·D(1) − D(2))/3, to first order:
    /// `(4·Q(1) + Q(2))/3` with `Q(k) = Σ_{t,g} |∂f/∂γ_{t,g}|·|r_{t,g}(k) − r_{t,g}(−k)|/2k`,
    /// where `r_{t,g}(s)` is the rounding offset of step t and group g at `h + s·δ`, computed
    /// as [`estimate`] moves the block. 0 for a probe of any other block.
    pub fn rounding(&self, setup: Setup, probe: &Probe) -> f64 {
        let Some((_, d)) = self.blocks.iter().find(|(k, _)| *k == probe.kind) else {
            return 0.0;
        };
        let block = setup.hypers.get(probe.kind);
        let steps = setup.steps;
        let offsets = |s: f64| -> Vec<f64> {
            let mut b = block.clone();
            for (v, d) in b.values.iter_mut().zip(&probe.delta) {
                *v += s * d;
            }
            let groups = b.groups().len();
            let mut r = Vec::with_capacity(steps * groups);
            for t in 0..steps {
                for g in 0..groups {
                    let h = b.value_at(t, steps, g);
                    r.push(Rational::of_valid(h).value() - h);
                }
            }
            r
        };
        let q = |k: f64| -> f64 {
            let (up, down) = (offsets(k), offsets(-k));
            let moved: f64 = up
                .iter()
                .zip(&down)
                .zip(d)
                .map(|((u, w), d)| d * (u - w).abs())
                .sum();
            moved / (2.0 * k)
        };
        (4.0 * q(1.0) + q(2.0)) / 3.0
    }
}

/// Every scheduled decay block of `setup` with one knot per step holding that step's
/// rational n_t/2^16, in block order.
fn per_step(setup: Setup) -> Vec<Block> {
    let steps = setup.steps;
    setup
        .hypers
        .blocks
        .iter()
        .filter(|b| b.kind().info().decay && b.knots() > 1)
        .map(|b| {
            let groups = b.groups().len();
            let mut e = Block::filled(b.kind(), b.per(), steps, setup.layout, 0.5);
            debug_assert_eq!(e.groups().len(), groups);
            for t in 0..steps {
                for g in 0..groups {
                    e.values[t * groups + g] = Rational::of_valid(b.value_at(t, steps, g)).value();
                }
            }
            e
        })
        .collect()
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
    use ndarray::Array2;

    use super::*;
    use crate::data::{Data, Dataset};
    use crate::hyper::{OptimizerId, Per};
    use crate::model::{Activation, Layout, Threads, init_noise};
    use crate::problem::Problem;

    /// Gaussian blobs: `n` training and `n` validation rows of `d` features, 3 classes.
    fn blobs(n: usize, d: usize, seed: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = Array2::from_shape_fn((3, d), |_| rng.random_range(-1.0..1.0));
        let mut make = || {
            let y: Vec<usize> = (0..n).map(|_| rng.random_range(0..3)).collect();
            let x = Array2::from_shape_fn((n, d), |(i, j)| {
                centres[[y[i], j]] + rng.random_range(-0.8..0.8)
            });
            Dataset { x, y }
        };
        let (train, validation) = (make(), make());
        Data {
            train,
            validation,
            test: None,
            n_features: d,
            n_classes: 3,
            flipped: Vec::new(),
            learnable: None,
            poison: Vec::new(),
            feature_names: None,
        }
    }

    /// Momentum with α and γ schedules of 5 knots per array (knots drawn from `seed`), l2
    /// per layer.
    fn scheduled(layout: &Layout, seed: u64) -> Hypers {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut block = |kind, per, knots, lo: f64, hi: f64| {
            let mut b = Block::filled(kind, per, knots, layout, lo);
            for v in &mut b.values {
                *v = rng.random_range(lo..hi);
            }
            b
        };
        Hypers {
            blocks: vec![
                block(Kind::Alpha, Per::Array, 5, 0.1, 0.4),
                block(Kind::Gamma, Per::Array, 5, 0.6, 0.9),
                block(Kind::L2, Per::Layer, 1, 1e-3, 1e-2),
                block(Kind::InitScale, Per::All, 1, 1.0, 1.0 + 1e-9),
            ],
        }
    }

    /// Runs `f` with a 6-5-3 problem on blobs, its hypers (seed `seed`) and a 40-step setup.
    fn with_setup<R>(seed: u64, f: impl FnOnce(&mut Problem, Setup) -> R) -> R {
        let data = blobs(40, 6, seed);
        let mut p = Problem::new(&data, &[5], Activation::Tanh, 10, true, seed);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, seed);
        let hypers = scheduled(&layout, seed);
        let threads = Threads::one();
        let setup = Setup {
            optimizer: OptimizerId::Momentum,
            hypers: &hypers,
            eps: &eps,
            layout: &layout,
            steps: 40,
            threads: &threads,
            progress: None,
        };
        f(&mut p, setup)
    }

    #[test]
    fn one_knot_per_step_is_the_same_run_and_gives_the_per_step_hypergradients() {
        with_setup(1, |p, setup| {
            let rev = super::super::reverse::hypergradient(p, setup).unwrap();
            let [gamma] = per_step(setup).try_into().unwrap();
            let mut h = setup.hypers.clone();
            *h.get_mut(Kind::Gamma) = gamma.clone();
            let steps = super::super::reverse::hypergradient(
                p,
                Setup {
                    hypers: &h,
                    ..setup
                },
            )
            .unwrap();
            assert_eq!(rev.val_loss.to_bits(), steps.val_loss.to_bits());
            // Folded into the knots by the chain rule, the per-step hypergradients are the
            // knots' hypergradients (the same terms, added in another grouping).
            let b = setup.hypers.get(Kind::Gamma);
            let ng = b.groups().len();
            let mut folded = vec![0.0; b.len()];
            let d = &steps.grads.get(Kind::Gamma).values;
            for t in 0..setup.steps {
                for g in 0..ng {
                    let h_t = b.value_at(t, setup.steps, g);
                    b.add_step_gradient(t, setup.steps, g, h_t, d[t * ng + g], &mut folded);
                }
            }
            for (a, b) in folded.iter().zip(&rev.grads.get(Kind::Gamma).values) {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "folded {a}, knot {b}");
            }
        });
    }

    /// Every probe of a γ schedule's knots on several problems: the finite differences,
    /// with the rounding bound in their error, explain the reversal; the same hypergradient
    /// with its sign flipped (a wrong sign in γ's adjoint) fails.
    #[test]
    fn the_rounding_bound_explains_decay_knots_and_a_wrong_sign_still_fails() {
        let (mut probed, mut bounded, mut all_caught) = (0, 0, 0);
        for seed in 0..4 {
            with_setup(seed, |p, setup| {
                let rev = super::super::reverse::hypergradient(p, setup).unwrap();
                let decays = DecaySteps::of(p, setup).unwrap();
                let mut caught = 0;
                for probe in probes(setup.hypers, Kind::Gamma, 3, 2, seed) {
                    let a = probe.predicted(&rev.grads);
                    let fd = estimate(p, setup, &probe)
                        .unwrap()
                        .with_rounding(decays.rounding(setup, &probe));
                    assert_ne!(
                        verdict(a, fd, 1e-4),
                        Verdict::Fail,
                        "seed {seed} {}: reversal {a:e}, fd {fd:?}",
                        probe.label
                    );
                    probed += 1;
                    bounded += usize::from(fd.rounding > 0.0);
                    caught += usize::from(verdict(-a, fd, 1e-4) == Verdict::Fail);
                }
                // check-grad exits 1 when any probe fails.
                assert!(caught > 0, "seed {seed}: a wrong sign passes every probe");
                all_caught += caught;
            });
        }
        assert_eq!(bounded, probed, "every knot moves interpolated steps");
        // A knot's step of 64 quanta keeps the bound small next to most derivatives: a
        // wrong sign fails nearly every probe, not just one per run.
        assert!(
            all_caught * 10 >= probed * 9,
            "a wrong sign fails only {all_caught} of {probed} probes"
        );
    }

    #[test]
    fn no_schedule_costs_nothing_and_bounds_nothing() {
        with_setup(0, |p, setup| {
            let mut h = setup.hypers.clone();
            *h.get_mut(Kind::Gamma) = Block::filled(Kind::Gamma, Per::Array, 1, setup.layout, 0.8);
            let setup = Setup {
                hypers: &h,
                ..setup
            };
            let decays = DecaySteps::of(p, setup).unwrap();
            assert!(decays.is_empty());
            for probe in probes(&h, Kind::Gamma, 3, 1, 0) {
                assert_eq!(decays.rounding(setup, &probe).to_bits(), 0.0f64.to_bits());
            }
        });
    }

    #[test]
    fn verdicts() {
        let fd = |value, error| Estimate {
            value,
            error,
            rounding: 0.0,
        };
        assert_eq!(verdict(1.0, fd(1.0 + 1e-6, 0.0), 1e-4), Verdict::Ok);
        assert_eq!(verdict(1.0, fd(1.01, 0.004), 1e-4), Verdict::Explained);
        assert_eq!(verdict(1.0, fd(1.01, 0.003), 1e-4), Verdict::Fail);
        assert_eq!(verdict(1.0, fd(f64::NAN, 0.0), 1e-4), Verdict::Fail);
        // A zero derivative compares absolutely, through the floor.
        assert_eq!(verdict(0.0, fd(1e-17, 0.0), 1e-4), Verdict::Ok);
    }
}
