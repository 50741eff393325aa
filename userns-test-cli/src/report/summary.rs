//! A report in words, for a person at a terminal or reading a CI log:
//! what `userns-test finish` and `userns-test run` print after the tests.
//! Every root cause once, with the abilities and tests it takes and its
//! fix; crashed and failed tests; what is not known. Foreign text is shown
//! with `userns_test::__cli::one_line`, so nothing in it acts on the terminal or
//! the log.

use std::fmt::Write as _;

use super::markdown::host_line;
use super::model::{Outcome, Report, TestEntry};
use userns_test::__cli::one_line;

/// The summary of `report`.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let run = &report.run;
    let state = if run.finished {
        match run.exit_code {
            Some(code) => format!("finished, the test command exited with {code}"),
            None => "finished".to_owned(),
        }
    } else {
        "not finished: outcomes may still change".to_owned()
    };
    let _ = writeln!(
        out,
        "userns-test: run {} {}: {state}",
        run.kind,
        one_line(&run.id)
    );
    let _ = writeln!(out, "userns-test: host: {}", one_line(&host_line(report)));
    let all: Vec<&TestEntry> = report.tests.iter().collect();
    let _ = writeln!(
        out,
        "userns-test: {} tests: {}",
        all.len(),
        super::markdown::counts_line(&all)
    );
    if !report.abilities.is_empty() {
        let _ = writeln!(out, "userns-test: abilities:");
        let width = report
            .abilities
            .iter()
            .filter_map(|a| a["ability"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(0);
        for a in &report.abilities {
            let name = a["ability"].as_str().unwrap_or("?");
            let cell = if a["verdict"] == "available" {
                "yes".to_owned()
            } else {
                let number = report
                    .root_causes
                    .iter()
                    .position(|rc| a["root_cause"] == rc.id.as_str())
                    .map_or(String::new(), |n| format!("; cause [{}]", n + 1));
                format!(
                    "no   {}{number}",
                    one_line(a["failed"].as_str().unwrap_or("unavailable"))
                )
            };
            let _ = writeln!(out, "  {name:width$}  {cell}");
        }
    }
    if !report.root_causes.is_empty() {
        let skipped = report.counts.skipped;
        if skipped == 0 {
            let _ = writeln!(
                out,
                "userns-test: no test skipped; the unavailable abilities, by cause:"
            );
        } else {
            let _ = writeln!(out, "userns-test: {skipped} skipped, by cause:");
        }
        for (i, rc) in report.root_causes.iter().enumerate() {
            userns_test::__cli::write_block(
                &mut out,
                i + 1,
                &rc.cause.message,
                &rc.abilities.join(", "),
                &report.skipped_by(&rc.id),
                &rc.remedy,
                &|s| s.to_owned(),
            );
        }
    }
    let failed: Vec<&TestEntry> = report
        .tests
        .iter()
        .filter(|t| matches!(t.outcome, Outcome::Failed | Outcome::Unknown))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "userns-test: failed, crashed or unknown:");
        for t in failed {
            let what = match (t.outcome, t.crashed) {
                (Outcome::Failed, true) => "CRASHED",
                (Outcome::Failed, false) => "FAILED",
                _ => "UNKNOWN",
            };
            let first = t
                .message
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            let _ = writeln!(
                out,
                "  {what} {} {}: {}",
                one_line(&t.binary),
                one_line(&t.name),
                one_line(first)
            );
        }
    }
    for note in &run.notes {
        let _ = writeln!(out, "userns-test: note: {}", one_line(note));
    }
    out
}
