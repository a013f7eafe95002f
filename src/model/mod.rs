//! # Model: an MLP with exact gradients and Hessian-vector products
//!
//! [`Mlp`] computes the training loss, its gradient and its exact Hessian-vector product on
//! a batch (see [`mlp`] for the math). [`Objective`] is the capability the optimizers and the
//! hypergradient are written against, so tests and benchmarks can plug in a [`Quadratic`]
//! with a closed-form Hessian. [`init_noise`] draws the initial-weight noise ε (θ₀ = init_scale·ε).
//! [`parallel`] splits batches into a fixed set of parts computed on any number of
//! [`Threads`] (the runtime's setting, re-exported here), with results bit-identical for
//! every thread count.
pub mod activation;
pub mod linalg;
pub mod mlp;
pub mod npz;
pub mod parallel;
pub mod params;
pub mod penalty;
pub mod quadratic;

pub use crate::runtime::Threads;
pub use activation::Activation;
pub use mlp::{Mlp, Workspace};
pub use parallel::Chunked;
pub use params::Layout;
pub use penalty::Penalized;
pub use quadratic::Quadratic;

use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand_distr::{Distribution, StandardNormal};

/// What the inner optimizer and the reverse pass need from a training problem.
///
/// `step` selects the mini-batch of inner step `t`; the same `step` must always give the
/// same batch, so the reverse pass recomputes bit-identical gradients. Penalties are not the
/// model's business: [`Penalized`] wraps any objective with one.
pub trait Objective {
    /// Number of parameters |θ|.
    fn dim(&self) -> usize;
    /// `grad ← ∇L_t(θ)`; returns `L_t(θ)`.
    fn grad_into(&mut self, step: usize, theta: &[f64], grad: &mut [f64]) -> f64;
    /// `grad ← ∇L_t(θ)`, `hu ← ∇²L_t(θ)·u`; returns `L_t(θ)`. The gradient must be
    /// bit-identical to [`Objective::grad_into`]'s.
    fn grad_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        u: &[f64],
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64;
    /// `grad ← ∇L_t(θ)`, then `make_u(grad, u)` builds the direction `u` from the gradient,
    /// then `hu ← ∇²L_t(θ)·u`; returns `L_t(θ)`. For optimizers whose adjoint direction
    /// depends on g (Adam: `u = (1−β₁)·dm + 2(1−β₂)·g⊙ds`). `make_u` sees the final gradient:
    /// a wrapper such as [`Penalized`] passes on its own `make_u` that completes the
    /// gradient in place and then calls the caller's, which must leave the gradient as it
    /// found it. What `grad` holds at the end is what `make_u` left there, bit-identical to
    /// [`Objective::grad_into`]'s.
    ///
    /// `make_u` must be a pure function of the gradient it is given and of what it
    /// captures (no accumulating side effects): the default runs the gradient twice, and
    /// [`Objective::grad_hvp_into`] overwrites `grad` with the objective's own gradient
    /// again, so `make_u` is called a second time on those same bits to let a wrapper
    /// complete it again (without the second call a penalty's `λ⊙θ` was lost).
    /// Implementations that share one forward pass call `make_u` once.
    fn grad_then_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        grad: &mut [f64],
        u: &mut [f64],
        make_u: &mut dyn FnMut(&mut [f64], &mut [f64]),
        hu: &mut [f64],
    ) -> f64 {
        self.grad_into(step, theta, grad);
        make_u(grad, u);
        let loss = self.grad_hvp_into(step, theta, u, grad, hu);
        make_u(grad, u);
        loss
    }
    /// Meta-objective: `grad ← ∇f(θ)` of the validation loss; returns `(f(θ), accuracy)`.
    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64);
    /// Mean loss over the whole training set, without the penalty (for reports).
    fn train_loss(&mut self, theta: &[f64]) -> f64;
    /// Per-training-row loss weights c (the example_weight block; `None` = every weight 1):
    /// the batch loss becomes `(1/B)·Σ c_i·CE_i`. Objectives without rows ignore it.
    fn set_row_weights(&mut self, weights: Option<&[f64]>) {
        let _ = weights;
    }
    /// `out[row] += scale·⟨u, ∂∇L_t/∂c_row⟩` for the rows of the batch of the last
    /// [`Objective::grad_hvp_into`] (with its `u`): `∂∇L_t/∂c_i = ∇CE_i/B`, a forward-mode
    /// quantity the Hessian-vector pass already has.
    fn add_row_tangents(&self, scale: f64, out: &mut [f64]) {
        let _ = (scale, out);
    }
    /// Mean loss and accuracy on the test set, if there is one (for reports; never tuned on).
    fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        let _ = theta;
        None
    }
    /// The threads this objective computes on; the exact optimizers run their element
    /// loops on the same ones (a cheap handle: clones share one pool).
    fn threads(&self) -> Threads {
        Threads::one()
    }
}

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
