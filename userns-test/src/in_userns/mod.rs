//! `#[in_userns(...)]`: a test body run as root of a fresh user namespace,
//! inside the namespaces it lists, in a process of its own.
//!
//! Why a process of its own: libtest runs every test on a spawned thread,
//! and `unshare(CLONE_NEWUSER)` fails with EINVAL in a multithreaded
//! process; a `fork()` of a multithreaded process may not run arbitrary
//! Rust (another thread may hold the allocator's lock). So the body's
//! process comes from a copy of the test process made before `main`,
//! while it is single-threaded: the zygote (`zygote.rs`), which forks a
//! supervisor and the body's process per test. Where there is none, or
//! [`EXEC_VAR`] asks, the test binary is executed again for exactly that
//! test (`parent.rs`), and the new process enters the namespaces before
//! `main` (`enter.rs`); the harness then reaches the test, which runs its
//! body. A nextest test process, which runs one test named in its
//! arguments, enters that test's namespaces itself before `main` and runs
//! the body on the test's own thread (`in_place.rs`).
//!
//! The flow, for one test:
//! 1. parent: the gate decided the test runs (the namespaces' abilities,
//!    implied by the attribute, are available);
//! 2. parent: the request (the body's function, the namespaces, the
//!    environment and directory, output pipes, a record channel) to the
//!    zygote; or `/proc/self/exe TEST --exact ...` under a supervisor;
//! 3. the body's process: `unshare(CLONE_NEWUSER)`, uid/gid maps, the
//!    other namespaces, loopback up, `/` private, a fork to be PID 1 of a
//!    new PID (or time) namespace with a fresh `/proc`;
//! 4. it runs the body, writes the outcome (`record`: into a memory file
//!    the parent handed over, which is also, for an executed child, the
//!    proof that it is one) and exits at once (`child.rs`);
//! 5. parent: the body's stdout and stderr through `print!`/`eprint!`
//!    (so libtest captures them), and its outcome as the test's.

linux! {
    pub(crate) mod caller;
    pub(crate) mod child;
    pub(crate) mod enter;
    mod ids;
    mod in_place;
    mod limits;
    pub(crate) mod parent;
    mod record;
    pub(crate) mod zygote;
}
elsewhere! {
    pub(crate) mod unsupported;
}

use crate::ability::Ability;

/// A namespace `#[in_userns(...)]` can enter (a user namespace is always
/// entered first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// A network namespace, with `lo` up (127.0.0.1, and ::1 where IPv6
    /// is on).
    Net,
    /// A mount namespace, `/` made private: mounts stay in the test.
    Mount,
    /// A PID namespace with the body as PID 1 and a fresh `/proc` (in a
    /// mount namespace of its own).
    Pid,
    /// A UTS namespace: hostname and domain name of its own.
    Uts,
    /// An IPC namespace: System V IPC and POSIX message queues of its own.
    Ipc,
    /// A cgroup namespace: the current cgroup seen as the root.
    Cgroup,
    /// A time namespace (its offsets may be set before a child starts).
    Time,
}

impl Namespace {
    /// Every namespace, in the attribute's words.
    pub const ALL: [Namespace; 7] = [
        Namespace::Net,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The name in `#[in_userns(...)]`.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Net => "net",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The namespace named `name`.
    pub fn from_name(name: &str) -> Option<Namespace> {
        Namespace::ALL.into_iter().find(|n| n.name() == name)
    }

    /// The abilities whose probes do what entering it does: the test is
    /// skipped, with their cause, where one is missing.
    pub fn requires(self) -> &'static [Ability] {
        match self {
            Namespace::Net => &[Ability::Net],
            Namespace::Mount => &[Ability::Mount],
            // The fresh /proc needs a mount namespace, and mounting proc.
            Namespace::Pid => &[Ability::Pid, Ability::Mount],
            Namespace::Uts => &[Ability::Uts],
            Namespace::Ipc => &[Ability::Ipc],
            Namespace::Cgroup => &[Ability::Cgroup],
            Namespace::Time => &[Ability::Time],
        }
    }
}

/// What `#[in_userns(...)]` says of a test, for choosing how it enters
/// (see the guide, docs/src/in-userns.md: a user namespace, or the privileged caller).
#[derive(Debug, Clone, Copy)]
pub struct Entering {
    /// The namespaces it lists.
    pub namespaces: &'static [Namespace],
    /// The uids and gids its user namespace maps (1: uid 0 alone).
    pub ids: u32,
    /// `#[requires_userns(user)]` beside it: a user namespace or nothing.
    pub user_required: bool,
}

/// What an `#[in_userns]` test's `.init_array` entry knows of it: enough
/// for a nextest test process running it to decide, before `main`, as its
/// gate will, and to enter its namespaces itself (`in_place.rs`).
#[derive(Debug)]
pub struct BeforeMain {
    /// `module_path!()::name`.
    pub path: &'static str,
    /// What its gate requires (the namespaces' abilities, then the others
    /// listed beside it).
    pub requirements: &'static [Ability],
    /// What it enters.
    pub entering: Entering,
    /// `#[ignore]`d: run only under `--ignored` or `--include-ignored`.
    pub ignored: bool,
}

/// The abilities a test entering `namespaces` needs: `user`, then each
/// namespace's, once each. `ids = N` adds `subids` (see
/// [`required_abilities_with_ids`]).
pub fn required_abilities(namespaces: &[Namespace]) -> Vec<Ability> {
    required_abilities_with_ids(namespaces, 1)
}

/// As [`required_abilities`], for a user namespace mapping `ids` uids and
/// gids: more than one needs `subids` (newuidmap, newgidmap and a range).
pub fn required_abilities_with_ids(namespaces: &[Namespace], ids: u32) -> Vec<Ability> {
    let mut out = vec![Ability::User];
    if ids > 1 {
        out.push(Ability::Subids);
    }
    for a in namespaces.iter().flat_map(|n| n.requires()) {
        if !out.contains(a) {
            out.push(*a);
        }
    }
    out
}

linux! {
    /// `decision` with the privileged caller's way in weighed.
    pub(crate) fn weigh(
        decision: crate::policy::Decision,
        entering: &Entering,
    ) -> crate::policy::Decision {
        caller::weigh(decision, entering)
    }
}
elsewhere! {
    /// Nothing enters namespaces here: the decision stands.
    pub(crate) fn weigh(
        decision: crate::policy::Decision,
        _: &Entering,
    ) -> crate::policy::Decision {
        decision
    }
}

/// The environment variable naming the test a re-executed binary runs.
pub(crate) const TEST_VAR: &str = "USERNS_TEST_IN_USERNS_TEST";
/// The environment variable listing its namespaces (`net,mount`).
pub(crate) const NAMESPACES_VAR: &str = "USERNS_TEST_IN_USERNS_NAMESPACES";
/// The environment variable holding the key of the parent's channel.
pub(crate) const KEY_VAR: &str = "USERNS_TEST_IN_USERNS_KEY";
/// `1`: every `#[in_userns]` body runs in the test binary executed again
/// for it; `0` or unset: its process is forked from a copy of the test
/// process made before `main` (see the guide, docs/src/in-userns.md).
pub const EXEC_VAR: &str = "USERNS_TEST_IN_USERNS_EXEC";
/// The time bound of an `#[in_userns]` body, in seconds (0: none).
pub const TIMEOUT_VAR: &str = "USERNS_TEST_IN_USERNS_TIMEOUT";
/// The descriptor the parent's channel reaches the child as (mapped and
/// closed before `main`).
pub(crate) const RECORD_FD: i32 = 3;
/// The descriptor of the child's real stdout (its descriptor 1 is
/// `/dev/null` until the body runs, so the harness's own lines are not
/// taken for the test's output).
pub(crate) const STDOUT_FD: i32 = 4;
/// The exit status of a child that could not enter its namespaces.
pub(crate) const ENTER_FAILED: i32 = 125;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_needs_a_mount_namespace_too() {
        assert_eq!(
            required_abilities(&[Namespace::Pid, Namespace::Net, Namespace::Mount]),
            vec![Ability::User, Ability::Pid, Ability::Mount, Ability::Net]
        );
        for n in Namespace::ALL {
            assert_eq!(Namespace::from_name(n.name()), Some(n));
        }
    }
}
