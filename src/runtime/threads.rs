//! # The thread count as a setting
//!
//! [`Threads`] is how many threads a run computes on: the library's and the CLI's one knob
//! for parallelism (`--threads`). One thread runs every round of work in a plain loop on
//! the calling thread (no pool, nothing allocated); N run it on the caller and N − 1
//! workers of one [`Pool`], shared by every clone of the setting.
//!
//! Rules: the thread count never changes a result. What is split into parts, and how, is
//! fixed by the sizes alone ([`super::partition`], [`super::segments`]); threads only
//! decide who computes a part. No computation is cut into more parts than
//! [`MAX_BATCH_PARTS`] or [`EVAL_PARTS`], so more threads than that would idle and the
//! pool is capped there.

use std::sync::Arc;

use super::partition::{EVAL_PARTS, MAX_BATCH_PARTS};
use super::pool::Pool;

/// Threads a run computes on: a setting, passed to the model's evaluation over parts (and
/// by the CLI's global `--threads`). Clones share one pool.
#[derive(Debug, Clone)]
pub struct Threads {
    n: usize,
    pool: Option<Arc<Pool>>,
}

impl Default for Threads {
    fn default() -> Self {
        Threads::one()
    }
}

impl Threads {
    /// Compute on the calling thread alone.
    pub fn one() -> Self {
        Threads { n: 1, pool: None }
    }

    /// `n` threads: the calling thread and `n − 1` workers. Results do not depend on `n`.
    /// No computation is split into more than 16 parts, so the pool has at most 16
    /// threads.
    ///
    /// # Errors
    /// A usage error for `n = 0`, or if the system refuses to start the threads.
    pub fn new(n: usize) -> crate::Result<Self> {
        match n {
            0 => Err(crate::Error::Usage(
                "--threads must be at least 1, got 0".into(),
            )),
            1 => Ok(Threads::one()),
            _ => {
                let n = n.min(MAX_BATCH_PARTS.max(EVAL_PARTS));
                let pool = Pool::new(n).map_err(|e| {
                    crate::Error::Usage(format!(
                        "--threads {n}: cannot start the worker threads ({e}); try fewer"
                    ))
                })?;
                Ok(Threads {
                    n,
                    pool: Some(Arc::new(pool)),
                })
            }
        }
    }

    /// The number of cores (`std::thread::available_parallelism`, 1 if unknown): the CLI's
    /// default.
    pub fn all_cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Threads in use.
    pub fn count(&self) -> usize {
        self.n
    }

    /// `f` on every item, each item on one thread; returns when all are done.
    pub(crate) fn for_each<T: Send>(&self, items: &mut [T], f: impl Fn(&mut T) + Sync) {
        match &self.pool {
            None => items.iter_mut().for_each(f),
            Some(pool) => pool.for_each(items, f),
        }
    }
}
