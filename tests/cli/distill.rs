//! Learned synthetic training sets (SPEC §2.5): the input block's exact hypergradients,
//! replay, resampling, the learned rows as CSV and PNG, and the bad inputs.

use serde_json::{Value, json};

use crate::common::*;

/// A synthetic set of `per_class` rows per digit, learned by momentum on a small network.
fn distill_config(per_class: usize) -> Value {
    json!({
        "seed": 0,
        "data": { "train": digits_csv(), "validation_fraction": 0.3, "test_fraction": 0.2,
                  "synthetic": { "per_class": per_class, "init": "real" } },
        "model": { "hidden": [8] },
        "inner": { "optimizer": "momentum", "steps": 40, "batch_size": 10 * per_class,
                   "shuffle": false, "alpha": 0.1, "gamma": 0.9 },
        "outer": { "steps": 12, "learning_rate": { "input": 0.05 }, "tune": ["input"] }
    })
}

#[test]
fn input_hypergradients_pass_check_grad_for_every_reversible_optimizer() {
    let dir = Scratch::new();
    // Adam and RMSprop with ε = 1e-4: at ε = 1e-8 a weight whose gradient is exactly 0 (a
    // feature constant over the training rows) has slope α/ε in g, and finite differences
    // of a pixel that makes g non-zero leave the linear range at once.
    for (name, optimizer, standardize, alpha) in [
        ("momentum.json", "momentum", true, 0.1),
        ("momentum-raw.json", "momentum", false, 0.005),
        ("adam.json", "adam", true, 0.003),
        ("rmsprop.json", "rmsprop", true, 0.003),
    ] {
        let mut c = distill_config(1);
        set(&mut c, "inner.optimizer", json!(optimizer));
        set(&mut c, "data.standardize", json!(standardize));
        set(&mut c, "inner.shuffle", json!(true));
        set(&mut c, "inner.batch_size", json!(4));
        set(&mut c, "inner.steps", json!(30));
        set(&mut c, "inner.alpha", json!(alpha));
        if optimizer != "momentum" {
            set(&mut c, "inner.eps", json!(1e-4));
        }
        if optimizer == "adam" {
            c["inner"].as_object_mut().unwrap().remove("gamma");
        }
        assert_check_grad_passes(&dir, name, &c);
    }
}

#[test]
fn a_synthetic_row_no_batch_visits_gets_exactly_zero() {
    let dir = Scratch::new();
    // 20 rows, batches of 5 in order, 2 steps: rows 0..10 are visited, 10..20 never.
    let mut c = distill_config(2);
    set(&mut c, "inner.batch_size", json!(5));
    set(&mut c, "inner.steps", json!(2));
    let cfg = dir.config("c.json", &c);
    let j = json_of(["hypergrad", p(&cfg), "--json"]);
    let rows = j["hypergradients"]["input"]["values"]
        .as_array()
        .expect("[row][feature]");
    assert_eq!(rows.len(), 20);
    let row = |r: usize| -> Vec<f64> {
        rows[r]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for r in 0..10 {
        assert!(row(r).iter().any(|&v| v != 0.0), "row {r} was visited");
    }
    for r in 10..20 {
        assert!(
            row(r).iter().all(|v| v.to_bits() == 0),
            "row {r} is never visited"
        );
    }
}

#[test]
fn a_synthetic_set_equal_to_real_rows_trains_bit_for_bit_like_those_rows() {
    let dir = Scratch::new();
    // The learnable rows start as copies of real rows; written out as a training CSV and
    // trained on as ordinary data, the run is the same run, bit for bit (no
    // standardisation, so both see the same feature values; same validation file).
    let mut c = distill_config(1);
    set(
        &mut c,
        "data",
        json!({ "train": digits_csv(), "validation": digits_csv(),
        "standardize": false, "synthetic": { "per_class": 1, "init": "real" } }),
    );
    set(&mut c, "inner.shuffle", json!(true));
    set(&mut c, "inner.batch_size", json!(4));
    let syn = dir.config("syn.json", &c);
    let rows = dir.path("rows.csv");
    stdout_of([
        "tune",
        p(&syn),
        "--outer-steps",
        "0",
        "--quiet",
        "--inputs-out",
        p(&rows),
    ]);
    let mut real = c.clone();
    set(
        &mut real,
        "data",
        json!({ "train": p(&rows), "validation": digits_csv(),
        "standardize": false }),
    );
    set(&mut real, "outer.tune", json!(["alpha"]));
    set(&mut real, "outer.learning_rate", json!(0.1));
    let real = dir.config("real.json", &real);
    for args in [vec!["train", "--json"], vec!["train", "--exact", "--json"]] {
        let run = |cfg: &std::path::Path| {
            let mut a = args.clone();
            a.insert(1, p(cfg));
            json_of(&a)
        };
        let (a, b) = (run(&syn), run(&real));
        for key in ["train_loss", "val_loss", "val_accuracy"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!(same_f64(x, y), "{args:?} {key}: {x} vs {y}");
        }
    }
    let (a, b) = (
        json_of(["hypergrad", p(&syn), "--json"]),
        json_of(["hypergrad", p(&real), "--json"]),
    );
    assert_eq!(a["val_loss"], b["val_loss"]);
    assert_eq!(a["hypergradients"]["alpha"], b["hypergradients"]["alpha"]);
    assert_eq!(a["hypergradients"]["gamma"], b["hypergradients"]["gamma"]);
}

/// `c` at a CSV row's α and γ, trained with inner seed `seed`, written as `at.json`.
fn config_at(
    dir: &Scratch,
    c: &Value,
    seed: usize,
    t: &Table,
    row: &csv::StringRecord,
) -> std::path::PathBuf {
    let mut at = c.clone();
    set(&mut at, "inner.seed", json!(seed));
    set(&mut at, "inner.alpha", json!(t.num(row, "alpha")));
    set(&mut at, "inner.gamma", json!(t.num(row, "gamma")));
    dir.config("at.json", &at)
}

#[test]
fn resample_off_changes_nothing_and_on_matches_hypergrad_with_inner_seed_plus_k() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "outer.steps", json!(3));
    let plain = stdout_of(["tune", p(&dir.config("a.json", &c)), "--quiet"]);
    let mut off = c.clone();
    set(&mut off, "outer.resample", json!(false));
    set(&mut off, "inner.seed", json!(0));
    let off = stdout_of(["tune", p(&dir.config("b.json", &off)), "--quiet"]);
    let cells = |out: &[u8]| Table::parse(out).without_seconds();
    assert_eq!(
        cells(&plain),
        cells(&off),
        "resample off, inner.seed = seed"
    );

    let mut on = c.clone();
    set(&mut on, "outer.resample", json!(true));
    set(&mut on, "inner.seed", json!(7));
    let out = stdout_of(["tune", p(&dir.config("on.json", &on)), "--quiet"]);
    assert_ne!(cells(&out), cells(&plain));
    let t = Table::parse(&out);
    for (k, row) in t.rows.iter().enumerate() {
        let at = config_at(&dir, &c, 7 + k, &t, row);
        let j = json_of(["hypergrad", p(&at), "--json"]);
        assert!(
            same_f64(j["val_loss"].as_f64().unwrap(), t.num(row, "val_loss")),
            "row {k}"
        );
        let d = j["hypergradients"]["alpha"].as_f64().unwrap();
        assert!(same_f64(d, t.num(row, "d_alpha")), "row {k}");
    }
}

#[test]
fn search_with_resample_trains_trial_k_with_inner_seed_plus_k() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "outer.resample", json!(true));
    set(&mut c, "inner.seed", json!(11));
    let out = stdout_of([
        "search",
        p(&dir.config("s.json", &c)),
        "--trials",
        "2",
        "--quiet",
    ]);
    let t = Table::parse(&out);
    assert_eq!(t.rows.len(), 3);
    for (k, row) in t.rows.iter().enumerate() {
        let at = config_at(&dir, &c, 11 + k, &t, row);
        let j = json_of(["train", p(&at), "--json"]);
        assert!(
            same_f64(j["val_loss"].as_f64().unwrap(), t.num(row, "val_loss")),
            "trial {k}"
        );
    }
}

#[test]
fn tune_writes_the_learned_rows_as_a_png_grid_and_a_training_csv_and_replays_them() {
    let dir = Scratch::new();
    let c = distill_config(2);
    let cfg = dir.config("c.json", &c);
    let (png, csv, best) = (
        dir.path("rows.png"),
        dir.path("rows.csv"),
        dir.path("best.json"),
    );
    let out = stdout_of([
        "tune",
        p(&cfg),
        "--quiet",
        "--images-out",
        p(&png),
        "--inputs-out",
        p(&csv),
        "--best",
        p(&best),
    ]);
    let t = Table::parse(&out);
    assert!(t.header.iter().any(|h| h == "input") && t.header.iter().any(|h| h == "d_input"));

    // PNG: 10 classes of 2 images of 8×8 pixels, 1-pixel gaps and border.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1 + 2 * 9, 1 + 10 * 9));
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let pixels = &buf[..info.buffer_size()];
    assert_eq!(pixels[0], 128, "border");
    let image: Vec<u8> = (0..8)
        .flat_map(|i| pixels[(1 + i) * 19 + 1..(1 + i) * 19 + 9].to_vec())
        .collect();
    assert!(
        image.iter().any(|&g| g < 60) && image.iter().any(|&g| g > 180),
        "grey levels span"
    );

    // CSV: 20 rows of 64 features and a label, the best iteration's rows, trainable.
    let rows = Table::parse(&std::fs::read(&csv).unwrap());
    assert_eq!(rows.rows.len(), 20);
    assert_eq!(rows.header.len(), 65);
    assert_eq!(&rows.header[64], "label");
    let best_cfg: Value = serde_json::from_str(&std::fs::read_to_string(&best).unwrap()).unwrap();
    let values = best_cfg["data"]["input"]["values"].as_array().unwrap();
    for (r, row) in rows.rows.iter().enumerate() {
        assert_eq!(rows.num(row, "label") as usize, r / 2);
        for f in 0..64 {
            let x: f64 = row[f].parse().unwrap();
            assert!(
                same_f64(x, values[r][f].as_f64().unwrap()),
                "row {r} feature {f}"
            );
        }
    }
    // --best replays the best row exactly.
    let best_row = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "status") == "ok")
        .min_by(|a, b| t.num(a, "val_loss").total_cmp(&t.num(b, "val_loss")))
        .unwrap();
    let j = json_of(["hypergrad", p(&best), "--json"]);
    assert!(same_f64(
        j["val_loss"].as_f64().unwrap(),
        t.num(best_row, "val_loss")
    ));
}

#[test]
fn distillation_lowers_the_validation_loss_and_beats_its_random_real_start_on_held_out_rows() {
    let dir = Scratch::new();
    let mut c = distill_config(1);
    set(&mut c, "outer.steps", json!(20));
    let cfg = dir.config("c.json", &c);
    let out = stdout_of(["tune", p(&cfg), "--quiet"]);
    let t = Table::parse(&out);
    let start = &t.rows[0];
    let best = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "status") == "ok")
        .min_by(|a, b| t.num(a, "val_loss").total_cmp(&t.num(b, "val_loss")))
        .unwrap();
    let (v0, v1) = (t.num(start, "val_loss"), t.num(best, "val_loss"));
    assert!(v1 < 0.8 * v0, "val_loss {v0} → {v1}");
    let (l0, l1) = (t.num(start, "test_loss"), t.num(best, "test_loss"));
    assert!(l1 < l0, "held-out test loss {l0} → {l1}");
    assert!(t.num(best, "test_accuracy") > t.num(start, "test_accuracy"));
}

#[test]
fn bad_synthetic_configs_name_the_file_and_field() {
    let dir = Scratch::new();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "per_class 0",
            json!({"data.synthetic.per_class": 0}),
            vec!["data.synthetic.per_class", ">= 1"],
        ),
        (
            "too many rows",
            json!({"data.synthetic.per_class": 500}),
            vec!["data.synthetic.per_class", "class 0 has"],
        ),
        (
            "with weights",
            json!({"inner.example_weight": 0.9}),
            vec!["inner.example_weight", "data.synthetic"],
        ),
        (
            "wrong shape",
            json!({"data.input": {"values": [[1.0, 2.0]]}}),
            vec![
                "data.input.values",
                "[rows][features]",
                "10 rows",
                "64 features",
            ],
        ),
        (
            "outside the box",
            json!({"data.input": {"values": (0..10).map(|r| (0..64).map(|f| if r == 3 && f == 5 { 99.0 } else { 0.0 }).collect::<Vec<f64>>()).collect::<Vec<_>>()}}),
            vec!["data.input.values[3][5]", "box [0, ", "got 99"],
        ),
        (
            "untuned rate",
            json!({"outer.learning_rate": {"alpha": 0.1}}),
            vec!["outer.learning_rate.alpha", "not tuned"],
        ),
        (
            "unknown rate",
            json!({"outer.learning_rate": {"inputs": 0.1}}),
            vec!["outer.learning_rate.inputs", "not a block name"],
        ),
        (
            "input as a number",
            json!({"data.input": 3.0}),
            vec!["data.input", "values"],
        ),
    ];
    for (what, edits, parts) in cases {
        let mut c = distill_config(1);
        for (k, v) in edits.as_object().unwrap() {
            set(&mut c, k, v.clone());
        }
        let cfg = dir.config("bad.json", &c);
        let mut all = vec!["bad.json"];
        all.extend(parts.iter().copied());
        for cmd in ["hypergrad", "tune"] {
            let out = revgrad()
                .args([cmd, p(&cfg)])
                .assert()
                .code(2)
                .get_output()
                .clone();
            assert_user_error_text(&out.stderr);
            let text = String::from_utf8_lossy(&out.stderr);
            for part in &all {
                assert!(text.contains(part), "{what}: {text} should contain {part}");
            }
        }
    }
    // input tuned without learnable rows; data.input without them.
    let mut c = small_config();
    set(&mut c, "outer.tune", json!(["alpha", "input"]));
    assert_exit_2(
        &["tune", p(&dir.config("a.json", &c))],
        &["outer.tune", "\"input\"", "data.synthetic"],
    );
    let mut c = small_config();
    set(&mut c, "data.input", json!({"values": [[0.0]]}));
    assert_exit_2(
        &["tune", p(&dir.config("b.json", &c))],
        &["data.input", "data.synthetic"],
    );
    // search refuses the input block.
    let cfg = dir.config("s.json", &distill_config(1));
    assert_exit_2(&["search", p(&cfg)], &["outer.tune", "\"input\"", "search"]);
}

#[test]
fn learned_row_outputs_are_checked_before_any_work() {
    let dir = Scratch::new();
    // No learnable rows.
    let cfg = dir.config("plain.json", &small_config());
    let png = dir.path("x.png");
    assert_exit_2(
        &["tune", p(&cfg), "--images-out", p(&png)],
        &["--images-out", "data.synthetic"],
    );
    assert_exit_2(
        &["tune", p(&cfg), "--inputs-out", p(&dir.path("x.csv"))],
        &["--inputs-out"],
    );
    // Features that are not a square image: 5 columns.
    let mut text = String::from("a,b,c,d,e,label\n");
    for i in 0..60 {
        text += &format!(
            "{},{},{},{},{},{}\n",
            i % 7,
            i % 5,
            i % 3,
            i % 11,
            i % 2,
            i % 3
        );
    }
    let data = dir.path("five.csv");
    std::fs::write(&data, text).unwrap();
    let mut c = distill_config(1);
    set(&mut c, "data.train", json!(p(&data)));
    set(&mut c, "inner.batch_size", json!(3));
    let cfg = dir.config("five.json", &c);
    let csv_path = dir.path("rows.csv");
    assert_exit_2(
        &[
            "tune",
            p(&cfg),
            "--images-out",
            p(&png),
            "--inputs-out",
            p(&csv_path),
        ],
        &["--images-out", "5 features", "square"],
    );
    assert!(!png.exists() && !csv_path.exists(), "nothing written");
    // The CSV alone works and names the columns as the data did.
    stdout_of([
        "tune",
        p(&cfg),
        "--quiet",
        "--outer-steps",
        "1",
        "--inputs-out",
        p(&csv_path),
    ]);
    let rows = Table::parse(&std::fs::read(&csv_path).unwrap());
    assert_eq!(
        rows.header.iter().collect::<Vec<_>>(),
        vec!["a", "b", "c", "d", "e", "label"]
    );
}

#[test]
fn huge_synthetic_sets_and_seed_counts_are_refused_without_a_crash() {
    let dir = Scratch::new();
    for (per_class, init) in [
        (1_000_000_000_000u64, "real"),
        (2_305_843_009_213_693_952, "noise"),
        (100_000, "noise"),
    ] {
        let mut c = distill_config(1);
        set(
            &mut c,
            "data.synthetic",
            json!({"per_class": per_class, "init": init}),
        );
        let cfg = dir.config("huge.json", &c);
        let out = revgrad()
            .env("REVGRAD_MEMORY_LIMIT", "50M")
            .args(["hypergrad", p(&cfg)])
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert_user_error_text(&out.stderr);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("data.synthetic.per_class"),
            "{per_class}: {text}"
        );
    }
    let cfg = dir.config("c.json", &small_config());
    assert_exit_2(
        &["train", p(&cfg), "--seeds", "18446744073709551615"],
        &["--seeds", "at most"],
    );
}

#[test]
fn a_one_feature_input_block_is_written_and_read_as_rows_of_features() {
    let dir = Scratch::new();
    let data = dir.path("one.csv");
    let mut text = String::from("a,label\n");
    for i in 0..60 {
        text += &format!("{},{}\n", (i * 7 % 13) as f64 / 4.0, i % 2);
    }
    std::fs::write(&data, text).unwrap();
    let mut c = distill_config(2);
    set(&mut c, "data.train", json!(p(&data)));
    set(&mut c, "inner.batch_size", json!(4));
    set(&mut c, "outer.steps", json!(2));
    let cfg = dir.config("c.json", &c);
    let best = dir.path("best.json");
    stdout_of(["tune", p(&cfg), "--quiet", "--best", p(&best)]);
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&best).unwrap()).unwrap();
    let rows = b["data"]["input"]["values"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r.as_array().is_some_and(|f| f.len() == 1)),
        "{rows:?}"
    );
    json_of(["train", p(&best), "--json"]);
}
