//! What a test crate takes on by adding userns-test to its
//! dev-dependencies: every crate of userns-test's graph is linked into the
//! user's tests, with its trait impls (which take part in the user's type
//! inference) and its platforms (which must build wherever the user's
//! tests build). A new dependency is a decision, made here, not an
//! accident of `cargo add`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::text;

/// Every crate in the normal dependency graph of `userns-test` (the
/// attribute macros included), on every target, and why it may be there.
/// None implements a std trait between a std type and a type of its own
/// in a way that adds a candidate to the user's inference (`serde_json`'s
/// `PartialEq<Value> for u8` did; see `tests/consumer/tests/inference`).
const ALLOWED: &[(&str, &str)] = &[
    ("userns-test", "this crate"),
    ("userns-test-macros", "the attributes and main!"),
    // The attributes' parser, as every proc-macro crate has it.
    ("proc-macro2", "syn's token streams"),
    ("quote", "the macros' output"),
    ("syn", "parsing the annotated functions"),
    ("unicode-ident", "syn's identifiers"),
    // The runner: libtest-mimic 0.8 (the harness) and its dependencies.
    ("libtest-mimic", "the runner's harness"),
    ("escape8259", "libtest-mimic's JSON output"),
    ("clap", "libtest-mimic's arguments"),
    ("clap_builder", "clap"),
    ("clap_derive", "clap's derive, used by libtest-mimic"),
    ("clap_lex", "clap"),
    ("heck", "clap_derive's names"),
    ("strsim", "clap's suggestions"),
    ("anstream", "clap's coloured output"),
    ("anstyle", "clap's styles"),
    ("anstyle-parse", "anstream"),
    ("anstyle-query", "anstream's terminal detection"),
    ("anstyle-wincon", "anstream on Windows consoles"),
    ("colorchoice", "anstream"),
    ("is_terminal_polyfill", "anstream"),
    ("utf8parse", "anstyle-parse"),
    ("once_cell_polyfill", "anstyle-wincon (Windows)"),
    ("windows-sys", "anstream on Windows"),
    ("windows-link", "windows-sys"),
    // Collecting the annotated tests of a binary.
    ("inventory", "the runner's registry of tests"),
    ("rustversion", "inventory, on some targets"),
    // Linux only: the probes, the namespaces, the hardened files.
    ("libc", "Linux system calls (Linux only)"),
    ("nix", "Linux system calls (Linux only)"),
    ("bitflags", "nix's flags (Linux only)"),
    ("cfg-if", "nix (Linux only)"),
];

/// Crates that do not build for a target: never in its graph.
const LINUX_ONLY: &[&str] = &["nix", "libc"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// The crate names in the normal graph of `package` for `target`
/// (`all`: every target).
fn graph(package: &str, target: &str) -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-q", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package, "--target", target])
        .current_dir(workspace())
        .output()
        .expect("cargo tree");
    assert!(out.status.success(), "cargo tree: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_dependency_graph_is_the_allowed_one() {
    let allowed: BTreeSet<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
    for package in ["userns-test", "userns-test-macros"] {
        let found = graph(package, "all");
        let unlisted: Vec<&String> = found
            .iter()
            .filter(|c| !allowed.contains(c.as_str()))
            .collect();
        assert!(
            unlisted.is_empty(),
            "{package} now depends on {unlisted:?}: every crate of its graph is linked into \
             its users' tests (trait impls, platforms, build time); if it must stay, add it to \
             ALLOWED with why, after checking its trait impls on std types"
        );
    }
    // The list says what is, not what was: a crate gone leaves it.
    let everything = graph("userns-test", "all");
    let stale: Vec<&&str> = allowed
        .iter()
        .filter(|c| !everything.contains(**c))
        .collect();
    assert!(stale.is_empty(), "no longer in the graph: {stale:?}");
}

/// `nix` does not build on Windows, nor its Linux-only features on macOS:
/// there the graph holds only what builds there.
#[test]
fn other_systems_get_no_linux_only_crate() {
    // 32-bit ARM Linux too: the probes are written for x86_64, aarch64 and
    // riscv64, and elsewhere the crate builds without them.
    for target in [
        "x86_64-pc-windows-msvc",
        "aarch64-apple-darwin",
        "armv7-unknown-linux-gnueabihf",
    ] {
        let found = graph("userns-test", target);
        assert!(found.contains("libtest-mimic"), "{target}: {found:?}");
        for crate_name in LINUX_ONLY {
            assert!(
                !found.contains(*crate_name),
                "{target} would build {crate_name}: {found:?}"
            );
        }
    }
    let linux = graph("userns-test", "x86_64-unknown-linux-gnu");
    assert!(LINUX_ONLY.iter().all(|c| linux.contains(*c)), "{linux:?}");
}

/// The consumer's inference patterns have teeth: with `serde_json` loaded
/// in their place (it was userns-test's dependency), each one stops
/// compiling with "type annotations needed".
#[test]
fn the_inference_patterns_break_under_serde_json() {
    let patterns_path = workspace().join("tests/consumer/tests/inference/patterns.rs");
    let patterns = std::fs::read_to_string(&patterns_path).expect("the patterns");
    let expected: Vec<usize> = patterns
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("fn "))
        .map(|(i, _)| i + 1)
        .collect();
    assert!(expected.len() >= 9, "{expected:?}");

    // A crate of its own in the target directory (kept, so a second run
    // reuses the build), resolved offline from what this workspace locked.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .expect("the target directory");
    let dir = target.join("inference-check");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let lock = std::fs::read_to_string(workspace().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"serde_json\"\n"))
        .and_then(|p| p.split("version = \"").nth(1))
        .and_then(|v| v.split('"').next())
        .expect("serde_json in Cargo.lock (userns-test-cli uses it)");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"inference-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[dependencies]\nserde_json = \"={version}\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(dir.join("tests/patterns.rs"), &patterns).unwrap();
    std::fs::write(
        dir.join("tests/check.rs"),
        "use serde_json as _;\nmod patterns;\n",
    )
    .unwrap();
    let _ = std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--tests", "--offline", "--message-format", "short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .expect("cargo build");
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "it compiled:\n{stderr}");
    // Each pattern's body (the lines after its `fn`, up to the next one)
    // holds an inference error.
    let failing: BTreeSet<usize> = stderr
        .lines()
        .filter(|l| l.contains("tests/patterns.rs:") && l.contains("error"))
        .filter_map(|l| {
            l.split("tests/patterns.rs:")
                .nth(1)?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let mut bounds = expected.clone();
    bounds.push(usize::MAX);
    for pair in bounds.windows(2) {
        assert!(
            failing.iter().any(|&l| l > pair[0] && l < pair[1]),
            "the pattern at patterns.rs:{} compiles with serde_json loaded:\n{stderr}",
            pair[0]
        );
    }
    assert!(stderr.contains("type annotations needed"), "{stderr}");
}
