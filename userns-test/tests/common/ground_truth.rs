//! Ground truth: each ability with the command that performs its operation
//! directly, by util-linux, bubblewrap, iproute2-free Python or the shell,
//! never by this crate. The host matrix (`tests/hosts.rs`) and the real
//! kernels (`tests/vm.rs`) compare every verdict with it.

/// Each ability with the command that performs its operation directly.
pub const GROUND_TRUTH: &[(&str, &[&str])] = &[
    ("user", &["unshare", "--user", "--map-root-user", "true"]),
    (
        "cap_sys_admin",
        // `--propagation unchanged`: the probe only unshares; util-linux
        // would otherwise also remount / private, a mount.
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "unchanged",
            "true",
        ],
    ),
    (
        "mount",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "mount",
            "-t",
            "tmpfs",
            "none",
            "/tmp",
        ],
    ),
    (
        "net",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "sh",
            "-c",
            "ip addr add 127.0.0.1/8 dev lo && ip link set lo up",
        ],
    ),
    (
        "pid",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
            "true",
        ],
    ),
    (
        "ipc",
        &["unshare", "--user", "--map-root-user", "--ipc", "true"],
    ),
    // The probe sets the host name in its new namespace, as tests of a
    // UTS namespace do: so does the ground truth.
    (
        "uts",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--uts",
            "hostname",
            "userns-test",
        ],
    ),
    (
        "cgroup",
        &["unshare", "--user", "--map-root-user", "--cgroup", "true"],
    ),
    (
        "time",
        &["unshare", "--user", "--map-root-user", "--time", "true"],
    ),
    (
        "nested",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "unshare",
            "--user",
            "--map-root-user",
            "true",
        ],
    ),
    // Not `setpriv --bounding-set`: libcap-ng skips the drop without
    // CAP_SETPCAP and exits 0 with the bounding set unchanged.
    (
        "cap_setpcap",
        &["capsh", "--drop=cap_net_raw", "--", "-c", "true"],
    ),
    (
        "bwrap",
        &["bwrap", "--unshare-user", "--ro-bind", "/", "/", "true"],
    ),
    (
        "bwrap_net",
        &[
            "bwrap",
            "--unshare-user",
            "--unshare-net",
            "--ro-bind",
            "/",
            "/",
            "true",
        ],
    ),
    ("unprivileged", &["sh", "-c", UNPRIVILEGED]),
    ("root", &["sh", "-c", ROOT]),
    // The thread's effective set, as a test's own guard reads it.
    (
        "cap(sys_admin)",
        &[
            "sh",
            "-c",
            "[ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 21 & 1 )) = 1 ]",
        ],
    ),
    (
        "cap(sys_ptrace)",
        &[
            "sh",
            "-c",
            "[ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 19 & 1 )) = 1 ]",
        ],
    ),
    (
        "cap(net_raw)",
        &[
            "sh",
            "-c",
            "[ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 13 & 1 )) = 1 ]",
        ],
    ),
    // A capability that counts only in the initial user namespace, by the
    // call itself: settimeofday(NULL, NULL) asks for CAP_SYS_TIME (EPERM
    // without it, in any other user namespace too) and changes nothing.
    ("cap(sys_time)", &["/usr/bin/python3", "-c", SETTIMEOFDAY]),
    // The release against a version, by coreutils' version sort.
    (
        "kernel(>=5.10)",
        &[
            "sh",
            "-c",
            "printf '%s\\n' 5.10 \"$(uname -r)\" | sort -V -C",
        ],
    ),
    (
        "kernel(>=99.0)",
        &[
            "sh",
            "-c",
            "printf '%s\\n' 99.0 \"$(uname -r)\" | sort -V -C",
        ],
    ),
    (
        "landlock(abi<4)",
        &["/usr/bin/python3", "-c", LANDLOCK_BELOW_4],
    ),
    (
        "new_privs",
        &[
            "sh",
            "-c",
            "grep -q '^NoNewPrivs:[[:space:]]*0$' /proc/self/status",
        ],
    ),
    (
        "kvm",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "/usr/bin/python3",
            "-c",
            KVM,
        ],
    ),
    (
        "tun",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "/usr/bin/python3",
            "-c",
            TUN,
        ],
    ),
    (
        "fuse",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "/usr/bin/python3",
            "-c",
            FUSE,
        ],
    ),
    (
        "overlay",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs none /tmp && mkdir /tmp/l /tmp/u /tmp/w /tmp/m && \
             mount -t overlay overlay -o lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w /tmp/m",
        ],
    ),
    (
        "pivot_root",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs none /tmp && mkdir /tmp/old && \
             PATH=$PATH:/usr/sbin:/sbin pivot_root /tmp /tmp/old",
        ],
    ),
    ("cgroup_delegation", &["sh", "-c", CGROUP_DELEGATION]),
    // `env` execs the program: 126/127 where it cannot.
    ("program(true)", &["env", "true"]),
    (
        "landlock(abi>=4)",
        &["/usr/bin/python3", "-c", LANDLOCK_ABI_4],
    ),
];

/// Not root and no CAP_SYS_ADMIN in the initial user namespace (inside
/// another user namespace, nothing counts).
const UNPRIVILEGED: &str = r#"
map=$(awk '{print $1" "$2" "$3; exit}' /proc/self/uid_map)
if [ "$map" != "0 0 4294967295" ]; then
  out=$(awk -v u="$(id -u)" '$1 <= u && u < $1 + $3 {print $2 + u - $1; exit}' /proc/self/uid_map)
  [ -n "$out" ] && [ "$out" != 0 ] || exit 1
  out=$(awk -v u="$(id -ru)" '$1 <= u && u < $1 + $3 {print $2 + u - $1; exit}' /proc/self/uid_map)
  [ "$out" != 0 ]; exit
fi
[ "$(id -u)" != 0 ] && [ "$(id -ru)" != 0 ] || exit 1
cap=$(awk '/^CapEff/ {print $2}' /proc/self/status)
[ $(( 0x$cap >> 21 & 1 )) = 0 ]
"#;

/// Real uid 0 in the initial user namespace, every capability the kernel
/// knows (0 to cap_last_cap) effective.
const ROOT: &str = r#"
map=$(awk '{print $1" "$2" "$3; exit}' /proc/self/uid_map)
[ "$map" = "0 0 4294967295" ] && [ "$(id -ru)" = 0 ] || exit 1
last=$(cat /proc/sys/kernel/cap_last_cap)
eff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
[ $(( 0x$eff )) = $(( (1 << (last + 1)) - 1 )) ]
"#;

/// The Landlock version query: an ABI below 4, or no Landlock (ENOSYS:
/// not built; EOPNOTSUPP: not enabled). Anything else (a filter's EPERM)
/// leaves it unknown: no.
const LANDLOCK_BELOW_4: &str = "import ctypes, sys, errno
libc = ctypes.CDLL(None, use_errno=True)
abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
if abi < 0:
    sys.exit(0 if ctypes.get_errno() in (errno.ENOSYS, errno.EOPNOTSUPP) else 1)
sys.exit(0 if abi < 4 else 1)";

/// The raw `settimeofday(NULL, NULL)` (glibc's wrapper reads its
/// argument): 0 where CAP_SYS_TIME counts (the clock untouched), EPERM
/// where it does not.
const SETTIMEOFDAY: &str = "import ctypes, os, sys
nr = {'x86_64': 164, 'aarch64': 170, 'riscv64': 170}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.syscall(nr, None, None) == 0 else 1)";

/// /dev/kvm read-write, API version 12, a VM created.
const KVM: &str = "import os, fcntl
fd = os.open('/dev/kvm', os.O_RDWR)
assert fcntl.ioctl(fd, 0xAE00, 0) == 12
fcntl.ioctl(fd, 0xAE01, 0)";

/// A tap device through /dev/net/tun (no netlink, unlike `ip tuntap`).
const TUN: &str = "import fcntl, os, struct
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH22x', b'ut0', 0x0002 | 0x1000))";

/// A FUSE mount with an open /dev/fuse, no server.
const FUSE: &str = "import ctypes, os
fd = os.open('/dev/fuse', os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
opts = ('fd=%d,rootmode=40000,user_id=0,group_id=0' % fd).encode()
raise SystemExit(0 if libc.mount(b'fuse', b'/tmp', b'fuse', 6, opts) == 0 else 1)";

/// landlock_create_ruleset(NULL, 0, VERSION) >= 4.
const LANDLOCK_ABI_4: &str = "import ctypes
libc = ctypes.CDLL(None, use_errno=True)
raise SystemExit(0 if libc.syscall(444, None, 0, 1) >= 4 else 1)";

/// A child cgroup of the highest writable ancestor of this process's
/// cgroup v2, with cpu, memory and pids, and a process moved into it.
const CGROUP_DELEGATION: &str = r#"
line=$(awk -F' - ' '{split($2,b," "); if (b[1]=="cgroup2") {print $1; exit}}' /proc/self/mountinfo)
[ -n "$line" ] || exit 1
set -- $line
mnt=$5; mroot=$4
rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ -n "$rel" ] || exit 1
[ "$mroot" = / ] && mroot=""
dir="$mnt${rel#$mroot}"
top=""; d="$dir"
while [ -w "$d" ]; do
  top="$d"; [ "$d" = "$mnt" ] && break
  d=$(dirname "$d"); case "$d" in "$mnt"*) ;; *) break ;; esac
done
[ -n "$top" ] || top="$dir"
c="$top/userns-test-truth-$$"
mkdir "$c" || exit 1
ok=0
for x in cpu memory pids; do grep -qw "$x" "$c/cgroup.controllers" || ok=1; done
[ $ok = 0 ] && sh -c 'echo $$ > "$1/cgroup.procs"' sh "$c" || ok=1
for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$c" 2>/dev/null && break; sleep 0.05; done
exit $ok
"#;
