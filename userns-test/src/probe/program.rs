//! The operations a probe child performs, prepared in full by the parent.
//!
//! Everything the child touches (paths, map lines, netlink messages, reply
//! buffers) is allocated here, before the clone; the child only reads these
//! values and issues raw system calls (see [`super::raw`]).

use std::cell::UnsafeCell;
use std::ffi::CString;

use super::raw::{RawResult, sys, syscall6};
use crate::step::{Step, clone_flag_names};

const LANDLOCK_CREATE_RULESET_VERSION: usize = 1;
const LANDLOCK_ACCESS_FS_EXECUTE: u64 = 1;
const SECCOMP_SET_MODE_FILTER: usize = 1;
const RT_SCOPE_HOST: u8 = 254;
/// Loopback is always interface 1 in a new network namespace.
const LOOPBACK_IFINDEX: u32 = 1;

/// One operation of the child. Variants own every buffer they use.
pub(crate) enum Op {
    Unshare(libc::c_int),
    /// Open for writing (phase 0), write all of `data` (phase 1).
    WriteFile {
        path: CString,
        data: Vec<u8>,
    },
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        what: String,
    },
    SetHostname(&'static [u8]),
    CapBsetDrop(u32),
    NoNewPrivs,
    /// A one-instruction filter returning `SECCOMP_RET_ALLOW`.
    SeccompAllowAll {
        // Boxed so the pointer in `program` stays valid when `Op` moves.
        _filter: Box<[libc::sock_filter; 1]>,
        program: Box<UnsafeCell<libc::sock_fprog>>,
    },
    /// Reads the ABI version into the report's value.
    LandlockAbi,
    /// Create a ruleset (phase 0), restrict self (phase 1).
    LandlockRestrict {
        handled_access_fs: Box<u64>,
    },
    /// A route-netlink request, `RTM_NEWADDR` or `RTM_NEWLINK`: netlink
    /// socket (phase 0), send (1), receive (2), kernel's ack (3).
    RouteNetlink {
        request: Vec<u8>,
        reply: Box<UnsafeCell<[u8; 512]>>,
        /// The step reported after the socket is open.
        link_up: bool,
    },
    /// Write one byte to `fd`: the child is ready.
    SignalReady {
        fd: libc::c_int,
    },
    /// Read one byte from `fd`: the parent is done with the child.
    WaitForRelease {
        fd: libc::c_int,
    },
    /// A control call (see [`super::control`]): expected to fail with the
    /// kernel's own argument error.
    Control(Control),
    /// `mkdirat(AT_FDCWD, path, 0755)`.
    Mkdir(CString),
    /// A descriptor the parent could not open for the child: fails with
    /// its errno, at opening `what`.
    NoDescriptor {
        what: String,
        errno: i32,
    },
    /// `pivot_root(new_root, put_old)`.
    PivotRoot {
        new_root: CString,
        put_old: CString,
    },
    /// Open `/dev/kvm` (phase 0), `KVM_GET_API_VERSION` must be 12 (1),
    /// `KVM_CREATE_VM` (2).
    Kvm {
        path: CString,
    },
    /// Open `/dev/net/tun` (phase 0), `TUNSETIFF` with a prepared
    /// `struct ifreq` (1).
    Tun {
        path: CString,
        ifreq: Box<UnsafeCell<[u8; IFREQ_SIZE]>>,
    },
    /// Open `/dev/fuse` (phase 0), move it to the descriptor number the
    /// parent reserved (1: the mount options name it, and they are written
    /// before the clone), mount `fuse` with it (2).
    Fuse {
        path: CString,
        /// Reserved by the parent (an open `/dev/null`), replaced in the
        /// child's own descriptor table.
        reserved: std::os::fd::OwnedFd,
        target: CString,
        data: CString,
    },
}

/// `sizeof(struct ifreq)` on Linux.
pub(crate) const IFREQ_SIZE: usize = 40;
const KVM_GET_API_VERSION: usize = 0xAE00;
const KVM_CREATE_VM: usize = 0xAE01;
/// The one KVM API version there has been since Linux 2.6.22.
const KVM_API_VERSION: usize = 12;
const TUNSETIFF: usize = 0x4004_54ca;

/// A system call made with an argument the kernel rejects before any
/// permission check, so that the errno says who refused it: the kernel's
/// argument error means the call reached the kernel; anything else was a
/// filter's answer. Owns its buffers, like every [`Op`].
pub(crate) enum Control {
    /// `unshare(flags | CLONE_PTRACE)`: EINVAL (`check_unshare_flags`).
    Unshare(libc::c_int),
    /// `clone(flags | CLONE_FS)` with `CLONE_NEWUSER` or `CLONE_NEWNS` in
    /// `flags`: EINVAL, checked before a process is copied.
    Clone(libc::c_int),
    /// `mount(NULL, "", NULL, 0, NULL)`: ENOENT from the path lookup, which
    /// comes before the LSM hook and the capability check.
    Mount { target: CString },
    /// `socket(AF_NETLINK, 15, NETLINK_ROUTE)`: EINVAL, the type checked
    /// before the LSM hook.
    NetlinkSocket,
    /// `sethostname(name, 65)`: EINVAL after the capability check, so it
    /// runs where the probe held CAP_SYS_ADMIN.
    SetHostname { name: Box<[u8; 65]> },
    /// `prctl(PR_CAPBSET_DROP, 4096)`: EINVAL after the CAP_SETPCAP check,
    /// so it says something only where the capability is effective.
    CapBsetDrop,
    /// `ioctl(-1, request, 0)`: EBADF, the descriptor checked before the
    /// request is looked at.
    Ioctl(usize),
    /// `pivot_root("", "")`: ENOENT from the path lookup, after the
    /// capability check the probe passes in its namespaces.
    PivotRoot { empty: CString },
}

/// A socket type beyond `SOCK_MAX`, within `SOCK_TYPE_MASK`.
const INVALID_SOCKET_TYPE: libc::c_int = 15;
/// A capability number no kernel has.
const INVALID_CAPABILITY: usize = 4096;

impl Control {
    pub(crate) fn mount() -> Control {
        Control::Mount {
            target: cstring(""),
        }
    }

    pub(crate) fn set_hostname() -> Control {
        Control::SetHostname {
            name: Box::new([b'x'; 65]),
        }
    }

    /// The errno the kernel answers when the call reaches it.
    pub(crate) fn kernel_errno(&self) -> i32 {
        match self {
            Control::Mount { .. } | Control::PivotRoot { .. } => libc::ENOENT,
            Control::Ioctl(_) => libc::EBADF,
            _ => libc::EINVAL,
        }
    }

    /// # Safety
    /// Runs in the probe child: raw system calls on owned buffers only.
    unsafe fn run(&self) -> RawResult {
        unsafe {
            match self {
                Control::Unshare(flags) => sys!(libc::SYS_unshare, *flags | libc::CLONE_PTRACE),
                Control::Clone(flags) => {
                    let r = sys!(libc::SYS_clone, *flags | libc::CLONE_FS, 0, 0, 0, 0);
                    if r == Ok(0) {
                        // The kernel refuses these flags; should one ever
                        // accept them, the copy it made leaves at once.
                        let _ = sys!(libc::SYS_exit, 0);
                    }
                    r
                }
                Control::Mount { target } => sys!(libc::SYS_mount, 0, target.as_ptr(), 0, 0, 0),
                Control::NetlinkSocket => {
                    let r = sys!(
                        libc::SYS_socket,
                        libc::AF_NETLINK,
                        INVALID_SOCKET_TYPE | libc::SOCK_CLOEXEC,
                        libc::NETLINK_ROUTE
                    );
                    if let Ok(fd) = r {
                        let _ = sys!(libc::SYS_close, fd);
                    }
                    r
                }
                Control::SetHostname { name } => {
                    sys!(libc::SYS_sethostname, name.as_ptr(), name.len())
                }
                Control::CapBsetDrop => {
                    sys!(
                        libc::SYS_prctl,
                        libc::PR_CAPBSET_DROP,
                        INVALID_CAPABILITY,
                        0,
                        0,
                        0
                    )
                }
                Control::Ioctl(request) => sys!(libc::SYS_ioctl, -1i32, *request, 0),
                Control::PivotRoot { empty } => {
                    sys!(libc::SYS_pivot_root, empty.as_ptr(), empty.as_ptr())
                }
            }
        }
    }
}

// SAFETY: the buffers behind UnsafeCell are written only by the probe
// child, while the parent does not touch them, and read back only after the
// child is reaped.
unsafe impl Sync for Op {}

impl Op {
    pub(crate) fn write_file(path: &str, data: String) -> Op {
        Op::WriteFile {
            path: cstring(path),
            data: data.into_bytes(),
        }
    }

    /// The setgroups/uid_map/gid_map writes that make the caller root of a
    /// fresh user namespace, the unprivileged way.
    pub(crate) fn become_root(uid: u32, gid: u32) -> [Op; 3] {
        [
            Op::write_file("/proc/self/setgroups", "deny".into()),
            Op::write_file("/proc/self/uid_map", format!("0 {uid} 1")),
            Op::write_file("/proc/self/gid_map", format!("0 {gid} 1")),
        ]
    }

    pub(crate) fn mount(
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        what: String,
    ) -> Op {
        Op::Mount {
            source: source.map(cstring),
            target: cstring(target),
            fstype: fstype.map(cstring),
            flags,
            data: data.map(cstring),
            what,
        }
    }

    pub(crate) fn kvm() -> Op {
        Op::Kvm {
            path: cstring("/dev/kvm"),
        }
    }

    /// `/` and everything under it made private (`MS_REC|MS_PRIVATE`),
    /// in a new mount namespace: no mount made there propagates out.
    pub(crate) fn private_root() -> Op {
        Op::mount(
            None,
            "/",
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
            "making / private (MS_REC|MS_PRIVATE)".into(),
        )
    }

    /// A new `proc` mounted on `/proc` (`nosuid,nodev,noexec`): the view of
    /// the PID namespace the mounting process is in.
    pub(crate) fn fresh_proc() -> Op {
        Op::mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong,
            None,
            "proc on /proc".into(),
        )
    }

    pub(crate) fn mkdir(path: &str) -> Op {
        Op::Mkdir(cstring(path))
    }

    pub(crate) fn pivot_root(new_root: &str) -> Op {
        Op::PivotRoot {
            new_root: cstring(new_root),
            put_old: cstring(&format!("{}/old", new_root.trim_end_matches('/'))),
        }
    }

    /// `TUNSETIFF` for a tap device named `ut0` without packet information.
    pub(crate) fn tun() -> Op {
        let mut ifreq = [0u8; IFREQ_SIZE];
        ifreq[..3].copy_from_slice(b"ut0");
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as u16;
        ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
        Op::Tun {
            path: cstring("/dev/net/tun"),
            ifreq: Box::new(UnsafeCell::new(ifreq)),
        }
    }

    /// A FUSE mount on `target` through the descriptor number `reserved`
    /// holds in the parent.
    pub(crate) fn fuse(reserved: std::os::fd::OwnedFd, target: &str) -> Op {
        use std::os::fd::AsRawFd;
        let data = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            reserved.as_raw_fd()
        );
        Op::Fuse {
            path: cstring("/dev/fuse"),
            reserved,
            target: cstring(target),
            data: cstring(&data),
        }
    }

    pub(crate) fn seccomp_allow_all() -> Op {
        let filter = Box::new([libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        }]);
        let program = Box::new(UnsafeCell::new(libc::sock_fprog {
            len: 1,
            filter: filter.as_ptr().cast_mut(),
        }));
        Op::SeccompAllowAll {
            _filter: filter,
            program,
        }
    }

    pub(crate) fn landlock_restrict() -> Op {
        Op::LandlockRestrict {
            handled_access_fs: Box::new(LANDLOCK_ACCESS_FS_EXECUTE),
        }
    }

    /// `RTM_NEWADDR 127.0.0.1/8 dev lo`, as bubblewrap sends it.
    pub(crate) fn loopback_address() -> Op {
        let loopback = [127u8, 0, 0, 1];
        let mut m = Vec::with_capacity(40);
        let len: u32 = 16 + 8 + 8 + 8;
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_NEWADDR.to_ne_bytes());
        let flags =
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        // struct ifaddrmsg
        m.extend_from_slice(&[
            libc::AF_INET as u8,
            8,
            libc::IFA_F_PERMANENT as u8,
            RT_SCOPE_HOST,
        ]);
        m.extend_from_slice(&LOOPBACK_IFINDEX.to_ne_bytes());
        for attr in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
            m.extend_from_slice(&8u16.to_ne_bytes());
            m.extend_from_slice(&attr.to_ne_bytes());
            m.extend_from_slice(&loopback);
        }
        debug_assert_eq!(m.len(), len as usize);
        Op::RouteNetlink {
            request: m,
            reply: Box::new(UnsafeCell::new([0; 512])),
            link_up: false,
        }
    }

    /// `RTM_NEWLINK` setting `IFF_UP` on `lo`: what `ip link set lo up` and
    /// bubblewrap send (not `ioctl(SIOCSIFFLAGS)`, which a host may refuse
    /// while netlink works).
    pub(crate) fn loopback_up() -> Op {
        let mut m = Vec::with_capacity(32);
        let len: u32 = 16 + 16;
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&2u32.to_ne_bytes()); // sequence
        m.extend_from_slice(&0u32.to_ne_bytes()); // port id
        // struct ifinfomsg: family, padding, type, index, flags, change
        m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        m.extend_from_slice(&LOOPBACK_IFINDEX.to_ne_bytes());
        m.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        m.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        debug_assert_eq!(m.len(), len as usize);
        Op::RouteNetlink {
            request: m,
            reply: Box::new(UnsafeCell::new([0; 512])),
            link_up: true,
        }
    }

    /// The step this operation was at in `phase`, for the verdict.
    pub(crate) fn step(&self, phase: usize) -> Step {
        match self {
            Op::Unshare(flags) => Step::Unshare {
                flags: clone_flag_names(*flags),
            },
            Op::WriteFile { path, data } => {
                let path = path.to_string_lossy().into_owned();
                if phase == 0 {
                    Step::OpenForWriting { path }
                } else {
                    Step::Write {
                        path,
                        data: String::from_utf8_lossy(data).into_owned(),
                    }
                }
            }
            Op::Mount { what, .. } => Step::Mount { what: what.clone() },
            Op::SetHostname(_) => Step::SetHostname,
            Op::CapBsetDrop(cap) => Step::CapBsetDrop { cap: *cap },
            Op::NoNewPrivs => Step::SetNoNewPrivs,
            Op::SeccompAllowAll { .. } => Step::SeccompSetModeFilter,
            Op::LandlockAbi => Step::LandlockAbiVersion,
            Op::LandlockRestrict { .. } if phase == 0 => Step::LandlockCreateRuleset,
            Op::LandlockRestrict { .. } => Step::LandlockRestrictSelf,
            Op::RouteNetlink { .. } if phase == 0 => Step::Socket {
                domain: "AF_NETLINK, NETLINK_ROUTE".into(),
            },
            Op::RouteNetlink { link_up: false, .. } => Step::LoopbackAddAddress,
            Op::RouteNetlink { link_up: true, .. } => Step::LoopbackUp,
            Op::SignalReady { .. } | Op::WaitForRelease { .. } | Op::Control(_) => Step::Handshake,
            Op::Mkdir(path) => Step::Mkdir {
                path: path.to_string_lossy().into_owned(),
            },
            Op::NoDescriptor { what, .. } => Step::OpenDevice { path: what.clone() },
            Op::PivotRoot { new_root, .. } => Step::PivotRoot {
                new_root: new_root.to_string_lossy().into_owned(),
            },
            Op::Kvm { path } | Op::Tun { path, .. } | Op::Fuse { path, .. } if phase == 0 => {
                Step::OpenDevice {
                    path: path.to_string_lossy().into_owned(),
                }
            }
            Op::Kvm { .. } if phase == 1 => Step::Ioctl {
                request: "KVM_GET_API_VERSION, expecting 12".into(),
            },
            Op::Kvm { .. } => Step::Ioctl {
                request: "KVM_CREATE_VM".into(),
            },
            Op::Tun { .. } => Step::Ioctl {
                request: "TUNSETIFF, IFF_TAP|IFF_NO_PI".into(),
            },
            Op::Fuse { reserved, .. } if phase == 1 => {
                use std::os::fd::AsRawFd;
                Step::OpenDevice {
                    path: format!("/dev/fuse (as descriptor {})", reserved.as_raw_fd()),
                }
            }
            Op::Fuse { target, .. } => Step::Mount {
                what: format!("fuse on {}", target.to_string_lossy()),
            },
        }
    }

    /// The control call for this operation at `phase`, where one tells a
    /// filter's refusal from the kernel's.
    pub(crate) fn control(&self, phase: usize) -> Option<Control> {
        match self {
            Op::Unshare(flags) => Some(Control::Unshare(*flags)),
            Op::Mount { .. } => Some(Control::mount()),
            Op::SetHostname(_) => Some(Control::set_hostname()),
            Op::CapBsetDrop(_) => Some(Control::CapBsetDrop),
            Op::RouteNetlink { .. } if phase == 0 => Some(Control::NetlinkSocket),
            Op::PivotRoot { .. } => Some(Control::PivotRoot { empty: cstring("") }),
            Op::Kvm { .. } if phase == 1 => Some(Control::Ioctl(KVM_GET_API_VERSION)),
            Op::Kvm { .. } if phase == 2 => Some(Control::Ioctl(KVM_CREATE_VM)),
            Op::Tun { .. } if phase == 1 => Some(Control::Ioctl(TUNSETIFF)),
            Op::Fuse { .. } if phase == 2 => Some(Control::mount()),
            _ => None,
        }
    }

    /// Performs the operation. Runs in the probe child: async-signal-safe,
    /// no allocation, no locks, no libc `errno`, no panics.
    ///
    /// `phase` is updated before each system call so that a child killed
    /// mid-operation (seccomp's SIGSYS, a timeout) is still attributed to
    /// the right step; `value` receives results such as the Landlock ABI.
    pub(crate) fn run(&self, phase: &dyn Fn(usize), value: &dyn Fn(i64)) -> Result<(), i32> {
        // SAFETY (whole function): every pointer handed to the kernel points
        // into buffers owned by `self`, alive until the child is reaped.
        unsafe {
            match self {
                Op::Unshare(flags) => sys!(libc::SYS_unshare, *flags).map(drop),
                Op::WriteFile { path, data } => {
                    phase(0);
                    let fd = sys!(
                        libc::SYS_openat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        libc::O_WRONLY | libc::O_CLOEXEC
                    )?;
                    phase(1);
                    let written = sys!(libc::SYS_write, fd, data.as_ptr(), data.len());
                    let _ = sys!(libc::SYS_close, fd);
                    match written? {
                        n if n == data.len() => Ok(()),
                        _ => Err(libc::EIO),
                    }
                }
                Op::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                    ..
                } => sys!(
                    libc::SYS_mount,
                    opt_ptr(source),
                    target.as_ptr(),
                    opt_ptr(fstype),
                    *flags,
                    opt_ptr(data)
                )
                .map(drop),
                Op::SetHostname(name) => {
                    sys!(libc::SYS_sethostname, name.as_ptr(), name.len()).map(drop)
                }
                Op::CapBsetDrop(cap) => {
                    sys!(libc::SYS_prctl, libc::PR_CAPBSET_DROP, *cap, 0, 0, 0).map(drop)
                }
                Op::NoNewPrivs => {
                    sys!(libc::SYS_prctl, libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).map(drop)
                }
                Op::SeccompAllowAll { program, .. } => {
                    sys!(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, program.get()).map(drop)
                }
                Op::LandlockAbi => {
                    let abi = sys!(
                        libc::SYS_landlock_create_ruleset,
                        0,
                        0,
                        LANDLOCK_CREATE_RULESET_VERSION
                    )?;
                    value(abi as i64);
                    Ok(())
                }
                Op::LandlockRestrict { handled_access_fs } => {
                    phase(0);
                    let attr: *const u64 = &**handled_access_fs;
                    let fd = sys!(libc::SYS_landlock_create_ruleset, attr, 8, 0)?;
                    phase(1);
                    let restricted = sys!(libc::SYS_landlock_restrict_self, fd, 0);
                    let _ = sys!(libc::SYS_close, fd);
                    restricted.map(drop)
                }
                Op::RouteNetlink { request, reply, .. } => {
                    phase(0);
                    let fd = sys!(
                        libc::SYS_socket,
                        libc::AF_NETLINK,
                        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                        libc::NETLINK_ROUTE
                    )?;
                    let result = loopback_address_exchange(fd, request, reply.get(), phase);
                    let _ = sys!(libc::SYS_close, fd);
                    result
                }
                Op::SignalReady { fd } => {
                    let byte = 1u8;
                    sys!(libc::SYS_write, *fd, &byte as *const u8, 1).map(drop)
                }
                Op::Control(control) => control.run().map(drop),
                Op::Mkdir(path) => {
                    sys!(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755).map(drop)
                }
                Op::NoDescriptor { errno, .. } => Err(*errno),
                Op::PivotRoot { new_root, put_old } => {
                    sys!(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()).map(drop)
                }
                Op::Kvm { path } => {
                    phase(0);
                    let fd = open_rw(path)?;
                    phase(1);
                    let version = sys!(libc::SYS_ioctl, fd, KVM_GET_API_VERSION, 0)?;
                    if version != KVM_API_VERSION {
                        value(version as i64);
                        return Err(libc::EPROTO);
                    }
                    phase(2);
                    // The VM is closed with the child's descriptors.
                    sys!(libc::SYS_ioctl, fd, KVM_CREATE_VM, 0).map(drop)
                }
                Op::Tun { path, ifreq } => {
                    phase(0);
                    let fd = open_rw(path)?;
                    phase(1);
                    sys!(libc::SYS_ioctl, fd, TUNSETIFF, ifreq.get()).map(drop)
                }
                Op::Fuse {
                    path,
                    reserved,
                    target,
                    data,
                } => {
                    use std::os::fd::AsRawFd;
                    phase(0);
                    let fd = open_rw(path)?;
                    phase(1);
                    // The child's own table: the parent's descriptor of the
                    // same number is untouched.
                    sys!(libc::SYS_dup3, fd, reserved.as_raw_fd(), libc::O_CLOEXEC)?;
                    phase(2);
                    let fstype = c"fuse";
                    sys!(
                        libc::SYS_mount,
                        fstype.as_ptr(),
                        target.as_ptr(),
                        fstype.as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        data.as_ptr()
                    )
                    .map(drop)
                }
                Op::WaitForRelease { fd } => {
                    let mut byte = 0u8;
                    loop {
                        match sys!(libc::SYS_read, *fd, &mut byte as *mut u8, 1) {
                            Err(libc::EINTR) => continue,
                            other => return other.map(drop),
                        }
                    }
                }
            }
        }
    }
}

/// Sends a route-netlink request and reads the kernel's acknowledgement.
///
/// # Safety
/// Runs in the probe child; `reply` points to the op's reply buffer.
unsafe fn loopback_address_exchange(
    fd: usize,
    request: &[u8],
    reply: *mut [u8; 512],
    phase: &dyn Fn(usize),
) -> Result<(), i32> {
    phase(1);
    unsafe {
        sys!(
            libc::SYS_sendto,
            fd,
            request.as_ptr(),
            request.len(),
            0,
            0,
            0
        )
    }?;
    phase(2);
    let n = unsafe { sys!(libc::SYS_recvfrom, fd, reply.cast::<u8>(), 512, 0, 0, 0) }?;
    phase(3);
    // SAFETY: the kernel wrote `n` bytes; nothing else writes the buffer.
    let reply = unsafe { &*reply };
    // struct nlmsgerr follows the 16-byte header: its first field is the
    // negated errno, 0 for success.
    let kind = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let error = reply
        .get(16..20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (n >= 20, kind, error) {
        (true, Some(t), Some(0)) if t == libc::NLMSG_ERROR as u16 => Ok(()),
        (true, Some(t), Some(e)) if t == libc::NLMSG_ERROR as u16 => Err(e.wrapping_neg()),
        _ => Err(libc::EPROTO),
    }
}

/// `openat(path, O_RDWR|O_CLOEXEC)`, in the probe child (its descriptors
/// close when it exits).
///
/// # Safety
/// Runs in the probe child; `path` is owned by the op.
unsafe fn open_rw(path: &CString) -> Result<usize, i32> {
    unsafe {
        sys!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC
        )
    }
}

fn opt_ptr(s: &Option<CString>) -> *const libc::c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

fn cstring(s: &str) -> CString {
    // Every path and string here is built by this crate without NUL bytes.
    CString::new(s).unwrap_or_default()
}

/// Best-effort: no core file from a probe child killed by a signal (it
/// would hold the whole test process's memory). Runs in the child.
pub(crate) fn disable_core_dumps() {
    let zero = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit64 on self with a valid new-limit pointer.
    let _: RawResult = unsafe {
        sys!(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_CORE,
            &zero as *const libc::rlimit64,
            0
        )
    };
}
