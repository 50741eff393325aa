//! GitHub Actions workflow-command annotations: one per root cause of
//! skips, never one per test, and never more than GitHub keeps (10 per
//! step); escaped by the workflow-command rules, with every character that
//! acts on a terminal shown as an escape.

use super::model::{Report, RootCause};
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
        "userns-test: {} test{} skipped on {}, needs {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        report.runner.label,
        cause.abilities.join(" and ")
    );
    let mut message = format!(
        "cause: {}\nfix: {}\nskipped: {}",
        cause.cause.message,
        cause.remedy,
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
    fn escapes_per_the_workflow_command_rules() {
        assert_eq!(escape_data("100% a\r\nb"), "100%25 a%0D%0Ab");
        assert_eq!(escape_property("a: b, c%"), "a%3A b%2C c%25");
        assert_eq!(
            escape_data("x\n::set-env name=A::1\x1b"),
            "x%0A::set-env name=A::1\\u{1b}"
        );
    }
}
