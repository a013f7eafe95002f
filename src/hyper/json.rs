//! # A block's values as JSON: configs, `--best` and reports
//!
//! Entries nest as SPEC §2.3 writes them ([`Block::nest`]), with G groups and K knots:
//!
//! ```text
//! all/layer/array, K = 1    [x_0, …, x_{G−1}]
//! all/layer/array, K ≥ 2    [[x_{0,0}, …, x_{0,G−1}], …, [x_{K−1,0}, …]]   ([knot][group])
//! weight                    {"W0": [[row 0], [row 1], …], "W1": …}     (W_l, rows × cols)
//! row                       [c_0, …, c_{n−1}]                          (one per training row)
//! row, D features (input)   [[x_00, …, x_0,D−1], …]                    ([row][feature])
//! ```
//!
//! A report nests a schedulable kind's values by knot even with K = 1, and with K = 1 a
//! config's `values` may be flat or nested by knot. Reading checks the shape against the
//! layout and every number against the kind's range; an error names the offending dotted
//! field (`inner.gamma.values[1][1]`). [`Block::to_spec`] writes the config entry `--best`
//! prints (a plain number for one value), [`Block::from_spec`] reads one back, and
//! [`Block::report`] gives the JSON report's entry (SPEC §4.3).

use serde_json::{Map, Value};

use super::spec::{Spec, kind_of};
use super::{Block, Kind, Per};
use crate::model::Layout;

impl Block {
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
        b.read_values(spec, layout, field)?;
        Ok(b)
    }

    /// Replaces the entries with the spec's `values`, if it has them, checked against the
    /// block's shape, the kind's range and, for the input block, each feature's box.
    pub fn read_values(
        &mut self,
        spec: &Spec,
        layout: &Layout,
        field: &str,
    ) -> Result<(), (String, String)> {
        let Some(v) = &spec.values else {
            return Ok(());
        };
        let field = format!("{field}.values");
        let values = self.parse_values(v, &field, layout)?;
        if let Some(b) = self.feature_box() {
            for (e, &x) in values.iter().enumerate() {
                let (r, f) = (e / self.width, e % self.width);
                if !(b.lo[f]..=b.hi[f]).contains(&x) {
                    return Err((
                        format!("{field}[{r}][{f}]"),
                        format!(
                            "must be in the box [{}, {}] of feature {f} (its range over the real \
                             training rows), got {}",
                            b.lo[f],
                            b.hi[f],
                            crate::error::show(x)
                        ),
                    ));
                }
            }
        }
        self.values = values;
        Ok(())
    }

    /// `values` nested as SPEC §2.3 says: `[knot][group]` for schedules (and for every
    /// schedulable block when `nest_knots`), `[group]` otherwise, `{"W0": [[…]], …}` per
    /// weight.
    pub fn nest(&self, values: &[f64], layout: &Layout, nest_knots: bool) -> Value {
        let ng = self.groups.len();
        if self.per == Per::Row && self.feature_box.is_some() {
            let rows = values.chunks(self.width).map(|r| Value::from(r.to_vec()));
            return Value::Array(rows.collect());
        }
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
        if self.per == Per::Row && self.feature_box.is_some() {
            let rows = self.values.len() / self.width;
            match v.as_array() {
                Some(a) if a.len() == rows => {
                    let mut out = Vec::with_capacity(self.values.len());
                    for (r, row) in a.iter().enumerate() {
                        out.extend(list(row, self.width, &format!("{field}[{r}]"))?);
                    }
                    return Ok(out);
                }
                Some(a) => return wrong(field, format!("a list of {}", a.len())),
                None => return wrong(field, kind_of(v).to_owned()),
            }
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
        if self.per == Per::Row && self.feature_box.is_some() {
            format!(
                "[rows][features]: a list of {} rows, each a list of {} features",
                self.values.len() / self.width,
                self.width
            )
        } else if self.per == Per::Row {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layout() -> Layout {
        Layout::new(&[3, 4, 2])
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
        assert_eq!(e.1, "must be in [0, 0.9999], got 1.2");
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
