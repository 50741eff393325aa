//! `userns-test run` and `userns-test finish`: running a test command so
//! that its reports come out complete and true, whatever happens to it.
//!
//! - The command's exit status is never 0 when the report has a failed,
//!   crashed or unknown test: a test that calls `std::process::exit(0)`
//!   makes libtest, and so cargo, exit 0 ([`exit_status`]).
//! - Cancelled (SIGTERM from CI, SIGINT, SIGHUP), the wrapper passes the
//!   signal on to the whole process tree of the command, waits a bounded
//!   time (`--grace`), kills what is left, and still writes the reports:
//!   the tests that were running are crashed, the others not run. Nothing
//!   of the tree is left running: this process is a child subreaper, so
//!   the test binaries that cargo leaves behind when it dies come to it.

//!
//! The last two are Linux's (`tree.rs`: a signalfd, pidfds, a child
//! subreaper, `/proc`). Elsewhere (`portable.rs`) the command is run and
//! waited for with the standard library alone: a run that ends writes its
//! reports as on Linux, a cancelled one ends this process with it.

use std::process::ExitCode;
use std::time::Duration;

use userns_test::__cli::{Destinations, ReportError};

use crate::report::{Finish, FinishOptions, Report};

#[cfg(all(target_os = "linux", not(userns_test_unsupported_os)))]
mod tree;
#[cfg(all(target_os = "linux", not(userns_test_unsupported_os)))]
pub(crate) use tree::run_command;

#[cfg(not(all(target_os = "linux", not(userns_test_unsupported_os))))]
mod portable;
#[cfg(not(all(target_os = "linux", not(userns_test_unsupported_os))))]
pub(crate) use portable::run_command;

/// How long the command's tree may take to end after a cancelling signal,
/// by default: within GitHub Actions' 7.5 s between its SIGINT and its
/// SIGTERM on a cancelled step.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How the wrapped command ended.
pub(crate) struct Ended {
    /// Its exit status, or 128 + the signal that ended it.
    pub code: i32,
    /// The signal that cancelled the run, if one did.
    pub cancelled: Option<Cancelled>,
}

/// A run cancelled by a signal.
pub(crate) struct Cancelled {
    /// The signal's number.
    pub signal: i32,
    /// Its name (`SIGTERM`).
    pub name: &'static str,
    /// Whether the tree had to be killed after the grace period.
    pub killed: bool,
}

/// The exit status of `userns-test run`/`finish`: the command's, unless it
/// is 0 while the report holds a failed, crashed or unknown test (a test
/// that called `std::process::exit(0)` ends its binary with 0): then 1, with
/// why on stderr.
pub(crate) fn exit_status(code: Option<i32>, report: &Report) -> i32 {
    let c = &report.counts;
    match code {
        Some(code) if code != 0 => return code,
        _ if c.failed == 0 && c.unknown == 0 => return 0,
        _ => {}
    }
    let crashed = report.tests.iter().filter(|t| t.crashed).count();
    let mut what = Vec::new();
    if c.failed > 0 {
        what.push(match crashed {
            0 => format!("{} failed", c.failed),
            n => format!("{} failed ({n} crashed)", c.failed),
        });
    }
    if c.unknown > 0 {
        what.push(format!("{} unknown", c.unknown));
    }
    let command = match code {
        Some(_) => "the test command exited with 0, but ",
        None => "",
    };
    eprintln!(
        "userns-test: {command}the report has {}: exiting with 1",
        what.join(" and ")
    );
    1
}

/// `userns-test finish`'s end, for `run` too: prints the summary (unless
/// `quiet`) and the errors; writes a report of no tests where there was no
/// run of this job to finish. Returns the exit status.
pub(crate) fn finish_and_report(
    dest: &Destinations,
    options: &FinishOptions,
    quiet: bool,
    earlier: Vec<ReportError>,
) -> Result<i32, String> {
    let code = options.exit_code.unwrap_or(0);
    match crate::report::finish(dest, options).map_err(|e| e.to_string())? {
        Finish::Done(report, errors) => {
            if !quiet {
                eprint!(
                    "\n{}",
                    crate::report::summary::render(&report, crate::report::summary::use_color())
                );
            }
            let errors = userns_test::__cli::said_once(earlier.into_iter().chain(errors).collect());
            for e in &errors {
                eprintln!("userns-test: {e}");
            }
            let status = exit_status(options.exit_code, &report);
            let lost = errors.iter().any(|e| e.report_lost);
            Ok(if !lost || status != 0 { status } else { 2 })
        }
        Finish::NoRun(why) => {
            eprintln!("userns-test: nothing to finish: {why}");
            let errors = crate::report::write_no_run(dest, &why, options.exit_code);
            for e in userns_test::__cli::said_once(earlier.into_iter().chain(errors).collect()) {
                eprintln!("userns-test: {e}");
            }
            Ok(if code != 0 { code } else { 2 })
        }
    }
}

/// The process's exit code for `code` (0 to 255).
pub(crate) fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(2))
}
