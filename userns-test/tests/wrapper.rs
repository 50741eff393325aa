//! The `userns-test` command around a test run (`run`, `nextest`,
//! `finish`): never green when the report it writes is not, cancelled
//! without losing the report or leaving processes behind, one finish per
//! run, a private store where the shared one is hostile, no second run
//! over a live one's report, any path as bytes, and no message too large
//! to report.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    as_user, cli, crash_suite, hermetic, nextest_installed, outcome_of, private_scratch, read_json,
    sibling_test_binary, sticky_scratch, text, unused_uid, userns_test,
};
use userns_test::requires_userns;

fn fixture(name: &str) -> String {
    sibling_test_binary(name).to_str().unwrap().to_owned()
}

/// A test that ends its process with `exit(0)` makes its binary, cargo
/// and nextest exit 0; the report says it crashed, and the command's exit
/// status follows the report, not the binary: 1.
#[test]
fn a_crash_with_exit_status_zero_is_not_green() {
    let dir = private_scratch("wrapper-exit0");
    let json = dir.join("report.json");
    let env = [
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
        ("USERNS_TEST_FIXTURE_CRASH", "1"),
    ];
    let suite = fixture("crash_suite");
    let run = userns_test(&["run", "--", &suite, "--exact", "c_exits_zero"], &env);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains(
            "the test command exited with 0, but the report has 1 failed (1 crashed): exiting \
             with 1"
        ),
        "{}",
        text(&run.stderr)
    );
    let (outcome, _, crashed) = outcome_of(&read_json(&json), "c_exits_zero");
    assert_eq!((outcome.as_str(), crashed), ("failed", true));

    if nextest_installed() {
        let mut args = vec!["nextest", "--workspace", "--color", "never", "-E"];
        args.push("binary(crash_suite) & test(c_exits_zero)");
        let nextest = userns_test(&args, &env);
        assert_eq!(nextest.status.code(), Some(1), "{}", text(&nextest.stderr));
        let (outcome, message, crashed) = outcome_of(&read_json(&json), "c_exits_zero");
        assert_eq!((outcome.as_str(), crashed), ("failed", true), "{message}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run is finished once. A later `finish` (a job whose build failed, so
/// that no test recorded anything) does not present the earlier run as
/// its own: it says why, writes a report of no tests, and keeps the
/// command's exit status. In CI, the newest run of another job is not
/// this job's either.
#[test]
fn a_run_is_finished_once_and_only_by_its_job() {
    let dir = private_scratch("wrapper-once");
    let json = dir.join("report.json");
    let env = [("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())];
    let suite = fixture("crash_suite");
    let run = userns_test(&["run", "--", &suite], &env);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(read_json(&json)["counts"]["passed"], 7);

    let again = userns_test(&["finish", "--exit-code", "101"], &env);
    assert_eq!(again.status.code(), Some(101), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("was finished already"),
        "{}",
        text(&again.stderr)
    );
    let report = read_json(&json);
    assert_eq!(report["run"]["kind"], "none", "{report:#}");
    assert_eq!(report["run"]["exit_code"], 101);
    assert_eq!(report["tests"].as_array().unwrap().len(), 0);
    assert!(
        report["run"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("no test process recorded anything since"),
        "{report:#}"
    );
    let zero = userns_test(&["finish"], &env);
    assert_eq!(zero.status.code(), Some(2), "{}", text(&zero.stderr));

    // Another CI job's run, not finished: not this job's to finish.
    let job = |id: &'static str| {
        [
            ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
            ("GITHUB_RUN_ID", id),
            ("GITHUB_JOB", "test"),
        ]
    };
    let first = crash_suite(&[], &job("1"));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let other = userns_test(&["finish", "--exit-code", "0"], &job("2"));
    assert_eq!(other.status.code(), Some(2), "{}", text(&other.stderr));
    assert!(
        text(&other.stderr).contains("belongs to another CI job (github 1/1/test)"),
        "{}",
        text(&other.stderr)
    );
    let own = userns_test(&["finish", "--exit-code", "0"], &job("1"));
    assert_eq!(own.status.code(), Some(0), "{}", text(&own.stderr));
    assert_eq!(read_json(&json)["counts"]["passed"], 7);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The wrapper's child processes, with their executables.
fn processes_running(exe: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .collect()
}

/// SIGTERM to `userns-test run` (CI cancelling a job): the signal reaches
/// the test binary below `sh` (as below cargo), the command exits 143
/// within its grace period, writes the report (the running test crashed,
/// the others as they ended) and leaves no process behind, even one that
/// ignores SIGTERM (killed when the grace period is over).
#[test]
fn a_cancelled_run_still_reports_and_leaves_nothing() {
    let suite = sibling_test_binary("fork_suite");
    for ignore_term in ["0", "1"] {
        let dir = private_scratch(&format!("wrapper-cancel-{ignore_term}"));
        let json = dir.join("report.json");
        let mark = dir.join("started");
        let script = format!("{} --test-threads=1; exit $?", suite.display());
        let mut cmd = Command::new(cli());
        hermetic(&mut cmd)
            .args(["run", "--", "sh", "-c", &script])
            .env("USERNS_TEST_REPORT_JSON", &json)
            .env("USERNS_TEST_CANCEL_GRACE_MS", "1000")
            .env("FORK_SUITE_SLOW", "1")
            .env("FORK_SUITE_IGNORE_TERM", ignore_term)
            .env("FORK_SUITE_MARK", &mark)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !mark.exists() {
            assert!(Instant::now() < deadline, "the slow test never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let sent = Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let took = sent.elapsed();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(143), "{stderr}");
        assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
        assert!(
            processes_running(&suite).is_empty(),
            "a test binary is left running"
        );
        let report = read_json(&json);
        assert_eq!(report["run"]["exit_code"], 143);
        let (outcome, message, crashed) = outcome_of(&report, "slow_when_asked");
        assert_eq!((outcome.as_str(), crashed), ("failed", true), "{message}");
        assert_eq!(outcome_of(&report, "forks_a_child_that_exits").0, "passed");
        assert_eq!(outcome_of(&report, "zz_passes").0, "not_run");
        let notes = report["run"]["notes"].to_string();
        assert!(
            notes.contains("the run was cancelled by SIGTERM"),
            "{notes}"
        );
        if ignore_term == "1" {
            assert!(notes.contains("were killed"), "{notes}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Another local user (a real second uid) squats the records' directory
/// beside the report in a shared sticky directory, and the private one
/// under `$TMPDIR`: `userns-test run` still runs the tests, says where it
/// recorded instead, and writes the report. With every private place
/// squatted too it runs nothing and says where it tried.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn a_hostile_store_falls_back_to_a_private_one() {
    let uid = unused_uid();
    let shared = sticky_scratch("wrapper-squat-shared");
    let tmp = sticky_scratch("wrapper-squat-tmp");
    let home = private_scratch("wrapper-squat-home");
    let me = nix::unistd::geteuid();
    let squat = as_user(
        uid,
        &format!(
            "mkdir -m 700 {0}/.report.json.parts {1}/userns-test-{me}",
            shared.display(),
            tmp.display()
        ),
    );
    assert!(squat.status.success(), "{}", text(&squat.stderr));
    let json = shared.join("report.json");
    let suite = fixture("crash_suite");
    let env = [
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
        ("TMPDIR", tmp.to_str().unwrap()),
        ("HOME", home.to_str().unwrap()),
    ];
    let out = userns_test(&["run", "--", &suite], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("belongs to uid {uid}"))
            && text(&out.stderr).contains("(they were kept in")
            && !text(&out.stderr).contains("incomplete"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(read_json(&json)["counts"]["passed"], 7);
    assert!(home.join(".cache/userns-test").is_dir());

    // Nowhere private left (the home's cache taken too): nothing runs,
    // and the error names each place.
    let squat = as_user(uid, &format!("mkdir -m 700 {}/.cache", tmp.display()));
    assert!(squat.status.success(), "{}", text(&squat.stderr));
    let mut cmd = Command::new(cli());
    let nowhere = hermetic(&mut cmd)
        .args(["run", "--", &suite])
        .env("USERNS_TEST_REPORT_JSON", &json)
        .env("TMPDIR", &tmp)
        .env("HOME", &tmp)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(2), "{}", text(&nowhere.stderr));
    assert!(
        text(&nowhere.stderr).contains("no private directory for this uid's working files"),
        "{}",
        text(&nowhere.stderr)
    );
    for d in [&shared, &tmp, &home] {
        let _ = Command::new("rm").arg("-rf").arg(d).status();
    }
}

/// Two `userns-test run`s aimed at one report: the second is refused
/// before running anything, naming the first, which writes its report.
#[test]
fn a_second_run_of_one_report_is_refused() {
    let dir = private_scratch("wrapper-two");
    let json = dir.join("report.json");
    let env = [("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())];
    let mark = dir.join("started");
    let suite = sibling_test_binary("fork_suite");
    let mut first = Command::new(cli());
    hermetic(&mut first)
        .args(["run", "--", suite.to_str().unwrap(), "--test-threads=1"])
        .envs(env)
        .env("FORK_SUITE_SLOW", "1")
        .env("FORK_SUITE_MARK", &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut first = first.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mark.exists() {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = userns_test(&["run", "--", &fixture("crash_suite")], &env);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second.stderr));
    let said = text(&second.stderr);
    assert!(
        said.contains("another run writes this report and is still going: wrapped run")
            && said.contains(&format!("(pid {}", first.id())),
        "{said}"
    );
    assert!(!json.exists(), "the second run wrote the report");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    assert_eq!(first.wait().unwrap().code(), Some(143));
    let report = read_json(&json);
    assert_eq!(report["run"]["kind"], "wrapped");
    assert_eq!(
        report["tests"][0]["binary"], "userns-test::fork_suite",
        "{report:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A report directory whose name is not UTF-8, under `userns-test
/// nextest`: nextest gets a configuration it can read (kept in a private
/// directory with a UTF-8 path), the tests run, and the report is written
/// with the crash signals nextest saw.
#[test]
fn a_report_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    if !nextest_installed() {
        userns_test::skip(module_path!(), "cargo-nextest is not installed");
        return;
    }
    let base = private_scratch("wrapper-bytes");
    let dir = base.join(std::ffi::OsStr::from_bytes(b"r\xffport"));
    std::fs::create_dir(&dir).unwrap();
    let json = dir.join("report.json");
    let mut cmd = Command::new(cli());
    cmd.args(["nextest", "--workspace", "-E", "binary(crash_suite)"])
        .args(["--no-fail-fast", "--color", "never"]);
    let out = hermetic(&mut cmd)
        .env("USERNS_TEST_REPORT_JSON", &json)
        .env("USERNS_TEST_FIXTURE_CRASH", "1")
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", text(&out.stderr));
    let report = read_json(&json);
    let (_, aborted, _) = outcome_of(&report, "b_aborts");
    assert!(
        aborted.ends_with("nextest: process aborted with signal 6 (SIGABRT)"),
        "{aborted}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// One failure message of megabytes (an `assert_eq!` on two large
/// vectors) under nextest with the variables alone: the report is written,
/// the message cut with a note of the cut, every other test whole.
#[test]
fn a_huge_failure_message_is_cut_not_the_run() {
    if !nextest_installed() {
        userns_test::skip(module_path!(), "cargo-nextest is not installed");
        return;
    }
    let dir = private_scratch("wrapper-huge");
    let json = dir.join("report.json");
    let mut cmd = Command::new("cargo");
    cmd.args(["nextest", "run", "--workspace", "-E", "binary(fork_suite)"])
        .args(["--no-fail-fast", "--color", "never"]);
    let out = hermetic(&mut cmd)
        .env("USERNS_TEST_REPORT_JSON", &json)
        .env("FORK_SUITE_HUGE", "1")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", text(&out.stderr));
    let finish = userns_test(
        &["finish", "--exit-code", "100", "--quiet"],
        &[("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())],
    );
    assert_eq!(finish.status.code(), Some(100), "{}", text(&finish.stderr));
    let report = read_json(&json);
    let (outcome, message, _) = outcome_of(&report, "huge_failure");
    assert_eq!(outcome, "failed");
    assert!(message.len() < 100 << 10, "{} bytes", message.len());
    assert!(message.contains("assertion `left == right` failed"));
    assert!(
        message.contains("more bytes are in the test's own output]"),
        "{}",
        &message[message.len() - 200..]
    );
    assert_eq!(report["counts"]["passed"], 4, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
