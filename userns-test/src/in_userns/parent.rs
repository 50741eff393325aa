//! The parent's side: the test binary executed again for one test, under
//! a supervisor (see [`crate::probe`]'s child module: nothing the test
//! process does with SIGCHLD or its children changes the result, and the
//! time bound kills the whole process group), its output relayed, its
//! outcome the test's.

use std::path::Path;
use std::time::Duration;

use super::caller::{self, Mode};
use super::ids::{IDS_VAR, IdMap};
use super::record::{Channel, Record};
use super::zygote;
use super::{Entering, KEY_VAR, NAMESPACES_VAR, RECORD_FD, STDOUT_FD, TEST_VAR, TIMEOUT_VAR};
use crate::failure::Failure;
use crate::probe::child::{Captured, ChildEnd, ExecPlan, SpawnError, Task, run_supervised};

/// How the body's process ran, whichever way it was started.
struct BodyRun {
    end: ChildEnd,
    stdout: Captured,
    stderr: Captured,
    /// The binary could not be executed again: the errno.
    exec_errno: Option<i32>,
    /// The supervisor died before saying how the body ended: the signal
    /// that killed it, where known.
    supervisor_lost: Option<Option<i32>>,
}

/// The bound on a body when [`TIMEOUT_VAR`] is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of the body's stdout and of its stderr is relayed.
const OUTPUT_LIMIT: usize = 16 << 20;

/// Runs the test `path` (libtest's name `name`) in a new process inside
/// `namespaces`, its user namespace mapping uids and gids 0 to `ids - 1`:
/// `Ok` when its body passed, `Err` with why it failed otherwise; a panic
/// of the body is a panic here, at the caller's location, with the body's
/// message and location.
///
/// The body's process is forked by the zygote (`zygote.rs`), or, where
/// there is none or [`EXEC_VAR`](super::zygote::EXEC_VAR) asks, the test
/// binary is executed again to run the test `path`; `body` and
/// `should_panic` are what the forked process runs.
#[track_caller]
pub fn run(
    path: &str,
    name: &str,
    entering: &Entering,
    should_panic: bool,
    body: fn() -> Result<(), String>,
) -> Result<(), String> {
    let (namespaces, ids) = (entering.namespaces, entering.ids);
    let names: Vec<&str> = namespaces.iter().map(|n| n.name()).collect();
    let list = names.join(",");
    let within = timeout()?;
    let mode = caller::mode(entering);
    let mut described = match (mode, names.split_last()) {
        (Mode::UserNamespace, None) => "its own user namespace".to_owned(),
        (Mode::UserNamespace, Some((last, []))) => format!("its own user and {last} namespaces"),
        (Mode::UserNamespace, Some((last, rest))) => {
            format!("its own user, {} and {last} namespaces", rest.join(", "))
        }
        (Mode::Caller, None) => "the caller's namespaces, as the caller".to_owned(),
        (Mode::Caller, Some((last, []))) => format!(
            "its own {last} namespace as the caller, without a user namespace (unavailable \
             here)"
        ),
        (Mode::Caller, Some((last, rest))) => format!(
            "its own {} and {last} namespaces as the caller, without a user namespace \
             (unavailable here)",
            rest.join(", ")
        ),
    };
    if ids > 1 {
        described.push_str(&format!(" (uids and gids 0 to {})", ids - 1));
    }
    // Entered before `main`, in this process (a nextest test process):
    // the body runs here.
    let here = super::in_place::Body {
        path,
        name,
        described: &described,
        ids,
        should_panic,
        body,
        within,
    };
    if let Some(result) = super::in_place::run(&here) {
        return result;
    }
    let prepare_failed =
        |e: String| format!("userns-test: could not prepare to run {name} in {described}: {e}");
    let map = match ids {
        0 | 1 => None,
        n => Some(IdMap::of_caller(n).map_err(prepare_failed)?),
    };
    let exec = zygote::exec_asked()?;
    let channel = Channel::new().map_err(|e| prepare_failed(e.to_string()))?;
    let could_not_start = |e: i32, call: &str| {
        format!(
            "userns-test: could not start {name} in {described}: {call} failed: {} (EAGAIN: \
             the process limit)",
            Failure::errno(e)
        )
    };
    let request = zygote::Request {
        name,
        should_panic,
        body,
        namespaces: &list,
        ids: map.map(IdMap::to_var),
        as_caller: mode == Mode::Caller,
        timeout: within,
    };
    let started = if exec {
        None
    } else {
        zygote::request(&request, &channel)
    };
    let run = match started {
        Some(started) => {
            let ended = zygote::wait(started, within, OUTPUT_LIMIT);
            if let Some(errno) = ended.spawn_errno {
                return Err(could_not_start(errno, "fork"));
            }
            BodyRun {
                end: ended.end,
                stdout: ended.stdout,
                stderr: ended.stderr,
                exec_errno: None,
                supervisor_lost: ended.supervisor_lost,
            }
        }
        None => {
            let plan = plan(path, name, &list, map, mode, &channel)
                .map_err(|e| prepare_failed(Failure::errno(e as i32).to_string()))?;
            let run = run_supervised(Task::Exec(&plan), within).map_err(|e| {
                let (SpawnError::Clone(e) | SpawnError::Memory(e)) = e;
                could_not_start(e as i32, "clone")
            })?;
            let mut captured = run.captured.into_iter();
            BodyRun {
                end: run.child.end,
                stdout: captured.next().unwrap_or_default(),
                stderr: run.stderr,
                exec_errno: run.exec_errno,
                supervisor_lost: run.supervisor_killed.map(Some),
            }
        }
    };
    // Through print!/eprint!, so that libtest captures them as the test's.
    let (out, err) = (
        String::from_utf8_lossy(&run.stdout.bytes),
        String::from_utf8_lossy(&run.stderr.bytes),
    );
    print!("{out}");
    eprint!("{err}");
    if run.stderr.truncated || run.stdout.truncated {
        eprintln!(
            "userns-test: {name}: output past {} MiB not shown",
            OUTPUT_LIMIT >> 20
        );
    }
    if let Some(errno) = run.exec_errno {
        return Err(format!(
            "userns-test: could not execute the test binary again (/proc/self/exe) to run \
             {name} in {described}: {}",
            Failure::errno(errno)
        ));
    }
    let record = channel.read();
    if let Some(signal) = run.supervisor_lost {
        let how = match signal {
            Some(sig) => format!("was {}", Failure::signal(sig)),
            None => "ended without saying how the body ended".to_owned(),
        };
        return Err(format!(
            "userns-test: {name}, running in {described}: the process supervising it {how} \
             (did the body signal its parent?), and the body died with it; {}",
            match record {
                Some(Record::Passed) => "the body had passed before",
                Some(_) => "the body had failed before",
                None => "whether the body passed is unknown",
            }
        ));
    }
    // A test run although its namespaces were found unavailable
    // (`--ignored`, `--include-ignored`): what the probes had found before
    // the test ran, for the message if entering them fails. Nothing is
    // probed now: the test may have changed the process since.
    let unmet = crate::policy::Unmet {
        reasons: super::required_abilities_with_ids(namespaces, ids)
            .into_iter()
            .filter_map(|a| Some((a, crate::gate::probed(a)?.reason()?.clone())))
            .collect(),
    };
    // One line, each failure once whatever number of abilities it takes.
    // As the caller, the gate found the caller's way open: a refusal now
    // is a change of the host, not a forced run.
    let unavailable =
        (mode == Mode::UserNamespace && !unmet.reasons.is_empty()).then(|| unmet.brief());
    let hint = |message: &str| super::limits::hint(&[message, &out, &err], ids);
    outcome(
        name,
        &described,
        record,
        &run.end,
        within,
        unavailable,
        &hint,
    )
}

/// The plan: this binary, asked for exactly the test, with the test, its
/// namespaces and the channel's key in the environment, and the channel
/// as descriptor 3.
fn plan(
    path: &str,
    name: &str,
    list: &str,
    ids: Option<IdMap>,
    mode: Mode,
    channel: &Channel,
) -> Result<ExecPlan, nix::errno::Errno> {
    // Under libtest: only that test, even if ignored, output uncaptured
    // (the parent captures it), one thread. The runner reads none of it:
    // its `main` runs the test named in the environment.
    let args = [
        name,
        "--exact",
        "--nocapture",
        "--include-ignored",
        "--test-threads=1",
        "-q",
    ];
    // A map left in this process's environment is never the child's.
    let plan = match ids {
        Some(map) => ExecPlan::new(Path::new("/proc/self/exe"), &args)?.env(IDS_VAR, &map.to_var())?,
        None => ExecPlan::new(Path::new("/proc/self/exe"), &args)?.env_remove(IDS_VAR),
    };
    let plan = match mode {
        Mode::Caller => plan.env(caller::MODE_VAR, "1")?,
        Mode::UserNamespace => plan.env_remove(caller::MODE_VAR),
    };
    plan.env(TEST_VAR, path)?
        .env(NAMESPACES_VAR, list)?
        .env(KEY_VAR, &channel.key_hex())?
        .stderr_limit(OUTPUT_LIMIT)
        .pass(channel.fd(), RECORD_FD)?
        .capture(STDOUT_FD, OUTPUT_LIMIT)
}

/// The longest bound [`TIMEOUT_VAR`] takes: a week, in seconds.
const MAX_TIMEOUT_S: u64 = 7 * 24 * 60 * 60;

/// The bound from [`TIMEOUT_VAR`]: whole seconds, 0 for none, at most a
/// week; anything else is an error naming the variable, read before
/// anything starts.
fn timeout() -> Result<Duration, String> {
    use crate::policy::{DurationUnit, duration};
    let problem = |e: crate::policy::ConfigError| {
        format!(
            "userns-test: {e} (0: no bound; unset: {} s)",
            DEFAULT_TIMEOUT.as_secs()
        )
    };
    match std::env::var_os(TIMEOUT_VAR) {
        None => Ok(DEFAULT_TIMEOUT),
        Some(v) => {
            let text = v.to_string_lossy();
            match duration(TIMEOUT_VAR, &text, DurationUnit::Seconds, 0, MAX_TIMEOUT_S) {
                // "No bound": far beyond any test, and within Instant's range.
                Ok(d) if d.is_zero() => Ok(Duration::from_secs(u64::from(u32::MAX))),
                Ok(d) => Ok(d),
                Err(e) => Err(problem(e)),
            }
        }
    }
}

#[track_caller]
pub(super) fn outcome(
    name: &str,
    described: &str,
    record: Option<Record>,
    end: &ChildEnd,
    within: Duration,
    unavailable: Option<String>,
    hint: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    // A failure naming EPERM or EINVAL: the user namespace's limit that
    // may apply, on a line of its own.
    let with_hint = |message: String| match hint(&message) {
        Some(line) => format!("{message}\n{line}"),
        None => message,
    };
    match (record, end) {
        (Some(Record::Passed), ChildEnd::Exited(0)) => Ok(()),
        (Some(Record::Panicked { message, location }), _) => {
            let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
            panic!(
                "{}",
                with_hint(format!("{name} panicked in {described}{at}: {message}"))
            )
        }
        (Some(Record::Failed { message }), _) => Err(with_hint(message)),
        (Some(Record::EnterFailed { step, failure }), _) if unavailable.is_some() => {
            Err(format!(
                "userns-test: {name} was run although its namespaces were found unavailable \
                 ({}), as --ignored or --include-ignored asks; entering {described} failed: \
                 {step}: {failure}",
                unavailable.unwrap_or_default()
            ))
        }
        (Some(Record::EnterFailed { step, failure }), _) => Err(format!(
            "userns-test: {name}: entering {described} failed: {step}: {failure}. The probes \
             found these namespaces available, so the host changed between them and the test \
             (a limit reached, a filter or policy applied to this process since, another \
             process racing for the same resource)"
        )),
        (Some(Record::NotFound { path }), _) => Err(format!(
            "userns-test: the runner, executed again to run {path} in {described}, has no such \
             test"
        )),
        (Some(Record::Passed), end) => Err(format!(
            "userns-test: {name} passed in {described}, then its process {}",
            ended(end, within)
        )),
        (None, ChildEnd::Exited(code)) => Err(format!(
            "userns-test: {name}, executed again to run in {described}, exited with status \
             {code} without reporting an outcome, so whether its body ran is unknown (its \
             output is above; a harness that did not reach the test, or a body that exited the \
             process, end so)"
        )),
        (None, end) => Err(format!(
            "userns-test: {name}, running in {described}, {}",
            ended(end, within)
        )),
    }
}

fn ended(end: &ChildEnd, within: Duration) -> String {
    match end {
        ChildEnd::Exited(code) => format!("exited with status {code}"),
        ChildEnd::Killed(sig) => format!(
            "was {} before it reported an outcome",
            Failure::signal(*sig)
        ),
        ChildEnd::TimedOut(_) => format!(
            "did not finish within {} s, and was killed with its process group \
             ({TIMEOUT_VAR} sets the bound in seconds, 0 for none)",
            within.as_secs()
        ),
    }
}
