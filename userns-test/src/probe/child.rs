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
//! # Nothing in the test process can change a verdict
//! A test process may ignore SIGCHLD, set `SA_NOCLDWAIT`, or reap children
//! itself (a SIGCHLD handler, a thread looping `waitpid(-1, __WALL)`). So:
//!
//! - the child's exit signal is 0: no SIGCHLD, no automatic reaping, and
//!   only a waiter passing `__WALL` or `__WCLONE` can see it;
//! - the child writes its result in the shared page just before it exits,
//!   so its exit status is not needed to know what happened; it is read
//!   (through `waitid(P_PIDFD)`, bound to this very child) only to learn a
//!   signal that killed it. If another waiter took it and the child had
//!   recorded nothing (it died mid-operation), the probe runs again under a
//!   *supervisor*: a child of the probe that is the probe child's parent,
//!   which no waiter of the test process can reap, and which writes the
//!   exit status into the page;
//! - a program (bubblewrap, newuidmap) is always started under a
//!   supervisor, in a process group of its own, with every signal
//!   disposition reset (a SIGCHLD ignored by the test process would
//!   otherwise be ignored by bubblewrap too). The supervisor is a child
//!   subreaper: on a time-out it kills the program's whole group while the
//!   leader is still unreaped (so the group id cannot have been reused),
//!   and reaps everything of the tree that is left to it;
//! - a child is signalled only through its pidfd, or, by the supervisor,
//!   while it is the supervisor's unreaped child.
//!
//! On kernels before 5.16 a core dump of a `CLONE_VM` child kills every
//! process sharing its memory, so there the child is a full copy instead
//! (slower for big processes, but a seccomp kill cannot take the test down).

use std::ffi::{CString, c_void};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, mprotect, munmap};
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use nix::unistd::Pid;

use super::program::{Op, disable_core_dumps};
use super::raw::{RawResult, sys, syscall6};

/// Stack for the probe child: generous for the ops, with a guard page.
const STACK_SIZE: usize = 256 * 1024;
/// Stack for a supervisor, and for a program's child before its `execve`.
const SMALL_STACK: usize = 64 * 1024;
const PAGE: usize = 4096;
/// `op` value once every op succeeded.
pub(crate) const ALL_DONE: usize = usize::MAX;
/// How much of a program's stderr is kept.
const STDERR_LIMIT: usize = 64 * 1024;
/// The most pipes a program's run reads: its stderr and two captures
/// (the parent polls them from a fixed array, without allocating).
const MAX_STREAMS: usize = 3;
/// How long a supervisor may outlive its time bound (killing and reaping a
/// program's tree) before the parent gives up on it.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(2);

const SECCOMP_SET_MODE_FILTER: usize = 1;

/// `recorded` (0 while nothing is): every op succeeded.
const RECORDED_DONE: u32 = 1;
/// `recorded`: an op failed with `errno`.
const RECORDED_FAILED: u32 = 2;

/// `end_kind` of a supervised process.
const END_NONE: u32 = 0;
const END_EXITED: u32 = 1;
const END_KILLED: u32 = 2;
const END_TIMED_OUT: u32 = 3;
const END_SPAWN_FAILED: u32 = 4;

/// Where the child records its progress, and a supervisor what became of
/// its child. Lives in a `MAP_SHARED` page so the parent sees it whether or
/// not the child shares its memory.
#[repr(C)]
struct Report {
    op: AtomicUsize,
    phase: AtomicUsize,
    errno: AtomicI32,
    value: AtomicI64,
    /// How the ops ended ([`RECORDED_DONE`], [`RECORDED_FAILED`]), written
    /// by the child just before it exits.
    recorded: AtomicU32,
    /// A supervisor's record of its child: how it ended ([`END_EXITED`],
    /// ...) and the exit code, signal or errno.
    end_kind: AtomicU32,
    end_value: AtomicI32,
    /// A program's child could not `execve` any candidate: the errno
    /// (`execvp`'s: EACCES if some candidate gave it, else the last).
    exec_errno: AtomicI32,
    /// The candidate path being executed (the one that ran, once the exec
    /// worked), by index.
    exec_index: AtomicU32,
    /// The first candidate that exists but could not be executed (index
    /// plus one; 0: none), and why.
    exec_first_failed: AtomicU32,
    exec_first_errno: AtomicI32,
    /// The mode of the candidate being executed (plans not stopped at the
    /// first system call only), or 0 where it could not be read.
    exec_mode: AtomicU32,
}

/// What the parent hands the probe child through `clone`'s argument.
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
    Killed(i32),
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
    /// namespace flags; EMFILE: no descriptor for the pidfd; ...).
    Clone(Errno),
    /// Setting up the child's memory failed.
    Memory(Errno),
}

/// How a child's end was learnt.
enum Waited {
    /// Its exit status, reaped by this probe.
    End(ChildEnd),
    /// It ended, but another waiter of the test process took its status.
    Taken,
    /// It was killed at the time bound and had still not ended seconds
    /// later (stuck in an uninterruptible wait).
    Unkillable,
}

/// Runs `ops` in a new child created with `clone(extra_flags)`, calls
/// `during` with the child's pid while it runs (the parent's half of a
/// handshake), then waits for it for at most `timeout`.
///
/// The result comes from the page the child writes. Only where the child
/// died without writing it and another waiter of the test process took its
/// exit status (so the signal is unknown) is the probe run again under a
/// supervisor; `during` is then not called again, so probes with a
/// handshake must record their result before they can die (they wait for
/// their release, then record).
pub(crate) fn run_child<T>(
    ops: &[Op],
    extra_flags: libc::c_int,
    timeout: Duration,
    during: impl FnOnce(Pid, Instant) -> T,
) -> Result<(ChildRun, T), SpawnError> {
    let deadline = Instant::now() + timeout;
    let memory = ChildMemory::take()?;
    let report = memory.report();
    let args = ChildArgs { ops, report };

    let (pid, pidfd) = clone_child(&args, &memory.stack, extra_flags)?;
    let result = during(pid, deadline);
    let waited = wait_child(pid, pidfd.as_ref(), deadline, timeout);
    let recorded = report.recorded.load(Ordering::Acquire);
    let end = match waited {
        Waited::End(end) => end,
        // Another waiter took the status: the page says how the ops ended.
        Waited::Taken if recorded == RECORDED_DONE => ChildEnd::Exited(0),
        Waited::Taken if recorded == RECORDED_FAILED => ChildEnd::Exited(1),
        Waited::Taken => {
            // It died mid-operation and its status is gone: learn how,
            // from a supervisor no waiter can disturb.
            memory.give_back();
            let run = run_supervised(
                Task::Probe {
                    ops,
                    flags: extra_flags,
                },
                timeout,
            )?;
            return Ok((run.child, result));
        }
        Waited::Unkillable => {
            // Killed and never gone (stuck in the kernel): it may still
            // write its page or use its stack, so they are left mapped.
            std::mem::forget(memory);
            return Ok((
                ChildRun {
                    end: ChildEnd::TimedOut(timeout),
                    op: 0,
                    phase: 0,
                    errno: 0,
                    value: 0,
                },
                result,
            ));
        }
    };
    let run = ChildRun {
        end,
        op: report.op.load(Ordering::Acquire),
        phase: report.phase.load(Ordering::Acquire),
        errno: report.errno.load(Ordering::Acquire),
        value: report.value.load(Ordering::Acquire),
    };
    // The child is gone: its stack and report page can serve the next one.
    memory.give_back();
    Ok((run, result))
}

/// A probe child's stack and report page, kept for the next probe: a
/// fresh mapping for each would cost the probe its mapping, guard page,
/// page faults and unmapping (a third of a cheap probe).
struct ChildMemory {
    report: Mapping,
    stack: Mapping,
}

/// At most this many are kept (probes run from a few threads at once).
const MEMORY_KEPT: usize = 4;

static MEMORY_POOL: std::sync::Mutex<Vec<ChildMemory>> = std::sync::Mutex::new(Vec::new());

// SAFETY: the mappings are owned; only the thread that took one uses it.
unsafe impl Send for ChildMemory {}

impl ChildMemory {
    fn take() -> Result<ChildMemory, SpawnError> {
        if let Some(m) = MEMORY_POOL.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(m);
        }
        Ok(ChildMemory {
            report: Mapping::new(PAGE, MapFlags::MAP_SHARED).map_err(SpawnError::Memory)?,
            stack: Mapping::stack(STACK_SIZE)?,
        })
    }

    fn report(&self) -> &Report {
        // SAFETY: the page is zeroed (fresh, or reset when given back),
        // aligned, and large enough for Report, whose fields are valid when
        // zero.
        unsafe { &*self.report.ptr.as_ptr().cast::<Report>() }
    }

    /// Back to the pool, its page zeroed, once no child uses it.
    fn give_back(self) {
        // SAFETY: our own page, no child left to write it.
        unsafe {
            std::ptr::write_bytes(
                self.report.ptr.as_ptr().cast::<u8>(),
                0,
                std::mem::size_of::<Report>(),
            )
        };
        if let Ok(mut pool) = MEMORY_POOL.lock()
            && pool.len() < MEMORY_KEPT
        {
            pool.push(self);
        }
    }
}

/// `clone` with signals blocked, so that no handler of the test process
/// runs in the child; the mask is restored in the parent straight after.
fn clone_child(
    args: &ChildArgs<'_>,
    stack: &Mapping,
    extra_flags: libc::c_int,
) -> Result<(Pid, Option<OwnedFd>), SpawnError> {
    let vm = if shares_memory_safely() {
        libc::CLONE_VM
    } else {
        0
    };
    // Exit signal 0: no SIGCHLD, no auto-reaping when the test process
    // ignores SIGCHLD, and a `waitpid(-1)` elsewhere in the test process
    // cannot see the child (it needs __WALL).
    clone_with_pidfd(
        child_main,
        stack,
        vm | extra_flags,
        (args as *const ChildArgs<'_>).cast_mut().cast::<c_void>(),
    )
    .map_err(SpawnError::Clone)
}

/// `clone(entry, arg)` with all signals blocked in the parent around it
/// (the child starts with them all blocked), asking for a pidfd, and
/// without one on kernels before 5.2 (EINVAL).
fn clone_with_pidfd(
    entry: extern "C" fn(*mut c_void) -> libc::c_int,
    stack: &Mapping,
    flags: libc::c_int,
    arg: *mut c_void,
) -> Result<(Pid, Option<OwnedFd>), Errno> {
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )?;
    let mut result = raw_clone(entry, stack, flags | libc::CLONE_PIDFD, arg);
    if matches!(result, Err(Errno::EINVAL)) {
        result = raw_clone(entry, stack, flags, arg);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    result
}

fn raw_clone(
    entry: extern "C" fn(*mut c_void) -> libc::c_int,
    stack: &Mapping,
    flags: libc::c_int,
    arg: *mut c_void,
) -> Result<(Pid, Option<OwnedFd>), Errno> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the stack top is the end of our mapping (stacks grow down on
    // every supported architecture); `arg` outlives the child, which is
    // reaped (or known gone) before the caller returns.
    let pid = unsafe {
        libc::clone(
            entry,
            stack.top(),
            flags,
            arg,
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

/// The probe child's entry point.
///
/// Runs between clone and exit, in a process that shares the parent's
/// memory: only raw system calls on prepared buffers (no allocation, no
/// locks, no libc errno, no printing, no panics). Its return value becomes
/// the exit status; its result is in the report page before it returns.
extern "C" fn child_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs the parent keeps alive until the
    // child is gone.
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
            report.recorded.store(RECORDED_FAILED, Ordering::Release);
            return 1;
        }
    }
    report.op.store(ALL_DONE, Ordering::Release);
    report.recorded.store(RECORDED_DONE, Ordering::Release);
    0
}

/// Waits for the child until `deadline`; past it, kills it through its
/// pidfd and reaps it.
fn wait_child(pid: Pid, pidfd: Option<&OwnedFd>, deadline: Instant, timeout: Duration) -> Waited {
    let Some(fd) = pidfd else {
        return poll_exit(pid, deadline, timeout);
    };
    if !readable_by(fd, deadline) {
        // Not finished in time (stopped, blocked, looping). Signalled
        // through its pidfd: the pid may already belong to another
        // process if a waiter of the test process took this one.
        pidfd_kill(fd);
        if !readable_by(fd, Instant::now() + Duration::from_secs(5)) {
            return Waited::Unkillable;
        }
        let _ = reap_pidfd(fd);
        return Waited::End(ChildEnd::TimedOut(timeout));
    }
    reap_pidfd(fd).unwrap_or(Waited::Taken)
}

/// Polls `fd` (a pidfd: readable once the process ended) until `deadline`.
fn readable_by(fd: &OwnedFd, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let ms = if left.is_zero() { 0 } else { ms.max(1) };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) if left.is_zero() => return false,
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

/// Reaps the process of `pidfd` (`waitid(P_PIDFD)`, bound to it, so no
/// other child is reaped by mistake). `None` if the kernel cannot
/// (before 5.4).
fn reap_pidfd(fd: &OwnedFd) -> Option<Waited> {
    let mut info = [0i32; 32];
    loop {
        // SAFETY: waitid writes at most a siginfo_t (128 bytes) into `info`.
        let r: RawResult = unsafe {
            sys!(
                libc::SYS_waitid,
                libc::P_PIDFD,
                fd.as_raw_fd(),
                info.as_mut_ptr(),
                libc::WEXITED | libc::__WALL,
                0
            )
        };
        return match r {
            Ok(_) => Some(Waited::End(end_of(&info))),
            Err(libc::EINTR) => continue,
            Err(libc::ECHILD) => Some(Waited::Taken),
            Err(_) => None,
        };
    }
}

/// The end a `siginfo_t` of `waitid` describes: `si_code` is its third
/// int, `si_status` its seventh on every supported (64-bit) target.
fn end_of(info: &[i32; 32]) -> ChildEnd {
    match info[2] {
        libc::CLD_EXITED => ChildEnd::Exited(info[6]),
        _ => ChildEnd::Killed(info[6]),
    }
}

/// Sends SIGKILL through a pidfd.
fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
    let _: RawResult = unsafe {
        sys!(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            0,
            0
        )
    };
}

/// Fallback without pidfd (kernels before 5.2): `waitpid(WNOHANG |
/// __WALL)` with a short backoff. Here a pid whose status another waiter
/// took could be reused before the time bound; such a child is not killed.
fn poll_exit(pid: Pid, deadline: Instant, timeout: Duration) -> Waited {
    let mut pause = Duration::from_micros(20);
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our child with a status buffer of our own.
        let r = unsafe { libc::waitpid(pid.as_raw(), &mut status, libc::WNOHANG | libc::__WALL) };
        if r == pid.as_raw() {
            return Waited::End(if libc::WIFEXITED(status) {
                ChildEnd::Exited(libc::WEXITSTATUS(status))
            } else {
                ChildEnd::Killed(libc::WTERMSIG(status))
            });
        }
        if r < 0 && Errno::last() == Errno::ECHILD {
            return Waited::Taken;
        }
        if Instant::now() >= deadline {
            // Still our unreaped child (the last waitpid said so): its pid
            // cannot have been reused.
            // SAFETY: kill on our unreaped child.
            unsafe { libc::kill(pid.as_raw(), libc::SIGKILL) };
            // SAFETY: as above.
            let _ = unsafe { libc::waitpid(pid.as_raw(), &mut status, libc::__WALL) };
            return Waited::End(ChildEnd::TimedOut(timeout));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// A program to start under a supervisor, prepared in full before any
/// clone: the path, `argv` and `envp` as C arrays, and the descriptors for
/// its stdin (`/dev/null`), stdout (`/dev/null`) and stderr (a pipe).
pub(crate) struct ExecPlan {
    /// Where the program may be, in `execvp`'s order: the path given, or
    /// each `PATH` directory joined with the name.
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    stdin: OwnedFd,
    stdout: OwnedFd,
    /// Pipes the parent reads while the program runs: its stderr first,
    /// then any [`ExecPlan::capture`] added.
    streams: Vec<Stream>,
    /// The supervisor's report page, for the program's child to record a
    /// failed `execve` in (set before each run).
    report: AtomicUsize,
    /// A seccomp filter, installed just before `execve`, that kills the
    /// program at its first system call (`program(...)`: the exec is done,
    /// the program's own code never runs).
    stop: Option<StopFilter>,
    /// Descriptors handed to the program: each (numbered 10 or above here)
    /// placed at its target.
    passed: Vec<(OwnedFd, RawFd)>,
}

/// A BPF program allowing `execve`, `exit` and `exit_group` and killing
/// the process on any other system call. Boxed so the pointer in `program`
/// stays valid when the plan moves.
struct StopFilter {
    _instructions: Box<[libc::sock_filter]>,
    program: Box<libc::sock_fprog>,
}

impl StopFilter {
    fn new() -> StopFilter {
        let statement = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let allow_if = |nr: libc::c_long| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr as u32,
        };
        let allow = statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
        // seccomp_data.nr is the first field.
        let instructions: Box<[libc::sock_filter]> = Box::new([
            statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            allow_if(libc::SYS_execve),
            allow,
            allow_if(libc::SYS_exit),
            allow,
            allow_if(libc::SYS_exit_group),
            allow,
            statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        ]);
        let program = Box::new(libc::sock_fprog {
            len: instructions.len() as u16,
            filter: instructions.as_ptr().cast_mut(),
        });
        StopFilter {
            _instructions: instructions,
            program,
        }
    }
}

/// `strings` as a NULL-terminated C array (pointing into them).
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A pipe from the program to the parent.
struct Stream {
    /// The descriptor the program finds it under.
    target: RawFd,
    /// The write end: closed by the parent right after the supervisor's
    /// clone (which has its own copy, under the same number), so that the
    /// end of file comes when the program's tree ends; -1 once closed here.
    write: AtomicI32,
    /// Its number, for the program's child: the supervisor's copy of the
    /// descriptor table still has it after the parent closed its own.
    write_fd: RawFd,
    read: OwnedFd,
    /// How much of it is kept.
    limit: usize,
}

impl Stream {
    /// A pipe whose write end is numbered 10 or above, so that placing one
    /// stream at its target never overwrites another's write end.
    fn new(target: RawFd, limit: usize) -> Result<Stream, Errno> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let high = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
        drop(write);
        Ok(Stream {
            target,
            write: AtomicI32::new(high),
            write_fd: high,
            read,
            limit,
        })
    }

    fn close_write_end(&self) {
        let fd = self.write.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: a descriptor this stream owned, closed once.
            let _: RawResult = unsafe { sys!(libc::SYS_close, fd) };
        }
    }
}

// SAFETY: the raw pointers point into the CStrings the plan owns, which
// are never changed after it is built.
unsafe impl Sync for ExecPlan {}

impl ExecPlan {
    /// `program args`, with this process's environment. Errors are what
    /// opening `/dev/null` or the pipe returned (EMFILE under a low
    /// `RLIMIT_NOFILE`).
    pub(crate) fn new(
        program: &Path,
        args: &[impl AsRef<std::ffi::OsStr>],
    ) -> Result<ExecPlan, Errno> {
        let path = CString::new(program.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        ExecPlan::with_candidates(path.clone(), vec![path], args)
    }

    /// `name args`, found as `execvp` (and so `Command::new`) finds it: a
    /// name with a `/` as it is; else each directory of `PATH` in order
    /// (an empty entry is the current directory; `/bin:/usr/bin` without
    /// `PATH`), skipping those where the exec fails with EACCES, ENOENT or
    /// ENOTDIR. The search runs in the program's child, under the time
    /// bound: a directory on a hung file system cannot hang the test.
    pub(crate) fn search(
        name: &str,
        args: &[impl AsRef<std::ffi::OsStr>],
    ) -> Result<ExecPlan, Errno> {
        let c = |s: &[u8]| CString::new(s).map_err(|_| Errno::EINVAL);
        let candidates = if name.contains('/') {
            vec![c(name.as_bytes())?]
        } else {
            let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
            path.as_bytes()
                .split(|&b| b == b':')
                .map(|dir| {
                    let mut p = if dir.is_empty() {
                        b".".to_vec()
                    } else {
                        dir.to_vec()
                    };
                    p.push(b'/');
                    p.extend_from_slice(name.as_bytes());
                    c(&p)
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        ExecPlan::with_candidates(c(name.as_bytes())?, candidates, args)
    }

    /// The candidate path at `index`.
    pub(crate) fn candidate(&self, index: usize) -> Option<std::path::PathBuf> {
        self.candidates
            .get(index)
            .map(|c| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(c.as_bytes())))
    }

    fn with_candidates(
        argv0: CString,
        candidates: Vec<CString>,
        args: &[impl AsRef<std::ffi::OsStr>],
    ) -> Result<ExecPlan, Errno> {
        let c = |s: &[u8]| CString::new(s).map_err(|_| Errno::EINVAL);
        let mut argv = vec![argv0];
        for a in args {
            argv.push(c(a.as_ref().as_bytes())?);
        }
        let envp: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let null = |flags| {
            nix::fcntl::open(
                "/dev/null",
                flags | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
        };
        let stdin = null(nix::fcntl::OFlag::O_RDONLY)?;
        let stdout = null(nix::fcntl::OFlag::O_WRONLY)?;
        let stderr = Stream::new(2, STDERR_LIMIT)?;
        Ok(ExecPlan {
            argv_ptrs: pointers(&argv),
            envp_ptrs: pointers(&envp),
            candidates,
            _argv: argv,
            _envp: envp,
            stdin,
            stdout,
            streams: vec![stderr],
            report: AtomicUsize::new(0),
            stop: None,
            passed: Vec::new(),
        })
    }

    /// Hands `fd` to the program as descriptor `target` (3 and up, not a
    /// captured stream's): it stays open across `execve` there, and only
    /// there (this process's copy is close-on-exec).
    pub(crate) fn pass(mut self, fd: impl AsFd, target: RawFd) -> Result<ExecPlan, Errno> {
        // Numbered 10 or above, as stream write ends are: placing one
        // descriptor never overwrites another still to be placed.
        let high = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
        // SAFETY: fcntl just returned this new descriptor.
        let high = unsafe { OwnedFd::from_raw_fd(high) };
        self.passed.push((high, target));
        Ok(self)
    }

    /// The same plan, stopped by a seccomp filter at the program's first
    /// system call after `execve` (see [`StopFilter`]).
    pub(crate) fn stopped_at_first_system_call(mut self) -> ExecPlan {
        self.stop = Some(StopFilter::new());
        self
    }

    /// Keeps up to `limit` bytes of the program's stderr (64 KiB unless
    /// set).
    pub(crate) fn stderr_limit(mut self, limit: usize) -> ExecPlan {
        self.streams[0].limit = limit;
        self
    }

    /// Adds a pipe the program finds as descriptor `target` (3 and up),
    /// read while it runs, keeping up to `limit` bytes: in
    /// [`Supervised::captured`], in the order added. At most two
    /// (EINVAL past them).
    pub(crate) fn capture(mut self, target: RawFd, limit: usize) -> Result<ExecPlan, Errno> {
        if self.streams.len() == MAX_STREAMS {
            return Err(Errno::EINVAL);
        }
        self.streams.push(Stream::new(target, limit)?);
        Ok(self)
    }

    /// Adds `key=value` to the program's environment.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Result<ExecPlan, Errno> {
        let prefix = format!("{key}=");
        self._envp
            .retain(|kv| !kv.as_bytes().starts_with(prefix.as_bytes()));
        self._envp
            .push(CString::new(format!("{key}={value}")).map_err(|_| Errno::EINVAL)?);
        self.envp_ptrs = pointers(&self._envp);
        Ok(self)
    }

    /// Removes `key` from the program's environment.
    pub(crate) fn env_remove(mut self, key: &str) -> ExecPlan {
        let prefix = format!("{key}=");
        self._envp
            .retain(|kv| !kv.as_bytes().starts_with(prefix.as_bytes()));
        self.envp_ptrs = pointers(&self._envp);
        self
    }

    /// Closes this process's copies of the pipes' write ends.
    fn close_write_ends(&self) {
        for stream in &self.streams {
            stream.close_write_end();
        }
    }
}

impl Drop for ExecPlan {
    fn drop(&mut self) {
        self.close_write_ends();
    }
}

/// What a supervisor runs.
pub(crate) enum Task<'a> {
    /// A probe child doing `ops`, created with `flags`.
    Probe { ops: &'a [Op], flags: libc::c_int },
    /// A program.
    Exec(&'a ExecPlan),
}

/// What a supervised run produced.
pub(crate) struct Supervised {
    /// The probe child's or program's run (for a program, `op`, `phase`,
    /// `errno` and `value` are unused).
    pub child: ChildRun,
    /// The program could not be started: `execve`'s errno.
    pub exec_errno: Option<i32>,
    /// The first [`STDERR_LIMIT`] bytes the program wrote to stderr (or
    /// the plan's [`ExecPlan::stderr_limit`]).
    pub stderr: Captured,
    /// What the program wrote to each [`ExecPlan::capture`] pipe, in the
    /// order added.
    pub captured: Vec<Captured>,
    /// The program's path: the candidate that was executed (or, if none
    /// could be, the last tried).
    pub exec_path: Option<std::path::PathBuf>,
    /// Its mode, read just before its exec (plans not stopped at the first
    /// system call).
    pub exec_mode: Option<u32>,
    /// The first candidate that exists but could not be executed, and the
    /// errno (`execvp` went on to the next).
    pub exec_skipped: Option<(std::path::PathBuf, i32)>,
    /// The signal that killed the supervisor itself before it could say how
    /// the program ended (the program signalled its parent); the program
    /// then died with it (its parent-death signal). `child.end` is then
    /// not the program's.
    pub supervisor_killed: Option<i32>,
}

/// What the program wrote to one pipe, within the pipe's limit.
#[derive(Default)]
pub(crate) struct Captured {
    pub bytes: Vec<u8>,
    /// It wrote more than the limit.
    pub truncated: bool,
}

/// What the parent hands the supervisor: everything prepared.
struct SupervisorArgs<'a> {
    task: &'a Task<'a>,
    report: &'a Report,
    /// The probe child's arguments (probe task).
    child: ChildArgs<'a>,
    stack: &'a Mapping,
    timeout_ns: i64,
}

/// Runs `task` under a supervisor: a child of this process (exit signal 0,
/// so no waiter of the test process sees it without `__WALL`) that is the
/// parent of the probe child or program, waits for it with the time bound,
/// kills and reaps what it started, and writes how it ended in the page.
/// So the result never depends on a status another waiter could take.
pub(crate) fn run_supervised(task: Task<'_>, timeout: Duration) -> Result<Supervised, SpawnError> {
    let report_page = Mapping::new(PAGE, MapFlags::MAP_SHARED).map_err(SpawnError::Memory)?;
    let supervisor_stack = Mapping::stack(SMALL_STACK)?;
    let child_stack = Mapping::stack(match task {
        Task::Probe { .. } => STACK_SIZE,
        Task::Exec(_) => SMALL_STACK,
    })?;
    // SAFETY: as in run_child.
    let report = unsafe { &*report_page.ptr.as_ptr().cast::<Report>() };
    let ops: &[Op] = match &task {
        Task::Probe { ops, .. } => ops,
        Task::Exec(_) => &[],
    };
    let args = SupervisorArgs {
        task: &task,
        report,
        child: ChildArgs { ops, report },
        stack: &child_stack,
        timeout_ns: timeout.as_nanos().min(i64::MAX as u128) as i64,
    };
    let streams: &[Stream] = match &task {
        Task::Exec(plan) => &plan.streams,
        Task::Probe { .. } => &[],
    };
    let mut outputs: Vec<Captured> = streams
        .iter()
        .map(|s| Captured {
            bytes: Vec::with_capacity(s.limit.min(4096)),
            truncated: false,
        })
        .collect();
    if let Task::Exec(plan) = &task {
        plan.report
            .store(report as *const Report as usize, Ordering::Release);
    }
    // From the clone until the supervisor is reaped, this thread makes raw
    // system calls only: the supervisor calls libc's `clone`, which may set
    // `errno` in this thread's thread-local storage (it shares it).
    let (_pid, pidfd) = clone_with_pidfd(
        supervisor_main,
        &supervisor_stack,
        libc::CLONE_VM,
        (&args as *const SupervisorArgs<'_>)
            .cast_mut()
            .cast::<c_void>(),
    )
    .map_err(SpawnError::Clone)?;
    // The program's pipes: only its copies of the write ends may be left,
    // for the end of file to come when it ends.
    if let Task::Exec(plan) = &task {
        plan.close_write_ends();
    }
    let deadline = Instant::now() + timeout + SUPERVISOR_GRACE;
    let supervisor_fd = pidfd.as_ref().map(|f| f.as_raw_fd());
    let mut pipes = [(-1, 0); MAX_STREAMS];
    for (pipe, stream) in pipes.iter_mut().zip(streams) {
        *pipe = (stream.read.as_raw_fd(), stream.limit);
    }
    // Without a pidfd (kernels before 5.2), the pipes are polled in short
    // slices and the supervisor's record looked for.
    let at_bound = relay(
        &pipes[..streams.len()],
        &mut outputs,
        supervisor_fd.unwrap_or(-1),
        deadline,
        Duration::from_millis(2),
        &mut |readable| match supervisor_fd {
            Some(_) => readable,
            None => report.end_kind.load(Ordering::Acquire) != END_NONE,
        },
    );
    let mut killed_at_bound = false;
    if at_bound && let Some(fd) = &pidfd {
        pidfd_kill(fd);
        killed_at_bound = true;
    }
    let supervisor_ended = match &pidfd {
        Some(fd) => match reap_pidfd(fd) {
            Some(Waited::End(end)) => Some(end),
            _ => None,
        },
        None => {
            let mut status = 0;
            // SAFETY: waitpid on our child.
            let _ = unsafe { libc::waitpid(_pid.as_raw(), &mut status, libc::__WALL) };
            None
        }
    };
    drop(pidfd);
    // A supervisor that ended without saying how its child ended, and not
    // by this process's hand: something else killed it (the program it
    // ran, which may signal its parent).
    let supervisor_killed = match (report.end_kind.load(Ordering::Acquire), supervisor_ended) {
        (END_NONE, Some(ChildEnd::Killed(sig))) if !killed_at_bound => Some(sig),
        _ => None,
    };
    let value = report.end_value.load(Ordering::Acquire);
    let end = match report.end_kind.load(Ordering::Acquire) {
        END_EXITED => ChildEnd::Exited(value),
        END_KILLED => ChildEnd::Killed(value),
        END_SPAWN_FAILED => {
            return Err(SpawnError::Clone(Errno::from_raw(value)));
        }
        // END_TIMED_OUT, or a supervisor that never reported (killed at
        // the parent's own bound).
        _ => ChildEnd::TimedOut(timeout),
    };
    let exec_errno = report.exec_errno.load(Ordering::Acquire);
    let (exec_path, exec_mode, exec_skipped) = match &task {
        Task::Exec(plan) => {
            let first = report.exec_first_failed.load(Ordering::Acquire) as usize;
            let mode = report.exec_mode.load(Ordering::Acquire);
            (
                plan.candidate(report.exec_index.load(Ordering::Acquire) as usize),
                (mode != 0).then_some(mode),
                first.checked_sub(1).and_then(|i| {
                    Some((
                        plan.candidate(i)?,
                        report.exec_first_errno.load(Ordering::Acquire),
                    ))
                }),
            )
        }
        Task::Probe { .. } => (None, None, None),
    };
    let child = ChildRun {
        end,
        op: report.op.load(Ordering::Acquire),
        phase: report.phase.load(Ordering::Acquire),
        errno: report.errno.load(Ordering::Acquire),
        value: report.value.load(Ordering::Acquire),
    };
    drop(child_stack);
    drop(supervisor_stack);
    drop(report_page);
    let mut outputs = outputs.into_iter();
    Ok(Supervised {
        child,
        exec_errno: (exec_errno != 0).then_some(exec_errno),
        stderr: outputs.next().unwrap_or_default(),
        captured: outputs.collect(),
        exec_path,
        exec_mode,
        exec_skipped,
        supervisor_killed,
    })
}

/// Reads each of `streams` (a pipe's read end, and the most of it kept)
/// into `outputs` until the process watched is `finished` and the pipes
/// have nothing more now (closed, or held open by a descendant that
/// escaped its group), or `deadline` passes: `true` then. Until it is
/// finished, waits on `watch` (a pidfd, a reply socket; -1 for none, then
/// in slices of `slice`) and the pipes, and asks `finished(readable)`,
/// `readable` whether `watch` polled readable, after each round's reads;
/// once it is, takes only what the pipes already hold.
/// Raw system calls on a stack buffer (the caller may share its `errno`
/// with a `CLONE_VM` child); only `outputs` grow.
pub(crate) fn relay(
    streams: &[(RawFd, usize)],
    outputs: &mut [Captured],
    watch: RawFd,
    deadline: Instant,
    slice: Duration,
    finished: &mut dyn FnMut(bool) -> bool,
) -> bool {
    let mut open = [true; MAX_STREAMS];
    let mut buf = [0u8; 4096];
    let mut done = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        // The watched descriptor, then each stream (-1, ignored by poll,
        // once closed).
        let mut fds = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; 1 + MAX_STREAMS];
        fds[0].fd = if done { -1 } else { watch };
        for (i, (fd, _)) in streams.iter().enumerate() {
            fds[i + 1].fd = if open[i] { *fd } else { -1 };
        }
        let wait = match (done, watch) {
            (true, _) => Duration::ZERO,
            (false, -1) => left.min(slice),
            (false, _) => left,
        };
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: ppoll on our own descriptors and stack buffers.
        let r: RawResult = unsafe {
            sys!(
                libc::SYS_ppoll,
                fds.as_mut_ptr(),
                1 + streams.len(),
                &ts as *const libc::timespec,
                0,
                8
            )
        };
        if let Err(e) = r
            && e != libc::EINTR
        {
            return false;
        }
        let mut readable = false;
        for (i, &(fd, limit)) in streams.iter().enumerate() {
            if !open[i] || fds[i + 1].revents == 0 {
                continue;
            }
            readable = true;
            // SAFETY: read into our own buffer.
            match unsafe { sys!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) } {
                Err(libc::EINTR) => {}
                Ok(0) | Err(_) => open[i] = false,
                Ok(n) => {
                    let out = &mut outputs[i];
                    let room = limit.saturating_sub(out.bytes.len());
                    out.truncated |= n > room;
                    out.bytes.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        done = done || finished(fds[0].revents != 0);
        if done && (!readable || !open[..streams.len()].contains(&true)) {
            // Finished, and the pipes have nothing now.
            return false;
        }
    }
}

/// The supervisor. Runs in a child sharing the parent's memory: raw system
/// calls on prepared buffers only (and libc's `clone`, which touches no
/// lock and no heap), all signals blocked.
extern "C" fn supervisor_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the SupervisorArgs the parent keeps alive until it
    // has reaped this supervisor.
    let args = unsafe { &*(arg as *const SupervisorArgs<'_>) };
    let report = args.report;
    disable_core_dumps();
    // SAFETY (whole function): raw system calls on our own buffers.
    unsafe {
        // SIGCHLD at its default here (this child has its own copy of the
        // handler table): a SIGCHLD the test process ignores, or its
        // SA_NOCLDWAIT, would have the kernel reap the program (whose
        // exit signal `execve` makes SIGCHLD) before we could wait for it.
        let default = [0u64; 4];
        let _: RawResult = sys!(
            libc::SYS_rt_sigaction,
            libc::SIGCHLD,
            default.as_ptr(),
            0,
            8
        );
        // Orphans of the program's tree come to us, to be reaped.
        let _: RawResult = sys!(libc::SYS_prctl, libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // Dies with the test process's thread that waits for it (which
        // waits until this supervisor ends): a killed test process leaves
        // no supervisor running on to its time bound.
        let _: RawResult = sys!(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL,
            0,
            0,
            0
        );
        let (entry, flags, child_arg): (
            extern "C" fn(*mut c_void) -> libc::c_int,
            libc::c_int,
            *mut c_void,
        ) = match args.task {
            Task::Probe { flags, .. } => (
                child_main,
                libc::CLONE_VM | *flags,
                (&args.child as *const ChildArgs<'_>).cast_mut().cast(),
            ),
            // CLONE_VFORK: this supervisor waits until the program's
            // child has called execve (or failed to).
            Task::Exec(plan) => (
                exec_main,
                libc::CLONE_VM | libc::CLONE_VFORK,
                (*plan as *const ExecPlan).cast_mut().cast(),
            ),
        };
        let exec = matches!(args.task, Task::Exec(_));
        let mut pidfd: libc::c_int = -1;
        let mut pid = libc::clone(
            entry,
            args.stack.top(),
            flags | libc::CLONE_PIDFD,
            child_arg,
            &mut pidfd as *mut libc::c_int,
        );
        if pid < 0 && *libc::__errno_location() == libc::EINVAL {
            pidfd = -1;
            pid = libc::clone(entry, args.stack.top(), flags, child_arg);
        }
        if pid < 0 {
            report
                .end_value
                .store(*libc::__errno_location(), Ordering::Release);
            report.end_kind.store(END_SPAWN_FAILED, Ordering::Release);
            return 1;
        }
        // Wait, with the time bound.
        let start = monotonic_ns();
        let mut timed_out = false;
        loop {
            if pidfd >= 0 {
                let elapsed = monotonic_ns() - start;
                let left = args.timeout_ns - elapsed;
                if left <= 0 {
                    timed_out = true;
                    break;
                }
                let ts = libc::timespec {
                    tv_sec: (left / 1_000_000_000) as libc::time_t,
                    tv_nsec: (left % 1_000_000_000) as libc::c_long,
                };
                let mut fd = libc::pollfd {
                    fd: pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                match sys!(
                    libc::SYS_ppoll,
                    &mut fd as *mut libc::pollfd,
                    1,
                    &ts as *const libc::timespec,
                    0,
                    8
                ) {
                    Ok(0) | Err(libc::EINTR) => continue,
                    Ok(_) => break,
                    Err(_) => break,
                }
            } else {
                // si_pid (the fifth int) is set once the child has ended.
                let mut info = [0i32; 32];
                let r = sys!(
                    libc::SYS_waitid,
                    libc::P_PID,
                    pid,
                    info.as_mut_ptr(),
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
                    0
                );
                if r.is_err() || info[4] != 0 {
                    break;
                }
                let elapsed = monotonic_ns() - start;
                if elapsed >= args.timeout_ns {
                    timed_out = true;
                    break;
                }
                let nap = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                let _: RawResult = sys!(libc::SYS_nanosleep, &nap as *const libc::timespec, 0);
            }
        }
        // Kill what is left while the child is still unreaped: its pid,
        // and for a program its process group's id, cannot be anyone
        // else's yet.
        if timed_out {
            let target = if exec { -pid } else { pid };
            let _: RawResult = sys!(libc::SYS_kill, target, libc::SIGKILL);
        }
        let (idtype, id) = if pidfd >= 0 {
            (libc::P_PIDFD, pidfd)
        } else {
            (libc::P_PID, pid)
        };
        let mut info = [0i32; 32];
        let _: RawResult = sys!(
            libc::SYS_waitid,
            idtype,
            id,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOWAIT | libc::__WALL,
            0
        );
        if exec {
            let _: RawResult = sys!(libc::SYS_kill, -pid, libc::SIGKILL);
        }
        let mut info = [0i32; 32];
        let reaped = sys!(
            libc::SYS_waitid,
            idtype,
            id,
            info.as_mut_ptr(),
            libc::WEXITED | libc::__WALL,
            0
        );
        if pidfd >= 0 {
            let _: RawResult = sys!(libc::SYS_close, pidfd);
        }
        // The rest of the tree, reparented to us (a daemon the program
        // started, in a session of its own and out of its group): killed
        // and reaped, round after round as each killed process's own
        // children come to us, for at most a second.
        sweep_children();
        let (kind, value) = if timed_out {
            (END_TIMED_OUT, 0)
        } else if reaped.is_ok() {
            match end_of(&info) {
                ChildEnd::Exited(code) => (END_EXITED, code),
                ChildEnd::Killed(sig) => (END_KILLED, sig),
                ChildEnd::TimedOut(_) => (END_TIMED_OUT, 0),
            }
        } else {
            (END_TIMED_OUT, 0)
        };
        report.end_value.store(value, Ordering::Release);
        report.end_kind.store(kind, Ordering::Release);
    }
    0
}

/// Kills and reaps every child of this (supervisor) process, until none
/// is left or a second has passed. The children are read from
/// `/proc/thread-self/children` (kernels with `CONFIG_PROC_CHILDREN`, as
/// Debian's, Ubuntu's and Fedora's); where it cannot be read, ended
/// children are only reaped. Killing by pid is safe here: a child's pid
/// cannot be reused before its parent, this process, reaps it. Raw system
/// calls on stack buffers only (it runs in a supervisor).
pub(crate) fn sweep_children() {
    const PATH: &[u8] = b"/proc/thread-self/children\0";
    let start = monotonic_ns();
    loop {
        // Reap whatever has ended.
        loop {
            let mut info = [0i32; 32];
            // SAFETY: waitid into our own buffer.
            let r: RawResult = unsafe {
                sys!(
                    libc::SYS_waitid,
                    libc::P_ALL,
                    0,
                    info.as_mut_ptr(),
                    libc::WEXITED | libc::WNOHANG | libc::__WALL,
                    0
                )
            };
            match r {
                Ok(_) if info[4] != 0 => continue,
                Ok(_) => break,
                // ECHILD: no child at all, the tree is gone.
                Err(_) => return,
            }
        }
        let mut killed = 0;
        // SAFETY: openat/read/close on our own buffers.
        unsafe {
            let fd: RawResult = sys!(
                libc::SYS_openat,
                libc::AT_FDCWD,
                PATH.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC
            );
            if let Ok(fd) = fd {
                let mut buf = [0u8; 1024];
                let mut pid: i32 = 0;
                let mut digits = false;
                loop {
                    let n = match sys!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for &b in &buf[..n] {
                        if b.is_ascii_digit() {
                            pid = pid.saturating_mul(10).saturating_add(i32::from(b - b'0'));
                            digits = true;
                        } else if digits {
                            let _: RawResult = sys!(libc::SYS_kill, pid, libc::SIGKILL);
                            killed += 1;
                            pid = 0;
                            digits = false;
                        }
                    }
                }
                if digits {
                    let _: RawResult = sys!(libc::SYS_kill, pid, libc::SIGKILL);
                    killed += 1;
                }
                let _: RawResult = sys!(libc::SYS_close, fd);
            }
        }
        if monotonic_ns() - start > 1_000_000_000 {
            return;
        }
        if killed == 0 {
            // Nothing listed (or no list): wait a little for what is
            // still ending, then look again.
            let nap = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            // SAFETY: nanosleep on our own timespec.
            let _: RawResult =
                unsafe { sys!(libc::SYS_nanosleep, &nap as *const libc::timespec, 0) };
        }
    }
}

/// Nanoseconds on the monotonic clock, by a raw system call (it runs in a
/// supervisor; every supported target has a 64-bit `time_t`).
fn monotonic_ns() -> i64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into our own timespec.
    let _: RawResult = unsafe {
        sys!(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut now as *mut libc::timespec
        )
    };
    now.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec)
}

/// The program's child, between `clone(CLONE_VM | CLONE_VFORK)` and
/// `execve`: raw system calls only. It leads a process group of its own
/// (so a time-out kills the program's whole tree), sets every signal to
/// its default disposition (a SIGCHLD the test process ignores would
/// otherwise stay ignored across `execve`) and unblocks them, wires
/// stdin, stdout and stderr, and executes.
extern "C" fn exec_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the ExecPlan the parent keeps alive; the report page
    // is the supervisor's.
    let plan = unsafe { &*(arg as *const ExecPlan) };
    let report = plan.report.load(Ordering::Acquire) as *const Report;
    // SAFETY (whole block): raw system calls on prepared buffers.
    unsafe {
        let _: RawResult = sys!(libc::SYS_setpgid, 0, 0);
        // Dies with the supervisor: one killed at the parent's bound while
        // this child hangs in `execve` (a PATH entry on a hung FUSE mount;
        // the supervisor waits for the exec, CLONE_VFORK) takes it along.
        let _: RawResult = sys!(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL,
            0,
            0,
            0
        );
        // A zeroed kernel `struct sigaction` is SIG_DFL with no flags and
        // an empty mask, whatever the architecture's layout.
        let default = [0u64; 4];
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                let _: RawResult = sys!(libc::SYS_rt_sigaction, sig, default.as_ptr(), 0, 8);
            }
        }
        let none = 0u64;
        let _: RawResult = sys!(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none as *const u64,
            0,
            8
        );
        place_fd(plan.stdin.as_raw_fd(), 0);
        place_fd(plan.stdout.as_raw_fd(), 1);
        // Stream write ends are 10 and up (see Stream::new), so no
        // placement overwrites one still to be placed.
        for stream in &plan.streams {
            place_fd(stream.write_fd, stream.target);
        }
        for (fd, target) in &plan.passed {
            place_fd(fd.as_raw_fd(), *target);
        }
        if let Some(stop) = &plan.stop {
            // RLIMIT_CORE 1: the kill at the first system call writes no
            // core file, and a core_pattern pipe (systemd-coredump) is
            // skipped too (the kernel's guard against recursive dumps).
            let one = libc::rlimit64 {
                rlim_cur: 1,
                rlim_max: 1,
            };
            let _: RawResult = sys!(
                libc::SYS_prlimit64,
                0,
                libc::RLIMIT_CORE,
                &one as *const libc::rlimit64,
                0
            );
            let install = || {
                sys!(
                    libc::SYS_seccomp,
                    SECCOMP_SET_MODE_FILTER,
                    0,
                    &*stop.program as *const libc::sock_fprog
                )
            };
            // Without CAP_SYS_ADMIN a filter needs NoNewPrivs (which only
            // keeps a setuid program from gaining privileges it would not
            // use before its first system call anyway).
            let installed = match install() {
                Err(libc::EACCES) => {
                    let _: RawResult = sys!(libc::SYS_prctl, libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                    install()
                }
                other => other,
            };
            if let Err(errno) = installed {
                // Never run the program unstopped.
                if !report.is_null() {
                    (*report).errno.store(errno, Ordering::Release);
                }
                return 126;
            }
        }
        // execvp's search: every candidate in order, past those that are
        // not there (ENOENT, ENOTDIR, ...) or cannot be executed (EACCES,
        // remembered); another error ends it.
        let mut errno = libc::ENOENT;
        let mut denied = false;
        for (i, path) in plan.candidates.iter().enumerate() {
            if !report.is_null() {
                (*report).exec_index.store(i as u32, Ordering::Release);
                let mut mode = 0;
                if plan.stop.is_none() {
                    // The mode of what is about to run (a setuid bwrap
                    // needs no unprivileged user namespaces); a stopped
                    // plan's filter allows no stat.
                    let mut st: libc::stat = std::mem::zeroed();
                    if sys!(
                        libc::SYS_newfstatat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        &mut st as *mut libc::stat,
                        0
                    )
                    .is_ok()
                    {
                        mode = st.st_mode;
                    }
                }
                (*report).exec_mode.store(mode, Ordering::Release);
            }
            let r = sys!(
                libc::SYS_execve,
                path.as_ptr(),
                plan.argv_ptrs.as_ptr(),
                plan.envp_ptrs.as_ptr()
            );
            let Err(e) = r else { break };
            errno = e;
            let not_there = matches!(
                e,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT
            );
            if !not_there
                && !report.is_null()
                && (*report).exec_first_failed.load(Ordering::Acquire) == 0
            {
                (*report).exec_first_errno.store(e, Ordering::Release);
                (*report)
                    .exec_first_failed
                    .store(i as u32 + 1, Ordering::Release);
            }
            match e {
                libc::EACCES => denied = true,
                _ if not_there => {}
                _ => break,
            }
        }
        if denied && matches!(errno, libc::ENOENT | libc::ENOTDIR) {
            errno = libc::EACCES;
        }
        if !report.is_null() {
            (*report).exec_errno.store(errno, Ordering::Release);
        }
    }
    127
}

/// `dup3(from, to)`; where they are the same descriptor, clears its
/// close-on-exec flag instead. Runs in the program's child.
unsafe fn place_fd(from: RawFd, to: RawFd) {
    if from < 0 {
        return;
    }
    // SAFETY: descriptor operations on our own table.
    unsafe {
        if from == to {
            let _: RawResult = sys!(libc::SYS_fcntl, to, libc::F_SETFD, 0);
        } else {
            let _: RawResult = sys!(libc::SYS_dup3, from, to, 0);
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

    /// A stack of `len` bytes whose lowest page is a guard: an overflow in
    /// the child faults instead of writing into the parent's memory.
    fn stack(len: usize) -> Result<Mapping, SpawnError> {
        let stack = Mapping::new(len, MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK)
            .map_err(SpawnError::Memory)?;
        // SAFETY: the first page of our own fresh mapping.
        unsafe { mprotect(stack.ptr, PAGE, ProtFlags::PROT_NONE) }.map_err(SpawnError::Memory)?;
        Ok(stack)
    }

    /// The top of a stack mapping (stacks grow down on every supported
    /// architecture).
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(self.len).cast() }
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
            nix::sys::wait::waitpid(
                pid,
                Some(nix::sys::wait::WaitPidFlag::__WALL | nix::sys::wait::WaitPidFlag::WNOHANG)
            ),
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
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        })
        .unwrap();
        assert_eq!(run.end, ChildEnd::TimedOut(bound));
    }

    /// A program run under a supervisor: its exit status, its stderr, an
    /// exec failure as an errno, and a time-out that kills its whole tree.
    #[test]
    fn supervised_programs_report_status_stderr_and_timeouts() {
        let sh = Path::new("/bin/sh");
        let plan = ExecPlan::new(sh, &["-c", "echo oops >&2; exit 3"]).unwrap();
        let run = run_supervised(Task::Exec(&plan), Duration::from_secs(10)).unwrap();
        assert_eq!(run.child.end, ChildEnd::Exited(3));
        assert_eq!(run.stderr.bytes, b"oops\n");
        assert_eq!(run.exec_errno, None);

        let plan = ExecPlan::new(Path::new("/nonexistent/program"), &[] as &[&str]).unwrap();
        let run = run_supervised(Task::Exec(&plan), Duration::from_secs(10)).unwrap();
        assert_eq!(run.exec_errno, Some(libc::ENOENT));

        // A sleep long and odd enough to be found by its command line.
        let marker = format!("sleep 7{}", std::process::id());
        let plan = ExecPlan::new(sh, &["-c", &format!("{marker} & {marker}")]).unwrap();
        let bound = Duration::from_millis(200);
        let run = run_supervised(Task::Exec(&plan), bound).unwrap();
        assert_eq!(run.child.end, ChildEnd::TimedOut(bound));
        // Nothing of the tree is left: the backgrounded sleep included.
        let left = std::process::Command::new("pgrep")
            .args(["-f", &format!("^{marker}$")])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&left.stdout)
        );
    }

    #[test]
    fn kernel_versions_compare() {
        assert!(kernel_at_least("6.18.44-fc-v595", (5, 16)));
        assert!(kernel_at_least("5.16.0", (5, 16)));
        assert!(!kernel_at_least("5.14.0-427.el9.x86_64", (5, 16)));
        assert!(!kernel_at_least("garbage", (5, 16)));
    }
}
