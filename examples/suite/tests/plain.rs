//! A jailer-style suite in plain `cargo test` mode: each test states what
//! it needs, runs where the host allows it, and is skipped with the cause
//! and the fix where it does not.

use nix::sched::CloneFlags;
use userns_test::requires_userns;
use userns_test_examples::{loopback_roundtrip, run_in_namespaces};

/// `CAP_NET_RAW` from linux/capability.h.
const CAP_NET_RAW: u64 = 13;

/// Shaped like BoxLite's `jailer_creates_isolated_mount_namespace`: mount a
/// tmpfs in a private mount namespace and see it there, not on the host.
#[requires_userns(user, mount)]
fn jailer_creates_isolated_mount_namespace() {
    let marker = c"userns-test-example";
    let out = run_in_namespaces(
        CloneFlags::CLONE_NEWNS,
        move || {
            use nix::mount::{MsFlags, mount};
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            mount(
                Some(marker),
                "/tmp",
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )?;
            Ok(())
        },
        "cat",
        &["/proc/self/mountinfo"],
    )
    .expect("the jailer child should start");
    assert!(out.status.success(), "{out:?}");
    let inside = String::from_utf8_lossy(&out.stdout);
    assert!(
        inside.contains(" /tmp ") && inside.contains("userns-test-example"),
        "{inside}"
    );
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains("userns-test-example"),
        "the mount leaked to the host"
    );
}

/// Shaped like BoxLite's `jailer_enabled_box_starts_and_executes`: run a
/// command under bubblewrap. Returns a `Result`, with an explicit `#[test]`.
#[requires_userns(bwrap)]
#[test]
fn jailer_enabled_box_starts_and_executes() -> Result<(), String> {
    let bwrap = std::env::var("USERNS_TEST_BWRAP").unwrap_or_else(|_| "bwrap".into());
    let out = std::process::Command::new(bwrap)
        .args([
            "--unshare-user",
            "--ro-bind",
            "/",
            "/",
            "echo",
            "inside the box",
        ])
        .output()
        .map_err(|e| format!("bwrap did not start: {e}"))?;
    if String::from_utf8_lossy(&out.stdout).trim() != "inside the box" {
        return Err(format!("unexpected bwrap output: {out:?}"));
    }
    Ok(())
}

/// OpenClaw-style: a sandbox with its own network needs a loopback that
/// carries packets.
#[requires_userns(net)]
fn loopback_carries_packets_in_new_netns() {
    let out = run_in_namespaces(CloneFlags::CLONE_NEWNET, loopback_roundtrip, "true", &[])
        .expect("loopback round trip in a new network namespace");
    assert!(out.status.success());
}

/// OpenShell-style: a supervisor clears its child's bounding set.
#[requires_userns(cap_setpcap)]
fn child_drops_capability_from_bounding_set() {
    let mut cmd = std::process::Command::new("grep");
    cmd.args(["CapBnd", "/proc/self/status"]);
    // SAFETY: prctl only, in the forked child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("grep should run");
    let line = String::from_utf8_lossy(&out.stdout);
    let set = u64::from_str_radix(line.trim().trim_start_matches("CapBnd:").trim(), 16).unwrap();
    assert_eq!(
        set & (1 << CAP_NET_RAW),
        0,
        "CAP_NET_RAW still bounded: {line}"
    );
}

/// An async test under a runtime's attribute: the gate runs inside it.
#[requires_userns(user)]
#[tokio::test]
async fn async_test_becomes_root_in_user_namespace() {
    let out = tokio::task::spawn_blocking(|| {
        run_in_namespaces(CloneFlags::empty(), || Ok(()), "id", &["-u"])
    })
    .await
    .unwrap()
    .expect("id should run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

/// A test with no requirement stays a plain test.
#[test]
fn parses_config() {
    let config = "unshare=user,net";
    let names: Vec<&str> = config.split_once('=').unwrap().1.split(',').collect();
    assert_eq!(names, ["user", "net"]);
}

/// Deciding by hand: one path as root, another unprivileged.
#[test]
fn chooses_path_by_privilege() {
    let root = userns_test::probe(userns_test::Ability::Root);
    let uid = nix::unistd::getuid().as_raw();
    assert_eq!(
        root.is_available(),
        uid == 0
            && !userns_test::HostFacts::get()
                .in_user_namespace
                .unwrap_or(false)
    );
}
