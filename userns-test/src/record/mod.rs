//! What a run's processes record, for the `userns-test` command to make
//! reports from: the test side of the reports.
//!
//! # One run, its records true at every moment
//! A run is one `cargo test` (every binary it starts adds its tests), one
//! `cargo nextest run` (every test process adds its outcome), or one direct
//! execution; its processes are recognised by their ancestry
//! ([`lineage`]). Each records what it knows in the run's directory
//! (`store.rs`): a *ledger* per binary with one slot per test, updated in
//! place as each test starts and ends, so that a process that dies mid-test
//! leaves the fact behind, and a few small files of this crate's own
//! format (the verdicts and skip reasons, a failure's message).
//!
//! # Reports are the command's
//! The test side writes no report: JSON, JUnit, GitHub's step summary and
//! annotations are written by the `userns-test` command (package
//! `userns-test-cli`), which is not linked into anyone's tests: after the
//! run under `userns-test run` / `userns-test nextest`, or by `userns-test
//! finish` after a run made another way. That keeps `serde_json` and a
//! JUnit writer, and their trait impls, out of every test target, and the
//! report work out of every test process.
//!
//! # Files nobody else can touch
//! Every file goes through `safe_fs.rs`: the run's records live in a
//! directory private to this uid, created and replaced without following
//! anything another user planted.
//!
//! Not a stable API: the `userns-test` command uses what is public here,
//! through `userns_test::__cli`.

pub(crate) mod ledger;
pub mod lineage;
pub(crate) mod session;
pub mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The error of `what`, from a file's error.
    pub fn fs(what: &str, e: FsError) -> ReportError {
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
pub fn store_of(dest: &Destinations) -> Result<Option<(Store, Option<ReportError>)>, ReportError> {
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

/// Whether this process keeps records for `dest`: under `userns-test run`,
/// or for a later `userns-test finish` where a report file is asked for
/// (a step summary alone needs the wrapper); never in a copy of this
/// binary that a test started inside the run (a command-line interface's
/// test, a fork-based helper), whose records would overwrite the run's.
pub(crate) fn keeps_records(dest: &Destinations) -> bool {
    (dest.json.is_some() || dest.junit.is_some() || dest.run_dir.is_some())
        && lineage::nested_copy().is_none()
}

/// What [`open_run`] returns.
type Opened = Result<Option<(RunDir, bool, Option<ReportError>)>, ReportError>;

/// The run opened before `main`, for the destinations it was opened for.
static OPENED_EARLY: std::sync::Mutex<Option<(Destinations, Opened)>> = std::sync::Mutex::new(None);

/// Opens this process's run now, for the session that begins later (a
/// nextest test process about to enter a user namespace, where the host's
/// owners of the run's path can no longer be seen: see
/// `in_userns/in_place.rs`). Nothing where no record is kept.
pub(crate) fn open_run_before_entering() {
    let dest = Destinations::from_env();
    if !keeps_records(&dest) {
        return;
    }
    let opened = open_run(&dest);
    *OPENED_EARLY.lock().unwrap_or_else(|e| e.into_inner()) = Some((dest, opened));
}

/// This process's run directory, whether a wrapper writes the reports,
/// and an error met on the way that did not stop it: the one opened
/// before `main` for the same destinations, if any.
///
/// `USERNS_TEST_RUN_DIR` counts only when the `userns-test run` command
/// that made it started this process and has not finished the run: a
/// variable left in the environment (a later CI step, a shell) or passed
/// on by a test that runs its binary again must not fold this process's
/// results into a run that is over. Such a process says why and records
/// as if the variable were not set.
fn open_run(dest: &Destinations) -> Opened {
    let early = OPENED_EARLY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some((for_dest, opened)) = early
        && (&for_dest.json, &for_dest.junit, &for_dest.run_dir)
            == (&dest.json, &dest.junit, &dest.run_dir)
    {
        return opened;
    }
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

fn split(path: &Path) -> (&Path, &std::ffi::OsStr) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    (parent, path.file_name().unwrap_or(std::ffi::OsStr::new("")))
}

/// Replaces the file at `path` (see [`Dir::replace`]).
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
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
pub fn append_file(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
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
