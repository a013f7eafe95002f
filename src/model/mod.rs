//! # Model: an MLP with exact gradients and Hessian-vector products
//!
//! [`Mlp`] computes the training loss, its gradient and its exact Hessian-vector product on
//! a batch (see [`mlp`] for the math). The optimizers and the hypergradient are written
//! against three capabilities ([`objective`]): the training oracle [`Objective`],
//! [`Evaluate`] and [`RowTangents`], so tests and benchmarks can plug in a [`Quadratic`]
//! with a closed-form Hessian. [`init_noise`] draws the initial-weight noise ε (θ₀ = init_scale·ε).
//! [`parallel`] splits batches into a fixed set of parts computed on any number of
//! [`Threads`] (the runtime's setting, re-exported here), with results bit-identical for
//! every thread count.
pub mod activation;
pub mod linalg;
pub mod mlp;
pub mod npz;
pub mod objective;
pub mod parallel;
pub mod params;
pub mod penalty;
pub mod quadratic;

pub use crate::runtime::Threads;
pub use activation::Activation;
pub use mlp::{Mlp, Workspace};
pub use objective::{Evaluate, Objective, RowTangents};
pub use parallel::Chunked;
pub use params::Layout;
pub use penalty::Penalized;
pub use quadratic::Quadratic;

use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand_distr::{Distribution, StandardNormal};

/// Initial-weight noise ε: `W_l ~ N(0, 1/fan_in)`, biases 0, drawn from `seed`.
pub fn init_noise(layout: &Layout, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut eps = vec![0.0; layout.len()];
    for l in 0..layout.n_layers() {
        let scale = 1.0 / (layout.w_shape(l).0 as f64).sqrt();
        for w in &mut eps[layout.w_range(l)] {
            let z: f64 = StandardNormal.sample(&mut rng);
            *w = scale * z;
        }
    }
    eps
}
