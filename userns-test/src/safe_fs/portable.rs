//! [`Dir`](super::Dir) on systems other than Linux, with the standard
//! library alone: the same checks as on Linux, made by path (owner and
//! mode where the system has them, i.e. on Unix). A name swapped between a
//! check and its use is not caught here as the descriptor-relative Linux
//! code catches it; new files are still only created new (`create_new`,
//! which follows no link) and replaced by rename.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::{FsError, Problem};

fn io_err(path: &Path, doing: &'static str, error: io::Error) -> FsError {
    FsError {
        path: path.to_owned(),
        problem: Problem::Io { doing, error },
    }
}

/// This process's effective uid (0 where the system has none: Windows).
pub(crate) fn euid() -> u32 {
    #[cfg(unix)]
    {
        unsafe extern "C" {
            // `uid_t` is a 32-bit unsigned integer on every Unix Rust
            // supports; the call cannot fail.
            fn geteuid() -> u32;
        }
        // SAFETY: geteuid has no preconditions and touches no memory.
        unsafe { geteuid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// 64 unpredictable bits: the standard library seeds each `RandomState`
/// from the system's randomness. `create_new` makes a guessed name
/// harmless; the randomness only makes it rare.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(d.as_nanos());
    }
    hasher.finish()
}

#[cfg(unix)]
fn owner_and_mode(meta: &Metadata) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.uid(), meta.mode()))
}

#[cfg(not(unix))]
fn owner_and_mode(_: &Metadata) -> Option<(u32, u32)> {
    None
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a regular file";
    }
    if t.is_dir() {
        return "a directory";
    }
    if t.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a file of unknown kind"
}

/// A directory, checked once, used for every file in it.
#[derive(Debug)]
pub struct Dir {
    path: PathBuf,
}

impl Dir {
    /// The directory at `path`, to write files in, created where missing.
    /// On Unix, refused when it is a symbolic link another user owns, or
    /// when the directory belongs to another user or others may write to
    /// it (unless it is sticky).
    pub fn for_writing(path: &Path) -> Result<Dir, FsError> {
        let uid = euid();
        if let Ok(link) = fs::symlink_metadata(path)
            && link.file_type().is_symlink()
            && let Some((owner, _)) = owner_and_mode(&link)
            && owner != uid
            && owner != 0
        {
            return Err(FsError {
                path: path.to_owned(),
                problem: Problem::UntrustedLink { owner },
            });
        }
        fs::create_dir_all(path).map_err(|e| io_err(path, "creating the directory", e))?;
        let meta = fs::metadata(path).map_err(|e| io_err(path, "examining", e))?;
        if !meta.is_dir() {
            return Err(FsError {
                path: path.to_owned(),
                problem: Problem::WrongKind {
                    found: kind_of(&meta),
                    wanted: "a directory",
                },
            });
        }
        if let Some((owner, mode)) = owner_and_mode(&meta) {
            if owner != uid && owner != 0 {
                return Err(FsError {
                    path: path.to_owned(),
                    problem: Problem::NotOwned { owner },
                });
            }
            if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                return Err(FsError {
                    path: path.to_owned(),
                    problem: Problem::WritableByOthers {
                        mode: mode & 0o7777,
                    },
                });
            }
        }
        Ok(Dir {
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

    /// The subdirectory `name`, private to this uid: created mode 0700 (on
    /// Unix), or, if it exists, used only when it is a real directory (not
    /// a link), owned by this uid, that no one else may enter.
    pub fn private_subdir(&self, name: impl AsRef<OsStr>) -> Result<Dir, FsError> {
        let name = name.as_ref();
        let path = self.child(name);
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&path, "creating the directory", e)),
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| io_err(&path, "examining", e))?;
        if !meta.is_dir() {
            return Err(self.wrong_kind(name, "a directory private to this uid"));
        }
        if let Some((owner, mode)) = owner_and_mode(&meta) {
            if owner != euid() {
                return Err(FsError {
                    path,
                    problem: Problem::NotOwned { owner },
                });
            }
            if mode & 0o077 != 0 {
                return Err(FsError {
                    path,
                    problem: Problem::NotPrivate {
                        mode: mode & 0o7777,
                    },
                });
            }
        }
        Ok(Dir { path })
    }

    /// An error saying what `name` is instead of `wanted`.
    fn wrong_kind(&self, name: &OsStr, wanted: &'static str) -> FsError {
        let path = self.child(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) => match owner_and_mode(&meta) {
                Some((owner, _)) if meta.file_type().is_symlink() && owner != euid() => FsError {
                    path,
                    problem: Problem::UntrustedLink { owner },
                },
                _ => FsError {
                    path,
                    problem: Problem::WrongKind {
                        found: kind_of(&meta),
                        wanted,
                    },
                },
            },
            Err(e) => io_err(&path, "examining", e),
        }
    }

    /// `lstat` of `name`, `None` when absent.
    pub fn stat(&self, name: impl AsRef<OsStr>) -> Result<Option<Metadata>, FsError> {
        let path = self.child(name.as_ref());
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, "examining", e)),
        }
    }

    /// Creates `name`, which must not exist, for writing (mode `mode`,
    /// less the umask, on Unix).
    pub fn create_new(&self, name: impl AsRef<OsStr>, mode: u32) -> Result<File, FsError> {
        let path = self.child(name.as_ref());
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        options
            .open(&path)
            .map_err(|e| io_err(&path, "creating", e))
    }

    /// Writes `bytes` as the whole of `name`: through a new temporary file
    /// of an unguessable name in this directory, then `rename`, so readers
    /// see the old file or the new one, never half. Refused when `name` is
    /// a symbolic link, a device, a FIFO, a directory, or another user's
    /// file; it is then left as it is.
    pub fn replace(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> Result<(), FsError> {
        let name = name.as_ref();
        self.check_replaceable(name)?;
        let tmp = self.written_temporary(name, bytes)?;
        let renamed = fs::rename(self.child(&tmp), self.child(name))
            .map_err(|e| io_err(&self.child(name), "renaming a new version onto", e));
        if renamed.is_err() {
            let _ = fs::remove_file(self.child(&tmp));
        }
        renamed
    }

    /// Writes `bytes` as `name` unless `name` exists: `Ok(false)` then, and
    /// the existing file is left alone. Readers never see it half written
    /// (it is written under a temporary name and linked into place).
    pub fn publish_new(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> Result<bool, FsError> {
        let name = name.as_ref();
        let tmp = self.written_temporary(name, bytes)?;
        let linked = match fs::hard_link(self.child(&tmp), self.child(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(&self.child(name), "linking into place", e)),
        };
        let _ = fs::remove_file(self.child(&tmp));
        linked
    }

    /// A new temporary file beside `name` holding `bytes`, by its name.
    fn written_temporary(&self, name: &OsStr, bytes: &[u8]) -> Result<OsString, FsError> {
        let mut last = None;
        for _ in 0..16 {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(".{}.{:016x}.tmp", std::process::id(), random_u64()));
            match self.create_new(&tmp, 0o644) {
                Ok(mut file) => {
                    return match file.write_all(bytes) {
                        Ok(()) => Ok(tmp),
                        Err(error) => {
                            let _ = fs::remove_file(self.child(&tmp));
                            Err(io_err(&self.child(&tmp), "writing", error))
                        }
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io_err(
                &self.child(name),
                "creating a temporary beside",
                ErrorKind::AlreadyExists.into(),
            )
        }))
    }

    /// `Ok` if [`Dir::replace`] would replace `name`; else why not.
    pub fn replace_check(&self, name: impl AsRef<OsStr>) -> Result<(), FsError> {
        self.check_replaceable(name.as_ref())
    }

    /// What is at `name` may be replaced: nothing, or a regular file of
    /// this uid.
    fn check_replaceable(&self, name: &OsStr) -> Result<(), FsError> {
        let Some(meta) = self.stat(name)? else {
            return Ok(());
        };
        if !meta.file_type().is_file() {
            if meta.file_type().is_symlink() {
                return Err(self.wrong_kind(name, "a regular file"));
            }
            return Err(FsError {
                path: self.child(name),
                problem: Problem::WrongKind {
                    found: kind_of(&meta),
                    wanted: "a regular file (a report is rewritten as the run goes, so it \
                             cannot go to a device, a FIFO or through a link; write it to a \
                             file and read that)",
                },
            });
        }
        match owner_and_mode(&meta) {
            Some((owner, _)) if owner != euid() => Err(FsError {
                path: self.child(name),
                problem: Problem::FileNotOwned { owner },
            }),
            _ => Ok(()),
        }
    }

    /// Refuses `name` when it is a symbolic link (not followed).
    fn no_link(&self, name: &OsStr) -> Result<(), FsError> {
        match self.stat(name)? {
            Some(meta) if meta.file_type().is_symlink() => {
                Err(self.wrong_kind(name, "a regular file"))
            }
            _ => Ok(()),
        }
    }

    /// Appends `bytes` to `name` (created if missing), which must be a
    /// regular file of this uid reached without a symbolic link.
    pub fn append(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> Result<(), FsError> {
        let name = name.as_ref();
        self.no_link(name)?;
        let path = self.child(name);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err(&path, "opening", e))?;
        self.checked_file(name, file)?
            .write_all(bytes)
            .map_err(|e| io_err(&path, "appending to", e))
    }

    /// Opens `name` for reading and writing: a regular file of this uid,
    /// reached without a link, created empty (mode 0600 on Unix) if
    /// `create`.
    pub fn open_rw(&self, name: impl AsRef<OsStr>, create: bool) -> Result<File, FsError> {
        let name = name.as_ref();
        self.no_link(name)?;
        let path = self.child(name);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(create);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| io_err(&path, "opening", e))?;
        self.checked_file(name, file)
    }

    fn checked_file(&self, name: &OsStr, file: File) -> Result<File, FsError> {
        let meta = file
            .metadata()
            .map_err(|e| io_err(&self.child(name), "examining", e))?;
        if !meta.is_file() {
            return Err(FsError {
                path: self.child(name),
                problem: Problem::WrongKind {
                    found: kind_of(&meta),
                    wanted: "a regular file",
                },
            });
        }
        match owner_and_mode(&meta) {
            Some((owner, _)) if owner != euid() => Err(FsError {
                path: self.child(name),
                problem: Problem::FileNotOwned { owner },
            }),
            _ => Ok(file),
        }
    }

    /// The whole of `name` (a regular file of this uid, at most `limit`
    /// bytes), `None` when absent.
    pub fn read(&self, name: impl AsRef<OsStr>, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
        let name = name.as_ref();
        self.no_link(name)?;
        let path = self.child(name);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, "opening", e)),
        };
        let file = self.checked_file(name, file)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(&path, "reading", e))?;
        if bytes.len() as u64 > limit {
            return Err(FsError {
                path,
                problem: Problem::TooLarge { limit },
            });
        }
        Ok(Some(bytes))
    }

    /// The names in this directory, with whether each is a directory (a
    /// link is not one).
    pub fn entries(&self) -> Result<Vec<(OsString, bool)>, FsError> {
        let listing = |e| io_err(&self.path, "listing", e);
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.path).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let is_dir = entry.file_type().map_err(listing)?.is_dir();
            out.push((entry.file_name(), is_dir));
        }
        Ok(out)
    }

    /// Removes `name` (a file, or a directory and all it holds), without
    /// following links; gone already is fine.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> Result<(), FsError> {
        let name = name.as_ref();
        let Some(meta) = self.stat(name)? else {
            return Ok(());
        };
        let path = self.child(name);
        let removed = if meta.is_dir() {
            // Checked as the Linux code checks it: only this uid's private
            // directories are emptied.
            self.private_subdir(name)?;
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, "removing", e)),
        }
    }
}
