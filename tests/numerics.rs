//! Public-API properties of the numerics: exact reversal (with schedules), hypergradient
//! agreement across three independent paths and across block shapes, float reversal drift.

use ndarray::Array2;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};
use proptest::prelude::*;
use revgrad::data::{Data, Dataset};
use revgrad::hyper::{Block, Hypers, Kind, OptimizerId, Per};
use revgrad::hypergrad::Setup;
use revgrad::hypergrad::finite_diff::{Estimate, Probe, estimate, probes};
use revgrad::hypergrad::reverse::{Hypergradient, hypergradient};
use revgrad::hypergrad::stored::hypergradient_stored;
use revgrad::model::{Activation, Evaluate, Layout, Objective, RowTangents, Threads, init_noise};
use revgrad::optim::{
    Arithmetic, ExactAdam, ExactMomentum, FloatAdam, FloatMomentum, FloatOptimizer, FloatState,
    Optimizer, Reversible, train,
};
use revgrad::problem::Problem;

/// A small synthetic classification problem: Gaussian blobs around class centres.
fn blobs(n_train: usize, n_val: usize, d: usize, k: usize, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres = Array2::from_shape_fn((k, d), |_| rng.random_range(-1.0..1.0));
    let mut make = |n: usize| {
        let y: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
        let x = Array2::from_shape_fn((n, d), |(i, j)| {
            centres[[y[i], j]] + rng.random_range(-0.8..0.8)
        });
        Dataset { x, y }
    };
    let train = make(n_train);
    let validation = make(n_val);
    Data {
        train,
        validation,
        n_features: d,
        n_classes: k,
        test: None,
        flipped: Vec::new(),
        learnable: None,
        poison: Vec::new(),
        feature_names: None,
    }
}

/// Scalar blocks α, γ, l2, init_scale over `layout`.
fn scalar(layout: &Layout, alpha: f64, gamma: f64, l2: f64, init: f64) -> Hypers {
    Hypers {
        blocks: vec![
            Block::scalar(Kind::Alpha, layout, alpha),
            Block::scalar(Kind::Gamma, layout, gamma),
            Block::scalar(Kind::L2, layout, l2),
            Block::scalar(Kind::InitScale, layout, init),
        ],
    }
}

/// The setup of the optimizer whose blocks `h` holds (RMSprop with ρ, Adam with β₁, else
/// momentum).
fn setup<'a>(h: &'a Hypers, eps: &'a [f64], layout: &'a Layout, steps: usize) -> Setup<'a> {
    let optimizer = if h.find(Kind::Rho).is_some() {
        OptimizerId::Rmsprop
    } else if h.find(Kind::Beta1).is_some() {
        OptimizerId::Adam
    } else {
        OptimizerId::Momentum
    };
    Setup {
        optimizer,
        hypers: h,
        eps,
        layout,
        steps,
        threads: &ONE_THREAD,
        progress: None,
    }
}

/// The optimizers' threads in [`setup`]: the calling thread alone.
static ONE_THREAD: std::sync::LazyLock<Threads> = std::sync::LazyLock::new(Threads::one);

/// Forward `steps` exact steps, undo them, and demand bit-identical θ₀, v₀ = 0 and an
/// empty information buffer. Returns the number of words the shared stack held at θ_T.
#[allow(clippy::too_many_arguments)]
fn assert_exact_reversal(
    data: &Data,
    act: Activation,
    shuffle: bool,
    batch: usize,
    h: impl Fn(&Layout) -> Hypers,
    steps: usize,
    seed: u64,
) -> usize {
    let mut p = Problem::new(data, &[6], act, batch, shuffle, seed);
    let layout = p.layout().clone();
    let h = h(&layout);
    let eps = init_noise(&layout, seed);
    let su = setup(&h, &eps, &layout, steps);
    let mut obj = su.objective(&mut p);
    let mut opt = ExactMomentum::new(&h, &layout, steps, &Threads::one());
    let mut s = opt.start(&su.theta0()).unwrap();
    let start = s.clone();
    for t in 0..steps {
        opt.step(&mut obj, t, &mut s)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let words = s.buffer.stack_words();
    for t in (0..steps).rev() {
        opt.undo_step(&mut obj, t, &mut s);
    }
    assert_eq!(
        s.theta, start.theta,
        "θ₀ not restored (seed {seed}, T={steps})"
    );
    assert_eq!(s.v, start.v, "v₀ not restored (seed {seed})");
    assert!(
        s.buffer.is_empty_of_information(),
        "buffer not emptied (seed {seed})"
    );
    words
}

#[test]
fn exact_reversal_over_ten_thousand_steps() {
    let data = blobs(60, 20, 4, 3, 1);
    for (shuffle, gamma) in [(true, 0.9), (false, 0.5), (true, 0.999)] {
        let h = |l: &Layout| scalar(l, 0.05, gamma, 0.01, 1.0);
        let words = assert_exact_reversal(&data, Activation::Tanh, shuffle, 7, h, 10_000, 3);
        // 10,000 multiplies store 10⁴·log₂(1/γ) bits per element: at γ ≤ 0.9 that is
        // dozens of 32-bit words each, so the emit and refill paths all ran.
        if gamma <= 0.9 {
            assert!(words > 20 * 51, "only {words} words spilled at γ = {gamma}");
        }
    }
}

/// Random per-step, per-array γ and α schedules (K = T knots for γ, so every step and
/// group multiplies by its own rational).
fn random_schedules(l: &Layout, seed: u64, steps: usize, l2: f64) -> Hypers {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut alpha = Block::filled(Kind::Alpha, Per::Layer, 7.min(steps), l, 0.1);
    for v in &mut alpha.values {
        *v = rng.random_range(0.01..0.6);
    }
    let mut gamma = Block::filled(Kind::Gamma, Per::Array, steps, l, 0.9);
    for v in &mut gamma.values {
        *v = rng.random_range(0.01..0.999);
    }
    Hypers {
        blocks: vec![
            alpha,
            gamma,
            Block::scalar(Kind::L2, l, l2),
            Block::scalar(Kind::InitScale, l, 1.0),
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn exact_reversal_is_bitwise(
        seed in 0u64..1000,
        alpha in 0.01f64..0.999,
        gamma in 0.01f64..0.999,
        shuffle in any::<bool>(),
        steps in 1usize..600,
        batch in 1usize..20,
        act in prop_oneof![Just(Activation::Tanh), Just(Activation::Relu), Just(Activation::Softplus)],
    ) {
        let data = blobs(40, 10, 3, 3, seed);
        let h = |l: &Layout| scalar(l, alpha, gamma, 0.001, 1.0);
        assert_exact_reversal(&data, act, shuffle, batch, h, steps, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    /// Long runs: the information buffer spills words, refills and borrows, and θ₀, v₀
    /// still come back bit for bit — with a different γ per step and per array.
    #[test]
    fn long_exact_reversals_with_random_schedules(
        seed in 0u64..1000,
        shuffle in any::<bool>(),
        steps in 2000usize..5000,
    ) {
        let data = blobs(30, 10, 3, 3, seed);
        let h = |l: &Layout| random_schedules(l, seed, steps, 0.001);
        assert_exact_reversal(&data, Activation::Tanh, shuffle, 4, h, steps, seed);
    }
}

/// Relative difference with a floor so that near-zero derivatives compare absolutely.
fn rel(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}

/// The exact reversal's hypergradient, after checking that it is exact and that the stored
/// trajectory gives the same validation loss and every hypergradient entry bit for bit.
fn assert_reversal_matches_stored(p: &mut Problem, su: Setup, case: &str) -> Hypergradient {
    let rev = hypergradient(p, su).unwrap();
    let (stored, val) = hypergradient_stored(p, su).unwrap();
    assert!(rev.exact, "{case}");
    assert_eq!(rev.val_loss.to_bits(), val.to_bits(), "{case}");
    for (a, b) in rev.grads.blocks.iter().zip(&stored.blocks) {
        for (x, y) in a.values.iter().zip(&b.values) {
            assert_eq!(
                x.to_bits(),
                y.to_bits(),
                "{case} {}: {x} vs {y}",
                a.kind().name()
            );
        }
    }
    rev
}

/// check-grad's rule: the reversal's `a` within 1e-4 relative of the finite differences,
/// or within 3× their own error estimate (fixed-point quantisation of 2^-52 per step, and γ
/// rounded to n/2^16 at the interpolated steps of a schedule). Returns the relative error.
fn assert_agrees_with_fd(case: &str, probe: &Probe, a: f64, fd: Estimate) -> f64 {
    let e = rel(a, fd.value, 1e-9);
    let explained = (a - fd.value).abs() <= 3.0 * fd.error;
    assert!(
        e < 1e-4 || explained,
        "{case} d_{} {}: reversal {a} vs finite differences {} ± {} (rel {e:e})",
        probe.kind.name(),
        probe.label,
        fd.value,
        fd.error
    );
    e
}

/// Blocks of every shape: α per array with 4 knots, γ per layer with 3 knots, l2 per weight,
/// init_scale per array, with distinct values.
fn shaped(l: &Layout, seed: u64) -> Hypers {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fill = |b: &mut Block, lo: f64, hi: f64| {
        for v in &mut b.values {
            *v = rng.random_range(lo..hi);
        }
    };
    let mut alpha = Block::filled(Kind::Alpha, Per::Array, 4, l, 0.0);
    fill(&mut alpha, 0.1, 0.4);
    let mut gamma = Block::filled(Kind::Gamma, Per::Layer, 3, l, 0.0);
    fill(&mut gamma, 0.6, 0.95);
    let mut l2 = Block::filled(Kind::L2, Per::Weight, 1, l, 0.0);
    fill(&mut l2, 0.001, 0.05);
    let mut init = Block::filled(Kind::InitScale, Per::Array, 1, l, 0.0);
    fill(&mut init, 0.5, 1.5);
    Hypers {
        blocks: vec![alpha, gamma, l2, init],
    }
}

#[test]
fn reversal_matches_stored_trajectory_bit_for_bit() {
    let data = blobs(50, 30, 4, 3, 7);
    for (act, shuffle, shapes) in [
        (Activation::Tanh, true, false),
        (Activation::Tanh, false, true),
        (Activation::Relu, true, true),
        (Activation::Softplus, false, false),
        (Activation::Softplus, true, true),
    ] {
        let mut p = Problem::new(&data, &[8, 5], act, 10, shuffle, 5);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, 5);
        let h = if shapes {
            shaped(&layout, 9)
        } else {
            scalar(&layout, 0.3, 0.85, 0.01, 1.0)
        };
        let su = setup(&h, &eps, &layout, 150);
        assert_reversal_matches_stored(&mut p, su, &format!("{act:?} shuffle={shuffle}"));
    }
    // Three buffer segments, whose α and γ sums are added per segment, in segment order,
    // on both paths.
    let data = blobs(40, 20, 12, 3, 5);
    let (mut p, layout, eps) = three_segments(&data);
    let h = shaped(&layout, 3);
    assert_reversal_matches_stored(&mut p, setup(&h, &eps, &layout, 40), "segments");
}

/// A 12-40-40-3 problem: 2,283 parameters, three information-buffer segments with arrays
/// straddling their edges; with its layout and initial-weight noise.
fn three_segments(data: &Data) -> (Problem<'_>, Layout, Vec<f64>) {
    let p = Problem::new(data, &[40, 40], Activation::Tanh, 8, true, 4);
    let layout = p.layout().clone();
    assert!(layout.len() > 2 * revgrad::exact::SEGMENT_LEN);
    let eps = init_noise(&layout, 4);
    (p, layout, eps)
}

#[test]
fn reversal_matches_finite_differences_on_every_block_shape() {
    let data = blobs(40, 30, 3, 3, 11);
    let (mut total, mut strict) = (0usize, 0usize);
    for (act, shuffle) in [(Activation::Tanh, true), (Activation::Softplus, false)] {
        let mut p = Problem::new(&data, &[5], act, 8, shuffle, 2);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, 2);
        for h in [scalar(&layout, 0.2, 0.8, 0.02, 1.0), shaped(&layout, 3)] {
            let su = setup(&h, &eps, &layout, 60);
            let rev = hypergradient(&mut p, su).unwrap();
            for kind in h.kinds() {
                for probe in probes(&h, kind, 3, 1, 5) {
                    let a = probe.predicted(&rev.grads);
                    let fd = estimate(&mut p, su, &probe).unwrap();
                    let e = assert_agrees_with_fd(&format!("{act:?}"), &probe, a, fd);
                    // γ knots of a schedule move rationals n/2^16 at interpolated steps:
                    // their finite differences carry quantisation noise of ~1e-2, and only
                    // the explained rule applies. Everything else must mostly agree to 1e-4.
                    if !(kind == Kind::Gamma && h.get(kind).knots() > 1) {
                        total += 1;
                        strict += usize::from(e < 1e-4);
                    }
                }
            }
        }
    }
    // The explanation must stay the exception, or the check would be vacuous.
    assert!(
        strict * 10 >= total * 9,
        "only {strict} of {total} probes agree within 1e-4"
    );
}

/// Replaces one block of `h`.
fn with(h: &Hypers, b: Block) -> Hypers {
    let mut out = h.clone();
    let k = b.kind();
    *out.get_mut(k) = b;
    out
}

/// θ_T of an exact run.
fn exact_theta(p: &mut Problem, su: Setup) -> Vec<f64> {
    train(
        &mut su.objective(p),
        su.layout,
        &su.theta0(),
        su.hypers,
        su.steps,
        OptimizerId::Momentum,
        Arithmetic::Exact,
        su.threads,
    )
    .unwrap()
}

#[test]
fn blocks_of_equal_entries_reproduce_the_scalar_run() {
    let data = blobs(40, 20, 3, 3, 13);
    let mut p = Problem::new(&data, &[6, 4], Activation::Tanh, 8, true, 4);
    let l = p.layout().clone();
    let eps = init_noise(&l, 4);
    let steps = 80;
    let base = scalar(&l, 0.25, 0.8, 0.01, 0.9);
    let theta = exact_theta(&mut p, setup(&base, &eps, &l, steps));
    let g = hypergradient(&mut p, setup(&base, &eps, &l, steps))
        .unwrap()
        .grads;
    for b in [
        Block::filled(Kind::Alpha, Per::Array, 5, &l, 0.25),
        Block::filled(Kind::Alpha, Per::Layer, steps, &l, 0.25),
        Block::filled(Kind::Gamma, Per::Layer, 3, &l, 0.8),
        Block::filled(Kind::Gamma, Per::Array, steps, &l, 0.8),
        Block::filled(Kind::L2, Per::Layer, 1, &l, 0.01),
        Block::filled(Kind::L2, Per::Weight, 1, &l, 0.01),
        Block::filled(Kind::InitScale, Per::Array, 1, &l, 0.9),
    ] {
        let what = format!(
            "{} per {} with {} knots",
            b.kind().name(),
            b.per().name(),
            b.knots()
        );
        let h = with(&base, b);
        let su = setup(&h, &eps, &l, steps);
        let t2 = exact_theta(&mut p, su);
        assert!(
            theta
                .iter()
                .zip(&t2)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{what}: θ_T differs from the scalar run"
        );
        let g2 = hypergradient(&mut p, su).unwrap().grads;
        for k in base.kinds() {
            let (s, entries) = (g.get(k).values[0], g2.get(k).values.iter().sum::<f64>());
            assert!(
                rel(s, entries, 1e-12) < 1e-10,
                "{what}: d_{} entries sum to {entries}, scalar {s}",
                k.name()
            );
        }
    }
}

#[test]
fn knot_hypergradients_are_the_chain_rule_of_per_step_ones() {
    let data = blobs(40, 20, 3, 3, 17);
    let mut p = Problem::new(&data, &[5], Activation::Softplus, 8, true, 6);
    let l = p.layout().clone();
    let eps = init_noise(&l, 6);
    let steps = 50;
    let mut knots = shaped(&l, 21);
    // α per array with 4 knots and γ per layer with 3 knots, distinct values (from `shaped`).
    let (alpha, gamma) = (
        knots.get(Kind::Alpha).clone(),
        knots.get(Kind::Gamma).clone(),
    );
    // The same schedules written out per step (K = T): the runs are bit-identical.
    let mut per_step = knots.clone();
    for b in [&alpha, &gamma] {
        let mut full = Block::filled(b.kind(), b.per(), steps, &l, 0.0);
        let ng = b.groups().len();
        for t in 0..steps {
            for g in 0..ng {
                full.values[t * ng + g] = b.value_at(t, steps, g);
            }
        }
        *per_step.get_mut(b.kind()) = full;
    }
    let gk = hypergradient(&mut p, setup(&knots, &eps, &l, steps)).unwrap();
    let gs = hypergradient(&mut p, setup(&per_step, &eps, &l, steps)).unwrap();
    assert_eq!(gk.val_loss.to_bits(), gs.val_loss.to_bits());
    for b in [&alpha, &gamma] {
        let ng = b.groups().len();
        let mut chained = vec![0.0; b.len()];
        let d = &gs.grads.get(b.kind()).values;
        for t in 0..steps {
            for g in 0..ng {
                b.add_step_gradient(
                    t,
                    steps,
                    g,
                    b.value_at(t, steps, g),
                    d[t * ng + g],
                    &mut chained,
                );
            }
        }
        for (e, (a, c)) in gk
            .grads
            .get(b.kind())
            .values
            .iter()
            .zip(&chained)
            .enumerate()
        {
            assert!(
                rel(*a, *c, 1e-12) < 1e-10,
                "{} entry {e}: {a} vs chain rule {c}",
                b.kind().name()
            );
        }
    }
    knots.blocks.clear();
}

#[test]
fn float_reversal_drifts_and_exact_does_not() {
    let data = blobs(60, 20, 4, 3, 4);
    let mut p = Problem::new(&data, &[10], Activation::Tanh, 10, true, 1);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, 1);
    let err = |p: &mut Problem, gamma: f64, steps: usize| -> f64 {
        let mut s = FloatState::start(&eps, 1);
        let h = scalar(&layout, 0.5, gamma, 0.0, 1.0);
        let mut opt = FloatMomentum::new(&h, &layout, steps);
        for t in 0..steps {
            opt.step(p, t, &mut s).unwrap();
        }
        for t in (0..steps).rev() {
            opt.reverse_step(p, t, &mut s);
        }
        s.theta
            .iter()
            .zip(&eps)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let short = err(&mut p, 0.9, 20);
    let long = err(&mut p, 0.9, 200);
    assert!(short > 0.0, "float reversal unexpectedly exact");
    assert!(
        long > short,
        "error should grow with steps: {short} then {long}"
    );
    let high_gamma = err(&mut p, 0.99, 200);
    assert!(
        long > high_gamma,
        "smaller γ should lose more: γ=0.9 {long}, γ=0.99 {high_gamma}"
    );
}

/// SPEC's claim on the shipped digits config: float momentum reversal loses θ₀, more with
/// more steps and with smaller γ; exact reversal loses nothing for any α and γ.
#[test]
fn digits_float_reversal_fails_exact_reversal_does_not() {
    use revgrad::optim::verify::verify_reversal;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/digits.json");
    let exp = revgrad::problem::Experiment::load(&path).unwrap();
    let mut p = exp.problem();
    let layout = p.layout().clone();
    let theta0 = exp.init_noise(&layout).unwrap();
    let mut run = |arith, alpha, gamma, steps| {
        verify_reversal(
            &mut p,
            &layout,
            &theta0,
            OptimizerId::Momentum,
            arith,
            &scalar(&layout, alpha, gamma, 0.0, 1.0),
            steps,
            &exp.threads,
        )
        .unwrap()
        .theta0_error
    };
    let short = run(Arithmetic::Float, 0.1, 0.9, 20);
    let long = run(Arithmetic::Float, 0.1, 0.9, 200);
    let high_gamma = run(Arithmetic::Float, 0.1, 0.99, 200);
    assert!(short > 0.0, "float reversal was exact after 20 steps");
    assert!(
        long > short,
        "θ₀ error should grow with T: {short:e} at 20 steps, {long:e} at 200"
    );
    assert!(
        long > high_gamma,
        "smaller γ should lose more: γ=0.9 {long:e}, γ=0.99 {high_gamma:e}"
    );
    for alpha in [0.01, 0.1, 1.0] {
        for gamma in [0.5, 0.9, 0.99] {
            let e = run(Arithmetic::Exact, alpha, gamma, 200);
            assert_eq!(
                e.to_bits(),
                0f64.to_bits(),
                "exact reversal lost θ₀ at α={alpha}, γ={gamma}: {e:e}"
            );
        }
    }
}

#[test]
fn fixed_point_overflow_is_an_error_with_the_step() {
    let data = blobs(40, 10, 3, 3, 2);
    let mut p = Problem::new(&data, &[6], Activation::Tanh, 8, true, 2);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, 2);
    let h = scalar(&layout, 5000.0, 0.9, 0.0, 1.0);
    let su = setup(&h, &eps, &layout, 500);
    match hypergradient(&mut p, su) {
        Err(revgrad::Error::Overflow { step, .. }) => assert!(step < 500),
        Err(e) => panic!("expected an overflow error, got {e}"),
        Ok(r) => panic!("α = 5000 should overflow, got val_loss {}", r.val_loss),
    }
    let err = hypergradient(&mut p, su).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("inner.alpha"), "{err}");
    assert!(p.dim() > 0);
}

/// `shaped` plus one example weight per training row, all different.
fn with_example_weights(l: &Layout, rows: usize, seed: u64) -> Hypers {
    let mut h = shaped(l, seed);
    let mut c = Block::rows(Kind::ExampleWeight, rows, 0.5);
    let mut rng = StdRng::seed_from_u64(seed + 1);
    for v in &mut c.values {
        *v = rng.random_range(0.2..0.95);
    }
    h.blocks.push(c);
    h
}

#[test]
fn example_weights_reverse_exactly_and_match_the_stored_trajectory() {
    let data = blobs(40, 20, 3, 3, 23);
    let mut p = Problem::new(&data, &[5], Activation::Tanh, 8, true, 3);
    let l = p.layout().clone();
    let eps = init_noise(&l, 3);
    let h = with_example_weights(&l, data.train.len(), 4);
    let su = setup(&h, &eps, &l, 120);
    let rev = hypergradient(&mut p, su).unwrap();
    assert!(rev.exact);
    let (stored, _) = hypergradient_stored(&mut p, su).unwrap();
    let (a, b) = (
        &rev.grads.get(Kind::ExampleWeight).values,
        &stored.get(Kind::ExampleWeight).values,
    );
    assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(
        a.iter().any(|&g| g != 0.0),
        "every row's hypergradient is 0"
    );
    // Finite differences on sampled rows and a random direction over all of them.
    for probe in probes(&h, Kind::ExampleWeight, 4, 1, 9) {
        let pred = probe.predicted(&rev.grads);
        let fd = estimate(&mut p, su, &probe).unwrap();
        let e = rel(pred, fd.value, 1e-9);
        assert!(
            e < 1e-4 || (pred - fd.value).abs() <= 3.0 * fd.error,
            "{}: reversal {pred} vs finite differences {} ± {} (rel {e:e})",
            probe.label,
            fd.value,
            fd.error
        );
    }
}

#[test]
fn a_row_no_batch_visits_has_hypergradient_exactly_zero() {
    // 40 training rows, batches of 8 in file order, 3 steps: rows 24..39 are never used.
    let data = blobs(40, 20, 3, 3, 29);
    let mut p = Problem::new(&data, &[4], Activation::Softplus, 8, false, 1);
    let l = p.layout().clone();
    let eps = init_noise(&l, 1);
    let h = with_example_weights(&l, data.train.len(), 2);
    let g = hypergradient(&mut p, setup(&h, &eps, &l, 3)).unwrap().grads;
    let c = &g.get(Kind::ExampleWeight).values;
    assert!(
        c[..24].iter().all(|&v| v != 0.0),
        "visited rows: {:?}",
        &c[..24]
    );
    assert!(c[24..].iter().all(|&v| v.to_bits() == 0f64.to_bits()));
}

/// The training loss with every cross-entropy scaled by `c`, written independently of the
/// example-weight code path (the reference for equal weights).
struct Scaled<'a, 'd> {
    inner: &'a mut Problem<'d>,
    c: f64,
}

impl Objective for Scaled<'_, '_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn grad_into(&mut self, step: usize, theta: &[f64], grad: &mut [f64]) -> f64 {
        let l = self.inner.grad_into(step, theta, grad);
        grad.iter_mut().for_each(|g| *g *= self.c);
        l * self.c
    }
    fn grad_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        u: &[f64],
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        let l = self.inner.grad_hvp_into(step, theta, u, grad, hu);
        grad.iter_mut().for_each(|g| *g *= self.c);
        hu.iter_mut().for_each(|h| *h *= self.c);
        l * self.c
    }
}

impl Evaluate for Scaled<'_, '_> {
    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        self.inner.validation_grad_into(theta, grad)
    }
    fn train_loss(&mut self, theta: &[f64]) -> f64 {
        self.inner.train_loss(theta)
    }
    fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        self.inner.test_metrics(theta)
    }
}

/// The rows are the inner problem's; the scale c multiplies the tangents too, but the
/// reference run has no example_weight block, so they are never asked for.
impl RowTangents for Scaled<'_, '_> {
    fn set_row_weights(&mut self, weights: Option<&[f64]>) {
        self.inner.set_row_weights(weights)
    }
    fn add_row_tangents(&self, scale: f64, out: &mut [f64]) {
        self.inner.add_row_tangents(scale * self.c, out)
    }
    fn set_row_inputs(&mut self, inputs: Option<&[f64]>) {
        self.inner.set_row_inputs(inputs)
    }
    fn add_input_tangents(&self, scale: f64, out: &mut [f64]) {
        self.inner.add_input_tangents(scale * self.c, out)
    }
}

#[test]
fn equal_example_weights_match_a_scaled_cross_entropy() {
    let data = blobs(40, 20, 3, 3, 31);
    let mut p = Problem::new(&data, &[5], Activation::Tanh, 8, true, 5);
    let l = p.layout().clone();
    let eps = init_noise(&l, 5);
    let c = 0.37;
    let base = scalar(&l, 0.3, 0.8, 0.01, 1.0);
    let mut weighted = base.clone();
    weighted
        .blocks
        .push(Block::rows(Kind::ExampleWeight, data.train.len(), c));
    let a = hypergradient(&mut p, setup(&weighted, &eps, &l, 60)).unwrap();
    let b = hypergradient(&mut Scaled { inner: &mut p, c }, setup(&base, &eps, &l, 60)).unwrap();
    // c·(p − y)/B and ((p − y)/B)·c round differently in the last bit, and 60 steps of
    // fixed-point training carry that difference through; a wrong weighting is off by O(1).
    assert!(
        rel(a.val_loss, b.val_loss, 1e-12) < 1e-9,
        "{} vs {}",
        a.val_loss,
        b.val_loss
    );
    for k in base.kinds() {
        let (x, y) = (a.grads.get(k).values[0], b.grads.get(k).values[0]);
        assert!(rel(x, y, 1e-12) < 1e-7, "d_{}: {x} vs {y}", k.name());
    }
}

// ---------------------------------------------------------------------------------------
// Adam (issue 13).

/// Scalar Adam blocks α, β₁, β₂, ε, l2, init_scale over `layout`.
fn adam(layout: &Layout, alpha: f64, b1: f64, b2: f64, eps: f64, l2: f64) -> Hypers {
    Hypers {
        blocks: vec![
            Block::scalar(Kind::Alpha, layout, alpha),
            Block::scalar(Kind::Beta1, layout, b1),
            Block::scalar(Kind::Beta2, layout, b2),
            Block::scalar(Kind::Eps, layout, eps),
            Block::scalar(Kind::L2, layout, l2),
            Block::scalar(Kind::InitScale, layout, 1.0),
        ],
    }
}

/// Forward `steps` exact Adam steps, undo them, and demand bit-identical θ₀, m₀ = s₀ = 0
/// and an empty information buffer.
fn assert_exact_adam_reversal(data: &Data, shuffle: bool, h: &Hypers, steps: usize, seed: u64) {
    let mut p = Problem::new(data, &[6], Activation::Tanh, 4, shuffle, seed);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, seed);
    let su = setup(h, &eps, &layout, steps);
    let mut obj = su.objective(&mut p);
    let mut opt = ExactAdam::new(h, &layout, steps, &Threads::one());
    let mut s = opt.start(&su.theta0()).unwrap();
    let start = s.clone();
    for t in 0..steps {
        opt.step(&mut obj, t, &mut s)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    assert!(s.buffer.stack_words() > 0 || steps < 100);
    for t in (0..steps).rev() {
        opt.undo_step(&mut obj, t, &mut s);
    }
    assert_eq!(
        s.theta, start.theta,
        "θ₀ not restored (seed {seed}, T={steps})"
    );
    assert_eq!(s.m, start.m, "m₀ not restored (seed {seed})");
    assert_eq!(s.s, start.s, "s₀ not restored (seed {seed})");
    assert!(
        s.buffer.is_empty_of_information(),
        "buffer not emptied (seed {seed})"
    );
}

/// Replaces the two decay blocks `kinds` of `h` by per-array schedules of K = T knots (a
/// rational per step and array); `draw` gives each (array, step) its pair of values.
fn per_step_decays(
    h: &mut Hypers,
    l: &Layout,
    steps: usize,
    seed: u64,
    kinds: [Kind; 2],
    mut draw: impl FnMut(&mut StdRng) -> [f64; 2],
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut blocks = kinds.map(|k| Block::filled(k, Per::Array, steps, l, 0.9));
    for i in 0..blocks[0].values.len() {
        let pair = draw(&mut rng);
        for (b, v) in blocks.iter_mut().zip(pair) {
            b.values[i] = v;
        }
    }
    for b in blocks {
        let k = b.kind();
        *h.get_mut(k) = b;
    }
}

/// Adam's β₂ uniform on [0.5, 0.9999) (from `u` ∈ [0, 1)) and β₁ uniform on
/// [0.01, 0.999·√β₂) (from `v`). β₁ < √β₂ is where Adam is stable: |m| ≤ (1−β₁) Σ β₁ᵏ |gₜ₋ₖ|
/// and s ≥ (1−β₂) β₂ᵏ g²ₜ₋ₖ give |m|/√s ≤ (1−β₁) / (√(1−β₂) (1 − β₁/√β₂)); past it a step
/// can grow without bound and the run diverges (β₁ = 0.993, β₂ = 0.5 overflowed at step
/// 179), which says nothing about reversal.
fn adam_betas(u: f64, v: f64) -> [f64; 2] {
    let b2 = 0.5 + u * (0.9999 - 0.5);
    let b1 = 0.01 + v * (0.999 * b2.sqrt() - 0.01);
    [b1, b2]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    /// θ₀, m₀, s₀ come back bit for bit over ≥ 2,000 steps, with random α, β₁, β₂, ε, l2 —
    /// and with per-array β schedules of K = T knots (a rational per step and array).
    #[test]
    fn exact_adam_reversal_is_bitwise(
        seed in 0u64..1000,
        alpha in 0.001f64..0.05,
        u in 0f64..1.0,
        v in 0f64..1.0,
        log_eps in -10.0f64..-2.0,
        shuffle in any::<bool>(),
        steps in 2000usize..2600,
        schedule in any::<bool>(),
    ) {
        let data = blobs(30, 10, 3, 3, seed);
        let l = Problem::new(&data, &[6], Activation::Tanh, 4, shuffle, seed).layout().clone();
        let [b1, b2] = adam_betas(u, v);
        let mut h = adam(&l, alpha, b1, b2, 10f64.powf(log_eps), 0.001);
        if schedule {
            per_step_decays(&mut h, &l, steps, seed, [Kind::Beta1, Kind::Beta2], |r| {
                adam_betas(r.random(), r.random())
            });
        }
        assert_exact_adam_reversal(&data, shuffle, &h, steps, seed);
    }
}

/// Exact Adam vs float64 Adam with the same (effective) β's, T = 500: the distance is
/// θ's own quantisation (2^−52 per step) carried through the dynamics, as for momentum,
/// which this test measures side by side. The bound: within 4× exact momentum's distance
/// from float momentum, and below 1e−12 absolute (measured: Adam 5.0e−15, momentum
/// 4.0e−14; with θ at 36 fractional bits they were 2.9e−10 and 3.7e−9, and with m and s in
/// i64 as well about 5e−6).
#[test]
fn exact_adam_tracks_float_adam_as_closely_as_momentum() {
    let data = blobs(60, 20, 4, 3, 4);
    let mut p = Problem::new(&data, &[8], Activation::Tanh, 10, true, 4);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, 4);
    let steps = 500;
    let dist = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    // Effective rationals, so only the arithmetic differs.
    let (b1, b2) = (58983.0 / 65536.0, 65471.0 / 65536.0);
    let h = adam(&layout, 0.01, b1, b2, 1e-8, 0.001);
    let su = setup(&h, &eps, &layout, steps);
    let theta0 = su.theta0();
    let mut obj = su.objective(&mut p);
    let exact = train(
        &mut obj,
        &layout,
        &theta0,
        &h,
        steps,
        OptimizerId::Adam,
        Arithmetic::Exact,
        su.threads,
    )
    .unwrap();
    let float = train(
        &mut obj,
        &layout,
        &theta0,
        &h,
        steps,
        OptimizerId::Adam,
        Arithmetic::Float,
        su.threads,
    )
    .unwrap();
    let d_adam = dist(&exact, &float);
    let hm = scalar(&layout, 0.3, b1, 0.001, 1.0);
    let exact = train(
        &mut obj,
        &layout,
        &theta0,
        &hm,
        steps,
        OptimizerId::Momentum,
        Arithmetic::Exact,
        su.threads,
    )
    .unwrap();
    let float = train(
        &mut obj,
        &layout,
        &theta0,
        &hm,
        steps,
        OptimizerId::Momentum,
        Arithmetic::Float,
        su.threads,
    )
    .unwrap();
    let d_mom = dist(&exact, &float);
    revgrad::note!("exact vs float, T = {steps}: Adam {d_adam:e}, momentum {d_mom:e}");
    assert!(d_adam > 0.0);
    assert!(
        d_adam < 1e-12,
        "exact Adam strays {d_adam:e} from float Adam"
    );
    assert!(
        d_adam < 4.0 * d_mom.max(1e-15),
        "Adam {d_adam:e} vs momentum {d_mom:e}"
    );
    // And the float reference itself is the SPEC §3.4 formula.
    let mut f = FloatAdam::new(&h, &layout, 1);
    let mut st = FloatState::start(&theta0, 2);
    let mut g = vec![0.0; theta0.len()];
    obj.grad_into(0, &theta0, &mut g);
    f.step(&mut obj, 0, &mut st).unwrap();
    let th = &st.theta;
    for i in 0..th.len() {
        let (mh, sh) = (
            (1.0 - b1) * g[i] / (1.0 - b1),
            (1.0 - b2) * g[i] * g[i] / (1.0 - b2),
        );
        let want = theta0[i] - 0.01 * mh / (sh.sqrt() + 1e-8);
        assert!((th[i] - want).abs() <= 1e-15 * want.abs().max(1.0), "{i}");
    }
}

/// Adam's hypergradients: the exact reversal and the stored trajectory agree bit for bit,
/// and finite differences agree for α, β₁, β₂, ε, l2 and init_scale.
#[test]
fn adam_hypergradients_agree_three_ways() {
    let data = blobs(40, 30, 3, 3, 12);
    for (act, shuffle, eps_v) in [
        (Activation::Tanh, true, 1e-4),
        (Activation::Softplus, false, 1e-8),
    ] {
        let mut p = Problem::new(&data, &[5], act, 8, shuffle, 2);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, 2);
        let mut h = adam(&layout, 0.02, 0.8, 0.99, eps_v, 0.02);
        if !shuffle {
            // A shaped α and a β₁ schedule go through the same mechanism.
            *h.get_mut(Kind::Alpha) = Block::filled(Kind::Alpha, Per::Array, 1, &layout, 0.02);
            *h.get_mut(Kind::Beta1) = Block::filled(Kind::Beta1, Per::Layer, 3, &layout, 0.8);
        }
        let su = setup(&h, &eps, &layout, 60);
        let rev = assert_reversal_matches_stored(&mut p, su, &format!("{act:?}"));
        for kind in h.kinds() {
            // A decay schedule's knots move rationals n/2^16 at interpolated steps, and
            // Adam's bias correction β_t^k multiplies that rounding by k: finite differences
            // of knots carry ~1e-2 quantisation noise that no step size removes (the
            // reversal is checked against the stored trajectory above instead).
            if kind.info().decay && h.get(kind).knots() > 1 {
                continue;
            }
            for probe in probes(&h, kind, 2, 0, 5) {
                let a = probe.predicted(&rev.grads);
                let fd = estimate(&mut p, su, &probe).unwrap();
                assert_agrees_with_fd(&format!("{act:?}"), &probe, a, fd);
            }
        }
    }
}

/// Adam's adjoint sums its hypergradients per (segment, array) and combines them in
/// segment order, on both paths: with 2,283 parameters (three buffer segments, arrays
/// straddling their edges) and α, β₁, β₂ and ε per array, the reversal still matches the
/// stored trajectory bit for bit.
#[test]
fn adam_reversal_matches_stored_across_buffer_segments() {
    let data = blobs(40, 20, 12, 3, 5);
    let (mut p, layout, eps) = three_segments(&data);
    let mut h = adam(&layout, 0.01, 0.85, 0.995, 1e-6, 0.01);
    for (kind, v) in [
        (Kind::Alpha, 0.01),
        (Kind::Beta1, 0.85),
        (Kind::Beta2, 0.995),
        (Kind::Eps, 1e-6),
    ] {
        let mut b = Block::filled(kind, Per::Array, 1, &layout, v);
        for (j, x) in b.values.iter_mut().enumerate() {
            *x *= 1.0 - 0.01 * j as f64;
        }
        *h.get_mut(kind) = b;
    }
    let rev = assert_reversal_matches_stored(&mut p, setup(&h, &eps, &layout, 25), "segments");
    assert!(rev.grads.get(Kind::Beta2).values.iter().all(|v| *v != 0.0));
}

/// The float64 textbook path — float training with the rational decays, every state
/// stored, reverse mode over the stored f64 states — against the exact reversal. With 52
/// fractional bits the fixed-point trajectory tracks the float64 one to about 1e−15 per
/// step, so on a short run the two hypergradients agree to 1e−10 relative per entry (an
/// entry below 1e−6 of its block's largest, nearly 0 by symmetry, against that floor).
/// With 36 bits they differed by up to ~5e−7.
#[test]
fn exact_reversal_matches_a_float64_stored_trajectory() {
    let data = blobs(50, 30, 4, 3, 21);
    let mut worst: f64 = 0.0;
    for (act, shapes, adam_run) in [
        (Activation::Tanh, false, false),
        (Activation::Tanh, true, false),
        (Activation::Softplus, true, false),
        (Activation::Tanh, false, true),
    ] {
        let mut p = Problem::new(&data, &[8, 5], act, 10, true, 3);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, 3);
        let h = if adam_run {
            adam(&layout, 0.01, 0.9, 0.999, 1e-8, 0.001)
        } else if shapes {
            shaped(&layout, 4)
        } else {
            scalar(&layout, 0.3, 0.85, 0.01, 1.0)
        };
        let su = setup(&h, &eps, &layout, 60);
        let rev = hypergradient(&mut p, su).unwrap();
        let (float, val) =
            revgrad::hypergrad::stored::hypergradient_stored_float(&mut p, su).unwrap();
        assert!(rev.exact);
        assert!(
            rel(rev.val_loss, val, 1e-300) < 1e-13,
            "{act:?} shapes={shapes} adam={adam_run}: {} vs {val}",
            rev.val_loss
        );
        for (a, b) in rev.grads.blocks.iter().zip(&float.blocks) {
            let scale = a.values.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (x, y) in a.values.iter().zip(&b.values) {
                // Relative to the entry itself, for every entry above 1e−6 of the block's
                // largest; the few smaller ones (near 0 by symmetry) against 1e−6 of it.
                let r = rel(*x, *y, 1e-6 * scale);
                worst = worst.max(r);
                assert!(
                    r <= 1e-10,
                    "{act:?} shapes={shapes} adam={adam_run} {}: {x} vs {y} ({r:e})",
                    a.kind().name()
                );
            }
        }
    }
    revgrad::note!("exact reversal vs float64 stored trajectory: worst relative {worst:e}");
}

/// One exact step against one float64 step from the same state, at every step of a run:
/// with 52 fractional bits they differ by a few quanta 2^−52 (plus the f64 rounding of
/// θ + α·v), never more — for momentum and Adam.
#[test]
fn exact_steps_agree_with_float64_steps_to_a_few_quanta() {
    let data = blobs(50, 30, 4, 3, 22);
    let q = 2f64.powi(-52);
    let mut p = Problem::new(&data, &[8], Activation::Tanh, 10, true, 3);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, 3);
    let steps = 200;
    let close = |exact: f64, float: f64, slack: f64| {
        (exact - float).abs() <= slack * q + 2.0 * f64::EPSILON * float.abs()
    };
    let mut worst: f64 = 0.0;

    let h = scalar(&layout, 0.4, 58983.0 / 65536.0, 0.01, 1.0);
    let su = setup(&h, &eps, &layout, steps);
    let mut obj = su.objective(&mut p);
    let mut exact = ExactMomentum::new(&h, &layout, steps, &Threads::one());
    let mut float = FloatMomentum::new(&h, &layout, steps);
    let mut s = exact.start(&su.theta0()).unwrap();
    let f64s = |x: &[i64]| -> Vec<f64> { x.iter().map(|&v| v as f64 * q).collect() };
    for t in 0..steps {
        let mut fs = FloatState {
            theta: f64s(&s.theta),
            aux: vec![f64s(&s.v)],
        };
        float.step(&mut obj, t, &mut fs).unwrap();
        exact.step(&mut obj, t, &mut s).unwrap();
        for (i, (th, v)) in fs.theta.iter().zip(&fs.aux[0]).enumerate() {
            let (te, ve) = (s.theta[i] as f64 * q, s.v[i] as f64 * q);
            worst = worst.max((te - th).abs()).max((ve - v).abs());
            // v: two roundings (γ·v within a quantum, (1−γ)·g to half of one); θ: half a
            // quantum plus α times v's error.
            assert!(close(ve, *v, 2.0), "step {t}, v[{i}]: {ve} vs {v}");
            assert!(close(te, *th, 2.0), "step {t}, θ[{i}]: {te} vs {th}");
        }
    }
    assert!(worst > 0.0, "the two arithmetics should differ somewhere");
    revgrad::note!(
        "momentum: largest one-step difference {worst:e} ({} quanta)",
        worst / q
    );

    let h = adam(
        &layout,
        0.01,
        58983.0 / 65536.0,
        65471.0 / 65536.0,
        1e-8,
        0.01,
    );
    let su = setup(&h, &eps, &layout, steps);
    let mut obj = su.objective(&mut p);
    let mut exact = ExactAdam::new(&h, &layout, steps, &Threads::one());
    let mut float = FloatAdam::new(&h, &layout, steps);
    let mut s = exact.start(&su.theta0()).unwrap();
    let wide = |x: &[i128]| -> Vec<f64> { x.iter().map(|&v| v as f64 * 2f64.powi(-92)).collect() };
    let mut worst: f64 = 0.0;
    for t in 0..steps {
        let mut fs = FloatState {
            theta: f64s(&s.theta),
            aux: vec![wide(&s.m), wide(&s.s)],
        };
        float.step(&mut obj, t, &mut fs).unwrap();
        exact.step(&mut obj, t, &mut s).unwrap();
        for (i, th) in fs.theta.iter().enumerate() {
            let te = s.theta[i] as f64 * q;
            worst = worst.max((te - th).abs());
            // θ ← θ − round(α·q(m, s)): half a quantum, plus q's own f64 rounding from
            // moments that differ from the float ones by ~2^−92.
            assert!(close(te, *th, 2.0), "Adam step {t}, θ[{i}]: {te} vs {th}");
        }
    }
    assert!(worst > 0.0, "the two arithmetics should differ somewhere");
    revgrad::note!(
        "Adam: largest one-step difference in θ {worst:e} ({} quanta)",
        worst / q
    );
}

// ---------------------------------------------------------------------------------------
// RMSprop with momentum (SPEC §3.6)

fn rmsprop(layout: &Layout, alpha: f64, gamma: f64, rho: f64, eps: f64, l2: f64) -> Hypers {
    Hypers {
        blocks: vec![
            Block::scalar(Kind::Alpha, layout, alpha),
            Block::scalar(Kind::Gamma, layout, gamma),
            Block::scalar(Kind::Rho, layout, rho),
            Block::scalar(Kind::Eps, layout, eps),
            Block::scalar(Kind::L2, layout, l2),
            Block::scalar(Kind::InitScale, layout, 1.0),
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    /// θ₀, s₀, b₀ come back bit for bit over ≥ 2,000 steps, with random α, γ, ρ, ε — and
    /// with per-array γ and ρ schedules of K = T knots (a rational per step and array).
    #[test]
    fn exact_rmsprop_reversal_is_bitwise(
        seed in 0u64..1000,
        alpha in 0.0005f64..0.02,
        gamma in 0.01f64..0.99,
        rho in 0.5f64..0.9999,
        log_eps in -10.0f64..-2.0,
        shuffle in any::<bool>(),
        steps in 2000usize..2600,
        schedule in any::<bool>(),
    ) {
        let data = blobs(30, 10, 3, 3, seed);
        let mut p = Problem::new(&data, &[6], Activation::Tanh, 4, shuffle, seed);
        let l = p.layout().clone();
        let mut h = rmsprop(&l, alpha, gamma, rho, 10f64.powf(log_eps), 0.001);
        if schedule {
            per_step_decays(&mut h, &l, steps, seed, [Kind::Gamma, Kind::Rho], |r| {
                [r.random_range(0.01..0.99), r.random_range(0.5..0.9999)]
            });
        }
        let eps = init_noise(&l, seed);
        let su = setup(&h, &eps, &l, steps);
        let mut obj = su.objective(&mut p);
        let mut opt = revgrad::optim::ExactRmsprop::new(&h, &l, steps, &Threads::one());
        let mut s = opt.start(&su.theta0()).unwrap();
        let start = s.clone();
        for t in 0..steps {
            opt.step(&mut obj, t, &mut s).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        prop_assert!(s.buffer.stack_words() > 0);
        prop_assert!(s.theta != start.theta);
        for t in (0..steps).rev() {
            opt.undo_step(&mut obj, t, &mut s);
        }
        prop_assert_eq!(&s.theta, &start.theta, "θ₀ not restored (seed {})", seed);
        prop_assert_eq!(&s.s, &start.s, "s₀ not restored (seed {})", seed);
        prop_assert_eq!(&s.b, &start.b, "b₀ not restored (seed {})", seed);
        prop_assert!(s.buffer.is_empty_of_information(), "buffer not emptied (seed {})", seed);
    }
}

/// RMSprop's hypergradients: the exact reversal and the stored trajectory agree bit for bit
/// on every block (α, γ, ρ, ε per array and with schedules, l2 per weight, init_scale,
/// example weights), and finite differences agree for the scalar blocks.
#[test]
fn rmsprop_hypergradients_agree_three_ways() {
    let data = blobs(40, 30, 3, 3, 13);
    for (act, shuffle, eps_v) in [
        (Activation::Tanh, true, 1e-4),
        (Activation::Softplus, false, 1e-8),
    ] {
        let mut p = Problem::new(&data, &[5], act, 8, shuffle, 2);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, 2);
        let h = rmsprop(&layout, 0.01, 0.8, 0.95, eps_v, 0.02);
        let su = setup(&h, &eps, &layout, 60);
        let rev = assert_reversal_matches_stored(&mut p, su, &format!("{act:?}"));
        for kind in h.kinds() {
            for probe in probes(&h, kind, 2, 0, 5) {
                let a = probe.predicted(&rev.grads);
                let fd = estimate(&mut p, su, &probe).unwrap();
                assert_agrees_with_fd(&format!("rmsprop {act:?}"), &probe, a, fd);
            }
        }
        // Every block shaped, with schedules and example weights: bit for bit against the
        // stored trajectory.
        let mut shaped = h.clone();
        *shaped.get_mut(Kind::Alpha) = Block::filled(Kind::Alpha, Per::Array, 3, &layout, 0.01);
        *shaped.get_mut(Kind::Gamma) = Block::filled(Kind::Gamma, Per::Layer, 4, &layout, 0.8);
        *shaped.get_mut(Kind::Rho) = Block::filled(Kind::Rho, Per::Array, 2, &layout, 0.95);
        *shaped.get_mut(Kind::Eps) = Block::filled(Kind::Eps, Per::Layer, 1, &layout, eps_v);
        *shaped.get_mut(Kind::L2) = Block::filled(Kind::L2, Per::Weight, 1, &layout, 0.01);
        shaped
            .blocks
            .push(Block::rows(Kind::ExampleWeight, data.train.len(), 0.7));
        for (j, x) in shaped.get_mut(Kind::Rho).values.iter_mut().enumerate() {
            *x -= 0.003 * j as f64;
        }
        let rev = assert_reversal_matches_stored(
            &mut p,
            setup(&shaped, &eps, &layout, 50),
            &format!("rmsprop shaped {act:?}"),
        );
        for k in [Kind::Gamma, Kind::Rho, Kind::Eps, Kind::ExampleWeight] {
            assert!(
                rev.grads.get(k).values.iter().any(|v| *v != 0.0),
                "{} hypergradient is all 0",
                k.name()
            );
        }
    }
    // Three buffer segments with ρ per array: sums per segment on both paths.
    let data = blobs(40, 20, 12, 3, 5);
    let (mut p, layout, eps) = three_segments(&data);
    let mut h = rmsprop(&layout, 0.005, 0.9, 0.99, 1e-6, 0.01);
    *h.get_mut(Kind::Rho) = Block::filled(Kind::Rho, Per::Array, 1, &layout, 0.99);
    assert_reversal_matches_stored(&mut p, setup(&h, &eps, &layout, 25), "rmsprop segments");
}

/// One exact RMSprop step against one float64 step from the same state (the effective
/// rational decays): θ within a few quanta 2^−52, as for momentum and Adam.
#[test]
fn exact_rmsprop_steps_agree_with_float64_steps_to_a_few_quanta() {
    let data = blobs(50, 30, 4, 3, 23);
    let q = 2f64.powi(-52);
    let mut p = Problem::new(&data, &[8], Activation::Tanh, 10, true, 3);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, 3);
    let steps = 200;
    let h = rmsprop(
        &layout,
        0.005,
        58983.0 / 65536.0,
        64881.0 / 65536.0,
        1e-8,
        0.01,
    );
    let su = setup(&h, &eps, &layout, steps);
    let mut obj = su.objective(&mut p);
    let mut exact = revgrad::optim::ExactRmsprop::new(&h, &layout, steps, &Threads::one());
    let mut float = revgrad::optim::Rmsprop::float(&h, &layout, steps, false);
    let mut s = exact.start(&su.theta0()).unwrap();
    let fixed = |x: &[i64]| -> Vec<f64> { x.iter().map(|&v| v as f64 * q).collect() };
    let wide = |x: &[i128]| -> Vec<f64> { x.iter().map(|&v| v as f64 * 2f64.powi(-92)).collect() };
    let mut worst: f64 = 0.0;
    for t in 0..steps {
        let mut fs = FloatState {
            theta: fixed(&s.theta),
            aux: vec![wide(&s.s), wide(&s.b)],
        };
        float.step(&mut obj, t, &mut fs).unwrap();
        exact.step(&mut obj, t, &mut s).unwrap();
        for (i, th) in fs.theta.iter().enumerate() {
            let te = s.theta[i] as f64 * q;
            worst = worst.max((te - th).abs());
            assert!(
                (te - th).abs() <= 2.0 * q + 2.0 * f64::EPSILON * th.abs(),
                "step {t}, θ[{i}]: {te} vs {th}"
            );
        }
    }
    assert!(worst > 0.0, "the two arithmetics should differ somewhere");
}

/// Threads: RMSprop's θ_T and every hypergradient entry are bit-identical on 1, 2 and 3
/// threads (three buffer segments).
#[test]
fn rmsprop_is_bit_identical_on_any_thread_count() {
    let data = blobs(40, 20, 12, 3, 6);
    let (p0, layout, eps) = three_segments(&data);
    drop(p0);
    let h = rmsprop(&layout, 0.005, 0.85, 0.98, 1e-6, 0.01);
    let mut results = Vec::new();
    for n in [1, 2, 3] {
        let threads = Threads::new(n).unwrap();
        let mut p = Problem::new(&data, &[40, 40], Activation::Tanh, 8, true, 4)
            .with_threads(threads.clone());
        let su = Setup {
            threads: &threads,
            progress: None,
            ..setup(&h, &eps, &layout, 20)
        };
        let r = hypergradient(&mut p, su).unwrap();
        assert!(r.exact);
        let bits: Vec<u64> = r
            .grads
            .blocks
            .iter()
            .flat_map(|b| b.values.iter().map(|v| v.to_bits()))
            .chain([r.val_loss.to_bits()])
            .collect();
        results.push(bits);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

/// Exact RMSprop tracks float64 RMSprop over a run as closely as exact momentum tracks float
/// momentum (both are θ's quantisation carried through the dynamics).
#[test]
fn exact_rmsprop_tracks_float_rmsprop() {
    let data = blobs(60, 20, 4, 3, 4);
    let mut p = Problem::new(&data, &[8], Activation::Tanh, 10, true, 4);
    let layout = p.layout().clone();
    let eps = init_noise(&layout, 4);
    let steps = 500;
    let (g, r) = (58983.0 / 65536.0, 64881.0 / 65536.0);
    let h = rmsprop(&layout, 0.003, g, r, 1e-8, 0.001);
    let su = setup(&h, &eps, &layout, steps);
    let theta0 = su.theta0();
    let mut obj = su.objective(&mut p);
    let run = |obj: &mut _, a| {
        train(
            obj,
            &layout,
            &theta0,
            &h,
            steps,
            OptimizerId::Rmsprop,
            a,
            su.threads,
        )
        .unwrap()
    };
    let exact = run(&mut obj, Arithmetic::Exact);
    let float = run(&mut obj, Arithmetic::Float);
    let d = exact
        .iter()
        .zip(&float)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    revgrad::note!("exact vs float RMSprop, T = {steps}: {d:e}");
    assert!(
        d > 0.0 && d < 1e-11,
        "exact RMSprop strays {d:e} from float"
    );
}

// ---------------------------------------------------------------------------------------
// The plug-in point: an optimizer defined here, through the registry's traits alone.

mod plug_in {
    use super::*;
    use revgrad::error::Result;
    use revgrad::hypergrad::reverse::reverse_with;
    use revgrad::hypergrad::stored::{stored_float_with, stored_with};
    use revgrad::model::Layout;
    use revgrad::optim::{NotReversible, train_with};

    /// Momentum under another name: its float and exact forms are momentum's, so every path
    /// must give momentum's numbers bit for bit.
    struct Twin;

    impl Optimizer for Twin {
        const ID: OptimizerId = OptimizerId::Momentum;
        type Float = FloatMomentum;
        type Exact = ExactMomentum;
        fn float(h: &Hypers, l: &Layout, steps: usize, rational: bool) -> FloatMomentum {
            revgrad::optim::Momentum::float(h, l, steps, rational)
        }
        fn exact(h: &Hypers, l: &Layout, steps: usize, t: &Threads) -> Option<ExactMomentum> {
            Some(ExactMomentum::new(h, l, steps, t))
        }
    }

    /// Plain SGD as a test optimizer with no exact form.
    struct FloatOnly;

    impl Optimizer for FloatOnly {
        const ID: OptimizerId = OptimizerId::Sgd;
        type Float = revgrad::optim::FloatSgd;
        type Exact = NotReversible;
        fn float(h: &Hypers, l: &Layout, steps: usize, _: bool) -> Self::Float {
            revgrad::optim::FloatSgd::new(h, l, steps)
        }
        fn exact(_: &Hypers, _: &Layout, _: usize, _: &Threads) -> Option<NotReversible> {
            None
        }
    }

    #[test]
    fn a_test_optimizer_runs_through_train_reversal_and_stored_paths() -> Result<()> {
        let data = blobs(30, 20, 3, 3, 8);
        let mut p = Problem::new(&data, &[5], Activation::Tanh, 6, true, 1);
        let layout = p.layout().clone();
        let eps = init_noise(&layout, 1);
        let h = scalar(&layout, 0.2, 0.8, 0.01, 1.0);
        let su = setup(&h, &eps, &layout, 40);
        let theta0 = su.theta0();
        for a in [Arithmetic::Float, Arithmetic::Exact] {
            let mine = train_with::<Twin>(
                &mut su.objective(&mut p),
                &layout,
                &theta0,
                &h,
                40,
                a,
                su.threads,
            )?;
            let reference = train(
                &mut su.objective(&mut p),
                &layout,
                &theta0,
                &h,
                40,
                OptimizerId::Momentum,
                a,
                su.threads,
            )?;
            assert_eq!(mine, reference);
        }
        let rev = reverse_with(
            Twin::exact(&h, &layout, 40, su.threads).unwrap(),
            &mut p,
            su,
        )?;
        let reference = hypergradient(&mut p, su)?;
        let (stored, _) = stored_with(
            Twin::exact(&h, &layout, 40, su.threads).unwrap(),
            &mut p,
            su,
        )?;
        let (stored_float, _) = stored_float_with::<Twin>(&mut p, su)?;
        assert!(rev.exact);
        for ((a, b), (c, d)) in rev
            .grads
            .blocks
            .iter()
            .zip(&reference.grads.blocks)
            .zip(stored.blocks.iter().zip(&stored_float.blocks))
        {
            for i in 0..a.values.len() {
                assert_eq!(a.values[i].to_bits(), b.values[i].to_bits());
                assert_eq!(a.values[i].to_bits(), c.values[i].to_bits());
                assert!(rel(a.values[i], d.values[i], 1e-9) < 1e-8);
            }
        }
        // An optimizer without an exact form trains in f64 and is refused in exact
        // arithmetic with a message, not a panic.
        train_with::<FloatOnly>(
            &mut p,
            &layout,
            &theta0,
            &h,
            10,
            Arithmetic::Float,
            su.threads,
        )?;
        let e = train_with::<FloatOnly>(
            &mut p,
            &layout,
            &theta0,
            &h,
            10,
            Arithmetic::Exact,
            su.threads,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not reversible"), "{e}");
        Ok(())
    }
}

/// Blobs whose last `rows` training rows are learnable (as a poison set appended to real
/// rows would be): standardised with the training rows' statistics, their raw features the
/// starting input block.
fn blobs_with_learnable_rows(rows: usize, seed: u64) -> (Data, Vec<f64>) {
    let mut data = blobs(40, 20, 3, 3, seed);
    // Raw units: shift and stretch the features so the standardisation is not the identity.
    data.train.x.mapv_inplace(|v| 3.0 * v + 1.5);
    data.validation.x.mapv_inplace(|v| 3.0 * v + 1.5);
    let n = data.train.len();
    let raw: Vec<f64> = data
        .train
        .x
        .slice(ndarray::s![n - rows.., ..])
        .iter()
        .copied()
        .collect();
    let feature_box = revgrad::data::learnable::feature_stats(&data.train);
    let st = revgrad::data::standardize(&mut data.train, &mut [&mut data.validation]).unwrap();
    data.learnable = Some(revgrad::data::Learnable {
        first: n - rows,
        rows,
        init: raw.clone(),
        standardizer: st,
        feature_box,
    });
    (data, raw)
}

#[test]
fn input_hypergradients_agree_three_ways_with_standardisation_and_example_weights() {
    let rows = 6;
    let (data, raw) = blobs_with_learnable_rows(rows, 41);
    for (case, weighted, adam_run) in [
        ("momentum", false, false),
        ("momentum, example weights", true, false),
        ("adam, example weights", true, true),
    ] {
        let mut p = Problem::new(&data, &[5], Activation::Tanh, 8, true, 3);
        let l = p.layout().clone();
        let eps = init_noise(&l, 3);
        let mut h = if adam_run {
            adam(&l, 0.01, 0.9, 0.999, 1e-4, 0.001)
        } else {
            scalar(&l, 0.3, 0.8, 0.001, 1.0)
        };
        if weighted {
            let mut c = Block::rows(Kind::ExampleWeight, data.train.len(), 0.5);
            let mut rng = StdRng::seed_from_u64(5);
            for v in &mut c.values {
                *v = rng.random_range(0.2..0.95);
            }
            h.blocks.push(c);
        }
        let fb = data.learnable.as_ref().unwrap().feature_box.clone();
        h.blocks.push(Block::inputs(rows, fb, raw.clone()));
        let optimizer = if adam_run {
            OptimizerId::Adam
        } else {
            OptimizerId::Momentum
        };
        let su = Setup {
            optimizer,
            ..setup(&h, &eps, &l, 80)
        };
        let rev = assert_reversal_matches_stored(&mut p, su, case);
        let g = &rev.grads.get(Kind::Input).values;
        assert_eq!(g.len(), rows * 3);
        assert!(
            g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0),
            "{case}"
        );
        for probe in probes(&h, Kind::Input, 5, 2, 13) {
            let fd = estimate(&mut p, su, &probe).unwrap();
            assert_agrees_with_fd(case, &probe, probe.predicted(&rev.grads), fd);
        }
    }
}

#[test]
fn learnable_rows_set_to_their_loaded_values_change_nothing() {
    // The input block at the rows' own raw values standardises them to the loaded bits: the
    // run is the run without the block, bit for bit.
    let (data, raw) = blobs_with_learnable_rows(6, 43);
    let mut p = Problem::new(&data, &[5], Activation::Tanh, 8, true, 3);
    let l = p.layout().clone();
    let eps = init_noise(&l, 3);
    let h = scalar(&l, 0.3, 0.8, 0.001, 1.0);
    let mut with = h.clone();
    let fb = data.learnable.as_ref().unwrap().feature_box.clone();
    with.blocks.push(Block::inputs(6, fb, raw));
    let a = hypergradient(&mut p, setup(&h, &eps, &l, 60)).unwrap();
    let b = hypergradient(&mut p, setup(&with, &eps, &l, 60)).unwrap();
    assert_eq!(a.val_loss.to_bits(), b.val_loss.to_bits());
    for k in [Kind::Alpha, Kind::Gamma, Kind::L2, Kind::InitScale] {
        assert_eq!(a.grads.get(k).values, b.grads.get(k).values, "{k:?}");
    }
}
