//! # Adam: exact forward, exact undo, and the adjoint of one step
//!
//! SPEC §3.4, with α_t, β₁_t, β₂_t (schedulable) and ε per parameter array, k = t+1:
//!
//! ```text
//! g  = ∇L_t(θ_t)                                    f64, from the exact θ_t
//! m ← (n₁/d)·m + round((1−β₁)·g)                    i128, rational multiply → buffer
//! s ← (n₂/d)·s + round((1−β₂)·g²)                   i128, rational multiply → buffer
//! q  = (m/c₁) / (√(s/c₂) + ε)    c₁ = 1−β₁^k, c₂ = 1−β₂^k   f64 from the exact m, s
//! θ ← θ − round(α·q)                                i64, exact subtraction
//! ```
//!
//! θ is momentum's fixed point (52 fractional bits); m and s are wide fixed point (i128,
//! [`fixed::WIDE_FRAC_BITS`] = 92 fractional bits, values up to 2^19): in i64 the moments'
//! quantum, divided by √s ≈ |g|, moves θ by far more than its own quantum and the exact run
//! drifts about 5e−6 from float Adam; at 92 bits it tracks float Adam as closely as exact
//! momentum tracks float momentum (the distance is dominated by θ's own rounding). β₁ and
//! β₂ are rationals n/2^16 used everywhere (decay, `1−β`, bias correction), so the
//! hypergradient is the derivative of one consistent map. Both multiplies of a parameter
//! use its one coder state in the information buffer (m first, s second; the undo reverses
//! that), so the buffer costs `log₂(d/n₁) + log₂(d/n₂)` bits per parameter per step plus one
//! 8-byte state per parameter. With a schedule the bias corrections use the current step's
//! β (`1 − β_t^k`), SPEC's form read literally; with a constant β it is textbook Adam.
//!
//! `s ≥ 0` always (floor of a non-negative product plus a non-negative increment), so the
//! update is finite (`√0 + ε = ε > 0`). Its derivative in s, `1/(2√ŝ)`, is infinite at
//! ŝ = 0; ŝ = 0 only when every g² so far was below the quantum, so the sensitivity of s to
//! anything upstream (`2(1−β₂)·g`) is 0 or within a quantum of it, and the adjoint uses 0
//! there: the derivative stays finite.
//!
//! The undo: `θ_t = θ_{t+1} + round(α·q(m_{t+1}, s_{t+1}))`, g recomputed at the bit-identical
//! θ_t, then `s_t = (d/n₂)·(s_{t+1} − round((1−β₂)·g²))` and likewise m, exactly.
//!
//! The adjoint of a step, with `dθ, dm, ds` the adjoints of state t+1, `m̂ = m/c₁`,
//! `ŝ = s/c₂`, `D = √ŝ + ε`, `q = m̂/D`:
//!
//! ```text
//! dα  += −dθ·q               dq = −α⊙dθ          dm̂ = dq/D          dD = −dq·q/D
//! dε  += dD                  dŝ = dD/(2√ŝ)       (0 at ŝ = 0)
//! dm  += dm̂/c₁              ds += dŝ/c₂
//! dβ₁ += dm̂·m̂·k·β₁^(k−1)/c₁     dβ₂ += dŝ·ŝ·k·β₂^(k−1)/c₂      (bias corrections)
//! u    = (1−β₁)⊙dm + 2(1−β₂)⊙g⊙ds                   (∂f/∂g_t: one Hessian-vector product)
//! dβ₁ += dm·(m_t − g)       dβ₂ += ds·(s_t − g²)
//! dθ  += H_t·u              dλ  += u⊙θ_t          dm ← β₁⊙dm          ds ← β₂⊙ds
//! ```
//!
//! u depends on g, so the reverse step asks the objective for the gradient first and builds
//! u from it inside the same forward-over-reverse pass
//! ([`crate::model::Objective::grad_then_hvp_into`]).
//!
//! A reverse step is two passes over the information buffer's segments, on the optimizer's
//! threads, around that gradient-then-HVP pass: the position pass undoes θ and runs the
//! first row of the adjoint with the same q; the moments pass undoes s and m and runs the
//! rest with the recovered moments. The hypergradient sums are kept per (segment, array)
//! and added in segment order, so they do not depend on the thread count, and the
//! stored-trajectory path walks the same segments in the same order to get the same bits.

use std::ops::Range;

use super::plan::{Decay, Scheduled, array_ranges, buffer_bound, information_floor_bits};
use super::registry::{Optimizer, OptimizerId};
use super::{
    FloatOptimizer, FloatState, Reversible, diverged, exact_gradient, exact_start, overflow,
    wide_overflow,
};
use crate::error::Result;
use crate::exact::{BufferBound, InfoBuffer, SEGMENT_LEN, fixed};
use crate::hyper::block::n_arrays;
use crate::hyper::{Hypers, Kind};
use crate::model::{Layout, Objective, RowTangents, Threads};
use crate::runtime::segments::{
    PerSegment, Sums, arrays_in, fold_sums, over_segments, segment_arrays,
};

/// α, β₁, β₂ (with their rationals) and ε at step t, per parameter array.
#[derive(Debug, Clone)]
pub struct AdamPlan {
    steps: usize,
    /// Ranges of the arrays in the flat parameter vector.
    pub arrays: Vec<Range<usize>>,
    /// α per group.
    pub alpha: Scheduled,
    /// β₁ per group, with its rationals.
    pub beta1: Decay,
    /// β₂ per group, with its rationals.
    pub beta2: Decay,
    /// ε per group.
    pub eps: Scheduled,
}

/// The numbers one array's elements share at step t.
#[derive(Debug, Clone, Copy)]
struct Consts {
    alpha: f64,
    eps: f64,
    b1: f64,
    b2: f64,
    /// 1 − β₁, 1 − β₂.
    omb1: f64,
    omb2: f64,
    /// Reciprocal bias corrections 1/c with c = 1 − β^k.
    inv_c1: f64,
    inv_c2: f64,
    /// `−(∂c/∂β)/c = k·β^(k−1)/c`: the β sensitivity of `m̂ = m/c` is `m̂·k·β^(k−1)/c`.
    dlog_c1: f64,
    dlog_c2: f64,
}

impl Consts {
    fn new(alpha: f64, eps: f64, b1: f64, b2: f64, k: usize) -> Self {
        let k_i = i32::try_from(k).unwrap_or(i32::MAX);
        let p1 = b1.powi(k_i - 1);
        let p2 = b2.powi(k_i - 1);
        let (inv_c1, inv_c2) = (1.0 / (1.0 - p1 * b1), 1.0 / (1.0 - p2 * b2));
        Consts {
            alpha,
            eps,
            b1,
            b2,
            omb1: 1.0 - b1,
            omb2: 1.0 - b2,
            inv_c1,
            inv_c2,
            dlog_c1: k as f64 * p1 * inv_c1,
            dlog_c2: k as f64 * p2 * inv_c2,
        }
    }

    /// `(m̂, √ŝ, D, q)` from the moments: `m̂ = m/c₁`, `ŝ = s/c₂` (as products with the
    /// reciprocals, computed once per step), `D = √ŝ + ε`, `q = m̂/D`. One division and one
    /// square root per element.
    #[inline(always)]
    fn update(&self, m: f64, s: f64) -> (f64, f64, f64, f64) {
        let mh = m * self.inv_c1;
        let r = (s * self.inv_c2).sqrt();
        let d = r + self.eps;
        (mh, r, d, mh / d)
    }
}

impl AdamPlan {
    /// The plan of `hypers`' α, β₁, β₂ and ε blocks over `layout`, for `steps` steps.
    ///
    /// # Panics
    /// If `hypers` lacks one of them (a programming error).
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        let na = n_arrays(layout);
        AdamPlan {
            steps,
            arrays: array_ranges(layout),
            alpha: Scheduled::new(hypers, Kind::Alpha, na),
            beta1: Decay::new(hypers, Kind::Beta1, na),
            beta2: Decay::new(hypers, Kind::Beta2, na),
            eps: Scheduled::new(hypers, Kind::Eps, na),
        }
    }

    /// Evaluate the blocks at step `t`.
    pub fn at(&mut self, t: usize) {
        self.alpha.at(t, self.steps);
        self.beta1.at(t, self.steps);
        self.beta2.at(t, self.steps);
        self.eps.at(t, self.steps);
    }

    /// Array `a`'s numbers at the current step `t`, with the rational β's (`exact`) or the
    /// configured ones.
    fn consts(&self, a: usize, t: usize, exact: bool) -> Consts {
        let (b1, b2) = if exact {
            (
                self.beta1.coder(a).rational().value(),
                self.beta2.coder(a).rational().value(),
            )
        } else {
            (self.beta1.value.of(a), self.beta2.value.of(a))
        };
        Consts::new(self.alpha.of(a), self.eps.of(a), b1, b2, t + 1)
    }

    fn fold_step(&mut self, t: usize, grads: &mut Hypers) {
        self.alpha.fold_step(t, self.steps, grads);
        self.beta1.value.fold_step(t, self.steps, grads);
        self.beta2.value.fold_step(t, self.steps, grads);
        self.eps.fold_step(t, self.steps, grads);
    }

    /// Σ_t (log₂(d/n₁_t) + log₂(d/n₂_t)) per parameter, averaged over the parameters.
    pub fn information_floor_bits(&mut self) -> f64 {
        information_floor_bits(
            &self.arrays,
            self.steps,
            &mut [&mut self.beta1, &mut self.beta2],
        )
    }

    /// The most the information buffer can hold after the run's β₁ and β₂ multiplies.
    pub fn buffer_bound(&self) -> BufferBound {
        buffer_bound(&self.arrays, self.steps, &[&self.beta1, &self.beta2])
    }
}

/// Fixed-point θ (i64), m and s (i128) and the information buffer.
#[derive(Debug, Clone)]
pub struct AdamState {
    /// θ in fixed point.
    pub theta: Vec<i64>,
    /// First moment m in wide fixed point.
    pub m: Vec<i128>,
    /// Second moment s in wide fixed point.
    pub s: Vec<i128>,
    /// Remainders of every `β₁·m` and `β₂·s` so far (one coder state per parameter).
    pub buffer: InfoBuffer,
}

/// Adam: the registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Adam;

impl Optimizer for Adam {
    const ID: OptimizerId = OptimizerId::Adam;
    type Float = FloatAdam;
    type Exact = ExactAdam;
    fn float(hypers: &Hypers, layout: &Layout, steps: usize, rational: bool) -> FloatAdam {
        FloatAdam {
            rational,
            ..FloatAdam::new(hypers, layout, steps)
        }
    }
    fn exact(
        hypers: &Hypers,
        layout: &Layout,
        steps: usize,
        threads: &Threads,
    ) -> Option<ExactAdam> {
        Some(ExactAdam::new(hypers, layout, steps, threads))
    }
    fn buffer_bound(hypers: &Hypers, layout: &Layout, steps: usize) -> Option<BufferBound> {
        Some(AdamPlan::new(hypers, layout, steps).buffer_bound())
    }
}

impl Consts {
    /// The adjoint through `θ_{t+1} = θ_t − α·q(m, s)` at one element, given the moments
    /// `m, s` at t+1 and `dθ`: adds to `dm`, `ds` and the sums `acc = (α, ε, β₁, β₂)`;
    /// returns q (which the exact undo of θ needs too).
    ///
    /// q = m̂/D, D = √ŝ + ε: ∂q/∂m̂ = 1/D, ∂q/∂D = −q/D, ∂D/∂ŝ = 1/(2√ŝ); m̂ = m/c₁ and
    /// ŝ = s/c₂ with ∂c/∂β = −k·β^(k−1). Two divisions besides q's own.
    #[inline(always)]
    fn position_adjoint(
        &self,
        m: f64,
        s: f64,
        dth: f64,
        dm: &mut f64,
        ds: &mut f64,
        acc: &mut Sums,
    ) -> f64 {
        let (mh, rt, d, q) = self.update(m, s);
        acc[0] -= dth * q;
        let dmh = -self.alpha * dth / d;
        let dd = -dmh * q;
        acc[1] += dd;
        // dŝ = dD/(2√ŝ); ŝ·dŝ = dD·√ŝ/2 needs no division.
        let dsh = if rt > 0.0 { dd / (2.0 * rt) } else { 0.0 };
        *dm += dmh * self.inv_c1;
        *ds += dsh * self.inv_c2;
        acc[2] += dmh * mh * self.dlog_c1;
        acc[3] += 0.5 * dd * rt * self.dlog_c2;
        q
    }

    /// The adjoint through the moment updates at one element, given g, the moments m, s
    /// at t, `hv = (H·u)_i`, `u_i` and θ_i: the β sums `acc[0..2]`, then
    /// `dθ += hv`, `dλ += u·θ`, `dm ← β₁·dm`, `ds ← β₂·ds`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn moments_adjoint(
        &self,
        (g, m, s): (f64, f64, f64),
        (hv, u, theta): (f64, f64, f64),
        dth: &mut f64,
        dl: &mut f64,
        dm: &mut f64,
        ds: &mut f64,
        acc: &mut Sums,
    ) {
        acc[0] += *dm * (m - g);
        acc[1] += *ds * (s - g * g);
        *dth += hv;
        *dl += u * theta;
        *dm *= self.b1;
        *ds *= self.b2;
    }
}

/// Exactly reversible Adam, with its scratch and adjoint vectors.
#[derive(Debug, Clone)]
pub struct ExactAdam {
    plan: AdamPlan,
    /// Each array's numbers at the current step (forward or reversed).
    consts: Vec<Consts>,
    theta_f: Vec<f64>,
    grad: Vec<f64>,
    hv: Vec<f64>,
    /// The direction of the Hessian-vector product, (1−β₁)⊙dm + 2(1−β₂)⊙g⊙ds.
    u: Vec<f64>,
    d_theta: Vec<f64>,
    d_m: Vec<f64>,
    d_s: Vec<f64>,
    d_lambda: Vec<f64>,
    /// Hypergradient sums per (segment, array): `(α, ε, β₁, β₂)` in the position pass,
    /// `(β₁, β₂)` in the moments pass.
    partials: Vec<Sums>,
    /// The threads the element loops run on.
    threads: Threads,
}

impl ExactAdam {
    /// The optimizer for `hypers`' α, β₁, β₂, ε blocks over `layout`, for `steps` steps.
    /// Its element loops run on `threads`.
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize, threads: &Threads) -> Self {
        let z = || vec![0.0; layout.len()];
        let plan = AdamPlan::new(hypers, layout, steps);
        let na = plan.arrays.len();
        ExactAdam {
            threads: threads.clone(),
            consts: vec![plan.consts(0, 0, true); na],
            partials: vec![[0.0; 4]; layout.len().div_ceil(SEGMENT_LEN) * na],
            plan,
            theta_f: z(),
            grad: z(),
            hv: z(),
            u: z(),
            d_theta: z(),
            d_m: z(),
            d_s: z(),
            d_lambda: z(),
        }
    }

    /// Evaluate the plan at step t and each array's numbers (with the rational β's).
    fn at(&mut self, t: usize) {
        self.plan.at(t);
        for (a, c) in self.consts.iter_mut().enumerate() {
            *c = self.plan.consts(a, t, true);
        }
    }

    /// The undo of step t's position, `θ_t = θ_{t+1} + round(α·q(m_{t+1}, s_{t+1}))`, with
    /// (if `adjoint`) the adjoint through it in the same pass; leaves θ_t in f64 in
    /// `theta_f`.
    fn position_pass(&mut self, s: &mut AdamState, adjoint: bool) {
        let ExactAdam {
            threads,
            plan,
            consts,
            theta_f,
            d_theta,
            d_m,
            d_s,
            partials,
            ..
        } = self;
        let (plan, consts, na) = (&*plan, &*consts, plan.arrays.len());
        let n = s.theta.len();
        let data = (
            (&mut s.theta[..], &mut theta_f[..]),
            (&s.m[..], &s.s[..]),
            &d_theta[..],
            (&mut d_m[..], &mut d_s[..]),
            PerSegment::new(partials, na, n),
        );
        let flags = over_segments(threads, &mut s.buffer, data, &|start,
                                                                  _,
                                                                  (
            (theta, theta_f),
            (m, sv),
            d_theta,
            (d_m, d_s),
            part,
        )| {
            let part = part.slots();
            let mut ok = true;
            for (a, r) in arrays_in(&plan.arrays, start..start + theta.len()) {
                let c = &consts[a];
                let al = fixed::scaled(c.alpha);
                let mut acc = [0.0; 4];
                for i in r {
                    let (mf, sf) = (fixed::wide_to_f64(m[i]), fixed::wide_to_f64(sv[i]));
                    let q = if adjoint {
                        c.position_adjoint(mf, sf, d_theta[i], &mut d_m[i], &mut d_s[i], &mut acc)
                    } else {
                        c.update(mf, sf).3
                    };
                    let (inc, ok1) = fixed::increment(al, q);
                    let (th, ok2) = fixed::checked_sum(theta[i], inc);
                    ok &= ok1 & ok2;
                    theta[i] = th;
                    theta_f[i] = fixed::to_f64(th);
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

    /// The undo of step t's moments given `self.grad = ∇L_t(θ_t)`: s_t, then m_t, exactly;
    /// with (if `adjoint`) the adjoint through the moment updates in the same pass.
    fn moments_pass(&mut self, s: &mut AdamState, adjoint: bool) {
        let ExactAdam {
            threads,
            plan,
            consts,
            theta_f,
            grad,
            hv,
            u,
            d_theta,
            d_m,
            d_s,
            d_lambda,
            partials,
        } = self;
        let (plan, consts, na) = (&*plan, &*consts, plan.arrays.len());
        let n = s.m.len();
        let data = (
            (&mut s.m[..], &mut s.s[..]),
            (&grad[..], &hv[..]),
            (&u[..], &theta_f[..]),
            (
                (&mut d_theta[..], &mut d_lambda[..]),
                (&mut d_m[..], &mut d_s[..]),
            ),
            PerSegment::new(partials, na, n),
        );
        let flags = over_segments(threads, &mut s.buffer, data, &|start,
                                                                  seg,
                                                                  (
            (m, sv),
            (grad, hv),
            (u, theta),
            ((d_theta, d_lambda), (d_m, d_s)),
            part,
        )| {
            let part = part.slots();
            let mut ok = true;
            // Decreasing order, as the segment's undo requires; per element the
            // reverse of the forward order (m, then s).
            for (a, r) in arrays_in(&plan.arrays, start..start + m.len()).rev() {
                let c = &consts[a];
                let (k1, k2) = (plan.beta1.coder(a), plan.beta2.coder(a));
                let c1 = fixed::wide_scaled(k1.rational().one_minus());
                let c2 = fixed::wide_scaled(k2.rational().one_minus());
                let mut acc = [0.0; 4];
                for i in r.rev() {
                    let g = grad[i];
                    let (inc, ok1) = fixed::wide_increment(c2, g * g);
                    let (x, ok2) = fixed::wide_checked_sum(sv[i], inc.wrapping_neg());
                    let x = seg.unmul_wide_at(i, x, k2);
                    sv[i] = x;
                    let (inc, ok3) = fixed::wide_increment(c1, g);
                    let (y, ok4) = fixed::wide_checked_sum(m[i], inc.wrapping_neg());
                    let y = seg.unmul_wide_at(i, y, k1);
                    m[i] = y;
                    ok &= ok1 & ok2 & ok3 & ok4;
                    if adjoint {
                        let (mf, sf) = (fixed::wide_to_f64(y), fixed::wide_to_f64(x));
                        c.moments_adjoint(
                            (g, mf, sf),
                            (hv[i], u[i], theta[i]),
                            &mut d_theta[i],
                            &mut d_lambda[i],
                            &mut d_m[i],
                            &mut d_s[i],
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

    /// The stored-trajectory path's position pass: [`ExactAdam::position_pass`]'s adjoint,
    /// with the moments at t+1 read from a snapshot, walking the segments in the same order
    /// so the sums are bit-identical.
    fn position_pass_stored(&mut self, m: &[f64], sv: &[f64]) {
        let na = self.plan.arrays.len();
        for (j, a, r) in segment_arrays(&self.plan.arrays, m.len(), false) {
            let c = &self.consts[a];
            let mut acc = [0.0; 4];
            for i in r {
                c.position_adjoint(
                    m[i],
                    sv[i],
                    self.d_theta[i],
                    &mut self.d_m[i],
                    &mut self.d_s[i],
                    &mut acc,
                );
            }
            self.partials[j * na + a] = acc;
        }
    }

    /// The stored-trajectory path's moments pass: [`ExactAdam::moments_pass`]'s adjoint,
    /// with θ, m and s at t read from a snapshot, in the same (decreasing) order.
    fn moments_pass_stored(&mut self, before: &FloatState) {
        let na = self.plan.arrays.len();
        let (m, sv) = (&before.aux[0], &before.aux[1]);
        for (j, a, r) in segment_arrays(&self.plan.arrays, m.len(), true) {
            let c = &self.consts[a];
            let mut acc = [0.0; 4];
            for i in r.rev() {
                c.moments_adjoint(
                    (self.grad[i], m[i], sv[i]),
                    (self.hv[i], self.u[i], before.theta[i]),
                    &mut self.d_theta[i],
                    &mut self.d_lambda[i],
                    &mut self.d_m[i],
                    &mut self.d_s[i],
                    &mut acc,
                );
            }
            self.partials[j * na + a] = acc;
        }
    }

    /// Adds a pass's per-segment sums to the plan's step sums ([`fold_sums`]):
    /// `(α, ε, β₁, β₂)` after the position pass, `(β₁, β₂)` after the moments pass.
    fn fold_partials(&mut self, position: bool) {
        let AdamPlan {
            arrays,
            alpha,
            beta1,
            beta2,
            eps,
            ..
        } = &mut self.plan;
        fold_sums(arrays, &self.partials, |a, sum| {
            if position {
                alpha.add(a, sum[0]);
                eps.add(a, sum[1]);
                beta1.value.add(a, sum[2]);
                beta2.value.add(a, sum[3]);
            } else {
                beta1.value.add(a, sum[0]);
                beta2.value.add(a, sum[1]);
            }
        });
    }

    /// The middle of the adjoint of step t, at θ_t (`theta`): the gradient, then
    /// `u = (1−β₁)⊙dm + 2(1−β₂)⊙g⊙ds` built from it, then `H_t·u`, in one
    /// gradient-then-HVP pass; and the example weights' share. Shared by both paths.
    fn hvp(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        theta: Option<&[f64]>,
        grads: &mut Hypers,
    ) {
        let ExactAdam {
            plan,
            consts,
            theta_f,
            grad,
            hv,
            u,
            d_m,
            d_s,
            ..
        } = self;
        let theta_now: &[f64] = theta.unwrap_or(&theta_f[..]);
        let arrays = &plan.arrays;
        let (dm, ds) = (&*d_m, &*d_s);
        let mut make_u = |g: &mut [f64], u: &mut [f64]| {
            for (a, r) in arrays.iter().enumerate() {
                let c = consts[a];
                let two = 2.0 * c.omb2;
                for i in r.clone() {
                    u[i] = c.omb1 * dm[i] + two * g[i] * ds[i];
                }
            }
        };
        obj.grad_then_hvp_into(t, theta_now, grad, u, &mut make_u, hv);
        // Example weights: g = Σ c_i·∇CE_i/B + …, so dc_i += ⟨u, ∇CE_i⟩/B — the directional
        // derivatives along this same u, which the R-pass just computed.
        super::add_row_gradients(obj, 1.0, grads);
    }
}

impl Reversible for ExactAdam {
    type State = AdamState;

    fn start(&mut self, theta0: &[f64]) -> Result<AdamState> {
        let (theta, buffer) = exact_start(theta0, &self.plan.buffer_bound())?;
        let n = theta.len();
        Ok(AdamState {
            theta,
            m: vec![0; n],
            s: vec![0; n],
            buffer,
        })
    }

    fn step(&mut self, obj: &mut impl Objective, t: usize, s: &mut AdamState) -> Result<f64> {
        self.at(t);
        let alpha = self.plan.alpha.now[0];
        let loss = exact_gradient(obj, t, &s.theta, &mut self.theta_f, &mut self.grad, alpha)?;
        // One fused pass per element; each segment of the buffer sees its elements in
        // increasing order, m's multiply before s's. The segments run on the objective's
        // threads. A wide value past its range cannot be multiplied again, so a segment
        // stops at the first array that overflowed.
        const M: u8 = 1;
        const S: u8 = 2;
        const THETA: u8 = 4;
        let (plan, consts) = (&self.plan, &self.consts);
        let data = (
            (&mut s.theta[..], &self.grad[..]),
            &mut s.m[..],
            &mut s.s[..],
        );
        let flags = over_segments(&self.threads, &mut s.buffer, data, &|start,
                                                                        seg,
                                                                        (
            (theta, grad),
            m,
            sv,
        )| {
            let (mut ok_m, mut ok_s, mut ok_theta) = (true, true, true);
            for (a, r) in arrays_in(&plan.arrays, start..start + theta.len()) {
                let c = &consts[a];
                let (k1, k2) = (*plan.beta1.coder(a), *plan.beta2.coder(a));
                // 1 − β from the coders, as the undo takes it (the same bits as c.omb).
                let w1 = fixed::wide_scaled(k1.rational().one_minus());
                let w2 = fixed::wide_scaled(k2.rational().one_minus());
                let al = fixed::scaled(c.alpha);
                for i in r {
                    let g = grad[i];
                    let x = seg.mul_wide_at(i, m[i], &k1);
                    let (inc, ok1) = fixed::wide_increment(w1, g);
                    let (x, ok2) = fixed::wide_checked_sum(x, inc);
                    ok_m &= ok1 & ok2;
                    m[i] = x;
                    let y = seg.mul_wide_at(i, sv[i], &k2);
                    let (inc, ok3) = fixed::wide_increment(w2, g * g);
                    let (y, ok4) = fixed::wide_checked_sum(y, inc);
                    ok_s &= ok3 & ok4;
                    sv[i] = y;
                    let q = c.update(fixed::wide_to_f64(x), fixed::wide_to_f64(y)).3;
                    let (inc, ok5) = fixed::increment(al, q);
                    let (th, ok6) = fixed::checked_sum(theta[i], inc.wrapping_neg());
                    ok_theta &= ok5 & ok6;
                    theta[i] = th;
                }
                if !(ok_m && ok_s) {
                    break;
                }
            }
            (u8::from(!ok_m) * M) | (u8::from(!ok_s) * S) | (u8::from(!ok_theta) * THETA)
        });
        let (ok_m, ok_s, ok_theta) = (flags & M == 0, flags & S == 0, flags & THETA == 0);
        let alpha = self.plan.alpha.now[0];
        if !ok_m {
            return Err(wide_overflow(t, "Adam", "the first moment m", alpha));
        }
        if !ok_s {
            return Err(wide_overflow(t, "Adam", "the second moment s", alpha));
        }
        if !ok_theta {
            return Err(overflow(t, "a weight", alpha));
        }
        Ok(loss)
    }

    fn theta_fixed<'s>(&self, s: &'s AdamState) -> &'s [i64] {
        &s.theta
    }

    fn snapshot(&self, s: &AdamState) -> FloatState {
        let wide = |x: &[i128]| x.iter().map(|&v| fixed::wide_to_f64(v)).collect();
        FloatState {
            theta: s.theta.iter().map(|&x| fixed::to_f64(x)).collect(),
            aux: vec![wide(&s.m), wide(&s.s)],
        }
    }

    fn buffer_bytes(&self, s: &AdamState) -> usize {
        s.buffer.bytes()
    }

    fn at_start(&self, s: &AdamState, theta0: &[i64]) -> bool {
        s.theta == theta0
            && s.m.iter().all(|&v| v == 0)
            && s.s.iter().all(|&v| v == 0)
            && s.buffer.is_empty_of_information()
    }

    fn information_floor_bits(&mut self) -> f64 {
        self.plan.information_floor_bits()
    }

    fn begin_adjoint(&mut self, d_theta: &[f64]) {
        self.d_theta.copy_from_slice(d_theta);
        self.d_m.fill(0.0);
        self.d_s.fill(0.0);
        self.d_lambda.fill(0.0);
    }

    fn undo_step(&mut self, obj: &mut impl Objective, t: usize, s: &mut AdamState) {
        self.at(t);
        self.position_pass(s, false);
        obj.grad_into(t, &self.theta_f, &mut self.grad);
        self.moments_pass(s, false);
    }

    fn reverse_step(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        s: &mut AdamState,
        grads: &mut Hypers,
    ) {
        self.at(t);
        self.position_pass(s, true);
        self.fold_partials(true);
        self.hvp(obj, t, None, grads);
        self.moments_pass(s, true);
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
        self.at(t);
        self.position_pass_stored(&after.aux[0], &after.aux[1]);
        self.fold_partials(true);
        self.hvp(obj, t, Some(&before.theta), grads);
        self.moments_pass_stored(before);
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

/// Adam in f64 (the reference: `train` without `--exact`, `verify-reversal`), with the
/// configured β's (not their rationals).
#[derive(Debug, Clone)]
pub struct FloatAdam {
    plan: AdamPlan,
    grad: Vec<f64>,
    /// Use the β's rationals n_t/2^16 (the exact run's decays) instead of the configured β's.
    rational: bool,
}

impl FloatAdam {
    /// The optimizer for `hypers`' Adam blocks over `layout`, for `steps` steps.
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        FloatAdam {
            plan: AdamPlan::new(hypers, layout, steps),
            grad: vec![0.0; layout.len()],
            rational: false,
        }
    }
}

impl FloatOptimizer for FloatAdam {
    /// One step t (SPEC §3.4). Returns `L_t(θ_t)`.
    ///
    /// # Errors
    /// [`crate::Error::Diverged`] if the loss is not finite.
    fn step(&mut self, obj: &mut impl Objective, t: usize, st: &mut FloatState) -> Result<f64> {
        self.plan.at(t);
        let (theta, m, s) = st.split2();
        let loss = obj.grad_into(t, theta, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.plan.alpha.now[0]));
        }
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let c = self.plan.consts(a, t, self.rational);
            for i in r.clone() {
                let g = self.grad[i];
                m[i] = c.b1 * m[i] + c.omb1 * g;
                s[i] = c.b2 * s[i] + c.omb2 * (g * g);
                theta[i] -= c.alpha * c.update(m[i], s[i]).3;
            }
        }
        Ok(loss)
    }

    /// Undo step t in f64: `θ ← θ + α·q(m, s)`, g at θ, `m ← (m − (1−β₁)·g)/β₁`,
    /// `s ← max(0, (s − (1−β₂)·g²)/β₂)`. Not exact.
    fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, st: &mut FloatState) {
        self.plan.at(t);
        let (theta, m, s) = st.split2();
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let c = self.plan.consts(a, t, self.rational);
            for i in r.clone() {
                theta[i] += c.alpha * c.update(m[i], s[i]).3;
            }
        }
        obj.grad_into(t, theta, &mut self.grad);
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let c = self.plan.consts(a, t, self.rational);
            for i in r.clone() {
                let g = self.grad[i];
                m[i] = (m[i] - c.omb1 * g) / c.b1;
                // A second moment is never negative; the f64 undo's rounding can take it
                // below 0, where its root (in the next undo) would be NaN.
                s[i] = ((s[i] - c.omb2 * (g * g)) / c.b2).max(0.0);
            }
        }
    }
}
