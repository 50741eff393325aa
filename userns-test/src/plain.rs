//! Plain mode: annotated tests under libtest's own harness (`cargo test`
//! without `harness = false`).
//!
//! libtest reports a skipped test as passed (it returned early), so plain
//! mode keeps its own record: each annotated test's gate decision, start
//! and end (a panic, an `Err`, a `#[should_panic]` test's expected panic).
//! When the process exits, after libtest's last line, it prints the
//! runner's summary ("20 of the 23 tests libtest reported ok were
//! skipped", each root cause once) and writes the reports asked for, from
//! the same ledger the runner uses: a test that started and never ended is
//! a failure, not a pass.
//!
//! The end of the process is the only moment after libtest's result, so
//! the summary runs from an `atexit` handler, registered by the first
//! annotated test; both of libtest's exits (returning from `main`,
//! `process::exit(101)` after a failure) run it.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::Ability;
use crate::outcome::{RunRecord, TestOutcome, TestRecord};
use crate::policy::Unmet;
use crate::record::session::{Planned, Recorder, Session, record_verdicts};
use crate::record::{Destinations, ReportError, Role};
use crate::registry::{TestCase, collected, libtest_name_of};

/// What this process has seen of its annotated tests.
struct PlainRun {
    role: Role,
    /// The tests this process records: every annotated test of the binary
    /// (a complete run), or the one nextest runs here.
    cases: Vec<&'static TestCase>,
    recorder: Recorder,
    session: Option<Session>,
    errors: Vec<ReportError>,
    /// By case index: the finished record, and whether it started.
    finished: Vec<Option<TestRecord>>,
    started: Vec<bool>,
    /// What the gated tests required.
    needed: BTreeSet<Ability>,
    concluded: bool,
}

static PLAIN: OnceLock<Mutex<PlainRun>> = OnceLock::new();

/// The process that began the plain run. A process a test body forks
/// inherits [`PLAIN`] and the `atexit` handler, but is not the run: it
/// must print, record and write nothing (a sandbox crate's children end
/// with `std::process::exit`, and their stderr is what its tests check).
static PLAIN_PID: AtomicU32 = AtomicU32::new(0);

/// Whether this process is the one the plain run began in (or none has
/// begun yet). Checked before any lock: a fork may have copied the lock
/// held by a thread that does not exist in it.
fn in_own_process() -> bool {
    let pid = PLAIN_PID.load(Ordering::Acquire);
    pid == 0 || pid == std::process::id()
}

thread_local! {
    /// The message of the last panic on this thread, for the test that
    /// runs on it (libtest's `#[should_panic(expected)]` compares it).
    static LAST_PANIC: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// This process's plain run, begun by its first annotated test (`path`).
fn plain(path: &str) -> &'static Mutex<PlainRun> {
    PLAIN.get_or_init(|| Mutex::new(begin(path)))
}

fn begin(path: &str) -> PlainRun {
    let name = libtest_name_of(path);
    // nextest runs each test in a process of its own: only that one.
    let role = Role::of(false, false).unwrap_or(Role::Complete);
    let mut cases: Vec<&'static TestCase> = collected()
        .filter(|c| role != Role::NextestTest || c.name() == name)
        .collect();
    cases.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    let binary = cases
        .first()
        .and_then(|c| c.binary())
        .unwrap_or_else(crate::record::binary_name);
    let destinations = Destinations::from_env();
    let mut errors = destinations.problems.clone();
    let mut session = match Session::begin(role, &binary, &destinations) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    };
    // Which tests libtest will call is its own business: every one is
    // planned to run, and one never called is filtered out or ignored.
    let planned: Vec<Planned<'_>> = cases.iter().map(|_| Planned::Run).collect();
    let config_error = crate::gate::settings().err().map(ToString::to_string);
    let recorder = match session.as_mut() {
        Some(s) => {
            s.under_libtest();
            s.plan(&cases, &planned, &[], config_error.as_deref())
        }
        None => Recorder::default(),
    };
    install_panic_recorder();
    PLAIN_PID.store(std::process::id(), Ordering::Release);
    // SAFETY: registers a function without arguments, once per process.
    unsafe {
        atexit(at_exit);
    }
    PlainRun {
        role,
        finished: vec![None; cases.len()],
        started: vec![false; cases.len()],
        cases,
        recorder,
        session,
        errors,
        needed: BTreeSet::new(),
        concluded: false,
    }
}

impl PlainRun {
    fn index(&self, path: &str) -> Option<usize> {
        let name = libtest_name_of(path);
        self.cases.binary_search_by(|c| c.name().cmp(name)).ok()
    }

    fn finish(&mut self, path: &str, outcome: TestOutcome, duration: Duration) {
        let Some(i) = self.index(path) else {
            return;
        };
        let case = self.cases[i];
        let record = TestRecord {
            name: case.name().to_owned(),
            requires: case.requires.to_vec(),
            outcome,
            duration,
            ran_despite_unmet: false,
        };
        self.recorder.finished(i, &record);
        self.finished[i] = Some(record);
    }
}

fn lock(path: &str) -> std::sync::MutexGuard<'static, PlainRun> {
    plain(path).lock().unwrap_or_else(|e| e.into_inner())
}

/// The gate decided for `path`, which needs `requirements`.
pub(crate) fn gated(path: &str, requirements: &[Ability]) {
    if !in_own_process() {
        return;
    }
    lock(path).needed.extend(requirements.iter().copied());
}

/// The gate skipped `path`.
pub(crate) fn skipped(path: &str, unmet: &Unmet) {
    if !in_own_process() {
        return;
    }
    lock(path).finish(
        path,
        TestOutcome::Skipped {
            unmet: unmet.clone(),
        },
        Duration::ZERO,
    );
}

/// The gate failed `path` before its body (`USERNS_TEST_REQUIRE`, a
/// malformed environment).
pub(crate) fn failed_before_running(path: &str, message: &str) {
    if !in_own_process() {
        return;
    }
    lock(path).finish(
        path,
        TestOutcome::Failed {
            message: message.to_owned(),
        },
        Duration::ZERO,
    );
}

/// `path`'s body, running in this process, did not finish within its
/// time bound (`within`), and the process ends now: its record says so
/// with `message` (not "the process exited while this test was
/// running"), and the run's end (the process's exit) writes it: `true`.
/// `false` under the runner, which keeps no plain run.
pub(crate) fn ended_unfinished(path: &str, message: &str, within: Duration) -> bool {
    if !in_own_process() || PLAIN.get().is_none() {
        return false;
    }
    lock(path).finish(
        path,
        TestOutcome::Failed {
            message: message.to_owned(),
        },
        within,
    );
    true
}

/// A test body running under libtest, from its start to its end; a test
/// that unwinds out of it (a panic) is recorded as it ends.
pub struct Running {
    path: &'static str,
    started: Instant,
    should_panic: bool,
    expected: Option<&'static str>,
    done: bool,
}

impl Running {
    /// The body of `path` starts. `should_panic` and `expected` are its
    /// `#[should_panic(expected = "...")]`.
    pub fn start(path: &'static str, should_panic: bool, expected: Option<&'static str>) -> Self {
        if in_own_process() {
            let mut run = lock(path);
            if let Some(i) = run.index(path) {
                run.started[i] = true;
                run.recorder.started(i);
            }
        }
        Running {
            path,
            started: Instant::now(),
            should_panic,
            expected,
            done: false,
        }
    }

    /// The body returned `result`.
    pub fn finish<R: crate::registry::TestResult>(mut self, result: &R) {
        self.done = true;
        if !in_own_process() {
            return;
        }
        let outcome = match (result.failure(), self.should_panic) {
            (Some(message), _) => TestOutcome::Failed { message },
            (None, false) => TestOutcome::Passed,
            (None, true) => TestOutcome::Failed {
                message: "test did not panic as expected".into(),
            },
        };
        lock(self.path).finish(self.path, outcome, self.started.elapsed());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done || !std::thread::panicking() || !in_own_process() {
            return;
        }
        let message = LAST_PANIC
            .try_with(|p| p.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_else(|| "test panicked".into());
        let outcome = match (self.should_panic, self.expected) {
            (true, Some(expected)) if !message.contains(expected) => TestOutcome::Failed {
                message: format!(
                    "panic did not contain expected string\n      panic message: {message:?}\n \
                     expected substring: {expected:?}"
                ),
            },
            (true, _) => TestOutcome::Passed,
            (false, _) => TestOutcome::Failed { message },
        };
        lock(self.path).finish(self.path, outcome, self.started.elapsed());
    }
}

/// Chains a panic hook that keeps each panic's message and location for
/// the thread's running test, then calls the hook it replaced (libtest's
/// output capture relies on it).
fn install_panic_recorder() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = crate::text::panic_payload(info.payload());
        let message = match info.location() {
            Some(at) => format!("test panicked at {at}: {text}"),
            None => format!("test panicked: {text}"),
        };
        let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(message));
        previous(info);
    }));
}

/// Concludes the run now (what the process's exit does), for an `atexit`
/// handler of `#[in_userns]` that ends the process itself afterwards.
pub(crate) fn conclude_now() {
    if in_own_process() && PLAIN.get().is_some() {
        let _ = std::panic::catch_unwind(conclude);
    }
}

extern "C" fn at_exit() {
    // Nothing may unwind out of an `atexit` handler.
    let _ = std::panic::catch_unwind(conclude);
}

/// After libtest's result: the summary and the reports.
fn conclude() {
    if !in_own_process() {
        return;
    }
    let Some(plain) = PLAIN.get() else {
        return;
    };
    let mut run = plain.lock().unwrap_or_else(|e| e.into_inner());
    if std::mem::replace(&mut run.concluded, true) {
        return;
    }
    let tests: Vec<TestRecord> = run
        .cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            if let Some(r) = &run.finished[i] {
                return r.clone();
            }
            let outcome = if run.started[i] {
                // A test still running when the process ended (a test that
                // called process::exit, on this thread or another).
                TestOutcome::Failed {
                    message: "the process exited while this test was running".into(),
                }
            } else if let Some(reason) = case.ignore {
                TestOutcome::Ignored {
                    reason: reason.into(),
                }
            } else {
                TestOutcome::FilteredOut
            };
            TestRecord {
                name: case.name().to_owned(),
                requires: case.requires.to_vec(),
                outcome,
                duration: Duration::ZERO,
                ran_despite_unmet: false,
            }
        })
        .collect();
    let settings = crate::gate::settings();
    let deny: BTreeSet<Ability> = settings
        .map(|s| {
            run.needed
                .iter()
                .copied()
                .filter(|a| s.denies(*a))
                .collect()
        })
        .unwrap_or_default();
    let record = RunRecord {
        tests,
        verdicts: run
            .needed
            .iter()
            .filter(|a| !deny.contains(a))
            .map(|&a| crate::gate::probe(a).clone())
            .collect(),
        denied: run.needed.intersection(&deny).copied().collect(),
        config_error: settings.err().map(ToString::to_string),
        never_run: Vec::new(),
    };
    // A test process of nextest prints nothing of ours but a skipped
    // test's own line (nextest shows a failing test's output, and copies it
    // into its JUnit: the run's block there would contradict the run's
    // counts); under `userns-test run` the command prints the run's
    // summary, once, after every binary.
    let wrapped = run.session.as_ref().is_some_and(Session::wrapped);
    if run.role == Role::Complete && !wrapped {
        let mut text = Vec::new();
        let _ = write_plain_summary(&mut text, &record, color());
        let _ = std::io::stderr().write_all(&text);
    }
    let mut errors = std::mem::take(&mut run.errors);
    if let Some(session) = run.session.take() {
        errors.extend(session.end(&record, &record_verdicts(&record)));
    }
    for e in crate::record::said_once(errors) {
        let _ = writeln!(std::io::stderr(), "userns-test: {e}");
    }
}

/// The runner's summary, after a line saying what libtest's "ok" hides.
pub fn write_plain_summary(
    w: &mut impl Write,
    record: &RunRecord,
    color: bool,
) -> std::io::Result<()> {
    let skipped = record
        .tests
        .iter()
        .filter(|t| matches!(t.outcome, TestOutcome::Skipped { .. }))
        .count();
    let ok = skipped
        + record
            .tests
            .iter()
            .filter(|t| t.outcome == TestOutcome::Passed)
            .count();
    let mut summary = Vec::new();
    crate::runner::write_summary(&mut summary, record, color)?;
    if skipped > 0 {
        writeln!(
            w,
            "\nuserns-test: {skipped} of the {ok} tests under userns-test that libtest reported \
             ok were skipped, not run: their requirements are unmet on this host (causes below)"
        )?;
        // The summary's own blank line would part it from this one.
        return w.write_all(summary.strip_prefix(b"\n").unwrap_or(&summary));
    }
    w.write_all(&summary)
}

/// Colour on a terminal without `NO_COLOR`, as the runner decides it
/// without libtest's arguments.
fn color() -> bool {
    crate::text::stderr_color()
}

// The C library's `atexit`, which every platform's C runtime has (the
// `libc` crate is a Linux-only dependency of this crate).
unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}
