//! JUnit XML, written by `quick-junit` (nextest's writer): one `testsuite`
//! per binary, named `<binary> on <runner>` so that a viewer given several
//! runners' files (xunit-viewer, junit2html merge suites by name) keeps
//! each runner's outcomes apart, with `time` and `timestamp`
//! (dorny/test-reporter reads them). A failure's `message` is its first
//! line, the whole text its body, once; skipped tests are `<skipped
//! message="C1: cause; fix: ...">` with what failed in the body (Jenkins
//! shows the attribute, GitLab the text); crashed tests are failures of
//! type `crashed`, tests whose outcome is unknown errors. The runner is in
//! every suite's properties; the causes with their fixes (`cause.C1`:
//! said once, not on each of the thousands of tests one cause may skip)
//! in the first suite's only; the verdicts, host facts and CI variables
//! once, in a last suite of no test cases (`userns-test host facts: <runner>`), so that a
//! viewer never shows them above a failure (xunit-viewer shows a suite's
//! `<system-out>` and properties before its cases). `classname` (the binary) and
//! `name` do not depend on the runner, so tools that line up several
//! runners' files can match the test cases.
//!
//! XML 1.0 cannot hold every character a Rust string can (C0 controls but
//! tab and newlines, U+FFFE, U+FFFF): those are written as a visible
//! `\u{...}` escape, so one odd panic message never makes the whole file
//! unreadable.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use std::collections::HashMap;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite, XmlString};

use super::model::{Outcome, Report, TestEntry};

/// `s` with every character XML 1.0 forbids written as `\u{...}`.
pub fn xml_text(s: &str) -> String {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    if s.chars().all(allowed) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out
}

/// The report as JUnit XML.
pub fn to_xml(report: &Report) -> io::Result<String> {
    let mut xml = quick_junit::Report::new("userns-test");
    let timestamp = report
        .run
        .started_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let mut binaries: BTreeMap<&str, Vec<&TestEntry>> = BTreeMap::new();
    for t in &report.tests {
        binaries.entry(&t.binary).or_default().push(t);
    }
    // Made once: the runner (every suite), the causes (the first), what
    // the run says of itself with the host facts (the last).
    let properties = runner_properties(report);
    let (first_properties, mut run_facts) = split_properties(report);
    run_facts.extend(host_facts(report));
    let mut total = Duration::ZERO;
    // quick-junit filters every string it is given, character by
    // character; a classname and a skip reason repeat on thousands of
    // tests, so each is made once and cloned (a clone is not filtered
    // again).
    let mut texts: HashMap<String, XmlString> = HashMap::new();
    for (i, (binary, tests)) in binaries.into_iter().enumerate() {
        let classname = XmlString::new(xml_text(binary));
        let mut suite = TestSuite::new(xml_text(&format!("{binary} on {}", report.runner.label)));
        suite.add_properties(properties.iter().cloned());
        if i == 0 {
            suite.add_properties(first_properties.iter().cloned());
        }
        let mut time = Duration::ZERO;
        for t in tests {
            if let Some(case) = test_case(report, t, &classname, &mut texts) {
                time += case.time.unwrap_or_default();
                suite.add_test_case(case);
            }
        }
        suite.set_time(time);
        if let Some(ts) = timestamp {
            suite.set_timestamp(ts);
        }
        total += time;
        xml.add_test_suite(suite);
    }
    // The host facts once, after every binary's suite: a suite of no test
    // cases, so that no viewer shows forty facts above a failure.
    let mut host = TestSuite::new(xml_text(&format!(
        "userns-test host facts: {}",
        report.runner.label
    )));
    host.add_properties(properties.iter().cloned());
    host.add_properties(run_facts);
    host.set_time(Duration::ZERO);
    if let Some(ts) = timestamp {
        host.set_timestamp(ts);
    }
    xml.add_test_suite(host);
    xml.set_time(total);
    if let Some(ts) = timestamp {
        xml.set_timestamp(ts);
    }
    xml.to_string().map_err(io::Error::other)
}

fn test_case(
    report: &Report,
    t: &TestEntry,
    classname: &XmlString,
    texts: &mut HashMap<String, XmlString>,
) -> Option<TestCase> {
    let message = xml_text(t.message.as_deref().unwrap_or_default());
    let mut text = |s: String| -> XmlString {
        texts
            .entry(s)
            .or_insert_with_key(|s| XmlString::new(s))
            .clone()
    };
    let status = match t.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            // The first line in the attribute (a viewer's one-line view),
            // the whole text once, as the element's text.
            let first = message.lines().next().unwrap_or_default().to_owned();
            s.set_message(XmlString::new(first))
                .set_description(XmlString::new(&message));
            if t.crashed {
                s.set_type("crashed");
            }
            s
        }
        Outcome::Unknown => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            let m = text(format!("outcome unknown: {message}"));
            s.set_message(m.clone())
                .set_description(m)
                .set_type("unknown");
            s
        }
        Outcome::Skipped => {
            // Each cause once, by its name in every output of the run, with
            // its fix; what failed in the body.
            let mut causes: Vec<&super::model::RootCause> = Vec::new();
            for l in &t.lacking {
                if let Some(rc) = report.root_causes.iter().find(|rc| rc.id == l.root_cause)
                    && !causes.iter().any(|c| c.id == rc.id)
                {
                    causes.push(rc);
                }
            }
            let said: Vec<String> = causes
                .iter()
                .map(|rc| format!("{}: {}; fix: {}", rc.label, rc.cause.message, rc.remedy))
                .collect();
            let attribute = if said.is_empty() {
                message.clone()
            } else {
                xml_text(&said.join(" | "))
            };
            let mut s = TestCaseStatus::skipped();
            s.set_message(text(attribute))
                .set_description(XmlString::new(&message));
            s
        }
        Outcome::Ignored | Outcome::NotRun => {
            let reason = match t.outcome {
                Outcome::Ignored if message.is_empty() => "ignored".to_owned(),
                Outcome::Ignored => format!("ignored: {message}"),
                _ => format!("not run: {message}"),
            };
            let mut s = TestCaseStatus::skipped();
            let m = text(reason);
            s.set_message(m.clone()).set_description(m);
            s
        }
        // Not part of this run: libtest's own JUnit leaves them out too.
        Outcome::FilteredOut => return None,
    };
    let mut case = TestCase::new(xml_text(&t.name), status);
    case.set_classname(classname.clone())
        .set_time(Duration::from_secs_f64(t.duration_ms.max(0.0) / 1e3));
    Some(case)
}

/// Which runner and run a suite is of: on every suite.
fn runner_properties(report: &Report) -> Vec<Property> {
    let p = |k: String, v: String| Property::new(xml_text(&k), xml_text(&v));
    let mut every = vec![
        p("runner.label".into(), report.runner.label.clone()),
        p(
            "userns-test.run".into(),
            format!("{}:{}", report.run.kind, report.run.id),
        ),
    ];
    if let Some(host) = &report.runner.hostname {
        every.push(p("runner.hostname".into(), host.clone()));
    }
    every.push(p("runner.host".into(), super::markdown::host_line(report)));
    every
}

/// The causes with their fixes (for the first suite, beside the skips
/// that name them), and what else the run says of itself: the schema,
/// whether it is finished, the shard, each verdict, the notes (for the
/// last suite, with the host facts).
fn split_properties(report: &Report) -> (Vec<Property>, Vec<Property>) {
    let p = |k: String, v: String| Property::new(xml_text(&k), xml_text(&v));
    let mut out = vec![
        p("userns-test.schema".into(), report.schema.clone()),
        p(
            "userns-test.run.finished".into(),
            report.run.finished.to_string(),
        ),
    ];
    if let Some(shard) = &report.runner.shard {
        out.push(p("runner.shard".into(), shard.clone()));
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
        out.push(p(format!("ability.{name}"), value));
    }
    for note in &report.run.notes {
        out.push(p("userns-test.note".into(), note.clone()));
    }
    let causes = report
        .root_causes
        .iter()
        .map(|rc| {
            p(
                format!("cause.{}", rc.label),
                format!(
                    "{} (abilities: {}; {} test{} skipped); fix: {}; id: {}",
                    rc.cause.message,
                    rc.abilities.join(", "),
                    rc.skipped,
                    if rc.skipped == 1 { "" } else { "s" },
                    rc.remedy,
                    rc.id
                ),
            )
        })
        .collect();
    (causes, out)
}

/// The CI variables and the host facts, for the last suite.
fn host_facts(report: &Report) -> Vec<Property> {
    let p = |k: String, v: String| Property::new(xml_text(&k), xml_text(&v));
    let mut out = Vec::new();
    for (k, v) in &report.runner.ci {
        out.push(p(format!("ci.{k}"), v.clone()));
    }
    if let Some(host) = report.host.as_object() {
        for (k, v) in host {
            let value = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(p(format!("host.{k}"), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_code_points_become_visible() {
        assert_eq!(xml_text("ok\ttab\nline"), "ok\ttab\nline");
        assert_eq!(
            xml_text("a\u{FFFE}b\u{0}c\u{1b}d\u{FFFF}"),
            "a\\u{fffe}b\\u{0}c\\u{1b}d\\u{ffff}"
        );
        assert_eq!(xml_text("名前 ✓ 🦀"), "名前 ✓ 🦀");
    }
}
