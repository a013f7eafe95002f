//! `revgrad tune CONFIG [-o FILE] [--outer-steps N] [--best FILE] [--hypers-out FILE]
//! [--inputs-out FILE.csv] [--images-out FILE.png] [--checkpoint FILE] [--quiet]` and
//! `revgrad tune --resume CHECKPOINT [the same outputs]`

use std::path::PathBuf;

use super::outer::{
    RunOutputs, checkpoint_path, checkpoint_writer, finish, interrupt_flag, load_start,
    nothing_to_do, summary_text,
};
use crate::error::Result;
use crate::model::Threads;
use crate::problem::Experiment;
use crate::tune::checkpoint::Command;
use crate::tune::{Begin, Summary, run as tune_run, tuned_len};

/// Arguments of `revgrad tune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    #[arg(required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run this checkpoint holds (written by --checkpoint): its rows are
    /// appended to -o FILE after the checkpoint's iteration, and it goes on writing its
    /// checkpoints to this file unless --checkpoint names another.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Rewrite this file (atomically) after every iteration with everything needed to
    /// continue the run with --resume.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Write the CSV here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Override outer.steps (with --resume: go on up to N iterations).
    #[arg(long, value_name = "N")]
    pub outer_steps: Option<usize>,
    /// Write a complete config with the best hyperparameters found here (every entry of
    /// every block).
    #[arg(long, value_name = "FILE")]
    pub best: Option<PathBuf>,
    /// Write every entry of every tuned block per iteration here (long CSV:
    /// iteration,name,group,knot,index,value,gradient).
    #[arg(long, value_name = "FILE")]
    pub hypers_out: Option<PathBuf>,
    /// With an input block: write the learned rows at the best iteration here as a training
    /// CSV (features in raw units, then `label`), rewritten at each new best.
    #[arg(long, value_name = "FILE.csv")]
    pub inputs_out: Option<PathBuf>,
    /// With an input block whose features are a square image: write the learned rows at the
    /// best iteration here as a PNG grid of grey images, one grid row per class.
    #[arg(long, value_name = "FILE.png")]
    pub images_out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `revgrad tune`; returns exit code 130 if interrupted.
///
/// # Errors
/// Config and data errors (exit 2); a starting point that diverges (exit 1); output errors.
pub fn run(args: Args, threads: &Threads) -> Result<u8> {
    let (mut config, resumed) = load_start(
        args.config.as_deref(),
        args.resume.as_deref(),
        Command::Tune,
    )?;
    if let Some(n) = args.outer_steps {
        config.outer.steps = n;
    }
    let exp = Experiment::from_config(config)?.with_threads(threads.clone());
    exp.require_reversible()?;
    let run = exp.prepare()?;
    let state = match &resumed {
        Some(ck) => {
            let dim = tuned_len(&run.hypers, &exp.config.outer.tune);
            let st = ck.state(&run.hypers, Some(dim))?;
            if let Some(stop) = st.finished(exp.config.outer.steps) {
                let why = match stop {
                    crate::tune::StopReason::StepsDone => format!(
                        "all {} steps done; give --outer-steps N above {} to go on",
                        st.done, st.done
                    ),
                    other => other.text().to_owned(),
                };
                crate::note!("{}", nothing_to_do(Command::Tune, ck, &st, &why));
                return Ok(0);
            }
            Some(st)
        }
        None => None,
    };
    let (checkpoint, check_it) = checkpoint_path(args.checkpoint.as_deref(), resumed.as_ref());
    crate::cli::outputs::check_outputs(
        &exp.config,
        args.output.as_deref(),
        &[
            ("--best", args.best.as_deref()),
            ("--hypers-out", args.hypers_out.as_deref()),
            ("--inputs-out", args.inputs_out.as_deref()),
            ("--images-out", args.images_out.as_deref()),
            ("--checkpoint", checkpoint.as_deref().filter(|_| check_it)),
        ],
    )?;
    crate::cli::outer::check_learned_outputs(
        &exp,
        args.inputs_out.as_deref(),
        args.images_out.as_deref(),
    )?;
    let writer = checkpoint_writer(
        checkpoint,
        Command::Tune,
        &exp,
        exp.config.outer.steps,
        None,
        resumed.as_ref(),
    )?;
    let mut outputs = RunOutputs::open(
        &exp,
        &run,
        args.output.as_deref(),
        args.hypers_out.as_deref(),
        args.best.clone(),
        args.quiet,
        state.as_ref().map(|s| s.done),
    )?
    .with_learned_rows(&exp, args.inputs_out.clone(), args.images_out.clone())
    .with_checkpoint(writer);
    let interrupt = interrupt_flag();
    let summary = {
        let begin = match state {
            Some(st) => Begin::Resume(Box::new(st)),
            None => Begin::Fresh(run.hypers.clone()),
        };
        let mut runs = crate::problem::Runs::new(&exp, run).with_progress(outputs.progress.steps());
        tune_run(
            &mut runs,
            &exp.config.outer,
            begin,
            &mut outputs.observers(),
            &interrupt,
        )?
    };
    let mut text = summary_text("tune", &summary, exp.config.outer.objective);
    text += &cleaning_text(&exp.data.flipped, &summary);
    if summary.stop != crate::tune::StopReason::Interrupted {
        text += &poison_text(&exp, &summary);
    }
    Ok(finish(&outputs.progress, &text, summary.stop))
}

/// With flipped labels and tuned example weights: how well `weight < 0.5` finds the flipped
/// rows, at the start and at the best row.
fn cleaning_text(flipped: &[crate::data::noise::FlippedLabel], s: &Summary) -> String {
    use crate::report::cleaning::{FLAG_BELOW, detection};
    let rows: Vec<usize> = flipped.iter().map(|f| f.row).collect();
    let weights = |it: &crate::tune::Iteration| {
        it.hypers
            .find(crate::hyper::Kind::ExampleWeight)
            .map(|b| detection(&b.values, &rows, FLAG_BELOW))
    };
    match (rows.is_empty(), weights(&s.start), weights(&s.best)) {
        (false, Some(a), Some(b)) => format!(
            "  label noise: {} of the training labels were flipped; rows with weight < {FLAG_BELOW} \
             flagged: {} at the start (F1 {:.3}), {} at the best row: precision {:.3}, \
             recall {:.3}, F1 {:.3}\n",
            b.flipped, a.flagged, a.f1, b.flagged, b.precision, b.recall, b.f1
        ),
        _ => String::new(),
    }
}

/// With poison rows: the validation and test figures of clean training (float64, the
/// starting blocks, without the poison rows), of the start (the label-flipped copies) and of
/// the best row, one line each. The clean run is skipped, with the reason, when its batches
/// would be larger than the clean rows or when it fails; the tune's own outputs are written
/// by then.
fn poison_text(exp: &Experiment, s: &Summary) -> String {
    use crate::hyper::Kind;
    let Some(l) = exp
        .data
        .learnable
        .as_ref()
        .filter(|_| !exp.data.poison.is_empty())
    else {
        return String::new();
    };
    let batch = exp.config.inner.batch_size;
    let clean = if batch > l.first {
        Err(format!(
            "inner.batch_size {batch} is larger than the {} clean rows",
            l.first
        ))
    } else {
        let clean_run = || -> Result<crate::report::rows::TrainJson> {
            let mut clean = exp.prepare()?;
            clean.problem = clean.problem.without_learnable_rows();
            clean.hypers.blocks.retain(|b| b.kind() != Kind::Input);
            let arithmetic = crate::optim::Arithmetic::Float;
            Ok(crate::cli::train::train_once(exp, &mut clean, arithmetic)?.0)
        };
        clean_run().map_err(|e| e.to_string())
    };
    let cell = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.4}"));
    let line = |what: &str, val: (f64, f64), test: Option<(f64, f64)>| {
        format!(
            "    {what:<44} {:>9.4} {:>9.4} {:>10} {:>9}\n",
            val.0,
            val.1,
            cell(test.map(|t| t.0)),
            cell(test.map(|t| t.1))
        )
    };
    let mut t = format!(
        "  poison: {} copies of training rows with another label, appended to {} clean rows\n    \
         {:<44} {:>9} {:>9} {:>10} {:>9}\n",
        l.rows, l.first, "", "val_loss", "val_acc", "test_loss", "test_acc"
    );
    match clean {
        Ok(c) => {
            let test = c.test_loss.zip(c.test_accuracy);
            let what = "clean (float64, without the poison rows)";
            t += &line(what, (c.val_loss, c.val_accuracy), test);
        }
        Err(why) => t += &format!("    clean: not run ({why})\n"),
    }
    let best = match exp.config.outer.objective {
        crate::config::OuterObjective::Maximize => "worst for the model",
        crate::config::OuterObjective::Minimize => "lowest validation loss",
    };
    for (what, it) in [
        ("start (label-flipped copies)".to_owned(), &s.start),
        (format!("best row #{} ({best})", s.best.iteration), &s.best),
    ] {
        if let Some(r) = &it.result {
            t += &line(&what, (r.val_loss, r.val_accuracy), r.test);
        }
    }
    t
}
