//! `revgrad check-grad CONFIG`: the hypergradients three ways, side by side.
//!
//! Exact reversal vs reverse mode over the stored exact trajectory (same states, so they
//! must agree to ~1e-12) and vs central finite differences of the exact forward run (agree
//! to the finite-difference error, `--tolerance`). Exit 1 if either check fails.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::hypergrad::finite_diff::finite_differences;
use crate::hypergrad::reverse::hypergradient;
use crate::hypergrad::stored::hypergradient_stored;
use crate::problem::Experiment;
use crate::report::sink::Output;
use crate::report::table::{num, render};

/// Allowed relative disagreement between exact reversal and the stored trajectory.
pub const STORED_TOLERANCE: f64 = 1e-10;

/// Arguments of `revgrad check-grad`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Allowed relative disagreement with finite differences.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
}

/// `|a − b| / max(|a|, |b|, floor)`.
pub fn relative_error(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}

/// Run `revgrad check-grad`.
///
/// # Errors
/// Config and data errors (exit 2); divergence, or disagreement beyond tolerance (exit 1).
pub fn run(args: Args) -> Result<()> {
    if !(args.tolerance.is_finite() && args.tolerance > 0.0) {
        return Err(Error::Usage(format!(
            "--tolerance must be finite and > 0, got {}",
            crate::error::show(args.tolerance)
        )));
    }
    let exp = Experiment::load(&args.config)?;
    exp.require_momentum()?;
    if exp.config.model.activation == crate::model::Activation::Relu {
        crate::note!(
            "note: relu has kinks at 0; where a pre-activation crosses one inside a finite-difference \
             step, the finite-difference column is not a derivative and may disagree"
        );
    }
    let mut problem = exp.problem();
    let eps = exp.init_noise(problem.layout())?;
    let hp = exp.hyperparams();
    crate::memory::ensure_fits(
        crate::hypergrad::store_all_bytes(problem.layout().len(), exp.steps()),
        "check-grad's stored trajectory (inner.steps × parameters × 16 bytes)",
    )?;
    let rev = hypergradient(&mut problem, &eps, hp, exp.steps())?;
    let (stored, _) = hypergradient_stored(&mut problem, &eps, hp, exp.steps())?;
    let fd = finite_differences(&mut problem, &eps, hp, exp.steps())?;
    let names = ["alpha", "gamma", "l2", "init_scale"];
    let mut rows = vec![vec![
        "hyperparameter".to_string(),
        "exact reversal".into(),
        "stored trajectory".into(),
        "finite differences".into(),
        "fd step".into(),
        "rel err (stored)".into(),
        "rel err (fd)".into(),
    ]];
    let mut failures = Vec::new();
    let floor = 1e-12;
    for (i, name) in names.iter().enumerate() {
        let (r, s, f, h) = (
            rev.grads.to_array()[i],
            stored.to_array()[i],
            fd.grads.to_array()[i],
            fd.steps.to_array()[i],
        );
        let (es, ef) = (relative_error(r, s, floor), relative_error(r, f, floor));
        if es > STORED_TOLERANCE || es.is_nan() {
            failures.push(format!(
                "d_{name}: reversal and stored trajectory differ by {es:e} (relative)"
            ));
        }
        if ef > args.tolerance || ef.is_nan() {
            failures.push(format!(
                "d_{name}: reversal and finite differences differ by {ef:e} (relative), tolerance {:e}",
                args.tolerance
            ));
        }
        rows.push(vec![
            name.to_string(),
            format!("{r:e}"),
            format!("{s:e}"),
            format!("{f:e}"),
            format!("{h:e}"),
            format!("{es:.1e}"),
            format!("{ef:.1e}"),
        ]);
    }
    let mut text = render(&rows);
    text += &format!(
        "effective gamma {} (γ finite differences step {} quanta of 2^-16); val_loss {}; reversal {}\n",
        fd.effective_gamma,
        crate::hypergrad::finite_diff::GAMMA_QUANTA,
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
