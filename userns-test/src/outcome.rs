//! What a run of a test binary produced: one record per test and the
//! verdicts it needed. The runner fills these; summaries and reports read
//! them.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::Ability;
use crate::policy::Unmet;
use crate::verdict::Verdict;

/// How one test ended, as its process saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Ran and passed.
    Passed,
    /// Ran and failed, or was failed by `USERNS_TEST_REQUIRE` or a
    /// malformed environment.
    Failed {
        /// The failure message.
        message: String,
    },
    /// Not run: requirements unmet.
    Skipped {
        /// The unmet abilities, each with its reason.
        unmet: Unmet,
    },
    /// Not run: `#[ignore]`.
    Ignored {
        /// `#[ignore = "why"]`, or empty.
        reason: String,
    },
    /// Not selected by the command line's filters.
    FilteredOut,
    /// Listed (`--list`) to be run in a process of its own, as nextest
    /// does; its outcome comes from that process.
    Pending,
}

/// One test of the run, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    /// The libtest name (`module::test`).
    pub name: String,
    /// What it requires.
    pub requires: Vec<Ability>,
    /// How it ended.
    pub outcome: TestOutcome,
    /// How long its body ran (zero when it did not run).
    pub duration: Duration,
    /// It ran although its requirements were unmet (`--ignored`).
    pub ran_despite_unmet: bool,
}

/// Everything a run produced, for summaries and reports.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Every collected test, in the order of the cases run (name order
    /// under [`main!`](crate::main)).
    pub tests: Vec<TestRecord>,
    /// The verdicts on the abilities the selected tests needed.
    pub verdicts: Vec<Verdict>,
    /// Abilities counted unavailable through `USERNS_TEST_DENY`.
    pub denied: BTreeSet<Ability>,
    /// The environment error, when the configuration is malformed.
    pub config_error: Option<String>,
    /// Functions of the target that the runner never runs (a plain
    /// `#[test]`, ...), as `main!(warn_uncollected)` lists them:
    /// `file:line: name: why`.
    pub never_run: Vec<String>,
}
