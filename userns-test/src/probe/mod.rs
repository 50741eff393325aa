//! Probes: each ability's operation, performed in a throwaway child, and
//! what was observed. A probe says what happened (the step that failed and
//! how, see [`Observation`]); it never says why: that is
//! [`crate::diagnosis`], which reads the observation with the host facts
//! and what other probes observed.
//!
//! [`probe`](crate::probe()) caches one verdict per ability per process;
//! [`probe_with`](crate::probe_with) probes and diagnoses again every time
//! (benchmarks, tools); [`observe`] only probes.

pub(crate) mod control;
linux! {
    mod cgroup;
    pub(crate) mod child;
    pub(crate) mod external;
    pub(crate) mod perform;
    pub(crate) mod program;
    mod raw;
    use perform::perform;
    pub(crate) use perform::child_outcome;
}

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::Ability;
use crate::failure::Failure;
use crate::step::Step;

/// What a probe saw: whether the ability's operation worked and, if not,
/// the step that failed and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The ability probed.
    pub ability: Ability,
    /// `Ok` when every step worked.
    pub result: Result<(), Failed>,
    /// A fact learnt on the way, e.g. `Landlock ABI 6`.
    pub note: Option<String>,
    /// How long the probe took.
    pub duration: Duration,
}

/// The step of a probe that failed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The operation that failed.
    pub step: Step,
    /// How it failed.
    pub failure: Failure,
}

impl Observation {
    /// The failed step, when the operation did not work.
    pub fn failed(&self) -> Option<&Failed> {
        self.result.as_ref().err()
    }
}

/// The outcome of a probe's operation.
pub(crate) type Outcome = Result<(), Failed>;

/// A failed outcome.
pub(crate) fn failed(step: Step, failure: Failure) -> Outcome {
    Err(Failed { step, failure })
}

/// How probes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// The longest a probe may take before its child is killed.
    pub timeout: Duration,
    /// bubblewrap to run, instead of `bwrap` on `PATH`.
    pub bwrap: Option<PathBuf>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(10),
            bwrap: None,
        }
    }
}

/// Performs `ability`'s operation now, without any cache, and says what
/// happened. The host facts are read only where the operation depends on
/// them (root, the subordinate ids of this user, the capability
/// cap_setpcap drops).
///
/// Off Linux (and built with `--cfg userns_test_unsupported_os`) nothing
/// is performed: every ability fails at [`Step::CheckSystem`], with the
/// system's name.
pub fn observe(ability: Ability, options: &ProbeOptions) -> Observation {
    let started = Instant::now();
    let (result, note) = perform(ability, options);
    Observation {
        ability,
        result,
        note,
        duration: started.elapsed(),
    }
}

elsewhere! {
    fn perform(_: Ability, _: &ProbeOptions) -> (Outcome, Option<String>) {
        let found = crate::facts::system_name();
        (failed(Step::CheckSystem, Failure::Mismatch { found }), None)
    }
}
