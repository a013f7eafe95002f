//! # The outer loop: meta-gradient descent on the validation loss
//!
//! Each outer iteration runs the inner training exactly, reverses it for the
//! hypergradients (see [`crate::hypergrad`]) and moves the listed hyperparameters in warped
//! coordinates ([`adam`]). The seed, initial noise and batch order never change, so the
//! validation loss is a deterministic function of the hyperparameters.
//!
//! A diverging or overflowing inner run (or a non-finite hypergradient) rejects the step:
//! the row is logged with status `rejected`, the outer learning rate is halved, and the next
//! step is taken again from the last good point. Rejections never end the run, except that
//! after [`MAX_CONSECUTIVE_REJECTIONS`] in a row the search stops
//! ([`StopReason::TooManyRejections`]).

pub mod adam;
pub mod observer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::OuterConfig;
use crate::error::Result;
use crate::hypergrad::reverse::{Hypergradient, hypergradient};
use crate::model::Objective;
use crate::optim::Hyperparams;
pub use crate::report::rows::{Status, TuneRow};
use adam::{OuterOptimizerState, jacobian, unwarp, warp};
pub use observer::Observer;

/// Rejections in a row after which the search gives up.
pub const MAX_CONSECUTIVE_REJECTIONS: usize = 10;

/// Why the outer loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All `outer.steps` iterations ran.
    StepsDone,
    /// Interrupted (Ctrl-C) between iterations.
    Interrupted,
    /// Too many rejected steps in a row.
    TooManyRejections,
}

impl StopReason {
    /// For people.
    pub fn text(self) -> &'static str {
        match self {
            StopReason::StepsDone => "all outer steps done",
            StopReason::Interrupted => "interrupted",
            StopReason::TooManyRejections => "stopped after too many rejected steps in a row",
        }
    }
}

/// What the tuner found.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Why it stopped.
    pub stop: StopReason,
    /// Iteration 0.
    pub start: TuneRow,
    /// The row with the lowest validation loss.
    pub best: TuneRow,
    /// Rows written (including iteration 0).
    pub rows: usize,
    /// Rejected outer steps.
    pub rejected: usize,
    /// Outer steps whose move was clipped by the chaos guard.
    pub clipped: usize,
    /// Outer learning rate at the end (halved once per rejection).
    pub final_learning_rate: f64,
}

/// Hyperparameters of a row.
pub fn row_hyperparams(row: &TuneRow) -> Hyperparams {
    Hyperparams {
        alpha: row.alpha,
        gamma: row.gamma,
        l2: row.l2,
        init_scale: row.init_scale,
    }
}

fn row(iteration: usize, h: &Hyperparams, result: Option<&Hypergradient>, seconds: f64) -> TuneRow {
    TuneRow {
        iteration,
        alpha: h.alpha,
        gamma: h.gamma,
        l2: h.l2,
        init_scale: h.init_scale,
        train_loss: result.map(|r| r.train_loss),
        val_loss: result.map(|r| r.val_loss),
        val_accuracy: result.map(|r| r.val_accuracy),
        d_alpha: result.map(|r| r.grads.alpha),
        d_gamma: result.map(|r| r.grads.gamma),
        d_l2: result.map(|r| r.grads.l2),
        d_init_scale: result.map(|r| r.grads.init_scale),
        seconds,
        status: if result.is_some() {
            Status::Ok
        } else {
            Status::Rejected
        },
    }
}

/// One evaluation: `Ok(None)` for a rejected (diverged) point.
fn evaluate(
    obj: &mut impl Objective,
    eps: &[f64],
    h: Hyperparams,
    steps: usize,
) -> Result<Option<Hypergradient>> {
    match hypergradient(obj, eps, h, steps) {
        // hypergradient() already reports a non-finite loss or hypergradient as divergence.
        Ok(r) => Ok(Some(r)),
        Err(e) if e.is_divergence() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Run the outer loop from `start` for `outer.steps` iterations.
///
/// # Errors
/// The starting point's own failure (there is no good point to fall back to), or an
/// observer's error (e.g. the output file became unwritable).
pub fn run(
    obj: &mut impl Objective,
    eps: &[f64],
    start: Hyperparams,
    inner_steps: usize,
    outer: &OuterConfig,
    observer: &mut dyn Observer,
    interrupt: &AtomicBool,
) -> Result<Summary> {
    let clock = Instant::now();
    observer.on_start(outer.steps + 1)?;
    let first = hypergradient(obj, eps, start, inner_steps)?;
    let start_row = row(0, &start, Some(&first), clock.elapsed().as_secs_f64());
    let mut best = start_row.clone();
    observer.on_row(&start_row, &best)?;

    let tuned = &outer.tune;
    let mut good_h = start;
    let mut good = first;
    let mut good_opt = OuterOptimizerState::new(outer.optimizer, tuned.len());
    let mut lr = outer.learning_rate;
    let (mut rejected, mut clipped, mut in_a_row) = (0, 0, 0);
    let mut rows = 1;
    let mut stop = StopReason::StepsDone;
    for k in 1..=outer.steps {
        if interrupt.load(Ordering::SeqCst) {
            stop = StopReason::Interrupted;
            break;
        }
        let grad_u: Vec<f64> = tuned
            .iter()
            .map(|&h| good.grads.get(h) * jacobian(h, good_h.get(h)))
            .collect();
        let mut opt = good_opt.clone();
        let step = opt.step(&grad_u, lr);
        clipped += usize::from(step.clipped);
        let mut h = good_h;
        for (&which, d) in tuned.iter().zip(&step.delta) {
            h.set(which, unwarp(which, warp(which, good_h.get(which)) + d));
        }
        let result = evaluate(obj, eps, h, inner_steps)?;
        let r = row(k, &h, result.as_ref(), clock.elapsed().as_secs_f64());
        rows += 1;
        match result {
            Some(res) => {
                in_a_row = 0;
                if r.val_loss < best.val_loss {
                    best = r.clone();
                }
                good_h = h;
                good = res;
                good_opt = opt;
                observer.on_row(&r, &best)?;
            }
            None => {
                rejected += 1;
                in_a_row += 1;
                lr *= 0.5;
                observer.on_row(&r, &best)?;
                if in_a_row >= MAX_CONSECUTIVE_REJECTIONS {
                    stop = StopReason::TooManyRejections;
                    break;
                }
            }
        }
    }
    let summary = Summary {
        stop,
        start: start_row,
        best,
        rows,
        rejected,
        clipped,
        final_learning_rate: lr,
    };
    observer.on_finish(&summary)?;
    Ok(summary)
}
