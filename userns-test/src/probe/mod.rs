//! Probes: each ability's operation, performed in a throwaway child.
//!
//! [`probe`](crate::probe()) caches one verdict per ability per process;
//! [`probe_with`] runs the probe again every time (benchmarks, tools).

mod child;
mod external;
mod program;
mod raw;
mod step;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use step::Step;

use crate::Ability;
use crate::diagnosis::{Cause, diagnose};
use crate::facts::{Facts, HostFacts};
use crate::verdict::{Failure, Reason, Status, Verdict};
use child::{ALL_DONE, ChildEnd, ChildRun, SpawnError, run_child};
use program::Op;
use step::clone_flag_names;

/// How probes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// The longest a probe may take before its child is killed.
    pub timeout: Duration,
    /// bubblewrap to run, instead of `bwrap` on `PATH`.
    pub bwrap: Option<PathBuf>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(10),
            bwrap: None,
        }
    }
}

/// Probes `ability` now, without the per-process cache.
pub fn probe_with(ability: Ability, options: &ProbeOptions) -> Verdict {
    let started = Instant::now();
    // The host facts are read where an answer depends on them (root, the
    // subordinate ids of this user) or a failure needs explaining, not
    // before: a namespace probe that succeeds needs only the ids below.
    let (status, note) = match ability {
        Ability::Root => (root_status(HostFacts::get()), None),
        Ability::Bwrap | Ability::BwrapNet => external::bwrap(ability, options),
        Ability::Subids => (external::subids(options, HostFacts::get()), None),
        _ => syscall_probe(ability, options),
    };
    Verdict {
        ability,
        status,
        note,
        duration: started.elapsed(),
    }
}

/// The ops of a system-call probe and the extra clone flags its child
/// needs.
fn program(ability: Ability) -> (libc::c_int, Vec<Op>) {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let mut ops = Vec::with_capacity(8);
    let mut flags = 0;
    if ability == Ability::Pid {
        // The child must be PID 1 of the new namespace, so the namespaces
        // come with the clone itself; the map writes follow inside.
        flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID;
        ops.extend(Op::become_root(uid, gid));
    } else if ability.needs_user_namespace() {
        ops.push(Op::Unshare(libc::CLONE_NEWUSER));
        ops.extend(Op::become_root(uid, gid));
    }
    let private_root = || {
        Op::mount(
            None,
            "/",
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
            "making / private (MS_REC|MS_PRIVATE)".into(),
        )
    };
    match ability {
        Ability::User => {}
        Ability::CapSysAdmin => ops.push(Op::Unshare(libc::CLONE_NEWNS)),
        Ability::Mount => {
            let target = if std::path::Path::new("/tmp").is_dir() {
                "/tmp"
            } else {
                "/"
            };
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(private_root());
            ops.push(Op::mount(
                Some("tmpfs"),
                target,
                Some("tmpfs"),
                0,
                Some("size=64k"),
                format!("tmpfs on {target}"),
            ));
        }
        Ability::Net => {
            ops.push(Op::Unshare(libc::CLONE_NEWNET));
            ops.push(Op::loopback_address());
            ops.push(Op::loopback_up());
        }
        Ability::Pid => {
            ops.push(Op::Unshare(libc::CLONE_NEWNS));
            ops.push(private_root());
            ops.push(Op::mount(
                Some("proc"),
                "/proc",
                Some("proc"),
                (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong,
                None,
                "proc on /proc".into(),
            ));
        }
        Ability::Ipc => ops.push(Op::Unshare(libc::CLONE_NEWIPC)),
        Ability::Uts => {
            ops.push(Op::Unshare(libc::CLONE_NEWUTS));
            ops.push(Op::SetHostname(b"userns-test"));
        }
        Ability::Cgroup => ops.push(Op::Unshare(libc::CLONE_NEWCGROUP)),
        Ability::Time => ops.push(Op::Unshare(libc::CLONE_NEWTIME)),
        Ability::Nested => {
            // Root of the outer namespace maps itself again.
            ops.push(Op::Unshare(libc::CLONE_NEWUSER));
            ops.extend(Op::become_root(0, 0));
        }
        Ability::CapSetpcap => ops.push(Op::CapBsetDrop(capability_to_drop(HostFacts::get()))),
        Ability::Seccomp => {
            ops.push(Op::NoNewPrivs);
            ops.push(Op::seccomp_allow_all());
        }
        Ability::Landlock => {
            ops.push(Op::LandlockAbi);
            ops.push(Op::NoNewPrivs);
            ops.push(Op::landlock_restrict());
        }
        Ability::Bwrap | Ability::BwrapNet | Ability::Subids | Ability::Root => {}
    }
    (flags, ops)
}

/// A capability already absent from the bounding set (dropping it is a
/// no-op that still needs CAP_SETPCAP), else the highest one. Only the
/// probe child's bounding set changes either way.
fn capability_to_drop(facts: &HostFacts) -> u32 {
    let last = facts.cap_last_cap.unwrap_or(40).min(63);
    let bounding = facts.cap_bounding.unwrap_or(u64::MAX);
    (0..=last)
        .rev()
        .find(|cap| bounding & (1 << cap) == 0)
        .unwrap_or(last)
}

fn syscall_probe(ability: Ability, options: &ProbeOptions) -> (Status, Option<String>) {
    let (flags, ops) = program(ability);
    match run_child(&ops, flags, options.timeout, |_, _| ()) {
        Ok((run, ())) => {
            let note = (ability == Ability::Landlock && run.value > 0)
                .then(|| format!("Landlock ABI {}", run.value));
            (child_status(ability, &ops, &run), note)
        }
        Err(e) => (spawn_failure(ability, flags, e), None),
    }
}

/// Turns a finished child into a status.
pub(crate) fn child_status(ability: Ability, ops: &[Op], run: &ChildRun) -> Status {
    let failure = match run.end {
        ChildEnd::Exited(0) if run.op == ALL_DONE => return Status::Available,
        ChildEnd::Exited(_) if run.errno != 0 => Failure::errno(run.errno),
        ChildEnd::Exited(code) => Failure::ExitStatus { code, stderr: None },
        ChildEnd::Killed(sig) => Failure::signal(sig),
        ChildEnd::TimedOut(after) => Failure::TimedOut {
            after_ms: after.as_millis() as u64,
        },
    };
    let step = ops
        .get(run.op)
        .map(|op| op.step(run.phase))
        .unwrap_or(Step::Handshake);
    unavailable(ability, step, failure)
}

fn spawn_failure(ability: Ability, flags: libc::c_int, e: SpawnError) -> Status {
    let (step, errno) = match e {
        // What the clone asked for: the child's own flags and a pidfd (and
        // CLONE_VM where a core dump cannot take the test process down).
        SpawnError::Clone(errno) => (
            Step::Clone {
                flags: clone_flag_names(flags | libc::CLONE_PIDFD),
            },
            errno,
        ),
        SpawnError::Memory(errno) => (
            Step::Clone {
                flags: "(mapping the child's stack)".into(),
            },
            errno,
        ),
    };
    unavailable(ability, step, Failure::errno(errno as i32))
}

/// An unavailable status with its diagnosis (which reads this process's
/// host facts only if the failure is one they explain).
pub(crate) fn unavailable(ability: Ability, step: Step, failure: Failure) -> Status {
    let (cause, remedy) = diagnose(ability, &step, &failure, Facts::ThisProcess);
    Status::Unavailable(Reason {
        step,
        failure,
        cause,
        remedy,
    })
}

/// An unavailable status whose cause is already known.
pub(crate) fn unavailable_because(
    ability: Ability,
    step: Step,
    failure: Failure,
    cause: Cause,
) -> Status {
    let remedy = crate::diagnosis::remedy(ability, &cause, Facts::ThisProcess);
    Status::Unavailable(Reason {
        step,
        failure,
        cause,
        remedy,
    })
}

fn root_status(facts: &HostFacts) -> Status {
    let cause = if facts.uid != 0 {
        Cause::NotRoot { uid: facts.uid }
    } else {
        match facts.in_user_namespace {
            Some(false) => return Status::Available,
            Some(true) => Cause::NotInitialUserNamespace {
                uid_map: facts.uid_map.clone().unwrap_or_default(),
            },
            // Unknown is not "not in one": uid 0 inside a user namespace
            // would pass.
            None => {
                let path = "/proc/self/uid_map";
                let (errno, error) = facts
                    .unreadable(path)
                    .map_or((None, "it is missing (no procfs?)".to_owned()), |u| {
                        (u.errno, u.error.clone())
                    });
                return unavailable(
                    Ability::Root,
                    Step::CheckUid,
                    Failure::Unreadable {
                        path: path.into(),
                        errno,
                        error,
                    },
                );
            }
        }
    };
    let found = match &cause {
        Cause::NotRoot { uid } => format!("real uid {uid}"),
        _ => format!("uid_map {}", facts.uid_map.as_deref().unwrap_or("unknown")),
    };
    unavailable_because(
        Ability::Root,
        Step::CheckUid,
        Failure::Mismatch { found },
        cause,
    )
}

/// The reason of an ability that `USERNS_TEST_DENY` lists.
pub(crate) fn denied_reason(ability: Ability) -> Reason {
    let step = Step::ReadEnvironment {
        variable: crate::policy::DENY_VAR.into(),
    };
    match unavailable(ability, step, Failure::Denied) {
        Status::Unavailable(r) => r,
        Status::Available => unreachable!("a denial is never available"),
    }
}
