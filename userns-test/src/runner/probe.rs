//! Probe: the verdicts on the abilities the selected tests need, once,
//! in parallel, before any test runs; and the host facts beside the run,
//! where only the summary needs them.

use std::time::{Duration, Instant};

use libtest_mimic::Arguments;

use crate::Ability;
use crate::gate;
use crate::report::Role;

/// The verdicts are cached per process; asking from one thread per
/// ability probes them concurrently (the first on this thread).
///
/// A run on one thread runs its tests on this one, and a test there may
/// need the process to be single-threaded (`unshare` of a user namespace
/// fails with EINVAL otherwise). `join` returns once a thread has cleared
/// its tid, a little before the kernel takes it out of the thread group
/// (a fifth of the runs of the fixture suite still counted a probe thread
/// at its first test), so such a run also waits for the probe threads to
/// be gone, for at most 100 ms.
pub(super) fn probe_in_parallel(
    abilities: impl Iterator<Item = Ability>,
    one_thread: impl Fn() -> bool,
) {
    let abilities: Vec<Ability> = abilities.collect();
    let Some((&first, others)) = abilities.split_first() else {
        return;
    };
    if others.is_empty() {
        gate::probe(first);
        return;
    }
    let before = if one_thread() {
        crate::facts::thread_count()
    } else {
        None
    };
    std::thread::scope(|s| {
        // A thread that cannot be created (RLIMIT_NPROC reached) is not an
        // error: that verdict is probed on first use instead.
        for &a in others {
            let _ = std::thread::Builder::new().spawn_scoped(s, move || {
                gate::probe(a);
            });
        }
        gate::probe(first);
    });
    if let Some(before) = before {
        let deadline = Instant::now() + Duration::from_millis(100);
        while crate::facts::thread_count().is_some_and(|n| n > before) && Instant::now() < deadline
        {
            std::thread::yield_now();
        }
    }
}

/// Whether libtest-mimic will run tests on this thread, counting its
/// threads as it does (a listing runs none).
pub(super) fn runs_on_one_thread(args: &Arguments) -> bool {
    !args.list
        && args
            .test_threads
            .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
            .unwrap_or(1)
            == 1
}

/// Starts reading the host facts, which only the summary and the reports
/// need (no probe does, unless it fails for a reason they explain), on a
/// thread that runs beside the tests, when the tests run on a thread pool
/// anyway. In a run on one thread (see [`probe_in_parallel`]) the summary
/// reads them when it needs them.
pub(super) fn read_facts_during_run(args: &Arguments, one_thread: impl Fn() -> bool) {
    // Only a complete run prints the summary: under nextest a passing
    // test's process prints none, and a listing runs nothing to overlap.
    if Role::current(args) != Some(Role::Complete) || one_thread() {
        return;
    }
    // Dropping the handle detaches the thread; `HostFacts::get` waits for
    // it if need be. One that cannot be created changes nothing.
    let _ = std::thread::Builder::new().spawn(|| {
        crate::HostFacts::get();
    });
}
