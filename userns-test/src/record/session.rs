//! What one process of a run records, for the `userns-test` command to
//! make reports from.
//!
//! - A complete run (`cargo test`, a direct execution) makes its binary's
//!   ledger before its first test, marks each test as it starts and ends,
//!   and writes the failure messages at its end.
//! - nextest's listing makes the ledger with the skips it decided (nextest
//!   starts no process for a test listed as ignored).
//! - A nextest test process marks its slot started, runs, and records its
//!   outcome (a failure's message or its own skip reasons in a small file
//!   first, then the slot's final state).
//!
//! No process writes a report: the `userns-test` command does, after the
//! run (`userns-test run`, `userns-test nextest`, `userns-test finish`).

use std::sync::Arc;
use std::time::Duration;

use super::ledger::{
    self, Entry, FLAG_DETAIL, FLAG_RAN_DESPITE_UNMET, Ledger, LedgerKind, NONE, SlotState,
};
use super::store::{
    BinaryDetails, BinaryOutcomes, LackDetail, Orphan, RunDir, TestDetail, this_process,
};
use super::{Destinations, ReportError, Role};
use crate::json::Json;
use crate::outcome::{RunRecord, TestOutcome, TestRecord};
use crate::policy::Unmet;
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
    run: Arc<RunDir>,
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
        if !super::keeps_records(dest) {
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
            run: Arc::new(run),
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

    /// Whether `userns-test run` writes this run's reports and prints its
    /// summary after the test command: the binary then prints no summary
    /// of its own (each cause is said once per run, by the command).
    pub(crate) fn wrapped(&self) -> bool {
        self.deferred
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
        verdicts: &[Json],
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
                _ => SlotState::Pending,
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
        let bytes = ledger::build(kind, &entries, me);
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
            self.keep_last_word(case, Some((ledger.clone(), slot)));
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
        self.keep_last_word(case, None);
        Recorder::default()
    }

    /// What [`last_word`] needs, kept for this nextest test process.
    fn keep_last_word(&self, case: &TestCase, slot: Option<(Arc<Ledger>, usize)>) {
        let end = TestEnd {
            run: self.run.clone(),
            key: self.key.clone(),
            binary: self.binary.clone(),
            slot,
        };
        let test = (case.name().to_owned(), case.requires.to_vec());
        *LAST_WORD.lock().unwrap_or_else(|e| e.into_inner()) = Some((end, test));
    }

    /// Records what the run produced and, unless a wrapper will, writes
    /// the reports. Returns every error met on the way.
    pub(crate) fn end(mut self, record: &RunRecord, verdicts: &[Json]) -> Vec<ReportError> {
        match self.role {
            Role::Complete => self.end_complete(record, verdicts),
            Role::NextestListing => {}
            Role::NextestTest => self.end_test(record, verdicts),
        }
        self.errors
    }

    fn end_complete(&mut self, record: &RunRecord, verdicts: &[Json]) {
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
            self.point_to_the_command();
        }
    }

    fn end_test(&mut self, record: &RunRecord, verdicts: &[Json]) {
        let [t] = record.tests.as_slice() else {
            return;
        };
        let end = TestEnd {
            run: self.run.clone(),
            key: self.key.clone(),
            binary: self.binary.clone(),
            slot: self.ledger.clone().zip(self.slot),
        };
        for (what, e) in end.write(t, verdicts) {
            self.fs_error(what, e);
        }
    }

    /// Once per run that no wrapper finishes: where the reports asked for
    /// will come from (the test side writes none).
    fn point_to_the_command(&mut self) {
        if !(self.dest.json.is_some() || self.dest.junit.is_some()) {
            return;
        }
        if let Ok(true) = self.run.mark_once("pointed-to-finish") {
            super::note(&format!(
                "the reports asked for ({}) are written by the `userns-test` command from this \
                 run's records: run `userns-test finish` after the tests (with the same \
                 variables), or run them through `userns-test run -- ...`",
                [
                    self.dest.json.as_ref().map(|_| super::JSON_VAR),
                    self.dest.junit.as_ref().map(|_| super::JUNIT_VAR),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ")
            ));
        }
    }
}

/// Where a nextest test process records how its one test ended: the
/// test's slot in the listing's ledger, or, without one, an orphan record.
struct TestEnd {
    run: Arc<RunDir>,
    key: String,
    binary: String,
    slot: Option<(Arc<Ledger>, usize)>,
}

impl TestEnd {
    /// Records `t`'s end (with `verdicts` where it was skipped or ran
    /// despite unmet requirements): the errors met, each with what was
    /// being written.
    fn write(
        &self,
        t: &TestRecord,
        verdicts: &[Json],
    ) -> Vec<(&'static str, crate::safe_fs::FsError)> {
        let unmet = match &t.outcome {
            TestOutcome::Skipped { unmet } => Some(unmet),
            _ => None,
        };
        let message = match &t.outcome {
            TestOutcome::Failed { message } => Some(cut_message(message)),
            _ => None,
        };
        let (state, mut flags) = slot_state(t);
        if state == SlotState::FilteredOut {
            return Vec::new();
        }
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
        let Some((ledger, slot)) = &self.slot else {
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
            return match self.run.write_orphan(&self.key, &orphan) {
                Ok(()) => Vec::new(),
                Err(e) => vec![("the test's record", e)],
            };
        };
        // The detail first, then the slot's final state: no reader sees a
        // failure without its message.
        let mut errors = Vec::new();
        let needs_detail = detail.message.is_some() || unmet.is_some() || t.ran_despite_unmet;
        if needs_detail {
            let detail = TestDetail {
                attempt: ledger.view(*slot).attempt,
                ..detail
            };
            match self.run.write_test_detail(&self.key, *slot, &detail) {
                Ok(()) => flags |= FLAG_DETAIL,
                Err(e) => errors.push(("the test's detail", e)),
            }
        }
        ledger.finish(*slot, state, flags, NONE, micros(t.duration));
        errors
    }
}

/// What a nextest test process records of its one test if the process
/// must end before its run concludes: where, and the test's name and
/// requirements.
static LAST_WORD: std::sync::Mutex<Option<(TestEnd, Named)>> = std::sync::Mutex::new(None);

/// A test's name and requirements.
type Named = (String, Vec<crate::Ability>);

/// The one test of this nextest test process failed with `message` after
/// `duration`, and the process ends now, its run not concluded (an
/// `#[in_userns]` body entered in place, ended past its time bound or by
/// an exit, under the runner): recorded as the run's end would record it.
/// `false` where nothing records (no report asked for, or not such a
/// process).
pub(crate) fn last_word(message: &str, duration: Duration) -> bool {
    let Some((end, (name, requires))) = LAST_WORD.lock().unwrap_or_else(|e| e.into_inner()).take()
    else {
        return false;
    };
    let test = TestRecord {
        name,
        requires,
        outcome: TestOutcome::Failed {
            message: message.to_owned(),
        },
        duration,
        ran_despite_unmet: false,
    };
    // Nothing can be said of an error now: the process is ending.
    let _ = end.write(&test, &[]);
    true
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
pub(crate) fn record_verdicts(record: &RunRecord) -> Vec<Json> {
    let mut verdicts = record.verdicts.clone();
    verdicts.extend(record.denied.iter().map(|&a| crate::verdict::Verdict {
        ability: a,
        status: crate::verdict::Status::Unavailable(crate::policy::denied_reason()),
        note: None,
        duration: Duration::ZERO,
    }));
    verdicts.sort_by_key(|v| v.ability);
    verdicts
        .iter()
        .map(crate::verdict::Verdict::to_json)
        .collect()
}
