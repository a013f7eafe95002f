//! `revgrad tune CONFIG [-o FILE] [--outer-steps N] [--best FILE] [--hypers-out FILE] [--quiet]`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Result;
use crate::model::Threads;
use crate::problem::Experiment;
use crate::report::progress::Progress;
use crate::report::sink::{BestConfigWriter, HypersOut, Output, TuneCsv};
use crate::report::table::num;
use crate::tune::observer::Observers;
use crate::tune::{Iteration, Observer, StopReason, Summary, Tune, run as tune_run};

/// Arguments of `revgrad tune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Write the CSV here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Override outer.steps.
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
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// One line per point: each block's mean value, then the losses.
pub(crate) fn describe(it: &Iteration) -> String {
    let mut t = String::new();
    for b in &it.hypers.blocks {
        let many = if b.is_scalar() { "" } else { " (mean)" };
        t += &format!("{} {}{many}  ", b.kind().name(), num(b.mean()));
    }
    match &it.result {
        Some(r) => {
            t += &format!(
                "->  val_loss {:.5}  val_accuracy {:.4}",
                r.val_loss, r.val_accuracy
            );
            if let Some((l, a)) = r.test {
                t += &format!("  test_loss {l:.5}  test_accuracy {a:.4}");
            }
        }
        None => t += "->  rejected",
    }
    t
}

/// The end-of-run summary for people; `command` is `tune` or `search`.
pub(crate) fn summary_text(command: &str, s: &Summary) -> String {
    let mut t = format!(
        "revgrad {command}: {} ({} rows, {} rejected)\n  start:     {}\n  best (#{:>3}): {}\n",
        s.stop.text(),
        s.rows,
        s.rejected,
        describe(&s.start),
        s.best.iteration,
        describe(&s.best)
    );
    if s.clipped > 0 {
        t += &format!(
            "  chaos guard: {} outer step(s) clipped (hypergradient beyond ±{} or step beyond ±{} in warped coordinates: too large to trust)\n",
            s.clipped,
            crate::tune::adam::MAX_GRADIENT,
            crate::tune::adam::MAX_STEP
        );
    }
    if s.rejected > 0 && command == "tune" {
        t += &format!(
            "  outer learning rate halved {} time(s), now {:e}\n",
            s.rejected, s.final_learning_rate
        );
    }
    t
}

/// Run `revgrad tune`; returns exit code 130 if interrupted.
///
/// # Errors
/// Config and data errors (exit 2); a starting point that diverges (exit 1); output errors.
pub fn run(args: Args, threads: &Threads) -> Result<u8> {
    let mut exp = Experiment::load(&args.config)?.with_threads(threads.clone());
    exp.require_reversible()?;
    crate::cli::outputs::check_outputs(
        &exp.config,
        args.output.as_deref(),
        &[
            ("--best", args.best.as_deref()),
            ("--hypers-out", args.hypers_out.as_deref()),
        ],
    )?;
    if let Some(n) = args.outer_steps {
        exp.config.outer.steps = n;
    }
    let mut run = exp.prepare()?;
    let mut outputs = RunOutputs::open(
        &exp,
        &run,
        args.output.as_deref(),
        args.hypers_out.as_deref(),
        args.best.clone(),
        args.quiet,
    )?;
    let interrupt = interrupt_flag();
    let summary = {
        let cfg = Tune {
            optimizer: run.ctx.optimizer,
            layout: &run.ctx.layout,
            eps: &run.ctx.eps,
            steps: run.ctx.steps,
            outer: &exp.config.outer,
            threads: &run.ctx.threads,
        };
        let start = run.hypers.clone();
        tune_run(
            &mut run.problem,
            cfg,
            start,
            &mut outputs.observers(),
            &interrupt,
        )?
    };
    let mut text = summary_text("tune", &summary);
    text += &cleaning_text(&exp.data.flipped, &summary);
    Ok(finish(&outputs.progress, &text, summary.stop))
}

/// What an outer loop (tune or search) writes: the CSV, `--hypers-out`, `--best`, and the
/// progress bar — each an observer.
pub(crate) struct RunOutputs {
    csv: TuneCsv,
    hypers_out: Option<HypersOut>,
    best: Option<BestConfigWriter>,
    /// The progress bar (the summary is printed above it).
    pub progress: Progress,
}

impl RunOutputs {
    /// Opens the outputs (the CSV on `output` or stdout) for the run's blocks.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming an output that cannot be created.
    pub(crate) fn open(
        exp: &Experiment,
        run: &crate::problem::Prepared,
        output: Option<&std::path::Path>,
        hypers_out: Option<&std::path::Path>,
        best: Option<PathBuf>,
        quiet: bool,
    ) -> Result<Self> {
        let kinds: Vec<_> = run.hypers.kinds().collect();
        let csv = TuneCsv::new(Output::open(output)?, &kinds)?;
        let hypers_out = match hypers_out {
            Some(p) => Some(HypersOut::new(
                Output::open(Some(p))?,
                &exp.config.outer.tune,
            )?),
            None => None,
        };
        let best =
            best.map(|p| BestConfigWriter::new(exp.config.clone(), run.ctx.layout.clone(), p));
        Ok(RunOutputs {
            csv,
            hypers_out,
            best,
            progress: Progress::new(quiet),
        })
    }

    /// All of them as one observer.
    pub(crate) fn observers(&mut self) -> Observers<'_> {
        let mut o: Vec<&mut dyn Observer> = vec![&mut self.csv, &mut self.progress];
        if let Some(h) = self.hypers_out.as_mut() {
            o.push(h);
        }
        if let Some(b) = self.best.as_mut() {
            o.push(b);
        }
        Observers(o)
    }
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

/// A flag set by the first Ctrl-C (or SIGTERM): the outer loop finishes its iteration and
/// stops with valid outputs. The second stops at once (every written row is flushed).
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            crate::fsutil::exit_interrupted();
        }
        crate::note!("\ninterrupted: finishing the current iteration (Ctrl-C again to stop now)");
    });
    interrupt
}

/// Prints the summary on stderr (above the bar when there is one); the exit code: 130 if
/// interrupted, else 0.
pub(crate) fn finish(progress: &Progress, text: &str, stop: StopReason) -> u8 {
    progress.println(text.trim_end());
    if stop == StopReason::Interrupted {
        130
    } else {
        0
    }
}
