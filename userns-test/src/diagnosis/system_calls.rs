//! Causes of a system call that failed with an errno: resource limits
//! first (they are not refusals), then by step: creating the user
//! namespace, creating other namespace types inside it, writing the id
//! maps, and the calls made inside the new namespaces.

use super::Evidence;
use crate::Ability;
use crate::cause::Cause;
use crate::facts::HostFacts;
use crate::probe::control::FilterCheck;
use crate::step::Step;

const CAP_SETPCAP: u32 = 8;
const CAP_SYS_ADMIN: u32 = 21;

/// The cause of `errno` at `step` of `ability`'s probe.
pub(super) fn cause(ability: Ability, step: &Step, errno: i32, ev: &dyn Evidence) -> Cause {
    if let Some(cause) = resource_limit(errno, ev) {
        return cause;
    }
    match step {
        // Starting a process (the probe child, a program's supervisor or
        // its exec): EAGAIN is the process limit.
        Step::Clone { .. } | Step::Exec { .. } if errno == libc::EAGAIN => Cause::ProcessLimit {
            limit: ev.facts().rlimit_nproc,
        },
        s if s.creates_namespace(true) => user_namespace_refused(ability, step, errno, ev),
        Step::Unshare { flags } => namespace_type_refused(ability, step, flags, errno, ev),
        Step::OpenForWriting { path } | Step::Write { path, .. } if path.starts_with("/proc") => {
            id_map_refused(errno, ev.facts())
        }
        Step::Mount { what }
            if what.starts_with("proc") && !ev.facts().proc_overmounts.is_empty() =>
        {
            Cause::ProcMasked {
                overmounts: ev.facts().proc_overmounts.clone(),
            }
        }
        Step::Mount { what } if errno == libc::ENODEV => Cause::KernelLacks {
            feature: format!("the filesystem of {what} (its module is not loaded)"),
        },
        Step::Mount { what } if errno == libc::EINVAL && what.starts_with("overlay") => {
            Cause::KernelLacks {
                feature: "overlayfs mounts in user namespaces (Linux 5.11)".into(),
            }
        }
        Step::Mount { what } if errno == libc::EINVAL && what.starts_with("fuse") => {
            Cause::KernelLacks {
                feature: "FUSE mounts in user namespaces (Linux 4.18)".into(),
            }
        }
        // Kernels before 5.11 (overlayfs) and 4.18 (FUSE) do not allow the
        // filesystem type in a user namespace: the mount fails with EPERM,
        // which no filter or LSM explains better than the release.
        Step::Mount { what }
            if errno == libc::EPERM && userns_mount_too_new(what, ev.facts()).is_some() =>
        {
            Cause::KernelLacks {
                feature: userns_mount_too_new(what, ev.facts()).unwrap_or_default(),
            }
        }
        Step::Mount { .. } => call_refused(ability, step, "mount", errno, ev),
        Step::PivotRoot { .. } if errno == libc::EINVAL => {
            if ev.facts().root_fstype.as_deref() == Some("rootfs") {
                Cause::RootIsRootfs
            } else {
                Cause::Unexplained
            }
        }
        Step::PivotRoot { .. } => call_refused(ability, step, "pivot_root", errno, ev),
        Step::OpenDevice { path } => device_refused(path, errno, ev),
        Step::Ioctl { request } if request.starts_with("KVM_GET_API_VERSION") => {
            Cause::KernelLacks {
                feature: "KVM API version 12".into(),
            }
        }
        Step::Ioctl { request } => {
            let name = request.split(',').next().unwrap_or(request);
            call_refused(ability, step, &format!("ioctl({name})"), errno, ev)
        }
        Step::Mkdir { path } | Step::Write { path, .. } if ability == Ability::CgroupDelegation => {
            // The cgroup the probe tried to create its own in: the same
            // words on every run (not the probe's per-process name).
            let tried = std::path::Path::new(path.trim_end_matches("/cgroup.procs"));
            let cgroup = match tried.file_name().and_then(|n| n.to_str()) {
                Some(n) if n.starts_with("userns-test-probe-") => tried.parent().unwrap_or(tried),
                _ => tried,
            }
            .display()
            .to_string();
            match errno {
                libc::EROFS => Cause::CgroupReadOnly { path: cgroup },
                libc::EACCES | libc::EPERM => Cause::CgroupNotDelegated { path: cgroup },
                _ => Cause::Unexplained,
            }
        }
        Step::StopProgramFilter if errno == libc::EINVAL => Cause::KernelLacks {
            feature: "seccomp filters (CONFIG_SECCOMP_FILTER), which stop the program before it \
                      runs"
                .into(),
        },
        Step::SetHostname => call_refused(ability, step, "sethostname", errno, ev),
        Step::Socket { .. } => call_refused(ability, step, "socket(AF_NETLINK)", errno, ev),
        Step::CapBsetDrop { .. } => capbset_drop_refused(ability, step, ev),
        Step::SeccompSetModeFilter if errno == libc::EINVAL => Cause::KernelLacks {
            feature: "seccomp filters (CONFIG_SECCOMP_FILTER)".into(),
        },
        // The version query (a NULL attribute, size 0, the VERSION flag)
        // fails only with ENOSYS (not built) and EOPNOTSUPP (not enabled):
        // the kernel never answers it with EPERM or EACCES, so a filter
        // did.
        Step::LandlockAbiVersion if matches!(errno, libc::EPERM | libc::EACCES) => {
            Cause::SeccompRefusesCall {
                call: "landlock_create_ruleset".into(),
            }
        }
        Step::LandlockAbiVersion | Step::LandlockCreateRuleset | Step::LandlockRestrictSelf => {
            match errno {
                libc::EOPNOTSUPP => Cause::LandlockNotEnabled,
                libc::ENOSYS if !ev.facts().under_seccomp_filter() => Cause::KernelLacks {
                    feature: "Landlock (CONFIG_SECURITY_LANDLOCK)".into(),
                },
                _ => unchecked_refusal(errno, ev.facts()),
            }
        }
        _ => unchecked_refusal(errno, ev.facts()),
    }
}

/// EMFILE, ENFILE and ENOMEM, whatever the step: limits, not policies,
/// and no policy is blamed for them.
pub(super) fn resource_limit(errno: i32, ev: &dyn Evidence) -> Option<Cause> {
    match errno {
        libc::EMFILE => Some(Cause::FileLimit {
            limit: ev.facts().rlimit_nofile,
            system: false,
        }),
        libc::ENFILE => Some(Cause::FileLimit {
            limit: None,
            system: true,
        }),
        libc::ENOMEM => Some(Cause::OutOfMemory),
        _ => None,
    }
}

fn is_refusal(errno: i32) -> bool {
    matches!(errno, libc::EPERM | libc::EACCES | libc::ENOSYS)
}

/// Creating a user namespace failed: the unshare or clone with
/// `CLONE_NEWUSER` (for `pid`, with `CLONE_NEWPID` in the same clone).
fn user_namespace_refused(ability: Ability, step: &Step, errno: i32, ev: &dyn Evidence) -> Cause {
    // `pid` creates its user namespace together with the PID namespace;
    // what the `user` probe saw says which of the two was refused.
    let with_other_types = ability == Ability::Pid;
    match errno {
        libc::ENOSPC | libc::EUSERS => {
            let facts = ev.facts();
            if facts.max_user_namespaces == Some(0) {
                return Cause::UserNamespacesDisabled;
            }
            if with_other_types {
                let user_worked = ev.observation(Ability::User).result.is_ok();
                if facts.namespace_limit("pid") == Some(0) || user_worked {
                    return Cause::NamespaceLimit {
                        sysctl: "user.max_pid_namespaces".into(),
                        value: facts.namespace_limit("pid"),
                    };
                }
            }
            Cause::UserNamespaceLimit {
                max: facts.max_user_namespaces,
                nested: facts.in_user_namespace == Some(true),
            }
        }
        libc::EINVAL => Cause::KernelLacks {
            feature: "user namespaces (CONFIG_USER_NS)".into(),
        },
        e if is_refusal(e) => {
            let check = ev.filter_check(ability, step);
            if with_other_types {
                let user = ev.observation(Ability::User);
                match (&check, &user.result) {
                    (FilterCheck::Refused(_), Ok(())) => {
                        return Cause::SeccompRefusesNamespaceTypes {
                            types: refused_namespace_types(ev),
                        };
                    }
                    // Refused for the reason `user` is: one root cause.
                    (FilterCheck::Reached | FilterCheck::Unknown, Err(failed)) => {
                        return super::cause(Ability::User, failed, ev);
                    }
                    _ => {}
                }
            }
            let facts = ev.facts();
            match check {
                FilterCheck::Refused(_) => Cause::SeccompRefusesNamespaces,
                FilterCheck::Killed(_) => Cause::SeccompKill,
                FilterCheck::Reached | FilterCheck::Unknown => {
                    if facts.unprivileged_userns_clone == Some(0) && facts.euid != 0 {
                        Cause::UnprivilegedUsernsCloneOff
                    } else if facts.chrooted == Some(true) {
                        Cause::Chrooted
                    } else if restricted_by_apparmor(facts) {
                        Cause::AppArmorRestrictsUserns {
                            label: facts.apparmor_label.clone(),
                        }
                    } else if check == FilterCheck::Unknown && facts.under_seccomp_filter() {
                        Cause::SeccompFilter
                    } else {
                        Cause::Unexplained
                    }
                }
            }
        }
        _ => Cause::Unexplained,
    }
}

/// Creating a namespace of another type inside the new user namespace,
/// where the probe holds every capability, failed.
fn namespace_type_refused(
    ability: Ability,
    step: &Step,
    flags: &str,
    errno: i32,
    ev: &dyn Evidence,
) -> Cause {
    match errno {
        libc::EINVAL => Cause::KernelLacks {
            feature: format!("{flags} namespaces"),
        },
        libc::ENOSPC => {
            let kind = namespace_kind(flags);
            Cause::NamespaceLimit {
                sysctl: format!("user.max_{kind}_namespaces"),
                value: ev.facts().namespace_limit(kind),
            }
        }
        e if is_refusal(e) => match ev.filter_check(ability, step) {
            // The user namespace was made in this very child: the filter
            // refuses this type only.
            FilterCheck::Refused(_) => Cause::SeccompRefusesNamespaceTypes {
                types: refused_namespace_types(ev),
            },
            FilterCheck::Killed(_) => Cause::SeccompKill,
            FilterCheck::Unknown if ev.facts().under_seccomp_filter() => Cause::SeccompFilter,
            FilterCheck::Reached | FilterCheck::Unknown => Cause::Unexplained,
        },
        _ => Cause::Unexplained,
    }
}

/// Writing `/proc/self/setgroups` or an id map of the new user namespace
/// failed. Opening setgroups for writing needs CAP_SYS_ADMIN in the new
/// namespace, which its creator always holds unless an LSM denies it; a
/// policy refusing writes to `/proc` fails the same way, so the control is
/// this process opening its own `/proc/self/comm` for writing.
fn id_map_refused(errno: i32, facts: &HostFacts) -> Cause {
    if facts.proc_read_only || errno == libc::EROFS {
        return Cause::ProcNotWritable { read_only: true };
    }
    if !matches!(errno, libc::EACCES | libc::EPERM) {
        return unchecked_refusal(errno, facts);
    }
    if facts.dumpable == Some(false) && facts.euid != 0 {
        return Cause::NotDumpable;
    }
    match facts.proc_writable {
        Some(false) => Cause::ProcNotWritable { read_only: false },
        _ if restricted_by_apparmor(facts) => Cause::AppArmorRestrictsUserns {
            label: facts.apparmor_label.clone(),
        },
        Some(true) => Cause::CapabilitiesDeniedInUserns {
            label: facts.apparmor_label.clone().filter(|l| l != "unconfined"),
            lsms: facts.lsms.clone(),
        },
        None => Cause::Unexplained,
    }
}

/// Opening a device node failed: missing, its mode, a device cgroup or
/// LSM, or no driver behind it.
fn device_refused(path: &str, errno: i32, ev: &dyn Evidence) -> Cause {
    let path = path.split(' ').next().unwrap_or(path).to_owned();
    match errno {
        libc::ENOENT => Cause::DeviceMissing { path },
        libc::ENXIO | libc::ENODEV => Cause::KernelLacks {
            feature: format!("the driver behind {path}"),
        },
        libc::EACCES | libc::EPERM => {
            let facts = ev.facts();
            match ev.file_status(&path) {
                // Root of the probe's namespace, mapped to this uid, has
                // no override on nodes of unmapped owners: the mode
                // decides, except for real root.
                Some(s) if facts.euid != 0 && !s.permits(facts, 6) => Cause::DeviceNotAccessible {
                    path,
                    mode: s.describe(),
                },
                Some(_) => Cause::DeviceRefused { path },
                None => Cause::DeviceMissing { path },
            }
        }
        _ => Cause::Unexplained,
    }
}

/// A call inside the new namespaces was refused: a filter, if its control
/// gets the same refusal; an LSM, if the control reached the kernel.
fn call_refused(ability: Ability, step: &Step, call: &str, errno: i32, ev: &dyn Evidence) -> Cause {
    if !is_refusal(errno) {
        return Cause::Unexplained;
    }
    match ev.filter_check(ability, step) {
        FilterCheck::Refused(_) => Cause::SeccompRefusesCall { call: call.into() },
        FilterCheck::Killed(_) => Cause::SeccompKill,
        FilterCheck::Reached => Cause::LsmRefusesCall { call: call.into() },
        FilterCheck::Unknown => unchecked_refusal(errno, ev.facts()),
    }
}

/// `prctl(PR_CAPBSET_DROP)` refused: the capability, or what refuses it
/// despite the capability.
fn capbset_drop_refused(ability: Ability, step: &Step, ev: &dyn Evidence) -> Cause {
    let facts = ev.facts();
    let capability = "CAP_SETPCAP".to_owned();
    let bounding_set_size = facts.bounding_set_size();
    match facts.has_effective_cap(CAP_SETPCAP) {
        Some(false) => Cause::CapabilityMissing {
            capability,
            bounding_set_size,
        },
        // The control passes the capability check, then fails on the
        // capability number: it says something only with CAP_SETPCAP.
        Some(true) => match ev.filter_check(ability, step) {
            FilterCheck::Refused(_) => Cause::SeccompRefusesCall {
                call: "prctl(PR_CAPBSET_DROP)".into(),
            },
            FilterCheck::Killed(_) => Cause::SeccompKill,
            FilterCheck::Reached => Cause::CapabilityDeniedByLsm {
                capability,
                bounding_set_size,
            },
            FilterCheck::Unknown => unchecked_refusal(libc::EPERM, facts),
        },
        None => unchecked_refusal(libc::EPERM, facts),
    }
}

/// A refusal no control could check: a seccomp filter is named only as
/// what may have refused it.
fn unchecked_refusal(errno: i32, facts: &HostFacts) -> Cause {
    if is_refusal(errno) && facts.under_seccomp_filter() {
        Cause::SeccompFilter
    } else {
        Cause::Unexplained
    }
}

/// Ubuntu's restriction applies to processes without CAP_SYS_ADMIN.
pub(super) fn restricted_by_apparmor(facts: &HostFacts) -> bool {
    facts.apparmor_restricts_userns() && facts.has_effective_cap(CAP_SYS_ADMIN) != Some(true)
}

/// The filesystem of a mount in a user namespace that this kernel release
/// is too old to allow there: overlayfs before 5.11, FUSE before 4.18.
fn userns_mount_too_new(what: &str, facts: &HostFacts) -> Option<String> {
    let release = facts.kernel_release.as_deref()?;
    let version = crate::KernelVersion::of_release(release)?.numbers();
    let (fs, needs) = if what.starts_with("overlay") {
        ("overlayfs", (5, 11))
    } else if what.starts_with("fuse") {
        ("FUSE", (4, 18))
    } else {
        return None;
    };
    (version < (needs.0, needs.1, 0)).then(|| {
        format!(
            "{fs} mounts in user namespaces (Linux {}.{}; this kernel is {release})",
            needs.0, needs.1
        )
    })
}

/// Each namespace type, the ability whose probe creates it first (inside
/// its own user namespace), its flag and its name.
const NAMESPACE_TYPES: [(Ability, &str, &str); 7] = [
    (Ability::CapSysAdmin, "CLONE_NEWNS", "mount"),
    (Ability::Net, "CLONE_NEWNET", "network"),
    (Ability::Pid, "CLONE_NEWPID", "PID"),
    (Ability::Ipc, "CLONE_NEWIPC", "IPC"),
    (Ability::Uts, "CLONE_NEWUTS", "UTS"),
    (Ability::Cgroup, "CLONE_NEWCGROUP", "cgroup"),
    (Ability::Time, "CLONE_NEWTIME", "time"),
];

/// The namespace types a filter refuses by flag, each named with its
/// flag (`network namespaces (CLONE_NEWNET) and IPC namespaces
/// (CLONE_NEWIPC)`): every type whose probe was refused creating it, with
/// a control call that the filter refuses too. One list for the host,
/// whichever ability asks, so that one filter is one root cause.
fn refused_namespace_types(ev: &dyn Evidence) -> String {
    let names: Vec<String> = NAMESPACE_TYPES
        .iter()
        .filter(|(ability, flag, _)| {
            let observed = ev.observation(*ability);
            let Err(failed) = &observed.result else {
                return false;
            };
            let creates_it = matches!(&failed.step, Step::Unshare { flags } | Step::Clone { flags }
                if flags.split('|').any(|f| f == *flag));
            creates_it
                && failed.failure.errno_number().is_some_and(is_refusal)
                && matches!(ev.filter_check(*ability, &failed.step), FilterCheck::Refused(_))
        })
        .map(|(_, flag, name)| format!("{name} namespaces ({flag})"))
        .collect();
    match names.as_slice() {
        [] => "some namespace types".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `net` for `CLONE_NEWNET`, ...: the namespace kind of the first flag.
fn namespace_kind(flags: &str) -> &'static str {
    [
        ("CLONE_NEWNS", "mnt"),
        ("CLONE_NEWNET", "net"),
        ("CLONE_NEWPID", "pid"),
        ("CLONE_NEWIPC", "ipc"),
        ("CLONE_NEWUTS", "uts"),
        ("CLONE_NEWCGROUP", "cgroup"),
        ("CLONE_NEWTIME", "time"),
    ]
    .iter()
    .find(|(flag, _)| flags.contains(flag))
    .map_or("user", |(_, k)| k)
}
