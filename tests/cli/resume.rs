//! `tune` and `search` with `--checkpoint` and `--resume`: a run killed with SIGKILL after
//! iteration k (or while writing its checkpoint) and resumed writes the rows, `--best` and
//! `--hypers-out` of the uninterrupted run; every bad checkpoint is refused with exit 2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};

use super::common::{
    Scratch, Table, assert_exit_2, first_rejecting_tune, p, revgrad, revgrad_path, set,
    small_config,
};
use super::tune::edge_configs;

/// Starts `revgrad ARGS` with the checkpoint test hook pausing at `pause`, waits until it
/// says so, and kills it with SIGKILL.
fn run_until_paused_then_kill(args: &[&str], pause: &str) {
    let mut child = std::process::Command::new(revgrad_path())
        .args(args)
        .env("REVGRAD_TEST_PAUSE_CHECKPOINT", pause)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn revgrad");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        seen += &line;
        seen.push('\n');
        if line.contains("paused") {
            break;
        }
    }
    assert!(seen.contains("paused"), "never paused:\n{seen}");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

/// The `done` iteration a checkpoint holds.
fn checkpoint_done(path: &Path) -> u64 {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("checkpoint"))
        .expect("checkpoint JSON");
    v["body"]["state"]["done"].as_u64().expect("done")
}

/// The uninterrupted run of `command` on `cfg` and the same run killed at `pause` and
/// resumed give the same CSV rows (but `seconds`), `--best` and (for tune) `--hypers-out`.
/// Returns the resumed CSV's table and the checkpoint path.
fn assert_resume_is_uninterrupted(dir: &Scratch, command: &str, cfg: &Path, pause: &str) {
    let tune = command == "tune";
    let out = |name: &str| dir.path(name).display().to_string();
    let mut full = vec![command, p(cfg), "--quiet"];
    let (o1, b1, h1) = (out("full.csv"), out("b1.json"), out("h1.csv"));
    full.extend(["-o", &o1, "--best", &b1]);
    if tune {
        full.extend(["--hypers-out", &h1]);
    }
    revgrad().args(&full).assert().success();

    let (o2, b2, h2, ck) = (
        out("part.csv"),
        out("b2.json"),
        out("h2.csv"),
        out("ck.json"),
    );
    let mut first = vec![command, p(cfg), "--quiet", "-o", &o2, "--best", &b2];
    let mut resume = vec![
        command, "--resume", &ck, "--quiet", "-o", &o2, "--best", &b2,
    ];
    if tune {
        first.extend(["--hypers-out", &h2]);
        resume.extend(["--hypers-out", &h2]);
    }
    first.extend(["--checkpoint", &ck]);
    run_until_paused_then_kill(&first, pause);
    let k: u64 = pause.trim_end_matches(":during").parse().expect("pause");
    let expected = if pause.ends_with(":during") { k - 1 } else { k };
    assert_eq!(
        checkpoint_done(Path::new(&ck)),
        expected,
        "checkpoint after the kill"
    );
    let stale = |dir: &Scratch| {
        let names = std::fs::read_dir(dir.path("")).expect("scratch");
        let names = names.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned());
        names
            .filter(|n| n.starts_with(".ck.json.tmp-"))
            .collect::<Vec<_>>()
    };
    // A kill during the write leaves the half-written temporary file; the resumed run's
    // first checkpoint removes it.
    assert_eq!(stale(dir).len(), usize::from(pause.ends_with(":during")));
    revgrad().args(&resume).assert().success();
    assert_eq!(stale(dir), Vec::<String>::new(), "temporary files left");

    let a = Table::parse(&std::fs::read(&o1).expect("full csv"));
    let b = Table::parse(&std::fs::read(&o2).expect("resumed csv"));
    assert_eq!(a.header, b.header);
    assert_eq!(a.without_seconds(), b.without_seconds(), "rows differ");
    assert_eq!(
        std::fs::read_to_string(&b1).expect("best"),
        std::fs::read_to_string(&b2).expect("best")
    );
    if tune {
        assert_eq!(
            std::fs::read_to_string(&h1).expect("hypers-out"),
            std::fs::read_to_string(&h2).expect("hypers-out")
        );
    }
    // Resuming the finished run does nothing and rewrites nothing.
    let before = std::fs::read(&o2).expect("csv");
    let ck_before = std::fs::read(&ck).expect("checkpoint");
    let done = revgrad().args(&resume).assert().success();
    let text = String::from_utf8_lossy(&done.get_output().stderr).to_string();
    assert!(text.contains("nothing to do"), "{text}");
    assert_eq!(std::fs::read(&o2).expect("csv"), before);
    assert_eq!(std::fs::read(&ck).expect("checkpoint"), ck_before);
}

fn config(dir: &Scratch, c: &Value) -> PathBuf {
    dir.config("c.json", c)
}

/// The small config with `n` outer steps.
fn small_with_steps(n: usize) -> Value {
    let mut c = small_config();
    set(&mut c, "outer.steps", json!(n));
    c
}

#[test]
fn tune_momentum_killed_and_resumed_is_the_uninterrupted_run() {
    let dir = Scratch::new();
    let c = small_with_steps(6);
    assert_resume_is_uninterrupted(&dir, "tune", &config(&dir, &c), "3");
}

#[test]
fn tune_adam_with_resampling_killed_and_resumed_is_the_uninterrupted_run() {
    for resample in [false, true] {
        let dir = Scratch::new();
        let mut c = small_config();
        set(
            &mut c,
            "inner",
            json!({ "optimizer": "adam", "steps": 40, "batch_size": 50,
                    "alpha": 0.005, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "l2": 0.001 }),
        );
        set(&mut c, "outer.tune", json!(["alpha", "beta1", "l2"]));
        set(&mut c, "outer.steps", json!(5));
        set(&mut c, "outer.resample", json!(resample));
        assert_resume_is_uninterrupted(&dir, "tune", &config(&dir, &c), "2");
    }
}

#[test]
fn tune_with_resampling_killed_and_resumed_is_the_uninterrupted_run() {
    let dir = Scratch::new();
    let mut c = small_with_steps(5);
    set(&mut c, "outer.resample", json!(true));
    assert_resume_is_uninterrupted(&dir, "tune", &config(&dir, &c), "1");
}

#[test]
fn tune_killed_with_a_rejected_step_pending_resumes_its_retry() {
    let dir = Scratch::new();
    let (cfg, out) = first_rejecting_tune(&dir, &edge_configs(), &[]);
    let t = Table::parse(&out);
    let k = t
        .rows
        .iter()
        .position(|r| t.cell(r, "status") == "rejected")
        .expect("a rejected row");
    let run = Scratch::new();
    assert_resume_is_uninterrupted(&run, "tune", &cfg, &k.to_string());
}

#[test]
fn a_kill_while_the_checkpoint_is_written_leaves_the_previous_one() {
    let dir = Scratch::new();
    let c = small_with_steps(5);
    assert_resume_is_uninterrupted(&dir, "tune", &config(&dir, &c), "3:during");
}

#[test]
fn search_killed_and_resumed_is_the_uninterrupted_run() {
    let dir = Scratch::new();
    let c = small_with_steps(7);
    assert_resume_is_uninterrupted(&dir, "search", &config(&dir, &c), "3");
}

/// A finished 2-step tune with its checkpoint, on `data` if given; returns (config,
/// checkpoint, csv).
fn finished(dir: &Scratch, data: Option<&Path>) -> (PathBuf, PathBuf, PathBuf) {
    let mut c = small_config();
    if let Some(d) = data {
        set(&mut c, "data.train", json!(d.display().to_string()));
    }
    set(&mut c, "outer.steps", json!(2));
    let cfg = config(dir, &c);
    let (ck, csv) = (dir.path("ck.json"), dir.path("run.csv"));
    revgrad()
        .args([
            "tune",
            p(&cfg),
            "--quiet",
            "-o",
            p(&csv),
            "--checkpoint",
            p(&ck),
        ])
        .assert()
        .success();
    (cfg, ck, csv)
}

#[test]
fn bad_checkpoints_are_refused_naming_the_file() {
    let dir = Scratch::new();
    let (cfg, ck, _) = finished(&dir, None);
    let text = std::fs::read_to_string(&ck).expect("checkpoint");
    let missing = dir.path("missing.json");
    assert_exit_2(&["tune", "--resume", p(&missing)], &["missing.json"]);
    let truncated = dir.path("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).expect("write");
    assert_exit_2(
        &["tune", "--resume", p(&truncated)],
        &[
            "truncated.json",
            "not a revgrad checkpoint, or was cut short",
        ],
    );
    assert_exit_2(
        &["tune", "--resume", p(&cfg)],
        &["c.json", "not a revgrad checkpoint"],
    );
    let empty = dir.path("empty.json");
    std::fs::write(&empty, "").expect("write");
    assert_exit_2(&["tune", "--resume", p(&empty)], &["empty.json", "empty"]);
    // One digit of the state changed: the checksum catches it.
    let corrupt = dir.path("corrupt.json");
    let from = text.find("\"val_loss\":").expect("a val_loss") + 13;
    let mut bytes = text.into_bytes();
    let at = from
        + bytes[from..]
            .iter()
            .position(u8::is_ascii_digit)
            .expect("a digit");
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&corrupt, &bytes).expect("write");
    assert_exit_2(
        &["tune", "--resume", p(&corrupt)],
        &["corrupt.json", "is corrupt"],
    );
    let other = String::from_utf8(bytes).expect("utf8");
    let foreign = dir.path("foreign.json");
    let v = other.replacen(
        &format!("\"revgrad\":\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"revgrad\":\"0.0.1\"",
        1,
    );
    std::fs::write(&foreign, v).expect("write");
    assert_exit_2(
        &["tune", "--resume", p(&foreign)],
        &["foreign.json", "written by revgrad 0.0.1"],
    );
    let format = dir.path("format.json");
    std::fs::write(
        &format,
        other.replacen("\"revgrad_checkpoint\":1", "\"revgrad_checkpoint\":9", 1),
    )
    .expect("write");
    assert_exit_2(
        &["tune", "--resume", p(&format)],
        &["format.json", "format 9"],
    );
    assert_exit_2(
        &["search", "--resume", p(&ck)],
        &["revgrad tune", "--resume"],
    );
}

#[test]
fn resume_usage_errors() {
    let dir = Scratch::new();
    let (cfg, ck, csv) = finished(&dir, None);
    // --resume with a CONFIG: clap's usage error, exit 2.
    revgrad()
        .args(["tune", p(&cfg), "--resume", p(&ck)])
        .assert()
        .code(2);
    revgrad().args(["tune"]).assert().code(2);
    // --checkpoint naming an input or another output.
    assert_exit_2(
        &["tune", p(&cfg), "--checkpoint", p(&cfg)],
        &["--checkpoint", "config file"],
    );
    let data = super::common::repo("data/digits.csv");
    assert_exit_2(
        &["tune", p(&cfg), "--checkpoint", p(&data)],
        &["--checkpoint", "data.train"],
    );
    let out = dir.path("o.csv");
    assert_exit_2(
        &["tune", p(&cfg), "-o", p(&out), "--checkpoint", p(&out)],
        &["-o", "--checkpoint", "both name"],
    );
    // A CSV that does not end at the checkpoint's iteration.
    let short = dir.path("short.csv");
    let text = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&short, format!("{}\n{}\n", lines[0], lines[1])).expect("write");
    assert_exit_2(
        &[
            "tune",
            "--resume",
            p(&ck),
            "--outer-steps",
            "3",
            "-o",
            p(&short),
        ],
        &["short.csv", "ends at iteration 0", "after iteration 2"],
    );
    let foreign = dir.path("foreign.csv");
    std::fs::write(&foreign, "a,b\n1,2\n").expect("write");
    assert_exit_2(
        &[
            "tune",
            "--resume",
            p(&ck),
            "--outer-steps",
            "3",
            "-o",
            p(&foreign),
        ],
        &["foreign.csv", "header differs"],
    );
}

#[test]
fn a_checkpoint_on_changed_data_is_refused_and_a_finished_run_can_be_extended() {
    let dir = Scratch::new();
    let data = dir.path("digits.csv");
    std::fs::copy(super::common::repo("data/digits.csv"), &data).expect("copy");
    let (_, ck, csv) = finished(&dir, Some(&data));
    // Go on to 3 steps: one more row, appended.
    revgrad()
        .args([
            "tune",
            "--resume",
            p(&ck),
            "--quiet",
            "--outer-steps",
            "3",
            "-o",
            p(&csv),
        ])
        .assert()
        .success();
    let t = Table::parse(&std::fs::read(&csv).expect("csv"));
    let its: Vec<&str> = t.rows.iter().map(|r| t.cell(r, "iteration")).collect();
    assert_eq!(its, ["0", "1", "2", "3"]);
    // Change one data value: refused.
    let text = std::fs::read_to_string(&data).expect("data");
    let changed = text.replacen(",0,", ",1,", 1);
    assert_ne!(changed, text);
    std::fs::write(&data, changed).expect("write");
    assert_exit_2(
        &["tune", "--resume", p(&ck), "--outer-steps", "5"],
        &["ck.json", "cannot be resumed", "digits.csv", "changed"],
    );
}
