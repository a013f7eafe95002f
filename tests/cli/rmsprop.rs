//! RMSprop with momentum as the inner optimizer (SPEC §3.6): `tune` lowers the validation
//! loss with SPEC §4.1's rmsprop columns, `hypergrad --json` reports γ and ρ's effective
//! rationals, `check-grad` agrees, `train` runs float and exact, `verify-reversal` has its
//! rows, and the bad inputs of the optimizer blocks are refused with exit 2.

use serde_json::json;

use crate::common::{
    Scratch, Table, assert_trains_float_and_exact, assert_tune_lowers_val_loss, json_of, p,
    revgrad, set, small_config, stdout_of,
};

const RMSPROP_TUNE_HEADER: &str = "iteration,alpha,gamma,rho,eps,l2,init_scale,train_loss,val_loss,val_accuracy,test_loss,test_accuracy,d_alpha,d_gamma,d_rho,d_eps,d_l2,d_init_scale,seconds,status";

fn rmsprop_config() -> serde_json::Value {
    let mut c = small_config();
    set(
        &mut c,
        "inner",
        json!({ "optimizer": "rmsprop", "steps": 40, "batch_size": 50,
                "alpha": 0.002, "gamma": 0.5, "rho": 0.95, "eps": 1e-6, "l2": 0.001 }),
    );
    set(
        &mut c,
        "outer.tune",
        json!(["alpha", "gamma", "rho", "eps", "l2"]),
    );
    set(&mut c, "outer.steps", json!(6));
    c
}

#[test]
fn tune_with_rmsprop_lowers_the_validation_loss() {
    assert_tune_lowers_val_loss(
        &Scratch::new(),
        "rmsprop.json",
        &rmsprop_config(),
        RMSPROP_TUNE_HEADER,
        7,
    );
}

#[test]
fn hypergrad_check_grad_and_train_with_rmsprop() {
    let dir = Scratch::new();
    let cfg = dir.config("rmsprop.json", &rmsprop_config());
    let j = json_of(["hypergrad", p(&cfg), "--json"]);
    assert_eq!(j["reversal"]["exact"], json!(true));
    assert_eq!(j["reversal"]["theta0_error"], json!(0.0));
    assert_eq!(j["effective"]["gamma"], json!(0.5));
    assert_eq!(j["effective"]["rho"], json!(62260.0 / 65536.0));
    for k in ["alpha", "gamma", "rho", "eps", "l2", "init_scale"] {
        assert!(j["hypergradients"][k].is_number(), "{k}: {j}");
    }
    revgrad().args(["check-grad", p(&cfg)]).assert().success();
    assert_trains_float_and_exact(&cfg);
}

#[test]
fn verify_reversal_has_rmsprop_rows_and_gamma_zero_shows_its_float_row_only() {
    let dir = Scratch::new();
    let cfg = dir.config("rmsprop.json", &rmsprop_config());
    let verify = |gamma: &str| {
        let args = [
            "verify-reversal",
            p(&cfg),
            "--steps",
            "30",
            "--alphas",
            "0.01",
        ];
        stdout_of(args.into_iter().chain(["--gammas", gamma]))
    };
    let out = verify("0.9");
    let t = Table::parse(&out);
    let rows: Vec<_> = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "optimizer") == "rmsprop")
        .collect();
    assert_eq!(rows.len(), 2, "float and exact rows");
    for r in rows {
        let exact = t.cell(r, "arithmetic") == "exact";
        let e = t.num(r, "theta0_error");
        assert_eq!(exact, e == 0.0, "{} θ₀ error {e}", t.cell(r, "arithmetic"));
        if exact {
            assert!(t.num(r, "info_buffer_bytes") > 0.0);
        }
    }
    let out = verify("0");
    let t = Table::parse(&out);
    let rms: Vec<_> = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "optimizer") == "rmsprop")
        .map(|r| t.cell(r, "arithmetic").to_string())
        .collect();
    assert_eq!(rms, ["float"]);
    assert!(
        t.rows
            .iter()
            .all(|r| t.cell(r, "arithmetic") == "float" || t.cell(r, "optimizer") == "sgd")
    );
    for r in &t.rows {
        for c in ["max_trace_error", "theta0_error"] {
            assert!(t.num(r, c).is_finite(), "{c} not finite");
        }
    }
}

#[test]
fn plain_rmsprop_trains_in_float_and_is_refused_in_exact_arithmetic() {
    let dir = Scratch::new();
    let mut c = rmsprop_config();
    set(&mut c, "inner.gamma", json!(0));
    let cfg = dir.config("plain.json", &c);
    let j = json_of(["train", p(&cfg), "--json"]);
    assert!(j["val_loss"].as_f64().is_some_and(f64::is_finite), "{j}");
    for args in [
        vec!["train", p(&cfg), "--exact"],
        vec!["hypergrad", p(&cfg)],
        vec!["tune", p(&cfg), "--quiet"],
    ] {
        revgrad()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("inner.gamma"))
            .stderr(predicates::str::contains("not exactly reversible"));
    }
}

#[test]
fn optimizer_blocks_of_another_optimizer_and_bad_rho_are_refused() {
    let dir = Scratch::new();
    let cases: [(&str, serde_json::Value, &[&str]); 4] = [
        (
            "inner.rho",
            json!(1.2),
            &["inner.rho", "(0, 0.9999]", "1.2"],
        ),
        (
            "inner.beta1",
            json!(0.9),
            &["inner.beta1", "\"adam\"", "\"rho\""],
        ),
        (
            "inner.optimizer",
            json!("momentum"),
            &["\"rmsprop\"", "not of \"momentum\"", "\"gamma\""],
        ),
        (
            "inner.optimizer",
            json!("nesterov"),
            &["inner.optimizer", "`rmsprop`"],
        ),
    ];
    for (field, value, needles) in cases {
        let mut c = rmsprop_config();
        set(&mut c, field, value);
        set(&mut c, "outer.tune", json!(["alpha"]));
        let cfg = dir.config("bad.json", &c);
        let out = revgrad().args(["train", p(&cfg)]).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        for n in needles {
            assert!(stderr.contains(n), "{field}: {stderr} lacks {n}");
        }
        assert!(stderr.contains("bad.json"), "{stderr}");
    }
}
