//! `revgrad hypergrad CONFIG [--json]`: one exact forward run, one exact reversal.

use std::path::PathBuf;

use crate::error::Result;
use crate::hypergrad::reverse::hypergradient;
use crate::problem::Experiment;
use crate::report::rows::HypergradJson;
use crate::report::sink::Output;
use crate::report::table::{num, render};

/// Arguments of `revgrad hypergrad`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Print JSON (SPEC §4) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `revgrad hypergrad`.
///
/// # Errors
/// Config and data errors (exit 2); divergence or overflow (exit 1).
pub fn run(args: Args) -> Result<()> {
    let exp = Experiment::load(&args.config)?;
    exp.require_momentum()?;
    let mut problem = exp.problem();
    let eps = exp.init_noise(problem.layout())?;
    let h = hypergradient(&mut problem, &eps, exp.hyperparams(), exp.steps())?;
    let report = HypergradJson::from(&h);
    let text = if args.json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        let g = h.grads;
        let hp = h.hyper;
        let mut t = render(&[
            vec![
                "hyperparameter".into(),
                "value".into(),
                "d val_loss / d value".into(),
            ],
            vec!["alpha".into(), num(hp.alpha), num(g.alpha)],
            vec![
                "gamma".into(),
                format!("{} (effective {})", num(hp.gamma), h.effective_gamma),
                num(g.gamma),
            ],
            vec!["l2".into(), num(hp.l2), num(g.l2)],
            vec!["init_scale".into(), num(hp.init_scale), num(g.init_scale)],
        ]);
        t += &format!(
            "\ntrain_loss {}  val_loss {}  val_accuracy {}\n",
            num(h.train_loss),
            num(h.val_loss),
            num(h.val_accuracy)
        );
        t += &format!(
            "reversal {}: theta0_error {}\ninformation buffer: {} bytes, {:.4} bits/param/step \
             (floor log2(d/n) = {:.4}; the 8-byte coder state per parameter dominates short runs)\n\
             a stored trajectory would take {} bytes ({:.0}x)\n",
            if h.exact { "exact" } else { "NOT exact" },
            h.theta0_error,
            h.info_buffer_bytes,
            h.info_bits_per_param_step,
            h.info_floor_bits,
            h.store_all_bytes,
            h.store_all_bytes as f64 / h.info_buffer_bytes.max(1) as f64,
        );
        t += &format!(
            "seconds: forward {:.3}, reverse {:.3}\n",
            h.forward_seconds, h.reverse_seconds
        );
        t
    };
    Output::open(None)?.write_all(&text)
}
