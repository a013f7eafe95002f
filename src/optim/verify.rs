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

use serde::Serialize;

use super::{
    Arithmetic, ExactAdam, ExactMomentum, FloatAdam, FloatMomentum, FloatSgd, Reversible, diverged,
    overflow, overflow_at_init,
};
use crate::error::Result;
use crate::exact::{Rational, fixed};
use crate::hyper::{Block, Hypers, Kind};
use crate::model::{Layout, Objective};

/// Memory allowed for the stored forward trajectory.
pub const TRACE_BUDGET_BYTES: usize = 256 << 20;

/// The optimizers `verify-reversal` compares (SPEC §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Plain SGD.
    #[default]
    Sgd,
    /// SGD with momentum (Maclaurin et al.'s form).
    Momentum,
    /// Nesterov momentum: the gradient at the look-ahead point `θ + α·γ·v`.
    Nesterov,
    /// Adam (SPEC §3.4).
    Adam,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Sgd => "sgd",
            Method::Momentum => "momentum",
            Method::Nesterov => "nesterov",
            Method::Adam => "adam",
        })
    }
}

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

/// Forward `steps` steps from `theta0` with constant α and γ (β₁ for Adam, with `adam`'s
/// β₂ and ε), reverse them, and measure the error. `obj` is the (penalised) training
/// objective over `layout`.
///
/// # Errors
/// Divergence or overflow of the forward run.
#[allow(clippy::too_many_arguments)]
pub fn verify_reversal(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    method: Method,
    arithmetic: Arithmetic,
    alpha: f64,
    gamma: f64,
    adam: (f64, f64),
    steps: usize,
) -> Result<ReversalReport> {
    let n = obj.dim();
    let hypers = Hypers {
        blocks: vec![
            Block::scalar(Kind::Alpha, layout, alpha),
            Block::scalar(Kind::Gamma, layout, gamma),
            Block::scalar(Kind::Beta1, layout, gamma),
            Block::scalar(Kind::Beta2, layout, adam.0),
            Block::scalar(Kind::Eps, layout, adam.1),
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
    let state_vectors = match method {
        Method::Sgd => 1,
        Method::Momentum | Method::Nesterov => 2,
        Method::Adam => 3,
    };
    let store_all_bytes = (steps as u64 + 1) * n as u64 * 8 * state_vectors;
    let (info_buffer_bytes, effective_gamma) = match (method, arithmetic) {
        (Method::Momentum, Arithmetic::Float) => {
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
        (Method::Momentum, Arithmetic::Exact) => {
            let opt = ExactMomentum::new(&hypers, layout, steps);
            let bytes = exact_round_trip(opt, obj, theta0, steps, &mut trace)?;
            (bytes, Rational::of_valid(gamma).value())
        }
        (Method::Sgd, Arithmetic::Float) => {
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
        (Method::Sgd, Arithmetic::Exact) => {
            exact_sgd(obj, theta0, alpha, steps, &mut trace)?;
            (0, gamma)
        }
        (Method::Adam, Arithmetic::Float) => {
            let mut theta = theta0.to_vec();
            let (mut m, mut s) = (vec![0.0; n], vec![0.0; n]);
            let mut opt = FloatAdam::new(&hypers, layout, steps);
            trace.record(0, &theta);
            for t in 0..steps {
                opt.step(obj, t, &mut theta, &mut m, &mut s)?;
                trace.record(t + 1, &theta);
            }
            for t in (0..steps).rev() {
                opt.reverse_step(obj, t, &mut theta, &mut m, &mut s);
                trace.compare(t, &theta);
            }
            (0, gamma)
        }
        (Method::Adam, Arithmetic::Exact) => {
            let opt = ExactAdam::new(&hypers, layout, steps);
            let bytes = exact_round_trip(opt, obj, theta0, steps, &mut trace)?;
            (bytes, Rational::of_valid(gamma).value())
        }
        (Method::Nesterov, arithmetic) => {
            let bytes = nesterov(obj, theta0, alpha, gamma, steps, arithmetic, &mut trace)?;
            let g = match arithmetic {
                Arithmetic::Float => gamma,
                Arithmetic::Exact => Rational::of_valid(gamma).value(),
            };
            (bytes, g)
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

/// An exactly reversible optimizer forward `steps` steps from `theta0` and undone again,
/// recording the trace; returns the bytes the information buffer held at θ_T.
fn exact_round_trip<O: Reversible>(
    mut opt: O,
    obj: &mut impl Objective,
    theta0: &[f64],
    steps: usize,
    trace: &mut Trace,
) -> Result<u64> {
    let mut s = opt.start(theta0)?;
    trace.record(0, &opt.theta_f64(&s));
    for t in 0..steps {
        opt.step(obj, t, &mut s)?;
        trace.record(t + 1, &opt.theta_f64(&s));
    }
    let bytes = opt.buffer_bytes(&s) as u64;
    for t in (0..steps).rev() {
        opt.undo_step(obj, t, &mut s);
        trace.compare(t, &opt.theta_f64(&s));
    }
    Ok(bytes)
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

/// Nesterov momentum, `v ← γ·v − (1−γ)·∇L_t(θ + α·γ·v)`, `θ ← θ + α·v`, reversed as well
/// as it can be: `θ_t = θ_{t+1} − α·v_{t+1}` is explicit, but the gradient that updated v
/// was taken at `θ_t + α·γ·v_t`, which depends on the v_t being solved for; the reversal
/// uses the look-ahead `θ_t + α·γ·v_{t+1}` instead. In fixed point the decay is the exact
/// rational multiply with its information buffer, so the only error is that gradient —
/// which is why it drifts in both arithmetics, like plain SGD. Returns the buffer's bytes.
fn nesterov(
    obj: &mut impl Objective,
    theta0: &[f64],
    alpha: f64,
    gamma: f64,
    steps: usize,
    arithmetic: Arithmetic,
    trace: &mut Trace,
) -> Result<u64> {
    use crate::exact::{Coder, InfoBuffer};
    let n = obj.dim();
    let mut grad = vec![0.0; n];
    let mut look = vec![0.0; n];
    let exact = arithmetic == Arithmetic::Exact;
    let k = Coder::new(Rational::of_valid(gamma));
    let (g, omg) = if exact {
        (k.rational().value(), k.rational().one_minus())
    } else {
        (gamma, 1.0 - gamma)
    };
    let mut theta = theta0.to_vec();
    let mut v = vec![0.0; n];
    let mut theta_x = fixed::from_f64_slice(theta0).map_err(|_| overflow_at_init())?;
    let mut v_x = vec![0i64; n];
    let mut buf = InfoBuffer::new(if exact { n } else { 0 });
    let (c, al) = (fixed::scaled(omg), fixed::scaled(alpha));
    trace.record(0, &theta);
    for t in 0..steps {
        for i in 0..n {
            look[i] = theta[i] + alpha * g * v[i];
        }
        let loss = obj.grad_into(t, &look, &mut grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, alpha));
        }
        if exact {
            let mut ok = true;
            for i in 0..n {
                let x = buf.mul_at(i, v_x[i], &k);
                let (dec, ok1) = fixed::increment(c, grad[i]);
                let (x, ok2) = fixed::checked_sum(x, dec.wrapping_neg());
                let (inc, ok3) = fixed::increment(al, fixed::to_f64(x));
                let (th, ok4) = fixed::checked_sum(theta_x[i], inc);
                ok &= ok1 & ok2 & ok3 & ok4;
                v_x[i] = x;
                theta_x[i] = th;
                v[i] = fixed::to_f64(x);
                theta[i] = fixed::to_f64(th);
            }
            if !ok {
                return Err(overflow(t, "a weight or the velocity", alpha));
            }
        } else {
            for i in 0..n {
                v[i] = g * v[i] - omg * grad[i];
                theta[i] += alpha * v[i];
            }
        }
        trace.record(t + 1, &theta);
    }
    let bytes = buf.bytes() as u64;
    for t in (0..steps).rev() {
        for i in 0..n {
            if exact {
                let (inc, _) = fixed::increment(al, fixed::to_f64(v_x[i]));
                theta_x[i] = theta_x[i].wrapping_sub(inc);
                theta[i] = fixed::to_f64(theta_x[i]);
            } else {
                theta[i] -= alpha * v[i];
            }
            // v_t is unknown: the look-ahead uses v_{t+1}.
            look[i] = theta[i] + alpha * g * v[i];
        }
        obj.grad_into(t, &look, &mut grad);
        for i in (0..n).rev() {
            if exact {
                let (inc, _) = fixed::increment(c, grad[i]);
                let x = fixed::checked_sum(v_x[i], inc).0;
                v_x[i] = buf.unmul_at(i, x.clamp(-fixed::LIMIT, fixed::LIMIT), &k);
                v[i] = fixed::to_f64(v_x[i]);
            } else {
                v[i] = (v[i] + omg * grad[i]) / g;
            }
        }
        trace.compare(t, &theta);
    }
    Ok(bytes)
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
