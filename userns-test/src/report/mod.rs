//! Reports of a run, for CI: a JSON document (the record every other form
//! is made from), JUnit XML, GitHub's step summary and annotations. The
//! merge of many runners' reports is the `userns-test merge` command's
//! (package `userns-test-cli`).
//!
//! # One report per run, true at every moment
//! A report covers one *run*: one `cargo test` (every runner binary it
//! starts adds its tests), one `cargo nextest run` (every test process adds
//! its outcome), or one direct execution. Each process records what it
//! knows in the run's directory (`store.rs`): a *ledger* per binary with one
//! slot per test, updated in place as each test starts and ends, so that a
//! process that dies mid-test leaves the fact behind. The report is
//! assembled from those records, and says only what they show:
//!
//! - a test whose process started it and is gone without recording an
//!   outcome **crashed**: it is `failed`, with the signal or status where
//!   nextest recorded it;
//! - a test whose outcome is not in yet is `unknown`, with why; it becomes
//!   `not_run` only once the run is known to be over, which only a step
//!   after the run can know: `userns-test finish`, or `userns-test run --
//!   COMMAND`, which runs the tests and then finishes their report.
//!
//! Without such a step the report is written by the test processes
//! themselves: by each binary at its end under `cargo test`; under nextest
//! by the listing (the skips) and by the test process whose outcome
//! completes the listing's count (with that binary's step summary), so
//! the work stays linear in the number of tests. Under `userns-test run`,
//! test processes only record, and the wrapper, built optimised, writes
//! everything once after the run.
//!
//! # Files nobody else can touch
//! Every file goes through `safe_fs.rs`: report files are replaced by
//! `rename` from unguessable temporaries in a directory this uid owns (or a
//! sticky one), never through a link or over another user's file or a
//! device; the run's records live in a directory private to this uid; the
//! lock is taken there, and waiting for it is bounded.

pub mod github;
#[cfg(feature = "junit")]
pub mod junit;
pub mod markdown;
pub mod model;
pub mod summary;

mod assemble;
mod ledger;
pub(crate) mod lineage;
pub(crate) mod session;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use assemble::{Finished, NextestSaw};
pub use model::{
    CauseText, Counts, Lack, LackDetail, Outcome, Report, RootCause, RunInfo, Runner, SCHEMA,
    TestEntry, root_cause_id, verdict_json,
};

use crate::facts::HostFacts;
use crate::safe_fs::{Dir, FsError};
use store::{RunDir, RunKey, RunMeta, Store, this_process};

/// `USERNS_TEST_REPORT_JSON`
pub const JSON_VAR: &str = "USERNS_TEST_REPORT_JSON";
/// `USERNS_TEST_JUNIT`
pub const JUNIT_VAR: &str = "USERNS_TEST_JUNIT";
/// `USERNS_TEST_RUN_DIR`: set by `userns-test run` for the processes it
/// starts.
pub const RUN_DIR_VAR: &str = "USERNS_TEST_RUN_DIR";
/// `USERNS_TEST_LOCK_TIMEOUT_MS`
pub const LOCK_TIMEOUT_VAR: &str = "USERNS_TEST_LOCK_TIMEOUT_MS";

/// How long a process waits for another one of its run to finish writing
/// the report, by default.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where reports go, from the environment.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// `USERNS_TEST_REPORT_JSON`.
    pub json: Option<PathBuf>,
    /// `USERNS_TEST_JUNIT`.
    pub junit: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: Markdown is appended.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_ACTIONS=true`: annotations on stderr.
    pub annotations: bool,
    /// `USERNS_TEST_REQUIRE` is set: annotations are warnings.
    pub required: bool,
    /// `USERNS_TEST_RUN_DIR`: a `userns-test run` wrapper writes the
    /// reports; this process only records.
    pub run_dir: Option<PathBuf>,
    /// `USERNS_TEST_LOCK_TIMEOUT_MS`: the longest wait for the run's lock.
    pub lock_timeout: Duration,
    /// Malformed values, each naming its variable.
    pub problems: Vec<ReportError>,
}

impl Destinations {
    /// Reads the destinations from the environment.
    pub fn from_env() -> Destinations {
        Destinations::from_lookup(|k| std::env::var_os(k))
    }

    /// Reads the destinations through `lookup` (the environment, or a map
    /// in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Destinations {
        let path = |k: &str| lookup(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut problems = Vec::new();
        let lock_timeout = match lookup(LOCK_TIMEOUT_VAR).map(|v| v.to_string_lossy().into_owned())
        {
            None => LOCK_TIMEOUT,
            Some(v) => {
                use crate::policy::{DAY_MS, DurationUnit, duration};
                match duration(LOCK_TIMEOUT_VAR, &v, DurationUnit::Millis, 1, DAY_MS) {
                    Ok(d) => d,
                    Err(e) => {
                        problems.push(ReportError {
                            report_lost: true,
                            what: format!("the reports ({LOCK_TIMEOUT_VAR})"),
                            path: None,
                            problem: e.to_string(),
                        });
                        LOCK_TIMEOUT
                    }
                }
            }
        };
        let run_dir = path(RUN_DIR_VAR);
        if let Some(dir) = &run_dir
            && !dir.is_absolute()
        {
            problems.push(ReportError {
                report_lost: true,
                what: format!("the reports ({RUN_DIR_VAR})"),
                path: Some(dir.clone()),
                problem: format!(
                    "{RUN_DIR_VAR} must be an absolute path (it is set by `userns-test run`)"
                ),
            });
        }
        Destinations {
            json: path(JSON_VAR),
            junit: path(JUNIT_VAR),
            step_summary: path("GITHUB_STEP_SUMMARY"),
            annotations: lookup("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
            required: lookup("USERNS_TEST_REQUIRE").is_some_and(|v| !v.is_empty()),
            run_dir: run_dir.filter(|d| d.is_absolute()),
            lock_timeout,
            problems,
        }
    }

    /// Whether any report is asked for.
    pub fn any(&self) -> bool {
        self.json.is_some()
            || self.junit.is_some()
            || self.step_summary.is_some()
            || self.annotations
    }
}

/// A report that could not be written, or a run that could not be read.
#[derive(Debug, Clone)]
pub struct ReportError {
    /// What was being written or read (`the JSON report`, ...).
    pub what: String,
    /// Where.
    pub path: Option<PathBuf>,
    /// What went wrong, and what to do.
    pub problem: String,
    /// Whether the run's report lacks something for it. `false` where the
    /// report was still written whole another way (the records kept in a
    /// private directory instead of beside it).
    pub report_lost: bool,
}

impl ReportError {
    pub(crate) fn fs(what: &str, e: FsError) -> ReportError {
        ReportError {
            report_lost: true,
            what: what.to_owned(),
            path: Some(e.path.clone()),
            problem: e.to_string(),
        }
    }
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not write {}: {}",
            self.what,
            crate::text::one_line(&self.problem)
        )?;
        if self.report_lost {
            write!(
                f,
                "; the results above stand, but this run's report is incomplete"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ReportError {}

/// `errors` with those that share one problem said once, their `what`s
/// joined: a directory refused for the run's records and for the JSON
/// report is one refusal.
pub fn said_once(errors: Vec<ReportError>) -> Vec<ReportError> {
    let mut out: Vec<ReportError> = Vec::new();
    for e in errors {
        match out.iter_mut().find(|o| o.problem == e.problem) {
            Some(o) => {
                if !o.what.contains(&e.what) {
                    o.what = format!("{} and {}", o.what, e.what);
                }
                o.report_lost |= e.report_lost;
            }
            None => out.push(e),
        }
    }
    out
}

/// Which process of a run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A whole run of the binary (`cargo test`, a direct execution).
    Complete,
    /// nextest listing the binary's tests (`--list` without `--ignored`).
    NextestListing,
    /// nextest running one test.
    NextestTest,
}

impl Role {
    /// The role of this process, from nextest's run (see
    /// [`lineage::nextest_run`]: the variable counts only under a nextest
    /// process) and the arguments; `None` for a listing outside nextest,
    /// or nextest's listing of ignored tests.
    pub fn current(args: &libtest_mimic::Arguments) -> Option<Role> {
        Role::of(args.list, args.ignored)
    }

    /// [`Role::current`], from `--list` and `--ignored` alone (plain mode
    /// has no parsed arguments: it is never a listing).
    pub(crate) fn of(list: bool, ignored: bool) -> Option<Role> {
        let nextest = matches!(lineage::nextest_run(), lineage::NextestRun::Run { .. });
        match (nextest, list) {
            (false, false) => Some(Role::Complete),
            (false, true) => None,
            (true, true) if !ignored => Some(Role::NextestListing),
            (true, true) => None,
            (true, false) => Some(Role::NextestTest),
        }
    }
}

/// This process's run: nextest's run (when a nextest process started it),
/// else the `cargo` process above it (through any target runner), else
/// this process; with the process whose life is the run's.
fn current_run() -> (RunKey, Option<(u32, u64)>) {
    if let lineage::NextestRun::Run { id, owner } = lineage::nextest_run() {
        let key = RunKey {
            kind: "nextest".into(),
            id: id.clone(),
        };
        return (key, Some(*owner));
    }
    if let lineage::Launcher::Cargo(cargo) = lineage::launcher() {
        let key = RunKey {
            kind: "cargo".into(),
            id: format!("{}-{}", cargo.pid, cargo.start),
        };
        return (key, Some(cargo.id()));
    }
    let me = this_process();
    (
        RunKey {
            kind: "process".into(),
            id: format!("{}-{}", me.0, me.1),
        },
        Some(me),
    )
}

/// The store of `dest`'s reports: beside the JSON (else JUnit) file, or,
/// for a step summary or annotations alone, a private one under `$TMPDIR`.
/// Where the directory beside the report cannot be used (another user
/// planted the name, others may write there), the private one, with the
/// error: the run's records are kept and the other destinations written.
fn store_of(dest: &Destinations) -> Result<Option<(Store, Option<ReportError>)>, ReportError> {
    let private =
        |key: &str| Store::private(key).map_err(|e| ReportError::fs("the report's records", e));
    match (&dest.json, &dest.junit) {
        (Some(primary), _) | (None, Some(primary)) => {
            // A destination refused (a device, a link) is not written; a
            // records directory refused only moves the records.
            let refused = check_destination(primary).err();
            let report_lost = refused.is_some();
            let beside = match refused {
                Some(e) => Err(e),
                None => Store::beside(primary),
            };
            match beside {
                Ok(store) => Ok(Some((store, None))),
                Err(e) => {
                    let mut error = ReportError::fs("the report's records beside the report", e);
                    let store = private(&primary.display().to_string())?;
                    error.report_lost = report_lost;
                    error.what = format!(
                        "the report's records beside the report (they were kept in {} instead)",
                        store.path().display()
                    );
                    Ok(Some((store, Some(error))))
                }
            }
        }
        (None, None) if dest.step_summary.is_some() || dest.annotations => {
            let key = dest
                .step_summary
                .as_ref()
                .map_or_else(|| "annotations".to_owned(), |p| p.display().to_string());
            Ok(Some((private(&key)?, None)))
        }
        (None, None) => Ok(None),
    }
}

/// Refuses a report path that names something this crate will not
/// replace (a device, a FIFO, a link, a directory), before anything is
/// created beside it: `/dev/stdout` gets no working directory in `/dev`.
fn check_destination(path: &Path) -> Result<(), FsError> {
    let (parent, name) = split(path);
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(_) => Dir::for_writing(parent).and_then(|d| d.replace_check(name)),
        Err(_) => Ok(()),
    }
}

/// This process's run directory, whether a wrapper writes the reports,
/// and an error met on the way that did not stop it.
///
/// `USERNS_TEST_RUN_DIR` counts only when the `userns-test run` command
/// that made it started this process and has not finished the run: a
/// variable left in the environment (a later CI step, a shell) or passed
/// on by a test that runs its binary again must not fold this process's
/// results into a run that is over. Such a process says why and records
/// as if the variable were not set.
fn open_run(
    dest: &Destinations,
) -> Result<Option<(RunDir, bool, Option<ReportError>)>, ReportError> {
    if let Some(dir) = &dest.run_dir {
        let run = RunDir::at(dir).map_err(|e| ReportError::fs("the run's records", e))?;
        match wrapped_run_is_ours(&run) {
            Ok(()) => return Ok(Some((run, true, None))),
            Err(why) => note(&format!(
                "{RUN_DIR_VAR}={} is not this process's run ({why}); it was left in the \
                 environment: this process records and reports as if it were not set",
                dir.display()
            )),
        }
    }
    let Some((store, error)) = store_of(dest)? else {
        return Ok(None);
    };
    let (key, owner) = current_run();
    store
        .run(&key, owner)
        .map(|r| Some((r, false, error)))
        .map_err(|e| ReportError::fs("the run's records", e))
}

/// Whether the wrapped run `run` is this process's: not finished, and
/// made by a process that started this one.
fn wrapped_run_is_ours(run: &RunDir) -> Result<(), String> {
    if let Ok(Some(when)) = run.finished() {
        return Err(format!("that run was finished {when}"));
    }
    let meta = match run.meta() {
        Ok(Some(meta)) => meta,
        Ok(None) => return Err("it holds no run".into()),
        Err(e) => return Err(e.to_string()),
    };
    match meta.owner {
        Some(owner) => lineage::is_ancestor(owner),
        None => Err("it names no process".into()),
    }
}

/// A note on stderr, straight to the descriptor (libtest's capture would
/// hide `eprintln!` in a test).
pub(crate) fn note(text: &str) {
    use std::io::Write;
    let line = format!("userns-test: note: {}\n", crate::text::one_line(text));
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Writes `report` where `dest` asks: the JSON and JUnit files, the step
/// summary sections of `binaries` (each once per run), and, with
/// `annotate`, the annotations of its root causes not yet annotated in
/// this run (at most [`github::ANNOTATIONS_PER_STEP`]), on stderr, which
/// the Actions runner scans for workflow commands as it does stdout
/// (libtest's summary stays the last line of stdout for the tools that
/// parse it).
pub(crate) fn write_outputs(
    dest: &Destinations,
    run: &RunDir,
    report: &Report,
    binaries: &[String],
    annotate: bool,
) -> Vec<ReportError> {
    let (errors, annotations) = write_files(dest, run, report, binaries, annotate);
    eprint!("{annotations}");
    errors
}

/// [`write_outputs`], returning the annotations instead of printing them.
fn write_files(
    dest: &Destinations,
    run: &RunDir,
    report: &Report,
    binaries: &[String],
    annotate: bool,
) -> (Vec<ReportError>, String) {
    let mut errors = Vec::new();
    let mut out = String::new();
    // Two runs aimed at one report: neither may overwrite the other's
    // silently. The one writing while the other still runs does not write
    // the shared files, and says so.
    let others = if dest.json.is_some() || dest.junit.is_some() {
        run.live_others()
    } else {
        Vec::new()
    };
    if let Some(other) = others.first() {
        errors.push(conflict(dest, other));
        return (errors, out);
    }
    errors.extend(write_report_files(dest, report));
    if annotate && dest.annotations {
        for rc in report.root_causes.iter().filter(|rc| rc.skipped > 0) {
            let annotated = format!("annotation-{}", rc.id);
            let result = run.has_mark(&annotated).and_then(|done| {
                if done {
                    return Ok(());
                }
                let used = run.count_marks("annotation-")?;
                if used < github::ANNOTATIONS_PER_STEP {
                    if run.mark_once(&annotated)? {
                        out.push_str(&github::annotation(report, rc, dest.required));
                    }
                } else {
                    run.mark_once(&format!("unannotated-{}", rc.id))?;
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(ReportError::fs("the annotations' record", e));
            }
        }
    }
    if let Some(path) = &dest.step_summary {
        let not_annotated = if dest.annotations {
            run.count_marks("unannotated-").unwrap_or(0)
        } else {
            0
        };
        for binary in binaries {
            match run.mark_once(&format!("summary-{binary}")) {
                Ok(true) => {
                    let text = markdown::step_summary(report, binary, not_annotated);
                    if let Err(e) = append_file(path, text.as_bytes()) {
                        errors.push(ReportError::fs("the GitHub step summary", e));
                    }
                }
                Ok(false) => {}
                Err(e) => errors.push(ReportError::fs("the step summary's record", e)),
            }
        }
    }
    (errors, out)
}

/// The error of a report that another live run writes too.
fn conflict(dest: &Destinations, other: &RunMeta) -> ReportError {
    ReportError {
        report_lost: true,
        what: "the report".into(),
        path: dest.json.clone().or_else(|| dest.junit.clone()),
        problem: format!(
            "another run writes this report too, and is still going: {}; this run's report was \
             not written, so that neither overwrites the other: run them one at a time, or give \
             each its own {JSON_VAR}",
            other.describe()
        ),
    }
}

fn split(path: &Path) -> (&Path, &std::ffi::OsStr) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    (parent, path.file_name().unwrap_or(std::ffi::OsStr::new("")))
}

/// Replaces the file at `path` (see [`Dir::replace`]).
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let (parent, name) = split(path);
    if name.is_empty() {
        return Err(FsError {
            path: path.to_owned(),
            problem: crate::safe_fs::Problem::WrongKind {
                found: "a path that names no file",
                wanted: "a file",
            },
        });
    }
    Dir::for_writing(parent)?.replace(name, bytes)
}

/// Appends to the file at `path` (see [`Dir::append`]).
fn append_file(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let (parent, name) = split(path);
    Dir::for_writing(parent)?.append(name, bytes)
}

/// A run that `userns-test run` starts: its directory, passed to the test
/// processes in [`RUN_DIR_VAR`], and nextest's configuration for it.
#[derive(Debug, Clone)]
pub struct WrappedRun {
    /// The run's directory.
    pub run_dir: PathBuf,
    /// A nextest tool configuration (`--tool-config-file
    /// userns-test:PATH`) that has nextest write its JUnit where `finish`
    /// reads the signal of a crashed test: in the run's directory, or,
    /// where that path is not one TOML and nextest can hold (not UTF-8, a
    /// quote), in a private directory under `$TMPDIR`. `None` where no
    /// such place could be made (the crashes are then reported without
    /// nextest's words).
    pub nextest_config: Option<PathBuf>,
    /// What went wrong on the way without stopping the run: the records
    /// went to a private store because the one beside the report could
    /// not be used.
    pub warning: Option<ReportError>,
}

/// Starts a run for `userns-test run`: a new run directory (in the store
/// of `dest`'s reports; where that cannot be used, another user having
/// planted it, in a private one, with a warning), owned by this process.
/// Refused while another run of the same report is going: both would
/// write it.
pub fn begin_wrapped_run(
    dest: &Destinations,
    command: &[std::ffi::OsString],
) -> Result<WrappedRun, ReportError> {
    let (store, warning) = match store_of(dest)? {
        Some(found) => found,
        None => (
            Store::private("wrapped").map_err(|e| ReportError::fs("the run's records", e))?,
            None,
        ),
    };
    let key = RunKey {
        kind: "wrapped".into(),
        id: format!(
            "{}-{:08x}",
            this_process().0,
            crate::safe_fs::random_u64() as u32
        ),
    };
    let made = store
        .claimed(dest.lock_timeout, || -> Result<RunDir, ReportError> {
            let live = store
                .runs()
                .map_err(|e| ReportError::fs("the run's records", e))?
                .into_iter()
                .find(|(meta, _)| {
                    meta.owner
                        .is_some_and(|o| o != this_process() && store::alive(meta, o) == Some(true))
                });
            if let Some((other, _)) = live {
                return Err(ReportError {
                    report_lost: true,
                    what: "the report".into(),
                    path: dest.json.clone().or_else(|| dest.junit.clone()),
                    problem: format!(
                        "another run writes this report and is still going: {}; run the two \
                         one at a time, or give each its own {JSON_VAR}",
                        other.describe()
                    ),
                });
            }
            store
                .run(&key, Some(this_process()))
                .map_err(|e| ReportError::fs("the run's records", e))
        })
        .map_err(|e| ReportError::fs("the report (waiting for its claim lock)", e))?;
    let run = made?;
    let mut meta = RunMeta::now(key, Some(this_process()));
    meta.command = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let nextest_config = nextest_config(&run, &mut meta);
    run.rewrite_meta(&meta)
        .map_err(|e| ReportError::fs("the run's records", e))?;
    Ok(WrappedRun {
        run_dir: run.path().to_owned(),
        nextest_config,
        warning,
    })
}

/// Writes the nextest tool configuration of a wrapped run: its JUnit into
/// the run's directory where TOML and nextest (which takes UTF-8 paths)
/// can name it, else into a private directory under `$TMPDIR` (recorded
/// in `meta`, for `finish`).
fn nextest_config(run: &RunDir, meta: &mut RunMeta) -> Option<PathBuf> {
    // A TOML literal string holds anything but `'` and line breaks.
    let fits = |p: &Path| p.to_str().is_some_and(|t| !t.contains(['\'', '\n', '\r']));
    let toml = |junit: &str| {
        format!(
            "# Written by `userns-test run`: nextest's JUnit, read after the run for the\n\
             # signal or status of a test whose process crashed.\n\
             [profile.default.junit]\npath = '{junit}'\n"
        )
    };
    if fits(&run.file_path("nextest.toml")) {
        let junit = run.file_path("nextest-junit.xml");
        let text = toml(junit.to_str()?);
        return run
            .dir()
            .replace("nextest.toml", text.as_bytes())
            .ok()
            .map(|()| run.file_path("nextest.toml"));
    }
    let base = crate::safe_fs::private_temp_base().ok()?;
    let dir = base
        .private_subdir("nextest")
        .ok()?
        .private_subdir(store::safe_name(&meta.key.dir_name()))
        .ok()?;
    if !fits(&dir.path().join("nextest.toml")) {
        return None;
    }
    let junit = dir.path().join("nextest-junit.xml");
    dir.replace("nextest.toml", toml(junit.to_str()?).as_bytes())
        .ok()?;
    meta.nextest_junit = Some(junit);
    Some(dir.path().join("nextest.toml"))
}

/// How `userns-test finish` closes a run.
#[derive(Debug, Clone, Default)]
pub struct FinishOptions {
    /// The test command's exit status, for the report.
    pub exit_code: Option<i32>,
    /// The run to finish (`userns-test run` knows it); else the newest run
    /// of `dest`'s store.
    pub run_dir: Option<PathBuf>,
    /// nextest's JUnit of the run, for the signal of a crashed test; by
    /// default the one `userns-test run` had nextest write.
    pub nextest_junit: Option<PathBuf>,
    /// What the finishing step knows of the run that the records cannot
    /// show (`userns-test run` cancelled by SIGTERM), for the report's
    /// notes.
    pub notes: Vec<String>,
}

/// What `finish` did.
#[derive(Debug)]
pub enum Finish {
    /// The run's report, finished, and the errors of destinations that
    /// could not be written.
    Done(Box<Report>, Vec<ReportError>),
    /// There is no run of this job to finish: none was recorded, the
    /// newest one was finished already, or it belongs to another CI job.
    /// Why, in words; nothing was written.
    NoRun(String),
}

/// Finishes a run's report after its test command ended: every test
/// without an outcome is settled (crashed, or not run), and the JSON,
/// JUnit, step summary sections and annotations not written yet are.
///
/// A run is finished once: a second `finish` of it (a later job on the
/// same machine whose build failed, so that no test recorded anything)
/// must not present that run's outcomes, or its pass, as its own. Without
/// an explicit run directory, the newest run of the store is taken only if
/// it is not finished yet and, in CI, was recorded by this same CI job.
pub fn finish(dest: &Destinations, options: &FinishOptions) -> Result<Finish, ReportError> {
    let run = match options.run_dir.as_ref().or(dest.run_dir.as_ref()) {
        Some(dir) => RunDir::at(dir).map_err(|e| ReportError::fs("the run's records", e))?,
        None => {
            let (store, _) = store_of(dest)?.ok_or_else(|| ReportError {
                report_lost: true,
                what: "the report".into(),
                path: None,
                problem: format!(
                    "no report is asked for: set {JSON_VAR} (or {JUNIT_VAR}, or run in GitHub \
                     Actions) as for the test run"
                ),
            })?;
            let newest = store
                .runs()
                .map_err(|e| ReportError::fs("the run's records", e))?
                .into_iter()
                .next();
            match newest {
                Some((meta, run)) => {
                    if let Some(why) = not_this_jobs(&meta, &run) {
                        return Ok(Finish::NoRun(why));
                    }
                    run
                }
                None => {
                    return Ok(Finish::NoRun(format!(
                        "no run recorded in {}: no test process under userns-test recorded \
                         anything with these report variables (did the build fail, or did the \
                         tests run with other variables?)",
                        store.path().display()
                    )));
                }
            }
        }
    };
    let meta = run
        .meta()
        .map_err(|e| ReportError::fs("the run's records", e))?;
    if let Some(meta) = &meta
        && let Some(owner) = meta.owner
        && owner != this_process()
        && store::alive(meta, owner) == Some(true)
    {
        return Err(ReportError {
            report_lost: true,
            what: "the report".into(),
            path: Some(run.path().to_owned()),
            problem: format!(
                "the run is still going (its process {} is running): finish it after the test \
                 command ends",
                owner.0
            ),
        });
    }
    let junit = options
        .nextest_junit
        .clone()
        .or_else(|| meta.as_ref().and_then(|m| m.nextest_junit.clone()))
        .or_else(|| Some(run.file_path("nextest-junit.xml")));
    let finished = Finished {
        exit_code: options.exit_code,
        nextest: junit.map(|p| read_nextest_junit(&p)).unwrap_or_default(),
    };
    let lock = run
        .lock(dest.lock_timeout)
        .map_err(|e| ReportError::fs("the report (waiting for the run's lock)", e))?;
    if let Ok(Some(when)) = run.finished() {
        return Ok(Finish::NoRun(format!(
            "the run in {} was finished already, {when}: a run is finished once",
            run.path().display()
        )));
    }
    let mut report = assemble::assemble(&run, Some(&finished))
        .map_err(|e| ReportError::fs("the report (reading the run)", e))?;
    report.run.notes.extend(options.notes.iter().cloned());
    let mut binaries: Vec<String> = report.tests.iter().map(|t| t.binary.clone()).collect();
    binaries.dedup();
    let mut errors = write_outputs(dest, &run, &report, &binaries, true);
    let how = match options.exit_code {
        Some(code) => format!("the test command exited with {code}"),
        None => "the test command's exit status not given".to_owned(),
    };
    if let Err(e) = run.mark_finished(&how) {
        errors.push(ReportError::fs(
            "the run's records (marking it finished)",
            e,
        ));
    }
    drop(lock);
    Ok(Finish::Done(Box::new(report), errors))
}

/// Why the newest run `meta` of a store is not this job's to finish, if it
/// is not: finished already, or recorded by another CI job.
fn not_this_jobs(meta: &RunMeta, run: &RunDir) -> Option<String> {
    let described = format!(
        "the newest run recorded for this report ({} {}, started {})",
        meta.key.kind, meta.key.id, meta.started_at
    );
    if let Ok(Some(when)) = run.finished() {
        return Some(format!(
            "{described} was finished already, {when}; no test process recorded anything since \
             (did the build fail, or were no tests under userns-test run?)"
        ));
    }
    let here = store::ci_job();
    if here.is_some() && meta.ci_job != here {
        return Some(format!(
            "{described} belongs to another CI job ({}), not this one ({}); no test process of \
             this job recorded anything (did the build fail?)",
            meta.ci_job.as_deref().unwrap_or("none"),
            here.as_deref().unwrap_or("none")
        ));
    }
    None
}

/// Writes a report of no tests, saying `why`, where `dest` asks for the
/// JSON and JUnit reports: so that a job whose tests never ran does not
/// upload an earlier run's report as its own. The step summary is left
/// alone (nothing ran to summarise); `why` goes on stderr anyway.
pub fn write_no_run(dest: &Destinations, why: &str, exit_code: Option<i32>) -> Vec<ReportError> {
    let facts = HostFacts::get();
    let report = Report {
        schema: SCHEMA.to_owned(),
        run: RunInfo {
            kind: "none".into(),
            id: String::new(),
            started_at: None,
            finished: true,
            exit_code,
            notes: vec![why.to_owned()],
        },
        runner: Runner::current(facts),
        host: serde_json::to_value(facts).unwrap_or(serde_json::Value::Null),
        abilities: Vec::new(),
        root_causes: Vec::new(),
        counts: Counts::of(&[]),
        tests: Vec::new(),
    };
    write_report_files(dest, &report)
}

/// Writes `report` to the JSON and JUnit files `dest` asks for; the errors
/// of those that could not be written.
fn write_report_files(dest: &Destinations, report: &Report) -> Vec<ReportError> {
    let mut errors = Vec::new();
    if let Some(path) = &dest.json {
        let bytes = serde_json::to_vec(report).unwrap_or_default();
        if let Err(e) = replace_file(path, &bytes) {
            errors.push(ReportError::fs("the JSON report", e));
        }
    }
    if let Some(path) = &dest.junit {
        #[cfg(feature = "junit")]
        match junit::to_xml(report) {
            Ok(xml) => {
                if let Err(e) = replace_file(path, xml.as_bytes()) {
                    errors.push(ReportError::fs("the JUnit report", e));
                }
            }
            Err(e) => errors.push(ReportError {
                report_lost: true,
                what: "the JUnit report".into(),
                path: Some(path.clone()),
                problem: e.to_string(),
            }),
        }
        #[cfg(not(feature = "junit"))]
        errors.push(ReportError {
            report_lost: true,
            what: "the JUnit report".into(),
            path: Some(path.clone()),
            problem: "userns-test was built without its `junit` feature; enable it with \
                      `userns-test = { version = \"0.1\", features = [\"junit\"] }` or unset \
                      USERNS_TEST_JUNIT"
                .into(),
        });
    }
    errors
}

/// What nextest's JUnit says of each test: `(binary id, name)` to passed,
/// or failed in its words. Empty where the file is missing or unreadable
/// (the crash is then reported without nextest's words).
fn read_nextest_junit(path: &Path) -> std::collections::HashMap<(String, String), NextestSaw> {
    #[cfg(feature = "junit")]
    {
        let (parent, name) = split(path);
        let Ok(Some(bytes)) = Dir::for_writing(parent).and_then(|d| d.read(name, 256 << 20)) else {
            return Default::default();
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Default::default();
        };
        let Ok(report) = quick_junit::Report::deserialize_from_str(&text) else {
            return Default::default();
        };
        let mut out = std::collections::HashMap::new();
        for suite in &report.test_suites {
            for case in &suite.test_cases {
                let saw = match &case.status {
                    quick_junit::TestCaseStatus::Success { .. } => NextestSaw::Passed,
                    quick_junit::TestCaseStatus::NonSuccess { message, ty, .. } => {
                        NextestSaw::Failed(
                            message
                                .as_ref()
                                .or(ty.as_ref())
                                .map_or_else(|| "failed".to_owned(), |m| m.to_string()),
                        )
                    }
                    quick_junit::TestCaseStatus::Skipped { .. } => continue,
                };
                out.insert((suite.name.to_string(), case.name.to_string()), saw);
            }
        }
        out
    }
    #[cfg(not(feature = "junit"))]
    {
        let _ = path;
        Default::default()
    }
}

/// The binary's name for reports: nextest's binary id, else the
/// executable's name without cargo's `-<hash>` suffix.
pub fn binary_name() -> String {
    if let Some(id) = std::env::var("NEXTEST_BINARY_ID")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return id;
    }
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tests".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_owned()
        }
        _ => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dest(vars: &[(&str, &str)]) -> Destinations {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Destinations::from_lookup(|k| map.get(k).map(Into::into))
    }

    /// Twelve root causes of skips in one run: ten annotations (GitHub
    /// keeps no more per step), each once even when the run's binaries
    /// write twice, and the step summary says two causes are only there.
    #[test]
    fn annotations_stop_at_githubs_limit_and_the_summary_says_so() {
        use crate::report::model::*;
        let dir =
            std::env::temp_dir().join(format!("userns-test-annotations-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let summary = dir.join("summary.md");
        let d = Destinations {
            step_summary: Some(summary.clone()),
            annotations: true,
            lock_timeout: LOCK_TIMEOUT,
            ..Destinations::default()
        };
        let store = Store::beside(&dir.join("report.json")).unwrap();
        let run = store
            .run(
                &RunKey {
                    kind: "process".into(),
                    id: "t".into(),
                },
                None,
            )
            .unwrap();
        let mut report = assemble::assemble(&run, None).unwrap();
        for i in 0..12 {
            let cause = CauseText {
                id: "unexplained".into(),
                message: format!("cause {i}"),
            };
            let id = root_cause_id(&cause, "fix");
            report.root_causes.push(RootCause {
                id: id.clone(),
                cause,
                remedy: "fix".into(),
                abilities: vec!["net".into()],
                skipped: 1,
            });
            report.tests.push(TestEntry {
                binary: "pkg::suite".into(),
                name: format!("t{i:02}"),
                requires: vec!["net".into()],
                outcome: Outcome::Skipped,
                message: Some("needs net".into()),
                crashed: false,
                lacking: vec![Lack {
                    ability: "net".into(),
                    failed: "x".into(),
                    root_cause: id,
                }],
                duration_ms: 0.0,
                ran_despite_unmet: false,
            });
        }
        let binaries = vec!["pkg::suite".to_owned()];
        let (errors, first) = write_files(&d, &run, &report, &binaries, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            first.lines().filter(|l| l.starts_with("::notice ")).count(),
            10,
            "{first}"
        );
        let (_, again) = write_files(&d, &run, &report, &binaries, true);
        assert_eq!(again, "", "each cause is annotated once per run");
        let md = std::fs::read_to_string(&summary).unwrap();
        assert_eq!(
            md.matches("### userns-test: ").count(),
            1,
            "one section per binary"
        );
        assert!(
            md.contains("GitHub keeps 10 annotations per step: 2 further causes"),
            "{md}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_settings_are_named() {
        let d = dest(&[(LOCK_TIMEOUT_VAR, "5s"), (RUN_DIR_VAR, "relative/dir")]);
        assert_eq!(d.problems.len(), 2);
        assert!(
            d.problems[0]
                .problem
                .contains("USERNS_TEST_LOCK_TIMEOUT_MS=\"5s\""),
            "{:?}",
            d.problems
        );
        assert!(
            d.problems[1].problem.contains("absolute"),
            "{:?}",
            d.problems
        );
        assert_eq!(d.run_dir, None);
        let ok = dest(&[(LOCK_TIMEOUT_VAR, "250"), ("GITHUB_ACTIONS", "true")]);
        assert_eq!(ok.lock_timeout, Duration::from_millis(250));
        assert!(ok.problems.is_empty() && ok.annotations && ok.any());
    }
}
