//! Issue 12, "what broke when the tool was tried as a hostile user would": one section per
//! class of failure, each end to end through the binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::common::{
    Scratch, Table, VERIFY_HEADER, assert_header, assert_user_error_text, p, repo, revgrad,
    revgrad_path, set, small_config,
};

/// Where the child's stderr goes.
#[derive(Clone, Copy, Debug)]
enum Stderr {
    /// `2>/dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose read end is closed: every write fails with EPIPE (`2>&1 | true`).
    ClosedPipe,
}

impl Stderr {
    fn stdio(self) -> Stdio {
        match self {
            Stderr::Full => std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full")
                .into(),
            Stderr::ClosedPipe => {
                let (reader, writer) = std::io::pipe().expect("pipe");
                drop(reader);
                writer.into()
            }
        }
    }
}

/// Runs `revgrad ARGS` with stderr unwritable; returns its output (stdout captured).
fn run_with_stderr(args: &[&str], stderr: Stderr) -> Output {
    Command::new(revgrad_path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr.stdio())
        .output()
        .expect("spawn revgrad")
}

/// Runs `revgrad ARGS`, expects exit `code` and every `needle` in stderr; returns stderr.
fn expect_exit(args: &[&str], code: i32, needles: &[&str]) -> String {
    let assert = revgrad().args(args).assert().failure().code(code);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert_user_error_text(stderr.as_bytes());
    for n in needles {
        assert!(stderr.contains(n), "{n:?} missing from stderr: {stderr}");
    }
    stderr
}

fn tiny_config() -> String {
    p(&repo("tests/fixtures/configs/tiny.json")).to_owned()
}

// ---------------------------------------------------------------------------------------
// Class 1: panics (exit 101).

/// An IDX images file with `rows × cols` pixels per image and its labels, in `dir`.
fn write_idx(dir: &Scratch, n: u32, rows: u32, cols: u32) -> std::path::PathBuf {
    let images = dir.path("m-images-idx3-ubyte");
    let mut b = 0x0803u32.to_be_bytes().to_vec();
    for v in [n, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b.extend((0..n * rows * cols).map(|k| (k % 7) as u8));
    std::fs::write(&images, b).expect("write images");
    let mut l = 0x0801u32.to_be_bytes().to_vec();
    l.extend(n.to_be_bytes());
    l.extend((0..n).map(|i| (i % 2) as u8));
    std::fs::write(dir.path("m-labels-idx1-ubyte"), l).expect("write labels");
    images
}

#[test]
fn idx_images_without_pixels_are_a_data_error() {
    for (rows, cols) in [(0, 5), (5, 0)] {
        let dir = Scratch::new();
        let images = write_idx(&dir, 10, rows, cols);
        let cfg = dir.config(
            "c.json",
            &json!({ "data": { "train": p(&images) }, "model": { "hidden": [4] },
                     "inner": { "steps": 2, "batch_size": 2 } }),
        );
        expect_exit(
            &["train", p(&cfg)],
            2,
            &["m-images-idx3-ubyte", "no features"],
        );
    }
}

#[test]
fn a_bad_config_exits_2_whatever_stderr_is() {
    let bad = p(&repo("tests/fixtures/configs/bad_gamma.json")).to_owned();
    for stderr in [Stderr::Full, Stderr::ClosedPipe] {
        for cmd in crate::common::COMMANDS {
            let out = run_with_stderr(&[cmd, &bad], stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} with stderr {stderr:?}");
        }
        // clap's own usage errors too.
        let out = run_with_stderr(&["train", "--no-such-flag"], stderr);
        assert_eq!(out.status.code(), Some(2), "usage error, stderr {stderr:?}");
    }
}

#[test]
fn finished_runs_exit_0_whatever_stderr_is() {
    let tiny = tiny_config();
    for stderr in [Stderr::Full, Stderr::ClosedPipe] {
        let out = run_with_stderr(&["train", &tiny], stderr);
        assert_eq!(out.status.code(), Some(0), "train, stderr {stderr:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("validation"));
        // tune prints a summary at the end.
        let out = run_with_stderr(&["tune", &tiny, "--outer-steps", "2"], stderr);
        assert_eq!(out.status.code(), Some(0), "tune, stderr {stderr:?}");
        assert_eq!(Table::parse(&out.stdout).rows.len(), 3);
    }
}

#[test]
fn verify_reversal_warnings_do_not_cut_the_csv_short() {
    let tiny = tiny_config();
    // α = 1e6 overflows the five exact runs (a warning each) and leaves five float rows;
    // α = 0.01 gives ten rows.
    let args = [
        "verify-reversal",
        &tiny,
        "--alphas",
        "1e6,0.01",
        "--gammas",
        "0.9",
        "--steps",
        "20",
    ];
    for stderr in [Stderr::Full, Stderr::ClosedPipe] {
        let out = run_with_stderr(&args, stderr);
        assert_eq!(out.status.code(), Some(0), "stderr {stderr:?}");
        assert_header(&out.stdout, VERIFY_HEADER);
        assert_eq!(
            Table::parse(&out.stdout).rows.len(),
            15,
            "stderr {stderr:?}"
        );
    }
}

#[test]
fn check_grad_note_on_relu_does_not_panic() {
    let dir = Scratch::new();
    let mut c = small_config();
    set(&mut c, "model.activation", json!("relu"));
    set(&mut c, "inner.steps", json!(10));
    let cfg = dir.config("c.json", &c);
    for stderr in [Stderr::Full, Stderr::ClosedPipe] {
        let out = run_with_stderr(&["check-grad", p(&cfg)], stderr);
        // relu may legitimately disagree with finite differences (exit 1), never panic.
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "stderr {stderr:?}: {:?}",
            out.status
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("exact reversal"));
    }
}

// ---------------------------------------------------------------------------------------
// Class 2: `--best` and `train --save` write through links and refuse special files.

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(ok.success());
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Names of the files in `dir` starting with `.` (temporary files).
fn hidden_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn best_and_save_write_through_a_symlink() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    std::fs::create_dir(dir.path("real")).expect("mkdir");
    std::fs::write(dir.path("real/best.json"), "old").expect("write");
    std::os::unix::fs::symlink("real/best.json", dir.path("best.json")).expect("symlink");
    std::os::unix::fs::symlink("real/w.npz", dir.path("w.npz")).expect("symlink");
    revgrad()
        .args(["tune", p(&cfg), "--quiet", "--outer-steps", "1"])
        .args(["--best", p(&dir.path("best.json"))])
        .assert()
        .success();
    assert!(
        dir.path("best.json")
            .symlink_metadata()
            .expect("link")
            .is_symlink()
    );
    let best: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path("real/best.json")).expect("read"))
            .expect("the link's target holds the best config");
    assert!(best["inner"]["alpha"].is_number());
    revgrad()
        .args(["train", p(&cfg), "--save", p(&dir.path("w.npz"))])
        .assert()
        .success();
    assert!(
        dir.path("w.npz")
            .symlink_metadata()
            .expect("link")
            .is_symlink()
    );
    assert!(
        dir.path("real/w.npz").is_file(),
        "the dangling link's target is created"
    );
    assert!(hidden_files(&dir.path("real")).is_empty());
}

#[test]
fn best_and_save_refuse_a_fifo_up_front() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let fifo = dir.path("fifo");
    mkfifo(&fifo);
    let out = revgrad()
        .args(["tune", p(&cfg), "--quiet", "--best", p(&fifo)])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("fifo") && stderr.contains("is a FIFO"),
        "{stderr}"
    );
    assert!(out.get_output().stdout.is_empty(), "refused before any row");
    expect_exit(&["train", p(&cfg), "--save", p(&fifo)], 2, &["is a FIFO"]);
    // Through a symlink too; and a folder is refused the same way.
    std::os::unix::fs::symlink("fifo", dir.path("link")).expect("symlink");
    expect_exit(
        &["train", p(&cfg), "--save", p(&dir.path("link"))],
        2,
        &["is a FIFO"],
    );
    expect_exit(
        &["train", p(&cfg), "--save", p(&dir.path(""))],
        2,
        &["is a folder"],
    );
    assert!(is_fifo(&fifo), "the FIFO is still there");
    assert!(hidden_files(&dir.path("")).is_empty());
}

// ---------------------------------------------------------------------------------------
// Class 7: exit codes.

#[test]
fn closed_stdout_is_an_error_but_a_closed_pipe_is_not() {
    let tiny = tiny_config();
    let out = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" \"$@\" >&-",
            revgrad_path(),
            "train",
            &tiny,
        ])
        .output()
        .expect("spawn sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("standard output is closed"), "{stderr}");
    // tune checks before it computes anything; with -o FILE a closed stdout does not matter.
    let dir = Scratch::new();
    let csv = dir.path("t.csv");
    let out = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" \"$@\" >&-",
            revgrad_path(),
            "tune",
            &tiny,
        ])
        .args(["--outer-steps", "1", "-o", p(&csv)])
        .output()
        .expect("spawn sh");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        Table::parse(&std::fs::read(&csv).expect("csv")).rows.len(),
        2
    );
    // A reader that went away: exit 0, as before.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let status = Command::new(revgrad_path())
        .args(["train", &tiny])
        .stdout(writer)
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert_eq!(status.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// Class 9: outputs checked up front, never clobbering an input or another output.

#[test]
fn a_bad_best_path_fails_before_any_computation() {
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let out = revgrad()
        .args(["tune", p(&cfg), "--quiet"])
        .args(["--best", p(&dir.path("no/such/folder/best.json"))])
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("best.json") && stderr.contains("folder"),
        "{stderr}"
    );
    assert!(
        out.get_output().stdout.is_empty(),
        "no CSV row was computed"
    );
    expect_exit(
        &["train", p(&cfg), "--save", p(&dir.path("no/such/w.npz"))],
        2,
        &["w.npz", "folder does not exist"],
    );
}

#[test]
fn outputs_may_not_name_an_input_or_each_other() {
    let dir = Scratch::new();
    let csv = dir.path("data.csv");
    std::fs::copy(repo("tests/fixtures/tiny.csv"), &csv).expect("copy");
    let cfg = dir.config(
        "c.json",
        &json!({ "data": { "train": "data.csv" }, "model": { "hidden": [4] },
                 "inner": { "steps": 5, "batch_size": 4 }, "outer": { "steps": 1 } }),
    );
    let before = (
        std::fs::read(&cfg).expect("read"),
        std::fs::read(&csv).expect("read"),
    );
    // The same files spelled differently.
    let cfg_alias = dir.path(".").join("c.json");
    let csv_alias = dir.path("sub/../data.csv");
    std::fs::create_dir(dir.path("sub")).expect("mkdir");
    expect_exit(
        &["tune", p(&cfg), "-o", p(&cfg_alias)],
        2,
        &["-o", "config file"],
    );
    expect_exit(
        &["verify-reversal", p(&cfg), "-o", p(&csv_alias)],
        2,
        &["-o", "data.train file"],
    );
    expect_exit(
        &["train", p(&cfg), "--save", p(&csv)],
        2,
        &["--save", "data.train file"],
    );
    expect_exit(
        &["tune", p(&cfg), "--best", p(&cfg)],
        2,
        &["--best", "config file"],
    );
    // A hard link is the same file.
    std::fs::hard_link(&csv, dir.path("hard.csv")).expect("hard link");
    expect_exit(
        &["tune", p(&cfg), "-o", p(&dir.path("hard.csv"))],
        2,
        &["data.train file"],
    );
    let out = dir.path("out.csv");
    expect_exit(
        &[
            "tune",
            p(&cfg),
            "-o",
            p(&out),
            "--best",
            p(&dir.path("./out.csv")),
        ],
        2,
        &["-o and --best", "different files"],
    );
    assert!(!out.exists(), "nothing created");
    assert_eq!(
        (
            std::fs::read(&cfg).expect("read"),
            std::fs::read(&csv).expect("read")
        ),
        before,
        "inputs untouched"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_tune_like_ctrl_c_and_leaves_no_temporary_file() {
    use std::io::{BufRead, BufReader, Read};
    use std::time::Duration;
    let dir = Scratch::new();
    let cfg = dir.config("c.json", &small_config());
    let best = dir.path("best.json");
    for signals in [1, 2] {
        let mut child = Command::new(revgrad_path())
            .args(["tune", p(&cfg), "--quiet", "--outer-steps", "100000"])
            .args(["--best", p(&best)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn revgrad");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut out = String::new();
        for _ in 0..2 {
            reader.read_line(&mut out).expect("header and first row");
        }
        for _ in 0..signals {
            let killed = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(killed.success());
        }
        reader.read_to_string(&mut out).expect("rest of stdout");
        let status = crate::common::wait_with_deadline(&mut child, Duration::from_secs(60));
        let stderr = crate::common::read_stderr(&mut child);
        assert_eq!(status.code(), Some(130), "{signals} SIGTERM: {stderr}");
        assert!(out.ends_with('\n'), "last row complete: {out:?}");
        Table::parse(out.as_bytes());
        assert!(
            hidden_files(&dir.path("")).is_empty(),
            "no .best.json.tmp-PID left"
        );
        let text = std::fs::read_to_string(&best).expect("--best written");
        serde_json::from_str::<serde_json::Value>(&text).expect("--best is complete JSON");
    }
}

// ---------------------------------------------------------------------------------------
// Class 3: train refuses non-finite losses.

#[test]
fn train_refuses_a_non_finite_loss_at_the_trained_weights() {
    let dir = Scratch::new();
    // One step of plain SGD with α near f64::MAX: the batch loss at θ₀ is finite, the
    // full-set losses at θ₁ are not.
    let cfg = dir.config(
        "c.json",
        &json!({ "data": { "train": p(&repo("tests/fixtures/tiny.csv")) },
                 "model": { "hidden": [4] },
                 "inner": { "optimizer": "sgd", "steps": 1, "batch_size": 8, "alpha": 1.7e308 } }),
    );
    for extra in [&["--json"][..], &[][..]] {
        let mut args = vec!["train", p(&cfg)];
        args.extend(extra);
        let out = revgrad().args(&args).assert().failure().code(1);
        let o = out.get_output();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_user_error_text(&o.stderr);
        for needle in ["step 1", "training loss is", "inner.alpha (now 1.7e308)"] {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
        assert!(
            o.stdout.is_empty(),
            "no table or JSON with a non-finite loss"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Class 6: memory estimated up front.

#[test]
fn a_model_too_large_for_memory_is_refused_with_the_estimate() {
    let dir = Scratch::new();
    // 35M parameters (under the 50M cap) on 4 features; its workspaces need ~150 GB.
    let cfg = dir.config(
        "c.json",
        &json!({ "data": { "train": p(&repo("tests/fixtures/tiny.csv")) },
                 "model": { "hidden": [5_000_000] },
                 "inner": { "steps": 1, "batch_size": 8 } }),
    );
    for cmd in ["train", "hypergrad"] {
        expect_exit(&[cmd, p(&cfg)], 2, &["c.json", "GiB of memory", "limit"]);
    }
    // The limit from the flag or the environment; a small run fits under 100M.
    let tiny = tiny_config();
    expect_exit(
        &["train", &tiny, "--memory-limit", "100K"],
        2,
        &["tiny.json", "--memory-limit"],
    );
    revgrad()
        .args(["train", &tiny, "--memory-limit", "100M"])
        .assert()
        .success();
    let out = revgrad()
        .args(["train", &tiny])
        .env("REVGRAD_MEMORY_LIMIT", "100K")
        .assert()
        .failure()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("REVGRAD_MEMORY_LIMIT"), "{stderr}");
    expect_exit(
        &["train", &tiny, "--memory-limit", "lots"],
        2,
        &["--memory-limit", "lots"],
    );
}

#[test]
fn check_grad_refuses_a_stored_trajectory_over_the_limit() {
    let dir = Scratch::new();
    let mut c = small_config();
    // 610 parameters × 20,001 states × 16 bytes ≈ 195 MB; the run itself needs ~5 MB.
    set(&mut c, "inner.steps", json!(20_000));
    let cfg = dir.config("c.json", &c);
    expect_exit(
        &["check-grad", p(&cfg), "--memory-limit", "50M"],
        2,
        &["stored trajectory", "MiB of memory"],
    );
}

// ---------------------------------------------------------------------------------------
// Class 7: exit codes.

#[test]
fn verify_reversal_exits_1_when_every_run_diverged() {
    let tiny = tiny_config();
    let out = revgrad()
        .args([
            "verify-reversal",
            &tiny,
            "--alphas",
            "1e308",
            "--gammas",
            "0.5",
            "--steps",
            "20",
        ])
        .assert()
        .failure()
        .code(1);
    let o = out.get_output();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("all 10 runs diverged"), "{stderr}");
    assert!(
        stderr.contains("alpha 1e308"),
        "numbers in scientific form: {stderr}"
    );
    assert_header(&o.stdout, VERIFY_HEADER);
}

// ---------------------------------------------------------------------------------------
// Class 8: messages.

#[test]
fn a_config_with_a_byte_order_mark_is_read() {
    let dir = Scratch::new();
    let cfg = dir.path("bom.json");
    let text = serde_json::to_string(&small_config()).expect("json");
    std::fs::write(&cfg, format!("\u{feff}{text}")).expect("write");
    revgrad().args(["train", p(&cfg)]).assert().success();
}

#[test]
fn long_user_text_and_huge_numbers_are_shortened() {
    let dir = Scratch::new();
    let mut c = json!({ "data": { "train": p(&repo("tests/fixtures/tiny.csv")) },
                        "model": { "hidden": [4] }, "inner": { "steps": 2, "batch_size": 2 } });
    set(&mut c, "data.label_column", json!("x".repeat(1_000_000)));
    let cfg = dir.config("c.json", &c);
    let stderr = expect_exit(&["train", p(&cfg)], 2, &["tiny.csv:1", "no column named"]);
    assert!(stderr.len() < 1000, "{} bytes of message", stderr.len());
    // A 1 MB header cell and a 1 MB non-finite cell.
    let csv = dir.path("wide.csv");
    let long = "9".repeat(1_000_000);
    std::fs::write(&csv, format!("a,{long},label\n1,{long},0\n2,3,1\n")).expect("write");
    let cfg = dir.config(
        "d.json",
        &json!({ "data": { "train": p(&csv) }, "inner": { "steps": 1, "batch_size": 1 } }),
    );
    let stderr = expect_exit(&["train", p(&cfg)], 2, &["wide.csv:2", "finite"]);
    assert!(stderr.len() < 1000, "{} bytes of message", stderr.len());
    // Numbers far from 1 in scientific notation, not 309 digits.
    let stderr = expect_exit(
        &["check-grad", &tiny_config(), "--tolerance=-1e300"],
        2,
        &["-1e300"],
    );
    assert!(stderr.len() < 200, "{stderr}");
}

#[test]
fn an_output_naming_the_test_file_is_refused_before_anything_is_written() {
    let dir = Scratch::new();
    let test = dir.path("test.csv");
    std::fs::copy(repo("tests/fixtures/tiny.csv"), &test).unwrap();
    let before = std::fs::read(&test).unwrap();
    let mut c = crate::common::small_config();
    crate::common::set(&mut c, "data.test", serde_json::json!(p(&test)));
    crate::common::set(
        &mut c,
        "data.train",
        serde_json::json!(p(&repo("tests/fixtures/tiny.csv"))),
    );
    crate::common::set(&mut c, "inner.batch_size", serde_json::json!(4));
    let cfg = dir.config("c.json", &c);
    for cmd in ["tune", "search", "verify-reversal"] {
        let a = revgrad()
            .args([cmd, p(&cfg), "-o", p(&test)])
            .assert()
            .failure()
            .code(2);
        let stderr = String::from_utf8_lossy(&a.get_output().stderr);
        assert!(stderr.contains("data.test"), "{cmd}: {stderr}");
        assert_eq!(
            std::fs::read(&test).unwrap(),
            before,
            "{cmd} touched the test file"
        );
    }
}

#[test]
fn verify_reversal_validates_blocks_before_creating_its_output() {
    let dir = Scratch::new();
    let mut c = crate::common::small_config();
    crate::common::set(
        &mut c,
        "inner.gamma",
        serde_json::json!({"per": "array", "values": [0.5]}),
    );
    let cfg = dir.config("c.json", &c);
    let out = dir.path("out.csv");
    revgrad()
        .args(["verify-reversal", p(&cfg), "-o", p(&out), "--steps", "5"])
        .assert()
        .failure()
        .code(2);
    assert!(
        !out.exists(),
        "the output was created before the config was validated"
    );
}
