//! Adam as the inner optimizer: `tune` lowers the validation loss with SPEC
//! §4.1's adam columns, `hypergrad --json` reports β₁ and β₂'s effective rationals,
//! `check-grad` agrees, and `train` runs float and exact.

use serde_json::json;

use crate::common::{
    Scratch, assert_trains_float_and_exact, assert_tune_lowers_val_loss, json_of, p, revgrad, set,
    small_config,
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
    assert_tune_lowers_val_loss(
        &Scratch::new(),
        "adam.json",
        &adam_config(),
        ADAM_TUNE_HEADER,
        7,
    );
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
    assert_trains_float_and_exact(&cfg);
}
