//! User errors (SPEC §5): exit 2, a message naming the file and the field or line, no panic.

use serde_json::{Value, json};

use crate::common::{
    COMMANDS, Scratch, assert_user_error_text, p, repo, revgrad, set, small_config,
};

/// Runs `revgrad ARGS`, expects exit 2 and every `needle` in stderr; returns stderr.
pub(crate) fn expect_exit_2(args: &[&str], needles: &[&str]) -> String {
    let assert = revgrad().args(args).assert().failure().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert_user_error_text(stderr.as_bytes());
    for n in needles {
        assert!(stderr.contains(n), "{n:?} missing from stderr: {stderr}");
    }
    stderr
}

fn fixture_config(name: &str) -> String {
    repo("tests/fixtures/configs")
        .join(name)
        .display()
        .to_string()
}

fn fixture(name: &str) -> String {
    repo("tests/fixtures").join(name).display().to_string()
}

/// A tiny config on `tests/fixtures/<csv>` (batch 2, 3 steps).
fn csv_config(csv: &str) -> Value {
    json!({
        "data": { "train": fixture(csv) },
        "model": { "hidden": [4] },
        "inner": { "steps": 3, "batch_size": 2 }
    })
}

#[test]
fn unknown_config_field_is_named() {
    expect_exit_2(
        &["train", &fixture_config("unknown_field.json")],
        &["unknown_field.json", "inner.momentum"],
    );
}

#[test]
fn gamma_out_of_range_names_field_value_and_range() {
    expect_exit_2(
        &["train", &fixture_config("bad_gamma.json")],
        &["bad_gamma.json", "inner.gamma", "1.2", "[0, 0.9999]"],
    );
}

#[test]
fn every_command_exits_2_on_a_bad_config() {
    let cfg = fixture_config("bad_gamma.json");
    for cmd in COMMANDS {
        expect_exit_2(&[cmd, &cfg], &["inner.gamma"]);
    }
}

#[test]
fn unknown_activation_lists_the_allowed_ones() {
    expect_exit_2(
        &["train", &fixture_config("bad_activation.json")],
        &["model.activation", "sigmoid", "tanh", "relu", "softplus"],
    );
}

#[test]
fn missing_data_file_names_field_and_file() {
    expect_exit_2(
        &["train", &fixture_config("missing_train.json")],
        &["data.train", "does_not_exist.csv"],
    );
}

#[test]
fn ragged_csv_names_file_and_line() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &csv_config("ragged.csv"));
    expect_exit_2(
        &["train", p(&cfg)],
        &["ragged.csv:5", "expected 5 columns, found 4"],
    );
}

#[test]
fn non_integer_label_names_file_and_line() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &csv_config("bad_label.csv"));
    expect_exit_2(&["train", p(&cfg)], &["bad_label.csv:4", "label", "3.5"]);
}

#[test]
fn batch_larger_than_training_rows_is_named() {
    let dir = Scratch::new();
    let mut c = csv_config("tiny.csv");
    set(&mut c, "inner.batch_size", json!(50));
    let cfg = dir.config("c.json", &c);
    expect_exit_2(&["train", p(&cfg)], &["inner.batch_size", "50"]);
}

#[test]
fn bad_alphas_list_is_a_usage_error() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    expect_exit_2(
        &["verify-reversal", p(&cfg), "--alphas=-1"],
        &["--alphas", "-1"],
    );
    // Not a number at all: clap's own usage error, also exit 2.
    let assert = revgrad()
        .args(["verify-reversal", p(&cfg), "--alphas", "0.1,abc"])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr);
    assert!(
        stderr.contains("--alphas") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn nonexistent_config_path_is_named() {
    let dir = Scratch::new();
    let missing = dir.path("nope.json");
    expect_exit_2(&["train", p(&missing)], &["nope.json"]);
}

#[test]
fn config_that_is_not_json_is_an_error_not_a_panic() {
    let dir = Scratch::new();
    let cfg = dir.path("broken.json");
    std::fs::write(&cfg, "{ \"seed\": 0, ").expect("write");
    expect_exit_2(&["train", p(&cfg)], &["broken.json"]);
}

#[test]
fn init_file_with_wrong_shapes_names_the_key() {
    let dir = Scratch::new();
    // Parameters of a [9]-hidden model ...
    let mut nine = small_config();
    set(&mut nine, "model.hidden", json!([9]));
    set(&mut nine, "inner.steps", json!(1));
    let nine_cfg = dir.config("nine.json", &nine);
    let npz = dir.path("nine.npz");
    revgrad()
        .args(["train", p(&nine_cfg), "--save", p(&npz)])
        .assert()
        .success();
    // ... loaded into a [8]-hidden model: W0 is (64, 9), not (64, 8).
    let mut eight = small_config();
    set(&mut eight, "model.init_file", json!("nine.npz"));
    let eight_cfg = dir.config("eight.json", &eight);
    expect_exit_2(&["train", p(&eight_cfg)], &["nine.npz", "W0", "(64, 8)"]);
    // ... and into a deeper model: a key is missing.
    let mut deep = eight.clone();
    set(&mut deep, "model.hidden", json!([9, 4]));
    let deep_cfg = dir.config("deep.json", &deep);
    expect_exit_2(&["hypergrad", p(&deep_cfg)], &["nine.npz", "W2"]);
}

#[test]
fn init_file_that_is_not_an_npz_is_an_error_not_a_panic() {
    let dir = Scratch::new();
    std::fs::write(dir.path("junk.npz"), b"not a zip file").expect("write");
    let mut c = small_config();
    set(&mut c, "model.init_file", json!("junk.npz"));
    let cfg = dir.config("c.json", &c);
    expect_exit_2(&["train", p(&cfg)], &["junk.npz"]);
}

#[test]
fn non_finite_feature_names_file_line_and_column() {
    let dir = Scratch::new();
    let tiny = std::fs::read_to_string(fixture("tiny.csv")).expect("tiny.csv");
    let mut lines: Vec<String> = tiny.lines().map(str::to_string).collect();
    let rest = lines[3].split_once(',').expect("a comma").1.to_string();
    lines[3] = format!("nan,{rest}");
    std::fs::write(dir.path("nan.csv"), lines.join("\n") + "\n").expect("write");
    let mut c = csv_config("tiny.csv");
    set(&mut c, "data.train", json!(p(&dir.path("nan.csv"))));
    let cfg = dir.config("c.json", &c);
    expect_exit_2(&["train", p(&cfg)], &["nan.csv:4", "x0"]);
}

#[test]
fn validation_file_with_other_columns_names_both_files() {
    let dir = Scratch::new();
    let tiny = std::fs::read_to_string(fixture("tiny.csv")).expect("tiny.csv");
    let narrow: String = tiny
        .lines()
        .map(|l| l.split_once(',').expect("a comma").1.to_string() + "\n")
        .collect();
    std::fs::write(dir.path("narrow.csv"), narrow).expect("write");
    let mut c = csv_config("tiny.csv");
    set(&mut c, "data.validation", json!("narrow.csv"));
    let cfg = dir.config("c.json", &c);
    expect_exit_2(&["train", p(&cfg)], &["narrow.csv", "tiny.csv"]);
}

/// SPEC §5: a diverging inner run exits 1 with the step number and a hint, in float
/// (`train`: NaN loss) and in exact arithmetic (`hypergrad`: fixed-point overflow).
#[test]
fn diverging_inner_run_exits_1_with_step_and_hint() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "model.activation", json!("relu"));
    set(&mut c, "inner.alpha", json!(100000.0));
    let cfg = dir.config("c.json", &c);
    for cmd in ["train", "hypergrad"] {
        let assert = revgrad().args([cmd, p(&cfg)]).assert().failure().code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert_user_error_text(stderr.as_bytes());
        assert!(
            stderr.contains("step") && stderr.contains("inner.alpha"),
            "{cmd}: {stderr}"
        );
    }
}

/// The exact reversal behind `hypergrad`, `tune` and `check-grad` is SGD *with momentum*;
/// on a plain-SGD config they silently run momentum instead (their losses differ from
/// `train`'s on the same config). `train --exact` already refuses such a config.
#[test]
fn exact_commands_refuse_a_plain_sgd_config() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.optimizer", json!("sgd"));
    let cfg = dir.config("c.json", &c);
    for cmd in ["hypergrad", "tune", "check-grad"] {
        expect_exit_2(&[cmd, p(&cfg)], &["inner.optimizer"]);
    }
}

#[test]
fn train_exact_refuses_a_plain_sgd_config() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.optimizer", json!("sgd"));
    let cfg = dir.config("c.json", &c);
    expect_exit_2(&["train", p(&cfg), "--exact"], &["inner.optimizer"]);
    // Plain SGD in float is fine.
    revgrad().args(["train", p(&cfg)]).assert().success();
}

#[test]
fn absurd_hidden_sizes_are_a_config_error_not_an_abort() {
    let dir = Scratch::new();
    for hidden in [json!([100_000_000u64]), json!([u64::MAX])] {
        let mut c = small_config();
        set(&mut c, "model.hidden", hidden);
        let cfg = dir.config("c.json", &c);
        expect_exit_2(
            &["train", p(&cfg)],
            &["c.json", "model.hidden", "parameters"],
        );
    }
}

#[test]
fn train_save_into_a_missing_folder_fails_before_training() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let target = dir.path("no/such/folder/x.npz");
    let stderr = expect_exit_2(&["train", p(&cfg), "--save", p(&target)], &["x.npz"]);
    assert!(stderr.contains("folder does not exist"), "{stderr}");
}

#[test]
fn initial_weights_out_of_range_blame_init_scale() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "model.init_scale", json!(1e6));
    let cfg = dir.config("c.json", &c);
    let assert = revgrad().args(["hypergrad", p(&cfg)]).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("model.init_scale"), "{stderr}");
}
