//! Decide: for each selected test, before the run, whether it runs, is
//! skipped with its unmet requirements, or fails (`USERNS_TEST_REQUIRE`, a
//! malformed environment).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::Ability;
use crate::gate;
use crate::outcome::TestOutcome;
use crate::policy::{Decision, Settings, Unmet};
use crate::record::session::Planned;
use crate::registry::TestCase;

/// What the runner decided for one test before the run.
pub(super) enum Plan {
    Run,
    Skip(Unmet),
    Fail(String),
}

impl Plan {
    /// What a listing records for the test: nextest never starts a process
    /// for a test listed as ignored, so a skip is decided here.
    pub(super) fn listed(&self) -> TestOutcome {
        match self {
            Plan::Skip(unmet) => TestOutcome::Skipped {
                unmet: unmet.clone(),
            },
            _ => TestOutcome::Pending,
        }
    }

    /// The plan as the report session's ledger takes it.
    pub(super) fn planned(&self, selected: bool) -> Planned<'_> {
        match (self, selected) {
            (_, false) => Planned::Out,
            (Plan::Run, true) => Planned::Run,
            (Plan::Skip(unmet), true) => Planned::Skip(unmet),
            (Plan::Fail(_), true) => Planned::Fail,
        }
    }
}

pub(super) fn plan(case: &TestCase, settings: Result<&Settings, &crate::ConfigError>) -> Plan {
    if case.requires.is_empty() {
        return Plan::Run;
    }
    match settings {
        Err(e) => Plan::Fail(format!("userns-test: {e}")),
        Ok(s) => match weighed(case, Decision::make(case.requires, s, gate::probe)) {
            Decision::Run => Plan::Run,
            Decision::Skip(unmet) => Plan::Skip(unmet),
            Decision::Fail(unmet) => Plan::Fail(format!(
                "userns-test: USERNS_TEST_REQUIRE requires what this host lacks: {unmet}"
            )),
            Decision::Misconfigured(e) => Plan::Fail(format!("userns-test: {e}")),
        },
    }
}

/// An `#[in_userns]` test's decision with the privileged caller's way in
/// weighed.
fn weighed(case: &TestCase, decision: Decision) -> Decision {
    match &case.entering {
        Some(entering) => crate::in_userns::weigh(decision, entering),
        None => decision,
    }
}

/// The verdicts the run needed, as report objects: probed ones (cached by
/// now) and denied ones.
pub(super) fn planned_verdicts(
    needed: &BTreeSet<Ability>,
    denied: &BTreeSet<Ability>,
) -> Vec<crate::json::Json> {
    needed
        .iter()
        .map(|&a| {
            if denied.contains(&a) {
                crate::verdict::Verdict {
                    ability: a,
                    status: crate::verdict::Status::Unavailable(crate::policy::denied_reason()),
                    note: None,
                    duration: Duration::ZERO,
                }
                .to_json()
            } else {
                gate::probe(a).to_json()
            }
        })
        .collect()
}
