//! # The pool's synchronisation primitives: `std`'s, or loom's under `--cfg loom`
//!
//! The pool's claim protocol is model-checked with [loom](https://docs.rs/loom), which
//! runs a test under every interleaving of its threads (up to a bound on preemptions) and
//! every result the memory model allows each atomic load, and reports data races on the
//! cells it tracks, deadlocks and failed assertions. Loom only sees what goes through its
//! own types, so the pool takes its atomics, locks, condition variable, `Arc`, threads,
//! thread-local and spin hint from here: loom's when built with `RUSTFLAGS="--cfg loom"`,
//! `std`'s otherwise, re-exported as they are (no wrapper: the normal build compiles the
//! same code as if it named `std` directly).
//!
//! Time is the one thing replaced rather than swapped: loom explores schedules, not
//! durations, and a branch on the clock would make its executions irreproducible.
//! [`Idle`] is an idle worker's wait before it sleeps; under loom it yields once (so the
//! model covers both a worker that finds the next round awake and one that must be
//! woken) and then sleeps.

#[cfg(not(loom))]
pub(crate) use std::{
    hint,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread, thread_local as thread_local_const,
};

#[cfg(loom)]
pub(crate) use loom::{
    hint,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
};

/// `thread_local!` with a `const { … }` initialiser, as `std` takes it (no lazy-init check
/// on access), passed to loom's, which takes a plain expression.
#[cfg(loom)]
macro_rules! thread_local_const {
    ($(#[$attr:meta])* static $name:ident: $t:ty = const { $init:expr };) => {
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
    };
}
#[cfg(loom)]
pub(crate) use thread_local_const;

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

/// An idle worker's wait for work: spin a little, then yield its core until `stay_awake`
/// has passed since the wait began, then give up (the caller goes to sleep).
pub(crate) struct Idle {
    #[cfg(not(loom))]
    start: Instant,
    #[cfg(not(loom))]
    stay_awake: Duration,
    spins: u32,
}

impl Idle {
    /// A wait starting now.
    #[inline]
    pub(crate) fn new(stay_awake: Duration) -> Self {
        #[cfg(loom)]
        let _ = stay_awake;
        Idle {
            #[cfg(not(loom))]
            start: Instant::now(),
            #[cfg(not(loom))]
            stay_awake,
            spins: 0,
        }
    }

    /// Wait a moment more (`true`), or `false`: time to sleep.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn keep_waiting(&mut self) -> bool {
        self.spins += 1;
        if self.spins < 100 {
            std::hint::spin_loop();
            true
        } else if self.start.elapsed() < self.stay_awake {
            std::thread::yield_now();
            true
        } else {
            false
        }
    }

    /// Wait a moment more (`true`), or `false`: time to sleep. Under loom: one yield.
    #[cfg(loom)]
    pub(crate) fn keep_waiting(&mut self) -> bool {
        self.spins += 1;
        if self.spins < 2 {
            loom::thread::yield_now();
            true
        } else {
            false
        }
    }
}
