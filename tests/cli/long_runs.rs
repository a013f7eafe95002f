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
