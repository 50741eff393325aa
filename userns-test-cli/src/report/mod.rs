//! Reports of a run, for CI, made by the command from the run's records
//! (see `userns_test::record`): a JSON document (the record every other
//! form is made from, `model.rs`), JUnit XML (`junit.rs`), GitHub's step
//! summary (`markdown.rs`) and annotations (`github.rs`), and the summary
//! on the terminal (`summary.rs`). `assemble.rs` turns the records into
//! the report, saying only what they show.
//!
//! Every file is written through the test side's safe file layer
//! (`userns_test::__cli`): replaced by `rename` from unguessable
//! temporaries in a directory this uid owns (or a sticky one), never
//! through a link or over another user's file or a device.

pub mod assemble;
pub mod github;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod summary;

use std::path::{Path, PathBuf};

use userns_test::__cli::{
    Destinations, Dir, JSON_VAR, JUNIT_VAR, ReportError, RunDir, RunMeta, alive, append_file,
    ci_job, replace_file, store_of, this_process,
};
use userns_test::HostFacts;

pub use assemble::{Finished, NextestSaw};
pub use model::{Counts, Report, RunInfo, Runner, SCHEMA, verdict_json};

fn split(path: &Path) -> (&Path, &std::ffi::OsStr) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    (parent, path.file_name().unwrap_or(std::ffi::OsStr::new("")))
}

/// Writes `report` where `dest` asks: the JSON and JUnit files, the step
/// summary sections of `binaries` (each once per run), and, with
/// `annotate`, the annotations of its root causes not yet annotated in
/// this run (at most [`github::ANNOTATIONS_PER_STEP`]), on stderr, which
/// the Actions runner scans for workflow commands as it does stdout
/// (libtest's summary stays the last line of stdout for the tools that
/// parse it).
pub(crate) fn write_outputs(
    dest: &Destinations,
    run: &RunDir,
    report: &Report,
    binaries: &[String],
    annotate: bool,
) -> Vec<ReportError> {
    let (errors, annotations) = write_files(dest, run, report, binaries, annotate);
    eprint!("{annotations}");
    errors
}

/// [`write_outputs`], returning the annotations instead of printing them.
fn write_files(
    dest: &Destinations,
    run: &RunDir,
    report: &Report,
    binaries: &[String],
    annotate: bool,
) -> (Vec<ReportError>, String) {
    let mut errors = Vec::new();
    let mut out = String::new();
    // Two runs aimed at one report: neither may overwrite the other's
    // silently. The one writing while the other still runs does not write
    // the shared files, and says so.
    let others = if dest.json.is_some() || dest.junit.is_some() {
        run.live_others()
    } else {
        Vec::new()
    };
    if let Some(other) = others.first() {
        errors.push(conflict(dest, other));
        return (errors, out);
    }
    errors.extend(write_report_files(dest, report));
    if annotate && dest.annotations {
        // A failure first: what the reader must see, on the line that
        // panicked. GitHub keeps 10 errors per step.
        for t in github::failures(report) {
            // A hash: a marker is a file, and a test's name may be longer
            // than a file name may be.
            let mark = {
                use std::hash::{Hash, Hasher};
                let mut h = std::hash::DefaultHasher::new();
                (&t.binary, &t.name).hash(&mut h);
                format!("error-{:016x}", h.finish())
            };
            let result = run.has_mark(&mark).and_then(|done| {
                if done || run.count_marks("error-")? >= github::ANNOTATIONS_PER_STEP {
                    return Ok(());
                }
                if run.mark_once(&mark)? {
                    out.push_str(&github::failure_annotation(report, t));
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(ReportError::fs("the annotations' record", e));
            }
        }
        for rc in report.root_causes.iter().filter(|rc| rc.skipped > 0) {
            let annotated = format!("annotation-{}", rc.id);
            let result = run.has_mark(&annotated).and_then(|done| {
                if done {
                    return Ok(());
                }
                let used = run.count_marks("annotation-")?;
                if used < github::ANNOTATIONS_PER_STEP {
                    if run.mark_once(&annotated)? {
                        out.push_str(&github::annotation(report, rc, dest.required));
                    }
                } else {
                    run.mark_once(&format!("unannotated-{}", rc.id))?;
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(ReportError::fs("the annotations' record", e));
            }
        }
    }
    if let Some(path) = &dest.step_summary {
        let not_annotated = if dest.annotations {
            run.count_marks("unannotated-").unwrap_or(0)
        } else {
            0
        };
        for binary in binaries {
            match run.mark_once(&format!("summary-{binary}")) {
                Ok(true) => {
                    let text = markdown::step_summary(report, binary, not_annotated);
                    if let Err(e) = append_file(path, text.as_bytes()) {
                        errors.push(ReportError::fs("the GitHub step summary", e));
                    }
                }
                Ok(false) => {}
                Err(e) => errors.push(ReportError::fs("the step summary's record", e)),
            }
        }
    }
    (errors, out)
}

/// The error of a report that another live run writes too.
fn conflict(dest: &Destinations, other: &RunMeta) -> ReportError {
    ReportError {
        report_lost: true,
        what: "the report".into(),
        path: dest.json.clone().or_else(|| dest.junit.clone()),
        problem: format!(
            "another run writes this report too, and is still going: {}; this run's report was \
             not written, so that neither overwrites the other: run them one at a time, or give \
             each its own {JSON_VAR}",
            other.describe()
        ),
    }
}

/// How `userns-test finish` closes a run.
#[derive(Debug, Clone, Default)]
pub struct FinishOptions {
    /// The test command's exit status, for the report.
    pub exit_code: Option<i32>,
    /// The run to finish (`userns-test run` knows it); else the newest run
    /// of `dest`'s store.
    pub run_dir: Option<PathBuf>,
    /// nextest's JUnit of the run, for the signal of a crashed test; by
    /// default the one `userns-test run` had nextest write.
    pub nextest_junit: Option<PathBuf>,
    /// What the finishing step knows of the run that the records cannot
    /// show (`userns-test run` cancelled by SIGTERM), for the report's
    /// notes.
    pub notes: Vec<String>,
}

/// What `finish` did.
#[derive(Debug)]
pub enum Finish {
    /// The run's report, finished, and the errors of destinations that
    /// could not be written.
    Done(Box<Report>, Vec<ReportError>),
    /// There is no run of this job to finish: none was recorded, the
    /// newest one was finished already, or it belongs to another CI job.
    /// Why, in words; nothing was written.
    NoRun(String),
}

/// Finishes a run's report after its test command ended: every test
/// without an outcome is settled (crashed, or not run), and the JSON,
/// JUnit, step summary sections and annotations not written yet are.
///
/// A run is finished once: a second `finish` of it (a later job on the
/// same machine whose build failed, so that no test recorded anything)
/// must not present that run's outcomes, or its pass, as its own. Without
/// an explicit run directory, the newest run of the store is taken only if
/// it is not finished yet and, in CI, was recorded by this same CI job.
pub fn finish(dest: &Destinations, options: &FinishOptions) -> Result<Finish, ReportError> {
    let run = match options.run_dir.as_ref().or(dest.run_dir.as_ref()) {
        Some(dir) => RunDir::at(dir).map_err(|e| ReportError::fs("the run's records", e))?,
        None => {
            let (store, _) = store_of(dest)?.ok_or_else(|| ReportError {
                report_lost: true,
                what: "the report".into(),
                path: None,
                problem: format!(
                    "no report is asked for: set {JSON_VAR} (or {JUNIT_VAR}, or run in GitHub \
                     Actions) as for the test run"
                ),
            })?;
            let newest = store
                .runs()
                .map_err(|e| ReportError::fs("the run's records", e))?
                .into_iter()
                .next();
            match newest {
                Some((meta, run)) => {
                    if let Some(why) = not_this_jobs(&meta, &run) {
                        return Ok(Finish::NoRun(why));
                    }
                    run
                }
                None => {
                    return Ok(Finish::NoRun(format!(
                        "no run recorded in {}: no test process under userns-test recorded \
                         anything with these report variables (did the build fail, or did the \
                         tests run with other variables?)",
                        store.path().display()
                    )));
                }
            }
        }
    };
    let meta = run
        .meta()
        .map_err(|e| ReportError::fs("the run's records", e))?;
    if let Some(meta) = &meta
        && let Some(owner) = meta.owner
        && owner != this_process()
        && alive(meta, owner) == Some(true)
    {
        return Err(ReportError {
            report_lost: true,
            what: "the report".into(),
            path: Some(run.path().to_owned()),
            problem: format!(
                "the run is still going (its process {} is running): finish it after the test \
                 command ends",
                owner.0
            ),
        });
    }
    let junit = options
        .nextest_junit
        .clone()
        .or_else(|| meta.as_ref().and_then(|m| m.nextest_junit.clone()))
        .or_else(|| Some(run.file_path("nextest-junit.xml")));
    let finished = Finished {
        exit_code: options.exit_code,
        nextest: junit.map(|p| read_nextest_junit(&p)).unwrap_or_default(),
    };
    let lock = run
        .lock(dest.lock_timeout)
        .map_err(|e| ReportError::fs("the report (waiting for the run's lock)", e))?;
    if let Ok(Some(when)) = run.finished() {
        return Ok(Finish::NoRun(format!(
            "the run in {} was finished already, {when}: a run is finished once",
            run.path().display()
        )));
    }
    let mut report = assemble::assemble(&run, Some(&finished))
        .map_err(|e| ReportError::fs("the report (reading the run)", e))?;
    report.run.notes.extend(options.notes.iter().cloned());
    let mut binaries: Vec<String> = report.tests.iter().map(|t| t.binary.clone()).collect();
    binaries.dedup();
    let mut errors = write_outputs(dest, &run, &report, &binaries, true);
    let how = match options.exit_code {
        Some(code) => format!("the test command exited with {code}"),
        None => "the test command's exit status not given".to_owned(),
    };
    if let Err(e) = run.mark_finished(&how) {
        errors.push(ReportError::fs(
            "the run's records (marking it finished)",
            e,
        ));
    }
    drop(lock);
    Ok(Finish::Done(Box::new(report), errors))
}

/// Why the newest run `meta` of a store is not this job's to finish, if it
/// is not: finished already, or recorded by another CI job.
fn not_this_jobs(meta: &RunMeta, run: &RunDir) -> Option<String> {
    let described = format!(
        "the newest run recorded for this report ({} {}, started {})",
        meta.key.kind, meta.key.id, meta.started_at
    );
    if let Ok(Some(when)) = run.finished() {
        return Some(format!(
            "{described} was finished already, {when}; no test process recorded anything since \
             (did the build fail, or were no tests under userns-test run?)"
        ));
    }
    let here = ci_job();
    if here.is_some() && meta.ci_job != here {
        return Some(format!(
            "{described} belongs to another CI job ({}), not this one ({}); no test process of \
             this job recorded anything (did the build fail?)",
            meta.ci_job.as_deref().unwrap_or("none"),
            here.as_deref().unwrap_or("none")
        ));
    }
    None
}

/// Writes a report of no tests, saying `why`, where `dest` asks for the
/// JSON and JUnit reports: so that a job whose tests never ran does not
/// upload an earlier run's report as its own. The step summary is left
/// alone (nothing ran to summarise); `why` goes on stderr anyway.
pub fn write_no_run(dest: &Destinations, why: &str, exit_code: Option<i32>) -> Vec<ReportError> {
    let facts = HostFacts::get();
    let report = Report {
        schema: SCHEMA.to_owned(),
        run: RunInfo {
            kind: "none".into(),
            id: String::new(),
            started_at: None,
            finished: true,
            exit_code,
            notes: vec![why.to_owned()],
        },
        runner: Runner::current(facts),
        host: model::facts_json(facts),
        abilities: Vec::new(),
        root_causes: Vec::new(),
        counts: Counts::of(&[]),
        tests: Vec::new(),
    };
    write_report_files(dest, &report)
}

/// Writes `report` to the JSON and JUnit files `dest` asks for; the errors
/// of those that could not be written.
fn write_report_files(dest: &Destinations, report: &Report) -> Vec<ReportError> {
    let mut errors = Vec::new();
    if let Some(path) = &dest.json {
        let bytes = serde_json::to_vec(report).unwrap_or_default();
        if let Err(e) = replace_file(path, &bytes) {
            errors.push(ReportError::fs("the JSON report", e));
        }
    }
    if let Some(path) = &dest.junit {
        match junit::to_xml(report) {
            Ok(xml) => {
                if let Err(e) = replace_file(path, xml.as_bytes()) {
                    errors.push(ReportError::fs("the JUnit report", e));
                }
            }
            Err(e) => errors.push(ReportError {
                report_lost: true,
                what: "the JUnit report".into(),
                path: Some(path.clone()),
                problem: e.to_string(),
            }),
        }
    }
    errors
}

/// What nextest's JUnit says of each test: `(binary id, name)` to passed,
/// or failed in its words. Empty where the file is missing or unreadable
/// (the crash is then reported without nextest's words).
fn read_nextest_junit(path: &Path) -> std::collections::HashMap<(String, String), NextestSaw> {
    {
        let (parent, name) = split(path);
        let Ok(Some(bytes)) = Dir::for_writing(parent).and_then(|d| d.read(name, 256 << 20)) else {
            return Default::default();
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Default::default();
        };
        let Ok(report) = quick_junit::Report::deserialize_from_str(&text) else {
            return Default::default();
        };
        let mut out = std::collections::HashMap::new();
        for suite in &report.test_suites {
            for case in &suite.test_cases {
                let saw = match &case.status {
                    quick_junit::TestCaseStatus::Success { .. } => NextestSaw::Passed,
                    quick_junit::TestCaseStatus::NonSuccess { message, ty, .. } => {
                        NextestSaw::Failed(
                            message
                                .as_ref()
                                .or(ty.as_ref())
                                .map_or_else(|| "failed".to_owned(), |m| m.to_string()),
                        )
                    }
                    quick_junit::TestCaseStatus::Skipped { .. } => continue,
                };
                out.insert((suite.name.to_string(), case.name.to_string()), saw);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use userns_test::__cli::{RunKey, Store};

    /// Twelve root causes of skips in one run: ten annotations (GitHub
    /// keeps no more per step), each once even when the run's binaries
    /// write twice, and the step summary says two causes are only there.
    #[test]
    fn annotations_stop_at_githubs_limit_and_the_summary_says_so() {
        use super::model::*;
        let dir =
            std::env::temp_dir().join(format!("userns-test-annotations-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let summary = dir.join("summary.md");
        let d = Destinations {
            step_summary: Some(summary.clone()),
            annotations: true,
            lock_timeout: std::time::Duration::from_secs(60),
            ..Destinations::default()
        };
        let store = Store::beside(&dir.join("report.json")).unwrap();
        let run = store
            .run(
                &RunKey {
                    kind: "process".into(),
                    id: "t".into(),
                },
                None,
            )
            .unwrap();
        let mut report = assemble::assemble(&run, None).unwrap();
        for i in 0..12 {
            let cause = CauseText {
                id: "unexplained".into(),
                message: format!("cause {i}"),
            };
            let id = root_cause_id(&cause, "fix");
            report.root_causes.push(RootCause {
                id: id.clone(),
                label: format!("C{}", i + 1),
                cause,
                remedy: "fix".into(),
                abilities: vec!["net".into()],
                skipped: 1,
            });
            report.tests.push(TestEntry {
                binary: "pkg::suite".into(),
                name: format!("t{i:02}"),
                requires: vec!["net".into()],
                outcome: Outcome::Skipped,
                message: Some("needs net".into()),
                crashed: false,
                lacking: vec![Lack {
                    ability: "net".into(),
                    failed: "x".into(),
                    root_cause: id,
                }],
                duration_ms: 0.0,
                ran_despite_unmet: false,
            });
        }
        let binaries = vec!["pkg::suite".to_owned()];
        let (errors, first) = write_files(&d, &run, &report, &binaries, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            first.lines().filter(|l| l.starts_with("::notice ")).count(),
            10,
            "{first}"
        );
        let (_, again) = write_files(&d, &run, &report, &binaries, true);
        assert_eq!(again, "", "each cause is annotated once per run");
        let md = std::fs::read_to_string(&summary).unwrap();
        assert_eq!(
            md.matches("### userns-test: ").count(),
            1,
            "one section per binary"
        );
        assert!(
            md.contains("GitHub keeps 10 annotations per step: 2 further causes"),
            "{md}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
