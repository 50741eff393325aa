//! libtest's JSON output (`--format json -Z unstable-options`, what
//! cargo2junit-style tools read), written by the runner itself:
//! libtest-mimic writes an ignored test's event without the `message` that
//! libtest gives it, and a skip's reason is what the runner exists to
//! report. The same tests, threads and order of events as libtest-mimic's
//! run; every event is serialized by serde_json, `type` first as libtest
//! writes it.

/// One libtest JSON event.
#[derive(Debug, Default, Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    passed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measured: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filtered_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exec_time: Option<f64>,
}

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use libtest_mimic::{Arguments, Completion, Conclusion, Trial};
use serde::Serialize;

use super::execute::Job;

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
    let Ok(line) = serde_json::to_string(event) else {
        return;
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
