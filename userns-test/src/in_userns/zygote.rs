//! The zygote: a copy of the test process made before `main`, while it is
//! single-threaded, that starts every `#[in_userns]` body by `fork`
//! instead of executing the test binary again.
//!
//! Why: executing the binary again costs its whole start (loading, the
//! harness's argument parsing and listing, a second `main`): over a
//! millisecond a test in a release build, more in a large debug one. A
//! `fork` of the multithreaded test process cannot run Rust (another
//! thread may hold the allocator's or stdout's lock), but a fork of a
//! process that never had a second thread can.
//!
//! The flow, for one test:
//! 1. before `main`, the first `#[in_userns]` entry of `.init_array`
//!    forks the zygote (through an intermediate that exits: it is no child
//!    of the test process); the zygote runs the rest of `.init_array` itself
//!    (so what later constructors set up, registries included, is there
//!    as in the test process), checks it is still single-threaded, and
//!    waits for requests on a socket;
//! 2. the test thread writes the request (the body's function, its name,
//!    namespaces, ids, this thread's environment and working directory)
//!    to a memory file and sends it with the output pipes, the record
//!    channel and a reply socket;
//! 3. a *supervisor* the zygote forked ahead (a child subreaper, as the
//!    re-executing way's supervisor is) takes the request and forks the
//!    body's process; that process takes the environment, directory and pipes,
//!    enters the namespaces (`enter.rs`, the same steps), runs the body
//!    and records its outcome (`record.rs`);
//! 4. the supervisor waits with the time bound, kills the body's process
//!    group and sweeps what is left of its tree, and sends how the body's
//!    process ended on the reply socket; the zygote sends the signal that
//!    killed a supervisor that could not.
//!
//! Nothing the test process does with SIGCHLD or its children changes the
//! result: the supervisor and the body are the zygote's descendants, not
//! the test process's children.
//!
//! The body's process never ran `main`: Rust's runtime setup for the main
//! thread is done by hand where it matters (SIGPIPE ignored; the signals
//! the test process set up at run time are not there, as after `execve`).
//! What the test process changes at run time in itself and that a fork of
//! it before `main` does not see (a seccomp filter it installs, limits it
//! lowers) is seen by re-executing: [`EXEC_VAR`]`=1` asks for that way.
//! Where the zygote cannot be made (a thread already running before
//! `main`, no pidfds before Linux 5.3, a statically linked binary without
//! a dynamic section) the binary is executed again, as before.

use std::ffi::{OsString, c_char, c_int, c_void};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::record::{self, Channel, Record};
use crate::probe::child::{Captured, ChildEnd, relay};

pub(crate) use super::EXEC_VAR;

/// How long the supervisor may take past the time bound (killing and
/// sweeping the body's tree) before the test thread stops waiting.
const GRACE: Duration = Duration::from_secs(2);

/// The zygote, as the test process knows it: its socket and pid, set
/// before `main`.
static ZYGOTE: OnceLock<Zygote> = OnceLock::new();

struct Zygote {
    socket: OwnedFd,
    pid: u32,
}

/// Whether [`EXEC_VAR`] asks for re-execution: `Err` with the problem
/// where its value is neither `0` nor `1`.
pub(crate) fn exec_asked() -> Result<bool, String> {
    match std::env::var_os(EXEC_VAR) {
        None => Ok(false),
        Some(v) if v == "1" => Ok(true),
        Some(v) if v == "0" || v.is_empty() => Ok(false),
        Some(v) => Err(format!(
            "userns-test: {EXEC_VAR}={:?}: expected 1 (execute the test binary again for each \
             #[in_userns] body) or 0 (fork them from a copy made before main, the default)",
            v.to_string_lossy()
        )),
    }
}

/// Makes the zygote before `main` (called once: `enter`'s guard, which the
/// zygote inherits set, so the entries it runs itself start nothing).
/// `entry` is the `.init_array` function running now; `argc`, `argv` and `envp` are
/// what it was called with (the zygote calls the later entries with them).
pub(crate) fn start(
    entry: usize,
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    if !matches!(exec_asked(), Ok(false)) || !single_threaded() || !pidfds_work() {
        return;
    }
    // The constructors after this one, for the zygote to run: without
    // them (a dynamic section not found, this entry not in it), no zygote.
    let Some(later) = later_entries(entry) else {
        return;
    };
    let Some((ours, theirs)) = socket_pair() else {
        return;
    };
    // The zygote is not the test process's child: an intermediate forks
    // it and exits, so a test waiting for "every child" (`wait` until
    // ECHILD) never waits for it. It watches the test process through a
    // pidfd the intermediate opens while the test process waits for it.
    let Some((pid_r, pid_w)) = pipe() else {
        return;
    };
    // SAFETY: fork in a single-threaded process (checked above): the child
    // may run any code.
    let intermediate = unsafe { libc::fork() };
    if intermediate == 0 {
        drop(ours);
        drop(pid_r);
        // SAFETY: getppid, and pidfd_open of the parent, which is alive
        // (it waits for this process).
        let Some(test_process) = pidfd_of(unsafe { libc::getppid() }) else {
            // SAFETY: ends this child without the process's atexit handlers.
            unsafe { libc::_exit(0) }
        };
        // SAFETY: fork in a single-threaded process.
        let zygote = unsafe { libc::fork() };
        if zygote != 0 {
            // SAFETY: the zygote's pid to the test process, then gone.
            unsafe {
                libc::write(pid_w.as_raw_fd(), (&zygote as *const i32).cast(), 4);
                libc::_exit(0)
            }
        }
        drop(pid_w);
        for f in later {
            // SAFETY: the entries glibc would call next in this process,
            // with its arguments, once each.
            unsafe {
                let f: extern "C" fn(c_int, *const *const c_char, *const *const c_char) =
                    std::mem::transmute(f);
                f(argc, argv, envp);
            }
        }
        // A constructor that started a thread makes forking unsafe: no
        // zygote (the test process sees its socket closed).
        if !single_threaded() {
            // SAFETY: ends the zygote without the process's atexit handlers.
            unsafe { libc::_exit(0) };
        }
        as_if_executed(&[theirs.as_raw_fd(), test_process.as_raw_fd()]);
        serve(theirs, test_process)
    }
    drop(theirs);
    drop(pid_w);
    if intermediate < 0 {
        return;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child (an ignored SIGCHLD makes this
    // ECHILD once it is gone: the same).
    while unsafe { libc::waitpid(intermediate, &mut status, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    let mut zygote = 0i32;
    // SAFETY: read into our own integer.
    let n = unsafe { libc::read(pid_r.as_raw_fd(), (&mut zygote as *mut i32).cast(), 4) };
    if n == 4 && zygote > 0 {
        let _ = ZYGOTE.set(Zygote {
            socket: ours,
            pid: zygote as u32,
        });
    }
}

/// The zygote's pid, where this process has one (for tests).
pub fn zygote_pid() -> Option<u32> {
    ZYGOTE.get().map(|z| z.pid)
}


/// Makes the zygote, once, what executing the binary gives every body's
/// process: every signal at its default disposition (an ignored one stays
/// ignored across `execve`, and the re-executing way reset them) but
/// SIGPIPE, ignored as Rust's runtime sets it; none blocked; the
/// descriptors marked close-on-exec closed, but `keep`; stdin, stdout and
/// stderr `/dev/null`. Its supervisors and bodies inherit all of it.
fn as_if_executed(keep: &[RawFd]) {
    // SAFETY: this single-threaded process's own signal table and mask.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    close_cloexec_except(keep);
    // Not the test process's streams: a harness that waits for them to
    // close (nextest's leak check) never waits for the zygote. A body's
    // stdin is /dev/null, as the re-executed binary's is; its stdout and
    // stderr are the pipes of its request.
    // SAFETY: open and dup2 on this process's own descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(null);
        }
    }
}

/// Closes every descriptor marked close-on-exec but `keep`: the zygote's
/// own (sockets, pidfds) in a supervisor, what executing the binary would
/// have closed in the zygote.
fn close_cloexec_except(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        // SAFETY: fcntl and close on descriptors of this process (the
        // directory's own is closed already, or EBADF here).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if fd > 2 && !keep.contains(&fd) && flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                libc::close(fd);
            }
        }
    }
}

/// Whether this process has one thread (`Threads:` of its status).
pub(super) fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .is_some_and(|n| n.trim() == "1")
    })
}

/// Whether `pidfd_open` works (Linux 5.3 and later, not refused by a
/// filter): the zygote and supervisors wait for their children with it.
fn pidfds_work() -> bool {
    // SAFETY: getpid.
    pidfd_of(unsafe { libc::getpid() }).is_some()
}

/// `struct Elf64_Dyn`.
#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

const DT_NULL: i64 = 0;
const DT_INIT_ARRAY: i64 = 25;
const DT_INIT_ARRAYSZ: i64 = 27;

/// The main program's `.init_array` entries after `entry`, read from its
/// dynamic section: `None` where it has none, or where `entry` is not in
/// the array found (then nothing is guessed).
fn later_entries(entry: usize) -> Option<Vec<usize>> {
    struct Found {
        bias: usize,
        array: Option<(u64, u64)>,
        loaded: Vec<(usize, usize)>,
    }
    unsafe extern "C" fn first(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: glibc hands a valid info; `data` is our Found.
        unsafe {
            let found = &mut *data.cast::<Found>();
            let info = &*info;
            found.bias = info.dlpi_addr as usize;
            for i in 0..usize::from(info.dlpi_phnum) {
                let ph = &*info.dlpi_phdr.add(i);
                let start = found.bias.wrapping_add(ph.p_vaddr as usize);
                if ph.p_type == libc::PT_LOAD {
                    found.loaded.push((start, start + ph.p_memsz as usize));
                }
                if ph.p_type == libc::PT_DYNAMIC {
                    let (mut at, mut size) = (None, None);
                    let mut d = start as *const Dyn;
                    while (*d).tag != DT_NULL {
                        match (*d).tag {
                            DT_INIT_ARRAY => at = Some((*d).val),
                            DT_INIT_ARRAYSZ => size = Some((*d).val),
                            _ => {}
                        }
                        d = d.add(1);
                    }
                    found.array = at.zip(size);
                }
            }
        }
        // The first object is the main program: stop there.
        1
    }
    let mut found = Found {
        bias: 0,
        array: None,
        loaded: Vec::new(),
    };
    // SAFETY: the callback only reads what glibc hands it.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut found as *mut Found).cast()) };
    let (at, size) = found.array?;
    let len = size as usize / std::mem::size_of::<usize>();
    // The address as written by the linker, or already relocated by the
    // loader: whichever lies in a loaded segment and holds `entry`.
    [found.bias.wrapping_add(at as usize), at as usize]
        .into_iter()
        .filter(|&start| {
            let end = start.wrapping_add(size as usize);
            start % std::mem::align_of::<usize>() == 0
                && found.loaded.iter().any(|&(s, e)| s <= start && end <= e && start <= end)
        })
        .find_map(|start| {
            // SAFETY: within a loaded segment of the main program (checked).
            let array = unsafe { std::slice::from_raw_parts(start as *const usize, len) };
            let i = array.iter().position(|&f| f == entry)?;
            Some(array[i + 1..].to_vec())
        })
}

/// What a body's process needs, written by the test thread.
pub(crate) struct Request<'a> {
    pub name: &'a str,
    pub should_panic: bool,
    pub body: fn() -> Result<(), String>,
    pub namespaces: &'a str,
    pub ids: Option<String>,
    pub as_caller: bool,
    pub timeout: Duration,
}

/// A body started by the zygote: the reply socket and the output pipes.
pub(crate) struct Started {
    reply: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Asks the zygote to start `request`'s body, recording into `channel`:
/// `None` where there is no zygote (or it is gone) or a descriptor for it
/// could not be made, for the caller to execute the binary again instead.
pub(crate) fn request(request: &Request<'_>, channel: &Channel) -> Option<Started> {
    let zygote = ZYGOTE.get()?;
    let file = request_file(request, &channel.key_hex()).ok()?;
    let (reply, reply_theirs) = socket_pair()?;
    let (stdout, stdout_w) = pipe()?;
    let (stderr, stderr_w) = pipe()?;
    // SAFETY: open of "." with flags; the descriptor is ours.
    let cwd = unsafe {
        libc::open(
            c".".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if cwd < 0 {
        return None;
    }
    // SAFETY: open returned it.
    let cwd = unsafe { OwnedFd::from_raw_fd(cwd) };
    let fds = [
        file.as_raw_fd(),
        reply_theirs.as_raw_fd(),
        stdout_w.as_raw_fd(),
        stderr_w.as_raw_fd(),
        channel.fd().as_raw_fd(),
        cwd.as_raw_fd(),
    ];
    send_fds(zygote.socket.as_raw_fd(), &fds).then_some(Started {
        reply,
        stdout,
        stderr,
    })
}

/// How a started body ended, as its supervisor saw it.
pub(crate) struct Ended {
    pub end: ChildEnd,
    /// The supervisor died before saying how the body ended: the signal,
    /// where known.
    pub supervisor_lost: Option<Option<i32>>,
    /// The supervisor could not fork the body's process: the errno.
    pub spawn_errno: Option<i32>,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Tags of the reply socket's messages.
const REPLY_ENDED: u32 = 1;
const REPLY_SPAWN_FAILED: u32 = 2;
const REPLY_SUPERVISOR_KILLED: u32 = 3;
const REPLY_SUPERVISOR_EXITED: u32 = 4;
const END_EXITED: i32 = 1;
const END_KILLED: i32 = 2;
const END_TIMED_OUT: i32 = 3;

/// Waits for the body `started` runs, reading its output (up to `limit`
/// bytes of each stream), for at most `within` and a grace.
pub(crate) fn wait(started: Started, within: Duration, limit: usize) -> Ended {
    let mut outputs = [Captured::default(), Captured::default()];
    // The first word on the reply socket is the one that counts: the
    // supervisor's, or the zygote's for a supervisor that died; its end
    // without one, a zygote gone.
    let mut reply: Option<[i32; 3]> = None;
    let at_bound = relay(
        &[
            (started.stdout.as_raw_fd(), limit),
            (started.stderr.as_raw_fd(), limit),
        ],
        &mut outputs,
        started.reply.as_raw_fd(),
        Instant::now() + within + GRACE,
        within + GRACE,
        &mut |readable| {
            if !readable {
                return false;
            }
            let mut message = [0i32; 3];
            // SAFETY: recv into our own buffer.
            let r = unsafe {
                libc::recv(
                    started.reply.as_raw_fd(),
                    message.as_mut_ptr().cast(),
                    std::mem::size_of_val(&message),
                    0,
                )
            };
            if r == std::mem::size_of_val(&message) as isize {
                reply = Some(message);
            }
            r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)
        },
    );
    let [stdout, stderr] = outputs;
    let (end, supervisor_lost, spawn_errno) = match reply {
        Some([tag, kind, value]) => match (tag as u32, kind) {
            (REPLY_ENDED, END_EXITED) => (ChildEnd::Exited(value), None, None),
            (REPLY_ENDED, END_KILLED) => (ChildEnd::Killed(value), None, None),
            (REPLY_ENDED, END_TIMED_OUT) => (ChildEnd::TimedOut(within), None, None),
            (REPLY_SPAWN_FAILED, _) => (ChildEnd::Exited(-1), None, Some(value)),
            (REPLY_SUPERVISOR_KILLED, _) => (ChildEnd::Killed(value), Some(Some(value)), None),
            _ => (ChildEnd::Exited(-1), Some(None), None),
        },
        None if at_bound => (ChildEnd::TimedOut(within), None, None),
        None => (ChildEnd::Exited(-1), Some(None), None),
    };
    Ended {
        end,
        supervisor_lost,
        spawn_errno,
        stdout,
        stderr,
    }
}

/// The request's bytes, in a memory file the supervisor reads: the body's
/// address, flags, time bound, strings, then the environment.
fn request_file(request: &Request<'_>, key: &str) -> std::io::Result<std::fs::File> {
    let mut bytes = Vec::with_capacity(4096);
    bytes.extend_from_slice(&(request.body as usize as u64).to_le_bytes());
    bytes.push(u8::from(request.should_panic));
    bytes.push(u8::from(request.as_caller));
    let ns = request.timeout.as_nanos().min(u64::MAX as u128) as u64;
    bytes.extend_from_slice(&ns.to_le_bytes());
    let ids = request.ids.as_deref().unwrap_or("");
    for s in [request.name, request.namespaces, ids, key] {
        put(&mut bytes, s.as_bytes());
    }
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    bytes.extend_from_slice(&(env.len() as u32).to_le_bytes());
    for (k, v) in &env {
        put(&mut bytes, k.as_bytes());
        put(&mut bytes, v.as_bytes());
    }
    // SAFETY: memfd_create with a C string; the descriptor is ours.
    let fd = unsafe { libc::memfd_create(c"userns-test-request".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&bytes)?;
    file.rewind()?;
    Ok(file)
}

fn put(bytes: &mut Vec<u8>, s: &[u8]) {
    bytes.extend_from_slice(&(s.len() as u32).to_le_bytes());
    bytes.extend_from_slice(s);
}

/// The request, read back in the supervisor.
struct Requested {
    body: fn() -> Result<(), String>,
    should_panic: bool,
    as_caller: bool,
    timeout_ns: u64,
    name: String,
    namespaces: String,
    ids: Option<String>,
    key: String,
    env: Vec<(OsString, OsString)>,
}

fn read_request(fd: RawFd) -> Option<Requested> {
    // SAFETY: the descriptor the zygote received; read once, then closed.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let mut c = Cursor { bytes: &bytes, at: 0 };
    let body = c.u64()? as usize;
    let should_panic = c.take(1)?[0] != 0;
    let as_caller = c.take(1)?[0] != 0;
    let timeout_ns = c.u64()?;
    let name = String::from_utf8(c.string()?).ok()?;
    let namespaces = String::from_utf8(c.string()?).ok()?;
    let ids = String::from_utf8(c.string()?).ok()?;
    let key = String::from_utf8(c.string()?).ok()?;
    let count = c.u32()? as usize;
    let mut env = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let k = OsString::from_vec(c.string()?);
        let v = OsString::from_vec(c.string()?);
        env.push((k, v));
    }
    // SAFETY: the address the test thread took of a `fn() -> Result<(),
    // String>`; this process is a fork of the same image, so the code is
    // at the same address.
    let body: fn() -> Result<(), String> = unsafe { std::mem::transmute(body) };
    Some(Requested {
        body,
        should_panic,
        as_caller,
        timeout_ns,
        name,
        namespaces,
        ids: (!ids.is_empty()).then_some(ids),
        key,
        env,
    })
}

/// Reads the request's fields in order.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        let len = self.u32()? as usize;
        Some(self.take(len)?.to_vec())
    }
}

/// The zygote's loop. A supervisor forked ahead (idle) waits on the
/// control socket itself and takes the next request, so a request costs no
/// fork while a test waits; it hands the zygote the request's reply socket
/// (to speak for it if it dies), and the zygote forks the next idle one.
/// Where none is idle, the zygote reads the request and forks a supervisor
/// for it. Ends when the test process closes its end.
fn serve(control: OwnedFd, test_process: OwnedFd) -> ! {
    // Supervisors: pid, pidfd, the reply socket.
    let mut running: Vec<(libc::pid_t, OwnedFd, OwnedFd)> = Vec::new();
    let mut idle = fork_idle(&control);
    loop {
        // The control socket (read only when no supervisor is idle; its
        // hang-up always seen), the idle one's socket and pidfd, the test
        // process, then the running supervisors.
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(4 + running.len());
        let watch = |fd: RawFd, events: libc::c_short| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(watch(
            control.as_raw_fd(),
            if idle.is_some() { 0 } else { libc::POLLIN },
        ));
        match &idle {
            Some(i) => {
                fds.push(watch(i.socket.as_raw_fd(), libc::POLLIN));
                fds.push(watch(i.pidfd.as_raw_fd(), libc::POLLIN));
            }
            None => {
                fds.push(watch(-1, 0));
                fds.push(watch(-1, 0));
            }
        }
        fds.push(watch(test_process.as_raw_fd(), libc::POLLIN));
        fds.extend(running.iter().map(|(_, pidfd, _)| watch(pidfd.as_raw_fd(), libc::POLLIN)));
        // SAFETY: poll on our own descriptors.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        // The test process ended: so does the zygote, and with it its
        // supervisors and their bodies.
        if fds[3].revents != 0 {
            break;
        }
        // Running supervisors that ended (from the end, so indices stay
        // valid).
        for i in (4..fds.len()).rev() {
            if fds[i].revents == 0 {
                continue;
            }
            let (_, pidfd, reply) = running.remove(i - 4);
            if let Some(m) = reaped(&pidfd) {
                send_words(reply.as_raw_fd(), &m);
            }
        }
        // The idle one took a request: it sent its reply socket.
        if fds[1].revents != 0
            && let Some(i) = idle.take()
        {
            let mut reply = [-1];
            match recv_fds(i.socket.as_raw_fd(), &mut reply) {
                Some(_) if reply[0] >= 0 => {
                    // SAFETY: recvmsg made it ours.
                    let reply = unsafe { OwnedFd::from_raw_fd(reply[0]) };
                    running.push((i.pid, i.pidfd, reply));
                }
                // It died before taking one: reaped, nothing to say.
                _ => {
                    let _ = reaped(&i.pidfd);
                }
            }
            idle = fork_idle(&control);
        } else if fds[2].revents != 0
            && let Some(i) = idle.take()
        {
            // It ended without a request: the control socket's end, or a
            // signal; a new one if the test process is still there.
            let _ = reaped(&i.pidfd);
            if fds[0].revents & (libc::POLLHUP | libc::POLLERR) == 0 {
                idle = fork_idle(&control);
            }
        }
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 && idle.is_none() {
            // Requests still queued are read below, until the end.
            if fds[0].revents & libc::POLLIN == 0 {
                break;
            }
        }
        if fds[0].revents & libc::POLLIN == 0 || idle.is_some() {
            continue;
        }
        let mut received = [-1; 6];
        if recv_fds(control.as_raw_fd(), &mut received).is_none() {
            break;
        }
        if received.iter().any(|&fd| fd < 0) {
            close_all(&received);
            continue;
        }
        match fork_supervisor(&received) {
            Some((pid, pidfd)) => {
                // SAFETY: received above; the reply socket is kept.
                let reply = unsafe { OwnedFd::from_raw_fd(received[1]) };
                close_all(&[received[0], received[2], received[3], received[4], received[5]]);
                running.push((pid, pidfd, reply));
            }
            None => {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                send_words(received[1], &[REPLY_SPAWN_FAILED as i32, 0, errno]);
                close_all(&received);
            }
        }
    }
    // SAFETY: ends the zygote (its supervisors die with it, and their
    // bodies with them) without the process's atexit handlers.
    unsafe { libc::_exit(0) }
}

fn close_all(fds: &[RawFd]) {
    for &fd in fds {
        if fd >= 0 {
            // SAFETY: descriptors this process received and owns.
            unsafe { libc::close(fd) };
        }
    }
}

/// How a supervisor ended, reaped through its pidfd: the word to send for
/// it where it did not reply itself (killed, or exited with a failure).
fn reaped(pidfd: &OwnedFd) -> Option<[i32; 3]> {
    // SAFETY: waitid on our own child's pidfd, into our own buffer.
    let (r, code, status) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED,
        );
        (r, info.si_code, info.si_status())
    };
    match (r, code) {
        (0, libc::CLD_EXITED) if status == 0 => None,
        (0, libc::CLD_EXITED) => Some([REPLY_SUPERVISOR_EXITED as i32, 0, status]),
        (0, _) => Some([REPLY_SUPERVISOR_KILLED as i32, 0, status]),
        _ => None,
    }
}

/// A supervisor forked ahead of its request.
struct Idle {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    /// Where it sends the reply socket of the request it took.
    socket: OwnedFd,
}

/// A supervisor forked ahead: it waits on the control socket for the next
/// request, hands the zygote that request's reply socket, and supervises
/// it. `None` where it could not be made.
fn fork_idle(control: &OwnedFd) -> Option<Idle> {
    let (ours, theirs) = socket_pair()?;
    let zygote = std::process::id();
    // SAFETY: fork in this single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(ours);
        // SAFETY: prctl and getppid on this process.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != zygote as libc::pid_t {
                libc::_exit(0);
            }
        }
        // While idle: none of the zygote's descriptors but the two it
        // needs (the body would inherit them).
        close_cloexec_except(&[control.as_raw_fd(), theirs.as_raw_fd()]);
        let mut received = [-1; 6];
        let got = recv_fds(control.as_raw_fd(), &mut received);
        // SAFETY: the control socket is the zygote's, not a supervisor's.
        unsafe { libc::close(control.as_raw_fd()) };
        if got.is_none() || received.iter().any(|&fd| fd < 0) {
            close_all(&received);
            // SAFETY: the test process is gone, or sent nothing usable.
            unsafe { libc::_exit(0) }
        }
        let handed = send_fds(theirs.as_raw_fd(), &[received[1]]);
        drop(theirs);
        if !handed {
            // SAFETY: the zygote is gone: so is this supervisor's purpose.
            unsafe { libc::_exit(0) }
        }
        supervise(zygote, &received)
    }
    drop(theirs);
    if pid < 0 {
        return None;
    }
    let Some(pidfd) = pidfd_of(pid) else {
        // Unwatched, it must not take a request.
        reap_unwatched(pid);
        return None;
    };
    Some(Idle {
        pid,
        pidfd,
        socket: ours,
    })
}

/// Kills and reaps our own child `pid`, for which no pidfd could be had.
fn reap_unwatched(pid: libc::pid_t) {
    // SAFETY: kill and reap our own, unreaped child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// A supervisor forked now for the request `fds`.
fn fork_supervisor(fds: &[RawFd; 6]) -> Option<(libc::pid_t, OwnedFd)> {
    let zygote = std::process::id();
    // SAFETY: fork in this single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The zygote's control socket among them.
        close_cloexec_except(fds);
        supervise(zygote, fds)
    }
    if pid < 0 {
        return None;
    }
    match pidfd_of(pid) {
        Some(pidfd) => Some((pid, pidfd)),
        None => {
            // Unwatched, it could not be spoken for: it does not run.
            reap_unwatched(pid);
            None
        }
    }
}

/// A pidfd for the process `pid` (our own unreaped child, or a process
/// that cannot end meanwhile).
fn pidfd_of(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open of our own child.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: pidfd_open returned it.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as c_int) })
}

/// A supervisor: forks the body's process, waits for it with the time
/// bound, kills its group and sweeps its tree, and replies. `fds`: the
/// request file, the reply socket, stdout and stderr write ends, the
/// record channel, the working directory.
fn supervise(zygote: u32, fds: &[RawFd; 6]) -> ! {
    let [request, reply, stdout, stderr, channel, cwd] = *fds;
    // SAFETY (whole function): system calls on this process and its own
    // descriptors and buffers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != zygote as libc::pid_t {
            libc::_exit(1);
        }
        // Orphans of the body's tree come here, to be killed and reaped.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        crate::probe::program::disable_core_dumps();
    }
    let Some(read) = read_request(request) else {
        // SAFETY: as above.
        unsafe { libc::_exit(2) }
    };
    let supervisor = std::process::id();
    // SAFETY: fork in this single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        body_process(supervisor, &read, reply, stdout, stderr, channel, cwd)
    }
    if pid < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        send_words(reply, &[REPLY_SPAWN_FAILED as i32, 0, errno]);
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }
    // SAFETY: ours; only the body's process keeps these.
    unsafe {
        for fd in [stdout, stderr, channel, cwd] {
            libc::close(fd);
        }
    }
    // SAFETY: pidfd_open of our own, unreaped child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as c_int;
    let start = Instant::now();
    let bound = Duration::from_nanos(read.timeout_ns);
    let mut timed_out = false;
    loop {
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let mut fd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as c_int;
        // SAFETY: poll on our own descriptor.
        match unsafe { libc::poll(&mut fd, 1, ms) } {
            0 => continue,
            n if n > 0 => break,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => break,
        }
    }
    // Kill the group while its leader is unreaped: the id is still the
    // body's group's.
    // SAFETY: signals and waits on our own child and its group.
    let info = unsafe {
        if timed_out {
            libc::kill(-pid, libc::SIGKILL);
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
        libc::kill(-pid, libc::SIGKILL);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut info,
            libc::WEXITED,
        );
        (r == 0).then_some(info)
    };
    crate::probe::child::sweep_children();
    let (kind, value) = match info {
        _ if timed_out => (END_TIMED_OUT, 0),
        // SAFETY: filled by waitid.
        Some(info) => unsafe {
            match info.si_code {
                libc::CLD_EXITED => (END_EXITED, info.si_status()),
                _ => (END_KILLED, info.si_status()),
            }
        },
        None => (END_TIMED_OUT, 0),
    };
    send_words(reply, &[REPLY_ENDED as i32, kind, value]);
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// The body's process: its own process group, the signals at their
/// defaults (SIGPIPE ignored, as Rust's runtime sets it), the pipes as
/// stdout and stderr, the test thread's directory and environment, the
/// record channel taken; then the namespaces, and the body.
fn body_process(
    supervisor: u32,
    read: &Requested,
    reply: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    channel: RawFd,
    cwd: RawFd,
) -> ! {
    // SAFETY (whole block): calls on this process and its descriptors;
    // single-threaded. The signals are the zygote's (see as_if_executed).
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != supervisor as libc::pid_t {
            libc::_exit(1);
        }
        libc::close(reply);
        libc::dup2(stdout, 1);
        libc::dup2(stderr, 2);
        libc::close(stdout);
        libc::close(stderr);
        libc::fchdir(cwd);
        libc::close(cwd);
    }
    // The test thread's environment, whole (most often the one this
    // process has: the test process's before `main`).
    let current: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    if current != read.env {
        // SAFETY: single-threaded.
        unsafe {
            for (k, _) in current {
                std::env::remove_var(k);
            }
            for (k, v) in &read.env {
                if !k.is_empty() && !k.as_bytes().contains(&b'=') {
                    std::env::set_var(k, v);
                }
            }
        }
    }
    if !record::take(channel, &read.key) {
        // SAFETY: ends the process; the supervisor reports the exit.
        unsafe { libc::_exit(super::ENTER_FAILED) }
    }
    if let Err((step, failure)) =
        super::enter::enter_namespaces(&read.namespaces, read.ids.as_deref(), read.as_caller)
    {
        record::send(&Record::EnterFailed { step, failure });
        // SAFETY: as above.
        unsafe { libc::_exit(super::ENTER_FAILED) };
    }
    record::this_process_writes();
    super::child::run(&read.name, read.should_panic, read.body)
}

fn socket_pair() -> Option<(OwnedFd, OwnedFd)> {
    let mut pair = [0; 2];
    // SAFETY: socketpair into our own array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    // SAFETY: socketpair returned them.
    (r == 0).then(|| unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) })
}

fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let mut pair = [0; 2];
    // SAFETY: pipe2 into our own array.
    let r = unsafe { libc::pipe2(pair.as_mut_ptr(), libc::O_CLOEXEC) };
    // SAFETY: pipe2 returned them.
    (r == 0).then(|| unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) })
}

fn send_words(fd: RawFd, words: &[i32; 3]) {
    // SAFETY: send from our own buffer; MSG_NOSIGNAL: a closed peer is
    // EPIPE, not SIGPIPE.
    unsafe {
        libc::send(
            fd,
            words.as_ptr().cast(),
            std::mem::size_of_val(words),
            libc::MSG_NOSIGNAL,
        )
    };
}

/// A message header over one byte (`iov`) and `space` bytes of `control`
/// (a `u64` buffer: aligned for `cmsghdr`).
fn header(iov: &mut libc::iovec, control: &mut [u64], space: usize) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    msg
}

/// Sends one byte with `fds` attached (SCM_RIGHTS): `true` when sent.
fn send_fds(socket: RawFd, fds: &[RawFd]) -> bool {
    let mut byte = [1u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a size computation.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let msg = header(&mut iov, &mut control, space);
    // SAFETY: the header's control buffer filled as cmsg(3) says.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.len());
        libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) == 1
    }
}

/// Receives one message and its descriptors into `fds` (close-on-exec):
/// `None` at the end of the stream or on an error, else the bytes read.
fn recv_fds(socket: RawFd, fds: &mut [RawFd]) -> Option<usize> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut msg = header(&mut iov, &mut control, space);
    // SAFETY: recvmsg into our own buffers; descriptors read as cmsg(3)
    // says.
    unsafe {
        let n = loop {
            let n = libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break n;
        };
        if n <= 0 {
            return None;
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                / std::mem::size_of::<RawFd>();
            for (i, fd) in fds.iter_mut().enumerate().take(count) {
                *fd = *data.add(i);
            }
        }
        Some(n as usize)
    }
}
