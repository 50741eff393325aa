//! Causes: what about a host explains that an operation failed. Part of
//! the vocabulary every layer shares; [`crate::diagnosis`] finds them.

use std::fmt;

use crate::json::Json;

/// What about this host explains a failure. Every cause is found from
/// evidence: the failed step and its errno, the host facts, what other
/// probes observed, and control calls (the same system call with an
/// argument the kernel rejects before any permission check, which tells a
/// seccomp filter's refusal from the kernel's). Its words and its fix
/// depend on the host, never on which ability hit it, so that abilities
/// refused for one reason share one root cause.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// Ubuntu's `kernel.apparmor_restrict_unprivileged_userns=1`.
    AppArmorRestrictsUserns {
        /// The process's AppArmor label, when known.
        label: Option<String>,
    },
    /// A user namespace is created, but an LSM refuses every capability in
    /// it (what AppArmor's `unprivileged_userns` profile does), while
    /// `/proc` itself is writable.
    CapabilitiesDeniedInUserns {
        /// This process's AppArmor label, when it is confined.
        label: Option<String>,
        /// The active LSMs, when known.
        lsms: Option<Vec<String>>,
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
        /// Its value as this process reads it, when known.
        value: Option<u64>,
    },
    /// A seccomp filter refuses creating namespaces, user namespaces
    /// included (Docker's default profile without CAP_SYS_ADMIN).
    SeccompRefusesNamespaces,
    /// A seccomp filter refuses some namespace types by their flag while
    /// it allows user namespaces (systemd's `RestrictNamespaces=`).
    SeccompRefusesNamespaceTypes {
        /// The types refused, by name and flag: `network namespaces
        /// (CLONE_NEWNET)`.
        types: String,
    },
    /// A seccomp filter refuses a system call the operation needs.
    SeccompRefusesCall {
        /// The call, e.g. `mount` or `socket(AF_NETLINK)`.
        call: String,
    },
    /// The process runs under a seccomp filter that may be what refused
    /// the call; checking the call against it was not possible.
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
    /// The capability is effective, and no seccomp filter refuses the
    /// call, yet the kernel refused: an LSM.
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
    /// `/proc` is read-only, or writes to it are refused (e.g. Landlock):
    /// this process cannot open `/proc/thread-self/comm` for writing either.
    ProcNotWritable {
        /// Whether `/proc` is mounted read-only.
        read_only: bool,
    },
    /// This process is not dumpable, so its `/proc` files belong to root
    /// and it cannot write its own id maps.
    NotDumpable,
    /// A call is refused inside the new namespaces, and no seccomp filter
    /// refuses it: an LSM (Landlock, AppArmor, SELinux, a BPF program).
    LsmRefusesCall {
        /// The call, e.g. `mount`.
        call: String,
    },
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
    /// NoNewPrivs is set for this process: setuid and file-capability
    /// programs (newuidmap, ping) do not gain their privileges.
    NoNewPrivs,
    /// This process is privileged where the test needs a normal user.
    Privileged {
        /// What was found, e.g. `uid 0 (euid 0) in the initial user
        /// namespace`.
        found: String,
    },
    /// A capability the test needs is not in the bounding set: a
    /// container's default set, or a parent that dropped it. Nothing in
    /// this process can get it back.
    CapabilityNotInBoundingSet {
        /// `CAP_SYS_PTRACE`.
        capability: String,
        /// How many capabilities the bounding set holds.
        bounding_set_size: Option<u32>,
    },
    /// A capability in the bounding set but not the permitted one: a
    /// process not running as root (and without file capabilities), or
    /// root whose launcher dropped it.
    CapabilityNotPermitted {
        /// `CAP_SYS_PTRACE`.
        capability: String,
        /// The effective uid.
        uid: u32,
        /// Whether NoNewPrivs is set (file capabilities are then not
        /// granted by an exec).
        no_new_privs: bool,
    },
    /// A capability permitted but not effective: the process has not
    /// raised it.
    CapabilityNotEffective {
        /// `CAP_SYS_PTRACE`.
        capability: String,
    },
    /// A capability the kernel checks against the initial user namespace
    /// alone, held in another user namespace, where it allows nothing.
    CapabilityOutsideInitialNamespace {
        /// `CAP_SYS_MODULE`.
        capability: String,
        /// `/proc/self/uid_map`, one line.
        uid_map: String,
    },
    /// The running kernel does not know the capability.
    CapabilityUnknownToKernel {
        /// `CAP_CHECKPOINT_RESTORE`.
        capability: String,
        /// The kernel's `cap_last_cap`.
        last: u32,
    },
    /// uid 0 in the initial user namespace, without every capability the
    /// kernel knows.
    RootWithoutCapabilities {
        /// The capabilities missing from the effective set.
        missing: Vec<String>,
    },
    /// The running kernel is older than the test needs.
    KernelTooOld {
        /// Its release, as `uname -r` gives it.
        release: String,
        /// The release wanted, at least.
        wanted: String,
    },
    /// The kernel's Landlock ABI is newer than the test is for (a fallback
    /// path for older kernels, or one exact ABI).
    LandlockAbiTooNew {
        /// The ABI the kernel reports.
        found: u8,
        /// The ABI the test needs it to be below.
        below: u8,
    },
    /// A device node is not there (no driver, or not given to the
    /// container).
    DeviceMissing {
        /// The node, e.g. `/dev/kvm`.
        path: String,
    },
    /// A device node's mode and owner do not let this user open it.
    DeviceNotAccessible {
        /// The node.
        path: String,
        /// Its mode and owner, e.g. `crw------- 0:0`.
        mode: String,
    },
    /// The device node exists and its mode allows this user, yet opening
    /// it is refused (EPERM): a device cgroup (a container's device
    /// policy) or an LSM.
    DeviceRefused {
        /// The node.
        path: String,
    },
    /// A program exists and its mode allows this user, but its filesystem
    /// is mounted `noexec`.
    NoexecMount {
        /// The program.
        path: String,
        /// The mount point.
        mount: String,
    },
    /// A program's mode and mount allow the exec, yet `execve` is refused:
    /// an LSM (Landlock, AppArmor, SELinux).
    ExecRefusedByLsm {
        /// The program.
        path: String,
    },
    /// The kernel's Landlock ABI is below the one required.
    LandlockAbiTooOld {
        /// The ABI required.
        wanted: u8,
    },
    /// No cgroup v2 hierarchy (or no cgroup v2 entry for this process).
    CgroupV2Missing {
        /// Whether cgroup v1 hierarchies are mounted.
        v1: bool,
    },
    /// The delegated cgroup v2 subtree does not get the `cpu`, `memory`
    /// and `pids` controllers.
    CgroupControllersMissing {
        /// Where (the delegation root's `cgroup.subtree_control`).
        path: String,
        /// Whether they are bound to cgroup v1 hierarchies (hybrid host).
        hybrid: bool,
    },
    /// This user may not create or join cgroups in its cgroup v2 subtree.
    CgroupNotDelegated {
        /// The cgroup it tried.
        path: String,
    },
    /// The cgroup v2 tree is mounted read-only (a container's default).
    CgroupReadOnly {
        /// The cgroup it tried.
        path: String,
    },
    /// The root of this system is the initramfs `rootfs`, which
    /// `pivot_root` cannot move.
    RootIsRootfs,
    /// A program that needs privilege has neither the setuid bit nor file
    /// capabilities.
    ProgramUnprivileged {
        /// The program's path.
        path: String,
    },
    /// A program ran and failed for a reason no probe of this crate shares;
    /// its own words say why.
    ProgramFailed {
        /// The program.
        program: String,
        /// Its message (first line of stderr).
        message: String,
    },
    /// This user has no subordinate id range.
    NoSubordinateIds {
        /// The file searched.
        path: String,
        /// The user.
        user: String,
    },
    /// This user's subordinate range is shorter than an `#[in_userns(ids
    /// = N)]` test maps.
    SubordinateRangeTooShort {
        /// The file searched.
        path: String,
        /// The user.
        user: String,
        /// Where the range starts.
        start: u32,
        /// How many ids it holds.
        count: u32,
        /// How many the test maps besides uid 0.
        wanted: u32,
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
    /// The host is not Linux: user namespaces are a Linux kernel feature.
    UnsupportedSystem {
        /// The system, as it names itself (`macOS 14.5`, `windows`).
        os: String,
    },
    /// Refused with no evidence to explain it: some LSM or policy.
    Unexplained,
}

impl Cause {
    /// A stable identifier, for reports and grouping.
    pub fn id(&self) -> &'static str {
        match self {
            Cause::AppArmorRestrictsUserns { .. } => "apparmor_restrict_unprivileged_userns",
            Cause::CapabilitiesDeniedInUserns { .. } => "capabilities_denied_in_userns",
            Cause::UnprivilegedUsernsCloneOff => "unprivileged_userns_clone_off",
            Cause::UserNamespacesDisabled => "max_user_namespaces_zero",
            Cause::UserNamespaceLimit { .. } => "user_namespace_limit",
            Cause::NamespaceLimit { .. } => "namespace_limit",
            Cause::SeccompRefusesNamespaces => "seccomp_refuses_namespaces",
            Cause::SeccompRefusesNamespaceTypes { .. } => "seccomp_refuses_namespace_types",
            Cause::SeccompRefusesCall { .. } => "seccomp_refuses_call",
            Cause::SeccompFilter => "seccomp_filter",
            Cause::SeccompKill => "seccomp_kill",
            Cause::Chrooted => "chrooted",
            Cause::CapabilityMissing { .. } => "capability_missing",
            Cause::CapabilityDeniedByLsm { .. } => "capability_denied_by_lsm",
            Cause::ProcMasked { .. } => "proc_masked",
            Cause::ProcNotWritable { .. } => "proc_not_writable",
            Cause::NotDumpable => "not_dumpable",
            Cause::LsmRefusesCall { .. } => "lsm_refuses_call",
            Cause::ProcessLimit { .. } => "process_limit",
            Cause::OutOfMemory => "out_of_memory",
            Cause::FileLimit { .. } => "file_limit",
            Cause::Unreadable { .. } => "unreadable",
            Cause::KernelLacks { .. } => "kernel_lacks_feature",
            Cause::LandlockNotEnabled => "landlock_not_enabled",
            Cause::NotInstalled { .. } => "not_installed",
            Cause::NotExecutable { .. } => "not_executable",
            Cause::NoNewPrivs => "no_new_privs",
            Cause::Privileged { .. } => "privileged",
            Cause::CapabilityNotInBoundingSet { .. } => "capability_not_in_bounding_set",
            Cause::CapabilityNotPermitted { .. } => "capability_not_permitted",
            Cause::CapabilityNotEffective { .. } => "capability_not_effective",
            Cause::CapabilityOutsideInitialNamespace { .. } => {
                "capability_outside_initial_namespace"
            }
            Cause::CapabilityUnknownToKernel { .. } => "capability_unknown_to_kernel",
            Cause::RootWithoutCapabilities { .. } => "root_without_capabilities",
            Cause::KernelTooOld { .. } => "kernel_too_old",
            Cause::LandlockAbiTooNew { .. } => "landlock_abi_too_new",
            Cause::DeviceMissing { .. } => "device_missing",
            Cause::DeviceNotAccessible { .. } => "device_not_accessible",
            Cause::DeviceRefused { .. } => "device_refused",
            Cause::NoexecMount { .. } => "noexec_mount",
            Cause::ExecRefusedByLsm { .. } => "exec_refused_by_lsm",
            Cause::LandlockAbiTooOld { .. } => "landlock_abi_too_old",
            Cause::CgroupV2Missing { .. } => "cgroup_v2_missing",
            Cause::CgroupControllersMissing { .. } => "cgroup_controllers_missing",
            Cause::CgroupNotDelegated { .. } => "cgroup_not_delegated",
            Cause::CgroupReadOnly { .. } => "cgroup_read_only",
            Cause::RootIsRootfs => "root_is_rootfs",
            Cause::ProgramUnprivileged { .. } => "program_unprivileged",
            Cause::ProgramFailed { .. } => "program_failed",
            Cause::NoSubordinateIds { .. } => "no_subordinate_ids",
            Cause::SubordinateRangeTooShort { .. } => "subordinate_range_too_short",
            Cause::NotRoot { .. } => "not_root",
            Cause::NotInitialUserNamespace { .. } => "not_initial_user_namespace",
            Cause::TimedOut => "timed_out",
            Cause::KilledFromOutside => "killed",
            Cause::DeniedByEnvironment => "denied_by_environment",
            Cause::BadConfiguration => "bad_configuration",
            Cause::UnsupportedSystem { .. } => "unsupported_system",
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
            Cause::CapabilitiesDeniedInUserns { label, lsms } => {
                f.write_str(
                    "an LSM denies capabilities inside new user namespaces: the kernel creates \
                     one, then refuses CAP_SYS_ADMIN in it, while /proc is writable",
                )?;
                match (label.as_deref(), lsms) {
                    (Some(l), _) if l != "unconfined" => write!(
                        f,
                        " (this process runs under the AppArmor profile `{l}`; Ubuntu's \
                         unprivileged_userns profile does this)"
                    ),
                    (_, Some(lsms)) if !lsms.is_empty() => {
                        write!(f, " (active LSMs: {})", lsms.join(","))
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
            Cause::NamespaceLimit {
                sysctl,
                value: Some(0),
            } => write!(f, "{sysctl}=0 forbids this namespace type"),
            Cause::NamespaceLimit { sysctl, value } => write!(
                f,
                "{sysctl} ({}) is reached here or in an enclosing user namespace",
                value.map_or("unknown".into(), |v| v.to_string())
            ),
            Cause::SeccompRefusesNamespaces => f.write_str(
                "a seccomp filter refuses creating namespaces, user namespaces included (Docker's \
                 default profile does this without CAP_SYS_ADMIN)",
            ),
            Cause::SeccompRefusesNamespaceTypes { types } => write!(
                f,
                "a seccomp filter refuses {types} by the clone flag while it allows user \
                 namespaces (as systemd's RestrictNamespaces= does)"
            ),
            Cause::SeccompRefusesCall { call } => write!(
                f,
                "a seccomp filter refuses {call} (the same call with an argument the kernel \
                 rejects first gets the filter's errno too)"
            ),
            Cause::SeccompFilter => f.write_str(
                "this process runs under a seccomp filter (Seccomp: 2 in /proc/self/status) that \
                 may be what refused the call; whether it does could not be checked",
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
                    ", and no seccomp filter refuses the call: a capability LSM denial \
                     (AppArmor's unprivileged_userns profile in a rootless container logs \
                     operation=\"capable\")",
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
                        "writes to /proc are refused for this process: it cannot open \
                         /proc/thread-self/comm for writing either (a Landlock or LSM policy)",
                    )
                }
            }
            Cause::NotDumpable => f.write_str(
                "this process is not dumpable (PR_SET_DUMPABLE 0, or it was started from a \
                 setuid or file-capability program), so its /proc files belong to root and it \
                 cannot write its own uid_map",
            ),
            Cause::LsmRefusesCall { call } => write!(
                f,
                "{call} is refused inside the new namespaces, where this process holds every \
                 capability, and no seccomp filter refuses it: an LSM (Landlock, AppArmor, \
                 SELinux, a BPF program) does"
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
            Cause::NoNewPrivs => f.write_str(
                "NoNewPrivs is set for this process, so setuid and file-capability programs \
                 (newuidmap, ping) do not gain their privileges",
            ),
            Cause::Privileged { found } => {
                write!(
                    f,
                    "this process is privileged as the host sees it ({found}) where a normal \
                     user is needed"
                )
            }
            Cause::CapabilityNotInBoundingSet {
                capability,
                bounding_set_size,
            } => {
                write!(f, "{capability} is not in the capability bounding set")?;
                if let Some(n) = bounding_set_size {
                    write!(f, " ({n} capabilities are)")?;
                }
                f.write_str(
                    ": a container's default set (Docker and Podman keep 14 of 41) or a parent \
                     that dropped it; no process below can get it back",
                )
            }
            Cause::CapabilityNotPermitted {
                capability,
                uid,
                no_new_privs,
            } if *uid != 0 => {
                write!(
                    f,
                    "{capability} is not permitted to uid {uid}: capabilities come with uid 0, \
                     or with file capabilities on the executable"
                )?;
                if *no_new_privs {
                    f.write_str(" (NoNewPrivs is set, so an exec would not grant those either)")?;
                }
                Ok(())
            }
            Cause::CapabilityNotPermitted { capability, .. } => write!(
                f,
                "{capability} is in the bounding set but not permitted to this uid 0 process: \
                 what started it dropped it (capsh, setpriv, a service's capability settings)"
            ),
            Cause::CapabilityNotEffective { capability } => write!(
                f,
                "{capability} is permitted but not effective: the process has not raised it"
            ),
            Cause::CapabilityOutsideInitialNamespace {
                capability,
                uid_map,
            } => write!(
                f,
                "{capability} is effective, but in a user namespace (uid map {uid_map}), and the \
                 kernel checks {capability} against the initial user namespace only: there it \
                 allows nothing"
            ),
            Cause::CapabilityUnknownToKernel { capability, last } => {
                write!(
                    f,
                    "the running kernel does not know {capability}: its capabilities end at {last}"
                )?;
                if let Some(release) = capability_kernel(capability) {
                    write!(f, " ({capability} came with Linux {release})")?;
                }
                Ok(())
            }
            Cause::RootWithoutCapabilities { missing } => write!(
                f,
                "uid 0 without every capability the kernel knows (missing {}): a container's \
                 or a service's reduced set, in which a test that needs root fails where it \
                 uses them",
                missing.join(", ")
            ),
            Cause::KernelTooOld { release, wanted } => {
                write!(f, "the running kernel is {release}, older than {wanted}")
            }
            Cause::LandlockAbiTooNew { found, below } => match landlock_abi_kernel(*below) {
                Some(release) => write!(
                    f,
                    "the kernel's Landlock ABI is {found}, where the test is for kernels below \
                     ABI {below} (before Linux {release})"
                ),
                None => write!(
                    f,
                    "the kernel's Landlock ABI is {found}, where the test is for kernels below \
                     ABI {below}"
                ),
            },
            Cause::DeviceMissing { path } => {
                write!(
                    f,
                    "{path} does not exist here (no driver, or not given to the container)"
                )
            }
            Cause::DeviceNotAccessible { path, mode } => write!(
                f,
                "{path} ({mode}) is not readable and writable by this user"
            ),
            Cause::DeviceRefused { path } => write!(
                f,
                "opening {path} is refused although its mode allows this user: a device cgroup \
                 (a container's device policy) or an LSM"
            ),
            Cause::NoexecMount { path, mount } => {
                write!(f, "{path} is on {mount}, which is mounted noexec")
            }
            Cause::ExecRefusedByLsm { path } => write!(
                f,
                "{path} may be executed by its mode and mount, yet execve is refused: an LSM \
                 (Landlock, AppArmor, SELinux)"
            ),
            Cause::LandlockAbiTooOld { wanted } => match landlock_abi_kernel(*wanted) {
                Some(release) => write!(
                    f,
                    "the kernel's Landlock ABI is below {wanted} (ABI {wanted} came with Linux \
                     {release})"
                ),
                None => write!(
                    f,
                    "the kernel's Landlock ABI is below {wanted}, a version newer than this \
                     crate knows"
                ),
            },
            Cause::CgroupV2Missing { v1: true } => {
                f.write_str("only cgroup v1 is mounted: there is no cgroup v2 tree to delegate")
            }
            Cause::CgroupV2Missing { v1: false } => {
                f.write_str("no cgroup v2 tree is mounted for this process")
            }
            Cause::CgroupControllersMissing { hybrid: true, .. } => f.write_str(
                "the cpu, memory and pids controllers are bound to cgroup v1 hierarchies (a \
                 hybrid cgroup host), so no cgroup v2 subtree can use them",
            ),
            Cause::CgroupControllersMissing { path, .. } => write!(
                f,
                "the cpu, memory and pids controllers are not all enabled for the delegated \
                 subtree ({path})"
            ),
            Cause::CgroupNotDelegated { path } => write!(
                f,
                "this user may not create or join cgroups at {path}: its cgroup v2 subtree is \
                 not delegated to it"
            ),
            Cause::CgroupReadOnly { path } => {
                write!(f, "the cgroup v2 tree is mounted read-only ({path})")
            }
            Cause::RootIsRootfs => f.write_str(
                "this system's root is the initramfs rootfs, which pivot_root cannot move \
                 (EINVAL)",
            ),
            Cause::ProgramUnprivileged { path } => write!(
                f,
                "{path} has neither the setuid bit nor file capabilities, so it cannot write id \
                 maps for another process"
            ),
            Cause::ProgramFailed { program, message } => {
                write!(f, "{program} failed with its own message: {message}")
            }
            Cause::NoSubordinateIds { path, user } => {
                write!(f, "{path} has no range for {user}")
            }
            Cause::SubordinateRangeTooShort {
                path,
                user,
                start,
                count,
                wanted,
            } => write!(
                f,
                "{path} gives {user} {count} ids (from {start}), and the test maps {wanted} \
                 besides uid 0 (ids = {})",
                u64::from(*wanted) + 1
            ),
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
            Cause::DeniedByEnvironment => f.write_str("USERNS_TEST_DENY lists the ability"),
            Cause::BadConfiguration => f.write_str("the environment configuration is malformed"),
            Cause::UnsupportedSystem { os } => write!(
                f,
                "user namespaces are a Linux kernel feature; this host runs {os}"
            ),
            Cause::Unexplained => f.write_str(
                "no host fact, filter or limit explains it: an LSM (AppArmor, SELinux, Landlock, \
                 a BPF program) or a policy refused it; look for apparmor=\"DENIED\" or avc: \
                 denied in dmesg",
            ),
        }
    }
}

/// The Linux release that brought Landlock ABI `abi`, where known: the
/// kernel's `Documentation/userspace-api/landlock.rst` and the Landlock
/// maintainers' pull requests (ABI 8, `LANDLOCK_RESTRICT_SELF_TSYNC`, was
/// merged for 7.0). A later ABI is said to be newer than this crate knows.
pub(crate) fn landlock_abi_kernel(abi: u8) -> Option<&'static str> {
    Some(match abi {
        1 => "5.13",
        2 => "5.19",
        3 => "6.2",
        4 => "6.7",
        5 => "6.10",
        6 => "6.12",
        7 => "6.15",
        8 => "7.0",
        _ => return None,
    })
}

/// The Linux release that brought capability `constant` (`CAP_BPF`), for
/// the capabilities a kernel still in use may lack.
pub(crate) fn capability_kernel(constant: &str) -> Option<&'static str> {
    Some(match constant {
        "CAP_WAKE_ALARM" => "3.0",
        "CAP_BLOCK_SUSPEND" => "3.5",
        "CAP_AUDIT_READ" => "3.16",
        "CAP_PERFMON" | "CAP_BPF" => "5.8",
        "CAP_CHECKPOINT_RESTORE" => "5.9",
        _ => return None,
    })
}

impl Cause {
    /// The cause as reports show it: `{"id": ..., "message": ...}`.
    pub fn to_json(&self) -> Json {
        Json::object([
            ("id", Json::from(self.id())),
            ("message", self.to_string().into()),
        ])
    }
}
