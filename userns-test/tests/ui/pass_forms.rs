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

fn main() {}
