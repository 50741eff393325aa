//! Reports that cannot lie, be forged or hang: tests whose process dies
//! are reported as crashed under `cargo nextest run`, a direct run, the
//! `userns-test run` wrapper and `userns-test finish`; another local user
//! (a real second uid, made with setresuid through `setpriv`) can neither
//! redirect, forge nor block a report; devices and links are never
//! replaced; waiting for a lock is bounded; the shards of one runner merge
//! into one column.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{
    as_user, crash_suite, hermetic, nextest_installed, outcome_of, private_scratch, read_json,
    sibling_test_binary, sticky_scratch, text, unused_uid, userns_test,
};
use userns_test::requires_userns;

const CRASH_BINARY: &str = "userns-test::crash_suite";

/// The runner fixture run with `env` under `userns-test run` (which writes
/// the reports).
fn runner_suite(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::cli());
    hermetic(&mut cmd)
        .args(["run", "--"])
        .arg(sibling_test_binary("runner_suite"))
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .envs(env.iter().copied())
        .current_dir("/")
        .output()
        .expect("run the runner fixture suite")
}

/// `cargo nextest run` of one fixture binary, in this workspace, with the
/// features these tests were built with (so nothing is rebuilt).
fn nextest_args(binary: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--workspace",
        "-E",
        &format!("binary({binary})"),
        "--no-fail-fast",
        "--color",
        "never",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn nextest(binary: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("cargo");
    cmd.arg("nextest")
        .arg("run")
        .args(nextest_args(binary, extra));
    hermetic(&mut cmd)
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .envs(env.iter().copied())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo nextest")
}

fn skip_without_nextest() -> bool {
    if nextest_installed() {
        return false;
    }
    userns_test::skip(module_path!(), "cargo-nextest is not installed");
    true
}

/// Under `cargo nextest run` with only the environment variables, a test
/// whose process aborts, exits 0 or is killed is never reported as not
/// run, skipped or passed: the report is written by the test processes,
/// and says `failed (crashed)` where it saw the process gone, `unknown`
/// where it could not know yet. `userns-test finish` then settles every
/// outcome, and the step summary counts what ran.
#[test]
fn nextest_crashes_are_failures_never_not_run() {
    if skip_without_nextest() {
        return;
    }
    let dir = private_scratch("trust-nextest");
    let json = dir.join("report.json");
    let summary = dir.join("summary.md");
    let env = [
        ("USERNS_TEST_FIXTURE_CRASH", "1"),
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    let out = nextest("crash_suite", &[], &env);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    // The test processes record; none writes a report.
    assert!(!json.exists() && !summary.exists());

    // After the run: every outcome settled, crashes named, exit code kept.
    let finish = userns_test(&["finish", "--exit-code", "100"], &env);
    assert_eq!(finish.status.code(), Some(100), "{}", text(&finish.stderr));
    let report = read_json(&json);
    assert_eq!(report["run"]["kind"], "nextest");
    assert_eq!(report["run"]["finished"], true);
    assert_eq!(report["run"]["exit_code"], 100);
    for name in ["b_aborts", "c_exits_zero", "d_killed"] {
        let (outcome, message, crashed) = outcome_of(&report, name);
        assert_eq!(
            (outcome.as_str(), crashed),
            ("failed", true),
            "{name}: {message}"
        );
        assert!(
            message.starts_with("crashed: its process (pid "),
            "{message}"
        );
    }
    assert_eq!(outcome_of(&report, "a_passes").0, "passed");
    assert_eq!(outcome_of(&report, "e_fails").0, "failed");
    assert_eq!(outcome_of(&report, "f_needs_bwrap").0, "skipped");
    let counts = &report["counts"];
    assert_eq!(
        (
            counts["passed"].as_u64(),
            counts["failed"].as_u64(),
            counts["skipped"].as_u64()
        ),
        (Some(3), Some(4), Some(1)),
        "{counts:#}"
    );
    assert_eq!(counts["unknown"], 0);
    assert_eq!(counts["not_run"], 0);
    // The summary of the run, on stderr, names the crashes once each.
    let stderr = text(&finish.stderr);
    assert_eq!(stderr.matches("CRASHED").count(), 3, "{stderr}");
    // One section for the binary, counting what ran (not the listing).
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("### userns-test: ").count(), 1, "{md}");
    assert!(
        md.contains("3 passed, 4 failed (3 crashed), 1 skipped"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `userns-test nextest` runs nextest, has it record each process's end,
/// and finishes the report: a crash carries the signal nextest saw, an
/// `exit(0)` inside a test says so, and the command exits with nextest's
/// status.
#[test]
fn the_wrapper_names_the_signal_of_each_crash() {
    if skip_without_nextest() {
        return;
    }
    let dir = private_scratch("trust-wrapper");
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let mut args = vec!["nextest".to_owned()];
    args.extend(nextest_args("crash_suite", &[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = userns_test(
        &args,
        &[
            ("USERNS_TEST_FIXTURE_CRASH", "1"),
            ("USERNS_TEST_BWRAP", "/nonexistent/bwrap"),
            ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
            ("USERNS_TEST_JUNIT", junit.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(100), "{}", text(&out.stderr));
    let report = read_json(&json);
    assert_eq!(report["run"]["kind"], "wrapped");
    assert_eq!(report["run"]["finished"], true);
    assert_eq!(report["run"]["exit_code"], 100);
    let (_, aborted, _) = outcome_of(&report, "b_aborts");
    assert!(
        aborted.ends_with("nextest: process aborted with signal 6 (SIGABRT)"),
        "{aborted}"
    );
    let (_, killed, _) = outcome_of(&report, "d_killed");
    assert!(
        killed.ends_with("nextest: process aborted with signal 9 (SIGKILL)"),
        "{killed}"
    );
    let (outcome, exited, crashed) = outcome_of(&report, "c_exits_zero");
    assert_eq!((outcome.as_str(), crashed), ("failed", true));
    assert!(exited.contains("exit status 0"), "{exited}");
    // JUnit: failures of type `crashed`, counted.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| {
            // `<binary> on <runner>`: several runners' files stay apart.
            n.has_tag_name("testsuite")
                && n.attribute("name")
                    .is_some_and(|s| s.starts_with(&format!("{CRASH_BINARY} on ")))
        })
        .unwrap();
    assert_eq!(suite.attribute("failures"), Some("4"), "{xml}");
    let crashed = suite
        .descendants()
        .filter(|n| n.has_tag_name("failure") && n.attribute("type") == Some("crashed"))
        .count();
    assert_eq!(crashed, 3, "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A binary run as a whole (`cargo test`, a direct run) that dies mid-run:
/// its ledger says which tests had ended, which was running, and which it
/// never reached. `finish` reports them so; nothing is claimed that the
/// ledger does not show.
#[test]
fn a_binary_that_crashes_is_settled_from_its_ledger() {
    let dir = private_scratch("trust-complete");
    let json = dir.join("report.json");
    let env = [
        ("USERNS_TEST_FIXTURE_CRASH", "1"),
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
    ];
    let out = crash_suite(&["--test-threads=1"], &env);
    assert_eq!(
        out.status.code(),
        None,
        "killed by SIGABRT: {}",
        text(&out.stderr)
    );
    assert!(!json.exists(), "the crashed process wrote no report");
    // A crash is a failure: `finish` exits 1 for it, exit code or not.
    let finish = userns_test(&["finish"], &env);
    assert_eq!(finish.status.code(), Some(1), "{}", text(&finish.stderr));
    assert!(
        text(&finish.stderr).contains("the report has 1 failed (1 crashed): exiting with 1"),
        "{}",
        text(&finish.stderr)
    );
    let report = read_json(&json);
    assert_eq!(outcome_of(&report, "a_passes").0, "passed");
    let (outcome, message, crashed) = outcome_of(&report, "b_aborts");
    assert_eq!((outcome.as_str(), crashed), ("failed", true), "{message}");
    for never in ["c_exits_zero", "d_killed", "e_fails", "g_passes_too"] {
        let (outcome, message, _) = outcome_of(&report, never);
        assert_eq!(outcome, "not_run", "{never}");
        assert!(
            message.contains("ended (crashed) before reaching it"),
            "{message}"
        );
    }
    let notes = report["run"]["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("ended without finishing its tests")),
        "{notes:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `finish` refuses what it cannot do: no run recorded, or a run whose
/// process is still going.
#[test]
fn finish_refuses_without_a_run_or_during_one() {
    let dir = private_scratch("trust-finish");
    let json = dir.join("report.json");
    let env = [("USERNS_TEST_REPORT_JSON", json.to_str().unwrap())];
    let none = userns_test(&["finish"], &env);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("no run recorded"),
        "{}",
        text(&none.stderr)
    );
    // A run owned by this (living) test process.
    let dest = userns_test::__cli::Destinations::from_lookup(|k| {
        (k == "USERNS_TEST_REPORT_JSON").then(|| json.clone().into_os_string())
    });
    let run =
        userns_test::__cli::begin_wrapped_run(&dest, &["cargo".into(), "test".into()]).unwrap();
    let going = userns_test(
        &["finish", "--quiet"],
        &[("USERNS_TEST_RUN_DIR", run.run_dir.to_str().unwrap())],
    );
    assert_eq!(going.status.code(), Some(2));
    assert!(
        text(&going.stderr).contains("the run is still going"),
        "{}",
        text(&going.stderr)
    );
    assert!(!text(&going.stderr).contains("panicked"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waiting for a run's lock is bounded, and the message names the lock.
#[test]
fn waiting_for_the_lock_is_bounded() {
    let dir = private_scratch("trust-lock");
    let json = dir.join("report.json");
    let dest = userns_test::__cli::Destinations::from_lookup(|k| {
        (k == "USERNS_TEST_REPORT_JSON").then(|| json.clone().into_os_string())
    });
    let run = userns_test::__cli::begin_wrapped_run(&dest, &[]).unwrap();
    let lock_path = run.run_dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    // The run's owner (this process) must look gone to `finish`: point it
    // at a copy of the run whose owner never existed.
    let meta = run.run_dir.join("run");
    let text_now = std::fs::read_to_string(&meta).unwrap();
    let without_owner: String = text_now
        .lines()
        .map(|l| {
            if l.starts_with("owner ") {
                "owner 0 0"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&meta, without_owner).unwrap();
    let started = Instant::now();
    let out = userns_test(
        &["finish", "--quiet"],
        &[
            ("USERNS_TEST_RUN_DIR", run.run_dir.to_str().unwrap()),
            ("USERNS_TEST_LOCK_TIMEOUT_MS", "300"),
        ],
    );
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&lock_path.display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("for over 300 ms"), "{stderr}");
    assert!(took < Duration::from_secs(20), "bounded: {took:?}");
    // A malformed bound is an error naming the variable.
    let bad = userns_test(&["finish"], &[("USERNS_TEST_LOCK_TIMEOUT_MS", "soon")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("USERNS_TEST_LOCK_TIMEOUT_MS=\"soon\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Another local user plants, in a shared sticky directory, everything a
/// report run touches: the parts directory (with a lock it holds), a link
/// at the report's path, its own file at another report's path. Root's
/// run follows none of it, writes through none of it, is not blocked by
/// the lock, names each refusal, still prints its results and still
/// writes the destinations nobody touched.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn another_user_can_neither_redirect_forge_nor_block_a_report() {
    let uid = unused_uid();
    let shared = sticky_scratch("trust-attack");
    let safe = private_scratch("trust-attack-safe");
    let victim = safe.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&safe, std::fs::Permissions::from_mode(0o711)).unwrap();
    let planted = as_user(
        uid,
        &format!(
            "set -e; cd {shared}
             mkdir .report.json.parts && chmod 777 .report.json.parts
             mkdir .report.json.parts/process-forged && touch .report.json.parts/lock
             (flock -x .report.json.parts/lock sleep 30 </dev/null >/dev/null 2>&1 &)
             ln -s {victim} linked.json
             echo forged > theirs.json",
            shared = shared.display(),
            victim = victim.display()
        ),
    );
    assert!(planted.status.success(), "{}", text(&planted.stderr));
    let junit_ok = safe.join("junit.xml");
    let cases: [(&str, &str); 3] = [
        ("report.json", ".report.json.parts"),
        ("linked.json", "linked.json is a symbolic link owned by uid"),
        ("theirs.json", "theirs.json belongs to uid"),
    ];
    for (name, refusal) in cases {
        let path = shared.join(name);
        let started = Instant::now();
        let mut env = vec![("USERNS_TEST_REPORT_JSON", path.to_str().unwrap())];
        env.push(("USERNS_TEST_JUNIT", junit_ok.to_str().unwrap()));
        let out = runner_suite(&env);
        let stderr = text(&out.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "blocked: {stderr}"
        );
        // The report is written where only the records' directory was
        // planted (the records went to a private one): the run passes;
        // not written, it fails (`userns-test run`'s 2).
        let code = if name == "report.json" { 0 } else { 2 };
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(text(&out.stdout).contains("test result: ok."), "{name}");
        assert!(stderr.contains(refusal), "{name}: {stderr}");
        assert!(
            stderr.contains(&uid.to_string()),
            "{name}: names the owner: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            roxmltree::Document::parse(&std::fs::read_to_string(&junit_ok).unwrap()).is_ok(),
            "{name}: the untouched destination is still written"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_to_string(shared.join("theirs.json")).unwrap(),
        "forged\n"
    );
    assert!(
        std::fs::symlink_metadata(shared.join("linked.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Nothing of root's was created inside the planted directory.
    let inside: Vec<_> = std::fs::read_dir(shared.join(".report.json.parts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(inside.len(), 2, "{inside:?}");

    // A directory of root's that others may write and that is not sticky,
    // and one that another user owns: refused, whoever could write there.
    let open = shared.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let theirs = shared.join("theirs");
    let made = as_user(uid, &format!("mkdir -m 755 {}", theirs.display()));
    assert!(made.status.success());
    for (dir, refusal) in [
        (&open, "can be written by other users and is not sticky"),
        (&theirs, "belongs to uid"),
    ] {
        let out = runner_suite(&[(
            "USERNS_TEST_REPORT_JSON",
            dir.join("r.json").to_str().unwrap(),
        )]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(refusal), "{stderr}");
        assert_eq!(stderr.matches(refusal).count(), 1, "said once: {stderr}");
        assert!(!dir.join("r.json").exists());
    }
    let _ = as_user(uid, &format!("pkill -u {uid} sleep; true"));
    let _ = std::fs::remove_dir_all(&shared);
    let _ = std::fs::remove_dir_all(&safe);
}

/// A report path naming a device, a FIFO or `/dev/stdout` is refused with
/// a clear error and left as it is, never replaced by a regular file.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn devices_and_fifos_are_left_alone() {
    let dir = private_scratch("trust-devices");
    let fifo = dir.join("fifo");
    let null = dir.join("null");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // A copy of /dev/null: char device 1:3.
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    for (path, kind) in [
        (fifo.as_path(), "is a FIFO"),
        (null.as_path(), "is a character device"),
        (Path::new("/dev/stdout"), "is a symbolic link"),
    ] {
        let out = runner_suite(&[("USERNS_TEST_REPORT_JSON", path.to_str().unwrap())]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stderr.contains(kind), "{}: {stderr}", path.display());
        assert!(stderr.contains("left as it is"), "{stderr}");
        assert!(text(&out.stdout).contains("test result: ok."));
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata("/dev/stdout")
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two shards of one runner (`--partition count:1/2` and `2/2`, one
/// report each, the same runner label) merge into one column in which
/// every test ran or was skipped once; `--keep-shards` keeps two; shards
/// that disagree are shown as a conflict.
#[test]
fn shards_of_one_runner_are_one_runner() {
    if skip_without_nextest() {
        return;
    }
    let dir = private_scratch("trust-shards");
    let mut files: Vec<PathBuf> = Vec::new();
    for shard in ["1/2", "2/2"] {
        let json = dir.join(format!("shard-{}.json", &shard[..1]));
        let partition = format!("count:{shard}");
        let mut args = vec!["nextest".to_owned()];
        args.extend(nextest_args("runner_suite", &["--partition", &partition]));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = userns_test(
            &args,
            &[
                ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
                ("USERNS_TEST_RUNNER", "ubuntu-24.04"),
                ("USERNS_TEST_SHARD", shard),
                ("USERNS_TEST_BWRAP", "/nonexistent/bwrap"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        files.push(json);
    }
    let paths: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let mut args = vec!["merge", "--format", "json"];
    args.extend(&paths);
    let merged = userns_test(&args, &[]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let m: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(m["runners"].as_array().unwrap().len(), 1, "{m:#}");
    for row in m["tests"].as_array().unwrap() {
        let cell = &row["results"][0];
        let outcome = cell["outcome"].as_str().unwrap();
        assert!(
            ["passed", "skipped", "ignored"].contains(&outcome),
            "{}: {outcome} in {m:#}",
            row["name"]
        );
        assert!(cell.get("conflict").is_none(), "{row:#}");
    }
    assert_eq!(
        common::strings(&m["never_ran"]),
        common::RUNNER_SUITE_NEVER_RAN
    );
    let mut apart = vec!["merge", "--format", "json", "--keep-shards"];
    apart.extend(&paths);
    let a: serde_json::Value = serde_json::from_slice(&userns_test(&apart, &[]).stdout).unwrap();
    assert_eq!(a["runners"].as_array().unwrap().len(), 2);
    // A shard that skipped what the other ran: a conflict, shown.
    let mut forged = read_json(&files[1]);
    let ran_in_first: Vec<String> = read_json(&files[0])["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["outcome"] == "passed")
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    for t in forged["tests"].as_array_mut().unwrap() {
        if t["name"] == ran_in_first[0].as_str() {
            t["outcome"] = "skipped".into();
        }
    }
    let forged_path = dir.join("forged.json");
    std::fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let md = userns_test(&["merge", paths[0], forged_path.to_str().unwrap()], &[]);
    let md = text(&md.stdout);
    // The matrix marks it; the notes say which shard did what.
    assert!(md.contains(" | **CONFLICT** |"), "{md}");
    let note = md
        .lines()
        .find(|l| l.starts_with("- **CONFLICT**: "))
        .unwrap_or_else(|| panic!("no conflict note in {md}"));
    assert!(
        note.contains(": passed in ") && note.contains(", skipped in "),
        "{note}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Plain mode (libtest's harness) under `cargo nextest run`: libtest lists
/// the tests, so each test process records its own test; the report the
/// processes write says the run is not finished, and `userns-test finish`
/// settles it with every annotated test that ran: skips with their root
/// cause, passes, and the libtest-harness note.
#[test]
fn plain_mode_under_nextest_reports_each_test() {
    if skip_without_nextest() {
        return;
    }
    let dir = private_scratch("trust-plain-nextest");
    let json = dir.join("report.json");
    let env = [
        ("USERNS_TEST_DENY", "net"),
        ("USERNS_TEST_REPORT_JSON", json.to_str().unwrap()),
    ];
    let out = nextest("skip_suite", &[], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!json.exists(), "a test process wrote a report");
    let out = userns_test(&["finish", "--exit-code", "0"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = read_json(&json);
    assert_eq!(report["run"]["finished"], true, "{report:#}");
    let outcome = |name: &str| {
        report["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        outcome("needs_net").as_deref(),
        Some("skipped"),
        "{report:#}"
    );
    assert_eq!(outcome("skip_suite::test_env").as_deref(), Some("skipped"));
    assert_eq!(outcome("needs_user_and_setpcap").as_deref(), Some("passed"));
    assert_eq!(outcome("should_panic_passes").as_deref(), Some("passed"));
    assert_eq!(
        report["root_causes"][0]["skipped"], 2,
        "{:#}",
        report["root_causes"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
