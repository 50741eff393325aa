//! Helpers for the example suite in `tests/`: run a program in new
//! namespaces the way a jailer does, from a multithreaded test process.
//!
//! The namespace work happens in `Command::pre_exec`, i.e. in the forked
//! child before `exec`: only async-signal-safe calls there, with every
//! string prepared before the fork.

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use nix::sched::{CloneFlags, unshare};

/// Map lines and paths, built before the fork.
struct Maps {
    uid_line: Vec<u8>,
    gid_line: Vec<u8>,
    setgroups: CString,
    uid_map: CString,
    gid_map: CString,
}

impl Maps {
    fn for_current_user() -> Maps {
        Maps {
            uid_line: format!("0 {} 1", nix::unistd::geteuid()).into_bytes(),
            gid_line: format!("0 {} 1", nix::unistd::getegid()).into_bytes(),
            setgroups: c"/proc/self/setgroups".into(),
            uid_map: c"/proc/self/uid_map".into(),
            gid_map: c"/proc/self/gid_map".into(),
        }
    }

    /// Runs in the forked child: raw open/write only.
    fn write(&self) -> io::Result<()> {
        write_file(&self.setgroups, b"deny")?;
        write_file(&self.uid_map, &self.uid_line)?;
        write_file(&self.gid_map, &self.gid_line)
    }
}

fn write_file(path: &CString, data: &[u8]) -> io::Result<()> {
    // SAFETY: plain system calls on valid buffers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n != data.len() as isize {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs `program args` as root of a new user namespace plus `flags`, after
/// `setup` (which runs in the child, after the maps are written).
pub fn run_in_namespaces(
    flags: CloneFlags,
    setup: impl Fn() -> io::Result<()> + Send + Sync + 'static,
    program: &str,
    args: &[&str],
) -> io::Result<Output> {
    let maps = Maps::for_current_user();
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: the closure makes only async-signal-safe calls on buffers
    // prepared above.
    unsafe {
        command.pre_exec(move || {
            unshare(CloneFlags::CLONE_NEWUSER | flags).map_err(io::Error::from)?;
            maps.write()?;
            setup()
        });
    }
    command.output()
}

/// A jailer's private mount namespace: makes `/` private, mounts a tmpfs
/// named `source` on `/tmp`, and returns what `cat /proc/self/mountinfo`
/// printed inside.
pub fn mountinfo_with_private_tmpfs(source: &'static str) -> io::Result<Output> {
    run_in_namespaces(
        CloneFlags::CLONE_NEWNS,
        move || {
            use nix::mount::{MsFlags, mount};
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            mount(
                Some(source),
                "/tmp",
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )?;
            Ok(())
        },
        "cat",
        &["/proc/self/mountinfo"],
    )
}

/// Brings `lo` up in the current network namespace and sends a datagram
/// to itself over it: proof the loopback works. Runs in the child.
pub fn loopback_roundtrip() -> io::Result<()> {
    // SAFETY: socket/ioctl/bind/sendto/recv on stack buffers.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&raw const addr).cast(), len) < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut bound = addr;
        let mut bound_len = len;
        libc::getsockname(fd, (&raw mut bound).cast(), &mut bound_len);
        let sent = libc::sendto(
            fd,
            b"ping".as_ptr().cast(),
            4,
            0,
            (&raw const bound).cast(),
            len,
        );
        let mut buf = [0u8; 4];
        let got = libc::recv(fd, buf.as_mut_ptr().cast(), 4, libc::MSG_DONTWAIT);
        libc::close(fd);
        if sent != 4 || got != 4 || &buf != b"ping" {
            return Err(io::Error::other("no datagram came back over lo"));
        }
    }
    Ok(())
}

/// Runs `bwrap ARGS --ro-bind / / echo TEXT` (bwrap from `USERNS_TEST_BWRAP`
/// or `PATH`) and returns what it printed.
pub fn bwrap_echo(args: &[&str], text: &str) -> Result<String, String> {
    let bwrap = std::env::var("USERNS_TEST_BWRAP").unwrap_or_else(|_| "bwrap".into());
    let out = Command::new(&bwrap)
        .args(args)
        .args(["--ro-bind", "/", "/", "echo", text])
        .output()
        .map_err(|e| format!("{bwrap} did not start: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{bwrap} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Drops `cap` from the bounding set of a child and returns the child's
/// `CapBnd`.
pub fn bounding_set_after_dropping(cap: u32) -> io::Result<u64> {
    let mut cmd = Command::new("grep");
    cmd.args(["CapBnd", "/proc/self/status"]);
    // SAFETY: prctl only, in the forked child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    u64::from_str_radix(line.trim().trim_start_matches("CapBnd:").trim(), 16)
        .map_err(|e| io::Error::other(format!("unreadable CapBnd {line:?}: {e}")))
}
