//! # Reporting: output schemas, CSV sinks, progress, tables
//!
//! Data goes to stdout (or `-o FILE`) as CSV or JSON; everything for people goes to stderr.
//! Numerics never print: they return values that this module formats.

pub mod cleaning;
pub mod images;
pub mod progress;
pub mod rows;
pub mod sink;
pub mod stderr;
pub mod table;
