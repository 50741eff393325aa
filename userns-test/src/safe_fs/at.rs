//! The Linux implementation of [`Dir`](super::Dir): every name resolved
//! relative to a directory descriptor held open (`openat` with
//! `O_NOFOLLOW`, `mkdirat`, `renameat`, `linkat`, `unlinkat`), so a name
//! swapped after a check is never written through.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::{FsError, Problem};

/// How many symbolic links one path may go through, as the kernel allows.
const MAX_LINKS: usize = 40;

fn io_err(path: &Path, doing: &'static str, e: Errno) -> FsError {
    FsError {
        path: path.to_owned(),
        problem: Problem::Io {
            doing,
            error: io::Error::from(e),
        },
    }
}

/// This process's effective uid.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn kind_of(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        _ => "a file of unknown kind",
    }
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// Whether a directory only its owner may write, and that owner is this
/// uid or root: entries in it are theirs.
fn closed_to_others(st: &FileStat, uid: u32) -> bool {
    (st.st_uid == uid || st.st_uid == 0) && st.st_mode & 0o022 == 0
}

/// A directory held open, checked once, used for every file in it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// The directory at `path`, to write files in, created (with the
    /// umask's permissions) where missing. Refused when a symbolic link on
    /// the way could have been planted, or when the directory belongs to
    /// another user or others may write to it (unless it is sticky).
    pub fn for_writing(path: &Path) -> Result<Dir, FsError> {
        let uid = euid();
        let fd = resolve_dir(path, uid)?;
        let st = fstat(&fd).map_err(|e| io_err(path, "examining", e))?;
        if st.st_uid != uid && st.st_uid != 0 {
            return Err(FsError {
                path: path.to_owned(),
                problem: Problem::NotOwned { owner: st.st_uid },
            });
        }
        let sticky = st.st_mode & 0o1000 != 0;
        if st.st_mode & 0o022 != 0 && !sticky {
            return Err(FsError {
                path: path.to_owned(),
                problem: Problem::WritableByOthers {
                    mode: st.st_mode & 0o7777,
                },
            });
        }
        // Sticky and writable by others (`/tmp`): the checks below create
        // files only new and replace only this uid's.
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// The subdirectory `name`, private to this uid: created mode 0700, or,
    /// if it exists, used only when it is a real directory (not a link),
    /// owned by this uid, that no one else may enter.
    pub fn private_subdir(&self, name: impl AsRef<OsStr>) -> Result<Dir, FsError> {
        let name = name.as_ref();
        let path = self.child(name);
        match mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io_err(&path, "creating the directory", e)),
        }
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOTDIR | Errno::ELOOP => {
                self.wrong_kind(name, "a directory private to this uid")
            }
            e => io_err(&path, "opening the directory", e),
        })?;
        let st = fstat(&fd).map_err(|e| io_err(&path, "examining", e))?;
        if st.st_uid != euid() {
            return Err(FsError {
                path,
                problem: Problem::NotOwned { owner: st.st_uid },
            });
        }
        if st.st_mode & 0o077 != 0 {
            return Err(FsError {
                path,
                problem: Problem::NotPrivate {
                    mode: st.st_mode & 0o7777,
                },
            });
        }
        Ok(Dir { fd, path })
    }

    /// An error saying what `name` is instead of `wanted`.
    fn wrong_kind(&self, name: &OsStr, wanted: &'static str) -> FsError {
        let path = self.child(name);
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is(&st, SFlag::S_IFLNK) && st.st_uid != euid() => FsError {
                path,
                problem: Problem::UntrustedLink { owner: st.st_uid },
            },
            Ok(st) => FsError {
                path,
                problem: Problem::WrongKind {
                    found: kind_of(&st),
                    wanted,
                },
            },
            Err(e) => io_err(&path, "examining", e),
        }
    }

    /// `lstat` of `name`, `None` when absent.
    pub fn stat(&self, name: impl AsRef<OsStr>) -> Result<Option<FileStat>, FsError> {
        let name = name.as_ref();
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io_err(&self.child(name), "examining", e)),
        }
    }

    /// Creates `name`, which must not exist, for writing (mode `mode`,
    /// less the umask).
    pub fn create_new(&self, name: impl AsRef<OsStr>, mode: u32) -> Result<File, FsError> {
        let name = name.as_ref();
        openat(
            &self.fd,
            name,
            OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_WRONLY
                | OFlag::O_CLOEXEC
                | OFlag::O_NOCTTY,
            Mode::from_bits_truncate(mode),
        )
        .map(File::from)
        .map_err(|e| io_err(&self.child(name), "creating", e))
    }

    /// Writes `bytes` as the whole of `name`: through a new temporary file
    /// of an unguessable name in this directory, then `rename`, so readers
    /// see the old file or the new one, never half, and nothing planted
    /// under either name is written through. Refused when `name` is a
    /// symbolic link, a device, a FIFO, a directory, or another user's
    /// file; it is then left as it is.
    pub fn replace(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> Result<(), FsError> {
        let name = name.as_ref();
        self.check_replaceable(name)?;
        let tmp = self.written_temporary(name, bytes)?;
        let renamed = renameat(&self.fd, tmp.as_os_str(), &self.fd, name)
            .map_err(|e| io_err(&self.child(name), "renaming a new version onto", e));
        if renamed.is_err() {
            let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        renamed
    }

    /// Writes `bytes` as `name` unless `name` exists: `Ok(false)` then, and
    /// the existing file is left alone. Readers never see it half written
    /// (it is written under a temporary name and linked into place).
    pub fn publish_new(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> Result<bool, FsError> {
        let name = name.as_ref();
        let tmp = self.written_temporary(name, bytes)?;
        let linked = match nix::unistd::linkat(
            &self.fd,
            tmp.as_os_str(),
            &self.fd,
            name,
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(io_err(&self.child(name), "linking into place", e)),
        };
        let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        linked
    }

    /// A new temporary file beside `name` holding `bytes`, by its name
    /// (removed again if the write fails). No fsync: a rename or link
    /// into place makes a crash of this process harmless, which is the
    /// failure that matters for a test report, and syncing would cost
    /// every test process milliseconds.
    fn written_temporary(&self, name: &OsStr, bytes: &[u8]) -> Result<OsString, FsError> {
        let (tmp, mut file) = self.temporary(name)?;
        match file.write_all(bytes) {
            Ok(()) => Ok(tmp),
            Err(error) => {
                let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
                Err(FsError {
                    path: self.child(&tmp),
                    problem: Problem::Io {
                        doing: "writing",
                        error,
                    },
                })
            }
        }
    }

    /// `Ok` if [`Dir::replace`] would replace `name`; else why not.
    pub fn replace_check(&self, name: impl AsRef<OsStr>) -> Result<(), FsError> {
        self.check_replaceable(name.as_ref())
    }

    /// What is at `name` may be replaced: nothing, or a regular file of
    /// this uid.
    fn check_replaceable(&self, name: &OsStr) -> Result<(), FsError> {
        match self.stat(name)? {
            None => Ok(()),
            Some(st) if is(&st, SFlag::S_IFLNK) && st.st_uid != euid() && st.st_uid != 0 => {
                Err(FsError {
                    path: self.child(name),
                    problem: Problem::UntrustedLink { owner: st.st_uid },
                })
            }
            Some(st) if !is(&st, SFlag::S_IFREG) => Err(FsError {
                path: self.child(name),
                problem: Problem::WrongKind {
                    found: kind_of(&st),
                    wanted: "a regular file (a report is rewritten as the run goes, so it \
                             cannot go to a device, a FIFO or through a link; write it to a \
                             file and read that)",
                },
            }),
            Some(st) if st.st_uid != euid() => Err(FsError {
                path: self.child(name),
                problem: Problem::FileNotOwned { owner: st.st_uid },
            }),
            Some(_) => Ok(()),
        }
    }

    /// A new temporary file beside `name`, named so no one can guess it.
    fn temporary(&self, name: &OsStr) -> Result<(OsString, File), FsError> {
        let mut last = None;
        for _ in 0..16 {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(".{}.{:016x}.tmp", std::process::id(), random_u64()));
            match self.create_new(&tmp, 0o644) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io_err(
                &self.child(name),
                "creating a temporary beside",
                Errno::EEXIST,
            )
        }))
    }

    /// Appends `bytes` to `name` (created if missing), which must be a
    /// regular file of this uid reached without a symbolic link.
    pub fn append(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> Result<(), FsError> {
        let name = name.as_ref();
        let flags = OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY;
        let fd = match openat(&self.fd, name, flags | OFlag::O_NONBLOCK, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => match self.create_new(name, 0o644) {
                Ok(file) => OwnedFd::from(file),
                // Created by someone else meanwhile: open it, checked below.
                Err(_) => openat(&self.fd, name, flags | OFlag::O_NONBLOCK, Mode::empty())
                    .map_err(|e| io_err(&self.child(name), "opening", e))?,
            },
            Err(Errno::ELOOP) => return Err(self.wrong_kind(name, "a regular file")),
            Err(e) => return Err(io_err(&self.child(name), "opening", e)),
        };
        self.checked_file(name, fd)?
            .write_all(bytes)
            .map_err(|error| FsError {
                path: self.child(name),
                problem: Problem::Io {
                    doing: "appending to",
                    error,
                },
            })
    }

    /// Opens `name` for reading and writing: a regular file of this uid,
    /// reached without a link, created empty (mode 0600) if `create`.
    pub fn open_rw(&self, name: impl AsRef<OsStr>, create: bool) -> Result<File, FsError> {
        let name = name.as_ref();
        let mut flags = OFlag::O_RDWR
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK;
        if create {
            flags |= OFlag::O_CREAT;
        }
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600)).map_err(
            |e| match e {
                Errno::ELOOP => self.wrong_kind(name, "a regular file"),
                e => io_err(&self.child(name), "opening", e),
            },
        )?;
        self.checked_file(name, fd)
    }

    fn checked_file(&self, name: &OsStr, fd: OwnedFd) -> Result<File, FsError> {
        let st = fstat(&fd).map_err(|e| io_err(&self.child(name), "examining", e))?;
        if !is(&st, SFlag::S_IFREG) {
            return Err(FsError {
                path: self.child(name),
                problem: Problem::WrongKind {
                    found: kind_of(&st),
                    wanted: "a regular file",
                },
            });
        }
        if st.st_uid != euid() {
            return Err(FsError {
                path: self.child(name),
                problem: Problem::FileNotOwned { owner: st.st_uid },
            });
        }
        Ok(File::from(fd))
    }

    /// The whole of `name` (a regular file of this uid, at most `limit`
    /// bytes), `None` when absent.
    pub fn read(&self, name: impl AsRef<OsStr>, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
        use std::io::Read;
        let name = name.as_ref();
        let fd = match openat(
            &self.fd,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC
                | OFlag::O_NOCTTY
                | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(self.wrong_kind(name, "a regular file")),
            Err(e) => return Err(io_err(&self.child(name), "opening", e)),
        };
        let file = self.checked_file(name, fd)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| FsError {
                path: self.child(name),
                problem: Problem::Io {
                    doing: "reading",
                    error,
                },
            })?;
        if bytes.len() as u64 > limit {
            return Err(FsError {
                path: self.child(name),
                problem: Problem::TooLarge { limit },
            });
        }
        Ok(Some(bytes))
    }

    /// The names in this directory (not `.` and `..`), with whether each
    /// is a directory (as `lstat` says: a link is not one).
    pub fn entries(&self) -> Result<Vec<(OsString, bool)>, FsError> {
        let fd = openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&self.path, "listing", e))?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| io_err(&self.path, "listing", e))?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io_err(&self.path, "listing", e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == nix::dir::Type::Directory,
                None => self.stat(name)?.is_some_and(|st| is(&st, SFlag::S_IFDIR)),
            };
            out.push((name.to_owned(), is_dir));
        }
        Ok(out)
    }

    /// Removes `name` (a file, or a directory and all it holds), without
    /// following links; gone already is fine.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> Result<(), FsError> {
        let name = name.as_ref();
        let Some(st) = self.stat(name)? else {
            return Ok(());
        };
        if is(&st, SFlag::S_IFDIR) {
            let sub = self.private_subdir(name)?;
            for (entry, _) in sub.entries()? {
                sub.remove(&entry)?;
            }
            match unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(io_err(&self.child(name), "removing", e)),
            }
        } else {
            match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(io_err(&self.child(name), "removing", e)),
            }
        }
    }

}

/// Opens the directory `path` component by component, creating missing
/// ones, following only symbolic links this uid or root owns or that lie
/// in directories closed to others.
fn resolve_dir(path: &Path, uid: u32) -> Result<OwnedFd, FsError> {
    let open_dir = |at: Option<&OwnedFd>, name: &OsStr| -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match at {
            Some(fd) => openat(fd, name, flags, Mode::empty()),
            None => nix::fcntl::open(name, flags, Mode::empty()),
        }
    };
    let start = if path.is_absolute() { "/" } else { "." };
    let mut fd =
        open_dir(None, OsStr::new(start)).map_err(|e| io_err(Path::new(start), "opening", e))?;
    let mut walked = PathBuf::from(start);
    let mut pending: Vec<OsString> = components(path);
    pending.reverse();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == "." || name.is_empty() {
            continue;
        }
        let here = walked.join(&name);
        if name == ".." {
            fd = open_dir(Some(&fd), &name).map_err(|e| io_err(&here, "opening", e))?;
            walked.pop();
            continue;
        }
        let st = match fstatat(&fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                match mkdirat(&fd, name.as_os_str(), Mode::from_bits_truncate(0o777)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_err(&here, "creating the directory", e)),
                }
                fstatat(&fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err(&here, "examining", e))?
            }
            Err(e) => return Err(io_err(&here, "examining", e)),
        };
        if is(&st, SFlag::S_IFLNK) {
            let parent = fstat(&fd).map_err(|e| io_err(&walked, "examining", e))?;
            let trusted = st.st_uid == uid || st.st_uid == 0 || closed_to_others(&parent, uid);
            if !trusted {
                return Err(FsError {
                    path: here,
                    problem: Problem::UntrustedLink { owner: st.st_uid },
                });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(FsError {
                    path: here,
                    problem: Problem::TooManyLinks,
                });
            }
            let target = readlinkat(&fd, name.as_os_str())
                .map_err(|e| io_err(&here, "reading the link", e))?;
            let target = PathBuf::from(target);
            if target.is_absolute() {
                fd = open_dir(None, OsStr::new("/"))
                    .map_err(|e| io_err(Path::new("/"), "opening", e))?;
                walked = PathBuf::from("/");
            }
            let mut more = components(&target);
            more.reverse();
            pending.extend(more);
            continue;
        }
        if !is(&st, SFlag::S_IFDIR) {
            return Err(FsError {
                path: here,
                problem: Problem::WrongKind {
                    found: kind_of(&st),
                    wanted: "a directory",
                },
            });
        }
        fd = open_dir(Some(&fd), &name).map_err(|e| io_err(&here, "opening", e))?;
        walked = here;
    }
    Ok(fd)
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// 64 unpredictable bits from the kernel (`getrandom`), or, where that
/// fails, from the clock and the pid: `O_EXCL` makes a guessed name
/// harmless either way, the randomness only makes it rare.
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    if n == 8 {
        return u64::from_ne_bytes(buf);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
