//! Where a run's processes leave what they know, for whoever assembles the
//! report: a directory private to this uid, `.<report name>.parts/` beside
//! the report (or under `$TMPDIR/userns-test-<euid>/` when no report file
//! is asked for), with one subdirectory per run:
//!
//! ```text
//! run                       the run: kind, id, start, boot, PID namespace, owner
//! <key>.ledger              one slot per test, updated as tests run
//! <key>.details.json        verdicts, requirement sets, skip reasons (JSON)
//! <key>.outcomes.json       failure messages (a complete run, at its end)
//! <key>.tests/<i>.json      what one nextest test process adds to slot i
//! orphans/                  tests of processes that found no ledger
//! markers/                  what was written once per run (summaries, annotations)
//! lock, claim               the command's locks (finishing a run, starting one)
//! ```
//!
//! `<key>` is a binary's name with its executable's identity
//! ([`binary_key`]): one binary's files are never another's.
//!
//! Every file is created, replaced and read through [`crate::safe_fs`]:
//! nothing another user planted is followed or trusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ledger::{Damaged, Ledger};
use crate::json::Json;
use crate::safe_fs::{Dir, FsError};

/// A run's metadata file is small; anything larger is not ours.
const SMALL_FILE: u64 = 1 << 20;
/// A binary's details hold one entry per distinct reason and per ignored
/// or failed test: generous.
pub const LARGE_FILE: u64 = 256 << 20;
/// Runs kept besides the current one.
const RUNS_KEPT: usize = 8;
/// Runs older than this are removed when a new run starts.
const STALE_RUN: Duration = Duration::from_secs(24 * 60 * 60);
/// The first line of a run's metadata file.
const META_HEADER: &str = "userns-test run 1";

/// Which run a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    /// `nextest`, `cargo`, `process` or `wrapped`.
    pub kind: String,
    /// The run's id within its kind.
    pub id: String,
}

impl RunKey {
    /// The run directory's name: `<kind>-<id>`, with anything but
    /// `[A-Za-z0-9_.-]` written `%XX`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", safe_name(&self.kind), safe_name(&self.id))
    }
}

/// What a run's first process wrote about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMeta {
    /// The run.
    pub key: RunKey,
    /// RFC 3339.
    pub started_at: String,
    /// Milliseconds since the epoch, for ordering runs.
    pub started_unix_ms: u64,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
    /// `/proc/self/ns/pid`: pids recorded in the run mean something only in
    /// this PID namespace.
    pub pid_namespace: Option<String>,
    /// The process the run belongs to (cargo, nextest, the wrapper), with
    /// its start time: while it lives, the run is not over.
    pub owner: Option<(u32, u64)>,
    /// The wrapped command (`userns-test run`).
    pub command: Vec<String>,
    /// The CI job the run's first process ran in ([`ci_job`]), so that a
    /// later job on the same machine does not finish it as its own.
    pub ci_job: Option<String>,
    /// Where nextest writes its JUnit for a wrapped run, when not in the
    /// run's directory (a path TOML cannot hold).
    pub nextest_junit: Option<PathBuf>,
}

impl RunMeta {
    /// The run in words, for messages: `cargo 123-456 (pid 123, started
    /// ..., `cargo test`)`.
    pub fn describe(&self) -> String {
        let mut out = format!("{} run {}", self.key.kind, self.key.id);
        if let Some((pid, _)) = self.owner {
            out.push_str(&format!(" (pid {pid}"));
        } else {
            out.push_str(" (");
        }
        out.push_str(&format!(", started {}", self.started_at));
        if !self.command.is_empty() {
            out.push_str(&format!(", `{}`", self.command.join(" ")));
        }
        out.push(')');
        out
    }

    /// This process's view of a new run.
    pub fn now(key: RunKey, owner: Option<(u32, u64)>) -> RunMeta {
        let now = SystemTime::now();
        RunMeta {
            key,
            started_at: crate::text::rfc3339(now),
            started_unix_ms: now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            boot_id: boot_id(),
            pid_namespace: pid_namespace(),
            owner,
            command: Vec::new(),
            ci_job: ci_job(),
            nextest_junit: None,
        }
    }

    /// The file's text: a header line, then one `name value` line per
    /// field (values escaped: see [`escape`]).
    fn to_text(&self) -> String {
        let mut out = format!("{META_HEADER}\n");
        let mut line = |name: &str, value: &str| {
            out.push_str(name);
            out.push(' ');
            out.push_str(&escape(value));
            out.push('\n');
        };
        line("kind", &self.key.kind);
        line("id", &self.key.id);
        line("started_at", &self.started_at);
        line("started_unix_ms", &self.started_unix_ms.to_string());
        if let Some(b) = &self.boot_id {
            line("boot_id", b);
        }
        if let Some(p) = &self.pid_namespace {
            line("pid_namespace", p);
        }
        if let Some((pid, start)) = self.owner {
            line("owner", &format!("{pid} {start}"));
        }
        for c in &self.command {
            line("command", c);
        }
        if let Some(j) = &self.ci_job {
            line("ci_job", j);
        }
        if let Some(p) = &self.nextest_junit {
            line("nextest_junit", &p.to_string_lossy());
        }
        out
    }

    /// The metadata in `text`, if it is a run's (fields this version does
    /// not know are passed over).
    fn parse(text: &str) -> Option<RunMeta> {
        let mut lines = text.lines();
        if lines.next()? != META_HEADER {
            return None;
        }
        let mut meta = RunMeta {
            key: RunKey {
                kind: String::new(),
                id: String::new(),
            },
            started_at: String::new(),
            started_unix_ms: 0,
            boot_id: None,
            pid_namespace: None,
            owner: None,
            command: Vec::new(),
            ci_job: None,
            nextest_junit: None,
        };
        let (mut kind, mut id) = (false, false);
        for l in lines {
            let (name, value) = l.split_once(' ').unwrap_or((l, ""));
            let value = unescape(value)?;
            match name {
                "kind" => (meta.key.kind, kind) = (value, true),
                "id" => (meta.key.id, id) = (value, true),
                "started_at" => meta.started_at = value,
                "started_unix_ms" => meta.started_unix_ms = value.parse().ok()?,
                "boot_id" => meta.boot_id = Some(value),
                "pid_namespace" => meta.pid_namespace = Some(value),
                "owner" => {
                    let (p, s) = value.split_once(' ')?;
                    meta.owner = Some((p.parse().ok()?, s.parse().ok()?));
                }
                "command" => meta.command.push(value),
                "ci_job" => meta.ci_job = Some(value),
                "nextest_junit" => meta.nextest_junit = Some(PathBuf::from(value)),
                _ => {}
            }
        }
        (kind && id).then_some(meta)
    }
}

/// A value on one line: `\` as `\\`, line feed as `\n`, carriage return as
/// `\r`.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`]; `None` for an escape it never writes.
fn unescape(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// This CI job's identity, from the variables each CI service sets for
/// one job (one attempt of it): GitHub Actions' run, attempt and job;
/// GitLab's, Buildkite's, CircleCI's, Azure Pipelines' and Travis' job
/// ids; Jenkins' build tag. `None` outside CI.
pub fn ci_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(run), Some(job)) = (var("GITHUB_RUN_ID"), var("GITHUB_JOB")) {
        let attempt = var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
        return Some(format!("github {run}/{attempt}/{job}"));
    }
    [
        ("CI_JOB_ID", "gitlab"),
        ("BUILDKITE_JOB_ID", "buildkite"),
        ("CIRCLE_WORKFLOW_JOB_ID", "circleci"),
        ("SYSTEM_JOBID", "azure"),
        ("TRAVIS_JOB_ID", "travis"),
        ("BUILD_TAG", "jenkins"),
    ]
    .iter()
    .find_map(|(k, service)| var(k).map(|v| format!("{service} {v}")))
}

/// One unmet ability as the records keep it: what failed, the cause, and
/// the fix (a reason, in words).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LackDetail {
    /// The ability.
    pub ability: String,
    /// `<step> failed: <failure>`.
    pub failed: String,
    /// The cause's id and its words.
    pub cause: (String, String),
    /// The fix.
    pub remedy: String,
}

impl LackDetail {
    /// From an unmet ability and its reason.
    pub fn new(ability: crate::Ability, reason: &crate::verdict::Reason) -> LackDetail {
        LackDetail {
            ability: ability.name().to_owned(),
            failed: reason.short(),
            cause: (reason.cause.id().to_owned(), reason.cause.to_string()),
            remedy: reason.remedy.clone(),
        }
    }

    fn to_json(&self) -> Json {
        Json::object([
            ("ability", Json::from(&self.ability)),
            ("failed", (&self.failed).into()),
            (
                "cause",
                Json::object([
                    ("id", Json::from(&self.cause.0)),
                    ("message", (&self.cause.1).into()),
                ]),
            ),
            ("remedy", (&self.remedy).into()),
        ])
    }
}

fn lacks(list: &[LackDetail]) -> Json {
    Json::Array(list.iter().map(LackDetail::to_json).collect())
}

/// What the process that created a binary's ledger knew: verdicts,
/// requirement sets and skip reasons, indexed from the slots.
#[derive(Debug, Clone, Default)]
pub(crate) struct BinaryDetails {
    /// The binary.
    pub binary: String,
    /// The verdicts its tests needed ([`crate::Verdict::to_json`]).
    pub abilities: Vec<Json>,
    /// Requirement sets, indexed by a slot's `requires`.
    pub requirement_sets: Vec<Vec<String>>,
    /// Skip reasons, indexed by a slot's `reason`: each unmet ability.
    pub reasons: Vec<Vec<LackDetail>>,
    /// `#[ignore = "why"]` reasons, by slot index.
    pub ignore_reasons: BTreeMap<u32, String>,
    /// The environment error, when the configuration is malformed.
    pub config_error: Option<String>,
    /// Whether the binary ran under libtest's own harness (plain mode),
    /// where only annotated tests are recorded.
    pub plain_harness: bool,
}

impl BinaryDetails {
    fn to_json(&self) -> Json {
        let out = Json::object([
            ("binary", Json::from(&self.binary)),
            ("abilities", Json::Array(self.abilities.clone())),
            (
                "requirement_sets",
                Json::Array(
                    self.requirement_sets
                        .iter()
                        .map(|s| s.clone().into())
                        .collect(),
                ),
            ),
            (
                "reasons",
                Json::Array(self.reasons.iter().map(|r| lacks(r)).collect()),
            ),
            (
                "ignore_reasons",
                Json::object(
                    self.ignore_reasons
                        .iter()
                        .map(|(i, r)| (i.to_string(), Json::from(r))),
                ),
            ),
        ]);
        let out = out.with_some("config_error", self.config_error.as_deref());
        if self.plain_harness {
            out.with("plain_harness", true)
        } else {
            out
        }
    }
}

/// What a complete run adds at its end: failure messages by slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct BinaryOutcomes {
    /// Failure messages, by slot index.
    pub messages: BTreeMap<u32, String>,
}

impl BinaryOutcomes {
    fn to_json(&self) -> Json {
        Json::object([(
            "messages",
            Json::object(
                self.messages
                    .iter()
                    .map(|(i, m)| (i.to_string(), Json::from(m))),
            ),
        )])
    }
}

/// What one nextest test process adds to its slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestDetail {
    /// nextest's attempt (retries).
    pub attempt: u16,
    /// The failure message.
    pub message: Option<String>,
    /// Unmet requirements found by this process (which then skipped or,
    /// under `USERNS_TEST_REQUIRE`, failed the test).
    pub lacking: Vec<LackDetail>,
    /// The verdicts this process used, when they differ from the listing's.
    pub abilities: Vec<Json>,
}

impl TestDetail {
    /// Its fields, added to `out` (an object).
    fn add_to(&self, out: Json) -> Json {
        let mut out = out
            .with("attempt", self.attempt)
            .with_some("message", self.message.as_deref());
        if !self.lacking.is_empty() {
            out = out.with("lacking", lacks(&self.lacking));
        }
        if !self.abilities.is_empty() {
            out = out.with("abilities", Json::Array(self.abilities.clone()));
        }
        out
    }
}

/// A test whose process found no ledger for its binary (a nextest older
/// than 0.9.138 does not tell the listing its run), written at its start
/// and again at its end.
#[derive(Debug, Clone)]
pub(crate) struct Orphan {
    /// The binary.
    pub binary: String,
    /// The test.
    pub name: String,
    /// What it requires.
    pub requires: Vec<String>,
    /// `started`, or its outcome.
    pub state: String,
    /// Its message, unmet requirements and the verdicts it used.
    pub detail: TestDetail,
    /// The process, with its start time.
    pub pid: (u32, u64),
    /// Microseconds.
    pub duration_us: u64,
}

impl Orphan {
    fn to_json(&self) -> Json {
        let out = Json::object([
            ("binary", Json::from(&self.binary)),
            ("name", (&self.name).into()),
            ("requires", self.requires.clone().into()),
            ("state", (&self.state).into()),
        ]);
        self.detail
            .add_to(out)
            .with(
                "pid",
                Json::Array(vec![self.pid.0.into(), self.pid.1.into()]),
            )
            .with("duration_us", self.duration_us)
    }
}

/// The private directory holding a report's runs.
pub struct Store {
    dir: Dir,
}

impl Store {
    /// The store beside the report file `primary`: `.<name>.parts/` in its
    /// directory (created if missing, and checked: see [`crate::safe_fs`]).
    pub fn beside(primary: &Path) -> Result<Store, FsError> {
        let name = primary.file_name().ok_or_else(|| FsError {
            path: primary.to_owned(),
            problem: crate::safe_fs::Problem::WrongKind {
                found: "a path that names no file",
                wanted: "a file name",
            },
        })?;
        let parent = match primary.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = Dir::for_writing(parent)?;
        let mut parts = std::ffi::OsString::from(".");
        parts.push(name);
        parts.push(".parts");
        Ok(Store {
            dir: dir.private_subdir(parts)?,
        })
    }

    /// The store of reports that have no file of their own (a step summary
    /// alone): `$TMPDIR/userns-test-<euid>/reports/<key>/`.
    pub fn private(key: &str) -> Result<Store, FsError> {
        let base = crate::safe_fs::private_temp_base()?;
        let reports = base.private_subdir("reports")?;
        Ok(Store {
            dir: reports.private_subdir(format!("{:016x}", fnv1a(key.as_bytes())))?,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Holds the store's claim lock while `f` runs: starting a wrapped run
    /// (checking that no other run is live, then creating it) is one step
    /// for any two `userns-test run`s of one report.
    pub fn claimed<T>(&self, bound: Duration, f: impl FnOnce() -> T) -> Result<T, FsError> {
        let lock = self.dir.lock("claim", bound)?;
        let out = f();
        drop(lock);
        Ok(out)
    }

    /// The directory of run `key`, created (with its `run` file) by the
    /// first process of the run, which also removes runs long gone.
    pub fn run(&self, key: &RunKey, owner: Option<(u32, u64)>) -> Result<RunDir, FsError> {
        let name = key.dir_name();
        let existed = self.dir.stat(&name)?.is_some();
        let dir = self.dir.private_subdir(&name)?;
        let run = RunDir { dir };
        if !existed || run.meta()?.is_none() {
            let meta = RunMeta::now(key.clone(), owner);
            run.publish_meta(&meta)?;
            self.remove_old_runs(&name);
        }
        Ok(run)
    }

    /// Every run here, newest first.
    pub fn runs(&self) -> Result<Vec<(RunMeta, RunDir)>, FsError> {
        let mut runs = Vec::new();
        for (name, is_dir) in self.dir.entries()? {
            if !is_dir {
                continue;
            }
            let run = RunDir {
                dir: self.dir.private_subdir(&name)?,
            };
            if let Ok(Some(meta)) = run.meta() {
                runs.push((meta, run));
            }
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.0.started_unix_ms));
        Ok(runs)
    }

    /// Removes runs that are over and old: older than a day, or beyond the
    /// newest few. A run is over only when its owner (cargo, nextest, the
    /// wrapper) is known to be gone, or it is of another boot; a run whose
    /// owner lives, or cannot be seen from here (another PID namespace),
    /// is never removed, whatever the clock says (a clock stepped forward
    /// makes any run look old).
    fn remove_old_runs(&self, current: &str) {
        let Ok(runs) = self.runs() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for (i, (meta, run)) in runs.iter().enumerate() {
            let name = run.dir.path().file_name().unwrap_or_default();
            if name == current || !is_over(meta) {
                continue;
            }
            let age = Duration::from_millis(now.saturating_sub(meta.started_unix_ms));
            if age > STALE_RUN || i > RUNS_KEPT {
                let _ = self.dir.remove(name);
            }
        }
    }
}

/// Whether the run of `meta` is certainly over: its owner is gone, or it
/// ran before this boot.
pub fn is_over(meta: &RunMeta) -> bool {
    if meta.boot_id.is_some() && meta.boot_id != boot_id() {
        return true;
    }
    meta.owner
        .is_some_and(|owner| alive(meta, owner) == Some(false))
}

/// An orphan test's record by file name: its bytes, or why they could not
/// be read.
pub type OrphanFile = (String, Result<Vec<u8>, FsError>);

/// A binary's name and its ledger, or why it cannot be used.
pub type BinaryLedger = (String, Result<Ledger, FsError>);

/// One run's directory.
pub struct RunDir {
    dir: Dir,
}

impl RunDir {
    /// The run directory at `path` (given by `userns-test run` to the
    /// processes it starts), checked as private to this uid.
    pub fn at(path: &Path) -> Result<RunDir, FsError> {
        let wrong = |found| FsError {
            path: path.to_owned(),
            problem: crate::safe_fs::Problem::WrongKind {
                found,
                wanted: "the path of a run directory in a store",
            },
        };
        let run = path
            .file_name()
            .ok_or_else(|| wrong("a path that names no directory"))?;
        let store_path = path
            .parent()
            .ok_or_else(|| wrong("a path without a parent"))?;
        let store = store_path
            .file_name()
            .ok_or_else(|| wrong("a path whose parent names no directory"))?;
        let outer = match store_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // The store and the run are both private to this uid.
        let store = Dir::for_writing(outer)?.private_subdir(store)?;
        Ok(RunDir {
            dir: store.private_subdir(run)?,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The other runs of this run's store (the same report destination)
    /// whose owner is still running: a report written now would be
    /// overwritten by theirs, or overwrite it.
    pub fn live_others(&self) -> Vec<RunMeta> {
        let path = self.dir.path();
        let (Some(name), Some(store_path)) = (path.file_name(), path.parent()) else {
            return Vec::new();
        };
        let (Some(store_name), Some(outer)) = (store_path.file_name(), store_path.parent()) else {
            return Vec::new();
        };
        let Ok(dir) = Dir::for_writing(outer).and_then(|d| d.private_subdir(store_name)) else {
            return Vec::new();
        };
        let Ok(runs) = (Store { dir }).runs() else {
            return Vec::new();
        };
        runs.into_iter()
            .filter(|(meta, run)| {
                run.dir.path().file_name() != Some(name)
                    && meta.owner.is_some_and(|o| alive(meta, o) == Some(true))
            })
            .map(|(meta, _)| meta)
            .collect()
    }

    /// The run's metadata, if written yet.
    pub fn meta(&self) -> Result<Option<RunMeta>, FsError> {
        let Some(bytes) = self.dir.read("run", SMALL_FILE)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        RunMeta::parse(&text).map(Some).ok_or_else(|| FsError {
            path: self.dir.path().join("run"),
            problem: crate::safe_fs::Problem::Io {
                doing: "reading",
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a run's metadata of this version",
                ),
            },
        })
    }

    /// Writes the `run` file unless another process of the run did first.
    pub(crate) fn publish_meta(&self, meta: &RunMeta) -> Result<(), FsError> {
        self.dir
            .publish_new("run", meta.to_text().as_bytes())
            .map(drop)
    }

    /// Replaces the `run` file (the wrapper adds its command).
    pub(crate) fn rewrite_meta(&self, meta: &RunMeta) -> Result<(), FsError> {
        self.dir.replace("run", meta.to_text().as_bytes())
    }

    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Writes a new ledger for `binary` and maps it.
    pub(crate) fn create_ledger(&self, binary: &str, bytes: &[u8]) -> Result<Ledger, FsError> {
        let name = ledger_name(binary);
        self.dir.replace(&name, bytes)?;
        self.open_ledger_file(&name)
    }

    /// The ledger of `binary`, if there is one.
    pub(crate) fn ledger(&self, binary: &str) -> Result<Option<Ledger>, FsError> {
        let name = ledger_name(binary);
        if self.dir.stat(&name)?.is_none() {
            return Ok(None);
        }
        self.open_ledger_file(&name).map(Some)
    }

    fn open_ledger_file(&self, name: &str) -> Result<Ledger, FsError> {
        let file = self.dir.open_rw(name, false)?;
        Ledger::open(file).map_err(|Damaged(why)| FsError {
            path: self.dir.path().join(name),
            problem: crate::safe_fs::Problem::Io {
                doing: "using the ledger",
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("it {why}")),
            },
        })
    }

    /// Every binary with a ledger here, by binary name, each ledger mapped
    /// or the reason it cannot be.
    pub fn ledgers(&self) -> Result<Vec<BinaryLedger>, FsError> {
        let mut out = Vec::new();
        for (name, is_dir) in self.dir.entries()? {
            let name = name.to_string_lossy().into_owned();
            if is_dir {
                continue;
            }
            if let Some(stem) = name.strip_suffix(".ledger") {
                out.push((unsafe_name(stem), self.open_ledger_file(&name)));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes the details of the binary of `key` ([`binary_key`]).
    pub(crate) fn write_details(&self, key: &str, details: &BinaryDetails) -> Result<(), FsError> {
        self.write_json(
            &format!("{}.details.json", safe_name(key)),
            &details.to_json(),
        )
    }

    /// The details of the binary of `key` (JSON), if written.
    pub fn details(&self, key: &str) -> Result<Option<Vec<u8>>, FsError> {
        self.dir
            .read(format!("{}.details.json", safe_name(key)), LARGE_FILE)
    }

    /// Writes what a complete run of the binary of `key` adds at its end.
    pub(crate) fn write_outcomes(
        &self,
        key: &str,
        outcomes: &BinaryOutcomes,
    ) -> Result<(), FsError> {
        self.write_json(
            &format!("{}.outcomes.json", safe_name(key)),
            &outcomes.to_json(),
        )
    }

    /// What a complete run of the binary of `key` added at its end (JSON),
    /// if it got there.
    pub fn outcomes(&self, key: &str) -> Result<Option<Vec<u8>>, FsError> {
        self.dir
            .read(format!("{}.outcomes.json", safe_name(key)), LARGE_FILE)
    }

    fn tests_dir(&self, key: &str) -> Result<Dir, FsError> {
        self.dir.private_subdir(format!("{}.tests", safe_name(key)))
    }

    /// Writes what the test process of slot `index` adds.
    pub(crate) fn write_test_detail(
        &self,
        key: &str,
        index: usize,
        detail: &TestDetail,
    ) -> Result<(), FsError> {
        let dir = self.tests_dir(key)?;
        let text = detail.add_to(Json::object::<&str>([])).to_text();
        dir.replace(format!("{index}.json"), text.as_bytes())
    }

    /// What the test process of slot `index` added (JSON), if anything.
    pub fn test_detail(&self, key: &str, index: usize) -> Result<Option<Vec<u8>>, FsError> {
        let name = format!("{}.tests", safe_name(key));
        if self.dir.stat(&name)?.is_none() {
            return Ok(None);
        }
        self.dir
            .private_subdir(&name)?
            .read(format!("{index}.json"), SMALL_FILE)
    }

    /// Writes an orphan test's state (of the binary of `key`).
    pub(crate) fn write_orphan(&self, key: &str, orphan: &Orphan) -> Result<(), FsError> {
        let dir = self.dir.private_subdir("orphans")?;
        dir.replace(
            format!("{}.{}.json", safe_name(key), safe_name(&orphan.name)),
            orphan.to_json().to_text().as_bytes(),
        )
    }

    /// Every orphan test's record (JSON) by file name, or why it could not
    /// be read.
    pub fn orphans(&self) -> Result<Vec<OrphanFile>, FsError> {
        if self.dir.stat("orphans")?.is_none() {
            return Ok(Vec::new());
        }
        let dir = self.dir.private_subdir("orphans")?;
        let mut out = Vec::new();
        for (name, is_dir) in dir.entries()? {
            let name = name.to_string_lossy().into_owned();
            if is_dir || name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = dir.read(&name, SMALL_FILE).and_then(|b| {
                b.ok_or_else(|| FsError {
                    path: dir.path().join(&name),
                    problem: crate::safe_fs::Problem::Io {
                        doing: "reading",
                        error: std::io::ErrorKind::NotFound.into(),
                    },
                })
            });
            out.push((name, bytes));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// `true` the first time `what` is marked in this run (a step
    /// summary written, an annotation emitted), `false` after.
    pub fn mark_once(&self, what: &str) -> Result<bool, FsError> {
        let markers = self.dir.private_subdir("markers")?;
        match markers.create_new(safe_name(what), 0o600) {
            Ok(_) => Ok(true),
            Err(FsError {
                problem: crate::safe_fs::Problem::Io { ref error, .. },
                ..
            }) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Marks the run finished (by `userns-test finish` or `run`), with
    /// when and how: `false` when it already was.
    pub fn mark_finished(&self, how: &str) -> Result<bool, FsError> {
        let text = format!("at {} ({how})", crate::text::rfc3339(SystemTime::now()));
        self.dir.publish_new("finished", text.as_bytes())
    }

    /// When and how the run was finished, if it was.
    pub fn finished(&self) -> Result<Option<String>, FsError> {
        Ok(self
            .dir
            .read("finished", SMALL_FILE)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Whether `what` was marked in this run.
    pub fn has_mark(&self, what: &str) -> Result<bool, FsError> {
        if self.dir.stat("markers")?.is_none() {
            return Ok(false);
        }
        let markers = self.dir.private_subdir("markers")?;
        Ok(markers.stat(safe_name(what))?.is_some())
    }

    /// How many markers starting with `prefix` exist.
    pub fn count_marks(&self, prefix: &str) -> Result<usize, FsError> {
        if self.dir.stat("markers")?.is_none() {
            return Ok(0);
        }
        let markers = self.dir.private_subdir("markers")?;
        let prefix = safe_name(prefix);
        Ok(markers
            .entries()?
            .iter()
            .filter(|(n, _)| n.to_string_lossy().starts_with(&prefix))
            .count())
    }

    /// The run's lock, held while a report is assembled and written.
    pub fn lock(&self, bound: Duration) -> Result<std::fs::File, FsError> {
        self.dir.lock("lock", bound)
    }

    fn write_json(&self, name: &str, value: &Json) -> Result<(), FsError> {
        self.dir.replace(name, value.to_text().as_bytes())
    }

    /// A path inside the run directory, for files other programs write
    /// (nextest's JUnit).
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The name a binary's files have in a run: its name for reports and its
/// executable's identity (a hash of the executable's path, which holds
/// cargo's build hash), so that two binaries of one name (a package's
/// unit tests and an integration test named after the package) never
/// share records. Every process of one binary computes the same.
pub(crate) fn binary_key(binary: &str) -> String {
    static EXE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let exe = *EXE.get_or_init(|| {
        let path = std::env::current_exe().unwrap_or_default();
        // The path's own bytes on Unix; a stable encoding elsewhere.
        fnv1a(path.as_os_str().as_encoded_bytes()) as u32
    });
    format!("{binary}@{exe:08x}")
}

/// The binary's name for reports, from its key (see `binary_key`).
pub fn binary_of_key(key: &str) -> &str {
    key.rsplit_once('@').map_or(key, |(name, _)| name)
}

fn ledger_name(binary: &str) -> String {
    format!("{}.ledger", safe_name(binary))
}

/// A file name for any string: bytes outside `[A-Za-z0-9_.-]` become
/// `%XX`, so distinct names stay distinct (`a::b` and `a__b` differ), and
/// a leading `.` too, so no name is hidden or `..`.
pub fn safe_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`safe_name`].
pub(crate) fn unsafe_name(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? << 4 | hex(bytes[i + 2])?))
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The start time of process `pid` (clock ticks after boot), if it runs.
pub fn process_start_time(pid: u32) -> Option<u64> {
    super::lineage::Process::read(pid).map(|p| p.start)
}

/// This process, with its start time.
pub fn this_process() -> (u32, u64) {
    let pid = std::process::id();
    (pid, process_start_time(pid).unwrap_or(0))
}

/// Whether the process `(pid, start)` still runs, as far as this process
/// can tell: `None` when it cannot (the run's pids are of another boot or
/// PID namespace, or the start time is unknown).
pub fn alive(meta: &RunMeta, (pid, start): (u32, u64)) -> Option<bool> {
    if pid == 0 || start == 0 {
        return None;
    }
    if meta.boot_id.is_none()
        || meta.boot_id != boot_id()
        || meta.pid_namespace.is_none()
        || meta.pid_namespace != pid_namespace()
    {
        return None;
    }
    Some(process_start_time(pid) == Some(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_distinct_plain_and_reversible() {
        assert_eq!(safe_name("net::creates_ns"), "net%3A%3Acreates_ns");
        assert_ne!(safe_name("a::b"), safe_name("a__b"));
        assert_eq!(safe_name("jailer"), "jailer");
        assert_eq!(safe_name(".."), "%2E.");
        assert_eq!(safe_name("a/b"), "a%2Fb");
        for s in ["pkg::suite", "名前::x", "..", "a%b", "x.y"] {
            assert_eq!(unsafe_name(&safe_name(s)), s);
        }
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let meta = RunMeta::now(
            RunKey {
                kind: "process".into(),
                id: "t".into(),
            },
            None,
        );
        assert_eq!(alive(&meta, this_process()), Some(true));
        let (pid, start) = this_process();
        assert_eq!(alive(&meta, (pid, start + 1)), Some(false));
        let elsewhere = RunMeta {
            pid_namespace: Some("pid:[1]".into()),
            ..meta
        };
        assert_eq!(alive(&elsewhere, this_process()), None);
    }
}
