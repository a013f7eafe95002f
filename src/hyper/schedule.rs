//! # Schedules: K knots over the T steps
//!
//! A schedulable block with K knots gives step t (t = 0 … T−1) of T the value of group g
//! interpolated between two knots in the warped coordinate u = warp(h) (SPEC §2.3, §2.4).
//! For K ≥ 2 ([`Block::knot_position`], [`Block::value_at`]):
//!
//! ```text
//! p = t·(K−1)/(T−1)   (p = 0 when T = 1)    k = min(⌊p⌋, K−2)    w = p − k
//! u_t = (1−w)·warp(h_k) + w·warp(h_{k+1})    h_t = unwarp(u_t)
//! ```
//!
//! so the first step takes the first knot and the last step (p = K−1, k = K−2, w = 1) the
//! last. `h_t` is the knot itself, bit for bit, when w = 0 (`h_k`), w ≥ 1 (`h_{k+1}`) or the
//! two knots are equal, so a schedule of equal knots reproduces the constant run exactly.
//! With K = 1 every step takes the single knot.
//!
//! The chain rule folds the hypergradient `d = ∂f/∂h_t` of each step into the knots
//! ([`Block::add_step_gradient`]): with `J = dh/du` the warp's Jacobian and
//! `∂u_k/∂h_k = 1/J(h_k)`,
//!
//! ```text
//! ∂f/∂h_k     += d · J(h_t)·(1−w) / J(h_k)
//! ∂f/∂h_{k+1} += d · J(h_t)·w / J(h_{k+1})     (skipped when w = 0)
//! ```
//!
//! and with K = 1 it adds `d` to the single knot as it is.

use super::Block;

impl Block {
    /// Knot position of step `t` of `steps`: `(k, w)` with the value between knots k and
    /// k+1 at fraction w (k = 0, w = 0 without a schedule).
    pub fn knot_position(&self, t: usize, steps: usize) -> (usize, f64) {
        let kk = self.knots;
        if kk == 1 {
            return (0, 0.0);
        }
        let p = if steps > 1 {
            t as f64 * (kk - 1) as f64 / (steps - 1) as f64
        } else {
            0.0
        };
        let k = (p.floor() as usize).min(kk - 2);
        (k, p - k as f64)
    }

    /// The value of group `g` at step `t` of `steps` (a schedule interpolated in warped
    /// coordinates between its knots).
    pub fn value_at(&self, t: usize, steps: usize, g: usize) -> f64 {
        let ng = self.groups.len();
        let (k, w) = self.knot_position(t, steps);
        let a = self.values[k * ng + g];
        if self.knots == 1 || w == 0.0 {
            return a;
        }
        let b = self.values[(k + 1) * ng + g];
        if w >= 1.0 {
            return b;
        }
        if a.to_bits() == b.to_bits() {
            return a;
        }
        self.kind
            .unwarp((1.0 - w) * self.kind.warp(a) + w * self.kind.warp(b))
    }

    /// Chain rule: adds the hypergradient `d = ∂f/∂h_t` of group `g` at step `t` (where the
    /// value was `h_t`) to the knots' entries of `grads`.
    pub fn add_step_gradient(
        &self,
        t: usize,
        steps: usize,
        g: usize,
        h_t: f64,
        d: f64,
        grads: &mut [f64],
    ) {
        let ng = self.groups.len();
        if self.knots == 1 {
            grads[g] += d;
            return;
        }
        let (k, w) = self.knot_position(t, steps);
        let jt = d * self.kind.jacobian(h_t);
        let (i, j) = (k * ng + g, (k + 1) * ng + g);
        grads[i] += jt * (1.0 - w) / self.kind.jacobian(self.values[i]);
        if w != 0.0 {
            grads[j] += jt * w / self.kind.jacobian(self.values[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyper::{Kind, Per};
    use crate::model::Layout;

    fn layout() -> Layout {
        Layout::new(&[3, 4, 2])
    }
    #[test]
    fn schedule_interpolates_in_warped_coordinates() {
        let l = layout();
        let mut b = Block::filled(Kind::Alpha, Per::All, 3, &l, 0.1);
        b.values = vec![0.1, 0.4, 0.4];
        assert_eq!(b.value_at(0, 11, 0).to_bits(), 0.1f64.to_bits());
        assert_eq!(b.value_at(5, 11, 0).to_bits(), 0.4f64.to_bits());
        assert_eq!(b.value_at(10, 11, 0).to_bits(), 0.4f64.to_bits());
        // Halfway between 0.1 and 0.4 in log space is 0.2.
        assert!((b.value_at(2, 9, 0) - 0.2).abs() < 1e-15);
        // Equal knots reproduce the value exactly.
        assert_eq!(b.value_at(7, 11, 0).to_bits(), 0.4f64.to_bits());
    }
}
