//! `revgrad search CONFIG [--trials N] [--seconds S] [-o FILE] [--best FILE]
//! [--checkpoint FILE] [--quiet]` and `revgrad search --resume CHECKPOINT [the same
//! options]`: the random-search baseline, with `tune`'s CSV columns (gradient cells empty).

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::hyper::Kind;
use crate::model::Threads;
use crate::problem::Experiment;
use crate::tune::search::{Search, run as search_run};

use super::outer::{
    RunOutputs, checkpoint_path, checkpoint_writer, finish, interrupt_flag, load_start,
    nothing_to_do, summary_text,
};
use crate::tune::checkpoint::Command;

/// Arguments of `revgrad search`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON); the blocks in outer.tune are searched, each as one scalar.
    #[arg(required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the search this checkpoint holds (written by --checkpoint), with its
    /// trials and time budget unless --trials or --seconds give new ones: its rows are
    /// appended to -o FILE after the checkpoint's trial.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Rewrite this file (atomically) after every trial with everything needed to
    /// continue the search with --resume.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Trials after the starting point [outer.steps, so as many rows as `tune`].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub trials: Option<usize>,
    /// Start no trial after this many seconds (the trials limit still applies).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub seconds: Option<f64>,
    /// Write the CSV here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a complete config with the best hyperparameters found here.
    #[arg(long, value_name = "FILE")]
    pub best: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `revgrad search`; returns exit code 130 if interrupted.
///
/// # Errors
/// Usage, config and data errors (exit 2); a starting point that diverges (exit 1, as in
/// `tune`); output errors.
pub fn run(args: Args, threads: &Threads) -> Result<u8> {
    if args.trials == Some(0) {
        return Err(Error::Usage("--trials must be at least 1, got 0".into()));
    }
    if let Some(s) = args.seconds
        && !(s.is_finite() && s > 0.0)
    {
        return Err(Error::Usage(format!(
            "--seconds must be finite and > 0, got {}",
            crate::error::show(s)
        )));
    }
    let (config, resumed) = load_start(
        args.config.as_deref(),
        args.resume.as_deref(),
        Command::Search,
    )?;
    if config.outer.tune.contains(&Kind::Input) {
        return Err(Error::config(
            &config.file,
            "outer.tune",
            "lists \"input\", which search cannot draw: the learnable rows' features are \
             thousands of dimensions, and one value shared by every feature is no training \
             set (SPEC §2.5); use `revgrad tune`, or remove it from outer.tune",
        ));
    }
    if config.outer.tune.contains(&Kind::ExampleWeight) {
        return Err(Error::config(
            &config.file,
            "outer.tune",
            "lists \"example_weight\", which search cannot draw: one weight shared by every \
             row only rescales the loss, and one per row is thousands of dimensions (SPEC \
             §2.4); use `revgrad tune`, or remove it from outer.tune",
        ));
    }
    let exp = Experiment::from_config(config)?.with_threads(threads.clone());
    let run = exp.prepare()?;
    let trials = args
        .trials
        .or(resumed.as_ref().map(|ck| ck.run.steps))
        .unwrap_or(exp.config.outer.steps);
    let seconds = args
        .seconds
        .or(resumed.as_ref().and_then(|ck| ck.run.seconds));
    let state = match &resumed {
        Some(ck) => {
            let st = ck.state(&run.hypers, None)?;
            let why = if st.done >= trials {
                Some(format!(
                    "all {} trials done; give --trials N above {} to go on",
                    st.done, st.done
                ))
            } else {
                seconds.filter(|&s| st.seconds >= s).map(|s| {
                    format!("its time budget of {s} s is used; give a larger --seconds to go on")
                })
            };
            if let Some(why) = why {
                crate::note!("{}", nothing_to_do(Command::Search, ck, &st, &why));
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
            ("--checkpoint", checkpoint.as_deref().filter(|_| check_it)),
        ],
    )?;
    let writer = checkpoint_writer(
        checkpoint,
        Command::Search,
        &exp,
        trials,
        seconds,
        resumed.as_ref(),
    )?;
    let mut outputs = RunOutputs::open(
        &exp,
        &run,
        args.output.as_deref(),
        None,
        args.best.clone(),
        args.quiet,
        state.as_ref().map(|s| s.done),
    )?
    .with_checkpoint(writer);
    let interrupt = interrupt_flag();
    let summary = {
        let start = run.hypers.clone();
        let cfg = Search {
            start: &start,
            tune: &exp.config.outer.tune,
            trials,
            seconds,
            seed: exp.config.seed,
            objective: exp.config.outer.objective,
        };
        let mut runs = crate::problem::Runs::new(&exp, run).with_progress(outputs.progress.steps());
        search_run(&mut runs, cfg, state, &mut outputs.observers(), &interrupt)?
    };
    Ok(finish(
        &outputs.progress,
        &summary_text("search", &summary, exp.config.outer.objective),
        summary.stop,
    ))
}
