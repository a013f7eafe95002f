//! # A fork-join pool for rounds of a few heavy items
//!
//! [`Pool::for_each`] runs `f` on every item of a slice, the calling thread and `n − 1`
//! workers claiming items one at a time, and returns when all are done. It is built for
//! what [`super::Threads`] runs on it: the model's parts of a batch
//! ([`crate::model::parallel`]) and the exact optimizers' groups of buffer segments
//! ([`super::segments`]), rounds of 1–16 items of a fraction of a millisecond each,
//! separated by sequential work of similar length. Two choices follow from measurements
//! on a 2-vCPU KVM machine:
//!
//! - the caller computes items too (it would only wait otherwise);
//! - between rounds a worker stays awake for [`STAY_AWAKE`], yielding its core to anything
//!   else that wants it, before it sleeps on a condition variable. A sleeping worker took
//!   0.1 ms or more to wake (a halted vCPU), so with rayon, whose idle workers sleep after
//!   a few dozen yields, the second thread started late and computed a third of the parts
//!   instead of half.
//!
//! Safety: a round's job is a borrowed closure, so workers reach it through a raw pointer.
//! The pointer is published before the round's items can be claimed and the caller does
//! not return until every claimed item has finished (panics included: each item runs under
//! `catch_unwind`, and the first panic is resumed on the caller afterwards). Items are
//! claimed by a compare-and-swap on one word holding the round number and the count of
//! unclaimed items: each index is handed out once, and never for a finished round, because
//! a round ends only when its count has reached 0 (the round bits, which wrap after 2^32
//! rounds, are not what guarantees it). Callers are serialised by a mutex, and a round's
//! panic is taken before the next caller may start. A call from inside an item runs its
//! items inline on that thread (a nested round would wait for itself).
//!
//! The protocol is model-checked with loom (the `loom_model` tests, built with
//! `RUSTFLAGS="--cfg loom"`): the pool's primitives come from [`super::sync`], which swaps
//! in loom's under that flag and leaves the normal build on `std`'s.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::sync::thread::{self, JoinHandle};
use super::sync::{
    Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Idle, Mutex, MutexGuard, hint,
    thread_local_const,
};

/// How long an idle worker waits for the next round, yielding, before it sleeps: longer
/// than the sequential step between two rounds of a Fashion-MNIST hypergradient (~1.5 ms).
pub const STAY_AWAKE: Duration = Duration::from_millis(3);

thread_local_const! {
    /// True while this thread runs an item of some round (see [`Pool::for_each`]).
    static IN_ITEM: Cell<bool> = const { Cell::new(false) };
}

/// Low half of [`Shared::claim`]: items of the current round not yet claimed.
const LEFT: u64 = 0xFFFF_FFFF;

/// A round's job: `f(index)` for each claimed index.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: the closure behind the pointer is `Sync`; the pointer is only dereferenced while
// its round has unfinished items (see the module documentation).
unsafe impl Send for Job {}

type Panic = Box<dyn Any + Send + 'static>;

struct Shared {
    /// `(round << 32) | unclaimed items`.
    claim: AtomicU64,
    /// The current round's job; `None` between rounds.
    job: Mutex<Option<Job>>,
    /// Items of the current round finished (or panicked).
    done: AtomicUsize,
    /// The first panic of the current round.
    panic: Mutex<Option<Panic>>,
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    quit: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Items run under catch_unwind, so no lock is held across a panic; recover regardless.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn has_work(&self) -> bool {
        self.claim.load(Ordering::SeqCst) & LEFT != 0
    }

    /// Claim and run items of the current round until none is left unclaimed.
    fn work(&self) {
        loop {
            let c = self.claim.load(Ordering::Acquire);
            if c & LEFT == 0 {
                return;
            }
            if self
                .claim
                .compare_exchange_weak(c, c - 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let index = ((c & LEFT) - 1) as usize;
            let job = lock(&self.job).expect("a job while items are unclaimed");
            IN_ITEM.with(|f| f.set(true));
            // SAFETY: our item of this round is unfinished, so the caller is still waiting
            // inside `for_each` and the closure is alive.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(index) }));
            IN_ITEM.with(|f| f.set(false));
            if let Err(p) = result {
                let mut slot = lock(&self.panic);
                if slot.is_none() {
                    *slot = Some(p);
                } else {
                    // Only the first panic is resumed. Dropping another payload could itself
                    // panic and skip the `done` count below, leaving the caller waiting.
                    std::mem::forget(p);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    fn worker(&self) {
        loop {
            let mut idle = Idle::new(STAY_AWAKE);
            while !self.has_work() {
                if self.quit.load(Ordering::SeqCst) {
                    return;
                }
                if !idle.keep_waiting() {
                    self.sleep_until_woken();
                    break;
                }
            }
            self.work();
        }
    }

    fn sleep_until_woken(&self) {
        let guard = lock(&self.sleep);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // Checked after announcing ourselves: a round published from now on notifies us.
        if !self.has_work() && !self.quit.load(Ordering::SeqCst) {
            drop(
                self.wake
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    fn wake_all(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&self.sleep);
            self.wake.notify_all();
        }
    }
}

/// `n − 1` worker threads and the caller.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serialises callers (clones of a problem may share a pool); holds the round number.
    round: Mutex<u64>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} threads)", self.workers.len() + 1)
    }
}

/// A pointer to a slice's items, shareable because each index is handed out once.
struct Items<T>(*mut T);

// Not derived: the derive would ask for `T: Copy`.
impl<T> Clone for Items<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Items<T> {}

// SAFETY: each index is claimed by exactly one thread, so no item is shared.
unsafe impl<T: Send> Sync for Items<T> {}
unsafe impl<T: Send> Send for Items<T> {}

impl<T> Items<T> {
    /// SAFETY: `i` in bounds and claimed by the caller alone.
    unsafe fn get(self, i: usize) -> *mut T {
        unsafe { self.0.add(i) }
    }
}

impl Pool {
    /// The caller and `n − 1` workers.
    ///
    /// # Errors
    /// If the system refuses to start a thread.
    pub fn new(n: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            claim: AtomicU64::new(0),
            job: Mutex::new(None),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            quit: AtomicBool::new(false),
        });
        let mut pool = Pool {
            shared,
            workers: Vec::with_capacity(n.saturating_sub(1)),
            round: Mutex::new(0),
        };
        for i in 1..n {
            let s = Arc::clone(&pool.shared);
            let handle = thread::Builder::new()
                .name(format!("revgrad-{i}"))
                .spawn(move || s.worker())?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// `f` on every item, each on one thread (the caller's or a worker's); returns when all
    /// are done. A panic in `f` is resumed here after every item has finished. Called from
    /// inside an item (a nested round, which would wait for itself), the items run in a
    /// plain loop on the calling thread instead.
    pub fn for_each<T: Send>(&self, items: &mut [T], f: impl Fn(&mut T) + Sync) {
        let n = items.len();
        assert!((n as u64) < LEFT, "too many items");
        if n == 0 {
            return;
        }
        if IN_ITEM.with(Cell::get) {
            items.iter_mut().for_each(f);
            return;
        }
        let base = Items(items.as_mut_ptr());
        // SAFETY: `i < n`, and each index is claimed once.
        let job = move |i: usize| f(unsafe { &mut *base.get(i) });
        let job: &(dyn Fn(usize) + Sync) = &job;
        // SAFETY: only the lifetime is erased; the pointer is not used after this call
        // returns (every item has finished by then, and no index is left to claim).
        let job: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(job) };
        let s = &*self.shared;
        let mut round = lock(&self.round);
        *round += 1;
        *lock(&s.job) = Some(Job(job));
        s.done.store(0, Ordering::SeqCst);
        s.claim.store((*round << 32) | n as u64, Ordering::SeqCst);
        s.wake_all();
        s.work();
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < n {
            spins += 1;
            if spins < 1000 {
                hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        *lock(&s.job) = None;
        // This round's panic, taken while the round is still ours: another caller's round
        // may start as soon as `round` is dropped.
        let panic = lock(&s.panic).take();
        drop(round);
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        {
            let _guard = lock(&self.shared.sleep);
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_per_round() {
        let pool = Pool::new(3).unwrap();
        let mut items = vec![0u64; 13];
        for round in 1..=2000u64 {
            pool.for_each(&mut items, |x| *x += round);
        }
        assert!(items.iter().all(|&x| x == 2000 * 2001 / 2));
        // Rounds of one item, and none.
        let mut one = [0];
        pool.for_each(&mut one, |x| *x += 1);
        pool.for_each(&mut [] as &mut [u8], |_| unreachable!());
        assert_eq!(one, [1]);
    }

    #[test]
    fn a_worker_asleep_is_woken() {
        let pool = Pool::new(2).unwrap();
        std::thread::sleep(STAY_AWAKE * 3);
        let mut items = vec![0; 8];
        pool.for_each(&mut items, |x| *x = 1);
        assert_eq!(items, vec![1; 8]);
    }

    #[test]
    fn a_panic_in_an_item_reaches_the_caller_and_the_pool_goes_on() {
        let pool = Pool::new(2).unwrap();
        let mut items: Vec<usize> = (0..6).collect();
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.for_each(&mut items, |x| assert!(*x != 3, "item three"));
        }));
        let msg = r.unwrap_err();
        let text = msg
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| msg.downcast_ref::<String>().cloned());
        assert_eq!(text.as_deref(), Some("item three"));
        pool.for_each(&mut items, |x| *x += 1);
        assert_eq!(items, (1..7).collect::<Vec<_>>());
    }

    #[test]
    fn a_nested_round_runs_inline_instead_of_waiting_for_itself() {
        let pool = Pool::new(2).unwrap();
        let mut outer = vec![vec![0u32; 5]; 4];
        pool.for_each(&mut outer, |inner| pool.for_each(inner, |x| *x += 1));
        assert!(outer.iter().flatten().all(|&x| x == 1));
    }

    #[test]
    fn concurrent_callers_each_get_their_own_results_and_panics() {
        let pool = Arc::new(Pool::new(2).unwrap());
        let callers: Vec<_> = (0..3u64)
            .map(|c| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    let mut items = vec![0u64; 7];
                    for round in 0..300u64 {
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            pool.for_each(&mut items, |x| {
                                *x += c;
                                assert!(c != 2 || round % 50 != 7, "caller 2");
                            });
                        }));
                        // Only caller 2 panics, and exactly on its own rounds 7, 57, ….
                        assert_eq!(
                            r.is_err(),
                            c == 2 && round % 50 == 7,
                            "caller {c} round {round}"
                        );
                    }
                    items
                })
            })
            .collect();
        for (c, h) in callers.into_iter().enumerate() {
            assert!(h.join().unwrap().iter().all(|&x| x == 300 * c as u64));
        }
    }
}

/// The claim protocol under loom: every interleaving of the caller and one worker (up to
/// a preemption bound) over a couple of rounds. The items are loom cells, so an item run
/// twice at once, or read by the caller before its worker's write happened-before the end
/// of the round, is reported as a data race, not just as a wrong count.
///
/// `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::cell::UnsafeCell;

    /// Preemptions per execution unless `LOOM_MAX_PREEMPTIONS` says otherwise: enough for
    /// a claim to be interrupted between its load and its compare-and-swap, and a round's
    /// end between its `done` check and the caller's reads, with a full search in seconds.
    const PREEMPTIONS: usize = 3;

    fn check(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(PREEMPTIONS);
        }
        builder.check(f);
    }

    /// An item: its index, and how many times it has run (a cell loom tracks).
    type Item = (usize, UnsafeCell<usize>);

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|i| (i, UnsafeCell::new(0))).collect()
    }

    fn runs(items: &[Item]) -> Vec<usize> {
        // SAFETY: read on the caller between rounds; loom checks that every write
        // happened-before this read.
        items
            .iter()
            .map(|(_, c)| c.with(|p| unsafe { *p }))
            .collect()
    }

    fn bump((_, count): &mut Item) {
        // SAFETY: the pool hands this item to one thread; loom checks it.
        count.with_mut(|p| unsafe { *p += 1 });
    }

    #[test]
    fn loom_every_item_runs_once_per_round_and_a_round_ends_after_all() {
        check(|| {
            let pool = Pool::new(2).unwrap();
            let mut items = items(3);
            pool.for_each(&mut items, bump);
            assert_eq!(runs(&items), [1, 1, 1]);
            pool.for_each(&mut items[..2], bump);
            assert_eq!(runs(&items), [2, 2, 1]);
        });
    }

    /// The payload of the test's own panics, which the panic hook keeps quiet.
    struct ItemPanic;

    fn quiet_item_panics() {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !info.payload().is::<ItemPanic>() {
                    default(info);
                }
            }));
        });
    }

    #[test]
    fn loom_a_panic_reaches_the_caller_after_the_round_and_the_pool_goes_on() {
        quiet_item_panics();
        check(|| {
            let pool = Pool::new(2).unwrap();
            let mut items = items(2);
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.for_each(&mut items, |item| {
                    bump(item);
                    if item.0 == 1 {
                        std::panic::panic_any(ItemPanic);
                    }
                });
            }));
            assert!(r.unwrap_err().is::<ItemPanic>());
            assert_eq!(runs(&items), [1, 1]);
            pool.for_each(&mut items, bump);
            assert_eq!(runs(&items), [2, 2]);
        });
    }
}
