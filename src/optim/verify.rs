//! # How far does reversed training stray from the forward trajectory?
//!
//! Train T steps, reverse them, and compare the reversed θ_t with the forward θ_t:
//!
//! ```text
//! trace_error(t) = max_i |θ_t,i(reversed) − θ_t,i(forward)|
//! max_trace_error = max_t trace_error(t),   theta0_error = trace_error(0)
//! ```
//!
//! Float momentum reversal divides by γ every step, multiplying rounding errors by 1/γ:
//! about log₂(1/γ) bits are lost per step, so at γ = 0.9 nothing is left after a few hundred
//! steps, while at γ = 0.99 it takes thousands. Exact momentum reversal is bit-exact. Plain
//! SGD cannot be reversed without the gradients it used: its reversal takes the gradient at
//! the later point, `θ_t ≈ θ_{t+1} + α·∇L_t(θ_{t+1})`, in either arithmetic, and strays in
//! both (the information is lost by the dynamics, not by rounding).
//!
//! The forward trajectory is kept for the comparison (this is a diagnostic, not the
//! hypergradient path), every `stride`-th step so that it stays under [`TRACE_BUDGET_BYTES`].

use super::{
    Arithmetic, ExactMomentum, FloatMomentum, FloatSgd, Reversible, diverged, overflow,
    overflow_at_init,
};
use crate::config::InnerOptimizer;
use crate::error::Result;
use crate::exact::{Rational, fixed};
use crate::hyper::{Block, Hypers, Kind};
use crate::model::{Layout, Objective};

/// Memory allowed for the stored forward trajectory.
pub const TRACE_BUDGET_BYTES: usize = 256 << 20;

/// Result of one forward-and-reverse run.
#[derive(Debug, Clone)]
pub struct ReversalReport {
    /// max over recorded t of the trace error.
    pub max_trace_error: f64,
    /// max_i |θ₀(reversed) − θ₀|.
    pub theta0_error: f64,
    /// Information buffer bits per parameter per step (0 where there is no buffer).
    pub info_bits_per_param_step: f64,
    /// Bytes the information buffer held at θ_T.
    pub info_buffer_bytes: u64,
    /// Bytes storing the trajectory would take.
    pub store_all_bytes: u64,
    /// The γ actually used (the rational one in exact arithmetic).
    pub effective_gamma: f64,
    /// `(t, trace_error(t))` for recorded t, in increasing t.
    pub per_step: Vec<(usize, f64)>,
}

/// Forward `steps` steps from `theta0` with constant α and γ, reverse them, and measure the
/// error. `obj` is the (penalised) training objective over `layout`.
///
/// # Errors
/// Divergence or overflow of the forward run.
#[allow(clippy::too_many_arguments)]
pub fn verify_reversal(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    method: InnerOptimizer,
    arithmetic: Arithmetic,
    alpha: f64,
    gamma: f64,
    steps: usize,
) -> Result<ReversalReport> {
    let n = obj.dim();
    let hypers = Hypers {
        blocks: vec![
            Block::scalar(Kind::Alpha, layout, alpha),
            Block::scalar(Kind::Gamma, layout, gamma),
        ],
    };
    let stride = (steps + 1)
        .saturating_mul(n * 8)
        .div_ceil(TRACE_BUDGET_BYTES)
        .max(1);
    let mut trace = Trace {
        stride,
        forward: Vec::new(),
        errors: Vec::new(),
    };
    let state_vectors = if method == InnerOptimizer::Momentum {
        2
    } else {
        1
    };
    let store_all_bytes = (steps as u64 + 1) * n as u64 * 8 * state_vectors;
    let (info_buffer_bytes, effective_gamma) = match (method, arithmetic) {
        (InnerOptimizer::Momentum, Arithmetic::Float) => {
            let mut theta = theta0.to_vec();
            let mut v = vec![0.0; n];
            let mut opt = FloatMomentum::new(&hypers, layout, steps);
            trace.record(0, &theta);
            for t in 0..steps {
                opt.step(obj, t, &mut theta, &mut v)?;
                trace.record(t + 1, &theta);
            }
            for t in (0..steps).rev() {
                opt.reverse_step(obj, t, &mut theta, &mut v);
                trace.compare(t, &theta);
            }
            (0, gamma)
        }
        (InnerOptimizer::Momentum, Arithmetic::Exact) => {
            let mut opt = ExactMomentum::new(&hypers, layout, steps);
            let mut s = opt.start(theta0)?;
            trace.record(0, &opt.theta_f64(&s));
            for t in 0..steps {
                opt.step(obj, t, &mut s)?;
                trace.record(t + 1, &opt.theta_f64(&s));
            }
            let bytes = s.buffer.bytes() as u64;
            for t in (0..steps).rev() {
                opt.undo_step(obj, t, &mut s);
                trace.compare(t, &opt.theta_f64(&s));
            }
            (bytes, Rational::of_valid(gamma).value())
        }
        (InnerOptimizer::Sgd, Arithmetic::Float) => {
            let mut theta = theta0.to_vec();
            let mut opt = FloatSgd::new(&hypers, layout, steps);
            trace.record(0, &theta);
            for t in 0..steps {
                opt.step(obj, t, &mut theta)?;
                trace.record(t + 1, &theta);
            }
            for t in (0..steps).rev() {
                opt.reverse_step(obj, t, &mut theta);
                trace.compare(t, &theta);
            }
            (0, gamma)
        }
        (InnerOptimizer::Sgd, Arithmetic::Exact) => {
            exact_sgd(obj, theta0, alpha, steps, &mut trace)?;
            (0, gamma)
        }
    };
    let theta0_error = trace
        .errors
        .iter()
        .find(|(t, _)| *t == 0)
        .map_or(0.0, |e| e.1);
    trace.errors.sort_by_key(|e| e.0);
    Ok(ReversalReport {
        max_trace_error: trace.errors.iter().map(|e| e.1).fold(0.0, f64::max),
        theta0_error,
        info_bits_per_param_step: 8.0 * info_buffer_bytes as f64 / (n as f64 * steps.max(1) as f64),
        info_buffer_bytes,
        store_all_bytes,
        effective_gamma,
        per_step: trace.errors,
    })
}

/// Plain SGD on fixed-point θ, reversed with the gradient at the later point.
fn exact_sgd(
    obj: &mut impl Objective,
    theta0: &[f64],
    alpha: f64,
    steps: usize,
    trace: &mut Trace,
) -> Result<()> {
    let n = obj.dim();
    let mut theta = fixed::from_f64_slice(theta0).map_err(|_| overflow_at_init())?;
    let mut theta_f = vec![0.0; n];
    let mut grad = vec![0.0; n];
    fixed::to_f64_into(&theta, &mut theta_f);
    trace.record(0, &theta_f);
    for t in 0..steps {
        let loss = obj.grad_into(t, &theta_f, &mut grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, alpha));
        }
        if !fixed::sub_scaled(&mut theta, alpha, &grad) {
            return Err(overflow(t, "a weight", alpha));
        }
        fixed::to_f64_into(&theta, &mut theta_f);
        trace.record(t + 1, &theta_f);
    }
    for t in (0..steps).rev() {
        obj.grad_into(t, &theta_f, &mut grad);
        fixed::add_scaled(&mut theta, alpha, &grad);
        fixed::to_f64_into(&theta, &mut theta_f);
        trace.compare(t, &theta_f);
    }
    Ok(())
}

/// The stored forward trajectory (every `stride`-th step) and the errors found against it.
struct Trace {
    stride: usize,
    forward: Vec<Vec<f64>>,
    errors: Vec<(usize, f64)>,
}

impl Trace {
    fn record(&mut self, t: usize, theta: &[f64]) {
        if t.is_multiple_of(self.stride) {
            self.forward.push(theta.to_vec());
        }
    }

    fn compare(&mut self, t: usize, theta: &[f64]) {
        if t.is_multiple_of(self.stride) {
            let fwd = &self.forward[t / self.stride];
            // NaN (a reversal that blew up) counts as an infinite error, not as 0.
            let e = theta
                .iter()
                .zip(fwd)
                .map(|(a, b)| {
                    let d = (a - b).abs();
                    if d.is_nan() { f64::INFINITY } else { d }
                })
                .fold(0.0, f64::max);
            self.errors.push((t, e));
        }
    }
}
