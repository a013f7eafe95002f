//! Back-gradient poisoning (SPEC §2.2 `outer.objective`, §2.5 `poison`): relabelled copies
//! appended to the training rows, their features ascending the validation loss.

use serde_json::{Value, json};

use crate::common::*;

/// 20 poison rows among the digits' training rows, their features moved to raise the
/// validation loss.
fn poison_config() -> Value {
    json!({
        "seed": 0,
        "data": { "train": digits_csv(), "validation_fraction": 0.5, "test_fraction": 0.2,
                  "poison": { "rows": 20, "labels": "flip" } },
        "model": { "hidden": [8] },
        "inner": { "optimizer": "momentum", "steps": 60, "batch_size": 50,
                   "alpha": 0.1, "gamma": 0.9 },
        "outer": { "steps": 10, "learning_rate": { "input": 0.5 }, "tune": ["input"],
                   "objective": "maximize" }
    })
}

#[test]
fn poison_rows_equal_to_their_sources_with_their_labels_reproduce_training_on_the_duplicated_set() {
    use revgrad::hypergrad::reverse::hypergradient;
    use revgrad::problem::Experiment;
    let dir = Scratch::new();
    // No split (a validation file) and no standardisation: the training rows are the file's
    // rows, and a copy of a row has that row's features.
    let mut c = poison_config();
    set(
        &mut c,
        "data",
        json!({ "train": digits_csv(), "validation": digits_csv(),
        "standardize": false, "poison": { "rows": 20 } }),
    );
    let poisoned = dir.config("poisoned.json", &c);
    let mut exp = Experiment::load(&poisoned).unwrap();
    let first = exp.data.learnable.as_ref().unwrap().first;
    let sources: Vec<usize> = exp.data.poison.iter().map(|p| p.source).collect();
    // Put the original labels back on the copies.
    for (r, p) in exp.data.poison.clone().iter().enumerate() {
        assert_ne!(exp.data.train.y[first + r], p.label);
        exp.data.train.y[first + r] = p.label;
    }
    // The same rows as plain data: the file, then the source rows again.
    let text = std::fs::read_to_string(repo("data/digits.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut dup = text.clone();
    for &s in &sources {
        dup += lines[1 + s];
        dup.push('\n');
    }
    let dup_csv = dir.path("dup.csv");
    std::fs::write(&dup_csv, dup).unwrap();
    let mut d = c.clone();
    set(
        &mut d,
        "data",
        json!({ "train": p(&dup_csv), "validation": digits_csv(),
        "standardize": false }),
    );
    set(&mut d, "outer", json!({ "tune": ["alpha"] }));
    let clean = Experiment::load(&dir.config("dup.json", &d)).unwrap();
    assert_eq!(clean.data.train.len(), exp.data.train.len());

    let mut a = exp.prepare().unwrap();
    let mut b = clean.prepare().unwrap();
    let ha = hypergradient(&mut a.problem, a.ctx.setup(&a.hypers)).unwrap();
    let hb = hypergradient(&mut b.problem, b.ctx.setup(&b.hypers)).unwrap();
    assert_eq!(ha.val_loss.to_bits(), hb.val_loss.to_bits());
    assert_eq!(ha.train_loss.to_bits(), hb.train_loss.to_bits());
    for k in [revgrad::hyper::Kind::Alpha, revgrad::hyper::Kind::Gamma] {
        assert_eq!(ha.grads.get(k).values, hb.grads.get(k).values, "{k:?}");
    }
}

#[test]
fn maximize_raises_the_validation_loss_and_the_best_row_is_the_highest() {
    let dir = Scratch::new();
    let cfg = dir.config("p.json", &poison_config());
    let out = revgrad()
        .args(["tune", p(&cfg), "--quiet"])
        .assert()
        .success()
        .get_output()
        .clone();
    let t = Table::parse(&out.stdout);
    let loss: Vec<f64> = t.rows.iter().map(|r| t.num(r, "val_loss")).collect();
    let rises = loss.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(rises * 10 >= 8 * (loss.len() - 1), "val_loss {loss:?}");
    assert!(loss[loss.len() - 1] > 1.05 * loss[0], "val_loss {loss:?}");
    let summary = String::from_utf8_lossy(&out.stderr);
    let highest = loss.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let best = loss.iter().position(|&l| l == highest).unwrap();
    assert!(
        summary.contains(&format!(
            "worst for the model (highest validation loss) (#{best:>3})"
        )),
        "{summary}"
    );
}

#[test]
fn poison_input_hypergradients_pass_check_grad_for_every_reversible_optimizer() {
    let dir = Scratch::new();
    for optimizer in ["momentum", "adam", "rmsprop"] {
        let mut c = poison_config();
        set(&mut c, "inner.optimizer", json!(optimizer));
        set(&mut c, "inner.steps", json!(30));
        if optimizer != "momentum" {
            set(&mut c, "inner.alpha", json!(0.003));
            set(&mut c, "inner.eps", json!(1e-4));
        }
        if optimizer == "adam" {
            c["inner"].as_object_mut().unwrap().remove("gamma");
        }
        assert_check_grad_passes(&dir, &format!("{optimizer}.json"), &c);
    }
}

/// The summary line starting with `what`: its four figures.
fn figures(summary: &str, what: &str) -> Vec<String> {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no {what} line in {summary}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[words.len() - 4..]
        .iter()
        .map(|w| w.to_string())
        .collect()
}

/// `train ARGS --json`'s validation and test figures, as the summary prints them.
fn train_figures(args: &[&str]) -> Vec<String> {
    let mut a = args.to_vec();
    a.push("--json");
    let j = json_of(&a);
    ["val_loss", "val_accuracy", "test_loss", "test_accuracy"]
        .iter()
        .map(|k| format!("{:.4}", j[k].as_f64().unwrap()))
        .collect()
}

#[test]
fn the_poison_summary_matches_separate_train_runs() {
    let dir = Scratch::new();
    let mut c = poison_config();
    set(&mut c, "outer.steps", json!(4));
    let cfg = dir.config("p.json", &c);
    let best = dir.path("best.json");
    let out = revgrad()
        .args(["tune", p(&cfg), "--quiet", "--best", p(&best)])
        .assert()
        .success()
        .get_output()
        .clone();
    let summary = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(summary.contains("poison: 20 copies"), "{summary}");
    // Clean: float training without the poison rows.
    let mut clean = c.clone();
    clean["data"].as_object_mut().unwrap().remove("poison");
    set(&mut clean, "outer", json!({ "tune": ["alpha"] }));
    let clean = dir.config("clean.json", &clean);
    assert_eq!(
        figures(&summary, "clean"),
        train_figures(&["train", p(&clean)])
    );
    // Start and best: the exact runs the tune made.
    assert_eq!(
        figures(&summary, "start (label"),
        train_figures(&["train", p(&cfg), "--exact"])
    );
    assert_eq!(
        figures(&summary, "best row"),
        train_figures(&["train", p(&best), "--exact"])
    );
}

#[test]
fn the_clean_line_is_skipped_with_its_reason_when_batches_outgrow_the_clean_rows() {
    let dir = Scratch::new();
    let mut c = poison_config();
    set(&mut c, "data.limit", json!(40));
    set(&mut c, "data.validation_fraction", json!(0.5));
    c["data"].as_object_mut().unwrap().remove("test_fraction");
    set(&mut c, "data.poison.rows", json!(10));
    set(&mut c, "inner.batch_size", json!(25));
    set(&mut c, "outer.steps", json!(1));
    let cfg = dir.config("p.json", &c);
    let out = revgrad()
        .args(["tune", p(&cfg), "--quiet"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("clean: not run (inner.batch_size 25 is larger than the 20 clean rows)"),
        "{text}"
    );
}

#[test]
fn poison_works_with_resampling_and_writes_the_originals_above_the_poison() {
    let dir = Scratch::new();
    let mut c = poison_config();
    set(&mut c, "outer.resample", json!(true));
    set(&mut c, "outer.steps", json!(2));
    let cfg = dir.config("p.json", &c);
    let png = dir.path("p.png");
    let rows = dir.path("rows.csv");
    stdout_of([
        "tune",
        p(&cfg),
        "--quiet",
        "--images-out",
        p(&png),
        "--inputs-out",
        p(&rows),
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    // Two grid rows (sources above, poison below) of 20 images of 8×8.
    assert_eq!((info.width, info.height), (1 + 20 * 9, 1 + 2 * 9));
    let t = Table::parse(&std::fs::read(&rows).unwrap());
    assert_eq!(t.rows.len(), 20);
    // search still refuses the input block.
    let out = revgrad()
        .args(["search", p(&cfg)])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"input\""));
}

#[test]
fn bad_poison_configs_name_the_file_and_field() {
    let dir = Scratch::new();
    let one_class = dir.path("one.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..40 {
        text += &format!("{},{},0\n", i % 5, i % 7);
    }
    std::fs::write(&one_class, text).unwrap();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "rows 0",
            json!({"data.poison.rows": 0}),
            vec!["data.poison.rows", ">= 1"],
        ),
        (
            "too many rows",
            json!({"data.poison.rows": 5000}),
            vec!["data.poison.rows", "below the number of training rows"],
        ),
        (
            "one class",
            json!({"data.train": p(&one_class), "inner.batch_size": 10}),
            vec!["data.poison", "two classes"],
        ),
        (
            "with synthetic",
            json!({"data.synthetic": {"per_class": 1}}),
            vec!["data.poison", "data.synthetic"],
        ),
        (
            "bad objective",
            json!({"outer.objective": "maximise"}),
            vec!["outer.objective", "maximize"],
        ),
        (
            "bad labels",
            json!({"data.poison.labels": "random"}),
            vec!["data.poison.labels", "flip"],
        ),
    ];
    for (_what, edits, parts) in cases {
        let mut c = poison_config();
        for (k, v) in edits.as_object().unwrap() {
            set(&mut c, k, v.clone());
        }
        let cfg = dir.config("bad.json", &c);
        let mut all = vec!["bad.json"];
        all.extend(parts);
        assert_exit_2(&["tune", p(&cfg)], &all);
    }
    // maximize with no tuned block named.
    let mut c = poison_config();
    c["outer"].as_object_mut().unwrap().remove("tune");
    c["outer"]
        .as_object_mut()
        .unwrap()
        .insert("learning_rate".into(), json!(0.1));
    let cfg = dir.config("bad.json", &c);
    assert_exit_2(&["tune", p(&cfg)], &["outer.tune", "maximize"]);
}
