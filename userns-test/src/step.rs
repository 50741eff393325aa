//! What a probe tried: one [`Step`] per system call or command, so a
//! verdict can say exactly which operation the host refused.

use std::fmt;

use crate::json::Json;

/// One operation of a probe, named the way `strace` or a man page would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Creating the probe child: `clone(2)` with these flags.
    Clone {
        /// The flags, e.g. `CLONE_VM|CLONE_NEWUSER|CLONE_NEWPID`.
        flags: String,
    },
    /// `unshare(2)` with these flags, e.g. `CLONE_NEWUSER`.
    Unshare {
        /// The flags.
        flags: String,
    },
    /// Opening a file for writing (e.g. `/proc/self/setgroups`).
    OpenForWriting {
        /// The file.
        path: String,
    },
    /// Writing to a file (e.g. a uid map).
    Write {
        /// The file.
        path: String,
        /// What was written.
        data: String,
    },
    /// `mount(2)`.
    Mount {
        /// What was mounted where, e.g. `tmpfs on /tmp`.
        what: String,
    },
    /// `sethostname(2)`.
    SetHostname,
    /// `prctl(PR_CAPBSET_DROP, cap)`.
    CapBsetDrop {
        /// The capability number.
        cap: u32,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    SetNoNewPrivs,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    SeccompSetModeFilter,
    /// `landlock_create_ruleset(.., LANDLOCK_CREATE_RULESET_VERSION)`.
    LandlockAbiVersion,
    /// `landlock_create_ruleset` with a real ruleset.
    LandlockCreateRuleset,
    /// `landlock_restrict_self`.
    LandlockRestrictSelf,
    /// Opening a socket, e.g. `NETLINK_ROUTE`.
    Socket {
        /// Which socket, e.g. `AF_NETLINK, NETLINK_ROUTE`.
        domain: String,
    },
    /// Adding `127.0.0.1/8` to the loopback over netlink (`RTM_NEWADDR`).
    LoopbackAddAddress,
    /// Bringing the loopback up over netlink (`RTM_NEWLINK`, `IFF_UP`).
    LoopbackUp,
    /// Telling the parent the child is ready, or waiting for it.
    Handshake,
    /// Finding a program (on `PATH` or at a configured path).
    FindProgram {
        /// The program.
        program: String,
    },
    /// Starting a program (`execve`).
    Exec {
        /// The program's path: `execve` fails on it, whatever the arguments.
        program: String,
    },
    /// Running a program to completion.
    Run {
        /// The program's path.
        program: String,
        /// The command line.
        command: String,
    },
    /// Looking up this user's subordinate id ranges.
    ReadSubids {
        /// `/etc/subuid` or `/etc/subgid`.
        path: String,
        /// The user's name, or the uid where it has none.
        user: String,
    },
    /// Checking the real uid and the user namespace.
    CheckUid,
    /// Checking the operating system (user namespaces are Linux's).
    CheckSystem,
    /// Checking the uids and the effective capabilities (`unprivileged`).
    CheckPrivilege,
    /// Checking that every capability the kernel knows is effective
    /// (`root`).
    CheckCapabilities,
    /// Checking one capability in the thread's effective set (`cap(...)`).
    CheckCapability {
        /// `CAP_SYS_PTRACE`.
        capability: String,
    },
    /// Comparing the running kernel's release (`kernel(...)`).
    CheckKernel {
        /// The release wanted, at least: `6.1`.
        wanted: String,
    },
    /// `prctl(PR_GET_NO_NEW_PRIVS)`.
    GetNoNewPrivs,
    /// Opening a device node read-write (`/dev/kvm`, `/dev/net/tun`,
    /// `/dev/fuse`).
    OpenDevice {
        /// The device node.
        path: String,
    },
    /// An `ioctl` on an open device.
    Ioctl {
        /// The request, e.g. `TUNSETIFF`.
        request: String,
    },
    /// Creating a directory.
    Mkdir {
        /// The directory.
        path: String,
    },
    /// `pivot_root(new_root, put_old)`.
    PivotRoot {
        /// The new root.
        new_root: String,
    },
    /// Finding the cgroup v2 hierarchy and this process's cgroup in it.
    FindCgroup,
    /// Reading a file (a cgroup's controllers).
    ReadFile {
        /// The file.
        path: String,
    },
    /// Installing the seccomp filter that stops a program at its first
    /// system call, before `execve` (`program(...)`).
    StopProgramFilter,
    /// Reading the crate's configuration from the environment.
    ReadEnvironment {
        /// The variable.
        variable: String,
    },
}

impl Step {
    /// The step as reports show it: `{"kind": "<variant in snake_case>",
    /// <its fields>}`.
    pub fn to_json(&self) -> Json {
        let t = |kind: &str| Json::tagged("kind", kind);
        match self {
            Step::Clone { flags } => t("clone").with("flags", flags),
            Step::Unshare { flags } => t("unshare").with("flags", flags),
            Step::OpenForWriting { path } => t("open_for_writing").with("path", path),
            Step::Write { path, data } => t("write").with("path", path).with("data", data),
            Step::Mount { what } => t("mount").with("what", what),
            Step::SetHostname => t("set_hostname"),
            Step::CapBsetDrop { cap } => t("cap_bset_drop").with("cap", *cap),
            Step::SetNoNewPrivs => t("set_no_new_privs"),
            Step::SeccompSetModeFilter => t("seccomp_set_mode_filter"),
            Step::LandlockAbiVersion => t("landlock_abi_version"),
            Step::LandlockCreateRuleset => t("landlock_create_ruleset"),
            Step::LandlockRestrictSelf => t("landlock_restrict_self"),
            Step::Socket { domain } => t("socket").with("domain", domain),
            Step::LoopbackAddAddress => t("loopback_add_address"),
            Step::LoopbackUp => t("loopback_up"),
            Step::Handshake => t("handshake"),
            Step::FindProgram { program } => t("find_program").with("program", program),
            Step::Exec { program } => t("exec").with("program", program),
            Step::Run { program, command } => {
                t("run").with("program", program).with("command", command)
            }
            Step::ReadSubids { path, user } => {
                t("read_subids").with("path", path).with("user", user)
            }
            Step::CheckUid => t("check_uid"),
            Step::CheckSystem => t("check_system"),
            Step::CheckPrivilege => t("check_privilege"),
            Step::CheckCapabilities => t("check_capabilities"),
            Step::CheckCapability { capability } => {
                t("check_capability").with("capability", capability)
            }
            Step::CheckKernel { wanted } => t("check_kernel").with("wanted", wanted),
            Step::GetNoNewPrivs => t("get_no_new_privs"),
            Step::OpenDevice { path } => t("open_device").with("path", path),
            Step::Ioctl { request } => t("ioctl").with("request", request),
            Step::Mkdir { path } => t("mkdir").with("path", path),
            Step::PivotRoot { new_root } => t("pivot_root").with("new_root", new_root),
            Step::FindCgroup => t("find_cgroup"),
            Step::ReadFile { path } => t("read_file").with("path", path),
            Step::StopProgramFilter => t("stop_program_filter"),
            Step::ReadEnvironment { variable } => t("read_environment").with("variable", variable),
        }
    }

    /// Whether this step creates namespaces (`clone` or `unshare` with
    /// namespace flags), and with `CLONE_NEWUSER` among them when `user`.
    pub fn creates_namespace(&self, user: bool) -> bool {
        match self {
            Step::Clone { flags } | Step::Unshare { flags } => {
                flags.contains("CLONE_NEW") && (!user || flags.contains("CLONE_NEWUSER"))
            }
            _ => false,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Clone { flags } => write!(f, "clone({flags})"),
            Step::Unshare { flags } => write!(f, "unshare({flags})"),
            Step::OpenForWriting { path } => write!(f, "opening {path} for writing"),
            Step::Write { path, data } => write!(f, "writing \"{data}\" to {path}"),
            Step::Mount { what } => write!(f, "mount({what})"),
            Step::SetHostname => f.write_str("sethostname(\"userns-test\")"),
            Step::CapBsetDrop { cap } => write!(f, "prctl(PR_CAPBSET_DROP, {cap})"),
            Step::SetNoNewPrivs => f.write_str("prctl(PR_SET_NO_NEW_PRIVS, 1)"),
            Step::SeccompSetModeFilter => f.write_str("seccomp(SECCOMP_SET_MODE_FILTER)"),
            Step::LandlockAbiVersion => {
                f.write_str("landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION)")
            }
            Step::LandlockCreateRuleset => f.write_str("landlock_create_ruleset"),
            Step::LandlockRestrictSelf => f.write_str("landlock_restrict_self"),
            Step::Socket { domain } => write!(f, "socket({domain})"),
            Step::LoopbackAddAddress => {
                f.write_str("loopback: adding 127.0.0.1/8 to lo (netlink RTM_NEWADDR)")
            }
            Step::LoopbackUp => f.write_str("loopback: bringing lo up (netlink RTM_NEWLINK)"),
            Step::Handshake => f.write_str("handshake between probe parent and child"),
            Step::FindProgram { program } => write!(f, "finding {program}"),
            Step::Exec { program } => write!(f, "executing {program}"),
            Step::Run { command, .. } => write!(f, "running `{command}`"),
            Step::ReadSubids { path, user } => write!(f, "looking up {user} in {path}"),
            Step::CheckUid => f.write_str("checking the real uid and user namespace"),
            Step::CheckSystem => f.write_str("checking the operating system"),
            Step::CheckPrivilege => {
                f.write_str("checking the uids and capabilities in the initial user namespace")
            }
            Step::CheckCapabilities => f.write_str("checking every capability is effective"),
            Step::CheckCapability { capability } => {
                write!(f, "checking {capability} in the effective set")
            }
            Step::CheckKernel { wanted } => write!(f, "checking the kernel is at least {wanted}"),
            Step::GetNoNewPrivs => f.write_str("prctl(PR_GET_NO_NEW_PRIVS)"),
            Step::OpenDevice { path } => write!(f, "opening {path} read-write"),
            Step::Ioctl { request } => write!(f, "ioctl({request})"),
            Step::Mkdir { path } => write!(f, "mkdir({path})"),
            Step::PivotRoot { new_root } => write!(f, "pivot_root({new_root}, {new_root}/old)"),
            Step::FindCgroup => f.write_str("finding this process's cgroup v2"),
            Step::ReadFile { path } => write!(f, "reading {path}"),
            Step::StopProgramFilter => f.write_str(
                "seccomp(SECCOMP_SET_MODE_FILTER) stopping the program at its first system call",
            ),
            Step::ReadEnvironment { variable } => write!(f, "reading {variable}"),
        }
    }
}

linux! {
    /// Renders namespace and clone flags as `CLONE_NEWUSER|CLONE_NEWNET`.
    pub(crate) fn clone_flag_names(flags: libc::c_int) -> String {
        const NAMES: [(libc::c_int, &str); 11] = [
            (libc::CLONE_VM, "CLONE_VM"),
            (libc::CLONE_VFORK, "CLONE_VFORK"),
            (libc::CLONE_PIDFD, "CLONE_PIDFD"),
            (libc::CLONE_NEWUSER, "CLONE_NEWUSER"),
            (libc::CLONE_NEWNS, "CLONE_NEWNS"),
            (libc::CLONE_NEWNET, "CLONE_NEWNET"),
            (libc::CLONE_NEWPID, "CLONE_NEWPID"),
            (libc::CLONE_NEWIPC, "CLONE_NEWIPC"),
            (libc::CLONE_NEWUTS, "CLONE_NEWUTS"),
            (libc::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
            (libc::CLONE_NEWTIME, "CLONE_NEWTIME"),
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            "0".into()
        } else {
            names.join("|")
        }
    }
}
