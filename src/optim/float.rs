//! # Float64 SGD with momentum and plain SGD, forward and (approximately) reversed
//!
//! The reference implementations: `train` without `--exact` uses [`FloatMomentum::step`];
//! `verify-reversal` uses the reverse steps to show how far float reversal strays.

use super::diverged;
use crate::error::Result;
use crate::model::Objective;

/// SGD with momentum in f64.
#[derive(Debug, Clone)]
pub struct FloatMomentum {
    alpha: f64,
    gamma: f64,
    l2: f64,
    grad: Vec<f64>,
}

impl FloatMomentum {
    /// Scratch for `dim` parameters.
    pub fn new(dim: usize, alpha: f64, gamma: f64, l2: f64) -> Self {
        FloatMomentum {
            alpha,
            gamma,
            l2,
            grad: vec![0.0; dim],
        }
    }

    /// One step t: `v ← γ·v − (1−γ)·∇L_t(θ)`, `θ ← θ + α·v`. Returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`crate::Error::Diverged`] if the loss is not finite.
    pub fn step(
        &mut self,
        obj: &mut impl Objective,
        t: usize,
        theta: &mut [f64],
        v: &mut [f64],
    ) -> Result<f64> {
        let loss = obj.grad_into(t, theta, self.l2, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.alpha));
        }
        let (a, g, omg) = (self.alpha, self.gamma, 1.0 - self.gamma);
        for ((th, v), &gr) in theta.iter_mut().zip(v.iter_mut()).zip(&self.grad) {
            *v = g * *v - omg * gr;
            *th += a * *v;
        }
        Ok(loss)
    }

    /// Undo step t in f64: `θ ← θ − α·v`, `v ← (v + (1−γ)·∇L_t(θ))/γ`. Not exact.
    pub fn reverse_step(
        &mut self,
        obj: &mut impl Objective,
        t: usize,
        theta: &mut [f64],
        v: &mut [f64],
    ) {
        let a = self.alpha;
        for (th, &v) in theta.iter_mut().zip(v.iter()) {
            *th -= a * v;
        }
        obj.grad_into(t, theta, self.l2, &mut self.grad);
        let (g, omg) = (self.gamma, 1.0 - self.gamma);
        for (v, &gr) in v.iter_mut().zip(&self.grad) {
            *v = (*v + omg * gr) / g;
        }
    }
}

/// Plain SGD in f64.
#[derive(Debug, Clone)]
pub struct FloatSgd {
    alpha: f64,
    l2: f64,
    grad: Vec<f64>,
}

impl FloatSgd {
    /// Scratch for `dim` parameters.
    pub fn new(dim: usize, alpha: f64, l2: f64) -> Self {
        FloatSgd {
            alpha,
            l2,
            grad: vec![0.0; dim],
        }
    }

    /// One step t: `θ ← θ − α·∇L_t(θ)`. Returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`crate::Error::Diverged`] if the loss is not finite.
    pub fn step(&mut self, obj: &mut impl Objective, t: usize, theta: &mut [f64]) -> Result<f64> {
        let loss = obj.grad_into(t, theta, self.l2, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.alpha));
        }
        for (th, &gr) in theta.iter_mut().zip(&self.grad) {
            *th -= self.alpha * gr;
        }
        Ok(loss)
    }

    /// Undo step t as well as possible without stored gradients:
    /// `θ ← θ + α·∇L_t(θ)`, the gradient taken at the later point.
    pub fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, theta: &mut [f64]) {
        obj.grad_into(t, theta, self.l2, &mut self.grad);
        for (th, &gr) in theta.iter_mut().zip(&self.grad) {
            *th += self.alpha * gr;
        }
    }
}
