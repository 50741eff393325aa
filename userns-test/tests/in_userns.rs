//! `#[in_userns(...)]` end to end: the fixture suites
//! (`tests/fixtures/in_userns_suite.rs` under libtest,
//! `in_userns_runner_suite.rs` under the runner) and the example
//! (`examples/suite/tests/in_userns.rs`) run as child processes on real
//! and hermetic hosts; their outcomes, output and skips asserted.

mod common;

use std::process::Command;

use common::{Host, Run, example_binary, hermetic, sibling_test_binary};
use userns_test::requires_userns;

fn run(host: &Host, binary: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let path = if binary == "example" {
        example_binary("in_userns")
    } else {
        sibling_test_binary(binary)
    };
    let mut cmd = host.command(path, args);
    hermetic(&mut cmd).envs(env.iter().copied());
    cmd.output().expect("run the suite").into()
}

/// `binary` asked for `test` alone (`--exact`) as nextest asks, on `host`:
/// a child of a process named `cargo-nextest` (a link to `timeout` in
/// `dir`), with `NEXTEST_RUN_ID`. Such a process enters an `#[in_userns]`
/// test's namespaces itself.
fn as_nextest_runs(
    dir: &std::path::Path,
    host: &Host,
    binary: &str,
    test: &str,
    env: &[(&str, &str)],
) -> Run {
    let fake = dir.join("cargo-nextest");
    if !fake.exists() {
        std::os::unix::fs::symlink("/usr/bin/timeout", &fake).unwrap();
    }
    let path = sibling_test_binary(binary);
    let args = ["60", path.to_str().unwrap(), "--exact", test, "--nocapture"];
    let mut cmd = host.command(&fake, &args);
    hermetic(&mut cmd)
        .env("NEXTEST_RUN_ID", "in-place-run")
        .envs(env.iter().copied())
        .output()
        .expect("run the suite under a nextest")
        .into()
}

fn skip_line<'a>(run: &'a Run, test: &str) -> Option<&'a str> {
    let prefix = format!("userns-test: skipped {test}: ");
    run.stderr.lines().find(|l| l.starts_with(&prefix))
}

/// The line of the fixture holding `text`, 1-based.
fn fixture_line(text: &str) -> usize {
    let source = include_str!("fixtures/in_userns_suite.rs");
    source
        .lines()
        .position(|l| l.contains(text))
        .expect("in the fixture")
        + 1
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
}

/// A panic, an `Err`, an abort: each fails its test with what happened in
/// the child, the panic with its message and its location in the body.
/// Passing tests' output is captured as libtest captures (shown for the
/// failures only); with --nocapture it is all shown, both streams. The
/// host's hostname is untouched by the body that set its own. Both ways
/// of starting a body (forked by the zygote, the binary executed again)
/// give the same.
#[test]
fn outcomes_and_output_reach_libtest() {
    // Forked by the zygote, and executed again: the same outcomes.
    for exec in ["0", "1"] {
        let before = hostname();
        let out = run(
            &Host::Plain,
            "in_userns_suite",
            &[],
            &[
                ("IN_USERNS_FIXTURE", "fail"),
                ("USERNS_TEST_IN_USERNS_EXEC", exec),
            ],
        );
        assert_eq!(hostname(), before, "the host's hostname changed");
        assert_eq!(
            out.code,
            Some(101),
            "exec={exec}: {}\n{}",
            out.stdout,
            out.stderr
        );
        for (test, status) in [
            ("panics_when_asked", "FAILED"),
            ("returns_err_when_asked", "FAILED"),
            ("aborts_when_asked", "FAILED"),
            ("exits_when_asked", "FAILED"),
            ("prints_and_passes", "ok"),
            ("async_result_in_pid_namespace", "ok"),
            ("with_requires_userns", "ok"),
            ("hangs_when_asked", "ok"),
            ("should_panic_is_met - should panic", "ok"),
            ("ignored_until_asked", "ignored, runs when asked"),
            // "ok" only when the body's record came back: the names reached
            // the process executed for them.
            ("prüft_ünicode_namen", "ok"),
            ("r#match", "ok"),
        ] {
            assert!(
                out.stdout.contains(&format!("test {test} ... {status}\n")),
                "{test}: {}",
                out.stdout
            );
        }
        let section = |test: &str| {
            let start = out
                .stdout
                .find(&format!("---- {test} stdout ----"))
                .unwrap_or_else(|| panic!("no output section for {test}: {}", out.stdout));
            let rest = &out.stdout[start..];
            let end = rest[5..].find("\n---- ").map_or(rest.len(), |e| e + 5);
            rest[..end].to_owned()
        };
        let panicked = section("panics_when_asked");
        let location = format!(
            "in_userns_suite.rs:{}:9: boom in the namespace \u{202e}🦀",
            fixture_line("boom in the namespace")
        );
        assert!(
        panicked.contains(&format!(
            "panics_when_asked panicked in its own user and uts namespaces at userns-test/tests/fixtures/{location}"
        )),
        "{panicked}"
    );
        assert!(
            panicked.contains("BODY RAN: panics_when_asked"),
            "{panicked}"
        );
        assert!(
            section("returns_err_when_asked").contains("Error: \"the body said no\""),
            "{}",
            section("returns_err_when_asked")
        );
        let aborted = section("aborts_when_asked");
        assert!(
            aborted.contains(
                "aborts_when_asked, running in its own user and ipc namespaces, was killed by \
             SIGABRT (6) before it reported an outcome"
            ),
            "{aborted}"
        );
        assert!(aborted.contains("BODY RAN: aborts_when_asked"), "{aborted}");
        let exited = section("exits_when_asked");
        assert!(
            exited.contains(
                "exited with status 125 without reporting an outcome, so whether its body ran is \
             unknown"
            ),
            "{exited}"
        );
        // Passing tests' output stays captured.
        assert!(!out.stdout.contains("BODY RAN: prints_and_passes"));
        assert!(!out.stderr.contains("BODY RAN: prints_and_passes"));
    }
    let shown = run(
        &Host::Plain,
        "in_userns_suite",
        &["prints_and_passes", "--nocapture"],
        &[],
    );
    assert_eq!(shown.code, Some(0), "{}\n{}", shown.stdout, shown.stderr);
    assert!(
        shown
            .stdout
            .contains("BODY RAN: prints_and_passes, to stdout ✓\n")
    );
    assert!(
        shown
            .stderr
            .contains("BODY RAN: prints_and_passes, to stderr\n")
    );
    // The harness's own lines in the child are not the test's output.
    assert_eq!(
        shown.stdout.matches("running 1 test").count(),
        1,
        "{}",
        shown.stdout
    );
}

/// An ignored test runs in its namespaces when asked for.
#[test]
fn ignored_tests_run_when_asked() {
    let out = run(
        &Host::Plain,
        "in_userns_suite",
        &["--ignored", "--nocapture", "ignored_until_asked"],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("BODY RAN: ignored_until_asked"),
        "{}",
        out.stdout
    );
}

/// A body that never ends is killed at the time bound with the process
/// it started; the failure says so.
#[test]
fn a_hung_body_is_killed_with_what_it_started() {
    let out = run(
        &Host::Plain,
        "in_userns_suite",
        &["hangs_when_asked"],
        &[
            ("IN_USERNS_FIXTURE", "hang"),
            ("USERNS_TEST_IN_USERNS_TIMEOUT", "2"),
        ],
    );
    assert_eq!(out.code, Some(101), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "hangs_when_asked, running in its own user and net namespaces, did not finish \
             within 2 s, and was killed with its process group"
        ),
        "{}",
        out.stdout
    );
    let pid: u32 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SLEEP PID: "))
        .expect("the body started its child")
        .parse()
        .unwrap();
    // Its pid in the host's namespace is not known (it ran in the test's
    // user namespace only, not a PID namespace: the number is the host's).
    let alive = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.starts_with("sleep\0"));
    assert!(!alive, "the body's child outlived the test");
}

/// The probe found the namespaces available, then the process lost them
/// (a seccomp filter applied in between): re-executed
/// (`USERNS_TEST_IN_USERNS_EXEC=1`), the body's process inherits the
/// filter and the test fails with the step and the errno, at once. Forked
/// by the zygote (the default), the body's process is a copy of the test
/// process made before `main`, without the filter the test thread
/// installed since: the body runs.
#[test]
fn a_refusal_after_the_probe_fails_with_the_step_and_errno() {
    let result = |exec: &str| {
        let out = run(
            &Host::Plain,
            "in_userns_suite",
            &["namespaces_refused_after_the_probe", "--nocapture"],
            &[
                ("IN_USERNS_FIXTURE", "fault"),
                ("USERNS_TEST_IN_USERNS_EXEC", exec),
            ],
        );
        assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("FAULT RESULT: "))
            .unwrap_or_else(|| panic!("{}", out.stdout))
            .to_owned()
    };
    let executed = result("1");
    assert!(
        executed.contains(
            "prints_and_passes: entering its own user, net and mount namespaces failed: \
             unshare(CLONE_NEWUSER): EPERM (1)"
        ),
        "{executed}"
    );
    assert_eq!(result("0"), "Ok(())");
}

/// A body forked by the zygote sees what the test process is when the test
/// runs, as the binary executed again would: every constructor's work, the
/// environment and the working directory set since `main`; with the zygote
/// killed, the binary is executed again and the body still runs. (The
/// fixture's test is selected by a filter, not `--exact`: a process asked
/// for one test by its exact name, a plain one here, makes no zygote.)
#[test]
fn bodies_see_the_test_process_as_it_is() {
    let dir = std::env::temp_dir().join(format!("in-userns-late-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for exec in ["0", "1"] {
        let out = run(
            &Host::Plain,
            "in_userns_suite",
            &["runs_a_body_after_changes", "--nocapture"],
            &[
                ("IN_USERNS_FIXTURE", "late"),
                ("IN_USERNS_DIR", dir.to_str().unwrap()),
                ("USERNS_TEST_IN_USERNS_EXEC", exec),
            ],
        );
        assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("LATE RESULT: Ok(())"), "{}", out.stdout);
        let expected = format!("LATE: Ok(\"set at run time ✓\") in {}", dir.display());
        assert!(
            out.stdout.contains(&expected),
            "exec={exec}: {}",
            out.stdout
        );
    }
    let out = run(
        &Host::Plain,
        "in_userns_suite",
        &["runs_a_body_after_changes", "--nocapture"],
        &[("IN_USERNS_FIXTURE", "nozygote")],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("KILLED ZYGOTE: 1"), "{}", out.stdout);
    assert!(out.stdout.contains("CHILDREN: \"\""), "{}", out.stdout);
    assert!(out.stdout.contains("LATE RESULT: Ok(())"), "{}", out.stdout);
    // The plain runs of the constructor check, under both ways.
    for exec in ["0", "1"] {
        let out = run(
            &Host::Plain,
            "in_userns_suite",
            &["--exact", "sees_the_test_process_as_it_is"],
            &[("USERNS_TEST_IN_USERNS_EXEC", exec)],
        );
        assert_eq!(
            out.code,
            Some(0),
            "exec={exec}: {}\n{}",
            out.stdout,
            out.stderr
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A malformed `USERNS_TEST_IN_USERNS_EXEC` fails the test with the
/// variable and the values it takes, before anything starts.
#[test]
fn a_malformed_way_to_start_is_an_error() {
    let out = run(
        &Host::Plain,
        "in_userns_suite",
        &["prints_and_passes"],
        &[("USERNS_TEST_IN_USERNS_EXEC", "yes")],
    );
    assert_eq!(out.code, Some(101), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "USERNS_TEST_IN_USERNS_EXEC=\"yes\": expected 1 (execute the test binary again for \
             each #[in_userns] body) or 0"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("BODY RAN"), "{}", out.stdout);
}

/// A test process that ignores SIGCHLD and reaps every child in a thread
/// gets each body's outcome whole, 20 times out of 20.
#[test]
fn a_hostile_test_process_gets_the_outcome() {
    let out = run(
        &Host::Plain,
        "in_userns_suite",
        &["hostile_test_process", "--nocapture"],
        &[("IN_USERNS_FIXTURE", "hostile")],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let results: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("HOSTILE RESULT: "))
        .collect();
    assert_eq!(results, ["Ok(())"; 20], "{}", out.stdout);
}

/// A malformed or out-of-range time bound fails the test with the
/// variable, its value and the range, before anything starts: never a
/// panic of the arithmetic (u64::MAX seconds overflowed `Instant`).
#[test]
fn a_malformed_time_bound_is_an_error() {
    for (value, problem) in [
        ("ten", "`ten` is not a whole number of seconds"),
        ("-1", "`-1` is not a whole number of seconds"),
        (
            "18446744073709551615",
            "`18446744073709551615` is out of range: from 0 to 604800 seconds",
        ),
        (
            "99999999999999999999999",
            "`99999999999999999999999` is out of range: from 0 to 604800 seconds",
        ),
    ] {
        let out = run(
            &Host::Plain,
            "in_userns_suite",
            &["prints_and_passes"],
            &[("USERNS_TEST_IN_USERNS_TIMEOUT", value)],
        );
        assert_eq!(
            out.code,
            Some(101),
            "{value}: {}\n{}",
            out.stdout,
            out.stderr
        );
        let expected = format!(
            "USERNS_TEST_IN_USERNS_TIMEOUT=\"{value}\": {problem} (0: no bound; unset: 600 s)"
        );
        assert!(out.stdout.contains(&expected), "{expected}\n{}", out.stdout);
        assert!(!out.stdout.contains("overflow"), "{}", out.stdout);
        assert!(!out.stdout.contains("BODY RAN"), "{}", out.stdout);
    }
}

/// Variables that mark the process executed for a test, left in the
/// environment without the parent's channel: a normal run, under libtest
/// (every test, the failure a failure) and under the runner (every test
/// listed and run), never a "child" that exits 0.
#[test]
fn leftover_child_variables_make_a_normal_run() {
    let leaked = [
        (
            "USERNS_TEST_IN_USERNS_TEST",
            "in_userns_suite::panics_when_asked",
        ),
        ("USERNS_TEST_IN_USERNS_NAMESPACES", "uts"),
        (
            "USERNS_TEST_IN_USERNS_KEY",
            "00112233445566778899aabbccddeeff",
        ),
    ];
    let mut env = leaked.to_vec();
    env.push(("IN_USERNS_FIXTURE", "fail"));
    let plain = run(&Host::Plain, "in_userns_suite", &[], &env);
    assert_eq!(plain.code, Some(101), "{}\n{}", plain.stdout, plain.stderr);
    assert!(
        plain.stdout.contains("test panics_when_asked ... FAILED"),
        "{}",
        plain.stdout
    );
    assert!(
        plain.stdout.contains("test prints_and_passes ... ok"),
        "{}",
        plain.stdout
    );
    let mut env = leaked.to_vec();
    env[0].1 = "in_userns_runner_suite::runs_in_namespaces";
    let list = run(&Host::Plain, "in_userns_runner_suite", &["--list"], &env);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert!(
        list.stdout.contains("runs_in_namespaces: test"),
        "{}",
        list.stdout
    );
    let runner = run(&Host::Plain, "in_userns_runner_suite", &[], &env);
    assert_eq!(runner.code, Some(0), "{}", runner.stderr);
    assert!(
        runner
            .stdout
            .contains("test result: ok. 4 passed; 0 failed"),
        "{}",
        runner.stdout
    );
}

/// What sandbox bodies do to their process: a daemon in a session of its
/// own dies with the test; a forked child's panic reaches the body as the
/// child's failure, and only the body's own outcome is the test's; a body
/// that closes every descriptor and logs to a file of its own finds only
/// its line there; a body that kills its supervisor fails as that, at
/// once, not as a time-out.
#[test]
fn bodies_that_fork_close_and_kill() {
    let dir = std::env::temp_dir().join(format!("userns-test-bodies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let pid_file = dir.join("daemon.pid");
    let daemon = run(
        &Host::Plain,
        "in_userns_suite",
        &["--exact", "starts_a_daemon"],
        &[
            ("IN_USERNS_FIXTURE", "daemon"),
            ("IN_USERNS_DAEMON_PID_FILE", pid_file.to_str().unwrap()),
        ],
    );
    assert_eq!(daemon.code, Some(0), "{}\n{}", daemon.stdout, daemon.stderr);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(pid, 0) only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    if alive {
        // SAFETY: ending what the test left behind.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(!alive, "the daemon {pid} outlived its test");

    let fork = run(
        &Host::Plain,
        "in_userns_suite",
        &["--exact", "forked_child_panics"],
        &[("IN_USERNS_FIXTURE", "forkpanic")],
    );
    assert_eq!(fork.code, Some(101), "{}\n{}", fork.stdout, fork.stderr);
    assert!(
        fork.stdout
            .contains("the forked child failed: status 0x6500"),
        "{}",
        fork.stdout
    );

    let log = dir.join("body.log");
    let closed = run(
        &Host::Plain,
        "in_userns_suite",
        &["--exact", "writes_to_its_own_log"],
        &[
            ("IN_USERNS_FIXTURE", "closefds"),
            ("IN_USERNS_LOG", log.to_str().unwrap()),
        ],
    );
    assert_eq!(closed.code, Some(0), "{}\n{}", closed.stdout, closed.stderr);
    assert_eq!(std::fs::read(&log).unwrap(), b"log line\n");

    let started = std::time::Instant::now();
    let killer = run(
        &Host::Plain,
        "in_userns_suite",
        &["--exact", "kills_its_supervisor"],
        &[("IN_USERNS_FIXTURE", "killparent")],
    );
    assert_eq!(
        killer.code,
        Some(101),
        "{}\n{}",
        killer.stdout,
        killer.stderr
    );
    assert!(
        killer.stdout.contains(
            "the process supervising it was killed by SIGKILL (9) (did the body signal its \
             parent?)"
        ),
        "{}",
        killer.stdout
    );
    assert!(
        !killer.stdout.contains("did not finish within"),
        "{}",
        killer.stdout
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Under the runner (`harness = false`): a pass, a should_panic, and a
/// failure with the body's message, its PID 1 included.
#[test]
fn the_runner_runs_them_in_their_namespaces() {
    let ok = run(&Host::Plain, "in_userns_runner_suite", &[], &[]);
    assert_eq!(ok.code, Some(0), "{}\n{}", ok.stdout, ok.stderr);
    for test in [
        "runs_in_namespaces",
        "fails_when_asked",
        "should_panic_under_the_runner",
    ] {
        assert!(
            ok.stdout
                .lines()
                .any(|l| l.starts_with(&format!("test {test} ")) && l.ends_with(" ok")),
            "{test}: {}",
            ok.stdout
        );
    }
    let failed = run(
        &Host::Plain,
        "in_userns_runner_suite",
        &["fails_when_asked"],
        &[("IN_USERNS_FIXTURE", "fail")],
    );
    assert_eq!(
        failed.code,
        Some(101),
        "{}\n{}",
        failed.stdout,
        failed.stderr
    );
    let all = format!("{}{}", failed.stdout, failed.stderr);
    let line = include_str!("fixtures/in_userns_runner_suite.rs")
        .lines()
        .position(|l| l.contains("panic!(\"asked to fail"))
        .unwrap()
        + 1;
    assert!(
        all.contains(&format!(
            "fails_when_asked panicked in its own user and pid namespaces at \
             userns-test/tests/fixtures/in_userns_runner_suite.rs:{line}:9: asked to fail, as \
             PID 1"
        )),
        "{all}"
    );
}

/// Registered only for the check below (it would run if asked).
#[userns_test::in_userns(net, mount, pid, uts, ipc, cgroup, time)]
#[ignore = "registered for macro_and_library_agree_on_implied_requirements"]
fn every_namespace() {}

/// The macro writes the requirements each namespace implies into the test
/// (they must be constants); the library documents them
/// (`Namespace::requires`). Both tables say the same.
#[test]
fn macro_and_library_agree_on_implied_requirements() {
    let case = userns_test::__private::inventory::iter::<userns_test::__private::TestCase>()
        .find(|c| c.path.ends_with("::every_namespace"))
        .expect("every_namespace is registered");
    assert_eq!(
        case.requires,
        userns_test::in_userns::required_abilities(&userns_test::Namespace::ALL)
    );
}

/// The example on the host matrix: as root and as uid 65534 every test
/// runs; under a Docker-like seccomp filter every test is skipped with
/// the cause, said once in the summary, and `USERNS_TEST_REQUIRE` turns
/// the skips into failures.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn example_on_the_host_matrix() {
    const TESTS: [&str; 5] = [
        "serves_http_on_port_80",
        "mounts_a_private_tmpfs",
        "is_pid_1",
        "sets_the_hostname",
        "async_bodies_run_there_too",
    ];
    for host in [Host::Plain, Host::Unprivileged] {
        let out = run(&host, "example", &[], &[]);
        assert_eq!(
            out.code,
            Some(0),
            "{host:?}\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout.contains("test result: ok. 5 passed; 0 failed"),
            "{host:?}: {}",
            out.stdout
        );
        assert!(
            !out.stderr.contains("userns-test: skipped"),
            "{host:?}: {}",
            out.stderr
        );
    }
    let docker = run(&Host::DockerSeccomp, "example", &[], &[]);
    assert_eq!(docker.code, Some(0), "{}\n{}", docker.stdout, docker.stderr);
    for test in TESTS {
        assert!(
            skip_line(&docker, test).is_some(),
            "{test}: {}",
            docker.stderr
        );
    }
    let summary = &docker.stderr[docker.stderr.find("userns-test: host:").unwrap()..];
    assert_eq!(
        summary
            .matches("a seccomp filter refuses creating namespaces")
            .count(),
        1,
        "{summary}"
    );
    assert!(summary.contains("skipped (5)"), "{summary}");
    let required = run(
        &Host::DockerSeccomp,
        "example",
        &[],
        &[("USERNS_TEST_REQUIRE", "net")],
    );
    assert_eq!(required.code, Some(101), "{}", required.stdout);
}

/// Under `cargo nextest run` (one process per test): the libtest and the
/// runner suites pass; the failure asked for is nextest's FAIL with the
/// body's message.
#[requires_userns(program("cargo-nextest"))]
fn under_nextest() {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let nextest = |env: &[(&str, &str)]| {
        let mut cmd = Command::new("cargo");
        cmd.args([
            "nextest",
            "run",
            "-p",
            "userns-test",
            "-E",
            "binary(in_userns_suite) | binary(in_userns_runner_suite)",
            "--no-fail-fast",
            "--color",
            "never",
            "--status-level",
            "all",
            "--final-status-level",
            "none",
        ])
        .current_dir(workspace);
        let out = hermetic(&mut cmd)
            .envs(env.iter().copied())
            .output()
            .expect("run nextest");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let status = |text: &str, binary: &str, test: &str| {
        text.lines()
            .find(|l| l.trim_end().ends_with(&format!("{binary} {test}")))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
    };
    let (code, text) = nextest(&[]);
    assert_eq!(code, Some(0), "{text}");
    for (binary, test) in [
        ("in_userns_suite", "prints_and_passes"),
        ("in_userns_suite", "async_result_in_pid_namespace"),
        ("in_userns_runner_suite", "runs_in_namespaces"),
        ("in_userns_runner_suite", "fails_when_asked"),
    ] {
        assert_eq!(
            status(&text, binary, test).as_deref(),
            Some("PASS"),
            "{test}: {text}"
        );
    }
    let (code, text) = nextest(&[("IN_USERNS_FIXTURE", "fail")]);
    assert_eq!(code, Some(100), "{text}");
    assert_eq!(
        status(&text, "in_userns_runner_suite", "fails_when_asked").as_deref(),
        Some("FAIL"),
        "{text}"
    );
    assert!(text.contains("asked to fail, as PID 1"), "{text}");
    assert_eq!(
        status(&text, "in_userns_suite", "panics_when_asked").as_deref(),
        Some("FAIL"),
        "{text}"
    );
}

/// `--include-ignored` runs an `#[in_userns]` test whose namespaces were
/// found unavailable: its failure says so, with what the probes found and
/// what failed entering them, and never that the host changed.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn a_forced_run_says_the_namespaces_were_found_unavailable() {
    let out = run(
        &Host::DockerSeccomp,
        "in_userns_runner_suite",
        &["runs_in_namespaces", "--exact", "--include-ignored"],
        &[],
    );
    assert_eq!(out.code, Some(101), "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    // The probes' one failure, said once for the three abilities.
    assert!(
        all.contains(
            "runs_in_namespaces was run although its namespaces were found unavailable \
             (needs user, net, mount: unshare(CLONE_NEWUSER) failed: EPERM (1)), as --ignored \
             or --include-ignored asks"
        ),
        "{all}"
    );
    assert!(
        all.contains("entering its own user, net and mount namespaces failed: unshare(CLONE_NEWUSER): EPERM (1)"),
        "{all}"
    );
    assert!(!all.contains("the host changed"), "{all}");
}

/// `#[in_userns(mount, ids = 65536)]` as uid 65534 with a range of its
/// own: uids and gids 0 to 65535 mapped (0 to the caller, the rest from
/// the range, by newuidmap and newgidmap), setgroups allowed; the body
/// chowns to 1000, sets its groups and runs a child as uid 1000; as root,
/// without a range, the same. Without a range (not root) the test is
/// skipped with `subids`' cause; with a range too small for `ids`,
/// skipped saying how many ids the file gives and how to give more.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    program("newuidmap"),
    program("newgidmap")
)]
fn a_range_of_ids_from_the_callers_subordinate_ranges() {
    // uid 65534 with a range of its own; root, which needs none (it maps
    // its own ids, or uses its range where it has one).
    for (host, outside) in [(Host::SubordinateIds(65536), 65534), (Host::Plain, 0)] {
        let ok = run(
            &host,
            "in_userns_ids_suite",
            &["a_range_of_ids", "--nocapture"],
            &[],
        );
        assert_eq!(ok.code, Some(0), "{host:?}\n{}\n{}", ok.stdout, ok.stderr);
        let said = format!("uid 0 is host uid {outside}");
        assert!(ok.stdout.contains(&said), "{host:?}\n{}", ok.stdout);
        assert!(
            ok.stdout.contains("test result: ok. 1 passed; 0 failed"),
            "{host:?}\n{}",
            ok.stdout
        );
        assert!(skip_line(&ok, "a_range_of_ids").is_none(), "{}", ok.stderr);
        // A nextest test process maps the range itself, before `main`.
        let dir = common::sticky_scratch(&format!("ids-in-place-{outside}"));
        let ok = as_nextest_runs(&dir, &host, "in_userns_ids_suite", "a_range_of_ids", &[]);
        assert_eq!(ok.code, Some(0), "{host:?}\n{}\n{}", ok.stdout, ok.stderr);
        assert!(ok.stdout.contains(&said), "{host:?}\n{}", ok.stdout);
        assert!(
            ok.stdout.contains("BODY PARENT: cargo-nextest"),
            "{}",
            ok.stdout
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    let none = run(&Host::SubordinateIds(0), "in_userns_ids_suite", &[], &[]);
    assert_eq!(none.code, Some(0), "{}\n{}", none.stdout, none.stderr);
    let line = skip_line(&none, "a_range_of_ids").expect("skipped");
    assert!(
        line.ends_with(
            "needs subids: looking up nobody in /etc/subuid failed: a range for nobody not found"
        ),
        "{line}"
    );

    // A range too short for the ids: skipped with what the file gives and
    // how to give more; failed under USERNS_TEST_REQUIRE=subids.
    let small = run(&Host::SubordinateIds(100), "in_userns_ids_suite", &[], &[]);
    assert_eq!(small.code, Some(0), "{}\n{}", small.stdout, small.stderr);
    let line = skip_line(&small, "a_range_of_ids").expect("skipped");
    assert!(
        line.ends_with(
            "needs subids: looking up nobody in /etc/subuid failed: 100 ids from 100000, 65535 \
             wanted"
        ),
        "{line}"
    );
    assert!(
        small.stderr.contains(
            "/etc/subuid gives nobody 100 ids (from 100000), and the test maps 65535 besides \
             uid 0 (ids = 65536)"
        ) && small
            .stderr
            .contains("`sudo usermod --add-subuids 100000-165534 nobody`"),
        "{}",
        small.stderr
    );
    let required = run(
        &Host::SubordinateIds(100),
        "in_userns_ids_suite",
        &["a_range_of_ids"],
        &[("USERNS_TEST_REQUIRE", "subids")],
    );
    assert_eq!(
        required.code,
        Some(101),
        "{}\n{}",
        required.stdout,
        required.stderr
    );
}

/// A body failing with EPERM from a call no user namespace allows (here
/// mknod of a device) fails with one more line: it ran in a user
/// namespace, and the limit that applies, with what to use instead. A
/// failure that names no such errno gains nothing.
#[test]
fn a_limit_of_user_namespaces_is_said_where_it_bites() {
    let out = run(
        &Host::Plain,
        "in_userns_ids_suite",
        &["makes_a_device_node", "--exact"],
        &[("IN_USERNS_IDS_FIXTURE", "limits")],
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    if let Some(line) = skip_line(&out, "makes_a_device_node") {
        // Not on a host without mount namespaces: nothing to judge.
        assert!(line.contains("needs"), "{line}");
        return;
    }
    assert_eq!(out.code, Some(101), "{all}");
    assert!(all.contains("Operation not permitted"), "{all}");
    let note = all
        .lines()
        .find(|l| l.starts_with("userns-test: note: the body ran as root of a user namespace"))
        .unwrap_or_else(|| panic!("no note:\n{all}"));
    assert!(
        note.contains("(uid and gid 0 alone mapped), not of the host, and failed with EPERM or EINVAL; a limit that may apply: device nodes cannot be created"),
        "{note}"
    );
    assert_eq!(all.matches("userns-test: note:").count(), 1, "{all}");
    // The fixture's passing run: no note.
    let fine = run(
        &Host::Plain,
        "in_userns_ids_suite",
        &["makes_a_device_node", "--exact"],
        &[],
    );
    assert_eq!(fine.code, Some(0), "{}{}", fine.stdout, fine.stderr);
    assert!(!fine.stderr.contains("userns-test: note:"));
}

/// Where no user namespace can be made (`user.max_user_namespaces=0` in a
/// user namespace whose root holds CAP_SYS_ADMIN; `user` denied) the
/// privileged caller enters the test's namespaces itself: the body runs
/// there, in the caller's user namespace, and nothing is skipped; a test
/// insisting on a user namespace, or mapping ids, is still skipped. Where
/// the namespaces are refused too (a Docker-like filter), the skip names
/// both refusals.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn the_privileged_caller_runs_them_where_no_user_namespace_can_be_made() {
    let own_user_namespace = |out: &Run| -> Option<String> {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("USER NAMESPACE ").map(str::to_owned))
    };
    // A new user namespace where one can be made.
    let normal = run(
        &Host::Plain,
        "in_userns_ids_suite",
        &["says_its", "--nocapture"],
        &[],
    );
    assert_eq!(normal.code, Some(0), "{}\n{}", normal.stdout, normal.stderr);
    let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(
        own_user_namespace(&normal),
        Some(mine.display().to_string())
    );

    for (host, env) in [
        (Host::NoUserNamespaces, vec![]),
        (Host::Plain, vec![("USERNS_TEST_DENY", "user")]),
    ] {
        let out = run(&host, "in_userns_ids_suite", &["--nocapture"], &env);
        assert_eq!(
            out.code,
            Some(0),
            "{host:?}\n{}\n{}",
            out.stdout,
            out.stderr
        );
        // The body ran, without a user namespace of its own: in this
        // process's (DENY), or in the one the host was built in, where no
        // other can be made.
        let inside = own_user_namespace(&out).unwrap_or_else(|| panic!("{host:?}: {}", out.stdout));
        match host {
            Host::Plain => assert_eq!(inside, mine.display().to_string()),
            _ => assert_ne!(inside, mine.display().to_string()),
        }
        assert!(
            skip_line(&out, "says_its_user_namespace").is_none(),
            "{host:?}: {}",
            out.stderr
        );
        // Insisting on a user namespace, or on ids: skipped as before.
        let insists = skip_line(&out, "insists_on_a_user_namespace").expect("skipped");
        assert!(insists.contains("needs user"), "{insists}");
        assert!(
            skip_line(&out, "a_range_of_ids").is_some(),
            "{}",
            out.stderr
        );
        let skips = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("userns-test: skipped "))
            .count();
        assert_eq!(skips, 2, "{host:?}: {}", out.stderr);
    }

    // The runner weighs the caller's way the same: its net+mount test and
    // its PID 1 test run, as the caller, where no user namespace can be
    // made.
    let runner = run(&Host::NoUserNamespaces, "in_userns_runner_suite", &[], &[]);
    assert_eq!(runner.code, Some(0), "{}\n{}", runner.stdout, runner.stderr);
    for body in ["BODY RAN: runs_in_namespaces", "BODY RAN: fails_when_asked"] {
        assert!(runner.stdout.contains(body), "{}", runner.stdout);
    }
    assert!(
        runner.stdout.contains("0 ignored"),
        "{}\n{}",
        runner.stdout,
        runner.stderr
    );

    // Nothing can be entered: skipped, both refusals named.
    let refused = run(&Host::DockerSeccomp, "in_userns_ids_suite", &[], &[]);
    assert_eq!(
        refused.code,
        Some(0),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    let line = skip_line(&refused, "says_its_user_namespace").expect("skipped");
    assert!(
        line.ends_with(
            "needs user, net: unshare(CLONE_NEWUSER) failed: EPERM (1) | needs net: \
             unshare(CLONE_NEWNET) failed: EPERM (1)"
        ),
        "{line}"
    );
    // One filter, one cause: the user probe's, which checked it.
    assert_eq!(
        refused
            .stderr
            .matches("a seccomp filter refuses creating namespaces")
            .count(),
        1,
        "{}",
        refused.stderr
    );
}

/// A nextest test process (a child of `cargo-nextest` with
/// `NEXTEST_RUN_ID`, asked for one test by `--exact`) enters the test's
/// namespaces itself, before `main`, and runs the body there: its parent
/// is nextest. It keeps what the other ways give: records written and
/// read back by `userns-test finish` (the run's directory was opened
/// before entering: inside the user namespace the host's root owns
/// nothing this user can see), a panic's message and location, a daemon
/// the body left killed, and the time bound, past which the test fails
/// with that said and what the body started is killed. As root and as
/// an unprivileged user.
#[test]
fn a_nextest_test_process_enters_the_namespaces_itself() {
    use common::{cli, sticky_scratch};
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            // The state follows the command name's closing parenthesis.
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state.is_none_or(|st| st != "Z")
        })
    };
    for host in [Host::Plain, Host::Unprivileged] {
        let dir = sticky_scratch(&format!("in-place-{}", matches!(host, Host::Plain)));
        let json = dir.join("report.json");
        let pid_file = dir.join("daemon.pid");
        let env = [("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())];
        let nextest = |test: &str, extra: &[(&str, &str)]| {
            let mut all = env.to_vec();
            all.extend_from_slice(extra);
            as_nextest_runs(&dir, &host, "in_userns_suite", test, &all)
        };

        let out = nextest("says_where_it_runs", &[]);
        assert_eq!(
            out.code,
            Some(0),
            "{host:?}: {}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout.contains("BODY PARENT: cargo-nextest"),
            "{host:?}: not entered in place: {}",
            out.stdout
        );
        assert!(
            !out.stderr.contains("userns-test:"),
            "{host:?}: {}",
            out.stderr
        );

        // As the privileged caller (no user namespace: `user` denied), in
        // place too.
        if matches!(host, Host::Plain) {
            let out = nextest("says_where_it_runs", &[("USERNS_TEST_DENY", "user")]);
            assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
            assert!(
                out.stdout.contains("BODY PARENT: cargo-nextest"),
                "as the caller, not entered in place: {}",
                out.stdout
            );
        }

        let out = nextest("panics_when_asked", &[("IN_USERNS_FIXTURE", "fail")]);
        assert_eq!(out.code, Some(101), "{host:?}: {}", out.stderr);
        let at = format!(
            "panics_when_asked panicked in its own user and uts namespaces at \
             userns-test/tests/fixtures/in_userns_suite.rs:{}:9: boom in the namespace",
            fixture_line("boom in the namespace")
        );
        assert!(out.stderr.contains(&at), "{host:?}: {}", out.stderr);

        let out = nextest(
            "starts_a_daemon",
            &[
                ("IN_USERNS_FIXTURE", "daemon"),
                ("IN_USERNS_DAEMON_PID_FILE", pid_file.to_str().unwrap()),
            ],
        );
        assert_eq!(out.code, Some(0), "{host:?}: {}", out.stderr);
        let daemon = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            !alive(daemon.trim()),
            "{host:?}: the daemon outlived the test"
        );

        let out = nextest(
            "hangs_when_asked",
            &[
                ("IN_USERNS_FIXTURE", "hang"),
                ("USERNS_TEST_IN_USERNS_TIMEOUT", "2"),
            ],
        );
        assert_eq!(out.code, Some(101), "{host:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(
                "hangs_when_asked, running in its own user and net namespaces, did not finish \
                 within 2 s: its process was ended, with every process it started"
            ),
            "{host:?}: {}",
            out.stderr
        );
        let sleep = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLEEP PID: "))
            .expect("the body started its child");
        assert!(
            !alive(sleep),
            "{host:?}: the body's child outlived the test"
        );

        // A body that ends the process, with status 0 even, fails.
        let out = nextest("exits_when_asked", &[("IN_USERNS_FIXTURE", "exit0")]);
        assert_eq!(out.code, Some(101), "{host:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("exits_when_asked, running in its own user namespace, ended its process"),
            "{host:?}: {}",
            out.stderr
        );

        // Under the runner, whose `main` the process never returns to.
        let out = as_nextest_runs(
            &dir,
            &host,
            "in_userns_runner_suite",
            "hangs_under_the_runner",
            &[
                env[0],
                ("IN_USERNS_FIXTURE", "hang"),
                ("USERNS_TEST_IN_USERNS_TIMEOUT", "2"),
            ],
        );
        assert_eq!(out.code, Some(101), "{host:?}: {}", out.stderr);

        // The records, read back after the run.
        let mut finish = host.command(cli(), &["finish"]);
        let finish = hermetic(&mut finish)
            .env("NEXTEST_RUN_ID", "in-place-run")
            .envs(env.iter().copied())
            .output()
            .expect("run userns-test finish");
        assert!(
            json.exists(),
            "{host:?}: {}",
            String::from_utf8_lossy(&finish.stderr)
        );
        let report = common::read_json(&json);
        for (test, outcome, says) in [
            ("says_where_it_runs", "passed", ""),
            ("panics_when_asked", "failed", "boom in the namespace"),
            ("starts_a_daemon", "passed", ""),
            ("hangs_when_asked", "failed", "did not finish within 2 s"),
            (
                "hangs_under_the_runner",
                "failed",
                "did not finish within 2 s",
            ),
        ] {
            let (got, message, _) = common::outcome_of(&report, test);
            assert_eq!(got, outcome, "{host:?}: {test}: {message}");
            assert!(message.contains(says), "{host:?}: {test}: {message}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
