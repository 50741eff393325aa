//! A jailer-style suite in plain `cargo test` mode: each test states what
//! it needs, runs where the host allows it, and is skipped with the cause
//! and the fix where it does not.

use nix::sched::CloneFlags;
use userns_test::requires_userns;
use userns_test_examples::{
    bounding_set_after_dropping, bwrap_echo, loopback_roundtrip, mountinfo_with_private_tmpfs,
    run_in_namespaces,
};

/// `CAP_NET_RAW` from linux/capability.h.
const CAP_NET_RAW: u32 = 13;

/// Shaped like BoxLite's `jailer_creates_isolated_mount_namespace`: mount a
/// tmpfs in a private mount namespace and see it there, not on the host.
#[requires_userns(user, mount)]
fn jailer_creates_isolated_mount_namespace() {
    let out =
        mountinfo_with_private_tmpfs("userns-test-example").expect("the jailer child should start");
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
    let said = bwrap_echo(&["--unshare-user"], "inside the box")?;
    if said != "inside the box" {
        return Err(format!("unexpected bwrap output: {said:?}"));
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
    let set = bounding_set_after_dropping(CAP_NET_RAW).expect("the child should run");
    assert_eq!(
        set & (1 << CAP_NET_RAW),
        0,
        "CAP_NET_RAW still bounded: {set:#x}"
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

/// Deciding by hand: one path as root, another unprivileged. `root` is
/// uid 0 of the host with every capability, so a container's uid 0 (a
/// reduced capability set) takes the unprivileged path, told why.
#[test]
fn chooses_path_by_privilege() {
    let root = userns_test::probe(userns_test::Ability::Root);
    let host_uid_0 = nix::unistd::getuid().is_root()
        && !userns_test::HostFacts::get()
            .in_user_namespace
            .unwrap_or(false);
    match root.reason() {
        None => assert!(host_uid_0, "root available to a process that is not"),
        Some(reason) if host_uid_0 => match &reason.cause {
            userns_test::Cause::RootWithoutCapabilities { missing } => {
                assert!(!missing.is_empty(), "{reason}")
            }
            // Off Linux no ability is available, root included.
            userns_test::Cause::UnsupportedSystem { .. } => {}
            _ => panic!("root unavailable to host uid 0 for another reason: {reason}"),
        },
        Some(_) => {}
    }
}
