//! The summary a person reads after a run: the host, the ability matrix of
//! what the suite needed, and the skipped tests grouped by reason (in the
//! manner of `pytest -rs`). Written to stderr, after libtest's own summary
//! line, which stays the last line on stdout for tools that parse it.

use std::io::{self, IsTerminal, Write};

use libtest_mimic::{Arguments, ColorSetting};

use super::{RunRecord, TestOutcome};
use crate::HostFacts;
use crate::policy::Unmet;
use crate::text::one_line;

/// How many test names a reason lists before "and N more".
const NAMES_SHOWN: usize = 6;

/// Colour when libtest's `--color` says so, or on a terminal without
/// `NO_COLOR`.
pub(super) fn use_color(args: &Arguments) -> bool {
    match args.color {
        Some(ColorSetting::Always) => true,
        Some(ColorSetting::Never) => false,
        _ => {
            io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
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

/// Writes the summary of `record`.
pub fn write_summary(w: &mut impl Write, record: &RunRecord, color: bool) -> io::Result<()> {
    let paint = Paint(color);
    let facts = HostFacts::get();
    writeln!(w)?;
    writeln!(w, "userns-test: host: {}", facts.summary())?;
    if let Some(e) = &record.config_error {
        writeln!(
            w,
            "userns-test: {}",
            paint.wrap("31", &format!("configuration error: {}", one_line(e)))
        )?;
    }

    let needed = record.verdicts.len() + record.denied.len();
    if needed > 0 {
        writeln!(w, "userns-test: abilities this run needed:")?;
        let width = record
            .verdicts
            .iter()
            .map(|v| v.ability.name().len())
            .chain(record.denied.iter().map(|a| a.name().len()))
            .max()
            .unwrap_or(0);
        let mut rows: Vec<(crate::Ability, String)> = record
            .verdicts
            .iter()
            .map(|v| {
                let cell = match v.reason() {
                    None => paint.wrap("32", &v.yes_with_note()),
                    Some(r) => format!(
                        "{} {}",
                        paint.wrap("31", "no "),
                        one_line(&format!("{}; {}", r.short(), r.cause))
                    ),
                };
                (v.ability, cell)
            })
            .collect();
        rows.extend(record.denied.iter().map(|&a| {
            (
                a,
                format!("{} denied by USERNS_TEST_DENY", paint.wrap("33", "no ")),
            )
        }));
        rows.sort_by_key(|(a, _)| *a);
        for (ability, cell) in rows {
            writeln!(w, "  {:width$}  {cell}", ability.name())?;
        }
    }

    // Grouped by the whole reason, remedy included, so that two causes
    // with different fixes never share a group. A suite has few distinct
    // reasons: scanning them compares structures, where keying a map by
    // the text formatted every skipped test's whole reason.
    let mut groups: Vec<(&Unmet, Vec<&str>)> = Vec::new();
    for t in &record.tests {
        if let TestOutcome::Skipped { unmet } = &t.outcome {
            match groups.iter_mut().find(|(u, _)| *u == unmet) {
                Some((_, names)) => names.push(&t.name),
                None => groups.push((unmet, vec![&t.name])),
            }
        }
    }
    let skipped: usize = groups.iter().map(|(_, names)| names.len()).sum();
    if skipped == 0 {
        writeln!(w, "userns-test: no test skipped")?;
        return Ok(());
    }
    writeln!(w, "userns-test: {skipped} skipped, by reason:")?;
    groups.sort_by(|a, b| {
        b.1.len()
            .cmp(&a.1.len())
            .then_with(|| a.0.brief().cmp(&b.0.brief()))
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    for (unmet, names) in groups {
        writeln!(
            w,
            "  {} {}",
            paint.wrap("33", &format!("SKIPPED [{}]", names.len())),
            one_line(&unmet.brief())
        )?;
        let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).copied().collect();
        let more = names.len().saturating_sub(NAMES_SHOWN);
        let tail = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        writeln!(w, "      {}{tail}", one_line(&shown.join(", ")))?;
        for (ability, reason) in &unmet.reasons {
            let which = if unmet.reasons.len() == 1 {
                String::new()
            } else {
                format!(" ({ability})")
            };
            writeln!(
                w,
                "      cause{which}: {}",
                one_line(&reason.cause.to_string())
            )?;
            writeln!(w, "      fix{which}: {}", one_line(&reason.remedy))?;
        }
    }
    Ok(())
}
