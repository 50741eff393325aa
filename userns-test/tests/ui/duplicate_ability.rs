use userns_test::requires_userns;

#[requires_userns(net, user, net)]
fn needs_net_twice() {}

fn main() {}
