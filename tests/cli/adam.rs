//! Adam as the inner optimizer (issue 13): `tune` lowers the validation loss with SPEC
//! §4.1's adam columns, `hypergrad --json` reports β₁ and β₂'s effective rationals,
//! `check-grad` agrees, and `train` runs float and exact.

use serde_json::json;

use crate::common::{
    Scratch, Table, assert_header, json_of, p, revgrad, set, small_config, stdout_of,
};

const ADAM_TUNE_HEADER: &str = "iteration,alpha,beta1,beta2,eps,l2,init_scale,train_loss,val_loss,val_accuracy,test_loss,test_accuracy,d_alpha,d_beta1,d_beta2,d_eps,d_l2,d_init_scale,seconds,status";

fn adam_config() -> serde_json::Value {
    let mut c = small_config();
    set(
        &mut c,
        "inner",
        json!({ "optimizer": "adam", "steps": 40, "batch_size": 50,
                "alpha": 0.005, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "l2": 0.001 }),
    );
    set(
        &mut c,
        "outer.tune",
        json!(["alpha", "beta1", "beta2", "eps", "l2"]),
    );
    set(&mut c, "outer.steps", json!(6));
    c
}

#[test]
fn tune_with_adam_lowers_the_validation_loss() {
    let dir = Scratch::new();
    let cfg = dir.config("adam.json", &adam_config());
    let out = stdout_of(["tune", p(&cfg), "--quiet"]);
    assert_header(&out, ADAM_TUNE_HEADER);
    let t = Table::parse(&out);
    assert_eq!(t.rows.len(), 7);
    let first = t.num(&t.rows[0], "val_loss");
    let best = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "status") == "ok")
        .map(|r| t.num(r, "val_loss"))
        .fold(f64::INFINITY, f64::min);
    assert!(best < 0.9 * first, "val_loss {first} → best {best}");
}

#[test]
fn hypergrad_and_check_grad_with_adam() {
    let dir = Scratch::new();
    let cfg = dir.config("adam.json", &adam_config());
    let j = json_of(["hypergrad", p(&cfg), "--json"]);
    assert_eq!(j["reversal"]["exact"], json!(true));
    assert_eq!(j["reversal"]["theta0_error"], json!(0.0));
    assert_eq!(j["effective"]["beta1"], json!(0.8000030517578125));
    assert!(j["effective"]["beta2"].is_number());
    for k in ["alpha", "beta1", "beta2", "eps", "l2", "init_scale"] {
        assert!(j["hypergradients"][k].is_number(), "{k}: {j}");
    }
    revgrad().args(["check-grad", p(&cfg)]).assert().success();
    for exact in [false, true] {
        let mut args = vec!["train", p(&cfg), "--json"];
        if exact {
            args.push("--exact");
        }
        let j = json_of(&args);
        assert!(j["val_loss"].as_f64().is_some_and(f64::is_finite), "{j}");
    }
}
