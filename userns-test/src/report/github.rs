//! GitHub Actions: workflow-command annotations, one per distinct skip
//! reason (GitHub keeps only the first 10 warnings of a step, so never one
//! per test), escaped by the workflow-command rules.

use std::collections::BTreeMap;

use super::{Outcome, Report};

/// `::notice` lines (`::warning` when `required`: under
/// `USERNS_TEST_REQUIRE` a skip is worth a warning), one per distinct
/// reason, with the number of tests it skipped.
pub fn annotations(report: &Report, required: bool) -> String {
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &report.tests {
        if t.outcome == Outcome::Skipped
            && let Some(m) = &t.message
        {
            by_reason.entry(m).or_default().push(&t.name);
        }
    }
    let level = if required { "warning" } else { "notice" };
    let mut out = String::new();
    for (reason, tests) in by_reason {
        let lacking: Vec<&str> = report
            .tests
            .iter()
            .find(|t| t.message.as_deref() == Some(reason))
            .map(|t| t.lacking.iter().map(|l| l.ability.as_str()).collect())
            .unwrap_or_default();
        let title = format!(
            "userns-test: {} test{} skipped on {}, needs {}",
            tests.len(),
            if tests.len() == 1 { "" } else { "s" },
            report.runner.label,
            lacking.join(" and ")
        );
        let message = format!("{reason}\nSkipped: {}", tests.join(", "));
        out.push_str(&format!(
            "::{level} title={}::{}\n",
            escape_property(&title),
            escape_data(&message)
        ));
    }
    out
}

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`title=`).
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
    }
}
