//! # Outer optimizers in warped coordinates
//!
//! Hyperparameters move in unconstrained coordinates `u`:
//!
//! ```text
//! u_α = ln α     u_γ = logit γ = ln(γ/(1−γ))     u_l2 = ln l2     u_s = ln init_scale
//! ∂f/∂u = ∂f/∂h · dh/du:   α,   γ(1−γ),   l2,   init_scale
//! ```
//!
//! Adam (Kingma & Ba 2015; β₁ = 0.9, β₂ = 0.999, ε = 1e−8) or plain gradient descent,
//! `u ← u − lr·step`. The chaos guard: each coordinate of the hypergradient is clipped to
//! `±MAX_GRADIENT` before it reaches the optimizer, and each step to `±MAX_STEP`, so an
//! exploding hypergradient cannot throw a hyperparameter far in one outer step. γ is
//! kept within [2⁻¹⁶, [`crate::config::MAX_GAMMA`]], the momenta the exact arithmetic
//! represents.

use crate::config::{Hyper, MAX_GAMMA, OuterOptimizer};

/// Smallest γ the exact arithmetic represents, 1/2^16.
pub const MIN_GAMMA: f64 = 1.0 / 65536.0;

/// Largest move of one warped coordinate in one outer step (a factor e^0.5 ≈ 1.65 in α).
pub const MAX_STEP: f64 = 0.5;

/// Largest warped-coordinate hypergradient fed to the optimizer. Beyond it a 1% change of the
/// hyperparameter would move the validation loss by more than 0.1 nats, which in practice
/// only chaotic inner dynamics produce (Maclaurin et al. 2015, §4); clipping before Adam
/// keeps one such gradient from swamping its second moment for thousands of iterations.
pub const MAX_GRADIENT: f64 = 10.0;

/// Hyperparameter → warped coordinate.
pub fn warp(h: Hyper, value: f64) -> f64 {
    match h {
        Hyper::Gamma => (value / (1.0 - value)).ln(),
        _ => value.ln(),
    }
}

/// Warped coordinate → hyperparameter.
pub fn unwarp(h: Hyper, u: f64) -> f64 {
    match h {
        Hyper::Gamma => (1.0 / (1.0 + (-u).exp())).clamp(MIN_GAMMA, MAX_GAMMA),
        _ => u.exp(),
    }
}

/// `dh/du` at the hyperparameter value `value`.
pub fn jacobian(h: Hyper, value: f64) -> f64 {
    match h {
        Hyper::Gamma => value * (1.0 - value),
        _ => value,
    }
}

/// Adam or gradient-descent state over the tuned coordinates.
#[derive(Debug, Clone)]
pub struct OuterOptimizerState {
    kind: OuterOptimizer,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

/// One proposed move: the step per coordinate and whether the chaos guard clipped anything.
#[derive(Debug, Clone)]
pub struct Step {
    /// Δu per tuned coordinate (already multiplied by the learning rate, already clipped).
    pub delta: Vec<f64>,
    /// True if a gradient coordinate was clipped to ±[`MAX_GRADIENT`] or a step to
    /// ±[`MAX_STEP`].
    pub clipped: bool,
}

impl OuterOptimizerState {
    /// Fresh state for `dim` tuned coordinates.
    pub fn new(kind: OuterOptimizer, dim: usize) -> Self {
        OuterOptimizerState {
            kind,
            m: vec![0.0; dim],
            v: vec![0.0; dim],
            t: 0,
        }
    }

    /// The move for gradient `grad_u` (∂f/∂u, finite) at learning rate `lr`; updates the
    /// moments.
    pub fn step(&mut self, grad_u: &[f64], lr: f64) -> Step {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        self.t += 1;
        let mut clipped = false;
        let delta = grad_u
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                if g.abs() > MAX_GRADIENT {
                    clipped = true;
                }
                let g = g.clamp(-MAX_GRADIENT, MAX_GRADIENT);
                let raw = match self.kind {
                    OuterOptimizer::Sgd => -lr * g,
                    OuterOptimizer::Adam => {
                        self.m[i] = B1 * self.m[i] + (1.0 - B1) * g;
                        self.v[i] = B2 * self.v[i] + (1.0 - B2) * g * g;
                        let mh = self.m[i] / (1.0 - B1.powi(self.t));
                        let vh = self.v[i] / (1.0 - B2.powi(self.t));
                        -lr * mh / (vh.sqrt() + EPS)
                    }
                };
                // Written so that a NaN step is caught too (and becomes no move).
                if raw.abs() <= MAX_STEP {
                    raw
                } else {
                    clipped = true;
                    if raw.is_nan() {
                        0.0
                    } else {
                        MAX_STEP.copysign(raw)
                    }
                }
            })
            .collect();
        Step { delta, clipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warp_round_trips_and_jacobian_matches() {
        for (h, v) in [
            (Hyper::Alpha, 0.3),
            (Hyper::Gamma, 0.9),
            (Hyper::L2, 1e-3),
            (Hyper::InitScale, 2.0),
        ] {
            let u = warp(h, v);
            assert!((unwarp(h, u) - v).abs() < 1e-12 * v.max(1.0));
            let e = 1e-6;
            let fd = (unwarp(h, u + e) - unwarp(h, u - e)) / (2.0 * e);
            assert!((fd - jacobian(h, v)).abs() < 1e-8, "{h:?}");
        }
        assert!(unwarp(Hyper::Gamma, 50.0) <= MAX_GAMMA);
        assert!(unwarp(Hyper::Gamma, -800.0) >= MIN_GAMMA);
    }

    #[test]
    fn steps_are_clipped() {
        let mut s = OuterOptimizerState::new(OuterOptimizer::Sgd, 2);
        let st = s.step(&[1e6, -1e-3], 0.1);
        assert!(st.clipped);
        assert_eq!(st.delta[0].to_bits(), (-MAX_STEP).to_bits());
        assert!((st.delta[1] - 1e-4).abs() < 1e-15);
    }

    #[test]
    fn chaotic_gradients_do_not_stall_adam() {
        // One enormous hypergradient, then ordinary ones: the moves must stay lr-sized
        // instead of collapsing to 0 because g² overflowed the second moment.
        let mut s = OuterOptimizerState::new(OuterOptimizer::Adam, 1);
        assert!(s.step(&[1e200], 0.1).clipped);
        let later = s.step(&[0.3], 0.1);
        assert!(
            later.delta[0].abs() > 1e-3,
            "Adam stalled: {}",
            later.delta[0]
        );
        assert!(later.delta[0].is_finite());
    }

    #[test]
    fn adam_first_step_is_lr_sized() {
        let mut s = OuterOptimizerState::new(OuterOptimizer::Adam, 1);
        let st = s.step(&[3.5], 0.1);
        assert!((st.delta[0] + 0.1).abs() < 1e-9);
        assert!(!st.clipped);
    }
}
