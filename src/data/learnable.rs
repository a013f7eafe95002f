//! # Learnable training rows and their box (SPEC §2.5)
//!
//! A run's learnable rows are the training rows `first..first + rows` — all of them for a
//! synthetic set ([`super::synthetic`]), the appended copies for poison
//! ([`super::poison`]). Their features are the input block, in raw units; the network sees
//! them standardised with the real training rows' statistics ([`super::Standardizer`]), and
//! each feature f stays in its box [lo_f, hi_f], its range over the real training rows:
//!
//! ```text
//! μ_f = mean of x_f,   σ_f = population std of x_f (1 where it is 0),   [lo_f, hi_f] = [min, max]
//! ```

use super::{Dataset, Standardizer};
use crate::hyper::FeatureBox;

/// The learnable rows of the training set and what their block needs.
#[derive(Debug, Clone)]
pub struct Learnable {
    /// First learnable row of the training set.
    pub first: usize,
    /// Number of learnable rows.
    pub rows: usize,
    /// Their starting features, raw units, `[row][feature]` flat.
    pub init: Vec<f64>,
    /// The real training rows' standardisation (the identity without `data.standardize`).
    pub standardizer: Standardizer,
    /// Per feature: the real rows' mean, std (1 where it is 0) and range in raw units, for
    /// the outer optimizer's coordinates and the box (even without `data.standardize`).
    pub feature_box: FeatureBox,
}

/// Per feature of `real`: mean, population std (0 → 1), min and max, in raw units.
pub fn feature_stats(real: &Dataset) -> FeatureBox {
    let d = real.n_features();
    let n = real.len().max(1) as f64;
    let (mut lo, mut hi) = (vec![f64::INFINITY; d], vec![f64::NEG_INFINITY; d]);
    let mut mean = vec![0.0; d];
    for row in real.x.rows() {
        for (j, &x) in row.iter().enumerate() {
            lo[j] = lo[j].min(x);
            hi[j] = hi[j].max(x);
            mean[j] += x / n;
        }
    }
    let mut std = vec![0.0; d];
    for row in real.x.rows() {
        for (j, &x) in row.iter().enumerate() {
            std[j] += (x - mean[j]).powi(2) / n;
        }
    }
    for s in &mut std {
        *s = if *s > 0.0 { s.sqrt() } else { 1.0 };
    }
    FeatureBox { mean, std, lo, hi }
}
