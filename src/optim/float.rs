//! # Plain SGD in f64, forward and (approximately) reversed
//!
//! `θ ← θ − α_t·∇L_t(θ)`. Its only reversal without stored gradients takes the gradient at
//! the later point, `θ_t ≈ θ_{t+1} + α_t·∇L_t(θ_{t+1})`: `verify-reversal` shows how far that
//! strays. SGD with momentum, float and exact, is in [`super::momentum`].

use super::diverged;
use super::plan::Plan;
use super::registry::{NotReversible, Optimizer, OptimizerId};
use super::{FloatOptimizer, FloatState};
use crate::error::Result;
use crate::hyper::Hypers;
use crate::model::{Layout, Objective, Threads};

/// Plain SGD: the registry entry. It has momentum's kinds (γ unused), so a momentum config
/// runs as plain SGD by changing the optimizer's name alone.
#[derive(Debug, Clone, Copy)]
pub struct Sgd;

impl Optimizer for Sgd {
    const ID: OptimizerId = OptimizerId::Sgd;
    type Float = FloatSgd;
    type Exact = NotReversible;
    fn float(hypers: &Hypers, layout: &Layout, steps: usize, _: bool) -> FloatSgd {
        FloatSgd::new(hypers, layout, steps)
    }
    fn exact(_: &Hypers, _: &Layout, _: usize, _: &Threads) -> Option<NotReversible> {
        None
    }
}

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

impl FloatOptimizer for FloatSgd {
    /// One step t: `θ ← θ − α_t·∇L_t(θ)`. Returns `L_t(θ_t)`.
    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) -> Result<f64> {
        self.plan.at(t);
        let theta = &mut s.theta;
        let loss = obj.grad_into(t, theta, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.plan.alpha.now[0]));
        }
        self.apply(theta, -1.0);
        Ok(loss)
    }

    /// Undo step t as well as possible without stored gradients:
    /// `θ ← θ + α_t·∇L_t(θ)`, the gradient taken at the later point.
    fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) {
        self.plan.at(t);
        let theta = &mut s.theta;
        obj.grad_into(t, theta, &mut self.grad);
        self.apply(theta, 1.0);
    }
}
