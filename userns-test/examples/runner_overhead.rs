//! Benchmark: what the runner costs a suite, against the alternatives.
//!
//! `cargo run --release -p userns-test --example runner_overhead`
//! (options: `--tests 200,2000`, `--runs 21`, `--dir PATH`, `--reuse`)
//!
//! Generates the same suite four ways, each a package of its own with its
//! own target directory, so builds and crate counts are independent:
//!
//! - **userns-test runner**: `harness = false`, `userns_test::main!()`;
//!   half the tests `#[requires_userns(user)]` (met), half
//!   `#[requires_userns(bwrap)]` with `USERNS_TEST_BWRAP` naming a file
//!   that does not exist (unmet: the real probe runs and finds nothing to
//!   execute);
//! - **userns-test plain mode**: the same tests under libtest's own
//!   harness (`cargo test` without a `main`);
//! - **test-with**: its runtime runner (`test_with::runner!`,
//!   `#[test_with::module]`), half the tests `#[runtime_executable(sh)]`
//!   (met), half `#[runtime_executable(<missing tool>)]` (unmet), with only the
//!   `runtime` and `executable` features (its smallest configuration for this);
//! - **libtest**: the default harness, half the tests plain, half
//!   `#[ignore = "..."]` (decided at compile time, the floor for the run).
//!
//! Each package is built from clean (`cargo build --tests`, dev profile, as
//! `cargo test` builds it) after its dependencies are fetched, timing the
//! build, counting the crates compiled and weighing the test binary. Then
//! every binary is run
//! `--runs` times, interleaved so that drift on the machine hits all three
//! alike, with output to `/dev/null`; the figure is the median wall time of
//! the whole binary. Before timing, one run of each is checked to pass half
//! the tests and skip the other half, so the suites measured are the
//! suites described.
//!
//! Then, per size, one test per process as nextest runs them
//! (`met_00000 --exact --nocapture` in nextest's environment, this process
//! named `cargo-nextest` as nextest's is, median of at least 51 runs,
//! interleaved), and for userns-test one test needing `net` (a second test binary
//! of the package, `costly`, so the suite above stays as described) with
//! the verdict its listing shared and with `USERNS_TEST_SHARE_VERDICTS=0`:
//! what sharing saves on an ability dearer than the key. For the first
//! size, the userns-test suite under
//! `cargo test` and `cargo nextest run`, without reports and under
//! `userns-test run` writing JSON, JUnit and a step summary.
//!
//! Last, the targets of issue 23, each met or missed by how much: no more
//! crates and no slower a clean build than test-with; the runner's whole
//! binary and one test's process no slower than test-with's; plain mode's
//! one test's process within libtest's + 0.5 ms, its whole binary within
//! 1.2x libtest's.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Framework {
    UsernsTest,
    Plain,
    TestWith,
    Libtest,
}

impl Framework {
    const ALL: [Framework; 4] = [
        Framework::UsernsTest,
        Framework::Plain,
        Framework::TestWith,
        Framework::Libtest,
    ];

    fn label(self) -> &'static str {
        match self {
            Framework::UsernsTest => "userns-test runner",
            Framework::Plain => "userns-test plain mode",
            Framework::TestWith => "test-with runtime runner",
            Framework::Libtest => "libtest #[ignore]",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Framework::UsernsTest => "userns-test",
            Framework::Plain => "userns-test-plain",
            Framework::TestWith => "test-with",
            Framework::Libtest => "libtest",
        }
    }

    fn is_userns_test(self) -> bool {
        matches!(self, Framework::UsernsTest | Framework::Plain)
    }
}

struct Options {
    sizes: Vec<usize>,
    runs: usize,
    dir: PathBuf,
    reuse: bool,
    /// Tests in the report-cost suite; 0 to skip that part.
    report_tests: usize,
    report_runs: usize,
}

fn parse_options() -> Result<Options, String> {
    use lexopt::prelude::*;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("CARGO_MANIFEST_DIR has no parent")?
        .to_path_buf();
    let mut options = Options {
        sizes: vec![200],
        runs: 21,
        dir: workspace.join("target/runner-overhead"),
        reuse: false,
        report_tests: 5000,
        report_runs: 9,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("tests") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let value = value.to_string_lossy();
                if value.trim() == "0" {
                    options.sizes = Vec::new();
                    continue;
                }
                options.sizes = value
                    .split(',')
                    .map(|n| match n.trim().parse::<usize>() {
                        Ok(n) if n >= 2 && n % 2 == 0 => Ok(n),
                        _ => Err(format!(
                            "--tests: `{n}` is not an even number of tests >= 2"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            Long("runs") => options.runs = count(&mut parser, "--runs", 1)?,
            Long("dir") => options.dir = parser.value().map_err(|e| e.to_string())?.into(),
            Long("reuse") => options.reuse = true,
            Long("report-tests") => {
                options.report_tests = count(&mut parser, "--report-tests", 0)?;
                if !options.report_tests.is_multiple_of(2) {
                    return Err("--report-tests: an even number (0 to skip)".into());
                }
            }
            Long("report-runs") => options.report_runs = count(&mut parser, "--report-runs", 1)?,
            Long("help") | Short('h') => {
                println!(
                    "runner_overhead [--tests 200,2000] [--runs 21] [--dir PATH] [--reuse]\n\
                     \x20               [--report-tests 5000] [--report-runs 9]\n\n\
                     --reuse keeps earlier builds (no build figures); --report-tests 0 skips the \
                     report cost."
                );
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(options)
}

/// The next value, a whole number of at least `min`.
fn count(parser: &mut lexopt::Parser, option: &str, min: usize) -> Result<usize, String> {
    let value = parser.value().map_err(|e| e.to_string())?;
    match value.to_string_lossy().trim().parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "{option}: `{}` is not a whole number of at least {min}",
            value.to_string_lossy()
        )),
    }
}

/// A generated suite: one package, its own workspace and target directory.
struct Suite {
    framework: Framework,
    tests: usize,
    root: PathBuf,
}

impl Suite {
    fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    fn generate(&self, userns_test_path: &Path, lockfile: &Path) -> Result<(), String> {
        let name = format!("bench-{}-{}", self.framework.slug(), self.tests);
        let half = self.tests / 2;
        let (dependency, harness, source) = match self.framework {
            Framework::UsernsTest => (
                format!("userns-test = {{ path = {:?} }}", userns_test_path.display().to_string()),
                false,
                userns_test_source(half),
            ),
            Framework::Plain => (
                format!("userns-test = {{ path = {:?} }}", userns_test_path.display().to_string()),
                true,
                plain_source(half),
            ),
            Framework::TestWith => (
                r#"test-with = { version = "0.17", default-features = false, features = ["runtime", "executable"] }"#.to_string(),
                false,
                test_with_source(half),
            ),
            Framework::Libtest => (String::new(), true, libtest_source(half)),
        };
        let mut manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dev-dependencies]\n{dependency}\n\n\
             [[test]]\nname = \"suite\"\npath = \"tests/suite.rs\"\nharness = {harness}\n"
        );
        if self.framework == Framework::UsernsTest {
            manifest.push_str(
                "\n[[test]]\nname = \"costly\"\npath = \"tests/costly.rs\"\nharness = false\n",
            );
        }
        std::fs::create_dir_all(self.root.join("tests"))
            .map_err(|e| io_error("create", &self.root, e))?;
        std::fs::create_dir_all(self.root.join("src"))
            .map_err(|e| io_error("create", &self.root, e))?;
        write(&self.manifest(), &manifest)?;
        write(&self.root.join("src/lib.rs"), "")?;
        write(&self.root.join("tests/suite.rs"), &source)?;
        if self.framework == Framework::UsernsTest {
            write(&self.root.join("tests/costly.rs"), &costly_source())?;
        }
        // The userns-test suites resolve to the versions this workspace
        // tests with; cargo drops the entries it does not need.
        if self.framework.is_userns_test() && !self.root.join("Cargo.lock").exists() {
            std::fs::copy(lockfile, self.root.join("Cargo.lock"))
                .map_err(|e| io_error("copy", lockfile, e))?;
        }
        Ok(())
    }
}

const BODY: &str = "assert_eq!(std::hint::black_box(2_u32) + 2, 4);";
const MISSING_TOOL: &str = "userns-test-bench-missing-tool";

fn userns_test_source(half: usize) -> String {
    let mut s = String::new();
    for i in 0..half {
        let _ = writeln!(
            s,
            "#[userns_test::requires_userns(user)]\nfn met_{i:05}() {{ {BODY} }}"
        );
        let _ = writeln!(
            s,
            "#[userns_test::requires_userns(bwrap)]\nfn unmet_{i:05}() {{ {BODY} }}"
        );
    }
    s.push_str("userns_test::main!();\n");
    s
}

/// The same tests under libtest's harness: `#[requires_userns]` adds
/// `#[test]`.
fn plain_source(half: usize) -> String {
    let mut s = String::new();
    for i in 0..half {
        let _ = writeln!(
            s,
            "#[userns_test::requires_userns(user)]\nfn met_{i:05}() {{ {BODY} }}"
        );
        let _ = writeln!(
            s,
            "#[userns_test::requires_userns(bwrap)]\nfn unmet_{i:05}() {{ {BODY} }}"
        );
    }
    s
}

/// One test needing `net`, whose probe (a network stack set up and torn
/// down) costs more than a shared verdict's key.
fn costly_source() -> String {
    format!(
        "#[userns_test::requires_userns(net)]\nfn net_00000() {{ {BODY} }}\nuserns_test::main!();\n"
    )
}

fn test_with_source(half: usize) -> String {
    let mut s = String::from("test_with::runner!(suite);\n#[test_with::module]\nmod suite {\n");
    for i in 0..half {
        let _ = writeln!(
            s,
            "#[test_with::runtime_executable(sh)]\nfn met_{i:05}() {{ {BODY} }}"
        );
        let _ = writeln!(
            s,
            "#[test_with::runtime_executable({MISSING_TOOL})]\nfn unmet_{i:05}() {{ {BODY} }}"
        );
    }
    s.push_str("}\n");
    s
}

fn libtest_source(half: usize) -> String {
    let mut s = String::new();
    for i in 0..half {
        let _ = writeln!(s, "#[test]\nfn met_{i:05}() {{ {BODY} }}");
        let _ = writeln!(
            s,
            "#[test]\n#[ignore = \"needs {MISSING_TOOL}\"]\nfn unmet_{i:05}() {{ {BODY} }}"
        );
    }
    s
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    // Rewriting an unchanged file would make cargo rebuild under --reuse.
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents).map_err(|e| io_error("write", path, e))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

struct Build {
    binary: PathBuf,
    /// The userns-test package's `costly` test binary.
    costly: Option<PathBuf>,
    /// Clean build time, or `None` under `--reuse`.
    seconds: Option<f64>,
    /// Crates compiled by a clean build, the suite's own package excluded.
    crates: Option<usize>,
    /// The test binary's size in bytes.
    size: u64,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn build(suite: &Suite, reuse: bool) -> Result<Build, String> {
    let manifest = suite.manifest();
    // Fetch first so the timed build measures compilation, not the network.
    let status = cargo()
        .args(["fetch", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .status()
        .map_err(|e| format!("running cargo fetch: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo fetch for {} failed: {status}",
            manifest.display()
        ));
    }
    let clean = !reuse || !suite.target_dir().exists();
    if clean && suite.target_dir().exists() {
        std::fs::remove_dir_all(suite.target_dir())
            .map_err(|e| io_error("remove", &suite.target_dir(), e))?;
    }
    let started = Instant::now();
    let output = cargo()
        .args([
            "build",
            "--tests",
            "--message-format",
            "json",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(suite.target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo build: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!(
            "cargo build for {} failed: {}",
            manifest.display(),
            output.status
        ));
    }
    let mut packages = BTreeSet::new();
    let mut binary = None;
    let mut costly = None;
    for line in output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let message: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("cargo's JSON message: {e}"))?;
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let Some(id) = message["package_id"].as_str() {
            packages.insert(id.to_string());
        }
        if let Some(path) = message["executable"].as_str() {
            match message["target"]["name"].as_str() {
                Some("suite") => binary = Some(PathBuf::from(path)),
                Some("costly") => costly = Some(PathBuf::from(path)),
                _ => {}
            }
        }
    }
    let binary =
        binary.ok_or_else(|| format!("no `suite` test binary in {}", manifest.display()))?;
    let size = std::fs::metadata(&binary)
        .map_err(|e| io_error("examine", &binary, e))?
        .len();
    Ok(Build {
        size,
        binary,
        costly,
        seconds: clean.then_some(seconds),
        // All packages but the suite itself.
        crates: clean.then(|| packages.len().saturating_sub(1)),
    })
}

fn suite_command(framework: Framework, binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for var in [
        "USERNS_TEST_REQUIRE",
        "USERNS_TEST_DENY",
        "USERNS_TEST_SHARE_VERDICTS",
        "NEXTEST_RUN_ID",
        "RUST_TEST_THREADS",
        "NO_COLOR",
    ] {
        command.env_remove(var);
    }
    if framework.is_userns_test() {
        command.env("USERNS_TEST_BWRAP", format!("/nonexistent/{MISSING_TOOL}"));
    }
    command
}

/// One run with its output read back: the suite must pass half its tests
/// and skip the other half, or the figures would describe something else.
fn check_shape(framework: Framework, binary: &Path, tests: usize) -> Result<(), String> {
    let output = suite_command(framework, binary)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Under libtest's harness a skip is an "ok" the summary counts after.
    let (expected, also) = match framework {
        Framework::Plain => (
            format!("test result: ok. {tests} passed; 0 failed; 0 ignored"),
            format!(
                "{0} of the {tests} tests under userns-test that libtest reported ok were skipped",
                tests / 2
            ),
        ),
        _ => (
            format!(
                "test result: ok. {0} passed; 0 failed; {0} ignored",
                tests / 2
            ),
            String::new(),
        ),
    };
    if !output.status.success() || !stdout.contains(&expected) || !stderr.contains(&also) {
        return Err(format!(
            "{} suite of {tests}: expected `{expected}`, got exit {} and:\n{}{}",
            framework.label(),
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn wall_time(
    framework: Framework,
    binary: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Duration, String> {
    let started = Instant::now();
    let status = suite_command(framework, binary)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(format!("{} exited with {status}", binary.display()));
    }
    Ok(elapsed)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    if let Err(message) = run() {
        eprintln!("runner_overhead: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let options = parse_options()?;
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lockfile = crate_dir
        .parent()
        .ok_or("CARGO_MANIFEST_DIR has no parent")?
        .join("Cargo.lock");
    // nextest's test processes are its children: a userns-test binary
    // knows a nextest run by its run id *and* a `cargo-nextest` parent, so
    // this process takes that name for the one-test-per-process figures.
    name_this_process("cargo-nextest")?;
    println!(
        "runner overhead: {} runs per suite, median wall time of the whole test binary (dev profile)",
        options.runs
    );
    for &tests in &options.sizes {
        let mut builds = Vec::new();
        for framework in Framework::ALL {
            let suite = Suite {
                framework,
                tests,
                root: options.dir.join(format!("{}-{tests}", framework.slug())),
            };
            suite.generate(crate_dir, &lockfile)?;
            eprintln!("building {} suite of {tests} tests ...", framework.label());
            let build = build(&suite, options.reuse)?;
            check_shape(framework, &build.binary, tests)?;
            builds.push((framework, build));
        }
        let whole = interleaved(&builds, options.runs, &[], &[])?;
        println!(
            "\n{tests} tests, {} skipped by an unmet requirement:",
            tests / 2
        );
        println!(
            "  {:<26} {:>10} {:>12} {:>8} {:>10}",
            "", "wall (ms)", "clean build", "crates", "binary"
        );
        for ((framework, build), median) in builds.iter().zip(&whole) {
            println!(
                "  {:<26} {:>10.2} {:>12} {:>8} {:>7.1} MB",
                framework.label(),
                median.as_secs_f64() * 1e3,
                build.seconds.map_or("-".into(), |s| format!("{s:.1} s")),
                build.crates.map_or("-".into(), |c| c.to_string()),
                build.size as f64 / 1e6,
            );
        }
        // One process per test, as nextest runs them: one passing test
        // that needs `user` (a runtime_executable(sh) test, a plain test),
        // in nextest's environment, after the run's `--list` as in a real
        // nextest run (`user` is probed in every process all the same: its
        // probe costs less than a shared verdict's key).
        let run_id = format!("runner-overhead-{}-{tests}", std::process::id());
        let nextest_env = [("NEXTEST_RUN_ID", run_id.as_str())];
        let unshared_env = [
            ("NEXTEST_RUN_ID", run_id.as_str()),
            ("USERNS_TEST_SHARE_VERDICTS", "0"),
        ];
        for (framework, build) in &builds {
            wall_time(
                *framework,
                &build.binary,
                &["--list", "--format", "terse"],
                &nextest_env,
            )?;
        }
        let one = interleaved(
            &builds,
            options.runs.max(51),
            &["met_00000", "--exact", "--nocapture"],
            &nextest_env,
        )?;
        println!("  one test per process (met_00000 --exact --nocapture, under `cargo-nextest`):");
        for ((framework, _), median) in builds.iter().zip(&one) {
            println!(
                "    {:<26} {:>8.2} ms",
                framework.label(),
                median.as_secs_f64() * 1e3,
            );
        }
        if let Some(costly) = &builds[0].1.costly {
            costly_per_process(costly, options.runs.max(51), &nextest_env, &unshared_env)?;
        }
        targets(&builds, &whole, &one);
    }
    if options.report_tests > 0 {
        report_cost(&options, crate_dir, &lockfile)?;
    }
    Ok(())
}

/// Runs every binary `runs` times with `args` and `env`, rotating the
/// order so that no suite always runs first and drift hits all alike;
/// the median of each.
fn interleaved(
    builds: &[(Framework, Build)],
    runs: usize,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Vec<Duration>, String> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); builds.len()];
    for run in 0..runs {
        for k in 0..builds.len() {
            let index = (run + k) % builds.len();
            let (framework, build) = &builds[index];
            samples[index].push(wall_time(*framework, &build.binary, args, env)?);
        }
    }
    Ok(samples.into_iter().map(median).collect())
}

/// Issue 23's targets, each met or missed, with the figures.
fn targets(builds: &[(Framework, Build)], whole: &[Duration], one: &[Duration]) {
    let at = |f: Framework| {
        builds
            .iter()
            .position(|(g, _)| *g == f)
            .expect("every framework is built")
    };
    let (runner, plain, test_with, libtest) = (
        at(Framework::UsernsTest),
        at(Framework::Plain),
        at(Framework::TestWith),
        at(Framework::Libtest),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut lines: Vec<(bool, String)> = Vec::new();
    if let (Some(ours), Some(theirs)) = (builds[runner].1.crates, builds[test_with].1.crates) {
        lines.push((
            ours <= theirs,
            format!("crates compiled: {ours}, test-with {theirs}"),
        ));
    }
    if let (Some(ours), Some(theirs)) = (builds[runner].1.seconds, builds[test_with].1.seconds) {
        lines.push((
            ours <= theirs,
            format!("clean build: {ours:.1} s, test-with {theirs:.1} s"),
        ));
    }
    lines.push((
        whole[runner] <= whole[test_with],
        format!(
            "runner, whole binary: {:.2} ms, test-with {:.2} ms ({:.2}x)",
            ms(whole[runner]),
            ms(whole[test_with]),
            ms(whole[runner]) / ms(whole[test_with])
        ),
    ));
    lines.push((
        one[runner] <= one[test_with],
        format!(
            "runner, one test's process: {:.2} ms, test-with {:.2} ms ({:.2}x)",
            ms(one[runner]),
            ms(one[test_with]),
            ms(one[runner]) / ms(one[test_with])
        ),
    ));
    lines.push((
        ms(one[plain]) <= ms(one[libtest]) + 0.5,
        format!(
            "plain mode, one test's process: {:.2} ms, libtest {:.2} ms (+{:.2} ms; at most +0.5)",
            ms(one[plain]),
            ms(one[libtest]),
            ms(one[plain]) - ms(one[libtest])
        ),
    ));
    lines.push((
        ms(whole[plain]) <= 1.2 * ms(whole[libtest]),
        format!(
            "plain mode, whole binary: {:.2} ms, libtest {:.2} ms ({:.2}x; at most 1.2x)",
            ms(whole[plain]),
            ms(whole[libtest]),
            ms(whole[plain]) / ms(whole[libtest])
        ),
    ));
    println!("  targets:");
    for (met, line) in lines {
        println!("    {} {line}", if met { "met   " } else { "MISSED" });
    }
}

/// Sets this process's name (its `comm`, as `/proc/PID/stat` shows it).
fn name_this_process(name: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16
    // bytes (longer ones are cut) from a pointer valid for the call.
    let r = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    if r != 0 {
        return Err(format!(
            "naming this process: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// One `net` test per process, with the verdict the binary's listing
/// shared and probing in every process.
fn costly_per_process(
    binary: &Path,
    runs: usize,
    shared: &[(&str, &str)],
    probing: &[(&str, &str)],
) -> Result<(), String> {
    let args = ["--exact", "net_00000"];
    let output = suite_command(Framework::UsernsTest, binary)
        .args(args)
        .envs(probing.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    if !String::from_utf8_lossy(&output.stdout).contains("1 passed") {
        println!("  one `net` test per process: skipped, `net` is unavailable on this host");
        return Ok(());
    }
    wall_time(Framework::UsernsTest, binary, &["--list"], shared)?;
    let mut figures = Vec::new();
    for env in [shared, probing] {
        let samples = (0..runs)
            .map(|_| wall_time(Framework::UsernsTest, binary, &args, env))
            .collect::<Result<Vec<_>, _>>()?;
        figures.push(median(samples).as_secs_f64() * 1e3);
    }
    println!(
        "  one `net` test per process (userns-test, --exact net_00000): {:.2} ms with the \
         verdict its listing shared, {:.2} ms probing in every process ({:.2}x)",
        figures[0],
        figures[1],
        figures[0] / figures[1]
    );
    Ok(())
}

/// Report cost at scale: a suite of `tests` runner tests (half skipped by
/// an unmet requirement), in a package of its own, run under `cargo test`
/// and under `cargo nextest run`, two ways each: without reports, and with
/// the JSON report, JUnit and a step summary written after the run by
/// `userns-test run` (the command, built optimised). Each variant's
/// reports are checked once (every test counted, none unknown) before
/// timing; the figure is the median wall time of the whole command.
fn report_cost(options: &Options, crate_dir: &Path, lockfile: &Path) -> Result<(), String> {
    let tests = options.report_tests;
    let root = options.dir.join(format!("reports-{tests}"));
    std::fs::create_dir_all(root.join("tests")).map_err(|e| io_error("create", &root, e))?;
    std::fs::create_dir_all(root.join("src")).map_err(|e| io_error("create", &root, e))?;
    write(
        &root.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"bench-reports-{tests}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dev-dependencies]\nuserns-test = {{ path = {:?} }}\n\n\
             [[test]]\nname = \"suite\"\npath = \"tests/suite.rs\"\nharness = false\n",
            crate_dir.display().to_string()
        ),
    )?;
    write(&root.join("src/lib.rs"), "")?;
    write(&root.join("tests/suite.rs"), &userns_test_source(tests / 2))?;
    if !root.join("Cargo.lock").exists() {
        std::fs::copy(lockfile, root.join("Cargo.lock"))
            .map_err(|e| io_error("copy", lockfile, e))?;
    }
    let cli = build_cli(crate_dir)?;
    let nextest = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let reports = root.join("reports");
    let manifest = root.join("Cargo.toml");
    let target = root.join("target");
    let cargo_test: Vec<String> = vec![
        "cargo".into(),
        "test".into(),
        "-q".into(),
        "--test".into(),
        "suite".into(),
        "--manifest-path".into(),
        manifest.display().to_string(),
        "--target-dir".into(),
        target.display().to_string(),
    ];
    let cargo_nextest: Vec<String> = [
        "cargo",
        "nextest",
        "run",
        "--cargo-quiet",
        "--status-level",
        "none",
        "--final-status-level",
        "none",
        "--manifest-path",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        manifest.display().to_string(),
        "--target-dir".into(),
        target.display().to_string(),
    ])
    .collect();
    let run_one =
        |command: &[String], with_reports: bool, wrapped: bool| -> Result<Duration, String> {
            let _ = std::fs::remove_dir_all(&reports);
            std::fs::create_dir_all(&reports).map_err(|e| io_error("create", &reports, e))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&reports, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error("chmod", &reports, e))?;
            let mut argv: Vec<String> = Vec::new();
            if wrapped {
                argv.extend([cli.display().to_string(), "run".into(), "--".into()]);
            }
            argv.extend(command.iter().cloned());
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..])
                .env("USERNS_TEST_BWRAP", format!("/nonexistent/{MISSING_TOOL}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for var in [
                "USERNS_TEST_REQUIRE",
                "USERNS_TEST_DENY",
                "USERNS_TEST_REPORT_JSON",
                "USERNS_TEST_JUNIT",
                "GITHUB_STEP_SUMMARY",
                "GITHUB_ACTIONS",
                "NEXTEST_RUN_ID",
                "USERNS_TEST_RUN_DIR",
            ] {
                c.env_remove(var);
            }
            if with_reports {
                c.env("USERNS_TEST_REPORT_JSON", reports.join("report.json"))
                    .env("USERNS_TEST_JUNIT", reports.join("junit.xml"))
                    .env("GITHUB_STEP_SUMMARY", reports.join("summary.md"));
            }
            let started = Instant::now();
            let status = c
                .status()
                .map_err(|e| format!("running {}: {e}", argv.join(" ")))?;
            let took = started.elapsed();
            if !status.success() {
                return Err(format!("{} failed: {status}", argv.join(" ")));
            }
            Ok(took)
        };
    // Build (and check) each variant once before timing.
    let check = |what: &str| -> Result<(), String> {
        let bytes = std::fs::read(reports.join("report.json"))
            .map_err(|e| format!("{what}: no report: {e}"))?;
        let report: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{what}: {e}"))?;
        let counts = &report["counts"];
        let expected = serde_json::json!(tests / 2);
        if counts["passed"] != expected || counts["skipped"] != expected || counts["unknown"] != 0 {
            return Err(format!(
                "{what}: the report counts {counts}, not {} passed and skipped",
                tests / 2
            ));
        }
        Ok(())
    };
    eprintln!("building the {tests}-test report suite ...");
    run_one(&cargo_test, false, false)?;
    let mut variants: Vec<(String, Vec<String>, bool, bool)> = vec![
        (
            "cargo test, no reports".into(),
            cargo_test.clone(),
            false,
            false,
        ),
        (
            "cargo test, `userns-test run`".into(),
            cargo_test.clone(),
            true,
            true,
        ),
    ];
    if nextest {
        variants.extend([
            (
                "cargo nextest run, no reports".to_owned(),
                cargo_nextest.clone(),
                false,
                false,
            ),
            (
                "cargo nextest run, `userns-test run`".to_owned(),
                cargo_nextest.clone(),
                true,
                true,
            ),
        ]);
    }
    for (label, command, with_reports, wrapped) in &variants {
        run_one(command, *with_reports, *wrapped)?;
        if *with_reports {
            check(label)?;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for run in 0..options.report_runs {
        for k in 0..variants.len() {
            let i = (run + k) % variants.len();
            // nextest runs take seconds: a third as many.
            if variants[i].1[1] == "nextest" && run % 3 != 0 {
                continue;
            }
            let (_, command, with_reports, wrapped) = &variants[i];
            samples[i].push(run_one(command, *with_reports, *wrapped)?);
        }
    }
    println!(
        "\nreport cost, {tests} tests ({} skipped), JSON + JUnit + step summary, median wall time:",
        tests / 2
    );
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    for (i, ((label, _, _, _), m)) in variants.iter().zip(&medians).enumerate() {
        let base = medians[i - i % 2];
        println!(
            "  {label:<40} {:>9.1} ms {:>6.2}x",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    if !nextest {
        println!("  under cargo nextest: skipped, cargo-nextest is not installed");
    }
    Ok(())
}

/// The `userns-test` command, built optimised; its path.
fn build_cli(crate_dir: &Path) -> Result<PathBuf, String> {
    let manifest = crate_dir
        .parent()
        .ok_or("CARGO_MANIFEST_DIR has no parent")?
        .join("userns-test-cli/Cargo.toml");
    let output = cargo()
        .args([
            "build",
            "--release",
            "--quiet",
            "--message-format",
            "json",
            "--bin",
            "userns-test",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("building userns-test: {e}"))?;
    if !output.status.success() {
        return Err(format!("building userns-test failed: {}", output.status));
    }
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "userns-test")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "no userns-test executable in cargo's output".to_owned())
}
