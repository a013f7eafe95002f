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
//!
//! The penalty changes the training oracle only ([`Objective`]); evaluation ([`Evaluate`])
//! and the per-row hooks ([`RowTangents`]) are forwarded to the inner objective unchanged.

use super::{Evaluate, Objective, RowTangents};

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
}

/// Evaluation is penalty-free: the inner objective's.
impl<O: Evaluate + ?Sized> Evaluate for Penalized<'_, O> {
    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        self.inner.validation_grad_into(theta, grad)
    }

    fn train_loss(&mut self, theta: &[f64]) -> f64 {
        self.inner.train_loss(theta)
    }

    fn test_metrics(&mut self, theta: &[f64]) -> Option<(f64, f64)> {
        self.inner.test_metrics(theta)
    }
}

/// The penalty does not depend on the row weights: the inner objective's rows.
impl<O: RowTangents + ?Sized> RowTangents for Penalized<'_, O> {
    fn set_row_weights(&mut self, weights: Option<&[f64]>) {
        self.inner.set_row_weights(weights)
    }

    fn add_row_tangents(&self, scale: f64, out: &mut [f64]) {
        self.inner.add_row_tangents(scale, out)
    }

    fn set_row_inputs(&mut self, inputs: Option<&[f64]>) {
        self.inner.set_row_inputs(inputs)
    }

    fn add_input_tangents(&self, scale: f64, out: &mut [f64]) {
        self.inner.add_input_tangents(scale, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Quadratic;

    /// The gradient-then-HVP pass through a penalty over an objective with the trait's
    /// default pass (the quadratic) gives the penalized gradient bit for bit, the direction
    /// built from it, and the penalized Hessian-vector product along it.
    #[test]
    fn gradient_then_hvp_through_a_penalty_keeps_the_penalty() {
        let mut q = Quadratic {
            a: vec![0.5, 2.0, 3.0, 1.5],
            c: vec![1.0, -0.5, 0.2, 0.0],
            omega: 0.3,
        };
        let theta = [0.1, 0.7, -0.4, 2.0];
        let mut p = Penalized::new(&mut q, vec![0.1, 0.0, 0.25, 1.0]);
        let (mut want_g, mut want_hu, mut scratch) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        let want_loss = p.grad_into(3, &theta, &mut want_g);
        // u = 2·g + 1, built from the gradient the pass hands over.
        let make = |g: &[f64]| -> Vec<f64> { g.iter().map(|g| 2.0 * g + 1.0).collect() };
        let want_u = make(&want_g);
        p.grad_hvp_into(3, &theta, &want_u, &mut scratch, &mut want_hu);
        let (mut g, mut u, mut hu) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        let mut make_u = |g: &mut [f64], u: &mut [f64]| u.copy_from_slice(&make(g));
        let loss = p.grad_then_hvp_into(3, &theta, &mut g, &mut u, &mut make_u, &mut hu);
        let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(loss.to_bits(), want_loss.to_bits());
        assert_eq!(
            bits(&g),
            bits(&want_g),
            "the penalty's λ⊙θ must stay in the gradient"
        );
        assert_eq!(bits(&u), bits(&want_u));
        assert_eq!(bits(&hu), bits(&want_hu));
    }
}
