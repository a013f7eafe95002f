//! # Parameter layout
//!
//! All parameters of the MLP live in one flat `f64` vector (or one flat fixed-point vector
//! in exact arithmetic), layer after layer:
//!
//! ```text
//! θ = [ W₀ (row-major, shape (in₀, out₀)) | b₀ (out₀) | W₁ | b₁ | … | W_{L−1} | b_{L−1} ]
//! ```
//!
//! so that optimizers, the information buffer and the hypergradient see a single vector and
//! the model takes per-layer views without copying.

use std::ops::Range;

/// Offsets of each layer's weights and biases in the flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    len: usize,
}

impl Layout {
    /// Layout for layer sizes `[D, hidden…, K]`.
    ///
    /// # Panics
    /// If fewer than two sizes are given or any is zero (validated configs never do this).
    #[track_caller]
    pub fn new(sizes: &[usize]) -> Self {
        assert!(sizes.len() >= 2, "an MLP needs input and output sizes");
        assert!(sizes.iter().all(|&s| s > 0), "layer sizes must be positive");
        let mut offsets = Vec::with_capacity(sizes.len() - 1);
        let mut len = 0;
        for w in sizes.windows(2) {
            offsets.push(len);
            len += w[0] * w[1] + w[1];
        }
        Layout {
            sizes: sizes.to_vec(),
            offsets,
            len,
        }
    }

    /// Layer sizes `[D, hidden…, K]`.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Number of weight layers.
    pub fn n_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Total number of parameters |θ|.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false for a valid layout.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shape `(in, out)` of `W_l`.
    pub fn w_shape(&self, l: usize) -> (usize, usize) {
        (self.sizes[l], self.sizes[l + 1])
    }

    /// Range of `W_l` in the flat vector.
    pub fn w_range(&self, l: usize) -> Range<usize> {
        let (i, o) = self.w_shape(l);
        self.offsets[l]..self.offsets[l] + i * o
    }

    /// Range of `b_l` in the flat vector.
    pub fn b_range(&self, l: usize) -> Range<usize> {
        let w = self.w_range(l);
        w.end..w.end + self.sizes[l + 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_tile_the_vector() {
        let l = Layout::new(&[3, 4, 2]);
        assert_eq!(l.len(), 3 * 4 + 4 + 4 * 2 + 2);
        assert_eq!(l.w_range(0), 0..12);
        assert_eq!(l.b_range(0), 12..16);
        assert_eq!(l.w_range(1), 16..24);
        assert_eq!(l.b_range(1), 24..26);
    }
}
