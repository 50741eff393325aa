//! Probes that run a program found on the host: bubblewrap, and
//! newuidmap/newgidmap for subordinate ids.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::pipe2;

use super::child::{ChildEnd, ExecPlan, SpawnError, Supervised, Task, run_child, run_supervised};
use super::program::Op;
use super::{Outcome, ProbeOptions, child_outcome, failed};
use crate::Ability;
use crate::facts::HostFacts;
use crate::failure::Failure;
use crate::step::Step;

/// `bwrap --unshare-user [--unshare-net] --ro-bind / / true`: the
/// bubblewrap of `USERNS_TEST_BWRAP`, or the first on `PATH` that can be
/// executed, as `Command::new("bwrap")` would find it.
pub(super) fn bwrap(ability: Ability, options: &ProbeOptions) -> (Outcome, Option<String>) {
    // --die-with-parent: should the probe time out, bubblewrap's own
    // child dies with it (the supervisor also kills their process group).
    let mut args = vec!["--die-with-parent", "--unshare-user"];
    if ability == Ability::BwrapNet {
        args.push("--unshare-net");
    }
    args.extend(["--ro-bind", "/", "/", "true"]);
    let plan = match &options.bwrap {
        Some(path) => ExecPlan::new(path, &args),
        None => ExecPlan::search("bwrap", &args),
    };
    let found = Found::of(options.bwrap.as_deref(), "bwrap");
    let (outcome, ran) = run_program(&found, plan, &args, options.timeout);
    // Setuid: it needs no unprivileged user namespaces (a fact for the
    // diagnosis), read from the file that was executed.
    let note = ran.and_then(|(path, mode)| {
        (mode.unwrap_or(0) & 0o4000 != 0).then(|| format!("{} is setuid root", path.display()))
    });
    (outcome, note)
}

/// How a program was asked for: by name on `PATH`, or by path.
struct Found<'a> {
    name: &'a str,
    path: Option<&'a Path>,
}

impl<'a> Found<'a> {
    fn of(path: Option<&'a Path>, name: &'a str) -> Found<'a> {
        Found { name, path }
    }

    /// What the failure to find or execute it was.
    fn failed(&self, run: &Supervised, errno: i32) -> Outcome {
        match (self.path, &run.exec_skipped) {
            // A candidate exists and could not be executed: named, with why.
            (_, Some((path, first))) => failed(
                Step::Exec {
                    program: path.display().to_string(),
                },
                Failure::errno(*first),
            ),
            (Some(path), None) => failed(
                Step::FindProgram {
                    program: path.display().to_string(),
                },
                Failure::errno(errno),
            ),
            (None, None) if matches!(errno, libc::ENOENT | libc::ENOTDIR) => failed(
                Step::FindProgram {
                    program: self.name.into(),
                },
                Failure::Missing {
                    what: format!("{} on PATH", self.name),
                },
            ),
            (None, None) => failed(
                Step::Exec {
                    program: run
                        .exec_path
                        .as_ref()
                        .map_or_else(|| self.name.to_owned(), |p| p.display().to_string()),
                },
                Failure::errno(errno),
            ),
        }
    }
}

/// `newuidmap`/`newgidmap` for a child in a fresh user namespace.
pub(super) fn subids(options: &ProbeOptions, facts: &HostFacts) -> Outcome {
    // Found on PATH as execvp finds them, when they run (under the bound).
    let programs = ["newuidmap", "newgidmap"];
    let (name, who) = user_name(facts.uid);
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
                let args = id_map_args(pid, id, start, count);
                let left = deadline.saturating_duration_since(Instant::now());
                let found = Found::of(None, program);
                let plan = ExecPlan::search(program, &args);
                outcome = run_program(&found, plan, &args, left).0;
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
/// process: found as `execvp` finds it (the first candidate that can be
/// executed, past those that cannot), then `execve`d in a child that a
/// seccomp filter kills at the program's first system call. The exec meets
/// every check a real one meets (mode bits, `noexec`, Landlock, LSMs); the
/// program's own code never runs. The search itself runs in that child,
/// under the time bound.
pub(super) fn program(program: &str, options: &ProbeOptions) -> (Outcome, Option<String>) {
    let found = Found::of(
        program.starts_with('/').then(|| Path::new(program)),
        program,
    );
    let exec = || Step::Exec {
        program: program.to_owned(),
    };
    let plan = match ExecPlan::search(program, &[] as &[&str]) {
        Ok(plan) => plan.stopped_at_first_system_call(),
        Err(e) => return (failed(exec(), Failure::errno(e as i32)), None),
    };
    let run = match run_supervised(Task::Exec(&plan), options.timeout) {
        Ok(run) => run,
        Err(SpawnError::Clone(e) | SpawnError::Memory(e)) => {
            let step = Step::Clone {
                flags: format!("CLONE_VM|CLONE_PIDFD, to run {program}"),
            };
            return (failed(step, Failure::errno(e as i32)), None);
        }
    };
    if run.child.errno != 0 {
        let outcome = failed(Step::StopProgramFilter, Failure::errno(run.child.errno));
        return (outcome, None);
    }
    if let Some(errno) = run.exec_errno {
        return (found.failed(&run, errno), None);
    }
    let ran = run
        .exec_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(program));
    let exec = || Step::Exec {
        program: ran.display().to_string(),
    };
    let note = Some(ran.display().to_string());
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

/// `uid`'s user name, if the user database has one, and the word that
/// names it in messages (the name, else the number).
pub(crate) fn user_name(uid: u32) -> (Option<String>, String) {
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let who = name.clone().unwrap_or_else(|| uid.to_string());
    (name, who)
}

/// newuidmap's (or newgidmap's) arguments mapping, in process `pid`'s
/// user namespace, 0 to `id` and 1 to `count` to the range from `start`.
pub(crate) fn id_map_args(pid: impl ToString, id: u32, start: u64, count: u64) -> [String; 7] {
    [
        pid.to_string(),
        "0".into(),
        id.to_string(),
        "1".into(),
        "1".into(),
        start.to_string(),
        count.to_string(),
    ]
}

/// `user:start:count` or `uid:start:count`, first match.
pub(crate) fn subid_range(text: &str, user: Option<&str>, id: u32) -> Option<(u64, u64)> {
    let id = id.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        (Some(who) == user || who == id)
            .then(|| Some((start.parse().ok()?, count.parse().ok()?)))
            .flatten()
    })
}

/// Runs `plan` (the program `found`, with `args`) under a supervisor (see
/// [`super::child`]), bounded by `timeout`, recording exec errors, the exit
/// status and the first line of stderr; with the path that was executed
/// and its mode. Nothing the test process does with SIGCHLD or its
/// children can change the result: the supervisor, not the test process,
/// is the program's parent.
fn run_program(
    found: &Found<'_>,
    plan: Result<ExecPlan, Errno>,
    args: &[impl AsRef<OsStr>],
    timeout: Duration,
) -> (Outcome, Option<(PathBuf, Option<u32>)>) {
    let shown = found
        .path
        .map_or_else(|| found.name.to_owned(), |p| p.display().to_string());
    let command = |program: &str| {
        std::iter::once(program.to_owned())
            .chain(
                args.iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned()),
            )
            .collect::<Vec<_>>()
            .join(" ")
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            let step = Step::Run {
                program: shown.clone(),
                command: command(&shown),
            };
            return (failed(step, Failure::errno(e as i32)), None);
        }
    };
    let run = match run_supervised(Task::Exec(&plan), timeout) {
        Ok(run) => run,
        // The supervisor, or the program's process, could not be created
        // (EAGAIN: the process limit).
        Err(SpawnError::Clone(e) | SpawnError::Memory(e)) => {
            let step = Step::Clone {
                flags: format!("CLONE_VM|CLONE_PIDFD, to run {shown}"),
            };
            return (failed(step, Failure::errno(e as i32)), None);
        }
    };
    if let Some(errno) = run.exec_errno {
        return (found.failed(&run, errno), None);
    }
    let ran = run
        .exec_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&shown));
    let program = ran.display().to_string();
    let step = || Step::Run {
        program: program.clone(),
        command: command(&program),
    };
    let stderr = String::from_utf8_lossy(&run.stderr.bytes);
    let first_line = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned);
    let failure = match run.child.end {
        ChildEnd::Exited(0) => return (Ok(()), Some((ran, run.exec_mode))),
        ChildEnd::Exited(code) => Failure::ExitStatus {
            code,
            stderr: first_line,
        },
        ChildEnd::Killed(sig) => Failure::signal(sig),
        ChildEnd::TimedOut(after) => Failure::TimedOut {
            after_ms: after.as_millis() as u64,
        },
    };
    (failed(step(), failure), Some((ran, run.exec_mode)))
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
