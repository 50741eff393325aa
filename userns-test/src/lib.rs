//! Run tests that need Linux user namespaces where the host allows them,
//! and skip them, with the precise cause and fix, where it does not.
//!
//! ```
//! use userns_test::requires_userns;
//!
//! // Runs where this host lets an unprivileged process create a network
//! // namespace with a working loopback; elsewhere it returns at once and
//! // prints, past libtest's output capture:
//! // userns-test: skipped loopback_works: needs net: unshare(...) failed: ...
//! // and, after libtest's result, how many of its "ok" were skips and
//! // each cause with its fix, once.
//! #[requires_userns(net)]
//! fn loopback_works() {
//!     // ... the test's own unshare(CLONE_NEWUSER | CLONE_NEWNET) ...
//! }
//!
//! // Code can also ask for a verdict and decide by hand:
//! let verdict = userns_test::probe(userns_test::Ability::User);
//! match verdict.reason() {
//!     None => println!("user namespaces work here"),
//!     Some(reason) => println!("no user namespaces: {reason}"),
//! }
//! ```
//!
//! # Three ways in
//! **Plain mode**, above: annotated tests under libtest's own harness.
//!
//! **The runner**, for a whole target built with `harness = false`: skips
//! are decided before the run and shown as ignored with their reasons
//! (nextest shows them as SKIP), then the host's matrix:
//!
//! ```no_run
//! // tests/jailer.rs; in Cargo.toml: [[test]] name = "jailer", harness = false
//! #[userns_test::requires_userns(mount, cap_sys_admin)]
//! fn jailer_creates_isolated_mount_namespace() {}
//!
//! #[userns_test::test] // no requirement, still collected
//! fn parses_config() {}
//!
//! userns_test::main!();
//! ```
//!
//! **`#[in_userns]`**: the body runs as root of a fresh user namespace,
//! inside the namespaces it lists, in a process of its own (skipped like
//! `#[requires_userns]` where the host cannot make them):
//!
//! ```no_run
//! #[userns_test::in_userns(net, mount)]
//! fn binds_port_80() {
//!     std::net::TcpListener::bind("127.0.0.1:80").unwrap();
//! }
//! ```
//!
//! The guide (`docs/src/` in the source repository, an mdBook) says which
//! abilities to choose, the causes and fixes by host, the reports for CI,
//! nextest, what `#[in_userns]` cannot do, and what it all costs.
//!
//! # How it works
//! Each [`Ability`] names an operation a test performs (`user`, `net`,
//! `mount`, `cap_setpcap`, `bwrap`, ...). Its probe performs that same
//! operation in a throwaway child created with `clone(2)` (sharing memory,
//! so the cost does not grow with the test process), once per process, on
//! first use, and records what happened (an [`Observation`]). An
//! unavailable ability carries a [`Reason`]: the [`Step`] that failed, the
//! errno or exit status ([`Failure`]), the [`Cause`] and a remedy, narrowest
//! first. The cause is found from evidence ([`diagnosis`]): the
//! [`HostFacts`], what the probes of related abilities observed, and
//! control calls that tell a seccomp filter's refusal from the kernel's.
//! Abilities refused for one reason share one root cause, which summaries
//! and reports show once.
//!
//! # Policy
//! Set by the environment (see [`policy`]): by default an unmet
//! requirement skips the test; `USERNS_TEST_REQUIRE=all` (or a list) fails
//! it instead, for CI runners that must run everything;
//! `USERNS_TEST_DENY=net,bwrap` makes abilities count as unavailable, to
//! exercise skip paths on a permissive host.
//!
//! # The attribute
//! [`requires_userns`] works with or without an explicit `#[test]`, on
//! tests returning `()` or `Result<(), E>`, and on `async` tests under
//! `#[tokio::test]` or any other test attribute:
//!
//! ```
//! # use userns_test::requires_userns;
//! // An explicit #[test] (or #[tokio::test], #[rstest], ...) may follow the
//! // attribute; without one, #[requires_userns] adds #[test] itself.
//! #[requires_userns(user, mount)]
//! fn mounts_tmpfs() -> Result<(), std::io::Error> {
//!     Ok(())
//! }
//! ```
//!
//! # Inside namespaces
//! [`in_userns`](macro@in_userns) runs a test's body as root of a fresh user namespace,
//! inside the namespaces it lists (`net`, `mount`, `pid`, `uts`, `ipc`,
//! `cgroup`, `time`), in a process of its own ([`mod@in_userns`]): the
//! test binary executed again for that test, which enters them before
//! `main`. Their abilities are its requirements, so it skips like
//! [`requires_userns`] where the host cannot provide them.
//!
//! # The runner and reports
//! In a `harness = false` target, [`main!`] runs every annotated test of
//! the binary with `libtest-mimic`: skips are decided before the run and
//! reported as *ignored, with the reason* (so `cargo nextest run` shows
//! SKIP), and a summary of the host's abilities and the skips by cause
//! follows the run ([`runner`]).
//!
//! Reports (JSON, JUnit, Markdown, GitHub annotations) are written by the
//! `userns-test` command (the `userns-test-cli` package), never by a test
//! process: `userns-test run -- cargo test` (or `userns-test nextest`)
//! runs the tests and writes them complete afterwards, with
//! `USERNS_TEST_REPORT_JSON` and `USERNS_TEST_JUNIT` naming the files. The
//! test processes only record, in small formats of their own, each test as
//! it starts and ends, so that a test whose process crashes is reported as
//! crashed, and a report says only what was observed.
//!
//! # Other systems
//! The crate builds everywhere a test suite does. Off Linux (and on Linux
//! architectures other than x86_64, aarch64 and riscv64) nothing is probed:
//! every ability is unavailable with one cause, the system, and one fix
//! (run these tests on a Linux runner), so annotated tests are skipped
//! there and fail under `USERNS_TEST_REQUIRE`. Its Linux-only dependencies
//! (`nix`, `libc`) are not built there.
//!
//! # What is stable
//! The attributes, [`main!`], the functions re-exported at the root and
//! the types they return are this crate's API. The modules `__private`
//! (code the attributes generate) and `__cli` (what the `userns-test`
//! command reads and writes) are not: they change with the macros and the
//! command of the same version.

#![warn(missing_docs)]
// Off Linux, what reads Linux's evidence (`/proc`, sysctls, the probes'
// namespace constants) is compiled, so that it stays portable code, and
// left unused: every verdict there has one cause. The Linux build checks
// it for dead code.
#![cfg_attr(
    not(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        ),
        not(userns_test_unsupported_os)
    )),
    allow(dead_code)
)]

/// Items of the Linux build, where the probes run: x86_64, aarch64 and
/// riscv64 (the probe child's raw system calls are written for these;
/// glibc and musl alike). Other architectures build what other systems
/// build. Not when built with
/// `--cfg userns_test_unsupported_os`: that builds, on Linux, what every
/// other system builds, so CI checks it compiles with the standard library
/// alone.
macro_rules! linux {
    ($($item:item)*) => {
        $( #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"), not(userns_test_unsupported_os)))] $item )*
    };
}

/// Whether this is the build [`linux!`] items belong to, for code that
/// decides at run time rather than by item.
pub(crate) const LINUX_BUILD: bool = cfg!(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    not(userns_test_unsupported_os)
));

/// Items of every other build: every ability unavailable, one cause.
macro_rules! elsewhere {
    ($($item:item)*) => {
        $( #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"), not(userns_test_unsupported_os))))] $item )*
    };
}

// The vocabulary every layer shares.
pub mod ability;
pub mod capability;
pub mod cause;
pub mod failure;
pub mod step;

// Host facts and probes -> verdicts -> diagnosis -> root causes -> policy.
pub mod diagnosis;
pub mod facts;
pub mod policy;
pub mod probe;
mod root_cause;
pub mod verdict;

// The gate, the runner, and the records the command makes reports from.
mod gate;
pub mod in_userns;
mod json;
mod outcome;
mod plain;
mod record;
mod registry;
pub mod runner;
mod safe_fs;
linux! {
    mod shared;
}
mod text;

pub use ability::{Ability, KernelVersion, UnknownAbility};
pub use cause::Cause;
pub use facts::HostFacts;
pub use failure::Failure;
pub use gate::{abilities, decide, landlock_abi, probe, probe_with, settings, skip};
pub use in_userns::Namespace;
pub use policy::{ConfigError, Decision, Settings, Unmet};
pub use probe::{Observation, ProbeOptions, observe};
pub use step::Step;
pub use verdict::{Reason, Status, Verdict};

/// Marks a test as needing abilities of the host; see the crate docs.
///
/// `#[requires_userns(net, cap_sys_admin)]`: the test runs where every
/// listed ability is available, and is skipped with its reason otherwise
/// (or fails, under `USERNS_TEST_REQUIRE`). Unknown or repeated names are
/// compile errors.
pub use userns_test_macros::requires_userns;

/// A test with no requirements, collected by the runner like the annotated
/// ones (a plain `#[test]` under the default harness).
pub use userns_test_macros::test;

/// Runs the test body as root of a fresh user namespace (the caller's
/// uid and gid mapped to 0), inside the listed namespaces (`net` with
/// `lo` up, `mount` with `/` private, `pid` with a fresh `/proc`, `uts`,
/// `ipc`, `cgroup`, `time`), in a process of its own: the test binary
/// executed again for exactly that test. The namespaces' abilities are
/// its requirements: where the host lacks one, the test is skipped with
/// the cause and fix as `#[requires_userns]` skips it. It makes the
/// function a test (write it above `#[test]` or a runtime's test
/// attribute, if any) and combines with `#[requires_userns(...)]`.
///
/// ```no_run
/// #[userns_test::in_userns(net, mount)]
/// fn binds_port_80_and_mounts_a_tmpfs() {
///     std::net::TcpListener::bind("127.0.0.1:80").unwrap();
///     std::process::Command::new("mount")
///         .args(["-t", "tmpfs", "none", "/mnt"])
///         .status()
///         .unwrap();
/// }
/// ```
///
/// The body's stdout and stderr are the test's output; its panic, `Err`,
/// a signal that killed it, or a time-out past
/// `USERNS_TEST_IN_USERNS_TIMEOUT` seconds (600 unless set; 0 for none)
/// fail the test. A failure naming EPERM or EINVAL gains a line naming
/// the user namespace's limit that may apply (capabilities that count only
/// in the initial user namespace, ids outside the map).
///
/// `ids = N` maps uids and gids 0 to N-1 (0 to the caller, the rest from
/// its `/etc/subuid` and `/etc/subgid` ranges, by `newuidmap` and
/// `newgidmap`), with setgroups allowed; it implies the `subids`
/// requirement, except for root, which maps its own ids where it has no
/// range. Without it, uid and gid 0 alone are mapped.
///
/// Where no user namespace can be made but the test process holds
/// CAP_SYS_ADMIN, the namespaces are entered without one and the body
/// runs there as the caller; `#[requires_userns(user)]` beside the
/// attribute insists on a user namespace.
///
/// ```no_run
/// #[userns_test::in_userns(mount, ids = 65536)]
/// fn files_of_several_owners() {
///     std::fs::write("/tmp/f", b"x").unwrap();
///     std::os::unix::fs::chown("/tmp/f", Some(1000), Some(1000)).unwrap();
/// }
/// ```
pub use userns_test_macros::in_userns;

/// The entry point of a `harness = false` test target: collects every
/// annotated test of the binary, probes what the selected tests need, runs
/// them with `libtest-mimic`, and prints the host's ability matrix and the
/// skips by root cause. See [`runner`].
///
/// It also reads the target's source files (this one and the module files
/// it declares): a function there that the runner would never run - a
/// plain `#[test]` (a `harness = false` target is not built with
/// `--test`), a test attribute written above `#[requires_userns]`, a test
/// with parameters - is a compile error that lists each with what to write
/// instead. Items under `#[cfg(test)]` are collected like the others: cargo
/// passes `--cfg test` to every test target, `harness = false` included. `main!(warn_uncollected)` compiles
/// anyway and lists them after every run.
///
/// ```no_run
/// userns_test::main!();
/// ```
pub use userns_test_macros::main;

/// Not public API: used by the code the attribute macros generate.
#[doc(hidden)]
pub mod __private {
    pub use crate::gate::{SkipReturn, gate, in_userns_gate, skip_expected_panic};
    pub use crate::in_userns::{BeforeMain, Entering};
    linux! {
        pub use crate::in_userns::child::{
            child_main as in_userns_child_main, is_child_for as in_userns_child,
            run_body as in_userns_body,
        };
        pub use crate::in_userns::enter::enter_test as in_userns_enter;
        pub use crate::in_userns::parent::run as in_userns_run;
        pub use crate::in_userns::zygote::zygote_pid as in_userns_zygote_pid;
    }
    elsewhere! {
        pub use crate::in_userns::unsupported::{
            child_main as in_userns_child_main, enter as in_userns_enter,
            is_child_for as in_userns_child, run as in_userns_run, run_body as in_userns_body,
            zygote_pid as in_userns_zygote_pid,
        };
    }
    pub use crate::plain::Running;
    pub use crate::registry::{IntoOutcome, TestCase, TestResult, libtest_name};
    pub use crate::runner::run_main_noting as run_main;
    pub use inventory;
}

/// Not public API: what the `userns-test` command (package
/// `userns-test-cli`) uses to read a run's records, group causes and write
/// reports safely. It changes with the command; nothing outside this
/// workspace should use it.
#[doc(hidden)]
pub mod __cli {
    pub use crate::json::Json;
    pub use crate::policy::{DurationUnit, duration};
    pub use crate::record::ledger::{
        FLAG_DETAIL, FLAG_RAN_DESPITE_UNMET, Ledger, LedgerKind, NONE, SlotState, SlotView,
    };
    pub use crate::record::store::{
        RunDir, RunKey, RunMeta, Store, alive, binary_of_key, ci_job, is_over, this_process,
    };
    pub use crate::record::{
        Destinations, JSON_VAR, JUNIT_VAR, RUN_DIR_VAR, ReportError, WrappedRun, append_file,
        begin_wrapped_run, replace_file, said_once, store_of,
    };
    pub use crate::root_cause::{RootCause, RootCauses, id as root_cause_id, write_block};
    pub use crate::safe_fs::{Dir, FsError, Problem};
    pub use crate::text::{cut, lines, one_line, rfc3339, stderr_color};
}
