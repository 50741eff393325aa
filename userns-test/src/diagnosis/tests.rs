//! One test per cause class: a failed step, the evidence a restricted host
//! gives, and the cause it must yield.

use super::*;
use crate::probe::control::FilterCheck;

/// Evidence written down: facts, what other probes observed (available
/// when not listed), and each ability's control call.
#[derive(Default)]
struct Given {
    facts: HostFacts,
    observations: Vec<Observation>,
    checks: Vec<(Ability, FilterCheck)>,
    privileged: Option<bool>,
    files: Vec<(&'static str, FileStatus)>,
}

impl Evidence for Given {
    fn facts(&self) -> &HostFacts {
        &self.facts
    }
    fn observation(&self, ability: Ability) -> Observation {
        self.observations
            .iter()
            .find(|o| o.ability == ability)
            .cloned()
            .unwrap_or(Observation {
                ability,
                result: Ok(()),
                note: None,
                duration: Default::default(),
            })
    }
    fn filter_check(&self, ability: Ability, _: &Step) -> FilterCheck {
        self.checks
            .iter()
            .find(|(a, _)| *a == ability)
            .map_or(FilterCheck::Unknown, |(_, c)| *c)
    }
    fn program_privileged(&self, _: &str) -> Option<bool> {
        self.privileged
    }
    fn file_status(&self, path: &str) -> Option<FileStatus> {
        self.files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, s)| s.clone())
    }
}

fn unshare(flags: &str) -> Step {
    Step::Unshare {
        flags: flags.into(),
    }
}

fn setgroups() -> Step {
    Step::OpenForWriting {
        path: "/proc/self/setgroups".into(),
    }
}

fn pid_clone() -> Step {
    Step::Clone {
        flags: "CLONE_PIDFD|CLONE_NEWUSER|CLONE_NEWPID".into(),
    }
}

fn failed(step: Step, failure: Failure) -> Failed {
    Failed { step, failure }
}

fn errno(step: Step, errno: i32) -> Failed {
    failed(step, Failure::errno(errno))
}

fn observed(ability: Ability, f: Failed) -> Observation {
    Observation {
        ability,
        result: Err(f),
        note: None,
        duration: Default::default(),
    }
}

fn bwrap_said(line: &str) -> Failed {
    failed(
        Step::Run {
            program: "/usr/bin/bwrap".into(),
            command: "/usr/bin/bwrap --unshare-user ...".into(),
        },
        Failure::ExitStatus {
            code: 1,
            stderr: Some(line.into()),
        },
    )
}

/// A host whose LSM denies every capability in a new user namespace:
/// `/proc` writable, setgroups refused.
fn capabilities_denied(label: Option<&str>) -> Given {
    Given {
        facts: HostFacts {
            proc_writable: Some(true),
            dumpable: Some(true),
            euid: 1000,
            apparmor_label: label.map(str::to_owned),
            lsms: Some(vec!["capability".into(), "apparmor".into(), "bpf".into()]),
            ..HostFacts::default()
        },
        observations: vec![observed(Ability::User, errno(setgroups(), libc::EACCES))],
        checks: vec![(Ability::Pid, FilterCheck::Reached)],
        ..Given::default()
    }
}

#[test]
fn user_namespaces_disabled_by_sysctl() {
    let ev = Given {
        facts: HostFacts {
            max_user_namespaces: Some(0),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let r = reason(
        Ability::User,
        &errno(unshare("CLONE_NEWUSER"), libc::ENOSPC),
        &ev,
    );
    assert_eq!(r.cause, Cause::UserNamespacesDisabled);
    assert!(
        r.remedy.contains("user.max_user_namespaces"),
        "{}",
        r.remedy
    );
}

#[test]
fn whole_namespace_refusal_by_a_filter_is_dockers() {
    let ev = Given {
        checks: vec![(Ability::Net, FilterCheck::Refused(libc::EPERM))],
        ..Given::default()
    };
    let c = cause(
        Ability::Net,
        &errno(unshare("CLONE_NEWUSER"), libc::EPERM),
        &ev,
    );
    assert_eq!(c, Cause::SeccompRefusesNamespaces);
    assert!(c.to_string().contains("Docker"));
}

#[test]
fn refusal_of_some_types_is_not_dockers() {
    let ev = Given {
        facts: HostFacts {
            seccomp_mode: Some(2),
            ..HostFacts::default()
        },
        checks: vec![
            (Ability::Net, FilterCheck::Refused(libc::EPERM)),
            (Ability::Pid, FilterCheck::Refused(libc::EPERM)),
        ],
        observations: vec![
            observed(Ability::Net, errno(unshare("CLONE_NEWNET"), libc::EPERM)),
            observed(Ability::Pid, errno(pid_clone(), libc::EPERM)),
        ],
        ..Given::default()
    };
    let net = cause(
        Ability::Net,
        &errno(unshare("CLONE_NEWNET"), libc::EPERM),
        &ev,
    );
    // Both types named, by either ability: one filter, one root cause.
    let both = Cause::SeccompRefusesNamespaceTypes {
        types: "network namespaces (CLONE_NEWNET) and PID namespaces (CLONE_NEWPID)".into(),
    };
    assert_eq!(net, both);
    assert!(!net.to_string().contains("Docker"), "{net}");
    // pid makes both namespaces in one clone; `user` working says which.
    let pid = cause(Ability::Pid, &errno(pid_clone(), libc::EPERM), &ev);
    assert_eq!(pid, both);
}

#[test]
fn a_refusal_that_reached_the_kernel_is_not_blamed_on_the_filter() {
    let ev = Given {
        facts: HostFacts {
            seccomp_mode: Some(2),
            ..HostFacts::default()
        },
        checks: vec![(Ability::Net, FilterCheck::Reached)],
        ..Given::default()
    };
    let c = cause(
        Ability::Net,
        &errno(unshare("CLONE_NEWNET"), libc::EPERM),
        &ev,
    );
    assert_eq!(c, Cause::Unexplained);
    // Unchecked, a filter is only what *may* have refused it.
    let ev = Given {
        facts: ev.facts.clone(),
        ..Given::default()
    };
    let c = cause(
        Ability::Net,
        &errno(unshare("CLONE_NEWNET"), libc::EPERM),
        &ev,
    );
    assert_eq!(c, Cause::SeccompFilter);
    assert!(c.to_string().contains("may be"), "{c}");
}

#[test]
fn per_type_limits_name_their_sysctl() {
    let mut facts = HostFacts {
        max_user_namespaces: Some(2147483647),
        ..HostFacts::default()
    };
    facts
        .namespace_limits
        .insert("user.max_net_namespaces".into(), 0);
    let ev = Given {
        facts,
        ..Given::default()
    };
    let c = cause(
        Ability::Net,
        &errno(unshare("CLONE_NEWNET"), libc::ENOSPC),
        &ev,
    );
    assert_eq!(
        c,
        Cause::NamespaceLimit {
            sysctl: "user.max_net_namespaces".into(),
            value: Some(0)
        }
    );
    assert_eq!(
        c.to_string(),
        "user.max_net_namespaces=0 forbids this namespace type"
    );
}

#[test]
fn bwrap_enospc_takes_the_limit_the_syscall_probe_found() {
    let mut facts = HostFacts {
        max_user_namespaces: Some(2147483647),
        ..HostFacts::default()
    };
    facts
        .namespace_limits
        .insert("user.max_mnt_namespaces".into(), 0);
    let ev = Given {
        facts,
        observations: vec![observed(
            Ability::CapSysAdmin,
            errno(unshare("CLONE_NEWNS"), libc::ENOSPC),
        )],
        ..Given::default()
    };
    let line = "bwrap: Creating new namespace failed: nesting depth or \
                /proc/sys/user/max_*_namespaces exceeded (ENOSPC)";
    for ability in [Ability::Bwrap, Ability::BwrapNet] {
        let c = cause(ability, &bwrap_said(line), &ev);
        assert_eq!(
            c,
            Cause::NamespaceLimit {
                sysctl: "user.max_mnt_namespaces".into(),
                value: Some(0)
            },
            "{ability}"
        );
    }
    // Only the network namespace limited: bwrap is fine, bwrap_net names
    // the net limit, never user.max_user_namespaces.
    let mut facts = ev.facts.clone();
    facts.namespace_limits.clear();
    facts
        .namespace_limits
        .insert("user.max_net_namespaces".into(), 0);
    let ev = Given {
        facts,
        observations: vec![observed(
            Ability::Net,
            errno(unshare("CLONE_NEWNET"), libc::ENOSPC),
        )],
        ..Given::default()
    };
    let c = cause(Ability::BwrapNet, &bwrap_said(line), &ev);
    assert_eq!(c.id(), "namespace_limit");
    assert!(c.to_string().contains("max_net_namespaces"), "{c}");
}

#[test]
fn setgroups_refused_with_proc_writable_is_a_capability_denial() {
    let ev = capabilities_denied(Some("unprivileged_userns (enforce)"));
    let user = cause(Ability::User, &errno(setgroups(), libc::EACCES), &ev);
    assert_eq!(
        user,
        Cause::CapabilitiesDeniedInUserns {
            label: Some("unprivileged_userns (enforce)".into()),
            lsms: ev.facts.lsms.clone(),
        }
    );
    assert!(!user.to_string().contains("writes to /proc"), "{user}");
    // pid's clone is refused by the same denial: one cause, not
    // "unexplained".
    let pid = cause(Ability::Pid, &errno(pid_clone(), libc::EPERM), &ev);
    assert_eq!(pid, user);
    // A BPF LSM, no AppArmor label: the LSMs are named.
    let ev = capabilities_denied(None);
    let c = cause(Ability::Mount, &errno(setgroups(), libc::EACCES), &ev);
    assert!(
        c.to_string()
            .contains("active LSMs: capability,apparmor,bpf"),
        "{c}"
    );
    // bubblewrap fails at the same step, for the same cause.
    let b = cause(
        Ability::Bwrap,
        &bwrap_said("bwrap: setting up uid map: Permission denied"),
        &Given {
            observations: vec![observed(Ability::User, errno(setgroups(), libc::EACCES))],
            ..capabilities_denied(None)
        },
    );
    assert_eq!(b, c);
    // Whatever step bubblewrap reaches first inside its namespaces (its
    // clone of several at once, its loopback), the same denial: measured
    // on a real 6.1 kernel with an AppArmor profile and a BPF LSM.
    for line in [
        "bwrap: No permissions to create new namespace, likely because the kernel does not \
         allow non-privileged user namespaces.",
        "bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted",
    ] {
        let b = cause(
            Ability::BwrapNet,
            &bwrap_said(line),
            &capabilities_denied(None),
        );
        assert_eq!(b, c, "{line}");
    }
    // Its capabilities refused in the new namespace: the same denial.
    let b = cause(
        Ability::Bwrap,
        &bwrap_said("bwrap: capset failed: Operation not permitted"),
        &capabilities_denied(None),
    );
    assert_eq!(b, c);
}

#[test]
fn setgroups_refused_where_proc_is_not_writable() {
    let ev = Given {
        facts: HostFacts {
            proc_writable: Some(false),
            dumpable: Some(true),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let r = reason(Ability::User, &errno(setgroups(), libc::EACCES), &ev);
    assert_eq!(r.cause, Cause::ProcNotWritable { read_only: false });
    // Not dumpable: /proc files belong to root; that, not a policy.
    let ev = Given {
        facts: HostFacts {
            proc_writable: None,
            dumpable: Some(false),
            euid: 1000,
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let c = cause(Ability::User, &errno(setgroups(), libc::EACCES), &ev);
    assert_eq!(c, Cause::NotDumpable);
}

#[test]
fn ubuntu_sysctl_names_apparmor_and_a_profile_for_bwrap_too() {
    let ev = Given {
        facts: HostFacts {
            apparmor_restrict_unprivileged_userns: Some(1),
            cap_effective: Some(0),
            proc_writable: Some(true),
            apparmor_label: Some("unconfined".into()),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let r = reason(Ability::User, &errno(setgroups(), libc::EACCES), &ev);
    assert_eq!(r.cause.id(), "apparmor_restrict_unprivileged_userns");
    // bwrap fails where the test binary does not (it has a profile): the
    // restriction, and the fix covers bwrap itself.
    let b = reason(
        Ability::BwrapNet,
        &bwrap_said("bwrap: setting up uid map: Permission denied"),
        &ev,
    );
    assert_eq!(b.cause, r.cause);
    assert_eq!(b.remedy, r.remedy, "one root cause, one fix");
    assert!(
        r.remedy.contains("bwrap-userns-restrict") && r.remedy.contains("userns,"),
        "{}",
        r.remedy
    );
}

#[test]
fn calls_refused_inside_the_namespaces() {
    let mount = errno(
        Step::Mount {
            what: "tmpfs on /tmp".into(),
        },
        libc::EPERM,
    );
    let filtered = Given {
        checks: vec![
            (Ability::Mount, FilterCheck::Refused(libc::EPERM)),
            (Ability::Uts, FilterCheck::Refused(libc::EPERM)),
            (Ability::Net, FilterCheck::Refused(libc::EACCES)),
        ],
        ..Given::default()
    };
    assert_eq!(
        cause(Ability::Mount, &mount, &filtered),
        Cause::SeccompRefusesCall {
            call: "mount".into()
        }
    );
    assert_eq!(
        cause(
            Ability::Uts,
            &errno(Step::SetHostname, libc::EPERM),
            &filtered
        ),
        Cause::SeccompRefusesCall {
            call: "sethostname".into()
        }
    );
    let socket = errno(
        Step::Socket {
            domain: "AF_NETLINK, NETLINK_ROUTE".into(),
        },
        libc::EACCES,
    );
    assert_eq!(
        cause(Ability::Net, &socket, &filtered),
        Cause::SeccompRefusesCall {
            call: "socket(AF_NETLINK)".into()
        }
    );
    let reached = Given {
        checks: vec![(Ability::Mount, FilterCheck::Reached)],
        ..Given::default()
    };
    assert_eq!(
        cause(Ability::Mount, &mount, &reached),
        Cause::LsmRefusesCall {
            call: "mount".into()
        }
    );
    let killed = Given {
        checks: vec![(Ability::Mount, FilterCheck::Killed(libc::SIGSYS))],
        ..Given::default()
    };
    assert_eq!(cause(Ability::Mount, &mount, &killed), Cause::SeccompKill);
}

#[test]
fn bwrap_messages_take_the_cause_of_the_same_step() {
    let socket = errno(
        Step::Socket {
            domain: "AF_NETLINK, NETLINK_ROUTE".into(),
        },
        libc::EACCES,
    );
    let ev = Given {
        observations: vec![observed(Ability::Net, socket)],
        checks: vec![(Ability::Net, FilterCheck::Refused(libc::EACCES))],
        ..Given::default()
    };
    let c = cause(
        Ability::BwrapNet,
        &bwrap_said("bwrap: loopback: Failed to create NETLINK_ROUTE socket: Permission denied"),
        &ev,
    );
    assert_eq!(
        c,
        Cause::SeccompRefusesCall {
            call: "socket(AF_NETLINK)".into()
        }
    );
    let private = errno(
        Step::Mount {
            what: "making / private (MS_REC|MS_PRIVATE)".into(),
        },
        libc::EPERM,
    );
    let ev = Given {
        observations: vec![observed(Ability::Mount, private)],
        checks: vec![(Ability::Mount, FilterCheck::Refused(libc::EPERM))],
        ..Given::default()
    };
    let c = cause(
        Ability::Bwrap,
        &bwrap_said("bwrap: Failed to make / slave: Operation not permitted"),
        &ev,
    );
    assert_eq!(
        c,
        Cause::SeccompRefusesCall {
            call: "mount".into()
        }
    );
    // A message no probe shares keeps bubblewrap's own words.
    let c = cause(
        Ability::Bwrap,
        &bwrap_said("bwrap: Can't find source path /nonexistent: No such file or directory"),
        &Given::default(),
    );
    assert_eq!(
        c,
        Cause::ProgramFailed {
            program: "bwrap".into(),
            message: "Can't find source path /nonexistent: No such file or directory".into()
        }
    );
}

#[test]
fn bwrap_refused_namespaces_where_the_process_is_not() {
    // The user probe worked: a refusal is about bwrap, and says so in its
    // words, not the host's.
    let c = cause(
        Ability::Bwrap,
        &bwrap_said(
            "bwrap: No permissions to create new namespace, likely because the kernel does \
             not allow non-privileged user namespaces.",
        ),
        &Given::default(),
    );
    assert_eq!(c.id(), "program_failed");
    // The user probe was refused by the filter too: the filter.
    let ev = Given {
        observations: vec![observed(
            Ability::User,
            errno(unshare("CLONE_NEWUSER"), libc::EPERM),
        )],
        checks: vec![(Ability::User, FilterCheck::Refused(libc::EPERM))],
        ..Given::default()
    };
    let c = cause(
        Ability::Bwrap,
        &bwrap_said("bwrap: No permissions to create new namespace, likely ..."),
        &ev,
    );
    assert_eq!(c, Cause::SeccompRefusesNamespaces);
}

#[test]
fn id_mappers_without_their_privilege() {
    let said = failed(
        Step::Run {
            program: "/usr/bin/newuidmap".into(),
            command: "/usr/bin/newuidmap 42 0 1000 1 1 100000 65536".into(),
        },
        Failure::ExitStatus {
            code: 1,
            stderr: Some("newuidmap: write to uid_map failed: Operation not permitted".into()),
        },
    );
    let ev = Given {
        privileged: Some(false),
        ..Given::default()
    };
    assert_eq!(
        cause(Ability::Subids, &said, &ev),
        Cause::ProgramUnprivileged {
            path: "/usr/bin/newuidmap".into()
        }
    );
    let ev = Given {
        privileged: Some(true),
        facts: HostFacts {
            no_new_privs: Some(true),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    assert_eq!(cause(Ability::Subids, &said, &ev), Cause::NoNewPrivs);
}

#[test]
fn capbset_drop() {
    let step = Step::CapBsetDrop { cap: 40 };
    let without = Given {
        facts: HostFacts {
            cap_effective: Some(0),
            cap_bounding: Some(0xff_ffff_ffff),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let c = cause(
        Ability::CapSetpcap,
        &errno(step.clone(), libc::EPERM),
        &without,
    );
    assert_eq!(
        c.to_string(),
        "CAP_SETPCAP is not effective, with 40 capabilities still in the bounding set \
         (rootless container, or the capability was dropped)"
    );
    let with = |check| Given {
        facts: HostFacts {
            cap_effective: Some(1 << 8),
            ..HostFacts::default()
        },
        checks: vec![(Ability::CapSetpcap, check)],
        ..Given::default()
    };
    assert_eq!(
        cause(
            Ability::CapSetpcap,
            &errno(step.clone(), libc::EPERM),
            &with(FilterCheck::Refused(libc::EPERM))
        )
        .id(),
        "seccomp_refuses_call"
    );
    assert_eq!(
        cause(
            Ability::CapSetpcap,
            &errno(step, libc::EPERM),
            &with(FilterCheck::Reached)
        )
        .id(),
        "capability_denied_by_lsm"
    );
}

#[test]
fn resource_limits_are_never_a_policy() {
    let ev = Given {
        facts: HostFacts {
            rlimit_nofile: Some(4),
            rlimit_nproc: Some(1),
            seccomp_mode: Some(2),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    assert_eq!(
        cause(
            Ability::User,
            &errno(unshare("CLONE_NEWUSER"), libc::EMFILE),
            &ev
        ),
        Cause::FileLimit {
            limit: Some(4),
            system: false
        }
    );
    assert_eq!(
        cause(Ability::Net, &errno(pid_clone(), libc::EAGAIN), &ev),
        Cause::ProcessLimit { limit: Some(1) }
    );
}

#[test]
fn identity_and_programs() {
    let ev = Given {
        facts: HostFacts {
            uid: 1000,
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let root = failed(
        Step::CheckUid,
        Failure::Mismatch {
            found: "real uid 1000".into(),
        },
    );
    assert_eq!(
        cause(Ability::Root, &root, &ev),
        Cause::NotRoot { uid: 1000 }
    );
    let exec = errno(
        Step::Exec {
            program: "/opt/bw".into(),
        },
        libc::ENOENT,
    );
    assert_eq!(
        cause(Ability::Bwrap, &exec, &ev),
        Cause::NotInstalled {
            program: "bwrap at /opt/bw".into()
        }
    );
    // Programs whose package has another name say which.
    for (program, install) in [
        ("qemu-system-x86_64", "apt-get install qemu-system-x86"),
        ("vng", "pip install virtme-ng"),
        ("/usr/sbin/aa-exec", "apt-get install apparmor"),
    ] {
        let cause = Cause::NotInstalled {
            program: program.into(),
        };
        let fix = remedy::remedy(&cause, &|| &ev.facts);
        assert!(fix.contains(install), "{fix}");
    }
    let unknown = Cause::NotInstalled {
        program: "frobnicate".into(),
    };
    assert!(remedy::remedy(&unknown, &|| &ev.facts).contains("its package"));
    let subids = failed(
        Step::ReadSubids {
            path: "/etc/subuid".into(),
            user: "alice".into(),
        },
        Failure::Missing {
            what: "a range for alice".into(),
        },
    );
    assert_eq!(
        cause(Ability::Subids, &subids, &ev),
        Cause::NoSubordinateIds {
            path: "/etc/subuid".into(),
            user: "alice".into()
        }
    );
}

/// `cap(...)`: where the capability went, from this process's sets.
#[test]
fn a_missing_capability_says_where_it_went() {
    let step = || Step::CheckCapability {
        capability: "CAP_SYS_PTRACE".into(),
    };
    let missing = || {
        failed(
            step(),
            Failure::Mismatch {
                found: "not in the effective set".into(),
            },
        )
    };
    // Docker's default set: 14 capabilities, CAP_SYS_PTRACE not among them.
    let docker = Given {
        facts: HostFacts {
            euid: 0,
            cap_last_cap: Some(40),
            cap_bounding: Some(0xa80425fb),
            cap_permitted: Some(0xa80425fb),
            cap_effective: Some(0xa80425fb),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let c = cause(Ability::Cap(19), &missing(), &docker);
    assert_eq!(
        c,
        Cause::CapabilityNotInBoundingSet {
            capability: "CAP_SYS_PTRACE".into(),
            bounding_set_size: Some(14)
        }
    );
    let fix = remedy::remedy(&c, &|| &docker.facts);
    assert!(fix.contains("--cap-add SYS_PTRACE"), "{fix}");
    // A normal user: every capability bounded, none permitted.
    let user = Given {
        facts: HostFacts {
            euid: 1000,
            uid: 1000,
            cap_last_cap: Some(40),
            cap_bounding: Some((1 << 41) - 1),
            cap_permitted: Some(0),
            cap_effective: Some(0),
            no_new_privs: Some(true),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let c = cause(Ability::Cap(19), &missing(), &user);
    assert!(matches!(
        c,
        Cause::CapabilityNotPermitted {
            uid: 1000,
            no_new_privs: true,
            ..
        }
    ));
    assert!(c.to_string().contains("NoNewPrivs"), "{c}");
    let fix = remedy::remedy(&c, &|| &user.facts);
    assert!(
        fix.contains("sudo -E") && fix.contains("NoNewPrivs"),
        "{fix}"
    );
    // Permitted, not raised.
    let lowered = Given {
        facts: HostFacts {
            cap_permitted: Some(1 << 19),
            cap_bounding: Some(1 << 19),
            cap_effective: Some(0),
            cap_last_cap: Some(40),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    assert!(matches!(
        cause(Ability::Cap(19), &missing(), &lowered),
        Cause::CapabilityNotEffective { .. }
    ));
    // A kernel that does not know the capability (a stubbed cap_last_cap:
    // no kernel before 5.9 is at hand).
    let old = Given {
        facts: HostFacts {
            cap_last_cap: Some(37),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let bpf = failed(
        Step::CheckCapability {
            capability: "CAP_BPF".into(),
        },
        Failure::Mismatch {
            found: "the kernel knows capabilities 0 to 37 (cap_last_cap)".into(),
        },
    );
    let c = cause(Ability::Cap(39), &bpf, &old);
    assert!(c.to_string().contains("Linux 5.8"), "{c}");
    // Held in a user namespace, where the kernel does not look.
    let inside = Given {
        facts: HostFacts {
            uid_map: Some("0 1000 1".into()),
            in_user_namespace: Some(true),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let module = failed(
        Step::CheckCapability {
            capability: "CAP_SYS_MODULE".into(),
        },
        Failure::Mismatch {
            found: "CapEff has it, in a user namespace (uid map 0 1000 1)".into(),
        },
    );
    let c = cause(Ability::Cap(16), &module, &inside);
    assert_eq!(
        c,
        Cause::CapabilityOutsideInitialNamespace {
            capability: "CAP_SYS_MODULE".into(),
            uid_map: "0 1000 1".into()
        }
    );
    assert!(c.to_string().contains("initial user namespace only"), "{c}");
    let fix = remedy::remedy(&c, &|| &inside.facts);
    assert!(fix.contains("outside user namespaces"), "{fix}");
}

/// `root` with a reduced set names what is missing and points at cap(...).
#[test]
fn root_without_every_capability() {
    let ev = Given {
        facts: HostFacts {
            cap_last_cap: Some(40),
            cap_effective: Some(((1 << 41) - 1) & !(1 << 24)),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let f = failed(
        Step::CheckCapabilities,
        Failure::Mismatch {
            found: "uid 0 without CAP_SYS_RESOURCE".into(),
        },
    );
    let c = cause(Ability::Root, &f, &ev);
    assert_eq!(
        c,
        Cause::RootWithoutCapabilities {
            missing: vec!["CAP_SYS_RESOURCE".into()]
        }
    );
    assert!(remedy::remedy(&c, &|| &ev.facts).contains("cap(...)"));
}

/// Old kernels refuse overlayfs and FUSE in a user namespace with EPERM:
/// the release says why, not an LSM. (No 5.10 or 4.17 kernel is at hand:
/// the release is stubbed; the errno is what those kernels return.)
#[test]
fn filesystems_an_old_kernel_refuses_in_a_user_namespace() {
    let ev = |release: &str| Given {
        facts: HostFacts {
            kernel_release: Some(release.into()),
            ..HostFacts::default()
        },
        checks: vec![
            (Ability::Overlay, FilterCheck::Reached),
            (Ability::Fuse, FilterCheck::Reached),
        ],
        ..Given::default()
    };
    let overlay = errno(
        Step::Mount {
            what: "overlay on /tmp/m".into(),
        },
        libc::EPERM,
    );
    let rhel8 = ev("4.18.0-513.el8_9.x86_64");
    let c = cause(Ability::Overlay, &overlay, &rhel8);
    assert!(
        matches!(&c, Cause::KernelLacks { feature } if feature.contains("Linux 5.11") && feature.contains("4.18.0-513")),
        "{c}"
    );
    // On 5.11 and later the same EPERM is a refusal, as before.
    let new = ev("6.1.0-27-amd64");
    assert!(matches!(
        cause(Ability::Overlay, &overlay, &new),
        Cause::LsmRefusesCall { .. }
    ));
    let fuse = errno(
        Step::Mount {
            what: "fuse on /tmp".into(),
        },
        libc::EPERM,
    );
    let c = cause(Ability::Fuse, &fuse, &ev("4.15.0-213-generic"));
    assert!(
        matches!(&c, Cause::KernelLacks { feature } if feature.contains("Linux 4.18")),
        "{c}"
    );
}

/// The Landlock version query never fails with EPERM in the kernel: a
/// filter refused it.
#[test]
fn a_refused_landlock_version_query_is_a_filter() {
    let ev = Given {
        facts: HostFacts {
            seccomp_mode: Some(2),
            ..HostFacts::default()
        },
        ..Given::default()
    };
    let c = cause(
        Ability::Landlock,
        &errno(Step::LandlockAbiVersion, libc::EPERM),
        &ev,
    );
    assert_eq!(
        c,
        Cause::SeccompRefusesCall {
            call: "landlock_create_ruleset".into()
        }
    );
    let fix = remedy::remedy(&c, &|| &ev.facts);
    assert!(fix.contains("not Docker's default profile"), "{fix}");
}

/// The fixes for filtered calls say what Docker's published default
/// profile does with them.
#[test]
fn filtered_call_fixes_match_dockers_profile() {
    let facts = HostFacts::default();
    let fix =
        |call: &str| remedy::remedy(&Cause::SeccompRefusesCall { call: call.into() }, &|| &facts);
    assert!(fix("pivot_root").contains("whatever the container's capabilities"));
    assert!(fix("mount").contains("only to a container with CAP_SYS_ADMIN"));
    assert!(fix("ioctl(TUNSETIFF)").contains("not Docker's default profile"));
}

/// /dev/kvm owned by root:root, 0600: the group has no access to join.
#[test]
fn kvm_fix_follows_the_nodes_mode() {
    let facts = HostFacts::default();
    let fix = |mode: &str| {
        remedy::remedy(
            &Cause::DeviceNotAccessible {
                path: "/dev/kvm".into(),
                mode: mode.into(),
            },
            &|| &facts,
        )
    };
    assert!(fix("mode crw-rw----, owner 0:36").starts_with("add this user"));
    let closed = fix("mode crw-------, owner 0:0");
    assert!(closed.contains("group has no access"), "{closed}");
}

/// `landlock(abi == N)` and `landlock(abi < N)` name the ABI found.
#[test]
fn landlock_bounds() {
    let ev = Given::default();
    let mismatch = |found: &str| {
        failed(
            Step::LandlockAbiVersion,
            Failure::Mismatch {
                found: found.into(),
            },
        )
    };
    assert_eq!(
        cause(
            Ability::LandlockAbiExactly(4),
            &mismatch("Landlock ABI 7, not 4"),
            &ev
        ),
        Cause::LandlockAbiTooNew { found: 7, below: 5 }
    );
    assert_eq!(
        cause(
            Ability::LandlockAbiExactly(9),
            &mismatch("Landlock ABI 7, not 9"),
            &ev
        ),
        Cause::LandlockAbiTooOld { wanted: 9 }
    );
    let c = cause(
        Ability::LandlockAbiBelow(4),
        &mismatch("Landlock ABI 7, not below 4"),
        &ev,
    );
    assert_eq!(c, Cause::LandlockAbiTooNew { found: 7, below: 4 });
    assert!(c.to_string().contains("before Linux 6.7"), "{c}");
}
