//! Diagnosis: from a failed step and the host facts, the cause and the
//! narrowest remedy.
//!
//! The facts never decide a verdict; they explain one the probe already
//! reached. A sysctl that restricts user namespaces is reported as the
//! likely cause only after the operation itself failed.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::Ability;
use crate::facts::{Facts, HostFacts};
use crate::probe::Step;
use crate::verdict::Failure;

const CAP_SETPCAP: u32 = 8;
const CAP_SYS_ADMIN: u32 = 21;

/// What about this host explains a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// Ubuntu's `kernel.apparmor_restrict_unprivileged_userns=1`.
    AppArmorRestrictsUserns {
        /// The process's AppArmor label, when known.
        label: Option<String>,
    },
    /// Debian's `kernel.unprivileged_userns_clone=0`.
    UnprivilegedUsernsCloneOff,
    /// `user.max_user_namespaces=0`.
    UserNamespacesDisabled,
    /// The user-namespace limit of this or an enclosing namespace is
    /// reached, or nesting is deeper than 32.
    UserNamespaceLimit {
        /// `user.max_user_namespaces` as this process sees it.
        max: Option<u64>,
        /// Whether this process already runs in a user namespace.
        nested: bool,
    },
    /// A namespace-type limit other than the user one (`user.max_*`).
    NamespaceLimit {
        /// The sysctl, e.g. `user.max_net_namespaces`.
        sysctl: String,
    },
    /// A seccomp filter refused the system call (`Seccomp: 2`).
    SeccompFilter,
    /// A seccomp filter killed the probe child (SIGSYS).
    SeccompKill,
    /// The kernel refuses user namespaces to chrooted processes.
    Chrooted,
    /// A capability is not in the effective set.
    CapabilityMissing {
        /// The capability, e.g. `CAP_SETPCAP`.
        capability: String,
        /// How many capabilities the bounding set still holds.
        bounding_set_size: Option<u32>,
    },
    /// The capability is effective, yet the kernel refused: an LSM.
    CapabilityDeniedByLsm {
        /// The capability.
        capability: String,
        /// How many capabilities the bounding set still holds.
        bounding_set_size: Option<u32>,
    },
    /// `/proc` has mounts over parts of it, so a new procfs would reveal
    /// more than this process may see ("mount too revealing").
    ProcMasked {
        /// The mounts found below `/proc`.
        overmounts: Vec<String>,
    },
    /// `/proc` is read-only, or writes to it are refused (e.g. Landlock).
    ProcNotWritable {
        /// Whether `/proc` is mounted read-only.
        read_only: bool,
    },
    /// Mounting is refused although the namespace was created: an LSM
    /// (a Landlock-restricted process cannot mount), or seccomp.
    MountRefused,
    /// `RLIMIT_NPROC` reached: no new process could be created.
    ProcessLimit {
        /// The soft limit.
        limit: Option<u64>,
    },
    /// Not enough memory to create the probe child.
    OutOfMemory,
    /// This process may open no more files (`EMFILE`: its `RLIMIT_NOFILE`),
    /// or the system none (`ENFILE`: `fs.file-max`).
    FileLimit {
        /// The soft `RLIMIT_NOFILE`, for EMFILE; `None` for the system's
        /// limit.
        limit: Option<u64>,
        /// Whether it is the whole system's limit (ENFILE).
        system: bool,
    },
    /// A file the answer depends on could not be read, for a reason that
    /// is not a limit: what it would have said is unknown.
    Unreadable {
        /// The file.
        path: String,
    },
    /// The kernel lacks the feature.
    KernelLacks {
        /// The feature and its config option.
        feature: String,
    },
    /// Landlock is built but not enabled at boot.
    LandlockNotEnabled,
    /// A program the probe runs is not installed.
    NotInstalled {
        /// The program.
        program: String,
    },
    /// A program exists but this process may not execute it.
    NotExecutable {
        /// Where it is.
        path: String,
    },
    /// A program ran and failed; its message says why.
    ProgramFailed {
        /// The program.
        program: String,
        /// What its message points at, when recognised.
        hint: String,
    },
    /// This user has no subordinate id range.
    NoSubordinateIds {
        /// The file searched.
        path: String,
        /// The user.
        user: String,
    },
    /// Real uid is not 0.
    NotRoot {
        /// The real uid.
        uid: u32,
    },
    /// uid 0, but inside a user namespace.
    NotInitialUserNamespace {
        /// `/proc/self/uid_map`.
        uid_map: String,
    },
    /// The probe child was stopped or blocked.
    TimedOut,
    /// The probe child was killed by a signal from outside.
    KilledFromOutside,
    /// `USERNS_TEST_DENY` lists the ability.
    DeniedByEnvironment,
    /// The crate's configuration in the environment is malformed.
    BadConfiguration,
    /// Refused with no host fact to explain it: some LSM or policy.
    Unexplained,
}

impl Cause {
    /// A stable identifier, for reports and grouping.
    pub fn id(&self) -> &'static str {
        match self {
            Cause::AppArmorRestrictsUserns { .. } => "apparmor_restrict_unprivileged_userns",
            Cause::UnprivilegedUsernsCloneOff => "unprivileged_userns_clone_off",
            Cause::UserNamespacesDisabled => "max_user_namespaces_zero",
            Cause::UserNamespaceLimit { .. } => "user_namespace_limit",
            Cause::NamespaceLimit { .. } => "namespace_limit",
            Cause::SeccompFilter => "seccomp_filter",
            Cause::SeccompKill => "seccomp_kill",
            Cause::Chrooted => "chrooted",
            Cause::CapabilityMissing { .. } => "capability_missing",
            Cause::CapabilityDeniedByLsm { .. } => "capability_denied_by_lsm",
            Cause::ProcMasked { .. } => "proc_masked",
            Cause::ProcNotWritable { .. } => "proc_not_writable",
            Cause::MountRefused => "mount_refused",
            Cause::ProcessLimit { .. } => "process_limit",
            Cause::OutOfMemory => "out_of_memory",
            Cause::FileLimit { .. } => "file_limit",
            Cause::Unreadable { .. } => "unreadable",
            Cause::KernelLacks { .. } => "kernel_lacks_feature",
            Cause::LandlockNotEnabled => "landlock_not_enabled",
            Cause::NotInstalled { .. } => "not_installed",
            Cause::NotExecutable { .. } => "not_executable",
            Cause::ProgramFailed { .. } => "program_failed",
            Cause::NoSubordinateIds { .. } => "no_subordinate_ids",
            Cause::NotRoot { .. } => "not_root",
            Cause::NotInitialUserNamespace { .. } => "not_initial_user_namespace",
            Cause::TimedOut => "timed_out",
            Cause::KilledFromOutside => "killed",
            Cause::DeniedByEnvironment => "denied_by_environment",
            Cause::BadConfiguration => "bad_configuration",
            Cause::Unexplained => "unexplained",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::AppArmorRestrictsUserns { label } => {
                f.write_str(
                    "kernel.apparmor_restrict_unprivileged_userns=1 moves unconfined processes \
                     into the unprivileged_userns AppArmor profile, which denies capabilities \
                     inside new user namespaces",
                )?;
                match label.as_deref() {
                    Some(l) if l != "unconfined" => {
                        write!(f, " (this process runs under the profile `{l}`)")
                    }
                    _ => Ok(()),
                }
            }
            Cause::UnprivilegedUsernsCloneOff => f.write_str(
                "kernel.unprivileged_userns_clone=0 forbids user namespaces to unprivileged users",
            ),
            Cause::UserNamespacesDisabled => {
                f.write_str("user.max_user_namespaces=0 disables user namespaces")
            }
            Cause::UserNamespaceLimit { max, nested } => {
                write!(
                    f,
                    "the user-namespace limit is reached (user.max_user_namespaces={})",
                    max.map_or("unknown".into(), |m| m.to_string())
                )?;
                if *nested {
                    f.write_str(
                        "; this process already runs inside a user namespace whose sandbox limits \
                         nesting (bwrap --disable-userns sets the limit to 1), or the nesting \
                         depth of 32 is reached",
                    )?;
                }
                Ok(())
            }
            Cause::NamespaceLimit { sysctl } => write!(f, "{sysctl} is reached or 0"),
            Cause::SeccompFilter => f.write_str(
                "a seccomp filter refuses this system call (Seccomp: 2 in /proc/self/status; \
                 Docker's default profile refuses namespace creation without CAP_SYS_ADMIN)",
            ),
            Cause::SeccompKill => {
                f.write_str("a seccomp filter kills the process on this system call")
            }
            Cause::Chrooted => {
                f.write_str("this process is chrooted, and the kernel refuses it user namespaces")
            }
            Cause::CapabilityMissing {
                capability,
                bounding_set_size,
            } => {
                write!(f, "{capability} is not effective")?;
                if let Some(n) = bounding_set_size {
                    write!(f, ", with {n} capabilities still in the bounding set")?;
                }
                f.write_str(" (rootless container, or the capability was dropped)")
            }
            Cause::CapabilityDeniedByLsm {
                capability,
                bounding_set_size,
            } => {
                write!(f, "{capability} is effective, yet the kernel refused it")?;
                if let Some(n) = bounding_set_size {
                    write!(f, " with {n} capabilities still in the bounding set")?;
                }
                f.write_str(
                    ": a capability LSM denial (AppArmor's unprivileged_userns profile in a \
                     rootless container logs operation=\"capable\")",
                )
            }
            Cause::ProcMasked { overmounts } => write!(
                f,
                "/proc has mounts over parts of it ({}), so the kernel refuses a fresh procfs as \
                 too revealing",
                overmounts.join(", ")
            ),
            Cause::ProcNotWritable { read_only } => {
                if *read_only {
                    f.write_str("/proc is mounted read-only for this process")
                } else {
                    f.write_str(
                        "writes to /proc are refused for this process (a Landlock or LSM policy)",
                    )
                }
            }
            Cause::MountRefused => f.write_str(
                "mounts are refused even inside the new namespaces: an LSM policy (a \
                 Landlock-restricted process cannot mount) or a seccomp filter",
            ),
            Cause::ProcessLimit { limit } => write!(
                f,
                "the process limit is reached (RLIMIT_NPROC {})",
                limit.map_or("unknown".into(), |l| l.to_string())
            ),
            Cause::OutOfMemory => f.write_str("not enough memory for a new process"),
            Cause::FileLimit {
                system: false,
                limit,
            } => write!(
                f,
                "this process may open no more files (RLIMIT_NOFILE {}): a resource limit, not a \
                 policy",
                limit.map_or("unknown".into(), |l| l.to_string())
            ),
            Cause::FileLimit { system: true, .. } => f.write_str(
                "the system may open no more files (fs.file-max): a resource limit, not a policy",
            ),
            Cause::Unreadable { path } => write!(
                f,
                "{path} could not be read, so the answer is unknown (a policy hiding it, or a \
                 resource limit)"
            ),
            Cause::KernelLacks { feature } => write!(f, "the kernel lacks {feature}"),
            Cause::LandlockNotEnabled => {
                f.write_str("Landlock is built into the kernel but not enabled at boot")
            }
            Cause::NotInstalled { program } => write!(f, "{program} is not installed"),
            Cause::NotExecutable { path } => write!(f, "{path} cannot be executed"),
            Cause::ProgramFailed { program, hint } => write!(f, "{program} failed: {hint}"),
            Cause::NoSubordinateIds { path, user } => {
                write!(f, "{path} has no range for {user}")
            }
            Cause::NotRoot { uid } => write!(f, "the real uid is {uid}, not 0"),
            Cause::NotInitialUserNamespace { uid_map } => write!(
                f,
                "uid 0 inside a user namespace (uid_map: {uid_map}), not in the initial one"
            ),
            Cause::TimedOut => f.write_str(
                "the probe child was stopped or blocked (a debugger, a freezer cgroup, or a \
                 hung operation)",
            ),
            Cause::KilledFromOutside => f.write_str("something outside the probe killed it"),
            Cause::DeniedByEnvironment => f.write_str("USERNS_TEST_DENY lists this ability"),
            Cause::BadConfiguration => f.write_str("the environment configuration is malformed"),
            Cause::Unexplained => f.write_str(
                "no host fact explains it: an LSM (AppArmor, SELinux, Landlock) or policy refused \
                 it; look for apparmor=\"DENIED\" or avc: denied in dmesg",
            ),
        }
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Cause", 2)?;
        st.serialize_field("id", self.id())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

/// The cause and remedy for `failure` at `step` while probing `ability`.
/// The facts are read only when the failure is one they can explain.
pub(crate) fn diagnose(
    ability: Ability,
    step: &Step,
    failure: &Failure,
    facts: Facts<'_>,
) -> (Cause, String) {
    let cause = find_cause(ability, step, failure, facts);
    let remedy = remedy(ability, &cause, facts);
    (cause, remedy)
}

fn find_cause(ability: Ability, step: &Step, failure: &Failure, facts: Facts<'_>) -> Cause {
    let errno = match failure {
        Failure::Signal { number, .. } if *number == libc::SIGSYS => return Cause::SeccompKill,
        Failure::Signal { .. } => return Cause::KilledFromOutside,
        Failure::TimedOut { .. } => return Cause::TimedOut,
        Failure::Denied => return Cause::DeniedByEnvironment,
        Failure::Configuration { .. } => return Cause::BadConfiguration,
        Failure::Errno { number, .. } => *number,
        Failure::Unreadable {
            errno: Some(number @ (libc::EMFILE | libc::ENFILE | libc::ENOMEM)),
            ..
        } => *number,
        Failure::Unreadable { path, .. } => return Cause::Unreadable { path: path.clone() },
        // Program and identity failures get their cause where they happen.
        _ => return Cause::Unexplained,
    };
    // Resource limits first, whatever the step: they are not refusals, and
    // no policy should be blamed for them.
    match errno {
        libc::EMFILE => {
            return Cause::FileLimit {
                limit: nofile_limit(),
                system: false,
            };
        }
        libc::ENFILE => {
            return Cause::FileLimit {
                limit: None,
                system: true,
            };
        }
        libc::ENOMEM => return Cause::OutOfMemory,
        _ => {}
    }
    // A refused system call: what the host says about it explains it.
    let facts = facts.get();
    match step {
        // Starting a program forks first: EAGAIN there is the same limit.
        Step::Clone { .. } | Step::Exec { .. } if errno == libc::EAGAIN => Cause::ProcessLimit {
            limit: nproc_limit(),
        },
        Step::Clone { flags } | Step::Unshare { flags } if flags.contains("CLONE_NEWUSER") => {
            user_namespace_refused(errno, facts)
        }
        Step::Clone { .. } => refused(ability, facts, errno),
        Step::Unshare { flags } => match errno {
            libc::EINVAL => Cause::KernelLacks {
                feature: format!("{flags} namespaces"),
            },
            libc::ENOSPC => Cause::NamespaceLimit {
                sysctl: namespace_sysctl(flags),
            },
            _ => refused(ability, facts, errno),
        },
        Step::OpenForWriting { path } | Step::Write { path, .. } if path.starts_with("/proc") => {
            if facts.proc_read_only || errno == libc::EROFS {
                Cause::ProcNotWritable { read_only: true }
            } else if restricted_by_apparmor(facts) {
                Cause::AppArmorRestrictsUserns {
                    label: facts.apparmor_label.clone(),
                }
            } else if errno == libc::EACCES {
                Cause::ProcNotWritable { read_only: false }
            } else {
                refused(ability, facts, errno)
            }
        }
        Step::Mount { what } if what.starts_with("proc") && !facts.proc_overmounts.is_empty() => {
            Cause::ProcMasked {
                overmounts: facts.proc_overmounts.clone(),
            }
        }
        Step::Mount { .. } => match refused(ability, facts, errno) {
            Cause::Unexplained => Cause::MountRefused,
            other => other,
        },
        Step::CapBsetDrop { .. } => {
            if facts.under_seccomp_filter() && errno != libc::EPERM {
                return Cause::SeccompFilter;
            }
            let capability = "CAP_SETPCAP".to_owned();
            let bounding_set_size = facts.bounding_set_size();
            match facts.has_effective_cap(CAP_SETPCAP) {
                Some(false) => Cause::CapabilityMissing {
                    capability,
                    bounding_set_size,
                },
                _ if facts.under_seccomp_filter() => Cause::SeccompFilter,
                _ => Cause::CapabilityDeniedByLsm {
                    capability,
                    bounding_set_size,
                },
            }
        }
        Step::SeccompSetModeFilter if errno == libc::EINVAL => Cause::KernelLacks {
            feature: "seccomp filters (CONFIG_SECCOMP_FILTER)".into(),
        },
        Step::LandlockAbiVersion | Step::LandlockCreateRuleset | Step::LandlockRestrictSelf => {
            match errno {
                libc::EOPNOTSUPP => Cause::LandlockNotEnabled,
                libc::ENOSYS if !facts.under_seccomp_filter() => Cause::KernelLacks {
                    feature: "Landlock (CONFIG_SECURITY_LANDLOCK)".into(),
                },
                _ => refused(ability, facts, errno),
            }
        }
        _ => refused(ability, facts, errno),
    }
}

/// Creating the user namespace itself failed.
fn user_namespace_refused(errno: i32, facts: &HostFacts) -> Cause {
    match errno {
        libc::ENOSPC | libc::EUSERS if facts.max_user_namespaces == Some(0) => {
            Cause::UserNamespacesDisabled
        }
        libc::ENOSPC | libc::EUSERS => Cause::UserNamespaceLimit {
            max: facts.max_user_namespaces,
            nested: facts.in_user_namespace == Some(true),
        },
        libc::EINVAL => Cause::KernelLacks {
            feature: "user namespaces (CONFIG_USER_NS)".into(),
        },
        libc::EPERM | libc::ENOSYS if facts.under_seccomp_filter() => Cause::SeccompFilter,
        libc::EPERM if facts.unprivileged_userns_clone == Some(0) && facts.euid != 0 => {
            Cause::UnprivilegedUsernsCloneOff
        }
        libc::EPERM if facts.chrooted == Some(true) => Cause::Chrooted,
        libc::ENOMEM => Cause::OutOfMemory,
        _ => Cause::Unexplained,
    }
}

/// A refusal (EPERM, EACCES, ...) inside the new namespaces.
fn refused(ability: Ability, facts: &HostFacts, errno: i32) -> Cause {
    if !matches!(errno, libc::EPERM | libc::EACCES | libc::ENOSYS) {
        return Cause::Unexplained;
    }
    if ability.needs_user_namespace() && restricted_by_apparmor(facts) {
        Cause::AppArmorRestrictsUserns {
            label: facts.apparmor_label.clone(),
        }
    } else if facts.under_seccomp_filter() {
        Cause::SeccompFilter
    } else {
        Cause::Unexplained
    }
}

/// Ubuntu's restriction applies to processes without CAP_SYS_ADMIN.
fn restricted_by_apparmor(facts: &HostFacts) -> bool {
    facts.apparmor_restricts_userns() && facts.has_effective_cap(CAP_SYS_ADMIN) != Some(true)
}

fn namespace_sysctl(flags: &str) -> String {
    let kind = [
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
    .map_or("user", |(_, k)| k);
    format!("user.max_{kind}_namespaces")
}

fn nofile_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

fn nproc_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
        .ok()
        .map(|(soft, _)| soft)
}

/// A glob covering cargo's test binaries next to this one, for AppArmor.
fn test_binary_glob() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| format!("{}/*", d.display())))
        .unwrap_or_else(|| "/path/to/target/*/deps/*".into())
}

/// An AppArmor 4 profile that grants `userns,` to exactly the program at
/// `path` (absolute; `*` globs allowed), with the commands to install and
/// load it and what it permits, as comments: the narrow remedy for
/// `kernel.apparmor_restrict_unprivileged_userns=1`.
pub fn apparmor_profile(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        name = "tests".into();
    }
    let profile = format!("userns-test-{name}");
    // AppArmor needs quotes around a path with spaces and the like.
    let attach = if path
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '#')
    {
        format!("\"{}\"", path.replace('"', "\\\""))
    } else {
        path.to_owned()
    };
    let file = format!("/etc/apparmor.d/{profile}");
    format!(
        "# AppArmor 4 profile for {path}\n\
         # It lets this program, and nothing else, use user namespaces while\n\
         # kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 23.10 and later).\n\
         #\n\
         # Install and load it:\n\
         #   userns-test apparmor-profile {path} | sudo tee {file}\n\
         #   sudo apparmor_parser -r {file}\n\
         # Remove it:\n\
         #   sudo rm {file} && sudo apparmor_parser -R {profile}\n\
         #\n\
         # WARNING: `flags=(unconfined)` plus `userns,` gives this program the whole\n\
         # unprivileged user-namespace attack surface the sysctl closes: any code it\n\
         # runs may create namespaces and use capabilities inside them. Attach it only\n\
         # to binaries you build and trust; a glob (`*`) covers every file it matches.\n\
         abi <abi/4.0>,\n\
         include <tunables/global>\n\
         \n\
         profile {profile} {attach} flags=(unconfined) {{\n\
         \x20 userns,\n\
         \n\
         \x20 include if exists <local/{profile}>\n\
         }}\n"
    )
}

/// The narrowest fix first; host-wide switches last, with their cost. Also
/// the remedy for a cause found outside [`diagnose`] (identity and program
/// checks).
pub(crate) fn remedy(ability: Ability, cause: &Cause, facts: Facts<'_>) -> String {
    match cause {
        Cause::AppArmorRestrictsUserns { .. } => {
            let glob = test_binary_glob();
            format!(
                "narrowest: an AppArmor profile granting `userns,` to the test binaries, e.g. \
                 /etc/apparmor.d/userns-test containing `abi <abi/4.0>, include \
                 <tunables/global> profile userns-test {glob} flags=(unconfined) {{ userns, \
                 include if exists <local/userns-test> }}`, loaded with `sudo apparmor_parser -r \
                 /etc/apparmor.d/userns-test` (cargo names test binaries with a hash, so the \
                 glob covers every binary in that directory; `userns-test apparmor-profile \
                 BINARY` prints one); host-wide: `sudo sysctl -w \
                 kernel.apparmor_restrict_unprivileged_userns=0` (re-exposes the unprivileged \
                 user-namespace attack surface to every program on the host)"
            )
        }
        Cause::UnprivilegedUsernsCloneOff => "run the tests as root in CI, or `sudo sysctl -w \
             kernel.unprivileged_userns_clone=1` (host-wide: every unprivileged program may \
             create user namespaces)"
            .into(),
        Cause::UserNamespacesDisabled => {
            let facts = facts.get();
            let inside = if facts.in_user_namespace == Some(true) || facts.container.is_some() {
                " on the host or in the enclosing sandbox (the limit is per user namespace)"
            } else {
                ""
            };
            format!(
                "`sudo sysctl -w user.max_user_namespaces=15000`{inside} (host-wide: RHEL-like \
                 systems ship 0 to shrink the kernel attack surface reachable by unprivileged \
                 users)"
            )
        }
        Cause::UserNamespaceLimit { nested: true, .. } => "run the tests outside the enclosing \
             sandbox, or let it allow nested user namespaces (bubblewrap without \
             --disable-userns; Flatpak cannot)"
            .into(),
        Cause::UserNamespaceLimit { .. } => "wait for other user namespaces to close, or raise \
             `user.max_user_namespaces` (host-wide)"
            .into(),
        Cause::NamespaceLimit { sysctl } => format!("raise `{sysctl}` (host-wide)"),
        Cause::SeccompFilter => "in a container: run it with a seccomp profile that allows \
             unshare/clone/mount with the namespace flags (narrower than `--privileged` or \
             `seccomp=unconfined`); elsewhere, find the filter's owner (NoNewPrivs and Seccomp in \
             /proc/self/status)"
            .into(),
        Cause::SeccompKill => "allow this system call in the seccomp profile that the \
             process runs under (it kills rather than returns an error)"
            .into(),
        Cause::Chrooted => {
            "run the tests outside the chroot (pivot_root in a mount namespace works)".into()
        }
        Cause::CapabilityMissing { capability, .. } => {
            let cap = capability.trim_start_matches("CAP_");
            format!(
                "grant {capability} (`--cap-add {cap}` for Docker/Podman) or run as root; code \
                 that clears the bounding set should tolerate EPERM with a non-empty set where \
                 it cannot have {capability}"
            )
        }
        Cause::CapabilityDeniedByLsm { .. } => "check the audit log (`dmesg | grep DENIED`) for \
             the denying profile and grant the capability there, or run outside the rootless \
             user namespace"
            .into(),
        Cause::ProcMasked { .. } => "run the container with an unmasked /proc (Docker \
             `--security-opt systempaths=unconfined`, Podman `--security-opt unmask=ALL`), or \
             have the test bind-mount the existing /proc instead of mounting a new one"
            .into(),
        Cause::ProcNotWritable { .. } => "run the tests outside the restriction that makes \
             /proc unwritable (Landlock ruleset, read-only /proc mount, LSM policy)"
            .into(),
        Cause::MountRefused => "run the tests outside the Landlock/LSM restriction, or give its \
             policy the mount permission"
            .into(),
        Cause::ProcessLimit { .. } => {
            "raise `ulimit -u`, or lower --test-threads / other processes of this user".into()
        }
        Cause::OutOfMemory => "free memory, or raise the memory limit of this job".into(),
        Cause::FileLimit { system: false, .. } => "raise the open-file limit of the test process \
             (`ulimit -n`), or close the descriptors the tests leave open"
            .into(),
        Cause::FileLimit { system: true, .. } => {
            "raise `fs.file-max`, or find the process holding the system's files".into()
        }
        Cause::Unreadable { path } => format!(
            "make {path} readable to the test process (a container or LSM hiding it), or probe \
             elsewhere"
        ),
        Cause::KernelLacks { feature } => format!("use a kernel built with {feature}"),
        Cause::LandlockNotEnabled => "add `landlock` to the kernel's `lsm=` boot parameter".into(),
        Cause::NotInstalled { program } if program.contains("bwrap") => "install bubblewrap \
             (`apt-get install bubblewrap`, `dnf install bubblewrap`), or set USERNS_TEST_BWRAP \
             to its path"
            .into(),
        Cause::NotInstalled { program } => {
            format!("install {program} (`apt-get install uidmap`, `dnf install shadow-utils`)")
        }
        Cause::NotExecutable { path } => format!(
            "make {path} executable for this user (mode bits, a noexec mount, or an LSM denying \
             exec), or set USERNS_TEST_BWRAP to a copy that is"
        ),
        Cause::ProgramFailed { .. }
            if ability.is_external() && restricted_by_apparmor(facts.get()) =>
        {
            "load an AppArmor profile granting `userns,` to bwrap (Ubuntu ships one: `sudo \
             apparmor_parser -r /usr/share/apparmor/extra-profiles/bwrap-userns-restrict`, or \
             write one for the exact path), or see the host-wide sysctl above"
                .into()
        }
        Cause::ProgramFailed { .. } => {
            "see the program's message; `userns-test doctor` shows the system-call probes".into()
        }
        Cause::NoSubordinateIds { path, user } => format!(
            "add a range for {user} to {path} (`sudo usermod --add-subuids 100000-165535 \
             --add-subgids 100000-165535 {user}`)"
        ),
        Cause::NotRoot { .. } => "run the test binary as root (e.g. in a privileged CI job)".into(),
        Cause::NotInitialUserNamespace { .. } => {
            "run as root outside any user namespace (a privileged CI job)".into()
        }
        Cause::TimedOut => "look for a debugger or freezer stopping processes; raise \
             USERNS_TEST_PROBE_TIMEOUT_MS on a very slow host"
            .into(),
        Cause::KilledFromOutside => "run the probe again; find what kills processes here".into(),
        Cause::DeniedByEnvironment => format!("remove `{ability}` from USERNS_TEST_DENY"),
        Cause::BadConfiguration => "fix the variable named above".into(),
        Cause::Unexplained => "read the audit log (`dmesg`, `journalctl -k`) for a denial naming \
             this test binary, and allow the operation in that policy"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_unshare_user() -> Step {
        Step::Unshare {
            flags: "CLONE_NEWUSER".into(),
        }
    }

    #[test]
    fn enospc_with_zero_limit_is_disabled() {
        let facts = HostFacts {
            max_user_namespaces: Some(0),
            ..HostFacts::default()
        };
        let (cause, remedy) = diagnose(
            Ability::User,
            &step_unshare_user(),
            &Failure::errno(libc::ENOSPC),
            Facts::Given(&facts),
        );
        assert_eq!(cause, Cause::UserNamespacesDisabled);
        assert!(remedy.contains("user.max_user_namespaces"), "{remedy}");
    }

    #[test]
    fn setgroups_eacces_under_apparmor_restriction() {
        let facts = HostFacts {
            apparmor_restrict_unprivileged_userns: Some(1),
            cap_effective: Some(0),
            apparmor_label: Some("unconfined".into()),
            ..HostFacts::default()
        };
        let step = Step::OpenForWriting {
            path: "/proc/self/setgroups".into(),
        };
        let (cause, remedy) = diagnose(
            Ability::User,
            &step,
            &Failure::errno(13),
            Facts::Given(&facts),
        );
        assert_eq!(cause.id(), "apparmor_restrict_unprivileged_userns");
        assert!(
            remedy.contains("userns,") && remedy.contains("=0"),
            "{remedy}"
        );
    }

    #[test]
    fn capbset_eperm_without_setpcap() {
        let facts = HostFacts {
            cap_effective: Some(0),
            cap_bounding: Some(0xff_ffff_ffff),
            ..HostFacts::default()
        };
        let (cause, _) = diagnose(
            Ability::CapSetpcap,
            &Step::CapBsetDrop { cap: 40 },
            &Failure::errno(libc::EPERM),
            Facts::Given(&facts),
        );
        assert_eq!(
            cause.to_string(),
            "CAP_SETPCAP is not effective, with 40 capabilities still in the bounding set \
             (rootless container, or the capability was dropped)"
        );
    }

    #[test]
    fn docker_like_seccomp_eperm() {
        let facts = HostFacts {
            seccomp_mode: Some(2),
            euid: 1000,
            ..HostFacts::default()
        };
        let (cause, _) = diagnose(
            Ability::Net,
            &step_unshare_user(),
            &Failure::errno(libc::EPERM),
            Facts::Given(&facts),
        );
        assert_eq!(cause, Cause::SeccompFilter);
    }
}
