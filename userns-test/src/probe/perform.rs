//! Each ability's operation, performed on Linux: the system-call probes
//! as programs of [`Op`]s run in a throwaway child, and the checks that
//! need no child (root, privilege, no_new_privs).

use crate::Ability;
use crate::facts::HostFacts;
use crate::failure::Failure;
use crate::step::{Step, clone_flag_names};

use super::child::{ALL_DONE, ChildEnd, ChildRun, SpawnError, run_child};
use super::program::Op;
use super::{Failed, Outcome, ProbeOptions, cgroup, external, failed};

/// What performing `ability`'s operation observed, and a note.
pub(super) fn perform(ability: Ability, options: &ProbeOptions) -> (Outcome, Option<String>) {
    match ability {
        Ability::Root => (root_outcome(HostFacts::get()), None),
        Ability::Unprivileged => (unprivileged_outcome(HostFacts::get()), None),
        Ability::NewPrivs => (new_privs_outcome(), None),
        Ability::Bwrap | Ability::BwrapNet => external::bwrap(ability, options),
        Ability::Subids => (external::subids(options, HostFacts::get()), None),
        Ability::Program(program) => external::program(program, options),
        Ability::CgroupDelegation => cgroup::delegation(options),
        Ability::LandlockAbi(_) | Ability::LandlockAbiExactly(_) => landlock_abi(ability, options),
        Ability::LandlockAbiBelow(limit) => landlock_below(limit, options),
        Ability::Cap(cap) => (cap_outcome(cap, HostFacts::get()), None),
        Ability::Kernel(wanted) => kernel_outcome(wanted),
        _ => syscall_probe(ability, options),
    }
}

/// The ops of a system-call probe and the extra clone flags its child
/// needs.
pub(super) fn program(ability: Ability) -> (libc::c_int, Vec<Op>) {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let mut ops = Vec::with_capacity(8);
    let mut flags = 0;
    if ability == Ability::Pid {
        // The child must be PID 1 of the new namespace, so the namespaces
        // come with the clone itself; the map writes follow inside.
        flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID;
        ops.extend(Op::become_root(uid, gid));
    } else if ability.needs_user_namespace() {
        ops.push(Op::Unshare(libc::CLONE_NEWUSER));
        ops.extend(Op::become_root(uid, gid));
    }
    match ability {
        Ability::User => {}
        Ability::CapSysAdmin => ops.push(Op::Unshare(libc::CLONE_NEWNS)),
        Ability::Mount => {
            let target = if std::path::Path::new("/tmp").is_dir() {
                "/tmp"
            } else {
                "/"
            };
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(Op::private_root());
            ops.push(Op::mount(
                Some("tmpfs"),
                target,
                Some("tmpfs"),
                0,
                Some("size=64k"),
                format!("tmpfs on {target}"),
            ));
        }
        Ability::Net => {
            ops.push(Op::Unshare(libc::CLONE_NEWNET));
            ops.push(Op::loopback_address());
            ops.push(Op::loopback_up());
        }
        Ability::Pid => {
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(Op::private_root());
            ops.push(Op::fresh_proc());
        }
        Ability::Ipc => ops.push(Op::Unshare(libc::CLONE_NEWIPC)),
        Ability::Uts => {
            ops.push(Op::Unshare(libc::CLONE_NEWUTS));
            ops.push(Op::SetHostname(b"userns-test"));
        }
        Ability::Cgroup => ops.push(Op::Unshare(libc::CLONE_NEWCGROUP)),
        Ability::Time => ops.push(Op::Unshare(libc::CLONE_NEWTIME)),
        Ability::Nested => {
            // Root of the outer namespace maps itself again.
            ops.push(Op::Unshare(libc::CLONE_NEWUSER));
            ops.extend(Op::become_root(0, 0));
        }
        Ability::CapSetpcap => ops.push(Op::CapBsetDrop(capability_to_drop(HostFacts::get()))),
        Ability::Seccomp => {
            ops.push(Op::NoNewPrivs);
            ops.push(Op::seccomp_allow_all());
        }
        Ability::Landlock => {
            ops.push(Op::LandlockAbi);
            ops.push(Op::NoNewPrivs);
            ops.push(Op::landlock_restrict());
        }
        Ability::PivotRoot => {
            let target = scratch_target();
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(Op::private_root());
            ops.push(tmpfs_on(target));
            ops.push(Op::mkdir(&join(target, "old")));
            ops.push(Op::pivot_root(target));
        }
        Ability::Overlay => {
            let target = scratch_target();
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(Op::private_root());
            ops.push(tmpfs_on(target));
            for dir in ["l", "u", "w", "m"] {
                ops.push(Op::mkdir(&join(target, dir)));
            }
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                join(target, "l"),
                join(target, "u"),
                join(target, "w")
            );
            ops.push(Op::mount(
                Some("overlay"),
                &join(target, "m"),
                Some("overlay"),
                0,
                Some(&data),
                format!("overlay on {}", join(target, "m")),
            ));
        }
        Ability::Fuse => {
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(Op::private_root());
            // A descriptor number the child can replace with /dev/fuse,
            // named in the mount options written here; without one (no
            // descriptor left), the open in the child says so.
            match std::fs::File::open("/dev/null") {
                Ok(reserved) => ops.push(Op::fuse(reserved.into(), scratch_target())),
                Err(e) => ops.push(Op::NoDescriptor {
                    what: "/dev/null (a descriptor number for /dev/fuse)".into(),
                    errno: e.raw_os_error().unwrap_or(libc::EMFILE),
                }),
            }
        }
        Ability::Tun => {
            ops.push(Op::Unshare(libc::CLONE_NEWNET));
            ops.push(Op::tun());
        }
        Ability::Kvm => ops.push(Op::kvm()),
        Ability::LandlockAbi(_) | Ability::LandlockAbiExactly(_) => {
            ops.push(Op::LandlockAbi);
            ops.push(Op::NoNewPrivs);
            ops.push(Op::landlock_restrict());
        }
        // Only the question: a fallback path runs where the answer is
        // lower, or where there is no Landlock to restrict with.
        Ability::LandlockAbiBelow(_) => ops.push(Op::LandlockAbi),
        Ability::Bwrap
        | Ability::BwrapNet
        | Ability::Subids
        | Ability::Root
        | Ability::Unprivileged
        | Ability::NewPrivs
        | Ability::CgroupDelegation
        | Ability::Cap(_)
        | Ability::Kernel(_)
        | Ability::Program(_) => {}
    }
    (flags, ops)
}

/// Where the mount probes put their scratch tmpfs: `/tmp` in the new
/// mount namespace, or `/` where there is no `/tmp`.
fn scratch_target() -> &'static str {
    if std::path::Path::new("/tmp").is_dir() {
        "/tmp"
    } else {
        "/"
    }
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

fn tmpfs_on(target: &str) -> Op {
    Op::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        0,
        Some("size=64k"),
        format!("tmpfs on {target}"),
    )
}

/// Not root and without CAP_SYS_ADMIN, as the host sees this process:
/// in the initial user namespace, its own uids and capabilities; inside
/// another, the uid its map sends this process's uid to. A user namespace
/// that maps uid 0 to uid 0 (`unshare -Ur` run by root) is root's: the
/// process owns root's files and `getuid()` is 0, so programs that refuse
/// root refuse it too.
fn unprivileged_outcome(facts: &HostFacts) -> Outcome {
    let unreadable = |path: &str, missing: &str| {
        failed(
            Step::CheckPrivilege,
            Failure::Unreadable {
                path: path.into(),
                errno: facts.unreadable(path).and_then(|u| u.errno),
                error: facts
                    .unreadable(path)
                    .map_or(missing.into(), |u| u.error.clone()),
            },
        )
    };
    let found = match facts.in_user_namespace {
        None => return unreadable("/proc/self/uid_map", "it is missing (no procfs?)"),
        Some(true) => {
            let Some(outside) = facts.outside_uid(facts.euid) else {
                return unreadable("/proc/self/uid_map", "it does not map this process's euid");
            };
            if outside != 0 && facts.outside_uid(facts.uid) != Some(0) {
                return Ok(());
            }
            format!(
                "uid {} inside a user namespace whose map ({}) sends it to uid 0 outside: the \
                 host sees root",
                facts.euid,
                facts.uid_map.as_deref().unwrap_or("unknown")
            )
        }
        Some(false) if facts.uid == 0 || facts.euid == 0 => format!(
            "uid {} (euid {}) in the initial user namespace",
            facts.uid, facts.euid
        ),
        Some(false) => {
            const CAP_SYS_ADMIN: u32 = 21;
            match facts.has_effective_cap(CAP_SYS_ADMIN) {
                Some(false) => return Ok(()),
                Some(true) => "CAP_SYS_ADMIN effective in the initial user namespace".into(),
                None => return unreadable("/proc/self/status", "CapEff is missing"),
            }
        }
    };
    failed(Step::CheckPrivilege, Failure::Mismatch { found })
}

/// `cap` in the effective set of the calling thread (capabilities are
/// per thread; a test checks its own), as `/proc/thread-self/status`
/// shows it. Where the kernel does not know the capability, or the set
/// cannot be read, it is not available.
fn cap_outcome(cap: u8, facts: &HostFacts) -> Outcome {
    let step = Step::CheckCapability {
        capability: crate::capability::constant(cap),
    };
    if let Some(last) = facts.cap_last_cap
        && u32::from(cap) > last
    {
        return failed(
            step,
            Failure::Mismatch {
                found: format!("the kernel knows capabilities 0 to {last} (cap_last_cap)"),
            },
        );
    }
    let path = "/proc/thread-self/status";
    let status = match std::fs::read_to_string(path) {
        Ok(status) => status,
        Err(e) => {
            return failed(
                step,
                Failure::Unreadable {
                    path: path.into(),
                    errno: e.raw_os_error(),
                    error: e.to_string(),
                },
            );
        }
    };
    let Some(effective) =
        crate::facts::status_field(&status, "CapEff:").and_then(crate::facts::parse_hex)
    else {
        return failed(
            step,
            Failure::Unreadable {
                path: path.into(),
                errno: None,
                error: "CapEff is missing".into(),
            },
        );
    };
    if effective & (1u64 << cap) != 0 {
        // Held, but where it counts? Some capabilities act only in the
        // initial user namespace; an unknown map is not "the initial one".
        if crate::capability::INITIAL_NAMESPACE_ONLY.contains(&cap)
            && facts.in_user_namespace != Some(false)
        {
            return failed(
                step,
                Failure::Mismatch {
                    found: format!(
                        "CapEff has it, in a user namespace (uid map {})",
                        facts.uid_map.as_deref().unwrap_or("unknown")
                    ),
                },
            );
        }
        return Ok(());
    }
    failed(
        step,
        Failure::Mismatch {
            found: format!("CapEff is {effective:016x}"),
        },
    )
}

/// The running kernel's release (`uname`, which no filter of `/proc` can
/// hide) against `wanted`, by its leading numbers.
fn kernel_outcome(wanted: crate::KernelVersion) -> (Outcome, Option<String>) {
    let step = Step::CheckKernel {
        wanted: wanted.to_string(),
    };
    let release = match nix::sys::utsname::uname() {
        Ok(u) => u.release().to_string_lossy().into_owned(),
        Err(e) => return (failed(step, Failure::errno(e as i32)), None),
    };
    let note = Some(format!("kernel {release}"));
    match crate::KernelVersion::of_release(&release) {
        Some(v) if v.numbers() >= wanted.numbers() => (Ok(()), note),
        Some(_) => (
            failed(
                step,
                Failure::Mismatch {
                    found: format!("kernel {release}"),
                },
            ),
            note,
        ),
        None => (
            failed(
                step,
                Failure::Mismatch {
                    found: format!("kernel release {release:?}, whose version cannot be read"),
                },
            ),
            note,
        ),
    }
}

/// NoNewPrivs of this thread, which a probe child and an `execve` inherit.
fn new_privs_outcome() -> Outcome {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer and changes nothing.
    match unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } {
        0 => Ok(()),
        1 => failed(
            Step::GetNoNewPrivs,
            Failure::Mismatch {
                found: "NoNewPrivs is 1".into(),
            },
        ),
        _ => failed(
            Step::GetNoNewPrivs,
            Failure::errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
        ),
    }
}

/// The Landlock probe, then its ABI against what `ability` asks (at
/// least, or exactly, a version).
fn landlock_abi(ability: Ability, options: &ProbeOptions) -> (Outcome, Option<String>) {
    let (outcome, note) = syscall_probe(ability, options);
    let found = abi_of(note.as_deref());
    let (ok, wanted) = match (ability, found) {
        (Ability::LandlockAbi(wanted), Some(abi)) => (abi >= wanted, format!("below {wanted}")),
        (Ability::LandlockAbiExactly(wanted), Some(abi)) => {
            (abi == wanted, format!("not {wanted}"))
        }
        (Ability::LandlockAbi(wanted), None) => (false, format!("below {wanted}")),
        (_, _) => (false, String::new()),
    };
    match outcome {
        Err(f) => (Err(f), note),
        Ok(()) if ok => (Ok(()), note),
        Ok(()) => (
            failed(
                Step::LandlockAbiVersion,
                Failure::Mismatch {
                    found: format!(
                        "Landlock ABI {}, {wanted}",
                        found.map_or("unknown".into(), |a| a.to_string())
                    ),
                },
            ),
            note,
        ),
    }
}

/// The ABI number in a probe's note (`Landlock ABI 6`).
fn abi_of(note: Option<&str>) -> Option<u8> {
    note?.strip_prefix("Landlock ABI ")?.parse().ok()
}

/// `landlock(abi < limit)`: the version query answers below `limit`, or
/// says the kernel has no Landlock (not built in: ENOSYS; not enabled at
/// boot: EOPNOTSUPP). Any other failure leaves what the kernel has
/// unknown, so the answer is no.
fn landlock_below(limit: u8, options: &ProbeOptions) -> (Outcome, Option<String>) {
    let (outcome, note) = syscall_probe(Ability::LandlockAbiBelow(limit), options);
    match outcome {
        Err(Failed {
            step: Step::LandlockAbiVersion,
            failure: Failure::Errno { number, .. },
        }) if number == libc::ENOSYS || number == libc::EOPNOTSUPP => {
            let why = if number == libc::ENOSYS {
                "no Landlock: not built into this kernel (ENOSYS)"
            } else {
                "no Landlock: not enabled at boot (EOPNOTSUPP)"
            };
            (Ok(()), Some(why.into()))
        }
        Err(f) => (Err(f), note),
        Ok(()) => match abi_of(note.as_deref()) {
            Some(abi) if abi < limit => (Ok(()), note),
            found => (
                failed(
                    Step::LandlockAbiVersion,
                    Failure::Mismatch {
                        found: format!(
                            "Landlock ABI {}, not below {limit}",
                            found.map_or("unknown".into(), |a| a.to_string())
                        ),
                    },
                ),
                note,
            ),
        },
    }
}

/// A capability already absent from the bounding set (dropping it is a
/// no-op that still needs CAP_SETPCAP), else the highest one. Only the
/// probe child's bounding set changes either way.
fn capability_to_drop(facts: &HostFacts) -> u32 {
    let last = facts.cap_last_cap.unwrap_or(40).min(63);
    let bounding = facts.cap_bounding.unwrap_or(u64::MAX);
    (0..=last)
        .rev()
        .find(|cap| bounding & (1 << cap) == 0)
        .unwrap_or(last)
}

fn syscall_probe(ability: Ability, options: &ProbeOptions) -> (Outcome, Option<String>) {
    let (flags, ops) = program(ability);
    match run_child(&ops, flags, options.timeout, |_, _| ()) {
        Ok((run, ())) => {
            let landlock = matches!(
                ability,
                Ability::Landlock
                    | Ability::LandlockAbi(_)
                    | Ability::LandlockAbiExactly(_)
                    | Ability::LandlockAbiBelow(_)
            );
            let note = (landlock && run.value > 0).then(|| format!("Landlock ABI {}", run.value));
            (child_outcome(&ops, &run), note)
        }
        Err(e) => (spawn_failure(flags, e), None),
    }
}

/// What a finished child observed.
pub(crate) fn child_outcome(ops: &[Op], run: &ChildRun) -> Outcome {
    let failure = match run.end {
        ChildEnd::Exited(0) if run.op == ALL_DONE => return Ok(()),
        ChildEnd::Exited(_) if run.errno != 0 => Failure::errno(run.errno),
        ChildEnd::Exited(code) => Failure::ExitStatus { code, stderr: None },
        ChildEnd::Killed(sig) => Failure::signal(sig),
        ChildEnd::TimedOut(after) => Failure::TimedOut {
            after_ms: after.as_millis() as u64,
        },
    };
    let step = ops
        .get(run.op)
        .map(|op| op.step(run.phase))
        .unwrap_or(Step::Handshake);
    failed(step, failure)
}

fn spawn_failure(flags: libc::c_int, e: SpawnError) -> Outcome {
    let (step, errno) = match e {
        // What the clone asked for: the child's own flags and a pidfd (and
        // CLONE_VM where a core dump cannot take the test process down).
        SpawnError::Clone(errno) => (
            Step::Clone {
                flags: clone_flag_names(flags | libc::CLONE_PIDFD),
            },
            errno,
        ),
        SpawnError::Memory(errno) => (
            Step::Clone {
                flags: "(mapping the child's stack)".into(),
            },
            errno,
        ),
    };
    failed(step, Failure::errno(errno as i32))
}

/// Root means real uid 0 in the initial user namespace, with every
/// capability the kernel knows effective: uid 0 with a container's
/// reduced set is not root for a test that needs root. An unknown uid map
/// is not "not in one": uid 0 inside a user namespace would pass.
fn root_outcome(facts: &HostFacts) -> Outcome {
    let found = if facts.uid != 0 {
        format!("real uid {}", facts.uid)
    } else {
        match (facts.in_user_namespace, &facts.uid_map) {
            (Some(false), _) => return every_capability(facts),
            (Some(true), map) => format!("uid_map {}", map.as_deref().unwrap_or("unknown")),
            (None, _) => {
                let path = "/proc/self/uid_map";
                let (errno, error) = facts
                    .unreadable(path)
                    .map_or((None, "it is missing (no procfs?)".to_owned()), |u| {
                        (u.errno, u.error.clone())
                    });
                return failed(
                    Step::CheckUid,
                    Failure::Unreadable {
                        path: path.into(),
                        errno,
                        error,
                    },
                );
            }
        }
    };
    failed(Step::CheckUid, Failure::Mismatch { found })
}

/// Every capability from 0 to `cap_last_cap` in the effective set.
fn every_capability(facts: &HostFacts) -> Outcome {
    let (Some(last), Some(effective)) = (facts.cap_last_cap, facts.cap_effective) else {
        let path = if facts.cap_last_cap.is_none() {
            "/proc/sys/kernel/cap_last_cap"
        } else {
            "/proc/self/status"
        };
        return failed(
            Step::CheckCapabilities,
            Failure::Unreadable {
                path: path.into(),
                errno: facts.unreadable(path).and_then(|u| u.errno),
                error: facts
                    .unreadable(path)
                    .map_or("it could not be read".into(), |u| u.error.clone()),
            },
        );
    };
    let all = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    let missing = all & !effective;
    if missing == 0 {
        return Ok(());
    }
    let names = crate::capability::constants_in(missing);
    failed(
        Step::CheckCapabilities,
        Failure::Mismatch {
            found: format!(
                "uid 0 without {} ({} of the kernel's {} capabilities)",
                names.join(", "),
                names.len(),
                last + 1
            ),
        },
    )
}
