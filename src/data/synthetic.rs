//! # Learnable training rows: a synthetic training set (SPEC §2.5)
//!
//! With `data.synthetic`, the training set *is* `per_class` rows of each class k = 0..K−1,
//! in that order, labels fixed; their features are the `input` block. They start as
//!
//! ```text
//! init "real":   copies of per_class real training rows of class k, drawn without
//!                replacement from `seed` (the data seed)
//! init "noise":  x_f ~ N(μ_f, σ_f) of the real training rows, clipped to [lo_f, hi_f]
//! ```
//!
//! Every feature f of a learnable row stays in the box [lo_f, hi_f], its range over the real
//! training rows, and is standardised with the real rows' statistics (fixed), so that a
//! synthetic row equal to a real row is standardised to the same bits
//! ([`super::Standardizer`]). The real training rows are dropped once the set is built.

use ndarray::Array2;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};
use ndarray_rand::rand_distr::{Distribution, StandardNormal};

use super::Dataset;
use super::learnable::feature_stats;
use crate::config::{Synthetic, SyntheticInit};
use crate::hyper::FeatureBox;

/// The synthetic set's raw rows and labels from the real training rows `real` (raw units),
/// with the real rows' [`feature_stats`]; `Err((class, rows of that class))` when
/// `init: "real"` asks for more rows of a class than it has.
pub fn build(
    real: &Dataset,
    n_classes: usize,
    syn: &Synthetic,
    seed: u64,
) -> Result<(Dataset, FeatureBox), (usize, usize)> {
    let d = real.n_features();
    let stats = feature_stats(real);
    let FeatureBox { mean, std, lo, hi } = &stats;
    // Every class must have the rows "real" copies before anything is allocated.
    if syn.init == SyntheticInit::Real {
        let mut counts = vec![0usize; n_classes];
        for &k in &real.y {
            counts[k] += 1;
        }
        if let Some(k) = counts.iter().position(|&c| c < syn.per_class) {
            return Err((k, counts[k]));
        }
    }
    let rows = n_classes * syn.per_class;
    let mut x = Array2::zeros((rows, d));
    let mut y = Vec::with_capacity(rows);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_7d15_7111);
    for k in 0..n_classes {
        let of_class: Vec<usize> = (0..real.len()).filter(|&i| real.y[i] == k).collect();
        let picks: Vec<usize> = match syn.init {
            SyntheticInit::Real => {
                if of_class.len() < syn.per_class {
                    return Err((k, of_class.len()));
                }
                // Partial Fisher–Yates: the first per_class of a seeded shuffle.
                let mut pool = of_class;
                for i in 0..syn.per_class {
                    let j = rng.random_range(i..pool.len());
                    pool.swap(i, j);
                }
                pool.truncate(syn.per_class);
                pool
            }
            SyntheticInit::Noise => Vec::new(),
        };
        for i in 0..syn.per_class {
            let r = k * syn.per_class + i;
            let mut out = x.row_mut(r);
            match picks.get(i) {
                Some(&src) => out.assign(&real.x.row(src)),
                None => {
                    for (j, o) in out.iter_mut().enumerate() {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        let sd = if hi[j] > lo[j] { std[j] } else { 0.0 };
                        *o = (mean[j] + sd * z).clamp(lo[j], hi[j]);
                    }
                }
            }
            y.push(k);
        }
    }
    Ok((Dataset { x, y }, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> Dataset {
        let x = Array2::from_shape_fn((12, 3), |(i, j)| (i * 3 + j) as f64);
        Dataset {
            x,
            y: (0..12).map(|i| i % 3).collect(),
        }
    }

    #[test]
    fn real_init_copies_rows_of_each_class_in_class_order() {
        let syn = Synthetic {
            per_class: 2,
            init: SyntheticInit::Real,
        };
        let (set, ..) = build(&real(), 3, &syn, 7).unwrap();
        assert_eq!(set.y, vec![0, 0, 1, 1, 2, 2]);
        let r = real();
        for (i, row) in set.x.rows().into_iter().enumerate() {
            let src = (0..12)
                .find(|&s| r.x.row(s) == row)
                .expect("a copy of a real row");
            assert_eq!(r.y[src], set.y[i]);
        }
        assert_ne!(set.x.row(0), set.x.row(1), "drawn without replacement");
        let (again, ..) = build(&real(), 3, &syn, 7).unwrap();
        assert_eq!(again.x, set.x, "seeded");
    }

    #[test]
    fn too_many_rows_of_a_class_name_the_class() {
        let syn = Synthetic {
            per_class: 5,
            init: SyntheticInit::Real,
        };
        assert_eq!(build(&real(), 3, &syn, 0).unwrap_err(), (0, 4));
        // A class absent from the training rows, with noise, is fine.
        let syn = Synthetic {
            per_class: 5,
            init: SyntheticInit::Noise,
        };
        let (set, b) = build(&real(), 4, &syn, 0).unwrap();
        let (lo, hi) = (b.lo, b.hi);
        assert_eq!(set.len(), 20);
        for row in set.x.rows() {
            for (j, &v) in row.iter().enumerate() {
                assert!(v >= lo[j] && v <= hi[j], "noise inside the box");
            }
        }
        assert!(set.x.iter().any(|v| v.fract() != 0.0), "drawn, not copied");
    }
}
