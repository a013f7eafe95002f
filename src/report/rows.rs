//! # Output schemas
//!
//! One `Serialize` struct per CSV or JSON schema of SPEC §4; CSV headers come from the field
//! names, so there is no hand-written header list to drift.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::hyper::OptimizerId;
use crate::hyper::{Hypers, Kind};
use crate::hypergrad::reverse::Hypergradient;
use crate::model::Layout;
use crate::optim::Arithmetic;
use crate::tune::Iteration;

/// Outcome of one outer iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The inner run finished and the hypergradient is finite.
    #[default]
    Ok,
    /// The inner run diverged or overflowed; the step was undone.
    Rejected,
}

/// One cell of a row whose columns depend on the run's blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// A count.
    Int(usize),
    /// A number.
    Num(f64),
    /// An empty cell (no test set, a rejected row, a search's gradients).
    Empty,
    /// A word.
    Text(&'static str),
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Cell::Int(v) => s.serialize_u64(v as u64),
            Cell::Num(v) => s.serialize_f64(v),
            Cell::Empty => s.serialize_none(),
            Cell::Text(t) => s.serialize_str(t),
        }
    }
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Cell::Empty, Cell::Num)
    }
}

/// The `tune` / `search` CSV header (SPEC §4.1) for a run with these blocks: the values,
/// the losses, the gradients `d_*`, time and status.
pub fn tune_header(kinds: &[Kind]) -> Vec<String> {
    let mut h = vec!["iteration".to_owned()];
    h.extend(kinds.iter().map(|k| k.name().to_owned()));
    for c in [
        "train_loss",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
    ] {
        h.push(c.to_owned());
    }
    h.extend(kinds.iter().map(|k| format!("d_{}", k.name())));
    h.push("seconds".into());
    h.push("status".into());
    h
}

/// One row of the `tune` / `search` CSV: a block shows the mean of its entries and the sum of
/// its gradients (the derivative along all-ones). Loss and gradient cells are empty on
/// rejected rows, test cells without a test set.
pub fn tune_row(it: &Iteration) -> Vec<Cell> {
    let kinds: Vec<Kind> = it.hypers.kinds().collect();
    let mut row = vec![Cell::Int(it.iteration)];
    row.extend(kinds.iter().map(|&k| Cell::Num(it.hypers.get(k).mean())));
    let r = it.result.as_ref();
    row.push(r.map(|r| r.train_loss).into());
    row.push(r.map(|r| r.val_loss).into());
    row.push(r.map(|r| r.val_accuracy).into());
    let test = r.and_then(|r| r.test);
    row.push(test.map(|t| t.0).into());
    row.push(test.map(|t| t.1).into());
    let grads = r.and_then(|r| r.grads.as_ref());
    row.extend(
        kinds
            .iter()
            .map(|&k| Cell::from(grads.map(|g| g.get(k).values.iter().sum::<f64>()))),
    );
    row.push(Cell::Num(it.seconds));
    row.push(Cell::Text(if r.is_some() { "ok" } else { "rejected" }));
    row
}

/// One row of `--hypers-out` (SPEC §4.2): one entry of one tuned block at one iteration.
#[derive(Debug, Clone, Serialize, Default)]
pub struct HyperRow {
    /// Outer iteration.
    pub iteration: usize,
    /// Block name.
    pub name: &'static str,
    /// `all`, `layer<l>`, `W<l>` or `b<l>`.
    pub group: String,
    /// Knot (0 without a schedule).
    pub knot: usize,
    /// Flat index within `W<l>` for per-weight blocks, empty otherwise.
    pub index: Option<usize>,
    /// The entry's value.
    pub value: f64,
    /// ∂val_loss/∂value; empty on rejected rows.
    pub gradient: Option<f64>,
}

/// The `--hypers-out` rows of one iteration, for the blocks `kinds`.
pub fn hyper_rows(it: &Iteration, kinds: &[Kind]) -> Vec<HyperRow> {
    let grads = it.result.as_ref().and_then(|r| r.grads.as_ref());
    let mut out = Vec::new();
    for &k in kinds {
        let b = it.hypers.get(k);
        for (e, &value) in b.values.iter().enumerate() {
            let (group, knot, index) = b.entry(e);
            out.push(HyperRow {
                iteration: it.iteration,
                name: k.name(),
                group: group.to_owned(),
                knot,
                index,
                value,
                gradient: grads.map(|g| g.get(k).values[e]),
            });
        }
    }
    out
}

/// One row of the `verify-reversal` CSV.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReversalRow {
    /// `sgd`, `momentum`, `nesterov` or `adam`.
    pub optimizer: OptimizerId,
    /// `float` or `exact`.
    pub arithmetic: Arithmetic,
    /// Learning rate.
    pub alpha: f64,
    /// Momentum, or β₁ for Adam (the effective rational one in exact arithmetic); empty for
    /// plain SGD.
    pub gamma: Option<f64>,
    /// Inner steps.
    pub steps: usize,
    /// max_t max_i |θ_t(reversed) − θ_t(forward)|.
    pub max_trace_error: f64,
    /// max_i |θ₀(reversed) − θ₀|.
    pub theta0_error: f64,
    /// Information-buffer bits per parameter per step.
    pub info_bits_per_param_step: f64,
    /// Bytes held by the information buffer.
    pub info_buffer_bytes: u64,
    /// Bytes a stored trajectory would take.
    pub store_all_bytes: u64,
}

/// One row of `verify-reversal --per-step`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReversalStepRow {
    /// `sgd`, `momentum`, `nesterov` or `adam`.
    pub optimizer: OptimizerId,
    /// `float` or `exact`.
    pub arithmetic: Arithmetic,
    /// Learning rate.
    pub alpha: f64,
    /// Step t.
    pub step: usize,
    /// max_i |θ_t(reversed) − θ_t(forward)|.
    pub trace_error: f64,
}

/// `hypergrad --json` (SPEC §4.3). Blocks are a number when scalar, else shaped objects.
#[derive(Debug, Clone, Serialize)]
pub struct HypergradJson {
    /// Mean training cross-entropy at θ_T.
    pub train_loss: f64,
    /// Validation loss at θ_T.
    pub val_loss: f64,
    /// Validation accuracy at θ_T.
    pub val_accuracy: f64,
    /// Test loss at θ_T (null without a test set).
    pub test_loss: Option<f64>,
    /// The hyperparameters as configured.
    pub hyperparameters: Value,
    /// The rational decays actually used, n/d, same shapes.
    pub effective: Value,
    /// ∂val_loss/∂hyperparameter, same shapes.
    pub hypergradients: Value,
    /// Reversal and memory figures.
    pub reversal: ReversalJson,
    /// Wall times.
    pub seconds: Seconds,
}

/// `reversal` object of `hypergrad --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReversalJson {
    /// True if θ₀, v₀ and the empty buffer were restored bit for bit.
    pub exact: bool,
    /// max_i |θ₀(reversed) − θ₀|.
    pub theta0_error: f64,
    /// Information-buffer bits per parameter per step.
    pub info_bits_per_param_step: f64,
    /// Bytes held by the information buffer at θ_T.
    pub info_buffer_bytes: u64,
    /// Bytes a stored trajectory would take.
    pub store_all_bytes: u64,
}

/// `seconds` object of `hypergrad --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Seconds {
    /// Exact forward run.
    pub forward: f64,
    /// Exact reversal with the adjoint.
    pub reverse: f64,
}

/// The blocks of `values` (the hyperparameters, or their hypergradients when `grads`)
/// as a JSON object keyed by name.
pub fn blocks_json(hypers: &Hypers, values: &Hypers, layout: &Layout, grads: bool) -> Value {
    let mut m = Map::new();
    for (b, v) in hypers.blocks.iter().zip(&values.blocks) {
        m.insert(b.kind().name().into(), b.report(&v.values, layout, !grads));
    }
    Value::Object(m)
}

impl HypergradJson {
    /// The report of `h`, taken at `hypers` over `layout`.
    pub fn new(h: &Hypergradient, hypers: &Hypers, layout: &Layout) -> Self {
        let mut effective = Map::new();
        for eff in &h.effective {
            effective.insert(
                eff.kind().name().into(),
                eff.report(&eff.values, layout, true),
            );
        }
        HypergradJson {
            train_loss: h.train_loss,
            val_loss: h.val_loss,
            val_accuracy: h.val_accuracy,
            test_loss: h.test.map(|t| t.0),
            hyperparameters: blocks_json(hypers, hypers, layout, false),
            effective: Value::Object(effective),
            hypergradients: blocks_json(hypers, &h.grads, layout, true),
            reversal: ReversalJson {
                exact: h.exact,
                theta0_error: h.theta0_error,
                info_bits_per_param_step: h.info_bits_per_param_step,
                info_buffer_bytes: h.info_buffer_bytes,
                store_all_bytes: h.store_all_bytes,
            },
            seconds: Seconds {
                forward: h.forward_seconds,
                reverse: h.reverse_seconds,
            },
        }
    }
}

/// `train --json`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainJson {
    /// `float` or `exact`.
    pub arithmetic: Arithmetic,
    /// Inner steps run.
    pub steps: usize,
    /// Mean training cross-entropy at θ_T (no penalty).
    pub train_loss: f64,
    /// Training accuracy at θ_T.
    pub train_accuracy: f64,
    /// Validation loss at θ_T.
    pub val_loss: f64,
    /// Validation accuracy at θ_T.
    pub val_accuracy: f64,
    /// Test loss at θ_T; `null` without a test set.
    pub test_loss: Option<f64>,
    /// Test accuracy at θ_T; `null` without a test set.
    pub test_accuracy: Option<f64>,
    /// Wall time, seconds.
    pub seconds: f64,
}
