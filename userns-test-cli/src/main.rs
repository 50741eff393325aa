//! The `userns-test` command.
//!
//! ```text
//! userns-test doctor [--json] [--only LIST] [--require LIST]
//! userns-test run [--] COMMAND [ARGS...]
//! userns-test nextest [ARGS...]
//! userns-test finish [--exit-code N] [--nextest-junit PATH]
//! userns-test merge REPORT.json... [--format markdown|json] [--fail-on-never-ran] [--keep-shards]
//! userns-test apparmor-profile BINARY
//! ```
//!
//! Exit codes: 0 success; 1 a `--require`d ability is missing, or (merge
//! `--fail-on-never-ran`) a test ran on no runner; 2 bad arguments, a
//! malformed environment variable, a report that cannot be read or
//! written; `run`, `nextest` and `finish --exit-code` end with the test
//! command's status.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

mod merge;
mod report;
mod wrap;
use report::FinishOptions;
use userns_test::__cli::Destinations;
use userns_test::__cli::RootCauses;
use userns_test::__cli::one_line;
use userns_test::{Ability, HostFacts, Settings, Verdict, probe_with};

/// `USERNS_TEST_CANCEL_GRACE_MS`
const GRACE_VAR: &str = "USERNS_TEST_CANCEL_GRACE_MS";

const USAGE: &str = "\
userns-test: what this host lets tests do with Linux user namespaces

USAGE:
    userns-test doctor [--json] [--only LIST] [--require LIST]
    userns-test run [--] COMMAND [ARGS...]
    userns-test nextest [ARGS...]
    userns-test finish [--exit-code N] [--nextest-junit PATH]
    userns-test merge REPORT.json... [--format markdown|json] [--fail-on-never-ran] [--keep-shards]
    userns-test apparmor-profile BINARY

COMMANDS:
    doctor             probe every ability; print its verdict, cause and remedy
    run                run a test command (cargo test, cargo nextest run), then
                       write its reports, complete, with crashed tests named
    nextest            `run -- cargo nextest run ARGS...`
    finish             complete the reports of a test command that already ran
    merge              put many runners' JSON reports into one tests x runners matrix
    apparmor-profile   print an AppArmor profile letting BINARY create user namespaces

`userns-test COMMAND --help` describes each.

EXIT CODES:
    0  done
    1  doctor: a --require'd ability is missing; merge: --fail-on-never-ran
       and a test ran on no runner
    2  bad arguments, a malformed USERNS_TEST_* variable, or a report that
       cannot be read or written
    run, nextest and finish --exit-code end with the test command's status
";

const RUN_USAGE: &str = "\
userns-test run: run a test command, then write its reports, complete

USAGE:
    userns-test run [--] COMMAND [ARGS...]
    userns-test nextest [ARGS...]        (= run -- cargo nextest run ARGS...)

Runs COMMAND (`cargo test ...`, `cargo nextest run ...`) with the report
variables it finds (USERNS_TEST_REPORT_JSON, USERNS_TEST_JUNIT,
GITHUB_STEP_SUMMARY, GITHUB_ACTIONS). Its test processes only record what
happens, in a directory private to this user; after COMMAND ends, this
command writes every report once: each test's outcome, a test whose process
died as crashed (with the signal nextest saw, which it has nextest record),
a test never started as not run, one step summary section per binary and
one annotation per cause of skips. Then it prints the run's summary on
stderr.

Cancelled (SIGTERM, SIGINT, SIGHUP, SIGQUIT), it passes the signal on to
COMMAND and every process it started (a signal from the terminal already
reached them), waits up to USERNS_TEST_CANCEL_GRACE_MS (5000 unless set) for
them to end, kills what is left, and writes the reports: the tests that were
running are crashed, those not started did not run. A second signal kills at
once. Nothing of COMMAND's process tree is left running.

A second run aimed at the same report while this one is going is refused
(exit 2), naming this one.

EXIT CODES:
    COMMAND's status (128 + N when a signal N ended it); 1 when COMMAND
    exited 0 but the report holds a failed, crashed or unknown test (a test
    that called std::process::exit(0)); 128 + N when signal N cancelled the
    run; 2 when COMMAND cannot be started, another run of the same report is
    going, or the reports cannot be written (after COMMAND succeeded)
";

const FINISH_USAGE: &str = "\
userns-test finish: complete the reports of a test run that already ended

USAGE:
    userns-test finish [--exit-code N] [--nextest-junit PATH] [--quiet]

For a test command run without `userns-test run` (nextest has no hook at the
end of a run): with the same report variables as the run, it settles every
test that has no outcome yet (its process died: crashed; never started:
not run), writes the JSON and JUnit reports, the step summary sections and
annotations not written yet, and prints the run's summary on stderr.

It finishes the newest run recorded for these reports, once: a run finished
already, or (in CI) recorded by another job, is not this job's. Then, as
when no run was recorded at all (the build failed), it writes a report of no
tests that says why, rather than leave an earlier run's report in place.

OPTIONS:
    --exit-code N         the test command's exit status: recorded in the
                          report, and this command exits with it
    --nextest-junit PATH  nextest's own JUnit of the run, for the signal of a
                          crashed test
    --quiet               no summary on stderr
    -h, --help            print this help

EXIT CODES:
    N with --exit-code N (0 if not given) once the reports are written, but 1
    for N = 0 when the report holds a failed, crashed or unknown test; with no
    run of this job to finish, N if not 0, else 2; 2 when the run is still
    going or a report cannot be written
";

const DOCTOR_USAGE: &str = "\
userns-test doctor: this host's facts and every ability's verdict, cause and remedy

USAGE:
    userns-test doctor [--json] [--only LIST] [--require LIST]

OPTIONS:
    --json            print the host facts and verdicts as JSON (the objects of
                      the report schema, userns-test/report/2)
    --only LIST       probe only these abilities (comma-separated)
    --require LIST    exit 1 unless these abilities (or `all`) are available:
                      a CI preflight step
    -h, --help        print this help

EXIT CODES:
    0  done, and every required ability is available
    1  a required ability is missing
    2  bad arguments or a malformed USERNS_TEST_* variable
";

const MERGE_USAGE: &str = "\
userns-test merge: many runners' reports as one tests x runners matrix

USAGE:
    userns-test merge REPORT.json... [--format markdown|json] [--fail-on-never-ran] [--keep-shards]

Each REPORT.json is a report written with USERNS_TEST_REPORT_JSON (schema
userns-test/report/2). The Markdown opens with the verdict (`6 tests x 4
runners: 1 failed, 4 skipped (2 causes)`), then each failing test with where
it failed, passed or was skipped and its message, then the skips by cause
(C1..Cn: the cause, the runners, the fix; its abilities and tests folded),
then the tests x runners matrix, its totals and a legend, the abilities and
the runners. One column per runner, labelled by its runner
(USERNS_TEST_RUNNER, else the CI job, else the host name): the reports of one
runner (the shards of a partitioned run, `cargo nextest run --partition`) are
one column, where a test that ran in any shard ran, a skip is counted once,
and shards that disagree (one passed, one failed, one skipped what another
ran) are shown as a conflict. Cells: passed, FAILED, CRASHED, skipped Cn,
ignored, filtered out, not run, unknown, CONFLICT, or — where no report of
the runner has the test.

OPTIONS:
    --format markdown|json   output format (default markdown)
    --fail-on-never-ran      exit 1 when a test ran on no runner although one
                             was to run it (skipped or not run wherever it was
                             not filtered out); #[ignore]d tests never count
    --keep-shards            one column per report, not per runner (a second
                             report of a runner is labelled `#2`)
    -h, --help               print this help

EXIT CODES:
    0  merged
    1  --fail-on-never-ran, and a test was skipped or not run on every runner
    2  bad arguments, or a report missing, unreadable, empty, not JSON, or of
       another schema (the error names the file, and line:column for JSON)
";

const APPARMOR_USAGE: &str = "\
userns-test apparmor-profile: an AppArmor 4 profile granting `userns,` to one binary

USAGE:
    userns-test apparmor-profile BINARY

On Ubuntu 23.10+ (kernel.apparmor_restrict_unprivileged_userns=1) an
unconfined process may not use the capabilities of a user namespace it
creates. This prints a profile that lifts that for BINARY alone (the narrow
fix; the sysctl is the host-wide one), with the commands to install and load
it. BINARY is made absolute; a pattern with `*` (e.g.
target/debug/deps/jailer-*, since cargo's test binaries change name with each
build) is kept as written.

EXIT CODES:
    0  printed
    2  bad arguments, or BINARY does not exist
";

/// The JSON document of `doctor --json`.
#[derive(Serialize)]
struct DoctorReport {
    schema: &'static str,
    host: serde_json::Value,
    abilities: Vec<serde_json::Value>,
}

struct DoctorArgs {
    json: bool,
    only: Option<BTreeSet<Ability>>,
    require: BTreeSet<Ability>,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("userns-test: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut parser = lexopt::Parser::from_env();
    match parser.next().map_err(|e| e.to_string())? {
        Some(lexopt::Arg::Value(cmd)) if cmd == "doctor" => doctor(parse_doctor(parser)?),
        Some(lexopt::Arg::Value(cmd)) if cmd == "merge" => merge_reports(parser),
        Some(lexopt::Arg::Value(cmd)) if cmd == "finish" => finish(parser),
        Some(lexopt::Arg::Value(cmd)) if cmd == "run" => run_wrapped(parser, false),
        Some(lexopt::Arg::Value(cmd)) if cmd == "nextest" => run_wrapped(parser, true),
        Some(lexopt::Arg::Value(cmd)) if cmd == "apparmor-profile" => apparmor_profile(parser),
        Some(lexopt::Arg::Short('h')) | Some(lexopt::Arg::Long("help")) => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(lexopt::Arg::Value(cmd)) => Err(format!(
            "unknown command `{}`; try `userns-test --help`",
            cmd.to_string_lossy()
        )),
        Some(other) => Err(format!("{}; try `userns-test --help`", other.unexpected())),
        None => Err(format!("a command is needed\n\n{USAGE}")),
    }
}

fn merge_reports(mut parser: lexopt::Parser) -> Result<ExitCode, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut files: Vec<PathBuf> = Vec::new();
    let mut json = false;
    let mut fail_on_never_ran = false;
    let mut keep_shards = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("format") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                json = match v.to_string_lossy().as_ref() {
                    "json" => true,
                    "markdown" => false,
                    other => {
                        return Err(format!("--format: `{other}` is not `markdown` or `json`"));
                    }
                };
            }
            Long("fail-on-never-ran") => fail_on_never_ran = true,
            Long("keep-shards") => keep_shards = true,
            Long("help") | Short('h') => {
                print!("{MERGE_USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            Value(file) => files.push(file.into()),
            other => {
                return Err(format!(
                    "{}; try `userns-test merge --help`",
                    other.unexpected()
                ));
            }
        }
    }
    if files.is_empty() {
        return Err("merge: no report given; try `userns-test merge --help`".into());
    }
    let mut reports = Vec::new();
    for file in files {
        let report = merge::load(&file).map_err(|e| e.to_string())?;
        reports.push((file, report));
    }
    let matrix = merge::merge(&reports, keep_shards);
    if json {
        let text = serde_json::to_string_pretty(&matrix).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", matrix.markdown());
    }
    if fail_on_never_ran {
        if !matrix.ignored.is_empty() {
            eprintln!(
                "userns-test: not counted, #[ignore]d: {}",
                one_line(&matrix.ignored.join(", "))
            );
        }
        if !matrix.never_ran.is_empty() {
            eprintln!(
                "userns-test: {} test{} skipped or not run on every runner (--fail-on-never-ran): \
                 {}",
                matrix.never_ran.len(),
                if matrix.never_ran.len() == 1 { "" } else { "s" },
                one_line(&matrix.never_ran.join(", "))
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn finish(mut parser: lexopt::Parser) -> Result<ExitCode, String> {
    use lexopt::Arg::{Long, Short};
    let mut options = FinishOptions::default();
    let mut quiet = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("exit-code") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let text = v.to_string_lossy();
                options.exit_code = Some(
                    text.trim()
                        .parse()
                        .ok()
                        .filter(|c| (0..=255).contains(c))
                        .ok_or_else(|| {
                            format!("--exit-code: `{text}` is not an exit status (0 to 255)")
                        })?,
                );
            }
            Long("nextest-junit") => {
                options.nextest_junit = Some(parser.value().map_err(|e| e.to_string())?.into());
            }
            Long("quiet") => quiet = true,
            Long("help") | Short('h') => {
                print!("{FINISH_USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            other => {
                return Err(format!(
                    "{}; try `userns-test finish --help`",
                    other.unexpected()
                ));
            }
        }
    }
    let dest = destinations()?;
    let code = wrap::finish_and_report(&dest, &options, quiet, Vec::new())?;
    Ok(wrap::exit_code(code))
}

/// The report destinations of the environment; a malformed one is an
/// error.
fn destinations() -> Result<Destinations, String> {
    let dest = Destinations::from_env();
    match dest.problems.first() {
        Some(p) => Err(p.problem.clone()),
        None => Ok(dest),
    }
}

/// `USERNS_TEST_CANCEL_GRACE_MS`: how long a cancelled run's processes
/// may take to end before they are killed.
fn cancel_grace() -> Result<Duration, String> {
    use userns_test::__cli::{DurationUnit, duration};
    match std::env::var_os(GRACE_VAR) {
        None => Ok(wrap::DEFAULT_GRACE),
        Some(v) => duration(
            GRACE_VAR,
            &v.to_string_lossy(),
            DurationUnit::Millis,
            0,
            600_000,
        )
        .map_err(|e| e.to_string()),
    }
}

fn run_wrapped(mut parser: lexopt::Parser, nextest: bool) -> Result<ExitCode, String> {
    let mut command: Vec<OsString> = if nextest {
        vec!["cargo".into(), "nextest".into(), "run".into()]
    } else {
        Vec::new()
    };
    let mut raw = parser.raw_args().map_err(|e| e.to_string())?;
    let first = raw.peek().map(|a| a.to_owned());
    match first.as_ref().and_then(|a| a.to_str()) {
        Some("-h" | "--help") => {
            print!("{RUN_USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Some("--") if !nextest => {
            raw.next();
        }
        _ => {}
    }
    // Arguments are bytes: a path that is not UTF-8 passes as it is.
    command.extend(raw);
    if command.is_empty() {
        return Err("run: which command? e.g. `userns-test run -- cargo test`".into());
    }
    let dest = destinations()?;
    let grace = cancel_grace()?;
    let wrapped =
        userns_test::__cli::begin_wrapped_run(&dest, &command).map_err(|e| e.to_string())?;
    let mut args = command.clone();
    // `cargo nextest run`: have nextest write its JUnit where `finish`
    // reads the signal of a crashed test.
    let word = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    let is_nextest_run = word(0).rsplit('/').next() == Some("cargo")
        && word(1) == "nextest"
        && matches!(word(2), "run" | "r");
    if let Some(config) = &wrapped.nextest_config
        && is_nextest_run
    {
        let mut flag = OsString::from("--tool-config-file=userns-test:");
        flag.push(config.as_os_str());
        args.insert(3, flag);
    }
    let run_dir = wrapped.run_dir.clone().into_os_string();
    let ended = wrap::run_command(&args, &[(userns_test::__cli::RUN_DIR_VAR, &run_dir)], grace)?;
    let mut notes = Vec::new();
    if let Some(cancelled) = &ended.cancelled {
        let killed = if cancelled.killed {
            format!(
                ", and those still running {} s later were killed",
                grace.as_secs_f64()
            )
        } else {
            String::new()
        };
        notes.push(format!(
            "the run was cancelled by {}: it was passed on to the test command's \
             processes{killed}; tests still running then crashed, those not started did not run",
            cancelled.name
        ));
    }
    let code = match ended.cancelled {
        Some(cancelled) => 128 + cancelled.signal,
        None => ended.code,
    };
    let options = FinishOptions {
        exit_code: Some(code),
        run_dir: Some(wrapped.run_dir.clone()),
        nextest_junit: None,
        notes,
    };
    // A refusal met when the run began (the records kept elsewhere) is said
    // with the reports' errors, once, whatever they share.
    match wrap::finish_and_report(
        &dest,
        &options,
        false,
        wrapped.warning.into_iter().collect(),
    ) {
        Ok(status) => Ok(wrap::exit_code(status)),
        Err(e) => {
            eprintln!("userns-test: {e}");
            Ok(wrap::exit_code(if code == 0 { 2 } else { code }))
        }
    }
}

fn apparmor_profile(mut parser: lexopt::Parser) -> Result<ExitCode, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut binary: Option<PathBuf> = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("help") | Short('h') => {
                print!("{APPARMOR_USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) if binary.is_none() => binary = Some(v.into()),
            other => {
                return Err(format!(
                    "{}; try `userns-test apparmor-profile --help`",
                    other.unexpected()
                ));
            }
        }
    }
    let binary = binary
        .ok_or("apparmor-profile: which BINARY? try `userns-test apparmor-profile --help`")?;
    let text = binary.to_string_lossy().into_owned();
    let path = if text.contains('*') {
        let absolute = if binary.is_absolute() {
            binary
        } else {
            std::env::current_dir()
                .map_err(|e| format!("the current directory: {e}"))?
                .join(binary)
        };
        absolute.to_string_lossy().into_owned()
    } else {
        std::fs::canonicalize(&binary)
            .map_err(|e| format!("apparmor-profile: {text}: {e}"))?
            .to_string_lossy()
            .into_owned()
    };
    print!("{}", userns_test::diagnosis::apparmor_profile(&path));
    Ok(ExitCode::SUCCESS)
}

fn parse_doctor(mut parser: lexopt::Parser) -> Result<DoctorArgs, String> {
    use lexopt::Arg::Long;
    let mut args = DoctorArgs {
        json: false,
        only: None,
        require: BTreeSet::new(),
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("json") => args.json = true,
            Long("only") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                args.only = Some(ability_list("--only", &v.to_string_lossy())?);
            }
            Long("require") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                args.require = ability_list("--require", &v.to_string_lossy())?;
            }
            Long("help") | lexopt::Arg::Short('h') => {
                print!("{DOCTOR_USAGE}");
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "{}; try `userns-test doctor --help`",
                    other.unexpected()
                ));
            }
        }
    }
    Ok(args)
}

fn ability_list(option: &str, value: &str) -> Result<BTreeSet<Ability>, String> {
    if value.trim() == "all" {
        return Ok(Ability::ALL.into_iter().collect());
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<Ability>().map_err(|e| format!("{option}: {e}")))
        .collect()
}

fn doctor(args: DoctorArgs) -> Result<ExitCode, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let facts = HostFacts::get();
    // The vocabulary, and the parameterised abilities asked for by name.
    let mut selected: Vec<Ability> = Ability::ALL
        .into_iter()
        .filter(|a| args.only.as_ref().is_none_or(|o| o.contains(a)) || args.require.contains(a))
        .collect();
    selected.extend(
        args.only
            .iter()
            .flatten()
            .chain(&args.require)
            .filter(|a| a.index().is_none()),
    );
    selected.sort();
    selected.dedup();
    // Probed in parallel: the external probes (bwrap, newuidmap) wait on
    // programs while the system-call probes run.
    let options = &settings.probe;
    // Where no thread can be created (RLIMIT_NPROC reached), the probe
    // runs on this thread and reports what stops its own child.
    let verdicts: Vec<Verdict> = std::thread::scope(|s| {
        let handles: Vec<_> = selected
            .iter()
            .map(|&a| {
                let spawned = std::thread::Builder::new()
                    .spawn_scoped(s, move || probe_with(a, options))
                    .map_err(|_| a);
                (a, spawned)
            })
            .collect();
        handles
            .into_iter()
            .map(|(a, h)| match h {
                Ok(h) => h.join().map_err(|_| format!("the {a} probe panicked")),
                Err(a) => Ok(probe_with(a, options)),
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    if args.json {
        let report = DoctorReport {
            schema: "userns-test/doctor/1",
            host: report::model::facts_json(facts),
            abilities: verdicts.iter().map(report::verdict_json).collect(),
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print_text(facts, &verdicts);
    }
    let missing: Vec<&str> = verdicts
        .iter()
        .filter(|v| args.require.contains(&v.ability) && !v.is_available())
        .map(|v| v.ability.name())
        .collect();
    if missing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("userns-test: required but missing: {}", missing.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// The host, one row per ability (an unavailable one refers to its root
/// cause by number), then each root cause once with its fix.
fn print_text(facts: &HostFacts, verdicts: &[Verdict]) {
    let mut causes = RootCauses::of_verdicts(verdicts);
    causes.sort();
    let mut out = format!("host: {}\n", facts.summary());
    let width = verdicts
        .iter()
        .map(|v| v.ability.name().len())
        .max()
        .unwrap_or(0);
    for v in verdicts {
        let cell = match v.reason() {
            None => v.yes_with_note(),
            Some(r) => format!("no   {}{}", one_line(&r.short()), causes.reference(r)),
        };
        out.push_str(&format!("  {:width$}  {cell}\n", v.ability.name()));
    }
    if !causes.is_empty() {
        out.push_str("causes:\n");
        causes.write_blocks(&mut out, &|s| s.to_owned());
    }
    print!("{out}");
}
