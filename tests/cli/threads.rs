//! `--threads N` (SPEC §1): θ_T, every loss, every hypergradient and every CSV cell are
//! bit-identical for every N. The configs use batches of 100 and 150 rows, so each batch is
//! split into several parts (2 and 3) and the threads really share the work, and 2,434
//! parameters, so the exact optimizers' information buffer has 3 segments and their
//! element loops are shared too; JSON and CSV print shortest round-trip numbers, so equal
//! text is equal bits.

use serde_json::{Value, json};

use crate::common::{Scratch, Table, p, revgrad, set, small_config, stdout_of};

const THREADS: [&str; 3] = ["1", "2", "3"];

/// Digits, hidden [32, 8], batches of `batch` rows, a test set, 30 inner steps.
fn config(batch: usize) -> Value {
    let mut c = small_config();
    set(&mut c, "data.test_fraction", json!(0.2));
    set(&mut c, "model.hidden", json!([32, 8]));
    set(&mut c, "inner.steps", json!(30));
    set(&mut c, "inner.batch_size", json!(batch));
    set(&mut c, "inner.l2", json!(0.001));
    c
}

/// `c` with Adam as the inner optimizer (β₁ in place of γ).
fn adam(mut c: Value) -> Value {
    set(&mut c, "inner.optimizer", json!("adam"));
    set(&mut c, "inner.alpha", json!(0.01));
    c["inner"]
        .as_object_mut()
        .expect("inner is an object")
        .remove("gamma");
    set(&mut c, "outer.tune", json!(["alpha", "beta1"]));
    c
}

/// stdout of `revgrad --threads N ARGS…` for N = 1, 2, 3.
fn per_thread_count(args: &[&str]) -> Vec<Vec<u8>> {
    THREADS
        .iter()
        .map(|n| stdout_of(["--threads", n].iter().chain(args)))
        .collect()
}

/// JSON without its wall times.
fn without_seconds(stdout: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(stdout).expect("JSON on stdout");
    v.as_object_mut().expect("an object").remove("seconds");
    v
}

/// The CSV without its `seconds` column (header included).
fn without_seconds_column(stdout: &[u8]) -> Vec<Vec<String>> {
    let t = Table::parse(stdout);
    let header = t
        .header
        .iter()
        .filter(|h| *h != "seconds")
        .map(str::to_owned);
    let mut rows = vec![header.collect()];
    rows.extend(t.without_seconds());
    rows
}

#[test]
fn threads_train_gives_the_same_weights_and_losses_for_1_2_3_threads() {
    let dir = Scratch::new();
    for (optimizer, c) in [("momentum", config(100)), ("adam", adam(config(150)))] {
        let cfg = dir.config("c.json", &c);
        // Float64; exact fixed point too for momentum.
        let modes: &[&[&str]] = if optimizer == "momentum" {
            &[&[], &["--exact"]]
        } else {
            &[&[]]
        };
        for extra in modes {
            let mut saved = Vec::new();
            let mut reports = Vec::new();
            for n in THREADS {
                let npz = dir.path(&format!("theta{n}.npz"));
                let mut args = vec!["--threads", n, "train", p(&cfg), "--json"];
                args.extend(extra.iter());
                args.extend(["--save", p(&npz)]);
                reports.push(without_seconds(&stdout_of(&args)));
                saved.push(std::fs::read(&npz).expect("saved weights"));
            }
            let what = format!("{optimizer} {extra:?}");
            assert!(reports[0]["test_loss"].is_f64(), "{}", reports[0]);
            assert!(
                saved[1..].iter().all(|s| *s == saved[0]),
                "θ_T differs: {what}"
            );
            assert!(
                reports[1..].iter().all(|r| *r == reports[0]),
                "{what}: {reports:?}"
            );
        }
    }
}

#[test]
fn threads_hypergrad_json_is_the_same_for_1_2_3_threads() {
    let dir = Scratch::new();
    // Momentum with one weight per training row (row tangents from each part), per-layer
    // penalties and an α schedule; Adam (its direction is built from the whole batch's
    // gradient between the two rounds of parts).
    let mut momentum = config(100);
    set(&mut momentum, "inner.example_weight", json!({"init": 0.9}));
    set(
        &mut momentum,
        "inner.l2",
        json!({"init": 0.001, "per": "layer"}),
    );
    set(
        &mut momentum,
        "inner.alpha",
        json!({"per": "array", "knots": 3, "init": 0.3}),
    );
    for (name, c) in [("momentum", momentum), ("adam", adam(config(150)))] {
        let cfg = dir.config(&format!("{name}.json"), &c);
        let out = per_thread_count(&["hypergrad", p(&cfg), "--json"]);
        let jsons: Vec<Value> = out.iter().map(|o| without_seconds(o)).collect();
        assert_eq!(jsons[0]["reversal"]["exact"], json!(true), "{name}");
        assert!(
            jsons[1..].iter().all(|j| *j == jsons[0]),
            "{name}: {jsons:?}"
        );
    }
}

#[test]
fn threads_tune_csv_is_the_same_for_1_2_3_threads() {
    let dir = Scratch::new();
    let mut c = config(100);
    set(&mut c, "inner.example_weight", json!({"init": 0.9}));
    set(&mut c, "outer.steps", json!(3));
    set(
        &mut c,
        "outer.tune",
        json!(["alpha", "gamma", "l2", "example_weight"]),
    );
    let cfg = dir.config("c.json", &c);
    let mut csvs = Vec::new();
    let mut hypers = Vec::new();
    for n in THREADS {
        let out = dir.path(&format!("hypers{n}.csv"));
        let args = [
            "--threads",
            n,
            "tune",
            p(&cfg),
            "--quiet",
            "--hypers-out",
            p(&out),
        ];
        csvs.push(without_seconds_column(&stdout_of(args)));
        hypers.push(std::fs::read(&out).expect("--hypers-out"));
    }
    assert_eq!(
        csvs[0].len(),
        5,
        "header and iterations 0..=3: {:?}",
        csvs[0]
    );
    assert!(csvs[1..].iter().all(|t| *t == csvs[0]), "{csvs:?}");
    assert!(hypers[1..].iter().all(|h| *h == hypers[0]));
}

#[test]
fn threads_zero_is_a_usage_error_and_many_threads_are_fine() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &config(100));
    let out = revgrad()
        .args(["--threads", "0", "hypergrad", p(&cfg)])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("--threads"), "{stderr}");
    // More threads than parts (and than cores): the same result.
    let one = stdout_of(["--threads", "1", "hypergrad", p(&cfg), "--json"]);
    let many = stdout_of(["--threads", "64", "hypergrad", p(&cfg), "--json"]);
    assert_eq!(without_seconds(&one), without_seconds(&many));
}
