//! `#[in_userns]` off Linux: its tests never get past the gate (the
//! namespaces' abilities are unavailable, with the system as the cause),
//! so no process is ever executed to enter namespaces. The entry points
//! the attribute's code calls exist, and say so if they are reached.

use super::Entering;

/// Never a child here: no process is executed to enter namespaces.
pub fn is_child_for(_: &str) -> bool {
    false
}

/// Nothing to do before `main`.
pub fn enter(
    _: std::ffi::c_int,
    _: *const *const std::ffi::c_char,
    _: *const *const std::ffi::c_char,
    _: &'static super::BeforeMain,
    _: usize,
) {
}

/// Nothing to do in a `main` of its own.
pub fn child_main() {}

/// Not reached ([`is_child_for`] is false); runs the body in this
/// process if it ever is, and exits with its outcome.
pub fn run_body(_: &str, _: bool, body: fn() -> Result<(), String>) -> ! {
    match std::panic::catch_unwind(body) {
        Ok(Ok(())) => std::process::exit(0),
        _ => std::process::exit(101),
    }
}

/// The test cannot run in namespaces on this system: why, as its failure.
/// (The gate skips such a test first; this is reached only if it let one
/// through.)
#[track_caller]
pub fn run(
    _: &str,
    name: &str,
    _: &Entering,
    _: bool,
    _: fn() -> Result<(), String>,
) -> Result<(), String> {
    Err(format!(
        "userns-test: {name} cannot run in namespaces: {}",
        crate::cause::Cause::UnsupportedSystem {
            os: crate::facts::system_name()
        }
    ))
}

/// No zygote here.
pub fn zygote_pid() -> Option<u32> {
    None
}
