//! Prints this host's verdict on every ability, with reasons.
//!
//! `cargo run -p userns-test --example abilities`
fn main() {
    println!("host: {}", userns_test::HostFacts::get().summary());
    for verdict in userns_test::abilities() {
        println!("{verdict}  [{} us]", verdict.duration.as_micros());
    }
}
