//! # Experiment config (stub)
