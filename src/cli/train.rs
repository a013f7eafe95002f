//! `revgrad train CONFIG [--exact] [--save FILE.npz] [--json]`: the inner loop alone.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::Result;
use crate::model::Threads;
use crate::optim::{Arithmetic, train};
use crate::problem::Experiment;
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
}

/// Run `revgrad train`.
///
/// # Errors
/// Config, data, npz errors (exit 2); divergence or overflow (exit 1).
pub fn run(args: Args, threads: &Threads) -> Result<()> {
    let exp = Experiment::load(&args.config)?.with_threads(threads.clone());
    if args.exact {
        exp.require_reversible()?;
    }
    let mut run = exp.prepare()?;
    let setup = run.ctx.setup(&run.hypers);
    let theta0 = setup.theta0();
    // Fail before training, not after it, if the file cannot be written there.
    crate::cli::outputs::check_outputs(&exp.config, None, &[("--save", args.save.as_deref())])?;
    let arithmetic = if args.exact {
        Arithmetic::Exact
    } else {
        Arithmetic::Float
    };
    let clock = Instant::now();
    let theta = train(
        &mut run.ctx.setup(&run.hypers).objective(&mut run.problem),
        &run.ctx.layout,
        &theta0,
        &run.hypers,
        exp.steps(),
        exp.config.inner.optimizer,
        arithmetic,
        &run.ctx.threads,
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
    if let Some(path) = &args.save {
        crate::model::npz::write_params(path, &run.ctx.layout, &theta)?;
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
    let text = if args.json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        let arith = if args.exact { "exact" } else { "float64" };
        let mut rows = vec![
            vec!["".into(), "loss".into(), "accuracy".into()],
            vec!["train".into(), num(train_loss), num(train_accuracy)],
            vec!["validation".into(), num(val_loss), num(val_accuracy)],
        ];
        if let Some((loss, accuracy)) = test {
            rows.push(vec!["test".into(), num(loss), num(accuracy)]);
        }
        render(&rows) + &format!("{} steps in {arith}, {seconds:.2} s\n", exp.steps())
    };
    Output::open(None)?.write_all(&text)
}
