//! `revgrad train`: accuracy on digits, `--save` / `init_file` round trip, exact vs float.

use serde_json::{Value, json};

use crate::common::{Scratch, json_of, p, repo, set, small_config, stdout_of};

fn number(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// `configs/digits.json` with its data path made absolute, so it can live in a temp dir.
fn shipped_digits_config() -> Value {
    let text = std::fs::read_to_string(repo("configs/digits.json")).expect("configs/digits.json");
    let mut config: Value = serde_json::from_str(&text).expect("configs/digits.json is JSON");
    let train = config["data"]["train"]
        .as_str()
        .expect("data.train is a string")
        .to_string();
    let abs = repo("configs").join(train);
    set(&mut config, "data.train", json!(abs.display().to_string()));
    config
}

#[test]
fn train_shipped_digits_config_runs_with_json_report() {
    let report = json_of(["train", p(&repo("configs/digits.json")), "--json"]);
    assert_eq!(report["arithmetic"], "float");
    for key in [
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
    ] {
        assert!(number(&report, key).is_finite(), "{key}: {report}");
    }
    for key in ["train_accuracy", "val_accuracy"] {
        assert!((0.0..=1.0).contains(&number(&report, key)), "{key}");
    }
    assert!(report["steps"].is_u64());
}

/// Acceptance: a plain training run on digits reaches > 90 % validation accuracy.
///
/// `configs/digits.json` starts from deliberately poor α/γ (it is the tuner's starting
/// point: ~0.88 accuracy), so this uses the same config with α 0.5, γ 0.9, 300 steps.
#[test]
fn train_digits_reaches_90_percent_validation_accuracy() {
    let dir = Scratch::new();
    let mut config = shipped_digits_config();
    set(&mut config, "inner.alpha", json!(0.5));
    set(&mut config, "inner.gamma", json!(0.9));
    set(&mut config, "inner.steps", json!(300));
    let cfg = dir.config("digits_good.json", &config);
    let report = json_of(["train", p(&cfg), "--json"]);
    let acc = number(&report, "val_accuracy");
    assert!(acc > 0.9, "val_accuracy {acc} (report {report})");
}

#[test]
fn train_table_has_train_and_validation_rows() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = String::from_utf8(stdout_of(["train", p(&cfg)])).expect("UTF-8");
    assert!(out.contains("validation"), "{out}");
    assert!(out.contains("train"), "{out}");
    assert!(out.contains("loss") && out.contains("accuracy"), "{out}");
    assert!(
        serde_json::from_str::<Value>(&out).is_err(),
        "table, not JSON"
    );
}

#[test]
fn train_exact_and_float_give_close_validation_losses() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let float = json_of(["train", p(&cfg), "--json"]);
    let exact = json_of(["train", p(&cfg), "--exact", "--json"]);
    assert_eq!(float["arithmetic"], "float");
    assert_eq!(exact["arithmetic"], "exact");
    let (f, e) = (number(&float, "val_loss"), number(&exact, "val_loss"));
    // Fixed point with 2^-32-ish quanta and γ rounded to n/2^16 over 50 steps: the two
    // trajectories differ by ~1e-5 relative; 1e-3 leaves room without hiding a real bug
    // (a wrong γ or a dropped term moves the loss by far more).
    assert!(
        (f - e).abs() < 1e-3 * f.abs().max(1.0),
        "float {f} vs exact {e}"
    );
}

#[test]
fn train_save_writes_npz_with_one_key_per_array() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let npz = dir.path("theta.npz");
    stdout_of(["train", p(&cfg), "--save", p(&npz)]);
    let bytes = std::fs::read(&npz).expect("--save wrote the file");
    // An npz is a zip of `<key>.npy` members; the names are stored in clear.
    let has = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
    for key in ["W0.npy", "b0.npy", "W1.npy", "b1.npy"] {
        assert!(has(key), "{key} missing from the npz");
    }
    assert!(!has("W2.npy"), "one hidden layer has two weight matrices");
}

/// `--save` then `model.init_file` with `init_scale: 1` starts exactly from the saved θ:
/// one more step lands near the saved model's validation loss, far from a fresh start's.
#[test]
fn train_save_then_init_file_starts_from_the_saved_parameters() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let npz = dir.path("trained.npz");
    let trained = json_of(["train", p(&cfg), "--save", p(&npz), "--json"]);

    let mut one_step = small_config();
    set(&mut one_step, "inner.steps", json!(1));
    let fresh_cfg = dir.config("fresh.json", &one_step);
    // Relative path: resolved against the config's folder (SPEC §2).
    set(&mut one_step, "model.init_file", json!("trained.npz"));
    set(&mut one_step, "model.init_scale", json!(1));
    let loaded_cfg = dir.config("loaded.json", &one_step);

    let loaded = json_of(["train", p(&loaded_cfg), "--json"]);
    let fresh = json_of(["train", p(&fresh_cfg), "--json"]);
    let (t, l, f) = (
        number(&trained, "val_loss"),
        number(&loaded, "val_loss"),
        number(&fresh, "val_loss"),
    );
    assert!(
        (l - t).abs() < 0.05,
        "one step from the saved θ ({l}) should stay near its loss ({t})"
    );
    assert!(
        l < f - 0.5,
        "one step from the saved θ ({l}) should beat one step from random init ({f})"
    );

    // The exact path and the tuner's hypergradient load it too.
    stdout_of(["train", p(&loaded_cfg), "--exact"]);
    stdout_of(["hypergrad", p(&loaded_cfg), "--json"]);
}
