//! # Data (stub)
pub mod batches;
