//! The runner of `harness = false` targets (`userns_test::main!()`).
//!
//! 1. Collect every annotated test of the binary ([`crate::registry`]).
//! 2. Select by the libtest arguments (filters, `--exact`, `--skip`).
//! 3. Probe the union of the abilities the selected tests need, once, in
//!    parallel, before any test runs (`--exact NAME` probes only what NAME
//!    needs, which is what nextest's one-process-per-test runs ask for).
//! 4. Decide per test: run, skip (reported as *ignored, with its reason*),
//!    or fail (`USERNS_TEST_REQUIRE`).
//! 5. Run with `libtest-mimic`, recording each outcome (its `run` returns
//!    counts only, and its JSON format drops ignore reasons).
//! 6. Print the host, the ability matrix and the skips by reason on stderr,
//!    after libtest's own summary, which stays the last line on stdout.
//!
//! Unmet tests are flagged ignored when listing (so `--list --ignored`
//! shows them and `cargo nextest run` reports them as SKIP, never PASS)
//! and under `--ignored`/`--include-ignored` (which then run them, saying
//! so). In a plain run they are not flagged but return
//! `Completion::ignored_with(reason)`, so the pretty output shows
//! `ignored (needs net: ...)`: libtest-mimic prints no reason for a test it
//! did not call.

mod summary;

use std::cell::LazyCell;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::Ability;
use crate::gate;
use crate::policy::{Decision, Settings, Unmet};
pub use crate::record::{RunRecord, TestOutcome, TestRecord};
use crate::registry::{TestCase, collected};
use crate::report::session::{Planned, Recorder, Session, record_verdicts};
use crate::report::{Destinations, ReportError, Role};

pub use summary::write_summary;

/// What the runner decided for one test before the run.
enum Plan {
    Run,
    Skip(Unmet),
    Fail(String),
}

/// The `main` of a `harness = false` target, named in reports after its
/// executable (or nextest's binary id); [`main!`](crate::main) names it
/// `package::target` instead.
pub fn run_main() -> ExitCode {
    run_main_named(&crate::report::binary_name())
}

/// The `main` of a `harness = false` target named `binary` in reports.
pub fn run_main_named(binary: &str) -> ExitCode {
    let args = Arguments::from_args();
    let role = Role::current(&args);
    // nextest runs each test in a process of its own (`--exact NAME`) and
    // reads neither the filtered-out count nor the other tests' records:
    // keep only that test, so a test's process does not cost more (sort,
    // plans, trials, records) for every test of its binary. (libtest's
    // line then counts 0 filtered out.)
    let one_test = role == Some(Role::NextestTest);
    let mut cases: Vec<&'static TestCase> = collected()
        .filter(|c| !one_test || is_selected(&args, c))
        .collect();
    // Names are unique, so an unstable sort gives the one name order.
    cases.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    let destinations = Destinations::from_env();
    let mut errors: Vec<ReportError> = destinations.problems.clone();
    let mut session = match role.and_then(|r| Session::begin(r, binary, &destinations)) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    };
    let (conclusion, record) = run_recorded(&args, &cases, session.as_mut());
    // Under nextest each test has a process of its own, whose output
    // nextest shows only when the test fails: the summary of one passing
    // test is noise there, and reading the host facts for it costs every
    // process. The listing decided the skips.
    let quiet = one_test && !conclusion.has_failed();
    if !args.list && !quiet {
        let color = summary::use_color(&args);
        let mut err = std::io::stderr().lock();
        let _ = write_summary(&mut err, &record, color);
    }
    if let Some(session) = session {
        errors.extend(session.end(&record, &record_verdicts(&record)));
    }
    let errors = crate::report::said_once(errors);
    for e in &errors {
        eprintln!("userns-test: {e}");
    }
    match (errors.is_empty(), conclusion.has_failed()) {
        // A report that could not be written fails a run that passed.
        (false, false) => ExitCode::from(1),
        _ => conclusion.exit_code(),
    }
}

/// Runs `cases` under `args`: the whole flow, without the final summary
/// and without reports.
pub fn run(
    args: &Arguments,
    cases: &[&'static TestCase],
) -> (libtest_mimic::Conclusion, RunRecord) {
    run_recorded(args, cases, None)
}

/// [`run`], recording each test's start and end in `session`'s ledger.
fn run_recorded(
    args: &Arguments,
    cases: &[&'static TestCase],
    session: Option<&mut Session>,
) -> (libtest_mimic::Conclusion, RunRecord) {
    let settings = gate::settings();
    let selected: Vec<bool> = cases.iter().map(|c| is_selected(args, c)).collect();
    let denied = settings.map(|s| s.deny.clone()).unwrap_or_default();
    let needed: BTreeSet<Ability> = cases
        .iter()
        .zip(&selected)
        .filter(|(_, sel)| **sel)
        .flat_map(|(c, _)| c.requires.iter().copied())
        .collect();
    // Asked at most once, and only where it matters (a nextest test
    // process probing one ability never asks).
    let one_thread = LazyCell::new(|| runs_on_one_thread(args));
    probe_in_parallel(
        needed.iter().copied().filter(|a| !denied.contains(a)),
        || *one_thread,
    );

    // Only selected tests are planned: planning asks for verdicts, and a
    // test the filters exclude must not cost a probe.
    let plans: Vec<Plan> = cases
        .iter()
        .zip(&selected)
        .map(|(c, &sel)| if sel { plan(c, settings) } else { Plan::Run })
        .collect();
    // At list time, what each selected test will do, for reports: nextest
    // never starts a process for a test listed as ignored.
    let listed: Vec<Option<TestOutcome>> = plans
        .iter()
        .map(|p| match p {
            Plan::Skip(unmet) if args.list => Some(TestOutcome::Skipped {
                unmet: unmet.clone(),
            }),
            _ if args.list => Some(TestOutcome::Pending),
            _ => None,
        })
        .collect();
    let recorder = match session {
        Some(session) => {
            let planned: Vec<Planned<'_>> = plans
                .iter()
                .zip(&selected)
                .map(|(p, &sel)| match (p, sel) {
                    (_, false) => Planned::Out,
                    (Plan::Run, true) => Planned::Run,
                    (Plan::Skip(unmet), true) => Planned::Skip(unmet),
                    (Plan::Fail(_), true) => Planned::Fail,
                })
                .collect();
            let verdicts = planned_verdicts(&needed, &denied);
            session.plan(
                cases,
                &planned,
                &verdicts,
                settings.err().map(ToString::to_string).as_deref(),
            )
        }
        None => Recorder::default(),
    };
    // One slot per case, filled by its trial: no name lookups afterwards.
    let slots: Arc<[Mutex<Option<TestRecord>>]> = cases.iter().map(|_| Mutex::new(None)).collect();
    let flag_unmet = args.list || args.ignored || args.include_ignored;
    let run_unmet = args.ignored || args.include_ignored;
    let trials: Vec<Trial> = cases
        .iter()
        .zip(plans)
        .enumerate()
        .map(|(i, (case, plan))| {
            let slot = Slot(slots.clone(), i, recorder.clone());
            trial(case, plan, flag_unmet, run_unmet, slot)
        })
        .collect();
    read_facts_during_run(args, || *one_thread);
    let conclusion = libtest_mimic::run(args, trials);

    // One record per case, in the cases' order: the run's own record, or,
    // for a test the run never called, filtered out or flagged ignored and
    // not asked for.
    let tests: Vec<TestRecord> = cases
        .iter()
        .zip(&selected)
        .zip(listed)
        .zip(slots.iter())
        .map(|(((case, sel), listed), slot)| {
            let called = slot.lock().ok().and_then(|mut r| r.take());
            called.unwrap_or_else(|| {
                let outcome = match (sel, case.ignore, listed) {
                    (true, Some(reason), _) => TestOutcome::Ignored {
                        reason: reason.into(),
                    },
                    (true, None, Some(listed)) => listed,
                    _ => TestOutcome::FilteredOut,
                };
                record(case, outcome, Duration::ZERO)
            })
        })
        .collect();
    let verdicts = needed
        .iter()
        .filter(|a| !denied.contains(a))
        .map(|&a| gate::probe(a).clone())
        .collect();
    let record = RunRecord {
        tests,
        verdicts,
        denied: needed.intersection(&denied).copied().collect(),
        config_error: settings.err().map(ToString::to_string),
    };
    (conclusion, record)
}

/// Whether the command line selects `case` (by name: filters, `--exact`,
/// `--skip`), judged as if it were flagged ignored, so that `--ignored`
/// does not hide tests whose flag depends on a probe not yet run.
fn is_selected(args: &Arguments, case: &TestCase) -> bool {
    // No name filter: every test is in (a trial flagged ignored is kept
    // under `--ignored` too), and building one per test to ask costs.
    if args.filter.is_none() && args.skip.is_empty() {
        return true;
    }
    // Under `--exact`, a test whose name the filter does not contain is
    // out, without building a trial for it: one test's process under
    // nextest asks this of every test of the binary.
    if args.exact
        && let Some(filter) = &args.filter
        && !filter.contains(case.name())
    {
        return false;
    }
    let probe = Trial::test(case.name(), || Ok(())).with_ignored_flag(true);
    !args.is_filtered_out(&probe)
}

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
fn probe_in_parallel(abilities: impl Iterator<Item = Ability>, one_thread: impl Fn() -> bool) {
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
fn runs_on_one_thread(args: &Arguments) -> bool {
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
fn read_facts_during_run(args: &Arguments, one_thread: impl Fn() -> bool) {
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

fn plan(case: &TestCase, settings: Result<&Settings, &crate::ConfigError>) -> Plan {
    if case.requires.is_empty() {
        return Plan::Run;
    }
    match settings {
        Err(e) => Plan::Fail(format!("userns-test: {e}")),
        Ok(s) => match Decision::make(case.requires, s, gate::probe) {
            Decision::Run => Plan::Run,
            Decision::Skip(unmet) => Plan::Skip(unmet),
            Decision::Fail(unmet) => Plan::Fail(format!(
                "userns-test: USERNS_TEST_REQUIRE requires what this host lacks: {unmet}"
            )),
            Decision::Misconfigured(e) => Plan::Fail(format!("userns-test: {e}")),
        },
    }
}

fn record(case: &TestCase, outcome: TestOutcome, duration: Duration) -> TestRecord {
    TestRecord {
        name: case.name().to_owned(),
        requires: case.requires.to_vec(),
        outcome,
        duration,
        ran_despite_unmet: false,
    }
}

/// Where the trial of case `.1` leaves its record, and the ledger it
/// marks as the test starts and ends.
struct Slot(Arc<[Mutex<Option<TestRecord>>]>, usize, Recorder);

impl Slot {
    fn start(&self) {
        self.2.started(self.1);
    }

    fn fill(&self, record: TestRecord) {
        self.2.finished(self.1, &record);
        if let Ok(mut slot) = self.0[self.1].lock() {
            *slot = Some(record);
        }
    }
}

/// The verdicts the run needed, as report objects: probed ones (cached by
/// now) and denied ones.
fn planned_verdicts(
    needed: &BTreeSet<Ability>,
    denied: &BTreeSet<Ability>,
) -> Vec<serde_json::Value> {
    needed
        .iter()
        .map(|&a| {
            if denied.contains(&a) {
                crate::report::verdict_json(&crate::verdict::Verdict {
                    ability: a,
                    status: crate::verdict::Status::Unavailable(crate::probe::denied_reason(a)),
                    note: None,
                    duration: Duration::ZERO,
                })
            } else {
                crate::report::verdict_json(gate::probe(a))
            }
        })
        .collect()
}

fn trial(
    case: &'static TestCase,
    plan: Plan,
    flag_unmet: bool,
    run_unmet: bool,
    slot: Slot,
) -> Trial {
    let flagged = match (&plan, case.ignore) {
        (_, Some(_)) => flag_unmet,
        (Plan::Skip(_), None) => flag_unmet,
        _ => false,
    };
    Trial::ignorable_test(case.name(), move || {
        let push = |r: TestRecord| slot.fill(r);
        if let (Some(reason), false) = (case.ignore, run_unmet) {
            push(record(
                case,
                TestOutcome::Ignored {
                    reason: reason.into(),
                },
                Duration::ZERO,
            ));
            return Ok(if reason.is_empty() {
                Completion::ignored()
            } else {
                Completion::ignored_with(reason)
            });
        }
        match plan {
            Plan::Fail(message) => {
                push(record(
                    case,
                    TestOutcome::Failed {
                        message: message.clone(),
                    },
                    Duration::ZERO,
                ));
                Err(Failed::from(crate::text::lines(&message)))
            }
            Plan::Skip(unmet) if !run_unmet => {
                let reason = crate::text::one_line(&unmet.brief()).into_owned();
                push(record(case, TestOutcome::Skipped { unmet }, Duration::ZERO));
                Ok(Completion::ignored_with(reason))
            }
            Plan::Skip(unmet) => {
                eprintln!(
                    "userns-test: running {} although its requirements are unmet (asked for \
                     with --ignored/--include-ignored): {}",
                    case.name(),
                    crate::text::one_line(&unmet.to_string())
                );
                slot.start();
                let mut r = execute_recorded(case);
                r.ran_despite_unmet = true;
                finish(r, push)
            }
            Plan::Run => {
                slot.start();
                finish(execute_recorded(case), push)
            }
        }
    })
    .with_ignored_flag(flagged)
}

fn finish(r: TestRecord, push: impl Fn(TestRecord)) -> Result<Completion, Failed> {
    let result = match &r.outcome {
        // libtest-mimic prints the message as it is: no line of it may be
        // a workflow command or a terminal escape.
        TestOutcome::Failed { message } => Err(Failed::from(crate::text::lines(message))),
        _ => Ok(Completion::Completed),
    };
    push(r);
    result
}

fn execute_recorded(case: &'static TestCase) -> TestRecord {
    let started = Instant::now();
    let outcome = match execute(case) {
        Ok(()) => TestOutcome::Passed,
        Err(message) => TestOutcome::Failed { message },
    };
    record(case, outcome, started.elapsed())
}

thread_local! {
    /// The test this thread is running, and whether it expects a panic.
    static RUNNING: std::cell::Cell<Option<(&'static str, bool)>> =
        const { std::cell::Cell::new(None) };
    /// Where the test body running on this thread last panicked.
    static PANICKED_AT: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// The runner's panic hook, for panics of test bodies (others go to the
/// hook it replaced). libtest-mimic does not capture output and runs tests
/// on unnamed pool threads, so the hook says what std's would, but names
/// the thread after its test (so a parallel run's panic can be matched to
/// its test), shows the message with [`crate::text::lines`] (no line of it
/// may act on the terminal or be a workflow command), keeps the location
/// for the failure block, and stays quiet for a `#[should_panic]` test's
/// expected panic.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some((name, expected)) = RUNNING.with(std::cell::Cell::get) else {
                return previous(info);
            };
            let location = info
                .location()
                .map_or_else(|| "an unknown location".to_owned(), |l| l.to_string());
            PANICKED_AT.with(|p| *p.borrow_mut() = Some(location.clone()));
            if expected {
                return;
            }
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("Box<dyn Any>");
            let mut text = format!(
                "\nthread '{}' panicked at {location}:\n{}\n",
                crate::text::one_line(name),
                crate::text::lines(message)
            );
            let backtrace = std::backtrace::Backtrace::capture();
            match backtrace.status() {
                std::backtrace::BacktraceStatus::Captured => {
                    text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
                }
                _ => {
                    static NOTED: std::sync::Once = std::sync::Once::new();
                    NOTED.call_once(|| {
                        text.push_str(
                            "note: run with `RUST_BACKTRACE=1` environment variable to display \
                             a backtrace\n",
                        );
                    });
                }
            }
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
        }));
    });
}

/// Runs the body, with `#[should_panic]` semantics.
fn execute(case: &'static TestCase) -> Result<(), String> {
    install_panic_hook();
    RUNNING.with(|r| r.set(Some((case.name(), case.should_panic))));
    PANICKED_AT.with(|p| *p.borrow_mut() = None);
    let result = catch_unwind(AssertUnwindSafe(case.run));
    RUNNING.with(|r| r.set(None));
    let at = PANICKED_AT
        .with(|p| p.borrow_mut().take())
        .map_or_else(String::new, |l| format!(" at {l}"));
    match (result, case.should_panic) {
        (Ok(result), false) => result,
        (Err(payload), false) => Err(format!("test panicked{at}: {}", panic_message(&*payload))),
        (Ok(_), true) => Err("test did not panic as expected".into()),
        (Err(payload), true) => {
            let message = panic_message(&*payload);
            match case.expected_panic {
                Some(expected) if !message.contains(expected) => Err(format!(
                    "panic did not contain expected string\n      panic message: {message:?}\n \
                     expected substring: {expected:?}"
                )),
                _ => Ok(()),
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(a non-string panic payload)".into())
}
