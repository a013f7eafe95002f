//! `revgrad check-grad`: three hypergradients side by side, non-zero exit on disagreement.

use predicates::prelude::*;
use serde_json::{Value, json};

use crate::common::{Scratch, assert_user_error_text, p, repo, revgrad, set, small_config};

#[test]
fn check_grad_passes_on_quick_config_and_prints_three_columns() {
    let out = revgrad()
        .args(["check-grad", p(&repo("configs/quick.json"))])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).expect("UTF-8");
    for column in ["exact reversal", "stored trajectory", "finite differences"] {
        assert!(out.contains(column), "column {column:?} missing:\n{out}");
    }
    for name in ["alpha", "gamma", "l2", "init_scale"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(name)),
            "no row for {name}:\n{out}"
        );
    }
}

#[test]
fn check_grad_explains_disagreements_below_the_finite_differences_own_error() {
    // A tolerance no finite difference can meet: every probe's disagreement (~1e-11
    // relative) is then judged against the Richardson error estimate, which explains it.
    let assert = revgrad()
        .args([
            "check-grad",
            p(&repo("configs/quick.json")),
            "--tolerance",
            "1e-15",
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&assert.get_output().stdout);
    assert!(out.contains("finite differences"), "{out}");
    assert!(out.contains("within fd error"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

/// A NaN tolerance makes every comparison false, so the check can never fail: it should be
/// refused as bad usage (exit 2), like `verify-reversal --alphas nan`.
#[test]
fn check_grad_rejects_a_nan_tolerance() {
    let assert = revgrad()
        .args([
            "check-grad",
            p(&repo("configs/quick.json")),
            "--tolerance",
            "nan",
        ])
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains("--tolerance"));
    assert_user_error_text(&assert.get_output().stderr);
}

/// Digits, hidden [6], 40 inner steps, inner seed `seed`, with `blocks` set in `inner`.
fn schedule_config(seed: u64, optimizer: &str, blocks: &[(&str, Value)]) -> Value {
    let mut c = small_config();
    set(&mut c, "seed", json!(seed));
    set(&mut c, "model.hidden", json!([6]));
    set(&mut c, "inner.steps", json!(40));
    set(&mut c, "inner.optimizer", json!(optimizer));
    set(&mut c, "outer.tune", json!(["alpha"]));
    let inner = c["inner"].as_object_mut().expect("inner");
    inner.remove("gamma");
    for (k, v) in blocks {
        inner.insert((*k).to_string(), v.clone());
    }
    c
}

/// `check-grad` on `config(seed)` for seeds 0..20: every run exits 0 with the reversal
/// bit-identical to the stored trajectory, and the table says the scheduled decays' error
/// includes the rounding bound. Failing seeds are reported together.
fn assert_twenty_seeds_pass(name: &str, config: impl Fn(u64) -> Value) {
    let dir = Scratch::new();
    let mut failed = Vec::new();
    for seed in 0..20 {
        let cfg = dir.config(&format!("{name}-{seed}.json"), &config(seed));
        let out = revgrad()
            .args(["check-grad", p(&cfg)])
            .output()
            .expect("run revgrad");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let stored = text
            .lines()
            .find(|l| l.starts_with("stored trajectory:"))
            .unwrap_or_else(|| panic!("seed {seed}: no stored-trajectory line:\n{text}"));
        let words: Vec<&str> = stored.split_whitespace().collect();
        assert_eq!(
            words[2], words[4],
            "seed {seed}: bit-identical entries: {stored}"
        );
        assert!(
            text.contains("includes a bound on what rounding"),
            "seed {seed}: no rounding note:\n{text}"
        );
        if out.status.code() != Some(0) {
            failed.push(format!("seed {seed}:\n{text}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{name}: {} of 20 seeds exit non-zero:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The knots of a decay schedule move its interpolated steps by fractions of a quantum
/// 2^-16, so the exact run's loss is a step function of a knot: the rounding bound keeps
/// that from being reported as a disagreement.
#[test]
fn check_grad_passes_on_momentum_schedules_for_twenty_seeds() {
    assert_twenty_seeds_pass("momentum", |seed| {
        schedule_config(
            seed,
            "momentum",
            &[
                ("alpha", json!({"per": "array", "knots": 5, "init": 0.3})),
                ("gamma", json!({"per": "array", "knots": 5, "init": 0.7})),
                ("l2", json!({"per": "weight", "init": 1e-3})),
            ],
        )
    });
}

/// The same with Adam's β₁ and β₂ as schedules (β₂ at 0.999, where a knot has room for few
/// quanta). l2 is 0.01: at l2 = 0, the step of a weight whose gradient is 0,
/// `α·m̂/(√ŝ + ε)` with `g = λθ`, grows from 0 to ≈ α within λ ~ ε/|θ|, far inside the
/// finite differences' step of l2.
#[test]
fn check_grad_passes_on_adam_beta_schedules_for_twenty_seeds() {
    assert_twenty_seeds_pass("adam", |seed| {
        schedule_config(
            seed,
            "adam",
            &[
                ("alpha", json!(0.01)),
                ("beta1", json!({"per": "array", "knots": 4, "init": 0.9})),
                ("beta2", json!({"per": "layer", "knots": 3, "init": 0.999})),
                ("l2", json!(0.01)),
            ],
        )
    });
}
