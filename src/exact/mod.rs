//! # Exact arithmetic: fixed point, decays as rationals, and the information buffer
//!
//! The exact optimizers keep their state as fixed-point integers ([`fixed`]): θ and
//! momentum's v as i64 `x = round(value · 2^52)`, and state that needs more resolution
//! (Adam's moments m and s) as "wide" i128 with 92 fractional bits. Adding or subtracting a
//! float-derived increment is exact integer arithmetic, so an addition done in the forward
//! pass is undone by subtracting the same increment, recomputed from the same (exactly
//! recovered) state.
//!
//! The only lossy step is a multiply by a **decay**: momentum's γ, Adam's β₁ and β₂, and
//! any decay an optimizer adds. Every decay is the rational `n/d` with `d = 2^16` and
//! `n = ⌈decay·d⌉` ([`rational`]), per step and parameter group when it is a schedule, and
//! the same `n/d` gives the factor `1 − decay`. One element is multiplied as
//!
//! ```text
//! c  ← pop a digit in [0, n) from the information buffer
//! y  = x·n + c
//! x' = ⌊y / d⌋                     (within one quantum of x·n/d)
//! push the digit y mod d ∈ [0, d) onto the information buffer
//! ```
//!
//! and undone by `y = x'·d + pop_d()`, `x = ⌊y / n⌋`, `push_n(y mod n)`. For i64 values
//! `x·n` can take 79 bits, so neither `y` is formed: both directions divide first and stay
//! in 64-bit integers ([`InfoBuffer::mul_at`]); wide values multiply in i128
//! ([`InfoBuffer::mul_wide_at`]). Each multiply stores `log₂ d − log₂ n` bits net: the
//! information-theoretic floor.
//!
//! The buffer ([`infobuf`]) is a per-element rANS coder state renormalising 32-bit words
//! into the stack of its [`Segment`] of [`SEGMENT_LEN`] elements; segments are independent,
//! so threads can work on different ones. It gets within a few percent of the floor;
//! [`bound`] bounds what it can hold after a run (what the memory check counts and the
//! stacks reserve). Its scale does not depend on n, so every multiply may use its own
//! rational ([`Coder`], built once per rational): schedules, and several decays of one
//! parameter multiplied through the same state (Adam's m and s share one), reverse bit for
//! bit. Divisions by n and by the coder's slot widths use precomputed invariant divisors
//! (`divide`).
//!
//! Everything uses floor semantics (arithmetic shifts, `div_euclid`-style division), so
//! negative values round-trip. A value leaving the representable range is an error, never a
//! wrapped integer.

pub mod bound;
pub(crate) mod divide;
pub mod fixed;
pub mod infobuf;
pub mod rational;

pub use bound::BufferBound;
pub use fixed::{FRAC_BITS, MAX_VALUE};
pub use infobuf::{Coder, InfoBuffer, SEGMENT_LEN, Segment};
pub use rational::Rational;
