//! The wrapped command on Linux: cancelling signals read from a signalfd
//! (blocked, so none is lost between the spawn and the wait), the command
//! watched through a pidfd, its whole tree signalled and reaped by this
//! process as a child subreaper.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::{Cancelled, Ended};

/// The signals that cancel a run.
const CANCEL: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Runs `args` with `env` added, passing cancelling signals on to its
/// tree, and returns how it ended once nothing of the tree is left.
pub(crate) fn run_command(
    args: &[OsString],
    env: &[(&str, &OsString)],
    grace: Duration,
) -> Result<Ended, String> {
    let name = args[0].to_string_lossy().into_owned();
    let mut mask = SigSet::empty();
    for s in CANCEL {
        mask.add(s);
    }
    // Blocked here and read from a signalfd, so no signal is lost between
    // the spawn and the wait; unblocked in the child before it executes.
    mask.thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;
    // Orphans of the command's tree (the test binary cargo leaves when it
    // dies) come to this process, to be ended and reaped.
    // SAFETY: prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut command = std::process::Command::new(&args[0]);
    command.args(&args[1..]);
    for (k, v) in env {
        command.env(k, v);
    }
    let unblock = mask;
    // SAFETY: between fork and exec only sigprocmask, which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            unblock
                .thread_unblock()
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start `{name}`: {e}"))?;
    let pid = child.id();
    let signals =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(|e| format!("signalfd: {e}"))?;
    let pidfd = pidfd_open(pid).map_err(|e| format!("pidfd_open: {e}"))?;
    let mut cancelled: Option<(Signal, bool)> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if timeout.is_some_and(|t| t.is_zero()) {
            // The grace period is over: kill what is left of the tree.
            signal_tree(libc::SIGKILL);
            if let Some((_, killed)) = &mut cancelled {
                *killed = true;
            }
            deadline = None;
            continue;
        }
        match wait_readable(&[signals.as_raw_fd(), pidfd.as_raw_fd()], timeout) {
            Ok(ready) if ready[1] => break,
            Ok(ready) if ready[0] => {
                let Ok(Some(info)) = signals.read_signal() else {
                    continue;
                };
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match cancelled {
                    None => {
                        eprintln!(
                            "userns-test: {sig} received: passing it on to the test command and \
                             its processes, waiting up to {} s for them to end, then writing the \
                             reports",
                            grace.as_secs_f64()
                        );
                        // A signal from the terminal reached the whole
                        // process group already; one sent to this process
                        // alone (`kill`, CI) did not.
                        if info.ssi_code != libc::SI_KERNEL {
                            signal_tree(sig as i32);
                        }
                        cancelled = Some((sig, false));
                        deadline = Some(Instant::now() + grace);
                    }
                    Some(_) => {
                        eprintln!("userns-test: {sig} again: killing the test command's processes");
                        deadline = Some(Instant::now());
                    }
                }
            }
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for `{name}`: {e}")),
        }
    }
    let mut child = child;
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{name}`: {e}"))?;
    // Cancelled: what is left of the tree is ended when the grace period
    // is over. Otherwise what the command left running (a server it
    // started in the background) is its own business, as without the
    // wrapper: only what already ended is reaped.
    match cancelled {
        Some((sig, killed)) => {
            let swept = sweep(deadline.unwrap_or_else(Instant::now));
            cancelled = Some((sig, killed || swept));
        }
        None => reap_all(),
    }
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(Ended {
        code,
        cancelled: cancelled.map(|(sig, killed)| Cancelled {
            signal: sig as i32,
            name: sig.as_str(),
            killed,
        }),
    })
}

/// `pidfd_open(pid)`.
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: a system call returning a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Polls `fds` for reading, for at most `timeout` (`None`: no bound).
fn wait_readable(fds: &[i32], timeout: Option<Duration>) -> std::io::Result<Vec<bool>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().clamp(1, i32::MAX as u128) as i32);
    // SAFETY: poll on our own array.
    let r = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(polled.iter().map(|p| p.revents != 0).collect())
}

/// Every descendant of this process, parents before children, each with
/// its parent (from `/proc/PID/task/TID/children`).
fn descendants() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut queue = vec![std::process::id()];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in text
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                if !out.iter().any(|&(c, _)| c == child) {
                    out.push((child, parent));
                    queue.push(child);
                }
            }
        }
    }
    out
}

/// Sends `sig` to every descendant of this process, each through a pidfd
/// opened while it was still the child of the parent it was listed under
/// (so a pid reused meanwhile is not signalled).
fn signal_tree(sig: i32) {
    for (pid, parent) in descendants() {
        let Ok(fd) = pidfd_open(pid) else { continue };
        let still = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 1..];
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            })
            == Some(parent);
        // A child reparented to this subreaper since it was listed is still
        // of the tree.
        let ours = still || parent_of(pid) == Some(std::process::id());
        if ours {
            // SAFETY: a signal through a pidfd we hold.
            unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, 0, 0);
            }
        }
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Ends what is left of the command's tree: waits for it until `until`,
/// then kills it, and reaps every process that came to this subreaper.
/// Returns whether something had to be killed.
fn sweep(until: Instant) -> bool {
    loop {
        reap_all();
        if descendants().is_empty() {
            return false;
        }
        if Instant::now() >= until {
            signal_tree(libc::SIGKILL);
            // Killed processes end promptly; reap them (bounded, in case
            // one sits in an uninterruptible sleep).
            let stop = Instant::now() + Duration::from_secs(2);
            while !descendants().is_empty() && Instant::now() < stop {
                reap_all();
                std::thread::sleep(Duration::from_millis(5));
            }
            reap_all();
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reaps every ended child of this process.
fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own children, without blocking.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if r <= 0 {
            return;
        }
    }
}
