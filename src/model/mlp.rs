//! # MLP forward pass, softmax cross-entropy, backprop and the R-operator
//!
//! Layer sizes `[D, hidden…, K]`, weights `W_l: (in, out)`, biases `b_l: (out,)`, on a batch
//! `X: (B, D)` with labels `y`:
//!
//! ```text
//! a₀ = X
//! z_l = a_{l−1}·W_l + b_l          a_l = act(z_l)  (hidden layers; the last z is the logits)
//! p = softmax(z_L)                 L = (1/B)·Σ_i c_i·CE_i,   CE_i = −log p_{i,y_i}
//! ```
//!
//! Backprop, with `δ_l = ∂L/∂z_l`:
//!
//! ```text
//! δ_L = c ⊙ (p − onehot(y))/B        (row weights c_i; 1 unless example weights are set)
//! ∂L/∂W_l = a_{l−1}ᵀ·δ_l              ∂L/∂b_l = Σ_rows δ_l
//! δ_{l−1} = (δ_l·W_lᵀ) ⊙ act'(z_{l−1})
//! ```
//!
//! The Hessian-vector product `H·u` is exact: Pearlmutter's R-operator
//! `R{f} = d/dr f(θ + r·u)|_{r=0}` pushed through the same computation (forward-over-reverse).
//! With `U_l, c_l` the parts of `u` for `W_l, b_l`:
//!
//! ```text
//! R{a₀} = 0
//! R{z_l} = R{a_{l−1}}·W_l + a_{l−1}·U_l + c_l            R{a_l} = act'(z_l) ⊙ R{z_l}
//! R{δ_L} = c ⊙ p ⊙ (R{z_L} − rowsum(p ⊙ R{z_L})) / B
//! R{CE_i} = Σ_k (p_ik − onehot_ik)·R{z_L,ik}          (⟨u, ∇_θ CE_i⟩, one number per row)
//! R{∂L/∂W_l} = R{a_{l−1}}ᵀ·δ_l + a_{l−1}ᵀ·R{δ_l}    R{∂L/∂b_l} = Σ_rows R{δ_l}
//! R{δ_{l−1}} = (R{δ_l}·W_lᵀ + δ_l·U_lᵀ) ⊙ act'(z_{l−1}) + (δ_l·W_lᵀ) ⊙ act''(z_{l−1}) ⊙ R{z_{l−1}}
//! ```
//!
//! Carried one layer further down, the same recursion gives the input tangents: since
//! `∂L/∂X = δ₁·W₁ᵀ` (with δ₁ the first layer's δ), and R commutes with ∂/∂X,
//!
//! ```text
//! ∂⟨u, ∇_θ L⟩/∂X = R{∂L/∂X} = R{δ₁}·W₁ᵀ + δ₁·U₁ᵀ        (one row per batch row, c_i/B inside)
//! ```
//!
//! the gradient with respect to each row's input of the directional derivative the R-pass
//! computes (the `input` block's hypergradient, SPEC §3.5), at the cost of two more products
//! of the first layer's size, and only when asked for ([`Workspace::track_inputs`]).
//!
//! The gradient is computed by the same instructions whether or not the R-pass runs, so
//! [`Mlp::grad_into`] and [`Mlp::grad_hvp_into`] return bit-identical gradients: the exact
//! reverse pass relies on that. A workspace may hold one chunk of a larger batch: the `1/B`
//! above is then the whole batch's ([`Workspace::set_mean_over`]), so the chunks' losses,
//! gradients and Hessian-vector products add up to the batch's ([`crate::model::parallel`]).
//! Matrix products go through [`super::linalg::mat_mul`], one fused multiply-add chain per
//! output element in a fixed order, so every product is a function of its inputs alone (the
//! same bits on every machine and SIMD path); the softmax's `exp` and `ln` are the
//! platform's, so whole results are reproducible on a given machine and libm.
//!
//! The model is penalty-free: weight penalties are a separate objective wrapped around it
//! ([`crate::model::Penalized`]).
//!
//! Softmax is computed as `exp(z − max z)` and `log p = z − max z − ln Σ exp(z − max z)`, the
//! usual log-sum-exp stabilisation; no clamping.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, s};

use super::linalg::mat_mul;
use super::{Activation, Layout};

/// An MLP: a layout and a hidden activation. Parameters are passed in as flat slices.
#[derive(Debug, Clone)]
pub struct Mlp {
    layout: Layout,
    activation: Activation,
}

/// Preallocated buffers for up to `capacity` rows, so that the per-step hot path allocates
/// nothing. Row `i` of the batch is gathered into `x` by [`Workspace::gather`].
#[derive(Debug, Clone)]
pub struct Workspace {
    capacity: usize,
    rows: usize,
    /// B of the `1/B` in the loss: `rows`, unless the rows are a chunk of a larger batch.
    mean_over: usize,
    x: Array2<f64>,
    labels: Vec<usize>,
    /// Pre-activations per layer.
    z: Vec<Array2<f64>>,
    /// Activations per layer (softmax probabilities for the last).
    a: Vec<Array2<f64>>,
    /// act'(z) and act''(z) for hidden layers.
    d1: Vec<Array2<f64>>,
    d2: Vec<Array2<f64>>,
    /// δ_l = ∂L/∂z_l.
    delta: Vec<Array2<f64>>,
    /// δ_l·W_lᵀ before the activation derivative, for l ≥ 1 at index l−1 (shape of z_{l−1}).
    back: Vec<Array2<f64>>,
    /// Per-row loss weights c_i of the current batch, when `weighted`.
    weight: Vec<f64>,
    weighted: bool,
    /// R{CE_i} of the last R-pass, per batch row.
    rce: Vec<f64>,
    /// `R{∂L/∂X}` of the last R-pass, per batch row, when `track_inputs` (else empty).
    rin: Array2<f64>,
    track_inputs: bool,
    /// R-operator counterparts.
    rz: Vec<Array2<f64>>,
    ra: Vec<Array2<f64>>,
    rdelta: Vec<Array2<f64>>,
    rback: Vec<Array2<f64>>,
}

impl Workspace {
    /// Buffers for `layout` and at most `capacity` rows per call.
    pub fn new(layout: &Layout, capacity: usize) -> Self {
        let sizes = layout.sizes();
        let per_layer = |f: &dyn Fn(usize) -> usize| -> Vec<Array2<f64>> {
            (0..layout.n_layers())
                .map(|l| Array2::zeros((capacity, f(l))))
                .collect()
        };
        let out = |l: usize| sizes[l + 1];
        Workspace {
            capacity,
            rows: 0,
            mean_over: 0,
            x: Array2::zeros((capacity, sizes[0])),
            labels: vec![0; capacity],
            weight: vec![1.0; capacity],
            weighted: false,
            rce: vec![0.0; capacity],
            rin: Array2::zeros((0, 0)),
            track_inputs: false,
            z: per_layer(&out),
            a: per_layer(&out),
            d1: per_layer(&out),
            d2: per_layer(&out),
            delta: per_layer(&out),
            back: per_layer(&out),
            rz: per_layer(&out),
            ra: per_layer(&out),
            rdelta: per_layer(&out),
            rback: per_layer(&out),
        }
    }

    /// Maximum rows per call.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copy the given rows of `(x, y)` into the workspace as the current batch.
    ///
    /// # Panics
    /// If more than `capacity` rows are given (a programming error).
    #[track_caller]
    pub fn gather(&mut self, x: ArrayView2<f64>, y: &[usize], rows: &[usize]) {
        assert!(rows.len() <= self.capacity, "batch larger than workspace");
        self.rows = rows.len();
        self.mean_over = rows.len();
        self.weighted = false;
        for (i, &r) in rows.iter().enumerate() {
            self.x.row_mut(i).assign(&x.row(r));
            self.labels[i] = y[r];
        }
    }

    /// Weights the current batch's rows: row `i` of the batch gets `weights[rows[i]]`
    /// (`None`: every weight 1, computed without the multiply).
    pub fn weigh(&mut self, weights: Option<&[f64]>, rows: &[usize]) {
        self.weighted = weights.is_some();
        if let Some(w) = weights {
            for (i, &r) in rows.iter().enumerate() {
                self.weight[i] = w[r];
            }
        }
    }

    /// Make the current rows a chunk of a batch of `total` rows: the loss, gradient and
    /// Hessian-vector product become `(1/total)·Σ_{rows here} c_i·…`, so the chunks of a
    /// batch add up to the batch's. [`Workspace::gather`] resets it to the row count.
    pub fn set_mean_over(&mut self, total: usize) {
        self.mean_over = total;
    }

    /// `R{CE_i} = ⟨u, ∇_θ CE_i⟩` of the last [`Mlp::grad_hvp_into`], per batch row.
    pub fn row_tangents(&self) -> &[f64] {
        &self.rce[..self.rows]
    }

    /// From now on, have every R-pass also compute `R{∂L/∂X}`, the input tangents
    /// ([`Workspace::input_tangents`]), or stop doing so. Allocates the buffer once.
    pub fn track_inputs(&mut self, on: bool) {
        self.track_inputs = on;
        if on && self.rin.nrows() != self.capacity {
            self.rin = Array2::zeros((self.capacity, self.x.ncols()));
        }
    }

    /// `R{∂L/∂X} = ∂⟨u, ∇_θ L⟩/∂X` of the last R-pass, one row per batch row (empty unless
    /// [`Workspace::track_inputs`]).
    pub fn input_tangents(&self) -> ArrayView2<'_, f64> {
        if self.track_inputs {
            rows(&self.rin, self.rows)
        } else {
            self.rin.slice(s![..0, ..])
        }
    }

    /// Use the contiguous rows `start..start+len` of `(x, y)` as the current batch.
    pub fn gather_range(&mut self, x: ArrayView2<f64>, y: &[usize], start: usize, len: usize) {
        assert!(len <= self.capacity, "batch larger than workspace");
        self.rows = len;
        self.mean_over = len;
        self.weighted = false;
        self.x
            .slice_mut(s![..len, ..])
            .assign(&x.slice(s![start..start + len, ..]));
        self.labels[..len].copy_from_slice(&y[start..start + len]);
    }
}

fn rows(a: &Array2<f64>, n: usize) -> ArrayView2<'_, f64> {
    a.slice(s![..n, ..])
}

/// The first `n` rows of layer `l`'s input: the batch for `l = 0`, else `a_{l−1}`.
fn layer_input<'a>(
    x: &'a Array2<f64>,
    a: &'a [Array2<f64>],
    l: usize,
    n: usize,
) -> ArrayView2<'a, f64> {
    if l == 0 {
        rows(x, n)
    } else {
        rows(&a[l - 1], n)
    }
}

fn rows_mut(a: &mut Array2<f64>, n: usize) -> ArrayViewMut2<'_, f64> {
    a.slice_mut(s![..n, ..])
}

/// The first `n` rows of a workspace array as one slice (they are contiguous: the arrays
/// are in standard layout), for the elementwise loops.
fn flat(a: &Array2<f64>, n: usize) -> &[f64] {
    let len = n * a.ncols();
    &a.as_slice().expect("workspace arrays are standard layout")[..len]
}

fn flat_mut(a: &mut Array2<f64>, n: usize) -> &mut [f64] {
    let len = n * a.ncols();
    &mut a
        .as_slice_mut()
        .expect("workspace arrays are standard layout")[..len]
}

impl Mlp {
    /// An MLP with the given layout and hidden activation.
    pub fn new(layout: Layout, activation: Activation) -> Self {
        Mlp { layout, activation }
    }

    /// The parameter layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    fn w<'a>(&self, theta: &'a [f64], l: usize) -> ArrayView2<'a, f64> {
        ArrayView2::from_shape(self.layout.w_shape(l), &theta[self.layout.w_range(l)])
            .expect("layout shapes match")
    }

    fn b<'a>(&self, theta: &'a [f64], l: usize) -> ArrayView1<'a, f64> {
        ArrayView1::from(&theta[self.layout.b_range(l)])
    }

    /// Forward pass on the workspace batch; fills `z`, `a` (softmax at the top) and the
    /// activation derivatives. Returns (`Σ c_i·CE_i / B`, number of correct argmax predictions).
    fn forward(&self, theta: &[f64], ws: &mut Workspace, second: bool) -> (f64, usize) {
        let n = ws.rows;
        let nl = self.layout.n_layers();
        for l in 0..nl {
            let w = self.w(theta, l);
            let b = self.b(theta, l);
            let (before, after) = ws.a.split_at_mut(l);
            let input = layer_input(&ws.x, before, l, n);
            let mut z = rows_mut(&mut ws.z[l], n);
            z.assign(&b.broadcast((n, b.len())).expect("bias broadcast"));
            mat_mul(&input, &w, 1.0, &mut z);
            if l + 1 < nl {
                let width = z.ncols();
                let z = flat(&ws.z[l], n);
                let a = flat_mut(&mut after[0], n);
                let d1 = flat_mut(&mut ws.d1[l], n);
                let d2 = second.then(|| flat_mut(&mut ws.d2[l], n));
                debug_assert_eq!(z.len(), n * width);
                self.activation.forward_slices(z, a, d1, d2);
            }
        }
        // Softmax and cross-entropy on the logits.
        let top = nl - 1;
        let mut loss = 0.0;
        let mut correct = 0;
        for i in 0..n {
            let z = ws.z[top].row(i);
            let mut p = ws.a[top].row_mut(i);
            let mut m = f64::NEG_INFINITY;
            let mut arg = 0;
            for (k, &v) in z.iter().enumerate() {
                if v > m {
                    m = v;
                    arg = k;
                }
            }
            let mut sum = 0.0;
            for (pk, &zk) in p.iter_mut().zip(z.iter()) {
                *pk = (zk - m).exp();
                sum += *pk;
            }
            for pk in p.iter_mut() {
                *pk /= sum;
            }
            let y = ws.labels[i];
            let ce = -(z[y] - m - sum.ln());
            loss += if ws.weighted { ws.weight[i] * ce } else { ce };
            if arg == y {
                correct += 1;
            }
        }
        (loss / ws.mean_over as f64, correct)
    }

    /// Backprop from the softmax outputs; writes ∂L/∂θ into `grad`, or adds it to `grad`
    /// when `accumulate`.
    fn backward(&self, theta: &[f64], ws: &mut Workspace, grad: &mut [f64], accumulate: bool) {
        let n = ws.rows;
        let nl = self.layout.n_layers();
        let top = nl - 1;
        let inv_n = 1.0 / ws.mean_over as f64;
        let beta = if accumulate { 1.0 } else { 0.0 };
        {
            let mut d = rows_mut(&mut ws.delta[top], n);
            d.assign(&rows(&ws.a[top], n));
            for i in 0..n {
                d[[i, ws.labels[i]]] -= 1.0;
            }
            if ws.weighted {
                for (i, mut row) in d.outer_iter_mut().enumerate() {
                    let c = ws.weight[i] * inv_n;
                    row.mapv_inplace(|v| v * c);
                }
            } else {
                d.mapv_inplace(|v| v * inv_n);
            }
        }
        for l in (0..nl).rev() {
            let (wr, br) = (self.layout.w_range(l), self.layout.b_range(l));
            let shape = self.layout.w_shape(l);
            let input = layer_input(&ws.x, &ws.a, l, n);
            let delta = rows(&ws.delta[l], n);
            {
                let mut gw =
                    ArrayViewMut2::from_shape(shape, &mut grad[wr.clone()]).expect("shape");
                mat_mul(&input.t(), &delta, beta, &mut gw);
            }
            for (g, col) in grad[br].iter_mut().zip(delta.axis_iter(Axis(1))) {
                *g = if accumulate {
                    *g + col.sum()
                } else {
                    col.sum()
                };
            }
            if l > 0 {
                let mut back = rows_mut(&mut ws.back[l - 1], n);
                mat_mul(&delta, &self.w(theta, l).t(), 0.0, &mut back);
                let dprev = flat_mut(&mut ws.delta[l - 1], n);
                let (back, d1) = (flat(&ws.back[l - 1], n), flat(&ws.d1[l - 1], n));
                for ((d, &b), &a1) in dprev.iter_mut().zip(back).zip(d1) {
                    *d = b * a1;
                }
            }
        }
    }

    /// Loss and gradient of the training loss on the workspace batch:
    /// `L = mean CE`; `grad ← ∇L`. Returns `L`.
    pub fn grad_into(&self, theta: &[f64], ws: &mut Workspace, grad: &mut [f64]) -> f64 {
        let (ce, _) = self.forward(theta, ws, false);
        self.backward(theta, ws, grad, false);
        ce
    }

    /// Loss, gradient and exact Hessian-vector product `H·u` on the workspace batch, in one
    /// forward-over-reverse pass. The gradient is bit-identical to [`Mlp::grad_into`]'s.
    pub fn grad_hvp_into(
        &self,
        theta: &[f64],
        u: &[f64],
        ws: &mut Workspace,
        grad: &mut [f64],
        hu: &mut [f64],
    ) -> f64 {
        let ce = self.grad_for_hvp_into(theta, ws, grad);
        self.hvp_into(theta, u, ws, hu);
        ce
    }

    /// The first half of [`Mlp::grad_hvp_into`], for a direction `u` that is not known yet
    /// (it is built from the gradient): loss and gradient, bit-identical to
    /// [`Mlp::grad_into`]'s, keeping what [`Mlp::hvp_into`] needs in the workspace.
    pub fn grad_for_hvp_into(&self, theta: &[f64], ws: &mut Workspace, grad: &mut [f64]) -> f64 {
        let (ce, _) = self.forward(theta, ws, true);
        self.backward(theta, ws, grad, false);
        ce
    }

    /// The second half of [`Mlp::grad_hvp_into`]: `hu ← H·u` on the workspace batch of the
    /// last [`Mlp::grad_for_hvp_into`] (same `theta`), and the row tangents.
    pub fn hvp_into(&self, theta: &[f64], u: &[f64], ws: &mut Workspace, hu: &mut [f64]) {
        self.r_pass(theta, u, ws, hu);
    }

    /// Loss (`Σ CE / B`, no penalty) and number of correct argmax predictions on the
    /// workspace batch.
    pub fn loss(&self, theta: &[f64], ws: &mut Workspace) -> (f64, usize) {
        self.forward(theta, ws, false)
    }

    /// [`Mlp::loss`], and `grad += ∇L`.
    pub fn add_grad_into(
        &self,
        theta: &[f64],
        ws: &mut Workspace,
        grad: &mut [f64],
    ) -> (f64, usize) {
        let out = self.forward(theta, ws, false);
        self.backward(theta, ws, grad, true);
        out
    }

    /// R-operator forward and backward, after `forward(.., second = true)` and `backward`.
    fn r_pass(&self, theta: &[f64], u: &[f64], ws: &mut Workspace, hu: &mut [f64]) {
        let n = ws.rows;
        let nl = self.layout.n_layers();
        let top = nl - 1;
        // R forward.
        for l in 0..nl {
            let w = self.w(theta, l);
            let uw = self.w(u, l);
            let ub = self.b(u, l);
            let input = layer_input(&ws.x, &ws.a, l, n);
            let mut rz = rows_mut(&mut ws.rz[l], n);
            rz.assign(&ub.broadcast((n, ub.len())).expect("bias broadcast"));
            mat_mul(&input, &uw, 1.0, &mut rz);
            if l > 0 {
                mat_mul(&rows(&ws.ra[l - 1], n), &w, 1.0, &mut rz);
            }
            if l < top {
                let (rz, d1) = (flat(&ws.rz[l], n), flat(&ws.d1[l], n));
                for ((ra, &rz), &d1) in flat_mut(&mut ws.ra[l], n).iter_mut().zip(rz).zip(d1) {
                    *ra = d1 * rz;
                }
            }
        }
        // R{δ_L} = c ⊙ p ⊙ (R z − rowsum(p ⊙ R z)) / B, and R{CE_i} = rowsum(p ⊙ R z) − R z_{y_i}.
        let inv_n = 1.0 / ws.mean_over as f64;
        for i in 0..n {
            let p = ws.a[top].row(i);
            let rz = ws.rz[top].row(i);
            let dot: f64 = p.iter().zip(rz.iter()).map(|(p, r)| p * r).sum();
            ws.rce[i] = dot - rz[ws.labels[i]];
            let c = if ws.weighted {
                ws.weight[i] * inv_n
            } else {
                inv_n
            };
            let mut rd = ws.rdelta[top].row_mut(i);
            for ((rd, &p), &r) in rd.iter_mut().zip(p.iter()).zip(rz.iter()) {
                *rd = p * (r - dot) * c;
            }
        }
        // R backward.
        for l in (0..nl).rev() {
            let (wr, br) = (self.layout.w_range(l), self.layout.b_range(l));
            let shape = self.layout.w_shape(l);
            let input = layer_input(&ws.x, &ws.a, l, n);
            let delta = rows(&ws.delta[l], n);
            let rdelta = rows(&ws.rdelta[l], n);
            {
                let mut hw = ArrayViewMut2::from_shape(shape, &mut hu[wr]).expect("shape");
                mat_mul(&input.t(), &rdelta, 0.0, &mut hw);
                if l > 0 {
                    mat_mul(&rows(&ws.ra[l - 1], n).t(), &delta, 1.0, &mut hw);
                }
            }
            for (h, col) in hu[br].iter_mut().zip(rdelta.axis_iter(Axis(1))) {
                *h = col.sum();
            }
            if l > 0 {
                let mut rback = rows_mut(&mut ws.rback[l - 1], n);
                mat_mul(&rdelta, &self.w(theta, l).t(), 0.0, &mut rback);
                mat_mul(&delta, &self.w(u, l).t(), 1.0, &mut rback);
                let rd = flat_mut(&mut ws.rdelta[l - 1], n);
                let (rb, b) = (flat(&ws.rback[l - 1], n), flat(&ws.back[l - 1], n));
                let (d1, d2) = (flat(&ws.d1[l - 1], n), flat(&ws.d2[l - 1], n));
                let rz = flat(&ws.rz[l - 1], n);
                let len = rd.len();
                let (rb, b, d1, d2, rz) =
                    (&rb[..len], &b[..len], &d1[..len], &d2[..len], &rz[..len]);
                for i in 0..len {
                    rd[i] = rb[i] * d1[i] + b[i] * d2[i] * rz[i];
                }
            }
        }
        if ws.track_inputs {
            // R{∂L/∂X} = R{δ₁}·W₁ᵀ + δ₁·U₁ᵀ (layer index 0 here).
            let mut rin = rows_mut(&mut ws.rin, n);
            mat_mul(
                &rows(&ws.rdelta[0], n),
                &self.w(theta, 0).t(),
                0.0,
                &mut rin,
            );
            mat_mul(&rows(&ws.delta[0], n), &self.w(u, 0).t(), 1.0, &mut rin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init_noise;
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::{Rng, SeedableRng};

    struct Case {
        mlp: Mlp,
        x: Array2<f64>,
        y: Vec<usize>,
        theta: Vec<f64>,
        ws: Workspace,
    }

    fn case(act: Activation, sizes: &[usize], n: usize, seed: u64) -> Case {
        let layout = Layout::new(sizes);
        let mut rng = StdRng::seed_from_u64(seed);
        let k = *sizes.last().unwrap();
        let x = Array2::from_shape_fn((n, sizes[0]), |_| rng.random_range(-1.5..1.5));
        let y = (0..n).map(|_| rng.random_range(0..k)).collect();
        let mut theta = init_noise(&layout, seed);
        for t in theta.iter_mut() {
            *t += rng.random_range(-0.3..0.3); // non-zero biases too
        }
        let ws = Workspace::new(&layout, n);
        Case {
            mlp: Mlp::new(layout, act),
            x,
            y,
            theta,
            ws,
        }
    }

    impl Case {
        fn loss(&mut self, theta: &[f64]) -> f64 {
            let rows: Vec<usize> = (0..self.y.len()).collect();
            self.ws.gather(self.x.view(), &self.y, &rows);
            let mut g = vec![0.0; theta.len()];
            self.mlp.grad_into(theta, &mut self.ws, &mut g)
        }
        fn grad(&mut self, theta: &[f64]) -> Vec<f64> {
            let rows: Vec<usize> = (0..self.y.len()).collect();
            self.ws.gather(self.x.view(), &self.y, &rows);
            let mut g = vec![0.0; theta.len()];
            self.mlp.grad_into(theta, &mut self.ws, &mut g);
            g
        }
        fn grad_hvp(&mut self, theta: &[f64], u: &[f64]) -> (Vec<f64>, Vec<f64>) {
            let rows: Vec<usize> = (0..self.y.len()).collect();
            self.ws.gather(self.x.view(), &self.y, &rows);
            let mut g = vec![0.0; theta.len()];
            let mut h = vec![0.0; theta.len()];
            self.mlp
                .grad_hvp_into(theta, u, &mut self.ws, &mut g, &mut h);
            (g, h)
        }
    }

    /// Relative error ‖a − b‖∞ / max(‖b‖∞, 1e-3).
    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let num = a
            .iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let den = b.iter().map(|b| b.abs()).fold(1e-3, f64::max);
        num / den
    }

    /// `∂⟨u, ∇_θ L⟩/∂X` from the R-pass against central differences of `⟨u, ∇_θ L⟩` in
    /// every input entry, with row weights; tracking changes neither gradient nor `H·u`.
    fn check_input_tangents(act: Activation, sizes: &[usize], seed: u64) {
        let mut c = case(act, sizes, 6, seed);
        let theta = c.theta.clone();
        let mut rng = StdRng::seed_from_u64(seed + 7);
        let u: Vec<f64> = (0..theta.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let weights: Vec<f64> = (0..6).map(|_| rng.random_range(0.2..1.0)).collect();
        let rows: Vec<usize> = (0..6).collect();
        let run = |c: &mut Case, x: &Array2<f64>, track: bool| {
            c.ws.track_inputs(track);
            c.ws.gather(x.view(), &c.y, &rows);
            c.ws.weigh(Some(&weights), &rows);
            let mut g = vec![0.0; theta.len()];
            let mut h = vec![0.0; theta.len()];
            c.mlp.grad_hvp_into(&theta, &u, &mut c.ws, &mut g, &mut h);
            let dot: f64 = u.iter().zip(&g).map(|(u, g)| u * g).sum();
            (g, h, dot)
        };
        let x = c.x.clone();
        let (g0, h0, _) = run(&mut c, &x, false);
        let (g1, h1, _) = run(&mut c, &x, true);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&g0), bits(&g1), "tracking changed the gradient");
        assert_eq!(bits(&h0), bits(&h1), "tracking changed H·u");
        let tangents = c.ws.input_tangents().to_owned();
        assert_eq!(tangents.dim(), x.dim());
        let mut fd = Array2::zeros(x.dim());
        for i in 0..x.nrows() {
            for j in 0..x.ncols() {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[[i, j]] += H;
                xm[[i, j]] -= H;
                fd[[i, j]] = (run(&mut c, &xp, true).2 - run(&mut c, &xm, true).2) / (2.0 * H);
            }
        }
        let (a, b) = (tangents.as_slice().unwrap(), fd.as_slice().unwrap());
        let e = rel_err(a, b);
        assert!(e < TOL, "{act:?} {sizes:?}: input tangent rel err {e}");
        assert!(b.iter().any(|v| v.abs() > 1e-3), "a vacuous comparison");
    }

    #[test]
    fn input_tangents_match_finite_differences() {
        check_input_tangents(Activation::Tanh, &[3, 4, 2], 1);
        check_input_tangents(Activation::Tanh, &[4, 5, 3, 3], 2);
        check_input_tangents(Activation::Softplus, &[3, 4, 3], 3);
        check_input_tangents(Activation::Tanh, &[5, 3], 4);
    }

    // Central differences with h = 1e-5 have truncation error O(h²·f''') ≈ 1e-10 and
    // rounding error O(ε/h) ≈ 1e-11 on these O(1) losses, so 1e-6 relative is a safe bound
    // that a wrong derivative (errors O(1)) cannot meet.
    const H: f64 = 1e-5;
    const TOL: f64 = 1e-6;

    fn check(act: Activation, sizes: &[usize], seed: u64) {
        let mut c = case(act, sizes, 7, seed);
        let theta = c.theta.clone();
        let g = c.grad(&theta);
        let fd: Vec<f64> = (0..theta.len())
            .map(|i| {
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[i] += H;
                tm[i] -= H;
                (c.loss(&tp) - c.loss(&tm)) / (2.0 * H)
            })
            .collect();
        let e = rel_err(&g, &fd);
        assert!(e < TOL, "{act:?} {sizes:?} seed {seed}: grad rel err {e}");

        let mut rng = StdRng::seed_from_u64(seed + 100);
        let u: Vec<f64> = (0..theta.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let (g2, hu) = c.grad_hvp(&theta, &u);
        assert!(
            g.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()),
            "grad not bit-identical"
        );
        let tp: Vec<f64> = theta.iter().zip(&u).map(|(t, u)| t + H * u).collect();
        let tm: Vec<f64> = theta.iter().zip(&u).map(|(t, u)| t - H * u).collect();
        let gp = c.grad(&tp);
        let gm = c.grad(&tm);
        let fd_hu: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(p, m)| (p - m) / (2.0 * H))
            .collect();
        let e = rel_err(&hu, &fd_hu);
        assert!(e < TOL, "{act:?} {sizes:?} seed {seed}: hvp rel err {e}");

        // Symmetry: wᵀ(Hu) = uᵀ(Hw).
        let w: Vec<f64> = (0..theta.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let (_, hw) = c.grad_hvp(&theta, &w);
        let a: f64 = w.iter().zip(&hu).map(|(a, b)| a * b).sum();
        let b: f64 = u.iter().zip(&hw).map(|(a, b)| a * b).sum();
        assert!(
            (a - b).abs() <= 1e-10 * a.abs().max(1.0),
            "asymmetric: {a} vs {b}"
        );
    }

    #[test]
    fn tanh_grad_and_hvp_match_finite_differences() {
        for seed in 0..4 {
            check(Activation::Tanh, &[4, 5, 3], seed);
            check(Activation::Tanh, &[3, 4, 4, 3], seed);
        }
    }

    #[test]
    fn softplus_grad_and_hvp_match_finite_differences() {
        for seed in 0..4 {
            check(Activation::Softplus, &[4, 5, 3], seed);
            check(Activation::Softplus, &[3, 4, 4, 3], seed);
        }
    }

    #[test]
    fn relu_grad_and_hvp_match_finite_differences_away_from_kinks() {
        // With these seeds no pre-activation lies within H·‖u‖ of 0 (checked by the
        // assertion below), so the finite differences never straddle a kink.
        for seed in 0..4 {
            let mut c = case(Activation::Relu, &[4, 6, 3], 7, seed);
            let theta = c.theta.clone();
            c.loss(&theta);
            let zmin = c.ws.z[0]
                .iter()
                .map(|z| z.abs())
                .fold(f64::INFINITY, f64::min);
            assert!(zmin > 1e-3, "seed {seed} has a pre-activation at a kink");
            check(Activation::Relu, &[4, 6, 3], seed);
        }
    }

    #[test]
    fn linear_model_has_no_hidden_layer() {
        check(Activation::Tanh, &[5, 3], 1);
    }

    #[test]
    fn hvp_is_linear_in_u() {
        let mut c = case(Activation::Tanh, &[4, 5, 3], 9, 3);
        let theta = c.theta.clone();
        let mut rng = StdRng::seed_from_u64(5);
        let u: Vec<f64> = (0..theta.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let w: Vec<f64> = (0..theta.len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let uw: Vec<f64> = u.iter().zip(&w).map(|(a, b)| 2.0 * a - 3.0 * b).collect();
        let (_, hu) = c.grad_hvp(&theta, &u);
        let (_, hw) = c.grad_hvp(&theta, &w);
        let (_, huw) = c.grad_hvp(&theta, &uw);
        let lin: Vec<f64> = hu.iter().zip(&hw).map(|(a, b)| 2.0 * a - 3.0 * b).collect();
        assert!(rel_err(&huw, &lin) < 1e-12);
    }

    #[test]
    fn loss_matches_a_plain_loop_reference() {
        // Slow, plainly written forward pass for one sample: the independent reference.
        let mut c = case(Activation::Softplus, &[3, 4, 2], 1, 11);
        let theta = c.theta.clone();
        let got = c.loss(&theta);
        let layout = c.mlp.layout().clone();
        let mut h: Vec<f64> = c.x.row(0).to_vec();
        for l in 0..layout.n_layers() {
            let (i, o) = layout.w_shape(l);
            let w = &theta[layout.w_range(l)];
            let b = &theta[layout.b_range(l)];
            let mut z = vec![0.0; o];
            for j in 0..o {
                z[j] = b[j] + (0..i).map(|k| h[k] * w[k * o + j]).sum::<f64>();
            }
            h = if l + 1 < layout.n_layers() {
                z.iter().map(|&v| (1.0 + v.exp()).ln()).collect()
            } else {
                z
            };
        }
        let lse = h.iter().map(|v| v.exp()).sum::<f64>().ln();
        let ce = lse - h[c.y[0]];
        assert!((got - ce).abs() < 1e-12, "{got} vs {ce}");
    }
}
