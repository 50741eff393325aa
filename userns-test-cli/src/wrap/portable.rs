//! The wrapped command off Linux: started and waited for with the
//! standard library alone. Without Linux's signalfd, pidfds and child
//! subreaper there is no passing a cancelling signal on to the command's
//! tree: a signal that ends this process ends it without reports, as the
//! guide says (docs/src/environment.md, "Other systems").

use std::ffi::OsString;
use std::time::Duration;

use super::Ended;

/// Runs `args` with `env` added and returns how it ended.
pub(crate) fn run_command(
    args: &[OsString],
    env: &[(&str, &OsString)],
    _grace: Duration,
) -> Result<Ended, String> {
    let name = args[0].to_string_lossy().into_owned();
    let mut command = std::process::Command::new(&args[0]);
    command.args(&args[1..]);
    for (k, v) in env {
        command.env(k, v);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot start `{name}`: {e}"))?;
    Ok(Ended {
        code: exit_code(&status),
        cancelled: None,
    })
}

/// The exit status, or 128 + the signal that ended it on Unix.
fn exit_code(status: &std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(status) {
        return 128 + sig;
    }
    1
}
