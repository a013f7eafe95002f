//! Edge cases end to end: outputs that would be lost or interleaved while the run exits 0,
//! config text that serde would silently accept, and numbers in cells and messages that
//! misreport what happened.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::common::{
    Scratch, TUNE_HEADER, Table, assert_header, assert_user_error_text, digits_csv, p,
    revgrad_path, set, small_config,
};

/// Runs `revgrad ARGS` with stdout written to `stdout` (a file: `revgrad … > FILE`, or
/// `>> FILE` with `append`).
fn run_into(args: &[&str], stdout: &Path, append: bool) -> Output {
    let file = File::options()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(stdout)
        .expect("open the stdout file");
    Command::new(revgrad_path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .expect("spawn revgrad")
}

/// Asserts exit 2 with every part in stderr.
fn assert_refused(out: &Output, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_user_error_text(&out.stderr);
    for part in parts {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------
// stdout is an output: a file path naming stdout's file is refused when the result goes to
// stdout.

#[test]
fn an_output_naming_the_file_stdout_writes_is_refused() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let mut synthetic = small_config();
    set(
        &mut synthetic,
        "data.synthetic",
        json!({ "per_class": 1, "init": "real" }),
    );
    set(&mut synthetic, "inner.batch_size", json!(10));
    set(&mut synthetic, "outer.tune", json!(["input"]));
    let synthetic = dir.config("synthetic.json", &synthetic);
    let f = dir.path("f");
    let f_name = p(&f).to_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["tune", p(&cfg), "--hypers-out", "/dev/stdout"],
            "--hypers-out",
        ),
        (vec!["tune", p(&cfg), "--best", "/dev/stdout"], "--best"),
        // The same file by its own name.
        (vec!["tune", p(&cfg), "--best", &f_name], "--best"),
        (vec!["search", p(&cfg), "--best", "/dev/stdout"], "--best"),
        (vec!["train", p(&cfg), "--save", "/dev/stdout"], "--save"),
        (
            vec!["tune", p(&synthetic), "--inputs-out", "/dev/stdout"],
            "--inputs-out",
        ),
        (
            vec!["tune", p(&synthetic), "--images-out", "/dev/stdout"],
            "--images-out",
        ),
    ];
    for (mut args, flag) in cases {
        args.push("--quiet");
        if args[0] == "train" {
            args.pop();
        }
        let out = run_into(&args, &f, false);
        assert_refused(&out, &[flag, "standard output"]);
        assert_eq!(
            std::fs::read(&f).expect("read").len(),
            0,
            "{args:?}: nothing written before the refusal"
        );
    }
    // With -o the CSV has its own file, and stdout is free for --best.
    let csv = dir.path("t.csv");
    let out = run_into(
        &[
            "tune",
            p(&cfg),
            "--quiet",
            "--outer-steps",
            "1",
            "-o",
            p(&csv),
            "--best",
            "/dev/stdout",
        ],
        &f,
        false,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_header(&std::fs::read(&csv).expect("csv"), TUNE_HEADER);
    let best: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("--best is JSON");
    assert!(best["inner"]["alpha"].is_number(), "{best}");
}

#[test]
fn stdout_appended_to_an_input_is_refused() {
    let dir = Scratch::new();
    let data = dir.path("d.csv");
    std::fs::write(&data, std::fs::read(digits_csv()).expect("digits")).expect("copy");
    let mut c = small_config();
    set(&mut c, "data.train", json!(p(&data)));
    let cfg = dir.config("c.json", &c);
    let before = std::fs::read(&data).expect("read");
    for command in ["train", "hypergrad", "verify-reversal"] {
        let out = run_into(&[command, p(&cfg)], &data, true);
        assert_refused(&out, &["standard output", "data.train file"]);
    }
    let out = run_into(&["tune", p(&cfg), "--quiet"], &cfg, true);
    assert_refused(&out, &["standard output", "config file"]);
    assert_eq!(
        std::fs::read(&data).expect("read"),
        before,
        "data untouched"
    );
    // A -o file leaves stdout unused: appending it to the config is harmless.
    let csv = dir.path("t.csv");
    let out = run_into(
        &[
            "tune",
            p(&cfg),
            "--quiet",
            "--outer-steps",
            "1",
            "-o",
            p(&csv),
        ],
        &cfg,
        true,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        Table::parse(&std::fs::read(&csv).expect("csv")).rows.len(),
        2
    );
}

// ---------------------------------------------------------------------------------------
// Config text serde would accept silently.

#[test]
fn a_key_given_twice_anywhere_in_the_config_is_refused() {
    let dir = Scratch::new();
    let text = serde_json::to_string_pretty(&small_config()).expect("json");
    for (from, to, path) in [
        (
            r#""alpha": 0.5"#,
            r#""alpha": {"init": 0.1, "init": 0.5}"#,
            "inner.alpha.init",
        ),
        (
            r#""gamma": 0.9"#,
            r#""gamma": {"per": "layer", "init": 0.9, "per": "all"}"#,
            "inner.gamma.per",
        ),
        (
            r#""steps": 50"#,
            r#""steps": 50, "steps": 5"#,
            "inner.steps",
        ),
        (r#""seed": 0"#, r#""seed": 0, "seed": 1"#, "seed"),
    ] {
        assert!(text.contains(from), "{from} in {text}");
        let cfg = dir.path("dup.json");
        std::fs::write(&cfg, text.replacen(from, to, 1)).expect("write");
        for command in ["train", "tune"] {
            let out = run_into(&[command, p(&cfg)], &dir.path("out"), false);
            assert_refused(&out, &["dup.json: ", &format!("{path} is given twice")]);
        }
    }
}

#[test]
fn a_memory_limit_variable_that_is_not_utf8_is_refused_like_any_other_non_size() {
    use std::os::unix::ffi::OsStrExt;
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    for value in [&b"4G\xff"[..], b"\xff", b"lots"] {
        let out = Command::new(revgrad_path())
            .args(["train", p(&cfg)])
            .env("REVGRAD_MEMORY_LIMIT", std::ffi::OsStr::from_bytes(value))
            .output()
            .expect("spawn revgrad");
        assert_refused(&out, &["REVGRAD_MEMORY_LIMIT must be a size"]);
        assert!(out.stdout.is_empty(), "no result printed");
    }
    // --memory-limit takes precedence over the variable, as it does for ASCII garbage.
    let out = Command::new(revgrad_path())
        .args(["train", p(&cfg), "--memory-limit", "4G"])
        .env("REVGRAD_MEMORY_LIMIT", std::ffi::OsStr::from_bytes(b"\xff"))
        .output()
        .expect("spawn revgrad");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// Numbers in cells and messages.

/// A block whose entries are all equal shows that value in the CSV's mean cell, bit for
/// bit: 6 entries of γ = 0.9999 (the largest allowed) and 592 per-weight l2 entries of 1e-4
/// used to sum to 0.9999000000000001 and 1.0000000000000113e-4.
#[test]
fn the_csv_mean_of_equal_entries_is_that_value() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(
        &mut c,
        "inner.gamma",
        json!({"per": "layer", "knots": 3, "init": 0.9999}),
    );
    set(&mut c, "inner.l2", json!({"per": "weight", "init": 1e-4}));
    set(&mut c, "outer.tune", json!(["alpha"]));
    let cfg = dir.config("c.json", &c);
    for command in ["tune", "search"] {
        let out = run_into(
            &[command, p(&cfg), "--quiet", "-o", p(&dir.path("t.csv"))],
            &dir.path("out"),
            false,
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let t = Table::parse(&std::fs::read(dir.path("t.csv")).expect("csv"));
        for row in &t.rows {
            assert_eq!(t.cell(row, "gamma"), "0.9999", "{command}: {row:?}");
            assert_eq!(t.cell(row, "l2"), "0.0001", "{command}: {row:?}");
        }
    }
}

/// A divergence's hint names the block entry that diverged: W1's scheduled α (4e4 at the
/// last knot, about 1.4e4 at step 45 where the weights overflow), an l2 entry of 1e300, or
/// Adam's β₂ of 1e-4, not the first group's α of 0.1.
#[test]
fn a_divergence_hint_names_the_entry_responsible() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "model.activation", json!("relu"));
    set(
        &mut c,
        "inner.alpha",
        json!({"per": "array", "knots": 2, "values": [[0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 4e4, 0.1]]}),
    );
    let scheduled = dir.config("scheduled.json", &c);
    let mut c = small_config();
    set(&mut c, "model.activation", json!("relu"));
    set(&mut c, "inner.alpha", json!(0.1));
    set(
        &mut c,
        "inner.l2",
        json!({"per": "layer", "values": [0.0, 1e300]}),
    );
    let l2 = dir.config("l2.json", &c);
    // Adam with β₂ = 1e-4 divides the momentum by the current gradient alone: at α = 0.01
    // (β₂ = 0.999 trains fine) the weights overflow, and β₂ is what to change.
    let mut c = small_config();
    set(
        &mut c,
        "inner",
        json!({"optimizer": "adam", "steps": 50, "batch_size": 50, "alpha": 0.01,
               "beta1": 0.9, "beta2": 0.0001}),
    );
    set(&mut c, "outer.tune", json!(["alpha"]));
    let adam = dir.config("adam.json", &c);
    let verify = [
        "verify-reversal",
        p(&l2),
        "--alphas",
        "0.1",
        "--gammas",
        "0.5",
        "--steps",
        "10",
    ];
    let cases: [(&[&str], &str); 8] = [
        (
            &["train", p(&adam), "--exact"],
            "try a larger inner.beta2 (now 0.0001)",
        ),
        (
            &["hypergrad", p(&adam)],
            "try a larger inner.beta2 (now 0.0001)",
        ),
        (
            &verify,
            "try a smaller inner.l2 (layer1: 1e300); row skipped",
        ),
        (
            &["train", p(&scheduled), "--exact"],
            "inner.alpha (W1 at step ",
        ),
        (&["hypergrad", p(&scheduled)], "inner.alpha (W1 at step "),
        (&["train", p(&l2)], "try a smaller inner.l2 (layer1: 1e300)"),
        (
            &["train", p(&l2), "--exact"],
            "try a smaller inner.l2 (layer1: 1e300)",
        ),
        (
            &["hypergrad", p(&l2)],
            "try a smaller inner.l2 (layer1: 1e300)",
        ),
    ];
    for (args, named) in cases {
        let out = run_into(args, &dir.path("out"), false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!stderr.contains("alpha (now 0."), "{args:?}: {stderr}");
    }
}

/// Every numeric cell of every verify-reversal row is a finite number, at decays small
/// enough that a float reversal divides its rounding errors past f64 (γ = 1e-4, and Adam
/// with β₂ = 1e-4): such a row is skipped with a warning, never written as `inf`.
#[test]
fn verify_reversal_cells_are_finite_at_tiny_decays() {
    let dir = Scratch::new();
    let momentum = dir.config("momentum.json", &small_config());
    let mut c = small_config();
    set(
        &mut c,
        "inner",
        json!({"optimizer": "adam", "steps": 50, "batch_size": 50, "alpha": 0.01,
               "beta1": 0.9, "beta2": 0.0001}),
    );
    set(&mut c, "outer.tune", json!(["alpha"]));
    let adam = dir.config("adam.json", &c);
    for cfg in [&momentum, &adam] {
        for steps in ["30", "200"] {
            for per_step in [false, true] {
                let mut args = vec![
                    "verify-reversal",
                    p(cfg),
                    "--alphas",
                    "0.1,1",
                    "--gammas",
                    "0.0001,0.5",
                    "--steps",
                    steps,
                ];
                if per_step {
                    args.push("--per-step");
                }
                let out = run_into(&args, &dir.path("out.csv"), false);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
                let t = Table::parse(&std::fs::read(dir.path("out.csv")).expect("csv"));
                assert!(!t.rows.is_empty(), "{args:?}");
                for row in &t.rows {
                    for (name, cell) in t.header.iter().zip(row.iter()) {
                        if matches!(name, "optimizer" | "arithmetic")
                            || (name == "gamma" && cell.is_empty())
                        {
                            continue;
                        }
                        let v: f64 = cell
                            .parse()
                            .unwrap_or_else(|_| panic!("{args:?} {name}: {cell:?}"));
                        assert!(v.is_finite(), "{args:?}: {name} = {cell} in {row:?}");
                    }
                }
                for line in stderr.lines().filter(|l| l.starts_with("warning:")) {
                    assert!(line.ends_with("row skipped"), "{line}");
                }
            }
        }
    }
}

/// Help that lists optimizers lists all of them: verify-reversal's rows, and the exactly
/// reversible ones `train --exact` accepts.
#[test]
fn help_lists_every_optimizer_it_speaks_of() {
    let help = |cmd: &str| {
        let out = Command::new(revgrad_path())
            .args([cmd, "--help"])
            .output()
            .expect("spawn revgrad");
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let verify = help("verify-reversal");
    let rows = verify
        .lines()
        .find(|l| l.starts_with("Rows for"))
        .expect("rows");
    for name in ["sgd", "momentum", "nesterov", "adam", "rmsprop"] {
        assert!(rows.contains(name), "{name}: {rows}");
    }
    assert!(verify.contains("Exact momentum, Adam and RMSprop reverse bit for bit"));
    let train = help("train");
    let exact = train
        .lines()
        .find(|l| l.trim_start().starts_with("--exact"))
        .expect("--exact");
    for name in ["momentum", "adam", "rmsprop"] {
        assert!(exact.contains(name), "{name}: {exact}");
    }
}
