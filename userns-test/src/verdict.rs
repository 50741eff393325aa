//! Verdicts: whether the host allows an ability, and if not, why.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::Ability;
use crate::diagnosis::Cause;
use crate::probe::Step;

/// The answer of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The ability probed.
    pub ability: Ability,
    /// Available, or not and why.
    #[serde(flatten)]
    pub status: Status,
    /// A fact the probe learned on the way, e.g. `Landlock ABI 6`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How long the probe took.
    #[serde(serialize_with = "serialize_micros", rename = "probe_us")]
    pub duration: Duration,
}

/// Whether an ability is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Status {
    /// The operation worked on this host.
    Available,
    /// The operation failed; the reason says where, how, why and what to do.
    Unavailable(Reason),
}

/// Why an ability is unavailable: what was tried, what failed, the cause
/// found in the host facts, and the narrowest remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The operation that failed.
    pub step: Step,
    /// How it failed.
    pub failure: Failure,
    /// What about this host explains it.
    pub cause: Cause,
    /// What to do about it, narrowest change first.
    pub remedy: String,
}

/// How a step failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// A system call failed with this errno.
    Errno {
        /// The errno number.
        number: i32,
        /// Its symbolic name, e.g. `EPERM`.
        name: String,
    },
    /// The probe child, or a program it ran, was killed by a signal.
    Signal {
        /// The signal number.
        number: i32,
        /// Its name, e.g. `SIGSYS`.
        name: String,
    },
    /// A program exited unsuccessfully.
    ExitStatus {
        /// Its exit status.
        code: i32,
        /// The first line it wrote to stderr, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        stderr: Option<String>,
    },
    /// The probe did not finish in time; it was killed and reaped.
    TimedOut {
        /// The time bound, in milliseconds.
        after_ms: u64,
    },
    /// A program or file the probe needs is not there.
    Missing {
        /// What is missing.
        what: String,
    },
    /// A check on the process's identity failed.
    Mismatch {
        /// What was found instead.
        found: String,
    },
    /// A file the answer depends on could not be read: the answer is not
    /// known, so the ability is not counted available.
    Unreadable {
        /// The file.
        path: String,
        /// The errno, when the error had one.
        errno: Option<i32>,
        /// The error, in words.
        error: String,
    },
    /// `USERNS_TEST_DENY` names the ability.
    Denied,
    /// The crate's environment configuration is malformed.
    Configuration {
        /// The error.
        message: String,
    },
}

impl Failure {
    /// A failure from an errno value.
    pub fn errno(number: i32) -> Failure {
        Failure::Errno {
            number,
            name: errno_name(number),
        }
    }

    /// A failure from a signal number.
    pub fn signal(number: i32) -> Failure {
        Failure::Signal {
            number,
            name: signal_name(number),
        }
    }

    /// The errno, for errno failures (and a file that could not be read
    /// for one).
    pub fn errno_number(&self) -> Option<i32> {
        match self {
            Failure::Errno { number, .. } => Some(*number),
            Failure::Unreadable { errno, .. } => *errno,
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Errno { number, name } => write!(f, "{name} ({number})"),
            Failure::Signal { number, name } => write!(f, "killed by {name} ({number})"),
            Failure::ExitStatus { code, stderr } => {
                write!(f, "exit status {code}")?;
                match stderr {
                    Some(line) => write!(f, ": {line}"),
                    None => Ok(()),
                }
            }
            Failure::TimedOut { after_ms } => {
                write!(f, "no answer within {after_ms} ms (killed and reaped)")
            }
            Failure::Missing { what } => write!(f, "{what} not found"),
            Failure::Mismatch { found } => f.write_str(found),
            Failure::Unreadable { path, error, .. } => write!(f, "cannot read {path}: {error}"),
            Failure::Denied => f.write_str("denied by USERNS_TEST_DENY"),
            Failure::Configuration { message } => f.write_str(message),
        }
    }
}

impl Reason {
    /// `step failed: failure`, without cause and remedy.
    pub fn short(&self) -> String {
        match self.failure {
            Failure::Denied | Failure::Unreadable { .. } => self.failure.to_string(),
            _ => format!("{} failed: {}", self.step, self.failure),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; cause: {}; fix: {}",
            self.short(),
            self.cause,
            self.remedy
        )
    }
}

impl Verdict {
    /// Whether the host allows the ability.
    pub fn is_available(&self) -> bool {
        matches!(self.status, Status::Available)
    }

    /// `yes`, or `yes (note)` when the probe learned something on the way.
    pub fn yes_with_note(&self) -> String {
        match &self.note {
            Some(n) => format!("yes ({n})"),
            None => "yes".into(),
        }
    }

    /// The reason, when unavailable.
    pub fn reason(&self) -> Option<&Reason> {
        match &self.status {
            Status::Available => None,
            Status::Unavailable(r) => Some(r),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            Status::Available => write!(f, "{}: {}", self.ability, self.yes_with_note()),
            Status::Unavailable(r) => write!(f, "{}: no: {r}", self.ability),
        }
    }
}

fn serialize_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros().min(u64::MAX as u128) as u64)
}

/// `EPERM`, `ENOSPC`, ...; `errno N` for numbers nix does not know.
pub(crate) fn errno_name(number: i32) -> String {
    let e = nix::errno::Errno::from_raw(number);
    match e {
        nix::errno::Errno::UnknownErrno => format!("errno {number}"),
        e => format!("{e:?}"),
    }
}

/// `SIGSYS`, `SIGKILL`, ...; `signal N` for real-time and unknown ones.
pub(crate) fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {number}"))
}
