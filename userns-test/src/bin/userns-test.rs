//! The `userns-test` command.
//!
//! ```text
//! userns-test doctor [--json] [--only LIST] [--require LIST]
//! ```
//!
//! Exit codes: 0 success; 1 a `--require`d ability is missing; 2 bad
//! arguments or a malformed environment variable.

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde::Serialize;
use userns_test::{Ability, HostFacts, Settings, Verdict, probe_with};

const USAGE: &str = "\
userns-test: what this host lets tests do with Linux user namespaces

USAGE:
    userns-test doctor [--json] [--only LIST] [--require LIST]

COMMANDS:
    doctor    probe every ability and print its verdict, cause and remedy

OPTIONS (doctor):
    --json            print the host facts and verdicts as JSON
    --only LIST       probe only these abilities (comma-separated)
    --require LIST    exit 1 unless these abilities (or `all`) are available
    -h, --help        print this help

EXIT CODES:
    0  done (and every required ability is available)
    1  a required ability is missing
    2  bad arguments or a malformed USERNS_TEST_* variable
";

/// The JSON document of `doctor --json`.
#[derive(Serialize)]
struct DoctorReport<'a> {
    schema: &'static str,
    host: &'a HostFacts,
    abilities: &'a [Verdict],
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
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("{}; try `userns-test --help`", other.unexpected())),
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
    let verdicts: Vec<Verdict> = std::thread::scope(|s| {
        let handles: Vec<_> = selected
            .iter()
            .map(|&a| (a, s.spawn(move || probe_with(a, options))))
            .collect();
        handles
            .into_iter()
            .map(|(a, h)| h.join().map_err(|_| format!("the {a} probe panicked")))
            .collect::<Result<Vec<_>, _>>()
    })?;
    if args.json {
        let report = DoctorReport {
            schema: "userns-test/doctor/1",
            host: facts,
            abilities: &verdicts,
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
            None => {
                let note = v
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                println!("  {:width$}  yes{note}", v.ability.name());
            }
            Some(r) => {
                println!("  {:width$}  no   {}", v.ability.name(), r.short());
                println!("  {:width$}       cause: {}", "", r.cause);
                println!("  {:width$}       fix:   {}", "", r.remedy);
            }
        }
    }
}
