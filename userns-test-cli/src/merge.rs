//! `userns-test merge`: many runners' JSON reports as one tests x runners
//! matrix, the tests that ran on no runner, and each runner's abilities.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use userns_test::report::markdown::{cell, host_line};
use userns_test::report::{Outcome, Report, SCHEMA};

/// The `schema` of `merge --format json`.
pub const MERGE_SCHEMA: &str = "userns-test/merge/1";

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
            LoadError::Schema { path, found } => write!(
                f,
                "{}: schema {}, expected \"{SCHEMA}\" (a report written by USERNS_TEST_REPORT_JSON)",
                path.display(),
                found
                    .as_deref()
                    .map_or("missing".to_owned(), |s| format!("\"{s}\""))
            ),
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
    /// The runner's label; a second report with the same label is kept and
    /// labelled `label #2`.
    pub label: String,
    /// The report file.
    pub file: String,
    /// Distribution, kernel and container, in one line.
    pub host: String,
}

/// One test's results across the runners.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The binary.
    pub binary: String,
    /// The test.
    pub name: String,
    /// Per column: the outcome, absent where the runner's report lacks the
    /// test.
    pub results: Vec<Option<CellResult>>,
}

/// A test's result on one runner.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Why it did not run, or how it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The merged view of many reports.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Always [`MERGE_SCHEMA`].
    pub schema: &'static str,
    /// One per report, in the order given.
    pub runners: Vec<Column>,
    /// One per test found in any report.
    pub tests: Vec<Row>,
    /// Tests whose body ran on no runner (`binary::name`).
    pub never_ran: Vec<String>,
    /// Per ability, per runner: `yes`, `no: <cause>`, or absent.
    pub abilities: BTreeMap<String, Vec<Option<String>>>,
}

/// Merges `reports` (each with the file it came from).
pub fn merge(reports: &[(PathBuf, Report)]) -> Matrix {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let runners: Vec<Column> = reports
        .iter()
        .map(|(path, r)| {
            let n = seen.entry(&r.runner.label).or_insert(0);
            *n += 1;
            let label = if *n == 1 {
                r.runner.label.clone()
            } else {
                format!("{} #{n}", r.runner.label)
            };
            Column {
                label,
                file: path.display().to_string(),
                host: host_line(r),
            }
        })
        .collect();
    let names: BTreeSet<(&str, &str)> = reports
        .iter()
        .flat_map(|(_, r)| r.tests.iter().map(|t| (t.binary.as_str(), t.name.as_str())))
        .collect();
    let tests: Vec<Row> = names
        .into_iter()
        .map(|(binary, name)| Row {
            binary: binary.to_owned(),
            name: name.to_owned(),
            results: reports
                .iter()
                .map(|(_, r)| {
                    r.tests
                        .iter()
                        .find(|t| t.binary == binary && t.name == name)
                        .map(|t| CellResult {
                            outcome: t.outcome,
                            reason: t.message.clone(),
                        })
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
    for (i, (_, r)) in reports.iter().enumerate() {
        for a in &r.abilities {
            let Some(name) = a["ability"].as_str() else {
                continue;
            };
            let cells = abilities
                .entry(name.to_owned())
                .or_insert_with(|| vec![None; reports.len()]);
            cells[i] = Some(if a["verdict"] == "available" {
                "yes".to_owned()
            } else {
                format!("no: {}", a["cause"]["id"].as_str().unwrap_or("unknown"))
            });
        }
    }
    Matrix {
        schema: MERGE_SCHEMA,
        runners,
        tests,
        never_ran,
        abilities,
    }
}

impl Matrix {
    /// The matrix as Markdown: tests x runners with footnoted reasons, the
    /// tests that ran nowhere, and the abilities per runner.
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
                    Some(c) => {
                        let text = match c.outcome {
                            Outcome::Passed => "passed".to_owned(),
                            Outcome::Failed => "**FAILED**".to_owned(),
                            other => other.to_string(),
                        };
                        match (&c.reason, c.outcome) {
                            (Some(r), Outcome::Skipped | Outcome::Ignored | Outcome::Failed) => {
                                format!("{text} [{}]", note(r))
                            }
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
        if self.never_ran.is_empty() {
            out.push_str("Every test ran on at least one runner.\n\n");
        } else {
            out.push_str(&format!(
                "**Ran on no runner ({}):** {}\n\n",
                self.never_ran.len(),
                self.never_ran
                    .iter()
                    .map(|n| format!("`{n}`"))
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
                out.push_str(&format!("| {ability} | {} |\n", cells.join(" | ")));
            }
            out.push('\n');
        }
        out.push_str("| runner | host | report |\n|---|---|---|\n");
        for c in &self.runners {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&c.label),
                cell(&c.host),
                cell(&c.file)
            ));
        }
        out
    }
}
