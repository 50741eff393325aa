use userns_test::requires_userns;

#[requires_userns(net)]
struct Jail;

fn main() {}
