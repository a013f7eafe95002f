//! # Plain SGD in f64, forward and (approximately) reversed
//!
//! `θ ← θ − α_t·∇L_t(θ)`. Its only reversal without stored gradients takes the gradient at
//! the later point, `θ_t ≈ θ_{t+1} + α_t·∇L_t(θ_{t+1})`: `verify-reversal` shows how far that
//! strays. SGD with momentum, float and exact, is in [`super::momentum`].

use super::diverged;
use super::plan::Plan;
use crate::error::Result;
use crate::hyper::Hypers;
use crate::model::{Layout, Objective};

/// Plain SGD in f64, with α_t per array from the α block.
#[derive(Debug, Clone)]
pub struct FloatSgd {
    plan: Plan,
    grad: Vec<f64>,
}

impl FloatSgd {
    /// The optimizer for `hypers`' α block over `layout`, for `steps` steps.
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        FloatSgd {
            plan: Plan::new(hypers, layout, steps),
            grad: vec![0.0; layout.len()],
        }
    }

    /// One step t: `θ ← θ − α_t·∇L_t(θ)`. Returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`crate::Error::Diverged`] if the loss is not finite.
    pub fn step(&mut self, obj: &mut impl Objective, t: usize, theta: &mut [f64]) -> Result<f64> {
        self.plan.at(t);
        let loss = obj.grad_into(t, theta, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.plan.alpha.now[0]));
        }
        self.apply(theta, -1.0);
        Ok(loss)
    }

    /// Undo step t as well as possible without stored gradients:
    /// `θ ← θ + α_t·∇L_t(θ)`, the gradient taken at the later point.
    pub fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, theta: &mut [f64]) {
        self.plan.at(t);
        obj.grad_into(t, theta, &mut self.grad);
        self.apply(theta, 1.0);
    }

    /// `θ ← θ + sign·α_t ⊙ grad`.
    fn apply(&self, theta: &mut [f64], sign: f64) {
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let al = sign * self.plan.alpha.of(a);
            for i in r.clone() {
                theta[i] += al * self.grad[i];
            }
        }
    }
}
