//! # Outer optimizers in warped coordinates
//!
//! The tuned entries move as one flat vector of warped coordinates `u` (log α, logit γ,
//! β₁, β₂, ρ, log ε, log l2, log init_scale, logit c: [`crate::hyper::Kind::warp`]), by Adam
//! (Kingma & Ba 2015; β₁ = 0.9, β₂ = 0.999, ε = 1e−8) or plain gradient descent,
//! `u ← u − lr·step`.
//!
//! Each coordinate has its own learning rate (its block's, `outer.learning_rate`).
//!
//! The chaos guard, per entry: each coordinate of the hypergradient is clipped to
//! `±MAX_GRADIENT` before it reaches the optimizer, and each step to its limit (`±MAX_STEP`,
//! or half the box for an input entry), so an exploding hypergradient cannot throw a
//! hyperparameter far in one outer step.

use crate::config::OuterOptimizer;

/// Largest move of one warped coordinate in one outer step (a factor e^0.5 ≈ 1.65 in α).
pub const MAX_STEP: f64 = 0.5;

/// Largest warped-coordinate hypergradient fed to the optimizer. Beyond it a 1% change of the
/// hyperparameter would move the validation loss by more than 0.1 nats, which in practice
/// only chaotic inner dynamics produce (Maclaurin et al. 2015, §4); clipping before Adam
/// keeps one such gradient from swamping its second moment for thousands of iterations.
pub const MAX_GRADIENT: f64 = 10.0;

/// Adam or gradient-descent state over the tuned coordinates (saved in checkpoints:
/// [`super::state`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// True if a gradient coordinate was clipped to ±[`MAX_GRADIENT`] or a step to its
    /// limit.
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

    /// An error unless this is a state over `dim` coordinates with finite moments (a state
    /// read back from a file).
    ///
    /// # Errors
    /// What is wrong, phrased to follow the state's name.
    pub fn check(&self, dim: usize) -> Result<(), String> {
        if self.m.len() != dim || self.v.len() != dim {
            return Err(format!(
                "has {} and {} moments, the run tunes {dim} coordinates",
                self.m.len(),
                self.v.len()
            ));
        }
        let finite = self.m.iter().all(|m| m.is_finite());
        if !finite || self.v.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || self.t < 0 {
            return Err("holds a non-finite moment or a negative step count".into());
        }
        Ok(())
    }

    /// The move for gradient `grad_u` (∂f/∂u, finite) at learning rates `lr`, each
    /// coordinate's move at most `limit` (per coordinate); updates the moments.
    pub fn step(&mut self, grad_u: &[f64], lr: &[f64], limit: &[f64]) -> Step {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        self.t += 1;
        let mut clipped = false;
        let delta = grad_u
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                let (lr, max_step) = (lr[i], limit[i]);
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
                if raw.abs() <= max_step {
                    raw
                } else {
                    clipped = raw.is_nan() || max_step > 0.0 || clipped;
                    if raw.is_nan() {
                        0.0
                    } else {
                        max_step.copysign(raw)
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
    fn steps_are_clipped() {
        let mut s = OuterOptimizerState::new(OuterOptimizer::Sgd, 2);
        let st = s.step(&[1e6, -1e-3], &[0.1, 0.1], &[MAX_STEP, MAX_STEP]);
        assert!(st.clipped);
        assert_eq!(st.delta[0].to_bits(), (-MAX_STEP).to_bits());
        assert!((st.delta[1] - 1e-4).abs() < 1e-15);
    }

    #[test]
    fn chaotic_gradients_do_not_stall_adam() {
        // One enormous hypergradient, then ordinary ones: the moves must stay lr-sized
        // instead of collapsing to 0 because g² overflowed the second moment.
        let mut s = OuterOptimizerState::new(OuterOptimizer::Adam, 1);
        assert!(s.step(&[1e200], &[0.1], &[MAX_STEP]).clipped);
        let later = s.step(&[0.3], &[0.1], &[MAX_STEP]);
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
        let st = s.step(&[3.5], &[0.1], &[MAX_STEP]);
        assert!((st.delta[0] + 0.1).abs() < 1e-9);
        assert!(!st.clipped);
    }
}
