//! # Data: loading, splitting and standardising the training and validation sets
//!
//! [`load`] turns the `data` section of a [`Config`] into two [`Dataset`]s:
//!
//! ```text
//! data.train ──read (CSV or IDX)──▶ rows ──┬── data.validation given: read it too
//!                                          └── otherwise: seeded split, ⌈f·N⌉ held out
//!            ──standardize with the TRAINING rows' mean μ and population std σ──▶ Data
//!
//! x' = (x − μ) / σ,   σ = sqrt(mean((x − μ)²)),   σ = 0 → 1
//! ```
//!
//! The format follows the file name: a name containing `idx3` is an MNIST IDX images file
//! (labels next to it, `idx3` → `idx1`, see [`idx`]); anything else is a CSV with a header
//! row (see [`csv`]). The classes are `0..n_classes` with `n_classes = 1 + max label` over
//! both sets.

pub mod batches;
pub mod csv;
pub mod idx;
pub mod split;

use std::path::Path;

use ndarray::{Array2, Axis};

use crate::config::Config;
use crate::error::{Error, Result};

/// Feature rows and integer class labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Features, shape `(n_samples, n_features)`.
    pub x: Array2<f64>,
    /// Class labels in `0..n_classes`, one per row.
    pub y: Vec<usize>,
}

impl Dataset {
    /// Number of rows (samples).
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// The rows at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range (indices come from [`split`], never from users).
    #[track_caller]
    pub fn select(&self, indices: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select(Axis(0), indices),
            y: indices.iter().map(|&i| self.y[i]).collect(),
        }
    }
}

/// Training and validation sets, ready for the model.
#[derive(Debug, Clone)]
pub struct Data {
    /// Training rows (standardised if `data.standardize`).
    pub train: Dataset,
    /// Validation rows (standardised with the training statistics).
    pub validation: Dataset,
    /// Number of features D (the input size of the network).
    pub n_features: usize,
    /// Number of classes K = 1 + the largest label in either set.
    pub n_classes: usize,
}

/// A file read by one of the loaders, with what is needed to check a second file against it.
struct Loaded {
    dataset: Dataset,
    /// The label column's name (CSV), `None` for IDX.
    label_name: Option<String>,
}

/// Reads one data file, choosing the format from its name.
fn read_file(path: &Path, label_column: Option<&str>) -> Result<Loaded> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains("idx3") {
        let dataset = idx::read(path)?;
        return Ok(Loaded {
            dataset,
            label_name: None,
        });
    }
    if name.contains("idx1") {
        return Err(Error::data(
            path,
            None,
            "this is an IDX labels file; give the images file (its name with idx3), \
             the labels are found next to it",
        ));
    }
    if name.ends_with(".gz") {
        return Err(Error::data(
            path,
            None,
            "compressed CSV files are not read; decompress it first (gunzip), or give an \
             IDX file (gzip IDX files, …idx3….gz, are read as they are)",
        ));
    }
    if path.extension().is_some_and(|e| e == "idx") {
        return Err(Error::data(
            path,
            None,
            "IDX files must have idx3 (images) in their name, with the labels file named \
             the same with idx1",
        ));
    }
    let table = csv::read(path, label_column)?;
    Ok(Loaded {
        dataset: table.dataset,
        label_name: Some(table.label_name),
    })
}

/// Loads the data described by `config.data` (SPEC §2).
///
/// # Errors
/// [`Error::Data`] naming the file (and line, for CSV) for malformed files, a validation
/// file whose feature count or label column differs from the training file, or too few
/// rows to split; [`Error::Io`] for unreadable files; [`Error::Config`] on
/// `inner.batch_size` if it exceeds the number of training rows.
pub fn load(config: &Config) -> Result<Data> {
    let d = &config.data;
    let label_column = d.label_column.as_deref();
    let train = read_file(&d.train, label_column)?;
    let (mut train_set, mut val_set) = match &d.validation {
        Some(vpath) => {
            let val = read_file(vpath, label_column)?;
            if val.dataset.n_features() != train.dataset.n_features() {
                return Err(Error::data(
                    vpath,
                    None,
                    format!(
                        "has {} feature columns, but the training file {} has {}",
                        val.dataset.n_features(),
                        d.train.display(),
                        train.dataset.n_features()
                    ),
                ));
            }
            if val.label_name != train.label_name {
                let show = |l: &Option<String>| match l {
                    Some(n) => format!("label column \"{n}\""),
                    None => "IDX labels".to_owned(),
                };
                return Err(Error::data(
                    vpath,
                    None,
                    format!(
                        "has {}, but the training file {} has {}",
                        show(&val.label_name),
                        d.train.display(),
                        show(&train.label_name)
                    ),
                ));
            }
            (train.dataset, val.dataset)
        }
        None => {
            let n = train.dataset.len();
            if n < 2 {
                return Err(Error::data(
                    &d.train,
                    None,
                    format!(
                        "has {n} data row, need at least 2 to hold out a validation set \
                         (or give data.validation)"
                    ),
                ));
            }
            let (tr, va) = split::holdout(n, d.validation_fraction, config.seed);
            (train.dataset.select(&tr), train.dataset.select(&va))
        }
    };

    let max_label = train_set
        .y
        .iter()
        .chain(&val_set.y)
        .copied()
        .max()
        .unwrap_or(0);
    if d.standardize {
        standardize(&mut train_set, &mut val_set);
    }
    if config.inner.batch_size > train_set.len() {
        return Err(Error::config(
            &config.file,
            "inner.batch_size",
            format!(
                "must be at most the number of training rows ({}), got {}",
                train_set.len(),
                config.inner.batch_size
            ),
        ));
    }
    Ok(Data {
        n_features: train_set.n_features(),
        n_classes: max_label + 1,
        train: train_set,
        validation: val_set,
    })
}

/// Standardises both sets in place with the training rows' per-column mean and population
/// std (a column with std 0 is only centred):
///
/// ```text
/// μ_j = (1/N)·Σ_i x_ij,   σ_j = sqrt((1/N)·Σ_i (x_ij − μ_j)²),   x_ij ← (x_ij − μ_j) / σ_j
/// ```
pub fn standardize(train: &mut Dataset, validation: &mut Dataset) {
    let n = train.len();
    if n == 0 {
        return;
    }
    let nf = n as f64;
    let mean = train.x.sum_axis(Axis(0)) / nf;
    let mut std = ndarray::Array1::<f64>::zeros(train.n_features());
    for row in train.x.rows() {
        for ((s, &x), &m) in std.iter_mut().zip(row).zip(&mean) {
            *s += (x - m) * (x - m);
        }
    }
    std.mapv_inplace(|s| {
        let s = (s / nf).sqrt();
        if s > 0.0 && s.is_finite() { s } else { 1.0 }
    });
    for x in [&mut train.x, &mut validation.x] {
        for mut row in x.rows_mut() {
            for ((v, &m), &s) in row.iter_mut().zip(&mean).zip(&std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    /// A config in `dir` with `data` and `inner` JSON fragments.
    fn config_in(dir: &Path, data: &str, inner: &str) -> Config {
        let text = format!(r#"{{"data": {data}, "inner": {inner}}}"#);
        Config::from_json_str(&text, &dir.join("c.json")).unwrap()
    }

    #[test]
    fn digits_with_defaults() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = config_in(
            &root.join("configs"),
            r#"{"train": "../data/digits.csv"}"#,
            "{}",
        );
        let d = load(&c).unwrap();
        assert_eq!(d.train.len(), 1437);
        assert_eq!(d.validation.len(), 360);
        assert_eq!(d.n_features, 64);
        assert_eq!(d.train.x.dim(), (1437, 64));
        assert_eq!(d.n_classes, 10);
    }

    #[test]
    fn split_sizes_and_train_statistics() {
        let c = config_in(
            &fixtures(),
            r#"{"train": "tiny.csv"}"#,
            r#"{"batch_size": 4}"#,
        );
        let d = load(&c).unwrap();
        // round(0.2 · 20) = 4 held out.
        assert_eq!((d.train.len(), d.validation.len()), (16, 4));
        assert_eq!((d.n_features, d.n_classes), (4, 3));
        for col in d.train.x.columns() {
            let n = col.len() as f64;
            let mean = col.sum() / n;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            assert!(mean.abs() < 1e-12, "mean {mean}");
            assert!((var.sqrt() - 1.0).abs() < 1e-12, "std {}", var.sqrt());
        }
        // Validation uses the training statistics, so its mean is not exactly 0.
        let vmean = d.validation.x.column(0).sum() / 4.0;
        assert!(vmean.abs() > 1e-9);
    }

    #[test]
    fn standardize_uses_train_stats_and_keeps_constant_columns() {
        let mut tr = Dataset {
            x: ndarray::array![[1.0, 5.0], [3.0, 5.0]],
            y: vec![0, 1],
        };
        let mut va = Dataset {
            x: ndarray::array![[2.0, 6.0]],
            y: vec![0],
        };
        standardize(&mut tr, &mut va);
        assert_eq!(tr.x, ndarray::array![[-1.0, 0.0], [1.0, 0.0]]);
        assert_eq!(va.x, ndarray::array![[0.0, 1.0]]);
    }

    #[test]
    fn no_standardize_keeps_raw_values() {
        let c = config_in(
            &fixtures(),
            r#"{"train": "tiny.csv", "validation": "tiny.csv", "standardize": false}"#,
            r#"{"batch_size": 4}"#,
        );
        let d = load(&c).unwrap();
        assert_eq!(d.train.len(), 20);
        assert_eq!(d.validation.len(), 20);
        assert_eq!(d.train.x[[0, 0]].to_bits(), 1.288f64.to_bits());
    }

    #[test]
    fn batch_size_too_large_names_field() {
        let c = config_in(
            &fixtures(),
            r#"{"train": "tiny.csv"}"#,
            r#"{"batch_size": 5000}"#,
        );
        let e = load(&c).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.contains("c.json: inner.batch_size"), "{msg}");
        assert!(
            msg.contains("must be at most the number of training rows (16), got 5000"),
            "{msg}"
        );
    }

    #[test]
    fn validation_file_must_match() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "a,b,label\n1,2,0\n3,4,1\n").unwrap();
        std::fs::write(dir.path().join("v3.csv"), "a,b,c,label\n1,2,3,0\n").unwrap();
        std::fs::write(dir.path().join("vl.csv"), "a,b,class\n1,2,0\n").unwrap();
        let c = config_in(
            dir.path(),
            r#"{"train": "t.csv", "validation": "v3.csv"}"#,
            r#"{"batch_size": 1}"#,
        );
        let msg = load(&c).unwrap_err().to_string();
        assert!(msg.contains("v3.csv: has 3 feature columns"), "{msg}");
        assert!(msg.contains("has 2"), "{msg}");
        let c = config_in(
            dir.path(),
            r#"{"train": "t.csv", "validation": "vl.csv"}"#,
            r#"{"batch_size": 1}"#,
        );
        let msg = load(&c).unwrap_err().to_string();
        assert!(msg.contains("vl.csv: has label column \"class\""), "{msg}");
        // With the label named explicitly, both files must have it.
        let c = config_in(
            dir.path(),
            r#"{"train": "t.csv", "validation": "vl.csv", "label_column": "label"}"#,
            r#"{"batch_size": 1}"#,
        );
        let msg = load(&c).unwrap_err().to_string();
        assert!(msg.contains("vl.csv:1: no column named \"label\""), "{msg}");
    }

    #[test]
    fn n_classes_covers_both_sets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "a,label\n1,0\n3,1\n").unwrap();
        std::fs::write(dir.path().join("v.csv"), "a,label\n1,4\n").unwrap();
        let c = config_in(
            dir.path(),
            r#"{"train": "t.csv", "validation": "v.csv"}"#,
            r#"{"batch_size": 1}"#,
        );
        assert_eq!(load(&c).unwrap().n_classes, 5);
    }

    #[test]
    fn one_row_cannot_be_split() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "a,label\n1,0\n").unwrap();
        let c = config_in(dir.path(), r#"{"train": "t.csv"}"#, r#"{"batch_size": 1}"#);
        let msg = load(&c).unwrap_err().to_string();
        assert!(
            msg.contains("t.csv: has 1 data row, need at least 2"),
            "{msg}"
        );
    }

    #[test]
    fn idx_through_load_and_labels_file_rejected() {
        let dir = tempfile::tempdir().unwrap();
        idx::tests::write_pair(dir.path(), "tr", 5, 2, 3);
        let c = config_in(
            dir.path(),
            r#"{"train": "tr-images-idx3-ubyte"}"#,
            r#"{"batch_size": 2}"#,
        );
        let d = load(&c).unwrap();
        assert_eq!((d.train.len(), d.validation.len(), d.n_features), (4, 1, 6));
        let c = config_in(
            dir.path(),
            r#"{"train": "tr-labels-idx1-ubyte"}"#,
            r#"{"batch_size": 2}"#,
        );
        let msg = load(&c).unwrap_err().to_string();
        assert!(
            msg.contains("idx1-ubyte: this is an IDX labels file"),
            "{msg}"
        );
    }
}
