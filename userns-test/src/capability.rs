//! Linux capabilities by name, as `capabilities(7)` numbers them, for
//! `cap(NAME)`: `cap(sys_ptrace)` is `CAP_SYS_PTRACE`, number 19.
//!
//! The table holds every capability up to `CAP_CHECKPOINT_RESTORE` (40,
//! Linux 5.9). Whether the running kernel knows one is its
//! `/proc/sys/kernel/cap_last_cap`, checked when the ability is probed.

/// The capabilities the kernel checks against the initial user namespace
/// alone (`capable()`, never `ns_capable()`): held in any other user
/// namespace, they allow nothing. Loading modules, raw I/O, process
/// accounting, the clock, device nodes, immutable files, audit, syslog,
/// BPF, perf, MAC policy, wake alarms, suspend blocking, tty setup.
pub const INITIAL_NAMESPACE_ONLY: [u8; 17] = [
    9,  // linux_immutable
    16, // sys_module
    17, // sys_rawio
    20, // sys_pacct
    25, // sys_time
    26, // sys_tty_config
    27, // mknod (device nodes; FIFOs need no capability)
    29, // audit_write
    30, // audit_control
    32, // mac_override
    33, // mac_admin
    34, // syslog
    35, // wake_alarm
    36, // block_suspend
    37, // audit_read
    38, // perfmon
    39, // bpf
];

/// The capabilities' names, lowercase and without `CAP_`, by number.
pub const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The name of capability `cap` (`sys_ptrace`), if it has one here.
pub fn name(cap: u8) -> Option<&'static str> {
    NAMES.get(usize::from(cap)).copied()
}

/// `CAP_SYS_PTRACE`, or `capability 63` for a number without a name.
pub fn constant(cap: u8) -> String {
    match name(cap) {
        Some(n) => format!("CAP_{}", n.to_ascii_uppercase()),
        None => format!("capability {cap}"),
    }
}

/// The number of the capability named `word`: `sys_ptrace`,
/// `cap_sys_ptrace` or `CAP_SYS_PTRACE`, in any case.
pub fn from_name(word: &str) -> Option<u8> {
    let lower = word.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u8)
}

/// The names of the capabilities in `set` (a `CapEff`-style mask), in
/// number order, as constants.
pub fn constants_in(set: u64) -> Vec<String> {
    (0..64u8)
        .filter(|c| set & (1u64 << c) != 0)
        .map(constant)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree_with_capabilities_7() {
        assert_eq!(from_name("sys_ptrace"), Some(19));
        assert_eq!(from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(from_name("cap_net_raw"), Some(13));
        assert_eq!(from_name("checkpoint_restore"), Some(40));
        assert_eq!(from_name("sys_ptrce"), None);
        assert_eq!(constant(24), "CAP_SYS_RESOURCE");
        assert_eq!(constant(63), "capability 63");
        assert_eq!(
            constants_in(1 << 12 | 1 << 13),
            ["CAP_NET_ADMIN", "CAP_NET_RAW"]
        );
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(from_name(n), Some(i as u8));
        }
    }
}
