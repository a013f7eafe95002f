//! # The optimizer's hyperparameters at step t, per parameter array
//!
//! Any schedulable block is a [`Scheduled`] (its value per group at step t, and its
//! hypergradient sums), and a decay (γ, β₁, β₂) a [`Decay`]: a [`Scheduled`] plus the
//! rational n_t/2^16 and [`Coder`] of each group at step t. [`Plan`] is momentum's (α, γ);
//! Adam's is in [`super::adam`], built from the same two pieces.
//!
//! The α and γ blocks may have different shapes (α per array, γ per layer, …) and
//! schedules. Every group is a union of whole arrays `W0, b0, W1, …`, so one step is a loop
//! over arrays, each with its α_t and γ_t: [`Plan::at`] evaluates the schedules once per step
//! and group (a handful of numbers), and the per-element loops read them per array. γ_t is
//! turned into its rational `n_t/2^16` and [`Coder`] here, once per step and group — the only
//! place a γ becomes a rational.
//!
//! The hypergradients of α and γ come out per step and group and are folded into the
//! knots at once ([`Block::add_step_gradient`]), so nothing of size T is kept.

use std::ops::Range;

use crate::exact::{Coder, Rational};
use crate::hyper::block::{array_range, n_arrays};
use crate::hyper::{Block, Hypers, Kind};

/// The ranges of the parameter arrays `W0, b0, W1, …` in the flat vector.
pub fn array_ranges(layout: &Layout) -> Vec<Range<usize>> {
    (0..n_arrays(layout))
        .map(|a| array_range(layout, a))
        .collect()
}
use crate::model::Layout;

/// A schedulable block evaluated at one step.
#[derive(Debug, Clone)]
pub struct Scheduled {
    kind: Kind,
    block: Block,
    /// Group of each array.
    of_array: Vec<usize>,
    /// Value per group at the current step.
    pub now: Vec<f64>,
    /// Per-group sums of the current step's hypergradient.
    pub sums: Vec<f64>,
}

impl Scheduled {
    /// `hypers`' block of `kind` over `arrays` parameter arrays.
    pub fn new(hypers: &Hypers, kind: Kind, arrays: usize) -> Self {
        let block = hypers.get(kind);
        let g = block.groups().len();
        Scheduled {
            kind,
            of_array: (0..arrays)
                .map(|a| block.group_of_array(a).unwrap_or(0))
                .collect(),
            block: block.clone(),
            now: vec![0.0; g],
            sums: vec![0.0; g],
        }
    }

    /// Evaluate the block at step `t` of `steps`.
    pub fn at(&mut self, t: usize, steps: usize) {
        for (g, v) in self.now.iter_mut().enumerate() {
            *v = self.block.value_at(t, steps, g);
        }
    }

    /// The value for array `a` at the current step.
    #[inline]
    pub fn of(&self, a: usize) -> f64 {
        self.now[self.of_array[a]]
    }

    /// Adds `d` to the current step's hypergradient of array `a`'s group.
    #[inline]
    pub fn add(&mut self, a: usize, d: f64) {
        self.sums[self.of_array[a]] += d;
    }

    /// Folds the current step's sums into the knots of the block's hypergradient in
    /// `grads` and clears them.
    pub fn fold_step(&mut self, t: usize, steps: usize, grads: &mut Hypers) {
        let grads = &mut grads.get_mut(self.kind).values;
        for g in 0..self.sums.len() {
            let d = std::mem::take(&mut self.sums[g]);
            self.block
                .add_step_gradient(t, steps, g, self.now[g], d, grads);
        }
    }
}

/// A decay block (γ, β₁, β₂) at step t: the configured value per group ([`Scheduled`]) and
/// its rational n_t/2^16 with the [`Coder`] exact runs multiply by — the only place a decay
/// becomes a rational.
#[derive(Debug, Clone)]
pub struct Decay {
    /// The configured value per group (float runs use it; exact runs use `coders`).
    pub value: Scheduled,
    /// The rational per group at the current step.
    pub coders: Vec<Coder>,
}

impl Decay {
    /// `hypers`' decay block of `kind` over `arrays` parameter arrays.
    pub fn new(hypers: &Hypers, kind: Kind, arrays: usize) -> Self {
        let value = Scheduled::new(hypers, kind, arrays);
        let g = value.now.len();
        Decay {
            value,
            coders: vec![Coder::new(Rational::of_valid(0.5)); g],
        }
    }

    /// Evaluate the block and its rationals at step `t` of `steps`.
    pub fn at(&mut self, t: usize, steps: usize) {
        self.value.at(t, steps);
        for (c, &g) in self.coders.iter_mut().zip(&self.value.now) {
            let r = Rational::of_valid(g);
            if c.rational() != r {
                *c = Coder::new(r);
            }
        }
    }

    /// The coder of array `a` at the current step.
    #[inline]
    pub fn coder(&self, a: usize) -> &Coder {
        &self.coders[self.value.of_array[a]]
    }
}

/// α and γ (with its coders) at step t, per parameter array.
#[derive(Debug, Clone)]
pub struct Plan {
    steps: usize,
    /// Ranges of the arrays in the flat parameter vector.
    pub arrays: Vec<Range<usize>>,
    /// α per group.
    pub alpha: Scheduled,
    /// γ per group, with its rationals.
    pub gamma: Decay,
}

impl Plan {
    /// The plan of `hypers`' α and γ blocks over `layout`, for a run of `steps` steps.
    ///
    /// # Panics
    /// If `hypers` has no α or γ block (a programming error).
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        let na = n_arrays(layout);
        Plan {
            steps,
            arrays: array_ranges(layout),
            alpha: Scheduled::new(hypers, Kind::Alpha, na),
            gamma: Decay::new(hypers, Kind::Gamma, na),
        }
    }

    /// Steps T of the run.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Evaluate the schedules at step `t`.
    pub fn at(&mut self, t: usize) {
        self.alpha.at(t, self.steps);
        self.gamma.at(t, self.steps);
    }

    /// The coder of array `a` at the current step.
    #[inline]
    pub fn coder(&self, a: usize) -> &Coder {
        self.gamma.coder(a)
    }

    /// γ_t of array `a` at the current step: its rational n_t/2^16 (`rational`, the exact
    /// run's decay) or the configured value.
    #[inline]
    pub fn gamma_of(&self, a: usize, rational: bool) -> f64 {
        if rational {
            self.coder(a).rational().value()
        } else {
            self.gamma.value.of(a)
        }
    }

    /// Folds the current step's α and γ hypergradient sums into `grads`.
    pub fn fold_step(&mut self, t: usize, grads: &mut Hypers) {
        self.alpha.fold_step(t, self.steps, grads);
        self.gamma.value.fold_step(t, self.steps, grads);
    }

    /// Σ_t log₂(d/n_t) per parameter, averaged over the parameters: the information the
    /// run's γ multiplies must store at least, in bits per parameter.
    pub fn information_floor_bits(&mut self) -> f64 {
        information_floor_bits(&self.arrays, self.steps, &mut [&mut self.gamma])
    }
}

/// Σ_t Σ_decays log₂(d/n_t) per parameter over `steps` steps, averaged over the parameters
/// of `arrays`: the least the information buffer must hold for these decays' multiplies.
pub fn information_floor_bits(
    arrays: &[Range<usize>],
    steps: usize,
    decays: &mut [&mut Decay],
) -> f64 {
    let n: usize = arrays.iter().map(|r| r.len()).sum();
    let mut bits = 0.0;
    for t in 0..steps {
        for d in decays.iter_mut() {
            d.at(t, steps);
        }
        for (a, r) in arrays.iter().enumerate() {
            let b: f64 = decays
                .iter()
                .map(|d| d.coder(a).rational().bits_per_multiply())
                .sum();
            bits += r.len() as f64 * b;
        }
    }
    bits / n.max(1) as f64
}
