//! # A block: a kind, a shape and a flat vector of entries; the run's blocks
//!
//! A [`Block`] is one hyperparameter (SPEC §2.3): its [`Kind`], its [`Per`] shape over the
//! network, its `K` knots over the steps (1 without a schedule) and its entries `values`, one
//! flat vector laid out `[knot][group]`,
//!
//! ```text
//! entry e = k·G + g        (knot k < K, group g < G)
//! ```
//!
//! or, for `per: weight` and `per: row` (one knot), the groups one after the other, each with
//! its own count of entries (one per weight of `W_l`, one per training row). [`Hypers`] holds
//! every block of a run, and the same shapes hold their hypergradients.
//!
//! `Block`'s methods live with the idea they belong to: [`super::shape`] (groups over the
//! network, expanding to and folding from one value per parameter), [`super::schedule`] (the
//! value at a step and the chain rule into the knots) and [`super::json`] (the nested JSON of
//! configs, `--best` and reports).

use super::shape::Group;
use super::{Kind, Per};

// The optimizers address parameter arrays through these paths.
pub use super::shape::{array_range, n_arrays};

/// One hyperparameter block: kind, shape and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub(super) kind: Kind,
    pub(super) per: Per,
    pub(super) knots: usize,
    pub(super) groups: Vec<Group>,
    /// Array → group, `None` for arrays the block does not cover (biases, for l2).
    pub(super) array_group: Vec<Option<usize>>,
    /// Entries per group: 1, or the size of `W<l>` for `per: weight`.
    pub(super) group_len: Vec<usize>,
    /// The entries, `[knot][group]` (or per weight entry).
    pub values: Vec<f64>,
}

impl Block {
    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The shape.
    pub fn per(&self) -> Per {
        self.per
    }

    /// Knots (1 without a schedule).
    pub fn knots(&self) -> usize {
        self.knots
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a block without entries (never, for a valid layout).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// True for one value for everything.
    pub fn is_scalar(&self) -> bool {
        self.values.len() == 1
    }

    /// Mean of the entries (the CSV's summary of a block).
    pub fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }
}

/// Every block of a run, in the canonical order (the optimizer's kinds, then l2 and
/// init_scale): hyperparameter values, or — same shapes — their hypergradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypers {
    /// The blocks.
    pub blocks: Vec<Block>,
}

impl Hypers {
    /// The block of `kind`, if the run has one.
    pub fn find(&self, kind: Kind) -> Option<&Block> {
        self.blocks.iter().find(|b| b.kind == kind)
    }

    /// The block of `kind`, mutably, if the run has one.
    pub fn find_mut(&mut self, kind: Kind) -> Option<&mut Block> {
        self.blocks.iter_mut().find(|b| b.kind == kind)
    }

    /// The block of `kind`.
    ///
    /// # Panics
    /// If the run has no such block (a programming error: every run has all its kinds).
    #[track_caller]
    pub fn get(&self, kind: Kind) -> &Block {
        self.blocks
            .iter()
            .find(|b| b.kind == kind)
            .unwrap_or_else(|| panic!("no {} block", kind.name()))
    }

    /// The block of `kind`, mutably.
    ///
    /// # Panics
    /// As [`Hypers::get`].
    #[track_caller]
    pub fn get_mut(&mut self, kind: Kind) -> &mut Block {
        self.blocks
            .iter_mut()
            .find(|b| b.kind == kind)
            .unwrap_or_else(|| panic!("no {} block", kind.name()))
    }

    /// Same shapes, every entry 0 (a hypergradient accumulator).
    pub fn zeros_like(&self) -> Self {
        let mut z = self.clone();
        for b in &mut z.blocks {
            b.values.fill(0.0);
        }
        z
    }

    /// The kinds, in order.
    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.blocks.iter().map(|b| b.kind)
    }

    /// True when every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.blocks
            .iter()
            .all(|b| b.values.iter().all(|v| v.is_finite()))
    }

    /// Total number of entries.
    pub fn len(&self) -> usize {
        self.blocks.iter().map(Block::len).sum()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
