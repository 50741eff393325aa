//! The runner, observed from outside: the fixture suite
//! (`tests/fixtures/runner_suite.rs`, `harness = false`) runs as a child
//! process; its output, summary and exit code are checked.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::OnceLock;

use common::{Host, Run, example_binary, hermetic, nextest_installed, sibling_test_binary};
use userns_test::requires_userns;

/// A stand-in for bubblewrap that succeeds and, when
/// `FAKE_BWRAP_LOG` names a file, appends its arguments to it: the runner's
/// tests need `bwrap` to be met on every machine and its probe to be
/// observable, not a sandbox.
fn fake_bwrap() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("userns-test-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let path = dir.join("bwrap");
        std::fs::write(
            &path,
            "#!/bin/sh\n[ -n \"$FAKE_BWRAP_LOG\" ] && echo \"$@\" >> \"$FAKE_BWRAP_LOG\"\nexit 0\n",
        )
        .expect("write the fake bwrap");
        for p in [&dir, &path] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .expect("make the fake bwrap executable");
        }
        path.to_string_lossy().into_owned()
    })
}

fn suite_on(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--test-threads=1"];
    all.extend_from_slice(args);
    let mut cmd = host.command(sibling_test_binary("runner_suite"), &all);
    // The matrix these tests read is printed even where nothing was
    // skipped (`a_run_with_nothing_to_say_prints_one_line` checks the
    // default).
    hermetic(&mut cmd)
        .env("USERNS_TEST_BWRAP", fake_bwrap())
        .env("USERNS_TEST_VERBOSE", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run the runner suite")
        .into()
}

fn suite(args: &[&str], env: &[(&str, &str)]) -> Run {
    suite_on(&Host::Plain, args, env)
}

/// The runner suite on `host` as nextest runs it: a child of a process
/// named `cargo-nextest` (a link to `timeout`, which waits for it), with
/// `NEXTEST_RUN_ID=run`: only under a nextest process does the variable
/// count.
fn suite_under_nextest(
    fake_dir: &std::path::Path,
    host: &Host,
    run: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    suite_under("cargo-nextest", fake_dir, host, run, args, env)
}

/// The runner suite on `host` with `NEXTEST_RUN_ID=run`, as a child of a
/// process named `parent` (a link to `timeout` in `fake_dir`).
fn suite_under(
    parent: &str,
    fake_dir: &std::path::Path,
    host: &Host,
    run: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let fake = fake_dir.join(parent);
    if !fake.exists() {
        std::os::unix::fs::symlink("/usr/bin/timeout", &fake).unwrap();
    }
    let suite = sibling_test_binary("runner_suite");
    let mut all = vec!["0", suite.to_str().unwrap(), "--test-threads=1"];
    all.extend_from_slice(args);
    let mut cmd = host.command(&fake, &all);
    hermetic(&mut cmd)
        .env("USERNS_TEST_BWRAP", fake_bwrap())
        .env("NEXTEST_RUN_ID", run)
        .envs(env.iter().copied())
        .output()
        .expect("run the runner suite")
        .into()
}

/// Every annotated function is collected, named by module path as libtest
/// names it, so two modules may both have `creates_ns`.
#[test]
fn collects_every_annotated_test_by_module_path() {
    let run = suite(&["--list"], &[]);
    assert_eq!(run.code, Some(0));
    let mut listed: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "async_body",
            "mount::creates_ns",
            "needs_net",
            "needs_sys_admin",
            "net::creates_ns",
            "panics",
            "plain",
            "result_fails",
            "sandbox::runs_box",
            "should_panic_passes",
        ]
    );
    // libtest's trailer ends the list, counting what it listed; the terse
    // format nextest reads has none.
    assert!(
        run.stdout.ends_with(": test\n\n10 tests, 0 benchmarks\n"),
        "{}",
        run.stdout
    );
    let ignored = suite(&["--list", "--ignored"], &[("USERNS_TEST_DENY", "net")]);
    assert!(
        ignored.stdout.ends_with("\n\n4 tests, 0 benchmarks\n"),
        "{}",
        ignored.stdout
    );
    let terse = suite(&["--list", "--format", "terse"], &[]);
    assert!(!terse.stdout.contains("benchmarks"), "{}", terse.stdout);
}

/// Where everything is available, every body runs; the summary (on stderr)
/// shows the matrix of exactly the abilities needed, and libtest's summary
/// stays the last line on stdout.
#[requires_userns(net, user, mount, cap(sys_admin), cap(setuid), cap(setgid))]
fn runs_everything_and_summarises() {
    let run = suite(&["--nocapture"], &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for t in [
        "needs_net",
        "needs_sys_admin",
        "mount::creates_ns",
        "net::creates_ns",
        "plain",
        "async_body",
        "sandbox::runs_box",
    ] {
        assert!(run.ran(t), "{t} did not run:\n{}", run.stdout);
    }
    assert!(
        run.last_stdout_line()
            .starts_with("test result: ok. 8 passed; 0 failed; 2 ignored;")
    );
    // Each test runs on a thread of its own, named after it, as libtest
    // runs it.
    let thread = run
        .stdout
        .split_once("AT THE FIRST TEST, ")
        .and_then(|(_, rest)| rest.lines().next());
    assert_eq!(thread, Some("thread async_body"), "{}", run.stdout);
    assert!(run.stderr.contains("userns-test: host: "), "{}", run.stderr);
    let matrix: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("userns-test: abilities this run needed:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(matrix, ["user", "mount", "net", "bwrap", "cap(sys_admin)"]);
    assert!(run.stderr.contains("userns-test: no test skipped"));
}

/// Unmet requirements are reported as ignored with their reason, and the
/// summary groups the skipped tests by reason with counts.
#[test]
fn unmet_tests_are_ignored_with_reason_and_grouped() {
    let run = suite(&[], &[("USERNS_TEST_DENY", "net")]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // Per test: what failed; the cause and the remedy once per group, in
    // the summary.
    let reason = "needs net: denied by USERNS_TEST_DENY";
    let line = run.line("test needs_net ").unwrap();
    assert!(
        line.ends_with(&format!(" ... ignored ({reason})")),
        "{line}"
    );
    assert!(
        run.line("test net::creates_ns")
            .unwrap()
            .ends_with(&format!("ignored ({reason})"))
    );
    assert!(
        run.last_stdout_line()
            .starts_with("test result: ok. 6 passed; 0 failed; 4 ignored;")
    );
    assert!(
        run.stderr
            .contains("  net             no  denied by USERNS_TEST_DENY; C1\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "userns-test: 2 skipped, by cause:\n  \
             C1 USERNS_TEST_DENY lists the ability\n      \
             abilities: net\n      \
             skipped (2): needs_net, net::creates_ns\n      \
             fix: remove the ability from USERNS_TEST_DENY\n"
        ),
        "{}",
        run.stderr
    );
}

/// `--list --ignored` lists the unmet tests (what nextest reads to decide
/// SKIP) along with the `#[ignore]`d ones.
#[test]
fn list_ignored_includes_unmet_tests() {
    let run = suite(
        &["--list", "--format", "terse", "--ignored"],
        &[("USERNS_TEST_DENY", "net")],
    );
    let mut listed: Vec<&str> = run.stdout.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "needs_net: test",
            "net::creates_ns: test",
            "panics: test",
            "result_fails: test"
        ]
    );
}

/// Filters and `--exact` select by name, and only the abilities the
/// selected tests need are probed (the matrix lists nothing else).
#[test]
fn filters_and_exact_probe_only_what_is_selected() {
    let run = suite(&["net::", "--nocapture"], &[]);
    assert!(run.ran("net::creates_ns") && !run.ran("needs_net") && !run.ran("plain"));
    assert!(
        run.last_stdout_line().contains("1 passed")
            && run.last_stdout_line().contains("9 filtered out")
    );
    let exact = suite(&["--exact", "mount::creates_ns", "--nocapture"], &[]);
    assert!(exact.ran("mount::creates_ns") && !exact.ran("net::creates_ns"));
    let needed: Vec<&str> = exact
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("userns-test: abilities this run needed:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(needed.len(), 1, "{}", exact.stderr);
    assert!(needed[0].trim_start().starts_with("mount"), "{needed:?}");
    let skipped = suite(&["--skip", "creates_ns", "--nocapture"], &[]);
    assert!(!skipped.ran("mount::creates_ns") && skipped.ran("plain"));

    // Probes are observed, not inferred from the matrix: the fake bwrap
    // logs each time the `bwrap` probe runs it.
    let log = std::env::temp_dir().join(format!("userns-test-bwrap-log-{}", std::process::id()));
    let log_str = log.to_str().expect("a UTF-8 temporary path");
    let probed = |args: &[&str]| {
        let _ = std::fs::remove_file(&log);
        suite(args, &[("FAKE_BWRAP_LOG", log_str)]);
        log.exists()
    };
    assert!(probed(&[]), "a full run did not probe bwrap");
    assert!(
        probed(&["sandbox::"]),
        "a run selecting the bwrap test did not probe it"
    );
    assert!(
        !probed(&["--exact", "mount::creates_ns"]),
        "--exact probed bwrap"
    );
    assert!(
        !probed(&["no_test_has_this_name"]),
        "an empty selection probed bwrap"
    );
    assert!(
        !probed(&["--skip", "sandbox::"]),
        "--skip still probed bwrap"
    );
    let _ = std::fs::remove_file(&log);
}

/// Under nextest, the processes of one run share available verdicts: the
/// listing probes, the test processes reuse, and nothing a verdict depends
/// on may differ (run, settings, user, seccomp, namespaces). Observed
/// through the fake bwrap, which logs every probe.
#[test]
fn nextest_processes_of_one_run_share_available_verdicts() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::env::temp_dir().join(format!("userns-test-sharing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // uid 65534 writes its own directory here and appends to the log.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let log = tmp.join("bwrap.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let probes = || std::fs::read_to_string(&log).unwrap().lines().count();
    let nextest = |host: &Host, run: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec![
            ("TMPDIR", tmp.to_str().unwrap()),
            ("FAKE_BWRAP_LOG", log.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        let out = suite_under_nextest(&tmp, host, run, args, &all);
        assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
        out
    };
    let box_test = ["--exact", "sandbox::runs_box"];

    // The listing probes; the run's test processes reuse its verdict.
    nextest(&Host::Plain, "run-a", &["--list"], &[]);
    assert_eq!(probes(), 1);
    // Only verdicts dearer to probe than the key are shared: bwrap (and
    // net, where available), and, once the key is computed for those,
    // the namespaces' (mount, ...); never user (seen on the way by a
    // namespace's probe) nor what a process checks without a child (root,
    // capabilities).
    let run_dir = tmp.join(format!(
        "userns-test-{}/verdicts/run-a",
        nix::unistd::geteuid()
    ));
    let shared: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let ability = name.split_once('-')?.1;
            Some(ability.to_owned())
        })
        .collect();
    assert!(shared.iter().any(|a| a == "bwrap"), "{shared:?}");
    assert!(
        !shared.iter().any(|a| {
            ["user", "root", "unprivileged", "new_privs"].contains(&a.as_str())
                || a.starts_with("cap(")
        }),
        "{shared:?}"
    );
    for _ in 0..3 {
        assert!(nextest(&Host::Plain, "run-a", &box_test, &[]).ran("sandbox::runs_box"));
    }
    assert_eq!(probes(), 1, "test processes of the run probed again");

    // Another run, other settings, another user, a seccomp filter: each
    // probes once, then reuses its own.
    type Env<'a> = &'a [(&'a str, &'a str)];
    let variants: [(&Host, &str, Env); 5] = [
        (&Host::Plain, "run-b", &[]),
        (&Host::Plain, "run-a", &[("USERNS_TEST_DENY", "net")]),
        (&Host::Plain, "run-a", &[("USERNS_TEST_REQUIRE", "bwrap")]),
        (&Host::Unprivileged, "run-a", &[]),
        (&Host::DockerSeccomp, "run-a", &[]),
    ];
    for (i, (host, run, env)) in variants.iter().enumerate() {
        nextest(host, run, &box_test, env);
        assert_eq!(
            probes(),
            2 + i,
            "{host:?} {run} {env:?} reused another key's verdict"
        );
        nextest(host, run, &box_test, env);
        assert_eq!(
            probes(),
            2 + i,
            "{host:?} {run} {env:?} did not reuse its own"
        );
    }

    // Each `unshare --user` makes a new user namespace: nothing to reuse.
    let before = probes();
    nextest(&Host::InsideUnshare, "run-a", &box_test, &[]);
    nextest(&Host::InsideUnshare, "run-a", &box_test, &[]);
    assert_eq!(
        probes(),
        before + 2,
        "a new user namespace reused a verdict"
    );

    // Off: every process probes. Outside nextest: nothing is shared.
    let before = probes();
    nextest(
        &Host::Plain,
        "run-a",
        &box_test,
        &[("USERNS_TEST_SHARE_VERDICTS", "0")],
    );
    nextest(
        &Host::Plain,
        "run-a",
        &box_test,
        &[("USERNS_TEST_SHARE_VERDICTS", "0")],
    );
    assert_eq!(probes(), before + 2);
    suite(
        &box_test,
        &[
            ("FAKE_BWRAP_LOG", log.to_str().unwrap()),
            ("TMPDIR", tmp.to_str().unwrap()),
        ],
    );
    assert_eq!(probes(), before + 3);

    // A run id left in the environment, with no nextest above: nothing is
    // shared (the run it names is over), and the process says so.
    let before = probes();
    let leaked = suite_under(
        "a-shell",
        &tmp,
        &Host::Plain,
        "run-a",
        &box_test,
        &[
            ("FAKE_BWRAP_LOG", log.to_str().unwrap()),
            ("TMPDIR", tmp.to_str().unwrap()),
            (
                "USERNS_TEST_REPORT_JSON",
                tmp.join("leak.json").to_str().unwrap(),
            ),
        ],
    );
    assert_eq!(probes(), before + 1, "a leaked run id reused a verdict");
    // It reports as a run of its own, its test run (not left `unknown` in
    // nextest's run that is over).
    let finish = common::userns_test(
        &["finish", "--quiet"],
        &[
            (
                "USERNS_TEST_REPORT_JSON",
                tmp.join("leak.json").to_str().unwrap(),
            ),
            ("TMPDIR", tmp.to_str().unwrap()),
        ],
    );
    assert_eq!(
        finish.status.code(),
        Some(0),
        "{}",
        common::text(&finish.stderr)
    );
    let own = common::read_json(&tmp.join("leak.json"));
    assert_eq!(own["run"]["kind"], "process", "{own:#}");
    assert_eq!(own["counts"]["passed"], 1, "{own:#}");
    assert!(
        leaked
            .stderr
            .contains("NEXTEST_RUN_ID=run-a is set, but no nextest process started this one"),
        "{}",
        leaked.stderr
    );

    // A malformed value is an error, not a default.
    let bad = suite_under_nextest(
        &tmp,
        &Host::Plain,
        "run-a",
        &box_test,
        &[("USERNS_TEST_SHARE_VERDICTS", "yes")],
    );
    assert_eq!(bad.code, Some(101), "{}", bad.stderr);
    assert!(
        bad.stdout
            .contains("USERNS_TEST_SHARE_VERDICTS=\"yes\": `yes` is neither `1`")
            || bad
                .stderr
                .contains("USERNS_TEST_SHARE_VERDICTS=\"yes\": `yes` is neither `1`"),
        "{}\n{}",
        bad.stdout,
        bad.stderr
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A `Result` test fails on `Err`, printing it; a panicking test fails with
/// the panic message and where it panicked, and the panic on stderr names
/// the test's thread after the test; `#[should_panic(expected)]` passes.
/// Exit code 101.
#[test]
fn result_and_panic_failures() {
    let run = suite(&["--ignored"], &[]);
    assert_eq!(run.code, Some(101), "{}\n{}", run.stdout, run.stderr);
    assert!(run.line("test result_fails ").unwrap().ends_with("FAILED"));
    assert!(run.line("test panics ").unwrap().ends_with("FAILED"));
    assert!(run.stdout.contains("Error: \"boom\""), "{}", run.stdout);
    let at = "tests/fixtures/runner_suite.rs:";
    assert!(
        run.stdout
            .contains(&format!("test panicked at userns-test/{at}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(": kaboom"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("thread 'panics' panicked at userns-test/{at}")),
        "{}",
        run.stderr
    );
    let ok = suite(&["--exact", "should_panic_passes"], &[]);
    assert_eq!(ok.code, Some(0));
    assert!(
        !ok.stderr.contains("failed as expected"),
        "an expected panic was printed: {}",
        ok.stderr
    );
}

/// USERNS_TEST_REQUIRE turns the skip into a failure with the same reason.
#[test]
fn require_fails_the_unmet_test() {
    let run = suite(
        &[],
        &[("USERNS_TEST_DENY", "net"), ("USERNS_TEST_REQUIRE", "net")],
    );
    assert_eq!(run.code, Some(101));
    assert!(run.line("test needs_net ").unwrap().ends_with("FAILED"));
    assert!(run.stdout.contains(
        "userns-test: USERNS_TEST_REQUIRE requires what this host lacks: needs net: denied by \
         USERNS_TEST_DENY"
    ));
}

/// `--include-ignored` runs an unmet test anyway, and says so.
#[test]
fn include_ignored_runs_unmet_tests_and_says_so() {
    let run = suite(
        &["--include-ignored", "--exact", "needs_net", "--nocapture"],
        &[("USERNS_TEST_DENY", "net")],
    );
    assert!(run.ran("needs_net"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("userns-test: running needs_net although its requirements are unmet"),
        "{}",
        run.stderr
    );
}

/// A malformed variable fails the gated tests, naming the variable and the
/// word; the others run.
#[test]
fn malformed_environment_fails_gated_tests() {
    let run = suite(&[], &[("USERNS_TEST_REQUIRE", "nte")]);
    assert_eq!(run.code, Some(101));
    assert!(
        run.stdout
            .contains("USERNS_TEST_REQUIRE=\"nte\": unknown ability `nte`; did you mean `net`?")
    );
    assert!(run.ran("plain"), "{}", run.stdout);
    assert!(!run.stdout.contains("---- plain ----"), "{}", run.stdout);
    assert!(run.stdout.contains("---- needs_net ----"), "{}", run.stdout);
}

/// Colour only when asked or on a terminal; `--color never` and pipes get
/// none.
#[test]
fn colour_follows_the_terminal_and_the_flag() {
    let piped = suite(&[], &[("USERNS_TEST_DENY", "net")]);
    assert!(!piped.stderr.contains('\x1b'));
    let forced = suite(&["--color", "always"], &[("USERNS_TEST_DENY", "net")]);
    assert!(
        forced
            .stderr
            .contains("\x1b[33mskipped (2)\x1b[0m: needs_net"),
        "{}",
        forced.stderr
    );
}

/// Real restrictions, not DENY: as uid 65534 the root test is skipped with
/// its real cause; under a Docker-like seccomp filter the namespace tests
/// are.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn restricted_hosts_skip_for_real_causes() {
    let unprivileged = suite_on(&Host::Unprivileged, &[], &[]);
    assert_eq!(
        unprivileged.code,
        Some(0),
        "{}\n{}",
        unprivileged.stdout,
        unprivileged.stderr
    );
    assert!(unprivileged.line("test needs_sys_admin ").unwrap().contains(
        "ignored (needs cap(sys_admin): checking CAP_SYS_ADMIN in the effective set failed: CapEff is 0000000000000000"
    ));
    let seccomp = suite_on(&Host::DockerSeccomp, &[], &[]);
    assert_eq!(
        seccomp.code,
        Some(0),
        "{}\n{}",
        seccomp.stdout,
        seccomp.stderr
    );
    for t in [
        "test needs_net ",
        "test net::creates_ns ",
        "test mount::creates_ns ",
    ] {
        let line = seccomp.line(t).unwrap();
        assert!(
            line.ends_with(": unshare(CLONE_NEWUSER) failed: EPERM (1))"),
            "{line}"
        );
    }
    // One root cause for every namespace ability, its tests listed once.
    assert!(
        seccomp.stderr.contains(
            "  C1 a seccomp filter refuses creating namespaces, user namespaces included"
        ),
        "{}",
        seccomp.stderr
    );
    assert_eq!(
        seccomp.stderr.matches("fix: ").count(),
        1,
        "{}",
        seccomp.stderr
    );
}

/// Under `cargo nextest run` (one process per test, skips decided when
/// listing), an unmet test is SKIP, never PASS.
#[test]
fn nextest_reports_unmet_tests_as_skip() {
    if !nextest_installed() {
        userns_test::skip(module_path!(), "cargo-nextest is not installed");
        return;
    }
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut cmd = Command::new("cargo");
    cmd.args([
        "nextest",
        "run",
        "--workspace",
        "-E",
        "binary(runner_suite)",
        "--status-level",
        "skip",
        "--final-status-level",
        "none",
        "--no-fail-fast",
        "--color",
        "never",
    ])
    .current_dir(workspace);
    let out = hermetic(&mut cmd)
        .env("USERNS_TEST_DENY", "net")
        .output()
        .expect("run nextest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let status = |test: &str| {
        text.lines()
            .find(|l| l.trim_end().ends_with(&format!("runner_suite {test}")))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
    };
    assert_eq!(status("needs_net").as_deref(), Some("SKIP"), "{text}");
    assert_eq!(status("net::creates_ns").as_deref(), Some("SKIP"), "{text}");
    assert_eq!(status("plain").as_deref(), Some("PASS"), "{text}");
    assert_eq!(status("result_fails").as_deref(), Some("SKIP"), "{text}");
}

/// The example jailer suite on restricted hosts: every refusal has one
/// root cause, and the summary says each cause and each fix once (the
/// matrix refers to it by number), whatever the number of abilities and
/// tests it takes. Real bubblewrap, so that its refusal is diagnosed too.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn jailer_summary_says_each_root_cause_once() {
    for (host, cause_words) in [
        (
            Host::DockerSeccomp,
            "a seccomp filter refuses creating namespaces",
        ),
        (
            Host::RestrictNamespaces,
            "refuses network namespaces (CLONE_NEWNET), PID namespaces",
        ),
        (Host::NoMountNamespaces, "user.max_mnt_namespaces=0"),
    ] {
        let mut cmd = host.command(example_binary("jailer"), &["--test-threads=1"]);
        let run: Run = hermetic(&mut cmd)
            .output()
            .expect("run the jailer suite")
            .into();
        assert_eq!(
            run.code,
            Some(0),
            "{host:?}\n{}\n{}",
            run.stdout,
            run.stderr
        );
        let summary = &run.stderr[run.stderr.find("userns-test: host:").unwrap()..];
        assert_eq!(
            summary.matches(cause_words).count(),
            1,
            "{host:?}: the cause once\n{summary}"
        );
        let fixes: Vec<&str> = summary
            .lines()
            .filter(|l| l.trim_start().starts_with("fix: "))
            .collect();
        let mut distinct = fixes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(fixes, distinct, "{host:?}: a fix repeated\n{summary}");
        // Every unavailable ability of the matrix refers to a cause.
        let matrix = summary
            .lines()
            .skip_while(|l| !l.starts_with("userns-test: abilities"))
            .skip(1)
            .take_while(|l| l.starts_with("  "));
        for row in matrix.filter(|r| r.contains(" no ")) {
            assert!(row.ends_with("; C1"), "{host:?}: {row}\n{summary}");
        }
        assert!(
            summary.contains("userns-test: ") && summary.contains(" skipped, by cause:\n  C1 "),
            "{summary}"
        );
    }
}

/// `main!(warn_uncollected)` compiles a target holding a plain `#[test]`,
/// and every run names it (where, and what to write instead) after the
/// summary's host line; the plain test never ran.
#[test]
fn uncollected_functions_are_named_in_every_run() {
    let mut cmd = Command::new(sibling_test_binary("uncollected_suite"));
    // One at a time: the runner captures nothing, so a test's own output
    // could land inside another's result line.
    cmd.arg("--test-threads=1");
    let run: Run = hermetic(&mut cmd).output().unwrap().into();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.ran("collected"));
    assert!(
        run.stderr.contains(
            "userns-test: 1 function of this target never run under the runner:\n  \
             userns-test/tests/fixtures/uncollected_suite.rs:11: `plain_test_never_runs`: a \
             plain #[test] is dropped in a harness = false target; write #[userns_test::test]"
        ),
        "{}",
        run.stderr
    );
}

/// Where nothing was skipped, unavailable or left out, the runner says so
/// in one line and reads no host facts; `USERNS_TEST_VERBOSE=1` prints the
/// host line and the matrix; a malformed value is an error naming the
/// variable, and the tests fail with it.
#[test]
fn a_run_with_nothing_to_say_prints_one_line() {
    let quiet = suite(&[], &[("USERNS_TEST_VERBOSE", "0")]);
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    let ours: Vec<&str> = quiet
        .stderr
        .lines()
        .filter(|l| l.starts_with("userns-test: "))
        .collect();
    assert_eq!(
        ours,
        ["userns-test: 5 abilities available; no test skipped"],
        "{}",
        quiet.stderr
    );
    let verbose = suite(&[], &[("USERNS_TEST_VERBOSE", "1")]);
    assert!(
        verbose.stderr.contains("userns-test: host: "),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose
            .stderr
            .contains("userns-test: abilities this run needed:"),
        "{}",
        verbose.stderr
    );
    // Something to say: the whole summary, without asking.
    let denied = suite(
        &[],
        &[("USERNS_TEST_VERBOSE", "0"), ("USERNS_TEST_DENY", "net")],
    );
    assert!(
        denied.stderr.contains("userns-test: host: "),
        "{}",
        denied.stderr
    );
    let malformed = suite(&[], &[("USERNS_TEST_VERBOSE", "yes")]);
    assert_ne!(malformed.code, Some(0));
    assert!(
        malformed
            .stderr
            .contains("USERNS_TEST_VERBOSE=\"yes\": `yes` is neither `1`"),
        "{}",
        malformed.stderr
    );
}

/// Every test runs on a new thread named after it, in every thread count,
/// as libtest runs it: a test that restricts its own thread (NoNewPrivs, a
/// Landlock domain refusing every file) leaves the next test of that
/// worker, and the main thread, untouched; the summary after the run still
/// reads the host (its kernel) and the report is written.
#[test]
fn each_test_runs_on_a_thread_of_its_own() {
    for threads in ["1", "2", "4"] {
        let dir = common::private_scratch(&format!("threads-{threads}"));
        let report = dir.join("report.json");
        let mut cmd = Command::new(sibling_test_binary("thread_suite"));
        let run: Run = hermetic(&mut cmd)
            .arg(format!("--test-threads={threads}"))
            .env("USERNS_TEST_FIXTURE_RESTRICT", "1")
            .env("USERNS_TEST_VERBOSE", "1")
            .env("USERNS_TEST_REPORT_JSON", &report)
            .output()
            .unwrap()
            .into();
        assert_eq!(
            run.code,
            Some(0),
            "{threads}: {}\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout.contains("RESTRICTED: FullyEnforced"),
            "{}",
            run.stdout
        );
        for t in [
            "a_restricts_its_thread",
            "b_gets_a_fresh_thread",
            "c_gets_a_fresh_thread_too",
            "d_probed_then_fresh",
        ] {
            assert!(run.ran(t), "{threads}: {t}\n{}", run.stdout);
        }
        let host = run
            .stderr
            .lines()
            .find(|l| l.starts_with("userns-test: host: "))
            .unwrap_or_else(|| panic!("{}", run.stderr));
        assert!(
            host.contains(", kernel ") && !host.contains("kernel unknown"),
            "{host}"
        );
        let finish = common::userns_test(
            &["finish", "--quiet"],
            &[("USERNS_TEST_REPORT_JSON", report.to_str().unwrap())],
        );
        assert_eq!(
            finish.status.code(),
            Some(0),
            "{}",
            common::text(&finish.stderr)
        );
        let json = common::read_json(&report);
        assert_eq!(json["counts"]["passed"], 4, "{json:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// cargo passes `--cfg test` to every test target, `harness = false`
/// included: a file under `#![cfg(test)]` compiles under `main!()` (no
/// "never runs" error) and its tests, a `#[cfg(test)]` module's too, run.
#[test]
fn cfg_test_items_are_collected_and_run() {
    let mut cmd = Command::new(sibling_test_binary("cfg_test_suite"));
    let run: Run = hermetic(&mut cmd).output().unwrap().into();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.ran("under_cfg_test"), "{}", run.stdout);
    assert!(
        run.ran("inner::in_a_cfg_test_module")
            || run
                .stdout
                .contains("inner::in_a_cfg_test_module ... ignored"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains("never run"), "{}", run.stderr);
}

/// `--format json -Z unstable-options`: libtest's events, with the skip
/// reason as the ignored event's `message`, in the shape libtest itself
/// gives an `#[ignore = "why"]` test (compared with the real libtest of
/// the plain fixture suite); the suite event counts what ran; every line
/// the runner writes is JSON.
#[test]
fn json_events_carry_the_skip_reason_as_libtest_does() {
    let events = |run: &Run| -> Vec<serde_json::Value> {
        run.stdout
            .lines()
            // The fixture's own prints are not events.
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    for threads in ["1", "4"] {
        let mut cmd = Command::new(sibling_test_binary("runner_suite"));
        let run: Run = hermetic(&mut cmd)
            .args([
                "--format",
                "json",
                "-Z",
                "unstable-options",
                "--test-threads",
                threads,
            ])
            .env("USERNS_TEST_BWRAP", fake_bwrap())
            .env("USERNS_TEST_DENY", "net")
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        let events = events(&run);
        let of = |name: &str| -> Vec<&serde_json::Value> {
            events.iter().filter(|e| e["name"] == name).collect()
        };
        let needs_net = of("needs_net");
        assert_eq!(needs_net.len(), 2, "{needs_net:?}");
        assert_eq!(needs_net[0]["event"], "started");
        assert_eq!(needs_net[1]["event"], "ignored");
        assert_eq!(
            needs_net[1]["message"],
            "needs net: denied by USERNS_TEST_DENY"
        );
        assert_eq!(of("panics")[1]["message"], "fixture: fails on purpose");
        assert_eq!(of("plain")[1]["event"], "ok");
        let suite_end = events.last().unwrap();
        assert_eq!(suite_end["type"], "suite");
        assert_eq!(suite_end["event"], "ok");
        assert_eq!(suite_end["ignored"], 4, "{suite_end}");
        assert_eq!(events[0]["test_count"], 10, "{:?}", events[0]);
    }
    // The real libtest, on the plain fixture suite: the same fields for an
    // ignored test with a reason.
    let mut cmd = Command::new(sibling_test_binary("skip_suite"));
    let libtest: Run = hermetic(&mut cmd)
        .args([
            "--format",
            "json",
            "-Z",
            "unstable-options",
            "--exact",
            "ignored_with_reason",
        ])
        .env("RUSTC_BOOTSTRAP", "1")
        .output()
        .unwrap()
        .into();
    let theirs = events(&libtest)
        .into_iter()
        .find(|e| e["event"] == "ignored")
        .unwrap_or_else(|| panic!("{}\n{}", libtest.stdout, libtest.stderr));
    let ours = suite(
        &[
            "--format",
            "json",
            "-Z",
            "unstable-options",
            "--exact",
            "panics",
        ],
        &[],
    );
    let ours = events(&ours)
        .into_iter()
        .find(|e| e["event"] == "ignored")
        .unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&ours),
        keys(&theirs),
        "ours {ours}, libtest's {theirs}"
    );
}

/// Parameterised requirements under the runner: the test is ignored with
/// what failed for each, and the summary's matrix and causes name them.
#[test]
fn parameterised_requirements_skip_with_their_reasons() {
    let mut cmd = Command::new(sibling_test_binary("uncollected_suite"));
    // One at a time: the runner captures nothing, so a test's own output
    // could land inside another's result line.
    cmd.arg("--test-threads=1");
    let run: Run = hermetic(&mut cmd).output().unwrap().into();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let line = run.line("test needs_a_missing_program ").unwrap();
    assert!(
        line.contains(
            "ignored (needs program(userns-test-no-such-program): finding \
             userns-test-no-such-program failed: userns-test-no-such-program on PATH not found"
        ),
        "{line}"
    );
    assert!(
        run.stderr
            .contains("  program(userns-test-no-such-program)  no  finding "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.lines().any(|l| l.starts_with("  C")
            && l.ends_with(" userns-test-no-such-program is not installed")),
        "{}",
        run.stderr
    );
}
