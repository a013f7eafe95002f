//! Hostile input for the three readers (issue 12): the config parser, the CSV reader and the
//! IDX reader get arbitrary and mutated input for a bounded number of cases each. Errors are
//! fine; a panic fails the test (proptest reports the smallest input that panics).

use std::path::Path;

use proptest::prelude::*;
use revgrad::config::Config;
use revgrad::data::{csv, idx};

/// A valid config to mutate; its data path is relative to the config file's folder.
const VALID: &str = r#"{
  "seed": 0,
  "data": { "train": "t.csv", "validation": null, "validation_fraction": 0.2,
            "label_column": "label", "standardize": true },
  "model": { "hidden": [4], "activation": "tanh", "init_scale": 1.0, "init_file": null },
  "inner": { "optimizer": "momentum", "steps": 3, "batch_size": 2, "shuffle": true,
             "alpha": 0.1, "gamma": 0.9, "l2": 0.0 },
  "outer": { "steps": 2, "optimizer": "adam", "learning_rate": 0.1, "tune": ["alpha", "gamma"] }
}"#;

const FIELDS: [&str; 20] = [
    "seed",
    "data.train",
    "data.validation",
    "data.validation_fraction",
    "data.label_column",
    "data.standardize",
    "model.hidden",
    "model.activation",
    "model.init_scale",
    "model.init_file",
    "inner.optimizer",
    "inner.steps",
    "inner.batch_size",
    "inner.shuffle",
    "inner.alpha",
    "inner.gamma",
    "inner.l2",
    "outer.steps",
    "outer.learning_rate",
    "outer.tune",
];

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// JSON values a hostile config might hold: extreme numbers, odd strings, nesting.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("-0".to_owned()),
        Just("1e308".to_owned()),
        Just("1e309".to_owned()),
        Just("-1e-320".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("0.99999999".to_owned()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("\"../../../../dev/zero\"".to_owned()),
        Just("\"t.csv\"".to_owned()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|v| format!("[{}]", v.join(",")))
    })
}

/// Writes a small valid CSV next to the config, so mutations can reach the data stage.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("t.csv"),
        "a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
    )
    .expect("write");
    dir
}

fn parse_and_load(text: &str, dir: &Path) {
    // Up to the data and the size checks (building the network could allocate gigabytes).
    if let Ok(config) = Config::from_json_str(text, &dir.join("c.json")) {
        let _ = revgrad::problem::Experiment::from_config(config);
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn config_parser_survives_arbitrary_text(text in "\\PC{0,200}") {
        let dir = scratch();
        parse_and_load(&text, dir.path());
    }

    #[test]
    fn config_parser_survives_mutated_json(
        at in 0usize..VALID.len(),
        cut in 0usize..20,
        insert in "[{}\\[\\]\",:0-9a-z.eE+\\- \u{feff}\u{0}]{0,8}",
    ) {
        let dir = scratch();
        let bytes = VALID.as_bytes();
        let end = (at + cut).min(bytes.len());
        let mut mutated = bytes[..at].to_vec();
        mutated.extend(insert.as_bytes());
        mutated.extend(&bytes[end..]);
        parse_and_load(&String::from_utf8_lossy(&mutated), dir.path());
    }

    #[test]
    fn config_parser_survives_hostile_field_values(
        field in 0usize..FIELDS.len(),
        value in json_value(),
    ) {
        let dir = scratch();
        let mut config: serde_json::Value = serde_json::from_str(VALID).expect("valid");
        let (section, key) = FIELDS[field].split_once('.').unwrap_or(("", FIELDS[field]));
        let parsed: serde_json::Value =
            serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
        if section.is_empty() {
            config[key] = parsed;
        } else {
            config[section][key] = parsed;
        }
        parse_and_load(&config.to_string(), dir.path());
        // The raw text too (serde_json::Value cannot hold 1e309).
        let raw = VALID.replacen("\"seed\": 0", &format!("\"seed\": {value}"), 1);
        parse_and_load(&raw, dir.path());
    }

    #[test]
    fn csv_reader_survives_arbitrary_bytes(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"0123456789,,,.-e\n\n\r\"ab \tinfNa".to_vec()),
                1 => any::<u8>(),
            ],
            0..300,
        ),
        label in prop::option::of(prop_oneof![Just("label".to_owned()), "[a-c]{0,2}"]),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.csv");
        std::fs::write(&path, &bytes).expect("write");
        let _ = csv::read(&path, label.as_deref());
    }

    #[test]
    fn idx_reader_survives_arbitrary_files(
        dims in prop::collection::vec(
            prop_oneof![0u32..4, Just(u32::MAX), Just(1 << 31), any::<u32>()],
            3,
        ),
        n_labels in prop_oneof![0u32..4, any::<u32>()],
        images_magic in prop_oneof![Just(0x0803u32), any::<u32>()],
        labels_magic in prop_oneof![Just(0x0801u32), any::<u32>()],
        body in prop::collection::vec(any::<u8>(), 0..64),
        label_body in prop::collection::vec(any::<u8>(), 0..8),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let images = dir.path().join("f-images-idx3-ubyte");
        let labels = dir.path().join("f-labels-idx1-ubyte");
        let bytes = raw.unwrap_or_else(|| {
            let mut b = images_magic.to_be_bytes().to_vec();
            for d in &dims {
                b.extend(d.to_be_bytes());
            }
            b.extend(&body);
            b
        });
        std::fs::write(&images, bytes).expect("write");
        let mut l = labels_magic.to_be_bytes().to_vec();
        l.extend(n_labels.to_be_bytes());
        l.extend(&label_body);
        std::fs::write(&labels, l).expect("write");
        let _ = idx::read(&images);
    }

    #[test]
    fn idx_reader_survives_consistent_headers(
        n in 0u32..5,
        rows in 0u32..4,
        cols in 0u32..4,
        extra in -2i32..3,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let images = dir.path().join("g-idx3-ubyte");
        let mut b = 0x0803u32.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            b.extend(d.to_be_bytes());
        }
        let len = (n * rows * cols) as i32 + extra;
        b.extend(std::iter::repeat_n(7u8, len.max(0) as usize));
        std::fs::write(&images, b).expect("write");
        let mut l = 0x0801u32.to_be_bytes().to_vec();
        l.extend(n.to_be_bytes());
        l.extend((0..n).map(|i| i as u8));
        std::fs::write(dir.path().join("g-idx1-ubyte"), l).expect("write");
        if let Ok(d) = idx::read(&images) {
            prop_assert!(d.x.ncols() > 0 && d.x.nrows() > 0);
        }
    }
}
