//! `revgrad train CONFIG [--exact] [--save FILE.npz] [--json] [--seeds N] [--quiet]`: the
//! inner loop alone, once, or once per inner seed with the mean and standard deviation of
//! each figure, with a progress bar over the steps of the run under way.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::Threads;
use crate::optim::{Arithmetic, train_counted};
use crate::problem::{Experiment, Prepared};
use crate::report::progress::Progress;
use crate::report::rows::TrainJson;
use crate::report::sink::Output;
use crate::report::table::{num, render};

/// Arguments of `revgrad train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Train in exact fixed-point arithmetic instead of float64 (an exactly reversible
    /// optimizer: momentum, adam or rmsprop).
    #[arg(long)]
    pub exact: bool,
    /// Write the trained parameters to this .npz (keys W0, b0, W1, b1, …).
    #[arg(long, value_name = "FILE.npz")]
    pub save: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Train N times, with inner seeds inner.seed, inner.seed + 1, …, inner.seed + N − 1
    /// (the same data and splits), and report every run, then the mean and the sample
    /// standard deviation (divisor N − 1) of each figure. Not with --save when N > 1.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub seeds: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `revgrad train`.
///
/// # Errors
/// Usage (`--seeds 0`, `--save` with `--seeds N > 1`), config, data, npz errors (exit 2);
/// divergence or overflow (exit 1), naming the run's inner seed when there are several.
pub fn run(args: Args, threads: &Threads) -> Result<()> {
    let n = args.seeds;
    if n == 0 {
        return Err(Error::Usage("--seeds must be at least 1, got 0".into()));
    }
    if args.seeds > MAX_SEEDS {
        return Err(Error::Usage(format!(
            "--seeds must be at most {MAX_SEEDS} (each run is a whole training), got {}",
            args.seeds
        )));
    }
    if n > 1 && args.save.is_some() {
        return Err(Error::Usage(format!(
            "--save and --seeds {n} cannot be combined: --save writes the parameters of one \
             run and --seeds {n} trains {n}; to save one of them, set inner.seed to its seed \
             and train it alone with --save"
        )));
    }
    let exp = Experiment::load(&args.config)?.with_threads(threads.clone());
    if args.exact {
        exp.require_reversible()?;
    }
    let mut run = exp.prepare()?;
    // Fail before training, not after it, if the file cannot be written there.
    crate::cli::outputs::check_outputs(&exp.config, None, &[("--save", args.save.as_deref())])?;
    let arithmetic = if args.exact {
        Arithmetic::Exact
    } else {
        Arithmetic::Float
    };
    let bar = Progress::phases(args.quiet);
    run.ctx.progress = bar.steps();
    let first = exp.config.inner_seed();
    let mut runs = Vec::with_capacity(n.min(1024));
    for k in 0..n {
        // As `outer.resample` numbers its runs: inner seeds wrap rather than overflow.
        let seed = first.wrapping_add(k as u64);
        if k > 0 {
            // The data and splits stay; ε and the batch order are drawn from `seed`.
            exp.reseed(&mut run, seed)?;
        }
        let (report, theta) = train_once(&exp, &mut run, arithmetic)
            .map_err(|e| if n > 1 { name_the_seed(e, seed) } else { e })?;
        if let Some(path) = &args.save {
            crate::model::npz::write_params(path, &run.ctx.layout, &theta)?;
        }
        runs.push(Seeded { seed, run: report });
    }
    bar.clear();
    let arith = if args.exact { "exact" } else { "float64" };
    let text = match (&runs[..], args.json) {
        ([one], true) => serde_json::to_string_pretty(&one.run).unwrap_or_default() + "\n",
        ([one], false) => one_table(&one.run, arith),
        (_, true) => serde_json::to_string_pretty(&summary(&runs)).unwrap_or_default() + "\n",
        (_, false) => seeds_table(&runs, arith),
    };
    Output::open(None)?.write_all(&text)
}

/// Most runs `--seeds` takes: every run is a whole training, reported at the end.
const MAX_SEEDS: usize = 1_000_000;

/// Trains `run` as prepared (its ε, batch order and blocks) from θ₀, ticking its progress
/// counter if it has one: the run's report and θ_T.
///
/// # Errors
/// Divergence or overflow during training, or full-set losses at θ_T that are not finite.
pub(crate) fn train_once(
    exp: &Experiment,
    run: &mut Prepared<'_>,
    arithmetic: Arithmetic,
) -> Result<(TrainJson, Vec<f64>)> {
    let theta0 = run.ctx.setup(&run.hypers).theta0();
    let clock = Instant::now();
    let theta = train_counted(
        &mut run.ctx.setup(&run.hypers).objective(&mut run.problem),
        &run.ctx.layout,
        &theta0,
        &run.hypers,
        exp.steps(),
        exp.config.inner.optimizer,
        arithmetic,
        &run.ctx.threads,
        run.ctx.progress.as_ref(),
    )?;
    let seconds = clock.elapsed().as_secs_f64();
    let (train_loss, train_accuracy) = run.problem.train_metrics(&theta);
    let (val_loss, val_accuracy) = run.problem.validation_metrics(&theta);
    let test = run.problem.test_metrics(&theta);
    // Training checks each batch loss; θ_T can still be too large for the full-set losses.
    let setup = run.ctx.setup(&run.hypers);
    for (what, loss) in [
        ("at the trained weights, the training loss", train_loss),
        ("at the trained weights, the validation loss", val_loss),
    ] {
        crate::hypergrad::reverse::finite(loss, what, exp.steps(), &setup)?;
    }
    let report = TrainJson {
        arithmetic,
        steps: exp.steps(),
        train_loss,
        train_accuracy,
        val_loss,
        val_accuracy,
        test_loss: test.map(|t| t.0),
        test_accuracy: test.map(|t| t.1),
        seconds,
    };
    Ok((report, theta))
}

/// A run's divergence or overflow error saying which of the runs it was.
fn name_the_seed(e: Error, seed: u64) -> Error {
    let what = |what: String| format!("{what} in the run with inner seed {seed}");
    match e {
        Error::Diverged {
            step,
            what: w,
            hint,
        } => Error::Diverged {
            step,
            what: what(w),
            hint,
        },
        Error::Overflow {
            step,
            what: w,
            hint,
        } => Error::Overflow {
            step,
            what: what(w),
            hint,
        },
        e => e,
    }
}

/// The table of one run (what `train` printed before `--seeds`).
fn one_table(r: &TrainJson, arith: &str) -> String {
    let mut rows = vec![
        vec!["".into(), "loss".into(), "accuracy".into()],
        vec!["train".into(), num(r.train_loss), num(r.train_accuracy)],
        vec!["validation".into(), num(r.val_loss), num(r.val_accuracy)],
    ];
    if let (Some(loss), Some(accuracy)) = (r.test_loss, r.test_accuracy) {
        rows.push(vec!["test".into(), num(loss), num(accuracy)]);
    }
    render(&rows) + &format!("{} steps in {arith}, {:.2} s\n", r.steps, r.seconds)
}

/// One run of `train --seeds N` in the JSON: its inner seed, then the single-run report.
#[derive(Debug, Serialize)]
struct Seeded {
    /// The run's inner seed.
    seed: u64,
    /// What `train --json` reports for this run alone.
    #[serde(flatten)]
    run: TrainJson,
}

/// The figures of a run that `--seeds N` averages; the test ones `None` without a test set.
#[derive(Debug, Serialize)]
struct Figures {
    train_loss: f64,
    train_accuracy: f64,
    val_loss: f64,
    val_accuracy: f64,
    test_loss: Option<f64>,
    test_accuracy: Option<f64>,
}

impl Figures {
    /// One run's figures.
    fn of(r: &TrainJson) -> Self {
        Figures {
            train_loss: r.train_loss,
            train_accuracy: r.train_accuracy,
            val_loss: r.val_loss,
            val_accuracy: r.val_accuracy,
            test_loss: r.test_loss,
            test_accuracy: r.test_accuracy,
        }
    }

    /// `stat` of each figure over `runs` (a test figure `None` if any run lacks it).
    fn over(runs: &[Seeded], stat: fn(&[f64]) -> f64) -> Self {
        let all: Vec<Figures> = runs.iter().map(|s| Figures::of(&s.run)).collect();
        let of = |f: fn(&Figures) -> f64| stat(&all.iter().map(f).collect::<Vec<_>>());
        let of_test = |f: fn(&Figures) -> Option<f64>| {
            let xs: Option<Vec<f64>> = all.iter().map(f).collect();
            xs.map(|xs| stat(&xs))
        };
        Figures {
            train_loss: of(|f| f.train_loss),
            train_accuracy: of(|f| f.train_accuracy),
            val_loss: of(|f| f.val_loss),
            val_accuracy: of(|f| f.val_accuracy),
            test_loss: of_test(|f| f.test_loss),
            test_accuracy: of_test(|f| f.test_accuracy),
        }
    }
}

/// The JSON of `train --seeds N` for N > 1.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    /// Every run, in seed order.
    runs: &'a [Seeded],
    /// Mean of each figure over the runs.
    mean: Figures,
    /// Sample standard deviation (divisor N − 1) of each figure over the runs.
    sd: Figures,
}

fn summary(runs: &[Seeded]) -> Summary<'_> {
    Summary {
        runs,
        mean: Figures::over(runs, mean),
        sd: Figures::over(runs, sample_sd),
    }
}

/// The mean of `xs`, summed as offsets from the first value so that equal values give that
/// value exactly (and [`sample_sd`] 0 exactly).
fn mean(xs: &[f64]) -> f64 {
    let Some(&x0) = xs.first() else {
        return f64::NAN;
    };
    x0 + xs.iter().map(|x| x - x0).sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation of `xs`: √(Σ(x − mean)² / (n − 1)), 0 for one value.
fn sample_sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// The table of `train --seeds N`: one line per run with its inner seed, then the mean and
/// the sample standard deviation of each column.
fn seeds_table(runs: &[Seeded], arith: &str) -> String {
    let test = runs.iter().all(|s| s.run.test_loss.is_some());
    let mut header = vec!["inner seed", "train loss", "train accuracy", "val loss"];
    header.push("val accuracy");
    if test {
        header.extend(["test loss", "test accuracy"]);
    }
    let line = |name: String, f: Figures| {
        let mut row = vec![name, num(f.train_loss), num(f.train_accuracy)];
        row.extend([num(f.val_loss), num(f.val_accuracy)]);
        if test {
            row.extend([f.test_loss, f.test_accuracy].map(|v| v.map_or_else(String::new, num)));
        }
        row
    };
    let mut rows = vec![header.into_iter().map(String::from).collect()];
    for s in runs {
        rows.push(line(s.seed.to_string(), Figures::of(&s.run)));
    }
    rows.push(line("mean".into(), Figures::over(runs, mean)));
    rows.push(line("sd".into(), Figures::over(runs, sample_sd)));
    let seconds: f64 = runs.iter().map(|s| s.run.seconds).sum();
    let steps = runs.first().map_or(0, |s| s.run.steps);
    render(&rows)
        + &format!(
            "{} runs of {steps} steps in {arith}, {seconds:.2} s; sd is the sample standard \
             deviation (divisor N - 1)\n",
            runs.len()
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sd_divides_by_n_minus_1_and_is_0_for_one_value() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(mean(&xs).to_bits(), 2.5f64.to_bits());
        // Σ(x − 2.5)² = 5; 5 / 3, not the population's 5 / 4.
        assert!((sample_sd(&xs) - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(sample_sd(&[0.7]).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn equal_values_have_their_value_as_mean_and_sd_0_exactly() {
        // 0.1 + 0.1 + 0.1 is not 3 · 0.1, so a plain Σx / n would miss 0.1 by an ulp.
        let xs = [0.1; 3];
        assert_eq!(mean(&xs).to_bits(), 0.1f64.to_bits());
        assert_eq!(sample_sd(&xs).to_bits(), 0.0f64.to_bits());
    }
}
