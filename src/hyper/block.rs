//! # Blocks: a kind, a shape over the network, and a flat vector of entries
//!
//! The parameter vector is a sequence of arrays `W0, b0, W1, b1, …` (array `a = 2l` is
//! `W_l`, `a = 2l + 1` is `b_l`). A block's **groups** are sets of arrays (`all`,
//! `layer<l>`, `W<l>`, `b<l>`); its entries are laid out `[knot][group]`, or one per weight
//! entry for `per: weight` (group `W<l>`, index the flat position in `W<l>`).
//!
//! A schedule with K knots gives step t of T the value (SPEC §2.3), for K ≥ 2,
//!
//! ```text
//! p = t·(K−1)/(T−1)    k = min(⌊p⌋, K−2)    w = p − k
//! h_t = unwarp((1−w)·warp(h_k) + w·warp(h_{k+1}))
//! ```
//!
//! (`h_t = h_k` exactly when `w = 0` or the two knots are equal, so a schedule of equal
//! knots reproduces the constant run bit for bit), and the chain rule folds a per-step
//! hypergradient into the knots:
//!
//! ```text
//! ∂f/∂h_k += ∂f/∂h_t · J(h_t)·(1−w)/J(h_k)      ∂f/∂h_{k+1} += ∂f/∂h_t · J(h_t)·w/J(h_{k+1})
//! ```

use std::ops::Range;

use serde_json::{Map, Value};

use super::spec::{Spec, kind_of};
use super::{Kind, Per};
use crate::model::Layout;

/// A named set of parameter arrays sharing one entry (per knot).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `all`, `layer<l>`, `W<l>` or `b<l>`.
    pub name: String,
    /// Arrays in the group (`2l` = W_l, `2l+1` = b_l).
    pub arrays: Vec<usize>,
}

/// One hyperparameter block: kind, shape and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    kind: Kind,
    per: Per,
    knots: usize,
    groups: Vec<Group>,
    /// Array → group, `None` for arrays the block does not cover (biases, for l2).
    array_group: Vec<Option<usize>>,
    /// Entries per group: 1, or the size of `W<l>` for `per: weight`.
    group_len: Vec<usize>,
    /// The entries, `[knot][group]` (or per weight entry).
    pub values: Vec<f64>,
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
            values: vec![value; rows],
        }
    }

    /// One value for everything.
    pub fn scalar(kind: Kind, layout: &Layout, value: f64) -> Self {
        Self::filled(kind, Per::All, 1, layout, value)
    }

    /// The block a config entry describes, over `layout` and `rows` training rows.
    /// `Err((field, message))` names the offending dotted field under `field`
    /// (`inner.gamma.values[3][1] must be in …`).
    pub fn from_spec(
        kind: Kind,
        spec: &Spec,
        layout: &Layout,
        rows: usize,
        field: &str,
    ) -> Result<Self, (String, String)> {
        let init = spec.init.unwrap_or(f64::NAN);
        let mut b = if spec.per == Per::Row {
            Self::rows(kind, rows, init)
        } else {
            Self::filled(kind, spec.per, spec.knots, layout, init)
        };
        if let Some(v) = &spec.values {
            b.values = b.parse_values(v, &format!("{field}.values"), layout)?;
        }
        Ok(b)
    }

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

    /// The groups.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of array `a`, if the block covers it.
    pub fn group_of_array(&self, a: usize) -> Option<usize> {
        self.array_group[a]
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

    /// Knot position of step `t` of `steps`: `(k, w)` with the value between knots k and
    /// k+1 at fraction w (k = 0, w = 0 without a schedule).
    pub fn knot_position(&self, t: usize, steps: usize) -> (usize, f64) {
        let kk = self.knots;
        if kk == 1 {
            return (0, 0.0);
        }
        let p = if steps > 1 {
            t as f64 * (kk - 1) as f64 / (steps - 1) as f64
        } else {
            0.0
        };
        let k = (p.floor() as usize).min(kk - 2);
        (k, p - k as f64)
    }

    /// The value of group `g` at step `t` of `steps` (a schedule interpolated in warped
    /// coordinates between its knots).
    pub fn value_at(&self, t: usize, steps: usize, g: usize) -> f64 {
        let ng = self.groups.len();
        let (k, w) = self.knot_position(t, steps);
        let a = self.values[k * ng + g];
        if self.knots == 1 || w == 0.0 {
            return a;
        }
        let b = self.values[(k + 1) * ng + g];
        if w >= 1.0 {
            return b;
        }
        if a.to_bits() == b.to_bits() {
            return a;
        }
        self.kind
            .unwarp((1.0 - w) * self.kind.warp(a) + w * self.kind.warp(b))
    }

    /// Chain rule: adds the hypergradient `d = ∂f/∂h_t` of group `g` at step `t` (where the
    /// value was `h_t`) to the knots' entries of `grads`.
    pub fn add_step_gradient(
        &self,
        t: usize,
        steps: usize,
        g: usize,
        h_t: f64,
        d: f64,
        grads: &mut [f64],
    ) {
        let ng = self.groups.len();
        if self.knots == 1 {
            grads[g] += d;
            return;
        }
        let (k, w) = self.knot_position(t, steps);
        let jt = d * self.kind.jacobian(h_t);
        let (i, j) = (k * ng + g, (k + 1) * ng + g);
        grads[i] += jt * (1.0 - w) / self.kind.jacobian(self.values[i]);
        if w != 0.0 {
            grads[j] += jt * w / self.kind.jacobian(self.values[j]);
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

    /// `values` nested as SPEC §2.3 says: `[knot][group]` for schedules (and for every
    /// schedulable block when `nest_knots`), `[group]` otherwise, `{"W0": [[…]], …}` per
    /// weight.
    pub fn nest(&self, values: &[f64], layout: &Layout, nest_knots: bool) -> Value {
        let ng = self.groups.len();
        if self.per == Per::Row {
            return Value::from(values.to_vec());
        }
        if self.per == Per::Weight {
            let mut m = Map::new();
            let mut next = 0;
            for gr in &self.groups {
                let (rows, cols) = layout.w_shape(gr.arrays[0] / 2);
                let w: Vec<Value> = (0..rows)
                    .map(|i| Value::from(values[next + i * cols..next + (i + 1) * cols].to_vec()))
                    .collect();
                next += rows * cols;
                m.insert(gr.name.clone(), Value::Array(w));
            }
            return Value::Object(m);
        }
        if self.knots > 1 || (nest_knots && self.kind.info().schedulable) {
            Value::Array(values.chunks(ng).map(|c| Value::from(c.to_vec())).collect())
        } else {
            Value::from(values.to_vec())
        }
    }

    /// The block as a config entry holding every value (for `--best`).
    pub fn to_spec(&self, layout: &Layout) -> Spec {
        if self.per == Per::All && self.knots == 1 {
            return Spec::scalar(self.values[0]);
        }
        Spec {
            per: self.per,
            knots: self.knots,
            init: None,
            values: Some(self.nest(&self.values, layout, false)),
        }
    }

    /// The JSON report of `values` (this block's values or its hypergradients): a number for
    /// a scalar block, else `{"per", "groups", "knots", "values"}` (SPEC §4.3).
    pub fn report(&self, values: &[f64], layout: &Layout, with_shape: bool) -> Value {
        if self.per == Per::All && self.knots == 1 {
            return Value::from(values[0]);
        }
        let mut m = Map::new();
        if with_shape {
            m.insert("per".into(), Value::from(self.per.name()));
        }
        let names: Vec<Value> = self
            .groups
            .iter()
            .map(|g| Value::from(g.name.clone()))
            .collect();
        m.insert("groups".into(), Value::Array(names));
        if with_shape && self.kind.info().schedulable {
            m.insert("knots".into(), Value::from(self.knots));
        }
        m.insert("values".into(), self.nest(values, layout, true));
        Value::Object(m)
    }

    /// Reads nested `values` (any of [`Block::nest`]'s layouts), checking shape and range.
    fn parse_values(
        &self,
        v: &Value,
        field: &str,
        layout: &Layout,
    ) -> Result<Vec<f64>, (String, String)> {
        let ng = self.groups.len();
        let expected = self.expected_shape(layout);
        let wrong =
            |f: &str, got: String| Err((f.to_owned(), format!("must be {expected}, got {got}")));
        let number = |x: &Value, f: String| -> Result<f64, (String, String)> {
            let n = x
                .as_f64()
                .ok_or_else(|| (f.clone(), format!("must be a number, got {}", kind_of(x))))?;
            self.kind.check(n).map_err(|m| (f, m))?;
            Ok(n)
        };
        let list = |x: &Value, len: usize, f: &str| -> Result<Vec<f64>, (String, String)> {
            match x.as_array() {
                Some(a) if a.len() == len => a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| number(x, format!("{f}[{i}]")))
                    .collect(),
                Some(a) => Err((
                    f.to_owned(),
                    format!("must be {expected}, got a list of {}", a.len()),
                )),
                None => Err((
                    f.to_owned(),
                    format!("must be {expected}, got {}", kind_of(x)),
                )),
            }
        };
        if self.per == Per::Weight {
            let Some(obj) = v.as_object() else {
                return wrong(field, kind_of(v).to_owned());
            };
            let mut out = Vec::with_capacity(self.values.len());
            for gr in &self.groups {
                let (rows, cols) = layout.w_shape(gr.arrays[0] / 2);
                let f = format!("{field}.{}", gr.name);
                let Some(w) = obj.get(&gr.name) else {
                    return wrong(field, format!("no \"{}\"", gr.name));
                };
                let Some(w) = w.as_array().filter(|w| w.len() == rows) else {
                    return wrong(&f, "a list of another length".into());
                };
                for (i, row) in w.iter().enumerate() {
                    out.extend(list(row, cols, &format!("{f}[{i}]"))?);
                }
            }
            if let Some(extra) = obj
                .keys()
                .find(|k| !self.groups.iter().any(|g| &g.name == *k))
            {
                return wrong(
                    field,
                    format!("an unknown array \"{}\"", crate::error::shorten(extra)),
                );
            }
            return Ok(out);
        }
        if self.per == Per::Row {
            return list(v, self.values.len(), field);
        }
        let Some(outer) = v.as_array() else {
            return wrong(field, kind_of(v).to_owned());
        };
        let nested = outer.first().is_some_and(Value::is_array);
        if self.knots == 1 && !nested {
            return list(v, ng, field);
        }
        if outer.len() != self.knots {
            return wrong(field, format!("a list of {}", outer.len()));
        }
        let mut out = Vec::with_capacity(self.values.len());
        for (k, row) in outer.iter().enumerate() {
            out.extend(list(row, ng, &format!("{field}[{k}]"))?);
        }
        Ok(out)
    }

    /// The shape `values` must have, for messages.
    fn expected_shape(&self, layout: &Layout) -> String {
        let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        if self.per == Per::Row {
            format!(
                "a list of {} values, one per training row (the rows left for training after \
                 the validation and test splits, in file order)",
                self.values.len()
            )
        } else if self.per == Per::Weight {
            let shapes: Vec<String> = self
                .groups
                .iter()
                .map(|g| {
                    let (r, c) = layout.w_shape(g.arrays[0] / 2);
                    format!("\"{}\": {r}×{c}", g.name)
                })
                .collect();
            format!("an object of weight matrices {{{}}}", shapes.join(", "))
        } else if self.knots > 1 {
            format!(
                "a list of {} knots, each a list of {} values ({})",
                self.knots,
                names.len(),
                names.join(", ")
            )
        } else {
            format!("a list of {} values ({})", names.len(), names.join(", "))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn schedule_interpolates_in_warped_coordinates() {
        let l = layout();
        let mut b = Block::filled(Kind::Alpha, Per::All, 3, &l, 0.1);
        b.values = vec![0.1, 0.4, 0.4];
        assert_eq!(b.value_at(0, 11, 0).to_bits(), 0.1f64.to_bits());
        assert_eq!(b.value_at(5, 11, 0).to_bits(), 0.4f64.to_bits());
        assert_eq!(b.value_at(10, 11, 0).to_bits(), 0.4f64.to_bits());
        // Halfway between 0.1 and 0.4 in log space is 0.2.
        assert!((b.value_at(2, 9, 0) - 0.2).abs() < 1e-15);
        // Equal knots reproduce the value exactly.
        assert_eq!(b.value_at(7, 11, 0).to_bits(), 0.4f64.to_bits());
    }

    #[test]
    fn values_round_trip_and_bad_shapes_are_named() {
        let l = layout();
        let spec = |v| Spec {
            per: Per::Array,
            knots: 2,
            init: None,
            values: Some(v),
        };
        let b = Block::from_spec(
            Kind::Gamma,
            &spec(json!([[0.5, 0.6, 0.7, 0.8], [0.9, 0.9, 0.9, 0.9]])),
            &l,
            0,
            "inner.gamma",
        )
        .unwrap();
        assert_eq!(b.values[4].to_bits(), 0.9f64.to_bits());
        assert_eq!(
            Block::from_spec(Kind::Gamma, &b.to_spec(&l), &l, 0, "g").unwrap(),
            b
        );
        let e = Block::from_spec(
            Kind::Gamma,
            &spec(json!([[0.5, 0.6, 0.7, 0.8], [0.9, 1.2, 0.9, 0.9]])),
            &l,
            0,
            "inner.gamma",
        )
        .unwrap_err();
        assert_eq!(e.0, "inner.gamma.values[1][1]");
        assert_eq!(e.1, "must be in (0, 0.9999], got 1.2");
        let e = Block::from_spec(
            Kind::Gamma,
            &spec(json!([[0.5, 0.6]])),
            &l,
            0,
            "inner.gamma",
        )
        .unwrap_err();
        assert!(
            e.1.contains("a list of 2 knots, each a list of 4 values (W0, b0, W1, b1)"),
            "{}",
            e.1
        );
        let w = Block::filled(Kind::L2, Per::Weight, 1, &l, 0.01);
        let back = Block::from_spec(Kind::L2, &w.to_spec(&l), &l, 0, "inner.l2").unwrap();
        assert_eq!(back, w);
    }
}
