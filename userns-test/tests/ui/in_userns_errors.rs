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

// The body runs in a process that finds the test by name: no parameters.
#[in_userns(net)]
fn parameters(_port: u16) {}

fn main() {}
