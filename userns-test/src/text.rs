//! Text from outside the crate (test names, panic messages, a program's
//! stderr, reasons built from them) made safe for the places it is printed.
//!
//! A terminal or a CI log reads more than letters: an escape sequence
//! recolours or rewrites the screen, a bidi override reorders what is
//! shown, and a line starting with `::` is a GitHub Actions workflow
//! command (`::add-mask::`, `::error::`, `::stop-commands::`; the runner
//! trims leading blanks before it looks). So what the crate prints of
//! foreign text shows every such character as a visible escape, and never
//! lets it start a line.

use std::borrow::Cow;

/// Whether `c` would act on a terminal or change the text's layout rather
/// than show as itself: C0 and C1 controls and DEL (Rust's `is_control`),
/// bidi embeddings, overrides and isolates, and the Unicode line and
/// paragraph separators.
fn acts(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// Appends `s` with every character that acts shown as an escape.
fn push_visible(out: &mut String, s: &str) {
    for c in s.chars() {
        if acts(c) {
            push_escaped(out, c);
        } else {
            out.push(c);
        }
    }
}

/// `s` as one printable line: every character that acts on a
/// terminal, newlines included, shown as an escape (`\n`, `\u{1b}`).
/// Borrowed when there is nothing to change, which is the common case.
pub fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_visible(&mut out, s);
    Cow::Owned(out)
}

/// `s` as printable lines: newlines kept (a panic message from
/// `assert_eq!` is several lines), `\r\n` read as a newline, every other
/// character that acts on a terminal escaped, and a line that would start,
/// after blanks, with `::` preceded by a backslash, so that no line is a
/// workflow command.
pub fn lines(s: &str) -> Cow<'_, str> {
    let needs_work = s.chars().any(|c| c != '\n' && acts(c))
        || s.split('\n').any(|l| l.trim_start().starts_with("::"));
    if !needs_work {
        return Cow::Borrowed(s);
    }
    let s = s.replace("\r\n", "\n");
    let mut out = String::with_capacity(s.len() + 8);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let blanks = line.len() - line.trim_start().len();
        let (indent, rest) = line.split_at(blanks);
        // Blanks that act (a tab is one) are escaped all the same.
        push_visible(&mut out, indent);
        if rest.starts_with("::") {
            out.push('\\');
        }
        push_visible(&mut out, rest);
    }
    Cow::Owned(out)
}

/// `s` cut to at most `limit` bytes (at a character boundary), with a note
/// of how much was cut and where the whole text is (`whole_in`): a
/// failure message of megabytes (an `assert_eq!` on large vectors) kept
/// in a record or a report.
pub fn cut<'a>(s: &'a str, limit: usize, whole_in: &str) -> Cow<'a, str> {
    if s.len() <= limit {
        return Cow::Borrowed(s);
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}\n[userns-test: cut here; {} more bytes are in {whole_in}]",
        &s[..end],
        s.len() - end
    ))
}

/// Whether what is printed on stderr is painted when no one said: a
/// terminal, without `NO_COLOR` (or with it empty).
pub fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// What std's panic hook prints, for a panic of the test `name` (the
/// thread is named after the test whichever thread ran it), with the
/// message as [`lines`]; and whether a backtrace was captured and added
/// (`RUST_BACKTRACE`).
pub(crate) fn panic_report(name: &str, location: &str, message: &str) -> (String, bool) {
    let mut text = format!(
        "\nthread '{}' panicked at {location}:\n{}\n",
        one_line(name),
        lines(message)
    );
    let backtrace = std::backtrace::Backtrace::capture();
    let captured = backtrace.status() == std::backtrace::BacktraceStatus::Captured;
    if captured {
        let full = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v == "full");
        let whole = backtrace.to_string();
        let shown = if full { whole } else { short_backtrace(&whole) };
        text.push_str(&format!("stack backtrace:\n{shown}\n"));
    }
    (text, captured)
}

/// A captured backtrace as std's hook prints it unless `RUST_BACKTRACE=full`:
/// only the frames between the panic machinery
/// (`__rust_end_short_backtrace`, with this crate's hook above it) and the
/// thread's start (`__rust_begin_short_backtrace`), numbered from 0, and
/// std's note. Unchanged where neither marker is found.
pub(crate) fn short_backtrace(whole: &str) -> String {
    // Frames: a line `  N: symbol`, then its `at file:line` lines.
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in whole.lines() {
        let t = line.trim_start();
        let is_header = t
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match frames.last_mut() {
            Some(frame) if !is_header => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let has = |f: &Vec<&str>, marker: &str| f.first().is_some_and(|h| h.contains(marker));
    let start = frames
        .iter()
        .position(|f| has(f, "__rust_end_short_backtrace"))
        .map_or(0, |i| i + 1);
    let end = frames
        .iter()
        .position(|f| has(f, "__rust_begin_short_backtrace"))
        .unwrap_or(frames.len());
    if (start == 0 && end == frames.len()) || start >= end {
        return whole.to_owned();
    }
    let mut out = String::new();
    for (n, frame) in frames[start..end].iter().enumerate() {
        for (i, line) in frame.iter().enumerate() {
            if i == 0 {
                let (_, symbol) = line.trim_start().split_once(": ").unwrap_or(("", line));
                out.push_str(&format!("{n:>4}: {symbol}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str(
        "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
    );
    out
}

/// A panic's message: its `String` or `&str` payload, as std prints it
/// (`Box<dyn Any>` for any other payload).
pub(crate) fn panic_payload(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("Box<dyn Any>")
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-11-29T18:04:05.123Z`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(std::time::Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    /// Our hook's own frames and the thread's start are cut, as std's hook
    /// cuts them; a backtrace without the markers is left whole.
    #[test]
    fn short_backtraces_start_at_the_panic() {
        let whole = "   0: userns_test::text::panic_report
             at ./userns-test/src/text.rs:122:21
   1: std::sys::backtrace::__rust_end_short_backtrace::<F, !>
             at /rustc/x/library/std/src/sys/backtrace.rs:182:18
   2: __rustc::rust_begin_unwind
   3: suite::my_test
             at ./tests/suite.rs:7:5
   4: std::sys::backtrace::__rust_begin_short_backtrace
   5: std::thread::start
";
        assert_eq!(
            super::short_backtrace(whole),
            "   0: __rustc::rust_begin_unwind\n   1: suite::my_test\n             at \
             ./tests/suite.rs:7:5\nnote: Some details are omitted, run with \
             `RUST_BACKTRACE=full` for a verbose backtrace."
        );
        let plain = "   0: main\n   1: start\n";
        assert_eq!(super::short_backtrace(plain), plain);
    }

    use super::*;

    #[test]
    fn rfc3339_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_764_439_445_123);
        assert_eq!(rfc3339(t), "2025-11-29T18:04:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(one_line("needs net: EPERM (1)"), Cow::Borrowed(_)));
        assert!(matches!(lines("a\nb"), Cow::Borrowed(_)));
        assert_eq!(one_line("héllo ✓ 名前"), "héllo ✓ 名前");
    }

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(
            one_line("a\nb\r\tc\x1b[31md\u{7f}\u{9b}"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}\\u{9b}"
        );
        assert_eq!(one_line("\u{202e}evil\u{2066}"), "\\u{202e}evil\\u{2066}");
        assert_eq!(one_line("x\u{2028}y"), "x\\u{2028}y");
    }

    #[test]
    fn no_line_is_a_workflow_command() {
        let hostile = "boom\n::set-env name=X::1\n  \t::error::bad\r\nok";
        let safe = lines(hostile);
        for line in safe.split('\n') {
            assert!(!line.trim_start().starts_with("::"), "{line:?}");
        }
        assert_eq!(safe, "boom\n\\::set-env name=X::1\n  \\t\\::error::bad\nok");
        assert!(!one_line(hostile).contains('\n'));
    }
}
