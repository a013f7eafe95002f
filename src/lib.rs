//! # revgrad
//!
//! Hyperparameter tuning by gradient descent on the validation loss, with hypergradients
//! from **exactly reversed** training (Maclaurin, Duvenaud & Adams 2015, "Gradient-based
//! Hyperparameter Optimization through Reversible Learning").
//!
//! The pipeline, one module per idea:
//!
//! ```text
//! config → data → model (loss, ∇, Hv) → exact (fixed point, n/d, info buffer)
//!        → optim (reversible SGD+momentum) → hypergrad (reverse pass) → tune (outer loop)
//!        → report / cli
//! ```
//!
//! Inner loop (SPEC §3), for t = 0..T−1:
//!
//! ```text
//! g = ∇L_t(θ_t)
//! v ← γ·v − (1−γ)·g
//! θ ← θ + α·v
//! ```
//!
//! θ and v are fixed-point integers; `γ·v` is a rational multiply whose remainders go into
//! an information buffer, so every step can be undone bit for bit and the reverse-mode
//! derivative of the validation loss with respect to α, γ, l2 and θ₀ is accumulated while
//! training runs backwards, in O(|θ|) memory.
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

pub use error::{Error, Result};
