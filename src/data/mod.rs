//! # Data: loading, splitting and standardising the training, validation and test sets
//!
//! [`load`] turns the `data` section of a [`Config`] into [`Dataset`]s:
//!
//! ```text
//! data.train ──read (CSV or IDX, IDX maybe gzip)──▶ rows ──data.limit: first N rows──▶
//!   ├── data.validation given: read it; otherwise seeded holdout of ⌈f·N⌉ rows
//!   └── data.test given: read it; otherwise, if test_fraction > 0, a disjoint holdout
//!   ──data.label_noise: ⌊f·N_train⌋ training labels → another class (see [`noise`])
//!   ──data.synthetic: the training set becomes learnable rows built from them ([`synthetic`])
//!   ──standardize every set with the real TRAINING rows' mean μ and population std σ──▶ Data
//!
//! x' = (x − μ) / σ,   σ = sqrt(mean((x − μ)²)),   σ = 0 → 1
//! ```
//!
//! The format follows the file name: a name containing `idx3` is an MNIST IDX images file
//! (labels next to it, `idx3` → `idx1`, plain or `.gz`, see [`idx`]); anything else is a
//! CSV with a header row (see [`csv`]). The classes are `0..n_classes` with
//! `n_classes = 1 + max label` over all sets.
//!
//! A validation or test file must have the training file's features. Two CSV files are
//! matched by name: the same label column and the same feature names, in any order (the
//! other file's columns are put in the training file's order); different names are an
//! error naming both files and a column. IDX columns have no names, so a mix of CSV and IDX
//! files is matched by position: the same number of features.
//!
//! Only the rows kept are read into memory: the first `data.limit` rows of the training
//! file (an IDX file is not read past them), and every row of the others. Each file's rows
//! are counted against the memory limit ([`crate::memory`]) with the files read before
//! it, before an IDX file's data is allocated and as a CSV file's rows arrive, and so are
//! the held-out copies.

pub mod batches;
pub mod csv;
pub mod fingerprint;
pub mod idx;
pub mod learnable;
pub mod noise;
pub mod poison;
pub mod split;
pub mod synthetic;

use std::path::Path;

use ndarray::{Array2, Axis};

use crate::config::Config;
use crate::error::{Error, Result};

pub use learnable::Learnable;
pub use noise::FlippedLabel;
pub use poison::PoisonRow;

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

    /// Keeps only the rows `keep` (strictly increasing), in place: row `keep[k]` moves to
    /// row k without a second copy of the features.
    ///
    /// # Panics
    /// If `keep` is not strictly increasing or holds an out-of-range row (indices come from
    /// [`split`], never from users).
    #[track_caller]
    pub fn retain_rows(&mut self, keep: &[usize]) {
        assert!(
            keep.windows(2).all(|w| w[0] < w[1]),
            "rows must be increasing"
        );
        assert!(
            keep.last().is_none_or(|&i| i < self.len()),
            "row out of range"
        );
        let d = self.n_features();
        match self.x.as_slice_mut() {
            Some(flat) => {
                // keep[k] ≥ k, so each row moves towards the front over rows already moved.
                for (k, &i) in keep.iter().enumerate() {
                    if i != k {
                        flat.copy_within(i * d..(i + 1) * d, k * d);
                    }
                }
                self.x.slice_collapse(ndarray::s![..keep.len(), ..]);
            }
            None => self.x = self.x.select(Axis(0), keep),
        }
        for (k, &i) in keep.iter().enumerate() {
            self.y[k] = self.y[i];
        }
        self.y.truncate(keep.len());
    }

    /// Bytes of the features (f64) and labels (usize).
    pub fn bytes(&self) -> u64 {
        (self.x.len() as u64 + self.y.len() as u64).saturating_mul(8)
    }

    /// [`Dataset::select`], with the memory for the copy asked of the system first: its
    /// refusal is an error naming `file`, not an abort.
    ///
    /// # Errors
    /// [`Error::Data`] if the allocation is refused.
    ///
    /// # Panics
    /// As [`Dataset::select`].
    #[track_caller]
    pub fn try_select(&self, indices: &[usize], file: &Path) -> Result<Dataset> {
        let d = self.n_features();
        let n = indices.len();
        let bytes = (n as u64).saturating_mul(d as u64 + 1).saturating_mul(8);
        let what = format!("a copy of {n} of its rows");
        let refused = |e| crate::memory::refused(file, bytes, &what, &e);
        let mut flat: Vec<f64> = Vec::new();
        flat.try_reserve_exact(n.saturating_mul(d))
            .map_err(refused)?;
        let mut y = Vec::new();
        y.try_reserve_exact(n).map_err(refused)?;
        for &i in indices {
            flat.extend(self.x.row(i).iter());
            y.push(self.y[i]);
        }
        let x = Array2::from_shape_vec((n, d), flat).expect("n rows of d features");
        Ok(Dataset { x, y })
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

/// Training, validation and (optionally) test sets, ready for the model.
#[derive(Debug, Clone)]
pub struct Data {
    /// Training rows (standardised if `data.standardize`, labels flipped by
    /// `data.label_noise`).
    pub train: Dataset,
    /// Validation rows (standardised with the training statistics).
    pub validation: Dataset,
    /// Test rows (standardised with the training statistics), if `data.test` or
    /// `data.test_fraction` asks for them; only reported, never used for tuning.
    pub test: Option<Dataset>,
    /// Number of features D (the input size of the network).
    pub n_features: usize,
    /// Number of classes K = 1 + the largest label in any set.
    pub n_classes: usize,
    /// Training rows whose labels `data.label_noise` replaced, sorted by row, with their
    /// original labels (empty without label noise, and with a synthetic set).
    pub flipped: Vec<FlippedLabel>,
    /// The learnable training rows (`data.synthetic` or `data.poison`), `None` without.
    pub learnable: Option<Learnable>,
    /// The poison rows' sources and labels (`data.poison`; empty without).
    pub poison: Vec<PoisonRow>,
    /// The CSV's feature column names, `None` for IDX data.
    pub feature_names: Option<Vec<String>>,
}

/// A file read by one of the loaders, with what is needed to check a second file against it.
struct Loaded {
    dataset: Dataset,
    /// Rows in the file (`dataset` may hold only the first `data.limit` of them).
    rows: usize,
    /// The label column's name (CSV), `None` for IDX.
    label_name: Option<String>,
    /// Feature column names (CSV), `None` for IDX (columns are named by index).
    feature_names: Option<Vec<String>>,
}

impl Loaded {
    /// How a message names feature column `j`: `"name"` for CSV, `j` for IDX.
    fn column_name(&self, j: usize) -> String {
        match self.feature_names.as_ref().and_then(|n| n.get(j)) {
            Some(name) => format!("\"{name}\""),
            None => format!("{j} (0-based)"),
        }
    }
}

/// Reads one data file, choosing the format from its name, keeping its first `limit` rows
/// (`rows` still counts every row of the file); what it keeps is counted against the memory
/// limit together with `held`, the bytes of the files already read.
fn read_file(
    path: &Path,
    label_column: Option<&str>,
    limit: Option<usize>,
    held: u64,
) -> Result<Loaded> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains("idx3") {
        let (dataset, rows) = idx::read_first(path, limit, held)?;
        return Ok(Loaded {
            dataset,
            rows,
            label_name: None,
            feature_names: None,
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
    let table = csv::read_first(path, label_column, limit, held)?;
    Ok(Loaded {
        rows: table.rows,
        dataset: table.dataset,
        label_name: Some(table.label_name),
        feature_names: Some(table.feature_names),
    })
}

/// Loads the data described by `config.data` (SPEC §2.1).
///
/// # Errors
/// [`Error::Data`] naming the file (and line, for CSV) for malformed files, a validation or
/// test file whose features or label column differ from the training file's, too few rows
/// to split, a column that cannot be standardised, or memory the system refuses;
/// [`Error::Usage`] for data past the memory limit; [`Error::Io`] for unreadable files;
/// [`Error::Config`] on `data.limit` if it exceeds the training file's rows, on
/// `data.label_noise` with a single class, and on `inner.batch_size` if it exceeds the
/// number of training rows.
pub fn load(config: &Config) -> Result<Data> {
    let d = &config.data;
    let label_column = d.label_column.as_deref();
    let mut train = read_file(&d.train, label_column, d.limit, 0)?;
    if let Some(limit) = d.limit {
        let n = train.rows;
        if limit > n {
            return Err(Error::config(
                &config.file,
                "data.limit",
                format!(
                    "must be at most the number of rows of {} ({n}), got {limit}",
                    d.train.display()
                ),
            ));
        }
    }
    let mut held = train.dataset.bytes();
    let mut read_other = |path: &Path| -> Result<Loaded> {
        let mut other = read_file(path, label_column, None, held)?;
        match_columns(path, &mut other, &d.train, &train)?;
        held = held.saturating_add(other.dataset.bytes());
        Ok(other)
    };
    let validation = d.validation.as_deref().map(&mut read_other).transpose()?;
    let test = d.test.as_deref().map(&mut read_other).transpose()?;

    // Holdouts of the training file, one seeded permutation (see `split`).
    let n = train.dataset.len();
    let val_fraction = validation.is_none().then_some(d.validation_fraction);
    let test_fraction = (test.is_none() && d.test_fraction > 0.0).then_some(d.test_fraction);
    let Some((n_val, n_test)) = split::sizes(n, val_fraction, test_fraction) else {
        return Err(too_few_rows(&d.train, n, val_fraction, test_fraction));
    };
    // Moved out (`train` keeps the column names for messages) and compacted in place: one
    // copy of the training rows in memory, not two (60,000 × 784 f64 are 376 MB).
    let mut train_set = std::mem::replace(
        &mut train.dataset,
        Dataset {
            x: Array2::zeros((0, 0)),
            y: Vec::new(),
        },
    );
    let (mut held_val, mut held_test) = (None, None);
    if n_val + n_test > 0 {
        let s = split::split(n, n_val, n_test, config.seed);
        // The holdouts are copies, made before the training rows are compacted.
        let copies = (n_val + n_test) as u64 * (train_set.n_features() as u64 + 1) * 8;
        crate::memory::ensure_fits_or(
            held.saturating_add(copies),
            &format!(
                "{}: the held-out rows (a copy of {} of its {n} rows, besides the {} read)",
                d.train.display(),
                n_val + n_test,
                crate::memory::human(held)
            ),
            "keep fewer rows (data.limit), give data.validation or data.test files, or raise \
             the limit",
        )?;
        let pick = |rows: &[usize]| {
            (!rows.is_empty())
                .then(|| train_set.try_select(rows, &d.train))
                .transpose()
        };
        (held_val, held_test) = (pick(&s.validation)?, pick(&s.test)?);
        train_set.retain_rows(&s.train);
    }
    // Where each set's rows come from, for messages.
    let val_file = d.validation.as_deref().unwrap_or(&d.train);
    let test_file = d.test.as_deref().unwrap_or(&d.train);
    let mut val_set = match (validation, held_val) {
        (Some(v), _) => v.dataset,
        (None, Some(v)) => v,
        // `split::sizes` holds out at least one row when there is no validation file.
        (None, None) => unreachable!("a validation set is read or held out"),
    };
    let mut test_set = test.map(|t| t.dataset).or(held_test);

    let max_label = [Some(&train_set), Some(&val_set), test_set.as_ref()]
        .into_iter()
        .flatten()
        .flat_map(|s| s.y.iter().copied())
        .max()
        .unwrap_or(0);
    let n_classes = max_label + 1;

    let n_noisy = noise::n_flipped(train_set.len(), d.label_noise);
    if n_noisy > 0 && n_classes < 2 {
        return Err(Error::config(
            &config.file,
            "data.label_noise",
            format!(
                "must be 0 when the data has a single class (no other label to draw), got {}",
                crate::error::show(d.label_noise)
            ),
        ));
    }
    let mut flipped = noise::flip_labels(&mut train_set.y, d.label_noise, n_classes, config.seed);
    // The synthetic set in raw units, from the real training rows, before they are
    // standardised.
    // Learnable rows are allocated here, three copies at most (raw, standardised, and the
    // problem's own): their size is checked against the limit first.
    let learnable_rows = match (&d.synthetic, &d.poison) {
        (Some(syn), _) => n_classes.checked_mul(syn.per_class),
        (None, Some(p)) => train_set.len().checked_add(p.rows),
        (None, None) => Some(0),
    };
    let learnable_bytes = learnable_rows
        .and_then(|r| r.checked_mul(train_set.n_features() + 1))
        .and_then(|v| v.checked_mul(3 * 8))
        .map(|b| b as u64);
    let (field, hint) = match &d.synthetic {
        Some(_) => (
            "data.synthetic.per_class",
            "use a smaller data.synthetic.per_class, or raise the limit",
        ),
        None => (
            "data.poison.rows",
            "use fewer data.poison.rows, or raise the limit",
        ),
    };
    match learnable_bytes {
        Some(bytes) if bytes > 0 => crate::memory::ensure_fits_or(
            held.saturating_add(bytes),
            &format!(
                "{}: {field} ({} learnable rows of {} features, besides the {} read)",
                config.file.display(),
                learnable_rows.unwrap_or(0),
                train_set.n_features(),
                crate::memory::human(held)
            ),
            hint,
        )?,
        Some(_) => {}
        None => {
            return Err(Error::config(
                &config.file,
                field,
                "gives more learnable rows than this machine can address; use fewer",
            ));
        }
    }
    let synthetic = match &d.synthetic {
        Some(syn) => match synthetic::build(&train_set, n_classes, syn, config.seed) {
            Ok(built) => Some(built),
            Err((class, have)) => {
                return Err(Error::config(
                    &config.file,
                    "data.synthetic.per_class",
                    format!(
                        "must be at most the number of training rows of each class with init \
                         \"real\" (class {class} has {have}), got {}",
                        syn.per_class
                    ),
                ));
            }
        },
        None => None,
    };
    let poison = match &d.poison {
        Some(p) => {
            if n_classes < 2 {
                return Err(Error::config(
                    &config.file,
                    "data.poison",
                    "needs at least two classes: \"flip\" gives each copy another class, and \
                     the data has one",
                ));
            }
            if p.rows >= train_set.len() {
                return Err(Error::config(
                    &config.file,
                    "data.poison.rows",
                    format!(
                        "must be below the number of training rows ({}), got {}",
                        train_set.len(),
                        p.rows
                    ),
                ));
            }
            let stats = learnable::feature_stats(&train_set);
            let (set, rows) = poison::build(&train_set, n_classes, p, config.seed);
            Some((set, stats, rows))
        }
        None => None,
    };

    let mut standardizer = Standardizer::identity(train_set.n_features());
    if d.standardize {
        let mut others: Vec<&mut Dataset> = vec![&mut val_set];
        if let Some(t) = test_set.as_mut() {
            others.push(t);
        }
        match standardize(&mut train_set, &mut others) {
            Ok(st) => standardizer = st,
            Err(bad) => {
                let file = match bad.set {
                    0 => d.train.as_path(),
                    1 => val_file,
                    _ => test_file,
                };
                return Err(Error::data(
                    file,
                    None,
                    format!("column {}: {}", train.column_name(bad.column), bad.message),
                ));
            }
        }
    }
    let mut learnable = None;
    if let Some((mut set, feature_box)) = synthetic {
        let init: Vec<f64> = set.x.iter().copied().collect();
        for mut row in set.x.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = standardizer.apply(j, *v);
            }
        }
        learnable = Some(Learnable {
            first: 0,
            rows: set.len(),
            init,
            standardizer: standardizer.clone(),
            feature_box,
        });
        train_set = set;
        flipped.clear();
    }
    let mut poison_rows = Vec::new();
    if let Some((set, feature_box, rows)) = poison {
        let init: Vec<f64> = set.x.iter().copied().collect();
        let first = train_set.len();
        let mut x = Array2::zeros((first + set.len(), train_set.n_features()));
        x.slice_mut(ndarray::s![..first, ..]).assign(&train_set.x);
        for (r, row) in set.x.rows().into_iter().enumerate() {
            for (j, (z, &v)) in x.row_mut(first + r).iter_mut().zip(row).enumerate() {
                *z = standardizer.apply(j, v);
            }
        }
        train_set.x = x;
        train_set.y.extend_from_slice(&set.y);
        learnable = Some(Learnable {
            first,
            rows: set.len(),
            init,
            standardizer,
            feature_box,
        });
        poison_rows = rows;
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
        n_classes,
        train: train_set,
        validation: val_set,
        test: test_set,
        flipped,
        learnable,
        poison: poison_rows,
        feature_names: train.feature_names.take(),
    })
}

/// An error unless `other` (read from `path`) has the training file's features, and its
/// columns put in the training file's order. Two CSV files are matched by name: the same
/// label column and the same feature names, in any order (the other file's columns are
/// reordered to the training file's). A mix with IDX files, whose columns have no names,
/// is matched by position: the same number of features.
fn match_columns(path: &Path, other: &mut Loaded, train_path: &Path, train: &Loaded) -> Result<()> {
    if other.dataset.n_features() != train.dataset.n_features() {
        return Err(Error::data(
            path,
            None,
            format!(
                "has {} feature columns, but the training file {} has {}",
                other.dataset.n_features(),
                train_path.display(),
                train.dataset.n_features()
            ),
        ));
    }
    let (Some(names), Some(train_names), Some(label), Some(train_label)) = (
        other.feature_names.as_ref(),
        train.feature_names.as_ref(),
        other.label_name.as_ref(),
        train.label_name.as_ref(),
    ) else {
        return Ok(()); // an IDX file: by position
    };
    let quote = |n: &str| format!("\"{}\"", crate::error::shorten(n));
    if label != train_label {
        return Err(Error::data(
            path,
            None,
            format!(
                "has label column {}, but the training file {} has label column {}",
                quote(label),
                train_path.display(),
                quote(train_label)
            ),
        ));
    }
    if names == train_names {
        return Ok(());
    }
    let position = |names: &[String], name: &str| names.iter().position(|n| n == name);
    let missing = train_names.iter().find(|n| position(names, n).is_none());
    let extra = names.iter().find(|n| position(train_names, n).is_none());
    if let (Some(missing), Some(extra)) = (missing, extra) {
        return Err(Error::data(
            path,
            None,
            format!(
                "has no feature column {} and has {}, unlike the training file {} (the \
                 feature columns of CSV files are matched by name)",
                quote(missing),
                quote(extra),
                train_path.display()
            ),
        ));
    }
    let repeated = |names: &[String]| {
        names
            .iter()
            .enumerate()
            .find(|&(i, n)| position(names, n) != Some(i))
            .map(|(_, n)| n.clone())
    };
    if let Some(name) = repeated(train_names).or_else(|| repeated(names)) {
        return Err(Error::data(
            path,
            None,
            format!(
                "its feature columns are in another order than the training file {}'s, and \
                 column {} appears more than once, so they cannot be matched by name; give \
                 both files the same columns in the same order",
                train_path.display(),
                quote(&name)
            ),
        ));
    }
    // The same names in another order: column j of the training file is `from[j]` here.
    let from: Vec<usize> = train_names
        .iter()
        .filter_map(|n| position(names, n))
        .collect();
    let mut scratch = vec![0.0; from.len()];
    for mut row in other.dataset.x.rows_mut() {
        scratch
            .iter_mut()
            .zip(row.iter())
            .for_each(|(s, &v)| *s = v);
        for (v, &k) in row.iter_mut().zip(&from) {
            *v = scratch[k];
        }
    }
    other.feature_names = Some(train_names.clone());
    Ok(())
}

/// The data error for a training file too small for its holdouts.
fn too_few_rows(path: &Path, n: usize, val: Option<f64>, test: Option<f64>) -> Error {
    let rows = if n == 1 { "row" } else { "rows" };
    let message = match (val, test) {
        (Some(_), Some(_)) => format!(
            "has {n} data {rows}, too few to hold out a validation set and a test set and \
             keep one row for training (lower the fractions, or give data.validation or \
             data.test)"
        ),
        (None, Some(_)) => format!(
            "has {n} data {rows}, need at least 2 to hold out a test set (or give data.test)"
        ),
        _ => format!(
            "has {n} data {rows}, need at least 2 to hold out a validation set \
             (or give data.validation)"
        ),
    };
    Error::data(path, None, message)
}

/// A column [`standardize`] could not standardise.
#[derive(Debug, Clone, PartialEq)]
pub struct BadColumn {
    /// The set: 0 for the training set, `i` for `others[i − 1]`.
    pub set: usize,
    /// Feature column index.
    pub column: usize,
    /// What went wrong, e.g. `its training mean and std are not finite (mean NaN, std NaN)`.
    pub message: String,
}

/// Standardises `train` and `others` in place with the training rows' per-column mean and
/// population std (a column with std 0 is only centred):
///
/// ```text
/// μ_j = (1/N)·Σ_i x_ij,   σ_j = sqrt((1/N)·Σ_i (x_ij − μ_j)²),   x_ij ← (x_ij − μ_j) / σ_j
/// ```
///
/// Overflow-safe: each column is first scaled by s_j, the power of two at or below its
/// largest |x| over the training rows (`x/s ∈ (−2, 2)`), and the statistics are computed on
/// the scaled values. Scaling by a power of two is exact, so in the ordinary range the
/// result is bit for bit the unscaled formula's, and a column of 1e308 stays finite.
///
/// # Errors
/// The first column whose training statistics are not finite (a NaN or infinite value), or
/// whose standardised value in some set is not finite (a value far outside the training
/// range), with the set it was found in. The sets are left partly standardised then.
pub fn standardize(
    train: &mut Dataset,
    others: &mut [&mut Dataset],
) -> std::result::Result<Standardizer, BadColumn> {
    let n = train.len();
    if n == 0 {
        return Ok(Standardizer::identity(train.n_features()));
    }
    let nf = n as f64;
    let d = train.n_features();
    // s_j: largest |x| (NaN sticks), then the power of two at or below it.
    let mut scale = vec![0.0f64; d];
    for row in train.x.rows() {
        for (m, &x) in scale.iter_mut().zip(row) {
            let a = x.abs();
            if a > *m || a.is_nan() {
                *m = a;
            }
        }
    }
    for s in &mut scale {
        *s = if !s.is_finite() {
            *s
        } else if *s >= f64::MIN_POSITIVE {
            f64::from_bits(s.to_bits() & 0x7ff0_0000_0000_0000)
        } else {
            1.0 // zero or subnormal: nothing can overflow
        };
    }
    // 1/s is a power of two too (s ≥ 2⁻¹⁰²²), so x·(1/s) = x/s exactly.
    let inv: Vec<f64> = scale.iter().map(|s| 1.0 / s).collect();
    let mut mean = vec![0.0f64; d];
    for row in train.x.rows() {
        for ((m, &x), &k) in mean.iter_mut().zip(row).zip(&inv) {
            *m += x * k;
        }
    }
    for m in &mut mean {
        *m /= nf;
    }
    let mut std = vec![0.0f64; d];
    for row in train.x.rows() {
        for (((s, &x), &k), &m) in std.iter_mut().zip(row).zip(&inv).zip(&mean) {
            let c = x * k - m;
            *s += c * c;
        }
    }
    for s in &mut std {
        *s = (*s / nf).sqrt();
    }
    for j in 0..d {
        if !(scale[j].is_finite() && mean[j].is_finite() && std[j].is_finite()) {
            return Err(BadColumn {
                set: 0,
                column: j,
                message: format!(
                    "its training mean and std are not finite (mean {}, std {}); \
                     the column holds a NaN or infinite value",
                    mean[j] * scale[j],
                    std[j] * scale[j]
                ),
            });
        }
    }
    let st = Standardizer {
        inv,
        mean,
        std,
        scale,
    };
    let sets = std::iter::once(train).chain(others.iter_mut().map(|s| &mut **s));
    for (set, data) in sets.enumerate() {
        for mut row in data.x.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                let z = st.apply(j, *v);
                let (m, s, scale) = (st.mean[j], st.std[j], st.scale[j]);
                if !z.is_finite() {
                    return Err(BadColumn {
                        set,
                        column: j,
                        message: format!(
                            "value {} is too far from the training rows (mean {}, std {}) to \
                             standardise",
                            crate::error::show(*v),
                            crate::error::show(m * scale),
                            crate::error::show(s * scale)
                        ),
                    });
                }
                *v = z;
            }
        }
    }
    Ok(st)
}

/// The training rows' statistics as [`standardize`] applies them, kept so that rows made
/// later (a synthetic training set, learned inputs) are standardised by the same
/// instructions, bit for bit: with `s_j` the power-of-two scale, `m_j` and `σ_j` the scaled
/// mean and std,
///
/// ```text
/// z = (x·(1/s_j) − m_j) / σ_j        (σ_j > 0)        z = (x·(1/s_j) − m_j)·s_j   (σ_j = 0)
/// dz/dx = (1/s_j)/σ_j                                  dz/dx = 1
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    inv: Vec<f64>,
    mean: Vec<f64>,
    std: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardizer {
    /// z = x for `d` features (`data.standardize: false`).
    pub fn identity(d: usize) -> Self {
        Standardizer {
            inv: vec![1.0; d],
            mean: vec![0.0; d],
            std: vec![1.0; d],
            scale: vec![1.0; d],
        }
    }

    /// The standardised value of `x` in feature `j`.
    #[inline]
    pub fn apply(&self, j: usize, x: f64) -> f64 {
        let c = x * self.inv[j] - self.mean[j];
        let s = self.std[j];
        if s > 0.0 { c / s } else { c * self.scale[j] }
    }

    /// dz/dx of feature `j`.
    pub fn slope(&self, j: usize) -> f64 {
        let s = self.std[j];
        if s > 0.0 { self.inv[j] / s } else { 1.0 }
    }

    /// Mean μ_j of feature `j` in raw units.
    pub fn mean(&self, j: usize) -> f64 {
        self.mean[j] * self.scale[j]
    }

    /// Std σ_j of feature `j` in raw units, 1 where it is 0.
    pub fn std(&self, j: usize) -> f64 {
        let s = self.std[j] * self.scale[j];
        if s > 0.0 { s } else { 1.0 }
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
        standardize(&mut tr, &mut [&mut va]).unwrap();
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
    fn csv_columns_are_matched_by_name_and_idx_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("t.csv", "a,b,c,label\n1,2,3,0\n4,5,6,1\n");
        write("v.csv", "c,a,b,label\n30,10,20,1\n");
        let data = r#"{"train": "t.csv", "validation": "v.csv", "test": "v.csv",
                       "standardize": false}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!(d.validation.x, ndarray::array![[10.0, 20.0, 30.0]]);
        assert_eq!(d.test.unwrap().x, ndarray::array![[10.0, 20.0, 30.0]]);
        assert_eq!(d.feature_names.unwrap(), ["a", "b", "c"]);
        // The label column may stand elsewhere when it is named.
        write("l.csv", "b,label,c,a\n2,1,3,1\n");
        let data = r#"{"train": "t.csv", "validation": "l.csv", "label_column": "label",
                       "standardize": false}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!(d.validation.x, ndarray::array![[1.0, 2.0, 3.0]]);
        // Repeated names cannot be matched by name unless in the same order.
        write("r.csv", "a,a,c,label\n1,2,3,0\n4,5,6,1\n");
        write("rv.csv", "a,c,a,label\n1,3,2,0\n");
        let data = r#"{"train": "r.csv", "validation": "rv.csv"}"#;
        let e = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap_err();
        assert!(
            e.to_string()
                .contains("rv.csv: its feature columns are in another order")
        );
        assert!(
            e.to_string()
                .contains("column \"a\" appears more than once"),
            "{e}"
        );
        let data = r#"{"train": "r.csv", "validation": "r.csv"}"#;
        assert!(load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).is_ok());
        // An IDX file against a CSV: by position, whatever the label column's name.
        idx::tests::write_pair(dir.path(), "i", 4, 1, 3);
        let data = r#"{"train": "t.csv", "validation": "i-images-idx3-ubyte",
                       "standardize": false}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!(d.validation.x.row(1).to_vec(), [3.0, 4.0, 5.0]);
        let data = r#"{"train": "i-images-idx3-ubyte", "test": "v.csv"}"#;
        assert!(load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).is_ok());
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

    /// `name` in `dir`: a CSV whose feature `id` is the row index (0-based) and `label` is
    /// `label(i)`, for `n` rows.
    fn write_indexed(dir: &Path, name: &str, n: usize, label: impl Fn(usize) -> usize) {
        let mut text = String::from("id,label\n");
        for i in 0..n {
            text += &format!("{i},{}\n", label(i));
        }
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// The row ids (feature `id`) of an unstandardised set.
    fn ids(d: &Dataset) -> Vec<usize> {
        d.x.column(0).iter().map(|&v| v as usize).collect()
    }

    #[test]
    fn retain_rows_in_place() {
        let mut d = Dataset {
            x: Array2::from_shape_fn((6, 3), |(i, j)| (10 * i + j) as f64),
            y: vec![0, 1, 2, 3, 4, 5],
        };
        let sel = d.select(&[1, 2, 4]);
        d.retain_rows(&[1, 2, 4]);
        assert_eq!(d.x, sel.x);
        assert_eq!(d.y, [1, 2, 4]);
        assert!(d.x.is_standard_layout());
        d.retain_rows(&[]);
        assert_eq!((d.len(), d.x.dim()), (0, (0, 3)));
    }

    #[test]
    fn gzip_and_plain_idx_load_identically() {
        let dir = tempfile::tempdir().unwrap();
        idx::tests::write_pair(dir.path(), "p", 40, 3, 4);
        idx::tests::write_pair_gz(dir.path(), "g", 40, 3, 4);
        let load_one = |name: &str| {
            let data = format!(r#"{{"train": "{name}", "test_fraction": 0.1}}"#);
            load(&config_in(dir.path(), &data, r#"{"batch_size": 2}"#)).unwrap()
        };
        let (p, g) = (
            load_one("p-images-idx3-ubyte"),
            load_one("g-images-idx3-ubyte.gz"),
        );
        let same = |a: &Dataset, b: &Dataset| {
            a.y == b.y
                && a.x
                    .iter()
                    .zip(&b.x)
                    .all(|(u, v)| u.to_bits() == v.to_bits())
        };
        assert!(same(&p.train, &g.train));
        assert!(same(&p.validation, &g.validation));
        assert!(same(p.test.as_ref().unwrap(), g.test.as_ref().unwrap()));
        assert_eq!(
            (g.train.len(), g.validation.len(), g.n_features),
            (28, 8, 12)
        );
    }

    #[test]
    fn three_way_split_is_deterministic_and_disjoint() {
        let dir = tempfile::tempdir().unwrap();
        write_indexed(dir.path(), "t.csv", 50, |i| i % 4);
        let data = r#"{"train": "t.csv", "test_fraction": 0.3, "standardize": false}"#;
        let c = config_in(dir.path(), data, r#"{"batch_size": 1}"#);
        let d = load(&c).unwrap();
        let test = d.test.as_ref().unwrap();
        assert_eq!(
            (d.train.len(), d.validation.len(), test.len()),
            (25, 10, 15)
        );
        let (tr, va, te) = (ids(&d.train), ids(&d.validation), ids(test));
        let mut all: Vec<usize> = tr.iter().chain(&va).chain(&te).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        // Same config, same rows; labels travel with their rows.
        let again = load(&c).unwrap();
        assert_eq!(ids(&again.validation), va);
        assert_eq!(ids(again.test.as_ref().unwrap()), te);
        assert!(te.iter().zip(&test.y).all(|(i, &y)| y == i % 4));
        // Without a test fraction the validation rows are the v1 ones; with it they stay.
        let v1 = config_in(
            dir.path(),
            r#"{"train": "t.csv", "standardize": false}"#,
            r#"{"batch_size": 1}"#,
        );
        let v1 = load(&v1).unwrap();
        assert_eq!(ids(&v1.validation), va);
        assert!(v1.test.is_none());
    }

    #[test]
    fn test_file_and_validation_file() {
        let dir = tempfile::tempdir().unwrap();
        write_indexed(dir.path(), "t.csv", 20, |i| i % 2);
        write_indexed(dir.path(), "v.csv", 5, |_| 1);
        write_indexed(dir.path(), "x.csv", 6, |i| if i == 5 { 6 } else { 0 });
        let data = r#"{"train": "t.csv", "validation": "v.csv", "test": "x.csv"}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!(d.train.len(), 20);
        assert_eq!(d.test.as_ref().unwrap().len(), 6);
        assert_eq!(d.n_classes, 7, "n_classes covers the test labels");
        // Standardised with the training statistics: train id 0..19 has mean 9.5.
        let t = d.test.as_ref().unwrap();
        assert!(t.x[[0, 0]] < -1.0 && d.train.x.column(0).sum().abs() < 1e-9);
        // A validation file and a test holdout.
        let data = r#"{"train": "t.csv", "validation": "v.csv", "test_fraction": 0.25,
                       "standardize": false}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!((d.train.len(), d.validation.len()), (15, 5));
        assert_eq!(d.test.as_ref().unwrap().len(), 5);
        // A test file with other features.
        std::fs::write(dir.path().join("w.csv"), "id,b,label\n1,2,0\n").unwrap();
        let data = r#"{"train": "t.csv", "test": "w.csv"}"#;
        let e = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains("w.csv: has 2 feature columns"), "{msg}");
        assert!(msg.contains("t.csv has 1"), "{msg}");
    }

    #[test]
    fn too_few_rows_for_two_holdouts() {
        let dir = tempfile::tempdir().unwrap();
        write_indexed(dir.path(), "t.csv", 2, |i| i);
        let data = r#"{"train": "t.csv", "test_fraction": 0.1}"#;
        let e = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("t.csv: has 2 data rows, too few"), "{msg}");
    }

    #[test]
    fn limit_keeps_the_first_rows() {
        let dir = tempfile::tempdir().unwrap();
        write_indexed(dir.path(), "t.csv", 30, |i| i % 3);
        let data = r#"{"train": "t.csv", "validation": "t.csv", "limit": 7,
                       "standardize": false}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!(ids(&d.train), (0..7).collect::<Vec<_>>());
        assert_eq!(d.train.y, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(d.validation.len(), 30, "limit applies to train only");
        // Before the split: the holdout comes out of the first 10 rows.
        let data = r#"{"train": "t.csv", "limit": 10, "standardize": false}"#;
        let d = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap();
        assert_eq!(d.train.len() + d.validation.len(), 10);
        assert!(ids(&d.validation).iter().all(|&i| i < 10));
        let data = r#"{"train": "t.csv", "limit": 31}"#;
        let e = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains("c.json: data.limit must be at most"), "{msg}");
        assert!(msg.contains("t.csv (30), got 31"), "{msg}");
    }

    #[test]
    fn label_noise_flips_training_labels_only() {
        let dir = tempfile::tempdir().unwrap();
        let label = |i: usize| i % 5;
        write_indexed(dir.path(), "t.csv", 200, label);
        let data = r#"{"train": "t.csv", "test_fraction": 0.15, "label_noise": 0.3,
                       "standardize": false}"#;
        let c = config_in(dir.path(), data, r#"{"batch_size": 1}"#);
        let d = load(&c).unwrap();
        let n_train = d.train.len();
        assert_eq!(n_train, 130);
        let expected = (0.3 * n_train as f64).floor() as usize; // 39
        assert_eq!(d.flipped.len(), expected);
        let changed: Vec<usize> = (0..n_train)
            .filter(|&r| d.train.y[r] != label(ids(&d.train)[r]))
            .collect();
        assert_eq!(changed, d.flipped.iter().map(|f| f.row).collect::<Vec<_>>());
        for f in &d.flipped {
            assert_eq!(f.original, label(ids(&d.train)[f.row]));
            assert!(d.train.y[f.row] < 5);
        }
        for set in [&d.validation, d.test.as_ref().unwrap()] {
            assert!(ids(set).iter().zip(&set.y).all(|(&i, &y)| y == label(i)));
        }
        assert_eq!(load(&c).unwrap().train.y, d.train.y, "seeded");
        // A single class has no other label to draw.
        write_indexed(dir.path(), "one.csv", 10, |_| 0);
        let data = r#"{"train": "one.csv", "label_noise": 0.5}"#;
        let e = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap_err();
        assert!(e.to_string().contains("data.label_noise"), "{e}");
    }

    #[test]
    fn huge_columns_standardise_to_finite_values() {
        for big in [1e200, 1e308, f64::MAX] {
            let mut tr = Dataset {
                x: ndarray::array![[big, 1.0], [-big, 2.0], [big, 3.0], [big / 2.0, 4.0]],
                y: vec![0; 4],
            };
            let mut va = Dataset {
                x: ndarray::array![[big / 4.0, 0.0]],
                y: vec![0],
            };
            standardize(&mut tr, &mut [&mut va]).unwrap();
            assert!(
                tr.x.iter().chain(&va.x).all(|v| v.is_finite()),
                "{big}: {tr:?}"
            );
            let col = tr.x.column(0);
            let mean = col.sum() / 4.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "{big}");
        }
    }

    #[test]
    fn csv_column_of_1e308_loads_finite() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            "1e308,1,0",
            "-1e308,2,1",
            "5e307,3,0",
            "1.7e308,4,1",
            "-3e307,5,0",
        ];
        let text = format!("big,small,label\n{}\n", rows.join("\n"));
        std::fs::write(dir.path().join("t.csv"), text).unwrap();
        let c = config_in(dir.path(), r#"{"train": "t.csv"}"#, r#"{"batch_size": 1}"#);
        let d = load(&c).unwrap();
        assert!(
            d.train
                .x
                .iter()
                .chain(&d.validation.x)
                .all(|v| v.is_finite())
        );
        assert!(d.train.x.column(0).iter().any(|v| v.abs() > 0.1));
    }

    #[test]
    fn standardize_is_bitwise_the_plain_formula_in_ordinary_ranges() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut tr = csv::read(&root.join("data/digits.csv"), None)
            .unwrap()
            .dataset;
        tr.x.column_mut(3).mapv_inplace(|v| v * 1e-3 + 0.1);
        let mut va = tr.select(&[5, 0, 9]);
        let (mut tr2, mut va2) = (tr.clone(), va.clone());
        standardize(&mut tr, &mut [&mut va]).unwrap();
        let n = tr2.len() as f64;
        let mean = tr2.x.sum_axis(ndarray::Axis(0)) / n;
        let mut std = ndarray::Array1::<f64>::zeros(tr2.n_features());
        for row in tr2.x.rows() {
            for ((s, &x), &m) in std.iter_mut().zip(row).zip(&mean) {
                *s += (x - m) * (x - m);
            }
        }
        std.mapv_inplace(|s| if s > 0.0 { (s / n).sqrt() } else { 1.0 });
        for x in [&mut tr2.x, &mut va2.x] {
            for mut row in x.rows_mut() {
                for ((v, &m), &s) in row.iter_mut().zip(&mean).zip(&std) {
                    *v = (*v - m) / s;
                }
            }
        }
        let bits = |d: &Dataset| d.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&tr), bits(&tr2));
        assert_eq!(bits(&va), bits(&va2));
    }

    #[test]
    fn columns_that_cannot_be_standardised_are_named() {
        let mut tr = Dataset {
            x: ndarray::array![[1.0, f64::NAN], [2.0, 0.0]],
            y: vec![0, 1],
        };
        let bad = standardize(&mut tr, &mut []).unwrap_err();
        assert_eq!((bad.set, bad.column), (0, 1));
        assert!(bad.message.contains("not finite"), "{}", bad.message);
        // Through load: a validation value far outside a tiny training column.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("t.csv"),
            "a,tiny,label\n1,1e-300,0\n2,-1e-300,1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("v.csv"), "a,tiny,label\n1,1e300,0\n").unwrap();
        let data = r#"{"train": "t.csv", "validation": "v.csv"}"#;
        let e = load(&config_in(dir.path(), data, r#"{"batch_size": 1}"#)).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains("v.csv: column \"tiny\": value 1e300"), "{msg}");
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
