//! The runner of `harness = false` targets ([`main!`](crate::main)):
//! every annotated test of the binary, selected by the libtest arguments;
//! the abilities the selected tests need, probed once, in parallel,
//! before any test runs; each test run, skipped (reported as *ignored,
//! with its reason*, so `cargo nextest run` shows SKIP) or failed
//! (`USERNS_TEST_REQUIRE`); then, on stderr after libtest-mimic's own
//! summary, the host, the ability matrix and each cause of the skips once.
//!
//! Under nextest (one process per test) a passing test's process prints
//! no summary: nextest shows its output to no one. Under `--ignored` or
//! `--include-ignored` a test whose requirements are unmet runs anyway,
//! saying so.

// One pipeline read top to bottom, as libtest-mimic's `run_tests` is:
// 1. select (`select.rs`): every annotated test of the binary (the
//    registry), selected by the libtest arguments (filters, `--exact`,
//    `--skip`);
// 2. probe (`probe.rs`): the union of the abilities the selected tests
//    need, once, in parallel, before any test runs;
// 3. decide (`plan.rs`): per test, run, skip (ignored, with its reason),
//    or fail (`USERNS_TEST_REQUIRE`);
// 4. run (`execute.rs`): libtest-mimic runs the trials, each recording its
//    outcome as it starts and ends (libtest-mimic's `run` returns counts
//    only, and its JSON format drops ignore reasons);
// 5. record: one `RunRecord` of the tests and the verdicts;
// 6. summarize (`summary.rs`): the host, the ability matrix and each root
//    cause once, on stderr after libtest's own summary (which stays the
//    last line on stdout).
//
// nextest's processes are the same pipeline with a role (`Role`): its
// listing decides and records the skips (unmet tests are flagged ignored,
// so nextest shows SKIP, never PASS) and runs nothing; a one-test process
// selects only its test and prints the summary only when that test fails.
//
// In a plain run unmet tests are not flagged but return
// `Completion::ignored_with(reason)`, so the pretty output shows
// `ignored (needs net: ...)`: libtest-mimic prints no reason for a test it
// did not call.

mod args;
mod execute;
mod json;
mod plan;
mod probe;
mod select;
mod summary;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libtest_mimic::{Arguments, Conclusion, FormatSetting, Trial};

use crate::gate;
use crate::outcome::{RunRecord, TestOutcome, TestRecord};
use crate::record::session::{Recorder, Session, record_verdicts};
use crate::record::{Destinations, ReportError, Role};
use crate::registry::TestCase;
use execute::{Job, Slot, job, record};
use plan::{Plan, plan, planned_verdicts};
use select::Selection;

pub(crate) use summary::write_summary;

/// The `main` of a `harness = false` target, named in reports after its
/// executable (or nextest's binary id); [`main!`](crate::main) names it
/// `package::target` instead.
pub fn run_main() -> ExitCode {
    run_main_named(&crate::record::binary_name())
}

/// The `main` of a `harness = false` target named `binary` in reports.
pub fn run_main_named(binary: &str) -> ExitCode {
    run_main_noting(binary, &[])
}

/// [`run_main_named`], listing after the run the functions of the target
/// that the runner never runs (`file:line: name: why`), as
/// `main!(warn_uncollected)` asks.
#[doc(hidden)]
pub fn run_main_noting(binary: &str, never_run: &[&str]) -> ExitCode {
    // This process was executed again to run one `#[in_userns]` test in
    // its namespaces: that test only, nothing of a run around it.
    crate::__private::in_userns_child_main();
    let mut args = args::from_env();
    let role = Role::current(&args);
    let one_test = role == Some(Role::NextestTest);
    // One test: run it from the main thread (on a thread of its own, as
    // every test), without a pool of workers to start and join for it.
    if one_test && args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    let cases = select::collect(&args, one_test);

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

    let (conclusion, mut record) = run_recorded(&args, &cases, session.as_mut());
    record.never_run = never_run.iter().map(|n| (*n).to_owned()).collect();

    // A one-test process (nextest's) prints no summary: nextest shows a
    // failing test's output and copies it into its JUnit, where the run's
    // block would contradict the run's counts; and reading the host facts
    // costs every process. Under `userns-test run` the command prints the
    // run's summary, once, after every binary.
    let quiet = one_test || session.as_ref().is_some_and(Session::wrapped);
    if !args.list && !quiet {
        let color = summary::use_color(&args);
        let _ = write_summary(&mut std::io::stderr().lock(), &record, color);
    }
    if let Some(session) = session {
        errors.extend(session.end(&record, &record_verdicts(&record)));
    }
    let errors = crate::record::said_once(errors);
    for e in &errors {
        eprintln!("userns-test: {e}");
    }
    match (
        errors.iter().any(|e| e.report_lost),
        conclusion.has_failed(),
    ) {
        // A report that could not be written fails a run that passed (one
        // written whole another way is only said).
        (true, false) => ExitCode::from(1),
        _ => conclusion.exit_code(),
    }
}

/// Runs `cases` under `args`, the whole flow without the final summary,
/// recording each test's start and end in `session`'s ledger, if any.
fn run_recorded(
    args: &Arguments,
    cases: &[&'static TestCase],
    session: Option<&mut Session>,
) -> (Conclusion, RunRecord) {
    let settings = gate::settings();

    // 1. Select.
    let selection = Selection::of(args, cases);
    let needed = selection.needed();
    let denied: std::collections::BTreeSet<crate::Ability> = settings
        .map(|s| needed.iter().copied().filter(|a| s.denies(*a)).collect())
        .unwrap_or_default();

    // 2. Probe.
    probe::probe_in_parallel(needed.iter().copied().filter(|a| !denied.contains(a)));

    // 3. Decide, for the selected tests only: planning asks for verdicts,
    // and a test the filters exclude must not cost a probe.
    let plans: Vec<Plan> = cases
        .iter()
        .zip(&selection.selected)
        .map(|(c, &sel)| if sel { plan(c, settings) } else { Plan::Run })
        .collect();
    let recorder = match session {
        Some(session) => {
            let planned: Vec<_> = plans
                .iter()
                .zip(&selection.selected)
                .map(|(p, &sel)| p.planned(sel))
                .collect();
            session.plan(
                cases,
                &planned,
                &planned_verdicts(&needed, &denied),
                settings.err().map(ToString::to_string).as_deref(),
            )
        }
        None => Recorder::default(),
    };
    let listed: Vec<Option<TestOutcome>> = plans
        .iter()
        .map(|p| args.list.then(|| p.listed()))
        .collect();

    // 4. Run. One slot per case, filled by its trial: no name lookups
    // afterwards.
    let slots: Arc<[Mutex<Option<TestRecord>>]> = cases.iter().map(|_| Mutex::new(None)).collect();
    let flag_unmet = args.list || args.ignored || args.include_ignored;
    let run_unmet = args.ignored || args.include_ignored;
    let jobs: Vec<Job> = cases
        .iter()
        .zip(plans)
        .enumerate()
        .map(|(i, (case, plan))| {
            let slot = Slot::new(slots.clone(), i, recorder.clone());
            job(case, plan, flag_unmet, run_unmet, slot)
        })
        .collect();
    probe::read_facts_during_run(args);
    let conclusion = if args.format == Some(FormatSetting::Json) && !args.list {
        // libtest's JSON, with an ignored test's reason (libtest-mimic
        // writes none).
        json::run(args, jobs)
    } else {
        let trials: Vec<Trial> = jobs.into_iter().map(Job::trial).collect();
        let list_count = args.list.then(|| {
            trials
                .iter()
                .filter(|t| !args.is_filtered_out(t) && (!args.ignored || t.has_ignored_flag()))
                .count()
        });
        let conclusion = libtest_mimic::run(args, trials);
        if let Some(n) = list_count {
            list_trailer(args, n);
        }
        conclusion
    };

    // 5. Record: one record per case, in the cases' order: the run's own,
    // or, for a test the run never called, filtered out, or flagged
    // ignored and not asked for.
    let tests: Vec<TestRecord> = cases
        .iter()
        .zip(&selection.selected)
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
    let record = RunRecord {
        tests,
        verdicts: needed
            .iter()
            .filter(|a| !denied.contains(a))
            .map(|&a| gate::probe(a).clone())
            .collect(),
        denied: needed.intersection(&denied).copied().collect(),
        config_error: settings.err().map(ToString::to_string),
        never_run: Vec::new(),
    };
    (conclusion, record)
}

/// libtest's last lines of `--list` (`\n54 tests, 0 benchmarks`), which
/// libtest-mimic leaves out; not in the terse format nextest reads.
fn list_trailer(args: &Arguments, tests: usize) {
    if matches!(
        args.format,
        Some(FormatSetting::Terse | FormatSetting::Json)
    ) {
        return;
    }
    let plural = |n: usize, what: &str| match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    };
    println!("\n{}, {}", plural(tests, "test"), plural(0, "benchmark"));
}
