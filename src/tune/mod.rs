//! # The outer loop: meta-gradient descent on the validation loss
//!
//! Each outer iteration runs the inner training exactly, reverses it for the
//! hypergradients of every block (see [`crate::hypergrad`]) and moves the entries of the
//! blocks listed in `outer.tune` — one flat vector in warped coordinates ([`adam`]), each
//! entry at its block's learning rate and within its block's step limit:
//!
//! ```text
//! u = warp(h)      ∂f/∂u = ∂f/∂h · J(h)      u ← u + Δ(∂f/∂u)      h = unwarp(u)
//! ```
//!
//! With `outer.objective: "maximize"` (poisoning) the loop ascends: the optimizer is given
//! `−∂f/∂u`, and the best row is the one with the highest validation loss.
//!
//! (per entry: [`crate::hyper::Block::warp_at`]; the input block moves its standardised
//! value and is limited to half its box per step, SPEC §2.5). What iteration k trains is
//! the caller's [`Inner`]: the same run every time (the validation loss is then a
//! deterministic function of the hyperparameters), or, with `outer.resample`, a run with
//! its own inner seed.
//!
//! A diverging or overflowing inner run (or a non-finite hypergradient) rejects the step,
//! and so does a point whose exact reversal would need more memory than the limit
//! ([`Inner::too_big`]: a lowered decay keeps more bits per step), before it is run. The
//! observer hears why ([`Observer::on_rejected`]); the iteration is reported with status
//! `rejected`, the outer learning rate is halved for
//! the steps to come, and the retry from the last good point is half the step just rejected
//! — never the same step, even when the chaos guard clipped it.
//! After [`MAX_CONSECUTIVE_REJECTIONS`] in a row the search stops
//! ([`StopReason::TooManyRejections`]).
//!
//! The tuner knows nothing of CSV, JSON or terminals: it reports [`Iteration`]s to an
//! [`Observer`], and `report` turns them into rows.

pub mod adam;
pub mod checkpoint;
pub mod observer;
pub mod search;
pub mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::{OuterConfig, OuterObjective};
use crate::error::Result;
use crate::hyper::{Block, Hypers, Kind};
use crate::hypergrad::Setup;
use crate::hypergrad::reverse::{Hypergradient, hypergradient};
use crate::model::{Evaluate, Objective, RowTangents};
use adam::OuterOptimizerState;
pub use observer::Observer;
pub use state::{Descent, State};

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

    /// True if this point is better than `other` for `objective` (an accepted point beats a
    /// rejected one whichever the direction).
    pub fn better_than(&self, other: &Iteration, objective: OuterObjective) -> bool {
        match (&self.result, &other.result) {
            (Some(a), Some(b)) => objective.better(a.val_loss, b.val_loss),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What the tuner found.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Why it stopped.
    pub stop: StopReason,
    /// Iteration 0.
    pub start: Iteration,
    /// The iteration with the lowest validation loss (the highest when the objective is
    /// `maximize`).
    pub best: Iteration,
    /// Iterations reported (including iteration 0).
    pub rows: usize,
    /// Rejected outer steps.
    pub rejected: usize,
    /// Outer steps whose move was clipped by the chaos guard.
    pub clipped: usize,
    /// What every block's outer learning rate is multiplied by at the end (halved once per
    /// rejection); `None` for a search, which has none.
    pub learning_rate_scale: Option<f64>,
}

/// The inner training the outer loops run: iteration `k`'s objective and setup at a
/// point (0 = the starting point): the same run every time, or each iteration with its own
/// inner seed (`outer.resample`; [`crate::problem::Runs`] does both).
pub trait Inner {
    /// The training oracle.
    type Obj: Objective + Evaluate + RowTangents;
    /// The objective and setup of iteration `k` at `hypers`.
    ///
    /// # Errors
    /// A failure to build iteration k's run (e.g. its initial weights).
    fn at<'s>(&'s mut self, k: usize, hypers: &'s Hypers)
    -> Result<(&'s mut Self::Obj, Setup<'s>)>;

    /// Why an exact reversal at `hypers` would need more memory than the limit, or `None`
    /// when it fits. A decay the tuner lowers stores more bits per step, so a point can
    /// outgrow the limit the starting point was checked against.
    ///
    /// # Errors
    /// A limit that cannot be read.
    fn too_big(&self, hypers: &Hypers) -> Result<Option<String>> {
        let _ = hypers;
        Ok(None)
    }
}

/// One evaluation: `Ok(Err(why))` for a rejected point, one whose inner run diverged or
/// overflowed or would not fit the memory limit.
fn evaluate(
    inner: &mut impl Inner,
    k: usize,
    hypers: &Hypers,
) -> Result<std::result::Result<Evaluation, String>> {
    if let Some(why) = inner.too_big(hypers)? {
        return Ok(Err(why));
    }
    let (obj, setup) = inner.at(k, hypers)?;
    match hypergradient(obj, setup) {
        // hypergradient() already reports a non-finite loss or hypergradient as divergence.
        Ok(r) => Ok(Ok(r.into())),
        Err(e) if e.is_divergence() => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The tuned entries of `h` as one flat vector, `f(block, entry, value)` each.
fn per_entry(h: &Hypers, tuned: &[Kind], f: impl Fn(&Block, usize, f64) -> f64) -> Vec<f64> {
    tuned
        .iter()
        .flat_map(|&k| {
            let b = h.get(k);
            b.values
                .iter()
                .enumerate()
                .map(|(e, &v)| f(b, e, v))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How many coordinates the outer optimizer moves: the entries of the tuned blocks.
pub fn tuned_len(h: &Hypers, tuned: &[Kind]) -> usize {
    tuned.iter().map(|&k| h.get(k).len()).sum()
}

/// The tuned entries as one flat vector of warped coordinates.
fn warped(h: &Hypers, tuned: &[Kind]) -> Vec<f64> {
    per_entry(h, tuned, |b, e, v| b.warp_at(e, v))
}

/// ∂f/∂u for the tuned entries, flat.
fn warped_gradient(h: &Hypers, g: &Hypers, tuned: &[Kind]) -> Vec<f64> {
    let mut grads = tuned.iter().flat_map(|&k| g.get(k).values.iter());
    let mut out = per_entry(h, tuned, |b, e, v| b.jacobian_at(e, v));
    for j in &mut out {
        *j *= grads.next().expect("same shapes");
    }
    out
}

/// The point `unwarp(u)` for the tuned entries, every other entry as in `h`.
fn unwarped(h: &Hypers, u: &[f64], tuned: &[Kind]) -> Hypers {
    let mut out = h.clone();
    let mut it = u.iter();
    for &k in tuned {
        let b = out.get_mut(k);
        for e in 0..b.values.len() {
            let u = *it.next().expect("one coordinate per tuned entry");
            b.values[e] = b.unwarp_at(e, u);
        }
    }
    out
}

/// Per tuned entry: the outer learning rate of its block, and the largest move of its
/// coordinate in one step (half the box for the input block, [`adam::MAX_STEP`] otherwise).
fn rates_and_limits(h: &Hypers, outer: &OuterConfig) -> (Vec<f64>, Vec<f64>) {
    let rates = per_entry(h, &outer.tune, |b, _, _| outer.learning_rate.of(b.kind()));
    let limits = per_entry(h, &outer.tune, |b, e, _| {
        b.box_width_at(e).map_or(adam::MAX_STEP, |w| 0.5 * w)
    });
    (rates, limits)
}

/// Where an outer loop starts: at the configured point, or where a saved state left off.
#[derive(Debug, Clone)]
pub enum Begin {
    /// Evaluate these blocks as iteration 0.
    Fresh(Hypers),
    /// Continue after the state's last iteration (see [`state`]).
    Resume(Box<State>),
}

impl State {
    /// Why a loop whose state this is would stop before its next iteration, if it would:
    /// all of its `steps` iterations are done, or too many were rejected in a row.
    pub fn finished(&self, steps: usize) -> Option<StopReason> {
        if self.in_a_row >= MAX_CONSECUTIVE_REJECTIONS {
            Some(StopReason::TooManyRejections)
        } else if self.done >= steps {
            Some(StopReason::StepsDone)
        } else {
            None
        }
    }

    /// What the loop found so far, stopped for `stop`.
    fn summary(self, stop: StopReason) -> Summary {
        Summary {
            stop,
            learning_rate_scale: self.descent.as_ref().map(|d| d.lr_scale),
            start: self.start,
            best: self.best,
            rows: self.rows,
            rejected: self.rejected,
            clipped: self.clipped,
        }
    }
}

/// A wall clock that continues a resumed loop's time.
struct Clock {
    since: Instant,
    before: f64,
}

impl Clock {
    fn continuing(before: f64) -> Self {
        Clock {
            since: Instant::now(),
            before,
        }
    }

    fn seconds(&self) -> f64 {
        self.before + self.since.elapsed().as_secs_f64()
    }
}

/// Run the outer loop for `outer.steps` iterations: from the starting blocks, or on from a
/// saved state. The observer sees every iteration ([`Observer::on_iteration`]) and the
/// loop's state after it ([`Observer::on_state`]); a resumed loop reports the state it
/// starts from first ([`Observer::on_resume`]).
///
/// # Errors
/// The starting point's own failure (there is no good point to fall back to), or an
/// observer's error (e.g. the output file became unwritable).
pub fn run(
    inner: &mut impl Inner,
    outer: &OuterConfig,
    begin: Begin,
    observer: &mut dyn Observer,
    interrupt: &AtomicBool,
) -> Result<Summary> {
    observer.on_start(outer.steps.saturating_add(1))?;
    let (mut st, clock) = match begin {
        Begin::Fresh(start) => {
            let clock = Clock::continuing(0.0);
            let first: Evaluation = {
                let (obj, setup) = inner.at(0, &start)?;
                hypergradient(obj, setup)?.into()
            };
            let dim = tuned_len(&start, &outer.tune);
            let start_it = Iteration {
                iteration: 0,
                hypers: start,
                result: Some(first),
                seconds: clock.seconds(),
            };
            let optimizer = OuterOptimizerState::new(outer.optimizer, dim);
            let st = State::starting(start_it, Some(optimizer));
            observer.on_iteration(&st.start, &st.best)?;
            observer.on_state(&st)?;
            (st, clock)
        }
        Begin::Resume(st) => {
            observer.on_resume(&st)?;
            let clock = Clock::continuing(st.seconds);
            (*st, clock)
        }
    };
    let tuned = &outer.tune;
    let (rates, limits) = rates_and_limits(&st.start.hypers, outer);
    let mut stop = st.finished(outer.steps).unwrap_or(StopReason::StepsDone);
    for k in st.done + 1..=outer.steps {
        if st.in_a_row >= MAX_CONSECUTIVE_REJECTIONS {
            break;
        }
        if interrupt.load(Ordering::SeqCst) {
            stop = StopReason::Interrupted;
            break;
        }
        let d = st
            .descent
            .as_mut()
            .expect("a descent's state carries its descent");
        let good_h = &d.good.hypers;
        let grads = d
            .good
            .result
            .as_ref()
            .and_then(|r| r.grads.as_ref())
            .expect("tune evaluations carry hypergradients");
        let mut grad_u = warped_gradient(good_h, grads, tuned);
        if outer.objective == OuterObjective::Maximize {
            // Ascend: the optimizer descends −f.
            for g in &mut grad_u {
                *g = -*g;
            }
        }
        let mut opt = d.optimizer.clone();
        let lr: Vec<f64> = rates.iter().map(|r| r * d.lr_scale).collect();
        let step = opt.step(&grad_u, &lr, &limits);
        // A retry halves the step just rejected (the optimizer's own proposal may be the
        // same clipped step again).
        let delta = match d.rejected_delta.take() {
            Some(d) => d.iter().map(|d: &f64| 0.5 * d).collect(),
            None => {
                st.clipped += usize::from(step.clipped);
                step.delta
            }
        };
        let u: Vec<f64> = warped(good_h, tuned)
            .iter()
            .zip(&delta)
            .map(|(u, d)| u + d)
            .collect();
        let h = unwarped(good_h, &u, tuned);
        let result = match evaluate(inner, k, &h)? {
            Ok(r) => Some(r),
            Err(why) => {
                observer.on_rejected(k, &why)?;
                None
            }
        };
        let it = Iteration {
            iteration: k,
            hypers: h,
            result,
            seconds: clock.seconds(),
        };
        st.done = k;
        st.rows += 1;
        st.seconds = it.seconds;
        let d = st.descent.as_mut().expect("checked above");
        if it.result.is_some() {
            st.in_a_row = 0;
            if it.better_than(&st.best, outer.objective) {
                st.best = it.clone();
            }
            d.good = it.clone();
            d.optimizer = opt;
        } else {
            st.rejected += 1;
            st.in_a_row += 1;
            d.lr_scale *= 0.5;
            d.rejected_delta = Some(delta);
            if st.in_a_row >= MAX_CONSECUTIVE_REJECTIONS {
                stop = StopReason::TooManyRejections;
            }
        }
        observer.on_iteration(&it, &st.best)?;
        observer.on_state(&st)?;
    }
    let summary = st.summary(stop);
    observer.on_finish(&summary)?;
    Ok(summary)
}
