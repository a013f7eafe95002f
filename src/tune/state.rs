//! # The outer loop's state between two iterations
//!
//! Everything [`super::run`] and [`super::search::run`] carry from one iteration to the
//! next, so a loop can stop after iteration `done` and continue later as if it never
//! stopped: the counters, the starting and the best point, and for the descent the last
//! good point (with its hypergradients), the outer optimizer's moments and step count, the
//! learning-rate scale and the pending retry of a rejected step. The resampling state needs
//! nothing more: iteration k's inner seed is a function of k
//! ([`crate::problem::Runs::seed_of`]), and a search replays its draws.
//!
//! [`State::to_saved`] and [`State::from_saved`] convert to and from [`SavedState`], plain
//! serde data in which every number is written in the shortest form that reads back to the
//! same bits (serde_json with `float_roundtrip`), so a continued loop computes bit for bit
//! what the uninterrupted one would have. A point's blocks are saved as their values only;
//! their shapes come back from the run's own blocks (the template), and a saved state that
//! does not fit them is refused with the field that does not.

use serde::{Deserialize, Serialize};

use super::adam::OuterOptimizerState;
use super::{Evaluation, Iteration};
use crate::hyper::Hypers;

/// The loop's state after iteration `done` (see the module docs).
#[derive(Debug, Clone)]
pub struct State {
    /// The last iteration reported (0 = the starting point).
    pub done: usize,
    /// Iterations reported (including iteration 0).
    pub rows: usize,
    /// Rejected iterations.
    pub rejected: usize,
    /// Outer steps clipped by the chaos guard.
    pub clipped: usize,
    /// Rejections in a row at the end.
    pub in_a_row: usize,
    /// Wall time of the loop so far, seconds (continued by a resumed loop).
    pub seconds: f64,
    /// Iteration 0.
    pub start: Iteration,
    /// The best iteration so far.
    pub best: Iteration,
    /// The descent's own state (`None` for a search).
    pub descent: Option<Descent>,
}

/// What the descent carries besides the counters.
#[derive(Debug, Clone)]
pub struct Descent {
    /// The last accepted point, with its hypergradients: the next step starts from it.
    pub good: Iteration,
    /// The outer optimizer's moments and step count at `good`.
    pub optimizer: OuterOptimizerState,
    /// What every block's learning rate is multiplied by (halved at each rejection).
    pub lr_scale: f64,
    /// The step just rejected, whose half is the next step (a pending retry).
    pub rejected_delta: Option<Vec<f64>>,
}

/// [`State`] as serde data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    done: usize,
    rows: usize,
    rejected: usize,
    clipped: usize,
    in_a_row: usize,
    seconds: f64,
    start: SavedPoint,
    best: SavedPoint,
    descent: Option<SavedDescent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedDescent {
    good: SavedPoint,
    optimizer: OuterOptimizerState,
    lr_scale: f64,
    rejected_delta: Option<Vec<f64>>,
}

/// One block's values, named.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedBlock {
    block: String,
    values: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedPoint {
    iteration: usize,
    seconds: f64,
    blocks: Vec<SavedBlock>,
    result: Option<SavedEvaluation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedEvaluation {
    train_loss: f64,
    val_loss: f64,
    val_accuracy: f64,
    test: Option<(f64, f64)>,
    grads: Option<Vec<SavedBlock>>,
}

fn save_blocks(h: &Hypers) -> Vec<SavedBlock> {
    h.blocks
        .iter()
        .map(|b| SavedBlock {
            block: b.kind().name().to_owned(),
            values: b.values.clone(),
        })
        .collect()
}

/// `saved` on the shapes of `template`; an error naming `field` unless they fit.
fn restore_blocks(
    saved: Vec<SavedBlock>,
    template: &Hypers,
    field: &str,
) -> Result<Hypers, String> {
    if saved.len() != template.blocks.len() {
        return Err(format!(
            "{field} has {} blocks, the run has {}",
            saved.len(),
            template.blocks.len()
        ));
    }
    let mut out = template.clone();
    for (b, s) in out.blocks.iter_mut().zip(saved) {
        let name = b.kind().name();
        if s.block != name || s.values.len() != b.values.len() {
            return Err(format!(
                "{field} holds {} with {} values where the run has {name} with {}",
                crate::error::shorten(&s.block),
                s.values.len(),
                b.values.len()
            ));
        }
        if let Some(v) = s.values.iter().find(|v| !v.is_finite()) {
            return Err(format!("{field}.{name} holds {v}"));
        }
        b.values = s.values;
    }
    Ok(out)
}

fn save_point(it: &Iteration) -> SavedPoint {
    SavedPoint {
        iteration: it.iteration,
        seconds: it.seconds,
        blocks: save_blocks(&it.hypers),
        result: it.result.as_ref().map(|r| SavedEvaluation {
            train_loss: r.train_loss,
            val_loss: r.val_loss,
            val_accuracy: r.val_accuracy,
            test: r.test,
            grads: r.grads.as_ref().map(save_blocks),
        }),
    }
}

fn restore_point(p: SavedPoint, template: &Hypers, field: &str) -> Result<Iteration, String> {
    let hypers = restore_blocks(p.blocks, template, &format!("{field}.blocks"))?;
    let result = match p.result {
        None => None,
        Some(r) => Some(Evaluation {
            train_loss: r.train_loss,
            val_loss: r.val_loss,
            val_accuracy: r.val_accuracy,
            test: r.test,
            grads: match r.grads {
                Some(g) => Some(restore_blocks(
                    g,
                    template,
                    &format!("{field}.result.grads"),
                )?),
                None => None,
            },
        }),
    };
    Ok(Iteration {
        iteration: p.iteration,
        hypers,
        result,
        seconds: p.seconds,
    })
}

impl State {
    /// The state as serde data.
    pub fn to_saved(&self) -> SavedState {
        SavedState {
            done: self.done,
            rows: self.rows,
            rejected: self.rejected,
            clipped: self.clipped,
            in_a_row: self.in_a_row,
            seconds: self.seconds,
            start: save_point(&self.start),
            best: save_point(&self.best),
            descent: self.descent.as_ref().map(|d| SavedDescent {
                good: save_point(&d.good),
                optimizer: d.optimizer.clone(),
                lr_scale: d.lr_scale,
                rejected_delta: d.rejected_delta.clone(),
            }),
        }
    }

    /// A saved state on the blocks of `template` (the run's blocks as configured), for a
    /// loop over `tuned` coordinates (the tuned entries' count; `None` for a search).
    ///
    /// # Errors
    /// What does not fit, naming the field: a block missing or of another size, a
    /// non-finite value, an optimizer state of another size, counters that contradict each
    /// other, a descent state in a search's state or none in a descent's.
    pub fn from_saved(
        saved: SavedState,
        template: &Hypers,
        tuned: Option<usize>,
    ) -> Result<State, String> {
        let s = saved;
        let start = restore_point(s.start, template, "state.start")?;
        let best = restore_point(s.best, template, "state.best")?;
        let descent = match (s.descent, tuned) {
            (Some(d), Some(dim)) => {
                let good = restore_point(d.good, template, "state.descent.good")?;
                if good
                    .result
                    .as_ref()
                    .and_then(|r| r.grads.as_ref())
                    .is_none()
                {
                    return Err("state.descent.good has no hypergradients".into());
                }
                d.optimizer
                    .check(dim)
                    .map_err(|e| format!("state.descent.optimizer {e}"))?;
                if d.rejected_delta
                    .as_ref()
                    .is_some_and(|r| r.len() != dim || r.iter().any(|v| !v.is_finite()))
                {
                    return Err(format!(
                        "state.descent.rejected_delta must hold {dim} finite numbers"
                    ));
                }
                if !(d.lr_scale.is_finite() && (0.0..=1.0).contains(&d.lr_scale)) {
                    return Err(format!(
                        "state.descent.lr_scale must be in [0, 1], got {}",
                        d.lr_scale
                    ));
                }
                Some(Descent {
                    good,
                    optimizer: d.optimizer,
                    lr_scale: d.lr_scale,
                    rejected_delta: d.rejected_delta,
                })
            }
            (None, None) => None,
            (Some(_), None) => return Err("state.descent is given for a search".into()),
            (None, Some(_)) => return Err("state.descent is missing".into()),
        };
        let consistent = s.rows == s.done + 1
            && s.rejected <= s.done
            && s.in_a_row <= s.rejected
            && s.clipped <= s.done
            && start.iteration == 0
            && start.result.is_some()
            && best.iteration <= s.done
            && best.result.is_some()
            && descent.as_ref().is_none_or(|d| d.good.iteration <= s.done)
            && s.seconds.is_finite()
            && s.seconds >= 0.0;
        if !consistent {
            return Err("state: its counters and points contradict each other".into());
        }
        Ok(State {
            done: s.done,
            rows: s.rows,
            rejected: s.rejected,
            clipped: s.clipped,
            in_a_row: s.in_a_row,
            seconds: s.seconds,
            start,
            best,
            descent,
        })
    }
}
