//! The summary a person reads after a run: the host, the ability matrix of
//! what the suite needed, and the skipped tests grouped by root cause (in
//! the manner of `pytest -rs`, each cause and fix said once). Written to stderr, after libtest's own summary
//! line, which stays the last line on stdout for tools that parse it.

use std::io::{self, Write};

use libtest_mimic::{Arguments, ColorSetting};

use super::{RunRecord, TestOutcome};
use crate::root_cause::RootCauses;
use crate::text::one_line;
use crate::verdict::Reason;
use crate::{Ability, HostFacts};

/// Colour when libtest's `--color` says so, or on a terminal without
/// `NO_COLOR`.
pub(super) fn use_color(args: &Arguments) -> bool {
    match args.color {
        Some(ColorSetting::Always) => true,
        Some(ColorSetting::Never) => false,
        _ => crate::text::stderr_color(),
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Writes the summary of `record`: the host, the matrix of the abilities
/// the run needed (an unavailable one refers to its root cause by number),
/// then each root cause once, with the abilities it takes, the tests it
/// skipped and its fix.
pub fn write_summary(w: &mut impl Write, record: &RunRecord, color: bool) -> io::Result<()> {
    let paint = Paint(color);
    let quiet = !crate::gate::settings().is_ok_and(|s| s.verbose)
        && record.config_error.is_none()
        && record.never_run.is_empty()
        && record.denied.is_empty()
        && record.verdicts.iter().all(|v| v.reason().is_none())
        && !record
            .tests
            .iter()
            .any(|t| matches!(t.outcome, TestOutcome::Skipped { .. }));
    if quiet {
        // Nothing skipped, unavailable or left out: one line, and no host
        // facts read (USERNS_TEST_VERBOSE=1 prints them; the reports always
        // carry everything).
        let n = record.verdicts.len();
        let line = format!(
            "userns-test: {n} {} available; no test skipped",
            if n == 1 { "ability" } else { "abilities" }
        );
        return writeln!(w, "\n{}", paint.wrap("32", &line));
    }
    let facts = HostFacts::get();
    let mut out = String::new();
    out.push('\n');
    out.push_str(&format!("userns-test: host: {}\n", facts.summary()));
    if let Some(e) = &record.config_error {
        out.push_str(&format!(
            "userns-test: {}\n",
            paint.wrap("31", &format!("configuration error: {}", one_line(e)))
        ));
    }

    if !record.never_run.is_empty() {
        out.push_str(&format!(
            "userns-test: {}\n",
            paint.wrap(
                "31",
                &format!(
                    "{} function{} of this target never run under the runner:",
                    record.never_run.len(),
                    if record.never_run.len() == 1 { "" } else { "s" }
                )
            )
        ));
        for n in &record.never_run {
            out.push_str(&format!("  {}\n", one_line(n)));
        }
    }

    let denied = crate::policy::denied_reason();
    let mut causes = RootCauses::of_verdicts(&record.verdicts);
    for &a in &record.denied {
        causes.add_ability(a, &denied);
    }
    let mut skipped = 0;
    for t in &record.tests {
        if let TestOutcome::Skipped { unmet } = &t.outcome {
            skipped += 1;
            for (ability, reason) in &unmet.reasons {
                causes.add_skip(&t.name, *ability, reason);
            }
        }
    }
    causes.sort();

    let mut rows: Vec<(Ability, Option<&Reason>, String)> = record
        .verdicts
        .iter()
        .map(|v| (v.ability, v.reason(), v.yes_with_note()))
        .collect();
    rows.extend(
        record
            .denied
            .iter()
            .map(|&a| (a, Some(&denied), String::new())),
    );
    rows.sort_by_key(|(a, _, _)| *a);
    if !rows.is_empty() {
        out.push_str("userns-test: abilities this run needed:\n");
        let width = rows
            .iter()
            .map(|(a, _, _)| a.name().len())
            .max()
            .unwrap_or(0);
        for (ability, reason, yes) in &rows {
            let cell = match reason {
                None => paint.wrap("32", yes),
                Some(r) => {
                    let number = causes
                        .number(r)
                        .map_or(String::new(), |n| format!("; C{n}"));
                    format!(
                        "{} {}{number}",
                        paint.wrap("31", "no "),
                        one_line(&r.short())
                    )
                }
            };
            out.push_str(&format!("  {:width$}  {cell}\n", ability.name()));
        }
    }

    if causes.is_empty() {
        out.push_str("userns-test: no test skipped\n");
    } else if skipped == 0 {
        // Unavailable abilities no test was skipped for (an #[in_userns]
        // test run as the privileged caller): their causes, not "0 skipped".
        out.push_str("userns-test: no test skipped; the unavailable abilities, by cause:\n");
        causes.write_blocks(&mut out, &|s| paint.wrap("33", s));
    } else {
        out.push_str(&format!("userns-test: {skipped} skipped, by cause:\n"));
        causes.write_blocks(&mut out, &|s| paint.wrap("33", s));
    }
    w.write_all(out.as_bytes())
}
