//! The child's side, once the harness reached the test: run the body and
//! tell the parent how it ended.

use std::io::Write;
use std::sync::Mutex;

use super::record::{Record, send};
use super::{STDOUT_FD, enter::child_test};

/// Whether this process was executed to run `path` in its namespaces.
pub fn is_child_for(path: &str) -> bool {
    child_test() == Some(path)
}

/// The last panic's message and location, from the hook.
static PANIC: Mutex<Option<(String, Option<String>)>> = Mutex::new(None);

/// Runs `body` (the test's body, made synchronous) and exits with its
/// outcome sent to the parent. Its stdout is the parent's pipe from here
/// on; before, the harness's own lines went to `/dev/null`. A panic is
/// told on stderr as libtest tells it, under the test's `name` (the
/// process's main thread may run it), and not at all when `should_panic`
/// expects it; the parent judges the outcome.
pub fn run_body(name: &str, should_panic: bool, body: fn() -> Result<(), String>) -> ! {
    // SAFETY: descriptor operations on this process's own table; the
    // parent placed STDOUT_FD.
    unsafe {
        if libc::dup2(STDOUT_FD, 1) == 1 {
            libc::close(STDOUT_FD);
        }
    }
    run(name, should_panic, body)
}

/// [`run_body`] once stdout is the parent's pipe (a process the zygote
/// forked has it from the start).
pub(crate) fn run(name: &str, should_panic: bool, body: fn() -> Result<(), String>) -> ! {
    let name = name.to_owned();
    std::panic::set_hook(Box::new(move |info| {
        let message = crate::text::panic_payload(info.payload()).to_owned();
        let location = info.location().map(|l| l.to_string());
        if !should_panic {
            let at = location.as_deref().unwrap_or("an unknown location");
            let (text, _) = crate::text::panic_report(&name, at, &message);
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some((message, location));
    }));
    let record = match std::panic::catch_unwind(body) {
        Ok(Ok(())) => Record::Passed,
        Ok(Err(message)) => Record::Failed { message },
        Err(payload) => {
            let (message, location) = PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| (crate::text::panic_payload(&*payload).to_owned(), None));
            Record::Panicked { message, location }
        }
    };
    finish(&record)
}

/// In a `main` of its own (the runner's, a benchmark's): if this process
/// was executed to run a registered test in its namespaces, runs it and
/// exits; otherwise returns.
pub fn child_main() {
    if let Some(path) = child_test() {
        run_registered(path);
    }
}

/// Under the runner: runs the registered test this process was executed
/// for (its entry calls [`run_body`], which does not return).
pub(crate) fn run_registered(path: &str) -> ! {
    if let Some(case) = inventory::iter::<crate::registry::TestCase>().find(|c| c.path == path) {
        let outcome = (case.run)();
        // The entry returned instead of running the body as a child:
        // report what it said.
        finish(&match outcome {
            Ok(()) => Record::Passed,
            Err(message) => Record::Failed { message },
        })
    }
    finish(&Record::NotFound {
        path: path.to_owned(),
    })
}

fn finish(record: &Record) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Only the body's own process records: a process the body forked that
    // comes back here (returning, or unwinding from a panic) ends without
    // a word, with the status of what it did.
    let code = match (send(record), record) {
        (true, _) | (false, Record::Passed) => 0,
        (false, _) => 101,
    };
    // SAFETY: ends the process without the harness's summary, its atexit
    // handlers (plain mode's reports are the parent's) or destructors.
    unsafe { libc::_exit(code) }
}
