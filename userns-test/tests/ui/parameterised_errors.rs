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

#[requires_userns(landlock(abi < 1))]
fn below_one() {}

#[requires_userns(cap(sys_ptrce))]
fn misspelt_capability() {}

#[requires_userns(cap("sys_ptrace"))]
fn capability_as_a_string() {}

#[requires_userns(cap)]
fn no_capability() {}

#[requires_userns(kernel(6.1))]
fn kernel_without_bound() {}

#[requires_userns(kernel(>= 6))]
fn kernel_major_only() {}

#[requires_userns(kernel(>= 6.1.2.3))]
fn kernel_four_numbers() {}

#[requires_userns(cap(sys_admin), cap(CAP_SYS_ADMIN))]
fn capability_twice() {}

fn main() {}
