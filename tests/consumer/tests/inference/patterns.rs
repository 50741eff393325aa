//! Code that type-checks with the standard library's trait impls alone, and
//! stops when a crate in the test's graph implements a std trait between a
//! primitive and a type of its own (`serde_json` has `PartialEq<Value>` for
//! `u8`, `i64`, `f64`, `bool`, ..., `From<f32>` and `FromStr` for `Value`):
//! each comparison then has two candidate types, and rustc asks for
//! annotations (E0282, E0283, E0284, E0790). userns-test's own
//! `tests/dependencies.rs` checks, with `serde_json` in this file's place,
//! that every function here fails that way.

// Written as users write them, not as clippy would.
#![allow(clippy::useless_conversion, clippy::unnecessary_cast)]

#[test]
fn sum_compared_with_a_literal() {
    let v = [1u8, 2];
    assert_eq!(3u8, v.iter().sum());
}

#[test]
fn product_compared_with_a_typed_value() {
    let v = [2i64, 3];
    let n: i64 = 6;
    assert_eq!(n, v.iter().product());
}

#[test]
fn cast_to_an_inferred_type() {
    let x: i32 = 0;
    assert!(x == 0 as _);
}

#[test]
fn empty_vec_literal() {
    let v: Vec<i32> = Vec::new();
    assert_eq!(v, vec![]);
}

#[test]
fn float_widened_by_into() {
    let f = 1.5f64;
    assert!(f == 1.5f32.into());
}

#[test]
fn parsed_value_compared() {
    assert_eq!(2u64, "2".parse().unwrap());
}

#[test]
fn converted_value_compared() {
    let x = 7i64;
    assert_eq!(7u32, x.try_into().unwrap());
}

#[test]
fn default_compared() {
    let b = false;
    assert!(b == Default::default());
}

#[test]
fn from_without_a_type() {
    let t = true;
    assert_eq!(t, From::from(true));
}
