//! # A decay (momentum γ, Adam's β₁ and β₂, RMSprop's ρ and γ) as a rational n/d
//!
//! `d = 2^16` always (so `⌊y/d⌋` is an arithmetic shift), and `n = ⌈γ·d⌉`: the smallest
//! `n/d ≥ γ`. For γ = 0.9 that is 58983/65536 = 0.9000091552734375. The effective γ is the
//! one γ of an exact run: both the decay `γ·v` and the factor `(1−γ)` use `n/d`.

/// Bits of the denominator.
pub const DEN_BITS: u32 = 16;
/// The denominator d = 2^16.
pub const DEN: u64 = 1 << DEN_BITS;

/// A decay `n/d` with `d = 2^16` and `1 ≤ n < d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rational {
    n: u64,
}

impl Rational {
    /// The smallest `n/2^16 ≥ gamma`; `None` unless `0 < gamma` and `n < 2^16`
    /// (γ ≤ 65535/65536).
    ///
    /// ```
    /// use revgrad::exact::Rational;
    /// let g = Rational::approximate(0.9).unwrap();
    /// assert_eq!((g.n(), g.d()), (58983, 65536));
    /// assert_eq!(g.value().to_bits(), 0.9000091552734375f64.to_bits());
    /// assert!(Rational::approximate(1.0).is_none());
    /// ```
    pub fn approximate(gamma: f64) -> Option<Self> {
        if !(gamma > 0.0 && gamma < 1.0) {
            return None;
        }
        let n = (gamma * DEN as f64).ceil() as u64;
        Self::from_numerator(n.max(1))
    }

    /// The smallest `n/2^16 ≥ gamma`, for a γ already validated to `(0, 1)`: `n` is kept in
    /// `[1, 2^16)`, the numerators the information buffer represents. Hyperparameter blocks
    /// hold γ in `(0, 0.9999]` (config validation and the tuner's warp both ensure it), so
    /// the bounds only guard that invariant.
    pub fn of_valid(gamma: f64) -> Self {
        let n = (gamma * DEN as f64).ceil();
        Rational {
            n: if n >= 1.0 { (n as u64).min(DEN - 1) } else { 1 },
        }
    }

    /// `n/2^16`; `None` unless `1 ≤ n < 2^16`.
    pub fn from_numerator(n: u64) -> Option<Self> {
        (1..DEN).contains(&n).then_some(Rational { n })
    }

    /// Numerator n.
    pub fn n(self) -> u64 {
        self.n
    }

    /// Denominator d = 2^16.
    pub fn d(self) -> u64 {
        DEN
    }

    /// n/d as f64 (exact).
    pub fn value(self) -> f64 {
        self.n as f64 / DEN as f64
    }

    /// 1 − n/d as f64 (exact).
    pub fn one_minus(self) -> f64 {
        (DEN - self.n) as f64 / DEN as f64
    }

    /// Information lost per multiply, log₂(d/n) bits: the floor for the buffer.
    pub fn bits_per_multiply(self) -> f64 {
        (DEN as f64 / self.n as f64).log2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        let r = Rational::approximate(0.9).unwrap();
        assert_eq!(r.n(), 58983);
        assert_eq!(r.value().to_bits(), 0.9000091552734375f64.to_bits());
        assert_eq!(Rational::approximate(0.5).unwrap().n(), 32768);
    }

    #[test]
    fn rejects_out_of_range() {
        assert!(Rational::approximate(0.0).is_none());
        assert!(Rational::approximate(1.0).is_none());
        assert!(Rational::approximate(0.99999).is_none());
        assert!(Rational::approximate(f64::NAN).is_none());
        assert_eq!(Rational::approximate(1e-9).unwrap().n(), 1);
        assert!(Rational::approximate(0.9999).is_some());
    }
}
