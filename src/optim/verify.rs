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

use super::registry::{Optimizer, OptimizerId, Visit};
use super::{
    Arithmetic, FloatOptimizer, FloatState, Reversible, diverged, overflow, overflow_at_init,
};
use crate::error::{Error, Result};
use crate::exact::{Rational, fixed};
use crate::hyper::{Hypers, Kind};
use crate::model::{Layout, Objective, Threads};

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
    /// The optimizer's first decay (γ; β₁ for Adam) actually used: the rational one in
    /// exact arithmetic.
    pub effective_gamma: f64,
    /// `(t, trace_error(t))` for recorded t, in increasing t.
    pub per_step: Vec<(usize, f64)>,
}

/// Forward `steps` steps of optimizer `id` from `theta0` with the (scalar) blocks of
/// `hypers`, reverse them in `arithmetic`, and measure the error. `obj` is the (penalised)
/// training objective over `layout`; an exact optimizer runs its element loops on
/// `threads`. Optimizers without an exact form are run on
/// fixed-point θ with their f64 reversal's approximation (plain SGD, Nesterov), to show that
/// the arithmetic is not what they lack.
///
/// # Errors
/// Divergence or overflow of the forward run; [`Error::Diverged`] when the reversal itself
/// leaves the finite numbers (a float reversal dividing by a decay of 0).
#[allow(clippy::too_many_arguments)]
pub fn verify_reversal(
    obj: &mut impl Objective,
    layout: &Layout,
    theta0: &[f64],
    id: OptimizerId,
    arithmetic: Arithmetic,
    hypers: &Hypers,
    steps: usize,
    threads: &Threads,
) -> Result<ReversalReport> {
    let n = obj.dim();
    let info = id.info();
    let mut trace = Trace {
        stride: trace_stride(n, steps),
        forward: Vec::new(),
        errors: Vec::new(),
    };
    let store_all_bytes = (steps as u64 + 1) * n as u64 * 8 * info.state_vectors() as u64;
    let alpha = hypers.get(Kind::Alpha).mean();
    let gamma = hypers.get(info.kinds[1]).mean();
    let round_trip = |obj, trace| RoundTrip {
        obj,
        layout,
        theta0,
        hypers,
        steps,
        threads,
        trace,
    };
    let (info_buffer_bytes, effective_gamma) = match arithmetic {
        Arithmetic::Float => (id.visit(FloatTrip(round_trip(obj, &mut trace)))?, gamma),
        Arithmetic::Exact => {
            let bytes = if info.reversible {
                id.visit(ExactTrip(round_trip(obj, &mut trace)))?
            } else {
                match id {
                    OptimizerId::Nesterov => {
                        let bound = exact_buffer_bound(id, hypers, layout, steps);
                        nesterov(obj, theta0, alpha, gamma, steps, bound, &mut trace)?
                    }
                    _ => {
                        exact_sgd(obj, theta0, alpha, steps, &mut trace)?;
                        0
                    }
                }
            };
            (bytes, Rational::of_valid(gamma).value())
        }
    };
    let theta0_error = trace
        .errors
        .iter()
        .find(|(t, _)| *t == 0)
        .map_or(0.0, |e| e.1);
    trace.errors.sort_by_key(|e| e.0);
    let max_trace_error = trace.errors.iter().map(|e| e.1).fold(0.0, f64::max);
    if !max_trace_error.is_finite() {
        let step = trace
            .errors
            .iter()
            .rev()
            .find(|e| !e.1.is_finite())
            .map_or(0, |e| e.0);
        // The undo divides by every decay of the optimizer (γ; β₁ and β₂; γ and ρ): the
        // smallest amplifies the most.
        let (decay, smallest) = info
            .kinds
            .iter()
            .filter(|&&k| matches!(k, Kind::Gamma | Kind::Beta1 | Kind::Beta2 | Kind::Rho))
            .map(|&k| (k, hypers.get(k).mean()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((info.kinds[1], gamma));
        return Err(Error::Diverged {
            step,
            what: "the reversed trajectory is not finite".into(),
            hint: if smallest > 0.0 {
                format!(
                    "the {arithmetic} reversal of {} divides by its {} (now {}) every step, \
                     which amplifies its rounding errors until they leave the finite numbers",
                    info.name,
                    decay.name(),
                    crate::error::show(smallest)
                )
            } else {
                format!(
                    "the {arithmetic} reversal of {} divides by its decay, and a decay of 0 \
                     cannot be undone",
                    info.name
                )
            },
        });
    }
    Ok(ReversalReport {
        max_trace_error,
        theta0_error,
        info_bits_per_param_step: 8.0 * info_buffer_bytes as f64 / (n as f64 * steps.max(1) as f64),
        info_buffer_bytes,
        store_all_bytes,
        effective_gamma,
        per_step: trace.errors,
    })
}

/// The most the information buffer of an exact row of `id` can hold after `steps` steps
/// with `hypers` ([`Optimizer::buffer_bound`]); Nesterov's γ multiplies are momentum's.
/// `None` for a row without a buffer (plain SGD).
pub fn exact_buffer_bound(
    id: OptimizerId,
    hypers: &Hypers,
    layout: &Layout,
    steps: usize,
) -> Option<crate::exact::BufferBound> {
    match id {
        OptimizerId::Nesterov => OptimizerId::Momentum.buffer_bound(hypers, layout, steps),
        _ => id.buffer_bound(hypers, layout, steps),
    }
}

/// Every how many steps the trajectory of `dim` parameters over `steps` steps is kept, so
/// that it stays under [`TRACE_BUDGET_BYTES`].
fn trace_stride(dim: usize, steps: usize) -> usize {
    (steps.saturating_add(1))
        .saturating_mul(dim.saturating_mul(8))
        .div_ceil(TRACE_BUDGET_BYTES)
        .max(1)
}

/// Bytes the kept trajectory and its errors take at most for `dim` parameters over `steps`
/// steps: about [`TRACE_BUDGET_BYTES`] at most, with each kept θ's header.
pub fn trace_bytes(dim: usize, steps: usize) -> u64 {
    let records = (steps / trace_stride(dim, steps) + 1) as u64;
    let each = 8 * dim as u64
        + std::mem::size_of::<Vec<f64>>() as u64
        + std::mem::size_of::<(usize, f64)>() as u64;
    records.saturating_mul(each)
}

/// What a round trip needs, for the two visitors below.
struct RoundTrip<'a, Obj> {
    obj: &'a mut Obj,
    layout: &'a Layout,
    theta0: &'a [f64],
    hypers: &'a Hypers,
    steps: usize,
    threads: &'a Threads,
    trace: &'a mut Trace,
}

/// The float optimizer forward and reversed in f64; returns 0 (no buffer).
struct FloatTrip<'a, Obj>(RoundTrip<'a, Obj>);

impl<Obj: Objective> Visit for FloatTrip<'_, Obj> {
    type Output = Result<u64>;
    fn visit<O: Optimizer>(self) -> Result<u64> {
        let RoundTrip {
            obj,
            layout,
            theta0,
            hypers,
            steps,
            trace,
            ..
        } = self.0;
        let mut opt = O::float(hypers, layout, steps, false);
        let mut s = FloatState::start(theta0, O::info().aux_vectors);
        trace.record(0, &s.theta);
        for t in 0..steps {
            opt.step(obj, t, &mut s)?;
            trace.record(t + 1, &s.theta);
        }
        for t in (0..steps).rev() {
            opt.reverse_step(obj, t, &mut s);
            trace.compare(t, &s.theta);
        }
        Ok(0)
    }
}

/// The exact optimizer forward and undone; returns the buffer's bytes at θ_T.
struct ExactTrip<'a, Obj>(RoundTrip<'a, Obj>);

impl<Obj: Objective> Visit for ExactTrip<'_, Obj> {
    type Output = Result<u64>;
    fn visit<O: Optimizer>(self) -> Result<u64> {
        let r = self.0;
        let opt = O::exact(r.hypers, r.layout, r.steps, r.threads)
            .ok_or_else(|| super::not_reversible(O::info().name))?;
        exact_round_trip(opt, r.obj, r.theta0, r.steps, r.trace)
    }
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

/// Nesterov momentum on fixed-point θ and v (see [`super::nesterov`]), the decay the exact
/// rational multiply with its information buffer, reversed with the look-ahead
/// `θ_t + α·γ·v_{t+1}`: the only error is that gradient, which is why it drifts in both
/// arithmetics, like plain SGD. Returns the buffer's bytes.
fn nesterov(
    obj: &mut impl Objective,
    theta0: &[f64],
    alpha: f64,
    gamma: f64,
    steps: usize,
    bound: Option<crate::exact::BufferBound>,
    trace: &mut Trace,
) -> Result<u64> {
    use crate::exact::{Coder, InfoBuffer};
    let n = obj.dim();
    let mut grad = vec![0.0; n];
    let mut look = vec![0.0; n];
    let k = Coder::new(Rational::of_valid(gamma));
    let (g, omg) = (k.rational().value(), k.rational().one_minus());
    let mut theta = theta0.to_vec();
    let mut v = vec![0.0; n];
    let mut theta_x = fixed::from_f64_slice(theta0).map_err(|_| overflow_at_init())?;
    let mut v_x = vec![0i64; n];
    let mut buf = InfoBuffer::new(n);
    if let Some(b) = bound.filter(|b| b.len() == n) {
        buf.reserve(&b);
    }
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
        trace.record(t + 1, &theta);
    }
    let bytes = buf.bytes() as u64;
    for t in (0..steps).rev() {
        for i in 0..n {
            let (inc, _) = fixed::increment(al, fixed::to_f64(v_x[i]));
            theta_x[i] = theta_x[i].wrapping_sub(inc);
            theta[i] = fixed::to_f64(theta_x[i]);
            // v_t is unknown: the look-ahead uses v_{t+1}.
            look[i] = theta[i] + alpha * g * v[i];
        }
        obj.grad_into(t, &look, &mut grad);
        for i in (0..n).rev() {
            let (inc, _) = fixed::increment(c, grad[i]);
            let x = fixed::checked_sum(v_x[i], inc).0;
            v_x[i] = buf.unmul_at(i, x.clamp(-fixed::LIMIT, fixed::LIMIT), &k);
            v[i] = fixed::to_f64(v_x[i]);
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
