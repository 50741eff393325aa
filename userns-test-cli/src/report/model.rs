//! The JSON report (`userns-test/report/2`): one run on one host, the
//! record every other form (JUnit, Markdown, annotations, `merge`) is made
//! from.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use userns_test::HostFacts;
use userns_test::verdict::Verdict;

/// The `schema` of a JSON report.
pub const SCHEMA: &str = "userns-test/report/2";

/// A JSON report: one run on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Which run this is, and whether it is over.
    pub run: RunInfo,
    /// The machine and CI job it ran on.
    pub runner: Runner,
    /// The host facts, as `userns-test doctor --json` prints them.
    pub host: serde_json::Value,
    /// Every ability some test of the run needed, with its verdict, as
    /// `doctor --json` prints them (`ability`, `verdict`, `step`, `failure`,
    /// `cause`, `remedy`, `probe_us`), and for an unavailable one the id of
    /// its root cause.
    pub abilities: Vec<serde_json::Value>,
    /// Each distinct reason abilities were unavailable, once, with the
    /// abilities it takes and how many tests it skipped.
    pub root_causes: Vec<RootCause>,
    /// Every test of every binary of the run, in (binary, name) order.
    pub tests: Vec<TestEntry>,
    /// How many tests ended each way.
    pub counts: Counts,
}

impl Report {
    /// The names of the tests skipped for the root cause `id`.
    pub fn skipped_by(&self, id: &str) -> Vec<&str> {
        self.tests
            .iter()
            .filter(|t| {
                t.outcome == Outcome::Skipped && t.lacking.iter().any(|l| l.root_cause == id)
            })
            .map(|t| t.name.as_str())
            .collect()
    }
}

/// Identifies a run and says how much of it the report saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `nextest`, `cargo`, `process`, or `wrapped` (started by
    /// `userns-test run`).
    pub kind: String,
    /// `NEXTEST_RUN_ID`, the cargo or test process's pid and start time,
    /// or the wrapper's id.
    pub id: String,
    /// When the run's first process recorded something (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Whether the run is known to be over, so that every outcome in the
    /// report is final: set by `userns-test finish` (or `userns-test run`)
    /// after the test command ended. While `false`, a test without an
    /// outcome yet is `unknown`, never `not_run`.
    pub finished: bool,
    /// The test command's exit status, when the report was finished by a
    /// step that knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What the report could not see, in words (a ledger that could not be
    /// read, processes in another PID namespace, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The machine and CI job a report comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    /// The name `merge` gives this runner's column: `USERNS_TEST_RUNNER`
    /// if set, else the CI job and image (`GITHUB_JOB`/`ImageOS`,
    /// `CI_JOB_NAME`, ...), else the host name. Shards of one runner share
    /// it, and `merge` puts them in one column.
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
    /// nextest's `--partition`, when the run was one shard of a suite
    /// (`NEXTEST_PARTITION`... as the environment gives it), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// One reason abilities were unavailable, said once for all the
/// abilities and tests it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCause {
    /// Stable for the same cause and fix on any runner:
    /// `<cause id>-<8 hex digits>`.
    pub id: String,
    /// `C1`, `C2`, ...: its name in every output of the run (the terminal,
    /// the step summary, JUnit, annotations), most tests skipped first.
    #[serde(default)]
    pub label: String,
    /// The cause: `{id, message}`.
    pub cause: CauseText,
    /// What to do about it, narrowest change first.
    pub remedy: String,
    /// The abilities it makes unavailable.
    pub abilities: Vec<String>,
    /// How many tests of the run it skipped.
    pub skipped: usize,
}

/// A cause as reports carry it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CauseText {
    /// The cause's stable identifier (e.g. `seccomp_filter`).
    pub id: String,
    /// The cause, in words.
    pub message: String,
}

/// How one test ended, in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestEntry {
    /// The test binary (`package::target`, as nextest names it).
    pub binary: String,
    /// The libtest name (`module::test`).
    pub name: String,
    /// The abilities it requires.
    pub requires: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The failure message, the skip reason (what failed and its cause),
    /// the `#[ignore]` reason, or why the outcome is unknown or the test
    /// did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its process ended without reporting an outcome (a signal, an
    /// abort, `exit` inside the test): the test is `failed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crashed: bool,
    /// For a skipped test (or one run or failed despite them): each unmet
    /// ability, what failed, and its root cause's id.
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
    /// Ran and failed, was failed by `USERNS_TEST_REQUIRE`, or crashed.
    Failed,
    /// Not run: the host lacks what it requires.
    Skipped,
    /// Not run: `#[ignore]`.
    Ignored,
    /// Not selected by the command line's filters.
    FilteredOut,
    /// Never started, in a run known to be over (an `-E` filter,
    /// `--partition`, a stop after a failure, or its binary crashed first).
    NotRun,
    /// Not known when the report was written: not started yet, or started
    /// and still running; `message` says which.
    Unknown,
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
            Outcome::Unknown => "unknown",
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
    /// The id of its entry in the report's `root_causes`.
    pub root_cause: String,
}

/// How many tests ended each way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed (crashed ones included).
    pub failed: usize,
    /// Skipped for unmet requirements.
    pub skipped: usize,
    /// `#[ignore]`d.
    pub ignored: usize,
    /// Filtered out.
    pub filtered_out: usize,
    /// Never started in a finished run.
    pub not_run: usize,
    /// Not known yet.
    pub unknown: usize,
}

impl Counts {
    /// The counts of `tests`.
    pub fn of<'a>(tests: impl IntoIterator<Item = &'a TestEntry>) -> Counts {
        let mut c = Counts::default();
        for t in tests {
            *match t.outcome {
                Outcome::Passed => &mut c.passed,
                Outcome::Failed => &mut c.failed,
                Outcome::Skipped => &mut c.skipped,
                Outcome::Ignored => &mut c.ignored,
                Outcome::FilteredOut => &mut c.filtered_out,
                Outcome::NotRun => &mut c.not_run,
                Outcome::Unknown => &mut c.unknown,
            } += 1;
        }
        c
    }
}

/// A reason as reports store it: what failed, the cause, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LackDetail {
    /// The ability.
    pub ability: String,
    /// `<step> failed: <failure>`.
    pub failed: String,
    /// The cause.
    pub cause: CauseText,
    /// The fix.
    pub remedy: String,
}

impl LackDetail {
    /// The id of this lack's root cause.
    pub fn root_cause_id(&self) -> String {
        root_cause_id(&self.cause, &self.remedy)
    }
}

/// `<cause id>-<8 hex digits of a hash of the cause's words and the fix>`:
/// the same on every runner for the same cause and fix.
pub fn root_cause_id(cause: &CauseText, remedy: &str) -> String {
    userns_test::__cli::root_cause_id(&cause.id, &cause.message, remedy)
}

/// A verdict as reports and `doctor --json` show it (see
/// `userns_test::Verdict::to_json`), as a JSON value.
pub fn verdict_json(v: &Verdict) -> serde_json::Value {
    serde_json::from_str(&v.to_json().to_text()).unwrap_or(serde_json::Value::Null)
}

/// The host facts as reports show them (see `HostFacts::to_json`).
pub fn facts_json(facts: &HostFacts) -> serde_json::Value {
    serde_json::from_str(&facts.to_json().to_text()).unwrap_or(serde_json::Value::Null)
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
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
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

    pub(crate) fn from_env(facts: &HostFacts, var: impl Fn(&str) -> Option<String>) -> Runner {
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
            shard: var("USERNS_TEST_SHARD"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_cause_ids_are_stable_and_distinct() {
        let cause = CauseText {
            id: "seccomp_filter".into(),
            message: "a filter".into(),
        };
        let a = root_cause_id(&cause, "fix one");
        assert_eq!(a, root_cause_id(&cause, "fix one"));
        assert!(a.starts_with("seccomp_filter-"), "{a}");
        assert_eq!(a.len(), "seccomp_filter-".len() + 8);
        assert_ne!(a, root_cause_id(&cause, "fix two"));
    }

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
}
