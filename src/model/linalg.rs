//! # Matrix products for the MLP: `C ← β·C + A·B`, β ∈ {0, 1}
//!
//! Every element of `C` is one chain of fused multiply-adds in increasing `k`:
//!
//! ```text
//! c_ij ← β·c_ij;   for k = 0, 1, …, K−1:  c_ij ← fma(a_ik, b_kj, c_ij)
//! ```
//!
//! `fma` is the correctly rounded IEEE operation, so this fixes every bit of the result
//! from the inputs alone: the blocking, the SIMD width, the instruction set chosen at run time
//! and the machine do not change it (the tests compare each path bit for bit with a plain
//! triple loop of `f64::mul_add`). Vectorisation runs across the columns `j` of `C` (distinct
//! outputs), never across `k`, so no reassociation is needed.
//!
//! The kernel is a register tile of `MR` rows × `NR` columns of `C` kept in registers over the
//! whole `k` loop; `A`'s entries are broadcast (any strides, so `Xᵀ·δ` reads `X` in place) and
//! `B`'s rows are read in place when they are contiguous. Nothing is packed and nothing is
//! allocated, except that a `B` with strided rows (the `δ·Wᵀ` products of the backward pass)
//! is first transposed into a per-thread scratch buffer that grows once to the largest
//! weight matrix and is then reused. Paths, chosen once per call by runtime feature
//! detection (never `target-cpu=native`):
//!
//! | path     | tile (MR × NR) | needs              |
//! |----------|----------------|--------------------|
//! | AVX-512  | 8 × 16         | avx512f, fma       |
//! | AVX2     | 6 × 8          | avx2, fma          |
//! | portable | 4 × 4          | — (`f64::mul_add`; on x86-64 without FMA that is libm's software `fma`: slow, same bits) |
//!
//! Column tails use masked loads and stores on AVX-512 and smaller tiles elsewhere; row tails
//! use 4-, 2- and 1-row tiles. `k` is blocked by 256 so a tile's panel of `B` stays in L1.
//!
//! What was measured against matrixmultiply (what ndarray used before), OpenBLAS and the
//! AVX2 path, and why this kernel was kept: `docs/kernels.md` (about 0.6–0.85× of
//! matrixmultiply's time per product on the MLP's shapes with AVX-512).

use std::cell::RefCell;

use ndarray::{ArrayView2, ArrayViewMut2};

/// `c ← β·c + a·b` with `β` 0 or 1 (0: `c`'s old contents are not read, NaN included).
///
/// `c` must have contiguous rows (unit column stride; every workspace and gradient view
/// does). `a` may have any strides; `b` any strides (a `b` without contiguous rows is
/// transposed into a per-thread scratch buffer first).
///
/// # Panics
/// On mismatched shapes, a `c` without unit column stride, or `β` other than 0 or 1.
#[track_caller]
pub fn mat_mul(a: &ArrayView2<f64>, b: &ArrayView2<f64>, beta: f64, c: &mut ArrayViewMut2<f64>) {
    mat_mul_with(Kernel::detect(), a, b, beta, c)
}

/// [`mat_mul`] on a given kernel (for benchmarks and tests; all give the same bits).
///
/// # Panics
/// As [`mat_mul`], and if the kernel is not [`Kernel::available`] here.
#[track_caller]
pub fn mat_mul_with(
    kernel: Kernel,
    a: &ArrayView2<f64>,
    b: &ArrayView2<f64>,
    beta: f64,
    c: &mut ArrayViewMut2<f64>,
) {
    assert!(kernel.available(), "{kernel:?} is not supported here");
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "output shape");
    let accumulate = match beta.to_bits() {
        b if b == 0f64.to_bits() => false,
        b if b == 1f64.to_bits() => true,
        _ => panic!("β must be 0 or 1, got {beta}"),
    };
    if m == 0 || n == 0 {
        return;
    }
    assert!(n == 1 || c.strides()[1] == 1, "C needs contiguous rows");
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let rsc = c.strides()[0];
    let cp = c.as_mut_ptr();
    let (rsa, csa) = (a.strides()[0], a.strides()[1]);
    let ap = a.as_ptr();
    if n == 1 || b.strides()[1] == 1 {
        let op = Op {
            m,
            n,
            k,
            a: ap,
            rsa,
            csa,
            b: b.as_ptr(),
            rsb: b.strides()[0],
            c: cp,
            rsc,
            accumulate,
        };
        // SAFETY: the pointers and strides come from live views of the stated shapes, and
        // `c` does not alias `a` or `b` (it is borrowed mutably).
        unsafe { kernel.run(&op) }
    } else {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < k * n {
                s.resize(k * n, 0.0);
            }
            let bt = &mut s[..k * n];
            transpose_into(b, bt);
            let op = Op {
                m,
                n,
                k,
                a: ap,
                rsa,
                csa,
                b: bt.as_ptr(),
                rsb: n as isize,
                c: cp,
                rsc,
                accumulate,
            };
            // SAFETY: as above; `bt` is a k×n row-major copy of `b`.
            unsafe { kernel.run(&op) }
        });
    }
}

/// `out ← b` row-major. In blocks of 8 columns so that the 8 source lines being read are
/// each used for 8 consecutive rows (`b` is typically `Wᵀ`, whose columns are contiguous).
fn transpose_into(b: &ArrayView2<f64>, out: &mut [f64]) {
    let (k, n) = b.dim();
    let (rs, cs) = (b.strides()[0], b.strides()[1]);
    let src = b.as_ptr();
    assert_eq!(out.len(), k * n);
    for j0 in (0..n).step_by(8) {
        let w = 8.min(n - j0);
        for p in 0..k {
            let row = &mut out[p * n + j0..p * n + j0 + w];
            for (q, o) in row.iter_mut().enumerate() {
                // SAFETY: (p, j0 + q) is inside b's shape, so the offset is inside its view.
                *o = unsafe { *src.offset(p as isize * rs + (j0 + q) as isize * cs) };
            }
        }
    }
}

thread_local! {
    /// Row-major copy of a `B` with strided rows; grows to the largest one and stays.
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Steps of `k` per block (see [`Kernel::run`]).
const KC: usize = 256;

/// One product, as raw pointers and element strides.
#[derive(Clone, Copy)]
struct Op {
    m: usize,
    n: usize,
    k: usize,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    c: *mut f64,
    rsc: isize,
    accumulate: bool,
}

/// The instruction-set paths of the kernel; all give the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// 8 × 16 tiles in zmm registers (avx512f + fma).
    Avx512,
    /// 6 × 8 tiles in ymm registers (avx2 + fma).
    Avx2,
    /// 4 × 4 tiles, `f64::mul_add`, whatever the target has.
    Portable,
}

impl Kernel {
    /// The fastest path this machine supports (what [`mat_mul`] uses).
    pub fn detect() -> Kernel {
        [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .find(|k| k.available())
            .unwrap_or(Kernel::Portable)
    }

    /// Whether this machine can run the path (std caches the CPUID answers).
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Kernel::Avx512 => has!("avx512f") && has!("fma"),
                Kernel::Avx2 => has!("avx2") && has!("fma"),
                Kernel::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Portable
        }
    }

    /// # Safety
    /// `op` describes valid memory, `c` not overlapping `a` or `b`; `self` is available.
    unsafe fn run(self, op: &Op) {
        // Blocks of KC steps of k, so a tile's panel of B (KC × 16 doubles, 32 KiB) stays in
        // L1 across the rows of A; each block continues the fma chains the last one left in
        // C, so the bits do not depend on KC.
        let mut p = 0;
        while p < op.k {
            let kc = KC.min(op.k - p);
            // SAFETY: the block is a sub-product of `op` (k range p..p+kc).
            let block = unsafe {
                Op {
                    k: kc,
                    a: op.a.offset(p as isize * op.csa),
                    b: op.b.offset(p as isize * op.rsb),
                    accumulate: op.accumulate || p > 0,
                    ..*op
                }
            };
            // SAFETY: forwarded; availability is the caller's promise.
            unsafe {
                match self {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512 => run_avx512(&block),
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => run_avx2(&block),
                    _ => run_portable(&block),
                }
            }
            p += kc;
        }
    }
}

/// A vector of `LANES` f64 for the tile code: the register type of one instruction set.
///
/// # Safety
/// The methods may only run where the type's instruction set is available; pointers must
/// be valid for `LANES` elements.
trait Lanes: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: f64) -> Self;
    unsafe fn load(p: *const f64) -> Self;
    unsafe fn store(self, p: *mut f64);
    /// `self·b + c`, one rounding per lane.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
}

/// One lane: the portable path and the last columns of the SIMD paths.
impl Lanes for f64 {
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller's promise.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller's promise.
        unsafe { *p = self }
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// Four lanes in a ymm register (AVX2 + FMA).
    #[derive(Clone, Copy)]
    pub(super) struct Y(__m256d);

    impl Lanes for Y {
        const LANES: usize = 4;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> Self {
            Y(_mm256_setzero_pd())
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(x: f64) -> Self {
            Y(_mm256_set1_pd(x))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f64) -> Self {
            // SAFETY: the caller's promise.
            Y(unsafe { _mm256_loadu_pd(p) })
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(self, p: *mut f64) {
            // SAFETY: the caller's promise.
            unsafe { _mm256_storeu_pd(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(self, b: Self, c: Self) -> Self {
            Y(_mm256_fmadd_pd(self.0, b.0, c.0))
        }
    }

    /// The first `W` (1..=7) of eight lanes in a zmm register: masked loads and stores for
    /// the last columns (the other lanes compute zeros that are never stored).
    #[derive(Clone, Copy)]
    pub(super) struct ZPart<const W: usize>(__m512d);

    impl<const W: usize> ZPart<W> {
        const MASK: __mmask8 = ((1u32 << W) - 1) as __mmask8;
    }

    impl<const W: usize> Lanes for ZPart<W> {
        const LANES: usize = W;
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn zero() -> Self {
            ZPart(_mm512_setzero_pd())
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn splat(x: f64) -> Self {
            ZPart(_mm512_set1_pd(x))
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn load(p: *const f64) -> Self {
            // SAFETY: the caller's promise for W elements; masked lanes are not touched.
            ZPart(unsafe { _mm512_maskz_loadu_pd(Self::MASK, p) })
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn store(self, p: *mut f64) {
            // SAFETY: as for load.
            unsafe { _mm512_mask_storeu_pd(p, Self::MASK, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn fma(self, b: Self, c: Self) -> Self {
            ZPart(_mm512_fmadd_pd(self.0, b.0, c.0))
        }
    }

    /// Eight lanes in a zmm register (AVX-512F).
    #[derive(Clone, Copy)]
    pub(super) struct Z(__m512d);

    impl Lanes for Z {
        const LANES: usize = 8;
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn zero() -> Self {
            Z(_mm512_setzero_pd())
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn splat(x: f64) -> Self {
            Z(_mm512_set1_pd(x))
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn load(p: *const f64) -> Self {
            // SAFETY: the caller's promise.
            Z(unsafe { _mm512_loadu_pd(p) })
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn store(self, p: *mut f64) {
            // SAFETY: the caller's promise.
            unsafe { _mm512_storeu_pd(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn fma(self, b: Self, c: Self) -> Self {
            Z(_mm512_fmadd_pd(self.0, b.0, c.0))
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512(op: &Op) {
    use x86::{Z, ZPart};
    let mut j = 0;
    // SAFETY: forwarded; each block lies inside C's columns.
    unsafe {
        while j + 16 <= op.n {
            rows::<Z, 8, 2>(op, j);
            j += 16;
        }
        if j + 8 <= op.n {
            rows::<Z, 8, 1>(op, j);
            j += 8;
        }
        match op.n - j {
            0 => {}
            1 => rows::<ZPart<1>, 8, 1>(op, j),
            2 => rows::<ZPart<2>, 8, 1>(op, j),
            3 => rows::<ZPart<3>, 8, 1>(op, j),
            4 => rows::<ZPart<4>, 8, 1>(op, j),
            5 => rows::<ZPart<5>, 8, 1>(op, j),
            6 => rows::<ZPart<6>, 8, 1>(op, j),
            _ => rows::<ZPart<7>, 8, 1>(op, j),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(op: &Op) {
    use x86::Y;
    let mut j = 0;
    // SAFETY: forwarded; each block lies inside C's columns.
    unsafe {
        while j + 8 <= op.n {
            rows::<Y, 6, 2>(op, j);
            j += 8;
        }
        if j + 4 <= op.n {
            rows::<Y, 6, 1>(op, j);
            j += 4;
        }
        while j < op.n {
            rows::<f64, 6, 1>(op, j);
            j += 1;
        }
    }
}

/// The portable path: scalar tiles of 4 × 4.
///
/// # Safety
/// As [`Kernel::run`].
unsafe fn run_portable(op: &Op) {
    let mut j = 0;
    // SAFETY: forwarded; each block lies inside C's columns.
    unsafe {
        while j + 4 <= op.n {
            rows::<f64, 4, 4>(op, j);
            j += 4;
        }
        while j < op.n {
            rows::<f64, 4, 1>(op, j);
            j += 1;
        }
    }
}

/// All rows of the column block `j..j + NV·LANES`, in tiles of MR rows, then 4, 2, 1 for
/// the tail.
///
/// # Safety
/// As [`Kernel::run`], and the block lies inside C's columns.
#[inline(always)]
unsafe fn rows<V: Lanes, const MR: usize, const NV: usize>(op: &Op, j: usize) {
    let mut i = 0;
    // SAFETY: i + height ≤ m in every arm.
    unsafe {
        while i + MR <= op.m {
            tile::<V, MR, NV>(op, i, j);
            i += MR;
        }
        if MR > 4 && i + 4 <= op.m {
            tile::<V, 4, NV>(op, i, j);
            i += 4;
        }
        if MR > 2 && i + 2 <= op.m {
            tile::<V, 2, NV>(op, i, j);
            i += 2;
        }
        while i < op.m {
            tile::<V, 1, NV>(op, i, j);
            i += 1;
        }
    }
}

/// The `MR × NV·LANES` tile of `C` at `(i, j)`, kept in registers over the whole `k` loop.
///
/// # Safety
/// As [`Kernel::run`], and the tile lies inside `C`.
#[inline(always)]
unsafe fn tile<V: Lanes, const MR: usize, const NV: usize>(op: &Op, i: usize, j: usize) {
    // SAFETY: every offset below stays inside the operands' views (rows i..i+MR of A and C,
    // columns j..j+NV·LANES of B and C, k = 0..K).
    unsafe {
        let mut t = [[V::zero(); NV]; MR];
        let c = op.c.offset(i as isize * op.rsc).add(j);
        if op.accumulate {
            for (r, row) in t.iter_mut().enumerate() {
                let cr = c.offset(r as isize * op.rsc);
                for (q, v) in row.iter_mut().enumerate() {
                    *v = V::load(cr.add(q * V::LANES));
                }
            }
        }
        let mut a = op.a.offset(i as isize * op.rsa);
        let mut b = op.b.add(j);
        for _ in 0..op.k {
            let mut bv = [V::zero(); NV];
            for (q, v) in bv.iter_mut().enumerate() {
                *v = V::load(b.add(q * V::LANES));
            }
            for (r, row) in t.iter_mut().enumerate() {
                let x = V::splat(*a.offset(r as isize * op.rsa));
                for (v, &y) in row.iter_mut().zip(bv.iter()) {
                    *v = x.fma(y, *v);
                }
            }
            a = a.offset(op.csa);
            b = b.offset(op.rsb);
        }
        for (r, row) in t.iter().enumerate() {
            let cr = c.offset(r as isize * op.rsc);
            for (q, v) in row.iter().enumerate() {
                v.store(cr.add(q * V::LANES));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::{Rng, SeedableRng};

    fn random(rng: &mut StdRng, shape: (usize, usize)) -> Array2<f64> {
        Array2::from_shape_fn(shape, |_| rng.random_range(-2.0..2.0))
    }

    /// The defining order: one `mul_add` chain per element, k increasing.
    fn reference_fma(
        a: &ArrayView2<f64>,
        b: &ArrayView2<f64>,
        beta: f64,
        c0: &Array2<f64>,
    ) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.ncols();
        Array2::from_shape_fn((m, n), |(i, j)| {
            let mut s = if beta > 0.5 { c0[[i, j]] } else { 0.0 };
            for p in 0..k {
                s = a[[i, p]].mul_add(b[[p, j]], s);
            }
            s
        })
    }

    /// A plain triple loop without fused operations.
    fn reference_plain(
        a: &ArrayView2<f64>,
        b: &ArrayView2<f64>,
        beta: f64,
        c0: &Array2<f64>,
    ) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.ncols();
        Array2::from_shape_fn((m, n), |(i, j)| {
            let mut s = if beta > 0.5 { c0[[i, j]] } else { 0.0 };
            for p in 0..k {
                s += a[[i, p]] * b[[p, j]];
            }
            s
        })
    }

    /// Shapes of the digits and MNIST models (B = 100) plus awkward small ones for the tails.
    const SHAPES: &[(usize, usize, usize)] = &[
        (100, 64, 100),
        (100, 100, 100),
        (100, 100, 10),
        (64, 100, 100),
        (100, 100, 64),
        (100, 10, 100),
        (100, 784, 100),
        (784, 100, 100),
        (7, 4, 5),
        (1, 1, 1),
        (3, 17, 33),
        (13, 9, 31),
        (9, 0, 3),
    ];

    fn check_all(a: &ArrayView2<f64>, b: &ArrayView2<f64>, c0: &Array2<f64>) {
        let kernels = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];
        for (kernel, beta) in kernels
            .into_iter()
            .filter(|k| k.available())
            .flat_map(|k| [(k, 0.0), (k, 1.0)])
        {
            let mut c = c0.clone();
            mat_mul_with(kernel, a, b, beta, &mut c.view_mut());
            let want = reference_fma(a, b, beta, c0);
            assert!(
                c.iter()
                    .zip(want.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{:?}·{:?} β={beta}: {kernel:?} differs from the fma reference",
                a.dim(),
                b.dim(),
            );
            let plain = reference_plain(a, b, beta, c0);
            let scale = a.iter().map(|v| v.abs()).sum::<f64>().max(1.0);
            for (x, y) in c.iter().zip(plain.iter()) {
                assert!((x - y).abs() <= 1e-13 * scale, "{x} vs {y}");
            }
            // Repeated calls give the same bits.
            let mut again = c0.clone();
            mat_mul_with(kernel, a, b, beta, &mut again.view_mut());
            assert!(
                c.iter()
                    .zip(again.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
        }
    }

    #[test]
    fn products_equal_the_fma_chain_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(3);
        for &(m, k, n) in SHAPES {
            let a = random(&mut rng, (m, k));
            let b = random(&mut rng, (k, n));
            let c0 = random(&mut rng, (m, n));
            // A·B, Aᵀ·B (A stored transposed), A·Bᵀ (B stored transposed, via the scratch).
            check_all(&a.view(), &b.view(), &c0);
            let at = a.t().to_owned();
            check_all(&at.t(), &b.view(), &c0);
            let bt = b.t().to_owned();
            check_all(&a.view(), &bt.t(), &c0);
            // Column-major B: strided rows too.
            let bf = Array2::from_shape_vec((k, n).f(), b.t().iter().copied().collect()).unwrap();
            check_all(&a.view(), &bf.view(), &c0);
        }
    }

    #[test]
    fn c_may_be_a_row_block_of_a_larger_array() {
        let mut rng = StdRng::seed_from_u64(4);
        let a = random(&mut rng, (5, 6));
        let b = random(&mut rng, (6, 7));
        let mut big = random(&mut rng, (9, 7));
        let c0 = big.slice(ndarray::s![..5, ..]).to_owned();
        let rest = big.slice(ndarray::s![5.., ..]).to_owned();
        mat_mul(
            &a.view(),
            &b.view(),
            1.0,
            &mut big.slice_mut(ndarray::s![..5, ..]),
        );
        assert_eq!(
            big.slice(ndarray::s![..5, ..]),
            reference_fma(&a.view(), &b.view(), 1.0, &c0)
        );
        assert_eq!(big.slice(ndarray::s![5.., ..]), rest);
    }

    #[test]
    fn beta_zero_ignores_nan_in_c() {
        let a = Array2::from_elem((3, 2), 1.0);
        let b = Array2::from_elem((2, 4), 2.0);
        let mut c = Array2::from_elem((3, 4), f64::NAN);
        mat_mul(&a.view(), &b.view(), 0.0, &mut c.view_mut());
        assert!(c.iter().all(|&v| v.to_bits() == 4f64.to_bits()));
    }
}
