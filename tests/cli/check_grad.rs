//! `revgrad check-grad`: three hypergradients side by side, non-zero exit on disagreement.

use predicates::prelude::*;

use crate::common::{assert_user_error_text, p, repo, revgrad};

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
