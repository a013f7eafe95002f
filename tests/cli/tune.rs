//! `revgrad tune`: CSV structure (SPEC §4), flags, `--best` round trip, rejected steps,
//! divergence at the start, closed pipes and Ctrl-C.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use predicates::prelude::*;
use serde_json::{Value, json};

use crate::common::{
    Scratch, TUNE_HEADER, Table, assert_header, assert_user_error_text, first_rejecting_tune,
    json_of, p, read_stderr, repo, revgrad, revgrad_path, same_f64, set, small_config, stdout_of,
    wait_with_deadline,
};

/// Loss and gradient columns: numbers on `ok` rows, empty on `rejected` rows.
const RESULT_COLUMNS: [&str; 7] = [
    "train_loss",
    "val_loss",
    "val_accuracy",
    "d_alpha",
    "d_gamma",
    "d_l2",
    "d_init_scale",
];

/// Structural checks shared by every tune CSV: header, iterations 0, 1, … in order,
/// status `ok`/`rejected`, numbers where numbers belong, empty cells on rejected rows.
/// Skips `seconds` (wall time). Returns the parsed table.
fn check_tune_csv(out: &[u8], expected_rows: usize) -> Table {
    assert_header(out, TUNE_HEADER);
    let text = String::from_utf8_lossy(out);
    assert!(
        !text.to_ascii_lowercase().contains("nan") && !text.contains("inf"),
        "no NaN/inf cells:\n{text}"
    );
    let t = Table::parse(out);
    assert_eq!(t.rows.len(), expected_rows, "rows:\n{text}");
    for (i, row) in t.rows.iter().enumerate() {
        assert_eq!(t.cell(row, "iteration"), i.to_string(), "row {i}: {row:?}");
        let status = t.cell(row, "status");
        assert!(status == "ok" || status == "rejected", "row {i}: {row:?}");
        for h in ["alpha", "gamma", "l2", "init_scale"] {
            let v = t.num(row, h);
            assert!(v.is_finite() && v >= 0.0, "row {i} {h}: {row:?}");
        }
        let gamma = t.num(row, "gamma");
        assert!(gamma > 0.0 && gamma < 1.0, "row {i}: {row:?}");
        for c in RESULT_COLUMNS {
            if status == "ok" {
                assert!(t.num(row, c).is_finite(), "row {i} {c}: {row:?}");
            } else {
                assert_eq!(t.cell(row, c), "", "rejected row {i} {c}: {row:?}");
            }
        }
    }
    assert_eq!(
        t.cell(&t.rows[0], "status"),
        "ok",
        "iteration 0 is the start"
    );
    t
}

/// Lowest `val_loss` over `ok` rows, with its row index.
fn best_row(t: &Table) -> (usize, f64) {
    t.rows
        .iter()
        .enumerate()
        .filter(|(_, r)| t.cell(r, "status") == "ok")
        .map(|(i, r)| (i, t.num(r, "val_loss")))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("at least iteration 0")
}

#[test]
fn tune_csv_has_spec_header_one_row_per_iteration_and_improves() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = stdout_of(["tune", p(&cfg), "--quiet"]);
    let t = check_tune_csv(&out, 4 + 1);
    let start = t.num(&t.rows[0], "val_loss");
    let (_, best) = best_row(&t);
    assert!(
        best < start,
        "best val_loss {best} not below the start's {start}"
    );
}

#[test]
fn tune_without_quiet_keeps_stdout_pure_csv_and_summarises_on_stderr() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let assert = revgrad().args(["tune", p(&cfg)]).assert().success();
    let output = assert.get_output();
    check_tune_csv(&output.stdout, 5);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("best"), "summary on stderr: {stderr}");
}

#[test]
fn tune_outer_steps_flag_overrides_config() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = stdout_of(["tune", p(&cfg), "--quiet", "--outer-steps", "2"]);
    check_tune_csv(&out, 3);
}

#[test]
fn tune_output_file_gets_the_csv_and_stdout_stays_empty() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let csv = dir.path("log.csv");
    let out = stdout_of(["tune", p(&cfg), "--quiet", "-o", p(&csv)]);
    assert!(out.is_empty(), "stdout: {}", String::from_utf8_lossy(&out));
    check_tune_csv(&std::fs::read(&csv).expect("-o wrote the file"), 5);
}

#[test]
fn tune_output_to_a_missing_folder_fails_at_once() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let bad = dir.path("no/such/folder/log.csv");
    let assert = revgrad()
        .args(["tune", p(&cfg), "--quiet", "-o", p(&bad)])
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains("log.csv"));
    assert_user_error_text(&assert.get_output().stderr);
}

#[test]
fn tune_best_config_loads_and_holds_the_best_row() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let best_path = dir.path("best.json");
    let out = stdout_of(["tune", p(&cfg), "--quiet", "--best", p(&best_path)]);
    let t = check_tune_csv(&out, 5);
    let (i, best_loss) = best_row(&t);

    let best: Value =
        serde_json::from_str(&std::fs::read_to_string(&best_path).expect("--best wrote it"))
            .expect("--best is JSON");
    let inner = &best["inner"];
    for (key, col) in [("alpha", "alpha"), ("gamma", "gamma")] {
        let v = inner[key].as_f64().expect("number");
        let row = t.num(&t.rows[i], col);
        assert!(same_f64(v, row), "inner.{key} {v} vs best row {row}");
    }
    assert!(same_f64(
        best["model"]["init_scale"].as_f64().expect("init_scale"),
        t.num(&t.rows[i], "init_scale")
    ));

    stdout_of(["train", p(&best_path)]);
    let h = json_of(["hypergrad", p(&best_path), "--json"]);
    // Same data, seed and hyperparameters: the best row is reproduced.
    let v = h["val_loss"].as_f64().expect("val_loss");
    assert!(
        (v - best_loss).abs() <= 1e-12 * best_loss.abs(),
        "hypergrad on --best gives {v}, best row had {best_loss}"
    );
}

/// Configs near the fixed-point edge (α around 400; with γ ≥ 0.95, or α ≥ 600, a weight
/// overflows within 50 steps) tuning γ or α at outer learning rate 0.5: where the first
/// Adam move (±0.5 in warped coordinates) goes upwards it overflows and is rejected. Which
/// of them does is chaotic (see [`first_rejecting_tune`]).
pub fn edge_configs() -> Vec<Value> {
    let mut out = Vec::new();
    for alpha in [400.0, 450.0, 350.0, 500.0, 300.0, 420.0] {
        for tuned in ["gamma", "alpha"] {
            let mut c = small_config();
            set(&mut c, "inner.alpha", json!(alpha));
            set(&mut c, "outer.learning_rate", json!(0.5));
            set(&mut c, "outer.tune", json!([tuned]));
            out.push(c);
        }
    }
    out
}

#[test]
fn tune_rejects_diverging_steps_and_goes_on() {
    let dir = Scratch::new();
    let (cfg, _) = first_rejecting_tune(&dir, &edge_configs(), &[]);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).expect("config")).expect("JSON");
    let tuned = config["outer"]["tune"][0]
        .as_str()
        .expect("tuned name")
        .to_string();
    let tuned = tuned.as_str();
    let assert = revgrad()
        .args(["tune", p(&cfg), "--quiet"])
        .assert()
        .success();
    let output = assert.get_output();
    let t = check_tune_csv(&output.stdout, 5);
    let statuses: Vec<&str> = t.rows.iter().map(|r| t.cell(r, "status")).collect();
    assert!(statuses.contains(&"rejected"), "{statuses:?}");
    assert!(
        statuses[1..].contains(&"ok"),
        "the search continues after a rejection: {statuses:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("rejected"), "{stderr}");

    // After a rejection the step is retried from the last good point with half the outer
    // learning rate: with the same Adam state the move in warped coordinates (logit γ or
    // log α) halves.
    let k = statuses
        .iter()
        .position(|&s| s == "rejected")
        .expect("a rejected row");
    assert!(k + 1 < statuses.len());
    let good = (0..k)
        .rev()
        .find(|&j| statuses[j] == "ok")
        .expect("a good row before");
    let warped = |j: usize| {
        let h = t.num(&t.rows[j], tuned);
        if tuned == "gamma" {
            (h / (1.0 - h)).ln()
        } else {
            h.ln()
        }
    };
    let (rejected_move, retry_move) = (warped(k) - warped(good), warped(k + 1) - warped(good));
    assert!(
        (retry_move - 0.5 * rejected_move).abs() < 1e-9,
        "retry moved {retry_move} in warped {tuned}, rejected step moved {rejected_move}"
    );
}

#[test]
fn tune_start_that_diverges_exits_1_naming_step_and_alpha() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "inner.alpha", json!(5000.0));
    let cfg = dir.config("diverge.json", &c);
    let assert = revgrad()
        .args(["tune", p(&cfg), "--quiet"])
        .assert()
        .failure()
        .code(1)
        .stderr(predicate::str::contains("step"))
        .stderr(predicate::str::contains("alpha"));
    assert_user_error_text(&assert.get_output().stderr);
    let out = String::from_utf8_lossy(&assert.get_output().stdout);
    assert!(
        out.lines().count() <= 1,
        "no data rows for a start that fails: {out}"
    );
}

#[test]
fn tune_into_a_closed_pipe_exits_0_without_panic() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let mut child = StdCommand::new(revgrad_path())
        .args(["tune", p(&cfg), "--quiet", "--outer-steps", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn revgrad");
    {
        // `revgrad tune c.json | head -2`
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(lines.next().expect("header").expect("read"), TUNE_HEADER);
        assert!(
            lines
                .next()
                .expect("a row")
                .expect("read")
                .starts_with("0,")
        );
    } // the read end closes here; the next row written hits EPIPE
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let stderr = read_stderr(&mut child);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[cfg(unix)]
#[test]
fn tune_interrupted_leaves_a_valid_csv_and_exits_130() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let mut child = StdCommand::new(revgrad_path())
        .args(["tune", p(&cfg), "--quiet", "--outer-steps", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn revgrad");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut out = String::new();
    for _ in 0..2 {
        reader.read_line(&mut out).expect("header and first row");
    }
    let killed = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    reader.read_to_string(&mut out).expect("rest of stdout");
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let stderr = read_stderr(&mut child);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(out.ends_with('\n'), "last row complete: {out:?}");
    let rows = out.lines().count() - 1;
    assert!(rows < 100_001, "stopped early");
    check_tune_csv(out.as_bytes(), rows);
}

/// SPEC §6: the README's main job visibly improves the validation loss (a few steps here).
#[test]
fn tune_shipped_digits_config_improves_validation_loss() {
    let out = stdout_of([
        "tune",
        p(&repo("configs/digits.json")),
        "--quiet",
        "--outer-steps",
        "3",
    ]);
    let t = check_tune_csv(&out, 4);
    let start = t.num(&t.rows[0], "val_loss");
    let (_, best) = best_row(&t);
    assert!(best < start, "best {best} vs start {start}");
}

/// `--best` written in another folder still finds the data and a relative `init_file`
/// (its paths are absolute).
#[test]
fn tune_best_config_works_from_another_folder_with_a_relative_init_file() {
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("exp")).expect("mkdir");
    std::fs::create_dir(dir.path("out")).expect("mkdir");
    let base = dir.config("exp/base.json", &small_config());
    stdout_of(["train", p(&base), "--save", p(&dir.path("exp/start.npz"))]);
    let mut c = small_config();
    set(&mut c, "model.init_file", json!("start.npz"));
    set(&mut c, "outer.steps", json!(2));
    let cfg = dir.config("exp/c.json", &c);
    let best = dir.path("out/best.json");
    let out = stdout_of(["tune", p(&cfg), "--quiet", "--best", p(&best)]);
    check_tune_csv(&out, 3);
    // Run from a third folder, with the config given by a relative-looking path.
    revgrad()
        .current_dir(dir.path("out"))
        .args(["hypergrad", "best.json", "--json"])
        .assert()
        .success();
}

/// Chaotic inner dynamics (large α over thousands of steps): hypergradients of 1e250 and
/// more. Found in review: they used to stall Adam (g² = inf) or, when not finite, end the
/// run with an unrelated message.
fn chaotic_config(steps: u64) -> Value {
    let mut c = small_config();
    set(&mut c, "model.hidden", json!([20]));
    set(&mut c, "inner.steps", json!(steps));
    set(&mut c, "inner.batch_size", json!(100));
    set(&mut c, "inner.alpha", json!(100.0));
    set(&mut c, "outer.steps", json!(3));
    c
}

#[test]
fn tune_chaos_guard_keeps_moving_on_huge_hypergradients() {
    let dir = Scratch::new();
    let cfg = dir.config("chaos.json", &chaotic_config(3000));
    let assert = revgrad()
        .args(["tune", p(&cfg), "--quiet"])
        .assert()
        .success();
    let output = assert.get_output();
    let t = check_tune_csv(&output.stdout, 4);
    let d_alpha = t.num(&t.rows[0], "d_alpha").abs();
    assert!(
        d_alpha > 1e100,
        "this config should be chaotic, d_alpha = {d_alpha:e}"
    );
    let (a0, a1) = (t.num(&t.rows[0], "alpha"), t.num(&t.rows[1], "alpha"));
    assert!((a1 / a0).ln().abs() > 0.01, "α stalled: {a0} then {a1}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chaos guard"), "{stderr}");
}

#[test]
fn non_finite_hypergradient_at_the_start_exits_1_with_a_hint() {
    let dir = Scratch::new();
    let cfg = dir.config("chaos.json", &chaotic_config(4600));
    for cmd in ["tune", "hypergrad"] {
        let assert = revgrad()
            .args(
                [cmd, p(&cfg), "--quiet"]
                    .iter()
                    .take(if cmd == "tune" { 3 } else { 2 }),
            )
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(
            stderr.contains("hypergradient is not finite"),
            "{cmd}: {stderr}"
        );
        assert!(stderr.contains("inner.alpha"), "{cmd}: {stderr}");
        assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
    }
}
