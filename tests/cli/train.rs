//! `revgrad train`: accuracy on digits, `--save` / `init_file` round trip, exact vs float.

use serde_json::{Value, json};

use crate::common::{
    Scratch, assert_user_error_text, json_of, p, repo, revgrad, same_f64, set, small_config,
    stdout_of,
};

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

/// The figures `train --seeds N` averages, as named in the JSON.
const FIGURES: [&str; 6] = [
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
];

/// `small_config` with a test set held out (so the test figures are compared too), data
/// seed 3 and inner seed 7.
fn seeded_config() -> Value {
    let mut c = small_config();
    set(&mut c, "seed", json!(3));
    set(&mut c, "inner.seed", json!(7));
    set(&mut c, "data.test_fraction", json!(0.2));
    c
}

/// `a` and `b` agree to rounding: the mean and sd may be summed in another order.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

/// `train CONFIG --seeds n --json` (plus `extra`) on `config`, whose inner seed is `first`:
/// each run is, figure for figure and bit for bit, `train --json` (plus `extra`) with
/// `inner.seed` set to its seed, and `mean` / `sd` are the mean and the sample standard
/// deviation of the runs (`null` for a figure the runs lack).
fn assert_seeds_are_single_runs(config: &Value, first: u64, n: usize, extra: &[&str]) {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", config);
    let seeds = n.to_string();
    let mut args = vec!["train", p(&cfg), "--seeds", &seeds, "--json"];
    args.extend_from_slice(extra);
    let report = json_of(&args);
    let runs = report["runs"].as_array().expect("runs is an array");
    assert_eq!(runs.len(), n, "{report}");
    for (k, run) in runs.iter().enumerate() {
        let seed = first + k as u64;
        assert_eq!(run["seed"].as_u64(), Some(seed), "{run}");
        let mut single = config.clone();
        set(&mut single, "inner.seed", json!(seed));
        let single = dir.config(&format!("seed{seed}.json"), &single);
        let mut args = vec!["train", p(&single), "--json"];
        args.extend_from_slice(extra);
        let alone = json_of(&args);
        // The same object as today's single-run report, plus its seed.
        let mut keys: Vec<&String> = run
            .as_object()
            .expect("a run is an object")
            .keys()
            .collect();
        keys.retain(|k| *k != "seed");
        let mut alone_keys: Vec<&String> = alone.as_object().expect("object").keys().collect();
        keys.sort();
        alone_keys.sort();
        assert_eq!(keys, alone_keys);
        assert_eq!(run["arithmetic"], alone["arithmetic"]);
        assert_eq!(run["steps"], alone["steps"]);
        for key in FIGURES {
            if alone[key].is_null() {
                assert!(run[key].is_null(), "seed {seed}, {key}: {run}");
                continue;
            }
            assert!(
                same_f64(number(run, key), number(&alone, key)),
                "seed {seed}, {key}: --seeds gives {} but a run alone {}",
                run[key],
                alone[key]
            );
        }
    }
    for key in FIGURES {
        if runs[0][key].is_null() {
            // No test set: no test figures to average.
            assert!(
                report["mean"][key].is_null() && report["sd"][key].is_null(),
                "{key}"
            );
            continue;
        }
        let xs: Vec<f64> = runs.iter().map(|r| number(r, key)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let (m, s) = (number(&report["mean"], key), number(&report["sd"], key));
        assert!(close(m, mean), "mean {key}: {m} vs {mean}");
        assert!(close(s, sd), "sd {key}: {s} vs the sample sd {sd}");
    }
    let val: Vec<f64> = runs.iter().map(|r| number(r, "val_loss")).collect();
    assert!(
        val.windows(2).all(|w| !same_f64(w[0], w[1])),
        "each inner seed trains another run: {val:?}"
    );
}

#[test]
fn train_seeds_runs_equal_single_runs_with_those_inner_seeds() {
    assert_seeds_are_single_runs(&seeded_config(), 7, 3, &[]);
}

#[test]
fn train_exact_seeds_runs_equal_single_exact_runs() {
    assert_seeds_are_single_runs(&seeded_config(), 7, 2, &["--exact"]);
}

/// Without `inner.seed` the runs start at the data seed; without a test set the test
/// figures are `null` in every run and in the mean and sd.
#[test]
fn train_seeds_start_at_the_data_seed_without_inner_seed() {
    let mut c = small_config();
    set(&mut c, "seed", json!(2));
    assert_seeds_are_single_runs(&c, 2, 2, &[]);
}

/// `--seeds 1` is today's report: the same JSON object and the same table.
#[test]
fn train_seeds_1_is_the_single_run_report() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &seeded_config());
    let plain = json_of(["train", p(&cfg), "--json"]);
    let one = json_of(["train", p(&cfg), "--json", "--seeds", "1"]);
    let keys =
        |v: &Value| -> Vec<String> { v.as_object().expect("object").keys().cloned().collect() };
    assert_eq!(keys(&one), keys(&plain));
    for key in FIGURES {
        assert!(same_f64(number(&one, key), number(&plain, key)), "{key}");
    }
    // The tables differ only in the seconds of the last line.
    let table = |extra: &[&str]| {
        let mut args = vec!["train", p(&cfg)];
        args.extend_from_slice(extra);
        let out = String::from_utf8(stdout_of(&args)).expect("UTF-8");
        let mut lines: Vec<String> = out.lines().map(String::from).collect();
        let last = lines.pop().expect("a last line");
        let (steps, _seconds) = last.rsplit_once(", ").expect("`T steps in …, S s`");
        lines.push(steps.to_string());
        lines
    };
    assert_eq!(table(&["--seeds", "1"]), table(&[]));
}

/// The table: a header, one line per run starting with its inner seed, then `mean` and `sd`
/// lines, and a last line saying the sd is the sample one; no test columns without a test
/// set, whose figures are `null` in the JSON's mean and sd.
#[test]
fn train_seeds_table_has_a_line_per_run_then_mean_and_sd() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.seed", json!(4));
    let cfg = dir.config("c.json", &c);
    let out = String::from_utf8(stdout_of(["train", p(&cfg), "--seeds", "3"])).expect("UTF-8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2 + 3 + 2 + 1, "{out}");
    let header: Vec<&str> = lines[0].split("  ").filter(|s| !s.is_empty()).collect();
    let header: Vec<&str> = header.iter().map(|s| s.trim()).collect();
    assert_eq!(
        header,
        [
            "inner seed",
            "train loss",
            "train accuracy",
            "val loss",
            "val accuracy"
        ],
        "{out}"
    );
    assert!(lines[1].chars().all(|ch| ch == '-'), "{out}");
    let first: Vec<&str> = lines[2..7]
        .iter()
        .map(|l| l.split_whitespace().next().expect("a cell"))
        .collect();
    assert_eq!(first, ["4", "5", "6", "mean", "sd"], "{out}");
    for line in &lines[2..7] {
        assert_eq!(line.split_whitespace().count(), 5, "{out}");
    }
    assert!(
        lines[7].starts_with("3 runs of 50 steps in float64") && lines[7].contains("sample"),
        "{out}"
    );

    // The same figures as the JSON, to the table's 6 digits (fixed below 1e6, or
    // scientific below 1e-3).
    let report = json_of(["train", p(&cfg), "--seeds", "3", "--json"]);
    let keys = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"];
    for (line, what) in [(lines[5], "mean"), (lines[6], "sd")] {
        let cells: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|c| c.parse().expect("a number"))
            .collect();
        assert_eq!(cells.len(), keys.len());
        for (cell, key) in cells.iter().zip(keys) {
            let v = number(&report[what], key);
            assert!(
                (cell - v).abs() < 6e-7,
                "{what} {key}: {cell} vs {v}\n{out}"
            );
        }
    }
    for what in ["mean", "sd"] {
        for key in ["test_loss", "test_accuracy"] {
            assert!(report[what][key].is_null(), "{what}.{key}: {report}");
        }
    }
}

#[test]
fn train_seeds_0_is_a_usage_error() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let assert = revgrad()
        .args(["train", p(&cfg), "--seeds", "0"])
        .assert()
        .failure()
        .code(2);
    let stderr = &assert.get_output().stderr;
    assert_user_error_text(stderr);
    assert!(String::from_utf8_lossy(stderr).contains("--seeds"));
}

/// `--save` keeps one run's parameters: with several runs it is refused before any work
/// (even before the config is read), in float and exact arithmetic, and nothing is written.
#[test]
fn train_save_with_several_seeds_is_a_usage_error_naming_both_flags() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let npz = dir.path("theta.npz");
    let missing = dir.path("missing.json");
    for args in [
        vec!["train", p(&cfg), "--seeds", "2", "--save", p(&npz)],
        vec![
            "train",
            p(&cfg),
            "--exact",
            "--save",
            p(&npz),
            "--seeds",
            "3",
        ],
        vec![
            "train",
            p(&missing),
            "--save",
            p(&npz),
            "--seeds",
            "2",
            "--json",
        ],
    ] {
        let assert = revgrad().args(&args).assert().failure().code(2);
        let stderr = &assert.get_output().stderr;
        assert_user_error_text(stderr);
        let text = String::from_utf8_lossy(stderr);
        assert!(
            text.contains("--save") && text.contains("--seeds"),
            "{args:?}: {text}"
        );
        assert!(assert.get_output().stdout.is_empty(), "{args:?}");
        assert!(!npz.exists(), "{args:?} wrote {}", npz.display());
    }
    // One seed with --save is today's train --save.
    stdout_of(["train", p(&cfg), "--seeds", "1", "--save", p(&npz)]);
    assert!(npz.exists());
}

/// A diverging run exits 1 with the step and the hint, as a single run does, and says which
/// inner seed diverged.
#[test]
fn train_seeds_diverging_run_exits_1_naming_step_hint_and_seed() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "model.activation", json!("relu"));
    set(&mut c, "inner.alpha", json!(100000.0));
    set(&mut c, "inner.seed", json!(11));
    let cfg = dir.config("c.json", &c);
    let assert = revgrad()
        .args(["train", p(&cfg), "--seeds", "3"])
        .assert()
        .failure()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert_user_error_text(stderr.as_bytes());
    assert!(
        stderr.contains("step")
            && stderr.contains("inner.alpha")
            && stderr.contains("inner seed 11"),
        "{stderr}"
    );
    assert!(assert.get_output().stdout.is_empty());
}

/// `inner.seed` draws the training run (ε, batch order) and `seed` the data: changing either
/// changes the result. With ε from `model.init_file` and no shuffling nothing is left for
/// the inner seed to draw, so `inner.seed` leaves the run bit for bit unchanged — it does not
/// touch the data or its splits — while `seed` still changes it; and `--seeds` then gives
/// equal runs, with sd exactly 0.
#[test]
fn train_inner_seed_draws_the_run_and_seed_the_data() {
    let dir = Scratch::new();
    let val_loss = |name: &str, c: &Value| {
        let cfg = dir.config(name, c);
        number(&json_of(["train", p(&cfg), "--json"]), "val_loss")
    };
    let mut data0 = small_config();
    set(&mut data0, "seed", json!(0));
    let mut data0_inner5 = data0.clone();
    set(&mut data0_inner5, "inner.seed", json!(5));
    let mut data5 = small_config();
    set(&mut data5, "seed", json!(5));
    let (a, b, c) = (
        val_loss("a.json", &data0),
        val_loss("b.json", &data0_inner5),
        val_loss("c.json", &data5),
    );
    assert!(
        !same_f64(a, b),
        "inner.seed 5 trains another run: {a} vs {b}"
    );
    assert!(!same_f64(b, c), "data seed 5 gives other data: {b} vs {c}");

    let npz = dir.path("init.npz");
    stdout_of([
        "train",
        p(&dir.config("save.json", &data0)),
        "--save",
        p(&npz),
    ]);
    let fixed = |c: &Value| {
        let mut c = c.clone();
        set(&mut c, "model.init_file", json!(p(&npz)));
        set(&mut c, "inner.shuffle", json!(false));
        c
    };
    let (a, b, c) = (
        val_loss("fa.json", &fixed(&data0)),
        val_loss("fb.json", &fixed(&data0_inner5)),
        val_loss("fc.json", &fixed(&data5)),
    );
    assert!(same_f64(a, b), "inner.seed changed the data: {a} vs {b}");
    assert!(!same_f64(b, c), "data seed 5 gives other data: {b} vs {c}");

    let cfg = dir.config("seeds.json", &fixed(&data0_inner5));
    let report = json_of(["train", p(&cfg), "--seeds", "3", "--json"]);
    for key in ["train_loss", "train_accuracy", "val_loss", "val_accuracy"] {
        assert!(same_f64(
            number(&report["mean"], key),
            number(&report["runs"][0], key)
        ));
        assert!(same_f64(number(&report["sd"], key), 0.0), "{key}: {report}");
    }
    assert!(same_f64(number(&report["mean"], "val_loss"), b));
}
