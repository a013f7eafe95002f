//! # revgrad
//!
//! Hyperparameter tuning by gradient descent on the validation loss, with hypergradients
//! from **exactly reversed** training (Maclaurin, Duvenaud & Adams 2015, "Gradient-based
//! Hyperparameter Optimization through Reversible Learning").
//!
//! The pipeline, one module per idea:
//!
//! ```text
//! hyper (kinds, blocks, the optimizers' table) → config → data
//!        → model (loss, ∇, H·v; penalty wrapper) → exact (fixed point, n/d, info buffer)
//!        → optim (registry: float and Reversible forms of momentum, Adam, RMSprop, …)
//!        → hypergrad (reverse pass) → tune (outer loop, random search) → report / cli
//! ```
//!
//! (`runtime`, crate-private, holds the thread pool and the segment loops the model and the
//! exact optimizers run on, and the step counter the inner loops tick for the progress
//! bar.) Inner loop for momentum (SPEC §3.2; Adam §3.4 and RMSprop §3.6 likewise), for
//! t = 0..T−1, with α_t and γ_t per step and parameter group from their blocks:
//!
//! ```text
//! g = ∇L_t(θ_t)          L_t = (1/B)·Σ_{i∈batch t} c_i·CE_i + ½·Σ_e l2_e·w_e²
//! v ← γ_t·v − (1−γ_t)·g
//! θ ← θ + α_t·v
//! ```
//!
//! θ and the optimizer's state are fixed-point integers; every decay multiply (`γ_t·v`) is a
//! rational multiply whose remainders go into an information buffer, so every step can be
//! undone bit for bit and the reverse-mode derivative of the validation loss with respect to
//! every entry of every block (schedule knots, per-layer or per-weight penalties, initial
//! scales, one weight per training row) is accumulated while training runs backwards, in
//! O(|θ|) memory.
#![warn(missing_docs)]
#![deny(clippy::float_cmp)]

pub mod error;

pub mod cli;
pub mod config;
pub mod data;
pub mod exact;
pub mod fsutil;
pub mod hyper;
pub mod hypergrad;
pub mod memory;
pub mod model;
pub mod optim;
pub mod problem;
pub mod report;
pub mod tune;

mod runtime;

pub use error::{Error, Result};
pub use runtime::{Phase, StepProgress, StepSnapshot, Threads};
