//! A consumer's test target that uses userns-test, beside code that never
//! mentions it: userns-test and everything it links are loaded into this
//! crate, so their trait impls take part in type inference here. Every
//! pattern in `inference/patterns.rs` must still compile.

#[path = "inference/patterns.rs"]
mod patterns;

#[userns_test::test]
fn under_userns_test() {
    assert_eq!(userns_test_consumer::answer(), 42);
}
