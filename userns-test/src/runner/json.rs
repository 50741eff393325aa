//! libtest's JSON output (`--format json -Z unstable-options`, what
//! cargo2junit-style tools read), written by the runner itself:
//! libtest-mimic writes an ignored test's event without the `message` that
//! libtest gives it, and a skip's reason is what the runner exists to
//! report. The same tests, threads and order of events as libtest-mimic's
//! run; every event is written by this crate's JSON writer
//! ([`crate::json`]), `type` first as libtest writes it.

/// One libtest JSON event: `type` and `event`, then the fields that are
/// set, in libtest's order.
#[derive(Debug, Default)]
struct Event<'a> {
    kind: &'static str,
    event: &'static str,
    name: Option<&'a str>,
    test_count: Option<usize>,
    message: Option<String>,
    stdout: Option<String>,
    passed: Option<u64>,
    failed: Option<u64>,
    ignored: Option<u64>,
    measured: Option<u64>,
    filtered_out: Option<u64>,
    exec_time: Option<f64>,
}

impl Event<'_> {
    fn to_json(&self) -> Json {
        Json::object([
            ("type", Json::from(self.kind)),
            ("event", self.event.into()),
        ])
        .with_some("name", self.name)
        .with_some("test_count", self.test_count)
        .with_some("message", self.message.as_deref())
        .with_some("stdout", self.stdout.as_deref())
        .with_some("passed", self.passed)
        .with_some("failed", self.failed)
        .with_some("ignored", self.ignored)
        .with_some("measured", self.measured)
        .with_some("filtered_out", self.filtered_out)
        .with_some("exec_time", self.exec_time)
    }
}

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use libtest_mimic::{Arguments, Completion, Conclusion, Trial};

use super::execute::Job;
use crate::json::Json;

/// Runs `jobs` as libtest-mimic would, printing libtest's JSON events.
pub(super) fn run(args: &Arguments, jobs: Vec<Job>) -> Conclusion {
    let started = Instant::now();
    let mut conclusion = Conclusion {
        num_filtered_out: 0,
        num_passed: 0,
        num_failed: 0,
        num_ignored: 0,
        num_measured: 0,
    };
    // The same filters as libtest-mimic: by name, and `--ignored`.
    let before = jobs.len();
    let jobs: Vec<Job> = jobs
        .into_iter()
        .filter(|j| !args.is_filtered_out(&probe_trial(j)))
        .collect();
    conclusion.num_filtered_out = (before - jobs.len()) as u64;
    emit(&Event {
        kind: "suite",
        event: "started",
        test_count: Some(jobs.len()),
        ..Event::default()
    });

    let threads = args
        .test_threads
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1);
    let count = |event: &Event, conclusion: &mut Conclusion| match event.event {
        "ok" => conclusion.num_passed += 1,
        "failed" => conclusion.num_failed += 1,
        _ => conclusion.num_ignored += 1,
    };
    if threads <= 1 {
        // On this thread, one after another: announced before it runs.
        for j in jobs {
            emit(&started_event(j.name));
            let event = outcome(args, j);
            count(&event, &mut conclusion);
            emit(&event);
        }
    } else {
        let queue = Mutex::new(jobs.into_iter());
        let (sender, receiver) = std::sync::mpsc::channel::<(&'static str, Event)>();
        std::thread::scope(|s| {
            for _ in 0..threads {
                let sender = sender.clone();
                let queue = &queue;
                s.spawn(move || {
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some(j) = next else { break };
                        let name = j.name;
                        let _ = sender.send((name, outcome(args, j)));
                    }
                });
            }
            drop(sender);
            // As libtest-mimic does, a test of a parallel run is announced
            // when it ends, so that its two events stay together.
            for (name, event) in receiver {
                count(&event, &mut conclusion);
                emit(&started_event(name));
                emit(&event);
            }
        });
    }
    emit(&Event {
        kind: "suite",
        event: if conclusion.num_failed > 0 {
            "failed"
        } else {
            "ok"
        },
        passed: Some(conclusion.num_passed),
        failed: Some(conclusion.num_failed),
        ignored: Some(conclusion.num_ignored),
        measured: Some(0),
        filtered_out: Some(conclusion.num_filtered_out),
        exec_time: Some(started.elapsed().as_secs_f64()),
        ..Event::default()
    });
    conclusion
}

fn started_event(name: &str) -> Event<'_> {
    test_event("started", name)
}

fn test_event<'a>(event: &'static str, name: &'a str) -> Event<'a> {
    Event {
        kind: "test",
        event,
        name: Some(name),
        ..Event::default()
    }
}

/// A stand-in trial with `job`'s name and flag, for libtest-mimic's
/// filters.
fn probe_trial(job: &Job) -> Trial {
    Trial::test(job.name, || Ok(())).with_ignored_flag(job.flagged)
}

/// Runs `job` (unless it is flagged ignored and not asked for) and returns
/// its event: `ok`, `failed` with the message as its `stdout`, or
/// `ignored` with libtest's `message` when there is a reason.
fn outcome(args: &Arguments, job: Job) -> Event<'static> {
    let name = job.name;
    if args.is_ignored(&probe_trial(&job)) {
        return ignored(name, job.ignore_reason);
    }
    // The job catches the test's panic itself; a panic here is the
    // runner's own, reported as the test's failure rather than lost.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.run))
        .unwrap_or_else(|_| Err("the runner panicked while running this test".into()));
    match result {
        Ok(Completion::Completed) => test_event("ok", name),
        Ok(Completion::Ignored { reason }) => ignored(name, reason.as_deref().unwrap_or("")),
        Err(failed) => Event {
            stdout: Some(format!("{}\n", failed.message().unwrap_or(""))),
            ..test_event("failed", name)
        },
    }
}

fn ignored<'a>(name: &'a str, reason: &str) -> Event<'a> {
    Event {
        message: (!reason.is_empty()).then(|| reason.to_owned()),
        ..test_event("ignored", name)
    }
}

/// One event, one line, on stdout.
fn emit(event: &Event) {
    let line = event.to_json().to_text();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
