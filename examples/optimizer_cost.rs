//! # The exact optimizers' own cost, without a network
//!
//! Runs exact momentum and exact Adam forward for `STEPS` steps and then reverses them with
//! the adjoint, on the digits model's 17,610 parameters but with a diagonal quadratic
//! objective ([`revgrad::model::Quadratic`]: gradient and Hessian-vector product cost one
//! pass over θ), so almost all the time is the optimizers' element loops: the
//! decay multiplies and their undo through the information buffer, the fixed-point
//! increments and the adjoint. Prints nanoseconds per parameter per step for the forward
//! run and the reversal, on one thread, best of `ROUNDS` runs.
//!
//! ```text
//! cargo run --release --example optimizer_cost -- [STEPS] [ROUNDS] [momentum|adam]
//! ```
#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::time::Instant;

use revgrad::hyper::{Block, Hypers, Kind, Per};
use revgrad::model::{Layout, Quadratic, Threads};
use revgrad::optim::{ExactAdam, ExactMomentum, Reversible};

fn time<R: Reversible>(
    name: &str,
    mut opt: R,
    hypers: &Hypers,
    steps: usize,
    rounds: usize,
    n: usize,
) {
    // Curvatures 1e−4 to 1, so the gradients span the sizes a network's do.
    let mut obj = Quadratic {
        a: (0..n)
            .map(|i| 10f64.powf(-4.0 + 4.0 * ((i * 7919) % 1000) as f64 / 1000.0))
            .collect(),
        c: (0..n).map(|i| ((i * 37) % 11) as f64 * 0.2 - 1.0).collect(),
        omega: 0.1,
    };
    let theta0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 0.1).collect();
    let (mut fwd, mut rev) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let mut s = opt.start(&theta0).expect("start");
        let t0 = Instant::now();
        for t in 0..steps {
            opt.step(&mut obj, t, &mut s).expect("step");
        }
        let t1 = Instant::now();
        let mut grads = hypers.clone();
        opt.begin_adjoint(&theta0);
        for t in (0..steps).rev() {
            opt.reverse_step(&mut obj, t, &mut s, &mut grads);
        }
        let t2 = Instant::now();
        assert!(opt.at_start(&s, &revgrad::exact::fixed::from_f64_slice(&theta0).unwrap()));
        fwd = fwd.min((t1 - t0).as_secs_f64());
        rev = rev.min((t2 - t1).as_secs_f64());
    }
    let per = 1e9 / (steps * n) as f64;
    println!(
        "{name:9} forward {:6.2} ns  reverse {:6.2} ns  (per parameter per step)",
        fwd * per,
        rev * per
    );
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let only = match args.last().map(String::as_str) {
        Some(o @ ("momentum" | "adam")) => Some(o.to_owned()),
        _ => None,
    };
    if only.is_some() {
        args.pop();
    }
    let args: Vec<usize> = args
        .iter()
        .map(|a| a.parse().expect("STEPS and ROUNDS are integers"))
        .collect();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let steps = args.first().copied().unwrap_or(300);
    let rounds = args.get(1).copied().unwrap_or(3);
    let layout = Layout::new(&[64, 100, 100, 10]);
    let n = layout.len();
    let block = |kind, v| Block::filled(kind, Per::All, 1, &layout, v);
    let momentum = Hypers {
        blocks: vec![block(Kind::Alpha, 0.01), block(Kind::Gamma, 0.9)],
    };
    let adam = Hypers {
        blocks: vec![
            block(Kind::Alpha, 0.001),
            block(Kind::Beta1, 0.9),
            block(Kind::Beta2, 0.999),
            block(Kind::Eps, 1e-8),
        ],
    };
    if run("momentum") {
        time(
            "momentum",
            ExactMomentum::new(&momentum, &layout, steps, &Threads::one()),
            &momentum,
            steps,
            rounds,
            n,
        );
    }
    if run("adam") {
        time(
            "adam",
            ExactAdam::new(&adam, &layout, steps, &Threads::one()),
            &adam,
            steps,
            rounds,
            n,
        );
    }
}
