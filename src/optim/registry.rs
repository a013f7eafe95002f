//! # The registry of inner optimizers: from a name to the code
//!
//! The table of optimizers — names, own hyperparameter kinds, state vectors, reversibility —
//! is data, in [`crate::hyper::optimizer`], so that config validation reads it without
//! knowing any optimizer's code. This module joins each row to its code: the [`Optimizer`]
//! trait gives an optimizer's float implementation ([`FloatOptimizer`]) and its exact one
//! ([`Reversible`]), and [`OptimizerId::visit`] runs a generic operation ([`Visit`]) with
//! the row's type. Training (`optim::train`), the three hypergradient paths, and
//! `verify-reversal` are each one [`Visit`] implementation, monomorphised per optimizer so
//! the hot loops stay static.
//!
//! Adding an optimizer is one new file with its `impl Optimizer` (float and exact forms),
//! its arm in [`OptimizerId::visit`] below, and its row in [`crate::hyper::optimizer`]
//! (with its kinds in [`crate::hyper`] if it brings new ones).

use super::{FloatOptimizer, Reversible};
use crate::exact::BufferBound;
use crate::hyper::Hypers;
pub use crate::hyper::optimizer::{Info, OptimizerId};
use crate::model::{Layout, Objective, RowTangents, Threads};

/// An inner optimizer: its table row and its two implementations.
pub trait Optimizer {
    /// Its row in the table.
    const ID: OptimizerId;
    /// The f64 implementation (`train`, `search`, `verify-reversal`'s float rows, the
    /// stored float64 reference path).
    type Float: FloatOptimizer;
    /// The exact implementation; [`NotReversible`] when there is none.
    type Exact: Reversible;
    /// The float optimizer for `hypers`' blocks over `layout` for `steps` steps; with
    /// `rational_decays` every decay is replaced by its rational n_t/2^16 at every step (the
    /// exact run's decays), so that only the arithmetic differs from the exact run.
    fn float(hypers: &Hypers, layout: &Layout, steps: usize, rational_decays: bool) -> Self::Float;
    /// The exact optimizer, running its element loops on `threads`, or `None` when the
    /// update rule is not exactly reversible.
    fn exact(
        hypers: &Hypers,
        layout: &Layout,
        steps: usize,
        threads: &Threads,
    ) -> Option<Self::Exact>;
    /// The most the information buffer of an exact run of `steps` steps with `hypers`' blocks
    /// over `layout` can hold ([`crate::exact::bound`]; the run reserves its stacks to it),
    /// computed without building the optimizer; `None` when there is no exact form.
    fn buffer_bound(_hypers: &Hypers, _layout: &Layout, _steps: usize) -> Option<BufferBound> {
        None
    }
    /// Its row, [`Self::ID`]'s.
    fn info() -> Info {
        Self::ID.info()
    }
}

/// A generic operation over optimizers, run with a row's type by [`OptimizerId::visit`].
pub trait Visit {
    /// What the operation returns.
    type Output;
    /// Run the operation with optimizer `O`.
    fn visit<O: Optimizer>(self) -> Self::Output;
}

impl OptimizerId {
    /// Runs `v` with this entry's optimizer type.
    pub fn visit<V: Visit>(self, v: V) -> V::Output {
        match self {
            OptimizerId::Sgd => v.visit::<super::float::Sgd>(),
            OptimizerId::Momentum => v.visit::<super::momentum::Momentum>(),
            OptimizerId::Nesterov => v.visit::<super::nesterov::Nesterov>(),
            OptimizerId::Adam => v.visit::<super::adam::Adam>(),
            OptimizerId::Rmsprop => v.visit::<super::rmsprop::Rmsprop>(),
        }
    }

    /// [`Optimizer::buffer_bound`] of this entry.
    pub fn buffer_bound(
        self,
        hypers: &Hypers,
        layout: &Layout,
        steps: usize,
    ) -> Option<BufferBound> {
        struct B<'a>(&'a Hypers, &'a Layout, usize);
        impl Visit for B<'_> {
            type Output = Option<BufferBound>;
            fn visit<O: Optimizer>(self) -> Option<BufferBound> {
                O::buffer_bound(self.0, self.1, self.2)
            }
        }
        self.visit(B(hypers, layout, steps))
    }
}

/// The exact form of an optimizer that has none: an uninhabited type, so its
/// [`Reversible`] methods can never run ([`Optimizer::exact`] returns `None`).
#[derive(Debug, Clone, Copy)]
pub enum NotReversible {}

impl Reversible for NotReversible {
    type State = NotReversible;

    fn start(&mut self, _: &[f64]) -> crate::Result<NotReversible> {
        match *self {}
    }
    fn step(
        &mut self,
        _: &mut impl Objective,
        _: usize,
        _: &mut NotReversible,
    ) -> crate::Result<f64> {
        match *self {}
    }
    fn theta_fixed<'s>(&self, _: &'s NotReversible) -> &'s [i64] {
        match *self {}
    }
    fn snapshot(&self, _: &NotReversible) -> super::FloatState {
        match *self {}
    }
    fn buffer_bytes(&self, _: &NotReversible) -> usize {
        match *self {}
    }
    fn at_start(&self, _: &NotReversible, _: &[i64]) -> bool {
        match *self {}
    }
    fn information_floor_bits(&mut self) -> f64 {
        match *self {}
    }
    fn begin_adjoint(&mut self, _: &[f64]) {
        match *self {}
    }
    fn undo_step(&mut self, _: &mut impl Objective, _: usize, _: &mut NotReversible) {
        match *self {}
    }
    fn reverse_step(
        &mut self,
        _: &mut (impl Objective + RowTangents),
        _: usize,
        _: &mut NotReversible,
        _: &mut Hypers,
    ) {
        match *self {}
    }
    fn adjoint_step(
        &mut self,
        _: &mut (impl Objective + RowTangents),
        _: usize,
        _: &super::FloatState,
        _: &super::FloatState,
        _: &mut Hypers,
    ) {
        match *self {}
    }
    fn d_theta(&self) -> &[f64] {
        match *self {}
    }
    fn d_lambda(&self) -> &[f64] {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_dispatches_to_its_own_code() {
        struct Id;
        impl Visit for Id {
            type Output = OptimizerId;
            fn visit<O: Optimizer>(self) -> OptimizerId {
                O::ID
            }
        }
        for o in OptimizerId::ALL {
            assert_eq!(o.visit(Id), o);
        }
    }

    #[test]
    fn every_reversible_row_bounds_its_buffer() {
        let layout = Layout::new(&[3, 4, 2]);
        for o in OptimizerId::ALL {
            let hypers = Hypers {
                blocks: o
                    .kinds()
                    .iter()
                    .map(|&k| crate::hyper::Block::scalar(k, &layout, k.info().default))
                    .collect(),
            };
            let bound = o.buffer_bound(&hypers, &layout, 10);
            assert_eq!(bound.is_some(), o.info().reversible, "{o}");
        }
    }
}
