//! What an `#[in_userns]` body cannot do, said where it bites: the body is
//! root of a user namespace, not of the host, so a call that needs a
//! capability in the initial user namespace, or an id outside the map,
//! fails with EPERM or EINVAL and nothing else points to why. When a body
//! fails and its message or output names such an errno, the failure gains
//! one line naming the limit that may apply (the calls it mentions choose
//! which), and what to use instead.

/// The limits, each with words that point to it (call names, as a panic
/// message or an error's text shows them) and the line said.
const LIMITS: [(&[&str], &str); 7] = [
    (
        &["init_module", "finit_module", "delete_module", "kmod", "modprobe", "insmod"],
        "loading and removing kernel modules needs CAP_SYS_MODULE in the initial user \
         namespace, which no user namespace gives; use #[requires_userns(cap(sys_module))] on \
         a test that is not #[in_userns]",
    ),
    (
        &["acct"],
        "process accounting (acct) needs CAP_SYS_PACCT in the initial user namespace; use \
         #[requires_userns(cap(sys_pacct))] on a test that is not #[in_userns]",
    ),
    (
        &["settimeofday", "clock_settime", "adjtime", "clock_adjtime", "stime"],
        "setting the system clock needs CAP_SYS_TIME in the initial user namespace (a time \
         namespace offsets only CLOCK_MONOTONIC and CLOCK_BOOTTIME); use \
         #[requires_userns(cap(sys_time))] on a test that is not #[in_userns]",
    ),
    (
        &["iopl", "ioperm", "/dev/mem", "/dev/port", "rawio"],
        "raw I/O (iopl, ioperm, /dev/mem) needs CAP_SYS_RAWIO in the initial user namespace; \
         use #[requires_userns(cap(sys_rawio))] on a test that is not #[in_userns]",
    ),
    (
        &["fanotify"],
        "fanotify beyond marks on single files (FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM, \
         permission events) needs CAP_SYS_ADMIN in the initial user namespace; use \
         #[requires_userns(cap(sys_admin))] on a test that is not #[in_userns]",
    ),
    (
        &["mknod", "mkfifo", "block device", "loop", "ext4", "xfs", "btrfs"],
        "device nodes cannot be created, and only some filesystems mount, in a user \
         namespace (tmpfs, proc, sysfs, devpts, mqueue, bind mounts; overlay from Linux 5.11, \
         FUSE from 4.18): block devices and disk filesystems need the host's CAP_MKNOD or \
         CAP_SYS_ADMIN; use #[requires_userns(cap(sys_admin))] or cap(mknod) on a test that \
         is not #[in_userns]",
    ),
    (
        &["chown", "setuid", "setgid", "setresuid", "setresgid", "setgroups", "setfsuid"],
        "only the ids in the user namespace's map exist there: others are EINVAL to set and \
         show as 65534 (nobody) on files, and setgroups is denied unless ids = N maps a range",
    ),
];

/// A limit that does not name a call: the list in brief.
const ANY_LIMIT: &str = "capabilities there do not reach the host (modules, accounting, the \
    clock, raw I/O, device nodes, disk filesystems need them in the initial user namespace), \
    and only the mapped ids exist";

/// The line to add to a failure of a body that ran in a user namespace
/// mapping `ids` ids, given its message and output: `None` when nothing
/// there names EPERM or EINVAL.
pub(crate) fn hint(texts: &[&str], ids: u32) -> Option<String> {
    let names_errno = |t: &str| {
        [
            "EPERM",
            "Operation not permitted",
            "os error 1)",
            "EINVAL",
            "Invalid argument",
            "os error 22)",
        ]
        .iter()
        .any(|e| t.contains(e))
    };
    if !texts.iter().any(|t| names_errno(t)) {
        return None;
    }
    let lower: Vec<String> = texts.iter().map(|t| t.to_ascii_lowercase()).collect();
    let mentions = |word: &str| lower.iter().any(|t| mentions_word(t, word));
    let limit = LIMITS
        .iter()
        .find(|(words, _)| words.iter().any(|w| mentions(w)))
        .map_or(ANY_LIMIT, |(_, line)| line);
    let map = if ids > 1 {
        format!("uids and gids 0 to {} mapped", ids - 1)
    } else {
        "uid and gid 0 alone mapped".to_owned()
    };
    Some(format!(
        "userns-test: note: the body ran as root of a user namespace ({map}), not of the \
         host, and failed with EPERM or EINVAL; a limit that may apply: {limit}"
    ))
}

/// `word` in `text` as a word of its own (`uid` in "setuid(1000)" is part
/// of a longer word; "acct" in "account" too).
fn mentions_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_limit_of_the_call_that_failed() {
        let module = hint(
            &["called `Result::unwrap()` on an `Err` value: EPERM", "finit_module failed"],
            1,
        )
        .unwrap();
        assert!(module.contains("CAP_SYS_MODULE"), "{module}");
        assert!(module.contains("uid and gid 0 alone mapped"), "{module}");
        let acct = hint(&["acct(\"/tmp/x\") failed: Operation not permitted (os error 1)"], 1);
        assert!(acct.unwrap().contains("CAP_SYS_PACCT"));
        let chown = hint(&["chown to 1000: Invalid argument (os error 22)"], 1).unwrap();
        assert!(chown.contains("only the ids in the user namespace's map"), "{chown}");
        let ids = hint(&["setresuid: EINVAL"], 65536).unwrap();
        assert!(ids.contains("uids and gids 0 to 65535 mapped"), "{ids}");
    }

    #[test]
    fn says_the_list_when_no_call_is_named_and_nothing_without_an_errno() {
        let any = hint(&["assertion failed: EPERM"], 1).unwrap();
        assert!(any.contains(ANY_LIMIT), "{any}");
        assert_eq!(hint(&["assertion `left == right` failed", "chown"], 1), None);
        assert_eq!(hint(&["ENOENT: no such file"], 1), None);
        // Part of a longer word is not the call: "account" is not acct.
        let account = hint(&["account: EPERM"], 1).unwrap();
        assert!(account.contains(ANY_LIMIT), "{account}");
    }
}
