//! # Experiment config
//!
//! One JSON file (SPEC §2) describes an experiment. It is read in two steps, linfa style:
//!
//! ```text
//! JSON text ──serde──▶ RawConfig (types only, defaults filled) ──validate──▶ Config (valid)
//! ```
//!
//! A key given twice in one object is refused first, anywhere in the file, with its dotted
//! path (serde_json would keep the last of the two in the blocks it reads as JSON values).
//! `RawConfig` and its sections are what serde sees: `deny_unknown_fields` everywhere,
//! defaults from hand-written `Default` impls that mirror SPEC §2, and `serde_path_to_error`
//! so a type error names its dotted path (`inner.steps`). `RawConfig::validate` then checks
//! ranges and finiteness, resolves paths relative to the config file's folder and checks
//! that the files exist, reporting the first problem as `FILE: FIELD MESSAGE`
//! (`configs/x.json: inner.gamma must be in (0, 1), got 1.2`). Only [`Config`] reaches the
//! rest of the library.
//!
//! [`Config::to_json_pretty`] writes the same schema back (with absolute paths), so a config
//! holding the best hyperparameters found (`tune --best`) runs from any folder.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result, show};
use crate::hyper::{Kind, OptimizerId, Spec};
use crate::model::Activation;

/// A validated experiment config (SPEC §2). Paths are resolved relative to the config
/// file's folder and exist.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The config file path as given (used in error messages).
    #[serde(skip)]
    pub file: PathBuf,
    /// Seed for the data: splits, label noise, the rows that seed a synthetic set (and, unless
    /// `inner.seed` is given, the training run's too).
    pub seed: u64,
    /// Training and validation data.
    pub data: DataConfig,
    /// Network architecture and initialisation.
    pub model: ModelConfig,
    /// Inner (training) loop.
    pub inner: InnerConfig,
    /// Outer (hyperparameter) loop.
    pub outer: OuterConfig,
}

/// The `data` section.
#[derive(Debug, Clone, Serialize)]
pub struct DataConfig {
    /// Training file: CSV with a header row, or an MNIST IDX images file (`…idx3…`).
    #[serde(serialize_with = "ser_path")]
    pub train: PathBuf,
    /// Validation file in the same format; `None` holds out `validation_fraction` of `train`.
    #[serde(serialize_with = "ser_opt_path")]
    pub validation: Option<PathBuf>,
    /// Fraction of the training rows held out when `validation` is `None`; in (0, 1).
    pub validation_fraction: f64,
    /// Test file in the same format; `None` holds out `test_fraction` of `train` (no test
    /// set when that is 0). Only reported, never used for tuning.
    #[serde(serialize_with = "ser_opt_path")]
    pub test: Option<PathBuf>,
    /// Fraction of the training rows held out as the test set when `test` is `None`; in
    /// [0, 1), and `validation_fraction + test_fraction < 1` when both are held out.
    pub test_fraction: f64,
    /// Use only the first `limit` rows of `train` (before any split); ≥ 1.
    pub limit: Option<usize>,
    /// Fraction of the training rows (after the splits) whose label is replaced by a
    /// different class drawn from `seed`; in [0, 1).
    pub label_noise: f64,
    /// Name of the CSV label column; `None` means the last column (ignored for IDX files,
    /// whose labels are a separate file).
    pub label_column: Option<String>,
    /// Standardise features with the training rows' mean and population std.
    pub standardize: bool,
    /// A learned synthetic training set replacing the training rows (SPEC §2.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Synthetic>,
    /// Learnable poison rows appended to the training rows (SPEC §2.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poison: Option<Poison>,
    /// The learnable rows' features (`{"values": [[…]]}`), `None` = as `synthetic.init` or
    /// `poison` makes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Spec>,
}

/// `data.synthetic`: the training set is `per_class` learnable rows of each class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// Rows per class, ≥ 1.
    pub per_class: usize,
    /// How the rows start.
    #[serde(default)]
    pub init: SyntheticInit,
}

/// `data.poison`: `rows` training rows (seeded) are copied with another label and appended;
/// their features are the input block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poison {
    /// Number of poison rows, ≥ 1 and below the number of training rows.
    pub rows: usize,
    /// How the copies are labelled.
    #[serde(default)]
    pub labels: PoisonLabels,
}

/// How poison rows are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoisonLabels {
    /// A uniformly drawn class other than the source row's.
    #[default]
    Flip,
}

/// Whether the outer loop descends or ascends the validation loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OuterObjective {
    /// Tuning: the lowest validation loss is best.
    #[default]
    Minimize,
    /// Poisoning: the highest validation loss is "best" (worst for the model).
    Maximize,
}

impl OuterObjective {
    /// True if validation loss `a` is better than `b` for this objective (a rejected point,
    /// NaN, is never better).
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            OuterObjective::Minimize => a < b || (b.is_nan() && !a.is_nan()),
            OuterObjective::Maximize => a > b || (b.is_nan() && !a.is_nan()),
        }
    }
}

/// How a synthetic set starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyntheticInit {
    /// Copies of randomly chosen (seeded) real training rows of each class.
    #[default]
    Real,
    /// Each feature drawn from N(μ, σ) of the real rows, clipped to the feature's box.
    Noise,
}

/// The `model` section.
#[derive(Debug, Clone, Serialize)]
pub struct ModelConfig {
    /// Hidden layer sizes, each ≥ 1; empty for a linear model.
    pub hidden: Vec<usize>,
    /// Hidden-layer nonlinearity.
    pub activation: Activation,
    /// Scale of the initial weights: θ₀ = init_scale ⊙ ε (a block, > 0).
    pub init_scale: Spec,
    /// `.npz` file with `W0, b0, …` replacing the random ε.
    #[serde(serialize_with = "ser_opt_path")]
    pub init_file: Option<PathBuf>,
}

/// The `inner` section: the optimizer, T, batches, and the blocks. Each optimizer's own
/// blocks (from the registry, [`OptimizerId::kinds`]) are present, every other optimizer
/// block absent.
#[derive(Debug, Clone, Serialize)]
pub struct InnerConfig {
    /// Inner optimizer (a registry entry).
    pub optimizer: OptimizerId,
    /// Seed of the training run (initial-weight noise ε and batch order); `None` = `seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Number of inner steps T ≥ 1.
    pub steps: usize,
    /// Minibatch size B ≥ 1 (at most the number of training rows).
    pub batch_size: usize,
    /// A fresh seeded permutation of the rows per epoch.
    pub shuffle: bool,
    /// Learning rate α (a block, > 0).
    pub alpha: Spec,
    /// Momentum γ (momentum, sgd, RMSprop; in [0, [`crate::hyper::MAX_GAMMA`]]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma: Option<Spec>,
    /// Adam's β₁ (in (0, [`crate::hyper::MAX_GAMMA`]]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta1: Option<Spec>,
    /// Adam's β₂ (in (0, [`crate::hyper::MAX_GAMMA`]]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta2: Option<Spec>,
    /// Adam's and RMSprop's ε (> 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eps: Option<Spec>,
    /// RMSprop's ρ (in (0, [`crate::hyper::MAX_GAMMA`]]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<Spec>,
    /// L2 penalty ½·Σ l2_e·w_e² on the weights (a block, ≥ 0).
    pub l2: Spec,
    /// One loss weight c_i ∈ (0, 1) per training row; `None` = every weight 1, at no cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example_weight: Option<Spec>,
}

impl InnerConfig {
    /// The block of `kind` in this section, if present.
    fn slot(&mut self, kind: Kind) -> Option<&mut Option<Spec>> {
        match kind {
            Kind::Gamma => Some(&mut self.gamma),
            Kind::Beta1 => Some(&mut self.beta1),
            Kind::Beta2 => Some(&mut self.beta2),
            Kind::Eps => Some(&mut self.eps),
            Kind::Rho => Some(&mut self.rho),
            Kind::ExampleWeight => Some(&mut self.example_weight),
            Kind::Alpha | Kind::L2 | Kind::InitScale | Kind::Input => None,
        }
    }
}

/// The `outer` section: gradient descent on the validation loss.
#[derive(Debug, Clone, Serialize)]
pub struct OuterConfig {
    /// Number of outer iterations.
    pub steps: usize,
    /// Outer optimizer.
    pub optimizer: OuterOptimizer,
    /// Outer learning rate per block, > 0.
    pub learning_rate: LearningRate,
    /// Blocks that move (non-empty, no duplicates).
    pub tune: Vec<Kind>,
    /// Iteration k (search: trial k) trains with inner seed `inner.seed + k`.
    pub resample: bool,
    /// Descend (tuning) or ascend (poisoning) the validation loss.
    pub objective: OuterObjective,
}

/// `outer.learning_rate`: one rate, or one per tuned block with a default for the rest
/// (`{"input": 0.03, "default": 0.1}`).
#[derive(Debug, Clone, PartialEq)]
pub struct LearningRate {
    /// The rate of every block not named.
    pub default: f64,
    /// Named blocks' rates.
    pub per: Vec<(Kind, f64)>,
}

impl LearningRate {
    /// One rate for every block.
    pub fn scalar(v: f64) -> Self {
        LearningRate {
            default: v,
            per: Vec::new(),
        }
    }

    /// The rate of `kind`'s entries.
    pub fn of(&self, kind: Kind) -> f64 {
        self.per
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(self.default, |(_, v)| *v)
    }
}

impl Serialize for LearningRate {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.per.is_empty() {
            return s.serialize_f64(self.default);
        }
        let mut m = s.serialize_map(Some(self.per.len() + 1))?;
        for (k, v) in &self.per {
            m.serialize_entry(k.name(), v)?;
        }
        m.serialize_entry("default", &self.default)?;
        m.end()
    }
}

/// Outer optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OuterOptimizer {
    /// Adam (default).
    #[default]
    Adam,
    /// Plain gradient descent.
    Sgd,
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be read; otherwise as
    /// [`Config::from_json_str`].
    pub fn load(path: &Path) -> Result<Config> {
        let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Config::from_json_str(&text, path)
    }

    /// Parses and validates config text. `file` is used in messages, and its parent folder
    /// resolves relative paths.
    ///
    /// # Errors
    /// [`Error::Config`] for a key given twice in one object, JSON syntax errors (with line
    /// and column), type errors and unknown fields (with the dotted path), and out-of-range
    /// values or missing files (the first one found).
    pub fn from_json_str(text: &str, file: &Path) -> Result<Config> {
        // Editors on Windows save UTF-8 with a byte order mark; the CSV reader accepts it too.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // serde accepts a JSON array for a struct; a config is an object.
        let first = text.trim_start().chars().next();
        if first.is_some() && first != Some('{') {
            return Err(Error::config(
                file,
                "",
                "invalid config: expected a JSON object ({ \"data\": … }) at the top level",
            ));
        }
        // serde_json keeps the last of two equal keys in a `serde_json::Value` (how blocks
        // are read), so `{"init": 0.1, "init": 0.5}` would silently mean 0.5.
        if let Some(path) = duplicate_key(text) {
            return Err(Error::config(
                file,
                crate::error::shorten(&path),
                "is given twice; give each key once",
            ));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawConfig = match serde_path_to_error::deserialize(&mut de) {
            Ok(raw) => raw,
            Err(e) => return Err(serde_error(file, e)),
        };
        if let Err(e) = de.end() {
            return Err(Error::config(file, "", format!("invalid JSON: {e}")));
        }
        raw.validate(file)
    }

    /// The config as pretty JSON in the input schema, with every path absolute so the output
    /// runs from any folder.
    pub fn to_json_pretty(&self) -> String {
        let mut abs = self.clone();
        abs.data.train = absolute(&abs.data.train);
        abs.data.validation = abs.data.validation.as_deref().map(absolute);
        abs.data.test = abs.data.test.as_deref().map(absolute);
        abs.model.init_file = abs.model.init_file.as_deref().map(absolute);
        // Only strings (paths go through `to_string_lossy`), numbers, booleans and lists:
        // serialisation cannot fail.
        let mut s = serde_json::to_string_pretty(&abs).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes [`Config::to_json_pretty`] to `path` atomically: a temporary file in the same
    /// folder, then a rename, so readers never see a half-written config (through a
    /// symbolic link; special files are refused, see [`crate::fsutil`]).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be written or renamed.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, self.to_json_pretty().as_bytes())
    }

    /// The config entry of a block, if the config has it (every run has α, l2,
    /// init_scale and its optimizer's own blocks; example_weight when given).
    pub fn spec(&self, kind: Kind) -> Option<&Spec> {
        match kind {
            Kind::Alpha => Some(&self.inner.alpha),
            Kind::L2 => Some(&self.inner.l2),
            Kind::InitScale => Some(&self.model.init_scale),
            Kind::Gamma => self.inner.gamma.as_ref(),
            Kind::Beta1 => self.inner.beta1.as_ref(),
            Kind::Beta2 => self.inner.beta2.as_ref(),
            Kind::Eps => self.inner.eps.as_ref(),
            Kind::Rho => self.inner.rho.as_ref(),
            Kind::ExampleWeight => self.inner.example_weight.as_ref(),
            Kind::Input => self.data.input.as_ref(),
        }
    }

    /// Seed of the training run: `inner.seed`, or `seed` without one.
    pub fn inner_seed(&self) -> u64 {
        self.inner.seed.unwrap_or(self.seed)
    }

    /// True when the training set has learnable rows (`data.synthetic` or `data.poison`):
    /// the config then
    /// has an input block.
    pub fn has_learnable_rows(&self) -> bool {
        self.data.synthetic.is_some() || self.data.poison.is_some()
    }

    /// Sets the config entry of a block (`--best` writes the tuned values here).
    pub fn set_spec(&mut self, kind: Kind, spec: Spec) {
        match kind {
            Kind::Input => self.data.input = Some(spec),
            Kind::Alpha => self.inner.alpha = spec,
            Kind::L2 => self.inner.l2 = spec,
            Kind::InitScale => self.model.init_scale = spec,
            k => {
                if let Some(slot) = self.inner.slot(k) {
                    *slot = Some(spec);
                }
            }
        }
    }

    /// The blocks of the configured optimizer, then l2 and init_scale, then example_weight
    /// and input when the config has them: the run's kinds in SPEC §4.1's column order.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut k = self.inner.optimizer.kinds().to_vec();
        k.extend([Kind::L2, Kind::InitScale]);
        if self.inner.example_weight.is_some() {
            k.push(Kind::ExampleWeight);
        }
        if self.has_learnable_rows() {
            k.push(Kind::Input);
        }
        k
    }
}

fn absolute(p: &Path) -> PathBuf {
    fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

fn ser_path<S: Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

fn ser_opt_path<S: Serializer>(p: &Option<PathBuf>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match p {
        Some(p) => ser_path(p, s),
        None => s.serialize_none(),
    }
}

/// The dotted path (`inner.alpha.init`, `data.x[2].y`) of the first key that appears twice
/// in one object of the JSON `text`, if any. Text that is not JSON has none: the parse
/// proper reports it.
fn duplicate_key(text: &str) -> Option<String> {
    let found = std::cell::RefCell::new(None);
    let walk = Walk {
        parent: None,
        at: Segment::Root,
        found: &found,
    };
    let _ = serde::de::DeserializeSeed::deserialize(
        walk,
        &mut serde_json::Deserializer::from_str(text),
    );
    found.into_inner()
}

/// Where a [`Walk`] is, relative to its parent.
enum Segment {
    Root,
    Key(String),
    Index(usize),
}

/// A pass over a JSON value that stops at the first repeated key of an object, recording
/// its dotted path in `found`. The path is a chain of borrowed parents, built into a string
/// only when a duplicate is found.
struct Walk<'a> {
    parent: Option<&'a Walk<'a>>,
    at: Segment,
    found: &'a std::cell::RefCell<Option<String>>,
}

impl Walk<'_> {
    /// The dotted path of this object's key `key`.
    fn path_of(&self, key: &str) -> String {
        let mut chain = Vec::new();
        let mut node = Some(self);
        while let Some(w) = node {
            chain.push(&w.at);
            node = w.parent;
        }
        let last = Segment::Key(key.to_owned());
        let mut path = String::new();
        for at in chain.into_iter().rev().chain([&last]) {
            match at {
                Segment::Root => {}
                Segment::Key(k) if path.is_empty() => path += k,
                Segment::Key(k) => path += &format!(".{k}"),
                Segment::Index(i) => path += &format!("[{i}]"),
            }
        }
        path
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walk {
                parent: Some(&self),
                at: Segment::Index(i),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                *self.found.borrow_mut() = Some(self.path_of(&key));
                return Err(serde::de::Error::custom("a key given twice"));
            }
            map.next_value_seed(Walk {
                parent: Some(&self),
                at: Segment::Key(key),
                found: self.found,
            })?;
        }
        Ok(())
    }
}

/// Turns a serde error into a config error naming the dotted path.
fn serde_error(file: &Path, e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = crate::error::shorten(&e.path().to_string());
    let inner = e.into_inner();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            Error::config(file, "", format!("invalid JSON: {inner}"))
        }
        serde_json::error::Category::Io => Error::config(file, "", inner.to_string()),
        serde_json::error::Category::Data => {
            let text = shorten_quoted(&inner.to_string());
            // `unknown field `lr`, expected one of …` → `inner.lr is not a known field, expected …`
            let unknown = text
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split_once("`, "))
                .map(|(_, rest)| rest.to_owned());
            if path == "." || path.is_empty() {
                Error::config(file, "", format!("invalid config: {text}"))
            } else if let Some(rest) = unknown {
                Error::config(file, path, format!("is not a known field, {rest}"))
            } else {
                Error::config(file, path, format!("is invalid: {text}"))
            }
        }
    }
}

/// serde's message with every `quoted` piece of user text shortened (a 1 MB unknown variant
/// name must not become a 1 MB message).
fn shorten_quoted(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                crate::error::shorten(part)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

// ---------------------------------------------------------------------------------------
// Raw (deserialized) types: types only, defaults from SPEC §2.

/// Top level; `seed` defaults to 0 and each section to its own SPEC §2 defaults (derived).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    seed: u64,
    data: RawDataConfig,
    model: RawModelConfig,
    inner: RawInnerConfig,
    outer: RawOuterConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDataConfig {
    /// Required; `Option` only so its absence gets our own message.
    train: Option<PathBuf>,
    validation: Option<PathBuf>,
    validation_fraction: f64,
    test: Option<PathBuf>,
    test_fraction: f64,
    limit: Option<usize>,
    label_noise: f64,
    label_column: Option<String>,
    standardize: bool,
    synthetic: Option<Synthetic>,
    poison: Option<Poison>,
    input: Option<serde_json::Value>,
}

impl Default for RawDataConfig {
    fn default() -> Self {
        RawDataConfig {
            train: None,
            validation: None,
            validation_fraction: 0.2,
            test: None,
            test_fraction: 0.0,
            limit: None,
            label_noise: 0.0,
            label_column: None,
            standardize: true,
            synthetic: None,
            poison: None,
            input: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawModelConfig {
    hidden: Vec<usize>,
    activation: Activation,
    init_scale: serde_json::Value,
    init_file: Option<PathBuf>,
}

impl Default for RawModelConfig {
    fn default() -> Self {
        RawModelConfig {
            hidden: vec![50],
            activation: Activation::Tanh,
            init_scale: 1.0.into(),
            init_file: None,
        }
    }
}

/// The `inner` section as written: every optimizer's blocks optional, so that a block the
/// configured optimizer does not have is an error rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawInnerConfig {
    optimizer: OptimizerId,
    seed: Option<u64>,
    steps: usize,
    batch_size: usize,
    shuffle: bool,
    alpha: Option<serde_json::Value>,
    gamma: Option<serde_json::Value>,
    beta1: Option<serde_json::Value>,
    beta2: Option<serde_json::Value>,
    eps: Option<serde_json::Value>,
    rho: Option<serde_json::Value>,
    l2: Option<serde_json::Value>,
    example_weight: Option<serde_json::Value>,
}

impl RawInnerConfig {
    /// The block of `kind` as written, if given.
    fn given(&self, kind: Kind) -> Option<&serde_json::Value> {
        match kind {
            Kind::Alpha => self.alpha.as_ref(),
            Kind::Gamma => self.gamma.as_ref(),
            Kind::Beta1 => self.beta1.as_ref(),
            Kind::Beta2 => self.beta2.as_ref(),
            Kind::Eps => self.eps.as_ref(),
            Kind::Rho => self.rho.as_ref(),
            Kind::L2 => self.l2.as_ref(),
            Kind::ExampleWeight => self.example_weight.as_ref(),
            Kind::InitScale | Kind::Input => None,
        }
    }
}

impl Default for RawInnerConfig {
    fn default() -> Self {
        RawInnerConfig {
            optimizer: OptimizerId::Momentum,
            seed: None,
            steps: 200,
            batch_size: 100,
            shuffle: true,
            alpha: None,
            gamma: None,
            beta1: None,
            beta2: None,
            eps: None,
            rho: None,
            l2: None,
            example_weight: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOuterConfig {
    steps: usize,
    optimizer: OuterOptimizer,
    /// A number, or an object of block names (and `"default"`) to numbers.
    learning_rate: serde_json::Value,
    /// Absent: α and the optimizer's first decay (γ, or β₁ for Adam).
    tune: Option<Vec<Kind>>,
    resample: bool,
    objective: OuterObjective,
}

impl Default for RawOuterConfig {
    fn default() -> Self {
        RawOuterConfig {
            steps: 30,
            optimizer: OuterOptimizer::Adam,
            learning_rate: 0.1.into(),
            tune: None,
            resample: false,
            objective: OuterObjective::Minimize,
        }
    }
}

/// Makes a config error for a dotted field of the file being validated.
type Err<'a> = &'a dyn Fn(&str, String) -> Error;

impl RawConfig {
    /// Checks every section (each validates itself; which blocks belong to which optimizer
    /// comes from the optimizer table), then resolves paths; the first problem found is the
    /// error.
    fn validate(self, file: &Path) -> Result<Config> {
        let err = |field: &str, message: String| Error::config(file, field, message);
        let RawConfig {
            seed,
            data,
            model,
            inner,
            outer,
        } = self;
        let inner = inner.validate(&err)?;
        let mut model = model.validate(&err, inner.steps)?;
        data.check(&err, &inner)?;
        let learnable = data.synthetic.is_some() || data.poison.is_some();
        let outer = outer.validate(&err, &inner, learnable)?;
        // Paths last: they touch the filesystem.
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |field: &str, p: &Path| resolve(file, base, field, p);
        let data = data.resolve(&err, &resolve)?;
        model.init_file = model
            .init_file
            .map(|p| resolve("model.init_file", &p))
            .transpose()?;
        Ok(Config {
            file: file.to_path_buf(),
            seed,
            data,
            model,
            inner,
            outer,
        })
    }
}

impl RawInnerConfig {
    /// T, B and the optimizer's own blocks (given, or their defaults); another optimizer's
    /// block is an error naming the optimizer's own.
    fn validate(self, err: Err) -> Result<InnerConfig> {
        let inner = self;
        if inner.steps < 1 {
            return Err(err(
                "inner.steps",
                format!("must be >= 1, got {}", inner.steps),
            ));
        }
        if inner.batch_size < 1 {
            return Err(err(
                "inner.batch_size",
                format!("must be >= 1, got {}", inner.batch_size),
            ));
        }

        // Blocks after inner.steps, which bounds their knots.
        let block = |kind: Kind, v: &serde_json::Value| {
            Spec::parse(kind, v, &kind.field(), inner.steps).map_err(|(f, m)| err(&f, m))
        };
        let own = inner.optimizer.kinds();
        let mut section = InnerConfig {
            optimizer: inner.optimizer,
            seed: inner.seed,
            steps: inner.steps,
            batch_size: inner.batch_size,
            shuffle: inner.shuffle,
            alpha: Spec::scalar(Kind::Alpha.info().default),
            gamma: None,
            beta1: None,
            beta2: None,
            eps: None,
            rho: None,
            l2: Spec::scalar(Kind::L2.info().default),
            example_weight: None,
        };
        for kind in Kind::ALL {
            if kind.info().section != "inner" {
                continue;
            }
            let given = inner.given(kind);
            if !own.contains(&kind) && OptimizerId::any_owns(kind) {
                if given.is_some() {
                    return Err(err(&kind.field(), foreign_block(kind, inner.optimizer)));
                }
                continue;
            }
            let default = serde_json::Value::from(kind.info().default);
            let spec = match given {
                Some(v) => block(kind, v)?,
                None if kind.info().default.is_nan() => continue,
                None => block(kind, &default)?,
            };
            match kind {
                Kind::Alpha => section.alpha = spec,
                Kind::L2 => section.l2 = spec,
                k => {
                    if let Some(slot) = section.slot(k) {
                        *slot = Some(spec);
                    }
                }
            }
        }
        Ok(section)
    }
}

impl RawModelConfig {
    /// The init_scale block and the layer widths; `init_file` is resolved with the other
    /// paths.
    fn validate(self, err: Err, steps: usize) -> Result<ModelConfig> {
        let model = self;
        let init_scale = Spec::parse(
            Kind::InitScale,
            &model.init_scale,
            &Kind::InitScale.field(),
            steps,
        )
        .map_err(|(f, m)| err(&f, m))?;
        if let Some(i) = model.hidden.iter().position(|&h| h < 1) {
            return Err(err(
                &format!("model.hidden[{i}]"),
                format!(
                    "must be >= 1 (use an empty list for a linear model), got {}",
                    model.hidden[i]
                ),
            ));
        }

        Ok(ModelConfig {
            hidden: model.hidden,
            activation: model.activation,
            init_scale,
            init_file: model.init_file,
        })
    }
}

impl RawDataConfig {
    /// The fractions, `limit`, `label_noise`, `synthetic` and `input`.
    fn check(&self, err: Err, inner: &InnerConfig) -> Result<()> {
        let data = self;
        if let Some(syn) = &data.synthetic {
            if syn.per_class < 1 {
                return Err(err(
                    "data.synthetic.per_class",
                    format!("must be >= 1 (rows per class), got {}", syn.per_class),
                ));
            }
            if inner.example_weight.is_some() {
                return Err(err(
                    "inner.example_weight",
                    "cannot be combined with data.synthetic: a synthetic set's rows are learned \
                     themselves (its input block); remove inner.example_weight"
                        .to_owned(),
                ));
            }
        }
        if let Some(poison) = &data.poison {
            if data.synthetic.is_some() {
                return Err(err(
                    "data.poison",
                    "cannot be combined with data.synthetic: poison rows are appended to the \
                     real training rows, which a synthetic set replaces; give one of them"
                        .to_owned(),
                ));
            }
            if poison.rows < 1 {
                return Err(err(
                    "data.poison.rows",
                    format!(
                        "must be >= 1 (rows copied and relabelled), got {}",
                        poison.rows
                    ),
                ));
            }
        }
        if let Some(v) = &data.input {
            if data.synthetic.is_none() && data.poison.is_none() {
                return Err(err(
                    "data.input",
                    "needs learnable training rows: give data.synthetic \
                     ({\"per_class\": …, \"init\": \"real\"}) or data.poison \
                     ({\"rows\": …, \"labels\": \"flip\"})"
                        .to_owned(),
                ));
            }
            // `--best` writes {"per": "row", "values": …}; `per` can only be "row".
            let only_values = v.as_object().is_some_and(|o| {
                o.get("values").is_some_and(serde_json::Value::is_array)
                    && o.iter()
                        .all(|(k, v)| k == "values" || (k == "per" && v == "row"))
            });
            if !only_values {
                return Err(err(
                    "data.input",
                    "must be an object {\"values\": [[…], …]} holding every learnable row's \
                     features ([rows][features], as tune --best writes it)"
                        .to_owned(),
                ));
            }
        }
        let vf = data.validation_fraction;
        if !(vf.is_finite() && vf > 0.0 && vf < 1.0) {
            return Err(err(
                "data.validation_fraction",
                format!("must be in (0, 1), got {}", show(vf)),
            ));
        }
        let tf = data.test_fraction;
        if !(tf.is_finite() && (0.0..1.0).contains(&tf)) {
            return Err(err(
                "data.test_fraction",
                format!("must be in [0, 1), got {}", show(tf)),
            ));
        }
        if data.test.is_some() && tf > 0.0 {
            return Err(err(
                "data.test_fraction",
                format!(
                    "must be 0 when data.test names a test file (the test set is that file), \
                 got {}",
                    show(tf)
                ),
            ));
        }
        if data.validation.is_none() && vf + tf >= 1.0 {
            return Err(err(
                "data.test_fraction",
                format!(
                    "plus data.validation_fraction must be < 1 (both are held out of the \
                 training rows), got {} + {} = {}",
                    show(tf),
                    show(vf),
                    show(tf + vf)
                ),
            ));
        }
        if data.limit == Some(0) {
            return Err(err(
                "data.limit",
                "must be >= 1 (the number of rows of data.train to use), or null for all, got 0"
                    .to_owned(),
            ));
        }
        let noise = data.label_noise;
        if !(noise.is_finite() && (0.0..1.0).contains(&noise)) {
            return Err(err(
                "data.label_noise",
                format!("must be in [0, 1), got {}", show(noise)),
            ));
        }

        Ok(())
    }

    /// The section with its paths resolved against the config's folder (after
    /// [`RawDataConfig::check`]).
    fn resolve(
        self,
        err: Err,
        resolve: &dyn Fn(&str, &Path) -> Result<PathBuf>,
    ) -> Result<DataConfig> {
        let data = self;
        let train = match data.train {
            Some(p) => resolve("data.train", &p)?,
            None => {
                return Err(err(
                    "data.train",
                    "is required (a CSV file with a header row, or an IDX images file)".to_owned(),
                ));
            }
        };
        let validation = data
            .validation
            .map(|p| resolve("data.validation", &p))
            .transpose()?;
        let test = data.test.map(|p| resolve("data.test", &p)).transpose()?;
        Ok(DataConfig {
            train,
            validation,
            validation_fraction: data.validation_fraction,
            test,
            test_fraction: data.test_fraction,
            limit: data.limit,
            label_noise: data.label_noise,
            label_column: data.label_column,
            standardize: data.standardize,
            synthetic: data.synthetic,
            poison: data.poison,
            input: data.input.map(|v| Spec {
                per: crate::hyper::Per::Row,
                knots: 1,
                init: None,
                values: v.get("values").cloned(),
            }),
        })
    }
}

impl RawOuterConfig {
    /// The learning rate and `tune`: a non-empty list of the run's blocks without repeats
    /// (another optimizer's blocks named by the table), example_weight only when the inner
    /// section has it, l2 only from a positive value.
    fn validate(self, err: Err, inner: &InnerConfig, learnable: bool) -> Result<OuterConfig> {
        let own = inner.optimizer.kinds();
        let (l2, example_weight) = (&inner.l2, &inner.example_weight);
        let mut outer = self;
        if outer.objective == OuterObjective::Maximize && outer.tune.is_none() {
            return Err(err(
                "outer.tune",
                "must list the blocks to move when outer.objective is \"maximize\" (e.g. \
                 [\"input\"] with data.poison); there is no default block to ascend"
                    .to_owned(),
            ));
        }
        let tune = outer
            .tune
            .take()
            .unwrap_or_else(|| inner.optimizer.kinds()[..2].to_vec());
        if tune.is_empty() {
            return Err(err(
                "outer.tune",
                format!(
                    "must list at least one block ({}), got []",
                    Kind::ALL.map(Kind::name).join(", ")
                ),
            ));
        }
        let mut seen = HashSet::new();
        for &h in &tune {
            if OptimizerId::any_owns(h) && !own.contains(&h) {
                let names: Vec<_> = own.iter().map(|k| format!("\"{}\"", k.name())).collect();
                return Err(err(
                    "outer.tune",
                    format!(
                        "lists \"{}\", which inner.optimizer \"{}\" does not have (its own are {})",
                        h.name(),
                        inner.optimizer,
                        names.join(", ")
                    ),
                ));
            }
            if !seen.insert(h) {
                return Err(err(
                    "outer.tune",
                    format!(
                        "must not list a hyperparameter twice, got \"{}\" twice",
                        h.name()
                    ),
                ));
            }
        }

        if tune.contains(&Kind::Input) && !learnable {
            return Err(err(
                "outer.tune",
                "lists \"input\", but the training set has no learnable rows; give \
                 data.synthetic ({\"per_class\": 10, \"init\": \"real\"}) or data.poison \
                 ({\"rows\": 30, \"labels\": \"flip\"})"
                    .to_owned(),
            ));
        }
        let learning_rate = learning_rate(err, &outer.learning_rate, &tune)?;
        if tune.contains(&Kind::ExampleWeight) && example_weight.is_none() {
            return Err(err(
                "outer.tune",
                "lists \"example_weight\", but inner.example_weight is not set; give it \
             (e.g. {\"init\": 0.9}) to tune one weight per training row"
                    .to_owned(),
            ));
        }
        if tune.contains(&Kind::L2) && l2.init.is_some_and(|v| v <= 0.0) {
            return Err(err(
                if l2.is_scalar() {
                    "inner.l2"
                } else {
                    "inner.l2.init"
                },
                format!(
                    "must be > 0 when outer.tune lists \"l2\" (it is tuned in log space), got {}",
                    show(l2.init.unwrap_or(0.0))
                ),
            ));
        }

        Ok(OuterConfig {
            steps: outer.steps,
            optimizer: outer.optimizer,
            learning_rate,
            tune,
            resample: outer.resample,
            objective: outer.objective,
        })
    }
}

/// `outer.learning_rate`: a number, or an object naming tuned blocks (and `"default"`).
fn learning_rate(err: Err, v: &serde_json::Value, tune: &[Kind]) -> Result<LearningRate> {
    let rate = |field: &str, v: &serde_json::Value| -> Result<f64> {
        match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            Some(x) => Err(err(
                field,
                format!("must be finite and > 0, got {}", show(x)),
            )),
            None => Err(err(
                field,
                format!("must be a number, got {}", crate::hyper::spec::kind_of(v)),
            )),
        }
    };
    let Some(obj) = v.as_object() else {
        return Ok(LearningRate::scalar(rate("outer.learning_rate", v)?));
    };
    let mut lr = LearningRate::scalar(0.1);
    for (key, v) in obj {
        let field = format!("outer.learning_rate.{}", crate::error::shorten(key));
        if key == "default" {
            lr.default = rate(&field, v)?;
            continue;
        }
        let tuned: Vec<_> = tune.iter().map(|k| format!("\"{}\"", k.name())).collect();
        match Kind::ALL.into_iter().find(|k| k.name() == key) {
            Some(k) if tune.contains(&k) => lr.per.push((k, rate(&field, v)?)),
            found => {
                let what = if found.is_some() {
                    "names a block that is not tuned"
                } else {
                    "is not a block name"
                };
                return Err(err(
                    &field,
                    format!(
                        "{what}: give rates for the tuned blocks ({}) or \"default\"",
                        tuned.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(lr)
}

/// The message for a block of another optimizer given to `optimizer`.
fn foreign_block(kind: Kind, optimizer: OptimizerId) -> String {
    let names: Vec<_> = optimizer
        .kinds()
        .iter()
        .map(|k| format!("\"{}\"", k.name()))
        .collect();
    let owner = OptimizerId::ALL
        .into_iter()
        .filter(|o| o.info().configurable && o.kinds().contains(&kind))
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    format!(
        "is a hyperparameter of inner.optimizer {owner}, not of \"{optimizer}\" (its own are {}); \
         remove it or change inner.optimizer",
        names.join(", ")
    )
}

/// Resolves `p` against the config's folder and checks that it is an existing file.
fn resolve(file: &Path, base: &Path, field: &str, p: &Path) -> Result<PathBuf> {
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if full.is_dir() {
        return Err(Error::config(
            file,
            field,
            format!("must be a file, got a directory: {}", full.display()),
        ));
    }
    if !full.is_file() {
        return Err(Error::config(
            file,
            field,
            format!(
                "must be an existing file; file not found: {}",
                full.display()
            ),
        ));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config path inside `tests/fixtures/configs`, so `../tiny.csv` resolves.
    fn fixture_config_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs/test.json")
    }

    fn parse(text: &str) -> Result<Config> {
        Config::from_json_str(text, &fixture_config_path())
    }

    /// A minimal valid config with `section.key` replaced by `value` (raw JSON).
    fn with(section: &str, key: &str, value: &str) -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(r#"{"data": {"train": "../tiny.csv"}}"#).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(value).unwrap();
        if section.is_empty() {
            v[key] = parsed;
        } else {
            if v.get(section).is_none() {
                v[section] = serde_json::json!({});
            }
            v[section][key] = parsed;
        }
        v.to_string()
    }

    /// Asserts a config error naming `field` and containing each of `parts`, exit code 2.
    fn assert_err(text: &str, field: &str, parts: &[&str]) {
        let e = match parse(text) {
            Ok(c) => panic!("expected an error for {text}, got {c:?}"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(matches!(e, Error::Config { .. }), "{msg}");
        assert_eq!(e.exit_code(), 2, "{msg}");
        assert!(msg.contains("test.json: "), "{msg}");
        assert!(msg.contains(field), "{msg} should name {field}");
        for p in parts {
            assert!(msg.contains(p), "{msg} should contain {p}");
        }
    }

    const SPEC_EXAMPLE: &str = r#"{
  "seed": 0,
  "data": {
    "train": "../tiny.csv",
    "validation": null,
    "validation_fraction": 0.2,
    "test": null,
    "test_fraction": 0.0,
    "limit": null,
    "label_noise": 0.0,
    "label_column": "label",
    "standardize": true
  },
  "model": { "hidden": [50], "activation": "tanh", "init_scale": 1.0, "init_file": null },
  "inner": { "optimizer": "momentum", "steps": 200, "batch_size": 100, "shuffle": true,
             "alpha": 0.1, "gamma": 0.9, "l2": 0.0 },
  "outer": { "steps": 30, "optimizer": "adam", "learning_rate": 0.1,
             "tune": ["alpha", "gamma"] }
}"#;

    #[test]
    fn spec_example_parses() {
        let c = parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(c.seed, 0);
        assert!(c.data.train.ends_with("tiny.csv"));
        assert!(c.data.train.is_file());
        assert_eq!(c.data.label_column.as_deref(), Some("label"));
        assert_eq!(c.model.hidden, vec![50]);
        assert_eq!(c.model.activation, Activation::Tanh);
        assert_eq!(c.inner.optimizer, OptimizerId::Momentum);
        assert_eq!(c.inner.steps, 200);
        assert_eq!(c.outer.optimizer, OuterOptimizer::Adam);
        assert_eq!(c.outer.tune, vec![Kind::Alpha, Kind::Gamma]);
    }

    #[test]
    fn defaults_match_spec() {
        let c = parse(r#"{"data": {"train": "../tiny.csv"}}"#).unwrap();
        assert_eq!(c.seed, 0);
        assert_eq!(c.data.validation, None);
        assert_eq!(c.data.validation_fraction.to_bits(), 0.2f64.to_bits());
        assert_eq!(c.data.test, None);
        assert_eq!(c.data.test_fraction.to_bits(), 0.0f64.to_bits());
        assert_eq!(c.data.limit, None);
        assert_eq!(c.data.label_noise.to_bits(), 0.0f64.to_bits());
        assert_eq!(c.data.label_column, None);
        assert!(c.data.standardize);
        assert_eq!(c.model.hidden, vec![50]);
        assert_eq!(c.model.activation, Activation::Tanh);
        assert_eq!(c.model.init_file, None);
        assert_eq!(c.inner.optimizer, OptimizerId::Momentum);
        assert_eq!((c.inner.steps, c.inner.batch_size), (200, 100));
        assert!(c.inner.shuffle);
        assert_eq!(c.spec(Kind::Alpha), Some(&Spec::scalar(0.1)));
        assert_eq!(c.spec(Kind::Gamma), Some(&Spec::scalar(0.9)));
        assert_eq!(c.spec(Kind::L2), Some(&Spec::scalar(0.0)));
        assert_eq!(c.spec(Kind::InitScale), Some(&Spec::scalar(1.0)));
        assert_eq!(c.spec(Kind::ExampleWeight), None);
        assert_eq!(c.outer.steps, 30);
        assert_eq!(c.outer.optimizer, OuterOptimizer::Adam);
        assert_eq!(c.outer.learning_rate.default.to_bits(), 0.1f64.to_bits());
        assert_eq!(c.outer.tune, vec![Kind::Alpha, Kind::Gamma]);
    }

    #[test]
    fn blocks_parse_with_their_paths() {
        let c = parse(&with(
            "inner",
            "alpha",
            r#"{"per": "array", "knots": 10, "init": 0.02}"#,
        ))
        .unwrap();
        assert_eq!(c.inner.alpha.knots, 10);
        assert_err(
            &with("inner", "gamma", r#"{"per": "weight", "init": 0.5}"#),
            "inner.gamma.per",
            &["\"all\", \"layer\", \"array\""],
        );
        assert_err(
            &with("inner", "alpha", r#"{"knots": 201, "init": 0.5}"#),
            "inner.alpha.knots",
            &["[1, inner.steps = 200]"],
        );
        assert_err(
            &with(
                "model",
                "init_scale",
                r#"{"per": "layer", "knots": 2, "init": 1}"#,
            ),
            "model.init_scale.knots",
            &["no schedule"],
        );
        assert_err(
            &with(
                "inner",
                "l2",
                r#"{"per": "weight", "init": 0.1, "values": {}}"#,
            ),
            "inner.l2",
            &["both"],
        );
    }

    #[test]
    fn long_user_text_in_serde_messages_is_shortened() {
        let long = "x".repeat(100_000);
        let e = parse(&with("model", "activation", &format!("\"{long}\"")))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{} characters", e.len());
        assert!(e.contains("model.activation") && e.contains("tanh"), "{e}");
    }

    #[test]
    fn hidden_may_be_empty() {
        let c = parse(&with("model", "hidden", "[]")).unwrap();
        assert!(c.model.hidden.is_empty());
    }

    #[test]
    fn unknown_field_top_level() {
        assert_err(
            &with("", "sed", "1"),
            "sed is not a known field",
            &["expected one of `seed`, `data`"],
        );
        assert_err("[1]", "", &["expected a JSON object"]);
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_dotted_path() {
        let base = r#"{"data": {"train": "../tiny.csv"}, "#;
        for (text, path) in [
            (
                r#""inner": {"alpha": {"init": 0.1, "init": 0.5}}}"#,
                "inner.alpha.init",
            ),
            (r#""inner": {"steps": 5, "steps": 6}}"#, "inner.steps"),
            (r#""seed": 1, "seed": 2}"#, "seed"),
            (
                r#""inner": {"l2": {"per": "weight", "values": {"W0": [[1, 2]], "W0": [[3]]}}}}"#,
                "inner.l2.values.W0",
            ),
            (r#""x": [{"a": 1}, {"b": 1, "b": 2}]}"#, "x[1].b"),
        ] {
            assert_err(&format!("{base}{text}"), path, &["is given twice"]);
        }
        // The same key in two objects is no duplicate.
        assert!(parse(&with("inner", "alpha", r#"{"init": 0.1}"#)).is_ok());
        // Text that is not JSON is reported by the parse proper.
        assert_err(r#"{"seed": , "seed": 1}"#, "", &["invalid JSON"]);
    }

    #[test]
    fn unknown_field_nested() {
        assert_err(
            &with("inner", "lr", "0.1"),
            "inner.lr is not a known field",
            &["`alpha`", "line 1"],
        );
    }

    #[test]
    fn wrong_type() {
        assert_err(
            &with("inner", "steps", "\"ten\""),
            "inner.steps",
            &["invalid type"],
        );
        assert_err(&with("inner", "steps", "-3"), "inner.steps", &["-3"]);
        assert_err(
            &with("model", "hidden", "[50, \"x\"]"),
            "model.hidden",
            &["invalid type"],
        );
    }

    #[test]
    fn gamma_out_of_range() {
        assert_err(
            &with("inner", "gamma", "1.2"),
            "inner.gamma",
            &["must be in [0, 0.9999], got 1.2"],
        );
        // γ = 0 is plain SGD (momentum) or plain RMSprop: valid for float training; the
        // exact commands refuse it (tests/cli/rmsprop.rs).
        assert!(parse(&with("inner", "gamma", "0")).is_ok());
        assert_err(
            &with("inner", "gamma", "-0.1"),
            "inner.gamma",
            &["must be in [0, 0.9999], got -0.1"],
        );
        assert_err(
            &with("inner", "gamma", "0.99999"),
            "inner.gamma",
            &["0.9999]", "got 0.99999"],
        );
        assert!(parse(&with("inner", "gamma", "0.9999")).is_ok());
    }

    #[test]
    fn alpha_must_be_positive() {
        assert_err(
            &with("inner", "alpha", "0"),
            "inner.alpha",
            &["(0, ∞)", "got 0"],
        );
        assert_err(
            &with("inner", "alpha", "-0.5"),
            "inner.alpha",
            &["got -0.5"],
        );
    }

    #[test]
    fn l2_must_be_non_negative() {
        assert_err(
            &with("inner", "l2", "-1e-3"),
            "inner.l2",
            &["[0, ∞)", "got -0.001"],
        );
        assert_err(&with("inner", "l2", "-1e-30"), "inner.l2", &["got -1e-30"]);
    }

    #[test]
    fn init_scale_must_be_positive() {
        assert_err(
            &with("model", "init_scale", "0"),
            "model.init_scale",
            &["(0, ∞)", "got 0"],
        );
        assert_err(
            &with("model", "init_scale", "-2"),
            "model.init_scale",
            &["got -2"],
        );
    }

    #[test]
    fn validation_fraction_in_open_interval() {
        assert_err(
            &with("data", "validation_fraction", "1.0"),
            "data.validation_fraction",
            &["must be in (0, 1), got 1"],
        );
        assert_err(
            &with("data", "validation_fraction", "0"),
            "data.validation_fraction",
            &["got 0"],
        );
    }

    #[test]
    fn test_fraction_range_and_sum() {
        assert_err(
            &with("data", "test_fraction", "-0.1"),
            "data.test_fraction",
            &["must be in [0, 1), got -0.1"],
        );
        assert_err(
            &with("data", "test_fraction", "1"),
            "data.test_fraction",
            &["got 1"],
        );
        assert_err(
            &with("data", "test_fraction", "0.8"),
            "data.test_fraction",
            &["plus data.validation_fraction must be < 1", "0.8 + 0.2 = 1"],
        );
        let c = parse(&with("data", "test_fraction", "0.3")).unwrap();
        assert_eq!(c.data.test_fraction.to_bits(), 0.3f64.to_bits());
        // With a validation file only the test fraction is held out.
        let c = parse(
            r#"{"data": {"train": "../tiny.csv", "validation": "../tiny.csv",
                "test_fraction": 0.9}}"#,
        )
        .unwrap();
        assert_eq!(c.data.test_fraction.to_bits(), 0.9f64.to_bits());
        assert_err(
            r#"{"data": {"train": "../tiny.csv", "test": "../tiny.csv", "test_fraction": 0.1}}"#,
            "data.test_fraction",
            &["must be 0 when data.test names a test file"],
        );
        assert_err(
            r#"{"data": {"train": "../tiny.csv", "test": "../gone.csv"}}"#,
            "data.test",
            &["file not found", "gone.csv"],
        );
    }

    #[test]
    fn limit_and_label_noise_ranges() {
        assert_err(
            &with("data", "limit", "0"),
            "data.limit",
            &[">= 1", "got 0"],
        );
        assert_err(&with("data", "limit", "-5"), "data.limit", &["-5"]);
        assert_eq!(
            parse(&with("data", "limit", "7")).unwrap().data.limit,
            Some(7)
        );
        for bad in ["1", "1.5", "-0.01"] {
            assert_err(
                &with("data", "label_noise", bad),
                "data.label_noise",
                &["must be in [0, 1)", &format!("got {bad}")],
            );
        }
        let c = parse(&with("data", "label_noise", "0.25")).unwrap();
        assert_eq!(c.data.label_noise.to_bits(), 0.25f64.to_bits());
    }

    #[test]
    fn steps_and_batch_at_least_one() {
        assert_err(
            &with("inner", "steps", "0"),
            "inner.steps",
            &[">= 1, got 0"],
        );
        assert_err(
            &with("inner", "batch_size", "0"),
            "inner.batch_size",
            &[">= 1, got 0"],
        );
    }

    #[test]
    fn hidden_sizes_positive() {
        assert_err(
            &with("model", "hidden", "[0]"),
            "model.hidden[0]",
            &[">= 1", "got 0"],
        );
        assert_err(
            &with("model", "hidden", "[5, 0]"),
            "model.hidden[1]",
            &["got 0"],
        );
    }

    #[test]
    fn activation_lists_allowed_values() {
        assert_err(
            &with("model", "activation", "\"sigmoid\""),
            "model.activation",
            &["sigmoid", "tanh", "relu", "softplus"],
        );
    }

    #[test]
    fn optimizers_list_allowed_values() {
        assert_err(
            &with("inner", "optimizer", "\"nesterov\""),
            "inner.optimizer",
            &["momentum", "adam"],
        );
        assert_err(
            &with("outer", "optimizer", "\"lbfgs\""),
            "outer.optimizer",
            &["adam", "sgd"],
        );
    }

    #[test]
    fn adam_has_its_own_blocks_and_defaults() {
        let c = parse(&with("inner", "optimizer", "\"adam\"")).unwrap();
        assert_eq!(
            c.kinds(),
            [
                Kind::Alpha,
                Kind::Beta1,
                Kind::Beta2,
                Kind::Eps,
                Kind::L2,
                Kind::InitScale
            ]
        );
        assert_eq!(c.spec(Kind::Beta1), Some(&Spec::scalar(0.9)));
        assert_eq!(c.spec(Kind::Beta2), Some(&Spec::scalar(0.999)));
        assert_eq!(c.spec(Kind::Eps), Some(&Spec::scalar(1e-8)));
        assert_eq!(c.outer.tune, vec![Kind::Alpha, Kind::Beta1]);
        // γ is not Adam's: listing it in outer.tune is an error naming both.
        let text = with("inner", "optimizer", "\"adam\"");
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["outer"] = serde_json::json!({"tune": ["alpha", "gamma"]});
        assert_err(&v.to_string(), "outer.tune", &["\"gamma\"", "adam"]);
        // and momentum has no β₁.
        assert_err(
            &with("outer", "tune", r#"["beta1"]"#),
            "outer.tune",
            &["\"beta1\"", "momentum"],
        );
        let on = |optimizer: &str, field: &str, value: serde_json::Value| {
            let mut v: serde_json::Value =
                serde_json::from_str(&with("inner", "optimizer", &format!("\"{optimizer}\"")))
                    .unwrap();
            v["inner"][field] = value;
            v.to_string()
        };
        assert_err(&on("adam", "beta2", 1.0.into()), "inner.beta2", &["0.9999"]);
        assert_err(&on("adam", "eps", 0.into()), "inner.eps", &["(0, ∞)"]);
        // Another optimizer's block is an error naming its owner and the optimizer's own.
        assert_err(
            &with("inner", "beta2", "0.99"),
            "inner.beta2",
            &["\"adam\"", "not of \"momentum\"", "\"alpha\", \"gamma\""],
        );
        assert_err(
            &with("inner", "rho", "0.99"),
            "inner.rho",
            &["\"rmsprop\"", "not of \"momentum\""],
        );
        assert_err(
            &on("rmsprop", "beta1", 0.9.into()),
            "inner.beta1",
            &[
                "\"adam\"",
                "not of \"rmsprop\"",
                "\"gamma\", \"rho\", \"eps\"",
            ],
        );
        assert_err(
            &on("adam", "gamma", 0.9.into()),
            "inner.gamma",
            &["not of \"adam\""],
        );
        assert_err(
            &on("rmsprop", "rho", 1.0.into()),
            "inner.rho",
            &["(0, 0.9999]", "got 1"],
        );
        assert_err(
            &on("rmsprop", "rho", 0.into()),
            "inner.rho",
            &["(0, 0.9999]"],
        );
        // RMSprop's own blocks and defaults; γ = 0 (plain RMSprop) is a valid config.
        let c = parse(&on("rmsprop", "gamma", 0.into())).unwrap();
        assert_eq!(
            c.kinds(),
            [
                Kind::Alpha,
                Kind::Gamma,
                Kind::Rho,
                Kind::Eps,
                Kind::L2,
                Kind::InitScale
            ]
        );
        assert_eq!(c.spec(Kind::Rho), Some(&Spec::scalar(0.99)));
        assert_eq!(c.spec(Kind::Beta1), None);
        // --best round-trips: only the optimizer's own blocks are written.
        let json = c.to_json_pretty();
        assert!(
            json.contains("\"rho\"") && !json.contains("\"beta1\""),
            "{json}"
        );
    }

    #[test]
    fn outer_learning_rate_positive() {
        assert_err(
            &with("outer", "learning_rate", "0"),
            "outer.learning_rate",
            &["> 0"],
        );
    }

    #[test]
    fn tuning_l2_needs_a_positive_start() {
        let e = Config::from_json_str(
            r#"{"data": {"train": "../tiny.csv"}, "outer": {"tune": ["l2"]}}"#,
            &fixture_config_path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("inner.l2"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn tune_non_empty_without_duplicates() {
        assert_err(
            &with("outer", "tune", "[]"),
            "outer.tune",
            &["at least one", "got []"],
        );
        assert_err(
            &with("outer", "tune", r#"["alpha", "l2", "alpha"]"#),
            "outer.tune",
            &["\"alpha\" twice"],
        );
        assert_err(
            &with("outer", "tune", r#"["beta"]"#),
            "outer.tune",
            &["beta", "init_scale"],
        );
        let mut v: serde_json::Value =
            serde_json::from_str(&with("outer", "tune", r#"["l2", "init_scale"]"#)).unwrap();
        v["inner"] = serde_json::json!({"l2": 0.01});
        let c = parse(&v.to_string()).unwrap();
        assert_eq!(c.outer.tune, vec![Kind::L2, Kind::InitScale]);
    }

    #[test]
    fn missing_train_file() {
        assert_err(
            r#"{"data": {"train": "nope.csv"}}"#,
            "data.train",
            &["file not found", "nope.csv"],
        );
        assert_err(r#"{"seed": 1}"#, "data.train", &["required"]);
        assert_err(
            r#"{"data": {"train": "../tiny.csv", "validation": "../gone.csv"}}"#,
            "data.validation",
            &["file not found", "gone.csv"],
        );
        assert_err(
            r#"{"data": {"train": "../tiny.csv"}, "model": {"init_file": "w.npz"}}"#,
            "model.init_file",
            &["file not found", "w.npz"],
        );
    }

    #[test]
    fn relative_paths_resolve_against_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("d.csv"), "a,label\n1,0\n").unwrap();
        let cfg = dir.path().join("sub/c.json");
        fs::write(&cfg, r#"{"data": {"train": "../d.csv"}}"#).unwrap();
        let c = Config::load(&cfg).unwrap();
        assert_eq!(c.data.train, dir.path().join("sub/../d.csv"));
        assert_eq!(c.file, cfg);
        // The same text one folder deeper does not find ../d.csv (kept inside the temporary
        // folder: next to d.csv, ../d.csv would be a file in the system's temp folder).
        let e = Config::from_json_str(
            r#"{"data": {"train": "../d.csv"}}"#,
            &dir.path().join("sub/deeper/c.json"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("data.train"), "{e}");
    }

    #[test]
    fn json_syntax_error_names_line() {
        let text = "{\n  \"seed\": 0,\n  \"data\": {\"train\": \"../tiny.csv\",}\n}";
        let e = parse(text).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains("test.json: invalid JSON"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        let e = parse("{\"seed\": 0").unwrap_err();
        assert!(e.to_string().contains("invalid JSON"), "{e}");
        let e = parse(r#"{"data": {"train": "../tiny.csv"}} x"#).unwrap_err();
        assert!(e.to_string().contains("invalid JSON"), "{e}");
    }

    #[test]
    fn load_missing_file_is_io_error() {
        let e = Config::load(Path::new("/nonexistent/c.json")).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/c.json"));
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn fixture_configs_fail_with_their_field() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs");
        for (name, field) in [
            ("bad_gamma.json", "inner.gamma"),
            ("unknown_field.json", "inner.momentum is not a known field"),
            ("bad_activation.json", "model.activation"),
            ("missing_train.json", "data.train"),
        ] {
            let e = Config::load(&dir.join(name)).unwrap_err();
            assert!(e.to_string().contains(field), "{name}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
        Config::load(&dir.join("tiny.json")).unwrap();
    }

    fn assert_same(a: &Config, b: &Config) {
        assert_eq!(a.seed, b.seed);
        assert_eq!(
            fs::canonicalize(&a.data.train).unwrap(),
            fs::canonicalize(&b.data.train).unwrap()
        );
        assert_eq!(a.data.validation.is_some(), b.data.validation.is_some());
        assert_eq!(
            a.data.validation_fraction.to_bits(),
            b.data.validation_fraction.to_bits()
        );
        assert_eq!(
            a.data.test.as_ref().map(|p| fs::canonicalize(p).unwrap()),
            b.data.test.as_ref().map(|p| fs::canonicalize(p).unwrap())
        );
        assert_eq!(
            a.data.test_fraction.to_bits(),
            b.data.test_fraction.to_bits()
        );
        assert_eq!(a.data.limit, b.data.limit);
        assert_eq!(a.data.label_noise.to_bits(), b.data.label_noise.to_bits());
        assert_eq!(a.data.label_column, b.data.label_column);
        assert_eq!(a.data.standardize, b.data.standardize);
        assert_eq!(a.model.hidden, b.model.hidden);
        assert_eq!(a.model.activation, b.model.activation);
        assert_eq!(a.model.init_file.is_some(), b.model.init_file.is_some());
        assert_eq!(a.inner.optimizer, b.inner.optimizer);
        assert_eq!(a.inner.steps, b.inner.steps);
        assert_eq!(a.inner.batch_size, b.inner.batch_size);
        assert_eq!(a.inner.shuffle, b.inner.shuffle);
        for k in Kind::ALL {
            assert_eq!(a.spec(k), b.spec(k), "{}", k.name());
        }
        assert_eq!(a.outer.steps, b.outer.steps);
        assert_eq!(a.outer.optimizer, b.outer.optimizer);
        assert_eq!(
            a.outer.learning_rate.default.to_bits(),
            b.outer.learning_rate.default.to_bits()
        );
        assert_eq!(a.outer.tune, b.outer.tune);
    }

    #[test]
    fn json_round_trip_with_absolute_paths() {
        let mut c = parse(
            r#"{"seed": 7, "data": {"train": "../tiny.csv", "validation": "../tiny.csv",
                "test": "../tiny.csv", "limit": 12, "label_noise": 0.125,
                "label_column": "label", "standardize": false},
                "model": {"hidden": [], "activation": "softplus"},
                "inner": {"optimizer": "sgd", "shuffle": false, "batch_size": 3, "l2": 0.5},
                "outer": {"optimizer": "sgd", "tune": ["init_scale", "l2"]}}"#,
        )
        .unwrap();
        c.set_spec(Kind::Alpha, Spec::scalar(0.123_456_789_012_345_67));
        c.set_spec(Kind::Gamma, Spec::scalar(0.9000091552734375));
        c.set_spec(Kind::L2, Spec::scalar(1e-5));
        c.set_spec(
            Kind::ExampleWeight,
            Spec {
                per: crate::hyper::Per::Row,
                knots: 1,
                init: None,
                values: Some(serde_json::json!([0.5, 0.25])),
            },
        );
        c.set_spec(
            Kind::InitScale,
            Spec {
                per: crate::hyper::Per::Layer,
                knots: 1,
                init: None,
                values: Some(serde_json::json!([0.3, 0.5])),
            },
        );
        let text = c.to_json_pretty();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let train = v["data"]["train"].as_str().unwrap();
        assert!(Path::new(train).is_absolute(), "{train}");
        let test = v["data"]["test"].as_str().unwrap();
        assert!(Path::new(test).is_absolute(), "{test}");
        assert!(v.get("file").is_none());
        // Read it back from another folder: absolute paths still resolve.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("best.json");
        c.write_atomic(&out).unwrap();
        let back = Config::load(&out).unwrap();
        assert_same(&c, &back);
        assert_eq!(back.file, out);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A held-out test fraction round-trips too.
        let c = parse(&with("data", "test_fraction", "0.15")).unwrap();
        let back = Config::from_json_str(&c.to_json_pretty(), &out).unwrap();
        assert_same(&c, &back);
    }
}
