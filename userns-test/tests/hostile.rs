//! Probes that nothing in the test process can fool. The fixture
//! (`tests/fixtures/hostile_probe.rs`) probes every ability from a process
//! in one hostile state (a state cannot be undone, so each runs in a
//! process of its own) and prints its verdicts; each must equal what a
//! clean process finds, and no child may be left behind.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{Host, hermetic, sibling_test_binary};
use userns_test::requires_userns;

/// The fixture's verdicts and leftover children in `state`, on `host`.
fn probe_in(host: &Host, state: &str, env: &[(&str, &str)]) -> (Vec<serde_json::Value>, String) {
    let mut cmd = host.command(
        sibling_test_binary("hostile_probe"),
        &[
            "--exact",
            "probe_everything",
            "--nocapture",
            "--test-threads=1",
        ],
    );
    let out = hermetic(&mut cmd)
        .env("USERNS_TEST_FIXTURE_STATE", state)
        .envs(env.iter().copied())
        .output()
        .expect("run the hostile fixture");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{state}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = stdout
        .lines()
        .filter_map(|l| l.split_once("VERDICT ").map(|(_, j)| j))
        .map(|j| serde_json::from_str(j).expect("a verdict"))
        .collect();
    (verdicts, stdout)
}

/// What must not change: the verdict, and for a "no", the step, how it
/// failed and the cause.
fn signature(v: &serde_json::Value) -> String {
    format!(
        "{} {} {} {} {}",
        v["ability"], v["verdict"], v["step"]["kind"], v["failure"]["kind"], v["cause"]["id"]
    )
}

fn same_as_clean(host: &Host, state: &str) {
    let (clean, _) = probe_in(host, "clean", &[]);
    let (hostile, stdout) = probe_in(host, state, &[]);
    assert_eq!(clean.len(), userns_test::Ability::ALL.len());
    let clean: Vec<String> = clean.iter().map(signature).collect();
    let hostile: Vec<String> = hostile.iter().map(signature).collect();
    assert_eq!(hostile, clean, "{state} changed verdicts:\n{stdout}");
    assert!(
        stdout.contains("CHILDREN 0\n"),
        "{state} left children:\n{stdout}"
    );
}

#[test]
fn sigchld_ignored() {
    same_as_clean(&Host::Plain, "sigchld-ignored");
}

#[test]
fn sa_nocldwait() {
    same_as_clean(&Host::Plain, "nocldwait");
}

#[test]
fn a_sigchld_handler_that_reaps_everything() {
    same_as_clean(&Host::Plain, "reaping-handler");
}

#[test]
fn a_thread_reaping_with_waitpid_wall() {
    same_as_clean(&Host::Plain, "reaping-thread");
}

#[test]
fn a_thread_reaping_with_waitid_p_all() {
    same_as_clean(&Host::Plain, "reaping-waitid");
}

#[test]
fn a_thread_blocked_in_waitpid_wall() {
    same_as_clean(&Host::Plain, "reaping-blocking");
}

/// A probe child killed by a seccomp filter (SIGSYS) while a thread of the
/// test process reaps every child it can: the signal is still known (the
/// probe runs again under a supervisor that no waiter can disturb).
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn a_seccomp_kill_under_a_reaping_thread() {
    same_as_clean(&Host::KillOnUnshare, "reaping-blocking");
    let (verdicts, _) = probe_in(&Host::KillOnUnshare, "reaping-blocking", &[]);
    let user = verdicts.iter().find(|v| v["ability"] == "user").unwrap();
    assert_eq!(user["failure"]["name"], "SIGSYS", "{user:#}");
}

/// No descriptor left: every probe says so, as a resource limit with its
/// value, never a policy; `root` is not counted available from a uid map
/// that could not be read.
#[test]
fn no_file_descriptor_left() {
    let (verdicts, stdout) = probe_in(&Host::Plain, "nofile-exhausted", &[]);
    assert_eq!(verdicts.len(), userns_test::Ability::ALL.len(), "{stdout}");
    // NoNewPrivs is one prctl on this thread: no descriptor needed.
    for v in verdicts.iter().filter(|v| v["ability"] != "new_privs") {
        assert_eq!(v["verdict"], "unavailable", "{v:#}");
        assert_eq!(v["cause"]["id"], "file_limit", "{v:#}");
        let message = v["cause"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("this process may open no more files (RLIMIT_NOFILE ")
                && message.ends_with("): a resource limit, not a policy"),
            "{v:#}"
        );
    }
    let root = verdicts.iter().find(|v| v["ability"] == "root").unwrap();
    assert_eq!(root["failure"]["kind"], "unreadable", "{root:#}");
    assert_eq!(root["failure"]["path"], "/proc/self/uid_map", "{root:#}");
    assert!(stdout.contains("CHILDREN 0\n"), "{stdout}");
}

/// 200 probes of a bubblewrap that never ends and leaves children (one in
/// its process group, one reparented away from it), each timed out, with
/// both cores busy: every one is reported as timed out, and nothing of any
/// of them is left.
#[test]
fn two_hundred_timeouts_leave_nothing() {
    let dir = std::env::temp_dir().join(format!("userns-test-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = format!("sleep 8{}", std::process::id());
    let bwrap = dir.join("bwrap");
    std::fs::write(
        &bwrap,
        format!("#!/bin/sh\n{marker} &\n( {marker} & )\nexec {marker}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&bwrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, stdout) = probe_in(
        &Host::Plain,
        "timeouts",
        &[
            ("USERNS_TEST_FIXTURE_MARKER", &marker),
            ("USERNS_TEST_FIXTURE_BWRAP", bwrap.to_str().unwrap()),
        ],
    );
    assert!(stdout.contains("TIMED OUT 200\n"), "{stdout}");
    assert!(stdout.contains("LEFT 0\n"), "{stdout}");
    assert!(stdout.contains("CHILDREN 0\n"), "{stdout}");
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `PATH` entry on a hung FUSE mount (a server that never answers; in a
/// mount namespace of the test's own): looking a program up there hangs,
/// as `execvp` would hang on it. The search runs in the probe's child,
/// under the probe's bound, so `program(true)` and `bwrap` are "no, timed
/// out" within it, and the process goes on.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid))]
fn a_hung_path_entry_cannot_hang_a_probe() {
    let dir = common::private_scratch("hung-path");
    let hung = dir.join("hung");
    std::fs::create_dir(&hung).unwrap();
    // The shell keeps /dev/fuse open (fd 3) and passes it on: the
    // connection stays up, and nobody answers it.
    let script = format!(
        "set -e; exec 3<>/dev/fuse; \
         mount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 none {hung}; \
         PATH={hung}:/usr/bin:/bin exec {cli} doctor --json --only 'program(true),bwrap'",
        hung = hung.display(),
        cli = common::cli().display(),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    common::hermetic(&mut cmd)
        .env("USERNS_TEST_PROBE_TIMEOUT_MS", "500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().unwrap();
    let bound = std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the probes hung on the PATH entry for {bound:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    for ability in ["program(true)", "bwrap"] {
        let v = common::verdict(&doc, ability);
        assert_eq!(v["verdict"], "unavailable", "{v:#}");
        assert_eq!(v["failure"]["kind"], "timed_out", "{v:#}");
        let step = v["failed"].as_str().unwrap();
        assert!(step.contains(&hung.display().to_string()), "{v:#}");
    }
    // Each probe: its bound, and the supervisor's grace to end the tree.
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
