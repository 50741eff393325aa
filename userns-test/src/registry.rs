//! Tests collected for the runner: every `#[requires_userns]` and
//! `#[userns_test::test]` function of a `harness = false` target lands in
//! one distributed slice, whatever module it is in. No list to maintain.

use crate::Ability;

/// One collected test. Built by the attribute macros; not constructed by
/// hand.
#[derive(Debug)]
pub struct TestCase {
    /// `module_path!()::name`, crate name first.
    pub path: &'static str,
    /// The abilities it needs.
    pub requires: &'static [Ability],
    /// `#[ignore]` (`Some("")`) or `#[ignore = "why"]`.
    pub ignore: Option<&'static str>,
    /// `#[should_panic]`.
    pub should_panic: bool,
    /// `#[should_panic(expected = "...")]`.
    pub expected_panic: Option<&'static str>,
    /// Runs the body; `Err` carries a `Result` test's error (Debug-printed).
    pub run: fn() -> Result<(), String>,
}

impl TestCase {
    /// The name libtest gives the test: its module path without the crate
    /// name (`mount::creates_ns`, or `creates_ns` at the crate root), so it
    /// is the same under the runner, the default harness and nextest.
    pub fn name(&self) -> &'static str {
        self.path
            .split_once("::")
            .map_or(self.path, |(_, rest)| rest)
    }
}

/// Every collected test of the binary.
#[linkme::distributed_slice]
pub static TESTS: [TestCase];

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
