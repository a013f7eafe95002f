//! # Random search: the baseline a user would otherwise run
//!
//! Seeded random search over the blocks listed in `outer.tune`, each drawn as **one
//! scalar** (every entry of the block set to it) from SPEC §2.4's range — log-uniform for
//! log-warped kinds, uniform for logit-warped ones — and evaluated by float64 training.
//! Iteration 0 is the configured starting point, as in `tune`, so the two CSVs compare row
//! for row. A diverging trial is a `rejected` iteration, never an error; a diverging starting
//! point ends the search with its error, as it ends `tune`: the config itself does not train,
//! and a search whose rows could all be rejected would leave no best point to write. The
//! search stops after `trials` trials or when the time budget is used, whichever comes
//! first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

use super::{Evaluation, Inner, Iteration, Observer, State, StopReason, Summary};
use crate::error::Result;
use crate::hyper::{Hypers, Kind, Warp};
use crate::hypergrad::Setup;
use crate::hypergrad::reverse::finite;
use crate::model::{Evaluate, Objective, RowTangents};
use crate::optim::{Arithmetic, train_counted};

/// What a search needs besides its runs.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    /// The starting blocks.
    pub start: &'a Hypers,
    /// The blocks drawn.
    pub tune: &'a [Kind],
    /// Trials after the starting point.
    pub trials: usize,
    /// Time budget in seconds (no new trial starts after it).
    pub seconds: Option<f64>,
    /// Seed of the draws.
    pub seed: u64,
    /// Which validation loss is best: the lowest, or the highest (`maximize`).
    pub objective: crate::config::OuterObjective,
}

/// One value of `kind` from its search range.
pub fn draw(kind: Kind, rng: &mut StdRng) -> f64 {
    let (lo, hi) = kind.info().search;
    match kind.info().warp {
        Warp::Log => (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp(),
        // Uniform on (lo, hi]: 1 − U lies in (0, 1]. (The input block is never searched:
        // its range is NaN and so is the draw.)
        Warp::Logit | Warp::Box => lo + (1.0 - rng.random::<f64>()) * (hi - lo),
    }
}

/// Float64 training at `setup.hypers` and the losses at θ_T.
///
/// # Errors
/// Divergence or overflow of the training, or a training or validation loss at θ_T that is
/// not finite ([`crate::Error::Diverged`]).
fn evaluate(
    obj: &mut (impl Objective + Evaluate + RowTangents),
    setup: Setup,
) -> Result<Evaluation> {
    let theta = train_counted(
        &mut setup.objective(obj),
        setup.layout,
        &setup.theta0(),
        setup.hypers,
        setup.steps,
        setup.optimizer,
        Arithmetic::Float,
        setup.threads,
        setup.progress,
    )?;
    let mut g = vec![0.0; obj.dim()];
    let (val_loss, val_accuracy) = obj.validation_grad_into(&theta, &mut g);
    let at = |what: &str| format!("at the trained weights, the {what}");
    let val_loss = finite(val_loss, &at("validation loss"), setup.steps, &setup)?;
    let train_loss = finite(
        obj.train_loss(&theta),
        &at("training loss"),
        setup.steps,
        &setup,
    )?;
    let test = obj.test_metrics(&theta);
    Ok(Evaluation {
        train_loss,
        val_loss,
        val_accuracy,
        test,
        grads: None,
    })
}

/// Trial `k`'s point: the starting blocks with each searched block set to one drawn value.
fn trial(cfg: &Search, rng: &mut StdRng) -> Hypers {
    let mut h = cfg.start.clone();
    for &kind in cfg.tune {
        let v = draw(kind, rng);
        h.get_mut(kind).values.fill(v);
    }
    h
}

/// Run the search, from its starting point or on from a saved state (whose trials' draws
/// are replayed, so trial k draws the same point either way). The observer sees every
/// trial ([`Observer::on_iteration`]) and the state after it ([`Observer::on_state`]).
///
/// # Errors
/// The starting point's own divergence or overflow (there is no point to compare the
/// trials with, as in `tune`); an observer's error (e.g. the output file became
/// unwritable); an error other than divergence from a trial (none is expected).
pub fn run(
    inner: &mut impl Inner,
    cfg: Search,
    resume: Option<State>,
    observer: &mut dyn Observer,
    interrupt: &AtomicBool,
) -> Result<Summary> {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed_5ea2c4);
    observer.on_start(cfg.trials.saturating_add(1))?;
    let before = resume.as_ref().map_or(0.0, |s| s.seconds);
    let clock = Instant::now();
    let seconds = || before + clock.elapsed().as_secs_f64();
    // Iteration 0 fails with its error; a trial that diverges is rejected.
    let point = |h: Hypers, k: usize, inner: &mut _, observer: &mut dyn Observer| {
        let result = {
            let (obj, setup) = Inner::at(inner, k, &h)?;
            match evaluate(obj, setup) {
                Ok(e) => Some(e),
                Err(e) if k > 0 && e.is_divergence() => {
                    observer.on_rejected(k, &e.to_string())?;
                    None
                }
                Err(e) => return Err(e),
            }
        };
        Ok::<_, crate::Error>(Iteration {
            iteration: k,
            hypers: h,
            result,
            seconds: seconds(),
        })
    };
    let mut st = match resume {
        Some(st) => {
            for _ in 0..st.done {
                trial(&cfg, &mut rng);
            }
            observer.on_resume(&st)?;
            st
        }
        None => {
            let start = point(cfg.start.clone(), 0, inner, observer)?;
            let st = State::starting(start, None);
            observer.on_iteration(&st.start, &st.best)?;
            observer.on_state(&st)?;
            st
        }
    };
    let mut stop = StopReason::StepsDone;
    for k in st.done + 1..=cfg.trials {
        if interrupt.load(Ordering::SeqCst) {
            stop = StopReason::Interrupted;
            break;
        }
        if cfg.seconds.is_some_and(|s| seconds() >= s) {
            stop = StopReason::TimeUp;
            break;
        }
        let it = point(trial(&cfg, &mut rng), k, inner, observer)?;
        st.done = k;
        st.rows += 1;
        st.seconds = it.seconds;
        if it.result.is_none() {
            st.rejected += 1;
            st.in_a_row += 1;
        } else {
            st.in_a_row = 0;
        }
        if it.better_than(&st.best, cfg.objective) {
            st.best = it.clone();
        }
        observer.on_iteration(&it, &st.best)?;
        observer.on_state(&st)?;
    }
    let summary = Summary {
        stop,
        start: st.start,
        best: st.best,
        rows: st.rows,
        rejected: st.rejected,
        clipped: 0,
        learning_rate_scale: None,
    };
    observer.on_finish(&summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_their_ranges() {
        let mut rng = StdRng::seed_from_u64(1);
        // example_weight and input are never searched (SPEC §2.4, §2.5).
        for kind in Kind::ALL
            .into_iter()
            .filter(|&k| !matches!(k, Kind::ExampleWeight | Kind::Input))
        {
            let (lo, hi) = kind.info().search;
            for _ in 0..1000 {
                let v = draw(kind, &mut rng);
                assert!(
                    v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12),
                    "{kind:?} {v}"
                );
                assert!(kind.check(v).is_ok(), "{kind:?} {v}");
            }
        }
    }
}
