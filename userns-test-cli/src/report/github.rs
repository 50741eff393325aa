//! GitHub Actions workflow-command annotations: an `::error` per failing
//! test, at the panic's file and line where the message names them, and a
//! `::notice` per root cause of skips, never one per skipped test; never
//! more of a kind than GitHub keeps (10 per step); escaped by the
//! workflow-command rules, with every character that acts on a terminal
//! shown as an escape.

use super::model::{Outcome, Report, RootCause, TestEntry};
use userns_test::__cli::one_line;

/// GitHub shows the first 10 notices, warnings and errors of a step.
pub const ANNOTATIONS_PER_STEP: usize = 10;

/// The `::notice` line (`::warning` when `required`: under
/// `USERNS_TEST_REQUIRE` a skip is worth a warning) for one root cause of
/// `report`'s skips, with the tests it skipped.
pub fn annotation(report: &Report, cause: &RootCause, required: bool) -> String {
    let names = report.skipped_by(&cause.id);
    let shown: Vec<&str> = names.iter().take(20).copied().collect();
    let more = names.len().saturating_sub(shown.len());
    let level = if required { "warning" } else { "notice" };
    let title = format!(
        "userns-test {}: {} skipped on {}",
        cause.label,
        names.len(),
        report.runner.label,
    );
    let mut message = format!(
        "{}\nfix: {}\nneeds: {}\nskipped: {}",
        cause.cause.message,
        cause.remedy,
        cause.abilities.join(", "),
        shown.join(", ")
    );
    if more > 0 {
        message.push_str(&format!(", and {more} more"));
    }
    format!(
        "::{level} title={}::{}\n",
        escape_property(&title),
        escape_data(&message)
    )
}

/// How much of a failure message an annotation carries, in bytes (GitHub
/// cuts them near 64 KiB; the test's output has the whole).
const FAILURE_SHOWN: usize = 4000;

/// The `::error` line for a failing (or crashed) test of `report`: at the
/// file and line of its panic where the message names them
/// (`panicked at tests/x.rs:12:9: ...`, as the test records it), with
/// the whole message.
pub fn failure_annotation(report: &Report, t: &TestEntry) -> String {
    let what = if t.crashed { "crashed" } else { "failed" };
    let title = format!("userns-test: {} {what} on {}", t.name, report.runner.label);
    let message = t.message.as_deref().unwrap_or("(no message recorded)");
    let shown = userns_test::__cli::cut(message, FAILURE_SHOWN, "the test's output");
    let place = panic_location(message)
        .map(|(file, line, col)| format!("file={},line={line},col={col},", escape_property(file)))
        .unwrap_or_default();
    format!(
        "::error {place}title={}::{}\n",
        escape_property(&title),
        escape_data(&format!("{}: {shown}", t.binary))
    )
}

/// The failing tests of `report` that get an `::error`: failed or crashed.
pub fn failures(report: &Report) -> impl Iterator<Item = &TestEntry> {
    report.tests.iter().filter(|t| t.outcome == Outcome::Failed)
}

/// The `file:line:col` a panic message names after `panicked at ` (or
/// `... at ` for a body run in namespaces): the file relative to the
/// workspace, as rustc writes it, which is where GitHub looks.
pub fn panic_location(message: &str) -> Option<(&str, u32, u32)> {
    let first = message.lines().next()?;
    let (_, rest) = first.split_once("panicked")?;
    let (_, rest) = rest.split_once(" at ")?;
    // `file:line:col` then `: message` (or the end of the line).
    let mut parts = rest.splitn(4, ':');
    let file = parts.next()?;
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    let relative = !file.is_empty() && !file.starts_with('/') && !file.starts_with('<');
    relative.then_some((file, line, col))
}

/// Escapes a workflow command's message: `%`, `\r`, `\n` by the rules,
/// and any other character that acts on a terminal as a visible escape.
pub fn escape_data(s: &str) -> String {
    let escaped = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    one_line(&escaped).into_owned()
}

/// Escapes a workflow command's property value (`title=`): also `:` and
/// `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_panic_location() {
        assert_eq!(
            panic_location("test panicked at tests/x.rs:12:9: boom\n  left: 1"),
            Some(("tests/x.rs", 12, 9))
        );
        assert_eq!(
            panic_location(
                "panicked in its own user and net namespaces at tests/y.rs:3:5: assertion failed"
            ),
            Some(("tests/y.rs", 3, 5))
        );
        assert_eq!(panic_location("test did not panic as expected"), None);
        assert_eq!(
            panic_location("test panicked at /rustc/abc/x.rs:1:2: x"),
            None
        );
    }

    #[test]
    fn escapes_per_the_workflow_command_rules() {
        assert_eq!(escape_data("100% a\r\nb"), "100%25 a%0D%0Ab");
        assert_eq!(escape_property("a: b, c%"), "a%3A b%2C c%25");
        assert_eq!(
            escape_data("x\n::set-env name=A::1\x1b"),
            "x%0A::set-env name=A::1\\u{1b}"
        );
    }
}
