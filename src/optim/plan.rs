//! # The optimizer's hyperparameters at step t, per parameter array
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
use crate::model::Layout;

/// A schedulable block evaluated at one step.
#[derive(Debug, Clone)]
pub struct Scheduled {
    block: Block,
    /// Group of each array.
    of_array: Vec<usize>,
    /// Value per group at the current step.
    pub now: Vec<f64>,
    /// Per-group sums of the current step's hypergradient.
    pub sums: Vec<f64>,
}

impl Scheduled {
    fn new(block: &Block, arrays: usize) -> Self {
        let g = block.groups().len();
        Scheduled {
            of_array: (0..arrays)
                .map(|a| block.group_of_array(a).unwrap_or(0))
                .collect(),
            block: block.clone(),
            now: vec![0.0; g],
            sums: vec![0.0; g],
        }
    }

    fn at(&mut self, t: usize, steps: usize) {
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

    /// Folds the current step's sums into the knots of `grads` (same shape as the block) and
    /// clears them.
    pub fn fold_step(&mut self, t: usize, steps: usize, grads: &mut [f64]) {
        for g in 0..self.sums.len() {
            let d = std::mem::take(&mut self.sums[g]);
            self.block
                .add_step_gradient(t, steps, g, self.now[g], d, grads);
        }
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
    /// γ per group (the configured value; exact runs use `coders`).
    pub gamma: Scheduled,
    /// The rational γ per γ group at the current step.
    pub coders: Vec<Coder>,
    gamma_of_array: Vec<usize>,
}

impl Plan {
    /// The plan of `hypers`' α and γ blocks over `layout`, for a run of `steps` steps.
    ///
    /// # Panics
    /// If `hypers` has no α or γ block (a programming error).
    pub fn new(hypers: &Hypers, layout: &Layout, steps: usize) -> Self {
        let na = n_arrays(layout);
        let gamma = Scheduled::new(hypers.get(Kind::Gamma), na);
        let g = gamma.now.len();
        let gamma_of_array = gamma.of_array.clone();
        Plan {
            steps,
            arrays: (0..na).map(|a| array_range(layout, a)).collect(),
            alpha: Scheduled::new(hypers.get(Kind::Alpha), na),
            gamma,
            coders: vec![Coder::new(Rational::of_valid(0.5)); g],
            gamma_of_array,
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
        for (c, &g) in self.coders.iter_mut().zip(&self.gamma.now) {
            let r = Rational::of_valid(g);
            if c.rational() != r {
                *c = Coder::new(r);
            }
        }
    }

    /// The coder of array `a` at the current step.
    #[inline]
    pub fn coder(&self, a: usize) -> &Coder {
        &self.coders[self.gamma_of_array[a]]
    }

    /// Folds the current step's α and γ hypergradient sums into `grads`.
    pub fn fold_step(&mut self, t: usize, grads: &mut Hypers) {
        let steps = self.steps;
        self.alpha
            .fold_step(t, steps, &mut grads.get_mut(Kind::Alpha).values);
        self.gamma
            .fold_step(t, steps, &mut grads.get_mut(Kind::Gamma).values);
    }

    /// Σ_t log₂(d/n_t) per parameter, averaged over the parameters: the information the
    /// run's γ multiplies must store at least, in bits per parameter.
    pub fn information_floor_bits(&mut self) -> f64 {
        let n: usize = self.arrays.iter().map(|r| r.len()).sum();
        let mut bits = 0.0;
        for t in 0..self.steps {
            self.at(t);
            for (a, r) in self.arrays.iter().enumerate() {
                bits += r.len() as f64 * self.coder(a).rational().bits_per_multiply();
            }
        }
        bits / n.max(1) as f64
    }
}
