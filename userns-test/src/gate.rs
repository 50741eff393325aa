//! The gate every annotated test passes first: observe and diagnose (once
//! per process), decide, and run, skip with one line on stderr, or fail.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::Ability;
use crate::diagnosis::{self, Live};
use crate::policy::{ConfigError, Decision, Settings};
use crate::probe::{Observation, ProbeOptions, observe};
use crate::verdict::{Status, Verdict};

/// The settings, read once per process.
pub fn settings() -> Result<&'static Settings, &'static ConfigError> {
    static SETTINGS: OnceLock<Result<Settings, ConfigError>> = OnceLock::new();
    SETTINGS.get_or_init(Settings::from_env).as_ref()
}

/// The host's verdict on `ability`, probed at most once per process
/// (concurrent callers wait for the first probe) and only when asked.
///
/// Under nextest (one process per test), an *available* verdict on a
/// costly ability (`net`, `bwrap`, `bwrap_net`, `subids`) found by another
/// process of the same run is reused instead of probing, when everything
/// it depends on (user, capabilities, seccomp, namespaces, boot,
/// executable, settings, ...) is identical, and so is a namespace's once
/// this process has computed that key; `USERNS_TEST_SHARE_VERDICTS=0`
/// turns that off. See the guide's "nextest" page (docs/src/nextest.md).
/// `user` is available without a probe of its own where a namespace's
/// probe found that namespace available: its operations begin with
/// `user`'s.
///
/// This is the host's truth: `USERNS_TEST_DENY` does not change it (see
/// [`decide`] for the policy). A malformed `USERNS_TEST_PROBE_TIMEOUT_MS`
/// or `USERNS_TEST_BWRAP` makes every verdict unavailable with that error.
pub fn probe(ability: Ability) -> &'static Verdict {
    VERDICTS.of(ability).get_or_init(|| match settings() {
        Ok(s) => seen_on_the_way(ability).unwrap_or_else(|| assess_or_share(ability, s)),
        Err(e) => misconfigured_verdict(ability, e),
    })
}

/// `user`'s verdict where this process already found available an
/// ability whose probe runs `user`'s operations first
/// ([`Ability::probe_runs_user_first`]): its probe (or the probe of another
/// process of the run under the same key, see [`crate::shared`]) ran
/// `user`'s operations and went past them. An observation, not a guess,
/// and one child fewer (0.3 ms) for a test needing `net` or `mount`.
fn seen_on_the_way(ability: Ability) -> Option<Verdict> {
    if ability != Ability::User {
        return None;
    }
    Ability::ALL
        .iter()
        .any(|&a| a.probe_runs_user_first() && probed(a).is_some_and(Verdict::is_available))
        .then(|| Verdict {
            ability,
            status: Status::Available,
            note: None,
            duration: Default::default(),
        })
}

/// This process's verdicts, one cell per ability.
static VERDICTS: Cells<Verdict> = Cells::new();

/// The verdict on `ability` if this process has already found it: what
/// decided a test, without probing anew (a probe now would see what the
/// test has done to the process since).
pub(crate) fn probed(ability: Ability) -> Option<&'static Verdict> {
    VERDICTS.of(ability).get()
}

linux! {
    /// The verdict another process of this run found, where one may be
    /// reused, else this process's own (then offered to the others).
    fn assess_or_share(ability: Ability, s: &'static Settings) -> Verdict {
        use crate::shared::{Shared, worth_sharing};
        // The cheap probes cost less than the key a shared verdict needs.
        if !worth_sharing(ability) {
            return assess(ability, s);
        }
        match Shared::get(s) {
            Some(shared) => shared.lookup(ability).unwrap_or_else(|| {
                let verdict = assess(ability, s);
                shared.record(&verdict);
                verdict
            }),
            None => assess(ability, s),
        }
    }
}

elsewhere! {
    /// Off Linux a verdict costs nothing to find: nothing is shared.
    fn assess_or_share(ability: Ability, s: &'static Settings) -> Verdict {
        assess(ability, s)
    }
}

/// What probing `ability` observed, at most once per process. Diagnoses
/// look at other abilities' observations (a refused `pid` asks whether
/// `user` worked), so they are cached apart from the verdicts; an
/// observation never waits for a verdict, so the two caches cannot wait
/// on each other.
fn observation(ability: Ability, settings: &Settings) -> &'static Observation {
    static OBSERVATIONS: Cells<Observation> = Cells::new();
    OBSERVATIONS
        .of(ability)
        .get_or_init(|| observe(ability, &settings.probe))
}

/// One cell per ability, filled once: a fixed table for the abilities
/// without a parameter, and cells made on first use for the
/// parameterised ones a binary names (a handful, kept for its life).
struct Cells<T: 'static> {
    fixed: [OnceLock<T>; Ability::ALL.len()],
    named: Mutex<Vec<(Ability, &'static OnceLock<T>)>>,
}

impl<T> Cells<T> {
    const fn new() -> Self {
        Cells {
            fixed: [const { OnceLock::new() }; Ability::ALL.len()],
            named: Mutex::new(Vec::new()),
        }
    }

    fn of(&'static self, ability: Ability) -> &'static OnceLock<T> {
        if let Some(i) = ability.index() {
            return &self.fixed[i];
        }
        let mut named = self.named.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, cell)) = named.iter().find(|(a, _)| *a == ability) {
            return cell;
        }
        let cell: &'static OnceLock<T> = Box::leak(Box::new(OnceLock::new()));
        named.push((ability, cell));
        cell
    }
}

/// The verdict on `ability`: its cached observation, diagnosed with the
/// other cached observations as evidence.
fn assess(ability: Ability, settings: &'static Settings) -> Verdict {
    let evidence = Live {
        timeout: settings.probe.timeout,
        observe: &|a| observation(a, settings).clone(),
    };
    diagnosis::assess(observation(ability, settings).clone(), &evidence)
}

/// Probes and diagnoses `ability` now, without the per-process cache: the
/// probe runs again, and so does any other probe its diagnosis looks at
/// (each at most once per call).
pub fn probe_with(ability: Ability, options: &ProbeOptions) -> Verdict {
    let seen: RefCell<Vec<Observation>> = RefCell::new(Vec::new());
    let observe_once = |a: Ability| {
        if let Some(o) = seen.borrow().iter().find(|o| o.ability == a) {
            return o.clone();
        }
        let o = observe(a, options);
        seen.borrow_mut().push(o.clone());
        o
    };
    let evidence = Live {
        timeout: options.timeout,
        observe: &observe_once,
    };
    diagnosis::assess(observe_once(ability), &evidence)
}

linux! {
    /// The reason `ability` is unavailable where `failed` is what its
    /// operation met: diagnosed as its probe's failure would be, with this
    /// process's observations as evidence.
    pub(crate) fn diagnose(ability: Ability, failed: &crate::probe::Failed) -> crate::Reason {
        let options = match settings() {
            Ok(s) => s.probe.clone(),
            Err(_) => ProbeOptions::default(),
        };
        let evidence = Live {
            timeout: options.timeout,
            observe: &|a| match settings() {
                Ok(s) => observation(a, s).clone(),
                Err(_) => observe(a, &options),
            },
        };
        diagnosis::reason(ability, failed, &evidence)
    }
}

/// The Landlock ABI version the running kernel reports
/// (`landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`,
/// asked in the `landlock` probe's child, once per process): `None` where
/// it did not answer (Landlock not built or not enabled, the call refused
/// by a filter), so that a test can compute what to expect of the kernel
/// it runs on instead of parsing a verdict's note.
///
/// ```
/// match userns_test::landlock_abi() {
///     Some(abi) if abi >= 4 => println!("network rules work here"),
///     Some(abi) => println!("Landlock ABI {abi}: filesystem rules only"),
///     None => println!("no Landlock here"),
/// }
/// ```
pub fn landlock_abi() -> Option<u8> {
    probe(Ability::Landlock)
        .note
        .as_deref()?
        .strip_prefix("Landlock ABI ")?
        .parse()
        .ok()
}

/// The verdicts on every ability, probing those not probed yet.
pub fn abilities() -> Vec<&'static Verdict> {
    Ability::ALL.iter().map(|&a| probe(a)).collect()
}

/// Decides, under the environment's policy, whether a test needing
/// `requirements` runs, is skipped, or fails.
///
/// # Example
/// ```
/// use userns_test::{Ability, Decision, decide};
///
/// match decide(&[Ability::Root]) {
///     Decision::Run => println!("privileged path"),
///     other => println!("unprivileged path: {other:?}"),
/// }
/// ```
pub fn decide(requirements: &[Ability]) -> Decision {
    match settings() {
        Ok(s) => Decision::make(requirements, s, probe),
        Err(e) => Decision::Misconfigured(e.clone()),
    }
}

fn misconfigured_verdict(ability: Ability, e: &ConfigError) -> Verdict {
    Verdict {
        ability,
        status: Status::Unavailable(diagnosis::misconfigured(e.variable, e.to_string())),
        note: None,
        duration: Default::default(),
    }
}

/// Runs the gate for the test `test_path` (`module_path!()::name`, shown
/// as libtest names it, without the crate name): `true` to run it, `false`
/// when it is skipped (after printing the skip line); panics, at the
/// test's location, when it must fail.
#[track_caller]
pub fn gate(test_path: &str, requirements: &[Ability]) -> bool {
    crate::plain::gated(test_path, requirements);
    gate_decided(test_path, decide(requirements))
}

/// [`gate`] for an `#[in_userns]` test: where its user namespace cannot be
/// made, a run as the privileged caller is weighed (see the guide's
/// `#[in_userns]`).
#[track_caller]
pub fn in_userns_gate(
    test_path: &str,
    requirements: &[Ability],
    entering: &crate::in_userns::Entering,
) -> bool {
    crate::plain::gated(test_path, requirements);
    gate_decided(
        test_path,
        crate::in_userns::weigh(decide(requirements), entering),
    )
}

#[track_caller]
fn gate_decided(test_path: &str, decision: Decision) -> bool {
    let path = test_path;
    // The name libtest and nextest show: the path without the crate name.
    let test_path = crate::registry::libtest_name_of(test_path);
    let failure = match decision {
        Decision::Run => return true,
        Decision::Skip(unmet) => {
            crate::plain::skipped(path, &unmet);
            // What failed; each cause and fix follow once, in the summary
            // after libtest's result.
            write_stderr(&format!(
                "userns-test: skipped {test_path}: {}\n",
                crate::text::one_line(&unmet.brief())
            ));
            return false;
        }
        Decision::Fail(unmet) => format!(
            "userns-test: {test_path} failed: USERNS_TEST_REQUIRE requires what this host \
             lacks: {}",
            crate::text::one_line(&unmet.to_string())
        ),
        Decision::Misconfigured(e) => format!(
            "userns-test: {test_path} failed: {}",
            crate::text::one_line(&e.to_string())
        ),
    };
    crate::plain::failed_before_running(path, &failure);
    panic!("{failure}")
}

/// Reports a test as skipped for a reason outside the abilities (say, a
/// tool it drives is not installed), with the same line as an unmet
/// requirement. The caller returns right after.
///
/// ```
/// if std::process::Command::new("some-tool").arg("--version").output().is_err() {
///     userns_test::skip(module_path!(), "some-tool is not installed");
///     return;
/// }
/// ```
pub fn skip(test_path: &str, reason: &str) {
    write_stderr(&format!(
        "userns-test: skipped {test_path}: {}\n",
        crate::text::one_line(reason)
    ));
}

/// Writes straight to the stderr descriptor: libtest captures `eprintln!`
/// but not the descriptor, so the line reaches the terminal.
fn write_stderr(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// How a skipped `#[should_panic]` test ends under libtest, which passes
/// such a test only when it panics: it unwinds with a payload holding the
/// expected text, without calling the panic hook (no "panicked" message).
pub fn skip_expected_panic(expected: Option<&str>) -> ! {
    let payload = match expected {
        Some(e) => format!("userns-test: skipped, requirements unmet (expected panic: {e})"),
        None => "userns-test: skipped, requirements unmet".to_owned(),
    };
    std::panic::resume_unwind(Box::new(payload))
}

/// What an annotated test returns when it is skipped.
pub trait SkipReturn {
    /// The value meaning "nothing ran, nothing failed".
    fn skipped() -> Self;
}

impl SkipReturn for () {
    fn skipped() -> Self {}
}

impl<E> SkipReturn for Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}
