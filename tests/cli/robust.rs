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
    // α = 1e6 overflows both exact runs (a warning each) and leaves two float rows;
    // α = 0.01 gives four rows.
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
        assert_eq!(Table::parse(&out.stdout).rows.len(), 6, "stderr {stderr:?}");
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

#[allow(dead_code)]
fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
