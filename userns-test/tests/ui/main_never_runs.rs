//! A harness = false target (trybuild builds this file as one: no
//! `--test`): every function below that the runner would never run is
//! listed by `main!()`, with what to write instead.
use userns_test::requires_userns;

#[requires_userns(user)]
fn collected() {}

#[userns_test::test]
fn collected_too() {}

#[requires_userns(net)]
#[tokio::test]
async fn collected_async() {}

#[test]
fn plain() {}

#[test]
#[requires_userns(user)]
fn reversed() {}

#[tokio::test]
#[requires_userns(user)]
async fn reversed_async() {}

// Not listed: cargo passes `--cfg test` to harness = false targets too.
#[cfg(test)]
mod tests {
    #[userns_test::requires_userns(user)]
    fn in_cfg_test() {}
}

#[path = "main_never_runs/submodule.rs"]
mod submodule;

userns_test::main!();
