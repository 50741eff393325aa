//! The vocabulary: what a test may require.
//!
//! Each [`Ability`] names an operation the test itself will perform; its
//! probe performs that same operation in a throwaway child process, so an
//! available ability means the test's own operation works on this host.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An operation a test needs the host to allow.
///
/// Namespace abilities are probed the unprivileged way: in a child that
/// first creates a user namespace and maps the caller to root in it (the
/// steps of [`Ability::User`]), whatever the caller's real uid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ability {
    /// Create a user namespace and become root in it.
    ///
    /// Probe: `unshare(CLONE_NEWUSER)`; write `deny` to
    /// `/proc/self/setgroups`; write `0 <uid> 1` to `/proc/self/uid_map` and
    /// `0 <gid> 1` to `/proc/self/gid_map`.
    User,
    /// As root of a new user namespace, exercise `CAP_SYS_ADMIN` there.
    ///
    /// Probe: the [`User`](Ability::User) steps, then
    /// `unshare(CLONE_NEWNS)`, which needs `CAP_SYS_ADMIN` in the new user
    /// namespace (what AppArmor's `unprivileged_userns` profile denies).
    CapSysAdmin,
    /// Mount a filesystem in a private mount namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNS)`;
    /// `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)`; mount a `tmpfs` on
    /// `/tmp` (or `/` where `/tmp` is missing).
    Mount,
    /// A network namespace with a working loopback, as bubblewrap sets up.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWNET)`;
    /// open a `NETLINK_ROUTE` socket and add `127.0.0.1/8` to `lo`
    /// (`RTM_NEWADDR`); bring `lo` up over netlink (`RTM_NEWLINK`, `IFF_UP`), as
    /// `ip link set lo up` and bubblewrap do.
    Net,
    /// A PID namespace with the child as PID 1 and a fresh procfs for it,
    /// as `bwrap --unshare-pid --proc /proc` does.
    ///
    /// Probe: `clone(CLONE_NEWUSER|CLONE_NEWPID)`; in the child (PID 1 of
    /// the new namespace) the map writes of [`User`](Ability::User);
    /// `unshare(CLONE_NEWNS)`; make `/` private; mount `proc` on `/proc`.
    /// Hosts that mask parts of `/proc` (containers) refuse the mount
    /// ("mount too revealing").
    Pid,
    /// An IPC namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWIPC)`.
    Ipc,
    /// A UTS namespace in which the hostname can be set.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWUTS)`;
    /// `sethostname("userns-test")`.
    Uts,
    /// A cgroup namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWCGROUP)`.
    Cgroup,
    /// A time namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps; `unshare(CLONE_NEWTIME)`.
    Time,
    /// A user namespace inside a user namespace.
    ///
    /// Probe: the [`User`](Ability::User) steps, twice, the second time
    /// from inside the first namespace.
    Nested,
    /// Drop a capability from the bounding set (`PR_CAPBSET_DROP`), in the
    /// current user namespace.
    ///
    /// Probe: `prctl(PR_CAPBSET_DROP, cap)` in the child, with `cap` one
    /// already absent from the bounding set where there is one (a no-op
    /// that still needs `CAP_SETPCAP`), else the highest capability. Only
    /// the throwaway child's bounding set changes.
    CapSetpcap,
    /// Run bubblewrap with a new user namespace.
    ///
    /// Probe: `bwrap --die-with-parent --unshare-user --ro-bind / / true`,
    /// with `bwrap` from `USERNS_TEST_BWRAP` or `PATH`, started by a
    /// supervisor process of the probe (so nothing the test process does
    /// with its children can change the answer).
    Bwrap,
    /// Run bubblewrap with new user and network namespaces.
    ///
    /// Probe: `bwrap --die-with-parent --unshare-user --unshare-net
    /// --ro-bind / / true`.
    BwrapNet,
    /// Install a seccomp filter.
    ///
    /// Probe: `prctl(PR_SET_NO_NEW_PRIVS, 1)`; `seccomp(SECCOMP_SET_MODE_FILTER)`
    /// with a filter that allows every system call.
    Seccomp,
    /// Restrict the process with Landlock.
    ///
    /// Probe: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    /// (the ABI version, recorded in the verdict); create a ruleset handling
    /// `LANDLOCK_ACCESS_FS_EXECUTE`; `prctl(PR_SET_NO_NEW_PRIVS, 1)`;
    /// `landlock_restrict_self`.
    Landlock,
    /// Map a range of subordinate ids with `newuidmap`/`newgidmap`.
    ///
    /// Probe: find this user's ranges in `/etc/subuid` and `/etc/subgid`;
    /// create a user namespace in a child; run
    /// `newuidmap PID 0 UID 1 1 START COUNT` and the same with
    /// `newgidmap` for it.
    Subids,
    /// Real uid 0 in the initial user namespace.
    ///
    /// Probe: `getuid() == 0` and `/proc/self/uid_map` is the identity map
    /// `0 0 4294967295`. No child process.
    Root,
}

impl Ability {
    /// Every ability, in declaration order.
    pub const ALL: [Ability; 17] = [
        Ability::User,
        Ability::CapSysAdmin,
        Ability::Mount,
        Ability::Net,
        Ability::Pid,
        Ability::Ipc,
        Ability::Uts,
        Ability::Cgroup,
        Ability::Time,
        Ability::Nested,
        Ability::CapSetpcap,
        Ability::Bwrap,
        Ability::BwrapNet,
        Ability::Seccomp,
        Ability::Landlock,
        Ability::Subids,
        Ability::Root,
    ];

    /// The name used in `#[requires_userns(...)]` and environment variables.
    pub const fn name(self) -> &'static str {
        match self {
            Ability::User => "user",
            Ability::CapSysAdmin => "cap_sys_admin",
            Ability::Mount => "mount",
            Ability::Net => "net",
            Ability::Pid => "pid",
            Ability::Ipc => "ipc",
            Ability::Uts => "uts",
            Ability::Cgroup => "cgroup",
            Ability::Time => "time",
            Ability::Nested => "nested",
            Ability::CapSetpcap => "cap_setpcap",
            Ability::Bwrap => "bwrap",
            Ability::BwrapNet => "bwrap_net",
            Ability::Seccomp => "seccomp",
            Ability::Landlock => "landlock",
            Ability::Subids => "subids",
            Ability::Root => "root",
        }
    }

    /// Position in [`Ability::ALL`], for per-ability tables.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// One line saying what the probe does, for tables and reports.
    pub const fn operation(self) -> &'static str {
        match self {
            Ability::User => "create a user namespace and become root in it",
            Ability::CapSysAdmin => "use CAP_SYS_ADMIN in a new user namespace",
            Ability::Mount => "mount a tmpfs in a private mount namespace",
            Ability::Net => "network namespace with loopback up and addressed",
            Ability::Pid => "PID namespace with a fresh /proc",
            Ability::Ipc => "IPC namespace",
            Ability::Uts => "UTS namespace and sethostname",
            Ability::Cgroup => "cgroup namespace",
            Ability::Time => "time namespace",
            Ability::Nested => "user namespace inside a user namespace",
            Ability::CapSetpcap => "drop from the capability bounding set",
            Ability::Bwrap => "bwrap --unshare-user",
            Ability::BwrapNet => "bwrap --unshare-user --unshare-net",
            Ability::Seccomp => "install a seccomp filter",
            Ability::Landlock => "restrict with Landlock",
            Ability::Subids => "map subordinate ids (newuidmap/newgidmap)",
            Ability::Root => "real uid 0 in the initial user namespace",
        }
    }

    /// Whether the probe starts from a new user namespace.
    pub const fn needs_user_namespace(self) -> bool {
        matches!(
            self,
            Ability::User
                | Ability::CapSysAdmin
                | Ability::Mount
                | Ability::Net
                | Ability::Pid
                | Ability::Ipc
                | Ability::Uts
                | Ability::Cgroup
                | Ability::Time
                | Ability::Nested
                | Ability::Subids
        )
    }

    /// Whether the probe runs a program found on the host (bubblewrap,
    /// newuidmap), rather than only system calls.
    pub const fn is_external(self) -> bool {
        matches!(self, Ability::Bwrap | Ability::BwrapNet | Ability::Subids)
    }
}

impl fmt::Display for Ability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an [`Ability`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAbility {
    /// The word that was given.
    pub name: String,
    /// The closest valid name, when one is close enough to be a typo.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for UnknownAbility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown ability `{}`", self.name)?;
        match self.suggestion {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None => {
                let names: Vec<&str> = Ability::ALL.iter().map(|a| a.name()).collect();
                write!(f, "; known abilities: {}", names.join(", "))
            }
        }
    }
}

impl std::error::Error for UnknownAbility {}

impl FromStr for Ability {
    type Err = UnknownAbility;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ability::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| UnknownAbility {
                name: name.to_owned(),
                suggestion: closest_name(name),
            })
    }
}

/// The valid ability name closest to `word`, if it is close enough to be a
/// typo (edit distance at most a third of its length, at least 1), or one
/// contains the other (`netns` -> `net`).
pub(crate) fn closest_name(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.len() / 3).max(1);
    Ability::ALL
        .iter()
        .map(|a| (edit_distance(&word, a.name()), a.name()))
        .filter(|&(d, name)| {
            d <= limit || (name.len() >= 3 && (word.contains(name) || name.contains(&word)))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Optimal-string-alignment distance: edits plus adjacent transpositions,
/// so `nte` is one step from `net`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Ability::ALL {
            assert_eq!(a.name().parse::<Ability>(), Ok(a));
            assert_eq!(Ability::ALL[a.index()], a);
        }
    }

    #[test]
    fn typos_get_suggestions() {
        let e = "nte".parse::<Ability>().unwrap_err();
        assert_eq!(e.suggestion, Some("net"));
        assert_eq!(e.to_string(), "unknown ability `nte`; did you mean `net`?");
        assert_eq!(closest_name("cap_sysadmin"), Some("cap_sys_admin"));
        assert_eq!(closest_name("netns"), Some("net"));
        assert_eq!(closest_name("bwrapnet"), Some("bwrap_net"));
        let far = "xyzzy".parse::<Ability>().unwrap_err();
        assert_eq!(far.suggestion, None);
        assert!(
            far.to_string()
                .contains("known abilities: user, cap_sys_admin")
        );
    }
}
