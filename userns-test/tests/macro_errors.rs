//! Compile-time errors of `#[requires_userns]`, pinned with trybuild.
//! Update the expected messages with `TRYBUILD=overwrite cargo test
//! --test macro_errors`, then review the diff.

#[test]
fn attribute_errors_and_forms() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/unknown_ability.rs");
    t.compile_fail("tests/ui/duplicate_ability.rs");
    t.compile_fail("tests/ui/no_ability.rs");
    t.compile_fail("tests/ui/not_a_function.rs");
    t.compile_fail("tests/ui/async_without_runtime.rs");
    t.compile_fail("tests/ui/far_from_any_name.rs");
    t.compile_fail("tests/ui/not_names.rs");
    t.compile_fail("tests/ui/unsupported_return.rs");
    t.pass("tests/ui/pass_forms.rs");
}

/// The macro's list of names is the library's list, in order.
#[test]
fn macro_and_library_agree_on_names() {
    let from_macro: [&str; 17] = userns_test_macros::__ability_names!();
    let from_library = userns_test::Ability::ALL.map(|a| a.name());
    assert_eq!(from_macro, from_library);
}
