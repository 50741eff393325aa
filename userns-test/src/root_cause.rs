//! Root causes: abilities unavailable for one reason, said once.
//!
//! A cause and its remedy depend on the host, never on the ability that
//! hit it (see [`crate::diagnosis`]), so the abilities a Docker-like
//! seccomp profile refuses all carry the same cause and fix: one root
//! cause, shown once with the abilities it takes and the tests it skipped,
//! wherever the crate prints or writes causes.

use crate::Ability;
use crate::cause::Cause;
use crate::verdict::{Reason, Verdict};

/// One reason abilities are unavailable, with what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCause<'a> {
    /// The cause.
    pub cause: &'a Cause,
    /// Its fix.
    pub remedy: &'a str,
    /// The abilities it makes unavailable, each with what failed
    /// (`<step> failed: <errno>`), in ability order.
    pub abilities: Vec<(Ability, String)>,
    /// The tests it skipped, in the order given.
    pub tests: Vec<&'a str>,
}

impl RootCause<'_> {
    /// The stable id reports use: `<cause id>-<8 hex digits>`.
    pub fn id(&self) -> String {
        id(self.cause.id(), &self.cause.to_string(), self.remedy)
    }

    /// The abilities, by name, comma-separated.
    pub fn ability_names(&self) -> String {
        self.abilities
            .iter()
            .map(|(a, _)| a.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Root causes, collected from verdicts and skipped tests.
#[derive(Debug, Default)]
pub struct RootCauses<'a> {
    groups: Vec<RootCause<'a>>,
}

impl<'a> RootCauses<'a> {
    /// No root cause yet.
    pub fn new() -> Self {
        RootCauses { groups: Vec::new() }
    }

    /// The root causes of `verdicts`' unavailable abilities.
    pub fn of_verdicts(verdicts: impl IntoIterator<Item = &'a Verdict>) -> Self {
        let mut causes = RootCauses::new();
        for v in verdicts {
            if let Some(reason) = v.reason() {
                causes.add_ability(v.ability, reason);
            }
        }
        causes
    }

    fn group(&mut self, reason: &'a Reason) -> &mut RootCause<'a> {
        // Few distinct causes per run: a scan compares structures, where a
        // map would format every reason into its key.
        let i = match self
            .groups
            .iter()
            .position(|g| *g.cause == reason.cause && g.remedy == reason.remedy)
        {
            Some(i) => i,
            None => {
                self.groups.push(RootCause {
                    cause: &reason.cause,
                    remedy: &reason.remedy,
                    abilities: Vec::new(),
                    tests: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }

    /// Counts `ability` as unavailable because of `reason`.
    pub fn add_ability(&mut self, ability: Ability, reason: &'a Reason) {
        let group = self.group(reason);
        if !group.abilities.iter().any(|(a, _)| *a == ability) {
            group.abilities.push((ability, reason.short()));
            group.abilities.sort_by_key(|(a, _)| *a);
        }
    }

    /// Counts `test` as skipped because `ability` is unavailable for
    /// `reason`. Add each test's unmet abilities together, one test after
    /// another: a test lacking two abilities for one cause counts once
    /// (comparing with the last test added keeps this linear in a suite of
    /// thousands of skipped tests).
    pub fn add_skip(&mut self, test: &'a str, ability: Ability, reason: &'a Reason) {
        self.add_ability(ability, reason);
        let group = self.group(reason);
        if group.tests.last() != Some(&test) {
            group.tests.push(test);
        }
    }

    /// The index (from 1) of the root cause of `reason`, for references
    /// such as `C2`; in the order of [`RootCauses::sorted`].
    pub fn number(&self, reason: &Reason) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| *g.cause == reason.cause && g.remedy == reason.remedy)
            .map(|i| i + 1)
    }

    /// `; C<n>`, the reference a matrix row makes to `reason`'s root
    /// cause (empty for a reason not collected): the name every output
    /// of a run gives that cause.
    pub fn reference(&self, reason: &Reason) -> String {
        self.number(reason)
            .map_or(String::new(), |n| format!("; C{n}"))
    }

    /// Every root cause as a block (see [`write_block`]), numbered in
    /// order; `skipped` paints the count of skipped tests.
    pub fn write_blocks(&self, out: &mut String, skipped: &dyn Fn(&str) -> String) {
        for (i, rc) in self.groups.iter().enumerate() {
            write_block(
                out,
                i + 1,
                &rc.cause.to_string(),
                &rc.ability_names(),
                &rc.tests,
                rc.remedy,
                skipped,
            );
        }
    }

    /// Orders the root causes: most skipped tests first, then most
    /// abilities, then by cause id and fix, so that numbers are stable,
    /// and the reports the command writes from the records (which order
    /// theirs by the same keys) give each cause the same `C<n>`.
    pub fn sort(&mut self) {
        self.groups.sort_by(|a, b| {
            b.tests
                .len()
                .cmp(&a.tests.len())
                .then_with(|| b.abilities.len().cmp(&a.abilities.len()))
                .then_with(|| a.cause.id().cmp(b.cause.id()))
                .then_with(|| a.remedy.cmp(b.remedy))
        });
    }

    /// The root causes, in their current order.
    pub fn sorted(&self) -> &[RootCause<'a>] {
        &self.groups
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// How many test names a root cause lists before "and N more".
pub const NAMES_SHOWN: usize = 6;

/// One root cause, as text for a terminal or a CI log: the same block in
/// the runner's summary, `doctor` and `userns-test finish`. Foreign text
/// goes through [`crate::text::one_line`]; `skipped` is painted by the
/// caller (colour on a terminal).
pub fn write_block(
    out: &mut String,
    number: usize,
    message: &str,
    abilities: &str,
    tests: &[&str],
    remedy: &str,
    skipped: &dyn Fn(&str) -> String,
) {
    use crate::text::one_line;
    use std::fmt::Write as _;
    let _ = writeln!(out, "  C{number} {}", one_line(message));
    let _ = writeln!(out, "      abilities: {abilities}");
    if !tests.is_empty() {
        let shown: Vec<String> = tests
            .iter()
            .take(NAMES_SHOWN)
            .map(|n| one_line(n).into_owned())
            .collect();
        let more = tests.len().saturating_sub(NAMES_SHOWN);
        let tail = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "      {}: {}{tail}",
            skipped(&format!("skipped ({})", tests.len())),
            shown.join(", ")
        );
    }
    let _ = writeln!(out, "      fix: {}", one_line(remedy));
}

/// `<cause id>-<8 hex digits of a hash of the cause's words and the fix>`:
/// the same on every runner for the same cause and fix.
pub fn id(cause_id: &str, message: &str, remedy: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in message.bytes().chain([0]).chain(remedy.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{cause_id}-{:08x}", (h >> 32) as u32 ^ h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use crate::step::Step;
    use crate::verdict::Status;

    fn refused(ability: Ability, cause: Cause, remedy: &str) -> Verdict {
        Verdict {
            ability,
            status: Status::Unavailable(Reason {
                step: Step::Unshare {
                    flags: "CLONE_NEWUSER".into(),
                },
                failure: Failure::errno(1),
                cause,
                remedy: remedy.into(),
            }),
            note: None,
            duration: Default::default(),
        }
    }

    #[test]
    fn one_cause_one_group_whatever_the_abilities() {
        let verdicts = [
            refused(Ability::Net, Cause::SeccompRefusesNamespaces, "fix"),
            refused(Ability::User, Cause::SeccompRefusesNamespaces, "fix"),
            refused(
                Ability::Uts,
                Cause::SeccompRefusesCall {
                    call: "sethostname".into(),
                },
                "x",
            ),
        ];
        let mut causes = RootCauses::of_verdicts(&verdicts);
        let reasons: Vec<&Reason> = verdicts.iter().filter_map(Verdict::reason).collect();
        causes.add_skip("t1", Ability::Net, reasons[0]);
        causes.add_skip("t1", Ability::User, reasons[1]);
        causes.add_skip("t2", Ability::Uts, reasons[2]);
        causes.sort();
        let groups = causes.sorted();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].ability_names(), "user, net");
        assert_eq!(groups[0].tests, ["t1"], "one test, counted once");
        assert_eq!(causes.number(reasons[2]), Some(2));
        assert_eq!(groups[0].id(), groups[0].id());
        assert_ne!(groups[0].id(), groups[1].id());
    }
}
