//! Where the parts of a run wait to be put together, and how files are
//! written: atomically (temporary file, then `rename`), under an exclusive
//! `flock` when several processes of one run assemble the same report.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{BinaryPart, Outcome, Report, ReportError, RunId, TestEntry};

/// The parts of one run: `.<report>.parts/<kind>-<id>/` beside the report.
pub(super) struct Store {
    root: PathBuf,
    dir: PathBuf,
}

impl Store {
    /// The store of `run` for the report at `primary`, created if needed.
    pub(super) fn open(primary: &Path, run: &RunId) -> io::Result<Store> {
        let parent = parent_of(primary);
        let name = primary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| io::Error::other("the report path names no file"))?;
        let root = parent.join(format!(".{name}.parts"));
        let dir = root.join(format!("{}-{}", run.kind, safe_name(&run.id)));
        fs::create_dir_all(&dir)?;
        Ok(Store { root, dir })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds a binary's whole part (a complete run, or nextest's listing),
    /// replacing an earlier one of the same binary, and removes the parts
    /// of earlier runs.
    pub(super) fn add_part(&self, part: &BinaryPart) -> io::Result<()> {
        let _lock = self.lock()?;
        for entry in fs::read_dir(&self.root)?.flatten() {
            let path = entry.path();
            if path.is_dir() && path != self.dir {
                let _ = fs::remove_dir_all(&path);
            }
        }
        let bytes = serde_json::to_vec(part).map_err(io::Error::other)?;
        write_atomically(
            &self.dir.join(format!("{}.json", safe_name(&part.binary))),
            &bytes,
        )
    }

    /// Adds the outcomes of the tests one nextest process ran.
    pub(super) fn add_test_outcomes(&self, part: &BinaryPart) -> io::Result<()> {
        let dir = self.dir.join(format!("{}.tests", safe_name(&part.binary)));
        fs::create_dir_all(&dir)?;
        for t in part
            .tests
            .iter()
            .filter(|t| t.outcome != Outcome::FilteredOut)
        {
            let bytes = serde_json::to_vec(t).map_err(io::Error::other)?;
            write_atomically(&dir.join(format!("{}.json", safe_name(&t.name))), &bytes)?;
        }
        Ok(())
    }

    /// Puts every part of the run together and hands the report to
    /// `write`, holding the run's lock so that no other process of the run
    /// writes at the same time.
    pub(super) fn assemble_locked(
        &self,
        run: RunId,
        write: impl FnOnce(&Report) -> Vec<ReportError>,
    ) -> io::Result<Vec<ReportError>> {
        let _lock = self.lock()?;
        let mut parts = Vec::new();
        for path in finished_json(&self.dir)? {
            let mut part: BinaryPart = read_json(&path)?;
            let outcomes = self.dir.join(format!("{}.tests", safe_name(&part.binary)));
            if outcomes.is_dir() {
                let index: HashMap<String, usize> = part
                    .tests
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.name.clone(), i))
                    .collect();
                for path in finished_json(&outcomes)? {
                    let ran: TestEntry = read_json(&path)?;
                    match index.get(&ran.name) {
                        Some(&i) => part.tests[i] = ran,
                        None => part.tests.push(ran),
                    }
                }
            }
            parts.push(part);
        }
        // Outcomes without a listing part: nextest before 0.9.138 does not
        // tell the listing which run it belongs to, so only the test
        // processes contribute (skipped tests, never started, are absent).
        let mut orphans: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.with_extension("json").exists())
            .collect();
        orphans.sort();
        for dir in orphans {
            let tests = finished_json(&dir)?
                .iter()
                .map(|p| read_json(p))
                .collect::<io::Result<Vec<TestEntry>>>()?;
            if let Some(first) = tests.first() {
                parts.push(BinaryPart {
                    binary: first.binary.clone(),
                    abilities: Vec::new(),
                    tests,
                });
            }
        }
        let report = Report::assemble(run, parts);
        Ok(write(&report))
    }

    fn lock(&self) -> io::Result<Flock<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("lock"))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))
    }
}

/// The finished parts in `dir`, sorted: `*.json` files, not the
/// `.<name>.tmp.<pid>` files other processes of the run are still writing
/// (parts are written outside the lock).
fn finished_json(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A file name for any string: bytes outside `[A-Za-z0-9_.-]` become
/// `%XX`, so distinct names stay distinct (`a::b` and `a__b` differ).
fn safe_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a `rename`, so readers see the old file or the new one, never half.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = parent_of(path);
    fs::create_dir_all(&parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::other("the path names no file"))?;
    let tmp = parent.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        // No fsync: the rename makes a crash of this process harmless,
        // which is the failure that matters for a test report; syncing
        // would cost every nextest test process milliseconds.
        File::create(&tmp)?.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Appends `text` to `path` (GitHub's step summary is shared by the step).
pub(super) fn append(path: &Path, text: &str) -> io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_distinct_and_plain() {
        assert_eq!(safe_name("net::creates_ns"), "net%3A%3Acreates_ns");
        assert_ne!(safe_name("a::b"), safe_name("a__b"));
        assert_eq!(safe_name("jailer"), "jailer");
    }

    fn entry(name: &str, outcome: Outcome) -> TestEntry {
        TestEntry {
            binary: "pkg::suite".into(),
            name: name.into(),
            requires: vec!["net".into()],
            outcome,
            message: None,
            lacking: Vec::new(),
            duration_ms: 1.0,
            ran_despite_unmet: false,
        }
    }

    /// The listing's part, then each test process's outcome: the assembled
    /// report has every test once, with the latest outcome; outcomes
    /// without a listing still make a report.
    #[test]
    fn parts_and_outcomes_assemble_into_one_report() {
        let dir = std::env::temp_dir().join(format!("userns-test-parts-{}", std::process::id()));
        let run = RunId {
            kind: "nextest".into(),
            id: "r1".into(),
        };
        let store = Store::open(&dir.join("report.json"), &run).unwrap();
        let part = |tests| BinaryPart {
            binary: "pkg::suite".into(),
            abilities: Vec::new(),
            tests,
        };
        store
            .add_part(&part(vec![
                entry("a", Outcome::NotRun),
                entry("b", Outcome::Skipped),
            ]))
            .unwrap();
        store
            .add_test_outcomes(&part(vec![
                entry("a", Outcome::Passed),
                entry("b", Outcome::FilteredOut),
            ]))
            .unwrap();
        // Another process of the run, mid-write (parts are written outside
        // the lock): its temporary file is not a part.
        fs::write(
            store.dir().join("pkg%3A%3Asuite.tests/.b.json.tmp.99999"),
            "{\"half",
        )
        .unwrap();
        let outcomes = |store: &Store, run: &RunId| {
            let mut seen = Vec::new();
            store
                .assemble_locked(run.clone(), |r| {
                    seen = r
                        .tests
                        .iter()
                        .map(|t| (t.name.clone(), t.outcome))
                        .collect();
                    Vec::new()
                })
                .unwrap();
            seen
        };
        assert_eq!(
            outcomes(&store, &run),
            [
                ("a".to_owned(), Outcome::Passed),
                ("b".to_owned(), Outcome::Skipped)
            ]
        );

        let old_nextest = RunId {
            kind: "nextest".into(),
            id: "r2".into(),
        };
        let store = Store::open(&dir.join("report.json"), &old_nextest).unwrap();
        store
            .add_test_outcomes(&part(vec![entry("a", Outcome::Failed)]))
            .unwrap();
        assert_eq!(
            outcomes(&store, &old_nextest),
            [("a".to_owned(), Outcome::Failed)]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("userns-test-store-{}", std::process::id()));
        let path = dir.join("deep/report.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.join("deep"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "report.json")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}
