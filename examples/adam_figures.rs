//! # Adam's figures: hypergradient time vs float training, buffer vs floor, peak memory
//!
//! On the digits model 64-100-100-10 (17,610 parameters, tanh, batches of 100, α = 0.001,
//! β₁ = 0.9, β₂ = 0.999, ε = 1e-8, l2 = 1e-4), for `STEPS` inner steps, prints one line of
//! `key=value` fields: `float_seconds` (float64 Adam training), `hypergrad_seconds` (exact
//! forward + exact reversal with the adjoint) and their ratio; `stored_float_seconds`, the
//! same hypergradient from float64 training with every state stored (what the reversal
//! would cost if exact arithmetic were free: the floor of `time_ratio`), and its ratio to
//! float training (run up to T = 2000 only); `info_bits_per_param_step`
//! and `floor_bits` (log₂(d/n₁) + log₂(d/n₂)) and their ratio; `peak_rss_bytes` (`VmHWM`).
//!
//! ```text
//! cargo run --release --example adam_figures -- 100
//! cargo run --release --example adam_figures -- 10000
//! ```
#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::path::Path;
use std::time::Instant;

use revgrad::config::Config;
use revgrad::hyper::OptimizerId;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::hypergrad::stored::hypergradient_stored_float;
use revgrad::model::Penalized;
use revgrad::optim::{Arithmetic, train};
use revgrad::problem::Experiment;

const CONFIG: &str = r#"{
    "data": {"train": "data/digits.csv"},
    "model": {"hidden": [100, 100], "activation": "tanh"},
    "inner": {"optimizer": "adam", "batch_size": 100, "alpha": 0.001, "beta1": 0.9,
              "beta2": 0.999, "eps": 1e-8, "l2": 0.0001}
}"#;

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| {
            l[6..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

fn main() -> revgrad::Result<()> {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench.json");
    let mut config = Config::from_json_str(CONFIG, &file)?;
    config.inner.steps = steps;
    let exp = Experiment::from_config(config)?;
    let mut run = exp.prepare()?;
    let setup = run.ctx.setup(&run.hypers);
    let (theta0, lambda) = (setup.theta0(), setup.lambda());
    let start = Instant::now();
    {
        let mut obj = Penalized::new(&mut run.problem, lambda.clone());
        let layout = run.ctx.layout.clone();
        train(
            &mut obj,
            &layout,
            &theta0,
            &run.hypers,
            steps,
            OptimizerId::Adam,
            Arithmetic::Float,
            &run.ctx.threads,
        )?;
    }
    let float_seconds = start.elapsed().as_secs_f64();
    let hypers = run.hypers.clone();
    let start = Instant::now();
    let h = hypergradient(&mut run.problem, run.ctx.setup(&hypers))?;
    let hg = start.elapsed().as_secs_f64();
    // Peak memory of the runs so far; the stored trajectory below holds every state.
    let peak = peak_rss();
    let stored = if steps <= 2000 {
        let start = Instant::now();
        hypergradient_stored_float(&mut run.problem, run.ctx.setup(&hypers))?;
        start.elapsed().as_secs_f64()
    } else {
        f64::NAN // 3·|θ|·8 bytes per step: not run beyond 2000 steps
    };
    println!(
        "steps={steps} float_seconds={float_seconds:.3} hypergrad_seconds={hg:.3} time_ratio={:.2} \
         stored_float_seconds={stored:.3} stored_float_ratio={:.2} \
         exact={} info_bits_per_param_step={:.5} floor_bits={:.5} buffer_ratio={:.4} \
         info_buffer_bytes={} store_all_bytes={} peak_rss_bytes={}",
        hg / float_seconds,
        stored / float_seconds,
        h.exact,
        h.info_bits_per_param_step,
        h.info_floor_bits,
        h.info_bits_per_param_step / h.info_floor_bits,
        h.info_buffer_bytes,
        h.store_all_bytes,
        peak
    );
    Ok(())
}
