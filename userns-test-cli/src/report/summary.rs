//! A report in words, for a person at a terminal or reading a CI log:
//! what `userns-test finish` and `userns-test run` print after the tests.
//! Every root cause once (`C1`..), with the abilities and tests it takes
//! and its fix; then each crashed, failed or unknown test with its whole
//! message; the counts last, where a terminal leaves them in view. Foreign
//! text is shown with `userns_test::__cli::one_line` (or `lines` for a
//! message), so nothing in it acts on the terminal or the log.

use std::fmt::Write as _;

use super::markdown::host_line;
use super::model::{Outcome, Report, TestEntry};
use userns_test::__cli::{lines, one_line};

/// Whether the summary on stderr is painted: a terminal, without
/// `NO_COLOR`, as the test binaries decide it.
pub fn use_color() -> bool {
    userns_test::__cli::stderr_color()
}

/// The summary of `report`, in the order a terminal leaves it in view:
/// the run and the runner, the abilities, each cause of skips once (its
/// abilities, tests and fix), each failure whole, and last the counts.
/// `color` paints the failures and the last line (ANSI).
pub fn render(report: &Report, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
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
    let _ = writeln!(
        out,
        "userns-test: runner {}: {}",
        one_line(&report.runner.label),
        one_line(&host_line(report))
    );
    let (available, unavailable): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = report
        .abilities
        .iter()
        .partition(|a| a["verdict"] == "available");
    if !report.abilities.is_empty() {
        let names: Vec<&str> = available
            .iter()
            .filter_map(|a| a["ability"].as_str())
            .collect();
        let _ = writeln!(
            out,
            "userns-test: abilities: {} available{}{}",
            names.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            if unavailable.is_empty() {
                ""
            } else {
                "; unavailable:"
            }
        );
        let width = unavailable
            .iter()
            .filter_map(|a| a["ability"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(0);
        for a in &unavailable {
            let name = a["ability"].as_str().unwrap_or("?");
            let label = report
                .root_causes
                .iter()
                .find(|rc| a["root_cause"] == rc.id.as_str())
                .map_or(String::new(), |rc| format!("; {}", rc.label));
            let _ = writeln!(
                out,
                "  {name:width$}  no  {}{label}",
                one_line(&super::markdown::short_failed(
                    a["failed"].as_str().unwrap_or("unavailable")
                ))
            );
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
                (Outcome::Failed, true) => paint("1;31", "CRASHED"),
                (Outcome::Failed, false) => paint("1;31", "FAILED"),
                _ => paint("33", "UNKNOWN"),
            };
            let _ = writeln!(
                out,
                "  {what} {} {}",
                one_line(&t.binary),
                one_line(&t.name)
            );
            // The whole message (an assert_eq!'s left and right included),
            // each line printable and none a workflow command.
            for line in lines(t.message.as_deref().unwrap_or("")).lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    for note in &run.notes {
        let _ = writeln!(out, "userns-test: note: {}", one_line(note));
    }
    let all: Vec<&TestEntry> = report.tests.iter().collect();
    let counts = format!(
        "{} tests on {}: {}",
        all.len(),
        one_line(&report.runner.label),
        super::markdown::counts_line(&all)
    );
    let code = if report.counts.failed > 0 || report.counts.unknown > 0 {
        "1;31"
    } else if report.counts.skipped > 0 {
        "33"
    } else {
        "32"
    };
    let _ = writeln!(out, "userns-test: {}", paint(code, &counts));
    out
}
