//! Real-data features end to end (SPEC §2.1): gzip IDX, test sets, `limit`, `label_noise`,
//! and their errors. The IDX files are generated here (plain and gzip), so no test needs
//! the `dataset-fashion-mnist` package.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Scratch, assert_user_error_text, json_of, p, revgrad, stdout_of};

/// IDX bytes: `n` images of `side × side` pixels and their labels `i mod 3`. Each class
/// lights its own band of rows, plus a little per-image texture, so a tiny net learns it.
fn idx_bytes(n: u32, side: u32) -> (Vec<u8>, Vec<u8>) {
    let mut images = 0x0803u32.to_be_bytes().to_vec();
    for v in [n, side, side] {
        images.extend(v.to_be_bytes());
    }
    let mut labels = 0x0801u32.to_be_bytes().to_vec();
    labels.extend(n.to_be_bytes());
    for i in 0..n {
        let class = i % 3;
        labels.push(class as u8);
        for r in 0..side {
            for c in 0..side {
                let on = r % 3 == class;
                images.push(if on { 200 } else { 0 } + ((i * 7 + r * 5 + c * 3) % 40) as u8);
            }
        }
    }
    (images, labels)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// Writes `PREFIX-images-idx3-ubyte[.gz]` and `PREFIX-labels-idx1-ubyte[.gz]` to the scratch
/// folder; returns the images path.
fn write_idx(dir: &Scratch, prefix: &str, n: u32, gz: bool) -> PathBuf {
    let (images, labels) = idx_bytes(n, 6);
    let ext = if gz { ".gz" } else { "" };
    let ip = dir.path(&format!("{prefix}-images-idx3-ubyte{ext}"));
    let lp = dir.path(&format!("{prefix}-labels-idx1-ubyte{ext}"));
    let (images, labels) = if gz {
        (gzip(&images), gzip(&labels))
    } else {
        (images, labels)
    };
    std::fs::write(&ip, images).expect("write images");
    std::fs::write(&lp, labels).expect("write labels");
    ip
}

/// A small config on `train` with `data` fields merged in.
fn config(train: &Path, data: Value) -> Value {
    let mut d = json!({ "train": p(train) });
    for (k, v) in data.as_object().expect("data fields") {
        d[k] = v.clone();
    }
    json!({
        "seed": 3,
        "data": d,
        "model": { "hidden": [6] },
        "inner": { "steps": 40, "batch_size": 10, "alpha": 0.5, "gamma": 0.9 },
        "outer": { "steps": 2 }
    })
}

/// Runs `revgrad train CONFIG`, expects exit 2 and each of `needles` in stderr.
fn expect_train_exit_2(dir: &Scratch, config: &Value, needles: &[&str]) {
    let cfg = dir.config("c.json", config);
    let out = revgrad()
        .args(["train", p(&cfg)])
        .assert()
        .failure()
        .code(2)
        .get_output()
        .clone();
    assert_user_error_text(&out.stderr);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for n in needles {
        assert!(stderr.contains(n), "stderr should contain {n:?}: {stderr}");
    }
}

#[test]
fn train_json_reports_a_held_out_test_set_from_gzip_idx() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 120, true);
    let cfg = dir.config("c.json", &config(&train, json!({ "test_fraction": 0.25 })));
    let report = json_of(["train", p(&cfg), "--json"]);
    for key in ["test_loss", "test_accuracy"] {
        let v = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {report}"));
        assert!(v.is_finite() && v >= 0.0, "{key}: {report}");
    }
    assert!(report["test_accuracy"].as_f64().unwrap() <= 1.0);
    let table = String::from_utf8(stdout_of(["train", p(&cfg)])).expect("UTF-8");
    assert!(table.lines().any(|l| l.starts_with("test")), "{table}");
}

#[test]
fn train_json_test_cells_from_a_test_file_and_null_without() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 90, false);
    let test = write_idx(&dir, "t10k", 30, true);
    let cfg = dir.config("c.json", &config(&train, json!({ "test": p(&test) })));
    let report = json_of(["train", p(&cfg), "--json"]);
    assert!(report["test_loss"].as_f64().is_some(), "{report}");
    // The same data plain and gzip give the same run, bit for bit.
    let gz = write_idx(&dir, "gz", 90, true);
    let cfg = dir.config("g.json", &config(&gz, json!({ "test": p(&test) })));
    let again = json_of(["train", p(&cfg), "--json"]);
    for key in ["train_loss", "val_loss", "test_loss"] {
        assert_eq!(report[key], again[key], "{key}");
    }
    let cfg = dir.config("n.json", &config(&train, json!({})));
    let report = json_of(["train", p(&cfg), "--json"]);
    assert!(report["test_loss"].is_null(), "{report}");
    assert!(report["test_accuracy"].is_null(), "{report}");
    let table = String::from_utf8(stdout_of(["train", p(&cfg)])).expect("UTF-8");
    assert!(!table.lines().any(|l| l.starts_with("test")), "{table}");
}

#[test]
fn corrupt_and_truncated_gzip_exit_2_naming_the_file() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 60, true);
    let good = std::fs::read(&train).expect("read");
    std::fs::write(&train, &good[..good.len() / 2]).expect("write");
    let c = config(&train, json!({}));
    expect_train_exit_2(
        &dir,
        &c,
        &["train-images-idx3-ubyte.gz: truncated gzip file"],
    );
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0xa5);
    std::fs::write(&train, &bad).expect("write");
    expect_train_exit_2(&dir, &c, &["train-images-idx3-ubyte.gz: "]);
    std::fs::write(&train, b"plain text, not gzip").expect("write");
    expect_train_exit_2(&dir, &c, &["train-images-idx3-ubyte.gz: corrupt gzip file"]);
}

#[test]
fn image_label_count_mismatch_names_both_files_and_counts() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 60, true);
    let (_, labels) = idx_bytes(50, 6);
    std::fs::write(dir.path("train-labels-idx1-ubyte.gz"), gzip(&labels)).expect("write");
    expect_train_exit_2(
        &dir,
        &config(&train, json!({})),
        &[
            "train-labels-idx1-ubyte.gz: has 50 labels",
            "train-images-idx3-ubyte.gz has 60 images",
        ],
    );
}

#[test]
fn bad_limit_fractions_and_noise_exit_2_naming_the_field() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 60, false);
    for (data, needles) in [
        (
            json!({ "limit": 0 }),
            vec!["c.json: data.limit must be >= 1"],
        ),
        (
            json!({ "limit": 61 }),
            vec!["data.limit must be at most", "(60), got 61"],
        ),
        (
            json!({ "test_fraction": 0.8 }),
            vec!["data.test_fraction plus data.validation_fraction must be < 1"],
        ),
        (
            json!({ "test_fraction": -0.5 }),
            vec!["data.test_fraction must be in [0, 1), got -0.5"],
        ),
        (
            json!({ "label_noise": 1.0 }),
            vec!["data.label_noise must be in [0, 1), got 1"],
        ),
        (
            json!({ "test": p(&dir.path("gone-idx3-ubyte")) }),
            vec!["data.test", "file not found"],
        ),
    ] {
        expect_train_exit_2(&dir, &config(&train, data), &needles);
    }
}

#[test]
fn test_file_with_other_features_names_both_files() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 60, false);
    let (images, labels) = idx_bytes(20, 5);
    std::fs::write(dir.path("odd-images-idx3-ubyte"), images).expect("write");
    std::fs::write(dir.path("odd-labels-idx1-ubyte"), labels).expect("write");
    let test = dir.path("odd-images-idx3-ubyte");
    expect_train_exit_2(
        &dir,
        &config(&train, json!({ "test": p(&test) })),
        &["odd-images-idx3-ubyte: has 25 feature columns", "has 36"],
    );
}

#[test]
fn limit_and_label_noise_run_end_to_end() {
    let dir = Scratch::new();
    let train = write_idx(&dir, "train", 150, true);
    let cfg = dir.config(
        "c.json",
        &config(
            &train,
            json!({ "limit": 100, "test_fraction": 0.2, "label_noise": 0.1 }),
        ),
    );
    let report = json_of(["train", p(&cfg), "--json"]);
    assert!(report["test_loss"].as_f64().is_some(), "{report}");
    assert!(
        report["train_loss"].as_f64().unwrap().is_finite(),
        "{report}"
    );
}

/// Writes a CSV of `n` rows with features `a` and `b` in [0, 1) in the order `columns`,
/// and `label` 1 where a > b (a fixed generator, seeded by `seed`).
fn write_ab_csv(path: &Path, columns: [&str; 2], n: usize, seed: u64) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut text = format!("{},{},label\n", columns[0], columns[1]);
    for _ in 0..n {
        let (a, b) = (next(), next());
        let cell = |name: &str| if name == "a" { a } else { b };
        let label = u8::from(a > b);
        text += &format!("{},{},{label}\n", cell(columns[0]), cell(columns[1]));
    }
    std::fs::write(path, text).expect("write csv");
}

/// A config learning `label = a > b` from `t.csv`, with `data` fields merged in.
fn ab_config(dir: &Scratch, data: Value) -> PathBuf {
    let train = dir.path("t.csv");
    write_ab_csv(&train, ["a", "b"], 120, 1);
    let mut c = config(&train, data);
    c["inner"] = json!({ "steps": 300, "batch_size": 20, "alpha": 0.5, "gamma": 0.9 });
    c["model"] = json!({ "hidden": [8] });
    dir.config("ab.json", &c)
}

#[test]
fn csv_columns_in_another_order_are_matched_by_name() {
    let dir = Scratch::new();
    // The same 60 rows, with the columns as in the training file and swapped.
    write_ab_csv(&dir.path("same.csv"), ["a", "b"], 60, 2);
    write_ab_csv(&dir.path("swapped.csv"), ["b", "a"], 60, 2);
    let same = ab_config(
        &dir,
        json!({ "validation": p(&dir.path("same.csv")), "test": p(&dir.path("same.csv")) }),
    );
    let same = json_of(["train", p(&same), "--json"]);
    assert!(same["val_accuracy"].as_f64().unwrap() > 0.9, "{same}");
    let swapped = ab_config(
        &dir,
        json!({ "validation": p(&dir.path("swapped.csv")),
                "test": p(&dir.path("swapped.csv")) }),
    );
    let swapped = json_of(["train", p(&swapped), "--json"]);
    // Matched by position, the swapped file scored 0.5 with exit 0.
    for key in ["val_loss", "val_accuracy", "test_loss", "test_accuracy"] {
        assert_eq!(same[key], swapped[key], "{key}: {same} vs {swapped}");
    }
    // Other names are refused, naming both files and the columns.
    std::fs::write(dir.path("other.csv"), "a,c,label\n0.5,0.25,1\n").expect("write");
    for field in ["validation", "test"] {
        let c = ab_config(&dir, json!({ field: p(&dir.path("other.csv")) }));
        let out = revgrad()
            .args(["train", p(&c)])
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert_user_error_text(&out.stderr);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("other.csv: has no feature column \"b\" and has \"c\""),
            "{stderr}"
        );
        assert!(stderr.contains("the training file"), "{stderr}");
        assert!(stderr.contains("t.csv"), "{stderr}");
    }
}

/// `idx_bytes(n, side)` as a CSV: pixel columns `p0…`, then `label`.
fn idx_as_csv(path: &Path, n: u32, side: u32) {
    let (images, labels) = idx_bytes(n, side);
    let d = (side * side) as usize;
    let names: Vec<String> = (0..d).map(|j| format!("p{j}")).collect();
    let mut text = format!("{},label\n", names.join(","));
    for (i, label) in labels[8..].iter().enumerate() {
        let row = &images[16 + i * d..16 + (i + 1) * d];
        let cells: Vec<String> = row.iter().map(u8::to_string).collect();
        text += &format!("{},{label}\n", cells.join(","));
    }
    std::fs::write(path, text).expect("write csv");
}

#[test]
fn csv_and_idx_files_mix_matched_by_position() {
    let dir = Scratch::new();
    let csv = dir.path("train.csv");
    idx_as_csv(&csv, 90, 6);
    let idx = write_idx(&dir, "t10k", 30, true);
    // A CSV training file with IDX validation and test files: both have labels and 36
    // features (it was refused for the CSV's label column name).
    let cfg = dir.config(
        "c.json",
        &config(&csv, json!({ "validation": p(&idx), "test": p(&idx) })),
    );
    let report = json_of(["train", p(&cfg), "--json"]);
    assert!(report["test_loss"].as_f64().is_some(), "{report}");
    assert_eq!(report["val_loss"], report["test_loss"], "{report}");
    // The same rows as IDX everywhere give the same run, bit for bit.
    let all_idx = write_idx(&dir, "train", 90, false);
    let cfg = dir.config(
        "i.json",
        &config(&all_idx, json!({ "validation": p(&idx), "test": p(&idx) })),
    );
    let again = json_of(["train", p(&cfg), "--json"]);
    for key in ["train_loss", "val_loss", "test_loss"] {
        assert_eq!(report[key], again[key], "{key}");
    }
    // IDX training data with a CSV test file.
    let cfg = dir.config("x.json", &config(&all_idx, json!({ "test": p(&csv) })));
    let report = json_of(["train", p(&cfg), "--json"]);
    assert!(report["test_loss"].as_f64().is_some(), "{report}");
    // Still the same number of features.
    std::fs::write(dir.path("narrow.csv"), "p0,p1,label\n1,2,0\n").expect("write");
    expect_train_exit_2(
        &dir,
        &config(&all_idx, json!({ "test": p(&dir.path("narrow.csv")) })),
        &[
            "narrow.csv: has 2 feature columns, but the training file",
            "has 36",
        ],
    );
}

#[test]
fn overflowing_test_loss_is_flagged_alike_by_every_command() {
    let dir = Scratch::new();
    // Rows of ±1.7e308 overflow the relu network's outputs: the test loss is not finite.
    std::fs::write(
        dir.path("x.csv"),
        "a,b,label\n1.7e308,-1.7e308,1\n-1.7e308,1.7e308,0\n",
    )
    .expect("write");
    let cfg = ab_config(
        &dir,
        json!({ "test": p(&dir.path("x.csv")), "standardize": false }),
    );
    let mut c: Value = serde_json::from_slice(&std::fs::read(&cfg).expect("read")).expect("json");
    c["model"]["activation"] = json!("relu");
    c["inner"]["steps"] = json!(40);
    c["outer"] = json!({ "steps": 2 });
    let cfg = dir.config("ab.json", &c);
    let flagged = f64::MAX;
    let warned = |stderr: &[u8]| {
        let text = String::from_utf8_lossy(stderr);
        assert!(
            text.contains("warning: the test loss on")
                && text.contains("x.csv is not finite")
                && text.contains("reported as 1.7976931348623157e308"),
            "{text}"
        );
    };
    let run = |args: &[&str]| {
        let out = revgrad().args(args).assert().success().get_output().clone();
        warned(&out.stderr);
        out.stdout
    };
    // train: a number, not null (which means "no test set"), in the JSON and the table.
    let report: Value = serde_json::from_slice(&run(&["train", p(&cfg), "--json"])).expect("json");
    assert_eq!(report["test_loss"].as_f64(), Some(flagged), "{report}");
    assert!(report["test_accuracy"].as_f64().is_some(), "{report}");
    let table = String::from_utf8(run(&["train", p(&cfg)])).expect("UTF-8");
    let test = table
        .lines()
        .find(|l| l.starts_with("test"))
        .expect("test row");
    assert!(test.contains("1.797693e308"), "{table}");
    // hypergrad: the same number.
    let h: Value = serde_json::from_slice(&run(&["hypergrad", p(&cfg), "--json"])).expect("json");
    assert_eq!(h["test_loss"].as_f64(), Some(flagged), "{h}");
    // tune and search: the cell holds it, and no row is rejected for the test set (search
    // rejected every trial).
    for args in [
        vec!["tune", p(&cfg), "--quiet"],
        vec!["search", p(&cfg), "--trials", "2", "--quiet"],
    ] {
        let t = crate::common::Table::parse(&run(&args));
        assert!(!t.rows.is_empty());
        for r in &t.rows {
            assert_eq!(t.cell(r, "status"), "ok", "{args:?}");
            assert_eq!(t.cell(r, "test_loss"), "1.7976931348623157e308", "{args:?}");
        }
    }
}
