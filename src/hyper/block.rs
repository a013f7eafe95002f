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

use std::sync::Arc;

use super::shape::Group;
use super::{Kind, Per, Warp};

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
    /// Entries per row of a `per: row` block: 1 (example weights) or the features D
    /// (input); 1 for every other shape.
    pub(super) width: usize,
    /// The input block's per-feature statistics and box (the [`super::Warp::Box`] warp).
    pub(super) feature_box: Option<Arc<FeatureBox>>,
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

    /// Mean of the entries (the CSV's summary of a block): exactly the value when every
    /// entry is equal, else a compensated (Neumaier) sum divided by the count, kept within
    /// the entries' range (a mean is, and rounding must not take it past a block's
    /// largest entry, such as γ's 0.9999). NaN for a block without entries.
    pub fn mean(&self) -> f64 {
        let Some(&first) = self.values.first() else {
            return f64::NAN;
        };
        if self.values.iter().all(|v| v.to_bits() == first.to_bits()) {
            return first;
        }
        let n = self.values.len() as f64;
        let mut mean = neumaier_sum(self.values.iter().copied()) / n;
        if !mean.is_finite() {
            // The sum overflowed (entries near f64::MAX): sum the shares instead.
            mean = neumaier_sum(self.values.iter().map(|v| v / n));
        }
        let (lo, hi) = self
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        mean.clamp(lo, hi)
    }

    /// Entries per row of a `per: row` block (1, or D for the input block).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The input block's per-feature statistics and box.
    pub fn feature_box(&self) -> Option<&FeatureBox> {
        self.feature_box.as_deref()
    }

    /// The input block: `rows` learnable rows of `b.lo.len()` features, in raw units.
    ///
    /// # Panics
    /// If `values` is not `rows × D` long (a programming error).
    #[track_caller]
    pub fn inputs(rows: usize, b: FeatureBox, values: Vec<f64>) -> Self {
        let width = b.lo.len();
        assert_eq!(
            values.len(),
            rows * width,
            "input values are rows × features"
        );
        Block {
            width,
            feature_box: Some(Arc::new(b)),
            values,
            ..Self::rows(Kind::Input, rows * width, f64::NAN)
        }
    }

    /// The outer optimizer's coordinate of entry `e` at value `h` (SPEC §2.4 warps; the box
    /// warp per feature).
    pub fn warp_at(&self, e: usize, h: f64) -> f64 {
        match self.box_of(e) {
            Some((b, f)) => (h - b.mean[f]) / b.std[f],
            None => self.kind.warp(h),
        }
    }

    /// The value of entry `e` at coordinate `u`, kept in its valid range (the box, for the
    /// input block).
    pub fn unwarp_at(&self, e: usize, u: f64) -> f64 {
        match self.box_of(e) {
            Some((b, f)) => (b.mean[f] + b.std[f] * u).clamp(b.lo[f], b.hi[f]),
            None => self.kind.unwarp(u),
        }
    }

    /// `dh/du` of entry `e` at value `h`.
    pub fn jacobian_at(&self, e: usize, h: f64) -> f64 {
        match self.box_of(e) {
            Some((b, f)) => b.std[f],
            None => self.kind.jacobian(h),
        }
    }

    /// The width of entry `e`'s box in its coordinate u, `(hi − lo)/σ`; `None` for kinds
    /// without a box.
    pub fn box_width_at(&self, e: usize) -> Option<f64> {
        self.box_of(e).map(|(b, f)| (b.hi[f] - b.lo[f]) / b.std[f])
    }

    fn box_of(&self, e: usize) -> Option<(&FeatureBox, usize)> {
        debug_assert!(self.feature_box.is_some() == (self.kind.info().warp == Warp::Box));
        self.feature_box.as_deref().map(|b| (b, e % self.width))
    }
}

/// Σ xᵢ with Neumaier's compensation: the rounding error of each addition is kept in a
/// second sum and added at the end, so the result is as if summed with about twice the
/// precision (Neumaier 1974, the improved Kahan–Babuška sum).
fn neumaier_sum(xs: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for x in xs {
        let t = sum + x;
        c += if sum.abs() >= x.abs() {
            (sum - t) + x
        } else {
            (x - t) + sum
        };
        sum = t;
    }
    sum + c
}

/// Per feature f of the learnable rows: the real training rows' mean μ_f and std σ_f (1
/// where it is 0) in raw units, and their range [lo_f, hi_f], the box the entries stay in
/// (SPEC §2.5).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureBox {
    /// μ_f.
    pub mean: Vec<f64>,
    /// σ_f, > 0.
    pub std: Vec<f64>,
    /// Smallest value of the feature over the real training rows.
    pub lo: Vec<f64>,
    /// Largest value.
    pub hi: Vec<f64>,
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

    /// What to change after a run diverged at `step` of `steps` (`None`: somewhere over
    /// the run), naming the block entry most likely responsible, for a hint's "try …":
    /// `a smaller inner.alpha (now 0.1)`, `a smaller inner.alpha (W1 at step 45: 13960)`,
    /// `a smaller inner.l2 (W1 entry 17: 1e300)`, `a larger inner.beta2 (now 0.0001)`.
    ///
    /// The candidates are the blocks that make steps larger as they grow — α (at the step,
    /// schedules included), l2 (the penalty's curvature), init_scale — each at its largest
    /// entry, and Adam's β₂ at its smallest (with β₂ → 0 a step divides the momentum by
    /// the current gradient alone). The one furthest outside its search range (SPEC §2.4),
    /// by ratio, is named; α when none is outside it.
    pub fn divergence_suspect(&self, step: Option<usize>, steps: usize) -> String {
        let mut alpha = format!("a smaller {}", Kind::Alpha.field());
        let mut furthest: Option<(f64, String)> = None;
        for (kind, larger_is_worse) in [
            (Kind::Alpha, true),
            (Kind::L2, true),
            (Kind::InitScale, true),
            (Kind::Beta2, false),
        ] {
            let Some((value, place)) = self
                .find(kind)
                .and_then(|b| b.extreme(step, steps, larger_is_worse))
            else {
                continue;
            };
            let (lo, hi) = kind.info().search;
            let (score, change) = if larger_is_worse {
                (value / hi, "smaller")
            } else {
                (lo / value, "larger")
            };
            let named = format!(
                "a {change} {} ({place}{})",
                kind.field(),
                crate::error::show(value)
            );
            if kind == Kind::Alpha {
                alpha = named.clone();
            }
            if score > 1.0 && furthest.as_ref().is_none_or(|(s, _)| score > *s) {
                furthest = Some((score, named));
            }
        }
        furthest.map_or(alpha, |(_, named)| named)
    }
}

impl Block {
    /// The largest value of the block (the smallest, with `largest` false) at `step` of
    /// `steps` (over every knot with `None`) and where it is, as a prefix for the value:
    /// `now ` for one value for everything, else `W1: `, `W1 at step 45: `,
    /// `layer0 knot 2: ` or `W1 entry 17: `.
    fn extreme(&self, step: Option<usize>, steps: usize, largest: bool) -> Option<(f64, String)> {
        let pick = |a: &f64, b: &f64| {
            if largest {
                a.total_cmp(b)
            } else {
                b.total_cmp(a)
            }
        };
        if self.is_scalar() && self.knots == 1 {
            return Some((self.values[0], "now ".into()));
        }
        match step {
            Some(t) if self.knots > 1 => {
                let (g, v) = (0..self.groups.len())
                    .map(|g| (g, self.value_at(t, steps, g)))
                    .max_by(|a, b| pick(&a.1, &b.1))?;
                // Interpolated: four significant digits say enough.
                let v = format!("{v:.3e}").parse().unwrap_or(v);
                let group = &self.groups[g].name;
                Some((v, format!("{group} at step {t}: ")))
            }
            _ => {
                let (e, &v) = self
                    .values
                    .iter()
                    .enumerate()
                    .max_by(|a, b| pick(a.1, b.1))?;
                let (group, knot, index) = self.entry(e);
                let place = match index {
                    Some(i) => format!("{group} entry {i}: "),
                    None if self.knots > 1 => format!("{group} knot {knot}: "),
                    None => format!("{group}: "),
                };
                Some((v, place))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Layout;

    fn block(values: Vec<f64>) -> Block {
        Block {
            values,
            ..Block::rows(Kind::L2, 1, 0.0)
        }
    }

    #[test]
    fn the_mean_of_equal_entries_is_that_value() {
        for (v, n) in [
            (0.9999, 6),
            (0.9999, 7),
            (1e-4, 592),
            (1e-4, 1650),
            (0.1, 3),
        ] {
            let m = block(vec![v; n]).mean();
            assert_eq!(m.to_bits(), v.to_bits(), "{n} × {v}: {m}");
        }
        // The same through a shaped block.
        let layout = Layout::new(&[64, 8, 8, 10]);
        let g = Block::filled(Kind::Gamma, Per::Array, 3, &layout, 0.9999);
        assert_eq!(g.mean().to_bits(), 0.9999f64.to_bits());
    }

    #[test]
    fn the_divergence_suspect_is_the_entry_furthest_out_of_its_range() {
        let layout = Layout::new(&[4, 3, 2]);
        let hypers = |alpha: Block, l2: Block| Hypers {
            blocks: vec![
                alpha,
                Block::scalar(Kind::Gamma, &layout, 0.9),
                l2,
                Block::scalar(Kind::InitScale, &layout, 1.0),
            ],
        };
        let l2 = Block::scalar(Kind::L2, &layout, 0.0);
        let h = hypers(Block::scalar(Kind::Alpha, &layout, 0.1), l2.clone());
        assert_eq!(
            h.divergence_suspect(Some(3), 10),
            "a smaller inner.alpha (now 0.1)"
        );
        // A schedule per array: the largest group at the step, where the run failed.
        let mut a = Block::filled(Kind::Alpha, Per::Array, 2, &layout, 0.1);
        a.values[4 + 2] = 4e4;
        let h = hypers(a, l2);
        assert_eq!(
            h.divergence_suspect(Some(9), 10),
            "a smaller inner.alpha (W1 at step 9: 40000)"
        );
        assert_eq!(
            h.divergence_suspect(None, 10),
            "a smaller inner.alpha (W1 knot 1: 40000)"
        );
        // At step 0 of that schedule every α is 0.1: α's first group is named.
        assert!(h.divergence_suspect(Some(0), 10).contains(": 0.1)"));
        // An l2 entry far above its range beats an α within its own.
        let mut l2 = Block::filled(Kind::L2, Per::Weight, 1, &layout, 1e-4);
        l2.values[13] = 1e300;
        let h = hypers(Block::scalar(Kind::Alpha, &layout, 0.1), l2.clone());
        assert_eq!(
            h.divergence_suspect(Some(1), 10),
            "a smaller inner.l2 (W1 entry 1: 1e300)"
        );
        // Both out of range: the one further out.
        let h = hypers(Block::scalar(Kind::Alpha, &layout, 1e303), l2);
        assert_eq!(
            h.divergence_suspect(Some(1), 10),
            "a smaller inner.alpha (now 1e303)"
        );
    }

    #[test]
    fn the_mean_is_compensated_and_within_the_entries() {
        // 1 + 1e-16·k loses every small term in a naive sum.
        let mut v = vec![1.0];
        v.extend(std::iter::repeat_n(1e-16, 1000));
        let exact = (1.0 + 1000.0 * 1e-16) / 1001.0;
        let m = block(v).mean();
        assert!((m - exact).abs() <= f64::EPSILON * exact, "{m} vs {exact}");
        // Near-equal entries never average above the largest.
        let mut v = vec![0.9999; 7];
        v[0] = 0.9998;
        assert!(block(v).mean() <= 0.9999);
        // Entries whose sum overflows.
        let m = block(vec![f64::MAX, f64::MAX / 2.0]).mean();
        assert!(m.is_finite() && m > f64::MAX / 2.0, "{m}");
        assert!(block(Vec::new()).mean().is_nan());
    }
}
