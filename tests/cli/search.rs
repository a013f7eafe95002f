//! `revgrad search` (SPEC §1, §2.4, §4.1): the seeded random-search baseline. Same CSV
//! columns as `tune` with empty gradient cells, float64 training per trial, every tuned
//! block drawn as one scalar from its range, `--trials` / `--seconds` limits, diverging
//! trials as `rejected` rows, and `--best`.

use serde_json::{Value, json};

use crate::common::{
    Scratch, TUNE_HEADER, Table, assert_header, first_line, json_of, p, revgrad, same_f64, set,
    small_config, stdout_of,
};
use crate::errors::expect_exit_2;

const BLOCKS: [&str; 4] = ["alpha", "gamma", "l2", "init_scale"];
const GRADIENTS: [&str; 4] = ["d_alpha", "d_gamma", "d_l2", "d_init_scale"];

/// Structural checks of a search CSV: the v1 header, iterations 0, 1, … in order, `ok` /
/// `rejected`, losses on `ok` rows only, gradient cells always empty.
fn check_search_csv(out: &[u8], expected_rows: usize) -> Table {
    assert_header(out, TUNE_HEADER);
    let t = Table::parse(out);
    assert_eq!(
        t.rows.len(),
        expected_rows,
        "rows:\n{}",
        String::from_utf8_lossy(out)
    );
    for (i, row) in t.rows.iter().enumerate() {
        assert_eq!(t.cell(row, "iteration"), i.to_string(), "row {i}: {row:?}");
        let status = t.cell(row, "status");
        assert!(status == "ok" || status == "rejected", "row {i}: {row:?}");
        for g in GRADIENTS {
            assert_eq!(t.cell(row, g), "", "search has no gradients: row {i} {g}");
        }
        for h in BLOCKS {
            assert!(t.num(row, h).is_finite(), "row {i} {h}: {row:?}");
        }
        for c in ["train_loss", "val_loss", "val_accuracy"] {
            if status == "ok" {
                assert!(t.num(row, c).is_finite(), "row {i} {c}: {row:?}");
            } else {
                assert_eq!(t.cell(row, c), "", "rejected row {i} {c}: {row:?}");
            }
        }
    }
    t
}

#[test]
fn search_csv_has_tunes_header_no_gradients_and_trials_plus_one_rows() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = stdout_of(["search", p(&cfg), "--quiet", "--trials", "5"]);
    check_search_csv(&out, 5 + 1);
    // Without --trials: outer.steps trials, so as many rows as `tune`.
    let out = stdout_of(["search", p(&cfg), "--quiet"]);
    check_search_csv(&out, 4 + 1);
}

#[test]
fn search_header_equals_tunes_for_a_config_with_blocks() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(
        &mut c,
        "inner.alpha",
        json!({"per": "array", "knots": 2, "init": 0.5}),
    );
    set(&mut c, "inner.l2", json!({"per": "weight", "init": 1e-4}));
    set(&mut c, "outer.tune", json!(["alpha", "l2"]));
    let cfg = dir.config("c.json", &c);
    let search = stdout_of(["search", p(&cfg), "--quiet", "--trials", "2"]);
    let tune = stdout_of(["tune", p(&cfg), "--quiet", "--outer-steps", "1"]);
    assert_eq!(
        String::from_utf8_lossy(first_line(&search)),
        String::from_utf8_lossy(first_line(&tune)),
        "search and tune headers differ"
    );
    check_search_csv(&search, 3);
}

#[test]
fn search_iteration_0_is_the_configs_starting_point_trained_in_float64() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.l2", json!(1e-4));
    set(&mut c, "model.init_scale", json!(0.7));
    let cfg = dir.config("c.json", &c);
    let t = check_search_csv(
        &stdout_of(["search", p(&cfg), "--quiet", "--trials", "1"]),
        2,
    );
    let row0 = &t.rows[0];
    assert_eq!(t.cell(row0, "status"), "ok");
    for (h, v) in [
        ("alpha", 0.5),
        ("gamma", 0.9),
        ("l2", 1e-4),
        ("init_scale", 0.7),
    ] {
        assert!(same_f64(t.num(row0, h), v), "iteration 0 {h}: {row0:?}");
    }
    // SPEC §1: float64 training per trial, so iteration 0 is `train` (float) on the config,
    // bit for bit.
    let tr = json_of(["train", p(&cfg), "--json"]);
    for k in ["train_loss", "val_loss", "val_accuracy"] {
        let (csv, train) = (t.num(row0, k), tr[k].as_f64().expect(k));
        assert!(
            same_f64(csv, train),
            "iteration 0 {k} {csv} vs train --json {train}"
        );
    }
}

/// A config value is read as the f64 nearest to its decimal text, so the numbers `--best`
/// writes (shortest round-trip text) come back bit for bit. 0.36400407592238315 is a value
/// a `tune --best` wrote; a parser that is not correctly rounded reads it one ULP low
/// (0.3640040759223831).
#[test]
fn search_reads_config_values_bit_for_bit() {
    let dir = Scratch::new();
    let alpha = 0.364_004_075_922_383_15_f64;
    let mut c = small_config();
    set(&mut c, "inner.alpha", json!(alpha));
    let cfg = dir.config("c.json", &c);
    let text = std::fs::read_to_string(&cfg).expect("config");
    assert!(text.contains("0.36400407592238315"), "{text}");
    let t = check_search_csv(
        &stdout_of(["search", p(&cfg), "--quiet", "--trials", "1"]),
        2,
    );
    let shown = t.cell(&t.rows[0], "alpha");
    assert_eq!(shown, "0.36400407592238315", "iteration 0 alpha");
}

#[test]
fn search_is_reproducible_and_the_seed_changes_the_draws() {
    let dir = Scratch::new();
    let a = dir.config("a.json", &small_config());
    let mut c1 = small_config();
    set(&mut c1, "seed", json!(1));
    let b = dir.config("b.json", &c1);
    let run = |cfg| {
        check_search_csv(
            &stdout_of(["search", p(cfg), "--quiet", "--trials", "6"]),
            7,
        )
    };
    let (first, second, other) = (run(&a), run(&a), run(&b));
    assert_eq!(
        first.without_seconds(),
        second.without_seconds(),
        "same config, same seed: identical CSV but for seconds"
    );
    for row in 1..7 {
        for h in ["alpha", "gamma"] {
            let (x, y) = (
                first.num(&first.rows[row], h),
                other.num(&other.rows[row], h),
            );
            assert!(!same_f64(x, y), "trial {row} {h}: {x} with seed 0 and 1");
        }
    }
}

#[test]
fn search_draws_every_tuned_block_from_its_spec_range() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.steps", json!(10));
    set(&mut c, "inner.l2", json!(1e-4));
    set(
        &mut c,
        "outer.tune",
        json!(["alpha", "gamma", "l2", "init_scale"]),
    );
    let cfg = dir.config("c.json", &c);
    let trials = 200;
    let t = check_search_csv(
        &stdout_of([
            "search",
            p(&cfg),
            "--quiet",
            "--trials",
            &trials.to_string(),
        ]),
        trials + 1,
    );
    // SPEC §2.4. The log-uniform draws are exp(ln lo + U·(ln hi − ln lo)), which may land
    // a rounding error (≈ 1e-15 relative) outside [lo, hi]; 1e-12 allows for it.
    let ranges = [
        ("alpha", 1e-3, 10.0),
        ("l2", 1e-7, 1e-1),
        ("init_scale", 0.05, 10.0),
    ];
    let column = |h: &str| -> Vec<f64> { t.rows[1..].iter().map(|r| t.num(r, h)).collect() };
    for (h, lo, hi) in ranges {
        for v in column(h) {
            assert!(
                v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12),
                "{h} = {v} outside [{lo}, {hi}]"
            );
        }
    }
    for g in column("gamma") {
        assert!(g > 0.0 && g <= 0.9999, "gamma = {g} outside (0, 0.9999]");
    }
    // Log-uniform vs uniform: half of the log-uniform α ∈ [1e-3, 10] lie below 0.1 (1% of
    // a uniform one would); γ is uniform, so half lie below 0.5. With 200 seeded draws the
    // fraction's standard deviation is 0.035: [0.3, 0.7] is over five of them.
    let below = |v: &[f64], x: f64| v.iter().filter(|&&a| a < x).count() as f64 / v.len() as f64;
    let a = below(&column("alpha"), 0.1);
    assert!(
        (0.3..=0.7).contains(&a),
        "{a} of α below 0.1: not log-uniform"
    );
    let l = below(&column("l2"), 1e-4);
    assert!(
        (0.3..=0.7).contains(&l),
        "{l} of l2 below 1e-4: not log-uniform"
    );
    let g = below(&column("gamma"), 0.5);
    assert!((0.3..=0.7).contains(&g), "{g} of γ below 0.5: not uniform");
}

#[test]
fn search_leaves_untuned_blocks_at_their_config_values() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.l2", json!(1e-4));
    set(&mut c, "model.init_scale", json!(0.7));
    set(&mut c, "outer.tune", json!(["gamma"]));
    let cfg = dir.config("c.json", &c);
    let t = check_search_csv(
        &stdout_of(["search", p(&cfg), "--quiet", "--trials", "4"]),
        5,
    );
    for row in &t.rows {
        for (h, v) in [("alpha", 0.5), ("l2", 1e-4), ("init_scale", 0.7)] {
            assert!(same_f64(t.num(row, h), v), "{h} moved: {row:?}");
        }
    }
}

#[test]
fn search_draws_a_shaped_block_as_one_scalar() {
    let dir = Scratch::new();
    let mut c = small_config();
    // A poor, uneven start (tiny per-array α schedule), so some trial beats it.
    set(
        &mut c,
        "inner.alpha",
        json!({"per": "array", "knots": 2,
               "values": [[1e-4, 2e-4, 3e-4, 4e-4], [1e-4, 1e-4, 1e-4, 1e-4]]}),
    );
    set(&mut c, "outer.tune", json!(["alpha"]));
    let cfg = dir.config("c.json", &c);
    let best_path = dir.path("best.json");
    let t = check_search_csv(
        &stdout_of([
            "search",
            p(&cfg),
            "--quiet",
            "--trials",
            "8",
            "--best",
            p(&best_path),
        ]),
        9,
    );
    // Iteration 0 shows the mean of the uneven start: (1+2+3+4+4·1)·1e-4 / 8 = 1.75e-4
    // (summation rounding only: 1e-12 relative).
    let a0 = t.num(&t.rows[0], "alpha");
    assert!(
        (a0 - 1.75e-4).abs() <= 1e-12 * 1.75e-4,
        "iteration 0 alpha {a0}"
    );

    let best_i = t
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| t.cell(r, "status") == "ok")
        .min_by(|a, b| t.num(a.1, "val_loss").total_cmp(&t.num(b.1, "val_loss")))
        .map(|(i, _)| i)
        .expect("an ok row");
    assert!(best_i > 0, "some trial should beat α ≈ 1e-4");
    let best: Value =
        serde_json::from_str(&std::fs::read_to_string(&best_path).expect("--best written"))
            .expect("--best is JSON");
    let alpha = &best["inner"]["alpha"];
    assert_eq!(alpha["per"], "array", "{alpha}");
    assert_eq!(alpha["knots"], 2, "{alpha}");
    let values: Vec<f64> = alpha["values"]
        .as_array()
        .expect("[knot][group]")
        .iter()
        .flat_map(|k| k.as_array().expect("[group]").clone())
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(values.len(), 8);
    assert!(
        values.iter().all(|v| same_f64(*v, values[0])),
        "one scalar per trial: {values:?}"
    );
    // The CSV shows their mean: 8 equal values, so equal up to summation rounding.
    let shown = t.num(&t.rows[best_i], "alpha");
    assert!(
        (shown - values[0]).abs() <= 1e-14 * shown,
        "best row alpha {shown} vs --best {}",
        values[0]
    );
}

#[test]
fn search_stops_when_the_time_budget_is_used() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let assert = revgrad()
        .args([
            "search",
            p(&cfg),
            "--quiet",
            "--trials",
            "1000",
            "--seconds",
            "0.05",
        ])
        .assert()
        .success();
    let output = assert.get_output();
    let t = Table::parse(&output.stdout);
    let n = t.rows.len();
    // 1000 trials of 50 steps take seconds; 0.05 s leaves room for a few dozen at most.
    assert!((1..1001).contains(&n), "{n} rows");
    check_search_csv(&output.stdout, n);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("time budget"), "summary: {stderr}");
    // No trial starts after the budget: every row but the last one finished before the
    // check that let the next trial start, so before 0.05 s.
    for row in &t.rows[..n - 1] {
        let s = t.num(row, "seconds");
        assert!(s < 0.05, "a trial ended at {s} s, yet another one started");
    }
}

/// relu without momentum (γ = 1e-4) diverges in float64 for α near the top of the search
/// range: the two layers feed each other's gradients, so the weights grow exponentially and
/// the training loss reaches inf within 400 steps for α ≳ 5 (measured: α 3.97 still ends
/// finite, 6.10 and above do not). γ and the other blocks stay fixed.
fn diverging_search_config() -> Value {
    let mut c = small_config();
    set(&mut c, "model.activation", json!("relu"));
    set(&mut c, "inner.steps", json!(400));
    set(&mut c, "inner.alpha", json!(0.05));
    set(&mut c, "inner.gamma", json!(1e-4));
    set(&mut c, "outer.tune", json!(["alpha"]));
    c
}

#[test]
fn search_logs_diverging_trials_as_rejected_and_goes_on() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &diverging_search_config());
    let trials = 30;
    let assert = revgrad()
        .args([
            "search",
            p(&cfg),
            "--quiet",
            "--trials",
            &trials.to_string(),
        ])
        .assert()
        .success();
    let output = assert.get_output();
    let t = check_search_csv(&output.stdout, trials + 1);
    let statuses: Vec<&str> = t.rows.iter().map(|r| t.cell(r, "status")).collect();
    assert!(statuses.contains(&"rejected"), "{statuses:?}");
    assert!(
        statuses[1..].contains(&"ok"),
        "some trial should train: {statuses:?}"
    );
    // The rejections are the large-α trials, and the search went on after them.
    for row in t.rows.iter().filter(|r| t.cell(r, "status") == "rejected") {
        assert!(t.num(row, "alpha") > 1.0, "rejected at small α: {row:?}");
    }
    let first_rejected = statuses.iter().position(|&s| s == "rejected").expect("one");
    assert!(
        statuses[first_rejected + 1..].contains(&"ok"),
        "trials go on after a rejection: {statuses:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("rejected"), "summary: {stderr}");
    // A search has no outer learning rate to halve (that line is tune's).
    assert!(
        !stderr.contains("learning rate"),
        "search summary talks of tune's learning rate: {stderr}"
    );
}

#[test]
fn search_rejects_bad_trials_and_seconds_naming_the_flag() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let c = p(&cfg);
    for (flag, value) in [
        ("--trials", "0"),
        ("--trials", "abc"),
        ("--trials", "-3"),
        ("--seconds", "0"),
        ("--seconds", "-1"),
        ("--seconds", "nan"),
        ("--seconds", "inf"),
        ("--seconds", "abc"),
    ] {
        let stderr = expect_exit_2(&["search", c, "--quiet", flag, value], &[flag]);
        assert!(!stderr.contains("panicked"), "{flag} {value}: {stderr}");
    }
}

#[test]
fn search_best_config_loads_and_train_reproduces_the_best_row() {
    let dir = Scratch::new();
    let mut c = small_config();
    // A poor start, so a trial is the best row.
    set(&mut c, "inner.alpha", json!(1e-3));
    let cfg = dir.config("c.json", &c);
    let best_path = dir.path("best.json");
    let t = check_search_csv(
        &stdout_of([
            "search",
            p(&cfg),
            "--quiet",
            "--trials",
            "8",
            "--best",
            p(&best_path),
        ]),
        9,
    );
    let (i, best_loss) = t
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| t.cell(r, "status") == "ok")
        .map(|(i, r)| (i, t.num(r, "val_loss")))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("an ok row");
    assert!(i > 0, "some trial should beat α = 1e-3");
    let best: Value =
        serde_json::from_str(&std::fs::read_to_string(&best_path).expect("--best written"))
            .expect("--best is JSON");
    for (h, v) in [
        ("alpha", &best["inner"]["alpha"]),
        ("gamma", &best["inner"]["gamma"]),
    ] {
        let v = v.as_f64().expect("scalar blocks stay numbers");
        assert!(same_f64(v, t.num(&t.rows[i], h)), "{h}: --best {v}");
    }
    // Search trains in float64, like `train`: the best row is reproduced bit for bit.
    let tr = json_of(["train", p(&best_path), "--json"]);
    let v = tr["val_loss"].as_f64().expect("val_loss");
    assert!(
        same_f64(v, best_loss),
        "train on --best: {v}, best row {best_loss}"
    );
}

/// A starting point that does not train ends `search` as it ends `tune`: exit 1 with the
/// step and a hint, the CSV header and no row, and no `--best` file (there is no point to
/// compare the trials with). The trials themselves would all diverge too (α stays at 20).
#[test]
fn search_and_tune_both_exit_1_when_the_starting_point_diverges() {
    let dir = Scratch::new();
    let mut c = diverging_search_config();
    set(&mut c, "inner.alpha", json!(20.0));
    set(&mut c, "outer.tune", json!(["gamma"]));
    let cfg = dir.config("c.json", &c);
    for command in ["search", "tune"] {
        let best = dir.path(&format!("{command}-best.json"));
        let out = revgrad()
            .args([command, p(&cfg), "--quiet", "--best", p(&best)])
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: step "), "{command}: {stderr}");
        assert!(
            stderr.contains("inner.alpha (now 20)"),
            "{command}: {stderr}"
        );
        assert_header(&out.stdout, TUNE_HEADER);
        assert_eq!(Table::parse(&out.stdout).rows.len(), 0, "{command}: no row");
        assert!(
            !best.exists(),
            "{command}: no --best without a trained point"
        );
    }
}
