use userns_test::requires_userns;

#[requires_userns(xyzzy)]
fn needs_magic() {}

fn main() {}
