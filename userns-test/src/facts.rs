//! Host facts: what the kernel, the LSMs and the container runtime say about
//! this process. Read, never written. They explain a failed probe; they never
//! replace one (a sysctl says a restriction may apply, only the operation
//! says whether it does).

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use crate::json::Json;

/// The identity map of the initial user namespace.
const INITIAL_UID_MAP: &str = "0 0 4294967295";

/// Facts about the host and this process, gathered from `/proc`, `/sys` and
/// `/etc`. A field is `None` where the source is absent (a sysctl this
/// kernel does not have) or could not be read; the sources that exist but
/// could not be read are in [`HostFacts::unreadable`], with the error. An
/// unknown fact never counts as good news: `root` is unavailable when
/// `/proc/self/uid_map` cannot be read, and no cause is named from a fact
/// that is not known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `uname -r`, from `/proc/sys/kernel/osrelease`.
    pub kernel_release: Option<String>,
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub distro: Option<String>,
    /// Host name, from `/proc/sys/kernel/hostname`.
    pub hostname: Option<String>,
    /// Real uid of this process (`getresuid`: always known).
    pub uid: u32,
    /// Effective uid of this process.
    pub euid: u32,
    /// Real gid of this process (`getresgid`).
    pub gid: u32,
    /// Effective gid of this process.
    pub egid: u32,
    /// Supplementary groups of this process.
    pub groups: Vec<u32>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+).
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_unconfined` (Ubuntu 24.04+).
    pub apparmor_restrict_unprivileged_unconfined: Option<u64>,
    /// `kernel.unprivileged_userns_clone` (Debian and Ubuntu patch).
    pub unprivileged_userns_clone: Option<u64>,
    /// `user.max_user_namespaces`, as seen from this process's user
    /// namespace (the limit is per namespace).
    pub max_user_namespaces: Option<u64>,
    /// Every `user.max_*_namespaces` this kernel has, by sysctl name (e.g.
    /// `user.max_net_namespaces`), as seen from this user namespace.
    pub namespace_limits: std::collections::BTreeMap<String, u64>,
    /// `kernel.cap_last_cap`.
    pub cap_last_cap: Option<u32>,
    /// `Seccomp:` of `/proc/self/status`: 0 none, 1 strict, 2 filter.
    pub seccomp_mode: Option<u8>,
    /// `NoNewPrivs:` of `/proc/self/status`.
    pub no_new_privs: Option<bool>,
    /// `CapEff:` of `/proc/self/status`.
    pub cap_effective: Option<u64>,
    /// `CapBnd:` of `/proc/self/status`.
    pub cap_bounding: Option<u64>,
    /// `CapPrm:` of `/proc/self/status`.
    pub cap_permitted: Option<u64>,
    /// The active LSMs, from `/sys/kernel/security/lsm` (needs securityfs).
    pub lsms: Option<Vec<String>>,
    /// This process's AppArmor label (`unconfined`, a profile name, ...).
    pub apparmor_label: Option<String>,
    /// `/proc/self/uid_map`, whitespace-normalised, one line per `;`.
    pub uid_map: Option<String>,
    /// Whether this process is inside a user namespace other than the
    /// initial one (its uid map is not `0 0 4294967295`).
    pub in_user_namespace: Option<bool>,
    /// The container this process appears to run in (`docker`, `podman`,
    /// `lxc`, `kubernetes`, `systemd-nspawn`, `wsl`, ...).
    pub container: Option<String>,
    /// Mounts over parts of `/proc` (a container runtime masking it), which
    /// make the kernel refuse a fresh procfs as too revealing.
    pub proc_overmounts: Vec<String>,
    /// Whether `/proc` is mounted read-only for this process.
    pub proc_read_only: bool,
    /// Where the cgroup v2 hierarchy is mounted, if it is.
    pub cgroup_v2_mount: Option<String>,
    /// Whether cgroup v1 hierarchies are mounted (alone, or beside v2: a
    /// hybrid host).
    pub cgroup_v1: bool,
    /// The filesystem type of `/` (`rootfs` on an initramfs-only system).
    pub root_fstype: Option<String>,
    /// Whether this process may open one of its own `/proc` files for
    /// writing (`/proc/self/comm`): the control that tells "writes to /proc
    /// are refused" (Landlock, a read-only mount) from a capability denied
    /// inside a new user namespace. `None` when the check could not say
    /// (an error that is not a refusal).
    pub proc_writable: Option<bool>,
    /// Whether this process is dumpable (`PR_GET_DUMPABLE`): a process that
    /// is not has `/proc` files owned by root, and cannot write its id maps.
    pub dumpable: Option<bool>,
    /// The soft `RLIMIT_NPROC`, when it is not unlimited.
    pub rlimit_nproc: Option<u64>,
    /// The soft `RLIMIT_NOFILE`.
    pub rlimit_nofile: Option<u64>,
    /// Whether this process's root is not the root of its mount namespace
    /// (chroot): the kernel refuses user namespaces to chrooted processes.
    pub chrooted: Option<bool>,
    /// The CI runner, where the environment names one (GitHub Actions,
    /// GitLab, Buildkite, Jenkins, CircleCI).
    pub ci_runner: Option<String>,
    /// Sources that exist but could not be read, with the error (e.g.
    /// `/proc/self/uid_map`: `Too many open files (os error 24)`): the facts
    /// from them are unknown.
    pub unreadable: std::collections::BTreeMap<String, Unreadable>,
}

/// Why a source of facts could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The errno, when the error had one.
    pub errno: Option<i32>,
    /// The error, in words.
    pub error: String,
}

impl HostFacts {
    /// The facts as reports and `doctor --json` show them: every field by
    /// its name, an unknown one `null`; `groups`, `namespace_limits` and
    /// `unreadable` only when not empty.
    pub fn to_json(&self) -> Json {
        let map = |m: &std::collections::BTreeMap<String, u64>| {
            Json::object(m.iter().map(|(k, v)| (k.as_str(), Json::from(*v))))
        };
        let mut out = Json::object([
            ("kernel_release", Json::from(self.kernel_release.as_deref())),
            ("distro", self.distro.as_deref().into()),
            ("hostname", self.hostname.as_deref().into()),
            ("uid", self.uid.into()),
            ("euid", self.euid.into()),
            ("gid", self.gid.into()),
            ("egid", self.egid.into()),
        ]);
        if !self.groups.is_empty() {
            out = out.with("groups", self.groups.clone());
        }
        out = out
            .with(
                "apparmor_restrict_unprivileged_userns",
                self.apparmor_restrict_unprivileged_userns,
            )
            .with(
                "apparmor_restrict_unprivileged_unconfined",
                self.apparmor_restrict_unprivileged_unconfined,
            )
            .with("unprivileged_userns_clone", self.unprivileged_userns_clone)
            .with("max_user_namespaces", self.max_user_namespaces);
        if !self.namespace_limits.is_empty() {
            out = out.with("namespace_limits", map(&self.namespace_limits));
        }
        out = out
            .with("cap_last_cap", self.cap_last_cap)
            .with("seccomp_mode", self.seccomp_mode)
            .with("no_new_privs", self.no_new_privs)
            .with("cap_effective", self.cap_effective)
            .with("cap_bounding", self.cap_bounding)
            .with("cap_permitted", self.cap_permitted)
            .with("lsms", self.lsms.clone())
            .with("apparmor_label", self.apparmor_label.as_deref())
            .with("uid_map", self.uid_map.as_deref())
            .with("in_user_namespace", self.in_user_namespace)
            .with("container", self.container.as_deref())
            .with("proc_overmounts", self.proc_overmounts.clone())
            .with("proc_read_only", self.proc_read_only)
            .with("cgroup_v2_mount", self.cgroup_v2_mount.as_deref())
            .with("cgroup_v1", self.cgroup_v1)
            .with("root_fstype", self.root_fstype.as_deref())
            .with("proc_writable", self.proc_writable)
            .with("dumpable", self.dumpable)
            .with("rlimit_nproc", self.rlimit_nproc)
            .with("rlimit_nofile", self.rlimit_nofile)
            .with("chrooted", self.chrooted)
            .with("ci_runner", self.ci_runner.as_deref());
        if !self.unreadable.is_empty() {
            out = out.with(
                "unreadable",
                Json::object(self.unreadable.iter().map(|(k, u)| {
                    (
                        k.as_str(),
                        Json::object([
                            ("errno", Json::from(u.errno)),
                            ("error", (&u.error).into()),
                        ]),
                    )
                })),
            );
        }
        out
    }

    /// The facts, read once per process.
    pub fn get() -> &'static HostFacts {
        static FACTS: OnceLock<HostFacts> = OnceLock::new();
        FACTS.get_or_init(HostFacts::read)
    }

    /// Reads the facts now, bypassing the per-process cache.
    pub fn read() -> HostFacts {
        read_host()
    }

    /// The value of the `user.max_{kind}_namespaces` sysctl (`kind`: `net`,
    /// `mnt`, ...), when known.
    pub fn namespace_limit(&self, kind: &str) -> Option<u64> {
        self.namespace_limits
            .get(&format!("user.max_{kind}_namespaces"))
            .copied()
    }

    /// Why `path` could not be read, if it could not.
    pub fn unreadable(&self, path: &str) -> Option<&Unreadable> {
        self.unreadable.get(path)
    }

    /// Whether `cap` (a capability number) is in the effective set.
    pub fn has_effective_cap(&self, cap: u32) -> Option<bool> {
        self.cap_effective
            .map(|set| cap < 64 && set & (1 << cap) != 0)
    }

    /// The uid the parent user namespace sees for `uid` of this one, from
    /// `uid_map` (`None` where the map is unknown or does not map it). In
    /// the initial user namespace that is `uid` itself.
    pub fn outside_uid(&self, uid: u32) -> Option<u32> {
        self.uid_map.as_deref()?.lines().find_map(|line| {
            let mut f = line.split_whitespace().map(|v| v.parse::<u64>().ok());
            let (inside, outside, count) = (f.next()??, f.next()??, f.next()??);
            let uid = u64::from(uid);
            (uid >= inside && uid < inside + count)
                .then(|| u32::try_from(outside + (uid - inside)).ok())
                .flatten()
        })
    }

    /// How many capabilities the bounding set holds.
    pub fn bounding_set_size(&self) -> Option<u32> {
        self.cap_bounding.map(u64::count_ones)
    }

    /// Whether AppArmor is among the active LSMs, or (without securityfs)
    /// the restriction sysctl exists.
    pub fn apparmor_active(&self) -> bool {
        match &self.lsms {
            Some(lsms) => lsms.iter().any(|l| l == "apparmor"),
            None => {
                self.apparmor_restrict_unprivileged_userns.is_some()
                    || self.apparmor_label.is_some()
            }
        }
    }

    /// Whether Ubuntu's restriction of unprivileged user namespaces is
    /// switched on. It applies to unconfined processes only, so it is a
    /// likely cause, not proof.
    pub fn apparmor_restricts_userns(&self) -> bool {
        self.apparmor_restrict_unprivileged_userns == Some(1)
    }

    /// Whether this process runs under a seccomp filter.
    pub fn under_seccomp_filter(&self) -> bool {
        self.seccomp_mode == Some(2)
    }

    /// A one-line identity: distro, kernel, container.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            self.distro
                .clone()
                .unwrap_or_else(|| "unknown distro".into()),
        ];
        // Off Linux there is no kernel release to read, and on Windows no
        // uid: said only where they exist.
        let linux = crate::LINUX_BUILD;
        if linux || self.kernel_release.is_some() {
            parts.push(format!(
                "kernel {}",
                self.kernel_release.as_deref().unwrap_or("unknown")
            ));
        }
        if linux || self.uid != u32::MAX {
            parts.push(format!("uid {}", self.uid));
        }
        if let Some(c) = &self.container {
            parts.push(format!("container: {c}"));
        }
        if self.in_user_namespace == Some(true) {
            parts.push("inside a user namespace".into());
        }
        if let Some(r) = &self.ci_runner {
            parts.push(format!("CI: {r}"));
        }
        parts.join(", ")
    }
}

/// The namespace types with a `user.max_*_namespaces` sysctl.
pub(crate) const NAMESPACE_KINDS: [&str; 8] =
    ["user", "mnt", "net", "pid", "ipc", "uts", "cgroup", "time"];

linux! {
    /// The facts of a Linux host.
    fn read_host() -> HostFacts {
        let mut unreadable = std::collections::BTreeMap::new();
        let mut text = |path: &str| -> Option<String> {
            match fs::read_to_string(path) {
                Ok(s) => Some(s),
                // Absent is a fact (a kernel without the sysctl), not an
                // error.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    unreadable.insert(
                        path.to_owned(),
                        Unreadable {
                            errno: e.raw_os_error(),
                            error: e.to_string(),
                        },
                    );
                    None
                }
            }
        };
        let trimmed = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let number = |s: Option<String>| trimmed(s)?.parse::<u64>().ok();
        let status = text("/proc/self/status");
        let status = status.as_deref().unwrap_or("");
        let uid_map = trimmed(text("/proc/self/uid_map")).map(|m| normalise_map(&m));
        let mountinfo = text("/proc/self/mountinfo");
        let (uid, euid, _) = ids(nix::unistd::getresuid()
            .map(|r| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw())));
        let (gid, egid, _) = ids(nix::unistd::getresgid()
            .map(|r| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw())));
        let mut facts = HostFacts {
            kernel_release: trimmed(text("/proc/sys/kernel/osrelease")),
            distro: read_os_release(),
            hostname: trimmed(text("/proc/sys/kernel/hostname")),
            uid,
            euid,
            gid,
            egid,
            groups: nix::unistd::getgroups()
                .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                .unwrap_or_default(),
            apparmor_restrict_unprivileged_userns: number(text(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            )),
            apparmor_restrict_unprivileged_unconfined: number(text(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_unconfined",
            )),
            unprivileged_userns_clone: number(text("/proc/sys/kernel/unprivileged_userns_clone")),
            max_user_namespaces: number(text("/proc/sys/user/max_user_namespaces")),
            namespace_limits: NAMESPACE_KINDS
                .iter()
                .filter_map(|kind| {
                    let value = number(text(&format!("/proc/sys/user/max_{kind}_namespaces")))?;
                    Some((format!("user.max_{kind}_namespaces"), value))
                })
                .collect(),
            cap_last_cap: number(text("/proc/sys/kernel/cap_last_cap"))
                .and_then(|n| u32::try_from(n).ok()),
            seccomp_mode: status_field(status, "Seccomp:").and_then(|v| v.trim().parse().ok()),
            no_new_privs: status_field(status, "NoNewPrivs:").map(|v| v.trim() == "1"),
            cap_effective: status_field(status, "CapEff:").and_then(parse_hex),
            cap_bounding: status_field(status, "CapBnd:").and_then(parse_hex),
            cap_permitted: status_field(status, "CapPrm:").and_then(parse_hex),
            lsms: trimmed(text("/sys/kernel/security/lsm"))
                .map(|l| l.split(',').map(str::to_owned).collect()),
            apparmor_label: read_apparmor_label(),
            in_user_namespace: uid_map.as_deref().map(|m| m != INITIAL_UID_MAP),
            uid_map,
            container: detect_container(),
            proc_overmounts: mountinfo
                .as_deref()
                .map(proc_overmounts)
                .unwrap_or_default(),
            proc_read_only: mountinfo.as_deref().is_some_and(proc_read_only),
            cgroup_v2_mount: mountinfo
                .as_deref()
                .and_then(|m| mounts_of(m, "cgroup2").next().map(str::to_owned)),
            cgroup_v1: mountinfo
                .as_deref()
                .is_some_and(|m| mounts_of(m, "cgroup").next().is_some()),
            root_fstype: mountinfo.as_deref().and_then(root_fstype),
            proc_writable: proc_writable(),
            dumpable: dumpable(),
            rlimit_nproc: soft_limit(nix::sys::resource::Resource::RLIMIT_NPROC),
            rlimit_nofile: soft_limit(nix::sys::resource::Resource::RLIMIT_NOFILE),
            chrooted: mountinfo.as_deref().and_then(detect_chroot),
            ci_runner: ci_runner(|k| std::env::var(k).ok().filter(|v| !v.is_empty())),
            unreadable: std::collections::BTreeMap::new(),
        };
        facts.unreadable = unreadable;
        facts
    }

    /// Opens `/proc/self/comm` for writing (writing nothing): allowed to every
    /// dumpable process on its own file unless a policy refuses writes to
    /// `/proc`.
    fn proc_writable() -> Option<bool> {
        match fs::OpenOptions::new().write(true).open("/proc/self/comm") {
            Ok(_) => Some(true),
            Err(e) => match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM | libc::EROFS) if dumpable() != Some(false) => {
                    Some(false)
                }
                // Not dumpable: the file belongs to root, which says nothing
                // about a policy; other errors (EMFILE, ENOENT) say nothing.
                _ => None,
            },
        }
    }

    fn dumpable() -> Option<bool> {
        // SAFETY: PR_GET_DUMPABLE takes no pointer and changes nothing.
        let r = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        (r >= 0).then_some(r == 1)
    }

    fn soft_limit(resource: nix::sys::resource::Resource) -> Option<u64> {
        nix::sys::resource::getrlimit(resource)
            .ok()
            .map(|(soft, _)| soft)
            .filter(|&soft| soft != libc::RLIM_INFINITY)
    }

    /// The three ids of `getresuid`/`getresgid` (which cannot fail on Linux;
    /// `u32::MAX`, an id no one has, if they ever did).
    fn ids(r: nix::Result<(u32, u32, u32)>) -> (u32, u32, u32) {
        r.unwrap_or((u32::MAX, u32::MAX, u32::MAX))
    }
}

elsewhere! {
    /// The facts of a host that is not Linux: the system's name, the host
    /// name and the CI runner where the environment gives them; nothing of
    /// what only Linux has (`/proc`, sysctls, capabilities).
    fn read_host() -> HostFacts {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let [uid, euid, gid, egid] = unix_ids();
        HostFacts {
            distro: Some(system_name()),
            hostname: var("HOSTNAME").or_else(|| var("COMPUTERNAME")),
            uid,
            euid,
            gid,
            egid,
            ci_runner: ci_runner(var),
            ..HostFacts::default()
        }
    }

    /// The real and effective uid and gid, on Unix (`uid_t` and `gid_t` are
    /// 32-bit unsigned there; the calls cannot fail).
    #[cfg(unix)]
    fn unix_ids() -> [u32; 4] {
        unsafe extern "C" {
            fn getuid() -> u32;
            fn geteuid() -> u32;
            fn getgid() -> u32;
            fn getegid() -> u32;
        }
        // SAFETY: calls without arguments that read this process's ids.
        unsafe { [getuid(), geteuid(), getgid(), getegid()] }
    }

    /// No uids on this system: one no one has (see [`HostFacts::summary`]).
    #[cfg(not(unix))]
    fn unix_ids() -> [u32; 4] {
        [u32::MAX; 4]
    }

    /// The operating system as it names itself: `macOS 14.5` (from its
    /// `SystemVersion.plist`), else the target's name (`windows`, `freebsd`);
    /// on Linux built with `--cfg userns_test_unsupported_os`, or on an
    /// architecture the probes do not support, says so.
    pub(crate) fn system_name() -> String {
        if cfg!(all(target_os = "linux", userns_test_unsupported_os)) {
            return "Linux, but this build is one for other systems (--cfg \
                    userns_test_unsupported_os)"
                .into();
        }
        if cfg!(target_os = "linux") {
            // The probe child's raw system calls are written for these.
            return format!(
                "Linux on {}, an architecture userns-test's probes do not support (they run \
                 on x86_64, aarch64 and riscv64)",
                std::env::consts::ARCH
            );
        }
        if cfg!(target_os = "macos")
            && let Ok(plist) =
                fs::read_to_string("/System/Library/CoreServices/SystemVersion.plist")
        {
            let value = |key: &str| {
                let after = plist.split(&format!("<key>{key}</key>")).nth(1)?;
                let start = after.find("<string>")? + "<string>".len();
                let end = after[start..].find("</string>")? + start;
                Some(after[start..end].trim().to_owned())
            };
            if let (Some(name), Some(version)) = (value("ProductName"), value("ProductVersion")) {
                return format!("{name} {version}");
            }
        }
        std::env::consts::OS.to_owned()
    }
}

/// The CI runner's name and job, from the variables each CI service sets.
fn ci_runner(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let with_job = |name: Option<String>, job: Option<String>| {
        let name = name.unwrap_or_else(|| "unnamed runner".into());
        Some(match job {
            Some(j) => format!("{name}, job {j}"),
            None => name,
        })
    };
    if var("GITHUB_ACTIONS").as_deref() == Some("true") {
        let name = var("RUNNER_NAME").map(|n| match var("ImageOS").or_else(|| var("RUNNER_OS")) {
            Some(os) => format!("GitHub Actions {n} ({os})"),
            None => format!("GitHub Actions {n}"),
        });
        return with_job(name, var("GITHUB_JOB"));
    }
    if var("GITLAB_CI").is_some() {
        let name = var("CI_RUNNER_DESCRIPTION").map(|n| format!("GitLab {n}"));
        return with_job(name, var("CI_JOB_NAME"));
    }
    if var("BUILDKITE").is_some() {
        let name = var("BUILDKITE_AGENT_NAME").map(|n| format!("Buildkite {n}"));
        return with_job(name, var("BUILDKITE_LABEL"));
    }
    if var("JENKINS_URL").is_some() {
        let name = var("NODE_NAME").map(|n| format!("Jenkins {n}"));
        return with_job(name, var("JOB_NAME"));
    }
    if var("CIRCLECI").is_some() {
        return with_job(Some("CircleCI".into()), var("CIRCLE_JOB"));
    }
    None
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub(crate) fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

pub(crate) fn parse_hex(v: &str) -> Option<u64> {
    u64::from_str_radix(v.trim(), 16).ok()
}

fn normalise_map(map: &str) -> String {
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

fn read_os_release() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_owned())
}

fn read_apparmor_label() -> Option<String> {
    // Newer kernels have a per-LSM file; the shared one is AppArmor's on
    // kernels where it is the only "major" LSM, and EINVAL otherwise.
    let label = read_trimmed("/proc/self/attr/apparmor/current")
        .or_else(|| read_trimmed("/proc/self/attr/current"))?;
    let label = label.trim_end_matches('\0').to_owned();
    // SELinux contexts look like user:role:type:level.
    (!label.contains(':')).then_some(label)
}

fn detect_container() -> Option<String> {
    if let Some(c) = std::env::var_os("container") {
        return Some(c.to_string_lossy().into_owned());
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman".into());
    }
    if Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Some("kubernetes".into());
    }
    if let Some(c) = read_trimmed("/run/systemd/container") {
        return Some(c);
    }
    let osrelease = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
    if osrelease.contains("microsoft") || osrelease.contains("WSL") {
        return Some("wsl".into());
    }
    let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for (marker, name) in [
        ("/docker/", "docker"),
        ("/libpod-", "podman"),
        ("/lxc/", "lxc"),
        ("/kubepods", "kubernetes"),
    ] {
        if cgroup.contains(marker) {
            return Some(name.into());
        }
    }
    None
}

/// Mount points strictly below `/proc`, other than the usual
/// `binfmt_misc`, from mountinfo's fifth field.
fn proc_overmounts(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|mp| mp.starts_with("/proc/") && !mp.starts_with("/proc/sys/fs/binfmt_misc"))
        .map(str::to_owned)
        .collect()
}

/// The mount points of filesystems of type `fstype` (after mountinfo's
/// ` - `).
pub(crate) fn mounts_of<'a>(mountinfo: &'a str, fstype: &'a str) -> impl Iterator<Item = &'a str> {
    mountinfo.lines().filter_map(move |l| {
        let (fields, rest) = l.split_once(" - ")?;
        (rest.split_whitespace().next() == Some(fstype))
            .then(|| fields.split_whitespace().nth(4))?
    })
}

/// The type of the filesystem mounted last on `/`.
fn root_fstype(mountinfo: &str) -> Option<String> {
    mountinfo.lines().rev().find_map(|l| {
        let (fields, rest) = l.split_once(" - ")?;
        (fields.split_whitespace().nth(4) == Some("/"))
            .then(|| rest.split_whitespace().next().map(str::to_owned))?
    })
}

fn proc_read_only(mountinfo: &str) -> bool {
    // The last mount on /proc is the one in effect.
    mountinfo
        .lines()
        .rev()
        .find_map(|l| {
            let mut fields = l.split_whitespace().skip(4);
            (fields.next() == Some("/proc")).then(|| fields.next())?
        })
        .is_some_and(|opts| opts.split(',').any(|o| o == "ro"))
}

/// A chrooted process sees a root whose mount root is not `/`, or a root
/// that is not a mount point at all; mountinfo lists mounts relative to the
/// process root, so without a `/` entry the process is chrooted below one.
fn detect_chroot(mountinfo: &str) -> Option<bool> {
    if mountinfo.is_empty() {
        return None;
    }
    Some(
        !mountinfo
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some("/")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_maps() {
        let status =
            "Name:\tx\nUid:\t1000\t1001\t1000\t1000\nSeccomp:\t2\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(
            status_field(status, "Uid:").and_then(|f| f.split_whitespace().nth(1)),
            Some("1001")
        );
        assert_eq!(status_field(status, "Seccomp:"), Some("2"));
        assert_eq!(
            status_field(status, "CapBnd:").and_then(parse_hex),
            Some(0x1ff_ffff_ffff)
        );
        assert_eq!(
            normalise_map("         0          0 4294967295\n"),
            INITIAL_UID_MAP
        );
        assert_eq!(
            normalise_map("0 1000 1\n1 100000 65536\n"),
            "0 1000 1; 1 100000 65536"
        );
    }

    #[test]
    fn names_ci_runners() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            ci_runner(env(&[
                ("GITHUB_ACTIONS", "true"),
                ("RUNNER_NAME", "GitHub Actions 12"),
                ("ImageOS", "ubuntu24"),
                ("GITHUB_JOB", "test"),
            ])),
            Some("GitHub Actions GitHub Actions 12 (ubuntu24), job test".into())
        );
        assert_eq!(
            ci_runner(env(&[("GITLAB_CI", "true")])),
            Some("unnamed runner".into())
        );
        assert_eq!(ci_runner(env(&[("CI", "true")])), None);
    }

    #[test]
    fn finds_proc_masks_and_read_only_proc() {
        let mi = "22 1 0:5 / /proc rw,nosuid - proc proc rw\n\
                  30 22 0:6 /null /proc/kcore rw - devtmpfs udev rw\n\
                  31 22 0:7 / /proc/sys/fs/binfmt_misc rw - binfmt_misc b rw\n\
                  32 1 0:8 / / rw - ext4 /dev/vda rw\n";
        assert_eq!(proc_overmounts(mi), vec!["/proc/kcore".to_owned()]);
        assert!(!proc_read_only(mi));
        assert!(proc_read_only(
            "22 1 0:5 / /proc ro,nosuid - proc proc rw\n"
        ));
        assert_eq!(detect_chroot(mi), Some(false));
        assert_eq!(
            detect_chroot("22 1 0:5 / /proc rw - proc proc rw\n"),
            Some(true)
        );
    }
}
