//! `#[in_userns(..., ids = N)]`: uids and gids 0 to N-1 in the test's user
//! namespace, 0 mapped to the caller and 1 to N-1 to the caller's
//! subordinate ranges (`/etc/subuid`, `/etc/subgid`), written by
//! `newuidmap` and `newgidmap` as `unshare --map-auto` and rootless
//! Podman write them. setgroups stays allowed (newgidmap leaves it so).
//!
//! Root needs no range: a process with CAP_SETUID and CAP_SETGID may write
//! any map of ids its own namespace holds, so root with no range (the
//! usual container or CI job) maps 1 to N-1 to the same ids of its own
//! namespace, written by the helper itself.
//!
//! The parent reads the ranges ([`IdMap::of_caller`]) and hands them to
//! the child in the environment; the child, before `main` and still
//! single-threaded, forks a helper that runs the two programs from outside
//! the new namespace once the child has created it ([`IdMap::enter`]): a
//! process cannot write its own map beyond its own id.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::Mutex;

use crate::cause::Cause;
use crate::failure::Failure;
use crate::step::Step;
use crate::{Ability, Reason};

/// The variable carrying the map to the child: `N,uid_start,gid_start`.
pub(crate) const IDS_VAR: &str = "USERNS_TEST_IN_USERNS_IDS";

/// A failed step: what was done, and how it failed.
pub(crate) type Failed = (String, String);

/// uids and gids 0..`ids`: 0 is the caller's, 1.. start at the ranges'
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdMap {
    pub(crate) ids: u32,
    pub(crate) uid_start: u64,
    pub(crate) gid_start: u64,
    /// Written by the helper itself (root), not by newuidmap/newgidmap.
    pub(crate) direct: bool,
}

/// Whether this process may write a map of uids and gids 0 to `ids - 1`
/// for a user namespace it creates, without newuidmap: uid and gid 0 with
/// CAP_SETUID and CAP_SETGID effective (as `cap(setuid)` and `cap(setgid)`
/// find them), its own namespace holding those ids.
pub(crate) fn maps_itself(ids: u32) -> bool {
    once_per_process(&MAPS_ITSELF, ids, || read_maps_itself(ids))
}

/// What [`maps_itself`] and [`range_too_short`] found, by `ids`: read once
/// per process, from outside any namespace it enters. A nextest test
/// process enters its test's namespaces before `main` and its gate asks
/// again from inside, where uid 0, the maps and the user named by the
/// effective uid are the namespace's (`in_place.rs`).
static MAPS_ITSELF: ByIds<bool> = Mutex::new(Vec::new());
static TOO_SHORT: ByIds<Option<(Ability, Reason)>> = Mutex::new(Vec::new());

/// Values found once per process, by the number of ids.
type ByIds<T> = Mutex<Vec<(u32, T)>>;

fn once_per_process<T: Clone>(cache: &ByIds<T>, ids: u32, read: impl FnOnce() -> T) -> T {
    if let Some((_, found)) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(n, _)| *n == ids)
    {
        return found.clone();
    }
    // Read without the lock held: it probes, which may ask again.
    let found = read();
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((ids, found.clone()));
    found
}

fn read_maps_itself(ids: u32) -> bool {
    // CAP_SETGID is 6, CAP_SETUID 7.
    let capable = [6, 7]
        .into_iter()
        .all(|cap| crate::gate::probe(Ability::Cap(cap)).is_available());
    let holds = |file: &str| {
        std::fs::read_to_string(file).is_ok_and(|map| {
            map.lines().any(|line| {
                let f: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                matches!(f[..], [inside, _, count] if inside == 0 && count >= u64::from(ids))
            })
        })
    };
    nix::unistd::geteuid().is_root()
        && nix::unistd::getegid().as_raw() == 0
        && capable
        && holds("/proc/self/uid_map")
        && holds("/proc/self/gid_map")
}

/// Why the caller's ranges cannot map `ids` ids.
enum RangeProblem {
    /// A file could not be read: what was tried, and the error.
    Unreadable(String),
    /// No range for the caller (the `subids` probe found one before).
    Missing { path: &'static str, who: String },
    /// A range, too short: its reason, as an unmet `subids`.
    TooShort(Box<Reason>),
}

impl RangeProblem {
    fn message(&self) -> String {
        match self {
            RangeProblem::Unreadable(message) => message.clone(),
            RangeProblem::Missing { path, who } => format!(
                "{path} holds no range for {who} (the subids probe found one before the test); \
                 add one (`sudo usermod --add-subuids 100000-165535 --add-subgids \
                 100000-165535 {who}`)"
            ),
            RangeProblem::TooShort(reason) => format!("{}; {}", reason.cause, reason.remedy),
        }
    }
}

/// Why this caller cannot map `ids` ids where it has a subordinate range
/// too short for them (no range at all is `subids`' own refusal): the
/// reason the test is skipped with, as an unmet `subids`.
pub(crate) fn range_too_short(ids: u32) -> Option<(Ability, Reason)> {
    once_per_process(&TOO_SHORT, ids, || match IdMap::of_ranges(ids) {
        Err(RangeProblem::TooShort(reason)) => Some((Ability::Subids, *reason)),
        // Unreadable or gone since the probe: said when the test runs.
        _ => None,
    })
}

impl IdMap {
    /// The caller's ranges, each long enough for `ids - 1` ids, or, for a
    /// root without them, its own ids; an error says which file, for whom,
    /// what it holds and what to do.
    pub(crate) fn of_caller(ids: u32) -> Result<IdMap, String> {
        let direct = IdMap {
            ids,
            uid_start: 1,
            gid_start: 1,
            direct: true,
        };
        // The ranges only where the gate found newuidmap and newgidmap
        // working (`subids`): root with a range but without the programs
        // maps its own ids.
        let programs_work = crate::gate::probed(Ability::Subids).is_some_and(|v| v.is_available());
        if !programs_work && maps_itself(ids) {
            return Ok(direct);
        }
        match IdMap::of_ranges(ids) {
            Err(_) if maps_itself(ids) => Ok(direct),
            other => other.map_err(|problem| problem.message()),
        }
    }

    /// The caller's ranges, each long enough for `ids - 1` ids.
    fn of_ranges(ids: u32) -> Result<IdMap, RangeProblem> {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let (name, who) = crate::probe::external::user_name(uid);
        let wanted = u64::from(ids) - 1;
        let mut starts = [0u64; 2];
        for (slot, (path, id)) in [("/etc/subuid", uid), ("/etc/subgid", gid)]
            .into_iter()
            .enumerate()
        {
            let text = std::fs::read_to_string(path).map_err(|e| {
                RangeProblem::Unreadable(format!("reading {path} for {who}'s range failed: {e}"))
            })?;
            match crate::probe::external::subid_range(&text, name.as_deref(), id) {
                Some((start, count)) if count >= wanted => starts[slot] = start,
                Some((start, count)) => {
                    // Ranges and counts are ids: they fit in 32 bits.
                    let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                    let cause = Cause::SubordinateRangeTooShort {
                        path: path.into(),
                        user: who.clone(),
                        start: narrow(start),
                        count: narrow(count),
                        wanted: narrow(wanted),
                    };
                    let facts = crate::facts::HostFacts::get();
                    let remedy = crate::diagnosis::remedy::remedy(&cause, &|| facts);
                    return Err(RangeProblem::TooShort(Box::new(Reason {
                        step: Step::ReadSubids {
                            path: path.into(),
                            user: who,
                        },
                        failure: Failure::Mismatch {
                            found: format!("{count} ids from {start}, {wanted} wanted"),
                        },
                        cause,
                        remedy,
                    })));
                }
                None => return Err(RangeProblem::Missing { path, who }),
            }
        }
        Ok(IdMap {
            ids,
            uid_start: starts[0],
            gid_start: starts[1],
            direct: false,
        })
    }

    /// The value of [`IDS_VAR`].
    pub(crate) fn to_var(self) -> String {
        format!(
            "{},{},{},{}",
            self.ids,
            self.uid_start,
            self.gid_start,
            if self.direct { "direct" } else { "newidmap" }
        )
    }

    /// The map in [`IDS_VAR`]'s value.
    pub(crate) fn from_var(text: &str) -> Option<IdMap> {
        let mut f = text.split(',');
        let map = IdMap {
            ids: f.next()?.parse().ok()?,
            uid_start: f.next()?.parse().ok()?,
            gid_start: f.next()?.parse().ok()?,
            direct: match f.next()? {
                "direct" => true,
                "newidmap" => false,
                _ => return None,
            },
        };
        (f.next().is_none() && map.ids >= 2).then_some(map)
    }

    /// Creates this process's user namespace and has it mapped: a helper
    /// forked first waits for the namespace, then runs newuidmap and
    /// newgidmap on this process, and tells what failed. Before `main`
    /// only: the process is single-threaded, so the forked helper may run
    /// any code (allocate, spawn programs).
    pub(crate) fn enter(self, uid: u32, gid: u32) -> Result<(), Failed> {
        let pid = std::process::id();
        let (ready_r, ready_w) = pipe().map_err(|e| ("pipe, for newuidmap".into(), e))?;
        let (done_r, done_w) = pipe().map_err(|e| ("pipe, for newuidmap".into(), e))?;
        // SAFETY: fork in a single-threaded process (before `main`).
        let helper = unsafe { libc::fork() };
        if helper < 0 {
            return Err((
                "fork, to run newuidmap".into(),
                crate::failure::Failure::errno(last_errno()).to_string(),
            ));
        }
        if helper == 0 {
            drop(ready_w);
            drop(done_r);
            self.helper(pid, uid, gid, ready_r, done_w)
        }
        drop(ready_r);
        drop(done_w);
        // SAFETY: unshare on this process.
        let unshared = match unsafe { libc::unshare(libc::CLONE_NEWUSER) } {
            0 => Ok(()),
            _ => Err(last_errno()),
        };
        let mut ready = std::fs::File::from(ready_w);
        if unshared.is_ok() {
            let _ = ready.write_all(&[1]);
        }
        // Closed either way: a helper whose namespace never came reads
        // nothing and ends.
        drop(ready);
        let mut report = String::new();
        let _ = std::fs::File::from(done_r).read_to_string(&mut report);
        let mut status = 0;
        // SAFETY: waiting for our own child (ECHILD where SIGCHLD is
        // ignored: the pipe already said how it ended).
        unsafe { libc::waitpid(helper, &mut status, 0) };
        if let Err(errno) = unshared {
            return Err((
                "unshare(CLONE_NEWUSER)".into(),
                crate::failure::Failure::errno(errno).to_string(),
            ));
        }
        match report.split_once('\n') {
            Some(("ok", _)) => Ok(()),
            Some((step, failure)) => Err((step.to_owned(), failure.trim_end().to_owned())),
            None => Err((
                "running newuidmap and newgidmap".into(),
                format!("the helper ended without saying how they ran ({report:?})"),
            )),
        }
    }

    /// The helper: waits for the namespace, maps it, writes `ok\n` or the
    /// failed step and its failure, and exits.
    fn helper(self, pid: u32, uid: u32, gid: u32, ready: OwnedFd, done: OwnedFd) -> ! {
        // SAFETY: this process's own signal disposition: the programs'
        // exit statuses must be collectable even where the test process
        // ignores SIGCHLD (an ignored disposition survives exec).
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
        let mut byte = [0u8; 1];
        let mut done = std::fs::File::from(done);
        if !matches!(std::fs::File::from(ready).read(&mut byte), Ok(1)) {
            // SAFETY: ends the helper without the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        let report = self.map(pid, uid, gid).map_or_else(
            |(step, failure)| format!("{step}\n{failure}"),
            |()| "ok\n".to_owned(),
        );
        let _ = done.write_all(report.as_bytes());
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }

    fn map(self, pid: u32, uid: u32, gid: u32) -> Result<(), Failed> {
        if self.direct {
            // 0 to the caller, 1 to N-1 to the same ids.
            for (file, id, start) in [
                ("uid_map", uid, self.uid_start),
                ("gid_map", gid, self.gid_start),
            ] {
                let path = format!("/proc/{pid}/{file}");
                let map = format!("0 {id} 1\n1 {start} {}\n", self.ids - 1);
                std::fs::write(&path, &map).map_err(|e| {
                    (
                        format!("writing {:?} to {path}", map.trim_end()),
                        e.to_string(),
                    )
                })?;
            }
            return Ok(());
        }
        for (program, id, start) in [
            ("newuidmap", uid, self.uid_start),
            ("newgidmap", gid, self.gid_start),
        ] {
            let args =
                crate::probe::external::id_map_args(pid, id, start, u64::from(self.ids) - 1);
            let step = format!("running {program} {}", args.join(" "));
            let out = Command::new(program)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| (step.clone(), e.to_string()))?;
            if !out.status.success() {
                let said = String::from_utf8_lossy(&out.stderr);
                let said = said.trim();
                return Err((
                    step,
                    if said.is_empty() {
                        out.status.to_string()
                    } else {
                        format!("{}: {said}", out.status)
                    },
                ));
            }
        }
        Ok(())
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| crate::failure::Failure::errno(e as i32).to_string())
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_round_trips_and_refuses_malformed_values() {
        for direct in [false, true] {
            let map = IdMap {
                ids: 65536,
                uid_start: 100_000,
                gid_start: 200_000,
                direct,
            };
            assert_eq!(IdMap::from_var(&map.to_var()), Some(map));
        }
        for bad in [
            "",
            "1,0,0,direct",
            "65536,1,direct",
            "65536,1,2,direct,3",
            "x,1,2,direct",
            "65536,-1,2,direct",
            "65536,1,2",
            "65536,1,2,yes",
        ] {
            assert_eq!(IdMap::from_var(bad), None, "{bad:?}");
        }
    }
}
