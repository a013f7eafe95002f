//! # The partition of rows into parts: a function of the row count alone
//!
//! A batch, or a data set being evaluated, is split into parts that may be computed on
//! any thread, by a rule that depends only on the number of rows, never on the number of
//! threads:
//!
//! ```text
//! batch of B rows:   P = clamp(⌈B/64⌉, 1, 16) parts, part k = rows 8·⌊kU/P⌋ .. 8·⌊(k+1)U/P⌋
//!                    with U = ⌊B/8⌋ (the last part also takes the B mod 8 rows left over)
//! n evaluation rows: P = clamp(⌈n/32⌉, 1, 8) parts, likewise, each swept 32 rows at a time
//! ```
//!
//! Rules: the parts are contiguous, in row order, cover every row once, and are non-empty
//! when there are rows;
//! whoever adds up per-part results does so in part order, so the sums are the same bits
//! for every thread count.
//!
//! Every part but the last holds a multiple of 8 rows: a batch of 100 splits into 48 + 52.
//! The matrix kernel ([`crate::model::linalg`]) computes the rows of a product in register
//! tiles 8 rows high on its AVX-512 path and 4 rows high on its portable path, so such a
//! part needs none of the smaller row-tail tiles there (the AVX2 path's tiles are 6 rows
//! high, which no multiple of 8 matches in general). Measured with callgrind on the digits
//! model (64-100-100-10, B = 100), one thread, per hypergradient step, with the
//! matrixmultiply crate's kernel (whose f64 tiles are also 8 rows high): 2 parts cost 3%
//! more instructions than the whole batch in one workspace, 4 parts 9% (16% unaligned),
//! 7 parts 19%. Two parts suit the 2-core machines this is measured on (in wall time,
//! 4 parts cost 10–15% of a one-thread hypergradient); larger batches get more parts and
//! more threads.

use std::ops::Range;

/// Rows per part of an evaluation, and per sweep within a part.
pub const CHUNK_ROWS: usize = 32;

/// Target rows per part of a batch: a batch of 100 splits into 2 parts (48 + 52), which
/// two threads share. Parts of 32 rows (4 parts) cost 9% more per step on one thread than
/// one workspace over the whole batch, parts of 64 rows 3% (callgrind, digits model).
pub const BATCH_PART_ROWS: usize = 64;

/// Every part but the last holds a multiple of this many rows (the height of the matrix
/// kernel's AVX-512 register tiles).
pub const ALIGN_ROWS: usize = 8;

/// Most parts a batch is split into (so at most this many threads help); larger batches get
/// larger parts. Bounds the per-part gradient buffers at 2·16 parameter vectors.
pub const MAX_BATCH_PARTS: usize = 16;

/// Parts of a validation, test or full-training evaluation. Each holds a workspace of
/// [`CHUNK_ROWS`] rows and one gradient buffer.
pub const EVAL_PARTS: usize = 8;

/// `len` rows in `parts` near-equal contiguous ranges starting at multiples of
/// [`ALIGN_ROWS`]: part `k`.
pub fn part_range(k: usize, parts: usize, len: usize) -> Range<usize> {
    let units = len / ALIGN_ROWS;
    let start = k * units / parts * ALIGN_ROWS;
    let end = if k + 1 == parts {
        len
    } else {
        (k + 1) * units / parts * ALIGN_ROWS
    };
    start..end
}

/// Parts of a batch of `rows` rows.
pub fn batch_parts(rows: usize) -> usize {
    rows.div_ceil(BATCH_PART_ROWS).clamp(1, MAX_BATCH_PARTS)
}

/// Parts of an evaluation over `rows` rows.
pub fn eval_parts(rows: usize) -> usize {
    rows.div_ceil(CHUNK_ROWS).clamp(1, EVAL_PARTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_covers_the_rows_in_order_and_depends_on_the_row_count_only() {
        for len in 1..600 {
            let parts = batch_parts(len);
            let mut next = 0;
            for k in 0..parts {
                let r = part_range(k, parts, len);
                assert_eq!(r.start, next);
                assert_eq!(r.start % ALIGN_ROWS, 0);
                assert!(!r.is_empty(), "{len} rows, part {k} of {parts}");
                // Near-equal: within one tile plus the leftover rows of the last part.
                assert!(r.len() <= len / parts + 2 * ALIGN_ROWS, "{len}: {r:?}");
                next = r.end;
            }
            assert_eq!(next, len);
        }
        assert_eq!(part_range(0, 4, 100), 0..24);
        assert_eq!(part_range(3, 4, 100), 72..100);
        assert_eq!(part_range(1, 2, 100), 48..100);
        assert_eq!(batch_parts(64), 1);
        assert_eq!(batch_parts(65), 2);
        assert_eq!(batch_parts(100), 2);
        assert_eq!(batch_parts(10_000), MAX_BATCH_PARTS);
        assert_eq!(eval_parts(0), 1);
        assert_eq!(eval_parts(10_000), EVAL_PARTS);
    }
}
