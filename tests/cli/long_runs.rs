//! Long horizons against the memory limit: an exact run whose information buffer cannot fit
//! after `inner.steps` steps is refused before it starts, naming the config, `inner.steps`
//! and the estimate; float runs, which hold no buffer, are not refused for it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{
    Scratch, assert_user_error_text, p, read_stderr, revgrad, revgrad_path, set, small_config,
};

/// The small config with 10^9 inner steps: its buffer needs about 12 GiB (610 parameters ×
/// 0.152 bits per step, and the bound's 12% above that floor), the model and data a few MiB.
fn long_config(dir: &Scratch) -> std::path::PathBuf {
    let mut c = small_config();
    set(&mut c, "inner.steps", json!(1_000_000_000u64));
    dir.config("long.json", &c)
}

#[test]
fn an_exact_run_whose_buffer_cannot_fit_is_refused_at_once() {
    let dir = Scratch::new();
    let cfg = long_config(&dir);
    for cmd in [
        &["hypergrad"][..],
        &["check-grad"],
        &["tune"],
        &["train", "--exact"],
    ] {
        let start = Instant::now();
        let out = revgrad()
            .args(cmd)
            .args([p(&cfg), "--memory-limit", "64M"])
            .timeout(Duration::from_secs(60))
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{cmd:?} took {:?}",
            start.elapsed()
        );
        assert_user_error_text(&out.stderr);
        let text = String::from_utf8_lossy(&out.stderr);
        for part in [
            "long.json",
            "inner.steps = 1000000000",
            "information buffer after 1000000000 steps",
            "GiB of memory",
            "limit of 64 MiB",
            "fewer inner.steps",
            "higher --memory-limit",
        ] {
            assert!(text.contains(part), "{cmd:?}: {text} should contain {part}");
        }
        assert!(out.stdout.is_empty(), "{cmd:?}");
    }
    // verify-reversal runs its own --steps.
    let out = revgrad()
        .args([
            "verify-reversal",
            p(&cfg),
            "--steps",
            "1000000000",
            "--memory-limit",
            "64M",
        ])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    for part in [
        "long.json",
        "--steps 1000000000",
        "information buffer",
        "fewer --steps",
    ] {
        assert!(text.contains(part), "{text} should contain {part}");
    }
}

#[test]
fn a_float_run_of_the_same_length_is_not_refused_for_the_buffer() {
    let dir = Scratch::new();
    let cfg = long_config(&dir);
    // It trains (10^9 steps would take hours): still running after the time a refusal
    // takes many times over, then stopped.
    let mut child = Command::new(revgrad_path())
        .args(["train", p(&cfg), "--memory-limit", "64M"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn revgrad");
    std::thread::sleep(Duration::from_millis(1500));
    let status = child.try_wait().expect("try_wait");
    if status.is_none() {
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
    let stderr = read_stderr(&mut child);
    assert!(
        status.is_none(),
        "train exited early ({status:?}): {stderr}"
    );
    assert!(!stderr.contains("information buffer"), "{stderr}");
    // And a short exact run fits under the same limit.
    let c = small_config();
    let short = dir.config("short.json", &c);
    revgrad()
        .args(["hypergrad", p(&short), "--memory-limit", "64M"])
        .assert()
        .success();
}

/// The memory an exact reversal of `cfg` needs at its configured blocks, with γ set to
/// `gamma` when given (revgrad's own estimate, [`revgrad::problem::Experiment::reversal_bytes`]).
fn reversal_bytes(cfg: &std::path::Path, gamma: Option<f64>) -> u64 {
    let exp = revgrad::problem::Experiment::load(cfg).unwrap();
    let run = exp.prepare().unwrap();
    let mut h = run.hypers.clone();
    if let Some(g) = gamma {
        h.get_mut(revgrad::hyper::Kind::Gamma).values.fill(g);
    }
    exp.reversal_bytes(&h, &run.ctx.layout)
}

/// A tune of γ alone whose first step lowers it (a lower γ stores more bits per step), with
/// a memory limit between the start's need and the first step's: the config, the limit,
/// and γ at the start and after the first step (unlimited).
fn gamma_tune_between_limits(dir: &Scratch) -> (std::path::PathBuf, u64, f64, f64) {
    let mut c = small_config();
    set(&mut c, "inner.steps", json!(2000));
    set(&mut c, "inner.alpha", json!(0.1));
    set(&mut c, "outer.tune", json!(["gamma"]));
    set(&mut c, "outer.learning_rate", json!(0.5));
    set(&mut c, "outer.steps", json!(3));
    let cfg = dir.config("c.json", &c);
    // Unlimited, the first step lowers γ.
    let free = crate::common::stdout_of(["tune", p(&cfg), "--quiet", "--outer-steps", "1"]);
    let t = crate::common::Table::parse(&free);
    let (g0, g1) = (t.num(&t.rows[0], "gamma"), t.num(&t.rows[1], "gamma"));
    assert!(g1 < g0, "the first step should lower γ: {g0} → {g1}");
    let (need0, need1) = (reversal_bytes(&cfg, None), reversal_bytes(&cfg, Some(g1)));
    assert!(need1 > need0, "a lower γ needs more: {need0} vs {need1}");
    (cfg, (need0 + need1) / 2, g0, g1)
}

/// With the limit between the start's need and the first step's, the start runs and the
/// first step is rejected before it runs, with why on stderr; the tune goes on from the
/// start (half the step, at half the learning rate), and the rows it accepts fit.
#[test]
fn a_tune_step_that_would_outgrow_the_memory_limit_is_rejected() {
    let dir = Scratch::new();
    let (cfg, limit, g0, g1) = gamma_tune_between_limits(&dir);

    let out = revgrad()
        .args([
            "tune",
            p(&cfg),
            "--quiet",
            "--memory-limit",
            &limit.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", read_text(&out.stderr));
    let t = crate::common::Table::parse(&out.stdout);
    let status: Vec<&str> = t.rows.iter().map(|r| t.cell(r, "status")).collect();
    assert_eq!(status[..2], ["ok", "rejected"], "{status:?}");
    let stderr = read_text(&out.stderr);
    for part in [
        "iteration 1 rejected",
        "2000 steps",
        "information buffer",
        "more than the limit",
        "--memory-limit",
    ] {
        assert!(stderr.contains(part), "{stderr} should contain {part}");
    }
    // Every accepted row fits; the retry moves half as far as the rejected step.
    for r in t.rows.iter().filter(|r| t.cell(r, "status") == "ok") {
        let g = t.num(r, "gamma");
        assert!(reversal_bytes(&cfg, Some(g)) <= limit, "row at γ = {g}");
    }
    let g2 = t.num(&t.rows[2], "gamma");
    assert!(
        g1 < g2 && g2 < g0,
        "the retry lies between: {g0}, {g1}, {g2}"
    );
}

fn read_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The limit decides which points a tune rejects, so a resumed run keeps the limit it was
/// started with (recorded in the checkpoint): resumed without `--memory-limit`, it writes
/// the uninterrupted run's rows. Resumed with another limit, it says the rows may differ.
#[test]
fn a_resumed_tune_keeps_the_memory_limit_it_was_started_with() {
    let dir = Scratch::new();
    let (cfg, limit, _, _) = gamma_tune_between_limits(&dir);
    let limit = limit.to_string();
    let (a, b, ck) = (dir.path("a.csv"), dir.path("b.csv"), dir.path("ck.json"));
    let tune = |args: &[&str]| {
        let out = revgrad().args(args).arg("--quiet").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", read_text(&out.stderr));
        read_text(&out.stderr)
    };
    tune(&["tune", p(&cfg), "--memory-limit", &limit, "-o", p(&a)]);
    let first = [
        "tune",
        p(&cfg),
        "--memory-limit",
        &limit,
        "--outer-steps",
        "0",
    ];
    // Row 0 with a checkpoint, under the limit; then resumed to row 3 with `extra`.
    let resumed = |ck: &std::path::Path, extra: &[&str]| {
        tune(&[&first[..], &["-o", p(&b), "--checkpoint", p(ck)]].concat());
        let resume = ["tune", "--resume", p(ck), "--outer-steps", "3", "-o", p(&b)];
        tune(&[&resume[..], extra].concat())
    };
    let said = resumed(&ck, &[]);
    assert!(!said.contains("memory limit of"), "{said}");
    let (ta, tb) = (
        crate::common::Table::parse(&std::fs::read(&a).unwrap()),
        crate::common::Table::parse(&std::fs::read(&b).unwrap()),
    );
    assert!(ta.rows.iter().any(|r| ta.cell(r, "status") == "rejected"));
    assert_eq!(ta.without_seconds(), tb.without_seconds());
    // Resumed under another limit: said.
    let said = resumed(&dir.path("ck2.json"), &["--memory-limit", "1G"]);
    assert!(said.contains("started with a memory limit of"), "{said}");
    assert!(said.contains("resumes with 1 GiB"), "{said}");
}
