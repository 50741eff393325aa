//! Plain `cargo test` mode, observed from outside: the fixture suite
//! (`tests/fixtures/skip_suite.rs`) runs as a child process and its output
//! and exit code are checked.

mod common;

use common::{Host, Run, hermetic, sibling_test_binary};
use userns_test::requires_userns;

/// The skip line the gate printed for `test`.
fn skip_line<'a>(run: &'a Run, test: &str) -> Option<&'a str> {
    let prefix = format!("userns-test: skipped {test}: ");
    run.stderr.lines().find(|l| l.starts_with(&prefix))
}

/// Runs the fixture suite on `host` with `env` set (and every other
/// USERNS_TEST_* variable removed).
fn suite(host: &Host, env: &[(&str, &str)], nocapture: bool) -> Run {
    let mut args = vec!["--test-threads=1"];
    if nocapture {
        args.push("--nocapture");
    }
    let mut cmd = host.command(sibling_test_binary("skip_suite"), &args);
    hermetic(&mut cmd)
        .envs(env.iter().copied())
        .output()
        .expect("run the fixture suite")
        .into()
}

/// On a host with every ability the suite needs, every body runs.
#[requires_userns(net, user, cap_setpcap, cap(sys_admin), cap(setuid), cap(setgid))]
fn everything_runs_where_everything_is_available() {
    let run = suite(&Host::Plain, &[], true);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for test in [
        "needs_net",
        "needs_sys_admin",
        "needs_user_and_setpcap",
        "needs_nothing",
    ] {
        assert!(run.ran(test), "{test} did not run:\n{}", run.stdout);
    }
    assert!(
        !run.stderr.contains("userns-test: skipped"),
        "{}",
        run.stderr
    );
}

/// USERNS_TEST_DENY skips the test before its body, with one line on
/// stderr that libtest's capture does not swallow, naming the test as
/// libtest does (no crate name) and what failed (the cause and fix follow
/// once, in the summary); the run still passes.
#[test]
fn deny_skips_with_a_line_that_escapes_capture() {
    let run = suite(&Host::Plain, &[("USERNS_TEST_DENY", "net")], false);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        skip_line(&run, "needs_net"),
        Some("userns-test: skipped needs_net: needs net: denied by USERNS_TEST_DENY"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("test needs_net ... ok"),
        "{}",
        run.stdout
    );
    // In a module named like the crate, the name is still libtest's.
    assert!(
        run.stdout.contains("test skip_suite::test_env ... ok"),
        "{}",
        run.stdout
    );
    assert!(
        skip_line(&run, "skip_suite::test_env").is_some(),
        "{}",
        run.stderr
    );
    let shown = suite(&Host::Plain, &[("USERNS_TEST_DENY", "net")], true);
    assert!(
        !shown.ran("needs_net") && shown.ran("needs_nothing"),
        "{}",
        shown.stdout
    );
}

/// USERNS_TEST_REQUIRE turns the unmet ability into a failure that states
/// the same reason; the exit code is libtest's failure code.
#[test]
fn require_turns_the_skip_into_a_failure() {
    let run = suite(
        &Host::Plain,
        &[("USERNS_TEST_DENY", "net"), ("USERNS_TEST_REQUIRE", "net")],
        false,
    );
    assert_eq!(run.code, Some(101), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("test needs_net ... FAILED"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "userns-test: needs_net failed: USERNS_TEST_REQUIRE requires what this \
             host lacks: needs net: denied by USERNS_TEST_DENY"
        ),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("test needs_nothing ... FAILED"),
        "{}",
        run.stdout
    );
}

/// A required ability that is present does not fail anything.
#[requires_userns(user, cap_setpcap)]
fn require_of_present_abilities_passes() {
    let run = suite(
        &Host::Plain,
        &[("USERNS_TEST_REQUIRE", "user,cap_setpcap")],
        true,
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.ran("needs_user_and_setpcap"));
}

/// A malformed variable fails every gated test with a message naming the
/// variable and the bad word, and never silently runs or skips.
#[test]
fn malformed_environment_is_a_clear_failure() {
    let run = suite(&Host::Plain, &[("USERNS_TEST_DENY", "net,nte")], false);
    assert_eq!(run.code, Some(101));
    assert!(
        run.stdout.contains(
            "userns-test: needs_net failed: USERNS_TEST_DENY=\"net,nte\": unknown \
             ability `nte`; did you mean `net`?"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("test needs_nothing ... ok"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("stack backtrace"), "{}", run.stdout);
}

/// A real restriction, not a DENY: as uid 65534 without capabilities the
/// root test and the bounding-set test are skipped with their causes,
/// while the user-namespace test runs where the kernel allows it.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn unprivileged_host_skips_for_real_causes() {
    let run = suite(&Host::Unprivileged, &[], true);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let sys_admin = skip_line(&run, "needs_sys_admin").expect("needs_sys_admin skipped");
    assert!(
        sys_admin.ends_with(
            "needs cap(sys_admin): checking CAP_SYS_ADMIN in the effective set failed: CapEff is 0000000000000000"
        ),
        "{sys_admin}"
    );
    let setpcap =
        skip_line(&run, "needs_user_and_setpcap").expect("needs_user_and_setpcap skipped");
    assert!(
        setpcap.contains("needs cap_setpcap: prctl(PR_CAPBSET_DROP, ")
            && setpcap.ends_with("failed: EPERM (1)"),
        "{setpcap}"
    );
    // Their causes, once each, in the summary.
    for cause in [
        " CAP_SYS_ADMIN is not permitted to uid 65534",
        " CAP_SETPCAP is not effective",
    ] {
        assert_eq!(
            run.stderr.matches(cause).count(),
            1,
            "{cause}: {}",
            run.stderr
        );
    }
    // net runs as 65534 exactly when an unprivileged network namespace can
    // be made here (checked with util-linux, not with this crate).
    let kernel_allows =
        Host::Unprivileged.succeeds("unshare", &["--user", "--map-root-user", "--net", "true"]);
    assert_eq!(
        run.ran("needs_net"),
        kernel_allows,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    // Under REQUIRE=all the same host fails the CAP_SYS_ADMIN test.
    let strict = suite(
        &Host::Unprivileged,
        &[("USERNS_TEST_REQUIRE", "all")],
        false,
    );
    assert_eq!(strict.code, Some(101));
    assert!(
        strict.stdout.contains("test needs_sys_admin ... FAILED"),
        "{}",
        strict.stdout
    );
}

/// Under a Docker-like seccomp profile the namespace tests are skipped
/// with the seccomp cause; the untouched ability (cap_setpcap) is not the
/// reason.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn seccomp_host_skips_namespace_tests() {
    let run = suite(&Host::DockerSeccomp, &[], true);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let net = skip_line(&run, "needs_net").expect("needs_net skipped");
    assert!(
        net.ends_with("needs net: unshare(CLONE_NEWUSER) failed: EPERM (1)"),
        "{net}"
    );
    // The cause once, in the summary after libtest's result.
    assert!(
        run.stderr.contains(
            "  C1 a seccomp filter refuses creating namespaces, user namespaces included"
        ),
        "{}",
        run.stderr
    );
    // A skipped #[should_panic] test is no failure.
    assert!(
        run.stdout
            .contains("test should_panic_passes - should panic ... ok"),
        "{}",
        run.stdout
    );
    let user = skip_line(&run, "needs_user_and_setpcap").expect("skipped");
    assert!(
        user.contains("needs user:") && !user.contains("needs cap_setpcap"),
        "{user}"
    );
    assert!(run.ran("needs_sys_admin"));
}

/// After libtest's "test result: ok", plain mode says how many of the
/// tests libtest called ok were skipped, and the runner's summary follows:
/// the matrix and each root cause once.
#[requires_userns(user, cap(sys_admin), cap(setuid), cap(setgid))]
fn plain_mode_ends_with_the_skips_libtest_calls_ok() {
    let run = suite(&Host::Plain, &[("USERNS_TEST_DENY", "net")], false);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("test result: ok. "), "{}", run.stdout);
    // needs_net and skip_suite::test_env skipped; needs_sys_admin,
    // needs_user_and_setpcap and should_panic_passes ran and passed.
    assert!(
        run.stderr.contains(
            "userns-test: 2 of the 5 tests under userns-test that libtest reported ok were \
             skipped, not run"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "userns-test: 2 skipped, by cause:\n  C1 USERNS_TEST_DENY lists the ability\n      \
             abilities: net\n      skipped (2): needs_net, skip_suite::test_env\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("fix: ").count(), 1, "{}", run.stderr);
}

/// Plain mode writes the same reports as the runner: every annotated test
/// with its outcome (skipped with its root cause, a panic with where it
/// happened, an expected panic passed, an #[ignore]d test ignored), and a
/// note that plain #[test] functions are not in it.
#[requires_userns(user, cap(sys_admin), cap(setuid), cap(setgid))]
fn plain_mode_writes_reports() {
    let dir = std::env::temp_dir().join(format!("userns-test-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let report = dir.join("report.json");
    let report_str = report.to_str().unwrap();
    let run = suite(
        &Host::Plain,
        &[
            ("USERNS_TEST_DENY", "net"),
            ("USERNS_TEST_REPORT_JSON", report_str),
        ],
        false,
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // The test side records; the command writes the report, as plain mode
    // says once at the end.
    assert!(!report.exists());
    assert!(
        run.stderr
            .contains("are written by the `userns-test` command from this run's records"),
        "{}",
        run.stderr
    );
    let finish = common::userns_test(
        &["finish", "--quiet"],
        &[("USERNS_TEST_REPORT_JSON", report_str)],
    );
    assert_eq!(
        finish.status.code(),
        Some(0),
        "{}",
        common::text(&finish.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let outcome = |name: &str| -> serde_json::Value {
        doc["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
            .clone()
    };
    assert_eq!(outcome("needs_net")["outcome"], "skipped");
    assert_eq!(
        outcome("needs_net")["lacking"][0]["root_cause"]
            .as_str()
            .unwrap()
            .split('-')
            .next(),
        Some("denied_by_environment")
    );
    assert_eq!(outcome("needs_sys_admin")["outcome"], "passed");
    assert_eq!(outcome("should_panic_passes")["outcome"], "passed");
    assert_eq!(outcome("panics_on_purpose")["outcome"], "ignored");
    assert_eq!(outcome("needs_net")["binary"], "userns-test::skip_suite");
    assert!(
        doc["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "needs_nothing"),
        "a plain #[test] is not recorded"
    );
    assert!(
        doc["run"]["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("ran under libtest's own harness")),
        "{doc:#}"
    );
    // Asked to run the failing one: recorded failed, with its location.
    let run = suite(
        &Host::Plain,
        &[("USERNS_TEST_REPORT_JSON", report_str)],
        false,
    );
    assert_eq!(run.code, Some(0));
    let failing = common::hermetic(
        Host::Plain
            .command(
                common::sibling_test_binary("skip_suite"),
                &["--ignored", "--exact", "panics_on_purpose"],
            )
            .env("USERNS_TEST_REPORT_JSON", report_str),
    )
    .output()
    .unwrap();
    assert_eq!(failing.status.code(), Some(101));
    let finish = common::userns_test(
        &["finish", "--quiet"],
        &[("USERNS_TEST_REPORT_JSON", report_str)],
    );
    assert_eq!(
        finish.status.code(),
        Some(1),
        "{}",
        common::text(&finish.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let t = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "panics_on_purpose")
        .unwrap();
    assert_eq!(t["outcome"], "failed", "{t:#}");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("test panicked at userns-test/tests/fixtures/skip_suite.rs:"),
        "{t:#}"
    );
    assert!(
        t["message"].as_str().unwrap().ends_with(": kaboom"),
        "{t:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
