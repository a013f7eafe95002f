//! # Element loops over the information buffer's segments, on any number of threads
//!
//! An exact optimizer's per-element work — the decay multiplies through the information
//! buffer, the exact increments, their undo — is independent across the buffer's
//! [`Segment`]s: [`InfoBuffer`] cuts the vector into fixed segments of [`SEGMENT_LEN`]
//! elements (a partition that depends on the length alone), each with its own stack.
//! [`over_segments`] hands every segment, with the matching pieces of the state vectors,
//! to one closure; the segments are shared out among the [`Threads`] in contiguous groups,
//! or looped over on the calling thread for one thread. The segments share nothing, so
//! every result is bit-identical for every thread count.
//!
//! Sums over the elements (an adjoint's hypergradient sums) go into [`PerSegment`] slots,
//! one set per segment, which the caller adds up in segment order afterwards: the same
//! bits for every thread count.
//!
//! ```text
//! vector:   [ seg 0: 0..1024 | seg 1: 1024..2048 | … | seg S−1: …..n ]
//! closure:  f(start, segment, (θ[start..end], v[start..end], g[start..end], …)) → flags
//! result:   flags₀ | flags₁ | … (failure bits, e.g. an overflow)
//! ```

use std::ops::Range;

use super::Threads;
use crate::exact::{InfoBuffer, SEGMENT_LEN, Segment};

/// State vectors (or tuples of them) that split at an element index, so each segment gets
/// its own piece.
pub trait Split: Sized + Send {
    /// The elements before `mid`, and the rest.
    fn split(self, mid: usize) -> (Self, Self);
    /// The number of elements (`None` for a tuple of vectors of different lengths).
    fn elements(&self) -> Option<usize>;
}

impl<T: Send> Split for &mut [T] {
    fn split(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
    fn elements(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl<T: Sync> Split for &[T] {
    fn split(self, mid: usize) -> (Self, Self) {
        self.split_at(mid)
    }
    fn elements(&self) -> Option<usize> {
        Some(self.len())
    }
}

macro_rules! split_tuple {
    ($($v:ident),+) => {
        impl<$($v: Split),+> Split for ($($v,)+) {
            #[allow(non_snake_case)]
            fn split(self, mid: usize) -> (Self, Self) {
                let ($($v,)+) = self;
                $(let $v = $v.split(mid);)+
                (($($v.0,)+), ($($v.1,)+))
            }
            #[allow(non_snake_case)]
            fn elements(&self) -> Option<usize> {
                let ($($v,)+) = self;
                let lens = [$($v.elements(),)+];
                lens.iter().all(|&l| l == lens[0]).then_some(lens[0]).flatten()
            }
        }
    };
}

/// Slots that belong to whole segments rather than to elements: `width` of them per
/// segment (its partial sums, say), split together with the segments' elements, so each
/// segment's loop gets its own. Sums combined afterwards in segment order are the same for
/// every thread count.
pub struct PerSegment<'a, T> {
    slots: &'a mut [T],
    width: usize,
    elements: usize,
}

impl<'a, T> PerSegment<'a, T> {
    /// `width` slots per segment of a vector of `elements` elements.
    ///
    /// # Panics
    /// If `slots` does not hold exactly that many (a programming error).
    pub fn new(slots: &'a mut [T], width: usize, elements: usize) -> Self {
        assert_eq!(
            slots.len(),
            elements.div_ceil(SEGMENT_LEN) * width,
            "per-segment slots for {elements} elements"
        );
        PerSegment {
            slots,
            width,
            elements,
        }
    }

    /// The slots of this piece's segments (`width` for each, in order).
    pub fn slots(self) -> &'a mut [T] {
        self.slots
    }
}

impl<T: Send> Split for PerSegment<'_, T> {
    fn split(self, mid: usize) -> (Self, Self) {
        debug_assert!(mid.is_multiple_of(SEGMENT_LEN) || mid == self.elements);
        let (a, b) = self
            .slots
            .split_at_mut(mid.div_ceil(SEGMENT_LEN) * self.width);
        let piece = |slots, elements| PerSegment {
            slots,
            width: self.width,
            elements,
        };
        (piece(a, mid), piece(b, self.elements - mid))
    }
    fn elements(&self) -> Option<usize> {
        Some(self.elements)
    }
}

split_tuple!(A, B);
split_tuple!(A, B, C);
split_tuple!(A, B, C, D);
split_tuple!(A, B, C, D, E);

/// A segment's loop: `(first element, its segment, its pieces of the vectors)` → failure
/// flags (0 for none).
pub type SegmentLoop<'f, S> = dyn Fn(usize, &mut Segment, S) -> u8 + Sync + 'f;

/// Runs `f` on every segment of `buffer` with its pieces of `data` (vectors as long as the
/// buffer), on `threads`; returns the OR of the flags. With more than one thread the
/// segments are cut into one contiguous group per thread (never more than
/// [`MAX_THREADS`]), each group looped over in order on one thread; nothing is allocated.
///
/// # Panics
/// If a vector is not as long as the buffer (a programming error).
pub fn over_segments<S: Split>(
    threads: &Threads,
    buffer: &mut InfoBuffer,
    data: S,
    f: &SegmentLoop<'_, S>,
) -> u8 {
    assert_eq!(
        data.elements(),
        Some(buffer.len()),
        "vectors and buffer differ in length"
    );
    let segments = buffer.segments_mut();
    let groups = threads.count().min(segments.len()).min(MAX_THREADS);
    if groups <= 1 {
        return in_order(segments, 0, data, f);
    }
    let total = segments.len();
    let mut work: [Group<'_, S>; MAX_THREADS] = std::array::from_fn(|_| Group::default());
    let (mut rest, mut data, mut start) = (segments, Some(data), 0);
    for (k, g) in work.iter_mut().take(groups).enumerate() {
        // Group k takes segments ⌊k·S/G⌋ .. ⌊(k+1)·S/G⌋.
        let count = (k + 1) * total / groups - k * total / groups;
        let (mine, others) = std::mem::take(&mut rest).split_at_mut(count);
        let len: usize = mine.iter().map(Segment::len).sum();
        let (piece, remaining) = data.take().expect("data left").split(len);
        g.job = Some((start, mine, piece));
        start += len;
        rest = others;
        data = Some(remaining);
    }
    threads.for_each(&mut work[..groups], |g| {
        if let Some((start, segs, piece)) = g.job.take() {
            g.flags = in_order(segs, start, piece, f);
        }
    });
    work.iter().fold(0, |acc, g| acc | g.flags)
}

/// Most groups [`over_segments`] makes (threads beyond it idle in these loops).
pub const MAX_THREADS: usize = 16;

/// One thread's share: its first element, its segments and their pieces; then its flags.
struct Group<'a, S> {
    job: Option<(usize, &'a mut [Segment], S)>,
    flags: u8,
}

impl<S> Default for Group<'_, S> {
    fn default() -> Self {
        Group {
            job: None,
            flags: 0,
        }
    }
}

/// `f` on `segments` in order, the first starting at element `start`.
fn in_order<S: Split>(
    segments: &mut [Segment],
    start: usize,
    data: S,
    f: &SegmentLoop<'_, S>,
) -> u8 {
    let (mut start, mut data, mut flags) = (start, data, 0);
    for seg in segments {
        let (piece, rest) = data.split(seg.len());
        flags |= f(start, seg, piece);
        start += seg.len();
        data = rest;
    }
    flags
}

/// One (segment, array) pair's share of a pass's hypergradient sums (an optimizer uses as
/// many of the four as it has sums), kept in [`PerSegment`] slots of width one per array.
pub type Sums = [f64; 4];

/// The per-array totals of per-(segment, array) [`Sums`]: for each array, its sums over
/// the segments it meets, added in segment order, passed to `add(array, totals)`. The
/// order depends on the vector's length alone, so the totals are the same for every
/// thread count.
pub fn fold_sums(arrays: &[Range<usize>], partials: &[Sums], mut add: impl FnMut(usize, Sums)) {
    let na = arrays.len();
    for (a, r) in arrays.iter().enumerate() {
        if r.is_empty() {
            continue;
        }
        let mut total = [0.0; 4];
        for j in r.start / SEGMENT_LEN..=(r.end - 1) / SEGMENT_LEN {
            for (t, p) in total.iter_mut().zip(partials[j * na + a]) {
                *t += p;
            }
        }
        add(a, total);
    }
}

/// `(segment, array, elements)` for a vector of `n` elements, segment by segment, in the
/// order a segment pass visits them: arrays increasing, or decreasing (`rev`) as an undo
/// runs; the elements are absolute indices. A pass that reads stored states instead of
/// undoing walks this order, so its sums are bit-identical to the segment pass's.
pub fn segment_arrays(
    arrays: &[Range<usize>],
    n: usize,
    rev: bool,
) -> impl Iterator<Item = (usize, usize, Range<usize>)> + '_ {
    (0..n.div_ceil(SEGMENT_LEN)).flat_map(move |j| {
        let start = j * SEGMENT_LEN;
        let within = arrays_in(arrays, start..(start + SEGMENT_LEN).min(n))
            .map(move |(a, r)| (j, a, r.start + start..r.end + start));
        let (forward, backward) = if rev {
            (None, Some(within.rev()))
        } else {
            (Some(within), None)
        };
        forward
            .into_iter()
            .flatten()
            .chain(backward.into_iter().flatten())
    })
}

/// The parameter arrays that meet the elements `span`, each as `(array index, its
/// elements within the span, counted from the span's start)`, in increasing order (reverse
/// the iterator for the undo).
pub fn arrays_in(
    arrays: &[Range<usize>],
    span: Range<usize>,
) -> impl DoubleEndedIterator<Item = (usize, Range<usize>)> + '_ {
    arrays.iter().enumerate().filter_map(move |(a, r)| {
        let (lo, hi) = (r.start.max(span.start), r.end.min(span.end));
        (lo < hi).then(|| (a, lo - span.start..hi - span.start))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_cut_at_the_span() {
        let arrays = [0..3, 3..4, 4..10, 10..12];
        let got: Vec<_> = arrays_in(&arrays, 2..11).collect();
        assert_eq!(got, vec![(0, 0..1), (1, 1..2), (2, 2..8), (3, 8..9)]);
        let back: Vec<_> = arrays_in(&arrays, 4..10).rev().collect();
        assert_eq!(back, vec![(2, 0..6)]);
    }

    #[test]
    fn stored_walk_and_sums_follow_the_segments() {
        let n = 2 * SEGMENT_LEN + 600;
        let arrays = [0..1000, 1000..1010, 1010..2500, 2500..n];
        let walk: Vec<_> = segment_arrays(&arrays, n, false).collect();
        assert_eq!(
            walk,
            vec![
                (0, 0, 0..1000),
                (0, 1, 1000..1010),
                (0, 2, 1010..1024),
                (1, 2, 1024..2048),
                (2, 2, 2048..2500),
                (2, 3, 2500..n),
            ]
        );
        let back: Vec<_> = segment_arrays(&arrays, n, true).collect();
        assert_eq!(back[0], (0, 2, 1010..1024));
        assert_eq!(back[2], (0, 0, 0..1000));
        assert_eq!(back[5], (2, 2, 2048..2500));
        // Sums: array 2's three partials in segment order, nothing read from other slots.
        let na = arrays.len();
        let mut partials = vec![[f64::NAN; 4]; 3 * na];
        for &(j, a, ref r) in &walk {
            partials[j * na + a] = [r.len() as f64, 1.0, 0.0, 0.0];
        }
        let mut got = vec![];
        fold_sums(&arrays, &partials, |a, s| got.push((a, s[0], s[1])));
        assert_eq!(
            got,
            vec![
                (0, 1000.0, 1.0),
                (1, 10.0, 1.0),
                (2, 1490.0, 3.0),
                (3, n as f64 - 2500.0, 1.0)
            ]
        );
    }

    #[test]
    fn every_element_is_visited_once_with_its_own_piece() {
        let cases = [(1, 5), (3, 5), (3, 1), (8, 2), (2, 0)];
        for (threads, full) in cases {
            let threads = Threads::new(threads).unwrap();
            let n = full * SEGMENT_LEN + 17;
            let mut buf = InfoBuffer::new(n);
            let mut x = vec![0usize; n];
            let idx: Vec<usize> = (0..n).collect();
            let flags = over_segments(
                &threads,
                &mut buf,
                (&mut x[..], &idx[..]),
                &|start, seg, (x, idx)| {
                    assert_eq!(x.len(), seg.len());
                    for (j, x) in x.iter_mut().enumerate() {
                        assert_eq!(idx[j], start + j);
                        *x += 1 + start + j;
                    }
                    u8::from(start == SEGMENT_LEN)
                },
            );
            assert_eq!(
                flags,
                u8::from(full >= 1),
                "the flags of every segment are combined"
            );
            assert!(x.iter().enumerate().all(|(i, &v)| v == i + 1));
        }
    }
}
