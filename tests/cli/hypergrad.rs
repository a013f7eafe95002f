//! `revgrad hypergrad`: the SPEC §4 JSON schema and the readable table.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{Scratch, json_of, p, same_f64, set, small_config, stdout_of};

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("{v} is not an object"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set_of<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn float(v: &Value, path: &str) -> f64 {
    let mut node = v;
    for k in path.split('.') {
        node = &node[k];
    }
    node.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {node}"))
}

#[test]
fn hypergrad_json_has_every_spec_field_with_its_type() {
    let dir = Scratch::new();
    let mut config = small_config();
    set(&mut config, "inner.l2", json!(0.001));
    set(&mut config, "model.init_scale", json!(0.8));
    let cfg = dir.config("c.json", &config);
    let j = json_of(["hypergrad", p(&cfg), "--json"]);

    assert_eq!(
        keys(&j),
        set_of(&[
            "train_loss",
            "val_loss",
            "val_accuracy",
            "hyperparameters",
            "test_loss",
            "effective",
            "hypergradients",
            "reversal",
            "seconds"
        ])
    );
    let four = set_of(&["alpha", "gamma", "l2", "init_scale"]);
    assert_eq!(keys(&j["hyperparameters"]), four);
    assert_eq!(keys(&j["hypergradients"]), four);
    assert_eq!(keys(&j["effective"]), set_of(&["gamma"]));
    assert_eq!(
        keys(&j["reversal"]),
        set_of(&[
            "exact",
            "theta0_error",
            "info_bits_per_param_step",
            "info_buffer_bytes",
            "store_all_bytes"
        ])
    );
    assert_eq!(keys(&j["seconds"]), set_of(&["forward", "reverse"]));

    for path in ["train_loss", "val_loss"] {
        let v = float(&j, path);
        assert!(v.is_finite() && v > 0.0, "{path} = {v}");
    }
    let acc = float(&j, "val_accuracy");
    assert!((0.0..=1.0).contains(&acc), "val_accuracy {acc}");
    for name in &four {
        let g = float(&j, &format!("hypergradients.{name}"));
        assert!(g.is_finite(), "hypergradients.{name} = {g}");
    }
    // The hyperparameters echo the config.
    assert!(same_f64(float(&j, "hyperparameters.alpha"), 0.5));
    assert!(same_f64(float(&j, "hyperparameters.gamma"), 0.9));
    assert!(same_f64(float(&j, "hyperparameters.l2"), 0.001));
    assert!(same_f64(float(&j, "hyperparameters.init_scale"), 0.8));
    // γ = 0.9 runs as ⌈0.9·2^16⌉/2^16 = 58983/65536.
    let eff = float(&j, "effective.gamma");
    assert!(
        same_f64(eff, 58983.0 / 65536.0),
        "effective.gamma {eff} != 58983/65536"
    );

    let r = &j["reversal"];
    assert_eq!(r["exact"], Value::Bool(true));
    assert!(same_f64(float(r, "theta0_error"), 0.0), "theta0_error {r}");
    let bits = float(r, "info_bits_per_param_step");
    assert!(
        bits.is_finite() && bits >= 0.0,
        "info_bits_per_param_step {bits}"
    );
    let buffer = r["info_buffer_bytes"]
        .as_u64()
        .expect("info_buffer_bytes is an integer");
    let store = r["store_all_bytes"]
        .as_u64()
        .expect("store_all_bytes is an integer");
    assert!(
        buffer < store,
        "the information buffer ({buffer} B) is smaller than a stored trajectory ({store} B)"
    );
    for path in ["seconds.forward", "seconds.reverse"] {
        let s = float(&j, path);
        assert!(s.is_finite() && s >= 0.0, "{path} = {s}");
    }
}

#[test]
fn hypergrad_default_output_is_a_table() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = String::from_utf8(stdout_of(["hypergrad", p(&cfg)])).expect("UTF-8");
    assert!(
        serde_json::from_str::<Value>(&out).is_err(),
        "table, not JSON"
    );
    for word in ["alpha", "gamma", "l2", "init_scale", "val_loss"] {
        assert!(out.contains(word), "{word} missing from:\n{out}");
    }
}
