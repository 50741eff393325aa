// A module file: scanned too. Comments and strings are not code:
// #[test] fn in_a_comment() {}
const S: &str = "#[test] fn in_a_string() {}";

#[test]
fn in_a_module_file() {}
