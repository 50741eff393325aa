//! Benchmark: what `#[in_userns(...)]` adds to a test.
//!
//! `cargo run --release -p userns-test --example in_userns_bench [-- RUNS]`
//!
//! An empty test body, run as a plain test runs it (a direct call), and
//! through `#[in_userns]` with each namespace set: the test binary (this
//! one) executed again under a supervisor, the namespaces entered before
//! `main`, the body run and its outcome sent back, output relayed. And the
//! floor of any re-execution: this binary started again doing nothing
//! (`std::process::Command`, no namespaces, no supervisor). Medians and
//! 90th percentiles of RUNS runs each (default 200), interleaved.

use std::time::{Duration, Instant};

use userns_test::Namespace;

#[userns_test::in_userns]
fn empty_user() {}

#[userns_test::in_userns(net)]
fn empty_net() {}

#[userns_test::in_userns(mount)]
fn empty_mount() {}

#[userns_test::in_userns(net, mount)]
fn empty_net_mount() {}

#[userns_test::in_userns(pid)]
fn empty_pid() {}

fn plain_body() {}

const FLOOR_VAR: &str = "IN_USERNS_BENCH_FLOOR";

fn main() {
    // This binary executed again: for the floor, or to run one test in
    // its namespaces (what the runner's `main` does first).
    if std::env::var_os(FLOOR_VAR).is_some() {
        return;
    }
    userns_test::__private::in_userns_child_main();

    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("RUNS is a number"))
        .unwrap_or(200);
    type Case = (&'static str, Box<dyn Fn()>);
    type Body = fn() -> Result<(), String>;
    // Forked by the zygote, or (`exec`) this binary executed again.
    let in_userns = |name: &'static str,
                     namespaces: &'static [Namespace],
                     body: Body,
                     exec: bool|
     -> Box<dyn Fn()> {
        Box::new(move || {
            // SAFETY: this benchmark's only thread sets it, between runs.
            unsafe {
                std::env::set_var(
                    userns_test::in_userns::EXEC_VAR,
                    if exec { "1" } else { "0" },
                )
            };
            let path = format!("in_userns_bench::{name}");
            let entering = userns_test::__private::Entering {
                namespaces,
                ids: 1,
                user_required: false,
            };
            userns_test::__private::in_userns_run(&path, name, &entering, false, body)
                .expect("the body passes");
        })
    };
    let cases: Vec<Case> = vec![
        ("plain test (direct call)", Box::new(plain_body)),
        (
            "floor: this binary started again",
            Box::new(|| {
                let status = std::process::Command::new("/proc/self/exe")
                    .env(FLOOR_VAR, "1")
                    .status()
                    .expect("start this binary");
                assert!(status.success());
            }),
        ),
        (
            "#[in_userns] (user only)",
            in_userns("empty_user", &[], __userns_test_in_userns_empty_user, false),
        ),
        (
            "#[in_userns(net)]",
            in_userns(
                "empty_net",
                &[Namespace::Net],
                __userns_test_in_userns_empty_net,
                false,
            ),
        ),
        (
            "#[in_userns(mount)]",
            in_userns(
                "empty_mount",
                &[Namespace::Mount],
                __userns_test_in_userns_empty_mount,
                false,
            ),
        ),
        (
            "#[in_userns(net, mount)]",
            in_userns(
                "empty_net_mount",
                &[Namespace::Net, Namespace::Mount],
                __userns_test_in_userns_empty_net_mount,
                false,
            ),
        ),
        (
            "#[in_userns(pid)]",
            in_userns(
                "empty_pid",
                &[Namespace::Pid],
                __userns_test_in_userns_empty_pid,
                false,
            ),
        ),
        (
            "re-executed: #[in_userns] (user only)",
            in_userns("empty_user", &[], __userns_test_in_userns_empty_user, true),
        ),
        (
            "re-executed: #[in_userns(net, mount)]",
            in_userns(
                "empty_net_mount",
                &[Namespace::Net, Namespace::Mount],
                __userns_test_in_userns_empty_net_mount,
                true,
            ),
        ),
    ];
    // Warm up (page cache, the first probe of the dynamic loader).
    for (_, run) in &cases {
        run();
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); cases.len()];
    for _ in 0..runs {
        for (i, (_, run)) in cases.iter().enumerate() {
            let t = Instant::now();
            run();
            samples[i].push(t.elapsed());
        }
    }
    let plain = median(&mut samples[0].clone());
    println!("{runs} runs each, interleaved; added = median - plain test's median");
    println!("{:<40} {:>10} {:>10} {:>10}", "", "median", "p90", "added");
    for ((name, _), s) in cases.iter().zip(samples.iter_mut()) {
        let m = median(s);
        let p90 = s[s.len() * 9 / 10];
        println!(
            "{name:<40} {:>10} {:>10} {:>10}",
            show(m),
            show(p90),
            show(m.saturating_sub(plain))
        );
    }
}

fn median(s: &mut [Duration]) -> Duration {
    s.sort();
    s[s.len() / 2]
}

fn show(d: Duration) -> String {
    if d < Duration::from_micros(10) {
        format!("{} ns", d.as_nanos())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}
