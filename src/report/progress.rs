//! # Progress bar on stderr
//!
//! An indicatif bar over the outer iterations of `tune` and `search`, redrawn five times a
//! second so that it moves during a long inner run:
//!
//! ```text
//! ████████░░░░░░░░░░░░ 12/31 iterations · reverse 8200/20000 · ETA 41s · best 0.4123
//! ```
//!
//! The iterations done; the phase of the inner run under way (a hypergradient's exact
//! `forward` run and its `reverse`, a search trial's `train`), its steps, and the time it
//! has left at its own rate so far; the best validation loss. The steps are read from a
//! [`StepProgress`] counter that the runs tick ([`Progress::steps`]).
//!
//! `hypergrad`, `check-grad` and `train` run no outer loop; their bar
//! ([`Progress::phases`]) shows the phase alone, filled by its steps:
//! `forward 8200/20000 · ETA 41s`.
//!
//! Hidden with `--quiet` or when stderr is not a terminal; a hidden bar hands out no
//! counter, so nothing is ticked.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::error::Result;
use crate::runtime::{Phase, StepProgress, StepSnapshot};
use crate::tune::{Iteration, Observer, State, Summary};

/// How often the bar is redrawn, whether or not anything was reported.
const REDRAW: Duration = Duration::from_millis(200);

/// The progress bar of a long-running command.
pub struct Progress {
    bar: ProgressBar,
    /// The inner runs' step counter, when the bar is shown.
    steps: Option<StepProgress>,
    /// The best validation loss so far, as f64 bits (NaN before the first row), shared
    /// with the bar's redraws.
    best: Arc<AtomicU64>,
}

impl Progress {
    /// A bar over outer iterations, or a hidden one if `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Self {
        Self::build(quiet, true)
    }

    /// A bar over the phases of single inner runs (no outer iterations), or a hidden one if
    /// `quiet` or stderr is not a terminal.
    pub fn phases(quiet: bool) -> Self {
        Self::build(quiet, false)
    }

    fn build(quiet: bool, outer: bool) -> Self {
        let best = Arc::new(AtomicU64::new(f64::NAN.to_bits()));
        if quiet || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
                steps: None,
                best,
            };
        }
        let steps = StepProgress::new();
        let bar = ProgressBar::new(0);
        let (counter, shown) = (steps.clone(), Arc::clone(&best));
        let inner_steps = counter.clone();
        let text = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let best = Some(f64::from_bits(shown.load(Relaxed))).filter(|b| b.is_finite());
            let inner = counter.snapshot();
            let done = outer.then(|| (state.pos(), state.len().unwrap_or(0)));
            let _ = w.write_str(&status(done, &inner, best));
        };
        // Without outer iterations, the bar fills with the phase's steps.
        let fill = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let s = inner_steps.snapshot();
            let filled = (20 * s.done).checked_div(s.total).unwrap_or(0);
            let _ = write!(w, "{}{}", "█".repeat(filled), "░".repeat(20 - filled));
        };
        let template = if outer {
            "{bar:20} {status}"
        } else {
            "{fill} {status}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.with_key("status", text).with_key("fill", fill));
        }
        bar.enable_steady_tick(REDRAW);
        Progress {
            bar,
            steps: Some(steps),
            best,
        }
    }

    /// The counter the bar reads the inner steps from, for the runs to tick; `None` when
    /// the bar is hidden.
    pub fn steps(&self) -> Option<StepProgress> {
        self.steps.clone()
    }

    /// Clears the bar (a command without an outer loop, once its runs are done).
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }

    /// Print a line above the bar (or plainly when hidden).
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            crate::note!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

/// A bar dropped on an error is cleared, so the message is not printed under it.
impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

impl Progress {
    /// Shows `best`'s validation loss from the next redraw on (a rejected point has none).
    fn show_best(&self, best: &Iteration) {
        let loss = best.val_loss();
        if loss.is_finite() {
            self.best.store(loss.to_bits(), Relaxed);
        }
    }
}

impl Observer for Progress {
    fn on_start(&mut self, total: usize) -> Result<()> {
        self.bar.set_length(total as u64);
        Ok(())
    }

    fn on_resume(&mut self, state: &State) -> Result<()> {
        self.show_best(&state.best);
        self.bar.set_position(state.rows as u64);
        Ok(())
    }

    fn on_rejected(&mut self, k: usize, why: &str) -> Result<()> {
        self.println(&format!("iteration {k} rejected: {why}"));
        Ok(())
    }

    fn on_iteration(&mut self, _it: &Iteration, best: &Iteration) -> Result<()> {
        self.show_best(best);
        self.bar.inc(1);
        Ok(())
    }

    fn on_finish(&mut self, _summary: &Summary) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}

/// The bar's text: `done` of `total` outer iterations, when there is an outer loop; the
/// phase of the inner run under way, its steps and its ETA at the phase's own rate (the
/// phase once begun, the ETA once a step is done); the best validation loss, once there is
/// one. Parts are joined by ` · `.
pub fn status(outer: Option<(u64, u64)>, inner: &StepSnapshot, best: Option<f64>) -> String {
    let mut parts = Vec::with_capacity(4);
    if let Some((done, total)) = outer {
        parts.push(format!("{done}/{total} iterations"));
    }
    if inner.phase != Phase::Idle {
        let (name, done, total) = (inner.phase.name(), inner.done, inner.total);
        parts.push(format!("{name} {done}/{total}"));
        if let Some(eta) = inner.eta() {
            parts.push(format!("ETA {}", duration(eta)));
        }
    }
    if let Some(b) = best {
        parts.push(format!("best {b:.4}"));
    }
    parts.join(" · ")
}

/// A duration for people, to the nearest second: `41s`, `3m 05s`, `1h 02m`.
fn duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(phase: Phase, done: usize, total: usize, seconds: f64) -> StepSnapshot {
        StepSnapshot {
            phase,
            done,
            total,
            elapsed: Duration::from_secs_f64(seconds),
        }
    }

    #[test]
    fn the_status_shows_iterations_phase_eta_and_best() {
        // 8,200 steps in 28.5 s, 11,800 to go at that rate: 41 s.
        let inner = at(Phase::Reverse, 8_200, 20_000, 28.5);
        assert_eq!(
            status(Some((12, 31)), &inner, Some(0.41234)),
            "12/31 iterations · reverse 8200/20000 · ETA 41s · best 0.4123"
        );
        let inner = at(Phase::Train, 500, 2_000, 10.0);
        assert_eq!(
            status(Some((3, 21)), &inner, Some(1.5)),
            "3/21 iterations · train 500/2000 · ETA 30s · best 1.5000"
        );
    }

    #[test]
    fn without_an_outer_loop_the_status_is_the_phase() {
        let inner = at(Phase::Reverse, 8_200, 20_000, 28.5);
        assert_eq!(status(None, &inner, None), "reverse 8200/20000 · ETA 41s");
        assert_eq!(status(None, &at(Phase::Idle, 0, 0, 0.0), None), "");
    }

    #[test]
    fn the_status_leaves_out_what_is_not_known_yet() {
        let idle = at(Phase::Idle, 0, 0, 0.0);
        assert_eq!(status(Some((0, 31)), &idle, None), "0/31 iterations");
        let first = at(Phase::Forward, 0, 20_000, 0.5);
        assert_eq!(
            status(Some((0, 31)), &first, None),
            "0/31 iterations · forward 0/20000"
        );
        let done = at(Phase::Forward, 20_000, 20_000, 70.0);
        assert_eq!(
            status(Some((0, 31)), &done, None),
            "0/31 iterations · forward 20000/20000 · ETA 0s"
        );
    }

    #[test]
    fn durations_read_in_seconds_minutes_and_hours() {
        let d = |s: f64| duration(Duration::from_secs_f64(s));
        assert_eq!(d(0.2), "0s");
        assert_eq!(d(41.4), "41s");
        assert_eq!(d(59.6), "1m 00s");
        assert_eq!(d(185.0), "3m 05s");
        assert_eq!(d(3_720.0), "1h 02m");
        assert_eq!(d(100_000.0), "27h 46m");
    }
}
