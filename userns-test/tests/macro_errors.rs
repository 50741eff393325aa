//! Compile-time errors of `#[requires_userns]` and `main!()`, pinned with
//! trybuild.
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
    t.compile_fail("tests/ui/parameterised_errors.rs");
    t.pass("tests/ui/pass_forms.rs");
    t.compile_fail("tests/ui/in_userns_errors.rs");
    t.pass("tests/ui/in_userns_forms.rs");
}

/// `main!()` reads the target's source and refuses to compile it while it
/// holds functions the runner would never run (trybuild builds each file as
/// a binary, without `--test`: as cargo builds a `harness = false` target).
#[test]
fn main_lists_what_would_never_run() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/main_never_runs.rs");
    t.compile_fail("tests/ui/main_bad_argument.rs");
}

/// The macro's list of names is the library's list, in order.
#[test]
fn macro_and_library_agree_on_names() {
    let from_macro: [&str; 25] = userns_test_macros::__ability_names!();
    let from_library = userns_test::Ability::ALL.map(|a| a.name());
    assert_eq!(from_macro, from_library);
}

/// Under the default harness (a `--test` build, which trybuild cannot
/// make), `#[test]` above `#[requires_userns]` used to register the test
/// twice ("running 3 tests" for 2 functions); it is a compile error with
/// the fix, and the other order builds and registers once.
#[test]
fn test_attribute_above_is_an_error_under_the_default_harness() {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return userns_test::skip(module_path!(), "not run by cargo: CARGO is unset");
    };
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<this>: build in the same target directory, so the
    // dependencies are reused.
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join(format!("userns-test-scratch/order-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"order-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             [workspace]\n[dev-dependencies]\nuserns-test = {{ path = {:?} }}\n\
             tokio = {{ version = \"1.40\", default-features = false, features = \
             [\"rt\", \"macros\"] }}\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let build = |body: &str, list: bool| {
        std::fs::write(dir.join("tests/order.rs"), body).unwrap();
        let mut cmd = std::process::Command::new(&cargo);
        cmd.args(if list { "test" } else { "build" }.split(' '))
            .args(["--tests", "--offline", "--quiet", "--target-dir"])
            .arg(&target)
            .arg("--manifest-path")
            .arg(dir.join("Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR");
        if list {
            cmd.args(["--", "--list", "--format", "terse"]);
        }
        cmd.output().unwrap()
    };
    let reversed = build(
        "#[test]\n#[userns_test::requires_userns(user)]\nfn reversed() {}\n\n\
         #[tokio::test]\n#[userns_test::requires_userns(user)]\nasync fn reversed_async() {}\n",
        false,
    );
    let stderr = String::from_utf8_lossy(&reversed.stderr);
    assert!(!reversed.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "#[test] above #[requires_userns(...)]: the test would be registered twice under \
             the default harness"
        ) && stderr.contains("write #[requires_userns(...)] above #[test]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("write #[requires_userns(...)] above #[tokio::test]"),
        "{stderr}"
    );
    let right = build(
        "#[userns_test::requires_userns(user)]\n#[test]\nfn right() {}\n\n\
         #[userns_test::requires_userns(user)]\nfn added() {}\n",
        true,
    );
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&right.stdout),
        "added: test\nright: test\n",
        "each test registered once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The macro's capability names are the library's, in number order.
#[test]
fn macro_and_library_agree_on_capabilities() {
    let from_macro: [&str; 41] = userns_test_macros::__capability_names!();
    assert_eq!(from_macro, userns_test::capability::NAMES);
}
