//! How a step of a probe failed: an errno, a signal, an exit status, a
//! time-out, something missing or unreadable. Part of the vocabulary every
//! layer shares (with [`crate::step`] and [`crate::cause`]).

use std::fmt;

use crate::json::Json;

/// How a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The failure as reports show it: `{"kind": "<variant in
    /// snake_case>", <its fields>}`.
    pub fn to_json(&self) -> Json {
        let t = |kind: &str| Json::tagged("kind", kind);
        match self {
            Failure::Errno { number, name } => {
                t("errno").with("number", *number).with("name", name)
            }
            Failure::Signal { number, name } => {
                t("signal").with("number", *number).with("name", name)
            }
            Failure::ExitStatus { code, stderr } => t("exit_status")
                .with("code", *code)
                .with_some("stderr", stderr.as_deref()),
            Failure::TimedOut { after_ms } => t("timed_out").with("after_ms", *after_ms),
            Failure::Missing { what } => t("missing").with("what", what),
            Failure::Mismatch { found } => t("mismatch").with("found", found),
            Failure::Unreadable { path, errno, error } => t("unreadable")
                .with("path", path)
                .with("errno", *errno)
                .with("error", error),
            Failure::Denied => t("denied"),
            Failure::Configuration { message } => t("configuration").with("message", message),
        }
    }

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

linux! {
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
}

elsewhere! {
    /// `errno N`: the names are Linux's, and no probe runs here.
    pub(crate) fn errno_name(number: i32) -> String {
        format!("errno {number}")
    }

    /// `signal N`: the names are Linux's, and no probe runs here.
    pub(crate) fn signal_name(number: i32) -> String {
        format!("signal {number}")
    }
}
