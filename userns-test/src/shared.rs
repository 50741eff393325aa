//! Verdicts shared between the processes of one nextest run.
//!
//! nextest runs every test in a process of its own, so without sharing each
//! process probes again what the listing process (and every other test
//! process of the binary) already probed: a network stack set up and torn
//! down for `net`, a whole `bwrap` execution for `bwrap`. Instead, a process
//! that finds such a costly ability *available* writes that verdict to a
//! file of the run, and another process of the same run whose key is
//! identical reads it instead of probing.
//!
//! # What makes a verdict reusable
//! The key holds everything a process can observe that a verdict depends
//! on, and a verdict is reused only when the whole key is equal (the file
//! name is a hash of it; the file holds the key itself):
//!
//! - the run (`NEXTEST_RUN_ID`) and this crate's version: nothing outlives
//!   the run;
//! - the executable (path, device, inode, mtime) and its LSM label
//!   (`/proc/self/attr/current`): an AppArmor profile is per binary;
//! - the boot (`/proc/sys/kernel/random/boot_id`);
//! - the user: real, effective, saved ids and groups, the capability sets,
//!   `NoNewPrivs`, the seccomp mode and filter count (`/proc/self/status`);
//! - every namespace (`/proc/self/ns/*`), the cgroup, `RLIMIT_NPROC`;
//! - the sysctls the probes meet (`user.max_*_namespaces`,
//!   `kernel.unprivileged_userns_clone`,
//!   `kernel.apparmor_restrict_unprivileged_userns`);
//! - the settings: `USERNS_TEST_REQUIRE`, `USERNS_TEST_DENY`,
//!   `USERNS_TEST_PROBE_TIMEOUT_MS`, `USERNS_TEST_BWRAP` and `PATH`.
//!
//! Not in the key: a Landlock domain (no interface shows whether a process
//! is in one) and changes to the host that none of the above shows (say,
//! bubblewrap installed in the middle of a run).
//!
//! # Only costly abilities
//! Computing the key reads some 25 files of `/proc`: about 0.3 ms in a
//! fresh test process built with the dev profile. Probing `user`, `ipc`,
//! `uts`, `cgroup`, `time` or `nested` costs less than that (0.15 to
//! 0.25 ms), and `mount`, `pid` or `cap_sys_admin` about as much (0.3 to
//! 0.45 ms), so those are probed. Only `net` (0.6 to 1 ms: a network
//! stack set up and torn down) and the abilities that run programs
//! (`bwrap`, `bwrap_net`: 3 to 4 ms; `subids`: two `newuidmap` runs) are
//! shared, and, once a process has computed its key for one of those, the
//! namespaces' (`mount`, `ipc`, ...: a file read against a child). `user`
//! is not needed then: a namespace's probe found available ran its
//! operations first (see `gate::probe`).
//!
//! # Only available verdicts
//! A wrongly reused "available" makes a test run and fail where the host
//! refuses, loudly; a wrongly reused "unavailable" would skip it silently.
//! So only available verdicts are shared. Under nextest a skipped test
//! starts no process, so test processes rarely need an unavailable one.
//!
//! # Where
//! `$TMPDIR/userns-test-<euid>/verdicts/<run>/`, created mode 0700 and used
//! only when it is a directory owned by this effective uid that no one else
//! may enter; each file is written whole (a temporary file, then `rename`)
//! and read only if this uid owns it. Directories of runs older than a day
//! are removed when a run starts. Anything unusable means probing, as
//! without sharing.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Ability;
use crate::policy::{BWRAP_VAR, DENY_VAR, REQUIRE_VAR, Settings, TIMEOUT_VAR};
use crate::record::store::fnv1a;
use crate::safe_fs::{Dir, private_temp_base};
use crate::verdict::{Status, Verdict};

/// A shared verdict file is a few hundred bytes; anything far larger is not
/// one of ours.
const MAX_FILE: u64 = 64 * 1024;

/// How old a run's directory may be before a new run removes it.
const STALE_RUN: Duration = Duration::from_secs(24 * 60 * 60);

/// The verdicts of this process's run, when they can be shared.
pub(crate) struct Shared {
    /// The run's directory, private to this uid.
    dir: Dir,
    /// Everything the verdicts depend on, one `name=value` line each.
    key: String,
    /// A hash of `key`, naming the files.
    hash: u64,
}

/// The first line of a shared verdict's file.
const VERDICT_HEADER: &str = "userns-test shared verdict 1";

/// One shared verdict on disk: a header line, the ability, the probe's
/// time and note, then the key it holds for, verbatim (this crate's own
/// small format; the key's lines are `name=value`, escaped).
fn verdict_text(key: &str, verdict: &Verdict) -> String {
    let note = verdict
        .note
        .as_deref()
        .unwrap_or("")
        .escape_debug()
        .to_string();
    format!(
        "{VERDICT_HEADER}\nability {}\nprobe_us {}\nnote {}{note}\n{key}",
        verdict.ability.name(),
        verdict.duration.as_micros().min(u64::MAX as u128),
        if verdict.note.is_some() { "+" } else { "-" },
    )
}

/// The verdict on `ability` in `text`, if it holds one for exactly `key`.
fn parse_verdict(text: &str, key: &str, ability: Ability) -> Option<Verdict> {
    let rest = text.strip_prefix(VERDICT_HEADER)?.strip_prefix('\n')?;
    let (ability_line, rest) = rest.split_once('\n')?;
    let (probe_line, rest) = rest.split_once('\n')?;
    let (note_line, stored_key) = rest.split_once('\n')?;
    if stored_key != key || ability_line.strip_prefix("ability ")? != ability.name() {
        return None;
    }
    let probe_us: u64 = probe_line.strip_prefix("probe_us ")?.parse().ok()?;
    let note = match note_line.strip_prefix("note ")?.split_at_checked(1)? {
        ("-", "") => None,
        ("+", escaped) => Some(unescape_debug(escaped)?),
        _ => return None,
    };
    Some(Verdict {
        ability,
        status: Status::Available,
        note,
        duration: Duration::from_micros(probe_us),
    })
}

/// The inverse of `str::escape_debug` for what it writes (`\\`, `\"`,
/// `\'`, `\n`, `\r`, `\t`, `\0`, `\u{..}`).
fn unescape_debug(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// Whether the verdict on `ability` is worth sharing: its probe costs
/// clearly more than computing the key, or the key is computed already
/// and its probe (a namespace's) costs more than reading a file (see the
/// module docs).
pub(crate) fn worth_sharing(ability: Ability) -> bool {
    ability == Ability::Net
        || ability.is_external()
        || (KEY_AT_HAND.load(std::sync::atomic::Ordering::Relaxed)
            && ability.needs_user_namespace()
            && ability != Ability::User)
}

/// This process computed its key: sharing a cheap verdict costs a file.
static KEY_AT_HAND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Shared {
    /// This process's run, if it is a nextest run, sharing is on, and the
    /// directory is usable. Computed once per process.
    pub(crate) fn get(settings: &Settings) -> Option<&'static Shared> {
        static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                if !settings.share_verdicts {
                    return None;
                }
                // nextest's run, when nextest started this process (the
                // variable alone may be a leftover of an earlier run).
                let crate::record::lineage::NextestRun::Run { id, .. } =
                    crate::record::lineage::nextest_run()
                else {
                    return None;
                };
                Shared::open(private_temp_base().ok()?, id)
            })
            .as_ref()
    }

    /// The run `run`'s verdicts under `base` (private to this uid).
    fn open(base: Dir, run: &str) -> Option<Shared> {
        let verdicts = base.private_subdir("verdicts").ok()?;
        let name = file_safe(run);
        let existed = verdicts.stat(&name).ok()?.is_some();
        let dir = verdicts.private_subdir(&name).ok()?;
        if !existed {
            // The first process of a new run clears runs long gone.
            remove_stale_runs(&verdicts, &name);
        }
        let key = key(run)?;
        KEY_AT_HAND.store(true, std::sync::atomic::Ordering::Relaxed);
        Some(Shared {
            dir,
            hash: fnv1a(key.as_bytes()),
            key,
        })
    }

    fn file_name(&self, ability: Ability) -> String {
        format!("{:016x}-{}", self.hash, ability.name())
    }

    /// The available verdict another process of the run found for
    /// `ability` under the same key, if any. Read only if it is a regular
    /// file of this uid, reached without a link.
    pub(crate) fn lookup(&self, ability: Ability) -> Option<Verdict> {
        let bytes = self.dir.read(self.file_name(ability), MAX_FILE).ok()??;
        parse_verdict(std::str::from_utf8(&bytes).ok()?, &self.key, ability)
    }

    /// Shares `verdict` with the run's other processes, if it is an
    /// available one. Best effort: a failure only means they probe.
    pub(crate) fn record(&self, verdict: &Verdict) {
        if !verdict.is_available() {
            return;
        }
        let text = verdict_text(&self.key, verdict);
        let _ = self
            .dir
            .replace(self.file_name(verdict.ability), text.as_bytes());
    }
}

fn remove_stale_runs(verdicts: &Dir, current: &str) {
    let Ok(entries) = verdicts.entries() else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (name, _) in entries {
        if name == current {
            continue;
        }
        let stale = verdicts
            .stat(&name)
            .ok()
            .flatten()
            .is_some_and(|st| now.saturating_sub(st.st_mtime) > STALE_RUN.as_secs() as i64);
        if stale {
            let _ = verdicts.remove(&name);
        }
    }
}

/// A run id as one path component: nextest's UUIDs as they are, anything
/// else by its hash.
fn file_safe(run: &str) -> String {
    let plain = !run.is_empty()
        && run.len() <= 64
        && !run.starts_with('.')
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if plain {
        run.to_owned()
    } else {
        format!("run-{:016x}", fnv1a(run.as_bytes()))
    }
}

/// Everything a verdict depends on that this process can observe (see the
/// module docs). `None` when a part that must be known cannot be read.
fn key(run: &str) -> Option<String> {
    let mut key = String::with_capacity(2048);
    let mut line = |name: &str, value: &str| {
        let _ = writeln!(key, "{name}={}", value.escape_debug());
    };
    line("crate", env!("CARGO_PKG_VERSION"));
    line("run", run);
    let exe = fs::read_link("/proc/self/exe").ok()?;
    let meta = fs::metadata(&exe).ok()?;
    line("exe", &exe.to_string_lossy());
    line(
        "exe_id",
        &format!(
            "{} {} {}.{}",
            meta.dev(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec()
        ),
    );
    line("boot", read("/proc/sys/kernel/random/boot_id")?.trim());
    let status = read("/proc/self/status")?;
    const STATUS: [&str; 10] = [
        "Uid:",
        "Gid:",
        "Groups:",
        "CapInh:",
        "CapPrm:",
        "CapEff:",
        "CapBnd:",
        "CapAmb:",
        "NoNewPrivs:",
        "Seccomp",
    ];
    for l in status.lines() {
        // `Seccomp:` and `Seccomp_filters:`.
        if STATUS.iter().any(|p| l.starts_with(p)) {
            line("status", l);
        }
    }
    for ns in ["user", "mnt", "net", "pid", "uts", "ipc", "cgroup", "time"] {
        let target = fs::read_link(format!("/proc/self/ns/{ns}"))
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "-".into());
        line("ns", &target);
    }
    line("cgroup", &read("/proc/self/cgroup").unwrap_or_default());
    line("lsm", &read("/proc/self/attr/current").unwrap_or_default());
    let nproc = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).ok()?;
    line("rlimit_nproc", &format!("{nproc:?}"));
    for sysctl in [
        "user/max_user_namespaces",
        "user/max_mnt_namespaces",
        "user/max_net_namespaces",
        "user/max_pid_namespaces",
        "user/max_uts_namespaces",
        "user/max_ipc_namespaces",
        "user/max_cgroup_namespaces",
        "user/max_time_namespaces",
        "kernel/unprivileged_userns_clone",
        "kernel/apparmor_restrict_unprivileged_userns",
    ] {
        let value = read(&format!("/proc/sys/{sysctl}")).unwrap_or_else(|| "-".into());
        line(sysctl, value.trim());
    }
    for var in [REQUIRE_VAR, DENY_VAR, TIMEOUT_VAR, BWRAP_VAR, "PATH"] {
        let value = std::env::var_os(var).map(|v| v.to_string_lossy().into_owned());
        line(var, value.as_deref().unwrap_or("-"));
    }
    Some(key)
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_verdicts_read_back_only_under_their_key() {
        let v = Verdict {
            ability: Ability::Bwrap,
            status: Status::Available,
            note: Some("/usr/bin/bwrap is \"setuid\"\n\u{202e}".into()),
            duration: Duration::from_micros(3058),
        };
        let key = "crate=0.1.0\nrun=r\n";
        let text = verdict_text(key, &v);
        assert_eq!(parse_verdict(&text, key, Ability::Bwrap), Some(v.clone()));
        assert_eq!(
            parse_verdict(&text, "crate=0.1.0\nrun=s\n", Ability::Bwrap),
            None
        );
        assert_eq!(parse_verdict(&text, key, Ability::BwrapNet), None);
        let plain = Verdict { note: None, ..v };
        let text = verdict_text(key, &plain);
        assert_eq!(parse_verdict(&text, key, Ability::Bwrap), Some(plain));
        assert_eq!(parse_verdict("garbage", key, Ability::Bwrap), None);
    }

    #[test]
    fn run_ids_become_one_path_component() {
        let uuid = "0e4c5ee4-3d4b-4b8e-9f5e-4c0b0f6f5c11";
        assert_eq!(file_safe(uuid), uuid);
        for hostile in ["../x", "", ".", "..", "a/b", &"x".repeat(65)] {
            let safe = file_safe(hostile);
            assert!(safe.starts_with("run-"), "{hostile:?} -> {safe}");
            assert!(!safe.contains('/'));
        }
    }

    #[test]
    fn the_key_names_what_verdicts_depend_on() {
        let key = key("r1").expect("a key on Linux");
        for part in [
            "run=r1\n",
            "exe=",
            "boot=",
            "status=Uid:",
            "status=Seccomp:",
            "status=CapBnd:",
            "ns=user:[",
            "ns=net:[",
            "rlimit_nproc=",
            "user/max_user_namespaces=",
            "USERNS_TEST_DENY=",
            "PATH=",
        ] {
            assert!(key.contains(part), "no {part:?} in\n{key}");
        }
        assert_ne!(key, self::key("r2").unwrap());
    }

    #[test]
    fn a_directory_others_may_enter_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let temp = std::env::temp_dir().join(format!("userns-test-shared-{}", std::process::id()));
        let _ = fs::remove_dir_all(&temp);
        fs::create_dir_all(&temp).unwrap();
        let base = temp.join("base");
        fs::create_dir(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o777)).unwrap();
        let open = || {
            Dir::for_writing(&temp)
                .and_then(|t| t.private_subdir("base"))
                .ok()
                .and_then(|b| Shared::open(b, "r"))
        };
        assert!(open().is_none(), "a directory others may enter is refused");
        fs::set_permissions(&base, fs::Permissions::from_mode(0o700)).unwrap();
        let shared = open().expect("a private directory is used");
        let verdict = Verdict {
            ability: Ability::User,
            status: Status::Available,
            note: Some("a note".into()),
            duration: Duration::from_micros(120),
        };
        assert_eq!(shared.lookup(Ability::User), None);
        shared.record(&verdict);
        assert_eq!(shared.lookup(Ability::User), Some(verdict.clone()));
        assert_eq!(shared.lookup(Ability::Net), None);
        // The same file under another key is not reused.
        let other = Shared {
            dir: Dir::for_writing(&temp)
                .and_then(|t| t.private_subdir("base"))
                .and_then(|b| b.private_subdir("verdicts"))
                .and_then(|v| v.private_subdir("r"))
                .unwrap(),
            key: format!("{}x=1\n", shared.key),
            hash: shared.hash,
        };
        assert_eq!(other.lookup(Ability::User), None);
        // A file another user could have written is not read: a link in
        // its place is not followed.
        let file = base.join("verdicts/r").join(shared.file_name(Ability::Net));
        std::os::unix::fs::symlink(
            base.join("verdicts/r")
                .join(shared.file_name(Ability::User)),
            &file,
        )
        .unwrap();
        assert_eq!(shared.lookup(Ability::Net), None);
        let _ = fs::remove_dir_all(&temp);
    }
}
