//! # Hypergradients: ∂f(θ_T)/∂(every entry of every block)
//!
//! Reverse-mode differentiation of the validation loss `f(θ_T)` through T optimizer steps
//! (Maclaurin, Duvenaud & Adams 2015, Algorithm 2, in SPEC §3's form, extended per block).
//! Starting from `dθ = ∇f(θ_T)` and every other adjoint 0, the optimizer's adjoint step
//! ([`crate::optim::Reversible`]) runs for t = T−1 down to 0, adding the hypergradients of
//! its own blocks (α_t, γ_t per step and group, folded into knots by the chain rule) and
//! accumulating `dλ = ∂f/∂λ` per parameter for the penalty. At the end:
//!
//! ```text
//! ∂f/∂l2_entry        = Σ_{i ∈ entry} dλ_i                    (λ = expansion of the l2 block)
//! ∂f/∂init_scale_entry = Σ_{i ∈ entry} dθ₀_i · ε_i              (θ₀ = init_scale ⊙ ε)
//! ```
//!
//! γ is the effective rational γ_t of the exact run throughout, so these are the
//! derivatives of one consistent map.
//!
//! Three independent ways to get the same numbers: [`reverse`] (exact reversal, O(|θ|)
//! memory, the product), [`stored`] (reverse mode over a stored trajectory, O(T·|θ|)) and
//! [`finite_diff`] (central differences of the exact forward run). All three take a
//! [`Setup`]: the run's blocks, the initial-weight noise, the layout, T, the threads the
//! exact optimizer runs its element loops on, and optionally a step counter that
//! [`reverse`] ticks through its forward and reverse phases for a progress bar (no other
//! path ticks it, and no result depends on it). The objective they differentiate is a
//! training oracle with evaluation and per-row tangents
//! ([`Objective`] + [`Evaluate`](crate::model::Evaluate) + [`RowTangents`]).

pub mod finite_diff;
pub mod reverse;
pub mod stored;

use crate::exact::Rational;
use crate::hyper::{Hypers, Kind};
use crate::model::{Layout, Objective, Penalized, RowTangents, Threads};
use crate::optim::{OptimizerId, Reversible};
use crate::runtime::{Phase, StepProgress};

/// What a hypergradient is taken of: the optimizer, the blocks, θ₀'s noise ε, the layout
/// and T; and the threads the exact optimizer computes on and the counter its steps are
/// shown on (results depend on neither).
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The inner optimizer (a registry entry).
    pub optimizer: OptimizerId,
    /// Every block (the optimizer's, l2, init_scale).
    pub hypers: &'a Hypers,
    /// Initial-weight noise ε (θ₀ = init_scale ⊙ ε).
    pub eps: &'a [f64],
    /// The parameter layout.
    pub layout: &'a Layout,
    /// Inner steps T.
    pub steps: usize,
    /// The threads the optimizer's element loops run on.
    pub threads: &'a Threads,
    /// The counter the inner steps are ticked on when a progress bar shows them: the
    /// forward and reverse phases of [`reverse`], a search trial's training
    /// ([`crate::optim::train_counted`]).
    pub progress: Option<&'a StepProgress>,
}

impl Setup<'_> {
    /// `phase` of the run's T steps begins on the progress counter, if there is one.
    pub fn begin(&self, phase: Phase) {
        if let Some(p) = self.progress {
            p.begin(phase, self.steps);
        }
    }

    /// `done` steps of the phase under way are done, on the progress counter if any.
    #[inline]
    pub fn tick(&self, done: usize) {
        if let Some(p) = self.progress {
            p.tick(done);
        }
    }

    /// θ₀ = init_scale ⊙ ε.
    pub fn theta0(&self) -> Vec<f64> {
        let s = self.hypers.get(Kind::InitScale).per_parameter(self.layout);
        s.iter().zip(self.eps).map(|(s, e)| s * e).collect()
    }

    /// The per-parameter penalty λ (the l2 block expanded; 0 on biases).
    pub fn lambda(&self) -> Vec<f64> {
        self.hypers.get(Kind::L2).per_parameter(self.layout)
    }

    /// `obj` as this run trains it: its rows weighted by the example_weight block (every
    /// weight 1 without one), its learnable rows' features set from the input block, and
    /// penalised by λ.
    pub fn objective<'o, O: Objective + RowTangents + ?Sized>(
        &self,
        obj: &'o mut O,
    ) -> Penalized<'o, O> {
        obj.set_row_weights(
            self.hypers
                .find(Kind::ExampleWeight)
                .map(|b| b.values.as_slice()),
        );
        obj.set_row_inputs(self.hypers.find(Kind::Input).map(|b| b.values.as_slice()));
        Penalized::new(obj, self.lambda())
    }

    /// An error unless the optimizer is exactly reversible with these blocks: it has an
    /// exact form, and no decay entry is 0 (γ = 0 makes momentum plain SGD and RMSprop plain
    /// RMSprop, whose steps forget the state they would be undone from).
    ///
    /// # Errors
    /// [`crate::Error::Usage`] saying why.
    pub fn require_reversible(&self) -> crate::Result<()> {
        let info = self.optimizer.info();
        if !info.reversible {
            return Err(crate::optim::not_reversible(info.name));
        }
        for b in &self.hypers.blocks {
            if b.kind().info().decay && b.values.iter().any(|&v| v <= 0.0) {
                return Err(crate::Error::Usage(format!(
                    "{} has a 0: {}",
                    b.kind().field(),
                    self.optimizer.zero_decay_reason(b.kind())
                )));
            }
        }
        Ok(())
    }

    /// The rational each decay entry (γ, β₁, β₂) stands for in exact arithmetic, same
    /// shapes, in block order.
    pub fn effective(&self) -> Vec<crate::hyper::Block> {
        self.hypers
            .blocks
            .iter()
            .filter(|b| b.kind().info().decay)
            .map(|b| {
                let mut b = b.clone();
                for v in &mut b.values {
                    *v = Rational::of_valid(*v).value();
                }
                b
            })
            .collect()
    }

    /// A hypergradient accumulator shaped like the blocks.
    pub(crate) fn zero_grads(&self) -> Hypers {
        self.hypers.zeros_like()
    }

    /// Folds the per-parameter adjoints left by the reverse pass into the l2 and init_scale
    /// blocks of `grads`.
    pub(crate) fn finish(&self, opt: &impl Reversible, grads: &mut Hypers) {
        let l2 = self.hypers.get(Kind::L2).fold(self.layout, opt.d_lambda());
        grads.get_mut(Kind::L2).values = l2;
        let d0: Vec<f64> = opt
            .d_theta()
            .iter()
            .zip(self.eps)
            .map(|(d, e)| d * e)
            .collect();
        let s = self.hypers.get(Kind::InitScale).fold(self.layout, &d0);
        grads.get_mut(Kind::InitScale).values = s;
    }
}

/// Bytes a stored trajectory of `steps` steps takes: `vectors` state vectors of f64 per
/// parameter for t = 0..=T (saturating).
pub fn store_all_bytes(dim: usize, steps: usize, vectors: usize) -> u64 {
    (steps as u64)
        .saturating_add(1)
        .saturating_mul(dim as u64)
        .saturating_mul(8 * vectors as u64)
}
