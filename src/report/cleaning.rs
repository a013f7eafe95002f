//! # Data cleaning: how well do the learned example weights find the flipped labels?
//!
//! With `data.label_noise` > 0 revgrad knows which training rows it flipped. Flagging the
//! rows whose weight fell below a threshold (0.5) and comparing with them:
//!
//! ```text
//! precision = |flagged ∩ flipped| / |flagged|     recall = |flagged ∩ flipped| / |flipped|
//! F1 = 2·precision·recall / (precision + recall)
//! ```

/// The threshold below which a row counts as flagged.
pub const FLAG_BELOW: f64 = 0.5;

/// Detection figures of flagged rows against the flipped ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Rows flagged (weight < threshold).
    pub flagged: usize,
    /// Rows whose label was flipped.
    pub flipped: usize,
    /// Flagged rows that were flipped.
    pub hits: usize,
    /// hits / flagged (0 when nothing is flagged).
    pub precision: f64,
    /// hits / flipped (0 without flipped rows).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
}

/// The detection figures of `weights` (one per training row) flagged below `threshold`,
/// against the sorted or unsorted list of `flipped` rows.
pub fn detection(weights: &[f64], flipped: &[usize], threshold: f64) -> Detection {
    let flagged = weights.iter().filter(|&&w| w < threshold).count();
    let hits = flipped.iter().filter(|&&r| weights[r] < threshold).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(hits, flagged), ratio(hits, flipped.len()));
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Detection {
        flagged,
        flipped: flipped.len(),
        hits,
        precision,
        recall,
        f1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let w = [0.9, 0.1, 0.2, 0.8, 0.3];
        let d = detection(&w, &[1, 3], FLAG_BELOW);
        assert_eq!((d.flagged, d.flipped, d.hits), (3, 2, 1));
        assert!((d.precision - 1.0 / 3.0).abs() < 1e-15);
        assert!((d.recall - 0.5).abs() < 1e-15);
        assert!((d.f1 - 0.4).abs() < 1e-15);
        let none = detection(&w, &[], FLAG_BELOW);
        assert_eq!(none.f1.to_bits(), 0f64.to_bits());
    }
}
