//! # Matrix products of the MLP's shapes: revgrad's kernels vs ndarray/matrixmultiply
//!
//! For each product the MLP runs at B = 100 (digits 64-100-100-10 and MNIST 784-100-10),
//! times `revgrad::model::linalg::mat_mul_with` on each kernel path this machine has and
//! `ndarray::linalg::general_mat_mul` (matrixmultiply) in interleaved rounds (15 rounds of
//! `REPS` products, default 200) and prints the median nanoseconds per product of each, and
//! each one's ratio to matrixmultiply.
//!
//! ```text
//! cargo run --release --example matmul                # all shapes, all kernels
//! cargo run --release --example matmul -- ours 10     # only the detected path, 1 round
//! cargo run --release --example matmul -- mm 10       # only matrixmultiply, 1 round
//! ```
//!
//! Under `valgrind --tool=callgrind` (which hides AVX-512, so `ours` is the AVX2 path) pass
//! `ours`/`mm` and a small `REPS` and read the instruction counts per function.
#![allow(clippy::disallowed_macros)] // a measuring tool, run by hand on a terminal

use std::hint::black_box;
use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use revgrad::model::linalg::{Kernel, mat_mul, mat_mul_with};

/// (name, m, k, n, A transposed, B transposed, β).
const SHAPES: &[(&str, usize, usize, usize, bool, bool, f64)] = &[
    ("fwd 100x64.64x100", 100, 64, 100, false, false, 1.0),
    ("fwd 100x100.100x100", 100, 100, 100, false, false, 1.0),
    ("fwd 100x100.100x10", 100, 100, 10, false, false, 1.0),
    ("gW 64x100.100x100 (XT.d)", 64, 100, 100, true, false, 0.0),
    ("gW 100x100.100x100 (aT.d)", 100, 100, 100, true, false, 0.0),
    ("gW 100x100.100x10 (aT.d)", 100, 100, 10, true, false, 0.0),
    (
        "back 100x100.100x100 (d.WT)",
        100,
        100,
        100,
        false,
        true,
        0.0,
    ),
    ("back 100x10.10x100 (d.WT)", 100, 10, 100, false, true, 0.0),
    ("fwd 100x784.784x100", 100, 784, 100, false, false, 1.0),
    ("gW 784x100.100x100 (XT.d)", 784, 100, 100, true, false, 0.0),
];

fn filled(shape: (usize, usize), seed: usize) -> Array2<f64> {
    Array2::from_shape_fn(shape, |(i, j)| {
        ((i * 31 + j * 17 + seed) % 97) as f64 / 97.0 - 0.5
    })
}

type Product = fn(&ArrayView2<f64>, &ArrayView2<f64>, f64, &mut ArrayViewMut2<f64>);

fn ours(a: &ArrayView2<f64>, b: &ArrayView2<f64>, beta: f64, c: &mut ArrayViewMut2<f64>) {
    mat_mul(a, b, beta, c)
}

fn avx512(a: &ArrayView2<f64>, b: &ArrayView2<f64>, beta: f64, c: &mut ArrayViewMut2<f64>) {
    mat_mul_with(Kernel::Avx512, a, b, beta, c)
}

fn avx2(a: &ArrayView2<f64>, b: &ArrayView2<f64>, beta: f64, c: &mut ArrayViewMut2<f64>) {
    mat_mul_with(Kernel::Avx2, a, b, beta, c)
}

fn mm(a: &ArrayView2<f64>, b: &ArrayView2<f64>, beta: f64, c: &mut ArrayViewMut2<f64>) {
    general_mat_mul(1.0, a, b, beta, c)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("both");
    let reps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let rounds: usize = if which == "both" { 15 } else { 1 };
    let mut kernels: Vec<(&str, Product)> = Vec::new();
    match which {
        "ours" => kernels.push(("revgrad", ours)),
        "mm" => {}
        _ => {
            if Kernel::Avx512.available() {
                kernels.push(("avx512", avx512));
            }
            if Kernel::Avx2.available() {
                kernels.push(("avx2", avx2));
            }
        }
    }
    if which != "ours" {
        kernels.push(("matrixmultiply", mm));
    }
    println!("kernel path: {:?}", Kernel::detect());
    for &(name, m, k, n, at, bt, beta) in SHAPES {
        // Stored the way the MLP stores them: Xᵀ is a transposed view of a (k, m) array.
        let a = if at {
            filled((k, m), 1)
        } else {
            filled((m, k), 1)
        };
        let b = if bt {
            filled((n, k), 2)
        } else {
            filled((k, n), 2)
        };
        let av = if at { a.t() } else { a.view() };
        let bv = if bt { b.t() } else { b.view() };
        let mut c = filled((m, n), 3);
        let mut times = vec![Vec::new(); kernels.len()];
        for _ in 0..rounds {
            for (t, (_, f)) in times.iter_mut().zip(&kernels) {
                let start = Instant::now();
                for _ in 0..reps {
                    f(black_box(&av), black_box(&bv), beta, &mut c.view_mut());
                }
                t.push(start.elapsed().as_nanos() as f64 / reps as f64);
            }
        }
        let medians: Vec<f64> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
            .collect();
        let cols: Vec<String> = kernels
            .iter()
            .zip(&medians)
            .map(|((k, _), ns)| format!("{k}={ns:.0}ns"))
            .collect();
        let last = medians[medians.len() - 1];
        let ratio: String = medians[..medians.len() - 1]
            .iter()
            .map(|m| format!(" {:.2}", m / last))
            .collect();
        let ratio = if ratio.is_empty() {
            ratio
        } else {
            format!(" ratios to mm:{ratio}")
        };
        let gflops = 2.0 * (m * k * n) as f64 / medians[0];
        println!("{name:30} {}{ratio} ({gflops:.1} GFLOP/s)", cols.join(" "));
        black_box(&c);
    }
}
