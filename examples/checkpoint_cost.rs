//! # What writing a checkpoint costs an outer iteration
//!
//! Loads one config, computes its hypergradient once (the work of one `tune` iteration),
//! builds the loop's state as `tune` holds it after an iteration (start, best and last
//! good point, three different iterations: the largest checkpoint; Adam moments over every
//! tuned entry) and times
//! [`CheckpointWriter::write`] — serialisation, CRC-32, a synced temporary file and the
//! rename — N times, and the encoding alone (state to JSON and CRC-32) N times. Prints the
//! checkpoint's size, the median write and encoding times, the hypergradient's time and
//! the ratio of write to hypergradient.
//!
//! ```text
//! cargo run --release --example checkpoint_cost -- CONFIG [N]
//! ```
#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::path::PathBuf;
use std::time::Instant;

use revgrad::config::OuterOptimizer;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::model::Threads;
use revgrad::problem::Experiment;
use revgrad::tune::adam::OuterOptimizerState;
use revgrad::tune::checkpoint::{CheckpointWriter, Command, Run};
use revgrad::tune::{Descent, Evaluation, Iteration, State, tuned_len};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(args.first().expect("usage: checkpoint_cost CONFIG [N]"));
    let n: usize = args.get(1).map_or(50, |s| s.parse().expect("N"));
    let exp = Experiment::load(&path)
        .expect("config")
        .with_threads(Threads::new(Threads::all_cores()).expect("threads"));
    let mut run = exp.prepare().expect("prepare");
    let t = Instant::now();
    let h = {
        let setup = run.ctx.setup(&run.hypers);
        hypergradient(&mut run.problem, setup).expect("hypergradient")
    };
    let iteration = t.elapsed().as_secs_f64();
    let it = Iteration {
        iteration: 1,
        hypers: run.hypers.clone(),
        result: Some(Evaluation::from(h)),
        seconds: iteration,
    };
    let dim = tuned_len(&run.hypers, &exp.config.outer.tune);
    // The largest checkpoint: the start, the best and the last good point all differ
    // (iterations 0, 1 and 2), so each is saved with its blocks.
    let at = |iteration| Iteration {
        iteration,
        ..it.clone()
    };
    let state = State {
        done: 2,
        rows: 3,
        rejected: 0,
        clipped: 0,
        in_a_row: 0,
        seconds: iteration,
        start: at(0),
        best: at(1),
        descent: Some(Descent {
            good: at(2),
            optimizer: OuterOptimizerState::new(OuterOptimizer::Adam, dim),
            lr_scale: 1.0,
            rejected_delta: None,
        }),
    };
    let record = Run {
        command: Command::Tune,
        config: exp.config.clone(),
        steps: exp.config.outer.steps,
        seconds: None,
        memory_limit: revgrad::memory::limit().expect("limit").0,
        data: revgrad::data::fingerprint::of_inputs(&exp.config).expect("fingerprints"),
    };
    let out = std::env::temp_dir().join(format!("revgrad-ck-{}.json", std::process::id()));
    let writer = CheckpointWriter::new(out.clone(), &record);
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            writer.write(&state).expect("write");
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    // The part of a write spent making the bytes (state → JSON, CRC-32), without the file.
    let mut encode: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(writer.bytes(&state));
            t.elapsed().as_secs_f64()
        })
        .collect();
    encode.sort_by(f64::total_cmp);
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&out);
    let med = times[n / 2];
    println!(
        "checkpoint {bytes} bytes, {dim} tuned entries: write median {:.3} ms (min {:.3}, max {:.3}) \
         over {n}, of which encoding {:.3} ms; one hypergradient {iteration:.2} s; ratio {:.4}%",
        med * 1e3,
        times[0] * 1e3,
        times[n - 1] * 1e3,
        encode[n / 2] * 1e3,
        100.0 * med / iteration
    );
}
