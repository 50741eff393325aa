//! Control calls: evidence of *who* refused a call.
//!
//! A probe sees that `unshare(CLONE_NEWNET)` failed with EPERM; it cannot
//! see whether a seccomp filter answered before the kernel looked at the
//! call, or the kernel (a capability check, an LSM hook) refused it. A
//! control repeats the call, in the same state (the same namespaces, made
//! by the same steps), with an argument the kernel rejects before any
//! permission check: the kernel's argument error back means the call
//! reached the kernel, so no filter refuses it; the probe's errno back
//! means a filter does. The control runs in a probe child (it inherits the
//! calling thread's filters), so a filter that kills on the call kills the
//! child, not the test process.

linux! {
    use std::time::Duration;

    use super::child::{ChildEnd, run_child};
    use super::program::{Control, Op};
    use crate::Ability;
    use crate::step::Step;
}

/// What a control call says about the failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterCheck {
    /// The kernel judged the call's arguments: no filter refuses it.
    Reached,
    /// The call was refused with this errno before the kernel looked at
    /// it: a filter (seccomp) refuses it.
    Refused(i32),
    /// A signal (SIGSYS) killed the process making the call.
    Killed(i32),
    /// The control could not say: the step has none, or its child could
    /// not be created or did not get as far as the control.
    Unknown,
}

linux! {
    // Linux only: elsewhere no probe runs, so there is nothing to control.
    /// Runs the control call for `step` of `ability`'s probe: the probe's own
    /// steps up to that one, then the control instead of it.
    pub fn check(ability: Ability, step: &Step, timeout: Duration) -> FilterCheck {
        let (flags, ops) = super::perform::program(ability);
        // The probe child itself failed to be created with namespace flags
        // (pid's clone): the control is a clone with the same flags.
        if let Step::Clone { .. } = step {
            if flags & (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0 {
                return FilterCheck::Unknown;
            }
            return run(vec![Op::Control(Control::Clone(flags))], 0, timeout);
        }
        let found = ops.iter().enumerate().find_map(|(i, op)| {
            (0..4)
                .find(|&phase| op.step(phase) == *step)
                .and_then(|phase| op.control(phase))
                .map(|control| (i, control))
        });
        let Some((index, control)) = found else {
            return FilterCheck::Unknown;
        };
        let mut ops = ops;
        ops.truncate(index);
        ops.push(Op::Control(control));
        run(ops, flags, timeout)
    }

    fn run(ops: Vec<Op>, flags: libc::c_int, timeout: Duration) -> FilterCheck {
        let last = ops.len() - 1;
        let Some(Op::Control(control)) = ops.last() else {
            return FilterCheck::Unknown;
        };
        let expected = control.kernel_errno();
        match run_child(&ops, flags, timeout, |_, _| ()) {
            Ok((run, ())) if run.op != last => FilterCheck::Unknown,
            Ok((run, ())) => match run.end {
                ChildEnd::Killed(signal) => FilterCheck::Killed(signal),
                ChildEnd::Exited(_) if run.errno == expected => FilterCheck::Reached,
                ChildEnd::Exited(_) if run.errno != 0 => FilterCheck::Refused(run.errno),
                _ => FilterCheck::Unknown,
            },
            Err(_) => FilterCheck::Unknown,
        }
    }
}
