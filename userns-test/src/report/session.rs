//! What one process of a run contributes to the run's report, and when it
//! writes the report itself.
//!
//! - A complete run (`cargo test`, a direct execution) makes its binary's
//!   ledger before its first test, marks each test as it starts and ends,
//!   writes the failure messages at its end, and then, unless a
//!   `userns-test run` wrapper will, assembles and writes the reports.
//! - nextest's listing makes the ledger with the skips it decided (nextest
//!   starts no process for a test listed as ignored) and writes the report,
//!   in which every other test is still `unknown`.
//! - A nextest test process marks its slot, runs, records its outcome, and
//!   counts itself done. The process that completes the listing's count
//!   writes the report and the binary's step summary; so do the 1st, 2nd,
//!   4th, 8th, ... failing tests (nextest stops at the first failure by
//!   default); none writes it when a wrapper will. The run's report work
//!   stays linear in its tests. A run that never completes the count (a
//!   crash, an `-E` filter, a stop after a failure) keeps the last report
//!   written, true but with outcomes still `unknown`, until `userns-test
//!   finish`.

use std::sync::Arc;
use std::time::Duration;

use super::ledger::{
    self, Entry, FLAG_DETAIL, FLAG_RAN_DESPITE_UNMET, Ledger, LedgerKind, NONE, SlotState,
};
use super::model::{LackDetail, verdict_json};
use super::store::{BinaryDetails, BinaryOutcomes, Orphan, RunDir, TestDetail, this_process};
use super::{Destinations, ReportError, Role, write_outputs};
use crate::policy::Unmet;
use crate::record::{RunRecord, TestOutcome, TestRecord};
use crate::registry::TestCase;

/// What the runner decided for one test before the run, as the report
/// needs it.
pub(crate) enum Planned<'a> {
    /// Selected, to be run.
    Run,
    /// Selected, skipped for these unmet requirements.
    Skip(&'a Unmet),
    /// Selected, failed before running (`USERNS_TEST_REQUIRE`, a malformed
    /// environment).
    Fail,
    /// Not selected by the filters.
    Out,
}

/// One process's part in its run's report.
pub(crate) struct Session {
    role: Role,
    binary: String,
    /// The binary's files in the run ([`super::store::binary_key`]).
    key: String,
    dest: Destinations,
    run: RunDir,
    /// The report is written by a `userns-test run` wrapper after the run.
    deferred: bool,
    ledger: Option<Arc<Ledger>>,
    /// The skip reasons of the ledger, by index.
    reasons: Vec<Unmet>,
    /// The planned skip reason index of each case.
    case_reasons: Vec<u16>,
    /// Requirement sets, by index.
    requirement_sets: Vec<Vec<crate::Ability>>,
    /// nextest test process: the slot of its one test, if the listing made
    /// a ledger.
    slot: Option<usize>,
    /// Under libtest's own harness (plain mode).
    plain_harness: bool,
    errors: Vec<ReportError>,
}

/// What a test's trial tells the ledger as it runs: cheap stores into the
/// mapped slots, safe to call from any thread.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    ledger: Option<Arc<Ledger>>,
    /// The slot of each case (by the runner's case index).
    slots: Arc<[usize]>,
    /// The skip reason index of each case, as planned.
    reasons: Arc<[u16]>,
    /// Only started marks, the outcome being recorded at the end (a nextest
    /// test process writes its detail file before its final state, so no
    /// reader sees a failure without its message).
    start_only: bool,
    me: (u32, u64),
    attempt: u16,
}

impl Recorder {
    /// Whether this is the process that made the recorder: a process a test
    /// forked shares the ledger's mapping, and must not write into it (its
    /// "passed" would overwrite its parent's outcome).
    fn in_own_process(&self) -> bool {
        std::process::id() == self.me.0
    }

    /// Test `case` starts.
    pub(crate) fn started(&self, case: usize) {
        if !self.in_own_process() {
            return;
        }
        if let (Some(ledger), Some(&slot)) = (&self.ledger, self.slots.get(case)) {
            ledger.start(slot, self.attempt, self.me);
        }
    }

    /// Test `case` ended as `record` says.
    pub(crate) fn finished(&self, case: usize, record: &TestRecord) {
        if self.start_only || !self.in_own_process() {
            return;
        }
        if let (Some(ledger), Some(&slot)) = (&self.ledger, self.slots.get(case)) {
            let reason = self.reasons.get(case).copied().unwrap_or(NONE);
            let (state, flags) = slot_state(record);
            ledger.finish(slot, state, flags, reason, micros(record.duration));
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn slot_state(record: &TestRecord) -> (SlotState, u8) {
    let state = match record.outcome {
        TestOutcome::Passed => SlotState::Passed,
        TestOutcome::Failed { .. } => SlotState::Failed,
        TestOutcome::Skipped { .. } => SlotState::Skipped,
        TestOutcome::Ignored { .. } => SlotState::Ignored,
        TestOutcome::FilteredOut => SlotState::FilteredOut,
        TestOutcome::Pending => SlotState::Pending,
    };
    let flags = if record.ran_despite_unmet {
        FLAG_RAN_DESPITE_UNMET
    } else {
        0
    };
    (state, flags)
}

fn lack_details(unmet: &Unmet) -> Vec<LackDetail> {
    unmet
        .reasons
        .iter()
        .map(|(a, r)| LackDetail::new(*a, r))
        .collect()
}

impl Session {
    /// The session of this process, when some report is asked for;
    /// `Err` when its run's directory cannot be used (the error names it;
    /// the tests run all the same).
    pub(crate) fn begin(
        role: Role,
        binary: &str,
        dest: &Destinations,
    ) -> Option<Result<Session, ReportError>> {
        if !dest.any() && dest.run_dir.is_none() {
            return None;
        }
        // A copy of this binary that a test started inside the run (to test
        // a command-line interface, a fork-based helper) is not one of the
        // run's processes: its records would overwrite the run's own.
        if super::lineage::nested_copy().is_some() {
            return None;
        }
        if let super::lineage::NextestRun::Leaked(why) = super::lineage::nextest_run() {
            super::note(why);
        }
        let (run, deferred, error) = match super::open_run(dest) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Session {
            role,
            binary: binary.to_owned(),
            key: super::store::binary_key(binary),
            dest: dest.clone(),
            run,
            deferred,
            ledger: None,
            reasons: Vec::new(),
            case_reasons: Vec::new(),
            requirement_sets: Vec::new(),
            slot: None,
            plain_harness: false,
            errors: error.into_iter().collect(),
        }))
    }

    /// This binary runs under libtest's own harness: its reports say that
    /// only its annotated tests are recorded.
    pub(crate) fn under_libtest(&mut self) {
        self.plain_harness = true;
    }

    fn fs_error(&mut self, what: &str, e: crate::safe_fs::FsError) {
        self.errors.push(ReportError::fs(what, e));
    }

    /// Makes (complete run, listing) or finds (nextest test process) this
    /// binary's ledger, once the runner has planned every case (sorted by
    /// name, unique), and returns what the trials record with.
    pub(crate) fn plan(
        &mut self,
        cases: &[&'static TestCase],
        planned: &[Planned<'_>],
        verdicts: &[serde_json::Value],
        config_error: Option<&str>,
    ) -> Recorder {
        let me = this_process();
        let attempt = std::env::var("NEXTEST_ATTEMPT")
            .ok()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        if self.role == Role::NextestTest {
            return self.find_slot(cases, me, attempt);
        }
        // Requirement sets and skip reasons are few: index them.
        let mut sets: Vec<Vec<crate::Ability>> = Vec::new();
        let mut reasons: Vec<Unmet> = Vec::new();
        let mut ignore_reasons = std::collections::BTreeMap::new();
        let mut entries = Vec::with_capacity(cases.len());
        let mut case_reasons = Vec::with_capacity(cases.len());
        let mut expected = 0u32;
        for (i, (case, plan)) in cases.iter().zip(planned).enumerate() {
            let requires = match sets.iter().position(|s| s.as_slice() == case.requires) {
                Some(p) => p,
                None => {
                    sets.push(case.requires.to_vec());
                    sets.len() - 1
                }
            };
            let mut reason = NONE;
            let state = match (plan, self.role, case.ignore) {
                (Planned::Out, _, _) => SlotState::FilteredOut,
                (_, Role::NextestListing, Some(why)) => {
                    ignore_reasons.insert(i as u32, why.to_owned());
                    SlotState::Ignored
                }
                (Planned::Skip(unmet), Role::NextestListing, None) => {
                    reason = index_of(&mut reasons, unmet);
                    SlotState::Skipped
                }
                (Planned::Skip(unmet), _, _) => {
                    // Decided, not yet recorded: the trial records it.
                    reason = index_of(&mut reasons, unmet);
                    SlotState::Pending
                }
                _ => {
                    if self.role == Role::NextestListing {
                        expected += 1;
                    }
                    SlotState::Pending
                }
            };
            if let Some(why) = case.ignore {
                ignore_reasons.insert(i as u32, why.to_owned());
            }
            case_reasons.push(reason);
            entries.push(Entry {
                name: case.name(),
                state,
                reason,
                requires: u16::try_from(requires).unwrap_or(NONE),
            });
        }
        let kind = if self.role == Role::NextestListing {
            LedgerKind::Listing
        } else {
            LedgerKind::Complete
        };
        let bytes = ledger::build(kind, &entries, expected, me);
        let details = BinaryDetails {
            binary: self.binary.clone(),
            abilities: verdicts.to_vec(),
            requirement_sets: sets
                .iter()
                .map(|s| s.iter().map(|a| a.name().to_owned()).collect())
                .collect(),
            reasons: reasons.iter().map(lack_details).collect(),
            ignore_reasons,
            config_error: config_error.map(str::to_owned),
            plain_harness: self.plain_harness,
        };
        // Details first: a ledger is read only with its details.
        if let Err(e) = self.run.write_details(&self.key, &details) {
            self.fs_error("the binary's details", e);
            return Recorder::default();
        }
        let ledger = match self.run.create_ledger(&self.key, &bytes) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                self.fs_error("the binary's ledger", e);
                return Recorder::default();
            }
        };
        self.ledger = Some(ledger.clone());
        self.reasons = reasons;
        self.requirement_sets = sets;
        self.case_reasons = case_reasons.clone();
        Recorder {
            ledger: Some(ledger),
            slots: (0..cases.len()).collect(),
            reasons: case_reasons.into(),
            start_only: false,
            me,
            attempt,
        }
    }

    /// A nextest test process: the slot of its one test in the listing's
    /// ledger (by binary search), marked started; without a ledger, an
    /// orphan record says it started.
    fn find_slot(&mut self, cases: &[&'static TestCase], me: (u32, u64), attempt: u16) -> Recorder {
        let [case] = cases else {
            return Recorder::default();
        };
        let ledger = match self.run.ledger(&self.key) {
            Ok(l) => l,
            Err(e) => {
                self.fs_error("the binary's ledger", e);
                None
            }
        };
        if let Some(ledger) = ledger
            && let Some(slot) = ledger.find(case.name())
        {
            let ledger = Arc::new(ledger);
            self.ledger = Some(ledger.clone());
            self.slot = Some(slot);
            return Recorder {
                ledger: Some(ledger),
                slots: Arc::from([slot]),
                reasons: Arc::from([NONE]),
                start_only: true,
                me,
                attempt,
            };
        }
        // No ledger (a nextest before 0.9.138 lists without a run id): an
        // orphan record, written now, says the test started.
        let orphan = Orphan {
            binary: self.binary.clone(),
            name: case.name().to_owned(),
            requires: case.requires.iter().map(|a| a.name().to_owned()).collect(),
            state: "started".into(),
            detail: TestDetail::default(),
            pid: me,
            duration_us: 0,
        };
        if let Err(e) = self.run.write_orphan(&self.key, &orphan) {
            self.fs_error("the test's record", e);
        }
        Recorder::default()
    }

    /// Records what the run produced and, unless a wrapper will, writes
    /// the reports. Returns every error met on the way.
    pub(crate) fn end(
        mut self,
        record: &RunRecord,
        verdicts: &[serde_json::Value],
    ) -> Vec<ReportError> {
        match self.role {
            Role::Complete => self.end_complete(record, verdicts),
            Role::NextestListing => {
                if !self.deferred && self.ledger.is_some() {
                    self.write_report(None);
                }
            }
            Role::NextestTest => self.end_test(record, verdicts),
        }
        self.errors
    }

    fn end_complete(&mut self, record: &RunRecord, verdicts: &[serde_json::Value]) {
        let Some(ledger) = self.ledger.clone() else {
            return;
        };
        let mut outcomes = BinaryOutcomes::default();
        let mut ignore_reasons = std::collections::BTreeMap::new();
        for (i, t) in record.tests.iter().enumerate() {
            let (state, flags) = slot_state(t);
            // A skip is the one planned (its reason indexed then); a
            // reason met only now is added to the table.
            let planned = self.case_reasons.get(i).copied().unwrap_or(NONE);
            let reason = match &t.outcome {
                TestOutcome::Skipped { .. } if planned != NONE => planned,
                TestOutcome::Skipped { unmet } => index_of(&mut self.reasons, unmet),
                _ => planned,
            };
            match &t.outcome {
                TestOutcome::Failed { message } => {
                    outcomes.messages.insert(i as u32, cut_message(message));
                }
                TestOutcome::Ignored { reason } if !reason.is_empty() => {
                    ignore_reasons.insert(i as u32, reason.clone());
                }
                _ => {}
            }
            ledger.finish(i, state, flags, reason, micros(t.duration));
        }
        let details = BinaryDetails {
            binary: self.binary.clone(),
            abilities: verdicts.to_vec(),
            requirement_sets: self
                .requirement_sets
                .iter()
                .map(|s| s.iter().map(|a| a.name().to_owned()).collect())
                .collect(),
            reasons: self.reasons.iter().map(lack_details).collect(),
            ignore_reasons,
            config_error: record.config_error.clone(),
            plain_harness: self.plain_harness,
        };
        if let Err(e) = self.run.write_details(&self.key, &details) {
            self.fs_error("the binary's details", e);
        }
        if let Err(e) = self.run.write_outcomes(&self.key, &outcomes) {
            self.fs_error("the binary's outcomes", e);
        }
        ledger.close();
        if !self.deferred {
            self.write_report(Some(true));
        }
    }

    fn end_test(&mut self, record: &RunRecord, verdicts: &[serde_json::Value]) {
        let [t] = record.tests.as_slice() else {
            return;
        };
        let unmet = match &t.outcome {
            TestOutcome::Skipped { unmet } => Some(unmet),
            _ => None,
        };
        let message = match &t.outcome {
            TestOutcome::Failed { message } => Some(cut_message(message)),
            _ => None,
        };
        let (state, mut flags) = slot_state(t);
        let detail = TestDetail {
            attempt: 0,
            message,
            lacking: unmet.map(lack_details).unwrap_or_default(),
            abilities: if unmet.is_some() || t.ran_despite_unmet {
                verdicts.to_vec()
            } else {
                Vec::new()
            },
        };
        let (Some(ledger), Some(slot)) = (self.ledger.clone(), self.slot) else {
            // An orphan: its whole record.
            let orphan = Orphan {
                binary: self.binary.clone(),
                name: t.name.clone(),
                requires: t.requires.iter().map(|a| a.name().to_owned()).collect(),
                state: match state {
                    SlotState::Passed => "passed",
                    SlotState::Failed => "failed",
                    SlotState::Skipped => "skipped",
                    SlotState::Ignored => "ignored",
                    _ => "filtered_out",
                }
                .into(),
                detail,
                pid: this_process(),
                duration_us: micros(t.duration),
            };
            if state == SlotState::FilteredOut {
                return;
            }
            if let Err(e) = self.run.write_orphan(&self.key, &orphan) {
                self.fs_error("the test's record", e);
                return;
            }
            // No listing counts the run's tests: the 1st, 2nd, 4th, ...
            // orphan writes the report, and so does every failure; the
            // report stays "not finished" until `userns-test finish`.
            if !self.deferred {
                let count = self.run.orphan_count().unwrap_or(0);
                if count.is_power_of_two() || state == SlotState::Failed {
                    self.write_report(None);
                }
            }
            return;
        };
        if state == SlotState::FilteredOut {
            return;
        }
        // The detail first, then the slot's final state: no reader sees a
        // failure without its message.
        let needs_detail = detail.message.is_some() || unmet.is_some() || t.ran_despite_unmet;
        if needs_detail {
            let detail = TestDetail {
                attempt: ledger.view(slot).attempt,
                ..detail
            };
            match self.run.write_test_detail(&self.key, slot, &detail) {
                Ok(()) => flags |= FLAG_DETAIL,
                Err(e) => self.fs_error("the test's detail", e),
            }
        }
        ledger.finish(slot, state, flags, NONE, micros(t.duration));
        let done = ledger.count_done();
        let failures = if state == SlotState::Failed {
            ledger.count_failed()
        } else {
            0
        };
        if self.deferred {
            return;
        }
        // The process that completes the listing's count writes the
        // report; after it, retries and tests run with --run-ignored do,
        // at overflows 1, 2, 4, 8, ... And so do failing tests, the 1st,
        // 2nd, 4th, 8th, ...: nextest stops at the first failure by
        // default, and the report then shows it. The report work of the
        // run stays linear in its tests.
        let expected = ledger.expected();
        let completes = done == expected;
        let over = done.saturating_sub(expected);
        if completes || (done > expected && over.is_power_of_two()) || failures.is_power_of_two() {
            self.write_report(completes.then_some(true));
        }
    }

    /// Assembles the run's report under its lock and writes it; with
    /// `summary`, also this binary's step summary (once per run) and, for
    /// a complete run, the annotations of its skips.
    fn write_report(&mut self, summary: Option<bool>) {
        let bound = self.dest.lock_timeout;
        let lock = match self.run.lock(bound) {
            Ok(l) => l,
            Err(e) => {
                self.fs_error("the report (waiting for the run's lock)", e);
                return;
            }
        };
        let report = match super::assemble::assemble(&self.run, None) {
            Ok(r) => r,
            Err(e) => {
                self.fs_error("the report (reading the run)", e);
                return;
            }
        };
        let annotate = self.role == Role::Complete;
        let binaries: Vec<String> = if summary.is_some() {
            vec![self.binary.clone()]
        } else {
            Vec::new()
        };
        let errors = write_outputs(&self.dest, &self.run, &report, &binaries, annotate);
        self.errors.extend(errors);
        drop(lock);
    }
}

/// The most of a failure message a record keeps. An `assert_eq!` on two
/// large vectors prints megabytes; the test's own output has it whole, and
/// the report (a step summary is at most 1 MiB) needs its start.
pub(crate) const MESSAGE_LIMIT: usize = 64 << 10;

/// `message`, cut to [`MESSAGE_LIMIT`] bytes with a note of the cut.
pub(crate) fn cut_message(message: &str) -> String {
    crate::text::cut(message, MESSAGE_LIMIT, "the test's own output").into_owned()
}

fn index_of(table: &mut Vec<Unmet>, unmet: &Unmet) -> u16 {
    let i = match table.iter().position(|u| u == unmet) {
        Some(i) => i,
        None => {
            table.push(unmet.clone());
            table.len() - 1
        }
    };
    u16::try_from(i).unwrap_or(NONE)
}

/// The verdicts of a record as report objects (denied ones included).
pub(crate) fn record_verdicts(record: &RunRecord) -> Vec<serde_json::Value> {
    let mut verdicts = record.verdicts.clone();
    verdicts.extend(record.denied.iter().map(|&a| crate::verdict::Verdict {
        ability: a,
        status: crate::verdict::Status::Unavailable(crate::policy::denied_reason()),
        note: None,
        duration: Duration::ZERO,
    }));
    verdicts.sort_by_key(|v| v.ability);
    verdicts.iter().map(verdict_json).collect()
}
