//! Plain `cargo test` mode, observed from outside: the fixture suite
//! (`tests/fixtures/skip_suite.rs`) runs as a child process and its output
//! and exit code are checked.

mod common;

use common::{Host, Run, hermetic, sibling_test_binary};
use userns_test::requires_userns;

/// The skip line the gate printed for `test`.
fn skip_line<'a>(run: &'a Run, test: &str) -> Option<&'a str> {
    let prefix = format!("userns-test: skipped skip_suite::{test}: ");
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
#[requires_userns(net, user, cap_setpcap, root)]
fn everything_runs_where_everything_is_available() {
    let run = suite(&Host::Plain, &[], true);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for test in [
        "needs_net",
        "needs_root",
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
/// stderr that libtest's capture does not swallow; the run still passes.
#[test]
fn deny_skips_with_a_line_that_escapes_capture() {
    let run = suite(&Host::Plain, &[("USERNS_TEST_DENY", "net")], false);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        skip_line(&run, "needs_net"),
        Some(
            "userns-test: skipped skip_suite::needs_net: needs net: denied by USERNS_TEST_DENY; \
             cause: USERNS_TEST_DENY lists the ability; fix: remove the ability from USERNS_TEST_DENY"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("test needs_net ... ok"),
        "{}",
        run.stdout
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
            "userns-test: skip_suite::needs_net failed: USERNS_TEST_REQUIRE requires what this \
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
            "userns-test: skip_suite::needs_net failed: USERNS_TEST_DENY=\"net,nte\": unknown \
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
#[requires_userns(root)]
fn unprivileged_host_skips_for_real_causes() {
    let run = suite(&Host::Unprivileged, &[], true);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let root = skip_line(&run, "needs_root").expect("needs_root skipped");
    assert!(
        root.contains("needs root: checking the real uid and user namespace failed: real uid 65534; cause: the real uid is 65534, not 0"),
        "{root}"
    );
    let setpcap =
        skip_line(&run, "needs_user_and_setpcap").expect("needs_user_and_setpcap skipped");
    assert!(
        setpcap.contains("needs cap_setpcap: prctl(PR_CAPBSET_DROP, ")
            && setpcap.contains("failed: EPERM (1); cause: CAP_SETPCAP is not effective"),
        "{setpcap}"
    );
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
    // Under REQUIRE=all the same host fails the root test.
    let strict = suite(
        &Host::Unprivileged,
        &[("USERNS_TEST_REQUIRE", "all")],
        false,
    );
    assert_eq!(strict.code, Some(101));
    assert!(
        strict.stdout.contains("test needs_root ... FAILED"),
        "{}",
        strict.stdout
    );
}

/// Under a Docker-like seccomp profile the namespace tests are skipped
/// with the seccomp cause; the untouched ability (cap_setpcap) is not the
/// reason.
#[requires_userns(root)]
fn seccomp_host_skips_namespace_tests() {
    let run = suite(&Host::DockerSeccomp, &[], true);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let net = skip_line(&run, "needs_net").expect("needs_net skipped");
    assert!(
        net.contains(
            "needs net: unshare(CLONE_NEWUSER) failed: EPERM (1); cause: a seccomp filter \
             refuses creating namespaces, user namespaces included"
        ),
        "{net}"
    );
    let user = skip_line(&run, "needs_user_and_setpcap").expect("skipped");
    assert!(
        user.contains("needs user:") && !user.contains("needs cap_setpcap"),
        "{user}"
    );
    assert!(run.ran("needs_root"));
}
