//! Verdicts: whether the host allows an ability, and if not, why.

use std::fmt;
use std::time::Duration;

use crate::json::Json;

use crate::Ability;
use crate::cause::Cause;
use crate::failure::Failure;
use crate::step::Step;

/// The answer of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The ability probed.
    pub ability: Ability,
    /// Available, or not and why.
    pub status: Status,
    /// A fact the probe learned on the way, e.g. `Landlock ABI 6`.
    pub note: Option<String>,
    /// How long the probe took.
    pub duration: Duration,
}

/// Whether an ability is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The operation worked on this host.
    Available,
    /// The operation failed; the reason says where, how, why and what to do.
    Unavailable(Reason),
}

/// Why an ability is unavailable: what was tried, what failed, the cause
/// found in the host facts, and the narrowest remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The operation that failed.
    pub step: Step,
    /// How it failed.
    pub failure: Failure,
    /// What about this host explains it.
    pub cause: Cause,
    /// What to do about it, narrowest change first.
    pub remedy: String,
}

impl Reason {
    /// `step failed: failure`, without cause and remedy.
    pub fn short(&self) -> String {
        match self.failure {
            Failure::Denied | Failure::Unreadable { .. } => self.failure.to_string(),
            Failure::Mismatch { ref found } if self.step == Step::CheckSystem => {
                format!("the system is {found}")
            }
            _ => format!("{} failed: {}", self.step, self.failure),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; cause: {}; fix: {}",
            self.short(),
            self.cause,
            self.remedy
        )
    }
}

impl Verdict {
    /// The verdict as reports and `doctor --json` show it: `ability`,
    /// `verdict` (`available` or `unavailable`), for an unavailable one
    /// `step`, `failure`, `cause`, `remedy`, `failed` (the one line
    /// `<step> failed: <failure>`) and `root_cause` (its id), then `note`
    /// and `probe_us`.
    pub fn to_json(&self) -> Json {
        let mut out = Json::object([("ability", Json::from(self.ability.name()))]);
        out = match &self.status {
            Status::Available => out.with("verdict", "available"),
            Status::Unavailable(r) => out
                .with("verdict", "unavailable")
                .with("step", r.step.to_json())
                .with("failure", r.failure.to_json())
                .with("cause", r.cause.to_json())
                .with("remedy", &r.remedy)
                .with("failed", r.short())
                .with(
                    "root_cause",
                    crate::root_cause::id(r.cause.id(), &r.cause.to_string(), &r.remedy),
                ),
        };
        out.with_some("note", self.note.as_deref()).with(
            "probe_us",
            self.duration.as_micros().min(u64::MAX as u128) as u64,
        )
    }

    /// Whether the host allows the ability.
    pub fn is_available(&self) -> bool {
        matches!(self.status, Status::Available)
    }

    /// `yes`, or `yes (note)` when the probe learned something on the way.
    pub fn yes_with_note(&self) -> String {
        match &self.note {
            Some(n) => format!("yes ({n})"),
            None => "yes".into(),
        }
    }

    /// The reason, when unavailable.
    pub fn reason(&self) -> Option<&Reason> {
        match &self.status {
            Status::Available => None,
            Status::Unavailable(r) => Some(r),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            Status::Available => write!(f, "{}: {}", self.ability, self.yes_with_note()),
            Status::Unavailable(r) => write!(f, "{}: no: {r}", self.ability),
        }
    }
}
