//! Reports, observed from outside: the runner fixture suite
//! (`tests/fixtures/runner_suite.rs`) writes JSON, JUnit and GitHub output
//! on several hermetic hosts; `userns-test merge` puts the JSON reports
//! together; `doctor --require` and `apparmor-profile` answer with their
//! exit codes.
//!
//! The Markdown of `merge` is pinned by a golden file:
//! `USERNS_TEST_BLESS=1 cargo test -p userns-test --test reports` rewrites
//! `tests/golden/merge/matrix.md`; review the diff before committing it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Host, cli, hermetic, nextest_installed, sibling_test_binary};
use userns_test::requires_userns;

const BINARY: &str = "userns-test::runner_suite";

/// A fresh directory every host's user can write (the unprivileged host
/// runs as uid 65534).
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("userns-test-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Runs the fixture suite on `host` with `env`; bubblewrap is pointed at a
/// path with nothing there, so `sandbox::runs_box` is skipped everywhere.
fn suite(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = host.command(sibling_test_binary("runner_suite"), args);
    hermetic(&mut cmd)
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .envs(env.iter().copied())
        .output()
        .expect("run the fixture suite")
}

fn userns_test(args: &[&str], dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(cli());
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output().expect("run userns-test")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn test_entry<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

/// Four hosts, four real reports, one merge: the matrix shows what ran
/// where, the tests that ran nowhere, and each runner's abilities.
#[requires_userns(root)]
fn reports_from_several_hosts_merge_into_one_matrix() {
    let dir = scratch("hosts");
    type Env = &'static [(&'static str, &'static str)];
    let hosts: [(&str, Host, Env); 4] = [
        ("root", Host::Plain, &[]),
        ("uid-65534", Host::Unprivileged, &[]),
        ("deny-net", Host::Plain, &[("USERNS_TEST_DENY", "net")]),
        ("docker-seccomp", Host::DockerSeccomp, &[]),
    ];
    let mut files = Vec::new();
    for (label, host, extra) in &hosts {
        let path = dir.join(format!("{label}.json"));
        let path_str = path.to_str().unwrap().to_owned();
        let mut env = vec![
            ("USERNS_TEST_REPORT_JSON", path_str.as_str()),
            ("USERNS_TEST_RUNNER", *label),
        ];
        env.extend_from_slice(extra);
        let out = suite(host, &[], &env);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", text(&out.stderr));
        files.push(path_str);
    }

    // One report, checked in detail: the seccomp host's.
    let seccomp = read_json(Path::new(&files[3]));
    assert_eq!(seccomp["schema"], "userns-test/report/1");
    assert_eq!(seccomp["runner"]["label"], "docker-seccomp");
    assert_eq!(seccomp["host"]["seccomp_mode"], 2);
    let net = seccomp["abilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ability"] == "net")
        .unwrap();
    assert_eq!(net["verdict"], "unavailable", "{net:#}");
    assert_eq!(net["failure"]["name"], "EPERM");
    assert_eq!(net["cause"]["id"], "seccomp_filter");
    assert!(net["remedy"].as_str().is_some_and(|r| !r.is_empty()));
    let needs_net = test_entry(&seccomp, "needs_net");
    assert_eq!(needs_net["binary"], BINARY);
    assert_eq!(needs_net["outcome"], "skipped");
    assert_eq!(needs_net["lacking"][0]["ability"], "net");
    assert_eq!(needs_net["lacking"][0]["cause_id"], "seccomp_filter");
    assert_eq!(test_entry(&seccomp, "plain")["outcome"], "passed");
    assert_eq!(test_entry(&seccomp, "panics")["outcome"], "ignored");
    assert_eq!(
        test_entry(&seccomp, "panics")["message"],
        "fixture: fails on purpose"
    );

    let mut args = vec!["merge", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let merged = userns_test(&args, None);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let m: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    let labels: Vec<&str> = m["runners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["root", "uid-65534", "deny-net", "docker-seccomp"]);
    let row = |name: &str| -> Vec<String> {
        m["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["outcome"].as_str().unwrap_or("absent").to_owned())
            .collect()
    };
    assert_eq!(row("plain"), ["passed"; 4]);
    // The seccomp host is still uid 0.
    assert_eq!(row("needs_root"), ["passed", "skipped", "passed", "passed"]);
    assert_eq!(row("needs_net"), ["passed", "passed", "skipped", "skipped"]);
    assert_eq!(row("sandbox::runs_box"), ["skipped"; 4]);
    let never: Vec<&str> = m["never_ran"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        never,
        [
            "userns-test::runner_suite::panics",
            "userns-test::runner_suite::result_fails",
            "userns-test::runner_suite::sandbox::runs_box",
        ]
    );
    assert_eq!(m["abilities"]["net"][2], "no: denied_by_environment");
    assert_eq!(m["abilities"]["net"][3], "no: seccomp_filter");

    // Markdown, and failing the job for the tests that ran nowhere.
    let mut args = vec!["merge", "--fail-on-never-ran"];
    args.extend(files.iter().map(String::as_str));
    let md = userns_test(&args, None);
    assert_eq!(md.status.code(), Some(1));
    assert!(
        text(&md.stdout).contains("**Ran on no runner (3):**"),
        "{}",
        text(&md.stdout)
    );
    assert!(text(&md.stderr).contains("3 test(s) ran on no runner"));

    // Two reports of one runner are both kept, the second labelled.
    let twice = userns_test(&["merge", "--format", "json", &files[0], &files[0]], None);
    let t: serde_json::Value = serde_json::from_slice(&twice.stdout).unwrap();
    assert_eq!(t["runners"][0]["label"], "root");
    assert_eq!(t["runners"][1]["label"], "root #2");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Markdown of `merge`, pinned (reports checked in, so the output does
/// not depend on this machine).
#[test]
fn merge_markdown_matches_the_golden_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/merge");
    let out = userns_test(&["merge", "privileged.json", "rootless.json"], Some(&dir));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let golden = dir.join("matrix.md");
    let actual = text(&out.stdout);
    if std::env::var_os("USERNS_TEST_BLESS").is_some() {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/merge/matrix.md (USERNS_TEST_BLESS=1 creates it)");
    assert_eq!(
        actual, expected,
        "merge output changed; if intended, USERNS_TEST_BLESS=1 and review the diff"
    );
}

/// Each kind of bad input is its own error, naming the file, exit 2.
#[test]
fn merge_rejects_unusable_reports_by_name() {
    let dir = scratch("malformed");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/merge/rootless.json");
    let whole = std::fs::read_to_string(&good).unwrap();
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let wrong = dir.join("doctor.json");
    std::fs::write(&wrong, r#"{"schema": "userns-test/doctor/1", "host": {}}"#).unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let not_json = dir.join("report.xml");
    std::fs::write(&not_json, "<testsuites/>").unwrap();
    let missing = dir.join("missing.json");
    let cases: [(&Path, &str); 6] = [
        (&truncated, "truncated.json:"),
        (
            &wrong,
            "schema \"userns-test/doctor/1\", expected \"userns-test/report/1\"",
        ),
        (&empty, "empty file"),
        (&not_json, "report.xml:1:1: not a userns-test report"),
        (&dir, "is a directory"),
        (&missing, "missing.json: cannot read"),
    ];
    for (path, expected) in cases {
        let out = userns_test(
            &["merge", good.to_str().unwrap(), path.to_str().unwrap()],
            None,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(expected), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A truncated report names the line and column serde_json stopped at.
    let out = userns_test(&["merge", truncated.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    let position = stderr
        .split("truncated.json:")
        .nth(1)
        .and_then(|rest| rest.split(": ").next())
        .unwrap_or("");
    let numbers: Vec<&str> = position.split(':').collect();
    assert!(
        numbers.len() == 2 && numbers.iter().all(|n| n.parse::<usize>().is_ok()),
        "{stderr}"
    );
    for bad in [&["merge"][..], &["merge", "--format", "yaml", "x.json"]] {
        assert_eq!(userns_test(bad, None).status.code(), Some(2));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JUnit file read back by a parser that is not its writer: counts,
/// skipped messages (attribute and text), failures, properties.
#[test]
#[cfg(feature = "junit")]
fn junit_is_read_back_by_an_independent_parser() {
    let dir = scratch("junit");
    let path = dir.join("junit.xml");
    // REQUIRE=net with net denied fails the two net tests; bwrap is
    // missing, so the sandbox test is skipped; two fixtures are #[ignore]d.
    let out = suite(
        &Host::Plain,
        &[],
        &[
            ("USERNS_TEST_JUNIT", path.to_str().unwrap()),
            ("USERNS_TEST_DENY", "net"),
            ("USERNS_TEST_REQUIRE", "net"),
        ],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some(BINARY));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 10, "{xml}");
    assert_eq!(suite.attribute("tests"), Some("10"));
    let case = |name: &str| {
        cases
            .iter()
            .find(|c| c.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no testcase {name} in\n{xml}"))
    };
    assert_eq!(case("plain").attribute("classname"), Some(BINARY));
    let failure = case("needs_net")
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("USERNS_TEST_REQUIRE requires what this host lacks: needs net")
    );
    let ignored = case("panics")
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .unwrap();
    assert_eq!(
        ignored.attribute("message"),
        Some("ignored: fixture: fails on purpose")
    );
    let skipped = case("sandbox::runs_box")
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .expect("an unmet test is <skipped>");
    let message = skipped.attribute("message").unwrap();
    assert!(message.starts_with("needs bwrap: "), "{message}");
    assert_eq!(
        skipped.text(),
        Some(message),
        "reason in text and attribute"
    );
    assert_eq!(suite.attribute("skipped"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    let property = |name: &str| {
        suite
            .descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
            .unwrap_or_else(|| panic!("no property {name}"))
            .to_owned()
    };
    assert!(property("ability.net").starts_with("no: denied by USERNS_TEST_DENY"));
    assert!(property("ability.bwrap").starts_with("no: finding /nonexistent/bwrap failed"));
    assert!(!property("host.kernel_release").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without the `junit` feature, asking for JUnit fails the run with the
/// fix, after the tests ran, and writes no file.
#[test]
#[cfg(not(feature = "junit"))]
fn junit_without_the_feature_names_the_fix() {
    let dir = scratch("junit-off");
    let path = dir.join("junit.xml");
    let out = suite(
        &Host::Plain,
        &[],
        &[("USERNS_TEST_JUNIT", path.to_str().unwrap())],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(text(&out.stdout).contains("test result: ok."), "{stderr}");
    assert!(
        stderr.contains("built without its `junit` feature")
            && stderr.contains(r#"features = ["junit"]"#),
        "{stderr}"
    );
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A destination that cannot be written: the results are still printed,
/// the error names the file, the run fails.
#[test]
fn unwritable_destination_fails_the_run_and_keeps_the_results() {
    let out = suite(
        &Host::Plain,
        &[],
        &[("USERNS_TEST_REPORT_JSON", "/proc/userns-test/report.json")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(text(&out.stdout).contains("test result: ok."));
    assert!(
        stderr.contains("could not write") && stderr.contains("/proc/userns-test/report.json"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// GitHub: a whole Markdown table appended to the step summary, and one
/// annotation per distinct skip reason (a warning under REQUIRE).
#[test]
fn github_summary_and_one_annotation_per_reason() {
    let dir = scratch("github");
    let summary = dir.join("summary.md");
    std::fs::write(&summary, "earlier step output\n").unwrap();
    let out = suite(
        &Host::Plain,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("USERNS_TEST_DENY", "net"),
            ("USERNS_TEST_RUNNER", "gh"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("::notice "))
        .collect();
    // Two reasons: net denied (2 tests), bwrap missing (1 test).
    assert_eq!(notices.len(), 2, "{stderr}");
    let net = notices.iter().find(|l| l.contains("needs net")).unwrap();
    assert!(
        net.starts_with("::notice title=userns-test%3A 2 tests skipped on gh%2C needs net::"),
        "{net}"
    );
    assert!(
        net.contains("%0ASkipped: needs_net, net::creates_ns"),
        "{net}"
    );
    assert!(
        text(&out.stdout)
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("test result:")
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step output\n### userns-test: userns-test::runner_suite on gh"),
        "{md}"
    );
    assert!(md.contains("| ability | available |\n|---|---|\n"), "{md}");
    assert!(
        md.contains("| net | **no**: denied by USERNS_TEST_DENY;"),
        "{md}"
    );
    assert!(
        md.contains("| 2 | needs net: denied by USERNS_TEST_DENY; cause:"),
        "{md}"
    );

    let required = suite(
        &Host::Plain,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("USERNS_TEST_DENY", "net"),
            ("USERNS_TEST_REQUIRE", "user"),
        ],
    );
    assert!(
        text(&required.stderr).contains("::warning title="),
        "{}",
        text(&required.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Under `cargo nextest run` (one process per test) the report comes out
/// once, whole: skips from the listing, outcomes from each test process.
#[test]
fn nextest_run_writes_one_whole_report() {
    if !nextest_installed() {
        userns_test::skip(module_path!(), "cargo-nextest is not installed");
        return;
    }
    let dir = scratch("nextest");
    let path = dir.join("report.json");
    let out = Command::new("cargo")
        .args([
            "nextest",
            "run",
            "--workspace",
            "-E",
            "binary(runner_suite)",
            "--no-fail-fast",
            "--color",
            "never",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("USERNS_TEST_REPORT_JSON", &path)
        .env("USERNS_TEST_DENY", "net")
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .env_remove("USERNS_TEST_REQUIRE")
        .output()
        .expect("run nextest");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = read_json(&path);
    assert_eq!(report["run"]["kind"], "nextest");
    assert_eq!(test_entry(&report, "plain")["outcome"], "passed");
    assert_eq!(
        test_entry(&report, "mount::creates_ns")["outcome"],
        "passed"
    );
    assert_eq!(test_entry(&report, "needs_net")["outcome"], "skipped");
    assert_eq!(
        test_entry(&report, "sandbox::runs_box")["outcome"],
        "skipped"
    );
    assert_eq!(test_entry(&report, "panics")["outcome"], "ignored");
    let tests = report["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 10, "{report:#}");
    assert!(tests.iter().all(|t| t["binary"] == BINARY));
    assert_eq!(report["counts"]["not_run"], 0, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `doctor --require`: 0 when available, 1 when missing, 2 on a bad name.
#[requires_userns(user, root)]
fn doctor_require_exit_codes() {
    let ok = Host::Plain.run(cli(), &["doctor", "--require", "user"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let missing = Host::Unprivileged.run(cli(), &["doctor", "--require", "root", "--only", "root"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("required but missing: root"));
    let bad = userns_test(&["doctor", "--require", "nte"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("did you mean `net`?"));
}

/// `apparmor-profile`: a profile for exactly that path, with install
/// commands and a warning; a missing binary is exit 2.
#[test]
fn apparmor_profile_names_exactly_the_binary() {
    let exe = cli();
    let exe = exe.to_str().unwrap();
    let out = userns_test(&["apparmor-profile", exe], None);
    assert_eq!(out.status.code(), Some(0));
    let profile = text(&out.stdout);
    let canonical = std::fs::canonicalize(exe).unwrap();
    assert!(
        profile.contains(&format!(
            "profile userns-test-userns-test {} flags=(unconfined) {{\n  userns,\n",
            canonical.display()
        )),
        "{profile}"
    );
    assert!(profile.contains("abi <abi/4.0>,"));
    assert!(profile.contains("sudo apparmor_parser -r /etc/apparmor.d/userns-test-userns-test"));
    assert!(profile.contains("WARNING"));
    let missing = userns_test(&["apparmor-profile", "/nonexistent/binary"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/binary"));
    for sub in ["doctor", "merge", "apparmor-profile"] {
        let help = userns_test(&[sub, "--help"], None);
        assert_eq!(help.status.code(), Some(0));
        assert!(text(&help.stdout).contains("EXIT CODES"), "{sub}");
    }
}
