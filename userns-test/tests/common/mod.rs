//! Hermetic hosts for the crate's own tests: each wraps a command so that
//! it runs as another user, inside an owned user namespace with a sysctl
//! changed, under a seccomp filter, or without a capability. The hosts are
//! built by util-linux (`setpriv`, `unshare`) and seccompiler, never by the
//! code under test.

#![allow(dead_code)]

pub mod ground_truth;
pub mod vm;

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// How a host is built around a command.
#[derive(Clone, Debug)]
pub enum Host {
    /// This process's own host (root on CI).
    Plain,
    /// uid/gid 65534, no capabilities in any set.
    Unprivileged,
    /// uid/gid 65534 (as [`Host::Unprivileged`]), in a mount namespace of
    /// its own whose `/etc/subuid` and `/etc/subgid` give it `count` ids
    /// from 100000 (0: files that give it none), whatever this machine's
    /// files hold.
    SubordinateIds(u32),
    /// `user.max_user_namespaces=0`, set inside a user namespace we own.
    NoUserNamespaces,
    /// Docker-like seccomp: `unshare` and `clone` with namespace flags
    /// fail EPERM, `clone3` fails ENOSYS.
    DockerSeccomp,
    /// A seccomp filter that kills the process on `unshare`.
    KillOnUnshare,
    /// CAP_SETPCAP dropped from the bounding set.
    NoSetpcap,
    /// Root with Docker's default capability set (14 of 41, the bounding
    /// set cut to them before the exec): uid 0, without CAP_SYS_ADMIN,
    /// CAP_SYS_PTRACE, CAP_NET_ADMIN, ...
    DockerCapabilities,
    /// A seccomp filter refusing `prctl(PR_CAPBSET_DROP)` with EPERM.
    CapbsetDropRefused,
    /// Landlock denies writing any file under `/proc` (the other top-level
    /// directories stay writable): map writes fail EACCES, as on Ubuntu
    /// 24.04, and Landlock refuses mounts.
    ProcNotWritable,
    /// seccomp: `socket(AF_NETLINK, ...)` and `ioctl(SIOCSIFFLAGS)` fail
    /// EACCES.
    NetlinkRefused,
    /// seccomp: only `ioctl(SIOCSIFFLAGS)` fails EACCES (netlink works).
    IfFlagsRefused,
    /// seccomp: `mount` (and the new mount API) fail EPERM.
    MountRefused,
    /// systemd's `RestrictNamespaces=user mnt`: `unshare`, `clone` and
    /// `setns` with any other namespace flag fail EPERM (matched by flag,
    /// as systemd does), `clone3` fails ENOSYS. User and mount namespaces
    /// work.
    RestrictNamespaces,
    /// A container profile refusing `sethostname` (EPERM) while allowing
    /// the namespaces.
    SethostnameRefused,
    /// `user.max_net_namespaces=0`, set inside a user namespace we own.
    NoNetNamespaces,
    /// `user.max_mnt_namespaces=0`, set inside a user namespace we own.
    NoMountNamespaces,
    /// In a mount namespace of its own, a tmpfs over `/dev` with only
    /// `/dev/null`: no `/dev/kvm`, `/dev/net/tun` or `/dev/fuse`.
    NoDevices,
    /// uid/gid 65534 (as [`Host::Unprivileged`]), in a mount namespace of
    /// its own whose `/dev` is a tmpfs: `null`, `zero`, `urandom` open to
    /// all, and `/dev/kvm`, `/dev/net/tun`, `/dev/fuse` root's alone
    /// (0600), as a devtmpfs without udev leaves them, whatever modes this
    /// machine's own nodes have (udev makes tun and fuse 0666).
    ClosedDevices,
    /// seccomp: `ioctl(TUNSETIFF)` and `ioctl(KVM_CREATE_VM)` fail EPERM.
    IoctlRefused,
    /// `setpriv --no-new-privs`.
    NoNewPrivs,
    /// In a mount namespace of its own, every cgroup2 mount unmounted.
    NoCgroup2,
    /// In a mount namespace of its own, the cgroup2 mount made read-only
    /// (a container's default).
    CgroupReadOnly,
    /// In a mount namespace of its own, a `noexec` tmpfs on `/mnt` holding
    /// `/mnt/prog`, a copy of `true`.
    NoexecMnt,
    /// Landlock handles executing files and allows it only beneath the
    /// library directories, this test target's directory and `env`:
    /// every other program is refused.
    ExecLandlocked,
    /// Inside `bwrap --unshare-user --disable-userns`: no further user
    /// namespaces.
    InsideBwrapDisableUserns,
    /// Inside `unshare --user --map-root-user`: nesting allowed.
    InsideUnshare,
    /// A uid no process uses (see [`unused_uid`]) with `RLIMIT_NPROC` = 1:
    /// no new process or thread. (The limit counts every process of the
    /// uid: with 65534, a daemon running as `nobody` would already exceed
    /// it, and the host could not even be entered.)
    ProcessLimit,
}

const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn arch() -> seccompiler::TargetArch {
    std::env::consts::ARCH
        .try_into()
        .expect("a seccompiler target")
}

/// A filter applying `action` to the matching calls and allowing the rest.
fn filter(rules: Vec<(i64, Vec<SeccompRule>)>, action: SeccompAction) -> BpfProgram {
    SeccompFilter::new(
        rules.into_iter().collect(),
        SeccompAction::Allow,
        action,
        arch(),
    )
    .unwrap()
    .try_into()
    .unwrap()
}

/// `unshare` always, `clone` with any namespace flag: `action`.
fn namespace_filter(action: SeccompAction) -> BpfProgram {
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            SeccompRule::new(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
                .unwrap(),
            ])
            .unwrap()
        })
        .collect();
    filter(
        vec![(libc::SYS_unshare, vec![]), (libc::SYS_clone, clone_rules)],
        action,
    )
}

/// The namespace flags systemd's `RestrictNamespaces=user mnt` refuses.
const RESTRICTED_FLAGS: [u64; 5] = [
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// `unshare`/`clone` (flags: argument 0) and `setns` (argument 1) with any
/// of `flags` set fail EPERM; `clone3`, whose flags a filter cannot read,
/// fails ENOSYS, so that callers fall back to `clone`.
fn flag_filter(flags: &[u64]) -> Vec<BpfProgram> {
    let rules = |arg: u8| -> Vec<SeccompRule> {
        flags
            .iter()
            .map(|&flag| {
                SeccompRule::new(vec![
                    SeccompCondition::new(
                        arg,
                        SeccompCmpArgLen::Qword,
                        SeccompCmpOp::MaskedEq(flag),
                        flag,
                    )
                    .unwrap(),
                ])
                .unwrap()
            })
            .collect()
    };
    vec![
        filter(
            vec![
                (libc::SYS_unshare, rules(0)),
                (libc::SYS_clone, rules(0)),
                (libc::SYS_setns, rules(1)),
            ],
            SeccompAction::Errno(libc::EPERM as u32),
        ),
        refuse_all(&[libc::SYS_clone3], libc::ENOSYS),
    ]
}

/// `syscall` with argument `arg` equal to `value`: fails with `errno`.
fn refuse_when(syscall: i64, arg: u8, value: u64, errno: i32) -> BpfProgram {
    let rule = SeccompRule::new(vec![
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value).unwrap(),
    ])
    .unwrap();
    filter(
        vec![(syscall, vec![rule])],
        SeccompAction::Errno(errno as u32),
    )
}

/// Every listed system call fails with `errno`.
fn refuse_all(syscalls: &[i64], errno: i32) -> BpfProgram {
    filter(
        syscalls.iter().map(|&s| (s, vec![])).collect(),
        SeccompAction::Errno(errno as u32),
    )
}

/// A Landlock ruleset handling `access` and allowing it beneath `allowed`,
/// created in the parent (building it allocates, which a child of a
/// multithreaded process must not do).
fn landlock_ruleset(
    access: landlock::AccessFs,
    allowed: impl IntoIterator<Item = PathBuf>,
) -> std::os::fd::OwnedFd {
    use landlock::{PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr};
    let mut ruleset = Ruleset::default()
        .handle_access(access)
        .expect("Landlock handles the access")
        .create()
        .expect("create a Landlock ruleset");
    for path in allowed {
        if let Ok(fd) = PathFd::new(&path) {
            ruleset = ruleset
                .add_rule(PathBeneath::new(fd, access))
                .expect("add a Landlock rule");
        }
    }
    let fd: Option<std::os::fd::OwnedFd> = ruleset.into();
    fd.expect("Landlock is enabled on this kernel")
}

/// Writing files allowed beneath every top-level directory but `/proc`.
fn landlock_proc_read_only() -> std::os::fd::OwnedFd {
    let top: Vec<PathBuf> = std::fs::read_dir("/")
        .expect("read /")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != Path::new("/proc") && p.is_dir())
        .collect();
    landlock_ruleset(landlock::AccessFs::WriteFile, top)
}

/// Executing allowed beneath the dynamic loader's and libraries'
/// directories, this test binary's target directory (where the
/// `userns-test` command is) and `/usr/bin/env`.
fn landlock_exec_only() -> std::os::fd::OwnedFd {
    let target = cli().parent().expect("a target directory").to_path_buf();
    let allowed = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/bin/env"]
        .map(PathBuf::from)
        .into_iter()
        .chain([target]);
    landlock_ruleset(landlock::AccessFs::Execute, allowed)
}

const TUNSETIFF: u64 = 0x4004_54ca;
const KVM_CREATE_VM: u64 = 0xAE01;

/// A shell loop running `command MOUNT_POINT` for each cgroup2 mount.
fn on_each_cgroup2(command: &str) -> String {
    format!(
        "for m in $(awk -F' - ' '{{split($1,a,\" \"); split($2,b,\" \"); \
         if (b[1]==\"cgroup2\") print a[5]}}' /proc/self/mountinfo); do {command} \"$m\" \
         || exit 1; done"
    )
}

/// `program`, as root in a mount namespace of its own (private
/// propagation) after `setup` ran there.
fn in_mount_namespace(setup: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "sh",
        "-c",
        &format!("{setup} && exec \"$@\""),
        "sh",
    ])
    .arg(program);
    c
}

/// `program`, inside a user namespace we own whose
/// `user.max_<kind>_namespaces` is 0.
fn limited(kind: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        &format!("echo 0 > /proc/sys/user/max_{kind}_namespaces && exec \"$@\""),
        "sh",
    ])
    .arg(program);
    c
}

impl Host {
    /// `program args` wrapped to run on this host.
    pub fn command(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let unprivileged = [
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
        ];
        let mut cmd = match self {
            Host::Plain
            | Host::DockerSeccomp
            | Host::KillOnUnshare
            | Host::CapbsetDropRefused
            | Host::ProcNotWritable
            | Host::NetlinkRefused
            | Host::IfFlagsRefused
            | Host::MountRefused
            | Host::RestrictNamespaces
            | Host::SethostnameRefused
            | Host::IoctlRefused => Command::new(&program),
            Host::NoNetNamespaces => limited("net", &program),
            Host::NoDevices => in_mount_namespace(
                "mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3",
                &program,
            ),
            Host::ClosedDevices => {
                let mut c = in_mount_namespace(
                    "mount -t tmpfs -o mode=755 none /dev && cd /dev && \
                     mknod -m 666 null c 1 3 && mknod -m 666 zero c 1 5 && \
                     mknod -m 666 urandom c 1 9 && mkdir net && \
                     mknod -m 600 kvm c 10 232 && mknod -m 600 net/tun c 10 200 && \
                     mknod -m 600 fuse c 10 229",
                    "setpriv",
                );
                c.args(unprivileged).arg(&program);
                c
            }
            Host::NoCgroup2 => in_mount_namespace(&on_each_cgroup2("umount"), &program),
            Host::CgroupReadOnly => {
                in_mount_namespace(&on_each_cgroup2("mount -o remount,ro,bind"), &program)
            }
            Host::NoexecMnt => in_mount_namespace(
                "mount -t tmpfs -o noexec none /mnt && cp /usr/bin/true /mnt/prog",
                &program,
            ),
            Host::ExecLandlocked => Command::new(&program),
            Host::NoNewPrivs => {
                let mut c = Command::new("setpriv");
                c.arg("--no-new-privs").arg(&program);
                c
            }
            Host::NoMountNamespaces => limited("mnt", &program),
            Host::Unprivileged => {
                let mut c = Command::new("setpriv");
                c.args(unprivileged).arg(&program);
                c
            }
            Host::SubordinateIds(count) => {
                let line = match count {
                    0 => String::new(),
                    n => format!("nobody:100000:{n}"),
                };
                // An overlay over /etc: the files are written there
                // whether or not this machine has them, and nothing
                // reaches the real /etc.
                let mut c = in_mount_namespace(
                    &format!(
                        "mount -t tmpfs -o mode=755 none /mnt && mkdir /mnt/up /mnt/work && \
                         mount -t overlay overlay \
                         -o lowerdir=/etc,upperdir=/mnt/up,workdir=/mnt/work /etc && \
                         printf '%s\\n' '{line}' > /etc/subuid && \
                         printf '%s\\n' '{line}' > /etc/subgid"
                    ),
                    "setpriv",
                );
                c.args(unprivileged).arg(&program);
                c
            }
            Host::ProcessLimit => {
                let uid = unused_uid().to_string();
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid",
                    &uid,
                    "--regid",
                    &uid,
                    "--clear-groups",
                    "--inh-caps=-all",
                ])
                .arg(&program);
                c
            }
            Host::NoSetpcap => {
                let mut c = Command::new("setpriv");
                c.args(["--bounding-set", "-setpcap"]).arg(&program);
                c
            }
            Host::DockerCapabilities => {
                let mut c = Command::new("setpriv");
                c.args([
                    "--bounding-set",
                    "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,\
                     +net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap",
                ])
                .arg(&program);
                c
            }
            Host::InsideBwrapDisableUserns => {
                let mut c = Command::new("bwrap");
                c.args([
                    "--unshare-user",
                    "--disable-userns",
                    "--bind",
                    "/",
                    "/",
                    "--proc",
                    "/proc",
                    "--dev",
                    "/dev",
                    "--",
                ])
                .arg(&program);
                c
            }
            Host::InsideUnshare => {
                let mut c = Command::new("unshare");
                c.args(["--user", "--map-root-user", "--"]).arg(&program);
                c
            }
            Host::NoUserNamespaces => limited("user", &program),
        };
        cmd.args(args).current_dir("/");
        let filters: Vec<BpfProgram> = match self {
            Host::DockerSeccomp => vec![
                namespace_filter(SeccompAction::Errno(libc::EPERM as u32)),
                refuse_all(&[libc::SYS_clone3], libc::ENOSYS),
            ],
            Host::KillOnUnshare => vec![filter(
                vec![(libc::SYS_unshare, vec![])],
                SeccompAction::KillProcess,
            )],
            Host::CapbsetDropRefused => vec![refuse_when(
                libc::SYS_prctl,
                0,
                libc::PR_CAPBSET_DROP as u64,
                libc::EPERM,
            )],
            Host::NetlinkRefused => vec![
                refuse_when(libc::SYS_socket, 0, libc::AF_NETLINK as u64, libc::EACCES),
                refuse_when(libc::SYS_ioctl, 1, libc::SIOCSIFFLAGS, libc::EACCES),
            ],
            Host::IfFlagsRefused => vec![refuse_when(
                libc::SYS_ioctl,
                1,
                libc::SIOCSIFFLAGS,
                libc::EACCES,
            )],
            Host::RestrictNamespaces => flag_filter(&RESTRICTED_FLAGS),
            Host::SethostnameRefused => vec![refuse_all(&[libc::SYS_sethostname], libc::EPERM)],
            Host::IoctlRefused => vec![
                refuse_when(libc::SYS_ioctl, 1, TUNSETIFF, libc::EPERM),
                refuse_when(libc::SYS_ioctl, 1, KVM_CREATE_VM, libc::EPERM),
            ],
            Host::MountRefused => vec![refuse_all(
                &[
                    libc::SYS_mount,
                    libc::SYS_fsopen,
                    libc::SYS_fsmount,
                    libc::SYS_move_mount,
                    libc::SYS_open_tree,
                    libc::SYS_mount_setattr,
                ],
                libc::EPERM,
            )],
            _ => vec![],
        };
        if let Host::ProcessLimit = self {
            // SAFETY: setrlimit is async-signal-safe. Root ignores the
            // limit; setpriv then becomes the unused uid, for whom it holds.
            unsafe {
                cmd.pre_exec(|| {
                    let one = libc::rlimit {
                        rlim_cur: 1,
                        rlim_max: 1,
                    };
                    if libc::setrlimit(libc::RLIMIT_NPROC, &one) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let landlocked = match self {
            Host::ProcNotWritable => Some(landlock_proc_read_only()),
            Host::ExecLandlocked => Some(landlock_exec_only()),
            _ => None,
        };
        if let Some(ruleset) = landlocked {
            // SAFETY: two raw system calls on a descriptor prepared in the
            // parent; nothing is allocated in the child.
            unsafe {
                cmd.pre_exec(move || {
                    use std::os::fd::AsRawFd;
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0)
                            != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if !filters.is_empty() {
            // SAFETY: apply_filter makes prctl/seccomp calls on the
            // prepared programs; nothing is allocated in the child.
            unsafe {
                cmd.pre_exec(move || {
                    for f in &filters {
                        seccompiler::apply_filter(f).map_err(std::io::Error::other)?;
                    }
                    Ok(())
                });
            }
        }
        cmd
    }

    /// Runs `program args` on this host.
    pub fn run(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Output {
        self.command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("could not start the host's command: {e}"))
    }

    /// Whether `program args` succeeds on this host: the ground truth.
    pub fn succeeds(&self, program: &str, args: &[&str]) -> bool {
        self.run(program, args).status.success()
    }
}

/// The `userns-test doctor --json --only LIST` document on `host`.
pub fn doctor(host: &Host, only: &str) -> serde_json::Value {
    let out = host.run(cli(), &["doctor", "--json", "--only", only]);
    assert!(
        out.status.success(),
        "doctor failed on this host: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON")
}

/// The verdict object for `ability` in a doctor document.
pub fn verdict<'a>(doc: &'a serde_json::Value, ability: &str) -> &'a serde_json::Value {
    doc["abilities"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["ability"] == ability))
        .unwrap_or_else(|| panic!("no verdict for {ability} in {doc:#}"))
}

/// The guide's matrix cell (docs/src/causes.md) for a verdict: `yes`, or `no (EPERM)`,
/// `no (exit 1)`, `no (mismatch)`: the errno, exit status or failure kind.
pub fn matrix_cell(v: &serde_json::Value) -> String {
    if v["verdict"] == "available" {
        return "yes".to_owned();
    }
    let how = v["failure"]["name"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| v["failure"]["code"].as_i64().map(|c| format!("exit {c}")))
        .unwrap_or_else(|| v["failure"]["kind"].as_str().unwrap_or("?").to_owned());
    format!("no ({how})")
}

pub fn available(doc: &serde_json::Value, ability: &str) -> bool {
    verdict(doc, ability)["verdict"] == "available"
}

/// The test binary of this package's test target `name`, built now if it
/// is stale: `cargo test --test runner` alone builds only `runner`, and an
/// old fixture would make the assertions describe old code. Asks cargo
/// (a no-op when fresh); without cargo, the newest `name-<hash>` beside
/// this binary.
pub fn sibling_test_binary(name: &str) -> PathBuf {
    built(name, || {
        cargo_build(
            &["--test", name],
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            name,
        )
        .unwrap_or_else(|| newest_sibling(name))
    })
}

/// The test target `name` of the example suite (package
/// `userns-test-examples`: `jailer`, `plain`), built now if it is stale.
pub fn example_binary(name: &str) -> PathBuf {
    built(&format!("example {name}"), || {
        cargo_build(
            &["--tests"],
            concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/suite/Cargo.toml"),
            name,
        )
        .unwrap_or_else(|| newest_sibling(name))
    })
}

/// The `userns-test` command (package `userns-test-cli`), built now if it
/// is stale; without cargo, the one in this target directory.
pub fn cli() -> PathBuf {
    built("userns-test (cli)", || {
        cargo_build(
            &["--bin", "userns-test"],
            concat!(env!("CARGO_MANIFEST_DIR"), "/../userns-test-cli/Cargo.toml"),
            "userns-test",
        )
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("current_exe");
            let path = exe
                .parent()
                .and_then(Path::parent)
                .expect("a target directory")
                .join("userns-test");
            assert!(
                is_executable(&path),
                "{} is not built; run `cargo build -p userns-test-cli`",
                path.display()
            );
            path
        })
    })
}

/// `build()`'s result, once per test process.
fn built(key: &str, build: impl FnOnce() -> PathBuf) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(k, _)| k == key) {
        return path.clone();
    }
    let path = build();
    built.push((key.to_owned(), path.clone()));
    path
}

/// `cargo build <args>` of `manifest`, and the executable of target `name`;
/// `None` when not run under cargo.
fn cargo_build(args: &[&str], manifest: &str, name: &str) -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO")?;
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--message-format", "json"])
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "building `{name}` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

fn newest_sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("a deps directory");
    let prefix = format!("{name}-");
    std::fs::read_dir(dir)
        .expect("read the deps directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(OsStr::to_str).is_some_and(|n| n.starts_with(&prefix) && !n.contains('.'))
                && is_executable(p)
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!("the `{name}` test binary is not built; run `cargo test --workspace` (it builds every test target first)")
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A fixture suite's run, as its parent sees it.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Whether the body of `test` ran (the fixtures print a marker).
    pub fn ran(&self, test: &str) -> bool {
        self.stdout.contains(&format!("BODY RAN: {test}\n"))
    }

    /// The first stdout line starting with `prefix`.
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find(|l| l.starts_with(prefix))
    }

    /// The last non-empty stdout line (libtest's summary).
    pub fn last_stdout_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Removes what would make a child's run depend on this one's
/// environment (the crate's variables, colour, CI and nextest settings);
/// no backtraces in expected failures.
pub fn hermetic(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("USERNS_TEST_")
            || k.starts_with("GITHUB_")
            || k.starts_with("NEXTEST")
            || k == "NO_COLOR"
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "0")
}

/// Whether `cargo nextest` is installed.
pub fn nextest_installed() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A uid no process on this machine runs as, and no account names: a
/// stranger for tests that need another local user (an attacker, a
/// per-user limit that other processes must not share). Searched from
/// 61000 up.
pub fn unused_uid() -> u32 {
    let mut used = std::collections::BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            for line in status.lines().filter(|l| l.starts_with("Uid:")) {
                used.extend(
                    line.split_whitespace()
                        .skip(1)
                        .filter_map(|n| n.parse::<u32>().ok()),
                );
            }
        }
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    used.extend(
        passwd
            .lines()
            .filter_map(|l| l.split(':').nth(2))
            .filter_map(|n| n.parse::<u32>().ok()),
    );
    (61000..65000)
        .find(|u| !used.contains(u))
        .expect("a free uid between 61000 and 65000")
}

/// `sh -c script` run as `uid` (and gid `uid`), without capabilities.
pub fn as_user(uid: u32, script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &uid.to_string(),
            "--clear-groups",
            "--inh-caps=-all",
            "sh",
            "-c",
            script,
        ])
        .current_dir("/")
        .output()
        .expect("run setpriv")
}

/// A fresh directory like `/tmp`: anyone may create files there (mode
/// 1777), and no one may remove another's.
pub fn sticky_scratch(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("userns-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// A fresh directory of this user's alone.
pub fn private_scratch(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("userns-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The strings of a JSON array.
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default()
}

/// The runner fixture's tests that run on no host: the two that fail on
/// purpose are `#[ignore]`d, and bubblewrap is pointed at nothing.
pub const RUNNER_SUITE_NEVER_RAN: [&str; 1] = ["userns-test::runner_suite::sandbox::runs_box"];

/// The runner fixture suite's tests that ran nowhere because they are
/// `#[ignore]`d: `merge` lists them apart and never fails on them.
pub const RUNNER_SUITE_IGNORED: [&str; 2] = [
    "userns-test::runner_suite::panics",
    "userns-test::runner_suite::result_fails",
];

/// The crash fixture suite (`tests/fixtures/crash_suite.rs`) run with
/// `env`, bubblewrap pointed at nothing; it crashes nothing unless asked.
pub fn crash_suite(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(sibling_test_binary("crash_suite"));
    hermetic(&mut cmd)
        .args(args)
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .envs(env.iter().copied())
        .current_dir("/")
        .output()
        .expect("run the crash fixture suite")
}

/// Bytes as text, lossily (a child's output).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON document in the file at `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// `(outcome, message, crashed)` of test `name` in a JSON report.
pub fn outcome_of(report: &serde_json::Value, name: &str) -> (String, String, bool) {
    let t = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"));
    (
        t["outcome"].as_str().unwrap().to_owned(),
        t["message"].as_str().unwrap_or("").to_owned(),
        t["crashed"].as_bool().unwrap_or(false),
    )
}

/// The `userns-test` command with `args` and `env` (bubblewrap pointed at
/// nothing), in this workspace.
pub fn userns_test(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(cli());
    hermetic(&mut cmd)
        .args(args)
        .env("USERNS_TEST_BWRAP", "/nonexistent/bwrap")
        .envs(env.iter().copied())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run userns-test")
}
