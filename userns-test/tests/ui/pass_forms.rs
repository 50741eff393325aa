//! Every supported form compiles: with and without #[test], Result, every
//! ability name, paths to the attribute.
use userns_test::requires_userns;

#[requires_userns(user)]
fn plain() {}

#[requires_userns(net, cap_sys_admin)]
#[test]
fn with_test_attribute() {}

#[userns_test::requires_userns(mount)]
fn returns_result() -> Result<(), std::io::Error> {
    Ok(())
}

#[requires_userns(
    user, cap_sys_admin, mount, net, pid, ipc, uts, cgroup, time, nested,
    cap_setpcap, bwrap, bwrap_net, seccomp, landlock, subids, root,
    unprivileged, new_privs, kvm, tun, fuse, overlay, pivot_root, cgroup_delegation,
)]
fn every_ability() {}

#[requires_userns(program("pasta"), program("/usr/bin/newgidmap"), landlock(abi >= 4))]
fn parameterised() {}

#[requires_userns(landlock(abi == 3), landlock(abi < 4), kernel(>= 6.1), kernel(>= 5.15.2))]
fn more_parameterised() {}

#[requires_userns(cap(CAP_SYS_PTRACE), cap(cap_net_raw))]
fn capability_spellings() {}

/// Every capability by name, in number order: the macro's list and the
/// library's are the same (`Ability::Cap(N)` with the library's name N).
#[requires_userns(
    cap(chown),
    cap(dac_override),
    cap(dac_read_search),
    cap(fowner),
    cap(fsetid),
    cap(kill),
    cap(setgid),
    cap(setuid),
    cap(setpcap),
    cap(linux_immutable),
    cap(net_bind_service),
    cap(net_broadcast),
    cap(net_admin),
    cap(net_raw),
    cap(ipc_lock),
    cap(ipc_owner),
    cap(sys_module),
    cap(sys_rawio),
    cap(sys_chroot),
    cap(sys_ptrace),
    cap(sys_pacct),
    cap(sys_admin),
    cap(sys_boot),
    cap(sys_nice),
    cap(sys_resource),
    cap(sys_time),
    cap(sys_tty_config),
    cap(mknod),
    cap(lease),
    cap(audit_write),
    cap(audit_control),
    cap(setfcap),
    cap(mac_override),
    cap(mac_admin),
    cap(syslog),
    cap(wake_alarm),
    cap(block_suspend),
    cap(audit_read),
    cap(perfmon),
    cap(bpf),
    cap(checkpoint_restore),
)]
fn every_capability() {}

fn main() {
    let names: Vec<&str> = (0..41u8)
        .map(|n| userns_test::capability::name(n).unwrap())
        .collect();
    assert_eq!(names.len(), userns_test::capability::NAMES.len());
    assert_eq!(userns_test::Ability::Cap(19).name(), "cap(sys_ptrace)");
}
