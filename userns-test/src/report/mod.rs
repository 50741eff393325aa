//! Reports of a run, for CI: a JSON document (the record every other form
//! is made from), JUnit XML, GitHub's step summary and annotations. The
//! merge of many runners' reports is the `userns-test merge` command's
//! (package `userns-test-cli`).
//!
//! Destinations come from the environment ([`Destinations`]). Files are
//! written atomically (a temporary file, then `rename`), so a crash never
//! leaves half a report.
//!
//! # One report per run, whatever runs the binaries
//! A report covers one *run*: one `cargo test` (every runner binary it
//! starts adds its tests), one `cargo nextest run` (every test process adds
//! its outcome), or one direct execution. Each process writes its part
//! under `.<report file name>.parts/<run id>/` beside the report, then, under
//! an exclusive `flock`, rebuilds the whole report from all the parts of
//! the run. So the report is whole after every process, never clobbered by
//! a concurrent one, and written as one file per run:
//!
//! - under nextest (`NEXTEST_RUN_ID`), the `--list` invocation writes the
//!   host, the verdicts and the skip decisions (skipped tests never start a
//!   process), and each test process adds its outcome; a listed test nextest
//!   did not run (an `-E` filter, a stop after a failure) is `not_run`;
//! - under `cargo test`, the run is keyed by the `cargo` process that
//!   started the binaries; otherwise by the binary's own process.
//!
//! Parts of earlier runs are removed when a new run writes its first part.

pub mod github;
#[cfg(feature = "junit")]
pub mod junit;
pub mod markdown;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::facts::HostFacts;
use crate::policy::Unmet;
use crate::runner::{RunRecord, TestOutcome, TestRecord};
use crate::verdict::Verdict;

/// The `schema` of a JSON report.
pub const SCHEMA: &str = "userns-test/report/1";

/// A JSON report: one run on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Which run this is.
    pub run: RunId,
    /// The machine and CI job it ran on.
    pub runner: Runner,
    /// The host facts, as `userns-test doctor --json` prints them.
    pub host: serde_json::Value,
    /// Every ability some test of the run needed, with its verdict, as
    /// `doctor --json` prints them (`ability`, `verdict`, `step`, `failure`,
    /// `cause`, `remedy`, `probe_us`).
    pub abilities: Vec<serde_json::Value>,
    /// Every test of every binary of the run, in (binary, name) order.
    pub tests: Vec<TestEntry>,
    /// How many tests ended each way.
    pub counts: Counts,
}

/// Identifies a run, so that the parts of one run are put together and
/// never mixed with another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunId {
    /// `nextest`, `cargo` or `process`.
    pub kind: String,
    /// `NEXTEST_RUN_ID`, or the cargo or test process's pid and start time.
    pub id: String,
}

/// The machine and CI job a report comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    /// The name `merge` gives this runner's column: `USERNS_TEST_RUNNER`
    /// if set, else the CI job and image (`GITHUB_JOB`/`ImageOS`,
    /// `CI_JOB_NAME`, ...), else the host name.
    pub label: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Distribution (`PRETTY_NAME`).
    pub distro: Option<String>,
    /// Container runtime, when detected.
    pub container: Option<String>,
    /// The CI variables present (`GITHUB_ACTIONS`, `RUNNER_NAME`,
    /// `RUNNER_OS`, `ImageOS`, `GITHUB_JOB`, ...).
    pub ci: BTreeMap<String, String>,
}

/// How one test ended, in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestEntry {
    /// The test binary (the cargo target name, or nextest's binary id).
    pub binary: String,
    /// The libtest name (`module::test`).
    pub name: String,
    /// The abilities it requires.
    pub requires: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The failure message, the skip reason or the `#[ignore]` reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For a skipped test (or one run or failed despite them): each unmet
    /// ability and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lacking: Vec<Lack>,
    /// How long its body ran, in milliseconds.
    pub duration_ms: f64,
    /// It ran although its requirements were unmet (`--ignored`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ran_despite_unmet: bool,
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran and passed.
    Passed,
    /// Ran and failed (or failed by `USERNS_TEST_REQUIRE`).
    Failed,
    /// Not run: the host lacks what it requires.
    Skipped,
    /// Not run: `#[ignore]`.
    Ignored,
    /// Not selected by the command line's filters.
    FilteredOut,
    /// Listed for nextest, which did not run it.
    NotRun,
}

impl Outcome {
    /// Whether the test's body ran.
    pub fn ran(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Failed)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Ignored => "ignored",
            Outcome::FilteredOut => "filtered out",
            Outcome::NotRun => "not run",
        })
    }
}

/// One unmet ability of a test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lack {
    /// The ability.
    pub ability: String,
    /// What failed: `<step> failed: <errno>`.
    pub failed: String,
    /// The cause's id (e.g. `seccomp_filter`).
    pub cause_id: String,
    /// The cause, in words.
    pub cause: String,
    /// What to do about it.
    pub remedy: String,
}

/// How many tests ended each way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped for unmet requirements.
    pub skipped: usize,
    /// `#[ignore]`d.
    pub ignored: usize,
    /// Filtered out.
    pub filtered_out: usize,
    /// Listed, not run by nextest.
    pub not_run: usize,
}

impl Counts {
    fn of(tests: &[TestEntry]) -> Counts {
        let mut c = Counts::default();
        for t in tests {
            *match t.outcome {
                Outcome::Passed => &mut c.passed,
                Outcome::Failed => &mut c.failed,
                Outcome::Skipped => &mut c.skipped,
                Outcome::Ignored => &mut c.ignored,
                Outcome::FilteredOut => &mut c.filtered_out,
                Outcome::NotRun => &mut c.not_run,
            } += 1;
        }
        c
    }
}

impl Lack {
    fn from_unmet(unmet: &Unmet) -> Vec<Lack> {
        unmet
            .reasons
            .iter()
            .map(|(ability, reason)| Lack {
                ability: ability.name().to_owned(),
                failed: reason.short(),
                cause_id: reason.cause.id().to_owned(),
                cause: reason.cause.to_string(),
                remedy: reason.remedy.clone(),
            })
            .collect()
    }
}

impl TestEntry {
    fn from_record(binary: &str, t: &TestRecord) -> TestEntry {
        let (outcome, message, lacking) = match &t.outcome {
            TestOutcome::Passed => (Outcome::Passed, None, Vec::new()),
            TestOutcome::Failed { message } => (Outcome::Failed, Some(message.clone()), Vec::new()),
            TestOutcome::Skipped { unmet } => (
                Outcome::Skipped,
                Some(unmet.to_string()),
                Lack::from_unmet(unmet),
            ),
            TestOutcome::Ignored { reason } => (
                Outcome::Ignored,
                (!reason.is_empty()).then(|| reason.clone()),
                Vec::new(),
            ),
            TestOutcome::FilteredOut => (Outcome::FilteredOut, None, Vec::new()),
            TestOutcome::NotRun => (Outcome::NotRun, None, Vec::new()),
        };
        TestEntry {
            binary: binary.to_owned(),
            name: t.name.clone(),
            requires: t.requires.iter().map(|a| a.name().to_owned()).collect(),
            outcome,
            message,
            lacking,
            duration_ms: t.duration.as_secs_f64() * 1e3,
            ran_despite_unmet: t.ran_despite_unmet,
        }
    }
}

/// What one process of a run contributes: a binary's tests and verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryPart {
    /// The binary.
    pub binary: String,
    /// The verdicts its selected tests needed, as `doctor --json` prints
    /// them; a `USERNS_TEST_DENY`ied ability appears unavailable with
    /// cause `denied`.
    pub abilities: Vec<serde_json::Value>,
    /// Its tests.
    pub tests: Vec<TestEntry>,
}

impl BinaryPart {
    /// The part of `binary` from the runner's record.
    pub fn from_record(binary: &str, record: &RunRecord) -> BinaryPart {
        let mut verdicts: Vec<Verdict> = record.verdicts.clone();
        verdicts.extend(record.denied.iter().map(|&a| Verdict {
            ability: a,
            status: crate::verdict::Status::Unavailable(crate::probe::denied_reason(a)),
            note: None,
            duration: Duration::ZERO,
        }));
        verdicts.sort_by_key(|v| v.ability);
        BinaryPart {
            binary: binary.to_owned(),
            abilities: verdicts.iter().map(verdict_json).collect(),
            tests: record
                .tests
                .iter()
                .map(|t| TestEntry::from_record(binary, t))
                .collect(),
        }
    }
}

/// A verdict as reports and `doctor --json` show it: its serde form plus
/// `failed`, the one-line `<step> failed: <errno>` of an unavailable one.
pub fn verdict_json(v: &Verdict) -> serde_json::Value {
    let mut value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    if let (Some(reason), Some(map)) = (v.reason(), value.as_object_mut()) {
        map.insert("failed".into(), reason.short().into());
    }
    value
}

impl Report {
    /// The report of a run from its binaries' parts, on this host.
    pub fn assemble(run: RunId, parts: Vec<BinaryPart>) -> Report {
        let facts = HostFacts::get();
        let mut abilities: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let mut tests = Vec::new();
        for part in parts {
            for a in part.abilities {
                if let Some(name) = a["ability"].as_str() {
                    abilities.entry(name.to_owned()).or_insert(a);
                }
            }
            tests.extend(part.tests);
        }
        tests.sort_by(|a, b| (&a.binary, &a.name).cmp(&(&b.binary, &b.name)));
        // Ability order is the crate's (user first), not alphabetical.
        let mut abilities: Vec<serde_json::Value> = abilities.into_values().collect();
        abilities.sort_by_key(|a| {
            a["ability"]
                .as_str()
                .and_then(|n| n.parse::<crate::Ability>().ok())
                .map_or(usize::MAX, |a| a.index())
        });
        Report {
            schema: SCHEMA.to_owned(),
            run,
            runner: Runner::current(facts),
            host: serde_json::to_value(facts).unwrap_or(serde_json::Value::Null),
            abilities,
            counts: Counts::of(&tests),
            tests,
        }
    }
}

/// The CI variables recorded in a report, when present.
const CI_VARIABLES: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_WORKFLOW",
    "GITHUB_JOB",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "RUNNER_NAME",
    "RUNNER_OS",
    "RUNNER_ARCH",
    "RUNNER_ENVIRONMENT",
    "ImageOS",
    "ImageVersion",
    "GITLAB_CI",
    "CI_JOB_NAME",
    "CI_JOB_ID",
    "CI_RUNNER_DESCRIPTION",
    "BUILDKITE_AGENT_NAME",
    "BUILDKITE_LABEL",
    "JENKINS_URL",
    "NODE_NAME",
    "JOB_NAME",
];

impl Runner {
    /// This machine and CI job, from the host facts and the environment.
    pub fn current(facts: &HostFacts) -> Runner {
        Runner::from_env(facts, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    fn from_env(facts: &HostFacts, var: impl Fn(&str) -> Option<String>) -> Runner {
        let ci: BTreeMap<String, String> = CI_VARIABLES
            .iter()
            .filter_map(|&k| var(k).map(|v| (k.to_owned(), v)))
            .collect();
        let joined = |a: Option<String>, b: Option<String>| match (a, b) {
            (Some(a), Some(b)) => Some(format!("{a} ({b})")),
            (a, b) => a.or(b),
        };
        let label = var("USERNS_TEST_RUNNER")
            .or_else(|| {
                ci.contains_key("GITHUB_ACTIONS").then(|| {
                    joined(
                        var("GITHUB_JOB"),
                        var("ImageOS").or_else(|| var("RUNNER_NAME")),
                    )
                })?
            })
            .or_else(|| joined(var("CI_JOB_NAME"), var("CI_RUNNER_DESCRIPTION")))
            .or_else(|| joined(var("BUILDKITE_LABEL"), var("BUILDKITE_AGENT_NAME")))
            .or_else(|| joined(var("JOB_NAME"), var("NODE_NAME")))
            .or_else(|| facts.hostname.clone())
            .unwrap_or_else(|| "unnamed host".into());
        Runner {
            label,
            hostname: facts.hostname.clone(),
            kernel: facts.kernel_release.clone(),
            distro: facts.distro.clone(),
            container: facts.container.clone(),
            ci,
        }
    }
}

/// Where reports go, from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    /// `USERNS_TEST_REPORT_JSON`.
    pub json: Option<PathBuf>,
    /// `USERNS_TEST_JUNIT`.
    pub junit: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: Markdown is appended.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_ACTIONS=true`: annotations on stdout.
    pub annotations: bool,
}

impl Destinations {
    /// Reads the destinations from the environment.
    pub fn from_env() -> Destinations {
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Destinations {
            json: path("USERNS_TEST_REPORT_JSON"),
            junit: path("USERNS_TEST_JUNIT"),
            step_summary: path("GITHUB_STEP_SUMMARY"),
            annotations: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
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

/// A report that could not be written.
#[derive(Debug)]
pub struct ReportError {
    /// What was being written (`the JSON report`, ...).
    pub what: &'static str,
    /// Where.
    pub path: PathBuf,
    /// What went wrong.
    pub error: std::io::Error,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not write {} to {}: {}; the results above stand, but this run's report is \
             missing: make the directory exist and be writable, or unset the variable",
            self.what,
            self.path.display(),
            self.error
        )
    }
}

impl std::error::Error for ReportError {}

/// Which process of a run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A whole run of the binary (`cargo test`, a direct execution).
    Complete,
    /// nextest listing the binary's tests (`--list` without `--ignored`).
    NextestList,
    /// nextest running one test.
    NextestTest,
}

impl Phase {
    /// The phase of this process, from nextest's variables and the
    /// arguments.
    pub fn current(args: &libtest_mimic::Arguments) -> Option<Phase> {
        let nextest = std::env::var_os("NEXTEST_RUN_ID").is_some();
        match (nextest, args.list) {
            (false, false) => Some(Phase::Complete),
            (false, true) => None,
            (true, true) if !args.ignored => Some(Phase::NextestList),
            (true, true) => None,
            (true, false) => Some(Phase::NextestTest),
        }
    }
}

/// Writes the reports `dest` asks for, for this process's `record`.
/// Errors name the destination; the caller prints them and exits non-zero.
pub fn emit(
    dest: &Destinations,
    phase: Phase,
    binary: &str,
    record: &RunRecord,
) -> Vec<ReportError> {
    let mut errors = Vec::new();
    let part = BinaryPart::from_record(binary, record);
    let run = RunId::current();
    if let Some(primary) = dest.json.as_ref().or(dest.junit.as_ref()) {
        match store::Store::open(primary, &run) {
            Ok(store) => {
                let written = match phase {
                    Phase::NextestTest => store.add_test_outcomes(&part),
                    _ => store.add_part(&part),
                };
                match written.and_then(|()| {
                    store.assemble_locked(run.clone(), |report| write_all(dest, report))
                }) {
                    Ok(more) => errors.extend(more),
                    Err(error) => errors.push(ReportError {
                        what: "the report's parts",
                        path: store.dir().to_owned(),
                        error,
                    }),
                }
            }
            Err(error) => errors.push(ReportError {
                what: "the report's parts",
                path: primary.clone(),
                error,
            }),
        }
    }
    // Step summary and annotations describe the skips, known once the
    // binary is listed or run: written once per binary, never per test
    // process.
    if phase != Phase::NextestTest {
        let report = Report::assemble(run, vec![part]);
        if let Some(path) = &dest.step_summary
            && let Err(error) = store::append(path, &markdown::step_summary(&report))
        {
            errors.push(ReportError {
                what: "the GitHub step summary",
                path: path.clone(),
                error,
            });
        }
        if dest.annotations {
            // On stderr, which the Actions runner scans for workflow
            // commands as it does stdout: libtest's summary stays the last
            // line of stdout for the tools that parse it.
            let required = std::env::var_os("USERNS_TEST_REQUIRE").is_some_and(|v| !v.is_empty());
            eprint!("{}", github::annotations(&report, required));
        }
    }
    errors
}

/// Writes the JSON and JUnit files of the assembled report.
fn write_all(dest: &Destinations, report: &Report) -> Vec<ReportError> {
    let mut errors = Vec::new();
    if let Some(path) = &dest.json {
        let result = serde_json::to_vec_pretty(report)
            .map_err(std::io::Error::other)
            .and_then(|bytes| store::write_atomically(path, &bytes));
        if let Err(error) = result {
            errors.push(ReportError {
                what: "the JSON report",
                path: path.clone(),
                error,
            });
        }
    }
    if let Some(path) = &dest.junit {
        #[cfg(feature = "junit")]
        let result =
            junit::to_xml(report).and_then(|xml| store::write_atomically(path, xml.as_bytes()));
        #[cfg(not(feature = "junit"))]
        let result: std::io::Result<()> = Err(std::io::Error::other(
            "userns-test was built without its `junit` feature; enable it with \
             `userns-test = { version = \"0.1\", features = [\"junit\"] }` \
             or unset USERNS_TEST_JUNIT",
        ));
        if let Err(error) = result {
            errors.push(ReportError {
                what: "the JUnit report",
                path: path.clone(),
                error,
            });
        }
    }
    errors
}

impl RunId {
    /// This process's run: nextest's run id, else the `cargo` process that
    /// started this binary, else this process.
    pub fn current() -> RunId {
        if let Some(id) = std::env::var("NEXTEST_RUN_ID")
            .ok()
            .filter(|v| !v.is_empty())
        {
            return RunId {
                kind: "nextest".into(),
                id,
            };
        }
        let ppid = std::os::unix::process::parent_id();
        let parent_is_cargo = std::fs::read_to_string(format!("/proc/{ppid}/comm"))
            .is_ok_and(|c| c.trim() == "cargo");
        let (kind, pid) = if parent_is_cargo {
            ("cargo", ppid)
        } else {
            ("process", std::process::id())
        };
        // A pid is reused; its start time (in clock ticks since boot) makes
        // the pair unique for this boot.
        let started = process_start_time(pid).unwrap_or(0);
        RunId {
            kind: kind.into(),
            id: format!("{pid}-{started}"),
        }
    }
}

/// Field 22 of `/proc/PID/stat`, after the parenthesised command name.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
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

    #[test]
    fn runner_label_prefers_the_override_then_ci_then_host() {
        let facts = HostFacts {
            hostname: Some("box".into()),
            ..HostFacts::default()
        };
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Runner::from_env(&facts, env(&[])).label, "box");
        let gh = Runner::from_env(
            &facts,
            env(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_JOB", "test"),
                ("ImageOS", "ubuntu24"),
            ]),
        );
        assert_eq!(gh.label, "test (ubuntu24)");
        assert_eq!(gh.ci["ImageOS"], "ubuntu24");
        let named = Runner::from_env(
            &facts,
            env(&[("USERNS_TEST_RUNNER", "podman"), ("GITHUB_ACTIONS", "true")]),
        );
        assert_eq!(named.label, "podman");
    }

    #[test]
    fn start_time_follows_the_command_name_even_with_parentheses() {
        assert!(process_start_time(std::process::id()).is_some());
    }
}
