//! Public-API properties of the numerics: exact reversal, hypergradient agreement across
//! three independent paths, float reversal drift.

use ndarray::Array2;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};
use proptest::prelude::*;
use revgrad::data::{Data, Dataset};
use revgrad::exact::Rational;
use revgrad::hypergrad::finite_diff::finite_differences;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::hypergrad::stored::hypergradient_stored;
use revgrad::model::{Activation, init_noise};
use revgrad::optim::{ExactMomentum, ExactState, FloatMomentum, Hyperparams};
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
    }
}

fn hp(alpha: f64, gamma: f64, l2: f64) -> Hyperparams {
    Hyperparams {
        alpha,
        gamma,
        l2,
        init_scale: 1.0,
    }
}

/// Forward `steps` exact steps, reverse them, and demand bit-identical θ₀, v₀ = 0 and an
/// empty information buffer.
/// Returns the number of words the shared stack held at θ_T.
fn assert_exact_reversal(
    data: &Data,
    act: Activation,
    shuffle: bool,
    batch: usize,
    h: Hyperparams,
    steps: usize,
    seed: u64,
) -> usize {
    let mut p = Problem::new(data, &[6], act, batch, shuffle, seed);
    let eps = init_noise(p.layout(), seed);
    let theta0: Vec<f64> = eps.iter().map(|e| h.init_scale * e).collect();
    let gamma = Rational::approximate(h.gamma).unwrap();
    let mut s = ExactState::new(&theta0, gamma).unwrap();
    let start = s.clone();
    let mut opt = ExactMomentum::new(theta0.len(), h.alpha, gamma, h.l2);
    for t in 0..steps {
        opt.step(&mut p, t, &mut s)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let words = s.buffer.stack_words();
    for t in (0..steps).rev() {
        opt.reverse_step(&mut p, t, &mut s);
    }
    assert_eq!(
        s.theta, start.theta,
        "θ₀ not restored (seed {seed}, {h:?}, T={steps})"
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
        let words = assert_exact_reversal(
            &data,
            Activation::Tanh,
            shuffle,
            7,
            hp(0.05, gamma, 0.01),
            10_000,
            3,
        );
        // 10,000 multiplies store 10⁴·log₂(1/γ) bits per element: at γ ≤ 0.9 that is
        // dozens of 32-bit words each, so the emit and refill paths all ran.
        if gamma <= 0.9 {
            assert!(words > 20 * 51, "only {words} words spilled at γ = {gamma}");
        }
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
        assert_exact_reversal(&data, act, shuffle, batch, hp(alpha, gamma, 0.001), steps, seed);
    }
}

/// Relative difference with a floor so that near-zero derivatives compare absolutely.
fn rel(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}

#[test]
fn reversal_matches_stored_trajectory() {
    let data = blobs(50, 30, 4, 3, 7);
    for (act, shuffle, l2) in [
        (Activation::Tanh, true, 0.0),
        (Activation::Tanh, false, 0.05),
        (Activation::Relu, true, 0.01),
        (Activation::Softplus, false, 0.0),
        (Activation::Softplus, true, 0.1),
    ] {
        let mut p = Problem::new(&data, &[8, 5], act, 10, shuffle, 5);
        let eps = init_noise(p.layout(), 5);
        let h = hp(0.3, 0.85, l2);
        let rev = hypergradient(&mut p, &eps, h, 150).unwrap();
        let (stored, val) = hypergradient_stored(&mut p, &eps, h, 150).unwrap();
        assert!(rev.exact);
        assert_eq!(rev.val_loss.to_bits(), val.to_bits());
        for (a, b) in rev.grads.to_array().iter().zip(stored.to_array()) {
            assert!(
                rel(*a, b, 1e-12) <= 1e-12,
                "{act:?} shuffle={shuffle} l2={l2}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn reversal_matches_finite_differences() {
    let data = blobs(40, 30, 3, 3, 11);
    for (act, shuffle, l2) in [
        (Activation::Tanh, true, 0.02),
        (Activation::Softplus, false, 0.0),
    ] {
        let mut p = Problem::new(&data, &[5], act, 8, shuffle, 2);
        let eps = init_noise(p.layout(), 2);
        let h = hp(0.2, 0.8, l2);
        let rev = hypergradient(&mut p, &eps, h, 60).unwrap();
        let fd = finite_differences(&mut p, &eps, h, 60).unwrap();
        let names = ["alpha", "gamma", "l2", "init_scale"];
        for ((name, a), b) in names
            .iter()
            .zip(rev.grads.to_array())
            .zip(fd.grads.to_array())
        {
            let e = rel(a, b, 1e-6);
            assert!(
                e < 1e-4,
                "{act:?} d_{name}: reversal {a} vs finite differences {b} (rel {e:e})"
            );
        }
    }
}

#[test]
fn float_reversal_drifts_and_exact_does_not() {
    let data = blobs(60, 20, 4, 3, 4);
    let mut p = Problem::new(&data, &[10], Activation::Tanh, 10, true, 1);
    let eps = init_noise(p.layout(), 1);
    let err = |p: &mut Problem, gamma: f64, steps: usize| -> f64 {
        let mut theta = eps.clone();
        let mut v = vec![0.0; eps.len()];
        let mut opt = FloatMomentum::new(eps.len(), 0.5, gamma, 0.0);
        for t in 0..steps {
            opt.step(p, t, &mut theta, &mut v).unwrap();
        }
        for t in (0..steps).rev() {
            opt.reverse_step(p, t, &mut theta, &mut v);
        }
        theta
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
    use revgrad::optim::{Arithmetic, Method};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/digits.json");
    let exp = revgrad::problem::Experiment::load(&path).unwrap();
    let mut p = exp.problem();
    let theta0 = exp.init_noise(p.layout()).unwrap();
    let mut run = |arith, alpha, gamma, steps| {
        verify_reversal(
            &mut p,
            &theta0,
            Method::Momentum,
            arith,
            alpha,
            gamma,
            0.0,
            steps,
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    /// Long runs with random α and γ: the information buffer spills words, refills and
    /// borrows, and θ₀, v₀ still come back bit for bit.
    #[test]
    fn long_exact_reversals_with_random_hyperparameters(
        seed in 0u64..1000,
        alpha in 0.01f64..0.999,
        gamma in 0.01f64..0.999,
        shuffle in any::<bool>(),
        steps in 2000usize..10_000,
    ) {
        let data = blobs(30, 10, 3, 3, seed);
        assert_exact_reversal(&data, Activation::Tanh, shuffle, 4, hp(alpha, gamma, 0.001), steps, seed);
    }
}

#[test]
fn fixed_point_overflow_is_an_error_with_the_step() {
    let data = blobs(40, 10, 3, 3, 2);
    let mut p = Problem::new(&data, &[6], Activation::Tanh, 8, true, 2);
    let eps = init_noise(p.layout(), 2);
    let h = hp(5000.0, 0.9, 0.0);
    match hypergradient(&mut p, &eps, h, 500) {
        Err(revgrad::Error::Overflow { step, .. }) => assert!(step < 500),
        Err(e) => panic!("expected an overflow error, got {e}"),
        Ok(r) => panic!("α = 5000 should overflow, got val_loss {}", r.val_loss),
    }
    let err = hypergradient(&mut p, &eps, h, 500).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("inner.alpha"), "{err}");
}
