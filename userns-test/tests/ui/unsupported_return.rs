use userns_test::requires_userns;

#[requires_userns(user)]
fn returns_a_number() -> u32 {
    7
}

fn main() {}
