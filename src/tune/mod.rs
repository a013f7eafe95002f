//! # The outer loop: meta-gradient descent on the validation loss
//!
//! Each outer iteration runs the inner training exactly, reverses it for the
//! hypergradients of every block (see [`crate::hypergrad`]) and moves the entries of the
//! blocks listed in `outer.tune` — one flat vector in warped coordinates ([`adam`]):
//!
//! ```text
//! u = warp(h)      ∂f/∂u = ∂f/∂h · J(h)      u ← u + Δ(∂f/∂u)      h = unwarp(u)
//! ```
//!
//! The seed, initial noise and batch order never change, so the validation loss is a
//! deterministic function of the hyperparameters.
//!
//! A diverging or overflowing inner run (or a non-finite hypergradient) rejects the step:
//! the iteration is reported with status `rejected`, the outer learning rate is halved for
//! the steps to come, and the retry from the last good point is half the step just rejected
//! — never the same step, even when the chaos guard clipped it.
//! After [`MAX_CONSECUTIVE_REJECTIONS`] in a row the search stops
//! ([`StopReason::TooManyRejections`]).
//!
//! The tuner knows nothing of CSV, JSON or terminals: it reports [`Iteration`]s to an
//! [`Observer`], and `report` turns them into rows.

pub mod adam;
pub mod observer;
pub mod search;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::OuterConfig;
use crate::error::Result;
use crate::hyper::{Hypers, Kind};
use crate::hypergrad::Setup;
use crate::hypergrad::reverse::{Hypergradient, hypergradient};
use crate::model::{Evaluate, Layout, Objective, RowTangents, Threads};
use adam::OuterOptimizerState;
pub use observer::Observer;

/// Rejections in a row after which the search gives up.
pub const MAX_CONSECUTIVE_REJECTIONS: usize = 10;

/// Why the outer loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All `outer.steps` iterations ran (or all trials, for a search).
    StepsDone,
    /// The time budget ran out (search).
    TimeUp,
    /// Interrupted (Ctrl-C or SIGTERM) between iterations.
    Interrupted,
    /// Too many rejected steps in a row.
    TooManyRejections,
}

impl StopReason {
    /// For people.
    pub fn text(self) -> &'static str {
        match self {
            StopReason::StepsDone => "all steps done",
            StopReason::TimeUp => "time budget used",
            StopReason::Interrupted => "interrupted",
            StopReason::TooManyRejections => "stopped after too many rejected steps in a row",
        }
    }
}

/// The losses and hypergradients of one evaluated point.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Mean training cross-entropy at θ_T.
    pub train_loss: f64,
    /// Validation loss at θ_T.
    pub val_loss: f64,
    /// Validation accuracy at θ_T.
    pub val_accuracy: f64,
    /// Test loss and accuracy at θ_T, with a test set.
    pub test: Option<(f64, f64)>,
    /// Hypergradients of every block (`None` for a search, which has none).
    pub grads: Option<Hypers>,
}

impl From<Hypergradient> for Evaluation {
    fn from(h: Hypergradient) -> Self {
        Evaluation {
            train_loss: h.train_loss,
            val_loss: h.val_loss,
            val_accuracy: h.val_accuracy,
            test: h.test,
            grads: Some(h.grads),
        }
    }
}

/// One outer iteration (or search trial): the point tried and what came of it.
#[derive(Debug, Clone)]
pub struct Iteration {
    /// 0 = the starting point.
    pub iteration: usize,
    /// Every block at this point.
    pub hypers: Hypers,
    /// `None` for a rejected (diverged) point.
    pub result: Option<Evaluation>,
    /// Wall time since the start, seconds.
    pub seconds: f64,
}

impl Iteration {
    /// Validation loss, `+∞` for a rejected point (so any accepted point is better).
    pub fn val_loss(&self) -> f64 {
        self.result.as_ref().map_or(f64::INFINITY, |r| r.val_loss)
    }
}

/// What the tuner found.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Why it stopped.
    pub stop: StopReason,
    /// Iteration 0.
    pub start: Iteration,
    /// The iteration with the lowest validation loss.
    pub best: Iteration,
    /// Iterations reported (including iteration 0).
    pub rows: usize,
    /// Rejected outer steps.
    pub rejected: usize,
    /// Outer steps whose move was clipped by the chaos guard.
    pub clipped: usize,
    /// Outer learning rate at the end (halved once per rejection); `None` for a search,
    /// which has none.
    pub final_learning_rate: Option<f64>,
}

/// Everything a tune needs besides the objective.
#[derive(Debug, Clone, Copy)]
pub struct Tune<'a> {
    /// The inner optimizer.
    pub optimizer: crate::hyper::OptimizerId,
    /// The parameter layout.
    pub layout: &'a Layout,
    /// Initial-weight noise ε.
    pub eps: &'a [f64],
    /// Inner steps T.
    pub steps: usize,
    /// The outer loop's settings (`tune` lists the blocks that move).
    pub outer: &'a OuterConfig,
    /// The threads the inner runs compute on.
    pub threads: &'a Threads,
}

impl Tune<'_> {
    /// The hypergradient setup at `hypers`.
    pub fn setup<'s>(&'s self, hypers: &'s Hypers) -> Setup<'s> {
        Setup {
            optimizer: self.optimizer,
            hypers,
            eps: self.eps,
            layout: self.layout,
            steps: self.steps,
            threads: self.threads,
        }
    }
}

/// One evaluation: `Ok(None)` for a rejected (diverged) point.
fn evaluate(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<Option<Evaluation>> {
    match hypergradient(obj, setup) {
        // hypergradient() already reports a non-finite loss or hypergradient as divergence.
        Ok(r) => Ok(Some(r.into())),
        Err(e) if e.is_divergence() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The tuned entries as one flat vector of warped coordinates.
fn warped(h: &Hypers, tuned: &[Kind]) -> Vec<f64> {
    tuned
        .iter()
        .flat_map(|&k| h.get(k).values.iter().map(move |&v| k.warp(v)))
        .collect()
}

/// ∂f/∂u for the tuned entries, flat.
fn warped_gradient(h: &Hypers, g: &Hypers, tuned: &[Kind]) -> Vec<f64> {
    tuned
        .iter()
        .flat_map(|&k| {
            let (v, d) = (&h.get(k).values, &g.get(k).values);
            v.iter().zip(d).map(move |(&v, &d)| d * k.jacobian(v))
        })
        .collect()
}

/// The point `unwarp(u)` for the tuned entries, every other entry as in `h`.
fn unwarped(h: &Hypers, u: &[f64], tuned: &[Kind]) -> Hypers {
    let mut out = h.clone();
    let mut it = u.iter();
    for &k in tuned {
        for v in &mut out.get_mut(k).values {
            *v = k.unwarp(*it.next().expect("one coordinate per tuned entry"));
        }
    }
    out
}

/// Run the outer loop from `start` for `outer.steps` iterations.
///
/// # Errors
/// The starting point's own failure (there is no good point to fall back to), or an
/// observer's error (e.g. the output file became unwritable).
pub fn run(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    cfg: Tune,
    start: Hypers,
    observer: &mut dyn Observer,
    interrupt: &AtomicBool,
) -> Result<Summary> {
    let clock = Instant::now();
    let outer = cfg.outer;
    observer.on_start(outer.steps.saturating_add(1))?;
    let first: Evaluation = hypergradient(obj, cfg.setup(&start))?.into();
    let start_it = Iteration {
        iteration: 0,
        hypers: start.clone(),
        result: Some(first.clone()),
        seconds: clock.elapsed().as_secs_f64(),
    };
    let mut best = start_it.clone();
    observer.on_iteration(&start_it, &best)?;

    let tuned = &outer.tune;
    let mut good_h = start;
    let mut good = first;
    let mut good_opt = OuterOptimizerState::new(outer.optimizer, warped(&good_h, tuned).len());
    let mut lr = outer.learning_rate;
    let (mut rejected, mut clipped, mut in_a_row) = (0, 0, 0);
    let mut rejected_delta: Option<Vec<f64>> = None;
    let mut rows = 1;
    let mut stop = StopReason::StepsDone;
    for k in 1..=outer.steps {
        if interrupt.load(Ordering::SeqCst) {
            stop = StopReason::Interrupted;
            break;
        }
        let grads = good
            .grads
            .as_ref()
            .expect("tune evaluations carry hypergradients");
        let grad_u = warped_gradient(&good_h, grads, tuned);
        let mut opt = good_opt.clone();
        let step = opt.step(&grad_u, lr);
        // A retry halves the step just rejected (the optimizer's own proposal may be the
        // same clipped step again).
        let delta = match rejected_delta.take() {
            Some(d) => d.iter().map(|d: &f64| 0.5 * d).collect(),
            None => {
                clipped += usize::from(step.clipped);
                step.delta
            }
        };
        let u: Vec<f64> = warped(&good_h, tuned)
            .iter()
            .zip(&delta)
            .map(|(u, d)| u + d)
            .collect();
        let h = unwarped(&good_h, &u, tuned);
        let result = evaluate(obj, cfg.setup(&h))?;
        let it = Iteration {
            iteration: k,
            hypers: h,
            result,
            seconds: clock.elapsed().as_secs_f64(),
        };
        rows += 1;
        match &it.result {
            Some(res) => {
                in_a_row = 0;
                if res.val_loss < best.val_loss() {
                    best = it.clone();
                }
                good_h = it.hypers.clone();
                good = res.clone();
                good_opt = opt;
                observer.on_iteration(&it, &best)?;
            }
            None => {
                rejected += 1;
                in_a_row += 1;
                lr *= 0.5;
                rejected_delta = Some(delta);
                observer.on_iteration(&it, &best)?;
                if in_a_row >= MAX_CONSECUTIVE_REJECTIONS {
                    stop = StopReason::TooManyRejections;
                    break;
                }
            }
        }
    }
    let summary = Summary {
        stop,
        start: start_it,
        best,
        rows,
        rejected,
        clipped,
        final_learning_rate: Some(lr),
    };
    observer.on_finish(&summary)?;
    Ok(summary)
}
