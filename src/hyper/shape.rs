//! # A block's shape over the network: groups, and one value per parameter
//!
//! The parameter vector is a sequence of arrays `W0, b0, W1, b1, …`: array `a = 2l` is
//! `W_l`, `a = 2l + 1` is `b_l` ([`array_range`], [`n_arrays`]). A block's [`Per`] shape
//! makes **groups** of the arrays it covers, each group sharing one entry per knot:
//!
//! ```text
//! per      groups                            entries per group
//! all      all (every covered array)         1
//! layer    layer<l> = {W_l, b_l}             1
//! array    W<l> = {W_l}, b<l> = {b_l}        1
//! weight   as for array                      one per number of the array, row-major
//! row      all, over no array                one per training row (Block::rows)
//! ```
//!
//! A weights-only kind (l2, the one kind taking `per: weight`) covers no bias: its groups
//! leave out every `b_l`.
//!
//! Expansion E gives every parameter i of a covered array the entry x of its group
//! (`per: weight`, its own entry) and every other parameter 0; folding is its adjoint Eᵀ,
//! the sum of a per-parameter vector d over each group (`per: weight`, a copy):
//!
//! ```text
//! (E x)_i = x_{g(i)}  (0 if i is not covered)      (Eᵀ d)_g = Σ_{i ∈ g} d_i
//! ⟨d, E x⟩ = ⟨Eᵀ d, x⟩
//! ```
//!
//! Both read and write the first knot's entries: a per-parameter vector stands for a block
//! without a schedule.

use std::ops::Range;

use super::{Block, Kind, Per};
use crate::model::Layout;

/// A named set of parameter arrays sharing one entry (per knot).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `all`, `layer<l>`, `W<l>` or `b<l>`.
    pub name: String,
    /// Arrays in the group (`2l` = W_l, `2l+1` = b_l).
    pub arrays: Vec<usize>,
}

/// The range of array `a` in the flat parameter vector.
pub fn array_range(layout: &Layout, a: usize) -> Range<usize> {
    if a.is_multiple_of(2) {
        layout.w_range(a / 2)
    } else {
        layout.b_range(a / 2)
    }
}

/// Number of arrays (2 per layer).
pub fn n_arrays(layout: &Layout) -> usize {
    2 * layout.n_layers()
}

impl Block {
    /// A block of `kind` shaped `per` with `knots` knots over `layout`, every entry `value`
    /// (`per: row` blocks come from [`Block::rows`]).
    ///
    /// # Panics
    /// For `Per::Row` (a programming error).
    #[track_caller]
    pub fn filled(kind: Kind, per: Per, knots: usize, layout: &Layout, value: f64) -> Self {
        let weights_only = kind.info().weights_only;
        let layers = layout.n_layers();
        let group = |name: String, arrays: Vec<usize>| Group { name, arrays };
        let groups: Vec<Group> = match per {
            Per::All => {
                let arrays = (0..n_arrays(layout))
                    .filter(|a| !weights_only || a % 2 == 0)
                    .collect();
                vec![group("all".into(), arrays)]
            }
            Per::Layer if !weights_only => (0..layers)
                .map(|l| group(format!("layer{l}"), vec![2 * l, 2 * l + 1]))
                .collect(),
            Per::Layer => (0..layers)
                .map(|l| group(format!("layer{l}"), vec![2 * l]))
                .collect(),
            Per::Array | Per::Weight if weights_only => (0..layers)
                .map(|l| group(format!("W{l}"), vec![2 * l]))
                .collect(),
            Per::Row => panic!("per-row blocks are built by Block::rows"),
            Per::Array | Per::Weight => (0..n_arrays(layout))
                .map(|a| {
                    let name = if a % 2 == 0 { "W" } else { "b" };
                    group(format!("{name}{}", a / 2), vec![a])
                })
                .collect(),
        };
        let mut array_group = vec![None; n_arrays(layout)];
        for (g, gr) in groups.iter().enumerate() {
            for &a in &gr.arrays {
                array_group[a] = Some(g);
            }
        }
        let group_len: Vec<usize> = groups
            .iter()
            .map(|g| {
                if per == Per::Weight {
                    g.arrays.iter().map(|&a| array_range(layout, a).len()).sum()
                } else {
                    1
                }
            })
            .collect();
        let len = knots * group_len.iter().sum::<usize>();
        Block {
            kind,
            per,
            knots,
            groups,
            array_group,
            group_len,
            width: 1,
            feature_box: None,
            values: vec![value; len],
        }
    }

    /// A per-row block (example weights) of `rows` entries, every entry `value`.
    pub fn rows(kind: Kind, rows: usize, value: f64) -> Self {
        Block {
            kind,
            per: Per::Row,
            knots: 1,
            groups: vec![Group {
                name: "all".into(),
                arrays: Vec::new(),
            }],
            array_group: Vec::new(),
            group_len: vec![rows],
            width: 1,
            feature_box: None,
            values: vec![value; rows],
        }
    }

    /// One value for everything.
    pub fn scalar(kind: Kind, layout: &Layout, value: f64) -> Self {
        Self::filled(kind, Per::All, 1, layout, value)
    }

    /// The groups.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of array `a`, if the block covers it.
    pub fn group_of_array(&self, a: usize) -> Option<usize> {
        self.array_group[a]
    }

    /// `(group name, knot, index within the group)` of entry `e`, for `--hypers-out`.
    pub fn entry(&self, e: usize) -> (&str, usize, Option<usize>) {
        if matches!(self.per, Per::Weight | Per::Row) {
            let mut rest = e;
            for (g, &n) in self.group_len.iter().enumerate() {
                if rest < n {
                    return (&self.groups[g].name, 0, Some(rest));
                }
                rest -= n;
            }
            unreachable!("entry {e} beyond the block's {} entries", self.values.len());
        }
        let ng = self.groups.len();
        (&self.groups[e % ng].name, e / ng, None)
    }

    /// The entries of group `g` (every knot, or every weight of the group).
    pub fn group_entries(&self, g: usize) -> Vec<usize> {
        if matches!(self.per, Per::Weight | Per::Row) {
            let start: usize = self.group_len[..g].iter().sum();
            (start..start + self.group_len[g]).collect()
        } else {
            let ng = self.groups.len();
            (0..self.knots).map(|k| k * ng + g).collect()
        }
    }

    /// The value of every parameter (0 for parameters the block does not cover), for blocks
    /// without a schedule.
    pub fn per_parameter(&self, layout: &Layout) -> Vec<f64> {
        let mut out = vec![0.0; layout.len()];
        self.per_parameter_into(layout, &mut out);
        out
    }

    /// [`Block::per_parameter`] into `out`.
    pub fn per_parameter_into(&self, layout: &Layout, out: &mut [f64]) {
        out.fill(0.0);
        let mut next = 0;
        for (g, gr) in self.groups.iter().enumerate() {
            for &a in &gr.arrays {
                let r = array_range(layout, a);
                if self.per == Per::Weight {
                    out[r.clone()].copy_from_slice(&self.values[next..next + r.len()]);
                    next += r.len();
                } else {
                    out[r].fill(self.values[g]);
                }
            }
        }
    }

    /// The per-entry sums of a per-parameter gradient `d` (the adjoint of
    /// [`Block::per_parameter`]).
    pub fn fold(&self, layout: &Layout, d: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.values.len()];
        let mut next = 0;
        for (g, gr) in self.groups.iter().enumerate() {
            for &a in &gr.arrays {
                let r = array_range(layout, a);
                if self.per == Per::Weight {
                    out[next..next + r.len()].copy_from_slice(&d[r.clone()]);
                    next += r.len();
                } else {
                    out[g] += d[r].iter().sum::<f64>();
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(&[3, 4, 2])
    }
    #[test]
    fn groups_per_shape() {
        let l = layout();
        let names = |k, p| -> Vec<String> {
            Block::filled(k, p, 1, &l, 1.0)
                .groups()
                .iter()
                .map(|g| g.name.clone())
                .collect()
        };
        assert_eq!(names(Kind::Alpha, Per::All), ["all"]);
        assert_eq!(names(Kind::Alpha, Per::Layer), ["layer0", "layer1"]);
        assert_eq!(names(Kind::Alpha, Per::Array), ["W0", "b0", "W1", "b1"]);
        assert_eq!(names(Kind::L2, Per::Array), ["W0", "W1"]);
        assert_eq!(
            Block::filled(Kind::L2, Per::Weight, 1, &l, 1.0).len(),
            12 + 8
        );
        assert_eq!(Block::filled(Kind::Gamma, Per::Array, 5, &l, 0.5).len(), 20);
    }

    #[test]
    fn l2_covers_weights_only() {
        let l = layout();
        let p = Block::scalar(Kind::L2, &l, 0.5).per_parameter(&l);
        assert_eq!(
            p.iter()
                .filter(|&&v| v.to_bits() == 0.5f64.to_bits())
                .count(),
            20
        );
        assert_eq!(p[l.b_range(0)], [0.0; 4]);
    }

    #[test]
    fn fold_is_the_adjoint_of_expansion() {
        let l = layout();
        for (k, per) in [
            (Kind::L2, Per::Weight),
            (Kind::InitScale, Per::Layer),
            (Kind::L2, Per::All),
        ] {
            let mut b = Block::filled(k, per, 1, &l, 0.0);
            for (i, v) in b.values.iter_mut().enumerate() {
                *v = 0.3 + i as f64;
            }
            let d: Vec<f64> = (0..l.len()).map(|i| (i as f64 * 0.7).sin()).collect();
            // ⟨d, expand(x)⟩ = ⟨fold(d), x⟩
            let lhs: f64 = d.iter().zip(b.per_parameter(&l)).map(|(a, b)| a * b).sum();
            let rhs: f64 = b
                .fold(&l, &d)
                .iter()
                .zip(&b.values)
                .map(|(a, b)| a * b)
                .sum();
            assert!((lhs - rhs).abs() < 1e-12, "{k:?} {per:?}");
        }
    }
}
