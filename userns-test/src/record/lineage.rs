//! Who started this process: its ancestors, as `/proc` shows them.
//!
//! A run's processes are recognised by their lineage, never by variables
//! alone, because variables outlive what set them: a shell keeps an
//! exported `NEXTEST_RUN_ID`, a CI step keeps `USERNS_TEST_RUN_DIR`, and a
//! test that runs its own binary again passes all of them on. So:
//!
//! - nextest's run id counts only when a `cargo-nextest` process is an
//!   ancestor ([`nextest_run`]);
//! - a `cargo test` run is the `cargo` ancestor's, whatever sits between
//!   it and the binary (a target runner: `timeout`, `sudo -E`, valgrind,
//!   qemu) ([`launcher`]);
//! - a `userns-test run` directory counts only below the command that
//!   made it ([`is_ancestor`]);
//! - a process whose ancestor (below the launcher) runs this same
//!   executable is a copy a test started, not one of the run's own
//!   ([`Launcher::Nested`]): it records nothing;
//! - a process started by another test binary of the same build (a test
//!   running a fixture binary) is a run of its own, not cargo's.
//!
//! Off Linux there is no `/proc` to walk: the variables are taken as they
//! are (nextest's run id is nextest's run, a `userns-test run` directory
//! is the wrapping command's), and each test binary outside both is a run
//! of its own. That is what can be known there, and no more.

use std::sync::OnceLock;

/// Whether this build can see its ancestors (Linux's `/proc`).
const LINEAGE_VISIBLE: bool = crate::LINUX_BUILD;

/// How far up the walk goes: a deeper chain is not a process tree.
const MAX_DEPTH: usize = 64;

/// One process, as its `/proc/PID/stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    pub pid: u32,
    /// Its parent's pid (0 where the parent is outside this PID namespace).
    pub ppid: u32,
    /// Start time, in clock ticks after boot: with the pid, an identity no
    /// later process can take.
    pub start: u64,
    /// Its command name (`comm`, at most 15 bytes).
    pub comm: String,
}

impl Process {
    /// The process `pid`, if it exists and `/proc` shows it.
    pub(crate) fn read(pid: u32) -> Option<Process> {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(pid, &stat)
    }

    /// Its pid and start time.
    pub(crate) fn id(&self) -> (u32, u64) {
        (self.pid, self.start)
    }
}

/// `pid (comm) state ppid ... starttime ...`: the command name may hold
/// spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(pid: u32, stat: &[u8]) -> Option<Process> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_whitespace();
    // Fields 3 (state) and 4 (ppid); starttime is field 22.
    let ppid = fields.nth(1)?.parse().ok()?;
    let start = fields.nth(17)?.parse().ok()?;
    Some(Process {
        pid,
        ppid,
        start,
        comm,
    })
}

/// The executable of a process: its device and inode (`/proc/PID/exe`
/// followed) and its directory (the link read). `None` where it cannot be
/// seen (another user's process, a kernel thread).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exe {
    id: (u64, u64),
    dir: Option<std::path::PathBuf>,
}

impl Exe {
    #[cfg(not(unix))]
    fn of(_: Option<u32>) -> Option<Exe> {
        None
    }

    #[cfg(unix)]
    fn of(pid: Option<u32>) -> Option<Exe> {
        use std::os::unix::fs::MetadataExt;
        let link = match pid {
            Some(pid) => format!("/proc/{pid}/exe"),
            None => "/proc/self/exe".to_owned(),
        };
        let meta = std::fs::metadata(&link).ok()?;
        let dir = std::fs::read_link(&link)
            .ok()
            .and_then(|p| p.parent().map(ToOwned::to_owned));
        Some(Exe {
            id: (meta.dev(), meta.ino()),
            dir,
        })
    }
}

/// What the walk up from this process found first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// The process looked for.
    It(Process),
    /// A process running this same executable, below anything looked for:
    /// this process is a copy a test started (or forked).
    Copy(Process),
    /// Another test binary of the same build (an executable in this one's
    /// directory, cargo's `deps/`): a test that runs a program of its own,
    /// whose runs are that program's, not the outer run's.
    Sibling(Process),
    /// None of these, up to the top of what `/proc` shows.
    Nothing,
}

/// Walks up from this process's parent to the first ancestor `wanted`
/// accepts, or to one running this executable or another test binary of
/// the same build. Processes in between (a target runner: `timeout`,
/// `sudo -E`, valgrind, qemu, a script) are passed through.
fn walk(wanted: impl Fn(&Process) -> bool) -> Found {
    let own = OnceLock::new();
    #[cfg(unix)]
    let mut pid = std::os::unix::process::parent_id();
    #[cfg(not(unix))]
    let mut pid = 0;
    for _ in 0..MAX_DEPTH {
        if pid == 0 {
            break;
        }
        let Some(p) = Process::read(pid) else {
            break;
        };
        if wanted(&p) {
            return Found::It(p);
        }
        // Looked at only where the name did not match: most walks stop at
        // the first parent, and never read an executable.
        if let (Some(mine), Some(theirs)) = (own.get_or_init(|| Exe::of(None)), Exe::of(Some(pid)))
        {
            if theirs.id == mine.id {
                return Found::Copy(p);
            }
            if theirs.dir.is_some() && theirs.dir == mine.dir {
                return Found::Sibling(p);
            }
        }
        if pid == 1 {
            break;
        }
        pid = p.ppid;
    }
    Found::Nothing
}

/// nextest's run id, when a `cargo-nextest` process started this one, with
/// that process; what was ignored otherwise, and why. Read once.
pub(crate) fn nextest_run() -> &'static NextestRun {
    static RUN: OnceLock<NextestRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let Some(id) = std::env::var("NEXTEST_RUN_ID")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            return NextestRun::None;
        };
        if !LINEAGE_VISIBLE {
            // Its owner unknown: (0, 0) is no process, never "alive".
            return NextestRun::Run { id, owner: (0, 0) };
        }
        match walk(|p| p.comm == "cargo-nextest") {
            Found::It(p) => NextestRun::Run { id, owner: p.id() },
            // A test of the run started its own binary again: the copy
            // says nothing (its output is often what that test checks).
            Found::Copy(_) => NextestRun::Inherited,
            Found::Sibling(_) | Found::Nothing => NextestRun::Leaked(format!(
                "NEXTEST_RUN_ID={id} is set, but no nextest process started this one (the \
                 variable was left in the environment, or passed on by a test that started this \
                 program): this process runs and reports as a run of its own"
            )),
        }
    })
}

/// nextest's run, as far as this process belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NextestRun {
    /// No `NEXTEST_RUN_ID`.
    None,
    /// A run of the nextest process `owner`.
    Run { id: String, owner: (u32, u64) },
    /// `NEXTEST_RUN_ID` is set, and a test of the run started this process
    /// (its own binary again): not nextest's process.
    Inherited,
    /// `NEXTEST_RUN_ID` is set but nothing of nextest started this
    /// process: what to tell the user.
    Leaked(String),
}

/// What started this process's run, outside nextest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Launcher {
    /// `cargo test` (or `cargo run`): the run is this cargo process's.
    Cargo(Process),
    /// A process running this same executable: a test ran its binary
    /// again. Such a process records nothing.
    Nested(Process),
    /// A direct execution, or one by another test binary (a fixture run
    /// by a test): a run of its own.
    Direct,
}

/// This process's launcher. Read once.
pub(crate) fn launcher() -> &'static Launcher {
    static LAUNCHER: OnceLock<Launcher> = OnceLock::new();
    LAUNCHER.get_or_init(|| match nextest_run() {
        // nextest started this process directly or through a runner; a
        // copy of this executable would have been met first.
        NextestRun::Run { .. } => Launcher::Direct,
        _ => match walk(|p| p.comm == "cargo") {
            Found::It(p) => Launcher::Cargo(p),
            Found::Copy(p) => Launcher::Nested(p),
            Found::Sibling(_) | Found::Nothing => Launcher::Direct,
        },
    })
}

/// Whether this process is a copy of its executable that a test started
/// (directly or through other processes) inside a run: it runs its tests
/// but records nothing, so the run's own records stay whole.
pub(crate) fn nested_copy() -> Option<u32> {
    match launcher() {
        Launcher::Nested(p) => Some(p.pid),
        _ => None,
    }
}

/// Whether the process `(pid, start)` is an ancestor of this one, met
/// before any copy of this executable or other test binary: `Err` names
/// what was met instead.
pub(crate) fn is_ancestor(owner: (u32, u64)) -> Result<(), String> {
    if !LINEAGE_VISIBLE {
        return Ok(());
    }
    match walk(|p| p.id() == owner) {
        Found::It(_) => Ok(()),
        Found::Copy(p) => Err(format!(
            "this process was started by a copy of its own executable (pid {}), inside the run",
            p.pid
        )),
        Found::Sibling(p) => Err(format!(
            "this process was started by another test binary (pid {}, {}), inside the run",
            p.pid, p.comm
        )),
        Found::Nothing => Err(format!(
            "the process that made it (pid {}) did not start this one",
            owner.0
        )),
    }
}

linux! {
    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_lines_with_any_command_name() {
            let line = b"4242 (a) b) (c) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n";
            let p = parse_stat(4242, line).unwrap();
            assert_eq!(
                p,
                Process {
                    pid: 4242,
                    ppid: 17,
                    start: 987654,
                    comm: "a) b) (c".into()
                }
            );
            assert_eq!(parse_stat(1, b"garbage"), None);
            assert_eq!(parse_stat(1, b"1 (x) S"), None);
        }

        #[test]
        fn this_process_has_a_parent_and_is_not_nested() {
            let me = Process::read(std::process::id()).unwrap();
            assert_eq!(me.ppid, std::os::unix::process::parent_id());
            // cargo test's test binary: cargo, or a direct run; never a copy.
            assert!(!matches!(launcher(), Launcher::Nested(_)));
            let parent = Process::read(me.ppid).unwrap();
            assert_eq!(is_ancestor(parent.id()), Ok(()));
            assert!(is_ancestor((me.ppid, parent.start + 1)).is_err());
        }
    }
}
