//! # Observers of the outer loop
//!
//! The tuner (and the random search) report through this trait only; the CSV sink, the
//! `--hypers-out` writer, the progress bar and the `--best` writer are observers, and tests
//! use a collecting one.

use super::{Iteration, State, Summary};
use crate::error::Result;

/// Hooks called by [`super::run`]; all default to doing nothing.
pub trait Observer {
    /// Before the first evaluation; `total` is the number of iterations to come.
    fn on_start(&mut self, total: usize) -> Result<()> {
        let _ = total;
        Ok(())
    }
    /// After each iteration (including iteration 0), with the best so far.
    fn on_iteration(&mut self, it: &Iteration, best: &Iteration) -> Result<()> {
        let _ = (it, best);
        Ok(())
    }
    /// Before [`Observer::on_iteration`] of iteration `k`, when its point is rejected, with
    /// why (the inner run's divergence or overflow, or the memory it would need).
    fn on_rejected(&mut self, k: usize, why: &str) -> Result<()> {
        let _ = (k, why);
        Ok(())
    }
    /// After [`Observer::on_iteration`], with the loop's state after that iteration
    /// (what a checkpoint saves).
    fn on_state(&mut self, state: &State) -> Result<()> {
        let _ = state;
        Ok(())
    }
    /// Once, after [`Observer::on_start`], when a loop continues from a saved state: the
    /// iterations up to `state.done` were reported by the run that saved it.
    fn on_resume(&mut self, state: &State) -> Result<()> {
        let _ = state;
        Ok(())
    }
    /// Once at the end.
    fn on_finish(&mut self, summary: &Summary) -> Result<()> {
        let _ = summary;
        Ok(())
    }
}

/// Several observers, called in order.
pub struct Observers<'a>(pub Vec<&'a mut dyn Observer>);

impl Observer for Observers<'_> {
    fn on_start(&mut self, total: usize) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_start(total))
    }
    fn on_iteration(&mut self, it: &Iteration, best: &Iteration) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_iteration(it, best))
    }
    fn on_rejected(&mut self, k: usize, why: &str) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_rejected(k, why))
    }
    fn on_state(&mut self, state: &State) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_state(state))
    }
    fn on_resume(&mut self, state: &State) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_resume(state))
    }
    fn on_finish(&mut self, summary: &Summary) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_finish(summary))
    }
}

/// Keeps every iteration (for tests and summaries).
#[derive(Debug, Default)]
pub struct Collect {
    /// The iterations in order.
    pub rows: Vec<Iteration>,
}

impl Observer for Collect {
    fn on_iteration(&mut self, it: &Iteration, _best: &Iteration) -> Result<()> {
        self.rows.push(it.clone());
        Ok(())
    }
}
