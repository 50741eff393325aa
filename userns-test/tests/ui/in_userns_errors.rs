use userns_test::in_userns;

// A typo: the closest namespace is suggested.
#[in_userns(nte)]
fn typo() {}

// An ability is not a namespace: #[requires_userns] takes it.
#[in_userns(net, bwrap)]
fn ability() {}

// Listed twice.
#[in_userns(mount, pid, mount)]
fn twice() {}

// A namespace takes no arguments.
#[in_userns(net(lo))]
fn arguments() {}

// `ids`: a number of ids written out, from 2 to 4294967295, once.
#[in_userns(net, ids = 0)]
fn no_ids() {}

#[in_userns(ids = 1)]
fn uid_0_alone() {}

const IDS: u32 = 65536;
#[in_userns(mount, ids = IDS)]
fn ids_not_a_literal() {}

#[in_userns(mount, ids = 4294967296)]
fn more_ids_than_a_range() {}

#[in_userns(mount, ids = 65536, ids = 2)]
fn ids_twice() {}

// The body runs in a process that finds the test by name: no parameters.
#[in_userns(net)]
fn parameters(_port: u16) {}

fn main() {}
