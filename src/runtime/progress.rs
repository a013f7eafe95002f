//! # How far a long inner run has come, for a progress bar on another thread
//!
//! [`StepProgress`] is a handle, shared by its clones, on four counters: the phase a run is
//! in ([`Phase`]: float training, the exact forward run, its reversal), the steps of that
//! phase done, the steps it has in all, and when it began. The loop that runs a phase calls
//! [`StepProgress::begin`] once and [`StepProgress::tick`] after each step: one relaxed
//! atomic store, no lock, no allocation. A reader (the progress bar's redraw thread) takes a
//! [`StepSnapshot`] whenever it likes. A run without a bar gets no handle and ticks nothing.
//!
//! The counters are read one at a time, so a snapshot taken just as a phase begins may mix
//! the two phases' values; [`StepProgress::snapshot`] clamps the steps done to the total.
//! Nothing computed ever reads them: results are the same bits with or without a handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What an inner run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing begun yet.
    Idle,
    /// Training to θ_T, without a reversal to follow (float64, e.g. a search trial).
    Train,
    /// The exact forward run of a hypergradient.
    Forward,
    /// Its reversal: undoing the steps while the adjoints run backwards.
    Reverse,
}

impl Phase {
    /// For people: `train`, `forward`, `reverse` (`idle` before any).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Train => "train",
            Phase::Forward => "forward",
            Phase::Reverse => "reverse",
        }
    }

    /// Every phase, in discriminant order.
    const ALL: [Phase; 4] = [Phase::Idle, Phase::Train, Phase::Forward, Phase::Reverse];
}

/// A shared step counter: clones count on the same counters.
#[derive(Debug, Clone)]
pub struct StepProgress(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    /// The instant `began` counts from.
    origin: Instant,
    /// The [`Phase`], as its discriminant (its index in [`Phase::ALL`]).
    phase: AtomicU8,
    /// Steps of the phase done.
    done: AtomicUsize,
    /// Steps of the phase in all.
    total: AtomicUsize,
    /// When the phase began, nanoseconds after `origin`.
    began: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSnapshot {
    /// The phase.
    pub phase: Phase,
    /// Its steps done (at most `total`).
    pub done: usize,
    /// Its steps in all.
    pub total: usize,
    /// Time since it began.
    pub elapsed: Duration,
}

impl StepSnapshot {
    /// Time to the end of the phase at the rate of its steps so far; `None` before its
    /// first step.
    pub fn eta(&self) -> Option<Duration> {
        if self.done == 0 {
            return None;
        }
        let left = (self.total - self.done) as f64 / self.done as f64;
        Some(self.elapsed.mul_f64(left))
    }
}

impl Default for StepProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl StepProgress {
    /// A counter in [`Phase::Idle`].
    pub fn new() -> Self {
        StepProgress(Arc::new(Counters {
            origin: Instant::now(),
            phase: AtomicU8::new(0),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            began: AtomicU64::new(0),
        }))
    }

    /// `phase` begins now, with `total` steps to do.
    pub fn begin(&self, phase: Phase, total: usize) {
        let c = &*self.0;
        let now = u64::try_from(c.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        c.done.store(0, Relaxed);
        c.total.store(total, Relaxed);
        c.began.store(now, Relaxed);
        c.phase.store(phase as u8, Relaxed);
    }

    /// `done` steps of the phase are done.
    #[inline]
    pub fn tick(&self, done: usize) {
        self.0.done.store(done, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StepSnapshot {
        let c = &*self.0;
        let phase = Phase::ALL[usize::from(c.phase.load(Relaxed)).min(Phase::ALL.len() - 1)];
        let total = c.total.load(Relaxed);
        let done = c.done.load(Relaxed).min(total);
        let began = Duration::from_nanos(c.began.load(Relaxed));
        StepSnapshot {
            phase,
            done,
            total,
            elapsed: c.origin.elapsed().saturating_sub(began),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_from_zero_and_clones_share_the_counters() {
        let p = StepProgress::new();
        assert_eq!(p.snapshot().phase, Phase::Idle);
        let reader = p.clone();
        p.begin(Phase::Forward, 10);
        p.tick(3);
        let s = reader.snapshot();
        assert_eq!((s.phase, s.done, s.total), (Phase::Forward, 3, 10));
        p.begin(Phase::Reverse, 10);
        let s = reader.snapshot();
        assert_eq!((s.phase, s.done, s.total), (Phase::Reverse, 0, 10));
        assert_eq!(s.eta(), None, "no rate before the first step");
        p.tick(11);
        assert_eq!(reader.snapshot().done, 10, "clamped to the total");
    }

    #[test]
    fn the_eta_extrapolates_the_phase_rate() {
        let s = StepSnapshot {
            phase: Phase::Reverse,
            done: 8_000,
            total: 20_000,
            elapsed: Duration::from_secs(40),
        };
        // 40 s for 8,000 steps, 12,000 to go: 60 s.
        assert_eq!(s.eta(), Some(Duration::from_secs(60)));
        let done = StepSnapshot { done: 20_000, ..s };
        assert_eq!(done.eta(), Some(Duration::ZERO));
    }
}
