//! # The weight penalty as a wrapper objective
//!
//! The model's loss is penalty-free; [`Penalized`] adds, per parameter entry,
//!
//! ```text
//! L(θ) = L_model(θ) + ½·Σ_i λ_i·θ_i²      ∇L = ∇L_model + λ ⊙ θ      H·u = H_model·u + λ ⊙ u
//! ```
//!
//! with `λ` the per-parameter expansion of the `l2` block (0 on biases). The reverse pass
//! needs `∂∇L/∂λ_i = θ_i`, which it forms itself from the same λ.

use super::Objective;

/// An objective plus `½·Σ λ_i·θ_i²`.
pub struct Penalized<'a, O: ?Sized> {
    inner: &'a mut O,
    lambda: Vec<f64>,
    active: bool,
}

impl<'a, O: Objective + ?Sized> Penalized<'a, O> {
    /// `inner` penalised by the per-parameter `lambda` (length `inner.dim()`).
    pub fn new(inner: &'a mut O, lambda: Vec<f64>) -> Self {
        let active = lambda.iter().any(|&l| l != 0.0);
        Penalized {
            inner,
            lambda,
            active,
        }
    }

    /// The per-parameter penalty λ.
    pub fn lambda(&self) -> &[f64] {
        &self.lambda
    }
}

/// `out += λ ⊙ x`; returns `½·Σ λ_i·x_i²`.
fn add_penalty(lambda: &[f64], x: &[f64], out: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    for ((o, &l), &x) in out.iter_mut().zip(lambda).zip(x) {
        *o += l * x;
        sum += l * x * x;
    }
    0.5 * sum
}

impl<O: Objective + ?Sized> Objective for Penalized<'_, O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn grad_into(&mut self, step: usize, theta: &[f64], grad: &mut [f64]) -> f64 {
        let loss = self.inner.grad_into(step, theta, grad);
        if self.active {
            loss + add_penalty(&self.lambda, theta, grad)
        } else {
            loss
        }
    }

    fn grad_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        u: &[f64],
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        let loss = self.inner.grad_hvp_into(step, theta, u, grad, hu);
        if self.active {
            add_penalty(&self.lambda, u, hu);
            loss + add_penalty(&self.lambda, theta, grad)
        } else {
            loss
        }
    }

    fn grad_then_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        grad: &mut [f64],
        u: &mut [f64],
        make_u: &mut dyn FnMut(&mut [f64], &mut [f64]),
        hu: &mut [f64],
    ) -> f64 {
        if !self.active {
            return self
                .inner
                .grad_then_hvp_into(step, theta, grad, u, make_u, hu);
        }
        let lambda = &self.lambda;
        let mut penalty = 0.0;
        let mut wrapped = |g: &mut [f64], u: &mut [f64]| {
            penalty = add_penalty(lambda, theta, g);
            make_u(g, u);
        };
        let loss = self
            .inner
            .grad_then_hvp_into(step, theta, grad, u, &mut wrapped, hu);
        add_penalty(lambda, u, hu);
        loss + penalty
    }

    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        self.inner.validation_grad_into(theta, grad)
    }

    fn train_loss(&mut self, theta: &[f64]) -> f64 {
        self.inner.train_loss(theta)
    }

    fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        self.inner.test_metrics(theta)
    }

    fn set_row_weights(&mut self, weights: Option<&[f64]>) {
        self.inner.set_row_weights(weights)
    }

    fn threads(&self) -> crate::model::Threads {
        self.inner.threads()
    }

    fn add_row_tangents(&self, scale: f64, out: &mut [f64]) {
        self.inner.add_row_tangents(scale, out)
    }
}
