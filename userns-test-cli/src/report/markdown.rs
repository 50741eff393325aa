//! Markdown for GitHub's step summary (and `merge`): one whole section per
//! binary (each job's summary must stand on its own, header included),
//! every root cause once, and every piece of foreign text escaped so that
//! nothing in a test name or a reason renders as markup or HTML.

use std::collections::BTreeMap;

use super::model::{Outcome, Report, TestEntry};
use userns_test::__cli::one_line;

/// How many test names a root cause lists before "and N more".
pub const NAMES_SHOWN: usize = 20;
/// How much of a failure message the summary shows, in bytes (GitHub
/// keeps 1 MiB of summary per step).
const MESSAGE_SHOWN: usize = 4000;

/// `s` as inline Markdown text that renders as exactly `s`: HTML's
/// `<`, `>` and `&` as entities, Markdown's punctuation (`` ` ``, `*`,
/// `_`, `[`, `]`, `~`, `|`, `\`, `#`, `!`) backslash-escaped, line breaks
/// as `<br>` (the one tag this crate writes), and any other character that
/// acts on a terminal as a visible escape. Safe in a table cell.
pub fn cell(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    let mut out = String::with_capacity(s.len() + 8);
    for part in s.split(['\n', '\r']).enumerate() {
        if part.0 > 0 {
            out.push_str("<br>");
        }
        for c in one_line(part.1).chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '`' | '*' | '_' | '[' | ']' | '~' | '|' | '\\' | '#' | '!' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// `s` as the text of a raw HTML block (a `<summary>`), where Markdown's
/// escapes are not read: HTML's `<`, `>`, `&` and `"` as entities, and
/// any character that acts on a terminal as a visible escape.
pub fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in one_line(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as Markdown prose outside a table: as [`cell`], but each
/// `` `command` `` stays a code span (a fix's commands keep their code
/// formatting, and a copy of one is the command itself). A span's text is
/// shown as it is by Markdown (no escape works in it, no HTML is read in
/// it); only characters that act on a terminal are escaped.
pub fn prose(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    // An odd number of backticks leaves the last one unpaired: text.
    let paired = parts.len() % 2 == 1;
    let code = |i: usize| i % 2 == 1 && paired && !parts[i].trim().is_empty();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        // The backtick before this part: a span's delimiter, or text.
        if i > 0 && !code(i) && !code(i - 1) {
            out.push_str("\\`");
        }
        if code(i) {
            out.push('`');
            out.push_str(&one_line(part));
            out.push('`');
        } else {
            out.push_str(&cell(part));
        }
    }
    out
}

/// `text` as a fenced code block, each line indented by `indent` (to sit in
/// a list item): shown exactly as written (`<`, `&`, `*` included), with a
/// fence longer than any run of backticks in it, and every line made
/// printable by [`userns_test::__cli::lines`] (no control character, no
/// line a workflow command).
pub fn code_block(text: &str, indent: &str) -> String {
    let text = userns_test::__cli::lines(text.trim_end());
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut out = format!("{indent}{fence}text\n");
    for line in text.split('\n') {
        out.push_str(indent);
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("{indent}{fence}\n"));
    out
}

/// What failed, shortened for a table or a terminal line: a step that
/// ran a program (`running \`/usr/bin/bwrap --die-with-parent ... true\`
/// failed: ...`) keeps the program and drops its arguments (the JSON and
/// JUnit keep them whole).
pub fn short_failed(failed: &str) -> String {
    let Some(rest) = failed.strip_prefix("running `") else {
        return failed.to_owned();
    };
    let Some((command, after)) = rest.split_once('`') else {
        return failed.to_owned();
    };
    match command.split_once(' ') {
        Some((program, _)) => format!("running `{program} ...`{after}"),
        None => failed.to_owned(),
    }
}

/// The host in one line, from a report.
pub fn host_line(report: &Report) -> String {
    let r = &report.runner;
    let mut parts = vec![r.distro.clone().unwrap_or_else(|| "unknown distro".into())];
    // Neither is said where the host has none to read (a kernel release
    // off Linux, a uid on Windows: u32::MAX, an id no one has).
    if let Some(kernel) = &r.kernel {
        parts.push(format!("kernel {kernel}"));
    }
    if let Some(uid) = report.host["uid"]
        .as_u64()
        .filter(|&u| u != u64::from(u32::MAX))
    {
        parts.push(format!("uid {uid}"));
    }
    if let Some(c) = &r.container {
        parts.push(format!("container: {c}"));
    }
    parts.join(", ")
}

/// Counts in words: `7 passed, 2 failed (1 crashed), 3 skipped`.
pub fn counts_line(tests: &[&TestEntry]) -> String {
    let count = |o: Outcome| tests.iter().filter(|t| t.outcome == o).count();
    let crashed = tests.iter().filter(|t| t.crashed).count();
    let mut parts = vec![
        format!("{} passed", count(Outcome::Passed)),
        if crashed > 0 {
            format!("{} failed ({crashed} crashed)", count(Outcome::Failed))
        } else {
            format!("{} failed", count(Outcome::Failed))
        },
        format!("{} skipped", count(Outcome::Skipped)),
        format!("{} ignored", count(Outcome::Ignored)),
    ];
    for (o, word) in [(Outcome::NotRun, "not run"), (Outcome::Unknown, "unknown")] {
        let n = count(o);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    parts.join(", ")
}

/// A table cell listing test `names`: `none`, or `N: a, b, ...` with the
/// first [`NAMES_SHOWN`] and "and M more".
pub fn names_cell(names: &[impl AsRef<str>]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| cell(n.as_ref()))
        .collect();
    match (names.len(), names.len().saturating_sub(NAMES_SHOWN)) {
        (0, _) => "none".to_owned(),
        (n, 0) => format!("{n}: {}", shown.join(", ")),
        (n, m) => format!("{n}: {}, and {m} more", shown.join(", ")),
    }
}

/// The step summary section of `binary` in `report`, for a reader with
/// ten seconds: a heading with the verdict and counts, the failures with
/// their messages in code blocks, the skips by cause with their fixes,
/// then the unavailable abilities (the available ones folded).
/// `not_annotated`: root causes of the run that GitHub's annotation limit
/// left out, which the section says.
pub fn step_summary(report: &Report, binary: &str, not_annotated: usize) -> String {
    let tests: Vec<&TestEntry> = report.tests.iter().filter(|t| t.binary == binary).collect();
    let mut out = format!(
        "### userns-test: {} on {}: {}\n\n{}\n\n",
        cell(binary),
        cell(&report.runner.label),
        counts_line(&tests),
        cell(&host_line(report)),
    );
    let failed: Vec<&&TestEntry> = tests
        .iter()
        .filter(|t| t.outcome == Outcome::Failed || t.outcome == Outcome::Unknown)
        .collect();
    if !failed.is_empty() {
        let unknown = failed.iter().any(|t| t.outcome == Outcome::Unknown);
        out.push_str(&format!(
            "#### {} ({})\n\n",
            if unknown {
                "Failed or unknown"
            } else {
                "Failed"
            },
            failed.len()
        ));
        for t in failed {
            let outcome = match (t.outcome, t.crashed) {
                (Outcome::Failed, true) => "**CRASHED**",
                (Outcome::Failed, false) => "**FAILED**",
                _ => "unknown",
            };
            out.push_str(&format!("- {outcome} **{}**\n\n", cell(&t.name)));
            let message = t.message.as_deref().unwrap_or("(no message recorded)");
            let shown = userns_test::__cli::cut(message, MESSAGE_SHOWN, "the test's output");
            out.push_str(&code_block(&shown, "  "));
            out.push('\n');
        }
    }
    // The root causes of this binary's skips, and of its abilities.
    let needed: std::collections::BTreeSet<&str> = tests
        .iter()
        .flat_map(|t| t.requires.iter().map(String::as_str))
        .collect();
    let abilities: Vec<&serde_json::Value> = report
        .abilities
        .iter()
        .filter(|a| a["ability"].as_str().is_some_and(|n| needed.contains(n)))
        .collect();
    let mut skipped_by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &tests {
        if t.outcome == Outcome::Skipped {
            for l in &t.lacking {
                let names = skipped_by.entry(&l.root_cause).or_default();
                // A test lacking two abilities for one cause is one test.
                if names.last() != Some(&t.name.as_str()) {
                    names.push(&t.name);
                }
            }
        }
    }
    let causes: Vec<&super::model::RootCause> = report
        .root_causes
        .iter()
        .filter(|rc| {
            skipped_by.contains_key(rc.id.as_str())
                || abilities.iter().any(|a| a["root_cause"] == rc.id.as_str())
        })
        .collect();
    if !causes.is_empty() {
        out.push_str(if skipped_by.is_empty() {
            "#### No test skipped; unavailable, by cause\n\n"
        } else {
            "#### Skipped, by cause\n\n"
        });
        for rc in &causes {
            let names = skipped_by.get(rc.id.as_str()).cloned().unwrap_or_default();
            let tests = match names.len() {
                0 => "no test skipped".to_owned(),
                n => format!(
                    "{n} test{} skipped: {}",
                    if n == 1 { "" } else { "s" },
                    names_cell(&names)
                        .split_once(": ")
                        .map_or(String::new(), |(_, l)| l.to_owned())
                ),
            };
            out.push_str(&format!(
                "- **{}** {} ({tests})  \n  fix: {}\n",
                rc.label,
                cell(&rc.cause.message),
                prose(&rc.remedy)
            ));
        }
        out.push('\n');
    }
    let (unavailable, available): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        abilities.iter().partition(|a| a["verdict"] != "available");
    if !unavailable.is_empty() {
        out.push_str("| ability | available | what failed |\n|---|---|---|\n");
        for a in &unavailable {
            let label = a["root_cause"]
                .as_str()
                .and_then(|id| report.root_causes.iter().find(|rc| rc.id == id))
                .map_or_else(
                    || cell(a["cause"]["message"].as_str().unwrap_or("")),
                    |rc| rc.label.clone(),
                );
            out.push_str(&format!(
                "| {} | **no**, {label} | {} |\n",
                cell(a["ability"].as_str().unwrap_or("?")),
                cell(&short_failed(a["failed"].as_str().unwrap_or("unavailable")))
            ));
        }
        out.push('\n');
    }
    if !available.is_empty() {
        let names: Vec<&str> = available
            .iter()
            .filter_map(|a| a["ability"].as_str())
            .collect();
        out.push_str(&format!(
            "<details><summary>{} abilit{} available: {}</summary>\n\n\
             each probed on this runner and found to work\n\n\
             </details>\n\n",
            names.len(),
            if names.len() == 1 { "y" } else { "ies" },
            html_text(&names.join(", "))
        ));
    }
    if skipped_by.is_empty() && causes.is_empty() {
        out.push_str("No test skipped.\n\n");
    }
    if not_annotated > 0 {
        out.push_str(&format!(
            "GitHub keeps 10 annotations per step: {not_annotated} further cause{} of skips in \
             this run {} only in these summaries.\n\n",
            if not_annotated == 1 { "" } else { "s" },
            if not_annotated == 1 { "is" } else { "are" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fix's commands stay code; everything else is escaped text, an
    /// unpaired or empty pair of backticks included.
    #[test]
    fn prose_keeps_commands_as_code() {
        assert_eq!(
            prose("add a range (`sudo usermod --add-subuids 1-2 root`) *now*"),
            "add a range (`sudo usermod --add-subuids 1-2 root`) \\*now\\*"
        );
        assert_eq!(prose("a ` b"), "a \\` b");
        assert_eq!(prose("x `` y"), "x \\`\\` y");
        assert_eq!(prose("`<b>` & `|`"), "`<b>` &amp; `|`");
    }

    /// A code block holds any text: its fence is longer than any run of
    /// backticks in it, and no line of it is a workflow command.
    #[test]
    fn code_blocks_hold_any_text() {
        assert_eq!(code_block("a\nb", "  "), "  ```text\n  a\n  b\n  ```\n");
        let tricky = code_block("````\n::set-env x", "");
        assert!(tricky.starts_with("`````text\n"), "{tricky}");
        assert!(tricky.contains("\n\\::set-env x\n"), "{tricky}");
    }

    #[test]
    fn a_programs_arguments_are_dropped_from_short_lines() {
        assert_eq!(
            short_failed("running `/usr/bin/bwrap --unshare-user true` failed: exit status 1: x"),
            "running `/usr/bin/bwrap ...` failed: exit status 1: x"
        );
        assert_eq!(
            short_failed("unshare(CLONE_NEWUSER) failed: EPERM (1)"),
            "unshare(CLONE_NEWUSER) failed: EPERM (1)"
        );
    }

    #[test]
    fn cells_render_as_their_text() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(
            cell("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(cell("a\rb\nc\r\nd"), "a<br>b<br>c<br>d");
        assert_eq!(
            cell("*x* _y_ `z` [l](u) ~~s~~ \\"),
            "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\~\\~s\\~\\~ \\\\"
        );
        assert_eq!(cell("\x1b[31m&"), "\\\\u{1b}\\[31m&amp;");
    }
}
