//! The command line, as libtest-mimic reads it, without building its
//! parser where the line is one of the plain shapes test runners use.
//!
//! libtest-mimic parses its arguments with clap: building that parser
//! costs a debug test binary about 0.8 ms, the largest single cost of a
//! process that runs one test (nextest starts one per test, as
//! `NAME --exact --nocapture`, and lists with `--list --format terse`).
//! Lines made only of libtest's plain flags are read here into the same
//! `Arguments` clap would make (a test holds the two equal); anything else
//! (`--help`, `-Z`, `--logfile`, `--`, a repeated flag, a value that does
//! not parse, bytes that are not UTF-8) goes to clap, with its messages.

use libtest_mimic::{Arguments, ColorSetting, FormatSetting};

/// This process's arguments.
pub(super) fn from_env() -> Arguments {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    simple(&args).unwrap_or_else(Arguments::from_args)
}

/// `args` (without the program name) read as clap would read them, or
/// `None` where the line is not one of the plain shapes.
pub(super) fn simple(args: &[std::ffi::OsString]) -> Option<Arguments> {
    let mut out = Arguments::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let word = word.to_str()?;
        if !word.starts_with('-') {
            if out.filter.is_some() {
                return None;
            }
            out.filter = Some(word.to_owned());
            continue;
        }
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (word, None),
        };
        // Each flag once (clap's rules for repeats are its own), but
        // `--skip`, which may repeat.
        if flag != "--skip" {
            if seen.contains(&flag) {
                return None;
            }
            seen.push(flag);
        }
        let mut value = || -> Option<&str> {
            match inline {
                Some(v) => Some(v),
                None => words.next()?.to_str(),
            }
        };
        match flag {
            "--exact" | "--nocapture" | "--list" | "--ignored" | "--include-ignored"
            | "--show-output" | "--quiet" | "-q"
                if inline.is_some() =>
            {
                return None;
            }
            "--exact" => out.exact = true,
            "--nocapture" => out.nocapture = true,
            "--list" => out.list = true,
            "--ignored" => out.ignored = true,
            "--include-ignored" => out.include_ignored = true,
            "--show-output" => out.show_output = true,
            "--quiet" | "-q" => out.quiet = true,
            "--format" => {
                out.format = Some(match value()? {
                    "pretty" => FormatSetting::Pretty,
                    "terse" => FormatSetting::Terse,
                    "json" => FormatSetting::Json,
                    _ => return None,
                })
            }
            "--color" => {
                out.color = Some(match value()? {
                    "auto" => ColorSetting::Auto,
                    "always" => ColorSetting::Always,
                    "never" => ColorSetting::Never,
                    _ => return None,
                })
            }
            "--test-threads" => {
                let v = value()?;
                // clap reads a usize from decimal digits only.
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                out.test_threads = Some(v.parse().ok()?);
            }
            "--skip" => {
                let v = value()?;
                if v.starts_with('-') {
                    return None;
                }
                out.skip.push(v.to_owned());
            }
            _ => return None,
        }
    }
    // clap refuses `--quiet` with `--format`.
    if out.quiet && out.format.is_some() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(line: &[&str]) -> Vec<std::ffi::OsString> {
        line.iter().map(Into::into).collect()
    }

    /// Every line read here is read as clap reads it.
    #[test]
    fn plain_lines_read_as_clap_reads_them() {
        let lines: &[&[&str]] = &[
            &[],
            &["met_00000", "--exact", "--nocapture"],
            &["--exact", "a::b", "--nocapture"],
            &["--list", "--format", "terse"],
            &["--list", "--format", "terse", "--ignored"],
            &["--list", "--format=terse", "--include-ignored"],
            &[
                "net",
                "--skip",
                "slow",
                "--skip=flaky",
                "--test-threads",
                "3",
            ],
            &["--test-threads=1", "-q", "--color", "never"],
            &["--color=always", "--show-output", "--format", "pretty"],
            &["--format", "json", "name with spaces"],
            &["é::ü", "--exact"],
        ];
        for line in lines {
            let ours = simple(&os(line)).unwrap_or_else(|| panic!("{line:?} went to clap"));
            let mut full = vec!["test-binary"];
            full.extend_from_slice(line);
            let clap = Arguments::from_iter(full);
            assert_eq!(format!("{ours:?}"), format!("{clap:?}"), "{line:?}");
        }
    }

    /// Anything else goes to clap: its help, its errors, its rules.
    #[test]
    fn other_lines_go_to_clap() {
        let lines: &[&[&str]] = &[
            &["--help"],
            &["-h"],
            &["-Z", "unstable-options", "--format", "json"],
            &["--logfile", "x"],
            &["--bench"],
            &["--", "--exact"],
            &["a", "b"],
            &["--exact", "--exact"],
            &["--exact=yes"],
            &["--format", "xml"],
            &["--test-threads", "-1"],
            &["--test-threads", "+2"],
            &["--test-threads"],
            &["-q", "--format", "terse"],
            &["--skip", "--exact"],
            &["--unknown"],
        ];
        for line in lines {
            assert!(simple(&os(line)).is_none(), "{line:?} was read here");
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let bytes = vec![std::ffi::OsString::from_vec(vec![0x66, 0xff])];
            assert!(simple(&bytes).is_none());
        }
    }
}
