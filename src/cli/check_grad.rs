//! `revgrad check-grad CONFIG [--tolerance T] [--quiet]`: the hypergradients three ways, side
//! by side.
//!
//! Exact reversal vs reverse mode over the stored exact trajectory: the same states and the
//! same arithmetic, so every entry of every block must agree **bit for bit**. Exact reversal
//! vs finite differences of the exact forward run ([`crate::hypergrad::finite_diff`]) on
//! probes: every entry of small blocks, a few sampled entries and random directions of large
//! ones. A probe passes when the relative disagreement is within `--tolerance`, or within
//! three times the finite differences' own error estimate (noise the method can explain:
//! fixed-point quantisation, seen as |R₁ − R₂|; for the knots of a decay schedule also a
//! bound on what rounding the interpolated steps to n/2^16 does, from the per-step
//! hypergradients of one more reversal, [`DecaySteps`]). Exit 1 otherwise.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::hypergrad::finite_diff::{
    DecaySteps, EXPLAINED, Verdict, estimate, probes, relative_error, verdict,
};
use crate::hypergrad::reverse::hypergradient;
use crate::hypergrad::stored::hypergradient_stored;
use crate::model::Threads;
use crate::problem::{ExactRun, Experiment};
use crate::report::progress::Progress;
use crate::report::sink::Output;
use crate::report::table::{num, render};

/// Entries probed one by one per block (all of them when the block has no more).
pub const PROBED_ENTRIES: usize = 3;
/// Random directions probed per block with more than one entry.
pub const PROBED_DIRECTIONS: usize = 2;

/// Arguments of `revgrad check-grad`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Allowed relative disagreement with finite differences.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `revgrad check-grad`.
///
/// # Errors
/// Config and data errors (exit 2); divergence, or disagreement beyond tolerance (exit 1).
pub fn run(args: Args, threads: &Threads) -> Result<()> {
    if !(args.tolerance.is_finite() && args.tolerance > 0.0) {
        return Err(Error::Usage(format!(
            "--tolerance must be finite and > 0, got {}",
            crate::error::show(args.tolerance)
        )));
    }
    let exp = Experiment::load(&args.config)?.with_threads(threads.clone());
    // A closed stdout fails now, not after the runs.
    crate::cli::outputs::check_outputs(&exp.config, None, &[])?;
    exp.require_reversible()?;
    if exp.config.model.activation == crate::model::Activation::Relu {
        crate::note!(
            "note: relu has kinks at 0; where a pre-activation crosses one inside a finite-difference \
             step, the finite-difference column is not a derivative and may disagree"
        );
    }
    // The reference path's exact forward run holds its buffer and every state at once.
    exp.ensure_exact_fits(ExactRun::StoredTrajectory)?;
    let mut run = exp.prepare()?;
    // One bar over every run's phases: the reversal, the stored trajectory, the per-step
    // reversal of scheduled decays and the finite differences' forward runs.
    let bar = Progress::phases(args.quiet);
    run.ctx.progress = bar.steps();
    let hypers = run.hypers.clone();
    let setup = run.ctx.setup(&hypers);
    let rev = hypergradient(&mut run.problem, setup)?;
    let (stored, _) = hypergradient_stored(&mut run.problem, setup)?;
    let decay_steps = DecaySteps::of(&mut run.problem, setup)?;
    let mut failures = Vec::new();

    let (mut same, mut total, mut worst) = (0usize, 0usize, 0.0f64);
    for (a, b) in rev.grads.blocks.iter().zip(&stored.blocks) {
        for (x, y) in a.values.iter().zip(&b.values) {
            total += 1;
            if x.to_bits() == y.to_bits() {
                same += 1;
            } else {
                worst = worst.max(relative_error(*x, *y, 1e-300));
            }
        }
    }
    if same != total {
        failures.push(format!(
            "reversal and stored trajectory differ in {} of {total} hypergradient entries \
             (largest relative difference {worst:e}); they must agree bit for bit",
            total - same
        ));
    }

    let mut rows = vec![vec![
        "hyperparameter".to_string(),
        "probe".into(),
        "exact reversal".into(),
        "finite differences".into(),
        "fd error".into(),
        "rel err".into(),
        "verdict".into(),
    ]];
    for kind in hypers.kinds() {
        let probes = probes(
            &hypers,
            kind,
            PROBED_ENTRIES,
            PROBED_DIRECTIONS,
            exp.config.seed,
        );
        if probes.is_empty() {
            rows.push(vec![
                kind.name().to_string(),
                "-".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "not probed: no step of whole quanta 2^-16 fits inside the range".into(),
            ]);
        }
        for p in probes {
            let predicted = p.predicted(&rev.grads);
            let fd = estimate(&mut run.problem, setup, &p)?
                .with_rounding(decay_steps.rounding(setup, &p));
            let rel = relative_error(predicted, fd.value, 1e-12);
            let verdict = match verdict(predicted, fd, args.tolerance) {
                Verdict::Ok => "ok",
                Verdict::Explained => "within fd error",
                Verdict::Fail => {
                    let rounding = if fd.rounding > 0.0 {
                        format!(
                            " (of which {:e} from rounding the scheduled {} to n/2^16)",
                            fd.rounding,
                            kind.name()
                        )
                    } else {
                        String::new()
                    };
                    failures.push(format!(
                        "d_{} {}: reversal {predicted:e} and finite differences {:e} differ by \
                         {rel:e} (relative), beyond the tolerance {:e} and {EXPLAINED}× the finite \
                         differences' error estimate {:e}{rounding}",
                        kind.name(),
                        p.label,
                        fd.value,
                        args.tolerance,
                        fd.error
                    ));
                    "FAIL"
                }
            };
            rows.push(vec![
                kind.name().to_string(),
                p.label.clone(),
                format!("{predicted:e}"),
                format!("{:e}", fd.value),
                format!("{:.1e}", fd.error),
                format!("{rel:.1e}"),
                verdict.into(),
            ]);
        }
    }
    bar.clear();
    let mut text = render(&rows);
    if !decay_steps.is_empty() {
        text += "fd error of a scheduled decay includes a bound on what rounding its interpolated \
                 steps to n/2^16 does to the finite differences\n";
    }
    text += &format!(
        "stored trajectory: {same} of {total} hypergradient entries bit-identical to the reversal\n\
         val_loss {}; reversal {}\n",
        num(rev.val_loss),
        if rev.exact { "exact" } else { "NOT exact" }
    );
    Output::open(None)?.write_all(&text)?;
    if !rev.exact {
        failures.push("the reversal did not restore θ₀ bit for bit".into());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::CheckFailed(format!(
            "check-grad failed:\n  {}",
            failures.join("\n  ")
        )))
    }
}
