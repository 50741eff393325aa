//! Causes of a program that could not be found, started, or that failed:
//! bubblewrap and newuidmap/newgidmap, and the identity checks of `root`
//! and `subids`.
//!
//! A program's message is classified into the causes the system-call
//! probes find, and cross-checked with the probe of the same step: when
//! bubblewrap cannot write its uid map and the `user` probe could not
//! either, both have one cause, found once; when the `user` probe could,
//! the difference is about bubblewrap (its AppArmor profile, its setuid
//! bit), and the message is kept in its own words.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::Evidence;
use super::system_calls::restricted_by_apparmor;
use crate::Ability;
use crate::cause::Cause;
use crate::failure::Failure;
use crate::step::Step;

/// The cause, when `step` is about a program or an identity check.
pub(super) fn cause(
    ability: Ability,
    step: &Step,
    failure: &Failure,
    ev: &dyn Evidence,
) -> Option<Cause> {
    Some(match (step, failure) {
        (Step::FindProgram { program }, Failure::Missing { .. }) => Cause::NotInstalled {
            program: program.clone(),
        },
        (Step::FindProgram { program: path }, Failure::Errno { number, .. })
        | (Step::Exec { program: path }, Failure::Errno { number, .. })
            if matches!(*number, libc::ENOENT | libc::ENOTDIR) =>
        {
            Cause::NotInstalled {
                program: format!("{} at {path}", program_name(ability, path)),
            }
        }
        (Step::Exec { program: path }, Failure::Errno { number, .. })
            if matches!(*number, libc::EACCES | libc::EPERM) =>
        {
            exec_refused(path, ev)
        }
        (
            Step::Run { program, .. },
            Failure::ExitStatus {
                stderr: Some(line), ..
            },
        ) => message_cause(ability, program, line, ev),
        (Step::Run { program, .. }, Failure::ExitStatus { stderr: None, .. }) => {
            Cause::ProgramFailed {
                program: program_name(ability, program),
                message: "(nothing on stderr)".into(),
            }
        }
        (Step::ReadSubids { path, user }, Failure::Missing { .. }) => Cause::NoSubordinateIds {
            path: path.clone(),
            user: user.clone(),
        },
        (Step::CheckPrivilege, Failure::Mismatch { found }) => Cause::Privileged {
            found: found.clone(),
        },
        (Step::GetNoNewPrivs, Failure::Mismatch { .. }) => Cause::NoNewPrivs,
        (Step::LandlockAbiVersion, Failure::Mismatch { found }) => {
            let abi = found
                .strip_prefix("Landlock ABI ")
                .and_then(|r| r.split(',').next())
                .and_then(|n| n.parse::<u8>().ok());
            match (ability, abi) {
                (Ability::LandlockAbi(wanted), _) => Cause::LandlockAbiTooOld { wanted },
                (Ability::LandlockAbiExactly(wanted), Some(found)) if found < wanted => {
                    Cause::LandlockAbiTooOld { wanted }
                }
                (Ability::LandlockAbiExactly(wanted), Some(found)) => Cause::LandlockAbiTooNew {
                    found,
                    below: wanted.saturating_add(1),
                },
                (Ability::LandlockAbiBelow(below), Some(found)) => {
                    Cause::LandlockAbiTooNew { found, below }
                }
                _ => Cause::Unexplained,
            }
        }
        (Step::CheckCapability { capability }, Failure::Mismatch { found })
            if found.starts_with("CapEff has it, in a user namespace") =>
        {
            Cause::CapabilityOutsideInitialNamespace {
                capability: capability.clone(),
                uid_map: ev.facts().uid_map.clone().unwrap_or_else(|| "unknown".into()),
            }
        }
        (Step::CheckCapability { capability }, Failure::Mismatch { .. }) => {
            capability_cause(capability, ev.facts())
        }
        (Step::CheckCapabilities, Failure::Mismatch { .. }) => {
            let facts = ev.facts();
            let all = match facts.cap_last_cap {
                Some(last) if last < 63 => (1u64 << (last + 1)) - 1,
                _ => u64::MAX,
            };
            Cause::RootWithoutCapabilities {
                missing: crate::capability::constants_in(
                    all & !facts.cap_effective.unwrap_or(0),
                ),
            }
        }
        (Step::CheckKernel { wanted }, Failure::Mismatch { found }) => Cause::KernelTooOld {
            release: found.trim_start_matches("kernel ").to_owned(),
            wanted: wanted.clone(),
        },
        (Step::FindCgroup, Failure::Missing { .. }) => Cause::CgroupV2Missing {
            v1: ev.facts().cgroup_v1,
        },
        (Step::ReadFile { path }, Failure::Missing { .. })
            if path.ends_with("cgroup.subtree_control") =>
        {
            Cause::CgroupControllersMissing {
                path: path.clone(),
                hybrid: ev.facts().cgroup_v1,
            }
        }
        (Step::CheckUid, Failure::Mismatch { .. }) => {
            let facts = ev.facts();
            if facts.uid != 0 {
                Cause::NotRoot { uid: facts.uid }
            } else {
                Cause::NotInitialUserNamespace {
                    uid_map: facts.uid_map.clone().unwrap_or_default(),
                }
            }
        }
        _ => return None,
    })
}

/// Where a capability the test needs went, from this process's sets: the
/// kernel does not know it, the bounding set lacks it, the uid is not
/// given it, or it is permitted and not raised.
fn capability_cause(capability: &str, facts: &crate::facts::HostFacts) -> Cause {
    let bit = |set: Option<u64>| {
        let cap = crate::capability::from_name(capability)?;
        Some(set? & (1u64 << cap) != 0)
    };
    let cap = crate::capability::from_name(capability).map(u32::from);
    if let (Some(cap), Some(last)) = (cap, facts.cap_last_cap)
        && cap > last
    {
        return Cause::CapabilityUnknownToKernel {
            capability: capability.to_owned(),
            last,
        };
    }
    match (bit(facts.cap_bounding), bit(facts.cap_permitted)) {
        (Some(false), _) => Cause::CapabilityNotInBoundingSet {
            capability: capability.to_owned(),
            bounding_set_size: facts.bounding_set_size(),
        },
        (_, Some(false)) => Cause::CapabilityNotPermitted {
            capability: capability.to_owned(),
            uid: facts.euid,
            no_new_privs: facts.no_new_privs == Some(true),
        },
        (_, Some(true)) => Cause::CapabilityNotEffective {
            capability: capability.to_owned(),
        },
        _ => Cause::Unexplained,
    }
}

/// Why `execve` of `path` was refused: its mode, a `noexec` mount, or, where
/// both allow it, an LSM.
fn exec_refused(path: &str, ev: &dyn Evidence) -> Cause {
    let Some(status) = ev.file_status(path) else {
        return Cause::NotExecutable {
            path: path.to_owned(),
        };
    };
    let facts = ev.facts();
    // Root may execute a file with any execute bit.
    let mode_allows = if facts.euid == 0 {
        status.mode & 0o111 != 0
    } else {
        status.permits(facts, 1)
    };
    if !mode_allows {
        Cause::NotExecutable {
            path: path.to_owned(),
        }
    } else if status.noexec {
        Cause::NoexecMount {
            path: path.to_owned(),
            mount: status.mount,
        }
    } else {
        Cause::ExecRefusedByLsm {
            path: path.to_owned(),
        }
    }
}

/// `bwrap` for the bwrap abilities (whatever the path), else the file name.
fn program_name(ability: Ability, path: &str) -> String {
    if matches!(ability, Ability::Bwrap | Ability::BwrapNet) {
        return "bwrap".into();
    }
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// A program's first line of stderr, classified.
fn message_cause(ability: Ability, program: &str, line: &str, ev: &dyn Evidence) -> Cause {
    let name = program_name(ability, program);
    // "bwrap: setting up uid map: Permission denied" -> the message.
    let message = line
        .strip_prefix(name.as_str())
        .and_then(|l| l.strip_prefix(':'))
        .map(str::trim_start)
        .unwrap_or(line);
    let found = if ability == Ability::Subids {
        id_mapper_cause(program, message, ev)
    } else {
        bwrap_cause(ability, message, ev)
    };
    found.unwrap_or_else(|| Cause::ProgramFailed {
        program: name,
        message: message.to_owned(),
    })
}

/// bubblewrap's messages (0.4 to 0.11), by prefix: after a netlink failure
/// the errno text it prints can be stale.
fn bwrap_cause(ability: Ability, message: &str, ev: &dyn Evidence) -> Option<Cause> {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| message.starts_with(p));
    // The system-call probes that create what `bwrap --unshare-user
    // [--unshare-net]` creates: a user and a mount namespace (bubblewrap
    // always makes one), and a network namespace.
    let namespaces: &[Ability] = if ability == Ability::BwrapNet {
        &[Ability::User, Ability::CapSysAdmin, Ability::Net]
    } else {
        &[Ability::User, Ability::CapSysAdmin]
    };
    if starts(&["No permissions to creat", "Creating new namespace failed"]) {
        if let Some(cause) = same_step(ev, namespaces, |s| s.creates_namespace(false)) {
            return Some(cause);
        }
        // bwrap makes its namespaces in one clone, whose CAP_SYS_ADMIN
        // check in the new user namespace the denial refuses.
        if message.starts_with("No permissions")
            && let Some(cause) = capability_denial(ev)
        {
            return Some(cause);
        }
        // This process may create the same namespaces: the limit, or the
        // policy, is about bubblewrap.
        let facts = ev.facts();
        if message.contains("ENOSPC") || message.contains("No space left") {
            if facts.max_user_namespaces == Some(0) {
                return Some(Cause::UserNamespacesDisabled);
            }
            let kinds: &[&str] = if ability == Ability::BwrapNet {
                &["mnt", "net"]
            } else {
                &["mnt"]
            };
            if let Some(kind) = kinds.iter().find(|k| facts.namespace_limit(k) == Some(0)) {
                return Some(Cause::NamespaceLimit {
                    sysctl: format!("user.max_{kind}_namespaces"),
                    value: Some(0),
                });
            }
            return None;
        }
        if message.starts_with("No permissions") && restricted_by_apparmor(facts) {
            return Some(apparmor(ev));
        }
        return None;
    }
    if starts(&[
        "setting up uid map",
        "setting up gid map",
        "error writing to setgroups",
    ]) {
        return same_step(ev, &[Ability::User], is_id_map_write)
            .or_else(|| restricted_by_apparmor(ev.facts()).then(|| apparmor(ev)));
    }
    if message.starts_with("loopback:") {
        return same_step(ev, &[Ability::Net], |s| {
            matches!(
                s,
                Step::Socket { .. } | Step::LoopbackAddAddress | Step::LoopbackUp
            )
        })
        .or_else(|| capability_denial(ev));
    }
    if starts(&[
        "Failed to make / slave",
        "Failed to mount tmpfs",
        "Can't bind mount",
        "Can't remount readonly",
        "Creating newroot failed",
        "Creating oldroot failed",
        "Failed to make old root rprivate",
        "pivot_root",
    ]) {
        return same_step(ev, &[Ability::Mount], |s| matches!(s, Step::Mount { .. }))
            .or_else(|| capability_denial(ev));
    }
    if message.starts_with("Can't mount proc") {
        return same_step(ev, &[Ability::Pid], |s| matches!(s, Step::Mount { .. }))
            .or_else(|| capability_denial(ev));
    }
    // Its capabilities in the new namespace: denied there, as the `user`
    // probe's setgroups shows, or by Ubuntu's restriction.
    if starts(&[
        "capset failed",
        "Unexpected capabilities",
        "prctl(PR_SET_KEEPCAPS) failed",
        "Dropping capability",
    ]) {
        return same_step(ev, &[Ability::User], is_id_map_write)
            .or_else(|| restricted_by_apparmor(ev.facts()).then(|| apparmor(ev)));
    }
    None
}

/// The `user` probe's cause, when it is a denial of capabilities inside a
/// new user namespace: then every refusal bubblewrap meets inside its
/// namespaces (its map writes, its loopback, its mounts, its clone of
/// several namespaces at once) is that denial, whichever step it reached
/// first.
fn capability_denial(ev: &dyn Evidence) -> Option<Cause> {
    let user = ev.observation(Ability::User);
    let failed = user.failed()?;
    match super::cause(Ability::User, failed, ev) {
        c @ (Cause::CapabilitiesDeniedInUserns { .. } | Cause::AppArmorRestrictsUserns { .. }) => {
            Some(c)
        }
        _ => None,
    }
}

/// newuidmap/newgidmap: "write to uid_map failed: Operation not permitted"
/// comes from a program without its privilege, or one whose privilege
/// NoNewPrivs disables.
fn id_mapper_cause(program: &str, message: &str, ev: &dyn Evidence) -> Option<Cause> {
    let refused = (message.contains("write to uid_map failed")
        || message.contains("write to gid_map failed"))
        && message.contains("Operation not permitted");
    if !refused {
        return None;
    }
    if ev.program_privileged(program) == Some(false) {
        return Some(Cause::ProgramUnprivileged {
            path: program.to_owned(),
        });
    }
    (ev.facts().no_new_privs == Some(true)).then_some(Cause::NoNewPrivs)
}

fn is_id_map_write(step: &Step) -> bool {
    matches!(step, Step::OpenForWriting { path } | Step::Write { path, .. } if path.starts_with("/proc/self/"))
}

fn apparmor(ev: &dyn Evidence) -> Cause {
    Cause::AppArmorRestrictsUserns {
        label: ev.facts().apparmor_label.clone(),
    }
}

/// The cause found by the first of `abilities` whose probe failed at a step
/// `matches` accepts: the system call the program's message is about,
/// refused to this process too, for one cause.
fn same_step(
    ev: &dyn Evidence,
    abilities: &[Ability],
    matches: impl Fn(&Step) -> bool,
) -> Option<Cause> {
    abilities.iter().find_map(|&a| {
        let observation = ev.observation(a);
        let failed = observation.failed()?;
        matches(&failed.step).then(|| super::cause(a, failed, ev))
    })
}

/// Setuid root, or carrying file capabilities.
pub(super) fn privileged(path: &str) -> Option<bool> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o4000 != 0 && meta.uid() == 0 {
        return Some(true);
    }
    let path = std::ffi::CString::new(path).ok()?;
    let name = c"security.capability";
    // SAFETY: a size query (no buffer) on NUL-terminated strings.
    let size = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    if size > 0 {
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENODATA) if size < 0 => Some(false),
        _ if size == 0 => Some(false),
        _ => None,
    }
}
