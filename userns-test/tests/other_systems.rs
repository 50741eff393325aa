//! userns-test off Linux, built and run here: `--cfg
//! userns_test_unsupported_os` compiles, on Linux, exactly the modules a
//! macOS or Windows build compiles (no `nix`, no `libc`, no probe), and the
//! example suite and the command built that way run as they would there:
//! every gated test skipped with one cause, the system, and one fix;
//! `USERNS_TEST_REQUIRE` failing them; the reports written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{hermetic, private_scratch, read_json, text};

const CFG: &str = "--cfg userns_test_unsupported_os";

/// The example suite's `jailer` (runner) and `plain` (libtest) binaries
/// and the `userns-test` command, built with [`CFG`] into a target
/// directory of their own (the flags differ, so nothing is shared with
/// the normal build).
fn built() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("unsupported-os")))
            .expect("the target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--message-format", "json"])
            .args(["-p", "userns-test-examples", "--tests"])
            .args(["-p", "userns-test-cli", "--bins"])
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", CFG)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .current_dir(workspace)
            .output()
            .expect("cargo build");
        assert!(
            out.status.success(),
            "building for other systems failed:\n{}",
            text(&out.stderr)
        );
        text(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .filter_map(|m| {
                let exe = m["executable"].as_str()?;
                let name = m["target"]["name"].as_str()?;
                // `--tests` builds the command's own unit tests too, as
                // an executable of the same target name.
                let command = name == "userns-test";
                (command != (m["profile"]["test"] == true)).then(|| (name.to_owned(), exe.into()))
            })
            .collect()
    })
}

fn binary(name: &str) -> &'static Path {
    built()
        .get(name)
        .unwrap_or_else(|| panic!("{name} was not built: {:?}", built()))
}

/// `userns-test run -- <binary>` with the reports asked for in `dir`.
fn run(dir: &Path, suite: &str, env: &[(&str, &str)]) -> (Output, serde_json::Value, String) {
    let json = dir.join(format!("{suite}.json"));
    let junit = dir.join(format!("{suite}.xml"));
    let mut cmd = Command::new(binary("userns-test"));
    let out = hermetic(&mut cmd)
        .arg("run")
        .arg("--")
        .arg(binary(suite))
        .env("USERNS_TEST_REPORT_JSON", &json)
        .env("USERNS_TEST_JUNIT", &junit)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("userns-test run");
    let report = read_json(&json);
    let xml = std::fs::read_to_string(&junit).unwrap();
    roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    (out, report, xml)
}

/// What every skip must carry: the one cause, and its fix.
fn assert_one_unsupported_cause(report: &serde_json::Value, stderr: &str) {
    let causes = report["root_causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{report:#}");
    assert_eq!(causes[0]["cause"]["id"], "unsupported_system", "{report:#}");
    let message = causes[0]["cause"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("user namespaces are a Linux kernel feature; this host runs Linux, but this build is one for other systems"),
        "{message}"
    );
    assert!(
        causes[0]["remedy"]
            .as_str()
            .unwrap()
            .starts_with("run these tests on a Linux runner"),
        "{report:#}"
    );
    for ability in report["abilities"].as_array().unwrap() {
        assert_eq!(ability["verdict"], "unavailable", "{ability:#}");
        assert_eq!(ability["step"]["kind"], "check_system", "{ability:#}");
    }
    // Said once per run, whatever number of abilities and tests it takes:
    // in the command's summary after the run (the test binary leaves the
    // run's summary to the command).
    let (binary, command) = stderr
        .split_once("userns-test: run wrapped")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(
        binary
            .matches("user namespaces are a Linux kernel feature")
            .count(),
        0,
        "{stderr}"
    );
    assert_eq!(
        command
            .matches("user namespaces are a Linux kernel feature")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!command.contains("kernel unknown"), "{command}");
}

fn outcomes(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_runner_skips_every_gated_test_with_the_system_as_cause() {
    let dir = private_scratch("other-systems-runner");
    let (out, report, xml) = run(&dir, "jailer", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let outcomes = outcomes(&report);
    for (name, outcome) in &outcomes {
        let expected = match name.as_str() {
            "parses_config" | "ability_names_parse" => "passed",
            _ => "skipped",
        };
        assert_eq!(outcome, expected, "{name}: {report:#}");
    }
    assert_eq!(report["counts"]["skipped"], 7, "{report:#}");
    assert_eq!(report["counts"]["passed"], 2, "{report:#}");
    assert_one_unsupported_cause(&report, &stderr);
    assert!(xml.contains("<skipped"), "{xml}");
    // libtest-mimic's own line says why, as nextest shows it.
    assert!(
        text(&out.stdout).contains("ignored (needs net: the system is Linux, but this build"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn plain_mode_skips_every_gated_test_and_require_fails_them() {
    let dir = private_scratch("other-systems-plain");
    let (out, report, _) = run(&dir, "plain", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(report["counts"]["skipped"], 5, "{report:#}");
    assert_eq!(report["counts"]["failed"], 0, "{report:#}");
    assert_one_unsupported_cause(&report, &stderr);

    let (out, report, _) = run(&dir, "plain", &[("USERNS_TEST_REQUIRE", "all")]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(report["counts"]["failed"], 5, "{report:#}");
    assert_eq!(report["counts"]["skipped"], 0, "{report:#}");
    let failed = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "loopback_carries_packets_in_new_netns")
        .unwrap();
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("needs net: the system is Linux, but this build is one for other systems"),
        "{failed:#}"
    );
}

#[test]
fn doctor_names_the_system_once() {
    let mut cmd = Command::new(binary("userns-test"));
    let out = hermetic(&mut cmd)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let abilities = doc["abilities"].as_array().unwrap();
    assert!(abilities.len() >= 20, "{doc:#}");
    let root_causes: std::collections::BTreeSet<&str> = abilities
        .iter()
        .map(|a| a["root_cause"].as_str().unwrap())
        .collect();
    assert_eq!(root_causes.len(), 1, "{doc:#}");
    assert!(
        root_causes
            .iter()
            .all(|r| r.starts_with("unsupported_system-")),
        "{doc:#}"
    );
    assert!(
        doc["host"]["distro"]
            .as_str()
            .unwrap()
            .starts_with("Linux, but this build is one for other systems"),
        "{doc:#}"
    );

    let mut cmd = Command::new(binary("userns-test"));
    let out = hermetic(&mut cmd).arg("doctor").output().unwrap();
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(
        shown
            .matches("user namespaces are a Linux kernel feature")
            .count(),
        1,
        "{shown}"
    );
}
