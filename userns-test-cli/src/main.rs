//! The `userns-test` command.
//!
//! ```text
//! userns-test doctor [--json] [--only LIST] [--require LIST]
//! userns-test merge REPORT.json... [--format markdown|json] [--fail-on-never-ran]
//! userns-test apparmor-profile BINARY
//! ```
//!
//! Exit codes: 0 success; 1 a `--require`d ability is missing, or (merge
//! `--fail-on-never-ran`) a test ran on no runner; 2 bad arguments, a
//! malformed environment variable, or a report that cannot be read.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

mod merge;
use userns_test::{Ability, HostFacts, Settings, Verdict, probe_with};

const USAGE: &str = "\
userns-test: what this host lets tests do with Linux user namespaces

USAGE:
    userns-test doctor [--json] [--only LIST] [--require LIST]
    userns-test merge REPORT.json... [--format markdown|json] [--fail-on-never-ran]
    userns-test apparmor-profile BINARY

COMMANDS:
    doctor             probe every ability; print its verdict, cause and remedy
    merge              put many runners' JSON reports into one tests x runners matrix
    apparmor-profile   print an AppArmor profile letting BINARY create user namespaces

`userns-test COMMAND --help` describes each.

EXIT CODES:
    0  done
    1  doctor: a --require'd ability is missing; merge: --fail-on-never-ran
       and a test ran on no runner
    2  bad arguments, a malformed USERNS_TEST_* variable, or a report that
       cannot be read
";

const DOCTOR_USAGE: &str = "\
userns-test doctor: this host's facts and every ability's verdict, cause and remedy

USAGE:
    userns-test doctor [--json] [--only LIST] [--require LIST]

OPTIONS:
    --json            print the host facts and verdicts as JSON (the objects of
                      the report schema, userns-test/report/1)
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
    userns-test merge REPORT.json... [--format markdown|json] [--fail-on-never-ran]

Each REPORT.json is a report written with USERNS_TEST_REPORT_JSON (schema
userns-test/report/1). One column per report, labelled by its runner
(USERNS_TEST_RUNNER, else the CI job, else the host name); two reports of one
runner are both kept, the second labelled `#2`. Cells: passed, FAILED,
skipped [n] (n: the footnoted reason), ignored, filtered out, not run, or —
where the report lacks the test. Then the tests that ran on no runner, and
each runner's abilities.

OPTIONS:
    --format markdown|json   output format (default markdown)
    --fail-on-never-ran      exit 1 when a test ran on no runner
    -h, --help               print this help

EXIT CODES:
    0  merged
    1  --fail-on-never-ran, and a test ran on no runner
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
struct DoctorReport<'a> {
    schema: &'static str,
    host: &'a HostFacts,
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
    let matrix = merge::merge(&reports);
    if json {
        let text = serde_json::to_string_pretty(&matrix).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", matrix.markdown());
    }
    if fail_on_never_ran && !matrix.never_ran.is_empty() {
        eprintln!(
            "userns-test: {} test(s) ran on no runner: {}",
            matrix.never_ran.len(),
            matrix.never_ran.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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
    let selected: Vec<Ability> = Ability::ALL
        .into_iter()
        .filter(|a| args.only.as_ref().is_none_or(|o| o.contains(a)) || args.require.contains(a))
        .collect();
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
            host: facts,
            abilities: verdicts
                .iter()
                .map(userns_test::report::verdict_json)
                .collect(),
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

fn print_text(facts: &HostFacts, verdicts: &[Verdict]) {
    println!("host: {}", facts.summary());
    let width = verdicts
        .iter()
        .map(|v| v.ability.name().len())
        .max()
        .unwrap_or(0);
    for v in verdicts {
        match v.reason() {
            None => println!("  {:width$}  {}", v.ability.name(), v.yes_with_note()),
            Some(r) => {
                println!("  {:width$}  no   {}", v.ability.name(), r.short());
                println!("  {:width$}       cause: {}", "", r.cause);
                println!("  {:width$}       fix:   {}", "", r.remedy);
            }
        }
    }
}
