//! Remedies: the narrowest fix first, host-wide switches last, with their
//! cost. A remedy depends on the cause and the host, never on the ability
//! that hit it, so that one root cause has one fix.

use crate::cause::Cause;
use crate::facts::HostFacts;

/// Whether a `mode crw-rw----, owner 0:36` description gives the group
/// read and write.
fn group_can_read_write(mode: &str) -> bool {
    mode.split_whitespace()
        .nth(1)
        .and_then(|bits| bits.get(4..6))
        .is_some_and(|group| group == "rw")
}

/// What allows a call a seccomp filter refuses, by what Docker's
/// published default profile (moby's `profiles/seccomp/default.json`)
/// does with it: some calls it allows only with CAP_SYS_ADMIN, some never,
/// and some always, so a filter that refuses those is another one.
fn seccomp_call_remedy(call: &str) -> String {
    let name = call.split('(').next().unwrap_or(call);
    match name {
        "pivot_root" => "Docker's default seccomp profile refuses pivot_root whatever the \
             container's capabilities: run the container with a profile that allows it \
             (`--security-opt seccomp=<profile.json>` with pivot_root added, or \
             `seccomp=unconfined`); elsewhere, allow it in the filter the tests run under"
            .into(),
        "mount" | "umount2" | "unshare" | "setns" | "sethostname" | "clone" | "clone3" => {
            format!(
                "Docker's default seccomp profile allows {name} only to a container with \
                 CAP_SYS_ADMIN (`--cap-add SYS_ADMIN`), or run it with a profile that allows \
                 {name}; elsewhere, allow it in the filter the tests run under"
            )
        }
        "ioctl" | "socket" | "prctl" | "landlock_create_ruleset" | "landlock_restrict_self" => {
            format!(
                "allow {call} in the filter the tests run under: it is not Docker's default \
                 profile, which allows {name} (a custom profile, systemd's SystemCallFilter=, \
                 a sandbox around the test run)"
            )
        }
        _ => format!("allow {call} in the seccomp filter the tests run under"),
    }
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

/// The fix for `cause`; `facts` is asked only by causes whose fix depends
/// on the host.
pub(crate) fn remedy<'a>(cause: &Cause, facts: &dyn Fn() -> &'a HostFacts) -> String {
    match cause {
        Cause::AppArmorRestrictsUserns { .. } => {
            let glob = test_binary_glob();
            format!(
                "narrowest: an AppArmor profile granting `userns,` to the program that creates \
                 the namespaces. For tests that call unshare/clone themselves, the test \
                 binaries: /etc/apparmor.d/userns-test containing `abi <abi/4.0>, include \
                 <tunables/global> profile userns-test {glob} flags=(unconfined) {{ userns, \
                 include if exists <local/userns-test> }}`, loaded with `sudo apparmor_parser -r \
                 /etc/apparmor.d/userns-test` (cargo names test binaries with a hash, so the \
                 glob covers every binary in that directory; `userns-test apparmor-profile \
                 BINARY` prints one). For tests that run bubblewrap, bwrap itself, which the \
                 test binaries' profile does not cover: Ubuntu ships one (`sudo apparmor_parser \
                 -r /usr/share/apparmor/extra-profiles/bwrap-userns-restrict`), or `userns-test \
                 apparmor-profile $(command -v bwrap)`. Host-wide: `sudo sysctl -w \
                 kernel.apparmor_restrict_unprivileged_userns=0` (re-exposes the unprivileged \
                 user-namespace attack surface to every program on the host)"
            )
        }
        Cause::CapabilitiesDeniedInUserns {
            label: Some(label), ..
        } => format!(
            "run the tests outside the AppArmor profile `{label}`, or under one that allows \
             user namespaces and the capabilities in them (`userns-test apparmor-profile \
             BINARY` prints a profile with `userns,`)"
        ),
        Cause::CapabilitiesDeniedInUserns { .. } => "find the LSM policy that denies \
             capabilities in user namespaces (the audit log: `dmesg | grep -i denied`; BPF LSM \
             programs: `bpftool prog list` shows type lsm) and exempt the test binaries"
            .into(),
        Cause::UnprivilegedUsernsCloneOff => "run the tests as root in CI, or `sudo sysctl -w \
             kernel.unprivileged_userns_clone=1` (host-wide: every unprivileged program may \
             create user namespaces)"
            .into(),
        Cause::UserNamespacesDisabled => {
            let facts = facts();
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
        Cause::NamespaceLimit { sysctl, .. } => format!(
            "raise `{sysctl}` (`sudo sysctl -w {sysctl}=15000`; host-wide, or in the enclosing \
             user namespace that set it)"
        ),
        Cause::SeccompRefusesNamespaces => "in a container: run it with a seccomp profile that \
             allows unshare/clone with the namespace flags (narrower than `--privileged` or \
             `seccomp=unconfined`); elsewhere, find the filter's owner (NoNewPrivs and Seccomp \
             in /proc/self/status)"
            .into(),
        Cause::SeccompRefusesNamespaceTypes { types } => format!(
            "allow {types} where the filter is set (systemd: RestrictNamespaces= of the unit \
             running the tests; a container: its seccomp profile's clone/unshare rules)"
        ),
        Cause::SeccompRefusesCall { call } => seccomp_call_remedy(call),
        Cause::SeccompFilter => "find the filter's owner (the container runtime's seccomp \
             profile, systemd's SystemCallFilter=/RestrictNamespaces=) and allow the call"
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
        Cause::ProcNotWritable { read_only: true } => {
            "run the tests where /proc is mounted read-write".into()
        }
        Cause::ProcNotWritable { read_only: false } => "run the tests outside the restriction \
             that refuses writes to /proc (a Landlock ruleset the test runner inherits, an LSM \
             policy)"
            .into(),
        Cause::NotDumpable => "keep the test process dumpable (no PR_SET_DUMPABLE 0, not started \
             through a setuid or file-capability program), or call prctl(PR_SET_DUMPABLE, 1) \
             before the tests"
            .into(),
        Cause::LsmRefusesCall { .. } => "read the audit log (`dmesg`, `journalctl -k`) for the \
             denial and allow the operation in that policy, or run the tests outside it (a \
             Landlock-restricted process cannot mount)"
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
        Cause::NotInstalled { program } if program.starts_with("bwrap") => "install bubblewrap \
             (`apt-get install bubblewrap`, `dnf install bubblewrap`), or set USERNS_TEST_BWRAP \
             to its path"
            .into(),
        Cause::NotInstalled { program }
            if program.starts_with("newuidmap") || program.starts_with("newgidmap") =>
        {
            format!("install {program} (`apt-get install uidmap`, `dnf install shadow-utils`)")
        }
        Cause::NotInstalled { program } => match known_package(program) {
            Some(install) => format!("install {program} ({install})"),
            None => format!(
                "install {program} (`apt-get install`/`dnf install` its package), or put it on \
                 the PATH of the test process"
            ),
        },
        Cause::NotExecutable { path } if path.contains("bwrap") => format!(
            "give this user execute permission on {path} (its mode bits or group), or set \
             USERNS_TEST_BWRAP to a copy that is"
        ),
        Cause::NotExecutable { path } => {
            format!("give this user execute permission on {path} (its mode bits or group)")
        }
        Cause::NoNewPrivs => "run the tests without NoNewPrivs (a container's \
             `--security-opt no-new-privileges`, systemd's NoNewPrivileges=, or a parent that \
             set PR_SET_NO_NEW_PRIVS)"
            .into(),
        Cause::Privileged { .. } => "run the tests as a normal user (e.g. `setpriv --reuid=1000 \
             --regid=1000 --init-groups cargo test`, or a CI job without sudo/root); a user \
             namespace that maps uid 0 to root (`unshare -r` run by root) is still root's"
            .into(),
        Cause::CapabilityNotInBoundingSet { capability, .. } => {
            let cap = capability.trim_start_matches("CAP_");
            format!(
                "start the container with it (`docker run --cap-add {cap}`, the same for Podman; \
                 a systemd unit: CapabilityBoundingSet=), or run the tests outside it"
            )
        }
        Cause::CapabilityNotPermitted {
            capability,
            uid,
            no_new_privs,
        } if *uid != 0 => {
            let lower = capability.to_ascii_lowercase();
            let file_caps = if *no_new_privs {
                "; file capabilities need NoNewPrivs off, which it is not here".to_owned()
            } else {
                format!(
                    ", or give the test binary the capability (`sudo setcap {lower}+ep \
                     target/debug/deps/<test>-*`; every rebuild drops it)"
                )
            };
            format!(
                "run the tests as root (`sudo -E cargo test`, or \
                 `CARGO_TARGET_<TRIPLE>_RUNNER='sudo -E'`){file_caps}"
            )
        }
        Cause::CapabilityNotPermitted { capability, .. } => format!(
            "start the tests without dropping {capability} (the launcher's `capsh --drop`, \
             `setpriv --inh-caps`/`--bounding-set`, a unit's CapabilityBoundingSet=)"
        ),
        Cause::CapabilityNotEffective { capability } => format!(
            "raise {capability} in the test before it is used (capset(2); the `caps` crate's \
             `caps::raise`), or set the binary's file capability effective (`setcap ...+ep`)"
        ),
        Cause::CapabilityOutsideInitialNamespace { capability, .. } => format!(
            "run the tests outside user namespaces, as root of the host with {capability} \
             (not inside `unshare -U`, a rootless container or `#[in_userns]`)"
        ),
        Cause::CapabilityUnknownToKernel { capability, .. } => {
            match crate::cause::capability_kernel(capability) {
                Some(release) => {
                    format!("run the tests on Linux {release} or later, which knows {capability}")
                }
                None => format!("run the tests on a kernel that knows {capability}"),
            }
        }
        Cause::RootWithoutCapabilities { .. } => "require what the test uses with cap(...) \
             instead of root (e.g. `#[requires_userns(cap(sys_admin))]`), or run the tests with \
             every capability (`docker run --privileged`, no CapabilityBoundingSet=)"
            .into(),
        Cause::KernelTooOld { wanted, .. } => format!(
            "run the tests on Linux {wanted} or later (a newer runner image or VM kernel); where \
             the feature has an ability of its own (landlock(abi >= N), overlay, fuse), require \
             that instead: distributions backport features to older releases"
        ),
        Cause::LandlockAbiTooNew { below, .. } => match crate::cause::landlock_abi_kernel(*below) {
            Some(release) => format!(
                "run this test on a kernel before Linux {release} (an older runner image, or \
                     a VM with an older kernel): here its fallback path does not run"
            ),
            None => "run this test on a kernel with an older Landlock ABI: here its \
                     fallback path does not run"
                .into(),
        },
        Cause::DeviceMissing { path } => format!(
            "make {path} exist: load its driver (kvm_intel/kvm_amd for /dev/kvm, tun, fuse), \
             and in a container pass it (`--device {path}`)"
        ),
        Cause::DeviceNotAccessible { path, mode } if path == "/dev/kvm" => {
            if group_can_read_write(mode) {
                "add this user to /dev/kvm's group (`sudo usermod -aG kvm $USER`, then a new \
                 login), or run the job with KVM shared (GitHub's larger runners; `--device \
                 /dev/kvm` in a container)"
                    .into()
            } else {
                "/dev/kvm's group has no access to it either: give the node group access (a udev \
                 rule `KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\"`, as systemd's default \
                 rules do), then add this user to that group (`sudo usermod -aG kvm $USER` and \
                 a new login); or run the job with KVM shared (`--device /dev/kvm` in a \
                 container)"
                    .into()
            }
        }
        Cause::DeviceNotAccessible { path, .. } => format!(
            "give this user read-write access to {path} (a udev rule with MODE=\"0666\", the \
             default for /dev/net/tun and /dev/fuse on most distributions)"
        ),
        Cause::DeviceRefused { path } => format!(
            "allow {path} in the container's device policy (`--device {path}`, or \
             `--device-cgroup-rule`), or in the LSM policy that refuses it"
        ),
        Cause::NoexecMount { mount, .. } => {
            format!(
                "remount {mount} without noexec, or put the program on a filesystem that allows exec"
            )
        }
        Cause::ExecRefusedByLsm { path } => format!(
            "find the Landlock ruleset, AppArmor or SELinux policy the tests run under and allow \
             executing {path} (the audit log names AppArmor and SELinux denials)"
        ),
        Cause::LandlockAbiTooOld { wanted } => {
            format!("run the tests on a kernel with Landlock ABI {wanted} or later")
        }
        Cause::CgroupV2Missing { .. } => "boot with the unified cgroup hierarchy \
             (`systemd.unified_cgroup_hierarchy=1`; the default of current distributions)"
            .into(),
        Cause::CgroupControllersMissing { hybrid: true, .. } => "boot with the unified cgroup \
             hierarchy only (`systemd.unified_cgroup_hierarchy=1`), so that cgroup v2 owns the \
             controllers"
            .into(),
        Cause::CgroupControllersMissing { path, .. } => format!(
            "delegate the controllers to this user's subtree (systemd: `Delegate=cpu memory \
             pids` in user@.service, the default on current distributions; by hand, write \
             `+cpu +memory +pids` to {path})"
        ),
        Cause::CgroupNotDelegated { .. } => "run the tests under a delegated cgroup (a `systemd \
             --user` session, `systemd-run --user --scope -p Delegate=yes`, or a container with \
             its own writable cgroup namespace)"
            .into(),
        Cause::CgroupReadOnly { .. } => "run the container with a writable cgroup tree \
             (Docker/Podman `--cgroupns=private` with `--security-opt` allowing it, or \
             `--privileged`), or the tests on the host"
            .into(),
        Cause::RootIsRootfs => "run the tests from a real root filesystem (pivot_root works in \
             containers and on booted systems; an initramfs shell cannot)"
            .into(),
        Cause::ProgramUnprivileged { path } => format!(
            "reinstall the package that ships {path} (uidmap, shadow-utils), which sets its \
             setuid bit or file capabilities (`sudo setcap cap_setuid+ep {path}` for \
             newuidmap, cap_setgid for newgidmap)"
        ),
        Cause::ProgramFailed { .. } => {
            "see the program's message; `userns-test doctor` shows the system-call probes".into()
        }
        Cause::NoSubordinateIds { path, user } => format!(
            "add a range for {user} to {path} (`sudo usermod --add-subuids 100000-165535 \
             --add-subgids 100000-165535 {user}`)"
        ),
        Cause::SubordinateRangeTooShort {
            path,
            user,
            start,
            wanted,
            ..
        } => {
            let option = if path.ends_with("subgid") {
                "--add-subgids"
            } else {
                "--add-subuids"
            };
            format!(
                "give {user} {wanted} ids in {path} (`sudo usermod {option} {start}-{} {user}`), \
                 or map fewer with a smaller `ids`",
                u64::from(*start) + u64::from(*wanted) - 1
            )
        }
        Cause::NotRoot { .. } => "run the test binary as root (e.g. in a privileged CI job)".into(),
        Cause::NotInitialUserNamespace { .. } => {
            "run as root outside any user namespace (a privileged CI job)".into()
        }
        Cause::TimedOut => "look for a debugger or freezer stopping processes; raise \
             USERNS_TEST_PROBE_TIMEOUT_MS on a very slow host"
            .into(),
        Cause::KilledFromOutside => "run the probe again; find what kills processes here".into(),
        Cause::DeniedByEnvironment => "remove the ability from USERNS_TEST_DENY".into(),
        Cause::BadConfiguration => "fix the variable named above".into(),
        Cause::UnsupportedSystem { .. } => "run these tests on a Linux runner (x86_64, aarch64 or \
             riscv64: a Linux CI job, container or VM); here they are skipped, and \
             USERNS_TEST_REQUIRE fails them"
            .into(),
        Cause::Unexplained => "read the audit log (`dmesg`, `journalctl -k`) for a denial naming \
             this test binary, and allow the operation in that policy"
            .into(),
    }
}

/// How to install programs that tests of sandboxes commonly drive, where
/// the package's name is not the program's. The program's own name (a
/// path's last component) is looked up.
fn known_package(program: &str) -> Option<&'static str> {
    let name = program.rsplit('/').next().unwrap_or(program);
    Some(match name {
        n if n.starts_with("qemu-system-") => {
            "`apt-get install qemu-system-x86` (or `-arm`, ...), `dnf install qemu-system-x86`"
        }
        "vng" => "`pip install virtme-ng`",
        "apparmor_parser" | "aa-exec" => "`apt-get install apparmor`",
        "bpftool" => {
            "`apt-get install bpftool` (`linux-tools-common` on Ubuntu), `dnf install bpftool`"
        }
        "capsh" => "`apt-get install libcap2-bin`, `dnf install libcap`",
        "setpriv" | "unshare" | "nsenter" => {
            "`apt-get install util-linux`, `dnf install util-linux`"
        }
        "ip" => "`apt-get install iproute2`, `dnf install iproute`",
        "slirp4netns" => "`apt-get install slirp4netns`, `dnf install slirp4netns`",
        "pasta" | "passt" => "`apt-get install passt`, `dnf install passt`",
        "fuse-overlayfs" => "`apt-get install fuse-overlayfs`, `dnf install fuse-overlayfs`",
        "python3" => "`apt-get install python3`, `dnf install python3`",
        _ => return None,
    })
}
