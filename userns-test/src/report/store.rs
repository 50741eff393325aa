//! Where a run's processes leave what they know, for whoever assembles the
//! report: a directory private to this uid, `.<report name>.parts/` beside
//! the report (or under `$TMPDIR/userns-test-<euid>/` when no report file
//! is asked for), with one subdirectory per run:
//!
//! ```text
//! run.json                  the run: kind, id, start, boot, PID namespace
//! <key>.ledger              one slot per test, updated as tests run
//! <key>.details.json        verdicts, requirement sets, skip reasons
//! <key>.outcomes.json       failure messages (a complete run, at its end)
//! <key>.tests/<i>.json      what one nextest test process adds to slot i
//! orphans/                  tests of processes that found no ledger
//! markers/                  what was written once per run (summaries, annotations)
//! lock                      serialises assembling the report
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

use serde::{Deserialize, Serialize};

use super::ledger::{Damaged, Ledger};
use super::model::LackDetail;
use crate::safe_fs::{Dir, FsError};

/// A run's metadata file is small; anything larger is not ours.
const SMALL_FILE: u64 = 1 << 20;
/// A binary's details hold one entry per distinct reason and per ignored
/// or failed test: generous.
const LARGE_FILE: u64 = 256 << 20;
/// Runs kept besides the current one.
const RUNS_KEPT: usize = 8;
/// Runs older than this are removed when a new run starts.
const STALE_RUN: Duration = Duration::from_secs(24 * 60 * 60);

/// Which run a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// `nextest`, `cargo`, `process` or `wrapped`.
    pub kind: String,
    /// The run's id within its kind.
    pub id: String,
}

impl RunKey {
    /// The run directory's name: `<kind>-<id>`, with anything but
    /// `[A-Za-z0-9_.-]` written `%XX`.
    pub(crate) fn dir_name(&self) -> String {
        format!("{}-{}", safe_name(&self.kind), safe_name(&self.id))
    }
}

/// What a run's first process wrote about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The CI job the run's first process ran in ([`ci_job`]), so that a
    /// later job on the same machine does not finish it as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
    /// Where nextest writes its JUnit for a wrapped run, when not in the
    /// run's directory (a path TOML cannot hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nextest_junit: Option<PathBuf>,
}

impl RunMeta {
    /// The run in words, for messages: `cargo 123-456 (pid 123, started
    /// ..., `cargo test`)`.
    pub(crate) fn describe(&self) -> String {
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
    pub(crate) fn now(key: RunKey, owner: Option<(u32, u64)>) -> RunMeta {
        let now = SystemTime::now();
        RunMeta {
            key,
            started_at: super::model::rfc3339(now),
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
}

/// This CI job's identity, from the variables each CI service sets for
/// one job (one attempt of it): GitHub Actions' run, attempt and job;
/// GitLab's, Buildkite's, CircleCI's, Azure Pipelines' and Travis' job
/// ids; Jenkins' build tag. `None` outside CI.
pub(crate) fn ci_job() -> Option<String> {
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

/// What the process that created a binary's ledger knew: verdicts,
/// requirement sets and skip reasons, indexed from the slots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BinaryDetails {
    /// The binary.
    pub binary: String,
    /// The verdicts its tests needed (`doctor --json` objects).
    pub abilities: Vec<serde_json::Value>,
    /// Requirement sets, indexed by a slot's `requires`.
    pub requirement_sets: Vec<Vec<String>>,
    /// Skip reasons, indexed by a slot's `reason`: each unmet ability.
    pub reasons: Vec<Vec<LackDetail>>,
    /// `#[ignore = "why"]` reasons, by slot index.
    pub ignore_reasons: BTreeMap<u32, String>,
    /// The environment error, when the configuration is malformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// Whether the binary ran under libtest's own harness (plain mode),
    /// where only annotated tests are recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_harness: bool,
}

/// What a complete run adds at its end: failure messages by slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BinaryOutcomes {
    /// Failure messages, by slot index.
    pub messages: BTreeMap<u32, String>,
}

/// What one nextest test process adds to its slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestDetail {
    /// nextest's attempt (retries).
    pub attempt: u16,
    /// The failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Unmet requirements found by this process (which then skipped or,
    /// under `USERNS_TEST_REQUIRE`, failed the test).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lacking: Vec<LackDetail>,
    /// The verdicts this process used, when they differ from the listing's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abilities: Vec<serde_json::Value>,
}

/// A test whose process found no ledger for its binary (a nextest older
/// than 0.9.138 does not tell the listing its run), written at its start
/// and again at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphan {
    /// The binary.
    pub binary: String,
    /// The test.
    pub name: String,
    /// What it requires.
    pub requires: Vec<String>,
    /// `started`, or its outcome.
    pub state: String,
    /// Its message, unmet requirements and the verdicts it used.
    #[serde(flatten)]
    pub detail: TestDetail,
    /// The process, with its start time.
    pub pid: (u32, u64),
    /// Microseconds.
    pub duration_us: u64,
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
    pub(crate) fn claimed<T>(&self, bound: Duration, f: impl FnOnce() -> T) -> Result<T, FsError> {
        let lock = self.dir.lock("claim", bound)?;
        let out = f();
        drop(lock);
        Ok(out)
    }

    /// The directory of run `key`, created (with its `run.json`) by the
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
pub(crate) fn is_over(meta: &RunMeta) -> bool {
    if meta.boot_id.is_some() && meta.boot_id != boot_id() {
        return true;
    }
    meta.owner
        .is_some_and(|owner| alive(meta, owner) == Some(false))
}

/// A binary's name and its ledger, or why it cannot be used.
pub(crate) type BinaryLedger = (String, Result<Ledger, FsError>);

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
    pub(crate) fn live_others(&self) -> Vec<RunMeta> {
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
        self.read_json("run.json", SMALL_FILE)
    }

    /// Writes `run.json` unless another process of the run did first.
    pub(crate) fn publish_meta(&self, meta: &RunMeta) -> Result<(), FsError> {
        let bytes = serde_json::to_vec_pretty(meta).unwrap_or_default();
        self.dir.publish_new("run.json", &bytes).map(drop)
    }

    /// Replaces `run.json` (the wrapper adds its command).
    pub(crate) fn rewrite_meta(&self, meta: &RunMeta) -> Result<(), FsError> {
        let bytes = serde_json::to_vec_pretty(meta).unwrap_or_default();
        self.dir.replace("run.json", &bytes)
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
        Ledger::map(&file).map_err(|Damaged(why)| FsError {
            path: self.dir.path().join(name),
            problem: crate::safe_fs::Problem::Io {
                doing: "using the ledger",
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("it {why}")),
            },
        })
    }

    /// Every binary with a ledger here, by binary name, each ledger mapped
    /// or the reason it cannot be.
    pub(crate) fn ledgers(&self) -> Result<Vec<BinaryLedger>, FsError> {
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
        self.write_json(&format!("{}.details.json", safe_name(key)), details)
    }

    /// `binary`'s details, if written.
    pub(crate) fn details(&self, binary: &str) -> Result<Option<BinaryDetails>, FsError> {
        self.read_json(&format!("{}.details.json", safe_name(binary)), LARGE_FILE)
    }

    /// Writes what a complete run of `binary` adds at its end.
    pub(crate) fn write_outcomes(
        &self,
        binary: &str,
        outcomes: &BinaryOutcomes,
    ) -> Result<(), FsError> {
        self.write_json(&format!("{}.outcomes.json", safe_name(binary)), outcomes)
    }

    /// What a complete run of `binary` added at its end, if it got there.
    pub(crate) fn outcomes(&self, binary: &str) -> Result<Option<BinaryOutcomes>, FsError> {
        self.read_json(&format!("{}.outcomes.json", safe_name(binary)), LARGE_FILE)
    }

    fn tests_dir(&self, binary: &str) -> Result<Dir, FsError> {
        self.dir
            .private_subdir(format!("{}.tests", safe_name(binary)))
    }

    /// Writes what the test process of slot `index` adds.
    pub(crate) fn write_test_detail(
        &self,
        binary: &str,
        index: usize,
        detail: &TestDetail,
    ) -> Result<(), FsError> {
        let dir = self.tests_dir(binary)?;
        let bytes = serde_json::to_vec(detail).unwrap_or_default();
        dir.replace(format!("{index}.json"), &bytes)
    }

    /// What the test process of slot `index` added, if anything.
    pub(crate) fn test_detail(
        &self,
        binary: &str,
        index: usize,
    ) -> Result<Option<TestDetail>, FsError> {
        let name = format!("{}.tests", safe_name(binary));
        if self.dir.stat(&name)?.is_none() {
            return Ok(None);
        }
        let dir = self.dir.private_subdir(&name)?;
        read_json_in(&dir, &format!("{index}.json"), SMALL_FILE)
    }

    /// Writes an orphan test's state (of the binary of `key`).
    pub(crate) fn write_orphan(&self, key: &str, orphan: &Orphan) -> Result<(), FsError> {
        let dir = self.dir.private_subdir("orphans")?;
        let bytes = serde_json::to_vec(orphan).unwrap_or_default();
        dir.replace(
            format!("{}.{}.json", safe_name(key), safe_name(&orphan.name)),
            &bytes,
        )
    }

    /// How many orphan tests the run has recorded so far.
    pub(crate) fn orphan_count(&self) -> Result<usize, FsError> {
        if self.dir.stat("orphans")?.is_none() {
            return Ok(0);
        }
        let dir = self.dir.private_subdir("orphans")?;
        Ok(dir
            .entries()?
            .into_iter()
            .filter(|(name, is_dir)| {
                let name = name.to_string_lossy();
                !is_dir && !name.starts_with('.') && name.ends_with(".json")
            })
            .count())
    }

    /// Every orphan test of the run, and why each record that could not be
    /// read was not (one bad record loses its test, never the run).
    pub(crate) fn orphans(&self) -> Result<(Vec<Orphan>, Vec<String>), FsError> {
        if self.dir.stat("orphans")?.is_none() {
            return Ok((Vec::new(), Vec::new()));
        }
        let dir = self.dir.private_subdir("orphans")?;
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for (name, is_dir) in dir.entries()? {
            let name = name.to_string_lossy().into_owned();
            if is_dir || name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match read_json_in::<Orphan>(&dir, &name, SMALL_FILE) {
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

    /// `true` the first time `what` is marked in this run (a step
    /// summary written, an annotation emitted), `false` after.
    pub(crate) fn mark_once(&self, what: &str) -> Result<bool, FsError> {
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
    pub(crate) fn mark_finished(&self, how: &str) -> Result<bool, FsError> {
        let text = format!("at {} ({how})", super::model::rfc3339(SystemTime::now()));
        self.dir.publish_new("finished", text.as_bytes())
    }

    /// When and how the run was finished, if it was.
    pub(crate) fn finished(&self) -> Result<Option<String>, FsError> {
        Ok(self
            .dir
            .read("finished", SMALL_FILE)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Whether `what` was marked in this run.
    pub(crate) fn has_mark(&self, what: &str) -> Result<bool, FsError> {
        if self.dir.stat("markers")?.is_none() {
            return Ok(false);
        }
        let markers = self.dir.private_subdir("markers")?;
        Ok(markers.stat(safe_name(what))?.is_some())
    }

    /// How many markers starting with `prefix` exist.
    pub(crate) fn count_marks(&self, prefix: &str) -> Result<usize, FsError> {
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
    pub(crate) fn lock(
        &self,
        bound: Duration,
    ) -> Result<nix::fcntl::Flock<std::fs::File>, FsError> {
        self.dir.lock("lock", bound)
    }

    fn write_json(&self, name: &str, value: &impl Serialize) -> Result<(), FsError> {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.dir.replace(name, &bytes)
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        limit: u64,
    ) -> Result<Option<T>, FsError> {
        read_json_in(&self.dir, name, limit)
    }

    /// A path inside the run directory, for files other programs write
    /// (nextest's JUnit).
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn read_json_in<T: serde::de::DeserializeOwned>(
    dir: &Dir,
    name: &str,
    limit: u64,
) -> Result<Option<T>, FsError> {
    let Some(bytes) = dir.read(name, limit)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| FsError {
            path: dir.path().join(name),
            problem: crate::safe_fs::Problem::Io {
                doing: "reading",
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            },
        })
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
        fnv1a(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) as u32
    });
    format!("{binary}@{exe:08x}")
}

/// The binary's name for reports, from its [`binary_key`].
pub(crate) fn binary_of_key(key: &str) -> &str {
    key.rsplit_once('@').map_or(key, |(name, _)| name)
}

fn ledger_name(binary: &str) -> String {
    format!("{}.ledger", safe_name(binary))
}

/// A file name for any string: bytes outside `[A-Za-z0-9_.-]` become
/// `%XX`, so distinct names stay distinct (`a::b` and `a__b` differ), and
/// a leading `.` too, so no name is hidden or `..`.
pub(crate) fn safe_name(s: &str) -> String {
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
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
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
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    super::lineage::Process::read(pid).map(|p| p.start)
}

/// This process, with its start time.
pub(crate) fn this_process() -> (u32, u64) {
    let pid = std::process::id();
    (pid, process_start_time(pid).unwrap_or(0))
}

/// Whether the process `(pid, start)` still runs, as far as this process
/// can tell: `None` when it cannot (the run's pids are of another boot or
/// PID namespace, or the start time is unknown).
pub(crate) fn alive(meta: &RunMeta, (pid, start): (u32, u64)) -> Option<bool> {
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
