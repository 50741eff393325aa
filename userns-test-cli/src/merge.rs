//! `userns-test merge`: many runners' JSON reports as one view, in the
//! order a CI reader needs it: the verdict, the failures with their
//! messages, the skips by cause (`C1`..`Cn`) with their fixes, the tests x
//! runners matrix, the tests that ran on no runner, each runner's
//! abilities.
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

use crate::report::markdown::{cell, code_block, host_line, html_text, names_cell, prose};
use crate::report::model::{Outcome, Report, SCHEMA};

/// The `schema` of `merge --format json`.
pub const MERGE_SCHEMA: &str = "userns-test/merge/4";

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
    /// Tests whose body ran on no runner although some runner was to run
    /// it: skipped or not run wherever a runner had it (`binary::name`).
    /// A test `#[ignore]`d or filtered out everywhere is not among them.
    pub never_ran: Vec<String>,
    /// Tests that ran on no runner because they were `#[ignore]`d there
    /// (on every runner where they were not filtered out).
    pub ignored: Vec<String>,
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
    /// `C1`, `C2`, ...: the short name every part of the merged view
    /// gives it, most tests skipped first.
    pub label: String,
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
                            label: String::new(),
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
    for (i, c) in causes.iter_mut().enumerate() {
        c.label = format!("C{}", i + 1);
    }
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
    // Ran nowhere: skipped or not run wherever a runner was to run it. A
    // test ignored on a runner was not to run there: it is listed apart,
    // never counted as a test no runner could run.
    let full_name = |row: &Row| format!("{}::{}", row.binary, row.name);
    let outcomes = |row: &Row| -> Vec<Outcome> {
        row.results
            .iter()
            .flatten()
            .map(|c| c.outcome)
            .filter(|o| *o != Outcome::FilteredOut)
            .collect()
    };
    let never_ran = tests
        .iter()
        .filter(|row| {
            let o = outcomes(row);
            !o.is_empty()
                && o.iter()
                    .all(|o| matches!(o, Outcome::Skipped | Outcome::NotRun))
        })
        .map(full_name)
        .collect();
    let ignored = tests
        .iter()
        .filter(|row| {
            let o = outcomes(row);
            o.contains(&Outcome::Ignored) && !o.iter().any(|o| o.ran())
        })
        .map(full_name)
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
        ignored,
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
    /// The cause named `id`, if the matrix has it.
    fn cause(&self, id: &str) -> Option<&MergedCause> {
        self.root_causes.iter().find(|c| c.id == id)
    }

    /// The `C<n>` names of the causes a cell's skip points at.
    fn cause_labels(&self, c: &CellResult) -> Vec<&str> {
        c.root_causes
            .iter()
            .filter_map(|id| self.cause(id).map(|rc| rc.label.as_str()))
            .collect()
    }

    /// The verdict in one line: `6 tests x 4 runners: 1 failed, 5 skipped
    /// (2 causes), 1 ignored`.
    pub fn verdict(&self) -> String {
        let any = |row: &Row, o: Outcome| row.results.iter().flatten().any(|c| c.outcome == o);
        let failed = self
            .tests
            .iter()
            .filter(|r| any(r, Outcome::Failed))
            .count();
        let skipped = self
            .tests
            .iter()
            .filter(|r| !any(r, Outcome::Failed) && any(r, Outcome::Skipped))
            .count();
        let unknown = self
            .tests
            .iter()
            .filter(|r| !any(r, Outcome::Failed) && any(r, Outcome::Unknown))
            .count();
        let causes = self
            .root_causes
            .iter()
            .filter(|c| !c.skipped.is_empty())
            .count();
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![format!("{failed} failed")];
        if skipped > 0 {
            parts.push(format!(
                "{skipped} skipped ({})",
                plural(causes, "cause", "causes")
            ));
        }
        if !self.ignored.is_empty() {
            parts.push(format!("{} ignored", self.ignored.len()));
        }
        if unknown > 0 {
            parts.push(format!("{unknown} unknown"));
        }
        if !self.never_ran.is_empty() {
            parts.push(format!("{} ran on no runner", self.never_ran.len()));
        }
        format!(
            "{} x {}: {}",
            plural(self.tests.len(), "test", "tests"),
            plural(self.runners.len(), "runner", "runners"),
            parts.join(", ")
        )
    }

    /// The merged view as Markdown, for a person with ten seconds: the
    /// verdict; the failures, each with where it failed, passed or was
    /// skipped and its message; the skips by cause, each with its fix; then
    /// the tests x runners matrix (one short mark per cell, a totals row),
    /// the abilities and the runners. Causes are `C1`..`Cn` everywhere in
    /// it. Every piece of text from a report is escaped: nothing in it
    /// renders as markup.
    pub fn markdown(&self) -> String {
        let header: Vec<String> = self.runners.iter().map(|c| cell(&c.label)).collect();
        let mut out = format!("## userns-test: {}\n\n", self.verdict());
        self.failed_section(&mut out);
        self.causes_section(&mut out);
        self.matrix_section(&mut out, &header);
        let names = |list: &[String]| list.iter().map(|n| cell(n)).collect::<Vec<_>>().join(", ");
        if !self.never_ran.is_empty() {
            out.push_str(&format!(
                "**Ran on no runner ({}):** {} (skipped or not run wherever a runner was to run \
                 it; `--fail-on-never-ran` fails on these)\n\n",
                self.never_ran.len(),
                names(&self.never_ran)
            ));
        }
        if !self.ignored.is_empty() {
            out.push_str(&format!(
                "**Ignored (`#[ignore]`) wherever it was not filtered out ({}):** {}\n\n",
                self.ignored.len(),
                names(&self.ignored)
            ));
        }
        self.notes_section(&mut out);
        if !self.abilities.is_empty() {
            out.push_str("### Abilities\n\n");
            out.push_str(&format!("| ability | {} |\n", header.join(" | ")));
            out.push_str(&format!("|---|{}\n", "---|".repeat(self.runners.len())));
            for (ability, cells) in &self.abilities {
                let cells: Vec<String> = cells
                    .iter()
                    .map(|c| {
                        c.as_deref()
                            .map_or("—".to_owned(), |v| self.ability_mark(v))
                    })
                    .collect();
                out.push_str(&format!("| {} | {} |\n", cell(ability), cells.join(" | ")));
            }
            out.push('\n');
        }
        out.push_str("### Runners\n\n| runner | host | reports |\n|---|---|---|\n");
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

    /// Each failing test: where it failed (crashed), passed, was skipped;
    /// each distinct message once, in a code block, with its runners.
    fn failed_section(&self, out: &mut String) {
        let failing: Vec<&Row> = self
            .tests
            .iter()
            .filter(|r| {
                r.results
                    .iter()
                    .flatten()
                    .any(|c| c.outcome == Outcome::Failed)
            })
            .collect();
        if failing.is_empty() {
            return;
        }
        out.push_str(&format!("### Failed ({})\n\n", failing.len()));
        for row in failing {
            // Runners by what happened there, in column order.
            let mut by_what: Vec<(String, Vec<&str>)> = Vec::new();
            let mut messages: Vec<(&str, Vec<&str>)> = Vec::new();
            for (c, result) in self.runners.iter().zip(&row.results) {
                let Some(r) = result else { continue };
                let what = match (r.outcome, r.crashed) {
                    (Outcome::Failed, true) => "**CRASHED** on".to_owned(),
                    (Outcome::Failed, false) => "**FAILED** on".to_owned(),
                    (Outcome::Skipped, _) => match self.cause_labels(r).as_slice() {
                        [] => "skipped on".to_owned(),
                        ids => format!("skipped ({}) on", ids.join(", ")),
                    },
                    (other, _) => format!("{other} on"),
                };
                match by_what.iter_mut().find(|(w, _)| *w == what) {
                    Some((_, runners)) => runners.push(&c.label),
                    None => by_what.push((what, vec![&c.label])),
                }
                if r.outcome == Outcome::Failed {
                    let m = r.reason.as_deref().unwrap_or("(no message recorded)");
                    match messages.iter_mut().find(|(t, _)| *t == m) {
                        Some((_, runners)) => runners.push(&c.label),
                        None => messages.push((m, vec![&c.label])),
                    }
                }
            }
            // Failures first, then the rest as the columns come.
            by_what.sort_by_key(|(w, _)| !w.starts_with("**"));
            let wheres: Vec<String> = by_what
                .iter()
                .map(|(w, runners)| {
                    let names: Vec<String> = runners.iter().map(|r| cell(r)).collect();
                    format!("{w} {}", names.join(", "))
                })
                .collect();
            out.push_str(&format!(
                "- **{}** ({}): {}\n\n",
                cell(&row.name),
                cell(&row.binary),
                wheres.join("; ")
            ));
            for (m, runners) in &messages {
                if messages.len() > 1 {
                    let names: Vec<String> = runners.iter().map(|r| cell(r)).collect();
                    out.push_str(&format!("  on {}:\n\n", names.join(", ")));
                }
                out.push_str(&code_block(m, "  "));
                out.push('\n');
            }
        }
    }

    /// Each cause once: `C1`, where and how many tests it skipped, the
    /// cause, the fix (commands as code), then its abilities and tests
    /// folded.
    fn causes_section(&self, out: &mut String) {
        if self.root_causes.is_empty() {
            return;
        }
        let skipping = self
            .root_causes
            .iter()
            .filter(|c| !c.skipped.is_empty())
            .count();
        out.push_str(&if skipping == self.root_causes.len() {
            "### Skipped, by cause\n\n".to_owned()
        } else {
            "### Skipped, by cause (and unavailable abilities that skipped nothing)\n\n".to_owned()
        });
        for c in &self.root_causes {
            let runners: Vec<String> = c.runners.iter().map(|r| cell(r)).collect();
            let count = match c.skipped.len() {
                0 => "no test skipped".to_owned(),
                1 => "1 test skipped".to_owned(),
                n => format!("{n} tests skipped"),
            };
            out.push_str(&format!(
                "- **{}** {} ({count}; on {})  \n  fix: {}\n",
                c.label,
                cell(&c.cause.message),
                runners.join(", "),
                prose(&c.remedy)
            ));
            if c.skipped.is_empty() {
                out.push_str(&format!(
                    "  \n  abilities: {}\n\n",
                    cell(&c.abilities.join(", "))
                ));
                continue;
            }
            // Markdown's escapes are not read in a raw HTML line.
            out.push_str(&format!(
                "\n  <details><summary>{count}; abilities: {}</summary>\n\n  {}\n\n  \
                 </details>\n\n",
                html_text(&c.abilities.join(", ")),
                names_cell(&c.skipped)
            ));
        }
    }

    /// The matrix: a row per test, grouped by binary, one short mark per
    /// cell, a totals row and a legend.
    fn matrix_section(&self, out: &mut String, header: &[String]) {
        out.push_str("### Tests x runners\n\n");
        out.push_str(&format!("| test | {} |\n", header.join(" | ")));
        out.push_str(&format!("|---|{}\n", "---|".repeat(self.runners.len())));
        let empty = vec![""; self.runners.len()].join(" | ");
        let mut binary: Option<&str> = None;
        for row in &self.tests {
            if binary != Some(row.binary.as_str()) {
                binary = Some(&row.binary);
                out.push_str(&format!("| **{}** | {empty} |\n", cell(&row.binary)));
            }
            let cells: Vec<String> = row.results.iter().map(|c| self.mark(c.as_ref())).collect();
            out.push_str(&format!(
                "| {} | {} |\n",
                cell(&row.name),
                cells.join(" | ")
            ));
        }
        let totals: Vec<String> = (0..self.runners.len())
            .map(|i| {
                let mut counts: Vec<(String, usize)> = Vec::new();
                for row in &self.tests {
                    let Some(Some(c)) = row.results.get(i) else {
                        continue;
                    };
                    let word = match (c.outcome, c.crashed) {
                        (Outcome::Failed, true) => "**crashed**".to_owned(),
                        (Outcome::Failed, false) => "**failed**".to_owned(),
                        (o, _) => o.to_string(),
                    };
                    match counts.iter_mut().find(|(w, _)| *w == word) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((word, 1)),
                    }
                }
                counts.sort_by_key(|(w, _)| !w.starts_with("**"));
                counts
                    .iter()
                    .map(|(w, n)| format!("{n} {w}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        out.push_str(&format!("| **total** | {} |\n\n", totals.join(" | ")));
        out.push_str(
            "passed · **FAILED** · **CRASHED** · skipped C*n* (its cause above) · ignored · \
             not run · filtered out · unknown · **CONFLICT** (shards disagree, below) · — (not \
             in this runner's reports)\n\n",
        );
    }

    /// One cell's mark.
    fn mark(&self, c: Option<&CellResult>) -> String {
        let Some(c) = c else {
            return "—".to_owned();
        };
        if !c.conflict.is_empty() {
            return "**CONFLICT**".to_owned();
        }
        match (c.outcome, c.crashed) {
            (Outcome::Failed, true) => "**CRASHED**".to_owned(),
            (Outcome::Failed, false) => "**FAILED**".to_owned(),
            (Outcome::Skipped, _) => match self.cause_labels(c).as_slice() {
                [] => "skipped".to_owned(),
                ids => format!("skipped {}", ids.join(" ")),
            },
            (o, _) => o.to_string(),
        }
    }

    /// An ability's cell: `yes`, or `no` with the cause's `Cn` where the
    /// matrix has it.
    fn ability_mark(&self, verdict: &str) -> String {
        match verdict.strip_prefix("no: ") {
            Some(cause_id) => {
                let labels: Vec<&str> = self
                    .root_causes
                    .iter()
                    .filter(|c| c.cause.id == cause_id)
                    .map(|c| c.label.as_str())
                    .collect();
                if labels.is_empty() {
                    format!("**no**: {}", cell(cause_id))
                } else {
                    format!("**no** {}", labels.join(" "))
                }
            }
            None => cell(verdict),
        }
    }

    /// What the marks cannot say: shards that disagree, and why an outcome
    /// is unknown or a test did not run, each reason once with its tests.
    fn notes_section(&self, out: &mut String) {
        let mut conflicts = Vec::new();
        let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
        for row in &self.tests {
            for (col, result) in self.runners.iter().zip(&row.results) {
                let Some(r) = result else { continue };
                let at = format!("{} on {}", cell(&row.name), cell(&col.label));
                if !r.conflict.is_empty() {
                    let parts: Vec<String> = r
                        .conflict
                        .iter()
                        .map(|(f, o)| format!("{o} in {}", cell(f)))
                        .collect();
                    conflicts.push(format!("- {at}: {}\n", parts.join(", ")));
                    continue;
                }
                if let (Outcome::Unknown | Outcome::NotRun | Outcome::Ignored, Some(why)) =
                    (r.outcome, &r.reason)
                {
                    let why = format!("{}: {}", r.outcome, cell(why));
                    match reasons.iter_mut().find(|(w, _)| *w == why) {
                        Some((_, at_list)) => at_list.push(at),
                        None => reasons.push((why, vec![at])),
                    }
                }
            }
        }
        if conflicts.is_empty() && reasons.is_empty() {
            return;
        }
        out.push_str("### Notes\n\n");
        for c in conflicts {
            out.push_str(&format!("- **CONFLICT**: {}", c.trim_start_matches("- ")));
        }
        for (why, at) in reasons {
            out.push_str(&format!("- {why} ({})\n", at.join(", ")));
        }
        out.push('\n');
    }
}
