//! # SGD with momentum: exact forward, exact undo, and the adjoint of one step
//!
//! Step t with α_t, γ_t taken per parameter array from [`Plan`] (γ_t = n_t/d everywhere in
//! exact arithmetic, including `1−γ_t = (d−n_t)/d`):
//!
//! ```text
//! g = ∇L_t(θ_t)                         f64, from the exact θ_t
//! v ← (n_t/d)·v                         rational multiply, remainders → buffer
//! v ← v − round((1−γ_t)·g)              exact integer subtraction
//! θ ← θ + round(α_t·v)                  exact integer addition
//! ```
//!
//! The undo runs the same lines backwards: `θ ← θ − round(α_t·v)`, then `g` recomputed at the
//! bit-identical θ_t on the replayed batch, `v ← (d/n_t)·(v + round((1−γ_t)·g))` exactly.
//!
//! The adjoint of the step (Maclaurin et al. 2015, Algorithm 2, per array), with
//! `dθ = ∂f/∂θ_{t+1}`, `dv = ∂f/∂v_{t+1}`:
//!
//! ```text
//! dα_t += dθ · v_{t+1}              dv += α_t ⊙ dθ                      (through θ)
//! dγ_t += dv · (v_t + g_t)          dθ −= H_t·((1−γ_t) ⊙ dv)
//! dλ   −= (1−γ_t) ⊙ dv ⊙ θ_t        dv ← γ_t ⊙ dv                       (through v)
//! dc_i −= ⟨(1−γ_t) ⊙ dv, ∇CE_i(θ_t)⟩/B   for the rows i of batch t  (example weights)
//! ```
//!
//! (H_t is applied to `(1−γ_t) ⊙ dv`, not the other way round: with a γ per group the two
//! differ, since `∂g_t/∂θ_t = H_t` mixes groups.)
//!
//! (`∂g_t/∂λ = θ_t` for the penalty `½Σλθ²`). The same two per-element adjoint functions
//! serve the exact reversal ([`Reversible::reverse_step`], states recovered by the undo) and
//! the stored trajectory ([`Reversible::adjoint_step`], states read from memory). A reverse
//! step is two passes over the information buffer's segments, on the optimizer's threads,
//! around the gradient-and-HVP pass: the position pass undoes θ and runs the adjoint through
//! it, the velocity pass undoes v and runs the adjoint through it. The α and γ sums are kept
//! per (segment, array) and added in segment order, the same for every thread count; the
//! stored path walks the same segments in the same order.

use super::plan::Plan;
use super::registry::{Optimizer, OptimizerId};
use super::{
    FloatOptimizer, FloatState, Reversible, diverged, exact_gradient, exact_start, overflow,
};
use crate::error::Result;
use crate::exact::{BufferBound, InfoBuffer, SEGMENT_LEN, fixed};
use crate::hyper::Hypers;
use crate::model::{Layout, Objective, RowTangents, Threads};
use crate::runtime::segments::{
    PerSegment, Sums, arrays_in, fold_sums, over_segments, segment_arrays,
};

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

/// SGD with momentum: the registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Momentum;

impl Optimizer for Momentum {
    const ID: OptimizerId = OptimizerId::Momentum;
    type Float = FloatMomentum;
    type Exact = ExactMomentum;
    fn float(hypers: &Hypers, layout: &Layout, steps: usize, rational: bool) -> FloatMomentum {
        FloatMomentum {
            rational,
            ..FloatMomentum::new(hypers, layout, steps)
        }
    }
    fn exact(
        hypers: &Hypers,
        layout: &Layout,
        steps: usize,
        threads: &Threads,
    ) -> Option<ExactMomentum> {
        Some(ExactMomentum::new(hypers, layout, steps, threads))
    }
    fn buffer_bound(hypers: &Hypers, layout: &Layout, steps: usize) -> Option<BufferBound> {
        Some(Plan::new(hypers, layout, steps).buffer_bound())
    }
}

/// Exactly reversible SGD with momentum, with its scratch and adjoint vectors.
#[derive(Debug, Clone)]
pub struct ExactMomentum {
    plan: Plan,
    theta_f: Vec<f64>,
    grad: Vec<f64>,
    hv: Vec<f64>,
    /// The direction of the Hessian-vector product, (1−γ_t) ⊙ dv.
    u: Vec<f64>,
    d_theta: Vec<f64>,
    d_v: Vec<f64>,
    d_lambda: Vec<f64>,
    /// Hypergradient sums per (segment, array): α's in the position pass, γ's in the
    /// velocity pass.
    partials: Vec<Sums>,
    /// The threads the element loops run on.
    threads: Threads,
}

/// The adjoint through `θ_{t+1} = θ_t + α_t·v_{t+1}` at one element, given `v = v_{t+1}`
/// and `dθ`: `dα += dθ·v` (into `acc[0]`), `dv += α·dθ`, and the element of the
/// Hessian-vector product's direction `u = (1−γ_t)·dv`.
#[inline(always)]
fn position_adjoint(
    (alpha, omg): (f64, f64),
    v: f64,
    dth: f64,
    dv: &mut f64,
    u: &mut f64,
    acc: &mut Sums,
) {
    acc[0] += dth * v;
    *dv += alpha * dth;
    *u = omg * *dv;
}

/// The adjoint through `v_{t+1} = γ_t·v_t − (1−γ_t)·g_t(θ_t)` at one element, given v_t,
/// g_t, `hv = (H_t·u)_i` and θ_t: `dγ += dv·(v + g)` (into `acc[0]`), `dθ −= hv`,
/// `dλ −= (1−γ)·dv·θ`, `dv ← γ·dv`.
#[inline(always)]
fn velocity_adjoint(
    (gamma, omg): (f64, f64),
    (v, g, hv, theta): (f64, f64, f64, f64),
    dth: &mut f64,
    dl: &mut f64,
    dv: &mut f64,
    acc: &mut Sums,
) {
    let d = *dv;
    acc[0] += d * (v + g);
    *dth -= hv;
    *dl -= omg * d * theta;
    *dv = gamma * d;
}

impl ExactMomentum {
    /// The optimizer for `hypers`' α and γ blocks over `layout`, for `steps` steps.
    /// Its element loops run on `threads`.
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize, threads: &Threads) -> Self {
        let n = layout.len();
        let z = || vec![0.0; n];
        let plan = Plan::new(hypers, layout, steps);
        ExactMomentum {
            threads: threads.clone(),
            partials: vec![[0.0; 4]; n.div_ceil(SEGMENT_LEN) * plan.arrays.len()],
            plan,
            theta_f: z(),
            grad: z(),
            hv: z(),
            u: z(),
            d_theta: z(),
            d_v: z(),
            d_lambda: z(),
        }
    }

    /// The undo of step t's position, `θ_t = θ_{t+1} − round(α_t·v_{t+1})`, with (if
    /// `adjoint`) the adjoint through it in the same pass; leaves θ_t in f64 in `theta_f`.
    fn position_pass(&mut self, s: &mut ExactState, adjoint: bool) {
        let ExactMomentum {
            threads,
            plan,
            theta_f,
            u,
            d_theta,
            d_v,
            partials,
            ..
        } = self;
        let (plan, na, n) = (&*plan, plan.arrays.len(), s.theta.len());
        let data = (
            (&mut s.theta[..], &mut theta_f[..]),
            &s.v[..],
            &d_theta[..],
            (&mut d_v[..], &mut u[..]),
            PerSegment::new(partials, na, n),
        );
        let flags = over_segments(threads, &mut s.buffer, data, &|start,
                                                                  _,
                                                                  (
            (theta, theta_f),
            v,
            d_theta,
            (d_v, u),
            part,
        )| {
            let part = part.slots();
            let mut ok = true;
            for (a, r) in arrays_in(&plan.arrays, start..start + theta.len()) {
                let alpha = plan.alpha.of(a);
                let c = (alpha, plan.coder(a).rational().one_minus());
                let al = fixed::scaled(alpha);
                let mut acc = [0.0; 4];
                for i in r {
                    let vf = fixed::to_f64(v[i]);
                    let (inc, ok1) = fixed::increment(al, vf);
                    let (th, ok2) = fixed::checked_sum(theta[i], inc.wrapping_neg());
                    ok &= ok1 & ok2;
                    theta[i] = th;
                    theta_f[i] = fixed::to_f64(th);
                    if adjoint {
                        position_adjoint(c, vf, d_theta[i], &mut d_v[i], &mut u[i], &mut acc);
                    }
                }
                part[a] = acc;
            }
            u8::from(!ok)
        });
        debug_assert!(
            flags == 0,
            "undoing a completed forward step cannot overflow"
        );
    }

    /// The undo of step t's velocity given `self.grad = ∇L_t(θ_t)`,
    /// `v_t = (d/n_t)·(v_{t+1} + round((1−γ_t)·g))`, with (if `adjoint`) the adjoint
    /// through it in the same pass.
    fn velocity_pass(&mut self, s: &mut ExactState, adjoint: bool) {
        let ExactMomentum {
            threads,
            plan,
            theta_f,
            grad,
            hv,
            d_theta,
            d_v,
            d_lambda,
            partials,
            ..
        } = self;
        let (plan, na, n) = (&*plan, plan.arrays.len(), s.v.len());
        let data = (
            &mut s.v[..],
            (&grad[..], &hv[..]),
            &theta_f[..],
            (&mut d_theta[..], &mut d_lambda[..], &mut d_v[..]),
            PerSegment::new(partials, na, n),
        );
        let flags = over_segments(threads, &mut s.buffer, data, &|start,
                                                                  seg,
                                                                  (
            v,
            (grad, hv),
            theta,
            (d_theta, d_lambda, d_v),
            part,
        )| {
            let part = part.slots();
            let mut ok = true;
            // Decreasing order, as the segment's undo requires.
            for (a, r) in arrays_in(&plan.arrays, start..start + v.len()).rev() {
                let k = plan.coder(a);
                let rat = k.rational();
                let c = (rat.value(), rat.one_minus());
                let scaled = fixed::scaled(rat.one_minus());
                let mut acc = [0.0; 4];
                for i in r.rev() {
                    let g = grad[i];
                    let (inc, ok1) = fixed::increment(scaled, g);
                    let (x, ok2) = fixed::checked_sum(v[i], inc);
                    ok &= ok1 & ok2;
                    let x = seg.unmul_at(i, x, k);
                    v[i] = x;
                    if adjoint {
                        velocity_adjoint(
                            c,
                            (fixed::to_f64(x), g, hv[i], theta[i]),
                            &mut d_theta[i],
                            &mut d_lambda[i],
                            &mut d_v[i],
                            &mut acc,
                        );
                    }
                }
                part[a] = acc;
            }
            u8::from(!ok)
        });
        debug_assert!(
            flags == 0,
            "undoing a completed forward step cannot overflow"
        );
    }

    /// The stored-trajectory path's position pass: [`ExactMomentum::position_pass`]'s
    /// adjoint with v_{t+1} read from a snapshot, walking the segments in the same order.
    fn position_pass_stored(&mut self, v: &[f64]) {
        let na = self.plan.arrays.len();
        for (j, a, r) in segment_arrays(&self.plan.arrays, v.len(), false) {
            let c = (
                self.plan.alpha.of(a),
                self.plan.coder(a).rational().one_minus(),
            );
            let mut acc = [0.0; 4];
            for i in r {
                position_adjoint(
                    c,
                    v[i],
                    self.d_theta[i],
                    &mut self.d_v[i],
                    &mut self.u[i],
                    &mut acc,
                );
            }
            self.partials[j * na + a] = acc;
        }
    }

    /// The stored-trajectory path's velocity pass: [`ExactMomentum::velocity_pass`]'s
    /// adjoint with θ_t and v_t read from a snapshot, in the same (decreasing) order.
    fn velocity_pass_stored(&mut self, before: &FloatState) {
        let na = self.plan.arrays.len();
        let v = &before.aux[0];
        for (j, a, r) in segment_arrays(&self.plan.arrays, v.len(), true) {
            let rat = self.plan.coder(a).rational();
            let c = (rat.value(), rat.one_minus());
            let mut acc = [0.0; 4];
            for i in r.rev() {
                velocity_adjoint(
                    c,
                    (v[i], self.grad[i], self.hv[i], before.theta[i]),
                    &mut self.d_theta[i],
                    &mut self.d_lambda[i],
                    &mut self.d_v[i],
                    &mut acc,
                );
            }
            self.partials[j * na + a] = acc;
        }
    }

    /// Adds a pass's per-segment sums to the plan's step sums ([`fold_sums`]): α's after
    /// the position pass, γ's after the velocity pass.
    fn fold_partials(&mut self, position: bool) {
        let Plan {
            arrays,
            alpha,
            gamma,
            ..
        } = &mut self.plan;
        fold_sums(arrays, &self.partials, |a, sum| {
            if position {
                alpha.add(a, sum[0]);
            } else {
                gamma.value.add(a, sum[0]);
            }
        });
    }
}

/// Through `g_t = Σ_i c_i·∇CE_i(x_i)/B + …` in `v_{t+1} = γ_t·v_t − (1−γ_t)·g_t`, with
/// u = (1−γ_t) ⊙ dv the Hessian-vector product's own direction: `dc_i −= ⟨u, ∇CE_i⟩/B` and
/// `dx_i −= ∂⟨u, g_t⟩/∂x_i` for the rows of batch t.
fn add_example_weight_gradient(obj: &impl RowTangents, grads: &mut Hypers) {
    super::add_row_gradients(obj, -1.0, grads);
}

impl Reversible for ExactMomentum {
    type State = ExactState;

    fn start(&mut self, theta0: &[f64]) -> Result<ExactState> {
        let (theta, buffer) = exact_start(theta0, &self.plan.buffer_bound())?;
        Ok(ExactState {
            v: vec![0; theta.len()],
            theta,
            buffer,
        })
    }

    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut ExactState) -> Result<f64> {
        self.plan.at(t);
        let alpha = self.plan.alpha.now[0];
        let loss = exact_gradient(obj, t, &s.theta, &mut self.theta_f, &mut self.grad, alpha)?;
        // One fused pass per element: v ← (n/d)·v − round((1−γ)·g), θ ← θ + round(α·v).
        // Each segment of the buffer sees its elements in increasing order, as mul_at
        // requires; the segments run on the optimizer's threads.
        const V: u8 = 1;
        const THETA: u8 = 2;
        let plan = &self.plan;
        let data = (&mut s.theta[..], &mut s.v[..], &self.grad[..]);
        let flags = over_segments(
            &self.threads,
            &mut s.buffer,
            data,
            &|start, seg, (theta, v, grad)| {
                let (mut ok_v, mut ok_theta) = (true, true);
                for (a, r) in arrays_in(&plan.arrays, start..start + theta.len()) {
                    let k = *plan.coder(a);
                    let c = fixed::scaled(k.rational().one_minus());
                    let al = fixed::scaled(plan.alpha.of(a));
                    for i in r {
                        let x = seg.mul_at(i, v[i], &k);
                        let (dec, ok1) = fixed::increment(c, grad[i]);
                        let (x, ok2) = fixed::checked_sum(x, dec.wrapping_neg());
                        ok_v &= ok1 & ok2;
                        v[i] = x;
                        let (inc, ok3) = fixed::increment(al, fixed::to_f64(x));
                        let (th, ok4) = fixed::checked_sum(theta[i], inc);
                        ok_theta &= ok3 & ok4;
                        theta[i] = th;
                    }
                }
                (u8::from(!ok_v) * V) | (u8::from(!ok_theta) * THETA)
            },
        );
        let (ok_v, ok_theta) = (flags & V == 0, flags & THETA == 0);
        let alpha = self.plan.alpha.now[0];
        if !ok_v {
            return Err(overflow(t, "the velocity", alpha));
        }
        if !ok_theta {
            return Err(overflow(t, "a weight", alpha));
        }
        Ok(loss)
    }

    fn theta_fixed<'s>(&self, s: &'s ExactState) -> &'s [i64] {
        &s.theta
    }

    fn snapshot(&self, s: &ExactState) -> FloatState {
        let f = |x: &[i64]| x.iter().map(|&v| fixed::to_f64(v)).collect();
        FloatState {
            theta: f(&s.theta),
            aux: vec![f(&s.v)],
        }
    }

    fn buffer_bytes(&self, s: &ExactState) -> usize {
        s.buffer.bytes()
    }

    fn at_start(&self, s: &ExactState, theta0: &[i64]) -> bool {
        s.theta == theta0 && s.v.iter().all(|&v| v == 0) && s.buffer.is_empty_of_information()
    }

    fn information_floor_bits(&mut self) -> f64 {
        self.plan.information_floor_bits()
    }

    fn begin_adjoint(&mut self, d_theta: &[f64]) {
        self.d_theta.copy_from_slice(d_theta);
        self.d_v.fill(0.0);
        self.d_lambda.fill(0.0);
    }

    fn undo_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut ExactState) {
        self.plan.at(t);
        self.position_pass(s, false);
        obj.grad_into(t, &self.theta_f, &mut self.grad);
        self.velocity_pass(s, false);
    }

    fn reverse_step(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        s: &mut ExactState,
        grads: &mut Hypers,
    ) {
        self.plan.at(t);
        self.position_pass(s, true);
        self.fold_partials(true);
        obj.grad_hvp_into(t, &self.theta_f, &self.u, &mut self.grad, &mut self.hv);
        add_example_weight_gradient(obj, grads);
        self.velocity_pass(s, true);
        self.fold_partials(false);
        self.plan.fold_step(t, grads);
    }

    fn adjoint_step(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        before: &FloatState,
        after: &FloatState,
        grads: &mut Hypers,
    ) {
        self.plan.at(t);
        self.position_pass_stored(&after.aux[0]);
        self.fold_partials(true);
        obj.grad_hvp_into(t, &before.theta, &self.u, &mut self.grad, &mut self.hv);
        add_example_weight_gradient(obj, grads);
        self.velocity_pass_stored(before);
        self.fold_partials(false);
        self.plan.fold_step(t, grads);
    }

    fn d_theta(&self) -> &[f64] {
        &self.d_theta
    }

    fn d_lambda(&self) -> &[f64] {
        &self.d_lambda
    }
}

/// SGD with momentum in f64 (the reference: `train` without `--exact`, `search`), with the
/// configured γ_t (not its rational).
#[derive(Debug, Clone)]
pub struct FloatMomentum {
    plan: Plan,
    grad: Vec<f64>,
    /// Use γ_t's rational n_t/2^16 (the exact run's decay) instead of the configured γ_t.
    rational: bool,
}

impl FloatMomentum {
    /// The optimizer for `hypers`' α and γ blocks over `layout`, for `steps` steps.
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        FloatMomentum {
            plan: Plan::new(hypers, layout, steps),
            grad: vec![0.0; layout.len()],
            rational: false,
        }
    }
}

impl FloatOptimizer for FloatMomentum {
    /// One step t: `v ← γ_t·v − (1−γ_t)·∇L_t(θ)`, `θ ← θ + α_t·v`. Returns `L_t(θ_t)`.
    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) -> Result<f64> {
        self.plan.at(t);
        let (theta, v) = (&mut s.theta, &mut s.aux[0]);
        let loss = obj.grad_into(t, theta, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.plan.alpha.now[0]));
        }
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let (al, g) = (self.plan.alpha.of(a), self.plan.gamma_of(a, self.rational));
            let omg = 1.0 - g;
            for i in r.clone() {
                v[i] = g * v[i] - omg * self.grad[i];
                theta[i] += al * v[i];
            }
        }
        Ok(loss)
    }

    /// Undo step t in f64: `θ ← θ − α_t·v`, `v ← (v + (1−γ_t)·∇L_t(θ))/γ_t`. Not exact.
    fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut FloatState) {
        self.plan.at(t);
        let (theta, v) = (&mut s.theta, &mut s.aux[0]);
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let al = self.plan.alpha.of(a);
            for i in r.clone() {
                theta[i] -= al * v[i];
            }
        }
        obj.grad_into(t, theta, &mut self.grad);
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let g = self.plan.gamma_of(a, self.rational);
            for i in r.clone() {
                v[i] = (v[i] + (1.0 - g) * self.grad[i]) / g;
            }
        }
    }
}
