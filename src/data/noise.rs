//! # Seeded label noise
//!
//! `data.label_noise` = f replaces the labels of exactly k = ⌊f·N⌋ of the N training rows
//! (after the splits: never a validation or test row) by a different class, drawn uniformly:
//!
//! ```text
//! rows  = the first k of a Fisher–Yates shuffle of 0..N, StdRng::seed_from_u64(seed ⊕ NOISE_STREAM)
//! y_i ← r + [r ≥ y_i],   r uniform in 0..K−1     (uniform over the K − 1 classes ≠ y_i)
//! ```
//!
//! The rows flipped and their original labels are kept ([`FlippedLabel`]), so a data-cleaning
//! report can say which rows it should have found.

use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

/// Mixed into the config seed so the noise's random stream is its own.
const NOISE_STREAM: u64 = 0x4e4f_4953_455f_5631; // "NOISE_V1"

/// A training row whose label was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlippedLabel {
    /// Index into the training set (after the split).
    pub row: usize,
    /// Its label before the flip (the label in the file).
    pub original: usize,
}

/// Number of labels flipped among `n` rows at fraction `fraction`: `⌊fraction·n⌋` (with a
/// small tolerance, so 0.29·100 = 28.999999999999996 counts as 29).
pub fn n_flipped(n: usize, fraction: f64) -> usize {
    ((fraction * n as f64 + 1e-9).floor() as usize).min(n)
}

/// Replaces the labels of [`n_flipped`]`(y.len(), fraction)` rows by a different class in
/// `0..n_classes`; returns those rows, sorted, with their original labels.
///
/// # Panics
/// If a row is to be flipped and `n_classes < 2`, or a label is not below `n_classes` (the
/// caller reports the first as a config error).
#[track_caller]
pub fn flip_labels(
    y: &mut [usize],
    fraction: f64,
    n_classes: usize,
    seed: u64,
) -> Vec<FlippedLabel> {
    let n = y.len();
    let k = n_flipped(n, fraction);
    if k == 0 {
        return Vec::new();
    }
    assert!(n_classes >= 2, "label noise needs at least 2 classes");
    let mut rng = StdRng::seed_from_u64(seed ^ NOISE_STREAM);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        perm.swap(i, j);
    }
    let mut rows = perm[..k].to_vec();
    rows.sort_unstable();
    rows.into_iter()
        .map(|row| {
            let original = y[row];
            assert!(original < n_classes, "label {original} out of range");
            let r = rng.random_range(0..n_classes - 1);
            y[row] = if r >= original { r + 1 } else { r };
            FlippedLabel { row, original }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_exactly_k_rows_each_to_another_class() {
        let original: Vec<usize> = (0..200).map(|i| i % 3).collect();
        let mut y = original.clone();
        let flipped = flip_labels(&mut y, 0.29, 3, 11);
        assert_eq!(flipped.len(), 58); // ⌊0.29·200⌋
        assert!(flipped.windows(2).all(|w| w[0].row < w[1].row));
        for f in &flipped {
            assert_eq!(f.original, original[f.row]);
            assert_ne!(y[f.row], f.original);
            assert!(y[f.row] < 3);
        }
        let changed = (0..200).filter(|&i| y[i] != original[i]).count();
        assert_eq!(changed, 58);
        // Deterministic in the seed, different across seeds.
        let mut again = original.clone();
        assert_eq!(flip_labels(&mut again, 0.29, 3, 11), flipped);
        assert_eq!(again, y);
        let mut other = original.clone();
        assert_ne!(flip_labels(&mut other, 0.29, 3, 12), flipped);
    }

    #[test]
    fn new_labels_cover_every_other_class() {
        let mut y = vec![2; 1000];
        let flipped = flip_labels(&mut y, 0.5, 5, 0);
        let mut seen = [0usize; 5];
        for f in &flipped {
            seen[y[f.row]] += 1;
        }
        assert_eq!(seen[2], 0);
        // 500 draws over 4 classes: each near 125 (binomial std ≈ 9.7).
        assert!(
            seen.iter()
                .enumerate()
                .all(|(c, &s)| c == 2 || (80..170).contains(&s)),
            "{seen:?}"
        );
    }

    #[test]
    fn zero_fraction_and_rounding() {
        let mut y = vec![0, 1];
        assert!(flip_labels(&mut y, 0.0, 1, 0).is_empty());
        assert!(flip_labels(&mut y, 0.4, 2, 0).is_empty()); // ⌊0.8⌋ = 0
        assert_eq!(n_flipped(10, 0.3), 3);
        assert_eq!(n_flipped(100, 0.29), 29);
        assert_eq!(n_flipped(7, 0.999), 6);
    }
}
