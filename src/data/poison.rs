//! # Poison rows: relabelled copies appended to the training set (SPEC §2.5)
//!
//! `data.poison` chooses `rows` distinct real training rows from `seed` (the data seed),
//! copies each with a uniformly drawn *different* label (`"flip"`), and appends the copies
//! after the real rows:
//!
//! ```text
//! training set = [real rows 0..N) ++ [poison rows N..N+R),   poison r = (x_{s_r}, y' ≠ y_{s_r})
//! ```
//!
//! The copies' features are the input block (`outer.objective: "maximize"` moves them to
//! raise the validation loss: back-gradient poisoning, Muñoz-González et al. 2017). Which rows
//! were copied and their labels before and after are kept for the summary ([`PoisonRow`]).

use ndarray::Array2;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

use super::Dataset;
use crate::config::Poison;

/// One poison row: the real training row it copies and its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoisonRow {
    /// The real training row copied.
    pub source: usize,
    /// That row's label.
    pub label: usize,
    /// The copy's label (another class).
    pub poison_label: usize,
}

/// The poison rows' raw features and labels (a [`Dataset`] of `poison.rows` rows) copied
/// from `real`, and what each copies.
///
/// # Panics
/// If `poison.rows` is not below `real.len()` or `n_classes < 2` (the loader checks both).
#[track_caller]
pub fn build(
    real: &Dataset,
    n_classes: usize,
    poison: &Poison,
    seed: u64,
) -> (Dataset, Vec<PoisonRow>) {
    assert!(
        poison.rows < real.len() && n_classes >= 2,
        "checked by the loader"
    );
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0009_0150_4e00);
    // Partial Fisher–Yates over the row indices: `rows` distinct rows.
    let mut pool: Vec<usize> = (0..real.len()).collect();
    for i in 0..poison.rows {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    let d = real.n_features();
    let mut x = Array2::zeros((poison.rows, d));
    let mut y = Vec::with_capacity(poison.rows);
    let mut rows = Vec::with_capacity(poison.rows);
    for (r, &source) in pool[..poison.rows].iter().enumerate() {
        x.row_mut(r).assign(&real.x.row(source));
        let label = real.y[source];
        // Uniform over the other n − 1 classes.
        let k = rng.random_range(0..n_classes - 1);
        let poison_label = if k >= label { k + 1 } else { k };
        y.push(poison_label);
        rows.push(PoisonRow {
            source,
            label,
            poison_label,
        });
    }
    (Dataset { x, y }, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoisonLabels;

    #[test]
    fn copies_distinct_rows_with_another_label() {
        let real = Dataset {
            x: Array2::from_shape_fn((20, 2), |(i, j)| (i * 2 + j) as f64),
            y: (0..20).map(|i| i % 3).collect(),
        };
        let p = Poison {
            rows: 8,
            labels: PoisonLabels::Flip,
        };
        let (set, rows) = build(&real, 3, &p, 5);
        assert_eq!(set.len(), 8);
        let mut sources: Vec<usize> = rows.iter().map(|r| r.source).collect();
        sources.sort_unstable();
        sources.dedup();
        assert_eq!(sources.len(), 8, "distinct rows");
        for (r, pr) in rows.iter().enumerate() {
            assert_eq!(set.x.row(r), real.x.row(pr.source));
            assert_eq!(pr.label, real.y[pr.source]);
            assert_ne!(pr.poison_label, pr.label);
            assert_eq!(set.y[r], pr.poison_label);
            assert!(pr.poison_label < 3);
        }
        assert_eq!(build(&real, 3, &p, 5).1, rows, "seeded");
        // Every other class is drawn (over many rows).
        let big = Dataset {
            x: Array2::zeros((400, 1)),
            y: vec![1; 400],
        };
        let p = Poison {
            rows: 300,
            labels: PoisonLabels::Flip,
        };
        let (set, _) = build(&big, 4, &p, 1);
        for k in [0, 2, 3] {
            assert!(set.y.contains(&k), "class {k} drawn");
        }
        assert!(!set.y.contains(&1));
    }
}
