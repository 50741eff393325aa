use userns_test::requires_userns;

#[requires_userns(user, nte)]
fn needs_net() {}

fn main() {}
