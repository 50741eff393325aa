use userns_test::requires_userns;

#[requires_userns("net")]
fn needs_a_string() {}

fn main() {}
