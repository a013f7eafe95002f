//! The per-step hot loops allocate nothing: with a counting global allocator, a hypergradient
//! (exact forward + exact reversal with the adjoint) makes the same number of allocations for
//! T = 10 and T = 2000 steps, with a progress bar's step counter ticked at every step. The
//! objective is a quadratic with a closed-form gradient and Hessian, so only revgrad's own
//! code runs. (The MLP's matrix products allocate nothing per call either: `model::linalg`
//! packs nothing, and its one scratch buffer, for products with a transposed right factor,
//! is per thread and grows only to the largest weight.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use revgrad::StepProgress;
use revgrad::hyper::OptimizerId;
use revgrad::hyper::{Block, Hypers, Kind, Per};
use revgrad::hypergrad::Setup;
use revgrad::hypergrad::reverse::hypergradient;
use revgrad::model::{Layout as Net, Quadratic, Threads};
use revgrad::optim::{FloatMomentum, FloatOptimizer, FloatState, Optimizer, Rmsprop};

struct Counting;

// Per thread: the test harness runs tests (and its own bookkeeping) on other threads.
thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the slot may be gone while a thread is being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The library's diagonal quadratic (ω = 1) with curvatures 0.5–1.1.
fn quadratic(n: usize) -> Quadratic {
    Quadratic {
        a: (0..n).map(|i| 0.5 + (i % 7) as f64 * 0.1).collect(),
        c: (0..n).map(|i| ((i * 37) % 11) as f64 * 0.2 - 1.0).collect(),
        omega: 1.0,
    }
}

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A layout of 2 layers (4 arrays) with `n` parameters in all: [1, 9, n/10 − 1]… kept
/// simple: sizes [3, 5, 4] give 3·5 + 5 + 5·4 + 4 = 44 parameters.
fn net() -> Net {
    Net::new(&[3, 5, 4])
}

/// Blocks with schedules and per-array shapes, so the per-step plan runs too.
fn hypers(l: &Net, steps: usize) -> Hypers {
    Hypers {
        blocks: vec![
            Block::filled(Kind::Alpha, Per::Array, 4.min(steps), l, 0.3),
            Block::filled(Kind::Gamma, Per::Layer, steps, l, 0.9),
            Block::filled(Kind::L2, Per::Weight, 1, l, 0.01),
            Block::filled(Kind::InitScale, Per::Layer, 1, l, 1.0),
        ],
    }
}

/// RMSprop's blocks, with per-step γ and ρ schedules and per-array α.
fn rmsprop_hypers(l: &Net, steps: usize) -> Hypers {
    Hypers {
        blocks: vec![
            Block::filled(Kind::Alpha, Per::Array, 4.min(steps), l, 0.001),
            Block::filled(Kind::Gamma, Per::Layer, steps, l, 0.5),
            Block::filled(Kind::Rho, Per::Array, steps, l, 0.99),
            // A large ε: on a quadratic √s falls with g near the minimum, and with a tiny ε
            // the step α·g/√s stays large, so 2,000 steps become chaotic and their
            // hypergradient overflows f64.
            Block::filled(Kind::Eps, Per::All, 1, l, 0.1),
            Block::filled(Kind::L2, Per::Weight, 1, l, 0.01),
            Block::filled(Kind::InitScale, Per::Layer, 1, l, 1.0),
        ],
    }
}

/// Adam's blocks, with a per-step β₁ schedule and per-array α.
fn adam_hypers(l: &Net, steps: usize) -> Hypers {
    Hypers {
        blocks: vec![
            Block::filled(Kind::Alpha, Per::Array, 4.min(steps), l, 0.01),
            Block::filled(Kind::Beta1, Per::Layer, steps, l, 0.9),
            Block::filled(Kind::Beta2, Per::All, 1, l, 0.999),
            Block::filled(Kind::Eps, Per::All, 1, l, 1e-8),
            Block::filled(Kind::L2, Per::Weight, 1, l, 0.01),
            Block::filled(Kind::InitScale, Per::Layer, 1, l, 1.0),
        ],
    }
}

#[test]
fn hypergradient_allocations_do_not_grow_with_the_horizon() {
    for (optimizer, blocks) in [
        (OptimizerId::Momentum, hypers as fn(&Net, usize) -> Hypers),
        (OptimizerId::Adam, adam_hypers),
        (OptimizerId::Rmsprop, rmsprop_hypers),
    ] {
        allocations_do_not_grow(optimizer, blocks);
    }
}

fn allocations_do_not_grow(optimizer: OptimizerId, blocks: fn(&Net, usize) -> Hypers) {
    let l = net();
    let n = l.len();
    let eps: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let count = |steps: usize| {
        let mut q = quadratic(n);
        // A per-step schedule (K = T) has T entries; build it outside the counted region.
        let h = blocks(&l, steps);
        let threads = Threads::one();
        let progress = StepProgress::new();
        let setup = Setup {
            optimizer,
            hypers: &h,
            eps: &eps,
            layout: &l,
            steps,
            threads: &threads,
            progress: Some(&progress),
        };
        allocations_during(|| {
            let r = hypergradient(&mut q, setup).unwrap();
            assert!(r.exact, "reversal must be exact");
        })
    };
    count(5); // warm-up of anything lazily initialised
    // Both horizons put words on the buffer's stacks, which are reserved once to the run's
    // bound (a run too short to emit a word reserves nothing).
    let short = count(300);
    let long = count(2000);
    assert_eq!(
        short, long,
        "allocations grew with T: {short} at T=300, {long} at T=2000"
    );
}

#[test]
fn float_steps_do_not_allocate() {
    let l = net();
    let n = l.len();
    let mut q = quadratic(n);
    let mut s = FloatState::start(&vec![0.5; n], 1);
    let h = hypers(&l, 500);
    let mut opt = FloatMomentum::new(&h, &l, 500);
    let allocs = allocations_during(|| {
        for t in 0..500 {
            opt.step(&mut q, t, &mut s).unwrap();
        }
    });
    assert_eq!(allocs, 0);
    let mut s = FloatState::start(&vec![0.5; n], 2);
    let h = rmsprop_hypers(&l, 500);
    let mut opt = Rmsprop::float(&h, &l, 500, false);
    let allocs = allocations_during(|| {
        for t in 0..500 {
            opt.step(&mut q, t, &mut s).unwrap();
        }
    });
    assert_eq!(allocs, 0);
}
