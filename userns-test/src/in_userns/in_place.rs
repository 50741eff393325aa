//! Entering in place: a nextest test process (one test, named in its
//! arguments) whose test is an `#[in_userns]` one enters the namespaces
//! itself, before `main`, and runs the body on the test's own thread.
//!
//! Why: such a process runs exactly one test, so a process of its own for
//! the body (forked by the zygote, or the binary executed again) costs two
//! to four forks of a large binary and their copy-on-write faults, for
//! nothing the test process needs afterwards. Entering needs a
//! single-threaded process, which the test process is before `main`.
//!
//! What makes the outcome the same as the other ways':
//! - the gate's decision is made before entering, with the gate's own
//!   cached probes ([`crate::gate::probe`]) and the caller's way weighed as
//!   the gate weighs it; the gate in the test finds the same verdicts and
//!   decides the same. Only a test the gate runs is entered here: a skip,
//!   a failure, a run forced by `--ignored`, a PID or time namespace (the
//!   body would be a child, PID 1 of its namespace) and
//!   [`EXEC_VAR`](super::EXEC_VAR)`=1` take the usual ways;
//! - what records the run (the run's directory, opened and checked as
//!   this user's) is opened before entering: inside a user namespace the
//!   host's root owns nothing this process can see (its files show as
//!   uid 65534), and the ownership checks would refuse every path;
//! - the body's outcome is judged by the same code (`parent::outcome`),
//!   with the same messages, the limits' hint included;
//! - the time bound is kept by a thread that, past it, says so, records
//!   the failure and ends the process; what the body started is killed
//!   when it ends, as the supervisor kills it: every process of the
//!   namespace entered here;
//! - a body that ends the process itself fails the test (an `atexit`
//!   handler), as a child that exits without an outcome does.
//!
//! What cannot be the same: a body killed by a signal takes the test
//! process with it (nextest shows the signal, the report says crashed),
//! and the process's parent is nextest, not a supervisor.
//!
//! A failure to enter after the probes found the namespaces available is
//! the test's failure, with the step and errno, as a child's would be:
//! a half-entered process has no way back.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use super::caller::{self, Mode};
use super::enter::Failed;
use super::ids::IdMap;
use super::record::Record;
use super::{BeforeMain, ENTER_FAILED, Namespace};
use crate::policy::Decision;
use crate::probe::child::ChildEnd;

/// The test this process entered the namespaces for, before `main`.
static ENTERED: OnceLock<Entered> = OnceLock::new();

struct Entered {
    path: &'static str,
    /// How entering went.
    result: Result<(), Failed>,
    /// A namespace made here, as `/proc/<pid>/ns/<name>` and its inode:
    /// every other process in it is one the body started.
    fresh: Option<(&'static str, u64)>,
    /// The body ran: a second call runs nothing in place.
    taken: AtomicBool,
}

/// The name of the one test this process is asked to run, where its
/// arguments name exactly one and [`EXEC_VAR`](super::EXEC_VAR) does not
/// ask for executing the binary again: `None` otherwise (then the usual
/// ways start the body). Whether nextest started the process is asked
/// only by that test's entry (it reads other processes' files: a plain
/// test's process need not pay for it).
pub(crate) fn wanted(args: &[&[u8]]) -> Option<String> {
    if !matches!(super::zygote::exec_asked(), Ok(false)) {
        return None;
    }
    one_exact_filter(args)
}

/// Whether nextest started this process (its run, not a listing): a test
/// process of exactly one test.
fn under_nextest() -> bool {
    matches!(
        crate::record::lineage::nextest_run(),
        crate::record::lineage::NextestRun::Run { .. }
    )
}

/// The filter of libtest arguments that select one test by its exact
/// name: `--exact NAME`, with only arguments that select nothing else.
fn one_exact_filter(args: &[&[u8]]) -> Option<String> {
    let mut exact = false;
    let mut name = None;
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        match arg {
            b"--exact" => exact = true,
            b"--nocapture" | b"--no-capture" | b"--ignored" | b"--include-ignored" | b"-q"
            | b"--quiet" | b"--show-output" => {}
            // Options with a value, as a separate argument.
            b"--test-threads" | b"--color" => {
                args.next()?;
            }
            a if a.starts_with(b"--test-threads=") || a.starts_with(b"--color=") => {}
            // Any other option may select, list or format differently.
            a if a.starts_with(b"-") => return None,
            a if name.is_none() => name = Some(String::from_utf8(a.to_vec()).ok()?),
            _ => return None,
        }
    }
    name.filter(|_| exact)
}

/// Which tests libtest's arguments run, of those their filter names:
/// `--ignored` (only ignored ones), `--include-ignored` (both).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selecting {
    ignored: bool,
    include_ignored: bool,
}

impl Selecting {
    pub(crate) fn of(args: &[&[u8]]) -> Selecting {
        Selecting {
            ignored: args.contains(&&b"--ignored"[..]),
            include_ignored: args.contains(&&b"--include-ignored"[..]),
        }
    }

    /// Whether libtest runs `test`.
    fn runs(self, test: &BeforeMain) -> bool {
        match test.ignored {
            true => self.ignored || self.include_ignored,
            false => !self.ignored,
        }
    }
}

/// Enters `test`'s namespaces in this process, before `main`, if the gate
/// will run it: `true` when it was tried (entered, or failed entering,
/// which the test reports), `false` when the body must be started the
/// usual way (the caller then makes the zygote).
pub(crate) fn enter(test: &'static BeforeMain, selecting: Selecting) -> bool {
    let entering = &test.entering;
    let has = |n| entering.namespaces.contains(&n);
    if has(Namespace::Pid) || has(Namespace::Time) || !selecting.runs(test) || !under_nextest()
    {
        return false;
    }
    // The gate's decision, as the gate will make it: its probes cached
    // now, from outside the namespaces. The shared ones first (once the
    // key is computed for them, the namespaces' verdicts are shared too),
    // `user` last: the other namespaces' probes begin with its operations,
    // and one found available has seen it work (`gate::probe`).
    if let Ok(settings) = crate::gate::settings() {
        let costly = |a: &crate::Ability| *a == crate::Ability::Net || a.is_external();
        let (first, then): (Vec<crate::Ability>, Vec<crate::Ability>) =
            test.requirements.iter().partition(|a| costly(a));
        for a in first.into_iter().chain(then) {
            if a != crate::Ability::User && !settings.denies(a) {
                crate::gate::probe(a);
            }
        }
    }
    let decision = super::weigh(crate::gate::decide(test.requirements), entering);
    if !matches!(decision, Decision::Run) {
        return false;
    }
    let mode = caller::mode(entering);
    let map = match entering.ids {
        0 | 1 => None,
        n => match IdMap::of_caller(n) {
            Ok(map) => Some(map.to_var()),
            // Said by the usual way, as the test's failure.
            Err(_) => return false,
        },
    };
    // Records opened while the host's owners can be seen.
    crate::record::open_run_before_entering();
    if !super::zygote::single_threaded() {
        return false;
    }
    let list: Vec<&str> = entering.namespaces.iter().map(|n| n.name()).collect();
    let result = super::enter::enter_namespaces(&list.join(","), map.as_deref(), mode == Mode::Caller);
    let fresh = match mode {
        Mode::UserNamespace => Some("user"),
        Mode::Caller => [
            (Namespace::Net, "net"),
            (Namespace::Mount, "mnt"),
            (Namespace::Ipc, "ipc"),
            (Namespace::Uts, "uts"),
            (Namespace::Cgroup, "cgroup"),
        ]
        .into_iter()
        .find(|(n, _)| has(*n))
        .map(|(_, name)| name),
    }
    .filter(|_| result.is_ok())
    .and_then(|name| Some((name, inode(&format!("/proc/self/ns/{name}"))?)));
    let _ = ENTERED.set(Entered {
        path: test.path,
        result,
        fresh,
        taken: AtomicBool::new(false),
    });
    true
}

fn inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// What the body of a test entered in place needs to be run and judged.
pub(crate) struct Body<'a> {
    pub path: &'a str,
    pub name: &'a str,
    pub described: &'a str,
    pub ids: u32,
    pub should_panic: bool,
    pub body: fn() -> Result<(), String>,
    pub within: Duration,
}

/// Runs the body of `run.path` here, if this process entered its
/// namespaces before `main`: its result, judged as a child's would be;
/// `None` for any other test (started the usual way).
#[track_caller]
pub(crate) fn run(run: &Body<'_>) -> Option<Result<(), String>> {
    let entered = ENTERED.get().filter(|e| e.path == run.path)?;
    if entered.taken.swap(true, Ordering::SeqCst) {
        return None;
    }
    let no_hint = |_: &str| None;
    if let Err((step, failure)) = &entered.result {
        let record = Record::EnterFailed {
            step: step.clone(),
            failure: failure.clone(),
        };
        let end = ChildEnd::Exited(ENTER_FAILED);
        return Some(super::parent::outcome(
            run.name,
            run.described,
            Some(record),
            &end,
            run.within,
            None,
            &no_hint,
        ));
    }
    // The time bound's thread takes a pid of this namespace too: the
    // body's processes are those made after it.
    let watchdog = watch(run.within);
    let since = last_pid();
    guard_exit(run, entered.fresh, since);
    let record = catch(run.body, run.should_panic);
    // The body's outcome counts only if the time bound has not claimed the
    // test: past it, this thread waits for the process's end (the body may
    // have returned because the bound killed what it waited for).
    if ENDED
        .compare_exchange(RUNNING, RETURNED, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        loop {
            std::thread::park();
        }
    }
    drop(watchdog);
    sweep(entered.fresh, since);
    let ids = run.ids;
    let hint = |message: &str| super::limits::hint(&[message], ids);
    Some(super::parent::outcome(
        run.name,
        run.described,
        Some(record),
        &ChildEnd::Exited(0),
        run.within,
        None,
        &hint,
    ))
}

/// The body running on this thread: whether its panic is told (not where
/// `#[should_panic]` expects one, as a child does not tell it), and the
/// panic's message and location.
struct Catching {
    quiet: bool,
    caught: Option<(String, Option<String>)>,
}

thread_local! {
    static CATCHING: std::cell::RefCell<Option<Catching>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `body`, its panic caught with its message and location (a hook
/// placed before the process's own, which still tells the panic as
/// libtest does unless `quiet`).
fn catch(body: fn() -> Result<(), String>, quiet: bool) -> Record {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = CATCHING
                .try_with(|c| match c.borrow_mut().as_mut() {
                    Some(catching) => {
                        let message = crate::text::panic_payload(info.payload()).to_owned();
                        catching.caught = Some((message, info.location().map(|l| l.to_string())));
                        catching.quiet
                    }
                    None => false,
                })
                .unwrap_or(false);
            if !quiet {
                previous(info)
            }
        }));
    });
    CATCHING.with(|c| *c.borrow_mut() = Some(Catching { quiet, caught: None }));
    let result = std::panic::catch_unwind(body);
    let caught = CATCHING
        .with(|c| c.borrow_mut().take())
        .and_then(|c| c.caught);
    match result {
        Ok(Ok(())) => Record::Passed,
        Ok(Err(message)) => Record::Failed { message },
        Err(payload) => {
            let (message, location) = caught
                .unwrap_or_else(|| (crate::text::panic_payload(&*payload).to_owned(), None));
            Record::Panicked { message, location }
        }
    }
}

/// How the body entered in place ended: the first to say wins, so that a
/// body returning at its time bound and the bound itself never both
/// report.
static ENDED: AtomicU8 = AtomicU8::new(RUNNING);
const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const TIMED_OUT: u8 = 2;
const EXITED: u8 = 3;

/// The body running in place, as what ends it other than its return (the
/// time bound, an exit) needs it: set when it starts.
struct Running {
    pid: u32,
    path: String,
    name: String,
    described: String,
    within: Duration,
    started: std::time::Instant,
    fresh: Option<(&'static str, u64)>,
    since: Option<u32>,
}

static RUNNING_BODY: OnceLock<Running> = OnceLock::new();

impl Running {
    /// Fails the test with `message` and ends the process: said on
    /// stderr, recorded as the run's end would record it (plain mode's
    /// run concluded now, or the runner's last word: its `main` is never
    /// reached), what the body started killed.
    fn end_unfinished(&self, message: &str) -> ! {
        // Nothing may unwind out of an `atexit` handler, nor end this
        // without the exit below.
        let _ = std::panic::catch_unwind(|| {
            use std::io::Write;
            let _ = std::io::stderr()
                .lock()
                .write_all(format!("{message}\n").as_bytes());
            let elapsed = self.started.elapsed();
            if crate::plain::ended_unfinished(&self.path, message, elapsed) {
                crate::plain::conclude_now();
            } else {
                crate::record::session::last_word(message, elapsed);
            }
            sweep(self.fresh, self.since);
            let _ = std::io::stdout().flush();
        });
        // SAFETY: ends the process with a failure, its records written.
        unsafe { libc::_exit(101) }
    }
}

/// A body that ends the process itself (`std::process::exit`, from its
/// thread or another) never reported an outcome: the other ways fail such
/// a test ("exited with status N without reporting an outcome"), and so
/// does this one, whatever status it exited with (libtest and nextest
/// would take an exit with 0 for a pass). An `atexit` handler, registered
/// when the body starts, checked only in the body's own process (a child
/// it forked inherits the handler and ends as it asked).
fn guard_exit(run: &Body<'_>, fresh: Option<(&'static str, u64)>, since: Option<u32>) {
    let running = Running {
        pid: std::process::id(),
        path: run.path.to_owned(),
        name: run.name.to_owned(),
        described: run.described.to_owned(),
        within: run.within,
        started: std::time::Instant::now(),
        fresh,
        since,
    };
    if RUNNING_BODY.set(running).is_ok() {
        // SAFETY: registers a function without arguments, once.
        unsafe { libc::atexit(exited_during_body) };
    }
}

extern "C" fn exited_during_body() {
    let Some(running) = RUNNING_BODY.get() else {
        return;
    };
    if std::process::id() != running.pid
        || ENDED
            .compare_exchange(RUNNING, EXITED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return;
    }
    running.end_unfinished(&format!(
        "userns-test: {}, running in {}, ended its process (an exit from the body or another \
         thread) before it returned, so whether its body passed is unknown",
        running.name, running.described
    ))
}

/// The time bound: a thread that, if the body has not returned `within`,
/// fails the test and ends the process (the body cannot be stopped alone:
/// it is the test thread). Dropping the guard ends the thread.
fn watch(within: Duration) -> Option<std::sync::mpsc::Sender<()>> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("userns-test time bound".into())
        .spawn(move || {
            if wait.recv_timeout(within) != Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                || ENDED
                    .compare_exchange(RUNNING, TIMED_OUT, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                return;
            }
            let running = RUNNING_BODY.wait();
            running.end_unfinished(&format!(
                "userns-test: {}, running in {}, did not finish within {} s: its process was \
                 ended, with every process it started ({} sets the bound in seconds, 0 for \
                 none)",
                running.name,
                running.described,
                running.within.as_secs(),
                super::TIMEOUT_VAR
            ))
        });
    // A thread that cannot be made (the process limit): no bound but
    // nextest's own, as for a test without the attribute.
    spawned.ok().map(|_| done)
}

/// The last pid given out in this process's PID namespace (the body's
/// processes are in it: entering in place makes no PID namespace).
fn last_pid() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Kills every process the body started and left: each in the namespace
/// made here (a daemon in a session of its own included), and this
/// process's children and their descendants; reaps the children.
/// `since`: the last pid given out before the body started, where known:
/// only processes made since are looked at (pids are given out in
/// increasing order, and start again from the bottom past the top).
fn sweep(fresh: Option<(&'static str, u64)>, since: Option<u32>) {
    let me = std::process::id();
    let now = last_pid();
    let made_since = |pid: u32| match (since, now) {
        (Some(since), Some(now)) if since <= now => since < pid && pid <= now,
        (Some(since), Some(now)) => since < pid || pid <= now,
        _ => true,
    };
    // Nothing made since: nothing to kill or reap.
    if since.is_some() && now == since {
        return;
    }
    let mut victims = descendants(me);
    if let Some((ns, ino)) = fresh
        && let Ok(dir) = std::fs::read_dir("/proc")
    {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            // Another user's process is unreadable here, and in no
            // namespace of ours.
            if pid != me
                && made_since(pid)
                && !victims.contains(&pid)
                && inode(&format!("/proc/{pid}/ns/{ns}")) == Some(ino)
            {
                victims.push(pid);
            }
        }
    }
    for &pid in &victims {
        // SAFETY: kill of a process the body started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    for pid in children(me) {
        let mut status = 0;
        // SAFETY: waiting for our own child (ECHILD where SIGCHLD is
        // ignored or the body reaped it: nothing to do).
        while unsafe { libc::waitpid(pid as i32, &mut status, 0) } < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

/// `pid`'s children, from each of its threads' `children` file.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// `pid`'s descendants, children first.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = children(pid);
    let mut i = 0;
    while i < out.len() {
        let more = children(out[i]);
        out.extend(more.into_iter().filter(|p| !out.contains(p)).collect::<Vec<_>>());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_exact_filter;

    #[test]
    fn one_test_is_an_exact_name_and_nothing_else_that_selects() {
        let f = |args: &[&str]| {
            let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            one_exact_filter(&bytes)
        };
        assert_eq!(f(&["--exact", "m::t", "--nocapture"]).as_deref(), Some("m::t"));
        assert_eq!(f(&["m::t", "--exact", "--ignored"]).as_deref(), Some("m::t"));
        assert_eq!(f(&["--exact", "m::t", "--test-threads", "1"]).as_deref(), Some("m::t"));
        assert_eq!(f(&["m::t", "--nocapture"]), None, "a substring filter");
        assert_eq!(f(&["--exact", "a", "b"]), None, "two filters");
        assert_eq!(f(&["--exact", "a", "--skip", "b"]), None);
        assert_eq!(f(&["--exact", "a", "--list"]), None);
        assert_eq!(f(&["--exact"]), None);
        assert_eq!(f(&["--exact", "a", "--test-threads"]), None, "a value missing");
    }
}
