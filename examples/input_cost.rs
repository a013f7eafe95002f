//! # What the input block costs a hypergradient
//!
//! Times `hypergradient` on one config (A) with its blocks as prepared (the input block
//! present, so the reverse pass computes input tangents) and (B) with the input block
//! removed (the same synthetic rows, standardised, trained without input tangents),
//! interleaved A B A B …, on all cores as the CLI's default. Checks that A and B give the
//! same val_loss bits and the same hypergradients for their shared blocks, and prints the
//! per-run times and the median ratio A/B.
//!
//! ```text
//! cargo run --release --example input_cost -- CONFIG [PAIRS] [THREADS]
//! ```
#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::path::PathBuf;
use std::time::Instant;

use revgrad::hyper::Kind;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::model::Threads;
use revgrad::problem::Experiment;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(
        args.first()
            .expect("usage: input_cost CONFIG [PAIRS] [THREADS]"),
    );
    let pairs: usize = args.get(1).map_or(5, |s| s.parse().expect("PAIRS"));
    let n_threads: usize = args
        .get(2)
        .map_or_else(Threads::all_cores, |s| s.parse().expect("THREADS"));
    let threads = Threads::new(n_threads).expect("threads");
    let exp = Experiment::load(&path)
        .expect("load")
        .with_threads(threads.clone());
    exp.require_reversible().expect("reversible");
    let prepared = exp.prepare().expect("prepare");
    let hypers_a = prepared.hypers.clone();
    assert!(
        hypers_a.find(Kind::Input).is_some(),
        "the config has no input block"
    );
    let mut hypers_b = hypers_a.clone();
    hypers_b.blocks.retain(|b| b.kind() != Kind::Input);
    println!(
        "threads {}  T {}  |theta| {}  blocks A {:?}  B {:?}",
        threads.count(),
        prepared.ctx.steps,
        prepared.ctx.layout.len(),
        hypers_a.kinds().collect::<Vec<_>>(),
        hypers_b.kinds().collect::<Vec<_>>()
    );
    let mut problem_a = prepared.problem.clone();
    let mut problem_b = prepared.problem.clone();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let (mut fa, mut ra, mut fb, mut rb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut first: Option<(u64, u64)> = None;
    for i in 0..pairs {
        let t0 = Instant::now();
        let a = hypergradient(&mut problem_a, prepared.ctx.setup(&hypers_a)).expect("A");
        let t1 = Instant::now();
        let b = hypergradient(&mut problem_b, prepared.ctx.setup(&hypers_b)).expect("B");
        let t2 = Instant::now();
        let (da, db) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
        ta.push(da);
        tb.push(db);
        fa.push(a.forward_seconds);
        ra.push(a.reverse_seconds);
        fb.push(b.forward_seconds);
        rb.push(b.reverse_seconds);
        let same_val = a.val_loss.to_bits() == b.val_loss.to_bits();
        let mut shared_same = true;
        for gb in &b.grads.blocks {
            let ga = a.grads.get(gb.kind());
            shared_same &= ga.values.len() == gb.values.len()
                && ga
                    .values
                    .iter()
                    .zip(&gb.values)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
        }
        let bits = (a.val_loss.to_bits(), b.val_loss.to_bits());
        if let Some(f) = first {
            assert_eq!(f, bits, "runs differ between repetitions");
        }
        first = Some(bits);
        println!(
            "pair {i}: A {da:.3} s (fwd {:.3} rev {:.3})  B {db:.3} s (fwd {:.3} rev {:.3})  \
             A/B {:.3}  val_loss A {:e} B {:e} same bits {same_val}  shared grads same bits \
             {shared_same}  exact A {} B {}",
            a.forward_seconds,
            a.reverse_seconds,
            b.forward_seconds,
            b.reverse_seconds,
            da / db,
            a.val_loss,
            b.val_loss,
            a.exact,
            b.exact
        );
    }
    let ratios: Vec<f64> = ta.iter().zip(&tb).map(|(a, b)| a / b).collect();
    println!(
        "median total A {:.3} s  B {:.3} s  A/B {:.3}  (median of per-pair ratios {:.3})",
        median(&ta),
        median(&tb),
        median(&ta) / median(&tb),
        median(&ratios)
    );
    println!(
        "median forward A {:.3} B {:.3} ratio {:.3}   reverse A {:.3} B {:.3} ratio {:.3}",
        median(&fa),
        median(&fb),
        median(&fa) / median(&fb),
        median(&ra),
        median(&rb),
        median(&ra) / median(&rb)
    );
}
