//! End-to-end tests of the `revgrad` binary (STYLE §5.6 "CLI end to end").
//!
//! Each test gets its own temp folder and writes its configs there with absolute data
//! paths; configs are small (hidden [8], ≤ 50 inner steps) so the whole binary runs in
//! seconds under `cargo test --release`. CSV output is parsed with the csv crate and
//! checked structurally; the `seconds` column is never compared.

mod common;

mod adam;
mod blocks;
mod check_grad;
mod cleaning;
mod data;
mod data_memory;
mod distill;
mod edge_cases;
mod errors;
mod help;
mod hypergrad;
mod long_runs;
mod poison;
mod progress;
mod resume;
mod rmsprop;
mod robust;
mod search;
mod threads;
mod train;
mod tune;
mod verify_reversal;
