//! Policy: what to do with an unmet requirement, set by the environment.
//!
//! - default: skip the test, with its reason;
//! - `USERNS_TEST_REQUIRE=all` or `=net,user,...`: the listed abilities
//!   must be present, and their absence fails the test;
//! - `USERNS_TEST_DENY=net,bwrap,...`: treat these as unavailable, to
//!   exercise skip paths on a permissive host;
//! - `USERNS_TEST_PROBE_TIMEOUT_MS`: the time bound of one probe;
//! - `USERNS_TEST_BWRAP`: the bubblewrap binary to probe.
//!
//! A malformed value is an error naming the variable and the bad word; it
//! is never replaced by a default.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ability::{Ability, closest_name};
use crate::probe::ProbeOptions;
use crate::verdict::{Reason, Verdict};

/// `USERNS_TEST_REQUIRE`
pub const REQUIRE_VAR: &str = "USERNS_TEST_REQUIRE";
/// `USERNS_TEST_DENY`
pub const DENY_VAR: &str = "USERNS_TEST_DENY";
/// `USERNS_TEST_PROBE_TIMEOUT_MS`
pub const TIMEOUT_VAR: &str = "USERNS_TEST_PROBE_TIMEOUT_MS";
/// `USERNS_TEST_BWRAP`
pub const BWRAP_VAR: &str = "USERNS_TEST_BWRAP";
/// `USERNS_TEST_SHARE_VERDICTS`
pub const SHARE_VAR: &str = "USERNS_TEST_SHARE_VERDICTS";
/// `USERNS_TEST_VERBOSE`
pub const VERBOSE_VAR: &str = "USERNS_TEST_VERBOSE";

/// The crate's configuration, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Abilities whose absence fails a test instead of skipping it.
    pub require: BTreeSet<Ability>,
    /// `USERNS_TEST_REQUIRE=all`: every ability, the parameterised ones
    /// (`program(...)`, `landlock(...)`, `cap(...)`, `kernel(...)`)
    /// included.
    pub require_all: bool,
    /// Abilities to treat as unavailable without probing (see
    /// [`Settings::denies`] for what a name covers).
    pub deny: BTreeSet<Ability>,
    /// `USERNS_TEST_DENY=all`.
    pub deny_all: bool,
    /// How probes run.
    pub probe: ProbeOptions,
    /// Under nextest, whether test processes of one run reuse the
    /// available verdicts another process found (`USERNS_TEST_SHARE_VERDICTS`,
    /// `1` by default, `0` to probe in every process). See
    /// [`crate::gate::probe`].
    pub share_verdicts: bool,
    /// Whether a run where nothing was skipped, unavailable or left out
    /// still prints the host line and the ability matrix
    /// (`USERNS_TEST_VERBOSE=1`); by default it prints one line.
    pub verbose: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            require: BTreeSet::new(),
            require_all: false,
            deny: BTreeSet::new(),
            deny_all: false,
            probe: ProbeOptions::default(),
            share_verdicts: true,
            verbose: false,
        }
    }
}

/// A malformed environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// Its whole value.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the settings through `lookup` (the environment, or a map in
    /// tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Settings, ConfigError> {
        let text = |variable: &'static str| -> Result<Option<String>, ConfigError> {
            match lookup(variable) {
                None => Ok(None),
                Some(v) => v.into_string().map(Some).map_err(|v| ConfigError {
                    variable,
                    value: v.to_string_lossy().into_owned(),
                    problem: "not valid UTF-8".into(),
                }),
            }
        };
        let mut settings = Settings::default();
        if let Some(v) = text(REQUIRE_VAR)? {
            (settings.require, settings.require_all) = parse_abilities(REQUIRE_VAR, &v)?;
        }
        if let Some(v) = text(DENY_VAR)? {
            (settings.deny, settings.deny_all) = parse_abilities(DENY_VAR, &v)?;
        }
        if let Some(v) = text(TIMEOUT_VAR)? {
            settings.probe.timeout = duration(TIMEOUT_VAR, &v, DurationUnit::Millis, 1, DAY_MS)?;
        }
        if let Some(v) = text(BWRAP_VAR)? {
            if v.trim().is_empty() {
                return Err(ConfigError {
                    variable: BWRAP_VAR,
                    value: v,
                    problem: "empty path; unset it to search PATH".into(),
                });
            }
            settings.probe.bwrap = Some(PathBuf::from(v));
        }
        if let Some(v) = text(SHARE_VAR)? {
            settings.share_verdicts = match v.trim() {
                "1" => true,
                "0" => false,
                other => {
                    return Err(ConfigError {
                        variable: SHARE_VAR,
                        value: v.clone(),
                        problem: format!(
                            "`{other}` is neither `1` (share) nor `0` (probe in every process)"
                        ),
                    });
                }
            };
        }
        if let Some(v) = text(VERBOSE_VAR)? {
            settings.verbose = match v.trim() {
                "1" => true,
                "0" => false,
                other => {
                    return Err(ConfigError {
                        variable: VERBOSE_VAR,
                        value: v.clone(),
                        problem: format!(
                            "`{other}` is neither `1` (the host line and the ability matrix \
                             after every run) nor `0` (one line when nothing needs saying)"
                        ),
                    });
                }
            };
        }
        Ok(settings)
    }
}

impl Settings {
    /// Whether `USERNS_TEST_REQUIRE` covers `ability`: listed, or `all`.
    pub fn requires(&self, ability: Ability) -> bool {
        self.require_all || self.require.contains(&ability)
    }

    /// Whether `USERNS_TEST_DENY` covers `ability`: listed, or `all`, or
    /// implied by what is listed. Denying `landlock` denies every
    /// `landlock(...)`; denying `landlock(abi >= 4)` (the host "lacks ABI
    /// 4") denies `landlock(abi >= N)` and `landlock(abi == N)` for every
    /// N of 4 and up. Nothing else widens a denial.
    pub fn denies(&self, ability: Ability) -> bool {
        if self.deny_all || self.deny.contains(&ability) {
            return true;
        }
        let landlock_family = matches!(
            ability,
            Ability::LandlockAbi(_) | Ability::LandlockAbiExactly(_) | Ability::LandlockAbiBelow(_)
        );
        if landlock_family && self.deny.contains(&Ability::Landlock) {
            return true;
        }
        let wanted = match ability {
            Ability::LandlockAbi(n) | Ability::LandlockAbiExactly(n) => n,
            _ => return false,
        };
        self.deny
            .iter()
            .any(|d| matches!(*d, Ability::LandlockAbi(m) if m <= wanted))
    }
}

/// A day in milliseconds: the largest time bound any variable takes (a
/// probe, a lock wait), far beyond any real need and within every clock's
/// range.
pub(crate) const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The unit a duration variable is written in.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// Milliseconds.
    Millis,
    /// Seconds.
    Seconds,
}

/// A duration variable's value: a whole number of `unit`s from `min` to
/// `max` (checked when read, so that no later arithmetic on it can
/// overflow), or an error naming the variable, the value and the range.
/// (Used by the `userns-test` command too; not a stable API.)
#[doc(hidden)]
pub fn duration(
    variable: &'static str,
    value: &str,
    unit: DurationUnit,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let (name, of) = match unit {
        DurationUnit::Millis => ("milliseconds", Duration::from_millis as fn(u64) -> Duration),
        DurationUnit::Seconds => ("seconds", Duration::from_secs as fn(u64) -> Duration),
    };
    let error = |problem: String| ConfigError {
        variable,
        value: value.to_owned(),
        problem,
    };
    let word = value.trim();
    // Digits only: `+5`, `5s` and `1e3` are not whole numbers here.
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(format!("`{word}` is not a whole number of {name}")));
    }
    match word.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(of(n)),
        _ => Err(error(format!(
            "`{word}` is out of range: from {min} to {max} {name}"
        ))),
    }
}

/// `all`, or ability names separated by commas or spaces.
fn parse_abilities(
    variable: &'static str,
    value: &str,
) -> Result<(BTreeSet<Ability>, bool), ConfigError> {
    let words = list_words(value);
    if words == ["all"] {
        return Ok((Ability::ALL.into_iter().collect(), true));
    }
    let set = words
        .iter()
        .map(|w| {
            w.parse::<Ability>().map_err(|_| ConfigError {
                variable,
                value: value.to_owned(),
                problem: match (w.as_str() == "all", closest_name(w)) {
                    (true, _) => "`all` cannot be combined with ability names".into(),
                    (false, Some(s)) => format!("unknown ability `{w}`; did you mean `{s}`?"),
                    (false, None) => format!(
                        "unknown ability `{w}`; expected `all` or names from: {}, \
                         program(NAME), landlock(abi>=N), landlock(abi==N), landlock(abi<N), \
                         cap(NAME), kernel(>=X.Y)",
                        Ability::ALL.map(|a| a.name()).join(", ")
                    ),
                },
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((set, false))
}

/// The words of a list: separated by commas or spaces outside
/// parentheses, so that `landlock(abi >= 4), net` is two words, as the
/// attribute writes them.
fn list_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && (c == ',' || c.is_whitespace()) {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// What to do with a test, given its requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every requirement is met: run it.
    Run,
    /// Some are unmet and none of those is required: skip it.
    Skip(Unmet),
    /// Some unmet ability is listed in `USERNS_TEST_REQUIRE`: fail it.
    Fail(Unmet),
    /// The environment configuration is malformed: fail it.
    Misconfigured(ConfigError),
}

/// The unmet requirements of one test, each with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// Each unmet ability and why.
    pub reasons: Vec<(Ability, Reason)>,
}

impl Unmet {
    /// The abilities that are missing.
    pub fn abilities(&self) -> Vec<Ability> {
        self.reasons.iter().map(|(a, _)| *a).collect()
    }

    /// What failed, without cause and remedy: `needs net: <step> failed:
    /// <errno>`. The runner prints this for each skipped test, and the
    /// cause and remedy once per group in its summary: a diagnosis repeated
    /// on a thousand lines is noise, and printing it took most of a large
    /// suite's run time.
    ///
    /// Abilities that failed the same way are named together (`needs user,
    /// mount: the system is macOS 14.5`): one failure, said once.
    pub fn brief(&self) -> String {
        grouped(&self.reasons, |r| r.short())
            .into_iter()
            .map(|(abilities, short)| format!("needs {abilities}: {short}"))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// `reasons` grouped by `key`, in the order each key first appears, with
/// the abilities of each group joined by `, `.
fn grouped<K: PartialEq>(
    reasons: &[(Ability, Reason)],
    key: impl Fn(&Reason) -> K,
) -> Vec<(String, K)> {
    let mut groups: Vec<(Vec<&str>, K)> = Vec::new();
    for (ability, reason) in reasons {
        let k = key(reason);
        match groups.iter_mut().find(|(_, g)| *g == k) {
            Some((names, _)) => names.push(ability.name()),
            None => groups.push((vec![ability.name()], k)),
        }
    }
    groups
        .into_iter()
        .map(|(names, k)| (names.join(", "), k))
        .collect()
}

/// Every unmet ability with what failed; each cause and fix once, after
/// the failures it explains.
impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by_cause = grouped(&self.reasons, |r| (r.cause.to_string(), r.remedy.clone()));
        for (i, (_, (cause, remedy))) in by_cause.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            let of_cause: Vec<(Ability, Reason)> = self
                .reasons
                .iter()
                .filter(|(_, r)| r.cause.to_string() == *cause && r.remedy == *remedy)
                .cloned()
                .collect();
            let failures = grouped(&of_cause, |r| r.short())
                .into_iter()
                .map(|(abilities, short)| format!("needs {abilities}: {short}"))
                .collect::<Vec<_>>()
                .join(", ");
            write!(f, "{failures}; cause: {cause}; fix: {remedy}")?;
        }
        Ok(())
    }
}

/// The reason of an ability that `USERNS_TEST_DENY` lists: denied by
/// policy, not refused by the host.
pub(crate) fn denied_reason() -> Reason {
    let cause = crate::cause::Cause::DeniedByEnvironment;
    Reason {
        step: crate::step::Step::ReadEnvironment {
            variable: DENY_VAR.into(),
        },
        failure: crate::failure::Failure::Denied,
        remedy: crate::diagnosis::remedy(&cause, &crate::HostFacts::get),
        cause,
    }
}

impl Decision {
    /// Decides for `requirements` given the settings and a verdict source
    /// (owned verdicts, or references such as [`probe`](crate::probe())'s).
    /// Denied abilities are not probed.
    pub fn make<V: Borrow<Verdict>>(
        requirements: &[Ability],
        settings: &Settings,
        verdict: impl Fn(Ability) -> V,
    ) -> Decision {
        let mut reasons = Vec::new();
        for &ability in requirements {
            let reason = if settings.denies(ability) {
                Some(denied_reason())
            } else {
                verdict(ability).borrow().reason().cloned()
            };
            if let Some(r) = reason {
                reasons.push((ability, r));
            }
        }
        if reasons.is_empty() {
            return Decision::Run;
        }
        let required = reasons.iter().any(|(a, _)| settings.requires(*a));
        let unmet = Unmet { reasons };
        if required {
            Decision::Fail(unmet)
        } else {
            Decision::Skip(unmet)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).map(Into::into))
    }

    #[test]
    fn lists_and_all() {
        let s = settings(&[(REQUIRE_VAR, "net, user"), (DENY_VAR, "bwrap")]).unwrap();
        assert_eq!(
            s.require,
            [Ability::User, Ability::Net].into_iter().collect()
        );
        assert_eq!(s.deny, [Ability::Bwrap].into_iter().collect());
        let all = settings(&[(REQUIRE_VAR, "all")]).unwrap();
        assert_eq!(all.require.len(), Ability::ALL.len());
        assert_eq!(settings(&[(DENY_VAR, "")]).unwrap().deny.len(), 0);
        let params = settings(&[(DENY_VAR, "program(pasta),landlock(abi>=4)")]).unwrap();
        assert_eq!(
            params.deny,
            [Ability::Program("pasta"), Ability::LandlockAbi(4)]
                .into_iter()
                .collect()
        );
        // The attribute's spelling, spaces included.
        let spaced = settings(&[(
            DENY_VAR,
            "landlock(abi >= 4), cap(sys_ptrace) kernel(>= 6.1)",
        )])
        .unwrap();
        assert_eq!(spaced.deny.len(), 3, "{:?}", spaced.deny);
        assert!(spaced.deny.contains(&Ability::Cap(19)));
    }

    /// `all` covers the parameterised abilities; a denial covers what it
    /// implies and nothing wider.
    #[test]
    fn coverage_of_parameterised_abilities() {
        let all = settings(&[(REQUIRE_VAR, "all")]).unwrap();
        for a in [
            Ability::LandlockAbi(9),
            Ability::Program("pasta"),
            Ability::Cap(19),
            Ability::Kernel(crate::KernelVersion::parse("6.1").unwrap()),
        ] {
            assert!(all.requires(a), "{a}");
        }
        let deny = settings(&[(DENY_VAR, "landlock(abi >= 4)")]).unwrap();
        assert!(deny.denies(Ability::LandlockAbi(4)));
        assert!(deny.denies(Ability::LandlockAbi(9)));
        assert!(deny.denies(Ability::LandlockAbiExactly(5)));
        assert!(!deny.denies(Ability::LandlockAbi(3)));
        assert!(!deny.denies(Ability::LandlockAbiExactly(3)));
        assert!(!deny.denies(Ability::Landlock));
        assert!(!deny.denies(Ability::LandlockAbiBelow(4)));
        let deny = settings(&[(DENY_VAR, "landlock")]).unwrap();
        for a in [
            Ability::LandlockAbi(1),
            Ability::LandlockAbiExactly(2),
            Ability::LandlockAbiBelow(3),
        ] {
            assert!(deny.denies(a), "{a}");
        }
        assert!(!deny.denies(Ability::Seccomp));
        // A misspelt parameterised name is refused, never widened.
        let e = settings(&[(DENY_VAR, "landlock(abi>4)")]).unwrap_err();
        assert!(!e.to_string().contains("did you mean `landlock`"), "{e}");
        let e = settings(&[(DENY_VAR, "landlok(abi >= 4)")]).unwrap_err();
        assert!(
            e.to_string().contains("did you mean `landlock(abi>=4)`"),
            "{e}"
        );
    }

    #[test]
    fn malformed_values_name_variable_and_word() {
        let e = settings(&[(DENY_VAR, "net,nte")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "USERNS_TEST_DENY=\"net,nte\": unknown ability `nte`; did you mean `net`?"
        );
        let e = settings(&[(REQUIRE_VAR, "all,net")]).unwrap_err();
        assert!(e.to_string().contains("`all` cannot be combined"), "{e}");
        let e = settings(&[(TIMEOUT_VAR, "5s")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "USERNS_TEST_PROBE_TIMEOUT_MS=\"5s\": `5s` is not a whole number of milliseconds"
        );
        for huge in ["18446744073709551615", "86400001", "0"] {
            let e = settings(&[(TIMEOUT_VAR, huge)]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "USERNS_TEST_PROBE_TIMEOUT_MS=\"{huge}\": `{huge}` is out of range: from 1 \
                     to 86400000 milliseconds"
                )
            );
        }
        let ok = settings(&[(TIMEOUT_VAR, " 86400000 ")]).unwrap();
        assert_eq!(ok.probe.timeout, Duration::from_secs(86_400));
    }

    /// Every duration variable is read by one function: whole numbers in
    /// range, never a sign, a unit, an exponent or an overflow.
    #[test]
    fn durations_are_range_checked() {
        use super::{DurationUnit::*, duration};
        assert_eq!(
            duration("V", "7", Seconds, 0, 9),
            Ok(Duration::from_secs(7))
        );
        assert_eq!(duration("V", "0", Millis, 0, 9), Ok(Duration::ZERO));
        for bad in ["", " ", "+5", "5s", "1e3", "-0", "٣", "10"] {
            let e = duration("V", bad, Seconds, 0, 9).unwrap_err();
            assert_eq!(e.variable, "V");
            assert!(
                e.problem.contains("whole number") || e.problem.contains("out of range"),
                "{bad:?}: {e}"
            );
        }
    }
}
