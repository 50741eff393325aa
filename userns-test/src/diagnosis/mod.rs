//! Diagnosis: from what the probes observed, the cause and the narrowest
//! remedy.
//!
//! A probe says which step failed and how; the cause comes from evidence,
//! never from a fact alone: the errno at that step, the host facts, what
//! the probes of *other* abilities observed (`user` available means no
//! filter refuses user namespaces), and control calls (the probe's call
//! again, with an argument the kernel rejects first) that tell a seccomp
//! filter's refusal from the kernel's. A sysctl that restricts user namespaces is named only
//! after the operation itself failed in the way that sysctl makes it fail.
//!
//! The words of a cause and its remedy depend on the host, never on which
//! ability hit it: abilities refused for one reason share one root cause,
//! which summaries and reports show once.

linux! {
    mod programs;
    mod system_calls;
}
pub(crate) mod remedy;

use crate::Ability;
use crate::cause::Cause;
use crate::facts::HostFacts;
use crate::failure::Failure;
use crate::probe::control::FilterCheck;
use crate::probe::{Failed, Observation};
use crate::step::Step;
use crate::verdict::{Reason, Status, Verdict};

pub use remedy::apparmor_profile;
pub(crate) use remedy::remedy;

/// Where a diagnosis takes its evidence from. Each source is asked only
/// when the failure needs it: a probe that fails for a cause that needs no
/// facts (a program not installed, a denial) reads nothing from `/proc`.
pub(crate) trait Evidence {
    /// The host facts.
    fn facts(&self) -> &HostFacts;
    /// What probing `ability` observed on this host (probed on demand).
    fn observation(&self, ability: Ability) -> Observation;
    /// The control call for `step` of `ability`'s probe.
    fn filter_check(&self, ability: Ability, step: &Step) -> FilterCheck;
    /// Whether the program at `path` carries privilege (setuid root, or
    /// file capabilities), when that can be read.
    fn program_privileged(&self, path: &str) -> Option<bool>;
    /// A file's mode, owner and mount, when they can be read.
    fn file_status(&self, path: &str) -> Option<FileStatus>;
}

/// A file's mode and owner, and the mount it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStatus {
    /// `st_mode`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The mount point of its filesystem.
    pub mount: String,
    /// Whether that filesystem is mounted `noexec`.
    pub noexec: bool,
}

impl FileStatus {
    linux! {
        /// Reads `path`'s status and its mount (Linux only: off Linux no
        /// probe runs a program or opens a device).
        fn read(path: &str) -> Option<FileStatus> {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path).ok()?;
            let flags = nix::sys::statvfs::statvfs(path).ok()?.flags();
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            // The longest mount point that is a prefix of the path.
            let mount = mountinfo
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|m| {
                    *m == "/"
                        || path == *m
                        || path.starts_with(&format!("{}/", m.trim_end_matches('/')))
                })
                .max_by_key(|m| m.len())
                .unwrap_or("/")
                .to_owned();
            Some(FileStatus {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                mount,
                noexec: flags.contains(nix::sys::statvfs::FsFlags::ST_NOEXEC),
            })
        }
    }

    /// Whether its mode lets a process with `facts`' ids (and groups) have
    /// `bits` (4 read, 2 write, 1 execute, or their sum): owner, group or
    /// other class, as the kernel picks it. Root is not special here; the
    /// caller decides.
    pub(crate) fn permits(&self, facts: &HostFacts, bits: u32) -> bool {
        let class = if self.uid == facts.euid {
            (self.mode >> 6) & 7
        } else if self.gid == facts.egid || facts.groups.contains(&self.gid) {
            (self.mode >> 3) & 7
        } else {
            self.mode & 7
        };
        class & bits == bits
    }

    /// `crw------- 0:0`-style, for messages.
    pub(crate) fn describe(&self) -> String {
        // The file-type bits of `st_mode` (S_IFMT), as every Unix has them.
        let kind = match self.mode & 0o170000 {
            0o020000 => 'c',
            0o060000 => 'b',
            0o040000 => 'd',
            _ => '-',
        };
        let mut text = String::from(kind);
        for shift in [6, 3, 0] {
            let bits = (self.mode >> shift) & 7;
            text.push(if bits & 4 != 0 { 'r' } else { '-' });
            text.push(if bits & 2 != 0 { 'w' } else { '-' });
            text.push(if bits & 1 != 0 { 'x' } else { '-' });
        }
        format!("mode {text}, owner {}:{}", self.uid, self.gid)
    }
}

/// The verdict on what `observation` saw.
pub(crate) fn assess(observation: Observation, evidence: &dyn Evidence) -> Verdict {
    let status = match &observation.result {
        Ok(()) => Status::Available,
        Err(failed) => Status::Unavailable(reason(observation.ability, failed, evidence)),
    };
    Verdict {
        ability: observation.ability,
        status,
        note: observation.note,
        duration: observation.duration,
    }
}

/// Why `ability` is unavailable after `failed`.
pub(crate) fn reason(ability: Ability, failed: &Failed, evidence: &dyn Evidence) -> Reason {
    let cause = cause(ability, failed, evidence);
    let remedy = remedy(&cause, &|| evidence.facts());
    Reason {
        step: failed.step.clone(),
        failure: failed.failure.clone(),
        cause,
        remedy,
    }
}

/// The cause of `failed`, from the evidence.
pub(crate) fn cause(ability: Ability, failed: &Failed, evidence: &dyn Evidence) -> Cause {
    match &failed.failure {
        Failure::Mismatch { found } if failed.step == Step::CheckSystem => {
            Cause::UnsupportedSystem { os: found.clone() }
        }
        Failure::TimedOut { .. } => Cause::TimedOut,
        Failure::Denied => Cause::DeniedByEnvironment,
        Failure::Configuration { .. } => Cause::BadConfiguration,
        _ => kernel_cause(ability, failed, evidence),
    }
}

linux! {
    /// The cause of a failure the kernel answered (an errno, a signal, a file
    /// of `/proc` that could not be read).
    fn kernel_cause(ability: Ability, failed: &Failed, evidence: &dyn Evidence) -> Cause {
        let Failed { step, failure } = failed;
        match failure {
            Failure::Signal { number, .. } if *number == libc::SIGSYS => Cause::SeccompKill,
            Failure::Signal { .. } => Cause::KilledFromOutside,
            Failure::Unreadable {
                errno: Some(errno @ (libc::EMFILE | libc::ENFILE | libc::ENOMEM)),
                ..
            } => system_calls::resource_limit(*errno, evidence).unwrap_or(Cause::Unexplained),
            Failure::Unreadable { path, .. } => Cause::Unreadable { path: path.clone() },
            _ => programs::cause(ability, step, failure, evidence).unwrap_or_else(|| {
                match failure.errno_number() {
                    Some(errno) => system_calls::cause(ability, step, errno, evidence),
                    None => Cause::Unexplained,
                }
            }),
        }
    }
}

elsewhere! {
    /// Off Linux no probe reaches a kernel: nothing to explain beyond the
    /// failure itself.
    fn kernel_cause(_: Ability, failed: &Failed, _: &dyn Evidence) -> Cause {
        match &failed.failure {
            Failure::Signal { .. } => Cause::KilledFromOutside,
            Failure::Unreadable { path, .. } => Cause::Unreadable { path: path.clone() },
            _ => Cause::Unexplained,
        }
    }
}

/// The reason every ability is unavailable when the environment's
/// configuration is malformed.
pub(crate) fn misconfigured(variable: &str, message: String) -> Reason {
    let cause = Cause::BadConfiguration;
    Reason {
        step: Step::ReadEnvironment {
            variable: variable.into(),
        },
        failure: Failure::Configuration { message },
        remedy: remedy(&cause, &HostFacts::get),
        cause,
    }
}

/// The evidence of this process: its facts, read on first use; other
/// abilities observed through `observe` (the gate's cache, or a memo of
/// one uncached probe); control calls run now.
pub(crate) struct Live<'a> {
    /// The probes' time bound, for control calls.
    pub timeout: std::time::Duration,
    /// Observes another ability.
    pub observe: &'a dyn Fn(Ability) -> Observation,
}

impl Evidence for Live<'_> {
    fn facts(&self) -> &HostFacts {
        HostFacts::get()
    }

    fn observation(&self, ability: Ability) -> Observation {
        (self.observe)(ability)
    }

    linux! {
        fn filter_check(&self, ability: Ability, step: &Step) -> FilterCheck {
            crate::probe::control::check(ability, step, self.timeout)
        }

        fn program_privileged(&self, path: &str) -> Option<bool> {
            programs::privileged(path)
        }

        fn file_status(&self, path: &str) -> Option<FileStatus> {
            FileStatus::read(path)
        }
    }

    elsewhere! {
        // Off Linux there is no call to control, no program or device to
        // examine: each says it does not know.
        fn filter_check(&self, _: Ability, _: &Step) -> FilterCheck {
            FilterCheck::Unknown
        }

        fn program_privileged(&self, _: &str) -> Option<bool> {
            None
        }

        fn file_status(&self, _: &str) -> Option<FileStatus> {
            None
        }
    }
}

linux! {
    #[cfg(test)]
    mod tests;
}
