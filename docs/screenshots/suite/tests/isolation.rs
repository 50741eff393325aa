//! What the screenshots show: a test per ability kind, one `#[in_userns]`
//! body, an `#[ignore]`d test and a plain one; `FAIL_ONE` makes
//! `private_loopback` fail with a message holding `<`, `&`, `"` and `|`.

use userns_test::{in_userns, requires_userns};

#[requires_userns(user)]
#[test]
fn becomes_root_in_namespace() {}

#[requires_userns(net)]
#[test]
fn private_loopback() {
    if std::env::var_os("FAIL_ONE").is_some() {
        assert_eq!(1 + 1, 3, "loopback address <lo> & \"friends\" | broken");
    }
}

#[requires_userns(mount, cap_sys_admin)]
#[test]
fn mounts_tmpfs() {}

#[requires_userns(subids)]
#[test]
fn maps_a_range() {}

#[requires_userns(bwrap)]
#[test]
fn bubblewrap_box() {}

#[in_userns(net, mount)]
fn body_in_namespaces() {}

#[test]
#[ignore = "slow, run by hand"]
fn slow_soak() {}

#[test]
fn parses_config() {}
