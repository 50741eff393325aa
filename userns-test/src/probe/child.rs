//! The probe child: created with `clone(2)`, it runs a prepared list of
//! [`Op`]s and records how far it got in a page shared with the parent.
//!
//! Why `clone(CLONE_VM)`: the test process is multithreaded and may be
//! large. A `fork()` copies its page tables (over 100 ms for 4 GiB), and
//! `unshare(CLONE_NEWUSER)` in the process itself fails with EINVAL. A child
//! sharing the address space costs the same whatever the process's size and
//! is single-threaded. It does not use `CLONE_VFORK`, so that the parent can
//! enforce a time bound on a child that never finishes.
//!
//! On kernels before 5.16 a core dump of a `CLONE_VM` child kills every
//! process sharing its memory, so there the child is a full copy instead
//! (slower for big processes, but a seccomp kill cannot take the test down).

use std::ffi::c_void;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, mprotect, munmap};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::program::{Op, disable_core_dumps};

/// Stack for the child: generous for the ops, with a guard page below.
const STACK_SIZE: usize = 256 * 1024;
const PAGE: usize = 4096;
/// `op` value once every op succeeded.
pub(crate) const ALL_DONE: usize = usize::MAX;

/// Where the child records its progress. Lives in a `MAP_SHARED` page so
/// the parent sees it whether or not the child shares its memory.
#[repr(C)]
struct Report {
    op: AtomicUsize,
    phase: AtomicUsize,
    errno: AtomicI32,
    value: AtomicI64,
}

/// What the parent hands the child through `clone`'s argument.
struct ChildArgs<'a> {
    ops: &'a [Op],
    report: &'a Report,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildEnd {
    /// It ran its ops and exited: 0 when all succeeded.
    Exited(i32),
    /// A signal killed it (SIGSYS from a seccomp filter, SIGKILL, ...).
    Killed(Signal),
    /// It did not finish within the time bound, and was killed and reaped.
    TimedOut(Duration),
}

/// The outcome of one child run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildRun {
    pub end: ChildEnd,
    /// Index of the op the child was at ([`ALL_DONE`] after the last one).
    pub op: usize,
    /// Phase within that op.
    pub phase: usize,
    /// The errno of the failed op, 0 if none failed.
    pub errno: i32,
    /// A value an op recorded (Landlock ABI).
    pub value: i64,
}

/// The parent could not run the child at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpawnError {
    /// `clone` itself failed (EAGAIN: process limit; EPERM/ENOSPC with
    /// namespace flags; ...).
    Clone(Errno),
    /// Setting up the child's memory failed.
    Memory(Errno),
}

/// Runs `ops` in a new child created with `clone(extra_flags)`, calls
/// `during` with the child's pid while it runs (the parent's half of a
/// handshake), then waits for it for at most `timeout`.
pub(crate) fn run_child<T>(
    ops: &[Op],
    extra_flags: libc::c_int,
    timeout: Duration,
    during: impl FnOnce(Pid, Instant) -> T,
) -> Result<(ChildRun, T), SpawnError> {
    let deadline = Instant::now() + timeout;
    let report_page = Mapping::new(PAGE, MapFlags::MAP_SHARED).map_err(SpawnError::Memory)?;
    let stack = Mapping::new(STACK_SIZE, MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK)
        .map_err(SpawnError::Memory)?;
    // Guard page: a stack overflow in the child faults instead of writing
    // into the parent's memory.
    // SAFETY: the first page of our own fresh mapping.
    unsafe { mprotect(stack.ptr, PAGE, ProtFlags::PROT_NONE) }.map_err(SpawnError::Memory)?;

    // SAFETY: the page is zeroed, aligned, and large enough for Report,
    // whose fields are valid when zero.
    let report = unsafe { &*report_ptr(&report_page) };
    let args = ChildArgs { ops, report };

    let (pid, pidfd) = clone_child(&args, &stack, extra_flags)?;
    let result = during(pid, deadline);
    let end = wait_child(pid, pidfd.as_ref(), deadline, timeout);
    let run = ChildRun {
        end,
        op: report.op.load(Ordering::Acquire),
        phase: report.phase.load(Ordering::Acquire),
        errno: report.errno.load(Ordering::Acquire),
        value: report.value.load(Ordering::Acquire),
    };
    // The child is reaped: its stack and report page can go.
    drop(stack);
    drop(report_page);
    Ok((run, result))
}

fn report_ptr(page: &Mapping) -> *const Report {
    page.ptr.as_ptr().cast::<Report>()
}

/// `clone` with signals blocked, so that no handler of the test process
/// runs in the child; the mask is restored in the parent straight after.
fn clone_child(
    args: &ChildArgs<'_>,
    stack: &Mapping,
    extra_flags: libc::c_int,
) -> Result<(Pid, Option<OwnedFd>), SpawnError> {
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(SpawnError::Memory)?;
    let vm = if shares_memory_safely() {
        libc::CLONE_VM
    } else {
        0
    };
    // Exit signal 0: no SIGCHLD, no auto-reaping when the test process
    // ignores SIGCHLD, and `waitpid(-1)` elsewhere in the test process
    // cannot steal the child (it needs __WALL).
    let mut flags = vm | libc::CLONE_PIDFD | extra_flags;
    let mut result = raw_clone(args, stack, flags);
    if matches!(result, Err(Errno::EINVAL)) && flags & libc::CLONE_PIDFD != 0 {
        // Kernels before 5.2 have no CLONE_PIDFD: poll waitpid instead.
        flags &= !libc::CLONE_PIDFD;
        result = raw_clone(args, stack, flags);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    result
        .map(|(pid, fd)| {
            (
                pid,
                (flags & libc::CLONE_PIDFD != 0).then_some(fd).flatten(),
            )
        })
        .map_err(SpawnError::Clone)
}

fn raw_clone(
    args: &ChildArgs<'_>,
    stack: &Mapping,
    flags: libc::c_int,
) -> Result<(Pid, Option<OwnedFd>), Errno> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the stack top is the end of our mapping (stacks grow down on
    // every supported architecture); `args` outlives the child, which is
    // reaped before run_child returns.
    let pid = unsafe {
        let top = stack.ptr.as_ptr().cast::<u8>().add(stack.len);
        libc::clone(
            child_main,
            top.cast::<c_void>(),
            flags,
            (args as *const ChildArgs<'_>).cast_mut().cast::<c_void>(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    if pid < 0 {
        return Err(Errno::last());
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor we own.
    let fd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    Ok((Pid::from_raw(pid), fd))
}

/// The child's entry point.
///
/// Runs between clone and exit, in a process that shares the parent's
/// memory: only raw system calls on prepared buffers (no allocation, no
/// locks, no libc errno, no printing, no panics). Its return value becomes
/// the exit status.
extern "C" fn child_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs the parent keeps alive until it has
    // reaped this child.
    let args = unsafe { &*(arg as *const ChildArgs<'_>) };
    disable_core_dumps();
    let report = args.report;
    let phase = |p: usize| report.phase.store(p, Ordering::Release);
    let value = |v: i64| report.value.store(v, Ordering::Release);
    for (index, op) in args.ops.iter().enumerate() {
        report.phase.store(0, Ordering::Release);
        report.op.store(index, Ordering::Release);
        if let Err(errno) = op.run(&phase, &value) {
            report.errno.store(errno, Ordering::Release);
            return 1;
        }
    }
    report.op.store(ALL_DONE, Ordering::Release);
    0
}

/// Waits for the child until `deadline`; past it, kills and reaps it.
fn wait_child(pid: Pid, pidfd: Option<&OwnedFd>, deadline: Instant, timeout: Duration) -> ChildEnd {
    let finished = match pidfd {
        Some(fd) => wait_readable(pid, fd, deadline),
        None => poll_exit(pid, deadline),
    };
    match finished {
        Some(end) => end,
        None => {
            // Not finished in time (stopped, blocked, looping): kill it. It
            // is our unreaped child, so the pid cannot have been reused.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = reap(pid, WaitPidFlag::empty());
            ChildEnd::TimedOut(timeout)
        }
    }
}

/// Polls the pidfd until the child exits (then reaps it) or the deadline.
fn wait_readable(pid: Pid, fd: &OwnedFd, deadline: Instant) -> Option<ChildEnd> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let ms = if left.is_zero() { 0 } else { ms.max(1) };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) if left.is_zero() => return None,
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return reap(pid, WaitPidFlag::empty()),
            Err(_) => return None,
        }
    }
}

/// Fallback without pidfd: `waitpid(WNOHANG)` with a short backoff.
fn poll_exit(pid: Pid, deadline: Instant) -> Option<ChildEnd> {
    let mut pause = Duration::from_micros(20);
    loop {
        if let Some(end) = reap(pid, WaitPidFlag::WNOHANG) {
            return Some(end);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// `waitpid(pid, __WALL | extra)`; `None` while it is still running.
fn reap(pid: Pid, extra: WaitPidFlag) -> Option<ChildEnd> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL | extra)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(ChildEnd::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(ChildEnd::Killed(sig)),
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            // ECHILD: somebody else reaped it; treat as finished.
            Err(_) => return Some(ChildEnd::Exited(-1)),
        }
    }
}

/// Whether a core dump of a `CLONE_VM` child stays within the child:
/// true from Linux 5.16 ("coredump: Limit coredumps to a single thread
/// group").
fn shares_memory_safely() -> bool {
    static SAFE: OnceLock<bool> = OnceLock::new();
    *SAFE.get_or_init(|| {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        kernel_at_least(&release, (5, 16))
    })
}

pub(crate) fn kernel_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// An anonymous mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    fn new(len: usize, flags: MapFlags) -> Result<Mapping, Errno> {
        let size = std::num::NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                flags,
            )
        }?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by any child.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A child that never finishes is killed at the bound and reaped: the
    /// verdict says it timed out, at the step it was stuck in.
    #[test]
    fn stuck_child_times_out_and_is_reaped() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let ops = [Op::WaitForRelease {
            fd: read.as_raw_fd(),
        }];
        let bound = Duration::from_millis(100);
        let started = Instant::now();
        let (run, pid) = run_child(&ops, 0, bound, |pid, _| pid).unwrap();
        assert_eq!(run.end, ChildEnd::TimedOut(bound));
        assert_eq!(run.op, 0);
        assert!(started.elapsed() >= bound);
        // Reaped: no such child any more.
        assert_eq!(
            waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD)
        );
    }

    /// A child stopped with SIGSTOP (a debugger, a freezer) is the same.
    #[test]
    fn stopped_child_times_out() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let ops = [Op::WaitForRelease {
            fd: read.as_raw_fd(),
        }];
        let bound = Duration::from_millis(100);
        let (run, ()) = run_child(&ops, 0, bound, |pid, _| {
            kill(pid, Signal::SIGSTOP).unwrap();
        })
        .unwrap();
        assert_eq!(run.end, ChildEnd::TimedOut(bound));
    }

    #[test]
    fn kernel_versions_compare() {
        assert!(kernel_at_least("6.18.44-fc-v595", (5, 16)));
        assert!(kernel_at_least("5.16.0", (5, 16)));
        assert!(!kernel_at_least("5.14.0-427.el9.x86_64", (5, 16)));
        assert!(!kernel_at_least("garbage", (5, 16)));
    }
}
