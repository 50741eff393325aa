//! Tests collected for the runner: every `#[requires_userns]` and
//! `#[userns_test::test]` function of a `harness = false` target registers
//! itself with `inventory` (a constructor run before `main`), whatever
//! module it is in. No list to maintain.

use crate::Ability;

/// One collected test. Built by the attribute macros; not constructed by
/// hand.
#[derive(Debug)]
pub struct TestCase {
    /// `module_path!()::name`, crate name first.
    pub path: &'static str,
    /// The name libtest gives the test: `path` without the crate name
    /// (`mount::creates_ns`, or `creates_ns` at the crate root), so it is
    /// the same under the runner, the default harness and nextest.
    /// Computed at compile time by [`libtest_name`]: the runner asks for it
    /// many times per test, in unoptimised test builds.
    pub name: &'static str,
    /// The abilities it needs.
    pub requires: &'static [Ability],
    /// For an `#[in_userns]` test, what it enters (a privileged caller
    /// may run it without a user namespace).
    pub entering: Option<crate::in_userns::Entering>,
    /// `#[ignore]` (`Some("")`) or `#[ignore = "why"]`.
    pub ignore: Option<&'static str>,
    /// `#[should_panic]`.
    pub should_panic: bool,
    /// `#[should_panic(expected = "...")]`.
    pub expected_panic: Option<&'static str>,
    /// Runs the body; `Err` carries a `Result` test's error (Debug-printed).
    pub run: fn() -> Result<(), String>,
    /// `CARGO_PKG_NAME` and `CARGO_CRATE_NAME` of the test target, where
    /// cargo built it: the binary's name in reports (see
    /// [`TestCase::binary`]).
    pub target: (Option<&'static str>, Option<&'static str>),
    /// What kind of target cargo built it in: `CARGO_BIN_NAME` for a
    /// binary's unit tests, and whether `CARGO_TARGET_TMPDIR` was set (it
    /// is for integration tests and benchmarks only).
    pub target_kind: (Option<&'static str>, bool),
}

impl TestCase {
    /// The name libtest gives the test (see [`TestCase::name`](#structfield.name)).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The binary's name as nextest gives it (its binary id), where cargo
    /// built it: `package` for a library's unit tests,
    /// `package::bin/name` for a binary's, `package::target` for an
    /// integration test, `package::example/name` for an example's. So a
    /// package's unit tests and an integration test named after the
    /// package are two binaries, under every runner.
    pub fn binary(&self) -> Option<String> {
        let (Some(package), Some(target)) = self.target else {
            return None;
        };
        Some(match self.target_kind {
            (Some(bin), _) => format!("{package}::bin/{bin}"),
            (None, true) => format!("{package}::{target}"),
            (None, false) if built_as_example() => format!("{package}::example/{target}"),
            (None, false) => package.to_owned(),
        })
    }
}

/// Whether this executable is an example cargo built for testing (it
/// lives in the profile's `examples/` directory).
fn built_as_example() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|d| d == "examples")
        })
        .unwrap_or(false)
}

/// `path` without its first segment, the crate name: `jailer::mount::x`
/// -> `mount::x`. A `const fn` so the macro's registrations compute it at
/// compile time.
pub const fn libtest_name(path: &'static str) -> &'static str {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b':' && bytes[i + 1] == b':' {
            return path.split_at(i + 2).1;
        }
        i += 1;
    }
    path
}

/// [`libtest_name`] for a path known only at run time.
pub fn libtest_name_of(path: &str) -> &str {
    path.split_once("::").map_or(path, |(_, rest)| rest)
}

inventory::collect!(TestCase);

/// Every collected test of the binary, in no particular order.
pub fn collected() -> impl Iterator<Item = &'static TestCase> {
    inventory::iter::<TestCase>.into_iter()
}

/// What a test body returns, turned into pass or fail.
pub trait IntoOutcome {
    /// `Ok(())` for a pass, `Err(message)` for a failure.
    fn into_outcome(self) -> Result<(), String>;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("Error: {e:?}"))
    }
}

/// What a test body returned, read without consuming it (libtest still
/// needs it): the failure message of an `Err`.
pub trait TestResult {
    /// `None` for a pass, the message of a failure.
    fn failure(&self) -> Option<String>;
}

impl TestResult for () {
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Debug> TestResult for Result<(), E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(|e| format!("Error: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::libtest_name;

    #[test]
    fn libtest_name_drops_the_crate_name() {
        assert_eq!(
            libtest_name("jailer::mount::creates_ns"),
            "mount::creates_ns"
        );
        assert_eq!(libtest_name("jailer::creates_ns"), "creates_ns");
        assert_eq!(libtest_name("creates_ns"), "creates_ns");
        const AT_COMPILE_TIME: &str = libtest_name("suite::net::x");
        assert_eq!(AT_COMPILE_TIME, "net::x");
    }
}
