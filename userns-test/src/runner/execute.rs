//! Run: each test as a libtest-mimic trial that follows its plan, runs
//! the body on a thread of its own (catching its panic, naming its thread
//! in the panic message) and records the outcome as the test starts and
//! ends.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libtest_mimic::{Completion, Failed, Trial};

use super::plan::Plan;
use crate::outcome::{TestOutcome, TestRecord};
use crate::record::session::Recorder;
use crate::registry::TestCase;

pub(super) fn record(case: &TestCase, outcome: TestOutcome, duration: Duration) -> TestRecord {
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
pub(super) struct Slot(Arc<[Mutex<Option<TestRecord>>]>, usize, Recorder);

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

impl Slot {
    pub(super) fn new(
        slots: Arc<[Mutex<Option<TestRecord>>]>,
        index: usize,
        recorder: Recorder,
    ) -> Self {
        Slot(slots, index, recorder)
    }
}

/// One test, ready to run: its name, whether it is flagged ignored (not
/// run unless `--ignored`/`--include-ignored`), and the job that follows
/// its plan and records its outcome.
pub(super) struct Job {
    pub name: &'static str,
    pub flagged: bool,
    /// `#[ignore = "why"]`'s reason, shown where a flagged test is not run.
    pub ignore_reason: &'static str,
    pub run: Box<dyn FnOnce() -> Result<Completion, Failed> + Send>,
}

impl Job {
    /// The job as a libtest-mimic trial.
    pub(super) fn trial(self) -> Trial {
        Trial::ignorable_test(self.name, self.run).with_ignored_flag(self.flagged)
    }
}

pub(super) fn job(
    case: &'static TestCase,
    plan: Plan,
    flag_unmet: bool,
    run_unmet: bool,
    slot: Slot,
) -> Job {
    let flagged = match (&plan, case.ignore) {
        (_, Some(_)) => flag_unmet,
        (Plan::Skip(_), None) => flag_unmet,
        _ => false,
    };
    let run = move || {
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
    };
    Job {
        name: case.name(),
        flagged,
        ignore_reason: case.ignore.unwrap_or(""),
        run: Box::new(run),
    }
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
    let outcome = match on_a_thread_of_its_own(case) {
        Ok(()) => TestOutcome::Passed,
        Err(message) => TestOutcome::Failed { message },
    };
    record(case, outcome, started.elapsed())
}

/// Runs the body on a new thread named after the test, as libtest does
/// for every test whatever `--test-threads` says: what a test does to its
/// own thread (a Landlock domain, NoNewPrivs, a seccomp filter,
/// `unshare(CLONE_FS)`, thread-locals) ends with it, instead of reaching
/// the next test of a reused worker, or the main thread, which writes the
/// summary and the reports after the run.
fn on_a_thread_of_its_own(case: &'static TestCase) -> Result<(), String> {
    let spawned = std::thread::Builder::new()
        .name(case.name().to_owned())
        .spawn(move || execute(case));
    match spawned {
        // `execute` catches the body's panic: the thread ends normally.
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|_| Err("test panicked outside its body".into())),
        Err(e) => Err(format!(
            "userns-test: could not create a thread to run the test on: {e} (a thread or \
             process limit: RLIMIT_NPROC, pids.max, threads-max); the test did not run"
        )),
    }
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
            let message = crate::text::panic_payload(info.payload());
            let (mut text, with_backtrace) = crate::text::panic_report(name, &location, message);
            if !with_backtrace {
                static NOTED: std::sync::Once = std::sync::Once::new();
                NOTED.call_once(|| {
                    text.push_str(
                        "note: run with `RUST_BACKTRACE=1` environment variable to display a \
                         backtrace\n",
                    );
                });
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
    crate::text::panic_payload(payload).to_owned()
}
