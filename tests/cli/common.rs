//! Shared helpers: the binary, scratch folders with configs, CSV and JSON parsing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Every subcommand.
pub const COMMANDS: [&str; 6] = [
    "tune",
    "search",
    "hypergrad",
    "train",
    "verify-reversal",
    "check-grad",
];

/// SPEC §4 `tune` header.
pub const TUNE_HEADER: &str = "iteration,alpha,gamma,l2,init_scale,train_loss,val_loss,val_accuracy,test_loss,test_accuracy,d_alpha,d_gamma,d_l2,d_init_scale,seconds,status";
/// SPEC §4 `verify-reversal` header.
pub const VERIFY_HEADER: &str = "optimizer,arithmetic,alpha,gamma,steps,max_trace_error,theta0_error,info_bits_per_param_step,info_buffer_bytes,store_all_bytes";
/// SPEC §4 `verify-reversal --per-step` header.
pub const VERIFY_STEP_HEADER: &str = "optimizer,arithmetic,alpha,step,trace_error";

/// `revgrad` as built by cargo for this test run.
pub fn revgrad() -> Command {
    Command::cargo_bin("revgrad").expect("the revgrad binary is built")
}

/// Path of the binary, for `std::process::Command` (spawned children).
pub fn revgrad_path() -> &'static str {
    env!("CARGO_BIN_EXE_revgrad")
}

/// A path inside the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Absolute path of `data/digits.csv`, as a JSON string.
pub fn digits_csv() -> String {
    repo("data/digits.csv").display().to_string()
}

/// A small, fast experiment on the digits data: hidden [8], 50 inner steps of batch 50,
/// 4 outer steps. Each `hypergrad` on it takes a few milliseconds.
pub fn small_config() -> Value {
    json!({
        "seed": 0,
        "data": { "train": digits_csv() },
        "model": { "hidden": [8], "activation": "tanh", "init_scale": 1.0 },
        "inner": { "optimizer": "momentum", "steps": 50, "batch_size": 50,
                   "alpha": 0.5, "gamma": 0.9, "l2": 0.0 },
        "outer": { "steps": 4, "optimizer": "adam", "learning_rate": 0.1,
                   "tune": ["alpha", "gamma"] }
    })
}

/// Sets `value` at a dotted path (`inner.alpha`), creating objects on the way.
pub fn set(config: &mut Value, dotted: &str, value: Value) {
    let mut node = config;
    let parts: Vec<&str> = dotted.split('.').collect();
    for key in &parts[..parts.len() - 1] {
        node = node
            .as_object_mut()
            .expect("config node is an object")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    node.as_object_mut()
        .expect("config node is an object")
        .insert(parts[parts.len() - 1].to_string(), value);
}

/// A temporary folder per test, deleted on drop.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Path of `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `config` as `name` and returns its path.
    pub fn config(&self, name: &str, config: &Value) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, serde_json::to_string_pretty(config).expect("json"))
            .expect("write config");
        p
    }
}

/// A parsed CSV: header and records (the csv reader rejects rows of the wrong length).
pub struct Table {
    pub header: csv::StringRecord,
    pub rows: Vec<csv::StringRecord>,
}

impl Table {
    /// Parses CSV bytes with a header row; panics (test failure) on malformed CSV.
    pub fn parse(bytes: &[u8]) -> Self {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let header = reader.headers().expect("CSV header").clone();
        let rows = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .expect("every CSV row parses and has as many fields as the header");
        Table { header, rows }
    }

    /// Index of a column.
    pub fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    /// Cell text.
    pub fn cell<'a>(&'a self, row: &'a csv::StringRecord, name: &str) -> &'a str {
        &row[self.col(name)]
    }

    /// Every row's cells but `seconds` (wall time), for comparing runs.
    pub fn without_seconds(&self) -> Vec<Vec<String>> {
        let s = self.header.iter().position(|h| h == "seconds");
        self.rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != s)
                    .map(|(_, c)| c.to_owned())
                    .collect()
            })
            .collect()
    }

    /// Cell as a number; panics with the column name if it is not one.
    pub fn num(&self, row: &csv::StringRecord, name: &str) -> f64 {
        let s = self.cell(row, name);
        s.parse()
            .unwrap_or_else(|_| panic!("column {name}: {s:?} is not a number"))
    }
}

/// The first line of `stdout`, including its `\n`.
pub fn first_line(stdout: &[u8]) -> &[u8] {
    let end = stdout
        .iter()
        .position(|&b| b == b'\n')
        .map_or(stdout.len(), |i| i + 1);
    &stdout[..end]
}

/// Asserts the output's first line is `header` followed by `\n`, byte for byte.
pub fn assert_header(stdout: &[u8], header: &str) {
    assert_eq!(
        String::from_utf8_lossy(first_line(stdout)),
        format!("{header}\n"),
        "header must equal SPEC §4 byte for byte"
    );
}

/// Asserts a user error's stderr: starts with `error:`, no panic or backtrace.
pub fn assert_user_error_text(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "no panic for user errors: {text}"
    );
    assert!(text.starts_with("error:"), "stderr: {text}");
}

/// Float equality through the bit pattern (STYLE §5.6).
pub fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

/// Waits for `child` at most `limit`; kills it and fails the test if it takes longer.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("revgrad did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// All of a child's stderr (call after it exited).
pub fn read_stderr(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut s).expect("read stderr");
    }
    s
}

/// Runs `revgrad ARGS` to success and returns stdout.
pub fn stdout_of<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    revgrad()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

/// Runs `revgrad ARGS --json`-style commands and parses stdout as JSON.
pub fn json_of<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = stdout_of(args);
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// A path as `&str` for argument lists (temp paths are UTF-8).
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Near the fixed-point edge the sign of a hypergradient — and so the direction of the
/// tuner's first move — is chaotic: it flips with the last bit of any kernel or summation
/// order. Tests of rejection therefore try a short list of edge configs and take the first
/// whose `tune` (with `extra` arguments) rejects a step and then goes on with an `ok` row;
/// returns that config's path and the tune's stdout. Panics if none does.
pub fn first_rejecting_tune(
    dir: &Scratch,
    candidates: &[Value],
    extra: &[&str],
) -> (PathBuf, Vec<u8>) {
    for (i, c) in candidates.iter().enumerate() {
        let cfg = dir.config(&format!("edge{i}.json"), c);
        let mut args = vec!["tune", p(&cfg), "--quiet"];
        args.extend_from_slice(extra);
        let out = stdout_of(args);
        let t = Table::parse(&out);
        let statuses: Vec<&str> = t.rows.iter().map(|r| t.cell(r, "status")).collect();
        let rejected = statuses.iter().position(|&s| s == "rejected");
        if rejected.is_some_and(|k| statuses[k..].contains(&"ok")) {
            return (cfg, out);
        }
    }
    panic!(
        "none of the {} edge configs rejected a step",
        candidates.len()
    );
}

/// `tune CONFIG --quiet` (written as `name` in `dir`) prints `header`, one row per outer
/// iteration (`rows`), and its best ok row's validation loss is below 0.9× the start's.
pub fn assert_tune_lowers_val_loss(
    dir: &Scratch,
    name: &str,
    config: &Value,
    header: &str,
    rows: usize,
) {
    let cfg = dir.config(name, config);
    let out = stdout_of(["tune", p(&cfg), "--quiet"]);
    assert_header(&out, header);
    let t = Table::parse(&out);
    assert_eq!(t.rows.len(), rows);
    let first = t.num(&t.rows[0], "val_loss");
    let best = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "status") == "ok")
        .map(|r| t.num(r, "val_loss"))
        .fold(f64::INFINITY, f64::min);
    assert!(best < 0.9 * first, "val_loss {first} → best {best}");
}

/// `train CONFIG --json` in float and with `--exact`: both give a finite validation loss.
pub fn assert_trains_float_and_exact(cfg: &Path) {
    for exact in [false, true] {
        let mut args = vec!["train", p(cfg), "--json"];
        if exact {
            args.push("--exact");
        }
        let j = json_of(&args);
        assert!(j["val_loss"].as_f64().is_some_and(f64::is_finite), "{j}");
    }
}

/// `check-grad` passes: every input probe (sampled entries, random directions) agrees with
/// finite differences, and the reversal equals reverse mode over the stored trajectory
/// bit for bit.
pub fn assert_check_grad_passes(dir: &Scratch, name: &str, c: &Value) {
    let cfg = dir.config(name, c);
    let out = revgrad()
        .args(["check-grad", p(&cfg)])
        .assert()
        .success()
        .get_output()
        .clone();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let probes = text.lines().filter(|l| l.starts_with("input ")).count();
    assert!(
        probes >= 4,
        "sampled entries and directions probed:\n{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
    let stored = text
        .lines()
        .find(|l| l.starts_with("stored trajectory:"))
        .unwrap_or_else(|| panic!("no stored-trajectory line:\n{text}"));
    let words: Vec<&str> = stored.split_whitespace().collect();
    assert_eq!(words[2], words[4], "bit-identical entries: {stored}");
}

/// Asserts `revgrad ARGS` exits 2 with a message containing every part.
pub fn assert_exit_2(args: &[&str], parts: &[&str]) {
    let out = revgrad().args(args).assert().code(2).get_output().clone();
    assert_user_error_text(&out.stderr);
    let text = String::from_utf8_lossy(&out.stderr);
    for part in parts {
        assert!(text.contains(part), "{text} should contain {part}");
    }
}
