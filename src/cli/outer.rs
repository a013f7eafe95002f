//! What the outer loops (`tune` and `search`) share: how they start (a config, or a
//! checkpoint to resume), their outputs as observers (the CSV, `--hypers-out`, `--best`, the
//! checkpoint, the progress bar), the interrupt flag, and the end-of-run summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::error::Result;
use crate::problem::Experiment;
use crate::report::progress::Progress;
use crate::report::sink::{BestConfigWriter, HypersOut, LearnedRowsWriter, Output, TuneCsv};
use crate::report::table::num;
use crate::tune::checkpoint::{Checkpoint, CheckpointWriter, Command, Run};
use crate::tune::observer::Observers;
use crate::tune::{Iteration, Observer, State, StopReason, Summary};

/// The config an outer command runs: the CONFIG file, or the one a checkpoint holds (after
/// checking the checkpoint is one of `command`'s whose data has not changed).
///
/// # Errors
/// Config errors, and as [`crate::tune::checkpoint::read`], [`Checkpoint::expect`] and
/// [`Checkpoint::check_data`].
pub(crate) fn load_start(
    config: Option<&std::path::Path>,
    resume: Option<&std::path::Path>,
    command: Command,
) -> Result<(Config, Option<Checkpoint>)> {
    match (config, resume) {
        (_, Some(path)) => {
            let ck = crate::tune::checkpoint::read(path)?;
            ck.expect(command)?;
            ck.check_data()?;
            crate::memory::resume_with(ck.run.memory_limit, command == Command::Tune)?;
            Ok((ck.run.config.clone(), Some(ck)))
        }
        (Some(path), None) => Ok((Config::load(path)?, None)),
        (None, None) => Err(crate::Error::Usage(format!(
            "give a CONFIG file, or --resume CHECKPOINT (see `revgrad {} --help`)",
            command.name()
        ))),
    }
}

/// Where a run's checkpoints go: `--checkpoint FILE`, else the file it resumed from; and
/// whether to check that path with the other outputs (not the resumed file, which is the
/// run's input and is rewritten as the run goes on).
pub(crate) fn checkpoint_path(
    checkpoint: Option<&std::path::Path>,
    resumed: Option<&Checkpoint>,
) -> (Option<PathBuf>, bool) {
    match (checkpoint, resumed) {
        (Some(p), Some(ck)) => (
            Some(p.to_path_buf()),
            !crate::cli::outputs::same_file(p, &ck.path),
        ),
        (Some(p), None) => (Some(p.to_path_buf()), true),
        (None, Some(ck)) => (Some(ck.path.clone()), false),
        (None, None) => (None, false),
    }
}

/// The writer of a run's checkpoints to `path` (`None` without one). The run it records:
/// `command` on the experiment's config, `steps` iterations (or trials) within `seconds`,
/// under the memory limit now in force, on the data files fingerprinted now (or, resuming,
/// as the checkpoint recorded them: they were checked unchanged). A run without a
/// checkpoint reads no file for it.
///
/// # Errors
/// [`crate::Error::Io`] naming a data file that cannot be read; a malformed
/// `REVGRAD_MEMORY_LIMIT`.
pub(crate) fn checkpoint_writer(
    path: Option<PathBuf>,
    command: Command,
    exp: &Experiment,
    steps: usize,
    seconds: Option<f64>,
    resumed: Option<&Checkpoint>,
) -> Result<Option<CheckpointWriter>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let data = match resumed {
        Some(ck) => ck.run.data.clone(),
        None => crate::data::fingerprint::of_inputs(&exp.config)?,
    };
    let run = Run {
        command,
        config: exp.config.clone(),
        steps,
        seconds,
        memory_limit: crate::memory::limit()?.0,
        data,
    };
    Ok(Some(CheckpointWriter::new(path, &run)))
}

/// The message for a resumed run with nothing left to do.
pub(crate) fn nothing_to_do(command: Command, ck: &Checkpoint, st: &State, why: &str) -> String {
    format!(
        "revgrad {}: nothing to do: {} holds a finished run ({why}; {} rows, best row #{} with \
         val_loss {:.5}); nothing was written",
        command.name(),
        ck.path.display(),
        st.rows,
        st.best.iteration,
        st.best.val_loss()
    )
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
                // An overflowed test loss is f64::MAX: shown in exponent form, not 309 digits.
                let l = if l < 1e6 { format!("{l:.5}") } else { num(l) };
                t += &format!("  test_loss {l}  test_accuracy {a:.4}");
            }
        }
        None => t += "->  rejected",
    }
    t
}

/// The end-of-run summary for people; `command` (`tune` or `search`) names the run. With
/// `maximize` the best row is the worst for the model, and says so.
pub(crate) fn summary_text(
    command: &str,
    s: &Summary,
    objective: crate::config::OuterObjective,
) -> String {
    let best = match objective {
        crate::config::OuterObjective::Minimize => "best",
        crate::config::OuterObjective::Maximize => "worst for the model (highest validation loss)",
    };
    let mut t = format!(
        "revgrad {command}: {} ({} rows, {} rejected)\n  start:     {}\n  {best} (#{:>3}): {}\n",
        s.stop.text(),
        s.rows,
        s.rejected,
        describe(&s.start),
        s.best.iteration,
        describe(&s.best)
    );
    if s.clipped > 0 {
        t += &format!(
            "  chaos guard: {} outer step(s) clipped (hypergradient beyond ±{} or step beyond ±{} \
             in warped coordinates, half the range for an input entry: too large to trust)\n",
            s.clipped,
            crate::tune::adam::MAX_GRADIENT,
            crate::tune::adam::MAX_STEP
        );
    }
    if let Some(scale) = s.learning_rate_scale.filter(|_| s.rejected > 0) {
        t += &format!(
            "  outer learning rates halved {} time(s): every block's rate is now {scale:e} of \
             its configured value\n",
            s.rejected
        );
    }
    t
}

/// What an outer loop (tune or search) writes: the CSV, `--hypers-out`, `--best`, and the
/// progress bar — each an observer.
pub(crate) struct RunOutputs {
    csv: TuneCsv,
    hypers_out: Option<HypersOut>,
    best: Option<BestConfigWriter>,
    learned: Option<LearnedRowsWriter>,
    checkpoint: Option<CheckpointWriter>,
    /// The progress bar (the summary is printed above it).
    pub progress: Progress,
}

impl RunOutputs {
    /// Opens the outputs (the CSV on `output` or stdout) for the run's blocks; for a run
    /// resumed after iteration `resumed`, the CSV and `--hypers-out` files continue after
    /// that iteration's rows ([`crate::report::sink::CsvSink::resumed`]).
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming an output that cannot be created; [`crate::Error::Data`]
    /// naming a resumed output that does not hold the run's rows.
    pub(crate) fn open(
        exp: &Experiment,
        run: &crate::problem::Prepared,
        output: Option<&std::path::Path>,
        hypers_out: Option<&std::path::Path>,
        best: Option<PathBuf>,
        quiet: bool,
        resumed: Option<usize>,
    ) -> Result<Self> {
        let kinds: Vec<_> = run.hypers.kinds().collect();
        let csv = match resumed {
            Some(done) => TuneCsv::resumed(output, &kinds, done)?,
            None => TuneCsv::new(Output::open(output)?, &kinds)?,
        };
        let hypers_out = match hypers_out {
            // Every tuned block but the input (thousands of entries per iteration: its rows
            // go to --inputs-out).
            Some(p) => {
                let tuned = exp.config.outer.tune.iter().copied();
                let tuned: Vec<_> = tuned.filter(|&k| k != crate::hyper::Kind::Input).collect();
                Some(match resumed {
                    Some(done) => HypersOut::resumed(p, &tuned, done)?,
                    None => HypersOut::new(Output::open(Some(p))?, &tuned)?,
                })
            }
            None => None,
        };
        let best =
            best.map(|p| BestConfigWriter::new(exp.config.clone(), run.ctx.layout.clone(), p));
        Ok(RunOutputs {
            csv,
            hypers_out,
            best,
            learned: None,
            checkpoint: None,
            progress: Progress::new(quiet),
        })
    }

    /// Also write a checkpoint after every iteration with `writer` ([`checkpoint_writer`]).
    pub(crate) fn with_checkpoint(mut self, writer: Option<CheckpointWriter>) -> Self {
        self.checkpoint = writer;
        self
    }

    /// Also write the learned rows at each new best: as a training CSV to `csv`, as a PNG
    /// grid to `png` (checked beforehand by [`check_learned_outputs`]).
    pub(crate) fn with_learned_rows(
        mut self,
        exp: &Experiment,
        csv: Option<PathBuf>,
        png: Option<PathBuf>,
    ) -> Self {
        if let Some(l) = exp
            .data
            .learnable
            .as_ref()
            .filter(|_| csv.is_some() || png.is_some())
        {
            let labels = exp.data.train.y[l.first..l.first + l.rows].to_vec();
            let writer = LearnedRowsWriter::new(
                labels,
                exp.data.n_classes,
                &l.feature_box,
                exp.data.feature_names.clone(),
                csv,
                png,
            );
            self.learned = Some(if exp.data.poison.is_empty() {
                writer
            } else {
                writer.beside(l.init.clone())
            });
        }
        self
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
        if let Some(l) = self.learned.as_mut() {
            o.push(l);
        }
        // Last: a checkpoint is written once the iteration's other outputs are.
        if let Some(c) = self.checkpoint.as_mut() {
            o.push(c);
        }
        Observers(o)
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

/// An error unless `--inputs-out` and `--images-out` can be written for this experiment: it
/// has learnable rows, and for the PNG their features form a square image.
///
/// # Errors
/// [`crate::Error::Usage`] naming the flag and what is missing (exit 2).
pub(crate) fn check_learned_outputs(
    exp: &Experiment,
    inputs_out: Option<&std::path::Path>,
    images_out: Option<&std::path::Path>,
) -> Result<()> {
    for (flag, path) in [("--inputs-out", inputs_out), ("--images-out", images_out)] {
        if path.is_some() && exp.data.learnable.is_none() {
            return Err(crate::Error::Usage(format!(
                "{flag} writes the learned training rows, but {} has none: give \
                 data.synthetic or data.poison in the config",
                exp.config.file.display()
            )));
        }
    }
    let d = exp.data.n_features;
    if images_out.is_some() && crate::report::images::square_side(d).is_none() {
        return Err(crate::Error::Usage(format!(
            "--images-out needs square images, but the data of {} has {d} features, not a \
             square number; use --inputs-out for the rows as a CSV",
            exp.config.file.display()
        )));
    }
    Ok(())
}
