//! JUnit XML, written by `quick-junit` (nextest's writer): one `testsuite`
//! per binary, one `testcase` per test that was run, skipped or ignored,
//! skipped tests as `<skipped message="reason">reason</skipped>` (Jenkins
//! shows the attribute, GitLab the text), and the runner, host facts and
//! ability verdicts as properties. `classname` and `name` do not depend on
//! the runner, so tools that line up several runners' files can match the
//! test cases; the runner's identity is in the properties.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{Outcome, Report, TestEntry};

/// The report as JUnit XML.
pub fn to_xml(report: &Report) -> io::Result<String> {
    let mut xml = quick_junit::Report::new("userns-test");
    let mut binaries: BTreeMap<&str, Vec<&TestEntry>> = BTreeMap::new();
    for t in &report.tests {
        binaries.entry(&t.binary).or_default().push(t);
    }
    let properties = properties(report);
    for (binary, tests) in binaries {
        let mut suite = TestSuite::new(binary);
        suite.add_properties(properties.iter().cloned());
        for t in tests {
            if let Some(case) = test_case(t) {
                suite.add_test_case(case);
            }
        }
        xml.add_test_suite(suite);
    }
    xml.to_string().map_err(io::Error::other)
}

fn test_case(t: &TestEntry) -> Option<TestCase> {
    let message = t.message.clone().unwrap_or_default();
    let status = match t.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(message.clone()).set_description(message);
            s
        }
        Outcome::Skipped | Outcome::Ignored | Outcome::NotRun => {
            let reason = match t.outcome {
                Outcome::Skipped => message,
                Outcome::Ignored if message.is_empty() => "ignored".to_owned(),
                Outcome::Ignored => format!("ignored: {message}"),
                _ => "listed, not run by nextest (a filter, or the run stopped early)".to_owned(),
            };
            let mut s = TestCaseStatus::skipped();
            s.set_message(reason.clone()).set_description(reason);
            s
        }
        // Not part of this run: libtest's own JUnit leaves them out too.
        Outcome::FilteredOut => return None,
    };
    let mut case = TestCase::new(t.name.clone(), status);
    case.set_classname(t.binary.clone())
        .set_time(Duration::from_secs_f64(t.duration_ms.max(0.0) / 1e3));
    if !t.requires.is_empty() {
        case.add_property(Property::new("requires", t.requires.join(",")));
    }
    Some(case)
}

fn properties(report: &Report) -> Vec<Property> {
    let mut out = vec![
        Property::new("userns-test.schema", report.schema.clone()),
        Property::new(
            "userns-test.run",
            format!("{}:{}", report.run.kind, report.run.id),
        ),
        Property::new("runner.label", report.runner.label.clone()),
    ];
    for (k, v) in &report.runner.ci {
        out.push(Property::new(format!("ci.{k}"), v.clone()));
    }
    if let Some(host) = report.host.as_object() {
        for (k, v) in host {
            let value = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(Property::new(format!("host.{k}"), value));
        }
    }
    for a in &report.abilities {
        let name = a["ability"].as_str().unwrap_or("?");
        let value = if a["verdict"] == "available" {
            "yes".to_owned()
        } else {
            format!(
                "no: {}; cause: {}",
                a["failed"].as_str().unwrap_or(""),
                a["cause"]["message"].as_str().unwrap_or("")
            )
        };
        out.push(Property::new(format!("ability.{name}"), value));
    }
    out
}
