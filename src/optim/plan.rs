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

use crate::exact::bound::words_bound;
use crate::exact::{BufferBound, Coder, Rational};
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

    /// The most the information buffer can hold after the run's γ multiplies.
    pub fn buffer_bound(&self) -> BufferBound {
        buffer_bound(&self.arrays, self.steps, &[&self.gamma])
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

/// Steps up to which [`buffer_bound`] sums a scheduled decay step by step.
const EXACT_STEPS: usize = 1 << 20;

/// The most an information buffer can hold after `steps` steps that multiply every
/// parameter of `arrays` once by each of `decays` per step: per array, [`words_bound`] of
/// the floor `Σ_t Σ_decays log₂(d/n_t)`, `steps × decays` multiplies and the largest
/// `n_t`.
///
/// A constant decay's floor is `steps·log₂(d/n)`; a schedule's is summed step by step with
/// the run's own rationals, up to 2^20 steps. Beyond, the steps go in runs of
/// `⌈steps/2^20⌉`, each charged at its smallest n: a schedule is monotone between
/// two knots, so a run's extremes are at its ends or at the knots inside it, and one more
/// unit each way on n covers the rounding of the interpolation.
pub fn buffer_bound(arrays: &[Range<usize>], steps: usize, decays: &[&Decay]) -> BufferBound {
    let len = arrays.iter().map(|r| r.end).max().unwrap_or(0);
    // (floor bits, largest n) per decay and group.
    let extents: Vec<Vec<(f64, u64)>> = decays
        .iter()
        .map(|d| {
            let block = &d.value.block;
            (0..block.groups().len())
                .map(|g| decay_extent(block, g, steps))
                .collect()
        })
        .collect();
    let multiplies = (steps as u64).saturating_mul(decays.len() as u64);
    let runs = arrays
        .iter()
        .enumerate()
        .map(|(a, r)| {
            let (mut bits, mut n_max) = (0.0, 1);
            for (d, e) in decays.iter().zip(&extents) {
                let (b, n) = e[d.value.of_array[a]];
                bits += b;
                n_max = n_max.max(n);
            }
            (r.clone(), words_bound(bits, multiplies, n_max))
        })
        .collect();
    BufferBound::new(len, runs)
}

/// `(Σ_t log₂(d/n_t), max_t n_t)` of group `g` of decay block `block` over `steps` steps,
/// the sum an upper bound beyond [`EXACT_STEPS`] steps (see [`buffer_bound`]).
fn decay_extent(block: &Block, g: usize, steps: usize) -> (f64, u64) {
    let n_at = |t: usize| Rational::of_valid(block.value_at(t, steps, g)).n();
    let bits = |n: u64| {
        Rational::from_numerator(n)
            .expect("a numerator in [1, 2^16)")
            .bits_per_multiply()
    };
    if block.knots() == 1 {
        let n = n_at(0);
        return (steps as f64 * bits(n), n);
    }
    let (mut sum, mut n_max) = (0.0, 1);
    if steps <= EXACT_STEPS {
        for t in 0..steps {
            let n = n_at(t);
            sum += bits(n);
            n_max = n_max.max(n);
        }
        return (sum, n_max);
    }
    let ng = block.groups().len();
    let run = steps.div_ceil(EXACT_STEPS);
    for a in (0..steps).step_by(run) {
        let b = (a + run - 1).min(steps - 1);
        let (ka, kb) = (
            block.knot_position(a, steps).0,
            block.knot_position(b, steps).0,
        );
        let (na, nb) = (n_at(a), n_at(b));
        let (mut lo, mut hi) = (na.min(nb), na.max(nb));
        for k in ka + 1..=kb {
            let n = Rational::of_valid(block.values[k * ng + g]).n();
            lo = lo.min(n);
            hi = hi.max(n);
        }
        let (lo, hi) = (
            lo.saturating_sub(1).max(1),
            (hi + 1).min(crate::exact::rational::DEN - 1),
        );
        sum += (b - a + 1) as f64 * bits(lo);
        n_max = n_max.max(hi);
    }
    (sum, n_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyper::Per;

    fn gamma_block(layout: &Layout, knots: &[f64]) -> Hypers {
        let mut b = Block::filled(Kind::Gamma, Per::All, knots.len(), layout, knots[0]);
        b.values = knots.to_vec();
        let alpha = Block::filled(Kind::Alpha, Per::All, 1, layout, 0.1);
        Hypers {
            blocks: vec![alpha, b],
        }
    }

    /// Beyond [`EXACT_STEPS`], runs charged at their smallest n bound the step-by-step sum
    /// from above, and by little.
    #[test]
    fn a_long_schedule_is_bounded_by_its_runs() {
        let layout = Layout::new(&[3, 4, 2]);
        let hypers = gamma_block(&layout, &[0.5, 0.99, 0.9, 0.9]);
        let steps = EXACT_STEPS + 12_345;
        let block = hypers.get(Kind::Gamma);
        let (coarse, n_coarse) = decay_extent(block, 0, steps);
        let mut exact = 0.0;
        let mut n_exact = 0;
        for t in 0..steps {
            let n = Rational::of_valid(block.value_at(t, steps, 0)).n();
            exact += Rational::from_numerator(n).unwrap().bits_per_multiply();
            n_exact = n_exact.max(n);
        }
        assert!(
            coarse >= exact && coarse <= exact * 1.001,
            "{coarse} vs {exact}"
        );
        assert!(n_coarse >= n_exact && n_coarse <= n_exact + 1);
        // A constant block: steps·log₂(d/n), whatever the length.
        let flat = gamma_block(&layout, &[0.9]);
        let (bits, n) = decay_extent(flat.get(Kind::Gamma), 0, 1_000_000_000);
        assert_eq!(n, 58983);
        assert!((bits / 1e9 - Rational::of_valid(0.9).bits_per_multiply()).abs() < 1e-12);
    }
}
