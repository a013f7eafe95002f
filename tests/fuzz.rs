//! Hostile input for the three readers: the config parser, the CSV reader and the IDX
//! reader (plain and gzip) get arbitrary and mutated input for a bounded number of cases
//! each. Errors are fine; a panic fails the test (proptest reports the smallest input that
//! panics). The gzip IDX reader must also keep its memory to the data it is given, whatever
//! its header promises or however far the gzip data goes on: a counting allocator measures
//! the peak bytes it holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use revgrad::config::Config;
use revgrad::data::{csv, idx};

/// The system allocator, counting the bytes each thread holds and their peak (per thread:
/// the harness runs other tests on other threads).
struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: the slots may be gone while a thread is being torn down.
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// The most bytes this thread held at once while `f` ran, above what it held before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    (out, (PEAK.with(Cell::get) - start).max(0) as usize)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// A gzip member of 1 MiB of zeros (about 1 KiB), made once.
fn zeros_member() -> &'static [u8] {
    static MEMBER: OnceLock<Vec<u8>> = OnceLock::new();
    MEMBER.get_or_init(|| gzip(&vec![0; 1 << 20]))
}

/// A valid config to mutate; its data path is relative to the config file's folder.
const VALID: &str = r#"{
  "seed": 0,
  "data": { "train": "t.csv", "validation": null, "validation_fraction": 0.2,
            "label_column": "label", "standardize": true },
  "model": { "hidden": [4], "activation": "tanh", "init_scale": 1.0, "init_file": null },
  "inner": { "optimizer": "momentum", "steps": 3, "batch_size": 2, "shuffle": true,
             "alpha": 0.1, "gamma": 0.9, "l2": 0.0 },
  "outer": { "steps": 2, "optimizer": "adam", "learning_rate": 0.1, "tune": ["alpha", "gamma"] }
}"#;

const FIELDS: [&str; 20] = [
    "seed",
    "data.train",
    "data.validation",
    "data.validation_fraction",
    "data.label_column",
    "data.standardize",
    "model.hidden",
    "model.activation",
    "model.init_scale",
    "model.init_file",
    "inner.optimizer",
    "inner.steps",
    "inner.batch_size",
    "inner.shuffle",
    "inner.alpha",
    "inner.gamma",
    "inner.l2",
    "outer.steps",
    "outer.learning_rate",
    "outer.tune",
];

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// JSON values a hostile config might hold: extreme numbers, odd strings, nesting.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("-0".to_owned()),
        Just("1e308".to_owned()),
        Just("1e309".to_owned()),
        Just("-1e-320".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("0.99999999".to_owned()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("\"../../../../dev/zero\"".to_owned()),
        Just("\"t.csv\"".to_owned()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|v| format!("[{}]", v.join(",")))
    })
}

/// Writes a small valid CSV next to the config, so mutations can reach the data stage.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("t.csv"),
        "a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
    )
    .expect("write");
    dir
}

fn parse_and_load(text: &str, dir: &Path) {
    // Up to the data and the size checks (building the network could allocate gigabytes).
    if let Ok(config) = Config::from_json_str(text, &dir.join("c.json")) {
        let _ = revgrad::problem::Experiment::from_config(config);
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn config_parser_survives_arbitrary_text(text in "\\PC{0,200}") {
        let dir = scratch();
        parse_and_load(&text, dir.path());
    }

    #[test]
    fn config_parser_survives_mutated_json(
        at in 0usize..VALID.len(),
        cut in 0usize..20,
        insert in "[{}\\[\\]\",:0-9a-z.eE+\\- \u{feff}\u{0}]{0,8}",
    ) {
        let dir = scratch();
        let bytes = VALID.as_bytes();
        let end = (at + cut).min(bytes.len());
        let mut mutated = bytes[..at].to_vec();
        mutated.extend(insert.as_bytes());
        mutated.extend(&bytes[end..]);
        parse_and_load(&String::from_utf8_lossy(&mutated), dir.path());
    }

    #[test]
    fn config_parser_survives_hostile_field_values(
        field in 0usize..FIELDS.len(),
        value in json_value(),
    ) {
        let dir = scratch();
        let mut config: serde_json::Value = serde_json::from_str(VALID).expect("valid");
        let (section, key) = FIELDS[field].split_once('.').unwrap_or(("", FIELDS[field]));
        let parsed: serde_json::Value =
            serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
        if section.is_empty() {
            config[key] = parsed;
        } else {
            config[section][key] = parsed;
        }
        parse_and_load(&config.to_string(), dir.path());
        // The raw text too (serde_json::Value cannot hold 1e309).
        let raw = VALID.replacen("\"seed\": 0", &format!("\"seed\": {value}"), 1);
        parse_and_load(&raw, dir.path());
    }

    #[test]
    fn csv_reader_survives_arbitrary_bytes(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"0123456789,,,.-e\n\n\r\"ab \tinfNa".to_vec()),
                1 => any::<u8>(),
            ],
            0..300,
        ),
        label in prop::option::of(prop_oneof![Just("label".to_owned()), "[a-c]{0,2}"]),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.csv");
        std::fs::write(&path, &bytes).expect("write");
        let _ = csv::read(&path, label.as_deref());
    }

    #[test]
    fn idx_reader_survives_arbitrary_files(
        dims in prop::collection::vec(
            prop_oneof![0u32..4, Just(u32::MAX), Just(1 << 31), any::<u32>()],
            3,
        ),
        n_labels in prop_oneof![0u32..4, any::<u32>()],
        images_magic in prop_oneof![Just(0x0803u32), any::<u32>()],
        labels_magic in prop_oneof![Just(0x0801u32), any::<u32>()],
        body in prop::collection::vec(any::<u8>(), 0..64),
        label_body in prop::collection::vec(any::<u8>(), 0..8),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let images = dir.path().join("f-images-idx3-ubyte");
        let labels = dir.path().join("f-labels-idx1-ubyte");
        let bytes = raw.unwrap_or_else(|| {
            let mut b = images_magic.to_be_bytes().to_vec();
            for d in &dims {
                b.extend(d.to_be_bytes());
            }
            b.extend(&body);
            b
        });
        std::fs::write(&images, bytes).expect("write");
        let mut l = labels_magic.to_be_bytes().to_vec();
        l.extend(n_labels.to_be_bytes());
        l.extend(&label_body);
        std::fs::write(&labels, l).expect("write");
        let _ = idx::read(&images);
    }

    #[test]
    fn idx_reader_survives_consistent_headers(
        n in 0u32..5,
        rows in 0u32..4,
        cols in 0u32..4,
        extra in -2i32..3,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let images = dir.path().join("g-idx3-ubyte");
        let mut b = 0x0803u32.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            b.extend(d.to_be_bytes());
        }
        let len = (n * rows * cols) as i32 + extra;
        b.extend(std::iter::repeat_n(7u8, len.max(0) as usize));
        std::fs::write(&images, b).expect("write");
        let mut l = 0x0801u32.to_be_bytes().to_vec();
        l.extend(n.to_be_bytes());
        l.extend((0..n).map(|i| i as u8));
        std::fs::write(dir.path().join("g-idx1-ubyte"), l).expect("write");
        if let Ok(d) = idx::read(&images) {
            prop_assert!(d.x.ncols() > 0 && d.x.nrows() > 0);
        }
    }
    #[test]
    fn gzip_idx_reader_holds_only_the_data_it_is_given(
        dims in prop::collection::vec(
            prop_oneof![0u32..5, Just(1 << 10), Just(1 << 16), Just(u32::MAX), any::<u32>()],
            3,
        ),
        n_labels in prop_oneof![0u32..5, Just(1 << 20), any::<u32>()],
        body in prop::collection::vec(any::<u8>(), 0..64),
        label_body in prop::collection::vec(any::<u8>(), 0..8),
        // Trailing members of 1 MiB of zeros (data past the header's size, or the rest of
        // a large promise), on the images or the labels.
        zeros in 0usize..3,
        zeros_on_labels in any::<bool>(),
        // Cut the images' gzip data short, or flip one of its bytes.
        cut in prop::option::of(any::<prop::sample::Index>()),
        flip in prop::option::of((any::<prop::sample::Index>(), 1u8..)),
        limit in prop::option::of(0usize..6),
    ) {
        // Headers may promise anything up to the limit: at most 8 MiB as float64.
        revgrad::memory::set_limit("64M").expect("a size");
        let dir = tempfile::tempdir().expect("temp dir");
        let images = dir.path().join("z-images-idx3-ubyte.gz");
        let labels = dir.path().join("z-labels-idx1-ubyte.gz");
        let mut head = 0x0803u32.to_be_bytes().to_vec();
        for d in &dims {
            head.extend(d.to_be_bytes());
        }
        head.extend(&body);
        let mut gz = gzip(&head);
        let mut lgz = {
            let mut l = 0x0801u32.to_be_bytes().to_vec();
            l.extend(n_labels.to_be_bytes());
            l.extend(&label_body);
            gzip(&l)
        };
        let trailing = if zeros_on_labels { &mut lgz } else { &mut gz };
        for _ in 0..zeros {
            trailing.extend(zeros_member());
        }
        if let Some(at) = cut {
            gz.truncate(at.index(gz.len() + 1));
        }
        if let Some((at, mask)) = flip.filter(|_| !gz.is_empty()) {
            let k = at.index(gz.len());
            gz[k] ^= mask;
        }
        std::fs::write(&images, &gz).expect("write");
        std::fs::write(&labels, &lgz).expect("write");
        let (result, peak) = peak_during(|| idx::read_first(&images, limit, 0));
        // What the reader may hold: its buffers and decoders, and the data actually there
        // (at most what the header promises) as f64 and usize, with room to grow.
        let promised = dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(u64::from(d)));
        let zeros_bytes = (zeros as u64) << 20;
        let (image_zeros, label_zeros) = if zeros_on_labels {
            (0, zeros_bytes)
        } else {
            (zeros_bytes, 0)
        };
        let image_data = promised.min(body.len() as u64 + image_zeros);
        let label_data = u64::from(n_labels).min(label_body.len() as u64 + label_zeros);
        let bound = (1 << 20) + 16 * (image_data + label_data);
        prop_assert!(
            (peak as u64) <= bound,
            "held {peak} bytes (bound {bound}) for dims {dims:?}, {n_labels} labels: {:?}",
            result.map(|(d, n)| (d.x.dim(), n))
        );
    }
}
