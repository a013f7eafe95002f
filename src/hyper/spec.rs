//! # A block as written in a config (SPEC §2.3)
//!
//! `"alpha": 0.1` or `"alpha": {"per": "array", "knots": 10, "init": 0.02}` or
//! `{"per": "layer", "values": [0.9, 0.5]}`. [`Spec::parse`] checks what can be checked
//! without the network's shape (the shape, the knots, `init`'s range, `init` and `values`
//! not both given); [`super::Block::from_spec`] checks `values` against the layout.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Kind, Per};

/// A block's config entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Which parameters share an entry.
    pub per: Per,
    /// Knots of a schedule over the steps (1 = constant).
    pub knots: usize,
    /// Starting value of every entry (`None` when `values` gives them).
    pub init: Option<f64>,
    /// Every entry, nested as SPEC §2.3 says; checked against the layout later.
    pub values: Option<Value>,
}

impl Spec {
    /// True if any entry is 0 (`init`, or a number anywhere in `values`).
    pub fn has_zero(&self) -> bool {
        fn any_zero(v: &Value) -> bool {
            match v {
                Value::Number(n) => n.as_f64() == Some(0.0),
                Value::Array(a) => a.iter().any(any_zero),
                Value::Object(o) => o.values().any(any_zero),
                _ => false,
            }
        }
        self.init == Some(0.0) || self.values.as_ref().is_some_and(any_zero)
    }

    /// One value for everything.
    pub fn scalar(v: f64) -> Self {
        Spec {
            per: Per::All,
            knots: 1,
            init: Some(v),
            values: None,
        }
    }

    /// True for a plain number (`per: all`, one knot, no `values`).
    pub fn is_scalar(&self) -> bool {
        self.per == Per::All && self.knots == 1 && self.values.is_none()
    }

    /// Parses the JSON at `field` (e.g. `inner.gamma`) for `kind`, with `steps` inner steps.
    /// `Err((field, message))` names the offending dotted field.
    pub fn parse(
        kind: Kind,
        v: &Value,
        field: &str,
        steps: usize,
    ) -> Result<Spec, (String, String)> {
        let info = kind.info();
        let err = |f: &str, m: String| Err((f.to_owned(), m));
        // example_weight has one shape only, one entry per training row.
        let default_per = info.shapes[0];
        if let Some(x) = v.as_f64() {
            kind.check(x).map_err(|m| (field.to_owned(), m))?;
            return Ok(Spec {
                per: default_per,
                ..Spec::scalar(x)
            });
        }
        let Some(obj) = v.as_object() else {
            return err(
                field,
                format!(
                    "must be a number or an object {{\"per\": …, \"init\": …}}, got {}",
                    kind_of(v)
                ),
            );
        };
        for key in obj.keys() {
            if !["per", "knots", "init", "values"].contains(&key.as_str()) {
                return err(
                    &format!("{field}.{key}"),
                    "is not a known field, expected one of `per`, `knots`, `init`, `values`"
                        .to_owned(),
                );
            }
        }
        let per = match obj.get("per") {
            None => default_per,
            Some(Value::String(s)) => match s.as_str() {
                "all" => Per::All,
                "layer" => Per::Layer,
                "array" => Per::Array,
                "weight" => Per::Weight,
                "row" => Per::Row,
                _ => {
                    return err(
                        &format!("{field}.per"),
                        format!(
                            "must be one of {}, got \"{}\"",
                            allowed(info.shapes),
                            crate::error::shorten(s)
                        ),
                    );
                }
            },
            Some(other) => {
                return err(
                    &format!("{field}.per"),
                    format!("must be a string, got {}", kind_of(other)),
                );
            }
        };
        if !info.shapes.contains(&per) {
            return err(
                &format!("{field}.per"),
                format!(
                    "must be one of {} for {}, got \"{}\"",
                    allowed(info.shapes),
                    info.name,
                    per.name()
                ),
            );
        }
        let knots = match obj.get("knots") {
            None => 1,
            Some(k) => {
                if !info.schedulable {
                    return err(
                        &format!("{field}.knots"),
                        format!(
                            "is not allowed: {} has no schedule (only alpha, gamma, beta1 and beta2 do)",
                            info.name
                        ),
                    );
                }
                match k.as_u64() {
                    Some(k) if k >= 1 && k as usize <= steps => k as usize,
                    _ => {
                        return err(
                            &format!("{field}.knots"),
                            format!("must be an integer in [1, inner.steps = {steps}], got {k}"),
                        );
                    }
                }
            }
        };
        let init = match obj.get("init") {
            None => None,
            Some(x) => match x.as_f64() {
                Some(x) => {
                    kind.check(x).map_err(|m| (format!("{field}.init"), m))?;
                    Some(x)
                }
                None => {
                    return err(
                        &format!("{field}.init"),
                        format!("must be a number, got {}", kind_of(x)),
                    );
                }
            },
        };
        let values = obj.get("values").cloned();
        match (init, values) {
            (Some(_), Some(_)) => err(
                field,
                "gives both `init` and `values`; give one of them".to_owned(),
            ),
            (None, None) => err(
                field,
                "needs `init` (the starting value of every entry) or `values` (every entry)"
                    .to_owned(),
            ),
            (init, values) => Ok(Spec {
                per,
                knots,
                init,
                values,
            }),
        }
    }
}

impl Serialize for Spec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_scalar() {
            return s.serialize_f64(self.init.unwrap_or(f64::NAN));
        }
        let mut m = Map::new();
        m.insert("per".into(), Value::from(self.per.name()));
        if self.knots > 1 {
            m.insert("knots".into(), Value::from(self.knots));
        }
        match &self.values {
            Some(v) => m.insert("values".into(), v.clone()),
            None => m.insert("init".into(), Value::from(self.init)),
        };
        Value::Object(m).serialize(s)
    }
}

fn allowed(shapes: &[Per]) -> String {
    shapes
        .iter()
        .map(|p| format!("\"{}\"", p.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON type of `v`, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(kind: Kind, v: Value) -> Result<Spec, (String, String)> {
        Spec::parse(kind, &v, &kind.field(), 100)
    }

    #[test]
    fn numbers_and_objects() {
        assert_eq!(parse(Kind::Alpha, json!(0.1)).unwrap(), Spec::scalar(0.1));
        let s = parse(
            Kind::Alpha,
            json!({"per": "array", "knots": 10, "init": 0.02}),
        )
        .unwrap();
        assert_eq!((s.per, s.knots, s.init), (Per::Array, 10, Some(0.02)));
        let s = parse(Kind::L2, json!({"per": "weight", "init": 1e-4})).unwrap();
        assert_eq!(s.per, Per::Weight);
    }

    #[test]
    fn example_weights_are_per_row() {
        let s = parse(Kind::ExampleWeight, json!(0.9)).unwrap();
        assert_eq!((s.per, s.init), (Per::Row, Some(0.9)));
        let s = parse(Kind::ExampleWeight, json!({"init": 0.5})).unwrap();
        assert_eq!(s.per, Per::Row);
        assert!(parse(Kind::ExampleWeight, json!({"per": "layer", "init": 0.5})).is_err());
        assert_eq!(
            parse(Kind::ExampleWeight, json!(1.0)).unwrap_err().1,
            "must be in (0, 1), got 1"
        );
    }

    #[test]
    fn bad_specs_name_their_field() {
        let e = |k, v| parse(k, v).unwrap_err();
        assert_eq!(
            e(Kind::Gamma, json!({"per": "row", "init": 0.5})).0,
            "inner.gamma.per"
        );
        assert!(
            e(Kind::Gamma, json!({"per": "weight", "init": 0.5}))
                .1
                .contains("\"all\"")
        );
        assert_eq!(
            e(Kind::L2, json!({"knots": 3, "init": 0.1})).0,
            "inner.l2.knots"
        );
        assert_eq!(
            e(Kind::Alpha, json!({"knots": 0, "init": 0.1})).0,
            "inner.alpha.knots"
        );
        assert_eq!(
            e(Kind::Alpha, json!({"knots": 101, "init": 0.1})).0,
            "inner.alpha.knots"
        );
        assert!(
            e(Kind::Alpha, json!({"init": 0.1, "values": [0.1]}))
                .1
                .contains("both")
        );
        assert_eq!(e(Kind::Gamma, json!({"init": 1.2})).0, "inner.gamma.init");
        assert_eq!(
            e(Kind::Gamma, json!({"init": 0.5, "x": 1})).0,
            "inner.gamma.x"
        );
        assert!(e(Kind::Gamma, json!("0.5")).1.contains("a string"));
    }

    #[test]
    fn serialises_back() {
        let s = parse(
            Kind::Alpha,
            json!({"per": "array", "knots": 10, "init": 0.02}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"per": "array", "knots": 10, "init": 0.02})
        );
        assert_eq!(serde_json::to_value(Spec::scalar(0.5)).unwrap(), json!(0.5));
    }
}
