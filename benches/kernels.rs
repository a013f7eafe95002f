//! # Kernel benchmarks: gradient, HVP, optimizer steps, whole hypergradients
//!
//! All on the digits model 64-100-100-10 (17,610 parameters, tanh), batches of 100 rows,
//! α = 0.1, γ = 0.9 (exact runs: 58983/65536), l2 = 1e-4. The things being compared sit in
//! one group, so their ratios come from one run on one machine (STYLE §5.8):
//!
//! | group           | members                                                          |
//! |-----------------|------------------------------------------------------------------|
//! | `kernels`       | `grad` (∇L_t), `grad_hvp` (∇L_t and H_t·u in one pass)           |
//! | `step`          | `float_momentum`, `exact_momentum`, `exact_reverse`              |
//! | `hypergradient` | `float_train` (T plain f64 steps), `exact_reverse` (forward + reversal, T steps), `exact_reverse_schedules` (the same with per-step, per-array α and γ schedules), `exact_reverse_example_weights` (the scalar blocks plus one example weight per training row, 0.9) |
//! | `infobuf`       | `mul_inplace`, `unmul_inplace` on 17,610 elements                |
//!
//! Exact steps grow the information buffer, so `step/exact_*` are measured with
//! `iter_custom` from a *warm* state (100 steps into a run, nonzero velocity, renormalised
//! coder states): each sample clones it, then times `iters` forward steps; the reverse
//! member first runs `iters` forward steps untimed and then times the `iters` reverse steps
//! that undo them. A step's cost does not depend on `t` (same shapes, buffer growth is
//! amortised `Vec` pushes), so these are representative of any step of a long run.
//!
//! Run (about 2–3 minutes on 2 cores):
//!
//! ```text
//! CARGO_TARGET_DIR=/work/bench-target cargo bench --bench kernels
//! ```
//!
//! and read the ratios from `$CARGO_TARGET_DIR/criterion/<group>/<member>/new/estimates.json`
//! (the `mean.point_estimate` in ns), e.g. `exact_reverse / float_train` for the
//! hypergradient overhead.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use revgrad::config::Config;
use revgrad::exact::{Coder, InfoBuffer, Rational};
use revgrad::hyper::OptimizerId;
use revgrad::hyper::{Block, Hypers, Kind, Per};
use revgrad::hypergrad::Setup;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::model::{Layout, Objective, Penalized, init_noise};
use revgrad::optim::{ExactMomentum, FloatMomentum, FloatOptimizer, FloatState, Reversible};
use revgrad::problem::Experiment;

/// The digits experiment: 64-100-100-10, batch 100, shuffled batches.
const CONFIG: &str = r#"{
    "data": {"train": "data/digits.csv"},
    "model": {"hidden": [100, 100], "activation": "tanh"},
    "inner": {"batch_size": 100, "alpha": 0.1, "gamma": 0.9, "l2": 0.0001}
}"#;

/// Inner steps of the whole-hypergradient comparison.
const HYPER_STEPS: usize = 1000;
/// Steps taken before a step benchmark starts, so v ≠ 0 and the buffer is in steady state.
const WARM_STEPS: usize = 100;
/// Seed of the initial-weight noise.
const SEED: u64 = 0;

/// The shared configuration: short warm-up and measurement so `cargo bench` fits a shared
/// machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

fn experiment() -> Experiment {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench.json");
    let config = Config::from_json_str(CONFIG, &file).expect("benchmark config is valid");
    Experiment::from_config(config).expect("data/digits.csv loads")
}

/// θ₀, the configured blocks and the expanded penalty λ.
fn start(exp: &Experiment, layout: &Layout) -> (Vec<f64>, Hypers, Vec<f64>) {
    let hypers = exp.hypers(layout).expect("blocks fit");
    let eps = init_noise(layout, SEED);
    let setup = Setup {
        optimizer: OptimizerId::Momentum,
        hypers: &hypers,
        eps: &eps,
        layout,
        steps: HYPER_STEPS,
        threads: &exp.threads,
        progress: None,
    };
    let (theta0, lambda) = (setup.theta0(), setup.lambda());
    (theta0, hypers, lambda)
}

/// Per-step (K = T), per-array α and γ schedules with the configured values.
fn schedules(h: &Hypers, layout: &Layout) -> Hypers {
    let mut out = h.clone();
    for k in [Kind::Alpha, Kind::Gamma] {
        let v = h.get(k).values[0];
        *out.get_mut(k) = Block::filled(k, Per::Array, HYPER_STEPS, layout, v);
    }
    out
}

fn kernels(c: &mut Criterion) {
    let exp = experiment();
    let mut p = exp.problem();
    let layout = p.layout().clone();
    let (theta, _, lambda) = start(&exp, &layout);
    let mut problem = Penalized::new(&mut p, lambda.clone());
    let n = problem.dim();
    let u = init_noise(&layout, SEED + 1);
    let mut grad = vec![0.0; n];
    let mut hu = vec![0.0; n];

    let mut group = c.benchmark_group("kernels");
    let mut t = 0;
    group.bench_function(BenchmarkId::new("grad", n), |b| {
        b.iter(|| {
            t += 1;
            problem.grad_into(t, black_box(&theta), &mut grad)
        })
    });
    let mut t = 0;
    group.bench_function(BenchmarkId::new("grad_hvp", n), |b| {
        b.iter(|| {
            t += 1;
            problem.grad_hvp_into(t, black_box(&theta), black_box(&u), &mut grad, &mut hu)
        })
    });
    group.finish();
}

fn steps(c: &mut Criterion) {
    let exp = experiment();
    let mut p = exp.problem();
    let layout = p.layout().clone();
    let (theta0, hypers, lambda) = start(&exp, &layout);
    let mut problem = Penalized::new(&mut p, lambda.clone());
    let n = problem.dim();
    let steps = WARM_STEPS + 100_000;

    // Warm float state.
    let mut float = FloatMomentum::new(&hypers, &layout, steps);
    let mut fs = FloatState::start(&theta0, 1);
    for t in 0..WARM_STEPS {
        float.step(&mut problem, t, &mut fs).expect("warm-up");
    }
    // Warm exact state.
    let mut exact = ExactMomentum::new(&hypers, &layout, steps, &exp.threads);
    let mut warm = exact.start(&theta0).expect("θ₀ in range");
    for t in 0..WARM_STEPS {
        exact.step(&mut problem, t, &mut warm).expect("warm-up");
    }

    let mut group = c.benchmark_group("step");
    let mut t = WARM_STEPS;
    group.bench_function(BenchmarkId::new("float_momentum", n), |b| {
        b.iter(|| {
            t += 1;
            float.step(&mut problem, t, &mut fs).expect("float step")
        })
    });
    group.bench_function(BenchmarkId::new("exact_momentum", n), |b| {
        b.iter_custom(|iters| {
            let mut s = warm.clone();
            let start = Instant::now();
            for t in WARM_STEPS..WARM_STEPS + iters as usize {
                exact.step(&mut problem, t, &mut s).expect("exact step");
            }
            let elapsed = start.elapsed();
            black_box(&s);
            elapsed
        })
    });
    group.bench_function(BenchmarkId::new("exact_reverse", n), |b| {
        b.iter_custom(|iters| {
            let mut s = warm.clone();
            let end = WARM_STEPS + iters as usize;
            for t in WARM_STEPS..end {
                exact.step(&mut problem, t, &mut s).expect("exact step");
            }
            let start = Instant::now();
            for t in (WARM_STEPS..end).rev() {
                exact.undo_step(&mut problem, t, &mut s);
            }
            let elapsed = start.elapsed();
            assert_eq!(s.theta, warm.theta, "reversal is exact");
            elapsed
        })
    });
    group.finish();
}

fn hypergradients(c: &mut Criterion) {
    let exp = experiment();
    let mut problem = exp.problem();
    let layout = problem.layout().clone();
    let (theta0, hypers, lambda) = start(&exp, &layout);
    let sched = schedules(&hypers, &layout);
    let mut weighted = hypers.clone();
    weighted
        .blocks
        .push(Block::rows(Kind::ExampleWeight, exp.data.train.len(), 0.9));
    let eps = init_noise(&layout, SEED);

    let mut group = c.benchmark_group("hypergradient");
    // 10 samples of one run each for the hypergradient (~1.7 s), a few for float training.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(18));
    group.bench_function(BenchmarkId::new("float_train", HYPER_STEPS), |b| {
        let mut float = FloatMomentum::new(&hypers, &layout, HYPER_STEPS);
        let mut pen = Penalized::new(&mut problem, lambda.clone());
        b.iter(|| {
            let mut fs = FloatState::start(&theta0, 1);
            for t in 0..HYPER_STEPS {
                float.step(&mut pen, t, &mut fs).expect("float step");
            }
            fs.theta
        })
    });
    for (name, h) in [
        ("exact_reverse", &hypers),
        ("exact_reverse_schedules", &sched),
        ("exact_reverse_example_weights", &weighted),
    ] {
        group.bench_function(BenchmarkId::new(name, HYPER_STEPS), |b| {
            b.iter(|| {
                let setup = Setup {
                    optimizer: OptimizerId::Momentum,
                    hypers: h,
                    eps: black_box(&eps),
                    layout: &layout,
                    steps: HYPER_STEPS,
                    threads: &exp.threads,
                    progress: None,
                };
                let r = hypergradient(&mut problem, setup).expect("hypergradient");
                assert!(r.exact, "reversal is exact");
                r.grads
            })
        });
    }
    group.finish();
}

fn infobuf(c: &mut Criterion) {
    let exp = experiment();
    let problem = exp.problem();
    let n = problem.dim();
    let gamma = Coder::new(Rational::approximate(0.9).expect("γ = 0.9 is rational"));
    // Velocity-like fixed-point values (|v| up to ~0.01, 36 fractional bits) and a kick per
    // step standing in for −(1−γ)·g, so the values neither decay to 0 nor repeat.
    let x0: Vec<i64> = (0..n as i64)
        .map(|i| ((i * 7919) % 20001 - 10000) << 20)
        .collect();
    let kick: Vec<i64> = (0..n as i64)
        .map(|i| ((i * 104729) % 2001 - 1000) << 16)
        .collect();

    let mut group = c.benchmark_group("infobuf");
    group.bench_function(BenchmarkId::new("mul_inplace", n), |b| {
        b.iter_custom(|iters| {
            let mut buf = InfoBuffer::new(n);
            let mut x = x0.clone();
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                buf.mul_inplace(black_box(&mut x), &gamma);
                elapsed += start.elapsed();
                x.iter_mut().zip(&kick).for_each(|(x, k)| *x += k);
            }
            black_box(buf.bytes());
            elapsed
        })
    });
    group.bench_function(BenchmarkId::new("unmul_inplace", n), |b| {
        b.iter_custom(|iters| {
            let mut buf = InfoBuffer::new(n);
            let mut x = x0.clone();
            for _ in 0..iters {
                buf.mul_inplace(&mut x, &gamma);
                x.iter_mut().zip(&kick).for_each(|(x, k)| *x += k);
            }
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                x.iter_mut().zip(&kick).for_each(|(x, k)| *x -= k);
                let start = Instant::now();
                buf.unmul_inplace(black_box(&mut x), &gamma);
                elapsed += start.elapsed();
            }
            assert_eq!(x, x0, "unmul undoes mul");
            elapsed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = kernels, steps, hypergradients, infobuf
}
criterion_main!(benches);
