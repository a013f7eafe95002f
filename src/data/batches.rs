//! # Mini-batch schedule, replayable in any order
//!
//! Batch `t` holds the rows at positions `p = t·B + i`, `i ∈ 0..B`, of an endless stream made
//! of epochs of `N` rows each:
//!
//! ```text
//! shuffle = false:  row(p) = p mod N
//! shuffle = true:   row(p) = π_e(p mod N),  e = ⌊p / N⌋,  π_e = FisherYates(rng(seed, e))
//! ```
//!
//! Each epoch's permutation π_e is a pure function of `(seed, e)`, so batch `t` can be
//! rebuilt at any time: the reverse pass replays batches T−1, …, 0 without storing them.
//! Two permutation slots are cached (a batch can straddle two epochs), and regenerating a
//! permutation reuses their buffers, so the hot path allocates nothing.

use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::{Rng, SeedableRng};

/// Deterministic batch indices for every inner step.
#[derive(Debug, Clone)]
pub struct BatchSchedule {
    n_rows: usize,
    batch: usize,
    shuffle: bool,
    seed: u64,
    slots: [(Option<u64>, Vec<usize>); 2],
    next_slot: usize,
}

impl BatchSchedule {
    /// A schedule over `n_rows` rows with batches of `batch` rows.
    ///
    /// # Panics
    /// If `batch` or `n_rows` is zero (validated configs never do this).
    #[track_caller]
    pub fn new(n_rows: usize, batch: usize, shuffle: bool, seed: u64) -> Self {
        assert!(n_rows > 0 && batch > 0, "empty schedule");
        let slot = || (None, Vec::with_capacity(if shuffle { n_rows } else { 0 }));
        BatchSchedule {
            n_rows,
            batch,
            shuffle,
            seed,
            slots: [slot(), slot()],
            next_slot: 0,
        }
    }

    /// The same schedule drawn from another seed.
    pub fn reseeded(&self, seed: u64) -> Self {
        BatchSchedule::new(self.n_rows, self.batch, self.shuffle, seed)
    }

    /// The same schedule (seed, batch size, shuffling) over the first `n_rows` rows.
    pub fn over_rows(&self, n_rows: usize) -> Self {
        BatchSchedule::new(n_rows, self.batch, self.shuffle, self.seed)
    }

    /// Rows the batches are drawn from.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Write the row indices of batch `t` into `out` (cleared first).
    pub fn rows_into(&mut self, t: usize, out: &mut Vec<usize>) {
        out.clear();
        let first = t as u128 * self.batch as u128;
        for i in 0..self.batch as u128 {
            let p = first + i;
            let within = (p % self.n_rows as u128) as usize;
            if self.shuffle {
                let epoch = (p / self.n_rows as u128) as u64;
                let perm = self.permutation(epoch);
                out.push(perm[within]);
            } else {
                out.push(within);
            }
        }
    }

    fn permutation(&mut self, epoch: u64) -> &[usize] {
        let hit = self.slots.iter().position(|(e, _)| *e == Some(epoch));
        let k = match hit {
            Some(k) => k,
            None => {
                let k = self.next_slot;
                self.next_slot = 1 - k;
                let (e, perm) = &mut self.slots[k];
                *e = Some(epoch);
                perm.clear();
                perm.extend(0..self.n_rows);
                let mut rng = StdRng::seed_from_u64(mix(self.seed, epoch));
                for i in (1..perm.len()).rev() {
                    let j = rng.random_range(0..=i);
                    perm.swap(i, j);
                }
                k
            }
        };
        &self.slots[k].1
    }
}

/// SplitMix64 finaliser of `(seed, epoch)`: distinct, well-spread RNG seeds per epoch.
fn mix(seed: u64, epoch: u64) -> u64 {
    let mut z = seed
        ^ epoch
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_batches_wrap() {
        let mut s = BatchSchedule::new(5, 3, false, 0);
        let mut out = Vec::new();
        s.rows_into(1, &mut out);
        assert_eq!(out, vec![3, 4, 0]);
    }

    #[test]
    fn shuffled_epochs_are_permutations_and_replay_backwards() {
        let mut s = BatchSchedule::new(10, 4, true, 7);
        let mut forward = Vec::new();
        let mut out = Vec::new();
        for t in 0..25 {
            s.rows_into(t, &mut out);
            forward.push(out.clone());
        }
        let stream: Vec<usize> = forward.iter().flatten().copied().collect();
        for epoch in stream.chunks(10).take(10) {
            let mut e = epoch.to_vec();
            e.sort_unstable();
            assert_eq!(e, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(&stream[..10], &stream[10..20], "epochs should differ");
        let mut fresh = BatchSchedule::new(10, 4, true, 7);
        for t in (0..25).rev() {
            fresh.rows_into(t, &mut out);
            assert_eq!(out, forward[t], "batch {t} differs on replay");
        }
    }
}
