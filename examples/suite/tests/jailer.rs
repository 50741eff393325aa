//! A jailer-style suite under the userns-test runner (`harness = false`).
//!
//! `cargo test -p userns-test-examples --test jailer` runs it and prints the
//! host's ability matrix and the skips by reason; try it with
//! `USERNS_TEST_DENY=net,bwrap`, or under `cargo nextest run`, where unmet
//! tests show as SKIP.

use nix::sched::CloneFlags;
use userns_test::requires_userns;
use userns_test_examples::{
    bwrap_echo, loopback_roundtrip, mountinfo_with_private_tmpfs, run_in_namespaces,
};

/// `CAP_NET_RAW` from linux/capability.h.
const CAP_NET_RAW: u32 = 13;

/// BoxLite's `jailer_creates_isolated_mount_namespace`, for real: a tmpfs
/// mounted in a private mount namespace is visible there and not on the
/// host.
#[requires_userns(mount, cap_sys_admin)]
fn jailer_creates_isolated_mount_namespace() {
    let out = mountinfo_with_private_tmpfs("jailer-tmp").expect("the jailer child starts");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" /tmp rw"));
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains("jailer-tmp"), "the mount leaked to the host");
}

/// BoxLite's `jailer_enabled_box_starts_and_executes`: a command runs
/// inside bubblewrap and its output comes back.
#[requires_userns(bwrap)]
fn jailer_enabled_box_starts_and_executes() -> Result<(), String> {
    let said = bwrap_echo(&["--unshare-user"], "hello from the box")?;
    if said != "hello from the box" {
        return Err(format!("the box said {said:?}"));
    }
    Ok(())
}

/// OpenClaw's sandbox without network egress: bwrap with a new network
/// namespace, whose loopback must come up.
#[requires_userns(bwrap_net)]
fn sandbox_without_egress_starts() -> Result<(), String> {
    bwrap_echo(&["--unshare-user", "--unshare-net"], "offline").map(drop)
}

/// Two modules may both have a test named `creates_ns`: the runner names
/// them by module path, as libtest does.
mod net {
    use super::*;

    /// The loopback of a new network namespace carries a datagram.
    #[requires_userns(net)]
    fn creates_ns() {
        let out = run_in_namespaces(CloneFlags::CLONE_NEWNET, loopback_roundtrip, "true", &[])
            .expect("loopback round trip");
        assert!(out.status.success());
    }
}

mod uts {
    use super::*;

    /// A new UTS namespace has its own hostname.
    #[requires_userns(uts)]
    fn creates_ns() {
        let out = run_in_namespaces(
            CloneFlags::CLONE_NEWUTS,
            || nix::unistd::sethostname("jail").map_err(Into::into),
            "cat",
            &["/proc/sys/kernel/hostname"],
        )
        .expect("hostname in a new UTS namespace");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "jail");
    }
}

/// OpenShell's supervisor: the sandbox child's bounding set is cleared of a
/// capability, which needs CAP_SETPCAP.
#[requires_userns(cap_setpcap)]
fn supervisor_drops_capability_from_bounding_set() {
    let bounding = userns_test_examples::bounding_set_after_dropping(CAP_NET_RAW)
        .expect("the child drops CAP_NET_RAW");
    assert_eq!(bounding & (1 << CAP_NET_RAW), 0);
}

/// An async test: under the runner it runs on the runtime its attribute
/// names (`#[tokio::test]` becomes `#[tokio::main(flavor = "current_thread")]`).
#[requires_userns(user)]
#[tokio::test]
async fn async_child_is_root_in_its_user_namespace() {
    let out = tokio::task::spawn_blocking(|| {
        run_in_namespaces(CloneFlags::empty(), || Ok(()), "id", &["-u"])
    })
    .await
    .expect("the blocking task finishes")
    .expect("id runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

/// No requirement, still collected.
#[userns_test::test]
fn parses_config() {
    let config = "unshare = user, net";
    let (key, value) = config.split_once('=').unwrap();
    let names: Vec<&str> = value.split(',').map(str::trim).collect();
    assert_eq!((key.trim(), names), ("unshare", vec!["user", "net"]));
}

/// No requirement: the ability names the suite uses are all known.
#[userns_test::test]
fn ability_names_parse() {
    for name in [
        "mount",
        "cap_sys_admin",
        "bwrap",
        "bwrap_net",
        "net",
        "uts",
        "cap_setpcap",
    ] {
        assert!(name.parse::<userns_test::Ability>().is_ok(), "{name}");
    }
}

userns_test::main!();
