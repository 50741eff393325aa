//! Select: the tests of this binary the command line asks for, by
//! libtest's rules (filters, `--exact`, `--skip`), and the abilities they
//! need.

use std::collections::BTreeSet;

use libtest_mimic::{Arguments, Trial};

use crate::Ability;
use crate::registry::{TestCase, collected};

/// The collected tests in name order, each with whether it is selected.
pub(super) struct Selection<'a> {
    pub cases: &'a [&'static TestCase],
    pub selected: Vec<bool>,
}

impl<'a> Selection<'a> {
    pub(super) fn of(args: &Arguments, cases: &'a [&'static TestCase]) -> Self {
        Selection {
            cases,
            selected: cases.iter().map(|c| is_selected(args, c)).collect(),
        }
    }

    /// The selected cases, with their index.
    pub(super) fn chosen(&self) -> impl Iterator<Item = (usize, &'static TestCase)> + '_ {
        self.cases
            .iter()
            .zip(&self.selected)
            .enumerate()
            .filter(|(_, (_, sel))| **sel)
            .map(|(i, (c, _))| (i, *c))
    }

    /// The union of what the selected tests require.
    pub(super) fn needed(&self) -> BTreeSet<Ability> {
        self.chosen()
            .flat_map(|(_, c)| c.requires.iter().copied())
            .collect()
    }
}

/// Every annotated test of the binary, in name order; for nextest's
/// one-test process, only the test it runs: it reads neither the
/// filtered-out count nor the other tests' records, so a test's process
/// does not cost more (sort, plans, trials, records) for every test of its
/// binary. (libtest's line then counts 0 filtered out.)
pub(super) fn collect(args: &Arguments, one_test: bool) -> Vec<&'static TestCase> {
    let mut cases: Vec<&'static TestCase> = collected()
        .filter(|c| !one_test || is_selected(args, c))
        .collect();
    // Names are unique, so an unstable sort gives the one name order.
    cases.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    cases
}

/// Whether the command line selects `case` (by name: filters, `--exact`,
/// `--skip`), judged as if it were flagged ignored, so that `--ignored`
/// does not hide tests whose flag depends on a probe not yet run.
fn is_selected(args: &Arguments, case: &TestCase) -> bool {
    // No name filter: every test is in (a trial flagged ignored is kept
    // under `--ignored` too), and building one per test to ask costs.
    if args.filter.is_none() && args.skip.is_empty() {
        return true;
    }
    // Under `--exact`, a test whose name the filter does not contain is
    // out, without building a trial for it: one test's process under
    // nextest asks this of every test of the binary.
    if args.exact
        && let Some(filter) = &args.filter
        && !filter.contains(case.name())
    {
        return false;
    }
    let probe = Trial::test(case.name(), || Ok(())).with_ignored_flag(true);
    !args.is_filtered_out(&probe)
}
