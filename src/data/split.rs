//! # Seeded train/validation/test split
//!
//! Without `data.validation`, a fraction f of the N rows is held out for validation; without
//! `data.test`, a fraction f_t of them (if > 0) is held out for testing, disjoint from it:
//!
//! ```text
//! n_val  = clamp(⌈f·N⌉, 1, N − 1)     (⌈⌉ as scikit-learn's train_test_split: digits'
//!                                       1797 rows at f = 0.2 give 1437 train / 360 validation)
//! n_test = max(⌈f_t·N⌉, 1)            (with both held out, n_val = max(⌈f·N⌉, 1) and
//!                                       n_val + n_test ≤ N − 1, else too few rows)
//! π      = Fisher–Yates shuffle of 0..N with StdRng::seed_from_u64(seed ⊕ SPLIT_STREAM)
//! validation = π[..n_val], test = π[n_val..n_val+n_test], train = the rest
//!                                      (each sorted back into file order)
//! ```
//!
//! Without a test holdout this is exactly the v1 train/validation split. The split depends
//! only on (N, fractions, seed), so every command of one config sees the same rows. The seed is mixed with a constant so the split's random stream differs from the
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

/// Rows of `0..n` in each part of a split, each in increasing order, disjoint, together
/// covering `0..n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Rows left for training.
    pub train: Vec<usize>,
    /// Rows held out for validation (empty if none are).
    pub validation: Vec<usize>,
    /// Rows held out for testing (empty if none are).
    pub test: Vec<usize>,
}

/// `max(⌈fraction·n⌉, 1)`, with the small tolerance of [`n_holdout`].
fn at_least_one(n: usize, fraction: f64) -> usize {
    ((fraction * n as f64 - 1e-9).ceil() as usize).max(1)
}

/// Sizes `(n_val, n_test)` held out of `n` rows for the fractions given (`None`: that set is
/// not held out); `None` if that would leave no row to train on.
pub fn sizes(n: usize, validation: Option<f64>, test: Option<f64>) -> Option<(usize, usize)> {
    match (validation, test) {
        (None, None) => Some((0, 0)),
        (Some(f), None) => (n >= 2).then(|| (n_holdout(n, f), 0)),
        (None, Some(f)) => (n >= 2).then(|| (0, n_holdout(n, f))),
        (Some(fv), Some(ft)) => {
            let (nv, nt) = (at_least_one(n, fv), at_least_one(n, ft));
            (nv.saturating_add(nt) < n).then_some((nv, nt))
        }
    }
}

/// A seeded random split of `0..n` holding out `n_val` validation and `n_test` test rows
/// (from [`sizes`]).
///
/// # Panics
/// If `n_val + n_test > n`.
#[track_caller]
pub fn split(n: usize, n_val: usize, n_test: usize, seed: u64) -> Split {
    assert!(
        n_val + n_test <= n,
        "cannot hold out more rows than there are"
    );
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ SPLIT_STREAM);
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        perm.swap(i, j);
    }
    let sorted = |rows: &[usize]| {
        let mut v = rows.to_vec();
        v.sort_unstable();
        v
    };
    Split {
        validation: sorted(&perm[..n_val]),
        test: sorted(&perm[n_val..n_val + n_test]),
        train: sorted(&perm[n_val + n_test..]),
    }
}

/// Indices `(train, validation)` of a seeded random split of `0..n`, each in increasing
/// order, disjoint and covering `0..n`.
///
/// # Panics
/// If `n < 2` (the caller reports that as a data error first).
#[track_caller]
pub fn holdout(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let s = split(n, n_holdout(n, fraction), 0, seed);
    (s.train, s.validation)
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

    #[test]
    fn three_way_split_is_disjoint_and_keeps_the_v1_validation_rows() {
        assert_eq!(sizes(100, Some(0.2), Some(0.1)), Some((20, 10)));
        assert_eq!(sizes(100, None, Some(0.1)), Some((0, 10)));
        assert_eq!(sizes(100, Some(0.2), None), Some((20, 0)));
        assert_eq!(sizes(7, None, None), Some((0, 0)));
        assert_eq!(sizes(3, Some(0.1), Some(0.1)), Some((1, 1)));
        assert_eq!(sizes(2, Some(0.1), Some(0.1)), None);
        assert_eq!(sizes(1, Some(0.1), None), None);
        let s = split(100, 20, 10, 5);
        assert_eq!(s, split(100, 20, 10, 5));
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (70, 20, 10)
        );
        let mut all: Vec<usize> = [&s.train, &s.validation, &s.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        // Adding a test holdout does not move the validation rows.
        assert_eq!(s.validation, holdout(100, 0.2, 5).1);
    }
}
