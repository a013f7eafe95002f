//! # The runtime: how work is shared among threads without changing a result
//!
//! Everything revgrad computes in parallel goes through here, one idea per file:
//!
//! - [`threads`]: the thread count as a setting ([`Threads`], public as `revgrad::Threads`);
//! - [`partition`]: how a batch or an evaluation is cut into parts, by its row count alone;
//! - [`segments`]: the exact optimizers' element loops over the information buffer's
//!   segments, and their per-segment sums;
//! - [`pool`]: the fork-join pool that runs a round of parts or segment groups on the
//!   caller and its workers;
//! - [`sync`]: the synchronisation primitives the pool is written against (`std`'s, or
//!   loom's when the pool is model-checked under `--cfg loom`);
//! - [`progress`]: the step counter a long inner run ticks and a progress bar reads from
//!   its own thread ([`StepProgress`], public as `revgrad::StepProgress`).
//!
//! Rules, for every file: what is split, and into which pieces, depends on sizes alone,
//! never on the thread count, and whatever combines per-piece results does so in piece
//! order, so every result is the same bits for every thread count. The runtime sits below
//! the numerics: it may use [`crate::exact`]'s information buffer (whose segments it shares
//! out) and [`crate::error`], never the model, the optimizers, or anything above them.

pub(crate) mod partition;
pub(crate) mod pool;
pub(crate) mod progress;
pub(crate) mod segments;
mod sync;
mod threads;

pub use progress::{Phase, StepProgress, StepSnapshot};
pub use threads::Threads;
