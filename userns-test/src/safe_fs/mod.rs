//! Files in directories other users may share (`/tmp`, a CI workspace
//! several jobs use), written so that no one else can redirect, replace or
//! read into what this process writes.
//!
//! The rules, in the terms of the attacks they stop:
//! - a directory is used only when this effective uid (or root) owns it
//!   and no one else may write to it, or when it is sticky (`/tmp`), where
//!   no one may remove or replace another user's entry;
//! - a symbolic link on the way is followed only if its owner is this uid
//!   or root, or it lies in a directory only they may write: a link planted
//!   in `/tmp` pointing at `/etc` is refused, with its path and owner;
//! - files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` relative to a
//!   directory descriptor held open, so a name swapped after the check is
//!   never written through; a file is replaced by `rename` from a new
//!   temporary of an unguessable name, and only if the file in place is a
//!   regular file this uid owns;
//! - the crate's working directories are created mode 0700, or, when they
//!   exist, used only if they are this uid's and closed to everyone else;
//! - locks are taken in such a directory, so no one else can open the lock
//!   file to hold it, and waiting for one is bounded.
//!
//! Linux does all of this ([`at`]). Other systems get the same checks by
//! path, with the standard library alone (`portable`): owner and mode on
//! Unix, new files only by `create_new`, replacement by rename; what a
//! descriptor-relative walk adds (no window between a check and its use)
//! they lack. Their temporary directories are per user (macOS's
//! `$TMPDIR`, Windows' `%TEMP%`), which is where this crate writes by
//! default.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, TryLockError};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

linux! {
    mod at;
    pub use at::Dir;
    pub(crate) use at::{euid, random_u64};
}
elsewhere! {
    mod portable;
    pub use portable::Dir;
    pub(crate) use portable::{euid, random_u64};
}

/// What went wrong with a path, in words that name it.
#[derive(Debug)]
pub struct FsError {
    /// The path concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

/// Why a path is refused or could not be used.
#[derive(Debug)]
pub enum Problem {
    /// A system call failed.
    Io {
        /// What was being done, e.g. `creating`.
        doing: &'static str,
        /// The error.
        error: io::Error,
    },
    /// A symbolic link someone else could have planted.
    UntrustedLink {
        /// The link's owner.
        owner: u32,
    },
    /// A directory another user owns.
    NotOwned {
        /// Its owner.
        owner: u32,
    },
    /// A directory others may write to, without the sticky bit.
    WritableByOthers {
        /// Its permission bits.
        mode: u32,
    },
    /// A private directory that others may enter.
    NotPrivate {
        /// Its permission bits.
        mode: u32,
    },
    /// Not the kind of file expected (a symbolic link where a file was to
    /// be replaced, a device, a FIFO, a directory).
    WrongKind {
        /// What it is.
        found: &'static str,
        /// What was needed.
        wanted: &'static str,
    },
    /// A file another user owns, where this process would replace or read
    /// its own.
    FileNotOwned {
        /// Its owner.
        owner: u32,
    },
    /// A lock held by another process for longer than the bound.
    LockTimedOut {
        /// The bound.
        after: Duration,
    },
    /// More symbolic links than the kernel would follow.
    TooManyLinks,
    /// Larger than a file of this kind can be.
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// No place for private working files could be used: each one tried,
    /// with why not.
    Nowhere {
        /// Each place tried, and what was wrong with it.
        tried: Vec<String>,
    },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            Problem::Io { doing, error } => write!(f, "{doing} {path}: {error}"),
            Problem::UntrustedLink { owner } => write!(
                f,
                "{path} is a symbolic link owned by uid {owner} in a directory others can write: \
                 not followed (it could have been planted to redirect this write); remove it or \
                 give a path without it"
            ),
            Problem::NotOwned { owner } => write!(
                f,
                "{path} belongs to uid {owner}, not to this process's uid {}: its owner could \
                 replace what is written there; use a directory of this uid",
                euid()
            ),
            Problem::WritableByOthers { mode } => write!(
                f,
                "{path} (mode {mode:04o}) can be written by other users and is not sticky: \
                 anyone could replace what is written there; use a directory only this uid may \
                 write (`chmod go-w`), or a sticky one such as /tmp"
            ),
            Problem::NotPrivate { mode } => write!(
                f,
                "{path} (mode {mode:04o}) is open to other users; this crate keeps its working \
                 files in directories only their owner may enter: remove it, or `chmod 700` it"
            ),
            Problem::WrongKind { found, wanted } => write!(
                f,
                "{path} is {found}, where {wanted} is needed; it is left as it is"
            ),
            Problem::FileNotOwned { owner } => write!(
                f,
                "{path} belongs to uid {owner}, not to this process's uid {}: not replaced \
                 (another user may have put it there); remove it or choose another path",
                euid()
            ),
            Problem::LockTimedOut { after } => write!(
                f,
                "{path}: another process of this uid has held this lock for over {} ms; if no \
                 other run is writing this report, remove {path}",
                after.as_millis()
            ),
            Problem::TooManyLinks => write!(f, "{path}: too many levels of symbolic links"),
            Problem::Nowhere { tried } => write!(
                f,
                "no private directory for this uid's working files could be used ({}): set \
                 TMPDIR to a directory of this uid's",
                tried.join("; ")
            ),
            Problem::TooLarge { limit } => {
                write!(
                    f,
                    "{path} is larger than {limit} bytes: not one of this crate's files"
                )
            }
        }
    }
}

impl std::error::Error for FsError {}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> io::Error {
        let kind = match &e.problem {
            Problem::Io { error, .. } => error.kind(),
            Problem::LockTimedOut { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, e)
    }
}

impl Dir {
    /// An exclusive lock on the file `name` of this (private) directory,
    /// waiting at most `bound` for another process to release it. The
    /// lock lasts as long as the returned file is open.
    pub fn lock(
        &self,
        name: impl AsRef<std::ffi::OsStr>,
        bound: Duration,
    ) -> Result<File, FsError> {
        let name = name.as_ref();
        let file = self.open_rw(name, true)?;
        let deadline = Instant::now() + bound;
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(FsError {
                            path: self.path().join(name),
                            problem: Problem::LockTimedOut { after: bound },
                        });
                    }
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::Error(error)) => {
                    return Err(FsError {
                        path: self.path().join(name),
                        problem: Problem::Io {
                            doing: "locking",
                            error,
                        },
                    });
                }
            }
        }
    }
}

/// `$TMPDIR/userns-test-<euid>/`, private to this uid: where the crate
/// keeps what outlives one process but not one run (shared verdicts, the
/// records of reports that have no file of their own).
pub(crate) fn private_temp_base() -> Result<Dir, FsError> {
    private_base_from(|k| std::env::var_os(k))
}

/// [`private_temp_base`] with the environment through `var`. The first of
/// these that is this uid's and closed to others:
/// `$TMPDIR/userns-test-<euid>` (`/tmp` unless set); where another user
/// holds that name (anyone may create it in a shared `/tmp`),
/// `$XDG_RUNTIME_DIR/userns-test` (systemd's per-user `/run/user/<uid>`),
/// then `$HOME/.cache/userns-test`. Where none can be used, an error that
/// names each and why.
pub(crate) fn private_base_from(var: impl Fn(&str) -> Option<OsString>) -> Result<Dir, FsError> {
    let tmp = var("TMPDIR")
        .filter(|v| !v.is_empty())
        .map_or_else(default_temp, PathBuf::from);
    let mut candidates = vec![(tmp, OsString::from(format!("userns-test-{}", euid())))];
    if let Some(run) = var("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        candidates.push((PathBuf::from(run), OsString::from("userns-test")));
    }
    if let Some(home) = var("HOME").filter(|v| !v.is_empty()) {
        candidates.push((
            PathBuf::from(home).join(".cache"),
            OsString::from("userns-test"),
        ));
    }
    let mut tried = Vec::new();
    for (parent, name) in candidates {
        match Dir::for_writing(&parent).and_then(|d| d.private_subdir(&name)) {
            Ok(dir) => return Ok(dir),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(FsError {
        path: default_temp(),
        problem: Problem::Nowhere { tried },
    })
}

/// Where temporary files go when `TMPDIR` is not set: `/tmp` on Unix (as
/// `std::env::temp_dir` says, without reading the variable again), the
/// system's per-user directory elsewhere.
fn default_temp() -> PathBuf {
    if cfg!(unix) {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    }
}
