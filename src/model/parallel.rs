//! # Deterministic data parallelism: a fixed partition of the rows, a fixed-order sum
//!
//! [`Chunked`] evaluates an [`Mlp`] on a batch (or on a whole data set) split into parts
//! by the runtime's partition rule, which depends only on the number of rows, never on the
//! number of threads: ⌈B/64⌉ parts of a batch of B rows (at most 16), every part but the
//! last a multiple of 8 rows, e.g. 48 + 52 for B = 100; ⌈n/32⌉ parts of an evaluation over
//! n rows (at most 8), each swept 32 rows at a time.
//!
//! Each part has its own [`Workspace`] and its own gradient and Hessian-vector buffers; the
//! parts may run on any thread, in any order. Every part's loss is already divided by the
//! whole batch's B ([`Workspace::set_mean_over`]), so the batch's loss, gradient and `H·u`
//! are the plain sums of the parts', and these are added in part order on the calling
//! thread: `g = ((g₀ + g₁) + g₂) + …`. Every result is therefore bit-identical for every
//! thread count, and the gradient of [`Chunked::grad_into`] is bit-identical to that of
//! [`Chunked::grad_hvp_into`] (the same per-part instructions, the same sum), which exact
//! reversal relies on. Against one workspace over the whole batch only the summation order
//! differs (about 1e-16 relative).
//!
//! The parts run on [`Threads`]: with one thread in a plain loop on the calling thread,
//! with N on the caller and N − 1 pooled workers.

use std::ops::Range;

use ndarray::ArrayView2;

use super::{Mlp, Workspace};
use crate::runtime::Threads;
use crate::runtime::partition::{CHUNK_ROWS, EVAL_PARTS, batch_parts, eval_parts, part_range};

/// One part: its rows, workspace, and partial results.
#[derive(Debug, Clone)]
struct Part {
    rows: Range<usize>,
    ws: Workspace,
    grad: Vec<f64>,
    hu: Vec<f64>,
    loss: f64,
    correct: usize,
}

impl Part {
    fn new(mlp: &Mlp, rows: Range<usize>, capacity: usize, hvp: bool) -> Self {
        let n = mlp.layout().len();
        Part {
            rows,
            ws: Workspace::new(mlp.layout(), capacity),
            grad: vec![0.0; n],
            hu: if hvp { vec![0.0; n] } else { Vec::new() },
            loss: 0.0,
            correct: 0,
        }
    }
}

/// `out ← Σ_k pick(part_k)` in part order; returns `Σ_k loss_k`, in the same order.
fn sum_parts(parts: &[Part], out: &mut [f64], pick: impl Fn(&Part) -> &[f64]) -> f64 {
    let (first, rest) = parts.split_first().expect("at least one part");
    out.copy_from_slice(pick(first));
    let mut loss = first.loss;
    for p in rest {
        for (o, v) in out.iter_mut().zip(pick(p)) {
            *o += v;
        }
        loss += p.loss;
    }
    loss
}

/// The rows of a training batch: `rows` index into `x` and `y`; `weights`, when set, holds
/// one loss weight per row of `x` (the example weights).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'d> {
    /// Features of the whole training set.
    pub x: ArrayView2<'d, f64>,
    /// Labels of the whole training set.
    pub y: &'d [usize],
    /// The batch's rows, in batch order.
    pub rows: &'d [usize],
    /// Per-row loss weights of the whole training set (`None`: all 1).
    pub weights: Option<&'d [f64]>,
}

impl Batch<'_> {
    /// Gather `part`'s rows of the batch into its workspace, as a chunk of the batch.
    fn load(&self, part: &mut Part) {
        let rows = &self.rows[part.rows.clone()];
        part.ws.gather(self.x, self.y, rows);
        part.ws.weigh(self.weights, rows);
        part.ws.set_mean_over(self.rows.len());
    }
}

/// An [`Mlp`] evaluated part by part on [`Threads`]: see the module documentation.
#[derive(Debug, Clone)]
pub struct Chunked {
    mlp: Mlp,
    threads: Threads,
    batch_size: usize,
    batch: Vec<Part>,
    eval: Vec<Part>,
}

impl Chunked {
    /// `mlp` on batches of `batch_size` rows (and on evaluation sets of any size).
    pub fn new(mlp: Mlp, batch_size: usize, threads: Threads) -> Self {
        let parts = batch_parts(batch_size);
        let batch = (0..parts)
            .map(|k| {
                let rows = part_range(k, parts, batch_size);
                let capacity = rows.len();
                Part::new(&mlp, rows, capacity, true)
            })
            .collect();
        let eval = (0..EVAL_PARTS)
            .map(|_| Part::new(&mlp, 0..0, CHUNK_ROWS, false))
            .collect();
        Chunked {
            mlp,
            threads,
            batch_size,
            batch,
            eval,
        }
    }

    /// The model.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The threads the parts run on.
    pub fn threads(&self) -> &Threads {
        &self.threads
    }

    /// Run the parts on `threads` from now on (results do not change).
    pub fn set_threads(&mut self, threads: Threads) {
        self.threads = threads;
    }

    #[track_caller]
    fn check(&self, batch: &Batch) {
        assert_eq!(batch.rows.len(), self.batch_size, "batch of the wrong size");
    }

    /// `grad ← ∇L` of the batch loss `L = (1/B)·Σ c_i·CE_i`; returns `L`.
    pub fn grad_into(&mut self, theta: &[f64], batch: Batch, grad: &mut [f64]) -> f64 {
        self.check(&batch);
        let mlp = &self.mlp;
        self.threads.for_each(&mut self.batch, |p| {
            batch.load(p);
            p.loss = mlp.grad_into(theta, &mut p.ws, &mut p.grad);
        });
        sum_parts(&self.batch, grad, |p| &p.grad)
    }

    /// `grad ← ∇L`, `hu ← ∇²L·u`; returns `L`. The gradient is bit-identical to
    /// [`Chunked::grad_into`]'s.
    pub fn grad_hvp_into(
        &mut self,
        theta: &[f64],
        u: &[f64],
        batch: Batch,
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        self.check(&batch);
        let mlp = &self.mlp;
        self.threads.for_each(&mut self.batch, |p| {
            batch.load(p);
            p.loss = mlp.grad_hvp_into(theta, u, &mut p.ws, &mut p.grad, &mut p.hu);
        });
        sum_parts(&self.batch, hu, |p| &p.hu);
        sum_parts(&self.batch, grad, |p| &p.grad)
    }

    /// `grad ← ∇L`, then `make_u(grad, u)`, then `hu ← ∇²L·u`; returns `L`
    /// ([`crate::model::Objective::grad_then_hvp_into`]). Two rounds of parts: the
    /// direction needs the whole batch's gradient.
    pub fn grad_then_hvp_into(
        &mut self,
        theta: &[f64],
        batch: Batch,
        grad: &mut [f64],
        u: &mut [f64],
        make_u: &mut dyn FnMut(&mut [f64], &mut [f64]),
        hu: &mut [f64],
    ) -> f64 {
        self.check(&batch);
        let mlp = &self.mlp;
        self.threads.for_each(&mut self.batch, |p| {
            batch.load(p);
            p.loss = mlp.grad_for_hvp_into(theta, &mut p.ws, &mut p.grad);
        });
        let loss = sum_parts(&self.batch, grad, |p| &p.grad);
        make_u(grad, u);
        let u = &*u;
        self.threads.for_each(&mut self.batch, |p| {
            mlp.hvp_into(theta, u, &mut p.ws, &mut p.hu);
        });
        sum_parts(&self.batch, hu, |p| &p.hu);
        loss
    }

    /// `R{CE_i} = ⟨u, ∇_θ CE_i⟩` of the last Hessian-vector product, in batch order.
    pub fn row_tangents(&self) -> impl Iterator<Item = f64> + '_ {
        self.batch
            .iter()
            .flat_map(|p| p.ws.row_tangents().iter().copied())
    }

    /// Have every Hessian-vector product also compute the input tangents
    /// `∂⟨u, ∇_θ L⟩/∂X` of the batch rows ([`crate::model::Workspace::track_inputs`]).
    pub fn set_track_inputs(&mut self, on: bool) {
        for p in &mut self.batch {
            p.ws.track_inputs(on);
        }
    }

    /// The input tangents of the last Hessian-vector product, one `rows × D` view per part,
    /// in batch order (empty views unless [`Chunked::set_track_inputs`]).
    pub fn input_tangents(&self) -> impl Iterator<Item = ndarray::ArrayView2<'_, f64>> + '_ {
        self.batch.iter().map(|p| p.ws.input_tangents())
    }

    /// Mean cross-entropy (no penalty) and accuracy of `theta` on all of `(x, y)`.
    pub fn evaluate(&mut self, theta: &[f64], x: ArrayView2<f64>, y: &[usize]) -> (f64, f64) {
        self.over_parts(theta, x, y, None)
    }

    /// Mean cross-entropy over all of `(x, y)` and its gradient (no penalty) into `grad`.
    /// Returns (loss, accuracy).
    pub fn full_grad_into(
        &mut self,
        theta: &[f64],
        x: ArrayView2<f64>,
        y: &[usize],
        grad: &mut [f64],
    ) -> (f64, f64) {
        self.over_parts(theta, x, y, Some(grad))
    }

    fn over_parts(
        &mut self,
        theta: &[f64],
        x: ArrayView2<f64>,
        y: &[usize],
        grad: Option<&mut [f64]>,
    ) -> (f64, f64) {
        let total = y.len();
        let n = eval_parts(total);
        let parts = &mut self.eval[..n];
        for (k, p) in parts.iter_mut().enumerate() {
            p.rows = part_range(k, n, total);
        }
        let with_grad = grad.is_some();
        let mlp = &self.mlp;
        self.threads.for_each(parts, |p| {
            p.loss = 0.0;
            p.correct = 0;
            if with_grad {
                p.grad.fill(0.0);
            }
            let mut start = p.rows.start;
            while start < p.rows.end {
                let len = CHUNK_ROWS.min(p.rows.end - start);
                p.ws.gather_range(x, y, start, len);
                p.ws.set_mean_over(total);
                let (l, c) = if with_grad {
                    mlp.add_grad_into(theta, &mut p.ws, &mut p.grad)
                } else {
                    mlp.loss(theta, &mut p.ws)
                };
                p.loss += l;
                p.correct += c;
                start += len;
            }
        });
        let parts = &self.eval[..n];
        let loss = match grad {
            Some(g) => sum_parts(parts, g, |p| &p.grad),
            None => parts.iter().map(|p| p.loss).fold(0.0, |a, b| a + b),
        };
        let correct: usize = parts.iter().map(|p| p.correct).sum();
        (loss, correct as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Layout, init_noise};
    use ndarray::Array2;
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::{Rng, SeedableRng};

    struct Case {
        mlp: Mlp,
        x: Array2<f64>,
        y: Vec<usize>,
        rows: Vec<usize>,
        weights: Vec<f64>,
        theta: Vec<f64>,
        u: Vec<f64>,
    }

    /// A 7-9-6-4 tanh network, `n` random rows, a batch of `b` rows drawn from them (with
    /// repeats), random example weights, θ and a direction u.
    fn case(n: usize, b: usize, seed: u64) -> Case {
        let sizes = [7, 9, 6, 4];
        let layout = Layout::new(&sizes);
        let mut rng = StdRng::seed_from_u64(seed);
        let x = Array2::from_shape_fn((n, sizes[0]), |_| rng.random_range(-1.5..1.5));
        let y = (0..n).map(|_| rng.random_range(0..sizes[3])).collect();
        let rows = (0..b).map(|_| rng.random_range(0..n)).collect();
        let weights = (0..n).map(|_| rng.random_range(0.2..2.0)).collect();
        let mut theta = init_noise(&layout, seed);
        for t in theta.iter_mut() {
            *t += rng.random_range(-0.3..0.3);
        }
        let u = (0..layout.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Case {
            mlp: Mlp::new(layout, Activation::Tanh),
            x,
            y,
            rows,
            weights,
            theta,
            u,
        }
    }

    impl Case {
        fn batch(&self, weighted: bool) -> Batch<'_> {
            Batch {
                x: self.x.view(),
                y: &self.y,
                rows: &self.rows,
                weights: weighted.then_some(&self.weights[..]),
            }
        }
    }

    /// Everything a chunked problem computes, for comparisons.
    #[derive(Debug, PartialEq)]
    struct Results {
        loss: u64,
        grad: Vec<u64>,
        hvp_loss: u64,
        hvp_grad: Vec<u64>,
        hu: Vec<u64>,
        then_grad: Vec<u64>,
        then_hu: Vec<u64>,
        tangents: Vec<u64>,
        val: (u64, u64),
        val_grad: Vec<u64>,
        metrics: (u64, u64),
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn run(c: &Case, threads: usize, weighted: bool) -> Results {
        let t = Threads::new(threads).unwrap();
        let mut m = Chunked::new(c.mlp.clone(), c.rows.len(), t);
        let n = c.theta.len();
        let (mut g, mut g2, mut g3, mut h, mut h3, mut vg) = (
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
        );
        let loss = m.grad_into(&c.theta, c.batch(weighted), &mut g);
        let hvp_loss = m.grad_hvp_into(&c.theta, &c.u, c.batch(weighted), &mut g2, &mut h);
        let tangents: Vec<f64> = m.row_tangents().collect();
        let mut u = vec![0.0; n];
        m.grad_then_hvp_into(
            &c.theta,
            c.batch(weighted),
            &mut g3,
            &mut u,
            &mut |g, u| {
                for (u, g) in u.iter_mut().zip(g.iter()) {
                    *u = 0.5 * g + 0.1;
                }
            },
            &mut h3,
        );
        let val = m.full_grad_into(&c.theta, c.x.view(), &c.y, &mut vg);
        let metrics = m.evaluate(&c.theta, c.x.view(), &c.y);
        Results {
            loss: loss.to_bits(),
            grad: bits(&g),
            hvp_loss: hvp_loss.to_bits(),
            hvp_grad: bits(&g2),
            hu: bits(&h),
            then_grad: bits(&g3),
            then_hu: bits(&h3),
            tangents: bits(&tangents),
            val: (val.0.to_bits(), val.1.to_bits()),
            val_grad: bits(&vg),
            metrics: (metrics.0.to_bits(), metrics.1.to_bits()),
        }
    }

    #[test]
    fn every_result_is_bit_identical_for_every_thread_count() {
        for (n, b, seed) in [(300, 100, 1), (1000, 250, 2), (40, 7, 3), (700, 600, 4)] {
            let c = case(n, b, seed);
            for weighted in [false, true] {
                let one = run(&c, 1, weighted);
                // The gradient with and without the Hessian-vector pass: bit for bit.
                assert_eq!(one.grad, one.hvp_grad);
                assert_eq!(one.grad, one.then_grad);
                assert_eq!(one.loss, one.hvp_loss);
                for threads in [2, 3, 5] {
                    assert_eq!(
                        run(&c, threads, weighted),
                        one,
                        "{threads} threads, batch {b}"
                    );
                }
            }
        }
    }

    /// Relative error ‖a − b‖∞ / ‖b‖∞.
    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let num = a
            .iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        num / b.iter().map(|b| b.abs()).fold(0.0, f64::max)
    }

    #[test]
    fn parts_add_up_to_one_workspace_over_the_whole_batch() {
        for (n, b, seed) in [(300, 100, 1), (1000, 250, 2), (700, 600, 4)] {
            let c = case(n, b, seed);
            let dim = c.theta.len();
            // Reference: one workspace holding the whole batch.
            let mut ws = Workspace::new(c.mlp.layout(), b);
            ws.gather(c.x.view(), &c.y, &c.rows);
            ws.weigh(Some(&c.weights), &c.rows);
            let (mut g, mut h) = (vec![0.0; dim], vec![0.0; dim]);
            let loss = c.mlp.grad_hvp_into(&c.theta, &c.u, &mut ws, &mut g, &mut h);
            let tangents = ws.row_tangents().to_vec();

            let mut m = Chunked::new(c.mlp.clone(), b, Threads::new(2).unwrap());
            let (mut cg, mut ch) = (vec![0.0; dim], vec![0.0; dim]);
            let closs = m.grad_hvp_into(&c.theta, &c.u, c.batch(true), &mut cg, &mut ch);
            let ct: Vec<f64> = m.row_tangents().collect();
            assert!(
                (closs - loss).abs() <= 1e-14 * loss.abs(),
                "{closs} vs {loss}"
            );
            assert!(rel_err(&cg, &g) < 1e-14, "grad {}", rel_err(&cg, &g));
            assert!(rel_err(&ch, &h) < 1e-14, "hvp {}", rel_err(&ch, &h));
            // Row tangents are per row: the same instructions whatever the part.
            assert!(
                rel_err(&ct, &tangents) < 1e-14,
                "tangents {}",
                rel_err(&ct, &tangents)
            );

            // The whole set, unweighted, against one workspace over all n rows.
            let mut ws = Workspace::new(c.mlp.layout(), n);
            let all: Vec<usize> = (0..n).collect();
            ws.gather(c.x.view(), &c.y, &all);
            let loss = c.mlp.grad_into(&c.theta, &mut ws, &mut g);
            let (vloss, _) = m.full_grad_into(&c.theta, c.x.view(), &c.y, &mut cg);
            assert!(
                (vloss - loss).abs() <= 1e-14 * loss.abs(),
                "{vloss} vs {loss}"
            );
            assert!(rel_err(&cg, &g) < 1e-14, "full grad {}", rel_err(&cg, &g));
        }
    }
}
