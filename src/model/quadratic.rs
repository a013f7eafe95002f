//! # A diagonal quadratic objective
//!
//! `L_t(θ) = ½·Σ_i a_i·(θ_i − c_i·cos(ω·t))²`, a different minimum at every step, with the
//! closed forms `∇L_t = a ⊙ (θ − c·cos ωt)` and `∇²L_t·u = a ⊙ u`; the validation loss is
//! `½·Σ (θ_i − 1)²`. Gradient and Hessian-vector product cost one pass over θ, so with it a
//! benchmark or test sees the optimizers' own work (the exact arithmetic, the adjoint)
//! without a network's matrix products, and it allocates nothing per call.

use super::{Evaluate, Objective, RowTangents};

/// The quadratic with curvatures `a`, minimum directions `c` and angular step `omega`.
#[derive(Debug, Clone)]
pub struct Quadratic {
    /// Curvature per parameter.
    pub a: Vec<f64>,
    /// Direction of the moving minimum per parameter.
    pub c: Vec<f64>,
    /// Angular frequency ω of the minimum's movement, per step.
    pub omega: f64,
}

impl Objective for Quadratic {
    fn dim(&self) -> usize {
        self.a.len()
    }

    fn grad_into(&mut self, step: usize, theta: &[f64], grad: &mut [f64]) -> f64 {
        let ct = (step as f64 * self.omega).cos();
        let mut loss = 0.0;
        for (((g, &t), &a), &c) in grad.iter_mut().zip(theta).zip(&self.a).zip(&self.c) {
            let d = t - c * ct;
            loss += 0.5 * a * d * d;
            *g = a * d;
        }
        loss
    }

    fn grad_hvp_into(
        &mut self,
        step: usize,
        theta: &[f64],
        u: &[f64],
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        for ((h, &u), &a) in hu.iter_mut().zip(u).zip(&self.a) {
            *h = a * u;
        }
        self.grad_into(step, theta, grad)
    }
}

impl Evaluate for Quadratic {
    fn validation_grad_into(&mut self, theta: &[f64], grad: &mut [f64]) -> (f64, f64) {
        let mut loss = 0.0;
        for (g, &t) in grad.iter_mut().zip(theta) {
            *g = t - 1.0;
            loss += 0.5 * (t - 1.0) * (t - 1.0);
        }
        (loss, 0.0)
    }

    fn train_loss(&mut self, _theta: &[f64]) -> f64 {
        0.0
    }

    fn test_metrics(&mut self, _theta: &[f64]) -> Option<(f64, f64)> {
        None
    }
}

/// No rows: the weights change nothing and have no tangents.
impl RowTangents for Quadratic {
    fn set_row_weights(&mut self, _weights: Option<&[f64]>) {}

    fn add_row_tangents(&self, _scale: f64, _out: &mut [f64]) {}

    fn set_row_inputs(&mut self, _inputs: Option<&[f64]>) {}

    fn add_input_tangents(&self, _scale: f64, _out: &mut [f64]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_and_hvp_match_finite_differences() {
        let mut q = Quadratic {
            a: vec![0.5, 2.0, 3.0],
            c: vec![1.0, -0.5, 0.2],
            omega: 0.3,
        };
        let theta = [0.1, 0.7, -0.4];
        let u = [1.0, -2.0, 0.5];
        let (mut g, mut hu, mut g2) = ([0.0; 3], [0.0; 3], [0.0; 3]);
        q.grad_hvp_into(4, &theta, &u, &mut g, &mut hu);
        let h = 1e-6;
        for i in 0..3 {
            let mut p = theta;
            p[i] += h;
            let up = q.grad_into(4, &p, &mut g2);
            p[i] -= 2.0 * h;
            let down = q.grad_into(4, &p, &mut g2);
            assert!(((up - down) / (2.0 * h) - g[i]).abs() < 1e-8, "{i}");
        }
        let mut p = theta;
        for (p, u) in p.iter_mut().zip(u) {
            *p += h * u;
        }
        q.grad_into(4, &p, &mut g2);
        for i in 0..3 {
            assert!(((g2[i] - g[i]) / h - hu[i]).abs() < 1e-6, "{i}");
        }
    }
}
