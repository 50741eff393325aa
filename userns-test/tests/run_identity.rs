//! Which processes a run's records come from: only the run's own. A
//! process a test forks, a copy of the binary a test runs again, a target
//! runner between cargo and the binary, a `USERNS_TEST_RUN_DIR` or
//! `NEXTEST_RUN_ID` left in the environment, and a run that is still live
//! when another starts: each must leave the run's report whole and true.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    cli, crash_suite, hermetic, nextest_installed, outcome_of, private_scratch, read_json,
    sibling_test_binary, text, userns_test,
};

fn fork_suite(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(sibling_test_binary("fork_suite"));
    hermetic(&mut cmd)
        .args(args)
        .envs(env.iter().copied())
        .current_dir("/")
        .output()
        .expect("run the fork fixture suite")
}

/// `userns-test finish` with `env` (the test side records; the command
/// writes the report): its exit status, and the report.
fn finish(json: &Path, env: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec![("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())];
    all.extend_from_slice(env);
    let out = userns_test(&["finish", "--quiet"], &all);
    assert!(json.exists(), "{}", text(&out.stderr));
    (out.status.code(), read_json(json))
}

/// The one run directory of `store` (a report's `.NAME.parts`).
fn only_run_dir(store: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

/// A test's body forks a child that ends with `std::process::exit(0)`:
/// plain mode's exit handler must do nothing in it (no summary into the
/// child's stderr, which the fixture reads and requires empty; no report
/// written from it), and the run's report is the parent's.
#[test]
fn a_forked_child_prints_and_records_nothing() {
    let dir = private_scratch("identity-fork");
    let json = dir.join("report.json");
    let out = fork_suite(&[], &[("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("report is incomplete"),
        "{}",
        text(&out.stderr)
    );
    let (code, report) = finish(&json, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(outcome_of(&report, "forks_a_child_that_exits").0, "passed");
    assert_eq!(report["counts"]["passed"], 5, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A test that runs its own binary again (for itself, here): the copy
/// passes, then the outer test fails. The copy is not one of the run's
/// processes: under a direct run, under `userns-test run` and under
/// nextest, the report says the outer test failed, and every other test
/// keeps its own outcome.
#[test]
fn a_copy_of_the_binary_records_nothing() {
    let dir = private_scratch("identity-copy");
    let json = dir.join("report.json");
    let env = [
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
        ("FORK_SUITE_FAIL", "1"),
    ];
    let check = |how: &str, report: &serde_json::Value| {
        let (outcome, message, _) = outcome_of(report, "reruns_itself");
        assert_eq!(outcome, "failed", "{how}: {message}\n{report:#}");
        assert!(message.contains("the outer test fails"), "{how}: {message}");
        assert_eq!(outcome_of(report, "zz_passes").0, "passed", "{how}");
        assert_eq!(report["counts"]["failed"], 1, "{how}: {report:#}");
    };

    let direct = fork_suite(&[], &env);
    assert_eq!(direct.status.code(), Some(101), "{}", text(&direct.stderr));
    let (code, report) = finish(&json, &[]);
    assert_eq!(code, Some(1), "a failed test");
    check("direct", &report);

    let fixture = sibling_test_binary("fork_suite");
    let wrapped = userns_test(&["run", "--", fixture.to_str().unwrap()], &env);
    assert_eq!(
        wrapped.status.code(),
        Some(101),
        "{}",
        text(&wrapped.stderr)
    );
    let report = read_json(&json);
    assert_eq!(report["run"]["kind"], "wrapped");
    check("userns-test run", &report);

    if nextest_installed() {
        let mut args = vec!["nextest", "--workspace", "-E", "binary(fork_suite)"];
        args.extend(["--no-fail-fast", "--color", "never"]);
        let nextest = userns_test(&args, &env);
        assert_eq!(
            nextest.status.code(),
            Some(100),
            "{}",
            text(&nextest.stderr)
        );
        check("nextest", &read_json(&json));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cargo target runner between cargo and the binaries (`timeout` here;
/// `sudo -E`, valgrind and qemu sit in the same place): every binary of
/// one `cargo test` is one run, so the failing binary is in the report.
#[test]
fn a_target_runner_keeps_one_run() {
    let dir = private_scratch("identity-runner");
    let json = dir.join("report.json");
    let mut cmd = Command::new("cargo");
    cmd.args([
        "test",
        "-q",
        "--config",
        "target.'cfg(all())'.runner = ['timeout', '600']",
        "-p",
        "userns-test",
        "--test",
        "cfg_test_suite",
        "--test",
        "crash_suite",
        "--no-fail-fast",
    ]);
    let out = hermetic(&mut cmd)
        .env("USERNS_TEST_REPORT_JSON", &json)
        .env("USERNS_TEST_FIXTURE_HOSTILE", "1")
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    let (_, report) = finish(&json, &[]);
    assert_eq!(report["run"]["kind"], "cargo", "{report:#}");
    let binaries: std::collections::BTreeSet<&str> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["binary"].as_str().unwrap())
        .collect();
    assert_eq!(
        binaries.into_iter().collect::<Vec<_>>(),
        ["userns-test::cfg_test_suite", "userns-test::crash_suite"],
        "{report:#}"
    );
    assert_eq!(outcome_of(&report, "h_hostile_message").0, "failed");
    assert_eq!(report["counts"]["failed"], 1, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `USERNS_TEST_RUN_DIR` left in the environment after its run was
/// finished (a later CI step): a process must not fold its results into
/// that run; it says so and reports on its own.
#[test]
fn a_leftover_run_dir_is_not_this_run() {
    let dir = private_scratch("identity-stale");
    let json = dir.join("report.json");
    let env = [("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())];
    let suite = sibling_test_binary("crash_suite");
    let wrapped = userns_test(&["run", "--", suite.to_str().unwrap()], &env);
    assert_eq!(wrapped.status.code(), Some(0), "{}", text(&wrapped.stderr));
    assert_eq!(read_json(&json)["counts"]["failed"], 0);
    let run_dir = only_run_dir(&dir.join(".report.json.parts"));

    let later = crash_suite(
        &[],
        &[
            ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
            ("USERNS_TEST_RUN_DIR", run_dir.to_str().unwrap()),
            ("USERNS_TEST_FIXTURE_HOSTILE", "1"),
        ],
    );
    assert_eq!(later.status.code(), Some(101), "{}", text(&later.stderr));
    assert!(
        text(&later.stderr).contains("is not this process's run (that run was finished at "),
        "{}",
        text(&later.stderr)
    );
    let (_, report) = finish(&json, &[]);
    assert_eq!(report["run"]["kind"], "process", "{report:#}");
    assert_eq!(outcome_of(&report, "h_hostile_message").0, "failed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starting runs never removes one that may be live: a run owned by this
/// (living) test process survives ten newer runs and a clock that says it
/// is three days old; and finishing a newer run meanwhile is refused (the
/// live run writes the same report).
#[test]
fn a_live_run_is_never_removed() {
    let dir = private_scratch("identity-live");
    let json = dir.join("report.json");
    let dest = userns_test::__cli::Destinations::from_lookup(|k| {
        (k == "USERNS_TEST_REPORT_JSON").then(|| json.clone().into_os_string())
    });
    let live =
        userns_test::__cli::begin_wrapped_run(&dest, &["cargo".into(), "test".into()]).unwrap();
    // The clock stepped: the live run started three days ago.
    let meta_path = live.run_dir.join("run");
    let three_days = 3 * 24 * 3600 * 1000;
    let stepped: String = std::fs::read_to_string(&meta_path)
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("started_unix_ms ") {
            Some(ms) => format!(
                "started_unix_ms {}\n",
                ms.parse::<u64>().unwrap() - three_days
            ),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&meta_path, stepped).unwrap();
    for i in 0..10 {
        let out = crash_suite(&[], &[("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())]);
        assert_eq!(out.status.code(), Some(0), "run {i}: {}", text(&out.stderr));
        assert!(live.run_dir.is_dir(), "run {i} removed the live run");
    }
    // Finishing the newest run while the live one goes on: it would write
    // the report the live run writes too; refused, naming it.
    let out = userns_test(
        &["finish", "--quiet"],
        &[("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("another run writes this report too, and is still going"),
        "{}",
        text(&out.stderr)
    );
    assert!(!json.exists(), "a report was written over the live run's");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cargo test --lib --test <package>`: a package's unit tests and its
/// integration test named after the package have crates of one name. They
/// are two binaries in the report (as nextest names them: `package` and
/// `package::target`), each with its own outcomes, whichever one fails;
/// under `userns-test run` and under cargo alone.
#[test]
fn a_package_and_its_namesake_test_are_two_binaries() {
    let dir = private_scratch("identity-namesake");
    let json = dir.join("report.json");
    for (failing, wrapped) in [("unit_test", true), ("integration_test", false)] {
        let mut cargo = vec![
            "cargo",
            "test",
            "-q",
            "-p",
            "userns-test-consumer",
            "--lib",
            "--test",
            "userns_test_consumer",
            "--no-fail-fast",
        ];
        let out = if wrapped {
            let mut cmd = Command::new(cli());
            cmd.args(["run", "--"]).args(&cargo);
            cmd
        } else {
            let mut cmd = Command::new(cargo.remove(0));
            cmd.args(&cargo);
            cmd
        };
        let mut out = out;
        let out = hermetic(&mut out)
            .env("USERNS_TEST_REPORT_JSON", &json)
            .env("CONSUMER_FAIL", failing)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
        let report = if wrapped {
            read_json(&json)
        } else {
            finish(&json, &[]).1
        };
        let mut seen: Vec<(String, String, String)> = report["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap().to_owned();
                (s("binary"), s("name"), s("outcome"))
            })
            .collect();
        seen.sort();
        let outcome = |test: &str| if test == failing { "failed" } else { "passed" };
        assert_eq!(
            seen,
            [
                (
                    "userns-test-consumer".to_owned(),
                    "tests::unit_test".to_owned(),
                    outcome("unit_test").to_owned()
                ),
                (
                    "userns-test-consumer::userns_test_consumer".to_owned(),
                    "integration_test".to_owned(),
                    outcome("integration_test").to_owned()
                ),
            ],
            "{report:#}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
