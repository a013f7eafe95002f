//! Example weights end to end (SPEC §2.3 `example_weight`): hyper-cleaning a noisy training
//! set, the detection summary, `--hypers-out` rows and bad input.

use serde_json::json;

use crate::common::{Scratch, assert_user_error_text, p, revgrad, set, small_config};

/// Digits with 40% of the training labels flipped, a linear model, and one weight per
/// training row tuned from 0.9.
fn noisy_config() -> serde_json::Value {
    let mut c = small_config();
    set(&mut c, "data.validation_fraction", json!(0.3));
    set(&mut c, "data.label_noise", json!(0.4));
    set(&mut c, "model.hidden", json!([]));
    set(&mut c, "inner.steps", json!(200));
    set(&mut c, "inner.batch_size", json!(100));
    set(&mut c, "inner.alpha", json!(0.3));
    set(&mut c, "inner.example_weight", json!({"init": 0.9}));
    set(&mut c, "outer.steps", json!(15));
    set(&mut c, "outer.learning_rate", json!(0.3));
    set(&mut c, "outer.tune", json!(["example_weight"]));
    c
}

#[test]
fn tuning_example_weights_flags_the_flipped_rows() {
    let dir = Scratch::new();
    let cfg = dir.config("noisy.json", &noisy_config());
    let out = dir.path("weights.csv");
    let assert = revgrad()
        .args(["tune", p(&cfg), "--quiet", "--hypers-out", p(&out)])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr);
    // "… at the best row: precision P, recall R, F1 F"
    let f1: f64 = stderr
        .rsplit("F1 ")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no F1 in the summary: {stderr}"));
    // Flagging rows at random gives F1 ≈ 0.4 at best here (40% flipped); demand far more.
    assert!(f1 > 0.6, "F1 {f1}: {stderr}");
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let header = stdout.lines().next().unwrap();
    assert!(
        header.contains(",init_scale,example_weight,train_loss,"),
        "{header}"
    );
    assert!(
        header.contains(",d_init_scale,d_example_weight,seconds,"),
        "{header}"
    );
    // --hypers-out: one row per training row per iteration, group "all", index = row.
    let rows = stdout.lines().count() - 1;
    let mut r = csv::Reader::from_path(&out).unwrap();
    let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let n_train = recs.iter().filter(|r| &r[0] == "0").count();
    assert_eq!(
        n_train,
        1797 - 540,
        "training rows after a 30% validation split"
    );
    assert_eq!(recs.len(), n_train * rows);
    assert!(
        recs.iter()
            .all(|r| &r[1] == "example_weight" && &r[2] == "all")
    );
    assert_eq!(&recs[5][4], "5");
}

#[test]
fn example_weight_bad_input_names_the_field() {
    let dir = Scratch::new();
    let cases = [
        (json!({"init": 1.0}), "inner.example_weight.init", "(0, 1)"),
        (
            json!({"values": [0.5, 0.5]}),
            "inner.example_weight.values",
            "1437 values, one per training row",
        ),
        (
            json!({"per": "layer", "init": 0.5}),
            "inner.example_weight.per",
            "\"row\"",
        ),
    ];
    for (i, (block, field, needle)) in cases.into_iter().enumerate() {
        let mut c = small_config();
        set(&mut c, "inner.example_weight", block);
        let cfg = dir.config(&format!("bad{i}.json"), &c);
        let a = revgrad()
            .args(["hypergrad", p(&cfg)])
            .assert()
            .failure()
            .code(2);
        let stderr = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert_user_error_text(stderr.as_bytes());
        assert!(
            stderr.contains(field) && stderr.contains(needle),
            "{stderr}"
        );
    }
    // Tuning example_weight without the block, and searching it, are errors too.
    let mut c = small_config();
    set(&mut c, "outer.tune", json!(["example_weight"]));
    let cfg = dir.config("untuned.json", &c);
    revgrad().args(["tune", p(&cfg)]).assert().failure().code(2);
    let cfg = dir.config("search.json", &noisy_config());
    let a = revgrad()
        .args(["search", p(&cfg)])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr);
    assert!(
        stderr.contains("outer.tune") && stderr.contains("example_weight"),
        "{stderr}"
    );
}
