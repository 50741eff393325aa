//! `userns-test merge`: many runners' JSON reports as one tests x runners
//! matrix, the tests that ran on no runner, and each runner's abilities.
//!
//! Reports with the same runner label are one runner's shards (nextest's
//! `--partition`, or one build run on several machines with
//! `--archive-file`): one column, where a test that ran in any shard ran,
//! a skip is counted once, and shards that disagree are shown as a
//! conflict. `--keep-shards` keeps one column per report instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::report::markdown::{cell, host_line, names_cell};
use crate::report::model::{Outcome, Report, SCHEMA};

/// The `schema` of `merge --format json`.
pub const MERGE_SCHEMA: &str = "userns-test/merge/3";

/// A report file that cannot be merged.
#[derive(Debug)]
pub enum LoadError {
    /// It could not be read (missing, unreadable, a directory).
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// It is empty.
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// It is not JSON, or not a report.
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// It is JSON of another kind or version.
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema it declares, if any.
        found: Option<String>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, error } => {
                write!(f, "{}: cannot read: {error}", path.display())
            }
            LoadError::Empty { path } => write!(
                f,
                "{}: empty file (did the run that should have written it fail?)",
                path.display()
            ),
            LoadError::Json {
                path,
                line,
                column,
                message,
            } => write!(
                f,
                "{}:{line}:{column}: not a userns-test report: {message}",
                path.display()
            ),
            LoadError::Schema { path, found } => {
                write!(
                    f,
                    "{}: schema {}, expected \"{SCHEMA}\" (a report written by \
                     USERNS_TEST_REPORT_JSON)",
                    path.display(),
                    found
                        .as_deref()
                        .map_or("missing".to_owned(), |s| format!("\"{s}\""))
                )?;
                if found.as_deref() == Some("userns-test/report/1") {
                    f.write_str(
                        "; it was written by an older userns-test: run the tests again with \
                         this version",
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads one report file, checking its schema before its shape so that a
/// report of another version says so rather than "missing field".
pub fn load(path: &Path) -> Result<Report, LoadError> {
    let read_error = |error| LoadError::Read {
        path: path.to_owned(),
        error,
    };
    if path.is_dir() {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    if text.trim().is_empty() {
        return Err(LoadError::Empty {
            path: path.to_owned(),
        });
    }
    let json_error = |e: serde_json::Error| LoadError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(json_error)?;
    let schema = value["schema"].as_str();
    if schema != Some(SCHEMA) {
        return Err(LoadError::Schema {
            path: path.to_owned(),
            found: schema.map(str::to_owned),
        });
    }
    serde_json::from_str(&text).map_err(json_error)
}

/// One runner's column.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// The runner's label (with `#2`... under `--keep-shards`).
    pub label: String,
    /// Its report files (more than one: its shards).
    pub files: Vec<String>,
    /// Distribution, kernel and container, in one line (the first
    /// shard's).
    pub host: String,
    /// Outcomes its reports do not know (runs not finished with
    /// `userns-test finish` or `userns-test run`).
    pub unknown: usize,
}

/// One test's results across the runners.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The binary.
    pub binary: String,
    /// The test.
    pub name: String,
    /// Per column: the outcome, absent where no report of the runner has
    /// the test.
    pub results: Vec<Option<CellResult>>,
}

/// A test's result on one runner.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    /// How it ended on this runner (over its shards: ran in any > unknown
    /// > skipped > ignored > not run > filtered out).
    pub outcome: Outcome,
    /// Its process crashed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub crashed: bool,
    /// Why it did not run, or how it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a skip: the ids of its root causes, in the matrix's
    /// `root_causes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub root_causes: Vec<String>,
    /// Shards that disagree: each report file with its outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflict: Vec<(String, Outcome)>,
}

/// The merged view of many reports.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Always [`MERGE_SCHEMA`].
    pub schema: &'static str,
    /// One per runner (or per report, under `--keep-shards`).
    pub runners: Vec<Column>,
    /// One per test found in any report.
    pub tests: Vec<Row>,
    /// Tests whose body ran on no runner (`binary::name`).
    pub never_ran: Vec<String>,
    /// Per ability, per runner: `yes`, `no: <cause id>`, or absent.
    pub abilities: BTreeMap<String, Vec<Option<String>>>,
    /// Every root cause of a skip or an unavailable ability, once across
    /// the runners (the same cause and fix has the same id everywhere).
    pub root_causes: Vec<MergedCause>,
}

/// One root cause across runners.
#[derive(Debug, Clone, Serialize)]
pub struct MergedCause {
    /// `<cause id>-<8 hex digits>`, as in the reports.
    pub id: String,
    /// The cause: `{id, message}`.
    pub cause: crate::report::model::CauseText,
    /// The fix.
    pub remedy: String,
    /// The runners (column labels) where it applies.
    pub runners: Vec<String>,
    /// The abilities it makes unavailable there.
    pub abilities: Vec<String>,
    /// The tests it skipped (`binary::name`), on any runner.
    pub skipped: Vec<String>,
}

/// How much a shard's outcome says of what happened on the runner.
fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::Failed => 6,
        Outcome::Passed => 5,
        Outcome::Unknown => 4,
        Outcome::Skipped => 3,
        Outcome::Ignored => 2,
        Outcome::NotRun => 1,
        Outcome::FilteredOut => 0,
    }
}

/// The root causes of every report, each once: by id, with the runners,
/// abilities and skipped tests of all the reports that name it.
fn merged_causes(
    reports: &[(PathBuf, Report)],
    columns: &[(Column, Vec<usize>)],
) -> Vec<MergedCause> {
    let mut causes: Vec<MergedCause> = Vec::new();
    for (column, members) in columns {
        for &m in members {
            let report = &reports[m].1;
            for rc in &report.root_causes {
                let i = match causes.iter().position(|c| c.id == rc.id) {
                    Some(i) => i,
                    None => {
                        causes.push(MergedCause {
                            id: rc.id.clone(),
                            cause: rc.cause.clone(),
                            remedy: rc.remedy.clone(),
                            runners: Vec::new(),
                            abilities: Vec::new(),
                            skipped: Vec::new(),
                        });
                        causes.len() - 1
                    }
                };
                let c = &mut causes[i];
                if !c.runners.contains(&column.label) {
                    c.runners.push(column.label.clone());
                }
                for a in &rc.abilities {
                    if !c.abilities.contains(a) {
                        c.abilities.push(a.clone());
                    }
                }
                for t in report
                    .tests
                    .iter()
                    .filter(|t| t.outcome == Outcome::Skipped)
                {
                    let name = format!("{}::{}", t.binary, t.name);
                    if t.lacking.iter().any(|l| l.root_cause == rc.id) && !c.skipped.contains(&name)
                    {
                        c.skipped.push(name);
                    }
                }
            }
        }
    }
    for c in &mut causes {
        c.abilities.sort();
        c.skipped.sort();
    }
    causes.sort_by(|a, b| {
        b.skipped
            .len()
            .cmp(&a.skipped.len())
            .then_with(|| a.id.cmp(&b.id))
    });
    causes
}

/// Merges `reports` (each with the file it came from); with `keep_shards`,
/// one column per report.
pub fn merge(reports: &[(PathBuf, Report)], keep_shards: bool) -> Matrix {
    // Columns: reports grouped by runner label, in the order first seen.
    let mut columns: Vec<(Column, Vec<usize>)> = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (path, r)) in reports.iter().enumerate() {
        let file = path.display().to_string();
        let n = seen.entry(&r.runner.label).or_insert(0);
        *n += 1;
        let existing = (!keep_shards)
            .then(|| columns.iter().position(|(c, _)| c.label == r.runner.label))
            .flatten();
        match existing {
            Some(c) => {
                columns[c].0.files.push(file);
                columns[c].0.unknown += r.counts.unknown;
                columns[c].1.push(i);
            }
            None => {
                let label = if *n == 1 {
                    r.runner.label.clone()
                } else {
                    format!("{} #{n}", r.runner.label)
                };
                columns.push((
                    Column {
                        label,
                        files: vec![file],
                        host: host_line(r),
                        unknown: r.counts.unknown,
                    },
                    vec![i],
                ));
            }
        }
    }
    let names: BTreeSet<(&str, &str)> = reports
        .iter()
        .flat_map(|(_, r)| r.tests.iter().map(|t| (t.binary.as_str(), t.name.as_str())))
        .collect();
    // Index each report's tests once.
    let index: Vec<BTreeMap<(&str, &str), usize>> = reports
        .iter()
        .map(|(_, r)| {
            r.tests
                .iter()
                .enumerate()
                .map(|(i, t)| ((t.binary.as_str(), t.name.as_str()), i))
                .collect()
        })
        .collect();
    let tests: Vec<Row> = names
        .into_iter()
        .map(|(binary, name)| Row {
            binary: binary.to_owned(),
            name: name.to_owned(),
            results: columns
                .iter()
                .map(|(_, members)| {
                    let shards: Vec<(&PathBuf, &Report, &crate::report::model::TestEntry)> =
                        members
                            .iter()
                            .filter_map(|&m| {
                                let (path, r) = &reports[m];
                                index[m]
                                    .get(&(binary, name))
                                    .map(|&i| (path, r, &r.tests[i]))
                            })
                            .collect();
                    combine(&shards)
                })
                .collect(),
        })
        .collect();
    let never_ran = tests
        .iter()
        .filter(|row| !row.results.iter().flatten().any(|c| c.outcome.ran()))
        .map(|row| format!("{}::{}", row.binary, row.name))
        .collect();
    let mut abilities: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for (c, (_, members)) in columns.iter().enumerate() {
        for &m in members {
            for a in &reports[m].1.abilities {
                let Some(name) = a["ability"].as_str() else {
                    continue;
                };
                let verdict = if a["verdict"] == "available" {
                    "yes".to_owned()
                } else {
                    format!("no: {}", a["cause"]["id"].as_str().unwrap_or("unknown"))
                };
                let cells = abilities
                    .entry(name.to_owned())
                    .or_insert_with(|| vec![None; columns.len()]);
                cells[c] = Some(match cells[c].take() {
                    Some(old) if old != verdict && !old.starts_with("conflict") => {
                        format!("conflict: {old} / {verdict}")
                    }
                    Some(old) => old,
                    None => verdict,
                });
            }
        }
    }
    let root_causes = merged_causes(reports, &columns);
    Matrix {
        schema: MERGE_SCHEMA,
        runners: columns.into_iter().map(|(c, _)| c).collect(),
        tests,
        never_ran,
        abilities,
        root_causes,
    }
}

/// One runner's result for a test from its shards' entries.
fn combine(shards: &[(&PathBuf, &Report, &crate::report::model::TestEntry)]) -> Option<CellResult> {
    let best = shards.iter().max_by_key(|(_, _, t)| rank(t.outcome))?;
    // Shards disagree when they both decided it: one ran it and another
    // skipped it, or one passed and another failed. A shard that did not
    // run its part (not run, filtered, unknown) does not disagree.
    let decided: BTreeSet<Outcome> = shards
        .iter()
        .map(|(_, _, t)| t.outcome)
        .filter(|o| matches!(o, Outcome::Passed | Outcome::Failed | Outcome::Skipped))
        .collect();
    let conflict = if decided.len() > 1 {
        shards
            .iter()
            .map(|(p, _, t)| (p.display().to_string(), t.outcome))
            .collect()
    } else {
        Vec::new()
    };
    let entry = best.2;
    let mut root_causes: Vec<String> = Vec::new();
    if entry.outcome == Outcome::Skipped {
        for l in &entry.lacking {
            if !root_causes.contains(&l.root_cause) {
                root_causes.push(l.root_cause.clone());
            }
        }
    }
    Some(CellResult {
        outcome: entry.outcome,
        crashed: entry.crashed,
        reason: entry.message.clone(),
        root_causes,
        conflict,
    })
}

impl Matrix {
    /// The matrix as Markdown: tests x runners with footnoted reasons (a
    /// skip refers to its root causes, each listed once), the
    /// tests that ran nowhere, and the abilities per runner. Every piece of
    /// text from a report is escaped: nothing in it renders as markup.
    pub fn markdown(&self) -> String {
        let several_binaries = self
            .tests
            .iter()
            .map(|t| &t.binary)
            .collect::<BTreeSet<_>>()
            .len()
            > 1;
        let mut notes: Vec<String> = Vec::new();
        let mut note = |reason: &str| -> usize {
            match notes.iter().position(|n| n == reason) {
                Some(i) => i + 1,
                None => {
                    notes.push(reason.to_owned());
                    notes.len()
                }
            }
        };
        let header: Vec<String> = self.runners.iter().map(|c| cell(&c.label)).collect();
        let mut out = String::from("## userns-test: tests x runners\n\n");
        out.push_str(&format!("| test | {} |\n", header.join(" | ")));
        out.push_str(&format!("|---|{}\n", "---|".repeat(self.runners.len())));
        for row in &self.tests {
            let name = if several_binaries {
                format!("{}: {}", row.binary, row.name)
            } else {
                row.name.clone()
            };
            let cells: Vec<String> = row
                .results
                .iter()
                .map(|c| match c {
                    None => "—".to_owned(),
                    Some(c) if !c.conflict.is_empty() => {
                        let parts: Vec<String> = c
                            .conflict
                            .iter()
                            .map(|(f, o)| format!("{o} ({})", cell(f)))
                            .collect();
                        format!("**CONFLICT**: {}", parts.join(", "))
                    }
                    Some(c) => {
                        let text = match (c.outcome, c.crashed) {
                            (Outcome::Passed, _) => "passed".to_owned(),
                            (Outcome::Failed, true) => "**CRASHED**".to_owned(),
                            (Outcome::Failed, false) => "**FAILED**".to_owned(),
                            (other, _) => other.to_string(),
                        };
                        let causes: Vec<String> = c
                            .root_causes
                            .iter()
                            .filter_map(|id| self.root_causes.iter().position(|rc| rc.id == *id))
                            .map(|i| format!("cause {}", i + 1))
                            .collect();
                        match (&c.reason, c.outcome) {
                            // A skip refers to its root causes, said once
                            // below, instead of repeating them.
                            (_, Outcome::Skipped) if !causes.is_empty() => {
                                format!("{text} ({})", causes.join(", "))
                            }
                            (
                                Some(r),
                                Outcome::Skipped
                                | Outcome::Ignored
                                | Outcome::Failed
                                | Outcome::Unknown
                                | Outcome::NotRun,
                            ) => format!("{text} [{}]", note(r)),
                            _ => text,
                        }
                    }
                })
                .collect();
            out.push_str(&format!("| {} | {} |\n", cell(&name), cells.join(" | ")));
        }
        out.push('\n');
        for (i, n) in notes.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", i + 1, cell(n)));
        }
        if !notes.is_empty() {
            out.push('\n');
        }
        if !self.root_causes.is_empty() {
            out.push_str(
                "| cause | runners | abilities | tests skipped | fix |\n|---|---|---|---|---|\n",
            );
            for (i, rc) in self.root_causes.iter().enumerate() {
                let list = names_cell(&rc.skipped);
                out.push_str(&format!(
                    "| cause {}: {} ({}) | {} | {} | {list} | {} |\n",
                    i + 1,
                    cell(&rc.cause.message),
                    cell(&rc.cause.id),
                    cell(&rc.runners.join(", ")),
                    cell(&rc.abilities.join(", ")),
                    cell(&rc.remedy)
                ));
            }
            out.push('\n');
        }
        if self.never_ran.is_empty() {
            out.push_str("Every test ran on at least one runner.\n\n");
        } else {
            out.push_str(&format!(
                "**Ran on no runner ({}):** {}\n\n",
                self.never_ran.len(),
                self.never_ran
                    .iter()
                    .map(|n| cell(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.abilities.is_empty() {
            out.push_str(&format!("| ability | {} |\n", header.join(" | ")));
            out.push_str(&format!("|---|{}\n", "---|".repeat(self.runners.len())));
            for (ability, cells) in &self.abilities {
                let cells: Vec<String> = cells
                    .iter()
                    .map(|c| c.as_deref().map_or("—".to_owned(), cell))
                    .collect();
                out.push_str(&format!("| {} | {} |\n", cell(ability), cells.join(" | ")));
            }
            out.push('\n');
        }
        out.push_str("| runner | host | reports |\n|---|---|---|\n");
        for c in &self.runners {
            let files: Vec<String> = c.files.iter().map(|f| cell(f)).collect();
            let unfinished = match c.unknown {
                0 => String::new(),
                n => format!(
                    " ({n} outcome{} unknown: the run was not finished by `userns-test finish` \
                     or `userns-test run`)",
                    if n == 1 { "" } else { "s" }
                ),
            };
            out.push_str(&format!(
                "| {} | {} | {}{unfinished} |\n",
                cell(&c.label),
                cell(&c.host),
                files.join(", ")
            ));
        }
        out
    }
}
