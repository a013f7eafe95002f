//! # Progress bar on stderr
//!
//! An indicatif bar over outer iterations showing the current and best validation loss.
//! Hidden with `--quiet` or when stderr is not a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::Result;
use crate::tune::{Iteration, Observer, State, Summary};

/// The tune progress bar.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar, or a hidden one if `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            {
                bar.set_style(style);
            }
            bar
        };
        Progress { bar }
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

impl Observer for Progress {
    fn on_start(&mut self, total: usize) -> Result<()> {
        self.bar.set_length(total as u64);
        self.bar.set_message("evaluating the starting point");
        Ok(())
    }

    fn on_resume(&mut self, state: &State) -> Result<()> {
        self.bar.set_position(state.rows as u64);
        self.bar.set_message(format!(
            "resumed after #{}  best {:.4}",
            state.done,
            state.best.val_loss()
        ));
        Ok(())
    }

    fn on_iteration(&mut self, it: &Iteration, best: &Iteration) -> Result<()> {
        self.bar.inc(1);
        let current = match &it.result {
            Some(r) => format!("val_loss {:.4}", r.val_loss),
            None => "rejected (diverged)".to_string(),
        };
        self.bar
            .set_message(format!("{current}  best {:.4}", best.val_loss()));
        Ok(())
    }

    fn on_finish(&mut self, _summary: &Summary) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}
