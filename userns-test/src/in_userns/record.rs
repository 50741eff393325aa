//! What the child tells the parent (the test's outcome, or the step at
//! which entering the namespaces failed), and the channel it travels on.
//!
//! The channel is a memory file the parent makes (`memfd_create`, its size
//! sealed) and hands to the child as descriptor 3, starting with a key the
//! parent also puts in the child's environment. So:
//!
//! - it is the parent's proof: a process is a child only when descriptor 3
//!   is such a file and starts with the key of its environment; variables
//!   left in an environment (a shell, a parent run) make a normal run;
//! - the child maps it and closes descriptor 3 before `main`: the body
//!   can close every descriptor and open its own files without the record
//!   ever going into one of them;
//! - only the body's own process writes (a process the body forks and
//!   that returns or panics does not: its pass or failure is not the
//!   body's), once, just before it exits; the parent reads it after the
//!   child has ended.
//!
//! The record is a small format of this crate's own (see
//! [`Record::encode`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The channel's size: the header, then the record.
pub(crate) const CHANNEL_LEN: usize = 1 << 20;
/// The key's length.
const KEY_LEN: usize = 16;
/// Where the record's length is (written last), and the writer's pid.
const LEN_AT: usize = 16;
const PID_AT: usize = 20;
/// Where the record starts.
const RECORD_AT: usize = 64;
/// The longest string a record keeps (a panic message of megabytes is cut,
/// with a note of the cut; the body's output has it whole).
const STRING_LIMIT: usize = (CHANNEL_LEN - RECORD_AT) / 4;

/// The child's last word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// The body returned `()` or `Ok(())`.
    Passed,
    /// The body panicked.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The body returned `Err` (its Debug text, as libtest prints it).
    Failed { message: String },
    /// Entering the namespaces failed at `step` with `failure`.
    EnterFailed { step: String, failure: String },
    /// The runner of the re-executed binary has no test of that path.
    NotFound { path: String },
}

impl Record {
    /// The record's bytes: its tag, then each string (a presence byte, a
    /// little-endian `u32` length, the bytes).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (tag, strings): (u8, Vec<Option<&str>>) = match self {
            Record::Passed => (1, vec![]),
            Record::Panicked { message, location } => (2, vec![Some(message), location.as_deref()]),
            Record::Failed { message } => (3, vec![Some(message)]),
            Record::EnterFailed { step, failure } => (4, vec![Some(step), Some(failure)]),
            Record::NotFound { path } => (5, vec![Some(path)]),
        };
        let mut bytes = vec![tag];
        for s in strings {
            match s {
                None => bytes.push(0),
                Some(s) => {
                    let s = cut(s);
                    bytes.push(1);
                    bytes.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(s.as_bytes());
                }
            }
        }
        bytes
    }

    /// The record in `bytes`, if they hold a whole one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Record> {
        let (&tag, mut rest) = bytes.split_first()?;
        let mut next = || -> Option<Option<String>> {
            let (&present, after) = rest.split_first()?;
            rest = after;
            if present == 0 {
                return Some(None);
            }
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let s = String::from_utf8_lossy(rest.get(4..4 + len)?).into_owned();
            rest = &rest[4 + len..];
            Some(Some(s))
        };
        let record = match tag {
            1 => Record::Passed,
            2 => Record::Panicked {
                message: next()??,
                location: next()?,
            },
            3 => Record::Failed { message: next()?? },
            4 => Record::EnterFailed {
                step: next()??,
                failure: next()??,
            },
            5 => Record::NotFound { path: next()?? },
            _ => return None,
        };
        rest.is_empty().then_some(record)
    }
}

/// `s`, cut to [`STRING_LIMIT`] bytes with a note of the cut.
fn cut(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::cut(s, STRING_LIMIT, "the test's output")
}

/// The parent's side of a channel: the memory file, with its key.
pub(crate) struct Channel {
    file: OwnedFd,
    key: [u8; KEY_LEN],
}

impl Channel {
    /// A new channel: a sealed-size memory file starting with a fresh key.
    pub(crate) fn new() -> std::io::Result<Channel> {
        let name = c"userns-test-record";
        // SAFETY: memfd_create with a C string; the descriptor is ours.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: memfd_create just returned it.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut key = [0u8; KEY_LEN];
        key[..8].copy_from_slice(&crate::safe_fs::random_u64().to_le_bytes());
        key[8..].copy_from_slice(&crate::safe_fs::random_u64().to_le_bytes());
        // SAFETY: calls on our own descriptor and buffer.
        unsafe {
            if libc::ftruncate(fd, CHANNEL_LEN as libc::off_t) != 0
                || libc::pwrite(fd, key.as_ptr().cast(), KEY_LEN, 0) != KEY_LEN as isize
                || libc::fcntl(
                    fd,
                    libc::F_ADD_SEALS,
                    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Channel { file, key })
    }

    /// The descriptor to hand to the child.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.file
    }

    /// The key, for the child's environment.
    pub(crate) fn key_hex(&self) -> String {
        self.key.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the child recorded, once it has ended: the record, if one was
    /// written whole.
    pub(crate) fn read(&self) -> Option<Record> {
        let fd = self.file.as_raw_fd();
        let mut header = [0u8; 8];
        // SAFETY: pread into our own buffers.
        unsafe {
            if libc::pread(fd, header.as_mut_ptr().cast(), 8, LEN_AT as libc::off_t) != 8 {
                return None;
            }
        }
        let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
        if len == 0 || len > CHANNEL_LEN - RECORD_AT {
            return None;
        }
        let mut bytes = vec![0u8; len];
        // SAFETY: as above.
        let n =
            unsafe { libc::pread(fd, bytes.as_mut_ptr().cast(), len, RECORD_AT as libc::off_t) };
        (n == len as isize)
            .then(|| Record::decode(&bytes))
            .flatten()
    }
}

/// The child's side: the channel mapped into this process.
struct Mapped {
    base: *mut u8,
}

// SAFETY: the mapping lives as long as the process; writes happen once,
// from the body's own process, before it exits.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

static MAPPED: OnceLock<Mapped> = OnceLock::new();
/// The process whose record counts: the one that runs the body.
static WRITER: AtomicU32 = AtomicU32::new(0);

/// Takes the channel the parent handed over at `fd`, if it is one: a
/// memory file of the channel's size, its size sealed, starting with
/// `key_hex`'s key. Maps it and closes `fd`. `false` (and nothing
/// changed) otherwise: this process was not started by a parent running
/// the test. Runs before `main`, single-threaded.
pub(crate) fn take(fd: RawFd, key_hex: &str) -> bool {
    let Some(key) = parse_key(key_hex) else {
        return false;
    };
    // SAFETY: fstat, fcntl and pread on a descriptor number, into our own
    // buffers: harmless on any descriptor, and a regular file (checked
    // first) cannot block a read.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0
            || st.st_mode & libc::S_IFMT != libc::S_IFREG
            || st.st_size != CHANNEL_LEN as libc::off_t
        {
            return false;
        }
        let seals = libc::fcntl(fd, libc::F_GET_SEALS);
        let sealed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
        if seals < 0 || seals & sealed != sealed {
            return false;
        }
        let mut found = [0u8; KEY_LEN];
        if libc::pread(fd, found.as_mut_ptr().cast(), KEY_LEN, 0) != KEY_LEN as isize
            || found != key
        {
            return false;
        }
        let base = libc::mmap(
            std::ptr::null_mut(),
            CHANNEL_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if base == libc::MAP_FAILED {
            return false;
        }
        libc::close(fd);
        let _ = MAPPED.set(Mapped { base: base.cast() });
    }
    WRITER.store(std::process::id(), Ordering::Release);
    true
}

fn parse_key(hex: &str) -> Option<[u8; KEY_LEN]> {
    if hex.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// From now on, this process's record is the one that counts (the body's
/// process after the fork that makes it PID 1 of a new PID namespace).
pub(crate) fn this_process_writes() {
    WRITER.store(std::process::id(), Ordering::Release);
}

/// Writes `record` into the channel, if this process is the one whose
/// record counts and has not written yet; `false` otherwise (a process the
/// body forked).
pub(crate) fn send(record: &Record) -> bool {
    let Some(mapped) = MAPPED.get() else {
        return false;
    };
    if WRITER.load(Ordering::Acquire) != std::process::id() {
        return false;
    }
    let bytes = record.encode();
    let len = bytes.len().min(CHANNEL_LEN - RECORD_AT);
    // SAFETY: within the mapping, which lives as long as the process.
    unsafe {
        let len_at = &*mapped.base.add(LEN_AT).cast::<AtomicU32>();
        if len_at.load(Ordering::Acquire) != 0 {
            return false;
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), mapped.base.add(RECORD_AT), len);
        (*mapped.base.add(PID_AT).cast::<AtomicU32>()).store(std::process::id(), Ordering::Relaxed);
        // The length last: a reader sees a whole record or none.
        len_at.store(len as u32, Ordering::Release);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_any_text() {
        for r in [
            Record::Passed,
            Record::Panicked {
                message: "a\nb \"c\" \u{202e}\u{0}".into(),
                location: Some("src/x.rs:1:2".into()),
            },
            Record::Panicked {
                message: String::new(),
                location: None,
            },
            Record::Failed {
                message: "Error: \"no\"".into(),
            },
            Record::EnterFailed {
                step: "unshare(CLONE_NEWUSER)".into(),
                failure: "EPERM (1)".into(),
            },
            Record::NotFound {
                path: "x::y".into(),
            },
        ] {
            assert_eq!(Record::decode(&r.encode()), Some(r));
        }
        let whole = Record::Failed {
            message: "cut short".into(),
        }
        .encode();
        assert_eq!(Record::decode(&whole[..whole.len() - 1]), None);
        assert_eq!(Record::decode(b"garbage"), None);
        assert_eq!(Record::decode(b""), None);
    }

    #[test]
    fn a_huge_message_is_cut_to_fit() {
        let r = Record::Failed {
            message: "é".repeat(CHANNEL_LEN),
        };
        let bytes = r.encode();
        assert!(bytes.len() < CHANNEL_LEN - RECORD_AT);
        let Some(Record::Failed { message }) = Record::decode(&bytes) else {
            panic!("not a record");
        };
        assert!(message.ends_with("more bytes are in the test's output]"));
    }

    #[test]
    fn only_the_parents_channel_is_taken() {
        let channel = Channel::new().unwrap();
        let key = channel.key_hex();
        let other = Channel::new().unwrap();
        // Another channel's key, a plain file, a pipe, a closed number.
        assert!(!take(other.fd().as_raw_fd(), &key));
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(!take(file.as_raw_fd(), &key));
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(!take(r.as_raw_fd(), &key));
        assert!(!take(9999, &key));
        assert!(!take(channel.fd().as_raw_fd(), "not hex"));
        assert_eq!(channel.read(), None);
    }
}
