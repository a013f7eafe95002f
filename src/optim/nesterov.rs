//! # Nesterov momentum in f64: why a look-ahead gradient is not reversible
//!
//! ```text
//! g = ∇L_t(θ_t + α·γ·v_t)        the gradient at the look-ahead point
//! v ← γ·v − (1−γ)·g
//! θ ← θ + α·v
//! ```
//!
//! `θ_t = θ_{t+1} − α·v_{t+1}` is explicit, but the gradient that updated v was taken at
//! `θ_t + α·γ·v_t`, which depends on the v_t being solved for: the step has no explicit
//! inverse. The undo here uses the look-ahead `θ_t + α·γ·v_{t+1}` instead, so it drifts in any
//! arithmetic (`verify-reversal` shows it beside momentum, whose reversal is exact). It is a
//! registry entry for that comparison only: `inner.optimizer` does not accept it.

use super::plan::Plan;
use super::registry::{NotReversible, Optimizer, OptimizerId};
use super::{FloatOptimizer, FloatState, diverged};
use crate::error::Result;
use crate::hyper::Hypers;
use crate::model::{Layout, Objective, Threads};

/// Nesterov momentum: the registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Nesterov;

impl Optimizer for Nesterov {
    const ID: OptimizerId = OptimizerId::Nesterov;
    type Float = FloatNesterov;
    type Exact = NotReversible;
    fn float(hypers: &Hypers, layout: &Layout, steps: usize, rational: bool) -> FloatNesterov {
        FloatNesterov {
            plan: Plan::new(hypers, layout, steps),
            grad: vec![0.0; layout.len()],
            look: vec![0.0; layout.len()],
            rational,
        }
    }
    fn exact(_: &Hypers, _: &Layout, _: usize, _: &Threads) -> Option<NotReversible> {
        None
    }
}

/// Nesterov momentum in f64, with α_t and γ_t per array from their blocks.
#[derive(Debug, Clone)]
pub struct FloatNesterov {
    plan: Plan,
    grad: Vec<f64>,
    /// The look-ahead point θ + α·γ·v.
    look: Vec<f64>,
    rational: bool,
}

impl FloatNesterov {
    /// `look ← θ + α·γ·v`.
    fn look_ahead(&mut self, theta: &[f64], v: &[f64]) {
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let ag = self.plan.alpha.of(a) * self.plan.gamma_of(a, self.rational);
            for i in r.clone() {
                self.look[i] = theta[i] + ag * v[i];
            }
        }
    }
}

impl FloatOptimizer for FloatNesterov {
    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) -> Result<f64> {
        self.plan.at(t);
        let (theta, v) = (&mut s.theta, &mut s.aux[0]);
        self.look_ahead(theta, v);
        let loss = obj.grad_into(t, &self.look, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.plan.alpha.now[0]));
        }
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let (al, g) = (self.plan.alpha.of(a), self.plan.gamma_of(a, self.rational));
            for i in r.clone() {
                v[i] = g * v[i] - (1.0 - g) * self.grad[i];
                theta[i] += al * v[i];
            }
        }
        Ok(loss)
    }

    /// `θ ← θ − α·v`, then `v ← (v + (1−γ)·∇L_t(θ + α·γ·v))/γ` with the later v in the
    /// look-ahead (the one it needs is the unknown v_t).
    fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) {
        self.plan.at(t);
        let (theta, v) = (&mut s.theta, &mut s.aux[0]);
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let al = self.plan.alpha.of(a);
            for i in r.clone() {
                theta[i] -= al * v[i];
            }
        }
        self.look_ahead(theta, v);
        obj.grad_into(t, &self.look, &mut self.grad);
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let g = self.plan.gamma_of(a, self.rational);
            for i in r.clone() {
                v[i] = (v[i] + (1.0 - g) * self.grad[i]) / g;
            }
        }
    }
}
