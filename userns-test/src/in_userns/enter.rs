//! The child's side, before `main`: entering the namespaces while the
//! re-executed test binary is still single-threaded.
//!
//! [`enter_test`] is called from the `.init_array` entry that
//! `#[in_userns]` places in the test crate for each test (a constructor in
//! this library's archive could be left out by the linker). It enters
//! nothing unless the parent named a test in the environment (or, in a
//! nextest test process, the test is its own: `in_place.rs`). The
//! operations are the probes' own
//! ([`Op`](crate::probe::program::Op)), in the probes' order, so what the
//! probe found available is what is entered here; a failure is recorded
//! with its step and errno, and the process exits before `main`.

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ids::{IDS_VAR, IdMap};
use super::record::{self, Record};
use super::{ENTER_FAILED, KEY_VAR, NAMESPACES_VAR, Namespace, RECORD_FD, TEST_VAR};
use crate::failure::Failure;
use crate::probe::program::Op;

/// The test this process was executed to run, once the namespaces are
/// entered.
static CHILD_OF: OnceLock<String> = OnceLock::new();

/// The path of the test this process runs in its namespaces, if it is
/// such a child.
pub(crate) fn child_test() -> Option<&'static str> {
    CHILD_OF.get().map(String::as_str)
}

/// What the first `#[in_userns]` entry of `.init_array` found this
/// process to be.
enum Found {
    /// Executed (or forked) to run a body: entered already.
    Child,
    /// Listing tests: nothing to do before `main`.
    Done,
    /// Any other process: the zygote is made.
    Zygote,
    /// Asked for the one test of this name: its entry may enter in place
    /// (`in_place.rs`).
    OneTest(String, super::in_place::Selecting),
}

static FOUND: OnceLock<Found> = OnceLock::new();

/// The `.init_array` entry of an `#[in_userns]` test (`test`; `entry` is
/// the entry's own address, `argc`, `argv` and `envp` what glibc calls it
/// with). Runs before `main`.
///
/// The first entry called decides, once, what this process is:
/// - a child the parent asked to enter namespaces (`enter_if_child`);
/// - a listing (`--list`): nothing to do;
/// - a process asked for one test by its exact name: the entry of that
///   test, if it is an `#[in_userns]` one, enters its namespaces in this
///   process where nextest started it (`in_place.rs`), or else makes the
///   zygote; a plain test's process makes none;
/// - any other process: the zygote that forks the bodies is made now
///   (`zygote.rs`).
pub fn enter_test(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
    test: &'static super::BeforeMain,
    entry: usize,
) {
    // Decided once, by the first entry. Set before any fork: a zygote
    // forked while a `OnceLock` is being filled would wait forever for
    // the filling to end (the thread filling it is not copied).
    static FIRST: AtomicBool = AtomicBool::new(false);
    if !FIRST.swap(true, Ordering::SeqCst) {
        let args = arguments(argc, argv);
        let found = if enter_if_child() {
            Found::Child
        } else if args.iter().any(|a| *a == b"--list") {
            Found::Done
        } else if let Some(name) = super::in_place::wanted(&args) {
            Found::OneTest(name, super::in_place::Selecting::of(&args))
        } else {
            Found::Zygote
        };
        let zygote = matches!(found, Found::Zygote);
        let _ = FOUND.set(found);
        if zygote {
            super::zygote::start(entry, argc, argv, envp);
        }
    }
    let Some(found) = FOUND.get() else {
        return;
    };
    // Once: the zygote a failed attempt makes inherits this set, and
    // runs the later entries itself.
    static TRIED: AtomicBool = AtomicBool::new(false);
    if let Found::OneTest(name, selecting) = found
        && crate::registry::libtest_name_of(test.path) == name
        && !TRIED.swap(true, Ordering::SeqCst)
        && !super::in_place::enter(test, *selecting)
    {
        super::zygote::start(entry, argc, argv, envp);
    }
}

/// The program's arguments but its name, as glibc hands them to
/// `.init_array` entries.
fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<&'static [u8]> {
    if argv.is_null() {
        return Vec::new();
    }
    (1..argc.max(0) as usize)
        .filter_map(|i| {
            // SAFETY: glibc's argv holds argc strings, each NUL-terminated
            // and alive for the process's life.
            let arg = unsafe { *argv.add(i) };
            (!arg.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(arg) }.to_bytes())
        })
        .collect()
}

/// Enters the namespaces if this process was executed to run a test in
/// them: whether it was.
///
/// The variables alone do not make this process a child: a shell or a
/// parent run may have left them in the environment. The parent's proof
/// is the channel it handed over as descriptor 3, holding the key of the
/// environment (see `record.rs`); without it this is a normal run.
fn enter_if_child() -> bool {
    let Some(test) = std::env::var_os(TEST_VAR) else {
        return false;
    };
    let namespaces = std::env::var(NAMESPACES_VAR).unwrap_or_default();
    let key = std::env::var(KEY_VAR).unwrap_or_default();
    let ids = std::env::var(IDS_VAR).ok();
    let as_caller = std::env::var_os(super::caller::MODE_VAR).is_some();
    // SAFETY: before `main`, with no other thread: removing the variables
    // here keeps every process the body starts (this binary again,
    // included) from taking itself for a child.
    unsafe {
        std::env::remove_var(TEST_VAR);
        std::env::remove_var(NAMESPACES_VAR);
        std::env::remove_var(KEY_VAR);
        std::env::remove_var(IDS_VAR);
        std::env::remove_var(super::caller::MODE_VAR);
    }
    if !record::take(RECORD_FD, &key) {
        return false;
    }
    // Dies with its parent (the supervisor, which dies with the test).
    // SAFETY: prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if let Err((step, failure)) = enter_namespaces(&namespaces, ids.as_deref(), as_caller) {
        record::send(&Record::EnterFailed { step, failure });
        // SAFETY: exits without running atexit handlers or destructors
        // of a process that never reached `main`.
        unsafe { libc::_exit(ENTER_FAILED) };
    }
    // The process that reached here runs the body (after the fork into a
    // new PID namespace, the child): its record is the one that counts.
    record::this_process_writes();
    let _ = CHILD_OF.set(test.to_string_lossy().into_owned());
    true
}

/// A failed step: what was done, and how it failed.
pub(crate) type Failed = (String, String);

pub(crate) fn enter_namespaces(list: &str, ids: Option<&str>, as_caller: bool) -> Result<(), Failed> {
    let mut namespaces = Vec::new();
    for name in list.split(',').filter(|n| !n.is_empty()) {
        match Namespace::from_name(name) {
            Some(n) => namespaces.push(n),
            None => {
                return Err((
                    format!("reading {NAMESPACES_VAR}"),
                    format!("unknown namespace {name:?}"),
                ));
            }
        }
    }
    if as_caller {
        // No user namespace: the caller's own CAP_SYS_ADMIN enters them.
        let (_, ops) = super::caller::ops(&namespaces, false);
        run(&ops)?;
        return enter_pid_and_time(&namespaces);
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let mut ops = Vec::new();
    match ids {
        // uid and gid 0 alone: written by this process, setgroups denied
        // (as an unprivileged process must).
        None => {
            ops.push(Op::Unshare(libc::CLONE_NEWUSER));
            ops.extend(Op::become_root(uid, gid));
        }
        // A range: written from outside by newuidmap and newgidmap.
        Some(text) => match IdMap::from_var(text) {
            Some(map) => map.enter(uid, gid)?,
            None => {
                return Err((
                    format!("reading {IDS_VAR}"),
                    format!("malformed value {text:?}"),
                ));
            }
        },
    }
    // Then the same namespaces as the caller's way enters.
    ops.extend(super::caller::ops(&namespaces, false).1);
    run(&ops)?;
    enter_pid_and_time(&namespaces)
}

/// A new PID or time namespace is entered by the next child only: this
/// process forks, and the child (PID 1 there) mounts a fresh `/proc`.
fn enter_pid_and_time(namespaces: &[Namespace]) -> Result<(), Failed> {
    let has = |n| namespaces.contains(&n);
    if has(Namespace::Pid) || has(Namespace::Time) {
        become_first_child()?;
        if has(Namespace::Pid) {
            run(&[Op::fresh_proc()])?;
        }
    }
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), Failed> {
    for op in ops {
        let phase = Cell::new(0);
        if let Err(errno) = op.run(&|p| phase.set(p), &|_| {}) {
            return Err((
                op.step(phase.get()).to_string(),
                Failure::errno(errno).to_string(),
            ));
        }
    }
    Ok(())
}

/// Forks; the child returns (to run `main` as PID 1 of the new PID
/// namespace) and this process waits for it and ends as it ended. Safe
/// here: the process is single-threaded before `main`.
fn become_first_child() -> Result<(), Failed> {
    // SAFETY: fork in a single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err((
            "fork, to be PID 1 of the new namespace".into(),
            Failure::errno(errno).to_string(),
        ));
    }
    if pid == 0 {
        // SAFETY: prctl on this process; it dies with the one waiting for
        // it (and, as PID 1, takes its namespace's processes with it).
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        return Ok(());
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // SAFETY: as below.
            unsafe { libc::_exit(ENTER_FAILED) };
        }
    }
    // SAFETY: ending this process as its child ended: the same status, or
    // the same signal (default action, unblocked), without atexit handlers.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}
