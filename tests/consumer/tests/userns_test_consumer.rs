//! The integration test named after the package.

#[userns_test::test]
fn integration_test() {
    assert!(
        !userns_test_consumer::asked_to_fail("integration_test"),
        "the integration test fails on purpose"
    );
}
