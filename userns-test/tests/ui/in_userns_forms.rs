//! Forms #[in_userns] accepts (built as a binary: the tests are compiled
//! out, their registrations and entries are not).
use userns_test::{in_userns, requires_userns};

#[in_userns]
fn only_a_user_namespace() {}

#[in_userns(user, net, mount, pid, uts, ipc, cgroup, time)]
fn every_namespace() {}

#[in_userns(net)]
fn returns_result() -> Result<(), std::io::Error> {
    Ok(())
}

#[requires_userns(bwrap)]
#[in_userns(net)]
fn requirements_above() {}

#[in_userns(net)]
#[requires_userns(program("ip"))]
fn requirements_below() {}

#[in_userns(net)]
#[should_panic(expected = "x")]
#[ignore = "why"]
fn attributes_kept() {
    panic!("x")
}

// Raw and non-ASCII names.
#[in_userns(net)]
fn r#match() {}

#[in_userns(net)]
fn prüft_das_netz() {}

// A range of ids, alone or with namespaces and requirements.
#[in_userns(ids = 65536)]
fn ids_alone() {}

#[in_userns(mount, pid, ids = 4294967295)]
#[userns_test::requires_userns(net)]
fn ids_with_everything() {}

mod nested {
    #[userns_test::in_userns(uts)]
    fn by_path() {}
}

userns_test::main!();
