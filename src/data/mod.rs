//! # Data (stub)
