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
//! binary without `#[in_userns]`. Needs `cargo-nextest` on `PATH`.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

/// The baseline: `in_userns_cost_plain`'s only test.
const BASELINE: &str = "in_userns_cost_plain::empty_plain";

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
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
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
        samples
            .entry(format!("{binary}::{test}"))
            .or_default()
            .push(seconds * 1e3);
    }
    let Some(baseline) = samples.get(BASELINE).map(|s| median(&mut s.clone())) else {
        eprintln!("nextest reported no time for {BASELINE}");
        return ExitCode::FAILURE;
    };
    println!("{runs} runs each, one process per test, interleaved; added = median - {BASELINE}'s");
    println!("{:<44} {:>9} {:>9} {:>9}", "", "median", "p90", "added");
    for (name, s) in &mut samples {
        let m = median(s);
        let p90 = s[s.len() * 9 / 10];
        println!(
            "{name:<44} {m:>6.2} ms {p90:>6.2} ms {:>6.2} ms",
            m - baseline
        );
    }
    ExitCode::SUCCESS
}

fn median(s: &mut [f64]) -> f64 {
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}
