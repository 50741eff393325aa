use userns_test::requires_userns;

#[requires_userns()]
fn needs_nothing() {}

fn main() {}
