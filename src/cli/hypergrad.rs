//! `revgrad hypergrad CONFIG [--json] [--quiet]`: one exact forward run, one exact reversal,
//! with a progress bar over their steps.

use std::path::PathBuf;

use crate::error::Result;
use crate::hyper::Hypers;
use crate::hypergrad::reverse::{Hypergradient, hypergradient};
use crate::model::Threads;
use crate::problem::Experiment;
use crate::report::progress::Progress;
use crate::report::rows::HypergradJson;
use crate::report::sink::Output;
use crate::report::table::{num, render};

/// Arguments of `revgrad hypergrad`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment config (JSON).
    pub config: PathBuf,
    /// Print JSON (SPEC §4.3) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// One table row per block and group: the group's mean value (over knots or weights) and
/// its summed hypergradient.
fn block_rows(hypers: &Hypers, h: &Hypergradient) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "hyperparameter".into(),
        "group".into(),
        "entries".into(),
        "value (mean)".into(),
        "d val_loss (sum)".into(),
    ]];
    for (b, g) in hypers.blocks.iter().zip(&h.grads.blocks) {
        for (i, group) in b.groups().iter().enumerate() {
            let e = b.group_entries(i);
            let mean = e.iter().map(|&e| b.values[e]).sum::<f64>() / e.len() as f64;
            let mut value = num(mean);
            if let Some(eff) = h.effective.iter().find(|e| e.kind() == b.kind())
                && b.is_scalar()
            {
                value += &format!(" (effective {})", eff.values[0]);
            }
            rows.push(vec![
                b.kind().name().into(),
                group.name.clone(),
                e.len().to_string(),
                value,
                num(e.iter().map(|&e| g.values[e]).sum()),
            ]);
        }
    }
    rows
}

/// Run `revgrad hypergrad`.
///
/// # Errors
/// Config and data errors (exit 2); divergence or overflow (exit 1).
pub fn run(args: Args, threads: &Threads) -> Result<()> {
    let exp = Experiment::load(&args.config)?.with_threads(threads.clone());
    // A closed stdout fails now, not after the runs.
    crate::cli::outputs::check_outputs(&exp.config, None, &[])?;
    exp.require_reversible()?;
    let mut run = exp.prepare()?;
    let bar = Progress::phases(args.quiet);
    run.ctx.progress = bar.steps();
    let hypers = run.hypers.clone();
    let h = hypergradient(&mut run.problem, run.ctx.setup(&hypers))?;
    bar.clear();
    let text = if args.json {
        let report = HypergradJson::new(&h, &hypers, &run.ctx.layout);
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        let mut t = render(&block_rows(&hypers, &h));
        t += &format!(
            "\ntrain_loss {}  val_loss {}  val_accuracy {}",
            num(h.train_loss),
            num(h.val_loss),
            num(h.val_accuracy)
        );
        if let Some((l, a)) = h.test {
            t += &format!("  test_loss {}  test_accuracy {}", num(l), num(a));
        }
        t += &format!(
            "\nreversal {}: theta0_error {}\ninformation buffer: {} bytes, {:.4} bits/param/step \
             (floor Σ log2(d/n_t)/T = {:.4}; the 8-byte coder state per parameter dominates short runs)\n\
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
