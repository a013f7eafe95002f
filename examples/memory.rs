//! # Peak memory of a hypergradient: exact reversal vs a stored trajectory
//!
//! Runs one hypergradient on the digits model 64-100-100-10 (17,610 parameters, tanh,
//! batches of 100, α = 0.1, γ = 0.9 → 58983/65536, l2 = 1e-4) for `STEPS` inner steps, by
//! the chosen path, and prints one line of `key=value` fields:
//!
//! - `peak_rss_bytes`: `VmHWM` from `/proc/self/status` at the end (the whole process,
//!   data and binary included); `base_rss_bytes`: `VmRSS` just before the run;
//! - `info_buffer_bytes` and `info_bits_per_param_step` (reverse only) next to `floor_bits`,
//!   `log₂(65536/58983)`, the information-theoretic minimum per multiply;
//! - `store_all_bytes`: what the stored path keeps, (T+1)·|θ|·8 per state vector;
//! - `seconds`: wall time of the hypergradient (`float`: of `STEPS` plain f64 momentum steps
//!   from the same θ₀ with the same penalty, the training the hypergradient differentiates).
//!
//! An optional third argument is the number of threads (`--threads`; default 1); results do
//! not depend on it. An optional fourth names the inner optimizer (`momentum`, `adam` or
//! `rmsprop`; default `momentum`), with its default decays besides γ = 0.9, and α = 0.001 for
//! Adam and RMSprop. Run each path in its own process, so the peaks do not mix:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/bench-target cargo run --release --example memory -- reverse 10000
//! CARGO_TARGET_DIR=/work/bench-target cargo run --release --example memory -- stored 10000
//! CARGO_TARGET_DIR=/work/bench-target cargo run --release --example memory -- float 10000
//! CARGO_TARGET_DIR=/work/bench-target cargo run --release --example memory -- reverse 1000 2
//! ```
#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use revgrad::config::Config;
use revgrad::hyper::Kind;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::hypergrad::stored::hypergradient_stored;
use revgrad::hypergrad::{Setup, store_all_bytes};
use revgrad::model::{Objective, Penalized, Threads, init_noise};
use revgrad::optim::{FloatOptimizer, FloatState, Optimizer, Visit};
use revgrad::problem::Experiment;

/// The digits experiment, as in `benches/kernels.rs`, with `inner.optimizer` = `{o}` (γ = 0.9
/// where the optimizer has a γ).
fn config(optimizer: &str) -> String {
    // α = 0.1 suits momentum; Adam's and RMSprop's normalised steps need a smaller one, or
    // 10,000 steps are chaotic and their hypergradient overflows f64.
    let alpha = if optimizer == "momentum" { 0.1 } else { 0.001 };
    let gamma = if optimizer == "adam" {
        ""
    } else {
        r#""gamma": 0.9,"#
    };
    format!(
        r#"{{
    "data": {{"train": "data/digits.csv"}},
    "model": {{"hidden": [100, 100], "activation": "tanh"}},
    "inner": {{"optimizer": "{optimizer}", "batch_size": 100, "alpha": {alpha}, {gamma} "l2": 0.0001}}
}}"#
    )
}

const USAGE: &str = "usage: memory (reverse|stored|float) STEPS [THREADS [OPTIMIZER]]";

/// `steps` float steps of optimizer `O` from θ₀; the last batch loss.
struct FloatRun<'a, Obj> {
    obj: &'a mut Obj,
    setup: Setup<'a>,
}

impl<Obj: Objective> Visit for FloatRun<'_, Obj> {
    type Output = revgrad::Result<f64>;
    fn visit<O: Optimizer>(self) -> Self::Output {
        let s = self.setup;
        let mut float = O::float(s.hypers, s.layout, s.steps, false);
        let mut pen = Penalized::new(self.obj, s.lambda());
        let mut state = FloatState::start(&s.theta0(), O::info().aux_vectors);
        let mut loss = 0.0;
        for t in 0..s.steps {
            loss = float.step(&mut pen, t, &mut state)?;
        }
        Ok(loss)
    }
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn run(path: &str, steps: usize, threads: usize, optimizer: &str) -> revgrad::Result<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench.json");
    let exp = Experiment::from_config(Config::from_json_str(&config(optimizer), &file)?)?
        .with_threads(Threads::new(threads)?);
    let mut problem = exp.problem();
    let layout = problem.layout().clone();
    let hypers = exp.hypers(&layout)?;
    let eps = init_noise(&layout, 0);
    let setup = Setup {
        optimizer: exp.config.inner.optimizer,
        hypers: &hypers,
        eps: &eps,
        layout: &layout,
        steps,
        threads: &exp.threads,
        progress: None,
    };
    let dim = problem.dim();
    let base = status_bytes("VmRSS").unwrap_or(0);
    let start = Instant::now();
    let extra = match path {
        "reverse" => {
            let h = hypergradient(&mut problem, setup)?;
            let floor = h.info_floor_bits;
            format!(
                "info_buffer_bytes={} info_bits_per_param_step={:.5} floor_bits={floor:.5} \
                 ratio_to_floor={:.4} exact={} val_loss={:.6} d_alpha={:.6e} \
                 forward_seconds={:.2} reverse_seconds={:.2}",
                h.info_buffer_bytes,
                h.info_bits_per_param_step,
                h.info_bits_per_param_step / floor,
                h.exact,
                h.val_loss,
                h.grads.get(Kind::Alpha).values[0],
                h.forward_seconds,
                h.reverse_seconds,
            )
        }
        "stored" => {
            let (grads, val_loss) = hypergradient_stored(&mut problem, setup)?;
            format!(
                "val_loss={val_loss:.6} d_alpha={:.6e}",
                grads.get(Kind::Alpha).values[0]
            )
        }
        "float" => {
            let loss = setup.optimizer.visit(FloatRun {
                obj: &mut problem,
                setup,
            })?;
            format!("last_batch_loss={loss:.6}")
        }
        _ => unreachable!("checked in main"),
    };
    let seconds = start.elapsed().as_secs_f64();
    let peak = status_bytes("VmHWM").unwrap_or(0);
    Ok(format!(
        "path={path} steps={steps} threads={threads} dim={dim} peak_rss_bytes={peak} base_rss_bytes={base} \
         store_all_bytes={} seconds={seconds:.2} {extra}",
        store_all_bytes(dim, steps, setup.optimizer.info().state_vectors())
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positive = |s: &str| s.parse::<usize>().ok().filter(|&n| n > 0);
    let (path, steps, threads, optimizer) = match args.as_slice() {
        [p, s, rest @ ..]
            if ["reverse", "stored", "float"].contains(&p.as_str()) && rest.len() <= 2 =>
        {
            let optimizer = rest.get(1).map_or("momentum", String::as_str);
            match (positive(s), rest.first().map_or(Some(1), |t| positive(t))) {
                (Some(steps), Some(threads)) => (p.as_str(), steps, threads, optimizer),
                _ => {
                    eprintln!("{USAGE}\nSTEPS and THREADS must be positive integers");
                    return ExitCode::from(2);
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(path, steps, threads, optimizer) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
