use userns_test::requires_userns;

#[requires_userns(net)]
async fn needs_a_runtime() {}

fn main() {}
