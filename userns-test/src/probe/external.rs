//! Probes that run a program found on the host: bubblewrap, and
//! newuidmap/newgidmap for subordinate ids.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::pipe2;

use super::child::{ChildEnd, ExecPlan, SpawnError, Task, run_child, run_supervised};
use super::program::Op;
use super::{Outcome, ProbeOptions, child_outcome, failed};
use crate::Ability;
use crate::facts::HostFacts;
use crate::failure::Failure;
use crate::step::Step;

/// `bwrap --unshare-user [--unshare-net] --ro-bind / / true`.
pub(super) fn bwrap(ability: Ability, options: &ProbeOptions) -> (Outcome, Option<String>) {
    let path = match options.bwrap.clone().or_else(|| find_on_path("bwrap")) {
        Some(p) => p,
        None => {
            let outcome = failed(
                Step::FindProgram {
                    program: "bwrap".into(),
                },
                Failure::Missing {
                    what: "bwrap on PATH".into(),
                },
            );
            return (outcome, None);
        }
    };
    let setuid = match fs::metadata(&path) {
        Ok(m) => m.permissions().mode() & 0o4000 != 0,
        // execve(2) resolves the same path and would fail the same way;
        // stat(2) says so without creating a process.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            let errno = e.raw_os_error().unwrap_or(libc::ENOENT);
            let outcome = failed(
                Step::FindProgram {
                    program: path.display().to_string(),
                },
                Failure::errno(errno),
            );
            return (outcome, None);
        }
        Err(_) => false,
    };
    let note = setuid.then(|| format!("{} is setuid root", path.display()));
    // --die-with-parent: should the probe time out, bubblewrap's own
    // child dies with it (the supervisor also kills their process group).
    let mut args = vec!["--die-with-parent", "--unshare-user"];
    if ability == Ability::BwrapNet {
        args.push("--unshare-net");
    }
    args.extend(["--ro-bind", "/", "/", "true"]);
    (run_program(&path, &args, options.timeout), note)
}

/// `newuidmap`/`newgidmap` for a child in a fresh user namespace.
pub(super) fn subids(options: &ProbeOptions, facts: &HostFacts) -> Outcome {
    let mut programs = Vec::new();
    for program in ["newuidmap", "newgidmap"] {
        match find_on_path(program) {
            Some(p) => programs.push(p),
            None => {
                return failed(
                    Step::FindProgram {
                        program: program.into(),
                    },
                    Failure::Missing {
                        what: format!("{program} on PATH"),
                    },
                );
            }
        }
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(facts.uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let who = name.clone().unwrap_or_else(|| facts.uid.to_string());
    let mut ranges = Vec::new();
    for (path, id) in [("/etc/subuid", facts.uid), ("/etc/subgid", facts.gid)] {
        let step = || Step::ReadSubids {
            path: path.into(),
            user: who.clone(),
        };
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            // No file: no range, a fact.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            // A file that cannot be read says nothing: not "no range".
            Err(e) => {
                return failed(
                    step(),
                    Failure::Unreadable {
                        path: path.into(),
                        errno: e.raw_os_error(),
                        error: e.to_string(),
                    },
                );
            }
        };
        match subid_range(&text, name.as_deref(), id) {
            Some(r) => ranges.push(r),
            None => {
                return failed(
                    step(),
                    Failure::Missing {
                        what: format!("a range for {who}"),
                    },
                );
            }
        }
    }
    let pipes = (|| Ok::<_, Errno>((pipe2(OFlag::O_CLOEXEC)?, pipe2(OFlag::O_CLOEXEC)?)))();
    let ((ready_r, ready_w), (release_r, release_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return failed(Step::Handshake, Failure::errno(e as i32)),
    };
    let ops = [
        Op::Unshare(libc::CLONE_NEWUSER),
        Op::SignalReady {
            fd: ready_w.as_raw_fd(),
        },
        Op::WaitForRelease {
            fd: release_r.as_raw_fd(),
        },
    ];
    let ids = [(facts.uid, ranges[0]), (facts.gid, ranges[1])];
    let run = run_child(&ops, 0, options.timeout, |pid, deadline| {
        let mut outcome = Ok(());
        if wait_ready(&ready_r, deadline) {
            for (program, (id, (start, count))) in programs.iter().zip(ids) {
                let args = [
                    pid.to_string(),
                    "0".into(),
                    id.to_string(),
                    "1".into(),
                    "1".into(),
                    start.to_string(),
                    count.to_string(),
                ];
                let left = deadline.saturating_duration_since(Instant::now());
                outcome = run_program(program, &args, left);
                if outcome.is_err() {
                    break;
                }
            }
        }
        // Release the child whatever happened; it exits after reading.
        let _ = nix::unistd::write(&release_w, &[1]);
        outcome
    });
    match run {
        Ok((run, Err(program_failure))) if run.errno == 0 => Err(program_failure),
        Ok((run, _)) => child_outcome(&ops, &run),
        Err(_) => failed(Step::Handshake, Failure::errno(libc::EAGAIN)),
    }
}

/// `program` (a name on `PATH`, or an absolute path) executed by this
/// process: found, then `execve`d in a child that a seccomp filter kills at
/// the program's first system call. The exec meets every check a real one
/// meets (mode bits, `noexec`, Landlock, LSMs); the program's own code
/// never runs.
pub(super) fn program(program: &str, options: &ProbeOptions) -> (Outcome, Option<String>) {
    let path = if program.starts_with('/') {
        PathBuf::from(program)
    } else {
        match find_on_path(program) {
            Some(p) => p,
            None => {
                let outcome = failed(
                    Step::FindProgram {
                        program: program.into(),
                    },
                    Failure::Missing {
                        what: format!("{program} on PATH"),
                    },
                );
                return (outcome, None);
            }
        }
    };
    let exec = || Step::Exec {
        program: path.display().to_string(),
    };
    let plan = match ExecPlan::new(&path, &[] as &[&str]) {
        Ok(plan) => plan.stopped_at_first_system_call(),
        Err(e) => return (failed(exec(), Failure::errno(e as i32)), None),
    };
    let run = match run_supervised(Task::Exec(&plan), options.timeout) {
        Ok(run) => run,
        Err(SpawnError::Clone(e) | SpawnError::Memory(e)) => {
            let step = Step::Clone {
                flags: format!("CLONE_VM|CLONE_PIDFD, to run {}", path.display()),
            };
            return (failed(step, Failure::errno(e as i32)), None);
        }
    };
    let note = Some(path.display().to_string());
    if run.child.errno != 0 {
        let outcome = failed(Step::StopProgramFilter, Failure::errno(run.child.errno));
        return (outcome, note);
    }
    if let Some(errno) = run.exec_errno {
        return (failed(exec(), Failure::errno(errno)), note);
    }
    let outcome = match run.child.end {
        // Killed at its first system call: the exec worked. (A program
        // that exits before making any other call ran too.)
        ChildEnd::Killed(libc::SIGSYS) | ChildEnd::Exited(_) => Ok(()),
        ChildEnd::Killed(sig) => failed(exec(), Failure::signal(sig)),
        ChildEnd::TimedOut(after) => failed(
            exec(),
            Failure::TimedOut {
                after_ms: after.as_millis() as u64,
            },
        ),
    };
    (outcome, note)
}

/// Waits for the child's ready byte.
pub(super) fn wait_ready(fd: &OwnedFd, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {
                let mut b = [0u8; 1];
                return matches!(nix::unistd::read(fd, &mut b), Ok(1));
            }
            Err(_) => return false,
        }
    }
}

/// `user:start:count` or `uid:start:count`, first match.
fn subid_range(text: &str, user: Option<&str>, id: u32) -> Option<(u64, u64)> {
    let id = id.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        (Some(who) == user || who == id)
            .then(|| Some((start.parse().ok()?, count.parse().ok()?)))
            .flatten()
    })
}

/// Runs `program args` under a supervisor (see [`super::child`]), bounded
/// by `timeout`, recording exec errors, the exit status and the first line
/// of stderr. Nothing the test process does with SIGCHLD or its children
/// can change the result: the supervisor, not the test process, is the
/// program's parent.
fn run_program(program: &Path, args: &[impl AsRef<OsStr>], timeout: Duration) -> Outcome {
    let command = std::iter::once(program.display().to_string())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let step = || Step::Run {
        program: program.display().to_string(),
        command: command.clone(),
    };
    let plan = match ExecPlan::new(program, args) {
        Ok(plan) => plan,
        Err(e) => return failed(step(), Failure::errno(e as i32)),
    };
    let run = match run_supervised(Task::Exec(&plan), timeout) {
        Ok(run) => run,
        // The supervisor, or the program's process, could not be created
        // (EAGAIN: the process limit).
        Err(SpawnError::Clone(e) | SpawnError::Memory(e)) => {
            let step = Step::Clone {
                flags: format!("CLONE_VM|CLONE_PIDFD, to run {}", program.display()),
            };
            return failed(step, Failure::errno(e as i32));
        }
    };
    if let Some(errno) = run.exec_errno {
        let step = Step::Exec {
            program: program.display().to_string(),
        };
        return failed(step, Failure::errno(errno));
    }
    let stderr = String::from_utf8_lossy(&run.stderr.bytes);
    let first_line = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned);
    let failure = match run.child.end {
        ChildEnd::Exited(0) => return Ok(()),
        ChildEnd::Exited(code) => Failure::ExitStatus {
            code,
            stderr: first_line,
        },
        ChildEnd::Killed(sig) => Failure::signal(sig),
        ChildEnd::TimedOut(after) => Failure::TimedOut {
            after_ms: after.as_millis() as u64,
        },
    };
    failed(step(), failure)
}

/// `name` in a directory of `PATH` (a file; executability is judged by
/// running it, so that EACCES gets its own reason).
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines() {
        let text = "alice:100000:65536\n1001:200000:1000\n";
        assert_eq!(
            subid_range(text, Some("alice"), 1000),
            Some((100000, 65536))
        );
        assert_eq!(subid_range(text, Some("bob"), 1001), Some((200000, 1000)));
        assert_eq!(subid_range(text, Some("carol"), 1002), None);
    }
}
