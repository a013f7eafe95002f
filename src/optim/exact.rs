//! # Exactly reversible SGD with momentum
//!
//! State: fixed-point θ and v and the information buffer of the `γ·v` multiplies.
//! Forward step t (γ = n/d everywhere, including `1−γ = (d−n)/d`):
//!
//! ```text
//! g = ∇L_t(θ_t)                         f64, from the exact θ_t
//! v ← (n/d)·v                           rational multiply, remainders → buffer
//! v ← v − round((1−γ)·g)                exact integer subtraction
//! θ ← θ + round(α·v)                    exact integer addition
//! ```
//!
//! Reverse step t, split in two so the hypergradient can compute `H·u` between them:
//! [`ExactMomentum::undo_position`] (`θ ← θ − round(α·v)`, the same increment, since v is
//! unchanged) and [`ExactMomentum::undo_velocity`] (`v ← v + round((1−γ)·g)`, then the
//! rational multiply undone). The gradient in between is recomputed on the replayed batch at
//! the bit-identical θ_t, so it equals the forward one bit for bit.

use super::{diverged, overflow};
use crate::error::Result;
use crate::exact::{InfoBuffer, Rational, fixed};
use crate::model::Objective;

/// Fixed-point (θ, v) and the information buffer.
#[derive(Debug, Clone)]
pub struct ExactState {
    /// θ in fixed point.
    pub theta: Vec<i64>,
    /// v in fixed point.
    pub v: Vec<i64>,
    /// Remainders of every `γ·v` so far.
    pub buffer: InfoBuffer,
}

impl ExactState {
    /// θ₀ rounded to fixed point, v₀ = 0, an empty buffer. `None` if θ₀ is out of range.
    pub fn new(theta0: &[f64], gamma: Rational) -> Option<Self> {
        let theta = fixed::from_f64_slice(theta0).ok()?;
        Some(ExactState {
            v: vec![0; theta.len()],
            buffer: InfoBuffer::new(theta.len(), gamma),
            theta,
        })
    }

    /// The start of an exact run of `steps` steps: θ₀ rounded to fixed point, v₀ = 0, and an
    /// empty buffer with room reserved for the run.
    ///
    /// # Errors
    /// [`crate::Error::Overflow`] (at step 0) if θ₀ is outside the fixed-point range.
    pub fn start(theta0: &[f64], gamma: Rational, steps: usize) -> Result<Self> {
        let mut s = Self::new(theta0, gamma).ok_or_else(super::overflow_at_init)?;
        s.reserve_steps(steps);
        Ok(s)
    }

    /// Reserve information-buffer space for `steps` forward steps (see
    /// [`InfoBuffer::reserve_steps`]).
    pub fn reserve_steps(&mut self, steps: usize) {
        self.buffer.reserve_steps(steps);
    }

    /// θ as f64 (exact).
    pub fn theta_f64(&self) -> Vec<f64> {
        self.theta.iter().map(|&x| fixed::to_f64(x)).collect()
    }
}

/// The exact momentum optimizer and its f64 scratch vectors.
#[derive(Debug, Clone)]
pub struct ExactMomentum {
    alpha: f64,
    gamma: Rational,
    l2: f64,
    theta_f: Vec<f64>,
    v_f: Vec<f64>,
    grad: Vec<f64>,
}

impl ExactMomentum {
    /// Scratch for `dim` parameters.
    pub fn new(dim: usize, alpha: f64, gamma: Rational, l2: f64) -> Self {
        ExactMomentum {
            alpha,
            gamma,
            l2,
            theta_f: vec![0.0; dim],
            v_f: vec![0.0; dim],
            grad: vec![0.0; dim],
        }
    }

    /// A whole exact forward run: `steps` steps from θ₀ with the hyperparameters of `hp` and
    /// the rational `gamma`. Returns the optimizer (for undoing the steps) and the state at θ_T.
    ///
    /// # Errors
    /// As [`ExactState::start`] and [`ExactMomentum::step`].
    pub fn run(
        obj: &mut impl Objective,
        theta0: &[f64],
        hp: super::Hyperparams,
        gamma: Rational,
        steps: usize,
    ) -> Result<(Self, ExactState)> {
        let mut state = ExactState::start(theta0, gamma, steps)?;
        let mut opt = ExactMomentum::new(theta0.len(), hp.alpha, gamma, hp.l2);
        for t in 0..steps {
            opt.step(obj, t, &mut state)?;
        }
        Ok((opt, state))
    }

    /// The rational γ.
    pub fn gamma(&self) -> Rational {
        self.gamma
    }

    /// Forward step t. Returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`crate::Error::Diverged`] for a non-finite loss, [`crate::Error::Overflow`] when θ
    /// or v leaves the fixed-point range.
    pub fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut ExactState) -> Result<f64> {
        fixed::to_f64_into(&s.theta, &mut self.theta_f);
        let loss = obj.grad_into(t, &self.theta_f, self.l2, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.alpha));
        }
        // One fused pass per element: v ← (n/d)·v − round((1−γ)·g), θ ← θ + round(α·v).
        // The buffer sees elements in increasing order, as mul_at requires.
        let (c, a) = (
            fixed::scaled(self.gamma.one_minus()),
            fixed::scaled(self.alpha),
        );
        let (mut ok_v, mut ok_theta) = (true, true);
        for i in 0..s.v.len() {
            let v = s.buffer.mul_at(i, s.v[i]);
            let (dec, ok1) = fixed::increment(c, self.grad[i]);
            let (v, ok2) = fixed::checked_sum(v, dec.wrapping_neg());
            ok_v &= ok1 & ok2;
            s.v[i] = v;
            let vf = fixed::to_f64(v);
            self.v_f[i] = vf;
            let (inc, ok3) = fixed::increment(a, vf);
            let (theta, ok4) = fixed::checked_sum(s.theta[i], inc);
            ok_theta &= ok3 & ok4;
            s.theta[i] = theta;
        }
        if !ok_v {
            return Err(overflow(t, "the velocity", self.alpha));
        }
        if !ok_theta {
            return Err(overflow(t, "a weight", self.alpha));
        }
        Ok(loss)
    }

    /// First half of reverse step t: `θ_t = θ_{t+1} − round(α·v_{t+1})`. Afterwards
    /// [`ExactMomentum::theta`] is θ_t and [`ExactMomentum::velocity`] is v_{t+1} in f64.
    pub fn undo_position(&mut self, s: &mut ExactState) {
        let a = fixed::scaled(self.alpha);
        let mut ok = true;
        for i in 0..s.v.len() {
            let vf = fixed::to_f64(s.v[i]);
            self.v_f[i] = vf;
            let (inc, ok1) = fixed::increment(a, vf);
            let (theta, ok2) = fixed::checked_sum(s.theta[i], inc.wrapping_neg());
            ok &= ok1 & ok2;
            s.theta[i] = theta;
            self.theta_f[i] = fixed::to_f64(theta);
        }
        debug_assert!(
            ok,
            "undoing a step that the forward pass completed cannot overflow"
        );
    }

    /// Second half of reverse step t, given `grad = ∇L_t(θ_t)`:
    /// `v_t = (d/n)·(v_{t+1} + round((1−γ)·g))`, exactly. Afterwards
    /// [`ExactMomentum::velocity`] is v_t in f64.
    pub fn undo_velocity(&mut self, s: &mut ExactState, grad: &[f64]) {
        let c = fixed::scaled(self.gamma.one_minus());
        let mut ok = true;
        // Decreasing order, as unmul_at requires.
        for i in (0..s.v.len()).rev() {
            let (inc, ok1) = fixed::increment(c, grad[i]);
            let (v, ok2) = fixed::checked_sum(s.v[i], inc);
            ok &= ok1 & ok2;
            let v = s.buffer.unmul_at(i, v);
            s.v[i] = v;
            self.v_f[i] = fixed::to_f64(v);
        }
        debug_assert!(
            ok,
            "undoing a step that the forward pass completed cannot overflow"
        );
    }

    /// Reverse step t: restores (θ_t, v_t) from (θ_{t+1}, v_{t+1}) bit for bit.
    pub fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut ExactState) {
        self.undo_position(s);
        obj.grad_into(t, &self.theta_f, self.l2, &mut self.grad);
        let grad = std::mem::take(&mut self.grad);
        self.undo_velocity(s, &grad);
        self.grad = grad;
    }

    /// θ in f64 as of the last step or undo.
    pub fn theta(&self) -> &[f64] {
        &self.theta_f
    }

    /// v in f64 as of the last undo.
    pub fn velocity(&self) -> &[f64] {
        &self.v_f
    }
}
