//! `revgrad verify-reversal`: SPEC §4 headers, exact momentum and exact Adam reverse bit for
//! bit, float momentum does not, Nesterov does not in either arithmetic, `-o FILE`.

use std::collections::BTreeSet;

use crate::common::{
    Scratch, Table, VERIFY_HEADER, VERIFY_STEP_HEADER, assert_header, p, revgrad, same_f64,
    small_config, stdout_of,
};

const GRID: [&str; 6] = ["--steps", "200", "--alphas", "0.1,1", "--gammas", "0.5,0.9"];

#[test]
fn verify_reversal_exact_momentum_is_bitwise_and_float_drifts() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let mut args = vec!["verify-reversal", p(&cfg)];
    args.extend(GRID);
    let out = stdout_of(&args);
    assert_header(&out, VERIFY_HEADER);
    let t = Table::parse(&out);
    // Per α: sgd float, sgd exact, and momentum, nesterov, adam, rmsprop float/exact per γ.
    assert_eq!(
        t.rows.len(),
        2 * (2 + 8 * 2),
        "rows:\n{}",
        String::from_utf8_lossy(&out)
    );

    let mut seen = BTreeSet::new();
    let mut float_half_drifts = false;
    let mut nesterov_drifts = [false; 2];
    for row in &t.rows {
        let optimizer = t.cell(row, "optimizer");
        let arithmetic = t.cell(row, "arithmetic");
        assert!(
            ["sgd", "momentum", "nesterov", "adam", "rmsprop"].contains(&optimizer),
            "{row:?}"
        );
        assert!(["float", "exact"].contains(&arithmetic), "{row:?}");
        let alpha = t.num(row, "alpha");
        assert!(same_f64(alpha, 0.1) || same_f64(alpha, 1.0), "{row:?}");
        assert_eq!(t.cell(row, "steps"), "200");
        let buffer: u64 = t.cell(row, "info_buffer_bytes").parse().expect("integer");
        let store: u64 = t.cell(row, "store_all_bytes").parse().expect("integer");
        let theta0 = t.num(row, "theta0_error");
        let trace = t.num(row, "max_trace_error");
        assert!(!t.num(row, "info_bits_per_param_step").is_nan());
        match optimizer {
            "sgd" => assert_eq!(t.cell(row, "gamma"), "", "plain SGD has no γ: {row:?}"),
            _ => {
                let gamma = t.num(row, "gamma");
                assert!(gamma > 0.0 && gamma < 1.0, "{row:?}");
                seen.insert((arithmetic.to_string(), (gamma * 10.0).round() as i64));
            }
        }
        if ["adam", "rmsprop"].contains(&optimizer) && arithmetic == "exact" {
            assert!(
                same_f64(theta0, 0.0),
                "exact {optimizer} theta0_error: {row:?}"
            );
            assert!(
                same_f64(trace, 0.0),
                "exact {optimizer} max_trace_error: {row:?}"
            );
            assert!(buffer > 0 && buffer < store, "memory figures: {row:?}");
        }
        if optimizer == "nesterov" {
            // No explicit inverse: the reversal strays in float and in fixed point alike.
            nesterov_drifts[usize::from(arithmetic == "exact")] |= theta0 > 1e-9;
        }
        if optimizer == "momentum" && arithmetic == "exact" {
            assert!(
                same_f64(theta0, 0.0),
                "exact momentum theta0_error: {row:?}"
            );
            assert!(
                same_f64(trace, 0.0),
                "exact momentum max_trace_error: {row:?}"
            );
            assert!(buffer > 0 && buffer < store, "memory figures: {row:?}");
        }
        if optimizer == "momentum" && arithmetic == "float" && t.num(row, "gamma") < 0.75 {
            // Undoing γ = 0.5 in float doubles the rounding error every step.
            assert!(theta0 > 0.0, "float momentum γ 0.5 should drift: {row:?}");
            float_half_drifts = true;
        }
    }
    assert!(float_half_drifts);
    assert_eq!(nesterov_drifts, [true, true], "Nesterov reversal drift");
    assert_eq!(seen.len(), 4, "float and exact rows for both γ: {seen:?}");
}

#[test]
fn verify_reversal_per_step_header_and_rows() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = stdout_of([
        "verify-reversal",
        p(&cfg),
        "--steps",
        "10",
        "--alphas",
        "0.1",
        "--gammas",
        "0.5",
        "--per-step",
    ]);
    assert_header(&out, VERIFY_STEP_HEADER);
    let t = Table::parse(&out);
    assert!(!t.rows.is_empty());
    let mut groups = BTreeSet::new();
    for row in &t.rows {
        let step: usize = t.cell(row, "step").parse().expect("integer step");
        assert!(step < 10 + 1, "{row:?}");
        let optimizer = t.cell(row, "optimizer");
        let arithmetic = t.cell(row, "arithmetic");
        assert!(same_f64(t.num(row, "alpha"), 0.1));
        let err = t.num(row, "trace_error");
        assert!(err >= 0.0, "{row:?}");
        if ["momentum", "adam", "rmsprop"].contains(&optimizer) && arithmetic == "exact" {
            assert!(same_f64(err, 0.0), "exact momentum trace_error: {row:?}");
        }
        groups.insert((optimizer.to_string(), arithmetic.to_string()));
    }
    assert_eq!(
        groups.len(),
        10,
        "sgd/momentum/nesterov/adam/rmsprop × float/exact: {groups:?}"
    );
}

#[test]
fn verify_reversal_output_file_leaves_stdout_empty() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let csv = dir.path("rev.csv");
    let out = stdout_of([
        "verify-reversal",
        p(&cfg),
        "--steps",
        "20",
        "--alphas",
        "0.1",
        "--gammas",
        "0.9",
        "-o",
        p(&csv),
    ]);
    assert!(out.is_empty(), "stdout: {}", String::from_utf8_lossy(&out));
    let written = std::fs::read(&csv).expect("-o wrote the file");
    assert_header(&written, VERIFY_HEADER);
    assert_eq!(Table::parse(&written).rows.len(), 10);
}

#[test]
fn verify_reversal_rejects_a_negative_alpha() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let assert = revgrad()
        .args(["verify-reversal", p(&cfg), "--alphas=0.1,-1"])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    crate::common::assert_user_error_text(stderr.as_bytes());
    assert!(
        stderr.contains("--alphas") && stderr.contains("-1"),
        "{stderr}"
    );
    assert!(assert.get_output().stdout.is_empty());
}

#[test]
fn verify_reversal_rejects_a_gamma_of_one_or_more() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let assert = revgrad()
        .args(["verify-reversal", p(&cfg), "--gammas", "0.5,1.5"])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    crate::common::assert_user_error_text(stderr.as_bytes());
    assert!(
        stderr.contains("--gammas") && stderr.contains("1.5"),
        "{stderr}"
    );
}

#[test]
fn verify_reversal_into_a_closed_pipe_exits_0_without_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    // The default grid: 4 α × (2 + 3·2) runs of 1000 steps, a second or so in all.
    let mut child = Command::new(crate::common::revgrad_path())
        .args(["verify-reversal", p(&cfg)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn revgrad");
    {
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(lines.next().expect("header").expect("read"), VERIFY_HEADER);
        assert!(
            lines
                .next()
                .expect("a row")
                .expect("read")
                .starts_with("sgd,")
        );
    }
    let status = crate::common::wait_with_deadline(&mut child, std::time::Duration::from_secs(60));
    let stderr = crate::common::read_stderr(&mut child);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn verify_reversal_writes_the_header_even_when_every_run_diverges() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let assert = revgrad()
        .args([
            "verify-reversal",
            p(&cfg),
            "--steps",
            "10",
            "--alphas",
            "1e9",
            "--gammas",
            "0.9",
        ])
        .assert()
        .success();
    let out = assert.get_output();
    assert_header(&out.stdout, VERIFY_HEADER);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("row skipped"), "{stderr}");
    // Plain-SGD warnings do not quote a momentum that does not apply to them.
    for line in stderr.lines().filter(|l| l.contains("warning: sgd")) {
        assert!(!line.contains("gamma"), "{line}");
    }
}
