//! # Output schemas
//!
//! One `Serialize` struct per CSV or JSON schema of SPEC §4; CSV headers come from the field
//! names, so there is no hand-written header list to drift.

use serde::Serialize;

use crate::optim::{Arithmetic, Method};

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

/// One row of the `tune` CSV. Loss and gradient cells are empty on rejected rows.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TuneRow {
    /// 0 = starting point.
    pub iteration: usize,
    /// α of this iteration.
    pub alpha: f64,
    /// γ of this iteration (as configured; exact runs use ⌈γ·2^16⌉/2^16).
    pub gamma: f64,
    /// l2 of this iteration.
    pub l2: f64,
    /// init_scale of this iteration.
    pub init_scale: f64,
    /// Mean training cross-entropy at θ_T.
    pub train_loss: Option<f64>,
    /// Validation loss at θ_T.
    pub val_loss: Option<f64>,
    /// Validation accuracy at θ_T.
    pub val_accuracy: Option<f64>,
    /// ∂val_loss/∂α.
    pub d_alpha: Option<f64>,
    /// ∂val_loss/∂γ.
    pub d_gamma: Option<f64>,
    /// ∂val_loss/∂l2.
    pub d_l2: Option<f64>,
    /// ∂val_loss/∂init_scale.
    pub d_init_scale: Option<f64>,
    /// Wall time since the start, seconds.
    pub seconds: f64,
    /// `ok` or `rejected`.
    pub status: Status,
}

/// One row of the `verify-reversal` CSV.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReversalRow {
    /// `sgd` or `momentum`.
    pub optimizer: Method,
    /// `float` or `exact`.
    pub arithmetic: Arithmetic,
    /// Learning rate.
    pub alpha: f64,
    /// Momentum (the effective rational one for exact momentum); empty for plain SGD.
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
    /// `sgd` or `momentum`.
    pub optimizer: Method,
    /// `float` or `exact`.
    pub arithmetic: Arithmetic,
    /// Learning rate.
    pub alpha: f64,
    /// Step t.
    pub step: usize,
    /// max_i |θ_t(reversed) − θ_t(forward)|.
    pub trace_error: f64,
}

/// `hypergrad --json` (SPEC §4).
#[derive(Debug, Clone, Serialize)]
pub struct HypergradJson {
    /// Mean training cross-entropy at θ_T.
    pub train_loss: f64,
    /// Validation loss at θ_T.
    pub val_loss: f64,
    /// Validation accuracy at θ_T.
    pub val_accuracy: f64,
    /// The hyperparameters as configured.
    pub hyperparameters: crate::hypergrad::PerHyper,
    /// The effective γ = n/d.
    pub effective: Effective,
    /// ∂val_loss/∂hyperparameter.
    pub hypergradients: crate::hypergrad::PerHyper,
    /// Reversal and memory figures.
    pub reversal: ReversalJson,
    /// Wall times.
    pub seconds: Seconds,
}

/// `effective` object of `hypergrad --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Effective {
    /// n/d.
    pub gamma: f64,
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

impl From<&crate::hypergrad::reverse::Hypergradient> for HypergradJson {
    fn from(h: &crate::hypergrad::reverse::Hypergradient) -> Self {
        HypergradJson {
            train_loss: h.train_loss,
            val_loss: h.val_loss,
            val_accuracy: h.val_accuracy,
            hyperparameters: crate::hypergrad::PerHyper {
                alpha: h.hyper.alpha,
                gamma: h.hyper.gamma,
                l2: h.hyper.l2,
                init_scale: h.hyper.init_scale,
            },
            effective: Effective {
                gamma: h.effective_gamma,
            },
            hypergradients: h.grads,
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
