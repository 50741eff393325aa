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
use super::{ProbeOptions, Step, child_status, unavailable, unavailable_because};
use crate::Ability;
use crate::diagnosis::Cause;
use crate::facts::HostFacts;
use crate::verdict::{Failure, Status};

/// `bwrap --unshare-user [--unshare-net] --ro-bind / / true`.
pub(super) fn bwrap(ability: Ability, options: &ProbeOptions) -> (Status, Option<String>) {
    let path = match options.bwrap.clone().or_else(|| find_on_path("bwrap")) {
        Some(p) => p,
        None => {
            let status = unavailable_because(
                ability,
                Step::FindProgram {
                    program: "bwrap".into(),
                },
                Failure::Missing {
                    what: "bwrap on PATH".into(),
                },
                Cause::NotInstalled {
                    program: "bwrap".into(),
                },
            );
            return (status, None);
        }
    };
    let setuid = match fs::metadata(&path) {
        Ok(m) => m.permissions().mode() & 0o4000 != 0,
        // execve(2) resolves the same path and would fail the same way;
        // stat(2) says so without creating a process.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            let errno = e.raw_os_error().unwrap_or(libc::ENOENT);
            let status = unavailable_because(
                ability,
                Step::FindProgram {
                    program: path.display().to_string(),
                },
                Failure::errno(errno),
                Cause::NotInstalled {
                    program: format!("bwrap at {}", path.display()),
                },
            );
            return (status, None);
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
    let status = run_program(ability, "bwrap", &path, &args, options.timeout);
    (status, note)
}

/// `newuidmap`/`newgidmap` for a child in a fresh user namespace.
pub(super) fn subids(options: &ProbeOptions, facts: &HostFacts) -> Status {
    let ability = Ability::Subids;
    let mut programs = Vec::new();
    for program in ["newuidmap", "newgidmap"] {
        match find_on_path(program) {
            Some(p) => programs.push(p),
            None => {
                return unavailable_because(
                    ability,
                    Step::FindProgram {
                        program: program.into(),
                    },
                    Failure::Missing {
                        what: format!("{program} on PATH"),
                    },
                    Cause::NotInstalled {
                        program: program.into(),
                    },
                );
            }
        }
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(facts.uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let mut ranges = Vec::new();
    for (path, id) in [("/etc/subuid", facts.uid), ("/etc/subgid", facts.gid)] {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            // No file: no range, a fact.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            // A file that cannot be read says nothing: not "no range".
            Err(e) => {
                return unavailable(
                    ability,
                    Step::ReadSubids { path: path.into() },
                    Failure::Unreadable {
                        path: path.into(),
                        errno: e.raw_os_error(),
                        error: e.to_string(),
                    },
                );
            }
        };
        match subid_range(&text, user.as_deref(), id) {
            Some(r) => ranges.push(r),
            None => {
                let who = user.clone().unwrap_or_else(|| id.to_string());
                return unavailable_because(
                    ability,
                    Step::ReadSubids { path: path.into() },
                    Failure::Missing {
                        what: format!("a range for {who}"),
                    },
                    Cause::NoSubordinateIds {
                        path: path.into(),
                        user: who,
                    },
                );
            }
        }
    }
    let pipes = (|| Ok::<_, Errno>((pipe2(OFlag::O_CLOEXEC)?, pipe2(OFlag::O_CLOEXEC)?)))();
    let ((ready_r, ready_w), (release_r, release_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return unavailable(ability, Step::Handshake, Failure::errno(e as i32)),
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
        let mut outcome = None;
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
                let name = program.file_name().unwrap_or_default().to_string_lossy();
                let status = run_program(ability, &name, program, &args, left);
                if !matches!(status, Status::Available) {
                    outcome = Some(status);
                    break;
                }
            }
        }
        // Release the child whatever happened; it exits after reading.
        let _ = nix::unistd::write(&release_w, &[1]);
        outcome
    });
    match run {
        Ok((run, Some(program_failure))) if run.errno == 0 => program_failure,
        Ok((run, _)) => child_status(ability, &ops, &run),
        Err(_) => unavailable(ability, Step::Handshake, Failure::errno(libc::EAGAIN)),
    }
}

/// Waits for the child's ready byte.
fn wait_ready(fd: &OwnedFd, deadline: Instant) -> bool {
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
/// by `timeout`, judging exec errors, the exit status and the first line
/// of stderr. Nothing the test process does with SIGCHLD or its children
/// can change the result: the supervisor, not the test process, is the
/// program's parent.
fn run_program(
    ability: Ability,
    name: &str,
    program: &Path,
    args: &[impl AsRef<OsStr>],
    timeout: Duration,
) -> Status {
    let command = std::iter::once(program.display().to_string())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let step = || Step::Run {
        command: command.clone(),
    };
    let plan = match ExecPlan::new(program, args) {
        Ok(plan) => plan,
        Err(e) => return unavailable(ability, step(), Failure::errno(e as i32)),
    };
    let run = match run_supervised(Task::Exec(&plan), timeout) {
        Ok(run) => run,
        // The supervisor, or the program's process, could not be created
        // (EAGAIN: the process limit).
        Err(SpawnError::Clone(e) | SpawnError::Memory(e)) => {
            let step = Step::Clone {
                flags: format!("CLONE_VM|CLONE_PIDFD, to run {}", program.display()),
            };
            return unavailable(ability, step, Failure::errno(e as i32));
        }
    };
    if let Some(errno) = run.exec_errno {
        return exec_failure(ability, name, program, errno);
    }
    let stderr = String::from_utf8_lossy(&run.stderr);
    let first_line = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned);
    let failure = match run.child.end {
        ChildEnd::Exited(0) => return Status::Available,
        ChildEnd::Exited(code) => Failure::ExitStatus {
            code,
            stderr: first_line.clone(),
        },
        ChildEnd::Killed(sig) => return unavailable(ability, step(), Failure::signal(sig)),
        ChildEnd::TimedOut(after) => {
            return unavailable(
                ability,
                step(),
                Failure::TimedOut {
                    after_ms: after.as_millis() as u64,
                },
            );
        }
    };
    let cause = program_cause(name, first_line.as_deref().unwrap_or(""), HostFacts::get());
    unavailable_because(ability, step(), failure, cause)
}

fn exec_failure(ability: Ability, name: &str, program: &Path, errno: i32) -> Status {
    let step = Step::Exec {
        program: program.display().to_string(),
    };
    let failure = Failure::errno(errno);
    match errno {
        libc::ENOENT => unavailable_because(
            ability,
            step,
            failure,
            Cause::NotInstalled {
                program: format!("{name} at {}", program.display()),
            },
        ),
        libc::EACCES | libc::EPERM => unavailable_because(
            ability,
            step,
            failure,
            Cause::NotExecutable {
                path: program.display().to_string(),
            },
        ),
        _ => unavailable(ability, step, failure),
    }
}

/// What bubblewrap's (or newuidmap's) first stderr line points at. bwrap's
/// messages are matched by prefix: after a netlink failure the errno text
/// it prints can be stale.
fn program_cause(program: &str, line: &str, facts: &HostFacts) -> Cause {
    let message = line
        .strip_prefix(program)
        .map(|l| l.trim_start_matches(':').trim_start())
        .unwrap_or(line);
    let restricted = facts.apparmor_restricts_userns();
    let hint =
        if message.starts_with("setting up uid map") || message.starts_with("setting up gid map") {
            if restricted {
                return Cause::AppArmorRestrictsUserns {
                    label: facts.apparmor_label.clone(),
                };
            }
            "it could not map ids in its new user namespace"
        } else if message.starts_with("loopback: Failed RTM_NEWADDR")
            || message.starts_with("loopback: Failed RTM_NEWLINK")
        {
            if restricted {
                return Cause::AppArmorRestrictsUserns {
                    label: facts.apparmor_label.clone(),
                };
            }
            "netlink is refused in its new network namespace"
        } else if message.starts_with("Creating new namespace failed")
            || message.starts_with("No permissions to creat")
        {
            if facts.max_user_namespaces == Some(0) {
                return Cause::UserNamespacesDisabled;
            }
            if message.contains("No space left on device") || message.contains("ENOSPC") {
                return Cause::UserNamespaceLimit {
                    max: facts.max_user_namespaces,
                    nested: facts.in_user_namespace == Some(true),
                };
            }
            if facts.unprivileged_userns_clone == Some(0) {
                return Cause::UnprivilegedUsernsCloneOff;
            }
            if facts.under_seccomp_filter() {
                return Cause::SeccompFilter;
            }
            "the kernel refused the namespace"
        } else {
            "unrecognised message"
        };
    Cause::ProgramFailed {
        program: program.to_owned(),
        hint: hint.into(),
    }
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

    #[test]
    fn bwrap_messages_by_prefix() {
        let facts = HostFacts {
            max_user_namespaces: Some(0),
            ..HostFacts::default()
        };
        assert_eq!(
            program_cause(
                "bwrap",
                "bwrap: Creating new namespace failed: No space left on device",
                &facts
            ),
            Cause::UserNamespacesDisabled
        );
        let ubuntu = HostFacts {
            apparmor_restrict_unprivileged_userns: Some(1),
            ..HostFacts::default()
        };
        assert_eq!(
            program_cause(
                "bwrap",
                "bwrap: setting up uid map: Permission denied",
                &ubuntu
            )
            .id(),
            "apparmor_restrict_unprivileged_userns"
        );
        match program_cause(
            "bwrap",
            "bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted",
            &HostFacts::default(),
        ) {
            Cause::ProgramFailed { hint, .. } => assert!(hint.contains("netlink")),
            other => panic!("{other:?}"),
        }
    }
}
