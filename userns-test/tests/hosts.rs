//! Verdicts on hermetic hosts, each compared with the ground truth: the same
//! operation done on the same host by util-linux or bubblewrap, not by this
//! crate. Building these hosts needs root's powers (namespaces and mounts,
//! switching to other uids), so each test requires `cap(sys_admin),
//! cap(setuid), cap(setgid)` (through this crate) and is skipped with the
//! reason elsewhere.

mod common;

use common::ground_truth::GROUND_TRUTH;
use common::{Host, available, cli, doctor, verdict};
use userns_test::requires_userns;

/// Asserts every verdict on `host` equals the ground truth there, and
/// returns the doctor document for host-specific checks.
fn verdicts_match_ground_truth(host: &Host) -> serde_json::Value {
    let names: Vec<&str> = GROUND_TRUTH.iter().map(|(n, _)| *n).collect();
    let doc = doctor(host, &names.join(","));
    let mut mismatches = Vec::new();
    for (ability, command) in GROUND_TRUTH {
        let truth = host.succeeds(command[0], &command[1..]);
        if available(&doc, ability) != truth {
            mismatches.push(format!(
                "{ability}: verdict {} but `{}` {}",
                verdict(&doc, ability),
                command.join(" "),
                if truth { "succeeds" } else { "fails" }
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "verdicts differ from the ground truth:\n{}",
        mismatches.join("\n")
    );
    doc
}

fn cause(doc: &serde_json::Value, ability: &str) -> String {
    verdict(doc, ability)["cause"]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn root_host() {
    let doc = verdicts_match_ground_truth(&Host::Plain);
    for ability in ["user", "mount", "net", "pid", "cap_setpcap"] {
        assert!(
            available(&doc, ability),
            "{ability} on the root host: {doc:#}"
        );
    }
}

#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn unprivileged_uid_without_capabilities() {
    let doc = verdicts_match_ground_truth(&Host::Unprivileged);
    let setpcap = verdict(&doc, "cap_setpcap");
    assert_eq!(setpcap["failure"]["name"], "EPERM", "{setpcap:#}");
    assert_eq!(cause(&doc, "cap_setpcap"), "capability_missing");
    assert_eq!(doc["host"]["uid"], 65534);
}

/// `user.max_user_namespaces=0` inside a user namespace this test owns:
/// every namespace ability fails with ENOSPC at the first step, and the
/// cause names the sysctl; cap_setpcap (no new namespace) is unaffected.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    user,
    program("/usr/bin/python3")
)]
fn user_namespaces_disabled_by_sysctl() {
    let doc = verdicts_match_ground_truth(&Host::NoUserNamespaces);
    for ability in ["user", "mount", "net", "nested"] {
        let v = verdict(&doc, ability);
        assert_eq!(v["step"]["kind"], "unshare", "{v:#}");
        assert_eq!(v["failure"]["name"], "ENOSPC", "{v:#}");
        assert_eq!(cause(&doc, ability), "max_user_namespaces_zero", "{v:#}");
    }
    let pid = verdict(&doc, "pid");
    assert_eq!(pid["step"]["kind"], "clone", "{pid:#}");
    assert_eq!(pid["failure"]["name"], "ENOSPC");
    assert!(available(&doc, "cap_setpcap"));
}

/// Docker's default seccomp profile, rebuilt: the namespace abilities fail
/// with EPERM, and the cause is the filter refusing every namespace, user
/// namespaces included: one root cause for the system-call probes and
/// bubblewrap ("No permissions to create new namespace").
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn docker_like_seccomp() {
    let doc = verdicts_match_ground_truth(&Host::DockerSeccomp);
    assert_eq!(doc["host"]["seccomp_mode"], 2);
    for ability in ["user", "net", "pid"] {
        let v = verdict(&doc, ability);
        assert_eq!(v["failure"]["name"], "EPERM", "{v:#}");
    }
    let message = one_root_cause(
        &doc,
        &[
            "user",
            "cap_sys_admin",
            "mount",
            "net",
            "pid",
            "ipc",
            "uts",
            "cgroup",
            "time",
            "nested",
            "bwrap",
            "bwrap_net",
        ],
        "seccomp_refuses_namespaces",
    );
    assert!(message.contains("Docker"), "{message}");
    assert!(available(&doc, "cap_setpcap"));
}

/// A filter that kills on `unshare`: the probe child dies of SIGSYS, the
/// probing process (doctor) lives and reports it; the abilities probed
/// without `unshare` (bubblewrap uses clone) are judged on their own.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn seccomp_kill_on_unshare() {
    let doc = verdicts_match_ground_truth(&Host::KillOnUnshare);
    let user = verdict(&doc, "user");
    assert_eq!(user["failure"]["kind"], "signal", "{user:#}");
    assert_eq!(user["failure"]["name"], "SIGSYS", "{user:#}");
    assert_eq!(user["step"]["kind"], "unshare", "{user:#}");
    assert_eq!(cause(&doc, "user"), "seccomp_kill");
}

/// CAP_SETPCAP outside the bounding set (a rootless container's shape):
/// only cap_setpcap is lost, with the bounding-set size in the cause.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn setpcap_dropped_from_bounding_set() {
    let doc = verdicts_match_ground_truth(&Host::NoSetpcap);
    assert_eq!(cause(&doc, "cap_setpcap"), "capability_missing");
    let message = verdict(&doc, "cap_setpcap")["cause"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("capabilities still in the bounding set"),
        "{message}"
    );
    assert!(available(&doc, "user") && available(&doc, "net"));
}

/// The three ways bubblewrap can be unusable are three reasons, each as
/// the operation itself reports it: a path with nothing there (ENOENT, not
/// installed), a file the process may not execute (EACCES), and a program
/// that runs but fails (its exit status and first stderr line).
#[test]
fn bwrap_missing_unexecutable_and_failing_are_distinct() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("userns-test-bwrap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing-bwrap");
    let unexecutable = dir.join("unexecutable-bwrap");
    let failing = dir.join("failing-bwrap");
    std::fs::write(&unexecutable, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&unexecutable, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        &failing,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();

    let doctor_with = |bwrap: &std::path::Path| -> serde_json::Value {
        let out = std::process::Command::new(cli())
            .args(["doctor", "--json", "--only", "bwrap,bwrap_net"])
            .env("USERNS_TEST_BWRAP", bwrap)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON")
    };
    // Ground truth: the same path started directly.
    let started = |p: &std::path::Path| std::process::Command::new(p).output();

    assert_eq!(
        started(&missing).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    let doc = doctor_with(&missing);
    for ability in ["bwrap", "bwrap_net"] {
        let v = verdict(&doc, ability);
        assert_eq!(v["failure"]["name"], "ENOENT", "{v:#}");
        assert_eq!(cause(&doc, ability), "not_installed", "{v:#}");
    }

    assert_eq!(
        started(&unexecutable).unwrap_err().raw_os_error(),
        Some(libc::EACCES)
    );
    let doc = doctor_with(&unexecutable);
    let v = verdict(&doc, "bwrap");
    assert_eq!(v["failure"]["name"], "EACCES", "{v:#}");
    assert_eq!(v["step"]["kind"], "exec", "{v:#}");
    assert_eq!(cause(&doc, "bwrap"), "not_executable", "{v:#}");

    assert_eq!(started(&failing).unwrap().status.code(), Some(1));
    let doc = doctor_with(&failing);
    let v = verdict(&doc, "bwrap");
    assert_eq!(v["step"]["kind"], "run", "{v:#}");
    assert_eq!(v["failure"]["code"], 1, "{v:#}");
    assert_eq!(
        v["failure"]["stderr"], "bwrap: No permissions to create new namespace",
        "{v:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Landlock denies writes under `/proc` (the Ubuntu-24.04-like symptom):
/// every namespace ability stops at its first map write with EACCES, and
/// the cause says `/proc` is not writable; cap_setpcap is unaffected.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    landlock,
    program("/usr/bin/python3")
)]
fn proc_not_writable_under_landlock() {
    let doc = verdicts_match_ground_truth(&Host::ProcNotWritable);
    for ability in ["user", "mount", "net", "pid", "nested"] {
        let v = verdict(&doc, ability);
        assert_eq!(v["step"]["kind"], "open_for_writing", "{v:#}");
        assert_eq!(v["failure"]["name"], "EACCES", "{v:#}");
        assert_eq!(cause(&doc, ability), "proc_not_writable", "{v:#}");
    }
    assert!(available(&doc, "cap_setpcap"));
}

/// Netlink sockets and SIOCSIFFLAGS refused: `net` and `bwrap_net` are
/// "no" at the loopback step, `user` and `bwrap` still "yes".
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn netlink_refused() {
    let doc = verdicts_match_ground_truth(&Host::NetlinkRefused);
    let net = verdict(&doc, "net");
    assert_eq!(net["step"]["kind"], "socket", "{net:#}");
    assert_eq!(net["failure"]["name"], "EACCES", "{net:#}");
    // bubblewrap's "loopback: Failed to create NETLINK_ROUTE socket" is
    // the same step, refused for the same cause.
    let message = one_root_cause(&doc, &["net", "bwrap_net"], "seccomp_refuses_call");
    assert!(message.contains("refuses socket(AF_NETLINK)"), "{message}");
    assert!(available(&doc, "user") && available(&doc, "mount"));

    // Only the ioctl refused: `ip link set lo up` and bubblewrap bring the
    // loopback up over netlink, and so does the probe, so `net` is "yes".
    // (An ioctl-based probe said "no" here while `ip` worked: this host is
    // what found it.)
    let doc = verdicts_match_ground_truth(&Host::IfFlagsRefused);
    assert!(available(&doc, "net"), "{doc:#}");
    assert!(available(&doc, "user") && available(&doc, "bwrap"));
}

/// Mount system calls refused: `mount`, `pid` (mounts proc) and bwrap are
/// "no"; `user`, `cap_sys_admin` (unshare only) and `net` are "yes".
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn mount_refused() {
    let doc = verdicts_match_ground_truth(&Host::MountRefused);
    for ability in ["mount", "pid"] {
        let v = verdict(&doc, ability);
        assert_eq!(v["step"]["kind"], "mount", "{v:#}");
        assert_eq!(v["failure"]["name"], "EPERM", "{v:#}");
    }
    // bubblewrap's "Failed to make / slave" is a mount, refused alike.
    let message = one_root_cause(
        &doc,
        &["mount", "pid", "bwrap", "bwrap_net"],
        "seccomp_refuses_call",
    );
    assert!(message.contains("refuses mount"), "{message}");
    assert!(!message.contains("Docker"), "{message}");
    for ability in ["user", "cap_sys_admin", "net"] {
        assert!(available(&doc, ability), "{ability}: {doc:#}");
    }
}

/// A seccomp filter refusing PR_CAPBSET_DROP, CAP_SETPCAP effective:
/// only cap_setpcap is lost, blamed on the filter.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn capbset_drop_refused_by_seccomp() {
    let doc = verdicts_match_ground_truth(&Host::CapbsetDropRefused);
    let v = verdict(&doc, "cap_setpcap");
    assert_eq!(v["step"]["kind"], "cap_bset_drop", "{v:#}");
    assert_eq!(v["failure"]["name"], "EPERM", "{v:#}");
    assert_eq!(cause(&doc, "cap_setpcap"), "seccomp_refuses_call");
    assert!(cause_message(&doc, "cap_setpcap").contains("prctl(PR_CAPBSET_DROP)"));
    assert!(available(&doc, "user") && available(&doc, "net"));
}

/// Nested: inside `bwrap --disable-userns` no user namespace may be made
/// (ENOSPC, the limit of the enclosing namespace); inside `unshare -Ur`
/// every namespace ability, nested included, is available.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    bwrap,
    program("/usr/bin/python3")
)]
fn nested_inside_bwrap_and_unshare() {
    let doc = verdicts_match_ground_truth(&Host::InsideBwrapDisableUserns);
    for ability in ["user", "nested", "net"] {
        let v = verdict(&doc, ability);
        assert_eq!(v["failure"]["name"], "ENOSPC", "{v:#}");
        assert_eq!(cause(&doc, ability), "user_namespace_limit", "{v:#}");
    }
    assert_eq!(doc["host"]["in_user_namespace"], true);
    let doc = verdicts_match_ground_truth(&Host::InsideUnshare);
    assert_eq!(doc["host"]["in_user_namespace"], true);
    for ability in ["user", "nested", "mount", "net", "pid"] {
        assert!(available(&doc, ability), "{ability}: {doc:#}");
    }
}

/// RLIMIT_NPROC reached: no probe child, no thread. Every probe says so
/// (EAGAIN, the limit in the cause); the doctor neither hangs nor panics.
/// No ground-truth comparison here: `unshare -Ur true` creates its
/// namespace in its own process and succeeds, but a probe must not change
/// the caller, so it needs a child the limit forbids; "no, the process
/// limit" is the verdict that tells the truth about the probe.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn process_limit_reached() {
    let names: Vec<&str> = GROUND_TRUTH.iter().map(|(n, _)| *n).collect();
    let doc = doctor(&Host::ProcessLimit, &names.join(","));
    // Answered without a process: this uid is unprivileged, NoNewPrivs
    // is off; and this uid may not make a cgroup, which the probe finds
    // out before it needs a process.
    for name in ["unprivileged", "new_privs"] {
        assert!(available(&doc, name), "{:#}", verdict(&doc, name));
    }
    assert_ne!(cause(&doc, "cgroup_delegation"), "process_limit");
    // Read from this process, without a child: who it is, its
    // capabilities, the kernel's release.
    for name in ["root", "cap(sys_admin)", "cap(net_raw)"] {
        assert_ne!(
            cause(&doc, name),
            "process_limit",
            "{:#}",
            verdict(&doc, name)
        );
    }
    assert!(available(&doc, "kernel(>=5.10)"));
    for name in names.into_iter().filter(|n| {
        !["unprivileged", "new_privs", "cgroup_delegation", "root"].contains(n)
            && !n.starts_with("cap(")
            && !n.starts_with("kernel(")
    }) {
        let v = verdict(&doc, name);
        assert_eq!(v["verdict"], "unavailable", "{v:#}");
        assert_eq!(v["failure"]["name"], "EAGAIN", "{v:#}");
        assert_eq!(cause(&doc, name), "process_limit", "{v:#}");
        assert!(
            v["cause"]["message"]
                .as_str()
                .unwrap()
                .contains("RLIMIT_NPROC 1"),
            "{v:#}"
        );
    }
}

/// The message of `ability`'s cause.
fn cause_message(doc: &serde_json::Value, ability: &str) -> String {
    verdict(doc, ability)["cause"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Asserts `abilities` are unavailable for one root cause `id` (same
/// cause, same fix: one id), and returns its message.
fn one_root_cause(doc: &serde_json::Value, abilities: &[&str], id: &str) -> String {
    let first = &verdict(doc, abilities[0])["root_cause"];
    for ability in abilities {
        let v = verdict(doc, ability);
        assert_eq!(cause(doc, ability), id, "{v:#}");
        assert_eq!(&v["root_cause"], first, "one root cause: {v:#}");
    }
    cause_message(doc, abilities[0])
}

/// systemd's `RestrictNamespaces=user mnt`, rebuilt: a filter that refuses
/// some namespace types by flag. User namespaces work there, so the cause
/// is that filter, not Docker's whole-namespace refusal, for the
/// system-call probes and for bubblewrap alike.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn namespace_types_refused_by_flag() {
    let doc = verdicts_match_ground_truth(&Host::RestrictNamespaces);
    for ability in ["user", "cap_sys_admin", "mount", "time", "nested", "bwrap"] {
        assert!(available(&doc, ability), "{ability}: {doc:#}");
    }
    let message = one_root_cause(
        &doc,
        &["net", "pid", "ipc", "uts", "cgroup", "bwrap_net"],
        "seccomp_refuses_namespace_types",
    );
    assert!(!message.contains("Docker"), "{message}");
    // The cause names every type the filter refuses, once.
    for t in [
        "network namespaces (CLONE_NEWNET)",
        "PID namespaces (CLONE_NEWPID)",
        "IPC namespaces (CLONE_NEWIPC)",
        "UTS namespaces (CLONE_NEWUTS)",
        "cgroup namespaces (CLONE_NEWCGROUP)",
    ] {
        assert!(message.contains(t), "{t}: {message}");
    }
    assert!(!message.contains("mount namespaces"), "{message}");
    assert_eq!(verdict(&doc, "net")["step"]["flags"], "CLONE_NEWNET");
}

/// `user.max_net_namespaces=0` and `user.max_mnt_namespaces=0`: the
/// system-call probes and bubblewrap (whose message only says "nesting
/// depth or max_*_namespaces") name the one limit that is 0, never
/// `user.max_user_namespaces`.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    user,
    program("/usr/bin/python3")
)]
fn per_type_namespace_limits() {
    let doc = verdicts_match_ground_truth(&Host::NoNetNamespaces);
    let message = one_root_cause(&doc, &["net", "bwrap_net"], "namespace_limit");
    assert_eq!(
        message,
        "user.max_net_namespaces=0 forbids this namespace type"
    );
    assert!(available(&doc, "bwrap") && available(&doc, "mount"));

    let doc = verdicts_match_ground_truth(&Host::NoMountNamespaces);
    let message = one_root_cause(
        &doc,
        &["cap_sys_admin", "mount", "pid", "bwrap", "bwrap_net"],
        "namespace_limit",
    );
    assert_eq!(
        message,
        "user.max_mnt_namespaces=0 forbids this namespace type"
    );
    assert!(available(&doc, "net") && available(&doc, "user"));
}

/// A container profile that allows the namespaces but refuses
/// `sethostname`: `uts` names that call, and nothing else is lost.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn sethostname_refused() {
    let doc = verdicts_match_ground_truth(&Host::SethostnameRefused);
    let v = verdict(&doc, "uts");
    assert_eq!(v["step"]["kind"], "set_hostname", "{v:#}");
    let message = one_root_cause(&doc, &["uts"], "seccomp_refuses_call");
    assert!(message.contains("refuses sethostname"), "{message}");
    for ability in ["user", "net", "mount", "bwrap_net"] {
        assert!(available(&doc, ability), "{ability}: {doc:#}");
    }
}

/// The devices of kvm, tun and fuse: missing (a tmpfs over /dev), not
/// accessible by their mode (uid 65534 with the nodes made 0600 root's:
/// built, since this machine's own modes may be udev's 0666), their ioctl
/// refused by a filter; each a cause of its own, named with the device or
/// the call.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn device_abilities_name_what_refused() {
    let doc = verdicts_match_ground_truth(&Host::NoDevices);
    for (ability, device) in [
        ("kvm", "/dev/kvm"),
        ("tun", "/dev/net/tun"),
        ("fuse", "/dev/fuse"),
    ] {
        assert_eq!(cause(&doc, ability), "device_missing");
        assert!(
            cause_message(&doc, ability).starts_with(device),
            "{}",
            cause_message(&doc, ability)
        );
    }
    let doc = verdicts_match_ground_truth(&Host::ClosedDevices);
    for ability in ["kvm", "tun", "fuse"] {
        assert_eq!(
            cause(&doc, ability),
            "device_not_accessible",
            "{:#}",
            verdict(&doc, ability)
        );
        assert!(
            cause_message(&doc, ability).contains("(mode c"),
            "{}",
            cause_message(&doc, ability)
        );
    }
    let doc = verdicts_match_ground_truth(&Host::IoctlRefused);
    assert!(cause_message(&doc, "tun").contains("refuses ioctl(TUNSETIFF)"));
    assert!(cause_message(&doc, "kvm").contains("refuses ioctl(KVM_CREATE_VM)"));
    assert_eq!(cause(&doc, "tun"), "seccomp_refuses_call");
    assert!(available(&doc, "fuse") && available(&doc, "overlay"));
}

/// Mounts refused by a filter: fuse, overlay and pivot_root (whose tmpfs
/// mount comes first) share the mount root cause with `mount`.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn mount_abilities_share_the_refused_mount() {
    let doc = verdicts_match_ground_truth(&Host::MountRefused);
    one_root_cause(
        &doc,
        &["mount", "fuse", "overlay", "pivot_root"],
        "seccomp_refuses_call",
    );
}

/// Who the process is, as the host sees it: root is not `unprivileged`,
/// nor is root inside a user namespace that maps it to root (`unshare
/// -Ur`); uid 65534 is. `root` needs every capability the kernel knows:
/// uid 0 with Docker's 14 is not root, and `cap(...)` says which it has
/// and where the others went. A process with NoNewPrivs set lacks
/// `new_privs`.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    cap(setpcap),
    program("/usr/bin/python3")
)]
fn identity_abilities() {
    let doc = verdicts_match_ground_truth(&Host::Plain);
    assert_eq!(cause(&doc, "unprivileged"), "privileged");
    assert!(available(&doc, "new_privs"));
    assert!(available(&doc, "cap(sys_admin)"));
    assert!(available(&doc, "cap(sys_time)"));
    assert!(available(&doc, "kernel(>=5.10)"), "{doc:#}");
    assert_eq!(cause(&doc, "kernel(>=99.0)"), "kernel_too_old");

    let doc = verdicts_match_ground_truth(&Host::DockerCapabilities);
    assert_eq!(cause(&doc, "root"), "root_without_capabilities");
    assert!(
        verdict(&doc, "root")["cause"]["message"]
            .as_str()
            .unwrap()
            .contains("CAP_SYS_ADMIN"),
        "{doc:#}"
    );
    assert_eq!(
        cause(&doc, "cap(sys_ptrace)"),
        "capability_not_in_bounding_set"
    );
    assert!(
        verdict(&doc, "cap(sys_ptrace)")["remedy"]
            .as_str()
            .unwrap()
            .contains("--cap-add SYS_PTRACE"),
        "{doc:#}"
    );
    assert!(available(&doc, "cap(net_raw)"));
    assert_eq!(cause(&doc, "unprivileged"), "privileged");

    let doc = verdicts_match_ground_truth(&Host::Unprivileged);
    assert!(available(&doc, "unprivileged"));
    assert_eq!(cause(&doc, "root"), "not_root");
    assert_eq!(cause(&doc, "cap(net_raw)"), "capability_not_permitted");

    // Root in a user namespace of its own that maps it to root: the
    // host's root still, with every capability in that namespace.
    let doc = verdicts_match_ground_truth(&Host::InsideUnshare);
    assert_eq!(cause(&doc, "unprivileged"), "privileged");
    assert!(
        verdict(&doc, "unprivileged")["failed"]
            .as_str()
            .unwrap()
            .contains("sends it to uid 0 outside"),
        "{doc:#}"
    );
    assert!(
        !verdict(&doc, "unprivileged")["remedy"]
            .as_str()
            .unwrap()
            .contains("inside `unshare -r`")
    );
    assert!(available(&doc, "cap(sys_admin)"));
    // CAP_SYS_TIME is effective there, and allows nothing.
    assert_eq!(
        cause(&doc, "cap(sys_time)"),
        "capability_outside_initial_namespace"
    );

    let doc = verdicts_match_ground_truth(&Host::NoNewPrivs);
    assert_eq!(cause(&doc, "new_privs"), "no_new_privs");
    assert!(
        available(&doc, "program(true)"),
        "exec works, without privileges"
    );
}

/// cgroup delegation: no cgroup2 mount, a read-only one, one this user may
/// not write; and on this host itself what its cgroup layout says (hybrid:
/// the controllers are in v1).
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), program("/usr/bin/python3"))]
fn cgroup_delegation_reasons() {
    let doc = verdicts_match_ground_truth(&Host::NoCgroup2);
    assert_eq!(cause(&doc, "cgroup_delegation"), "cgroup_v2_missing");
    let doc = verdicts_match_ground_truth(&Host::CgroupReadOnly);
    assert_eq!(cause(&doc, "cgroup_delegation"), "cgroup_read_only");
    let doc = verdicts_match_ground_truth(&Host::Unprivileged);
    assert_eq!(cause(&doc, "cgroup_delegation"), "cgroup_not_delegated");
    assert!(
        !cause_message(&doc, "cgroup_delegation").contains("userns-test-probe"),
        "the same words on every run"
    );
    let doc = verdicts_match_ground_truth(&Host::Plain);
    if doc["host"]["cgroup_v1"] == true && !available(&doc, "cgroup_delegation") {
        assert_eq!(
            cause(&doc, "cgroup_delegation"),
            "cgroup_controllers_missing"
        );
        assert!(cause_message(&doc, "cgroup_delegation").contains("hybrid"));
    }
}

/// `program(...)`: not installed, not executable by its mode, on a
/// `noexec` mount, refused by Landlock; each its own cause, each against
/// the same exec done by `env`.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), landlock)]
fn program_refusals_each_have_their_cause() {
    let missing = "program(userns-test-no-such-program)";
    let doc = doctor(
        &Host::Plain,
        &format!("{missing},program(/etc/passwd),program(true)"),
    );
    assert_eq!(cause(&doc, missing), "not_installed");
    assert_eq!(cause(&doc, "program(/etc/passwd)"), "not_executable");
    assert!(!Host::Plain.succeeds("env", &["/etc/passwd"]));
    assert!(available(&doc, "program(true)"));
    assert_eq!(verdict(&doc, "program(true)")["note"], "/usr/bin/true");

    let doc = doctor(&Host::NoexecMnt, "program(/mnt/prog)");
    assert!(!Host::NoexecMnt.succeeds("env", &["/mnt/prog"]));
    assert_eq!(cause(&doc, "program(/mnt/prog)"), "noexec_mount", "{doc:#}");
    assert!(cause_message(&doc, "program(/mnt/prog)").contains("/mnt, which is mounted noexec"));

    // Only env (and the libraries, and the userns-test command) may be
    // executed there: the other ground-truth tools could not even start.
    let doc = doctor(&Host::ExecLandlocked, "program(true),program(env)");
    assert!(!Host::ExecLandlocked.succeeds("env", &["true"]));
    assert_eq!(
        cause(&doc, "program(true)"),
        "exec_refused_by_lsm",
        "{doc:#}"
    );
    assert!(available(&doc, "program(env)"));
}

/// A lookup behaves like the call the test makes: `execvp` (and so
/// `Command::new`) skips a `PATH` entry whose copy cannot be executed
/// (EACCES) and runs the next one; so do `program(...)` and `bwrap`. Where
/// no candidate runs, the first one tried is named with why.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), bwrap)]
fn program_lookups_search_path_as_execvp_does() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::private_scratch("execvp-path");
    for name in ["sh", "bwrap"] {
        std::fs::write(dir.join(name), "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let doctor_with = |path: &str, only: &str| -> serde_json::Value {
        let out = Host::Plain
            .command(cli(), &["doctor", "--json", "--only", only])
            .env("PATH", path)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    // The ground truth: execvp skips the first `sh`, runs the second.
    let truth = Host::Plain
        .command("env", &["sh", "-c", "true"])
        .env("PATH", &path)
        .status()
        .unwrap();
    assert!(truth.success());
    let doc = doctor_with(&path, "program(sh),bwrap");
    assert!(available(&doc, "program(sh)"), "{doc:#}");
    assert!(
        !verdict(&doc, "program(sh)")["note"]
            .as_str()
            .unwrap_or("")
            .starts_with(&dir.display().to_string()),
        "{doc:#}"
    );
    assert!(available(&doc, "bwrap"), "{doc:#}");
    // Only the copy that cannot run: no, naming it and EACCES.
    let doc = doctor_with(&dir.display().to_string(), "program(sh)");
    let v = verdict(&doc, "program(sh)");
    assert_eq!(v["failure"]["name"], "EACCES", "{v:#}");
    assert!(
        v["failed"]
            .as_str()
            .unwrap()
            .contains(&dir.display().to_string()),
        "{v:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `landlock(abi >= N)`: met where the kernel's ABI is N or more, and
/// otherwise named with the release that brought N.
#[requires_userns(cap(sys_admin), cap(setuid), cap(setgid), landlock)]
fn landlock_abi_minimum() {
    let doc = doctor(&Host::Plain, "landlock(abi>=1),landlock(abi>=99)");
    assert!(available(&doc, "landlock(abi>=1)"));
    assert_eq!(cause(&doc, "landlock(abi>=99)"), "landlock_abi_too_old");
    let v = verdict(&doc, "landlock(abi>=99)");
    assert!(v["failed"].as_str().unwrap().contains("below 99"), "{v:#}");
}

/// Every host of the matrix against the ground truth, as one table. With
/// `USERNS_TEST_MATRIX_OUT=path` the table (the guide's, docs/src/causes.md) is written there:
/// `USERNS_TEST_MATRIX_OUT=matrix.md cargo test -p userns-test --test hosts verdict_matrix`.
#[requires_userns(
    cap(sys_admin),
    cap(setuid),
    cap(setgid),
    user,
    bwrap,
    landlock,
    program("/usr/bin/python3")
)]
fn verdict_matrix_matches_ground_truth() {
    let hosts: [(&str, Host); 23] = [
        ("root", Host::Plain),
        ("uid 65534, no capabilities", Host::Unprivileged),
        ("max_user_namespaces=0", Host::NoUserNamespaces),
        ("Docker-like seccomp", Host::DockerSeccomp),
        ("seccomp kills unshare", Host::KillOnUnshare),
        ("/proc not writable (Landlock)", Host::ProcNotWritable),
        ("netlink, SIOCSIFFLAGS refused", Host::NetlinkRefused),
        ("SIOCSIFFLAGS refused", Host::IfFlagsRefused),
        ("mount refused", Host::MountRefused),
        ("RestrictNamespaces=user mnt", Host::RestrictNamespaces),
        ("sethostname refused", Host::SethostnameRefused),
        ("max_net_namespaces=0", Host::NoNetNamespaces),
        ("max_mnt_namespaces=0", Host::NoMountNamespaces),
        ("no /dev/kvm, /dev/net/tun, /dev/fuse", Host::NoDevices),
        ("TUNSETIFF, KVM_CREATE_VM refused", Host::IoctlRefused),
        ("NoNewPrivs set", Host::NoNewPrivs),
        ("no cgroup2 mount", Host::NoCgroup2),
        ("cgroup2 read-only", Host::CgroupReadOnly),
        ("no CAP_SETPCAP in bounding set", Host::NoSetpcap),
        ("PR_CAPBSET_DROP refused", Host::CapbsetDropRefused),
        ("in bwrap --disable-userns", Host::InsideBwrapDisableUserns),
        ("in unshare -Ur", Host::InsideUnshare),
        (
            "RLIMIT_NPROC reached, an unused uid (*)",
            Host::ProcessLimit,
        ),
    ];
    let names: Vec<&str> = GROUND_TRUTH.iter().map(|(n, _)| *n).collect();
    let mut table = format!(
        "| host | {} |\n|---|{}\n",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for (label, host) in &hosts {
        let doc = match host {
            // See process_limit_reached: the probe cannot run at all.
            Host::ProcessLimit => doctor(host, &names.join(",")),
            _ => verdicts_match_ground_truth(host),
        };
        let cells: Vec<String> = names
            .iter()
            .map(|a| {
                let v = verdict(&doc, a);
                // Every refusal on these hosts has a cause found from
                // evidence: none is left unexplained, none left to the
                // program's own words.
                let id = v["cause"]["id"].as_str().unwrap_or("");
                assert!(
                    !["unexplained", "program_failed", "seccomp_filter"].contains(&id),
                    "{label}: {a}: {v:#}"
                );
                common::matrix_cell(v)
            })
            .collect();
        table.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
    }
    if let Some(path) = std::env::var_os("USERNS_TEST_MATRIX_OUT") {
        std::fs::write(path, &table).expect("write the matrix");
    }
}
