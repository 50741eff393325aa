//! The vocabulary: what a test may require.
//!
//! Each [`Ability`] names an operation the test itself will perform; its
//! probe performs that same operation in a throwaway child process, so an
//! available ability means the test's own operation works on this host.

use std::fmt;
use std::str::FromStr;

/// An operation a test needs the host to allow.
///
/// Namespace abilities are probed the unprivileged way: in a child that
/// first creates a user namespace and maps the caller to root in it (the
/// steps of [`Ability::User`]), whatever the caller's real uid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ability {
    /// Create a user namespace and become root in it.
    ///
    /// Probe: `unshare(CLONE_NEWUSER)`; write `deny` to
    /// `/proc/self/setgroups`; write `0 <uid> 1` to `/proc/self/uid_map` and
    /// `0 <gid> 1` to `/proc/self/gid_map`.
    User,
    /// As root of a new user namespace, exercise `CAP_SYS_ADMIN` there.
    ///
    /// Probe: the [`User`](Ability::User) steps, then
    /// `unshare(CLONE_NEWNS)`, which needs `CAP_SYS_ADMIN` in the new user
    /// namespace (what AppArmor's `unprivileged_userns` profile denies).
    CapSysAdmin,
    /// Mount a filesystem in a private mount namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNS)`;
    /// `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)`; mount a `tmpfs` on
    /// `/tmp` (or `/` where `/tmp` is missing).
    Mount,
    /// A network namespace with a working loopback, as bubblewrap sets up.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNET)`;
    /// open a `NETLINK_ROUTE` socket and add `127.0.0.1/8` to `lo`
    /// (`RTM_NEWADDR`); bring `lo` up over netlink (`RTM_NEWLINK`, `IFF_UP`), as
    /// `ip link set lo up` and bubblewrap do.
    Net,
    /// A PID namespace with the child as PID 1 and a fresh procfs for it,
    /// as `bwrap --unshare-pid --proc /proc` does.
    ///
    /// Probe: `clone(CLONE_NEWUSER|CLONE_NEWPID)`; in the child (PID 1 of
    /// the new namespace) the map writes of [`User`](Ability::User);
    /// `unshare(CLONE_NEWNS)`; make `/` private; mount `proc` on `/proc`.
    /// Hosts that mask parts of `/proc` (containers) refuse the mount
    /// ("mount too revealing").
    Pid,
    /// An IPC namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWIPC)`.
    Ipc,
    /// A UTS namespace in which the hostname can be set.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWUTS)`;
    /// `sethostname("userns-test")`.
    Uts,
    /// A cgroup namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWCGROUP)`.
    Cgroup,
    /// A time namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWTIME)`.
    Time,
    /// A user namespace inside a user namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps, twice, the second time
    /// from inside the first namespace.
    Nested,
    /// Drop a capability from the bounding set (`PR_CAPBSET_DROP`), in the
    /// current user namespace.
    ///
    /// Probe: `prctl(PR_CAPBSET_DROP, cap)` in the child, with `cap` one
    /// already absent from the bounding set where there is one (a no-op
    /// that still needs `CAP_SETPCAP`), else the highest capability. Only
    /// the throwaway child's bounding set changes.
    CapSetpcap,
    /// Run bubblewrap with a new user namespace.
    ///
    /// Probe: `bwrap --die-with-parent --unshare-user --ro-bind / / true`,
    /// with `bwrap` from `USERNS_TEST_BWRAP` or `PATH`, started by a
    /// supervisor process of the probe (so nothing the test process does
    /// with its children can change the answer).
    Bwrap,
    /// Run bubblewrap with new user and network namespaces.
    ///
    /// Probe: `bwrap --die-with-parent --unshare-user --unshare-net
    /// --ro-bind / / true`.
    BwrapNet,
    /// Install a seccomp filter.
    ///
    /// Probe: `prctl(PR_SET_NO_NEW_PRIVS, 1)`; `seccomp(SECCOMP_SET_MODE_FILTER)`
    /// with a filter that allows every system call.
    Seccomp,
    /// Restrict the process with Landlock.
    ///
    /// Probe: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    /// (the ABI version, recorded in the verdict); create a ruleset handling
    /// `LANDLOCK_ACCESS_FS_EXECUTE`; `prctl(PR_SET_NO_NEW_PRIVS, 1)`;
    /// `landlock_restrict_self`.
    Landlock,
    /// Map a range of subordinate ids with `newuidmap`/`newgidmap`.
    ///
    /// Probe: find this user's ranges in `/etc/subuid` and `/etc/subgid`;
    /// create a user namespace in a child; run
    /// `newuidmap PID 0 UID 1 1 START COUNT` and the same with
    /// `newgidmap` for it.
    Subids,
    /// Real uid 0 in the initial user namespace.
    ///
    /// Probe: `getuid() == 0` and `/proc/self/uid_map` is the identity map
    /// `0 0 4294967295`. No child process.
    Root,
    /// Not root and without `CAP_SYS_ADMIN` in the initial user namespace:
    /// for code that must run as, or refuses to run as, a normal user.
    ///
    /// Probe: the real and effective uids are not 0 in the initial user
    /// namespace, and `CAP_SYS_ADMIN` is not effective there (a process in
    /// another user namespace holds no capability in the initial one). No
    /// child process.
    Unprivileged,
    /// NoNewPrivs is off, so setuid and file-capability programs
    /// (newuidmap, ping) gain their privileges when executed.
    ///
    /// Probe: `prctl(PR_GET_NO_NEW_PRIVS)` in a child is 0. Does not look at
    /// the program's mount (`nosuid`), see [`Program`](Ability::Program).
    NewPrivs,
    /// Use KVM from a new user namespace, as microVM sandboxes do.
    ///
    /// Probe: the [`User`](Ability::User) steps; open `/dev/kvm`
    /// read-write; `ioctl(KVM_GET_API_VERSION)` is 12;
    /// `ioctl(KVM_CREATE_VM, 0)`.
    Kvm,
    /// Create a tap device in a new network namespace, as pasta,
    /// slirp4netns and VMMs do.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNET)`;
    /// open `/dev/net/tun` read-write; `ioctl(TUNSETIFF)` with
    /// `IFF_TAP|IFF_NO_PI`.
    Tun,
    /// Mount a FUSE filesystem in a new user and mount namespace
    /// (fuse-overlayfs, rootless image tools).
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNS)`;
    /// make `/` private; open `/dev/fuse` read-write; mount `fuse` with
    /// that descriptor on `/tmp` (the kernel sends its `INIT` without
    /// waiting for a server; the child exits, which aborts the connection).
    Fuse,
    /// Mount overlayfs in a new user and mount namespace (rootless
    /// container storage).
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNS)`;
    /// make `/` private; a tmpfs on `/tmp` with `l`, `u`, `w` and `m` in it;
    /// mount `overlay` on `m` with `lowerdir=l,upperdir=u,workdir=w`.
    Overlay,
    /// `pivot_root` into a fresh tmpfs in a new user and mount namespace,
    /// as every container runtime does.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNS)`;
    /// make `/` private; a tmpfs on `/tmp` with `old` in it;
    /// `pivot_root("/tmp", "/tmp/old")`.
    PivotRoot,
    /// Create a child cgroup in this process's cgroup v2 subtree, with the
    /// `cpu`, `memory` and `pids` controllers available in it, and move a
    /// process into it (rootless Podman, `systemd --user`).
    ///
    /// Probe: find the cgroup v2 mount and this process's cgroup; check the
    /// controllers its children get (`cgroup.subtree_control` of this
    /// cgroup; nothing is enabled or changed); `mkdir` a child cgroup;
    /// write a probe child's pid to its `cgroup.procs`; remove it. On a
    /// cgroup v1 or hybrid host the reason says so.
    CgroupDelegation,
    /// A program, found on `PATH` (or at the absolute path given), that
    /// this process may execute.
    ///
    /// Probe: find it; in a child under a seccomp filter that kills it at
    /// the program's first system call, `execve` it: the program's own code
    /// never runs, and the exec is refused by exactly what would refuse it
    /// (mode bits, a `noexec` mount, Landlock or another LSM).
    Program(&'static str),
    /// Landlock with at least this ABI version (network rules need 4).
    ///
    /// Probe: the [`Landlock`](Ability::Landlock) steps; the ABI they read
    /// is at least this one.
    LandlockAbi(u8),
    /// Landlock with exactly this ABI version.
    ///
    /// Probe: as [`LandlockAbi`](Ability::LandlockAbi); the ABI they read
    /// is this one.
    LandlockAbiExactly(u8),
    /// A kernel whose Landlock ABI is below this version, or that has no
    /// Landlock at all: for a fallback path that runs where a feature is
    /// missing.
    ///
    /// Probe: the Landlock version query answers with a lower ABI, or says
    /// Landlock is not built in (`ENOSYS`) or not enabled (`EOPNOTSUPP`). A
    /// query refused by a filter, or that could not run, is "no": what
    /// the kernel has is then unknown.
    LandlockAbiBelow(u8),
    /// The capability (its number, as `capabilities(7)` gives it) in this
    /// process's effective set, in the user namespace the test runs in:
    /// what a test checks before `ptrace`, raw sockets or `mount` as root.
    ///
    /// Probe: read the thread's capability sets (`CapEff`, `CapPrm`,
    /// `CapBnd`) and `cap_last_cap`; no child process. Not the same as
    /// [`CapSysAdmin`](Ability::CapSysAdmin), which is `CAP_SYS_ADMIN` in
    /// a new user namespace of the test's own.
    Cap(u8),
    /// A running kernel of at least this release.
    ///
    /// Probe: the release (`/proc/sys/kernel/osrelease`), its leading
    /// numbers compared numerically. Prefer an ability that probes the
    /// feature itself where there is one (`landlock(abi >= N)`,
    /// `overlay`): distributions backport features to older releases.
    Kernel(KernelVersion),
}

/// A kernel release as `kernel(>= X.Y.Z)` names it: its three leading
/// numbers (`6.1` is `6.1.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelVersion {
    /// `6` in `6.1.5`.
    pub major: u16,
    /// `1` in `6.1.5`.
    pub minor: u16,
    /// `5` in `6.1.5`; 0 where not given.
    pub patch: u16,
    /// Whether the patch level was written (`6.1.0` rather than `6.1`),
    /// so the name reads as written.
    pub with_patch: bool,
}

impl KernelVersion {
    /// `X.Y` or `X.Y.Z`, decimal numbers up to 65535 and nothing else.
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let parts: Vec<&str> = text.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let mut numbers = [0u16; 3];
        for (n, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *n = part.parse().ok()?;
        }
        Some(KernelVersion {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            with_patch: parts.len() == 3,
        })
    }

    /// The leading numbers of a release string as the kernel gives it:
    /// `6.18.44-fc-v1252` is 6.18.44, `5.14.0-427.el9.x86_64` is 5.14.0,
    /// `6.1` is 6.1.0.
    pub fn of_release(release: &str) -> Option<KernelVersion> {
        let mut numbers = [0u16; 3];
        let mut given = 0;
        for (n, part) in numbers.iter_mut().zip(release.split('.')) {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            *n = digits.parse().ok()?;
            given += 1;
            if digits.len() != part.len() {
                break;
            }
        }
        (given >= 2).then_some(KernelVersion {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            with_patch: true,
        })
    }

    /// The three numbers, for comparing.
    pub fn numbers(self) -> (u16, u16, u16) {
        (self.major, self.minor, self.patch)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.with_patch {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

impl Ability {
    /// Every ability without a parameter, in declaration order (with
    /// [`Program`](Ability::Program) and
    /// [`LandlockAbi`](Ability::LandlockAbi), the whole vocabulary).
    pub const ALL: [Ability; 25] = [
        Ability::User,
        Ability::CapSysAdmin,
        Ability::Mount,
        Ability::Net,
        Ability::Pid,
        Ability::Ipc,
        Ability::Uts,
        Ability::Cgroup,
        Ability::Time,
        Ability::Nested,
        Ability::CapSetpcap,
        Ability::Bwrap,
        Ability::BwrapNet,
        Ability::Seccomp,
        Ability::Landlock,
        Ability::Subids,
        Ability::Root,
        Ability::Unprivileged,
        Ability::NewPrivs,
        Ability::Kvm,
        Ability::Tun,
        Ability::Fuse,
        Ability::Overlay,
        Ability::PivotRoot,
        Ability::CgroupDelegation,
    ];

    /// The name used in `#[requires_userns(...)]`, environment variables
    /// and reports: `net`, `program(pasta)`, `landlock(abi>=4)`.
    pub fn name(self) -> &'static str {
        match self {
            Ability::User => "user",
            Ability::CapSysAdmin => "cap_sys_admin",
            Ability::Mount => "mount",
            Ability::Net => "net",
            Ability::Pid => "pid",
            Ability::Ipc => "ipc",
            Ability::Uts => "uts",
            Ability::Cgroup => "cgroup",
            Ability::Time => "time",
            Ability::Nested => "nested",
            Ability::CapSetpcap => "cap_setpcap",
            Ability::Bwrap => "bwrap",
            Ability::BwrapNet => "bwrap_net",
            Ability::Seccomp => "seccomp",
            Ability::Landlock => "landlock",
            Ability::Subids => "subids",
            Ability::Root => "root",
            Ability::Unprivileged => "unprivileged",
            Ability::NewPrivs => "new_privs",
            Ability::Kvm => "kvm",
            Ability::Tun => "tun",
            Ability::Fuse => "fuse",
            Ability::Overlay => "overlay",
            Ability::PivotRoot => "pivot_root",
            Ability::CgroupDelegation => "cgroup_delegation",
            Ability::Program(p) => intern(format!("program({p})")),
            Ability::LandlockAbi(abi) => intern(format!("landlock(abi>={abi})")),
            Ability::LandlockAbiExactly(abi) => intern(format!("landlock(abi=={abi})")),
            Ability::LandlockAbiBelow(abi) => intern(format!("landlock(abi<{abi})")),
            Ability::Cap(cap) => match crate::capability::name(cap) {
                Some(name) => intern(format!("cap({name})")),
                None => intern(format!("cap({cap})")),
            },
            Ability::Kernel(version) => intern(format!("kernel(>={version})")),
        }
    }

    /// Position in [`Ability::ALL`], for per-ability tables; `None` for a
    /// parameterised ability.
    pub fn index(self) -> Option<usize> {
        Ability::ALL.iter().position(|a| *a == self)
    }

    /// One line saying what the probe does, for tables and reports.
    pub fn operation(self) -> &'static str {
        match self {
            Ability::User => "create a user namespace and become root in it",
            Ability::CapSysAdmin => "use CAP_SYS_ADMIN in a new user namespace",
            Ability::Mount => "mount a tmpfs in a private mount namespace",
            Ability::Net => "network namespace with loopback up and addressed",
            Ability::Pid => "PID namespace with a fresh /proc",
            Ability::Ipc => "IPC namespace",
            Ability::Uts => "UTS namespace and sethostname",
            Ability::Cgroup => "cgroup namespace",
            Ability::Time => "time namespace",
            Ability::Nested => "user namespace inside a user namespace",
            Ability::CapSetpcap => "drop from the capability bounding set",
            Ability::Bwrap => "bwrap --unshare-user",
            Ability::BwrapNet => "bwrap --unshare-user --unshare-net",
            Ability::Seccomp => "install a seccomp filter",
            Ability::Landlock => "restrict with Landlock",
            Ability::Subids => "map subordinate ids (newuidmap/newgidmap)",
            Ability::Root => "real uid 0 in the initial user namespace",
            Ability::Unprivileged => "not root, no CAP_SYS_ADMIN in the initial user namespace",
            Ability::NewPrivs => "NoNewPrivs off: setuid programs gain privileges",
            Ability::Kvm => "create a KVM virtual machine from a user namespace",
            Ability::Tun => "create a tap device in a new network namespace",
            Ability::Fuse => "mount a FUSE filesystem in a user namespace",
            Ability::Overlay => "mount overlayfs in a user namespace",
            Ability::PivotRoot => "pivot_root into a tmpfs in a user namespace",
            Ability::CgroupDelegation => "create and join a child cgroup v2 with cpu, memory, pids",
            Ability::Program(_) => "execute a program",
            Ability::LandlockAbi(_) => "restrict with Landlock of at least an ABI",
            Ability::LandlockAbiExactly(_) => "restrict with Landlock of exactly an ABI",
            Ability::LandlockAbiBelow(_) => {
                "a kernel whose Landlock is older than an ABI, or absent"
            }
            Ability::Cap(_) => "a capability in this process's effective set",
            Ability::Kernel(_) => "a kernel release of at least a version",
        }
    }

    /// Whether the probe runs `user`'s whole program first, in the same
    /// kind of child (`unshare(CLONE_NEWUSER)`, the caller mapped to root:
    /// see `probe::perform::program`), then more: one found available saw
    /// `user` work. Not `pid` (its child is cloned into the namespaces)
    /// nor `subids` (it runs programs).
    pub(crate) fn probe_runs_user_first(self) -> bool {
        self.needs_user_namespace()
            && !matches!(self, Ability::User | Ability::Pid | Ability::Subids)
    }

    /// Whether the probe starts from a new user namespace.
    pub fn needs_user_namespace(self) -> bool {
        matches!(
            self,
            Ability::User
                | Ability::CapSysAdmin
                | Ability::Mount
                | Ability::Net
                | Ability::Pid
                | Ability::Ipc
                | Ability::Uts
                | Ability::Cgroup
                | Ability::Time
                | Ability::Nested
                | Ability::Subids
                | Ability::Kvm
                | Ability::Tun
                | Ability::Fuse
                | Ability::Overlay
                | Ability::PivotRoot
        )
    }

    /// Whether the probe runs a program found on the host (bubblewrap,
    /// newuidmap, a `program(...)`), rather than only system calls.
    pub fn is_external(self) -> bool {
        matches!(
            self,
            Ability::Bwrap | Ability::BwrapNet | Ability::Subids | Ability::Program(_)
        )
    }
}

/// A parameterised ability's name, kept for the life of the process (a
/// binary names a handful).
fn intern(name: String) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.push(leaked);
    leaked
}

impl fmt::Display for Ability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an [`Ability`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAbility {
    /// The word that was given.
    pub name: String,
    /// The closest valid name, when one is close enough to be a typo.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for UnknownAbility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown ability `{}`", self.name)?;
        match self.suggestion {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None => {
                let names: Vec<&str> = Ability::ALL.iter().map(|a| a.name()).collect();
                write!(
                    f,
                    "; known abilities: {}, program(NAME), landlock(abi>=N), landlock(abi==N), \
                     landlock(abi<N), cap(NAME), kernel(>=X.Y)",
                    names.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for UnknownAbility {}

impl FromStr for Ability {
    type Err = UnknownAbility;

    /// A name as `name()` writes it: `net`, `program(pasta)` (or
    /// `program("pasta")`), `landlock(abi>=4)`, `landlock(abi==4)`,
    /// `landlock(abi<4)`, `cap(sys_ptrace)` (or `cap(CAP_SYS_PTRACE)`),
    /// `kernel(>=6.1)`; spaces are allowed, as the attribute writes them
    /// (`landlock(abi >= 4)`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(found) = Ability::ALL.into_iter().find(|a| a.name() == name) {
            return Ok(found);
        }
        let unknown = || UnknownAbility {
            name: name.to_owned(),
            suggestion: closest_name(name),
        };
        let compact: String = name.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(found) = Ability::ALL.into_iter().find(|a| a.name() == compact) {
            return Ok(found);
        }
        let Some((family, argument)) = compact.strip_suffix(')').and_then(|r| r.split_once('('))
        else {
            return Err(unknown());
        };
        parameterised(family, argument).ok_or_else(unknown)
    }
}

/// `family(argument)`, when it is one of the parameterised abilities.
fn parameterised(family: &str, argument: &str) -> Option<Ability> {
    match family {
        "program" => {
            let program = argument.trim_matches('"');
            valid_program(program).ok()?;
            Some(Ability::Program(intern(program.to_owned())))
        }
        "landlock" => {
            let abi = |n: &str| n.parse::<u8>().ok().filter(|&abi| abi >= 1);
            if let Some(n) = argument.strip_prefix("abi>=") {
                Some(Ability::LandlockAbi(abi(n)?))
            } else if let Some(n) = argument.strip_prefix("abi==") {
                Some(Ability::LandlockAbiExactly(abi(n)?))
            } else if let Some(n) = argument.strip_prefix("abi<") {
                // `abi < 1` would be "no Landlock": `landlock` unavailable.
                Some(Ability::LandlockAbiBelow(abi(n).filter(|&n| n >= 2)?))
            } else {
                None
            }
        }
        "cap" => {
            let cap = crate::capability::from_name(argument)
                .or_else(|| argument.parse::<u8>().ok().filter(|&n| n < 64))?;
            Some(Ability::Cap(cap))
        }
        "kernel" => Some(Ability::Kernel(KernelVersion::parse(
            argument.strip_prefix(">=")?,
        )?)),
        _ => None,
    }
}

/// Whether `program` can name a program: a bare name (looked up on
/// `PATH`) or an absolute path, without NUL, newline or a relative path.
pub fn valid_program(program: &str) -> Result<(), &'static str> {
    if program.is_empty() {
        return Err("the program's name is empty");
    }
    if program.contains(['\0', '\n', '\r']) {
        return Err("the program's name holds a NUL or a line break");
    }
    if program.contains('/') && !program.starts_with('/') {
        return Err("a path must be absolute; a bare name is looked up on PATH");
    }
    Ok(())
}

/// The valid ability name closest to `word`, if it is close enough to be a
/// typo (edit distance at most a third of its length, at least 1), or one
/// contains the other (`netns` -> `net`). A parameterised word gets a
/// suggestion only of the same parameter (`landlok(abi>=4)` ->
/// `landlock(abi>=4)`, `cap(sys_ptrce)` -> `cap(sys_ptrace)`), never a
/// wider name: a typo in a denied `landlock(abi>=4)` must not become
/// `landlock`.
pub(crate) fn closest_name(word: &str) -> Option<&'static str> {
    let word: String = word
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if let Some((family, rest)) = word.split_once('(') {
        return closest_parameterised(family, rest);
    }
    let limit = (word.len() / 3).max(1);
    Ability::ALL
        .iter()
        .map(|a| (edit_distance(&word, a.name()), a.name()))
        .filter(|&(d, name)| {
            d <= limit || (name.len() >= 3 && (word.contains(name) || name.contains(&word)))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// The parameterised families, for suggestions.
const FAMILIES: [&str; 4] = ["program", "landlock", "cap", "kernel"];

fn closest_parameterised(family: &str, rest: &str) -> Option<&'static str> {
    let argument = rest.strip_suffix(')').unwrap_or(rest);
    let families: Vec<&str> = FAMILIES
        .iter()
        .copied()
        .filter(|f| edit_distance(family, f) <= (f.len() / 3).max(1))
        .collect();
    for f in families {
        if let Some(a) = parameterised(f, argument) {
            return Some(a.name());
        }
        // `cap(...)` with a misspelt capability: the closest name.
        if f == "cap" {
            let bare = argument.strip_prefix("cap_").unwrap_or(argument);
            let close = crate::capability::NAMES
                .iter()
                .map(|n| (edit_distance(bare, n), *n))
                .filter(|&(d, n)| d <= (n.len() / 3).max(1))
                .min_by_key(|&(d, _)| d);
            if let Some((_, n)) = close {
                return Some(intern(format!("cap({n})")));
            }
        }
    }
    None
}

/// Optimal-string-alignment distance: edits plus adjacent transpositions,
/// so `nte` is one step from `net`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Ability::ALL {
            assert_eq!(a.name().parse::<Ability>(), Ok(a));
            assert_eq!(a.index().map(|i| Ability::ALL[i]), Some(a));
        }
        for a in [
            Ability::Program("pasta"),
            Ability::Program("/usr/bin/newgidmap"),
            Ability::LandlockAbi(4),
        ] {
            assert_eq!(a.name().parse::<Ability>(), Ok(a), "{a}");
            assert_eq!(a.index(), None);
        }
        assert_eq!(Ability::Program("pasta").name(), "program(pasta)");
        assert_eq!("program(\"pasta\")".parse(), Ok(Ability::Program("pasta")));
        assert_eq!("landlock(abi >= 4)".parse(), Ok(Ability::LandlockAbi(4)));
        assert!("program(bin/x)".parse::<Ability>().is_err());
        assert!("landlock(abi>=0)".parse::<Ability>().is_err());
        for (text, ability) in [
            ("landlock(abi == 3)", Ability::LandlockAbiExactly(3)),
            ("landlock(abi<4)", Ability::LandlockAbiBelow(4)),
            ("cap(sys_ptrace)", Ability::Cap(19)),
            ("cap(CAP_NET_RAW)", Ability::Cap(13)),
            ("cap( cap_sys_admin )", Ability::Cap(21)),
            (
                "kernel(>= 6.1)",
                Ability::Kernel(KernelVersion::parse("6.1").unwrap()),
            ),
            (
                "kernel(>=5.10.3)",
                Ability::Kernel(KernelVersion::parse("5.10.3").unwrap()),
            ),
        ] {
            assert_eq!(text.parse(), Ok(ability), "{text}");
            assert_eq!(ability.name().parse(), Ok(ability), "{ability}");
        }
        assert_eq!(Ability::Cap(19).name(), "cap(sys_ptrace)");
        assert_eq!(
            Ability::Kernel(KernelVersion::parse("6.1").unwrap()).name(),
            "kernel(>=6.1)"
        );
        for bad in [
            "landlock(abi<1)",
            "cap(sys_ptrce)",
            "cap(64)",
            "kernel(>=6)",
            "kernel(>=6.1.2.3)",
            "kernel(6.1)",
            "kernel(>=6.x)",
        ] {
            assert!(bad.parse::<Ability>().is_err(), "{bad}");
        }
    }

    #[test]
    fn kernel_releases_compare_by_their_numbers() {
        let v = |s| KernelVersion::of_release(s).unwrap().numbers();
        assert_eq!(v("6.18.44-fc-v1252"), (6, 18, 44));
        assert_eq!(v("5.14.0-427.el9.x86_64"), (5, 14, 0));
        assert_eq!(v("6.1"), (6, 1, 0));
        assert_eq!(v("4.19.0+"), (4, 19, 0));
        assert!(v("6.10.0") > v("6.9.12"));
        assert_eq!(KernelVersion::of_release("garbage"), None);
        assert_eq!(KernelVersion::of_release("6"), None);
    }

    /// A typo in a parameterised name is never answered with a wider one.
    #[test]
    fn suggestions_never_widen() {
        assert_eq!(closest_name("landlok(abi>=4)"), Some("landlock(abi>=4)"));
        assert_eq!(closest_name("landlock(abi>=4"), Some("landlock(abi>=4)"));
        assert_eq!(closest_name("cap(sys_ptrce)"), Some("cap(sys_ptrace)"));
        assert_eq!(closest_name("landlock(abi=>4)"), None);
        let e = "landlock(abi>4)".parse::<Ability>().unwrap_err();
        assert_eq!(e.suggestion, None);
    }

    #[test]
    fn typos_get_suggestions() {
        let e = "nte".parse::<Ability>().unwrap_err();
        assert_eq!(e.suggestion, Some("net"));
        assert_eq!(e.to_string(), "unknown ability `nte`; did you mean `net`?");
        assert_eq!(closest_name("cap_sysadmin"), Some("cap_sys_admin"));
        assert_eq!(closest_name("netns"), Some("net"));
        assert_eq!(closest_name("bwrapnet"), Some("bwrap_net"));
        let far = "xyzzy".parse::<Ability>().unwrap_err();
        assert_eq!(far.suggestion, None);
        assert!(
            far.to_string()
                .contains("known abilities: user, cap_sys_admin")
        );
    }
}
