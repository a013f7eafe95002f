//! `revgrad verify-reversal CONFIG [--alphas …] [--gammas …] [--steps N] [--per-step] [-o FILE]`
//!
//! For each learning rate: plain SGD in float and fixed point; for each momentum, every other
//! optimizer of the registry (momentum, Nesterov momentum, Adam with the momentum as β₁,
//! RMSprop with it as γ; their other blocks from the config where it has them, else their
//! defaults) in float and exact arithmetic. Each is trained, reversed and compared (SPEC §4
//! columns). A momentum of 0 has no exact rows (a zero decay is not reversible); a float row
//! whose reversal divides by it leaves the finite numbers and is skipped with a warning.
//!
//! Nesterov does not reverse exactly in either arithmetic: its gradient is taken at
//! `θ_t + α·γ·v_t`, which depends on the velocity v_t that the undo is solving for, so the
//! undo has no explicit form (only an implicit equation in v_t); the rows show the drift
//! of the best explicit reversal (look-ahead from v_{t+1}), as for plain SGD. Momentum, Adam
//! and RMSprop take their gradient at the state itself and reverse bit for bit in exact
//! arithmetic.

use std::path::PathBuf;

use indicatif::ProgressBar;

use crate::error::{Error, Result, show};
use crate::hyper::{Block, Hypers, Kind, MAX_GAMMA, OptimizerId};
use crate::model::{Layout, Threads};
use crate::optim::Arithmetic;
use crate::optim::verify::{ReversalReport, verify_reversal};
use crate::problem::Experiment;
use crate::report::rows::{ReversalRow, ReversalStepRow};
use crate::report::sink::{CsvSink, Output};

/// Arguments of `revgrad verify-reversal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Learning rates to try, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.01,0.1,1")]
    pub alphas: Vec<f64>,
    /// Momenta to try, comma-separated (each in [0, 0.9999]; 0 runs the float rows of the
    /// optimizers whose momentum may be 0).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.9,0.99")]
    pub gammas: Vec<f64>,
    /// Inner steps per run.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// One row per recorded step (`optimizer,arithmetic,alpha,step,trace_error`).
    #[arg(long)]
    pub per_step: bool,
    /// Write the CSV here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn check_lists(args: &Args) -> Result<()> {
    let bad = |what: &str, v: f64, allowed: &str| {
        Error::Usage(format!(
            "--{what}: {} is not allowed; each value must be {allowed}",
            show(v)
        ))
    };
    for &a in &args.alphas {
        if !(a.is_finite() && a > 0.0) {
            return Err(bad("alphas", a, "finite and > 0"));
        }
    }
    for &g in &args.gammas {
        if !(0.0..=MAX_GAMMA).contains(&g) {
            return Err(bad("gammas", g, "in [0, 0.9999]"));
        }
    }
    if args.steps == 0 {
        return Err(Error::Usage("--steps must be at least 1".into()));
    }
    Ok(())
}

/// Run `revgrad verify-reversal`.
///
/// # Errors
/// Config, data and usage errors (exit 2); output errors.
pub fn run(args: Args, threads: &Threads) -> Result<()> {
    check_lists(&args)?;
    let exp = Experiment::load(&args.config)?.with_threads(threads.clone());
    crate::cli::outputs::check_outputs(&exp.config, args.output.as_deref(), &[])?;
    // Every input is read and validated before the output file is created.
    let mut run = exp.prepare()?;
    ensure_fits(&exp, &run.hypers, &run.ctx.layout, &args)?;
    let output = Output::open(args.output.as_deref())?;
    let mut sink = if args.per_step {
        CsvSink::new::<ReversalStepRow>(output)?
    } else {
        CsvSink::new::<ReversalRow>(output)?
    };
    let setup = run.ctx.setup(&run.hypers);
    let theta0 = setup.theta0();
    let mut problem = run.ctx.setup(&run.hypers).objective(&mut run.problem);
    let mut runs = Vec::new();
    for &alpha in &args.alphas {
        for id in OptimizerId::ALL {
            // Plain SGD has no decay: one pair of rows per α.
            let gammas: Vec<Option<f64>> = if id == OptimizerId::Sgd {
                vec![None]
            } else {
                args.gammas.iter().map(|&g| Some(g)).collect()
            };
            for gamma in gammas {
                runs.push((id, Arithmetic::Float, alpha, gamma));
                if gamma != Some(0.0) {
                    runs.push((id, Arithmetic::Exact, alpha, gamma));
                }
            }
        }
    }
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(runs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    let total = runs.len();
    let mut completed = 0;
    for (method, arithmetic, alpha, gamma) in runs {
        bar.inc(1);
        let hypers = row_blocks(&run.hypers, &run.ctx.layout, method, alpha, gamma);
        let report: ReversalReport = match verify_reversal(
            &mut problem,
            &run.ctx.layout,
            &theta0,
            method,
            arithmetic,
            &hypers,
            args.steps,
            &run.ctx.threads,
        ) {
            Ok(r) => r,
            Err(e) if e.is_divergence() => {
                // The row's own blocks, and the config's penalty and initial scale that
                // the objective and θ₀ carry, for the hint.
                let mut all = hypers.clone();
                all.blocks.extend(
                    run.hypers
                        .blocks
                        .iter()
                        .filter(|b| matches!(b.kind(), Kind::L2 | Kind::InitScale))
                        .cloned(),
                );
                let e = crate::optim::blame(e, &all, args.steps);
                let run = match gamma {
                    Some(g) => format!(
                        "{method} {arithmetic}, alpha {}, gamma {}",
                        show(alpha),
                        show(g)
                    ),
                    None => format!("{method} {arithmetic}, alpha {}", show(alpha)),
                };
                bar.suspend(|| crate::note!("warning: {run}: {e}; row skipped"));
                continue;
            }
            Err(e) => return Err(e),
        };
        completed += 1;
        if args.per_step {
            for &(step, trace_error) in &report.per_step {
                sink.write(&ReversalStepRow {
                    optimizer: method,
                    arithmetic,
                    alpha,
                    step,
                    trace_error,
                })?;
            }
        } else {
            sink.write(&ReversalRow {
                optimizer: method,
                arithmetic,
                alpha,
                gamma: gamma.map(|_| report.effective_gamma),
                steps: args.steps,
                max_trace_error: report.max_trace_error,
                theta0_error: report.theta0_error,
                info_bits_per_param_step: report.info_bits_per_param_step,
                info_buffer_bytes: report.info_buffer_bytes,
                store_all_bytes: report.store_all_bytes,
            })?;
        }
    }
    bar.finish_and_clear();
    if completed == 0 {
        return Err(Error::NoResult(format!(
            "verify-reversal: all {total} runs diverged, so the CSV has no rows; try smaller \
             --alphas, or see the warnings above for the block responsible"
        )));
    }
    Ok(())
}

/// An error unless the runs fit the memory limit: the model and data, the largest
/// information buffer of an exact row after `--steps` steps (each row's is freed before
/// the next), and the kept trajectory.
///
/// # Errors
/// [`Error::Usage`] (exit 2) naming `--steps` and the sizes.
fn ensure_fits(exp: &Experiment, config: &Hypers, layout: &Layout, args: &Args) -> Result<()> {
    let mut buffer = 0u64;
    for &alpha in &args.alphas {
        for id in OptimizerId::ALL {
            for &g in args.gammas.iter().filter(|&&g| g != 0.0) {
                let hypers = row_blocks(config, layout, id, alpha, Some(g));
                let bound =
                    crate::optim::verify::exact_buffer_bound(id, &hypers, layout, args.steps);
                buffer = buffer.max(bound.map_or(0, |b| b.bytes()));
            }
        }
    }
    let trace = crate::optim::verify::trace_bytes(layout.len(), args.steps);
    let base = exp.estimate_bytes();
    let h = crate::memory::human;
    crate::memory::ensure_fits_or(
        base.saturating_add(buffer).saturating_add(trace),
        &format!(
            "{}: verify-reversal with --steps {} (the model and data {}, the largest \
             information buffer after {} steps up to {}, the kept trajectory {})",
            exp.config.file.display(),
            args.steps,
            h(base),
            args.steps,
            h(buffer),
            h(trace)
        ),
        "use fewer --steps or a higher --memory-limit",
    )
}

/// The scalar blocks of one row: α and the optimizer's first decay (γ, or β₁ for Adam) from
/// the row, every other block of the optimizer the config's mean where the config has it,
/// else its default.
fn row_blocks(
    config: &Hypers,
    layout: &Layout,
    id: OptimizerId,
    alpha: f64,
    gamma: Option<f64>,
) -> Hypers {
    let kinds = id.kinds();
    let blocks = kinds
        .iter()
        .map(|&k| {
            let v = if k == Kind::Alpha {
                alpha
            } else if k == kinds[1] {
                gamma.unwrap_or_else(|| config.find(k).map_or(k.info().default, Block::mean))
            } else {
                config.find(k).map_or(k.info().default, Block::mean)
            };
            Block::scalar(k, layout, v)
        })
        .collect();
    Hypers { blocks }
}
