//! Running as the privileged caller: where no user namespace can be made
//! (a filter or sysctl refusing `CLONE_NEWUSER` alone, `user` denied by
//! `USERNS_TEST_DENY`) but this process holds CAP_SYS_ADMIN in its own user
//! namespace, the test's other namespaces are entered directly and the
//! body runs there as the caller, with the caller's capabilities: a
//! privileged CI job with user namespaces disabled still runs its
//! namespace tests.
//!
//! (Also here: `ids = N` needs no subordinate range where the caller is
//! root, which maps its own ids.)
//!
//! So an `#[in_userns]` test requires "a user namespace, or CAP_SYS_ADMIN
//! and these namespaces entered without one". Not taken where the test
//! insists on a user namespace (`#[requires_userns(user)]` beside it), or
//! maps more ids than its own (`ids = N` needs a user namespace), or lacks
//! something else it requires.

use std::sync::Mutex;

use super::{Entering, Namespace};
use crate::Ability;
use crate::cause::Cause;
use crate::policy::{Decision, Unmet};
use crate::probe::program::Op;

/// How the test's process enters its namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A new user namespace first, the caller mapped to root.
    UserNamespace,
    /// The namespaces alone, as the caller.
    Caller,
}

/// The environment variable telling the child to enter as the caller.
pub(crate) const MODE_VAR: &str = "USERNS_TEST_IN_USERNS_AS_CALLER";

/// CAP_SYS_ADMIN, which entering the namespaces without a user namespace
/// takes.
const CAP_SYS_ADMIN: u8 = 21;

/// `decision` (on the test's requirements) with the caller's way in
/// weighed: a skip or a `USERNS_TEST_REQUIRE` failure whose every unmet
/// ability is one the user namespace implies becomes a run where the
/// caller can enter the namespaces itself; where it cannot, the unmet
/// requirements also say why (CAP_SYS_ADMIN missing, or entering refused).
pub(crate) fn weigh(decision: Decision, entering: &Entering) -> Decision {
    let (unmet, fail) = match decision {
        Decision::Skip(unmet) => (unmet, false),
        Decision::Fail(unmet) => (unmet, true),
        // Met, with a range too short for the ids it maps (and no way to
        // map them itself): skipped with that, not failed when it runs.
        Decision::Run if entering.ids > 1 && !super::ids::maps_itself(entering.ids) => {
            return match super::ids::range_too_short(entering.ids) {
                Some(reason) => too_short(reason),
                None => Decision::Run,
            };
        }
        other => return other,
    };
    // Root maps its own ids where it has no subordinate range: `subids`
    // unmet (and not denied) is no reason to skip, nor to name.
    let mut unmet = unmet;
    if entering.ids > 1
        && !crate::gate::settings().is_ok_and(|s| s.denies(Ability::Subids))
        && super::ids::maps_itself(entering.ids)
    {
        unmet.reasons.retain(|(a, _)| *a != Ability::Subids);
        if unmet.reasons.is_empty() {
            return Decision::Run;
        }
    }
    if !considered(&unmet, entering) {
        return rebuild(unmet, fail);
    }
    match caller_can_enter(entering.namespaces) {
        Ok(()) => Decision::Run,
        Err(also) => {
            let mut unmet = unmet;
            unmet.reasons.extend(also);
            rebuild(unmet, fail)
        }
    }
}

/// A skip for a subordinate range too short, or a failure under
/// `USERNS_TEST_REQUIRE` naming `subids` (or everything).
fn too_short(reason: (Ability, crate::Reason)) -> Decision {
    let unmet = Unmet {
        reasons: vec![reason],
    };
    let required = crate::gate::settings().is_ok_and(|s| s.requires(Ability::Subids));
    rebuild(unmet, required)
}

fn rebuild(unmet: Unmet, fail: bool) -> Decision {
    if fail {
        Decision::Fail(unmet)
    } else {
        Decision::Skip(unmet)
    }
}

/// Whether the caller's way is worth trying for a test whose `unmet`
/// requirements are these.
fn considered(unmet: &Unmet, entering: &Entering) -> bool {
    let implied = super::required_abilities(entering.namespaces);
    entering.ids <= 1
        && !entering.user_required
        && unmet.reasons.iter().all(|(a, _)| implied.contains(a))
}

/// How this test's process enters, once the gate let it run: as the
/// caller where the gate found the user namespace's way unavailable and
/// the caller's open, else through a user namespace (which then fails
/// saying what the probes found, where a run was forced by `--ignored`).
/// Nothing is probed now: the test may have changed the process since
/// the gate decided, and the entering must say what the gate saw.
pub(crate) fn mode(entering: &Entering) -> Mode {
    if entering.ids > 1 || entering.user_required {
        return Mode::UserNamespace;
    }
    let implied = super::required_abilities(entering.namespaces);
    let denied = |a: Ability| crate::gate::settings().is_ok_and(|s| s.denies(a));
    let unavailable = implied.iter().any(|&a| {
        denied(a) || crate::gate::probed(a).is_some_and(|v| v.reason().is_some())
    });
    let tried = TRIED.lock().unwrap_or_else(|e| e.into_inner());
    let caller_opens = tried
        .iter()
        .any(|(n, found)| n == entering.namespaces && found.is_ok());
    if unavailable && caller_opens {
        Mode::Caller
    } else {
        Mode::UserNamespace
    }
}

/// The namespace sets tried as the caller in this process, and how it went.
static TRIED: Mutex<Vec<(Vec<Namespace>, Entered)>> = Mutex::new(Vec::new());

/// Whether this process can enter `namespaces` without a user namespace:
/// CAP_SYS_ADMIN effective (as `cap(sys_admin)` decides, `USERNS_TEST_DENY`
/// included), then the entering itself tried in a throwaway child, once
/// per set of namespaces. The refusal, as unmet requirements, otherwise.
fn caller_can_enter(namespaces: &[Namespace]) -> Result<(), Vec<(Ability, crate::Reason)>> {
    let capability = Ability::Cap(CAP_SYS_ADMIN);
    match crate::gate::decide(&[capability]) {
        Decision::Run => {}
        Decision::Skip(u) | Decision::Fail(u) => return Err(u.reasons),
        Decision::Misconfigured(_) => return Err(Vec::new()),
    }
    let mut tried = TRIED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, found)) = tried.iter().find(|(n, _)| n == namespaces) {
        return found.clone().map_err(|r| vec![*r]);
    }
    let found = try_entering(namespaces);
    tried.push((namespaces.to_vec(), found.clone()));
    found.map_err(|r| vec![*r])
}

/// How entering a set of namespaces as the caller went: the refusal as an
/// unmet requirement.
type Entered = Result<(), Box<(Ability, crate::Reason)>>;

/// The namespaces entered as the child will enter them, in a throwaway
/// child: the failure diagnosed as the probe of the namespace whose step
/// failed would be.
fn try_entering(namespaces: &[Namespace]) -> Entered {
    let (flags, ops) = ops(namespaces, true);
    let timeout = crate::gate::settings()
        .map(|s| s.probe.timeout)
        .unwrap_or_else(|_| crate::ProbeOptions::default().timeout);
    let run = crate::probe::child::run_child(&ops, flags, timeout, |_, _| ());
    let outcome = match run {
        Ok((run, ())) => crate::probe::perform::child_outcome(&ops, &run),
        Err(_) => crate::probe::failed(
            crate::Step::Handshake,
            crate::Failure::errno(libc::EAGAIN),
        ),
    };
    outcome.map_err(|failed| {
        // Named after the first namespace listed: the one the test needs
        // that could not be entered.
        let ability = namespaces
            .first()
            .and_then(|n| n.requires().first().copied())
            .unwrap_or(Ability::CapSysAdmin);
        let mut reason = crate::gate::diagnose(ability, &failed);
        // The filter the user probe found refusing every namespace type
        // (checked there, flag by flag) refused this one the same way: one
        // root cause, not a second "could not be checked".
        if reason.cause == Cause::SeccompFilter
            && let Some(user) = crate::gate::probe(Ability::User).reason()
            && user.cause == Cause::SeccompRefusesNamespaces
            && user.failure == reason.failure
        {
            reason.cause = user.cause.clone();
            reason.remedy = user.remedy.clone();
        }
        Box::new((ability, reason))
    })
}

/// The operations entering `namespaces` (after the user namespace, if
/// any): one unshare, `/` made private so that mounts stay in the test,
/// lo up; and the clone flags of the child that performs them (a probe's
/// child starts in a new PID namespace as its PID 1, which the test's
/// process becomes by a fork). `probe`: for the probe's child.
pub(crate) fn ops(namespaces: &[Namespace], probe: bool) -> (libc::c_int, Vec<Op>) {
    let has = |n| namespaces.contains(&n);
    let mut flags = 0;
    for (namespace, flag) in [
        (Namespace::Mount, libc::CLONE_NEWNS),
        (Namespace::Pid, libc::CLONE_NEWNS),
        (Namespace::Net, libc::CLONE_NEWNET),
        (Namespace::Uts, libc::CLONE_NEWUTS),
        (Namespace::Ipc, libc::CLONE_NEWIPC),
        (Namespace::Cgroup, libc::CLONE_NEWCGROUP),
        (Namespace::Time, libc::CLONE_NEWTIME),
    ] {
        if has(namespace) {
            flags |= flag;
        }
    }
    let mut clone_flags = 0;
    if has(Namespace::Pid) {
        if probe {
            clone_flags = libc::CLONE_NEWPID;
        } else {
            flags |= libc::CLONE_NEWPID;
        }
    }
    let mut ops = Vec::new();
    if flags != 0 {
        ops.push(Op::Unshare(flags));
    }
    if flags & libc::CLONE_NEWNS != 0 {
        // Mounts the body makes stay in its namespace.
        ops.push(Op::private_root());
    }
    if has(Namespace::Net) {
        ops.push(Op::loopback_address());
        ops.push(Op::loopback_up());
    }
    if probe && has(Namespace::Pid) {
        ops.push(Op::fresh_proc());
    }
    (clone_flags, ops)
}
