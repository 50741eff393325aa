//! Probe: the verdicts on the abilities the selected tests need, once,
//! in parallel, before any test runs; and the host facts beside the run,
//! where only the summary needs them.

use libtest_mimic::Arguments;

use crate::Ability;
use crate::gate;
use crate::record::Role;

/// The verdicts are cached per process; asking from one thread per
/// ability probes them concurrently (the first on this thread).
pub(super) fn probe_in_parallel(abilities: impl Iterator<Item = Ability>) {
    // Those found already (before `main`, by a test entered in place)
    // need no thread.
    let abilities: Vec<Ability> = abilities.filter(|&a| gate::probed(a).is_none()).collect();
    let Some((&first, others)) = abilities.split_first() else {
        return;
    };
    if others.is_empty() {
        gate::probe(first);
        return;
    }
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
}

/// Starts reading the host facts, which only the summary and the reports
/// need (no probe does, unless it fails for a reason they explain), on a
/// thread that runs beside the tests, when they run several at a time. A
/// run of one test at a time (`--test-threads=1`) reads them when the
/// summary asks: what its tests do to the process (a limit set, a file
/// system left) is then seen by a later probe, as in a plain program.
pub(super) fn read_facts_during_run(args: &Arguments) {
    // Only a complete run prints the summary: under nextest a passing
    // test's process prints none, and a listing runs nothing to overlap.
    if Role::current(args) != Some(Role::Complete) || one_at_a_time(args) {
        return;
    }
    // Dropping the handle detaches the thread; `HostFacts::get` waits for
    // it if need be. One that cannot be created changes nothing.
    let _ = std::thread::Builder::new().spawn(|| {
        crate::HostFacts::get();
    });
}

/// Whether libtest-mimic runs one test at a time, counting its threads as
/// it does.
fn one_at_a_time(args: &Arguments) -> bool {
    args.test_threads
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1)
        == 1
}
