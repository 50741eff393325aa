//! From what a run's processes left in its directory to a [`Report`]:
//! every test's outcome as far as it is known, and why where it is not.
//!
//! A slot still `started` belongs to a process that is running or died:
//! if the process is gone (its pid and start time no longer match), the
//! test crashed, and is `failed`. A slot still `pending` was not started:
//! once the run is known to be over, the test did not run; before, its
//! outcome is `unknown`. Where this process cannot tell whether another
//! one lives (another boot, another PID namespace), the outcome stays
//! `unknown` until the run is known to be over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Deserialize;
use userns_test::__cli::{
    FLAG_DETAIL, FLAG_RAN_DESPITE_UNMET, FsError, Ledger, LedgerKind, NONE, Problem, RunDir,
    RunKey, RunMeta, SlotState, SlotView, alive, binary_of_key,
};
use userns_test::HostFacts;

use super::model::{
    CauseText, Counts, Lack, LackDetail, Outcome, Report, RootCause, RunInfo, Runner, SCHEMA,
    TestEntry,
};

/// How much of the run is over.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The test command's exit status, when known.
    pub exit_code: Option<i32>,
    /// What nextest said of each test it ran (its own JUnit), to name the
    /// signal or status of a test whose process crashed.
    pub nextest: HashMap<(String, String), NextestSaw>,
}

/// What nextest recorded of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextestSaw {
    /// It passed (as nextest judged it: exit status 0).
    Passed,
    /// It failed, in these words (`process aborted with signal 6
    /// (SIGABRT)`, `test failure with exit code 101`).
    Failed(String),
}

/// Assembles the run's report. `finished` is `None` while the run may
/// still go on.
pub fn assemble(run: &RunDir, finished: Option<&Finished>) -> Result<Report, FsError> {
    let meta = run.meta()?.unwrap_or_else(|| {
        RunMeta::now(
            RunKey {
                kind: "unknown".into(),
                id: run.path().display().to_string(),
            },
            None,
        )
    });
    let mut notes = Vec::new();
    let mut tests: Vec<TestEntry> = Vec::new();
    let mut tally = Tally::default();
    let mut sorted = true;
    let mut abilities: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut config_errors = BTreeSet::new();

    let mut names_seen = BTreeSet::new();
    for (key, ledger) in run.ledgers()? {
        let ledger = match ledger {
            Ok(l) => l,
            Err(e) => {
                let binary = binary_of_key(&key);
                notes.push(format!("the tests of {binary} are missing: {e}"));
                continue;
            }
        };
        let details = read_details(run, &key)?.unwrap_or_else(|| {
            let binary = binary_of_key(&key);
            notes.push(format!(
                "{binary}: its details were never written (its process ended first): \
                 requirements and skip reasons are missing"
            ));
            BinaryDetails {
                binary: binary.to_owned(),
                ..BinaryDetails::default()
            }
        });
        let binary = details.binary.clone();
        if !names_seen.insert(binary.clone()) {
            notes.push(format!(
                "two test binaries of this run are named {binary} (their tests are listed under \
                 that name twice)"
            ));
        }
        for a in &details.abilities {
            if let Some(name) = a["ability"].as_str() {
                abilities
                    .entry(name.to_owned())
                    .or_insert_with(|| a.clone());
            }
        }
        if let Some(e) = &details.config_error {
            config_errors.insert(e.clone());
        }
        if details.plain_harness {
            notes.push(format!(
                "{binary} ran under libtest's own harness: only its tests under \
                 #[requires_userns] or #[userns_test::test] are recorded here, not its plain \
                 #[test] functions"
            ));
        }
        let outcomes = match parsed::<BinaryOutcomes>(run.outcomes(&key), run, "the outcomes") {
            Ok(o) => o,
            Err(e) => {
                notes.push(format!(
                    "{binary}: its failure messages could not be read ({e}): they are missing"
                ));
                None
            }
        };
        // Per skip reason, once: its message and lacks (a suite skips
        // thousands of tests for a handful of reasons).
        let prepared: Vec<Prepared> = details.reasons.iter().map(|r| Prepared::of(r)).collect();
        let binary_state = BinaryState::of(&ledger, &meta, finished.is_some());
        if let Some(note) = binary_state.note(&binary, &ledger) {
            notes.push(note);
        }
        let damaged = (0..ledger.count()).filter(|&i| !ledger.valid(i)).count();
        if damaged > 0 {
            notes.push(format!(
                "{binary}: {damaged} slots of its ledger are damaged (unknown state or name): \
                 those tests are missing"
            ));
        }
        for i in 0..ledger.count() {
            if !ledger.valid(i) {
                continue;
            }
            let slot = ledger.view(i);
            let name = ledger.name(i).to_owned();
            let requires = details
                .requirement_sets
                .get(usize::from(slot.requires))
                .cloned()
                .unwrap_or_default();
            // A detail that cannot be read (damaged, too large) loses that
            // test's message, never the run's report.
            let detail = if slot.flags & FLAG_DETAIL != 0 {
                match parsed::<TestDetail>(run.test_detail(&key, i), run, "a test's detail") {
                    Ok(d) => d,
                    Err(e) => {
                        notes.push(format!(
                            "{binary} {}: its record could not be read ({e}): its message and \
                             reasons are missing",
                            ledger.name(i)
                        ));
                        None
                    }
                }
            } else {
                None
            };
            if let Some(d) = &detail {
                for a in &d.abilities {
                    if let Some(n) = a["ability"].as_str() {
                        abilities.entry(n.to_owned()).or_insert_with(|| a.clone());
                    }
                }
            }
            let mut entry = TestEntry {
                binary: binary.clone(),
                name,
                requires,
                outcome: Outcome::Unknown,
                message: None,
                crashed: false,
                lacking: Vec::new(),
                duration_ms: slot.duration_us as f64 / 1e3,
                ran_despite_unmet: slot.flags & FLAG_RAN_DESPITE_UNMET != 0,
            };
            // Unmet requirements: found by the test's own process, else
            // decided when the ledger was made.
            let own = detail
                .as_ref()
                .filter(|d| !d.lacking.is_empty())
                .map(|d| Prepared::of(&d.lacking));
            let lacking: Option<&Prepared> = own
                .as_ref()
                .or_else(|| prepared.get(usize::from(slot.reason)));
            match slot.state {
                SlotState::Passed => entry.outcome = Outcome::Passed,
                SlotState::Failed => {
                    entry.outcome = Outcome::Failed;
                    entry.message = detail
                        .as_ref()
                        .and_then(|d| d.message.clone())
                        .or_else(|| {
                            outcomes
                                .as_ref()
                                .and_then(|o| o.messages.get(&(i as u32)).cloned())
                        })
                        .or_else(|| {
                            Some(match binary_state {
                                BinaryState::Running => {
                                    "failed; its message follows when its binary's run ends".into()
                                }
                                _ => "failed; its message was lost (its process ended before \
                                      writing it)"
                                    .into(),
                            })
                        });
                }
                SlotState::Skipped => {
                    entry.outcome = Outcome::Skipped;
                    entry.message =
                        Some(lacking.map_or_else(|| skip_message(&[]), |p| p.message.clone()));
                }
                SlotState::Ignored => {
                    entry.outcome = Outcome::Ignored;
                    entry.message = details
                        .ignore_reasons
                        .get(&(i as u32))
                        .filter(|r| !r.is_empty())
                        .cloned();
                }
                SlotState::FilteredOut => entry.outcome = Outcome::FilteredOut,
                SlotState::Pending => binary_state.pending(&mut entry, finished),
                SlotState::Started => started(&mut entry, &slot, &meta, finished),
            }
            if let Some(p) = lacking
                && (entry.outcome == Outcome::Skipped
                    || entry.ran_despite_unmet
                    || entry.outcome == Outcome::Failed)
            {
                entry.lacking = p.lacks.clone();
                if entry.outcome == Outcome::Skipped {
                    tally.skipped(p);
                }
            }
            if let Some(last) = tests.last()
                && (&last.binary, &last.name) > (&entry.binary, &entry.name)
            {
                sorted = false;
            }
            tests.push(entry);
        }
    }
    let (orphans, unreadable) = read_orphans(run)?;
    notes.extend(unreadable);
    for orphan in orphans {
        tests.push(orphan_entry(&orphan, &meta, finished));
        for a in &orphan.detail.abilities {
            if let Some(n) = a["ability"].as_str() {
                abilities.entry(n.to_owned()).or_insert_with(|| a.clone());
            }
        }
        if orphan.state == "skipped" {
            tally.skipped(&Prepared::of(&orphan.detail.lacking));
        }
        sorted = false;
    }
    // Ledgers are sorted by name and read in binary order: sort only when
    // orphans were added.
    if !sorted {
        tests.sort_by(|a, b| (&a.binary, &a.name).cmp(&(&b.binary, &b.name)));
    }
    for e in config_errors {
        notes.push(format!("configuration error: {e}"));
    }

    let root_causes = tally.root_causes(abilities.values());
    let mut abilities: Vec<serde_json::Value> = abilities.into_values().collect();
    // In the vocabulary's order; names this build does not know last.
    abilities.sort_by_cached_key(|a| {
        let known = a["ability"]
            .as_str()
            .and_then(|n| n.parse::<userns_test::Ability>().ok());
        (known.is_none(), known)
    });
    let facts = HostFacts::get();
    let info = RunInfo {
        kind: meta.key.kind.clone(),
        id: meta.key.id.clone(),
        started_at: Some(meta.started_at.clone()),
        finished: finished.is_some(),
        exit_code: finished.and_then(|f| f.exit_code),
        notes,
    };
    Ok(Report {
        schema: SCHEMA.to_owned(),
        run: info,
        runner: Runner::current(facts),
        host: super::model::facts_json(facts),
        abilities,
        root_causes,
        counts: Counts::of(&tests),
        tests,
    })
}

/// A skip message: each unmet ability, what failed and its cause (the fix
/// is said once, in the root causes).
pub(crate) fn skip_message(lacking: &[LackDetail]) -> String {
    if lacking.is_empty() {
        return "skipped: requirements unmet (the reasons were not recorded)".into();
    }
    lacking
        .iter()
        .map(|l| {
            format!(
                "needs {}: {}; cause: {}",
                l.ability, l.failed, l.cause.message
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One skip reason, prepared once: the message a skipped test carries,
/// its lacks as the report shows them, and its root causes.
struct Prepared {
    message: String,
    lacks: Vec<Lack>,
    /// Each distinct root cause, with the abilities it takes here.
    causes: Vec<(String, LackDetail)>,
}

impl Prepared {
    fn of(lacking: &[LackDetail]) -> Prepared {
        let mut causes: Vec<(String, LackDetail)> = Vec::new();
        let lacks = lacking
            .iter()
            .map(|l| {
                let id = l.root_cause_id();
                if !causes
                    .iter()
                    .any(|(c, d)| *c == id && d.ability == l.ability)
                {
                    causes.push((id.clone(), l.clone()));
                }
                Lack {
                    ability: l.ability.clone(),
                    failed: l.failed.clone(),
                    root_cause: id,
                }
            })
            .collect();
        Prepared {
            message: skip_message(lacking),
            lacks,
            causes,
        }
    }
}

/// The root causes met so far, with their abilities and skipped tests.
#[derive(Default)]
struct Tally {
    by_id: BTreeMap<String, (CauseText, String, BTreeSet<String>, usize)>,
}

impl Tally {
    /// A test skipped for `reason`: one more for each of its root causes.
    fn skipped(&mut self, reason: &Prepared) {
        let mut counted: Vec<&str> = Vec::new();
        for (id, l) in &reason.causes {
            let e = self
                .by_id
                .entry(id.clone())
                .or_insert_with(|| (l.cause.clone(), l.remedy.clone(), BTreeSet::new(), 0));
            e.2.insert(l.ability.clone());
            if !counted.contains(&id.as_str()) {
                e.3 += 1;
                counted.push(id);
            }
        }
    }

    /// Every root cause, with those of unavailable `verdicts` that skipped
    /// nothing, most tests first.
    fn root_causes<'a>(
        mut self,
        verdicts: impl Iterator<Item = &'a serde_json::Value>,
    ) -> Vec<RootCause> {
        for v in verdicts {
            let (Some(id), Some(ability)) = (v["root_cause"].as_str(), v["ability"].as_str())
            else {
                continue;
            };
            let cause = CauseText {
                id: v["cause"]["id"].as_str().unwrap_or("").to_owned(),
                message: v["cause"]["message"].as_str().unwrap_or("").to_owned(),
            };
            let remedy = v["remedy"].as_str().unwrap_or("").to_owned();
            self.by_id
                .entry(id.to_owned())
                .or_insert_with(|| (cause, remedy, BTreeSet::new(), 0))
                .2
                .insert(ability.to_owned());
        }
        let mut out: Vec<RootCause> = self
            .by_id
            .into_iter()
            .map(|(id, (cause, remedy, abilities, skipped))| RootCause {
                id,
                label: String::new(),
                cause,
                remedy,
                abilities: abilities.into_iter().collect(),
                skipped,
            })
            .collect();
        // The order the test side gives its blocks (`RootCauses::sort`),
        // so that C1 is the same cause in a binary's summary and here.
        out.sort_by(|a, b| {
            b.skipped
                .cmp(&a.skipped)
                .then_with(|| b.abilities.len().cmp(&a.abilities.len()))
                .then_with(|| a.cause.id.cmp(&b.cause.id))
                .then_with(|| a.remedy.cmp(&b.remedy))
        });
        for (i, rc) in out.iter_mut().enumerate() {
            rc.label = format!("C{}", i + 1);
        }
        out
    }
}

/// What a binary's ledger says of its writer, for its pending slots.
#[derive(Clone, Copy)]
enum BinaryState {
    /// nextest's listing: each test has a process of its own.
    Listed,
    /// A complete run that closed its ledger.
    Closed,
    /// A complete run whose process is still running.
    Running,
    /// A complete run whose process ended without closing its ledger.
    Crashed { pid: u32 },
    /// A complete run whose process this one cannot see.
    Unseen,
}

impl BinaryState {
    fn of(ledger: &Ledger, meta: &RunMeta, _finished: bool) -> BinaryState {
        if ledger.kind() == LedgerKind::Listing {
            return BinaryState::Listed;
        }
        if ledger.closed() {
            return BinaryState::Closed;
        }
        match alive(meta, ledger.writer()) {
            Some(true) => BinaryState::Running,
            Some(false) => BinaryState::Crashed {
                pid: ledger.writer().0,
            },
            None => BinaryState::Unseen,
        }
    }

    fn note(&self, binary: &str, ledger: &Ledger) -> Option<String> {
        match self {
            BinaryState::Crashed { pid } => Some(format!(
                "the process of {binary} (pid {pid}) ended without finishing its tests: those it \
                 was running crashed with it, those it had not started did not run ({} tests in \
                 all)",
                ledger.count()
            )),
            _ => None,
        }
    }

    /// A test not started yet.
    fn pending(&self, entry: &mut TestEntry, finished: Option<&Finished>) {
        let (outcome, message) = match (self, finished) {
            (BinaryState::Listed, Some(_)) => (
                Outcome::NotRun,
                "listed to run in a process of its own, and nextest never started one (an -E \
                 filter, --partition, or the run stopped after a failure)",
            ),
            (BinaryState::Listed, None) => (
                Outcome::Unknown,
                "not reported when this report was written: nextest had not started its process \
                 yet, or will not (an -E filter, --partition, a stop after a failure); \
                 `userns-test finish` settles it after the run",
            ),
            (BinaryState::Crashed { .. }, _) => (
                Outcome::NotRun,
                "never started: its binary's process ended (crashed) before reaching it",
            ),
            (BinaryState::Closed, _) => (Outcome::NotRun, "never started by its binary's run"),
            (BinaryState::Running, _) => (
                Outcome::Unknown,
                "not started yet: its binary is still running",
            ),
            (BinaryState::Unseen, Some(_)) => (
                Outcome::NotRun,
                "never started: its binary's process did not finish, and the run is over",
            ),
            (BinaryState::Unseen, None) => (
                Outcome::Unknown,
                "not started when this report was written; whether its binary's process still \
                 runs cannot be seen from here (another boot or PID namespace)",
            ),
        };
        entry.outcome = outcome;
        entry.message = Some(message.to_owned());
    }
}

/// A test whose slot says it started and did not finish.
fn started(entry: &mut TestEntry, slot: &SlotView, meta: &RunMeta, finished: Option<&Finished>) {
    let crash = |entry: &mut TestEntry, how: String| {
        entry.outcome = Outcome::Failed;
        entry.crashed = true;
        entry.message = Some(how);
    };
    let nextest_saw = finished.and_then(|f| {
        f.nextest
            .get(&(entry.binary.clone(), entry.name.clone()))
            .cloned()
    });
    let words = |pid: u32| match &nextest_saw {
        Some(NextestSaw::Failed(m)) => format!(
            "crashed: its process (pid {pid}) ended without reporting an outcome; nextest: {m}"
        ),
        Some(NextestSaw::Passed) => format!(
            "crashed: its process (pid {pid}) ended without reporting an outcome, with exit \
             status 0 (`std::process::exit` inside the test?)"
        ),
        None => format!("crashed: its process (pid {pid}) ended without reporting an outcome"),
    };
    match (alive(meta, (slot.pid, slot.start)), finished) {
        (Some(false), _) => crash(entry, words(slot.pid)),
        (None, Some(_)) => crash(entry, words(slot.pid)),
        (Some(true), Some(_)) => {
            entry.outcome = Outcome::Unknown;
            entry.message = Some(format!(
                "its process (pid {}) was still running when the run was finished",
                slot.pid
            ));
        }
        (Some(true), None) => {
            entry.outcome = Outcome::Unknown;
            entry.message = Some(format!(
                "running (pid {}) when this report was written",
                slot.pid
            ));
        }
        (None, None) => {
            entry.outcome = Outcome::Unknown;
            entry.message = Some(format!(
                "started (pid {}); whether its process still runs cannot be seen from here \
                 (another boot or PID namespace)",
                slot.pid
            ));
        }
    }
}

fn orphan_entry(o: &Orphan, meta: &RunMeta, finished: Option<&Finished>) -> TestEntry {
    let mut entry = TestEntry {
        binary: o.binary.clone(),
        name: o.name.clone(),
        requires: o.requires.clone(),
        outcome: Outcome::Unknown,
        message: o.detail.message.clone(),
        crashed: false,
        lacking: o
            .detail
            .lacking
            .iter()
            .map(|l| Lack {
                ability: l.ability.clone(),
                failed: l.failed.clone(),
                root_cause: l.root_cause_id(),
            })
            .collect(),
        duration_ms: Duration::from_micros(o.duration_us).as_secs_f64() * 1e3,
        ran_despite_unmet: false,
    };
    entry.outcome = match o.state.as_str() {
        "passed" => Outcome::Passed,
        "failed" => Outcome::Failed,
        "skipped" => {
            entry.message = Some(skip_message(&o.detail.lacking));
            Outcome::Skipped
        }
        "ignored" => Outcome::Ignored,
        _ => {
            let slot = SlotView {
                state: SlotState::Started,
                flags: 0,
                reason: NONE,
                requires: NONE,
                attempt: 0,
                pid: o.pid.0,
                start: o.pid.1,
                duration_us: 0,
            };
            started(&mut entry, &slot, meta, finished);
            entry.outcome
        }
    };
    entry
}

// The test side's records, read back: JSON written by `userns_test::json`
// (a writer of its own, so that no test target links serde_json), parsed
// here strictly. The shapes are the ones `userns_test::record::store`
// writes.

/// What the process that created a binary's ledger knew.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BinaryDetails {
    pub binary: String,
    pub abilities: Vec<serde_json::Value>,
    pub requirement_sets: Vec<Vec<String>>,
    pub reasons: Vec<Vec<LackDetail>>,
    pub ignore_reasons: BTreeMap<u32, String>,
    #[serde(default)]
    pub config_error: Option<String>,
    #[serde(default)]
    pub plain_harness: bool,
}

/// What a complete run adds at its end: failure messages by slot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BinaryOutcomes {
    pub messages: BTreeMap<u32, String>,
}

/// What one nextest test process adds to its slot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestDetail {
    /// nextest's attempt (retries): recorded, not shown yet.
    #[serde(default)]
    #[allow(dead_code)]
    pub attempt: u16,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub lacking: Vec<LackDetail>,
    #[serde(default)]
    pub abilities: Vec<serde_json::Value>,
}

/// A test whose process found no ledger for its binary.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Orphan {
    pub binary: String,
    pub name: String,
    pub requires: Vec<String>,
    pub state: String,
    #[serde(flatten)]
    pub detail: TestDetail,
    pub pid: (u32, u64),
    pub duration_us: u64,
}

/// `bytes` (a record of `run`, `what`), parsed; a parse error named as the
/// file's problem.
fn parsed<T: serde::de::DeserializeOwned>(
    bytes: Result<Option<Vec<u8>>, FsError>,
    run: &RunDir,
    what: &str,
) -> Result<Option<T>, FsError> {
    let Some(bytes) = bytes? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| FsError {
            path: run.path().to_owned(),
            problem: Problem::Io {
                doing: "reading a record",
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: {e}")),
            },
        })
}

fn read_details(run: &RunDir, key: &str) -> Result<Option<BinaryDetails>, FsError> {
    parsed(run.details(key), run, "a binary's details")
}

/// Every orphan test of the run, and why each record that could not be
/// read was not (one bad record loses its test, never the run).
fn read_orphans(run: &RunDir) -> Result<(Vec<Orphan>, Vec<String>), FsError> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for (name, bytes) in run.orphans()? {
        match parsed::<Orphan>(bytes.map(Some), run, &name) {
            Ok(Some(o)) => out.push(o),
            Ok(None) => {}
            Err(e) => unreadable.push(format!(
                "a test's record could not be read ({e}): that test is missing"
            )),
        }
    }
    out.sort_by(|a, b| (&a.binary, &a.name).cmp(&(&b.binary, &b.name)));
    Ok((out, unreadable))
}
