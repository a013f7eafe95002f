//! # Exact arithmetic: fixed point, the rational γ, and the information buffer
//!
//! Training state (θ, v) is held as fixed-point integers `x = round(value · 2^F)` (see
//! [`fixed`]). Adding or subtracting a float-derived increment is exact integer arithmetic,
//! so an addition done in the forward pass is undone by subtracting the same increment,
//! recomputed from the same (exactly recovered) state.
//!
//! The only lossy step of SGD with momentum is the decay `v ← γ·v`. With γ replaced by the
//! rational `n/d` (`d = 2^16`, [`rational`]), one element is multiplied as
//!
//! ```text
//! c  ← pop a digit in [0, n) from the information buffer
//! y  = x·n + c
//! x' = ⌊y / d⌋                     (within one quantum of x·n/d)
//! push the digit y mod d ∈ [0, d) onto the information buffer
//! ```
//!
//! and undone by `y = x'·d + pop_d()`, `x = ⌊y / n⌋`, `push_n(y mod n)`. With 52
//! fractional bits `x·n` can take 79 bits, so neither `y` is formed: both directions
//! divide first and stay in 64-bit integers ([`InfoBuffer::mul_at`]). Each multiply
//! stores `log₂ d − log₂ n = log₂(1/γ)` bits net: the information-theoretic floor. The
//! buffer ([`infobuf`]) is a per-element rANS coder state renormalising 32-bit words into the
//! stack of its segment of 1024 elements (segments are independent, so threads can share
//! them), which gets within a few percent of that floor (the seed note's scheme keeps
//! about 47 of every 64 bits). Its scale does not depend on n, so every multiply may use its
//! own rational ([`Coder`]): a γ schedule per step and parameter group reverses exactly.
//!
//! Everything uses floor semantics (arithmetic shifts, `div_euclid`-style division), so
//! negative values round-trip. A value leaving the representable range is an error, never a
//! wrapped integer.

pub(crate) mod divide;
pub mod fixed;
pub mod infobuf;
pub mod rational;

pub use fixed::{FRAC_BITS, MAX_VALUE};
pub use infobuf::{Coder, InfoBuffer, SEGMENT_LEN, Segment};
pub use rational::Rational;
