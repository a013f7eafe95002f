//! # What a training problem offers: three capabilities
//!
//! The optimizers, the hypergradient paths and the outer loops are written against three
//! separate traits, each bound only where it is used:
//!
//! | trait | computes | needed by |
//! |---|---|---|
//! | [`Objective`] | `L_t(θ)`, `∇L_t(θ)`, `∇²L_t(θ)·u` on the batch of step t | every optimizer step |
//! | [`Evaluate`] | `f(θ)`, `∇f(θ)` and accuracy on the validation set; the mean training loss; test metrics | the end of a run, reports |
//! | [`RowTangents`] | per-row loss weights c and `⟨u, ∂∇L_t/∂c_i⟩`; learnable rows' inputs x and `∂⟨u, ∇L_t⟩/∂x_i` | the example-weight and input hypergradients |
//!
//! A wrapper implements the trait whose numbers it changes and forwards the others
//! explicitly ([`super::Penalized`] changes the gradient only). Only the oracle's
//! [`Objective::grad_then_hvp_into`] has a default; every evaluation and per-row hook must
//! be written out, so a wrapper cannot drop one by omission. The threads an optimizer runs
//! its element loops on are not asked of the objective: they are a setting the optimizer
//! is built with.

/// The training oracle: loss, gradient and Hessian-vector product on the batch of step t,
///
/// ```text
/// L_t(θ),   ∇L_t(θ),   ∇²L_t(θ)·u
/// ```
///
/// `step` selects the mini-batch of inner step `t`; the same `step` must always give the
/// same batch, so the reverse pass recomputes bit-identical gradients. Penalties are not the
/// model's business: [`super::Penalized`] wraps any objective with one.
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
    /// a wrapper such as [`super::Penalized`] passes on its own `make_u` that completes the
    /// gradient in place and then calls the caller's, which must leave the gradient as it
    /// found it. What `grad` holds at the end is what `make_u` left there, bit-identical to
    /// [`Objective::grad_into`]'s.
    ///
    /// `make_u` must be a pure function of the gradient it is given and of what it
    /// captures (no accumulating side effects): the default runs the gradient twice, and
    /// [`Objective::grad_hvp_into`] overwrites `grad` with the objective's own gradient
    /// again, so `make_u` is called a second time on those same bits to let a wrapper
    /// complete it again (without the second call a penalty's `λ⊙θ` would be lost).
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
}

/// Evaluation at a point θ, outside the inner steps: the meta-objective and the reports,
///
/// ```text
/// f(θ) = (1/N_val)·Σ_{i ∈ val} CE_i(θ),   ∇f(θ),   accuracy_val(θ)
/// L_train(θ) = (1/N_train)·Σ_{i ∈ train} CE_i(θ)          (no penalty, no row weights)
/// (L_test(θ), accuracy_test(θ))                            (reported, never tuned on)
/// ```
pub trait Evaluate {
    /// Meta-objective: `grad ← ∇f(θ)` of the validation loss; returns `(f(θ), accuracy)`.
    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64);
    /// Mean loss over the whole training set, without the penalty (for reports).
    fn train_loss(&mut self, theta: &[f64]) -> f64;
    /// Mean loss and accuracy on the test set, `None` without one (for reports; never
    /// tuned on).
    fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)>;
}

/// Per-training-row loss weights c and learnable inputs x, and the batch gradient's
/// derivatives along them,
///
/// ```text
/// L_t(θ; c, x) = (1/B)·Σ_{i ∈ batch t} c_i·CE_i(θ; x_i)
/// ∂∇L_t/∂c_i = ∇CE_i(θ)/B              ∂⟨u, ∇L_t⟩/∂x_i = (c_i/B)·∂⟨u, ∇CE_i⟩/∂x_i
/// ```
///
/// The example-weight hypergradient needs `⟨u, ∂∇L_t/∂c_i⟩` for the rows of the batch, a
/// forward-mode quantity the Hessian-vector pass along `u` already has; the input
/// hypergradient needs the gradient of that same quantity with respect to the row's input,
/// which the pass carries down to the input layer. No method has a default: an objective
/// without rows implements them as no-ops, and a wrapper forwards them.
pub trait RowTangents {
    /// Set the weights c (the example_weight block, one per training row; `None` = every
    /// weight 1). Objectives without rows ignore it.
    fn set_row_weights(&mut self, weights: Option<&[f64]>);
    /// `out[row] += scale·⟨u, ∂∇L_t/∂c_row⟩` for the rows of the batch of the last
    /// [`Objective::grad_hvp_into`] or [`Objective::grad_then_hvp_into`] (with its `u`).
    /// Objectives without rows add nothing.
    fn add_row_tangents(&self, scale: f64, out: &mut [f64]);
    /// Set the learnable rows' features x (the input block, raw units, `[row][feature]`
    /// flat; `None` = as loaded). From then on every Hessian-vector product also computes the
    /// input tangents. Objectives without learnable rows ignore it.
    fn set_row_inputs(&mut self, inputs: Option<&[f64]>);
    /// `out[row·D + f] += scale·∂⟨u, ∇L_t⟩/∂x_{row,f}` for the learnable rows in the batch
    /// of the last Hessian-vector product (with its `u`), in raw units. Adds nothing unless
    /// [`RowTangents::set_row_inputs`] gave inputs.
    fn add_input_tangents(&self, scale: f64, out: &mut [f64]);
}
