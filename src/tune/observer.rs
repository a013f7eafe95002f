//! # Observers of the outer loop
//!
//! The tuner reports through this trait only; the CSV sink, the progress bar and the
//! `--best` writer are observers, and tests use a collecting one.

use super::{Summary, TuneRow};
use crate::error::Result;

/// Hooks called by [`super::run`]; all default to doing nothing.
pub trait Observer {
    /// Before the first evaluation; `total` is the number of rows to come.
    fn on_start(&mut self, total: usize) -> Result<()> {
        let _ = total;
        Ok(())
    }
    /// After each outer iteration (including iteration 0).
    fn on_row(&mut self, row: &TuneRow, best: &TuneRow) -> Result<()> {
        let _ = (row, best);
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
    fn on_row(&mut self, row: &TuneRow, best: &TuneRow) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_row(row, best))
    }
    fn on_finish(&mut self, summary: &Summary) -> Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_finish(summary))
    }
}

/// Keeps every row (for tests and summaries).
#[derive(Debug, Default)]
pub struct Collect {
    /// The rows in order.
    pub rows: Vec<TuneRow>,
}

impl Observer for Collect {
    fn on_row(&mut self, row: &TuneRow, _best: &TuneRow) -> Result<()> {
        self.rows.push(row.clone());
        Ok(())
    }
}
