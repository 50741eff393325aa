//! Benchmark: what `#[in_userns(...)]` adds to a one-test process, the
//! way nextest runs every test.
//!
//! `cargo run -p userns-test --example in_userns_nextest_bench [-- RUNS]`
//!
//! Runs `cargo nextest run --stress-count RUNS -j 1` over the empty tests
//! of `tests/fixtures/in_userns_cost.rs` and `in_userns_cost_plain.rs`
//! (dev profile, as `cargo nextest run` builds them), so each iteration
//! starts one process per test, one after the other, and reads nextest's
//! own time for each process (`--message-format libtest-json`: from its
//! start to its exit, in nanoseconds). Prints medians and 90th percentiles
//! (default 40 runs each) and what each adds to the empty plain test of a
//! binary without `#[in_userns]` (nor this crate), and to the same empty
//! test beside them (`empty_plain_beside`, whose binary links this crate
//! as theirs does), paired: the median, over the iterations, of the
//! difference between the test's process and the baseline's of the same
//! iteration (so a slow stretch of the machine weighs on both), with the
//! quartiles of those differences. Needs `cargo-nextest` on `PATH`.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

/// The baseline: `in_userns_cost_plain`'s only test.
const BASELINE: &str = "in_userns_cost_plain::empty_plain";
/// The same empty test in the binary of the `#[in_userns]` tests: what
/// linking this crate costs a process (a larger binary to load and
/// relocate), apart from the attribute.
const BESIDE: &str = "in_userns_cost::empty_plain_beside";

fn main() -> ExitCode {
    let runs: u32 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 40,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: in_userns_nextest_bench [RUNS], RUNS a number above 0");
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["nextest", "run", "-p", "userns-test"])
        .args(["--test", "in_userns_cost", "--test", "in_userns_cost_plain"])
        .args(["-j", "1", "--no-fail-fast", "--stress-count"])
        .arg(runs.to_string())
        .args(["--message-format", "libtest-json"])
        .env("NEXTEST_EXPERIMENTAL_LIBTEST_JSON", "1")
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            eprintln!("could not run `{} nextest`: {e}", cargo.to_string_lossy());
            return ExitCode::FAILURE;
        }
    };
    if !output.status.success() {
        eprintln!(
            "`cargo nextest run` failed ({}); is cargo-nextest installed \
             (`cargo install cargo-nextest --locked`)?\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        return ExitCode::FAILURE;
    }
    // One line per event; a test's name is `crate::binary@stress-N$test`.
    // By test, by iteration.
    let mut samples: BTreeMap<String, BTreeMap<u32, f64>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["type"] != "test" || event["event"] != "ok" {
            continue;
        }
        let (Some(name), Some(seconds)) = (event["name"].as_str(), event["exec_time"].as_f64())
        else {
            continue;
        };
        let binary = name.split('@').next().unwrap_or(name);
        let binary = binary.rsplit("::").next().unwrap_or(binary);
        let test = name.rsplit('$').next().unwrap_or(name);
        let iteration = name
            .split_once("@stress-")
            .and_then(|(_, rest)| rest.split('$').next()?.parse().ok())
            .unwrap_or(0);
        samples
            .entry(format!("{binary}::{test}"))
            .or_default()
            .insert(iteration, seconds * 1e3);
    }
    let (Some(baseline), Some(beside)) =
        (samples.get(BASELINE).cloned(), samples.get(BESIDE).cloned())
    else {
        eprintln!("nextest reported no time for {BASELINE} or {BESIDE}");
        return ExitCode::FAILURE;
    };
    println!(
        "{runs} runs each, one process per test, interleaved; added: paired with the same \
         iteration's {BASELINE} (no crate) and {BESIDE} (same binary), median [quartiles]"
    );
    println!(
        "{:<40} {:>9} {:>9} {:>24} {:>24}",
        "", "median", "p90", "added (no crate)", "added (same binary)"
    );
    let added = |by_iteration: &BTreeMap<u32, f64>, base: &BTreeMap<u32, f64>| {
        let mut d: Vec<f64> = by_iteration
            .iter()
            .filter_map(|(i, t)| Some(t - base.get(i)?))
            .collect();
        if d.is_empty() {
            return "-".to_owned();
        }
        let m = median(&mut d);
        let (q1, q3) = (d[d.len() / 4], d[d.len() * 3 / 4]);
        format!("{m:>5.2} ms [{q1:>5.2}, {q3:>5.2}]")
    };
    for (name, by_iteration) in &samples {
        let mut times: Vec<f64> = by_iteration.values().copied().collect();
        let m = median(&mut times);
        let p90 = times[times.len() * 9 / 10];
        println!(
            "{name:<40} {m:>6.2} ms {p90:>6.2} ms {:>24} {:>24}",
            added(by_iteration, &baseline),
            added(by_iteration, &beside)
        );
    }
    ExitCode::SUCCESS
}

fn median(s: &mut [f64]) -> f64 {
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}
