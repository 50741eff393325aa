//! Markdown for GitHub's step summary: the host, the ability table and the
//! skipped tests grouped by reason, as one whole table per binary (each
//! job's summary must stand on its own, header included).

use std::collections::BTreeMap;

use super::{Outcome, Report};

/// Escapes text for a Markdown table cell: pipes would end the cell and
/// newlines the row.
pub fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

/// The host in one line, from a report.
pub fn host_line(report: &Report) -> String {
    let r = &report.runner;
    let mut parts = vec![
        r.distro.clone().unwrap_or_else(|| "unknown distro".into()),
        format!("kernel {}", r.kernel.as_deref().unwrap_or("unknown")),
    ];
    if let Some(uid) = report.host["uid"].as_u64() {
        parts.push(format!("uid {uid}"));
    }
    if let Some(c) = &r.container {
        parts.push(format!("container: {c}"));
    }
    parts.join(", ")
}

/// A verdict object's one-line cell: `yes`, or `no: <what failed>; <cause>`.
pub fn verdict_cell(a: &serde_json::Value) -> String {
    if a["verdict"] == "available" {
        return "yes".into();
    }
    format!(
        "**no**: {}; {}",
        a["failed"].as_str().unwrap_or("unavailable"),
        a["cause"]["message"].as_str().unwrap_or("")
    )
}

/// The step summary of one report.
pub fn step_summary(report: &Report) -> String {
    let binaries: Vec<&str> = {
        let mut b: Vec<&str> = report.tests.iter().map(|t| t.binary.as_str()).collect();
        b.dedup();
        b
    };
    let c = &report.counts;
    let mut out = format!(
        "### userns-test: {} on {}\n\n{}\n\n{} passed, {} failed, {} skipped, {} ignored\n\n",
        cell(&binaries.join(", ")),
        cell(&report.runner.label),
        cell(&host_line(report)),
        c.passed,
        c.failed,
        c.skipped,
        c.ignored
    );
    if !report.abilities.is_empty() {
        out.push_str("| ability | available |\n|---|---|\n");
        for a in &report.abilities {
            out.push_str(&format!(
                "| {} | {} |\n",
                cell(a["ability"].as_str().unwrap_or("?")),
                cell(&verdict_cell(a))
            ));
        }
        out.push('\n');
    }
    // Grouped by the whole reason; shown as what failed and why, with the
    // fixes in a column of their own.
    let mut by_reason: BTreeMap<&str, (Vec<&str>, String, String)> = BTreeMap::new();
    for t in &report.tests {
        if t.outcome == Outcome::Skipped {
            let key = t.message.as_deref().unwrap_or("");
            let entry = by_reason.entry(key).or_insert_with(|| {
                let why: Vec<String> = t
                    .lacking
                    .iter()
                    .map(|l| format!("needs {}: {}; cause: {}", l.ability, l.failed, l.cause))
                    .collect();
                let fixes: Vec<&str> = t.lacking.iter().map(|l| l.remedy.as_str()).collect();
                let why = if why.is_empty() {
                    key.to_owned()
                } else {
                    why.join(" \n")
                };
                (Vec::new(), why, fixes.join("\n"))
            });
            entry.0.push(&t.name);
        }
    }
    if by_reason.is_empty() {
        out.push_str("No test skipped.\n\n");
        return out;
    }
    let mut groups: Vec<_> = by_reason.into_iter().collect();
    groups.sort_by(|a, b| b.1.0.len().cmp(&a.1.0.len()).then(a.0.cmp(b.0)));
    out.push_str("| skipped | reason | fix | tests |\n|---:|---|---|---|\n");
    for (_, (names, why, fixes)) in groups {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            names.len(),
            cell(&why),
            cell(&fixes),
            cell(&names.join(", "))
        ));
    }
    out.push('\n');
    out
}
