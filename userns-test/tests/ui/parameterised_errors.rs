use userns_test::requires_userns;

#[requires_userns(program(pasta))]
fn not_a_string() {}

#[requires_userns(program("bin/pasta"))]
fn relative_path() {}

#[requires_userns(program)]
fn no_program() {}

#[requires_userns(landlock(abi > 4))]
fn not_at_least() {}

#[requires_userns(landlock(abi >= 0))]
fn abi_zero() {}

#[requires_userns(net(1))]
fn arguments_to_a_plain_name() {}

#[requires_userns(program("pasta"), program("pasta"))]
fn twice() {}

fn main() {}
