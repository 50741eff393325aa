//! `cgroup_delegation`: whether this user may create a child cgroup in its
//! own cgroup v2 subtree, with the `cpu`, `memory` and `pids` controllers,
//! and move a process into it; what rootless Podman and `systemd --user`
//! need.
//!
//! The probe makes the child cgroup in the *delegation root*: the highest
//! ancestor of this process's cgroup it may write to (a process's own
//! cgroup is a leaf, whose children get no controllers while it holds
//! processes). It enables nothing and changes no existing cgroup; the
//! child cgroup is removed once its process has exited.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use super::child::run_child;
use super::program::Op;
use super::{Outcome, ProbeOptions, child_outcome, failed};
use crate::failure::Failure;
use crate::step::Step;

/// The controllers a delegated subtree must offer.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

pub(super) fn delegation(options: &ProbeOptions) -> (Outcome, Option<String>) {
    // A source that cannot be read says nothing: not "no cgroup v2".
    let unreadable = |path: &str, e: std::io::Error| {
        let step = Step::ReadFile { path: path.into() };
        let failure = Failure::Unreadable {
            path: path.into(),
            errno: e.raw_os_error(),
            error: e.to_string(),
        };
        (failed(step, failure), None)
    };
    let mountinfo = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => return unreadable("/proc/self/mountinfo", e),
    };
    let v1 = mountinfo.lines().any(|l| fstype(l) == Some("cgroup"));
    let Some((mount_point, mount_root)) = mountinfo
        .lines()
        .filter(|l| fstype(l) == Some("cgroup2"))
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let root = f.nth(3)?.to_owned();
            Some((f.next()?.to_owned(), root))
        })
    else {
        let what = if v1 {
            "a cgroup v2 hierarchy (only cgroup v1 is mounted)"
        } else {
            "a cgroup v2 hierarchy (no cgroup filesystem is mounted)"
        };
        return (
            failed(Step::FindCgroup, Failure::Missing { what: what.into() }),
            None,
        );
    };
    let own = match fs::read_to_string("/proc/self/cgroup") {
        Ok(t) => t
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_owned)),
        Err(e) => return unreadable("/proc/self/cgroup", e),
    };
    let Some(own) = own else {
        let what = "this process's cgroup v2 (no `0::` line in /proc/self/cgroup)";
        return (
            failed(Step::FindCgroup, Failure::Missing { what: what.into() }),
            None,
        );
    };
    let relative = own
        .strip_prefix(mount_root.trim_end_matches('/'))
        .unwrap_or(&own)
        .trim_start_matches('/');
    let mount_point = PathBuf::from(mount_point);
    let own_dir = if relative.is_empty() {
        mount_point.clone()
    } else {
        mount_point.join(relative)
    };
    let root = delegation_root(&mount_point, &own_dir);

    // Unique per process and thread: probes of one process may run at
    // once (doctor probes in parallel).
    let child = root.join(format!(
        "userns-test-probe-{}-{}",
        std::process::id(),
        nix::unistd::gettid()
    ));
    if let Err(e) = fs::create_dir(&child) {
        let step = Step::Mkdir {
            path: child.display().to_string(),
        };
        return (
            failed(step, Failure::errno(e.raw_os_error().unwrap_or(libc::EIO))),
            None,
        );
    }
    let outcome = controllers(&root, &child, v1).and_then(|()| move_a_process(&child, options));
    remove(&child);
    let note = outcome
        .is_ok()
        .then(|| format!("delegated at {}", root.display()));
    (outcome, note)
}

/// The controllers the child cgroup got (its parent's
/// `cgroup.subtree_control`), and, where some are missing, why.
fn controllers(root: &Path, child: &Path, v1: bool) -> Outcome {
    let subtree = root.join("cgroup.subtree_control");
    let own = child.join("cgroup.controllers");
    let got = match fs::read_to_string(&own) {
        Ok(t) => t,
        Err(e) => {
            let failure = Failure::Unreadable {
                path: own.display().to_string(),
                errno: e.raw_os_error(),
                error: e.to_string(),
            };
            return failed(read(&own), failure);
        }
    };
    let has = |text: &str, c: &str| text.split_whitespace().any(|w| w == c);
    let missing: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !has(&got, c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let available = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let absent: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|c| !has(&available, c))
        .collect();
    let what = if !absent.is_empty() && v1 {
        format!(
            "{} in cgroup v2 (bound to cgroup v1 hierarchies: a hybrid host)",
            absent.join(", ")
        )
    } else if !absent.is_empty() {
        format!(
            "{} in cgroup.controllers (not given to this subtree)",
            absent.join(", ")
        )
    } else {
        format!(
            "{} in cgroup.subtree_control (available, not enabled)",
            missing.join(", ")
        )
    };
    failed(read(&subtree), Failure::Missing { what })
}

/// The filesystem type of a mountinfo line (after the ` - `).
fn fstype(line: &str) -> Option<&str> {
    line.split(" - ").nth(1)?.split_whitespace().next()
}

fn read(path: &Path) -> Step {
    Step::ReadFile {
        path: path.display().to_string(),
    }
}

/// The highest cgroup from `own` up to the mount point that this process
/// may write to, all the way up without a gap; `own` where none is.
fn delegation_root(mount_point: &Path, own: &Path) -> PathBuf {
    let writable = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    let mut root = own.to_path_buf();
    let mut dir = own.to_path_buf();
    while writable(&dir) {
        root = dir.clone();
        if dir == mount_point || !dir.pop() || !dir.starts_with(mount_point) {
            break;
        }
    }
    root
}

/// A probe child that waits while its pid is written to `cgroup`'s
/// `cgroup.procs`, then exits.
fn move_a_process(cgroup: &Path, options: &ProbeOptions) -> Outcome {
    let procs = cgroup.join("cgroup.procs");
    let pipes = (|| Ok::<_, Errno>((pipe2(OFlag::O_CLOEXEC)?, pipe2(OFlag::O_CLOEXEC)?)))();
    let ((ready_r, ready_w), (release_r, release_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return failed(Step::Handshake, Failure::errno(e as i32)),
    };
    let ops = [
        Op::SignalReady {
            fd: ready_w.as_raw_fd(),
        },
        Op::WaitForRelease {
            fd: release_r.as_raw_fd(),
        },
    ];
    let run = run_child(&ops, 0, options.timeout, |pid, deadline| {
        let moved = if super::external::wait_ready(&ready_r, deadline) {
            match fs::write(&procs, pid.to_string()) {
                Ok(()) => Ok(()),
                Err(e) => failed(
                    Step::Write {
                        path: procs.display().to_string(),
                        data: pid.to_string(),
                    },
                    Failure::errno(e.raw_os_error().unwrap_or(libc::EIO)),
                ),
            }
        } else {
            failed(Step::Handshake, Failure::errno(libc::ETIMEDOUT))
        };
        let _ = nix::unistd::write(&release_w, &[1]);
        moved
    });
    match run {
        Ok((_, Err(f))) => Err(f),
        Ok((run, Ok(()))) => child_outcome(&ops, &run),
        Err(_) => failed(Step::Handshake, Failure::errno(libc::EAGAIN)),
    }
}

/// Removes the probe's cgroup once its process has left it (the kernel
/// takes an exited process out shortly after it is reaped).
fn remove(cgroup: &Path) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while fs::remove_dir(cgroup).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
}
