//! # RMSprop with momentum: exact forward, exact undo, and the adjoint of one step
//!
//! SPEC §3.6, with α_t, γ_t, ρ_t (schedulable) and ε per parameter array:
//!
//! ```text
//! g  = ∇L_t(θ_t)                                     f64, from the exact θ_t
//! s ← (n_ρ/d)·s + round((1−ρ)·g²)                    i128, rational multiply → buffer
//! r  = g / (√s + ε)                                  f64 from the exact s
//! b ← (n_γ/d)·b − round((1−γ)·r)                     i128, rational multiply → buffer
//! θ ← θ + round(α·b)                                 i64, exact addition
//! ```
//!
//! θ is momentum's fixed point; s and b are Adam's wide fixed point (92 fractional bits), so
//! exact RMSprop tracks float64 RMSprop as closely as exact Adam tracks float Adam. ρ and γ
//! are rationals n/2^16 used everywhere (decay and `1−ρ`, `1−γ`), so the hypergradient is the
//! derivative of one consistent map. Both multiplies of a parameter use its one coder state
//! in the information buffer (s first, b second; the undo reverses that): the buffer costs
//! `log₂(d/n_ρ) + log₂(d/n_γ)` bits per parameter per step plus one 8-byte state per
//! parameter.
//!
//! The θ update depends on the state b, not on g: that is what makes the step reversible.
//! The undo: `θ_t = θ_{t+1} − round(α·b_{t+1})`, g recomputed at the bit-identical θ_t,
//! `r` from g and s_{t+1} (the same bits as forward), then
//! `b_t = (d/n_γ)·(b_{t+1} + round((1−γ)·r))` and `s_t = (d/n_ρ)·(s_{t+1} − round((1−ρ)·g²))`.
//! With γ = 0 (plain RMSprop) b_{t+1} = −r_t forgets b_t: not reversible, as plain SGD is
//! not; exact runs refuse a zero decay.
//!
//! The adjoint of a step, with `dθ, ds, db` the adjoints of state t+1, `R = √s_{t+1}`,
//! `D = R + ε`:
//!
//! ```text
//! dα += dθ·b_{t+1}          db += α⊙dθ                                   (through θ)
//! dγ += db·(b_t + r)        dr  = −(1−γ)⊙db
//! dε += −dr·r/D             ds += −dr·r/(2·D·R)     (0 at R = 0)           (through r)
//! u   = dr/D + 2(1−ρ)⊙g⊙ds                  (∂f/∂g_t: one Hessian-vector product)
//! dρ += ds·(s_t − g²)
//! dθ += H_t·u               dλ += u⊙θ_t      db ← γ⊙db      ds ← ρ⊙ds
//! ```
//!
//! u depends on g, so the reverse step asks the objective for the gradient first and builds
//! u from it in the same forward-over-reverse pass
//! ([`crate::model::Objective::grad_then_hvp_into`]), as Adam does. A reverse step is two
//! passes over the information buffer's segments around it: the position pass undoes θ, runs
//! the adjoint through it and keeps R per element; the moments pass undoes b and s and runs
//! the rest. Sums are kept per (segment, array) and added in segment order, so they do not
//! depend on the thread count, and the stored-trajectory path walks the same segments in the
//! same order to get the same bits.

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

/// RMSprop with momentum: the registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Rmsprop;

impl Optimizer for Rmsprop {
    const ID: OptimizerId = OptimizerId::Rmsprop;
    type Float = FloatRmsprop;
    type Exact = ExactRmsprop;
    fn float(hypers: &Hypers, layout: &Layout, steps: usize, rational: bool) -> FloatRmsprop {
        FloatRmsprop {
            plan: RmspropPlan::new(hypers, layout, steps),
            grad: vec![0.0; layout.len()],
            earlier: vec![0.0; layout.len()],
            rational,
        }
    }
    fn exact(
        hypers: &Hypers,
        layout: &Layout,
        steps: usize,
        threads: &Threads,
    ) -> Option<ExactRmsprop> {
        Some(ExactRmsprop::new(hypers, layout, steps, threads))
    }
    fn buffer_bound(hypers: &Hypers, layout: &Layout, steps: usize) -> Option<BufferBound> {
        Some(RmspropPlan::new(hypers, layout, steps).buffer_bound())
    }
}

/// α, γ, ρ (with their rationals) and ε at step t, per parameter array.
#[derive(Debug, Clone)]
pub struct RmspropPlan {
    steps: usize,
    /// Ranges of the arrays in the flat parameter vector.
    pub arrays: Vec<Range<usize>>,
    /// α per group.
    pub alpha: Scheduled,
    /// γ per group, with its rationals.
    pub gamma: Decay,
    /// ρ per group, with its rationals.
    pub rho: Decay,
    /// ε per group.
    pub eps: Scheduled,
}

/// The numbers one array's elements share at step t.
#[derive(Debug, Clone, Copy)]
struct Consts {
    alpha: f64,
    eps: f64,
    gamma: f64,
    rho: f64,
    /// 1 − γ, 1 − ρ.
    omg: f64,
    omr: f64,
}

impl Consts {
    /// `1/(√s + ε)`: forward, undo and adjoint all take r as `g·(1/(√s + ε))`, so the undo
    /// recomputes the forward step's bits.
    #[inline(always)]
    fn inv_den(&self, s: f64) -> f64 {
        1.0 / (s.sqrt() + self.eps)
    }

    /// `r = g/(√s + ε)`, as `g·inv_den(s)`.
    #[inline(always)]
    fn ratio(&self, g: f64, s: f64) -> f64 {
        g * self.inv_den(s)
    }

    /// The adjoint through the moment updates at one element, given g and `r` of the step,
    /// `inv = 1/(√s + ε)` and `hir = 1/(2√s)` at s_{t+1} (0 at s = 0), `b_t`, `s_t`,
    /// `hv = (H·u)_i`, `u_i` and θ_i: the sums `acc = (γ, ρ, ε)`, then `dθ += hv`,
    /// `dλ += u·θ`, `db ← γ·db`, `ds ← ρ·ds`. `ds` includes r's share, as in
    /// [`Consts::direction`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn moments_adjoint(
        &self,
        (g, r): (f64, f64),
        (inv, hir): (f64, f64),
        (b, s): (f64, f64),
        (hv, u, theta): (f64, f64, f64),
        dth: &mut f64,
        dl: &mut f64,
        db: &mut f64,
        ds: &mut f64,
        acc: &mut Sums,
    ) {
        let d = *db;
        let dr = -self.omg * d;
        acc[0] += d * (b + r);
        acc[2] -= dr * r * inv;
        let ds_all = *ds - dr * r * inv * hir;
        acc[1] += ds_all * (s - g * g);
        *dth += hv;
        *dl += u * theta;
        *db = self.gamma * d;
        *ds = self.rho * ds_all;
    }

    /// `u = ∂f/∂g = dr/D + 2(1−ρ)·g·(ds + r's share)` at one element, r's share of ds being
    /// `−dr·r/(2·D·R)` (0 at R = 0: s = 0 only when every g² so far was below the quantum,
    /// where g²/R, and so the share, is within a quantum of 0).
    #[inline(always)]
    fn direction(&self, g: f64, (inv, hir): (f64, f64), db: f64, ds: f64) -> f64 {
        let r = g * inv;
        let dr = -self.omg * db;
        dr * inv + 2.0 * self.omr * g * (ds - dr * r * inv * hir)
    }

    /// `(1/(√s + ε), 1/(2√s))` (the second 0 at s = 0) at s_{t+1}, kept per element by the
    /// position pass for the rest of the reverse step.
    #[inline(always)]
    fn scales(&self, s: f64) -> (f64, f64) {
        let root = s.sqrt();
        let hir = if root > 0.0 { 0.5 / root } else { 0.0 };
        (self.inv_den(s), hir)
    }
}

impl RmspropPlan {
    /// The plan of `hypers`' α, γ, ρ and ε blocks over `layout`, for `steps` steps.
    ///
    /// # Panics
    /// If `hypers` lacks one of them (a programming error).
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        let na = n_arrays(layout);
        RmspropPlan {
            steps,
            arrays: array_ranges(layout),
            alpha: Scheduled::new(hypers, Kind::Alpha, na),
            gamma: Decay::new(hypers, Kind::Gamma, na),
            rho: Decay::new(hypers, Kind::Rho, na),
            eps: Scheduled::new(hypers, Kind::Eps, na),
        }
    }

    /// Evaluate the blocks at step `t`.
    pub fn at(&mut self, t: usize) {
        self.alpha.at(t, self.steps);
        self.gamma.at(t, self.steps);
        self.rho.at(t, self.steps);
        self.eps.at(t, self.steps);
    }

    /// Array `a`'s numbers at the current step, with the rational decays (`exact`) or the
    /// configured ones.
    fn consts(&self, a: usize, exact: bool) -> Consts {
        let (gamma, rho, omg, omr) = if exact {
            let (g, r) = (self.gamma.coder(a).rational(), self.rho.coder(a).rational());
            (g.value(), r.value(), g.one_minus(), r.one_minus())
        } else {
            let (g, r) = (self.gamma.value.of(a), self.rho.value.of(a));
            (g, r, 1.0 - g, 1.0 - r)
        };
        Consts {
            alpha: self.alpha.of(a),
            eps: self.eps.of(a),
            gamma,
            rho,
            omg,
            omr,
        }
    }

    fn fold_step(&mut self, t: usize, grads: &mut Hypers) {
        self.alpha.fold_step(t, self.steps, grads);
        self.gamma.value.fold_step(t, self.steps, grads);
        self.rho.value.fold_step(t, self.steps, grads);
        self.eps.fold_step(t, self.steps, grads);
    }

    /// Σ_t (log₂(d/n_ρ_t) + log₂(d/n_γ_t)) per parameter, averaged over the parameters.
    pub fn information_floor_bits(&mut self) -> f64 {
        information_floor_bits(
            &self.arrays,
            self.steps,
            &mut [&mut self.rho, &mut self.gamma],
        )
    }

    /// The most the information buffer can hold after the run's ρ and γ multiplies.
    pub fn buffer_bound(&self) -> BufferBound {
        buffer_bound(&self.arrays, self.steps, &[&self.rho, &self.gamma])
    }
}

/// Fixed-point θ (i64), s and b (i128) and the information buffer.
#[derive(Debug, Clone)]
pub struct RmspropState {
    /// θ in fixed point.
    pub theta: Vec<i64>,
    /// The mean square s in wide fixed point.
    pub s: Vec<i128>,
    /// The momentum buffer b in wide fixed point.
    pub b: Vec<i128>,
    /// Remainders of every `ρ·s` and `γ·b` so far (one coder state per parameter).
    pub buffer: InfoBuffer,
}

/// Exactly reversible RMSprop with momentum, with its scratch and adjoint vectors.
#[derive(Debug, Clone)]
pub struct ExactRmsprop {
    plan: RmspropPlan,
    /// Each array's numbers at the current step (forward or reversed).
    consts: Vec<Consts>,
    theta_f: Vec<f64>,
    grad: Vec<f64>,
    hv: Vec<f64>,
    /// `(1/(√s + ε), 1/(2√s))` at s_{t+1} per element, kept by the position pass for the
    /// rest of the reverse step.
    scales: Vec<(f64, f64)>,
    /// The direction of the Hessian-vector product, ∂f/∂g_t.
    u: Vec<f64>,
    d_theta: Vec<f64>,
    d_s: Vec<f64>,
    d_b: Vec<f64>,
    d_lambda: Vec<f64>,
    /// Hypergradient sums per (segment, array): `α` in the position pass, `(γ, ρ, ε)` in the
    /// moments pass.
    partials: Vec<Sums>,
    /// The threads the element loops run on.
    threads: Threads,
}

impl ExactRmsprop {
    /// The optimizer for `hypers`' α, γ, ρ, ε blocks over `layout`, for `steps` steps.
    /// Its element loops run on `threads`.
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize, threads: &Threads) -> Self {
        let z = || vec![0.0; layout.len()];
        let plan = RmspropPlan::new(hypers, layout, steps);
        let na = plan.arrays.len();
        ExactRmsprop {
            threads: threads.clone(),
            consts: vec![plan.consts(0, true); na],
            partials: vec![[0.0; 4]; layout.len().div_ceil(SEGMENT_LEN) * na],
            plan,
            theta_f: z(),
            grad: z(),
            hv: z(),
            scales: vec![(0.0, 0.0); layout.len()],
            u: z(),
            d_theta: z(),
            d_s: z(),
            d_b: z(),
            d_lambda: z(),
        }
    }

    /// Evaluate the plan at step t and each array's numbers (with the rational decays).
    fn at(&mut self, t: usize) {
        self.plan.at(t);
        for (a, c) in self.consts.iter_mut().enumerate() {
            *c = self.plan.consts(a, true);
        }
    }

    /// The undo of step t's position, `θ_t = θ_{t+1} − round(α·b_{t+1})`, with (if
    /// `adjoint`) the adjoint through it in the same pass (`dα += dθ·b`, `db += α·dθ`) and
    /// R = √s_{t+1} kept; leaves θ_t in f64 in `theta_f`.
    fn position_pass(&mut self, st: &mut RmspropState, adjoint: bool) {
        let ExactRmsprop {
            threads,
            plan,
            consts,
            theta_f,
            scales,
            d_theta,
            d_b,
            partials,
            ..
        } = self;
        let (plan, consts, na) = (&*plan, &*consts, plan.arrays.len());
        let n = st.theta.len();
        let data = (
            (&mut st.theta[..], &mut theta_f[..]),
            (&st.s[..], &st.b[..]),
            (&d_theta[..], &mut scales[..]),
            &mut d_b[..],
            PerSegment::new(partials, na, n),
        );
        let flags = over_segments(threads, &mut st.buffer, data, &|start,
                                                                   _,
                                                                   (
            (theta, theta_f),
            (s, b),
            (d_theta, scales),
            d_b,
            part,
        )| {
            let part = part.slots();
            let mut ok = true;
            for (a, r) in arrays_in(&plan.arrays, start..start + theta.len()) {
                let c = &consts[a];
                let al = fixed::scaled(c.alpha);
                let mut acc = [0.0; 4];
                for i in r {
                    let bf = fixed::wide_to_f64(b[i]);
                    let (inc, ok1) = fixed::increment(al, bf);
                    let (th, ok2) = fixed::checked_sum(theta[i], inc.wrapping_neg());
                    ok &= ok1 & ok2;
                    theta[i] = th;
                    theta_f[i] = fixed::to_f64(th);
                    if adjoint {
                        scales[i] = c.scales(fixed::wide_to_f64(s[i]));
                        acc[0] += d_theta[i] * bf;
                        d_b[i] += c.alpha * d_theta[i];
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

    /// The undo of step t's moments given `self.grad = ∇L_t(θ_t)`: b_t, then s_t, exactly;
    /// with (if `adjoint`) the adjoint through the moment updates in the same pass.
    fn moments_pass(&mut self, st: &mut RmspropState, adjoint: bool) {
        let ExactRmsprop {
            threads,
            plan,
            consts,
            theta_f,
            grad,
            hv,
            u,
            scales,
            d_theta,
            d_s,
            d_b,
            d_lambda,
            partials,
        } = self;
        let (plan, consts, na) = (&*plan, &*consts, plan.arrays.len());
        let n = st.s.len();
        let data = (
            (&mut st.s[..], &mut st.b[..]),
            (&grad[..], &hv[..]),
            (&u[..], &theta_f[..], &scales[..]),
            (
                (&mut d_theta[..], &mut d_lambda[..]),
                (&mut d_s[..], &mut d_b[..]),
            ),
            PerSegment::new(partials, na, n),
        );
        let flags = over_segments(threads, &mut st.buffer, data, &|start,
                                                                   seg,
                                                                   (
            (s, b),
            (grad, hv),
            (u, theta, scales),
            ((d_theta, d_lambda), (d_s, d_b)),
            part,
        )| {
            let part = part.slots();
            let mut ok = true;
            // Decreasing order, as the segment's undo requires; per element the reverse
            // of the forward order (s, then b).
            for (a, r) in arrays_in(&plan.arrays, start..start + s.len()).rev() {
                let c = &consts[a];
                let (kr, kg) = (plan.rho.coder(a), plan.gamma.coder(a));
                let wr = fixed::wide_scaled(kr.rational().one_minus());
                let wg = fixed::wide_scaled(kg.rational().one_minus());
                let mut acc = [0.0; 4];
                for i in r.rev() {
                    let g = grad[i];
                    // With the adjoint, the position pass kept 1/(√s + ε) of this s.
                    let ratio = if adjoint {
                        g * scales[i].0
                    } else {
                        c.ratio(g, fixed::wide_to_f64(s[i]))
                    };
                    let (inc, ok1) = fixed::wide_increment(wg, ratio);
                    let (y, ok2) = fixed::wide_checked_sum(b[i], inc);
                    let y = seg.unmul_wide_at(i, y, kg);
                    b[i] = y;
                    let (inc, ok3) = fixed::wide_increment(wr, g * g);
                    let (x, ok4) = fixed::wide_checked_sum(s[i], inc.wrapping_neg());
                    let x = seg.unmul_wide_at(i, x, kr);
                    s[i] = x;
                    ok &= ok1 & ok2 & ok3 & ok4;
                    if adjoint {
                        c.moments_adjoint(
                            (g, ratio),
                            scales[i],
                            (fixed::wide_to_f64(y), fixed::wide_to_f64(x)),
                            (hv[i], u[i], theta[i]),
                            &mut d_theta[i],
                            &mut d_lambda[i],
                            &mut d_b[i],
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

    /// The stored-trajectory path's position pass: [`ExactRmsprop::position_pass`]'s
    /// adjoint, with s and b at t+1 read from a snapshot, in the same segment order.
    fn position_pass_stored(&mut self, after: &FloatState) {
        let na = self.plan.arrays.len();
        let (s, b) = (&after.aux[0], &after.aux[1]);
        for (j, a, r) in segment_arrays(&self.plan.arrays, s.len(), false) {
            let c = self.consts[a];
            let mut acc = [0.0; 4];
            for i in r {
                self.scales[i] = c.scales(s[i]);
                acc[0] += self.d_theta[i] * b[i];
                self.d_b[i] += c.alpha * self.d_theta[i];
            }
            self.partials[j * na + a] = acc;
        }
    }

    /// The stored-trajectory path's moments pass: [`ExactRmsprop::moments_pass`]'s adjoint,
    /// with θ, s and b at t read from a snapshot, in the same (decreasing) order.
    fn moments_pass_stored(&mut self, before: &FloatState) {
        let na = self.plan.arrays.len();
        let (s, b) = (&before.aux[0], &before.aux[1]);
        for (j, a, r) in segment_arrays(&self.plan.arrays, s.len(), true) {
            let c = self.consts[a];
            let mut acc = [0.0; 4];
            for i in r.rev() {
                let g = self.grad[i];
                c.moments_adjoint(
                    (g, g * self.scales[i].0),
                    self.scales[i],
                    (b[i], s[i]),
                    (self.hv[i], self.u[i], before.theta[i]),
                    &mut self.d_theta[i],
                    &mut self.d_lambda[i],
                    &mut self.d_b[i],
                    &mut self.d_s[i],
                    &mut acc,
                );
            }
            self.partials[j * na + a] = acc;
        }
    }

    /// Adds a pass's per-segment sums to the plan's step sums ([`fold_sums`]): α after the
    /// position pass, `(γ, ρ, ε)` after the moments pass.
    fn fold_partials(&mut self, position: bool) {
        let RmspropPlan {
            arrays,
            alpha,
            gamma,
            rho,
            eps,
            ..
        } = &mut self.plan;
        fold_sums(arrays, &self.partials, |a, sum| {
            if position {
                alpha.add(a, sum[0]);
            } else {
                gamma.value.add(a, sum[0]);
                rho.value.add(a, sum[1]);
                eps.add(a, sum[2]);
            }
        });
    }

    /// The middle of the adjoint of step t, at θ_t (`theta`): the gradient, then
    /// `u = ∂f/∂g` built from it, then `H_t·u`, in one gradient-then-HVP pass; and the
    /// example weights' share. Shared by both paths.
    fn hvp(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        theta: Option<&[f64]>,
        grads: &mut Hypers,
    ) {
        let ExactRmsprop {
            plan,
            consts,
            theta_f,
            grad,
            hv,
            scales,
            u,
            d_s,
            d_b,
            ..
        } = self;
        let theta_now: &[f64] = theta.unwrap_or(&theta_f[..]);
        let arrays = &plan.arrays;
        let (db, ds, scales) = (&*d_b, &*d_s, &*scales);
        let mut make_u = |g: &mut [f64], u: &mut [f64]| {
            for (a, r) in arrays.iter().enumerate() {
                let c = consts[a];
                for i in r.clone() {
                    u[i] = c.direction(g[i], scales[i], db[i], ds[i]);
                }
            }
        };
        obj.grad_then_hvp_into(t, theta_now, grad, u, &mut make_u, hv);
        // Example weights: g = Σ c_i·∇CE_i/B + …, so dc_i += ⟨u, ∇CE_i⟩/B.
        super::add_row_gradients(obj, 1.0, grads);
    }
}

impl Reversible for ExactRmsprop {
    type State = RmspropState;

    fn start(&mut self, theta0: &[f64]) -> Result<RmspropState> {
        let (theta, buffer) = exact_start(theta0, &self.plan.buffer_bound())?;
        let n = theta.len();
        Ok(RmspropState {
            theta,
            s: vec![0; n],
            b: vec![0; n],
            buffer,
        })
    }

    fn step(&mut self, obj: &mut impl Objective, t: usize, st: &mut RmspropState) -> Result<f64> {
        self.at(t);
        let alpha = self.plan.alpha.now[0];
        let loss = exact_gradient(obj, t, &st.theta, &mut self.theta_f, &mut self.grad, alpha)?;
        // One fused pass per element; each segment of the buffer sees its elements in
        // increasing order, s's multiply before b's. A wide value past its range cannot be
        // multiplied again, so a segment stops at the first array that overflowed.
        const S: u8 = 1;
        const B: u8 = 2;
        const THETA: u8 = 4;
        let (plan, consts) = (&self.plan, &self.consts);
        let data = (
            (&mut st.theta[..], &self.grad[..]),
            &mut st.s[..],
            &mut st.b[..],
        );
        let flags = over_segments(&self.threads, &mut st.buffer, data, &|start,
                                                                         seg,
                                                                         (
            (theta, grad),
            s,
            b,
        )| {
            let (mut ok_s, mut ok_b, mut ok_theta) = (true, true, true);
            for (a, r) in arrays_in(&plan.arrays, start..start + theta.len()) {
                let c = &consts[a];
                let (kr, kg) = (*plan.rho.coder(a), *plan.gamma.coder(a));
                // 1 − ρ and 1 − γ from the coders, as the undo takes them.
                let wr = fixed::wide_scaled(kr.rational().one_minus());
                let wg = fixed::wide_scaled(kg.rational().one_minus());
                let al = fixed::scaled(c.alpha);
                for i in r {
                    let g = grad[i];
                    let x = seg.mul_wide_at(i, s[i], &kr);
                    let (inc, ok1) = fixed::wide_increment(wr, g * g);
                    let (x, ok2) = fixed::wide_checked_sum(x, inc);
                    ok_s &= ok1 & ok2;
                    s[i] = x;
                    let ratio = c.ratio(g, fixed::wide_to_f64(x));
                    let y = seg.mul_wide_at(i, b[i], &kg);
                    let (inc, ok3) = fixed::wide_increment(wg, ratio);
                    let (y, ok4) = fixed::wide_checked_sum(y, inc.wrapping_neg());
                    ok_b &= ok3 & ok4;
                    b[i] = y;
                    let (inc, ok5) = fixed::increment(al, fixed::wide_to_f64(y));
                    let (th, ok6) = fixed::checked_sum(theta[i], inc);
                    ok_theta &= ok5 & ok6;
                    theta[i] = th;
                }
                if !(ok_s && ok_b) {
                    break;
                }
            }
            (u8::from(!ok_s) * S) | (u8::from(!ok_b) * B) | (u8::from(!ok_theta) * THETA)
        });
        let alpha = self.plan.alpha.now[0];
        if flags & S != 0 {
            return Err(wide_overflow(t, "RMSprop", "the mean square s", alpha));
        }
        if flags & B != 0 {
            return Err(wide_overflow(t, "RMSprop", "the momentum buffer b", alpha));
        }
        if flags & THETA != 0 {
            return Err(overflow(t, "a weight", alpha));
        }
        Ok(loss)
    }

    fn theta_fixed<'s>(&self, st: &'s RmspropState) -> &'s [i64] {
        &st.theta
    }

    fn snapshot(&self, st: &RmspropState) -> FloatState {
        let wide = |x: &[i128]| x.iter().map(|&v| fixed::wide_to_f64(v)).collect();
        FloatState {
            theta: st.theta.iter().map(|&x| fixed::to_f64(x)).collect(),
            aux: vec![wide(&st.s), wide(&st.b)],
        }
    }

    fn buffer_bytes(&self, st: &RmspropState) -> usize {
        st.buffer.bytes()
    }

    fn at_start(&self, st: &RmspropState, theta0: &[i64]) -> bool {
        st.theta == theta0
            && st.s.iter().all(|&v| v == 0)
            && st.b.iter().all(|&v| v == 0)
            && st.buffer.is_empty_of_information()
    }

    fn information_floor_bits(&mut self) -> f64 {
        self.plan.information_floor_bits()
    }

    fn begin_adjoint(&mut self, d_theta: &[f64]) {
        self.d_theta.copy_from_slice(d_theta);
        self.d_s.fill(0.0);
        self.d_b.fill(0.0);
        self.d_lambda.fill(0.0);
    }

    fn undo_step(&mut self, obj: &mut impl Objective, t: usize, st: &mut RmspropState) {
        self.at(t);
        self.position_pass(st, false);
        obj.grad_into(t, &self.theta_f, &mut self.grad);
        self.moments_pass(st, false);
    }

    fn reverse_step(
        &mut self,
        obj: &mut (impl Objective + RowTangents),
        t: usize,
        st: &mut RmspropState,
        grads: &mut Hypers,
    ) {
        self.at(t);
        self.position_pass(st, true);
        self.fold_partials(true);
        self.hvp(obj, t, None, grads);
        self.moments_pass(st, true);
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
        self.position_pass_stored(after);
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

/// RMSprop with momentum in f64 (the reference: `train` without `--exact`, `search`,
/// `verify-reversal`), with the configured decays (or, for the stored float64 path, their
/// rationals).
#[derive(Debug, Clone)]
pub struct FloatRmsprop {
    plan: RmspropPlan,
    grad: Vec<f64>,
    /// The gradient of the previous step's batch at θ_t, for the undo of plain RMSprop.
    earlier: Vec<f64>,
    rational: bool,
}

impl FloatOptimizer for FloatRmsprop {
    /// One step t (SPEC §3.6). Returns `L_t(θ_t)`.
    fn step(&mut self, obj: &mut impl Objective, t: usize, st: &mut FloatState) -> Result<f64> {
        self.plan.at(t);
        let (theta, s, b) = st.split2();
        let loss = obj.grad_into(t, theta, &mut self.grad);
        if !loss.is_finite() {
            return Err(diverged(t, loss, self.plan.alpha.now[0]));
        }
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let c = self.plan.consts(a, self.rational);
            for i in r.clone() {
                let g = self.grad[i];
                s[i] = c.rho * s[i] + c.omr * (g * g);
                b[i] = c.gamma * b[i] - c.omg * c.ratio(g, s[i]);
                theta[i] += c.alpha * b[i];
            }
        }
        Ok(loss)
    }

    /// Undo step t in f64: `θ ← θ − α·b`, g at θ, `b ← (b + (1−γ)·g/(√s + ε))/γ`,
    /// `s ← (s − (1−ρ)·g²)/ρ`. Not exact. Where γ = 0 (plain RMSprop) b_{t+1} holds nothing of
    /// b_t = −g_{t−1}/(√s_t + ε), and the undo takes that gradient at the later point θ_t, as
    /// plain SGD's does.
    fn reverse_step(&mut self, obj: &mut impl Objective, t: usize, st: &mut FloatState) {
        self.plan.at(t);
        let (theta, s, b) = st.split2();
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let al = self.plan.alpha.of(a);
            for i in r.clone() {
                theta[i] -= al * b[i];
            }
        }
        obj.grad_into(t, theta, &mut self.grad);
        let plain =
            (0..self.plan.arrays.len()).any(|a| self.plan.consts(a, self.rational).gamma <= 0.0);
        if plain && t > 0 {
            obj.grad_into(t - 1, theta, &mut self.earlier);
        }
        for (a, r) in self.plan.arrays.iter().enumerate() {
            let c = self.plan.consts(a, self.rational);
            for i in r.clone() {
                let g = self.grad[i];
                let ratio = c.ratio(g, s[i]);
                // A mean square is never negative; the f64 undo's rounding can take it just
                // below 0, where its root (in the next undo) would be NaN.
                s[i] = ((s[i] - c.omr * (g * g)) / c.rho).max(0.0);
                b[i] = if c.gamma > 0.0 {
                    (b[i] + c.omg * ratio) / c.gamma
                } else if t > 0 {
                    -c.ratio(self.earlier[i], s[i])
                } else {
                    0.0
                };
            }
        }
    }
}
