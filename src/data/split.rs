//! # Seeded train/validation split
//!
//! Without `data.validation`, a fraction f of the N rows is held out for validation:
//!
//! ```text
//! n_val = clamp(⌈f·N⌉, 1, N − 1)      (⌈⌉ as scikit-learn's train_test_split: digits'
//!                                       1797 rows at f = 0.2 give 1437 train / 360 validation)
//! π     = Fisher–Yates shuffle of 0..N with StdRng::seed_from_u64(seed ⊕ SPLIT_STREAM)
//! validation = π[..n_val], train = π[n_val..]   (each sorted back into file order)
//! ```
//!
//! The split depends only on (N, f, seed), so every command of one config sees the same
//! rows. The seed is mixed with a constant so the split's random stream differs from the
//! other streams drawn from the same `seed` (initialisation, batch order).

use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

/// Mixed into the config seed so the split's random stream is its own.
const SPLIT_STREAM: u64 = 0x5350_4c49_545f_5631; // "SPLIT_V1"

/// Number of validation rows held out of `n` for fraction `fraction`:
/// `⌈fraction·n⌉` (scikit-learn's rule), at least 1 and leaving at least 1 for training.
///
/// # Panics
/// If `n < 2` (the caller reports that as a data error first).
#[track_caller]
pub fn n_holdout(n: usize, fraction: f64) -> usize {
    assert!(n >= 2, "a split needs at least 2 rows");
    // A small tolerance so that e.g. 0.2·20 = 4.000000000000001 does not round up to 5.
    let k = (fraction * n as f64 - 1e-9).ceil();
    // `as usize` saturates for out-of-range floats; the clamp keeps 1 ≤ k ≤ n − 1.
    (k as usize).clamp(1, n - 1)
}

/// Indices `(train, validation)` of a seeded random split of `0..n`, each in increasing
/// order, disjoint and covering `0..n`.
///
/// # Panics
/// If `n < 2` (the caller reports that as a data error first).
#[track_caller]
pub fn holdout(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let n_val = n_holdout(n, fraction);
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        perm.swap(i, j);
    }
    let mut val = perm[..n_val].to_vec();
    let mut train = perm[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_rounding_and_bounds() {
        assert_eq!(n_holdout(1797, 0.2), 360); // ⌈359.4⌉, as scikit-learn
        assert_eq!(n_holdout(20, 0.2), 4);
        assert_eq!(n_holdout(10, 0.01), 1); // at least one held out
        assert_eq!(n_holdout(10, 0.99), 9); // at least one left to train on
        assert_eq!(n_holdout(2, 0.5), 1);
    }

    #[test]
    fn deterministic_disjoint_and_complete() {
        let (tr, va) = holdout(100, 0.25, 42);
        assert_eq!((tr.len(), va.len()), (75, 25));
        assert_eq!(holdout(100, 0.25, 42), (tr.clone(), va.clone()));
        let mut all: Vec<usize> = tr.iter().chain(&va).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert!(tr.windows(2).all(|w| w[0] < w[1]));
        assert!(va.windows(2).all(|w| w[0] < w[1]));
        // A different seed gives a different split; a contiguous block would be suspicious.
        assert_ne!(holdout(100, 0.25, 43).1, va);
        assert_ne!(va, (0..25).collect::<Vec<_>>());
    }
}
