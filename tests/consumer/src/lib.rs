//! A library with unit tests under userns-test, and an integration test
//! named after the package (`tests/userns_test_consumer.rs`): two test
//! binaries whose crates share one name. Each test fails when
//! `CONSUMER_FAIL` names it, and passes otherwise.

/// What the library does: nothing but be tested.
pub fn answer() -> u32 {
    42
}

/// Whether `CONSUMER_FAIL` names `test`.
pub fn asked_to_fail(test: &str) -> bool {
    std::env::var("CONSUMER_FAIL").is_ok_and(|v| v == test)
}

#[cfg(test)]
mod tests {
    #[userns_test::test]
    fn unit_test() {
        assert!(
            !super::asked_to_fail("unit_test"),
            "the unit test fails on purpose"
        );
        assert_eq!(super::answer(), 42);
    }
}
