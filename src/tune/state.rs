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
//!
//! Each point is saved once: the best point and the start are saved without blocks when
//! they are the good point (or the best is the start), as their iteration says, and only
//! the good point keeps its hypergradients (the next step needs them; the start and the
//! best are only reported). With a learned training set a point holds tens of thousands of
//! entries, so this keeps a checkpoint at six numbers per entry at most (the good point's
//! values and hypergradients, the start's and the best's values, the optimizer's two
//! moments), five when the best is the good point or the start, instead of eight.

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
    /// `None` when they are the blocks of the saved point of the same iteration.
    blocks: Option<Vec<SavedBlock>>,
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

/// `it` as saved: its blocks unless `saved` already holds a point of its iteration, its
/// hypergradients only `with_grads`.
fn save_point(it: &Iteration, saved: &[&Iteration], with_grads: bool) -> SavedPoint {
    let again = saved.iter().any(|s| s.iteration == it.iteration);
    SavedPoint {
        iteration: it.iteration,
        seconds: it.seconds,
        blocks: (!again).then(|| save_blocks(&it.hypers)),
        result: it.result.as_ref().map(|r| SavedEvaluation {
            train_loss: r.train_loss,
            val_loss: r.val_loss,
            val_accuracy: r.val_accuracy,
            test: r.test,
            grads: r.grads.as_ref().filter(|_| with_grads).map(save_blocks),
        }),
    }
}

/// `p` on the shapes of `template`; a point saved without blocks takes those of the point
/// of its iteration among `restored`.
fn restore_point(
    p: SavedPoint,
    template: &Hypers,
    restored: &[&Iteration],
    field: &str,
) -> Result<Iteration, String> {
    let hypers = match p.blocks {
        Some(b) => restore_blocks(b, template, &format!("{field}.blocks"))?,
        None => match restored.iter().find(|r| r.iteration == p.iteration) {
            Some(r) => r.hypers.clone(),
            None => {
                return Err(format!(
                    "{field} has no blocks, and no other point is iteration {}",
                    p.iteration
                ));
            }
        },
    };
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
    /// The state after iteration 0, `start`: it is the best point so far and, for a
    /// descent (whose outer optimizer starts at `optimizer`), the good point, at the full
    /// learning rate with no retry pending.
    pub fn starting(start: Iteration, optimizer: Option<OuterOptimizerState>) -> State {
        State {
            done: 0,
            rows: 1,
            rejected: 0,
            clipped: 0,
            in_a_row: 0,
            seconds: start.seconds,
            best: start.clone(),
            descent: optimizer.map(|optimizer| Descent {
                good: start.clone(),
                optimizer,
                lr_scale: 1.0,
                rejected_delta: None,
            }),
            start,
        }
    }

    /// The state as serde data.
    pub fn to_saved(&self) -> SavedState {
        let good: Vec<&Iteration> = self.descent.iter().map(|d| &d.good).collect();
        SavedState {
            done: self.done,
            rows: self.rows,
            rejected: self.rejected,
            clipped: self.clipped,
            in_a_row: self.in_a_row,
            seconds: self.seconds,
            // The good point first, in full; then the start and the best, each without
            // the blocks of a point saved before it.
            start: save_point(&self.start, &good, false),
            best: save_point(
                &self.best,
                &[good.as_slice(), &[&self.start]].concat(),
                false,
            ),
            descent: self.descent.as_ref().map(|d| SavedDescent {
                good: save_point(&d.good, &[], true),
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
        let descent = match (s.descent, tuned) {
            (Some(d), Some(dim)) => {
                let good = restore_point(d.good, template, &[], "state.descent.good")?;
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
        let good: Vec<&Iteration> = descent.iter().map(|d| &d.good).collect();
        let start = restore_point(s.start, template, &good, "state.start")?;
        let earlier = [good.as_slice(), &[&start]].concat();
        let best = restore_point(s.best, template, &earlier, "state.best")?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OuterOptimizer;
    use crate::hyper::{Block, Kind};
    use crate::model::Layout;

    fn point(iteration: usize, alpha: f64) -> Iteration {
        let l = Layout::new(&[2, 3, 2]);
        let hypers = Hypers {
            blocks: vec![
                Block::scalar(Kind::Alpha, &l, alpha),
                Block::scalar(Kind::Gamma, &l, 0.9),
            ],
        };
        let mut grads = hypers.clone();
        grads.blocks[0].values[0] = -0.25 * alpha;
        Iteration {
            iteration,
            hypers,
            result: Some(Evaluation {
                train_loss: 1.0,
                val_loss: alpha,
                val_accuracy: 0.5,
                test: None,
                grads: Some(grads),
            }),
            seconds: iteration as f64,
        }
    }

    fn state(start: Iteration, best: Iteration, good: Iteration, done: usize) -> State {
        State {
            done,
            rows: done + 1,
            rejected: 0,
            clipped: 0,
            in_a_row: 0,
            seconds: done as f64,
            start,
            best,
            descent: Some(Descent {
                good,
                optimizer: OuterOptimizerState::new(OuterOptimizer::Adam, 2),
                lr_scale: 1.0,
                rejected_delta: None,
            }),
        }
    }

    /// Through JSON and back, on the template's shapes.
    fn round_trip(st: &State) -> (State, String) {
        let json = serde_json::to_string(&st.to_saved()).unwrap();
        let saved: SavedState = serde_json::from_str(&json).unwrap();
        let template = point(0, 0.5).hypers;
        (State::from_saved(saved, &template, Some(2)).unwrap(), json)
    }

    fn alpha(it: &Iteration) -> f64 {
        it.hypers.get(Kind::Alpha).values[0]
    }

    #[test]
    fn each_point_is_saved_once_and_only_the_good_one_with_hypergradients() {
        let (start, best) = (point(0, 0.5), point(3, 0.1 + 0.2));
        // The best point is the good one: one copy of its blocks.
        let st = state(start.clone(), best.clone(), best.clone(), 3);
        let (back, json) = round_trip(&st);
        assert_eq!(
            json.matches("\"gamma\"").count(),
            3,
            "good, its grads, start: {json}"
        );
        assert_eq!(alpha(&back.best).to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(alpha(&back.start).to_bits(), 0.5f64.to_bits());
        let d = back.descent.as_ref().unwrap();
        assert_eq!(alpha(&d.good).to_bits(), alpha(&best).to_bits());
        let g = d.good.result.as_ref().unwrap().grads.as_ref().unwrap();
        assert_eq!(
            g.get(Kind::Alpha).values[0].to_bits(),
            (-0.25 * (0.1f64 + 0.2)).to_bits()
        );
        assert!(back.best.result.as_ref().unwrap().grads.is_none());
        // The best is the start, and the good point another: two copies.
        let st = state(start.clone(), start.clone(), point(2, 0.7), 3);
        let (back, json) = round_trip(&st);
        assert_eq!(
            json.matches("\"gamma\"").count(),
            3,
            "good, its grads, start: {json}"
        );
        assert_eq!(alpha(&back.best).to_bits(), 0.5f64.to_bits());
        assert_eq!(back.best.iteration, 0);
        assert_eq!(
            alpha(&back.descent.unwrap().good).to_bits(),
            0.7f64.to_bits()
        );
        // Three different points: three copies, one set of hypergradients.
        let st = state(start, point(1, 0.4), point(2, 0.7), 3);
        let (back, json) = round_trip(&st);
        assert_eq!(json.matches("\"gamma\"").count(), 4, "{json}");
        assert_eq!(alpha(&back.best).to_bits(), 0.4f64.to_bits());
    }

    #[test]
    fn a_point_without_blocks_needs_a_point_of_its_iteration() {
        let st = state(point(0, 0.5), point(3, 0.3), point(3, 0.3), 3);
        let mut saved = st.to_saved();
        saved.best.iteration = 2;
        let template = point(0, 0.5).hypers;
        let e = State::from_saved(saved, &template, Some(2)).unwrap_err();
        assert!(e.contains("state.best has no blocks"), "{e}");
        assert!(e.contains("iteration 2"), "{e}");
    }
}
