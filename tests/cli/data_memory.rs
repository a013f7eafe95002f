//! Reading data within the memory limit, end to end: gzip IDX files that inflate past what
//! their header promises, headers that promise more than the limit, `data.limit` on a large
//! file, test files counted with the rest, CSV files too large for the limit, and an
//! allocation the system refuses.
//!
//! Memory is bounded by running the binary under an address-space limit (`ulimit -v`),
//! which counts every mapping, resident or not: a run that needed more would fail (or,
//! with an infallible allocation, abort). A child's maximum resident set would be no
//! measure: a child spawned by the test process inherits its high-water mark.
//!
//! The large files are made of concatenated gzip members (a member of 1 MiB of zeros is
//! about 1 KiB), so a file that inflates to hundreds of MiB is written in milliseconds.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Scratch, p, revgrad_path, wait_with_deadline};

const MIB: u64 = 1 << 20;

/// A finished run: exit code (`None` if a signal ended it) and stderr.
struct Run {
    code: Option<i32>,
    stderr: String,
}

impl Run {
    /// Asserts exit 2 with an `error:` line holding every part, no panic and no abort.
    fn assert_exit_2(&self, parts: &[&str]) {
        assert_eq!(self.code, Some(2), "stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("error:"), "{}", self.stderr);
        for bad in ["panicked", "memory allocation of", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(bad), "{}", self.stderr);
        }
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "stderr should contain {part:?}: {}",
                self.stderr
            );
        }
    }

    fn assert_success(&self) {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
    }
}

/// Runs `revgrad ARGS` with at most `mib` MiB of address space (and `env` set), stdout
/// discarded, for at most 120 s.
fn revgrad_within(mib: u64, args: &[&str], env: &[(&str, &str)]) -> Run {
    let script = format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024);
    let mut child = Command::new("sh")
        .args(["-c", &script, revgrad_path()])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let status = wait_with_deadline(&mut child, Duration::from_secs(120));
    let stderr = reader.join().expect("stderr reader");
    Run {
        code: status.code(),
        stderr,
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// `mib` MiB of zeros as concatenated gzip members of 1 MiB each.
fn gzip_zeros(mib: usize) -> Vec<u8> {
    gzip(&vec![0u8; MIB as usize]).repeat(mib)
}

fn images_header(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = 0x0803u32.to_be_bytes().to_vec();
    for v in [n, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b
}

/// A gzip labels file for `n` images, labels `i mod 3`.
fn labels_gz(n: u32) -> Vec<u8> {
    let mut b = 0x0801u32.to_be_bytes().to_vec();
    b.extend(n.to_be_bytes());
    b.extend((0..n).map(|i| (i % 3) as u8));
    gzip(&b)
}

/// `count` images of `side × side` pixels whose rows light up by class (`i mod 3`).
fn images_body(count: u32, side: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..count {
        for r in 0..side {
            for c in 0..side {
                let on = r % 3 == i % 3;
                b.push(if on { 200 } else { 0 } + ((i * 7 + r * 5 + c * 3) % 40) as u8);
            }
        }
    }
    b
}

/// Writes `PREFIX-images-idx3-ubyte.gz` (the bytes given) and its labels for `n` images;
/// returns the images path.
fn write_gz_pair(dir: &Scratch, prefix: &str, images: &[u8], n: u32) -> PathBuf {
    let ip = dir.path(&format!("{prefix}-images-idx3-ubyte.gz"));
    std::fs::write(&ip, images).expect("write images");
    std::fs::write(
        dir.path(&format!("{prefix}-labels-idx1-ubyte.gz")),
        labels_gz(n),
    )
    .expect("write labels");
    ip
}

/// `n` images of `side × side`: the first `real` drawn by class, the rest zeros, as gzip.
fn idx_gz(n: u32, side: u32, real: u32) -> Vec<u8> {
    let mut first = images_header(n, side, side);
    first.extend(images_body(real, side));
    let zeros = u64::from(n - real) * u64::from(side * side);
    let whole = (zeros / MIB) as usize;
    let mut gz = gzip(&first);
    gz.extend(gzip_zeros(whole));
    gz.extend(gzip(&vec![0u8; (zeros % MIB) as usize]));
    gz
}

/// A small training config on `train` with `data` fields merged in, written as `c.json`.
fn config(dir: &Scratch, train: &Path, data: Value) -> PathBuf {
    let mut d = json!({ "train": p(train) });
    for (k, v) in data.as_object().expect("data fields") {
        d[k] = v.clone();
    }
    dir.config(
        "c.json",
        &json!({
            "seed": 1,
            "data": d,
            "model": { "hidden": [4] },
            "inner": { "steps": 5, "batch_size": 10, "alpha": 0.1, "gamma": 0.9 }
        }),
    )
}

#[test]
fn gzip_bomb_stops_at_the_size_its_header_promises() {
    // 40 images of 3×3 pixels, then 512 MiB of zeros: about 600 KiB of gzip.
    let dir = Scratch::new();
    let mut gz = gzip(&[images_header(40, 3, 3), images_body(40, 3)].concat());
    gz.extend(gzip_zeros(512));
    let train = write_gz_pair(&dir, "bomb", &gz, 40);
    let cfg = config(&dir, &train, json!({}));
    // Inflating it all held 513 MiB at once.
    let run = revgrad_within(64, &["--memory-limit", "256M", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "bomb-images-idx3-ubyte.gz: unexpected bytes after the data",
        "dimensions 40×3×3",
        "promises 376 bytes",
    ]);
}

#[test]
fn idx_header_beyond_the_memory_limit_is_refused_before_reading() {
    // A header promising 4096 images of 256×256 (2 GiB as float64), with the data there.
    let dir = Scratch::new();
    let train = write_gz_pair(&dir, "huge", &idx_gz(4096, 256, 0), 4096);
    let cfg = config(&dir, &train, json!({}));
    // Before the check it inflated all 256 MiB and converted it (2.4 GB at the peak).
    let run = revgrad_within(64, &["--memory-limit", "64M", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "huge-images-idx3-ubyte.gz: 4096 images of 256×256 pixels as float64 needs about \
         2 GiB of memory, more than the limit of 64 MiB (--memory-limit)",
        "data.limit",
    ]);
    // The environment variable sets the same limit.
    let run = revgrad_within(64, &["train", p(&cfg)], &[("REVGRAD_MEMORY_LIMIT", "64M")]);
    run.assert_exit_2(&["needs about 2 GiB", "(REVGRAD_MEMORY_LIMIT)"]);
    // With data.limit the first 20 images pass the data check (2.5 MiB as float64): what
    // is refused is the model's workspace for 65,536 inputs, and nothing else is read.
    let cfg = config(&dir, &train, json!({ "limit": 20 }));
    let run = revgrad_within(64, &["--memory-limit", "64M", "train", p(&cfg)], &[]);
    run.assert_exit_2(&["c.json: this model and batch size needs about"]);
    assert!(!run.stderr.contains("images of"), "{}", run.stderr);
}

#[test]
fn idx_header_beyond_the_file_is_refused_before_allocating() {
    let dir = Scratch::new();
    // Plain: 1 KiB where the header promises 256 MiB; the length is checked first.
    let ip = dir.path("short-images-idx3-ubyte");
    std::fs::write(&ip, [images_header(4096, 256, 256), vec![0; 1024]].concat()).expect("w");
    let mut labels = 0x0801u32.to_be_bytes().to_vec();
    labels.extend(4096u32.to_be_bytes());
    labels.extend(vec![0u8; 4096]);
    std::fs::write(dir.path("short-labels-idx1-ubyte"), labels).expect("write");
    let cfg = config(&dir, &ip, json!({}));
    let run = revgrad_within(64, &["--memory-limit", "8G", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "short-images-idx3-ubyte: truncated IDX file: 1040 bytes, the header (dimensions \
         4096×256×256) needs 268435472",
    ]);
    // Gzip: 2 MiB of data where the header promises 256 MiB; the array grows with the data.
    let mut gz = gzip(&images_header(4096, 256, 256));
    gz.extend(gzip_zeros(2));
    let train = write_gz_pair(&dir, "cut", &gz, 4096);
    let cfg = config(&dir, &train, json!({}));
    let run = revgrad_within(96, &["--memory-limit", "8G", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "cut-images-idx3-ubyte.gz: truncated IDX file: the data ends after 2097168 bytes, the \
         header (dimensions 4096×256×256) needs 268435472",
    ]);
}

#[test]
fn refused_allocation_is_an_error_not_an_abort() {
    // Under a 400 MiB address-space limit, 2 GiB of float64 cannot be had, whatever
    // --memory-limit allows: the reader says so and exits 2 instead of aborting.
    let dir = Scratch::new();
    let train = write_gz_pair(&dir, "big", &idx_gz(4096, 256, 0), 4096);
    let cfg = config(&dir, &train, json!({}));
    let run = revgrad_within(400, &["--memory-limit", "8G", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "big-images-idx3-ubyte.gz: cannot allocate 2 GiB of memory for 4096 images of \
         256×256 pixels",
    ]);
}

#[test]
fn limit_reads_only_the_first_images() {
    // 120,000 images of 28×28 (90 MiB of pixels, 718 MiB as float64), of which 100 are
    // used: reading every image's bytes held 90 MiB and more.
    let dir = Scratch::new();
    let train = write_gz_pair(&dir, "fashion", &idx_gz(120_000, 28, 100), 120_000);
    let cfg = config(&dir, &train, json!({ "limit": 100 }));
    revgrad_within(64, &["--memory-limit", "100M", "train", p(&cfg)], &[]).assert_success();
}

#[test]
fn test_and_validation_files_count_against_the_limit() {
    // 200 training images and a test file of 10,000 (60 MiB as float64): the run was
    // accepted under 48 MiB because its estimate left the test set out.
    let dir = Scratch::new();
    let train = write_gz_pair(&dir, "train", &idx_gz(200, 28, 200), 200);
    let test = write_gz_pair(&dir, "t10k", &idx_gz(10_000, 28, 100), 10_000);
    for field in ["test", "validation"] {
        let cfg = config(&dir, &train, json!({ field: p(&test) }));
        let run = revgrad_within(64, &["--memory-limit", "48M", "train", p(&cfg)], &[]);
        run.assert_exit_2(&[
            "t10k-images-idx3-ubyte.gz: 10000 images of 28×28 pixels as float64, besides the",
            "of data already read, needs about 61.1 MiB",
        ]);
        revgrad_within(256, &["--memory-limit", "100M", "train", p(&cfg)], &[]).assert_success();
    }
}

/// A CSV of `n` rows of 10 features and a label, about 21 bytes a row.
fn write_big_csv(path: &Path, n: usize) {
    let mut text = String::with_capacity(n * 24 + 64);
    text += "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,label\n";
    for i in 0..n {
        let a = i % 7;
        text += &format!("{a},{},0,1,0,0,1,0,0,{},{}\n", i % 5, i % 3, a % 2);
    }
    std::fs::write(path, text).expect("write csv");
}

#[test]
fn large_csv_is_refused_as_it_grows_and_limit_keeps_few_rows() {
    // 1,000,000 rows (21 MiB of text, 84 MiB as float64) under an 8 MiB limit: reading it
    // whole held the text and the growing array (over 100 MiB).
    let dir = Scratch::new();
    let csv = dir.path("big.csv");
    write_big_csv(&csv, 1_000_000);
    let cfg = config(&dir, &csv, json!({}));
    let run = revgrad_within(64, &["--memory-limit", "8M", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "big.csv: 95326 rows of 11 columns as float64 (and the file may go on) needs about",
        "more than the limit of 8 MiB (--memory-limit)",
    ]);
    // data.limit keeps the first 1000 rows; every row is still read and checked.
    let cfg = config(&dir, &csv, json!({ "limit": 1000 }));
    revgrad_within(64, &["--memory-limit", "8M", "train", p(&cfg)], &[]).assert_success();
    let mut text = std::fs::read_to_string(&csv).expect("read");
    text += "1,2,3\n";
    std::fs::write(&csv, text).expect("write");
    let run = revgrad_within(64, &["--memory-limit", "8M", "train", p(&cfg)], &[]);
    run.assert_exit_2(&["big.csv:1000002: expected 11 columns, found 3"]);
}

#[test]
fn endless_csv_line_is_refused_before_it_is_held() {
    // A 3 MiB header line under a 32 MiB limit: the csv reader would hold all of it, and
    // far more for a line of 1,500,000 columns.
    let dir = Scratch::new();
    let csv = dir.path("wide.csv");
    let mut f = std::fs::File::create(&csv).expect("create");
    f.write_all(&b"a,".repeat(3 << 19)).expect("write");
    f.write_all(b"label\n0,1\n").expect("write");
    drop(f);
    let cfg = config(&dir, &csv, json!({}));
    let run = revgrad_within(64, &["--memory-limit", "32M", "train", p(&cfg)], &[]);
    run.assert_exit_2(&[
        "wide.csv:1: line longer than 2 MiB: reading it would pass the memory limit of \
         32 MiB (--memory-limit)",
    ]);
}
