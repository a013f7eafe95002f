//! # Hypergradients: ∂f(θ_T)/∂(α, γ, l2, init_scale)
//!
//! Reverse-mode differentiation of the validation loss `f(θ_T)` through T momentum steps
//! (Maclaurin, Duvenaud & Adams 2015, Algorithm 2, in SPEC §3's form). With adjoints
//! `dθ = ∂f/∂θ_{t+1}` and `dv = ∂f/∂v_{t+1}`, starting from `dθ = ∇f(θ_T)`, `dv = 0`, for
//! t = T−1 down to 0:
//!
//! ```text
//! dα += dθ · v_{t+1}
//! dv += α·dθ
//! (θ_t, v_t, g_t = ∇L_t(θ_t), H_t·dv)         recovered exactly / read from storage
//! dγ += dv · (v_t + g_t)                       ∂v_{t+1}/∂γ = v_t + g_t
//! dθ −= (1−γ)·H_t·dv
//! dl2 −= (1−γ)·dv · (mask ⊙ θ_t)               ∂g_t/∂l2 = mask ⊙ θ_t (weights only)
//! dv ← γ·dv
//! ```
//!
//! At the end `dθ = ∂f/∂θ₀` and, since `θ₀ = init_scale·ε`, `∂f/∂init_scale = dθ · ε`.
//! γ is the effective rational γ of the exact run throughout, so these are the derivatives of
//! one consistent map.
//!
//! Three independent ways to get the same numbers: [`reverse`] (exact reversal, O(|θ|)
//! memory, the product), [`stored`] (reverse mode over a stored trajectory, O(T·|θ|)) and
//! [`finite_diff`] (central differences of the exact forward run).

pub mod finite_diff;
pub mod reverse;
pub mod stored;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::exact::Rational;

/// One number per hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PerHyper {
    /// With respect to α.
    pub alpha: f64,
    /// With respect to γ.
    pub gamma: f64,
    /// With respect to l2.
    pub l2: f64,
    /// With respect to init_scale.
    pub init_scale: f64,
}

impl PerHyper {
    /// `[alpha, gamma, l2, init_scale]`.
    pub fn to_array(self) -> [f64; 4] {
        [self.alpha, self.gamma, self.l2, self.init_scale]
    }

    /// The entry for one hyperparameter.
    pub fn get(&self, which: crate::config::Hyper) -> f64 {
        use crate::config::Hyper;
        match which {
            Hyper::Alpha => self.alpha,
            Hyper::Gamma => self.gamma,
            Hyper::L2 => self.l2,
            Hyper::InitScale => self.init_scale,
        }
    }

    /// True when every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.to_array().iter().all(|v| v.is_finite())
    }
}

/// The rational γ of an exact run, or a usage error naming the allowed range.
pub fn rational_gamma(gamma: f64) -> Result<Rational> {
    Rational::approximate(gamma).ok_or_else(|| {
        Error::Usage(format!(
            "inner.gamma must be in (0, 1) and at most 65535/65536 for exact arithmetic, got {gamma}"
        ))
    })
}

/// Reverse-mode adjoint state shared by the exact-reversal and stored-trajectory paths.
#[derive(Debug, Clone)]
pub(crate) struct Adjoint {
    pub d_theta: Vec<f64>,
    pub d_v: Vec<f64>,
    pub d_alpha: f64,
    pub d_gamma: f64,
    pub d_l2: f64,
}

impl Adjoint {
    /// `dθ = ∇f(θ_T)`, everything else 0.
    pub fn new(val_grad: Vec<f64>) -> Self {
        let n = val_grad.len();
        Adjoint {
            d_theta: val_grad,
            d_v: vec![0.0; n],
            d_alpha: 0.0,
            d_gamma: 0.0,
            d_l2: 0.0,
        }
    }

    /// Through `θ_{t+1} = θ_t + α·v_{t+1}`: `dα += dθ·v_{t+1}`, `dv += α·dθ`.
    pub fn through_position(&mut self, v_next: &[f64], alpha: f64) {
        let mut da = 0.0;
        for ((dv, &dt), &v) in self.d_v.iter_mut().zip(&self.d_theta).zip(v_next) {
            da += dt * v;
            *dv += alpha * dt;
        }
        self.d_alpha += da;
    }

    /// Through `v_{t+1} = γ·v_t − (1−γ)·g_t(θ_t)`, given θ_t, v_t, g_t and `hv = H_t·dv`.
    pub fn through_velocity(
        &mut self,
        theta: &[f64],
        v: &[f64],
        g: &[f64],
        hv: &[f64],
        mask: &[f64],
        gamma: f64,
    ) {
        let omg = 1.0 - gamma;
        let (mut dg, mut dl) = (0.0, 0.0);
        for i in 0..self.d_v.len() {
            let dv = self.d_v[i];
            dg += dv * (v[i] + g[i]);
            dl += dv * mask[i] * theta[i];
            self.d_theta[i] -= omg * hv[i];
            self.d_v[i] = gamma * dv;
        }
        self.d_gamma += dg;
        self.d_l2 -= omg * dl;
    }

    /// The four hypergradients, given the initial-weight noise ε.
    pub fn finish(&self, eps: &[f64]) -> PerHyper {
        PerHyper {
            alpha: self.d_alpha,
            gamma: self.d_gamma,
            l2: self.d_l2,
            init_scale: self.d_theta.iter().zip(eps).map(|(d, e)| d * e).sum(),
        }
    }
}

/// Bytes a stored trajectory of `steps` steps takes: θ_t and v_t in f64 for t = 0..=T.
pub fn store_all_bytes(dim: usize, steps: usize) -> u64 {
    (steps as u64 + 1) * dim as u64 * 16
}
