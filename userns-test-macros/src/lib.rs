//! `#[requires_userns(...)]`, re-exported by the `userns-test` crate; use
//! it from there. Parsing, validation (with spans and suggestions) and
//! expansion are kept apart, in the manner of `tokio-macros`.

mod source;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, ItemFn, Meta, Token};

/// The ability names and their `userns_test::Ability` variants. The
/// library's `Ability::ALL` is checked against this list by its tests.
const ABILITIES: [(&str, &str); 25] = [
    ("user", "User"),
    ("cap_sys_admin", "CapSysAdmin"),
    ("mount", "Mount"),
    ("net", "Net"),
    ("pid", "Pid"),
    ("ipc", "Ipc"),
    ("uts", "Uts"),
    ("cgroup", "Cgroup"),
    ("time", "Time"),
    ("nested", "Nested"),
    ("cap_setpcap", "CapSetpcap"),
    ("bwrap", "Bwrap"),
    ("bwrap_net", "BwrapNet"),
    ("seccomp", "Seccomp"),
    ("landlock", "Landlock"),
    ("subids", "Subids"),
    ("root", "Root"),
    ("unprivileged", "Unprivileged"),
    ("new_privs", "NewPrivs"),
    ("kvm", "Kvm"),
    ("tun", "Tun"),
    ("fuse", "Fuse"),
    ("overlay", "Overlay"),
    ("pivot_root", "PivotRoot"),
    ("cgroup_delegation", "CgroupDelegation"),
];

/// The parameterised requirements, with an example of each.
const PARAMETERISED: [(&str, &str); 4] = [
    ("program", "program(\"pasta\")"),
    ("landlock", "landlock(abi >= 4)"),
    ("cap", "cap(sys_ptrace)"),
    ("kernel", "kernel(>= 6.1)"),
];

/// The capabilities by number, as `capabilities(7)` names them (lowercase,
/// without `CAP_`); a proc-macro crate can export nothing else, so the
/// library keeps its own copy, `capability::NAMES`, held equal to this one
/// by its `tests/macro_errors.rs` through `__capability_names!`.
const CAPABILITIES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// One parsed requirement: the `userns_test::Ability` it names.
struct Requirement {
    /// What identifies it, for duplicates: `net`, `program(pasta)`.
    key: String,
    /// The span of its name.
    span: Span,
    /// `::userns_test::Ability::...`, spanned at the user's word.
    tokens: TokenStream2,
}

/// Attribute paths, by last segment, that already make a function a test.
const TEST_ATTRIBUTES: [&str; 3] = ["test", "rstest", "test_case"];

/// Runs the test where the host allows every listed ability; skips it with
/// the reason elsewhere. See the `userns-test` crate.
#[proc_macro_attribute]
pub fn requires_userns(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into(), Arguments::Required) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// A test without requirements that the `userns-test` runner collects
/// (and that stays a plain `#[test]` under the default harness).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into(), Arguments::None) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Runs the test body as root of a fresh user namespace, inside the listed
/// namespaces, in a process of its own; skips it where the host cannot
/// provide them. See the `userns-test` crate.
#[proc_macro_attribute]
pub fn in_userns(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into(), Arguments::Namespaces) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// What the attribute takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arguments {
    /// Ability names: `#[requires_userns(...)]`.
    Required,
    /// Nothing: `#[userns_test::test]`.
    None,
    /// Namespace names: `#[in_userns(...)]`.
    Namespaces,
}

/// The namespaces `#[in_userns(...)]` enters, with the
/// `userns_test::Namespace` variant and the abilities each implies.
const NAMESPACES: [(&str, &str, &[&str]); 7] = [
    ("net", "Net", &["Net"]),
    ("mount", "Mount", &["Mount"]),
    ("pid", "Pid", &["Pid", "Mount"]),
    ("uts", "Uts", &["Uts"]),
    ("ipc", "Ipc", &["Ipc"]),
    ("cgroup", "Cgroup", &["Cgroup"]),
    ("time", "Time", &["Time"]),
];

/// One namespace of `#[in_userns(...)]`.
struct NamespaceArg {
    name: &'static str,
    span: Span,
}

/// What `#[in_userns(...)]` enters: its namespaces, and how many uids and
/// gids its user namespace maps (`ids = N`; 1, uid 0 alone, by default).
struct Entered {
    namespaces: Vec<NamespaceArg>,
    ids: Option<(u32, Span)>,
}

/// The largest `ids = N`: uids run 0 to 4294967294 (`(uid_t)-1` is no
/// uid), so a map holds at most 4294967295 of them.
const MAX_IDS: u64 = u32::MAX as u64;

/// The ability names known to this macro, for the library's consistency
/// test. Not public API.
#[doc(hidden)]
#[proc_macro]
pub fn __ability_names(_: TokenStream) -> TokenStream {
    let names = ABILITIES.iter().map(|(n, _)| n);
    quote!([#(#names),*]).into()
}

/// The capability names known to this macro, in number order, for the
/// library's consistency test. Not public API.
#[doc(hidden)]
#[proc_macro]
pub fn __capability_names(_: TokenStream) -> TokenStream {
    let names = CAPABILITIES.iter();
    quote!([#(#names),*]).into()
}

fn expand(args: TokenStream2, item: TokenStream2, kind: Arguments) -> syn::Result<TokenStream2> {
    check_nothing_above(kind)?;
    let mut requirements = Vec::new();
    let mut namespaces: Option<Entered> = None;
    match kind {
        Arguments::Required => requirements = parse_requirements(args)?,
        Arguments::None if args.is_empty() => {}
        Arguments::None => {
            return Err(syn::Error::new(
                first_token_span(&args),
                "#[userns_test::test] takes no arguments; use #[requires_userns(...)] for \
                 requirements",
            ));
        }
        Arguments::Namespaces => namespaces = Some(parse_namespaces(args)?),
    }
    let mut function: ItemFn = syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new(
            first_token_span(&item),
            match kind {
                Arguments::Namespaces => "#[in_userns] applies to test functions only",
                _ => "#[requires_userns] applies to test functions only",
            },
        )
    })?;
    take_partner(&mut function, kind, &mut requirements, &mut namespaces)?;
    check_function(&function, namespaces.is_some())?;
    Ok(expand_function(
        function,
        &requirements,
        namespaces.as_ref(),
    ))
}

/// `#[requires_userns]` and `#[in_userns]` go together in either order:
/// the one expanded first finds the other still on the function, takes its
/// arguments and removes it, and expands both.
fn take_partner(
    function: &mut ItemFn,
    kind: Arguments,
    requirements: &mut Vec<Requirement>,
    namespaces: &mut Option<Entered>,
) -> syn::Result<()> {
    let partner = match kind {
        Arguments::Namespaces => "requires_userns",
        _ => "in_userns",
    };
    let Some(i) = function
        .attrs
        .iter()
        .position(|a| a.path().segments.last().is_some_and(|s| s.ident == partner))
    else {
        return Ok(());
    };
    let attr = function.attrs.remove(i);
    let args = match &attr.meta {
        Meta::List(list) => list.tokens.clone(),
        _ => TokenStream2::new(),
    };
    match kind {
        Arguments::Namespaces => {
            for r in parse_requirements(args)? {
                if !requirements.iter().any(|have| have.key == r.key) {
                    requirements.push(r);
                }
            }
        }
        Arguments::Required => *namespaces = Some(parse_namespaces(args)?),
        Arguments::None => {
            return Err(syn::Error::new(
                attr.span(),
                "#[in_userns] makes the function a test already: remove #[userns_test::test]",
            ));
        }
    }
    Ok(())
}

/// `net, mount, pid, ids = 65536`: the namespaces to enter (a user
/// namespace always; `user` may be listed) and the ids to map. Unknown and
/// repeated names are errors at the name, an ability that is not a
/// namespace points to `#[requires_userns]`.
fn parse_namespaces(args: TokenStream2) -> syn::Result<Entered> {
    let names: Vec<&str> = NAMESPACES.iter().map(|(n, _, _)| *n).collect();
    let items = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(args)
        .map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "expected namespace names separated by commas, e.g. #[in_userns(net, \
                     mount)]; namespaces: {}",
                    names.join(", ")
                ),
            )
        })?;
    let mut out: Vec<NamespaceArg> = Vec::new();
    let mut user: Option<Span> = None;
    let mut ids: Option<(u32, Span)> = None;
    for item in items {
        if let Meta::NameValue(nv) = &item
            && nv.path.is_ident("ids")
        {
            let span = nv.path.span();
            if ids.is_some() {
                return Err(syn::Error::new(span, "`ids` is given twice"));
            }
            ids = Some((parse_ids(&nv.value)?, span));
            continue;
        }
        let Some(ident) = item
            .path()
            .get_ident()
            .filter(|_| matches!(item, Meta::Path(_)))
        else {
            return Err(syn::Error::new(
                item.span(),
                "a namespace is one word, e.g. `net`",
            ));
        };
        let text = ident.to_string();
        let span = ident.span();
        if text == "user" {
            if user.replace(span).is_some() {
                return Err(syn::Error::new(span, "namespace `user` is listed twice"));
            }
            continue;
        }
        let Some((name, _, _)) = NAMESPACES.iter().find(|(n, _, _)| *n == text) else {
            let message = if ABILITIES.iter().any(|(n, _)| *n == text)
                || PARAMETERISED.iter().any(|(n, _)| *n == text)
            {
                format!(
                    "`{text}` is an ability, not a namespace: add #[requires_userns({text})] \
                     for it; namespaces: {}",
                    names.join(", ")
                )
            } else {
                match closest_in(&text, &names) {
                    Some(s) => format!("unknown namespace `{text}`; did you mean `{s}`?"),
                    None => format!(
                        "unknown namespace `{text}`; namespaces: {}",
                        names.join(", ")
                    ),
                }
            };
            return Err(syn::Error::new(span, message));
        };
        if let Some(first) = out.iter().find(|n| n.name == *name) {
            let mut e = syn::Error::new(span, format!("namespace `{name}` is listed twice"));
            e.combine(syn::Error::new(first.span, "first listed here"));
            return Err(e);
        }
        out.push(NamespaceArg { name, span });
    }
    Ok(Entered {
        namespaces: out,
        ids,
    })
}

/// `ids = N`: a whole number from 2 (uid 0 and one more) to [`MAX_IDS`].
fn parse_ids(value: &syn::Expr) -> syn::Result<u32> {
    let literal = match value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => int,
        other => {
            return Err(syn::Error::new(
                other.span(),
                "`ids` takes a whole number, written out: e.g. `ids = 65536` (uids and gids \
                 0 to 65535 mapped)",
            ));
        }
    };
    let n: u64 = literal.base10_parse().map_err(|_| {
        syn::Error::new(
            literal.span(),
            format!("`ids = {literal}` is larger than an id range can be (at most {MAX_IDS})"),
        )
    })?;
    match n {
        0 => Err(syn::Error::new(
            literal.span(),
            "`ids = 0` maps no id, not even uid 0: give the number of ids, e.g. `ids = 65536`",
        )),
        1 => Err(syn::Error::new(
            literal.span(),
            "`ids = 1` maps uid 0 alone, as without `ids`: remove it, or give more, e.g. \
             `ids = 65536`",
        )),
        n if n > MAX_IDS => Err(syn::Error::new(
            literal.span(),
            format!("`ids = {n}` is larger than an id range can be (at most {MAX_IDS})"),
        )),
        n => Ok(n as u32),
    }
}

/// A test attribute written above this one (`#[test]`, `#[tokio::test]`,
/// ...) has already been expanded by the time this macro runs, and is
/// gone from its input: under the default harness the function would be
/// registered twice, and in a `harness = false` target it is removed
/// before it can be registered. The source file says it was there.
fn check_nothing_above(kind: Arguments) -> syn::Result<()> {
    let call = proc_macro::Span::call_site();
    let Some(tokens) = call.local_file().and_then(|f| source::tokens_of(&f)) else {
        return Ok(());
    };
    let above = source::attributes_above(&tokens, call.line(), call.column());
    let Some(test) = above.iter().find(|a| a.makes_a_test()) else {
        return Ok(());
    };
    let ours = match kind {
        Arguments::Required => "requires_userns(...)",
        Arguments::None => "userns_test::test",
        Arguments::Namespaces => "in_userns(...)",
    };
    let test = test.path_text();
    Err(syn::Error::new(
        Span::call_site(),
        format!(
            "#[{test}] above #[{ours}]: the test would be registered twice under the default \
             harness, and dropped by the runner of a harness = false target; write #[{ours}] \
             above #[{test}]"
        ),
    ))
}

/// `userns_test::main!()`: the `main` of a `harness = false` target. It
/// also reads the target's source: a function there that the runner would
/// never run (a plain `#[test]`, a test attribute above this crate's, a
/// test with parameters) is a compile error listing each, with what to
/// write instead; `main!(warn_uncollected)` compiles anyway and lists them
/// after every run.
#[proc_macro]
pub fn main(input: TokenStream) -> TokenStream {
    match expand_main(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_main(input: TokenStream2) -> syn::Result<TokenStream2> {
    let warn = match syn::parse2::<Option<Ident>>(input.clone()) {
        Ok(None) => false,
        Ok(Some(word)) if word == "warn_uncollected" => true,
        _ => {
            // The error, and a `main` that lists nothing: the one error.
            let error = syn::Error::new(
                first_token_span(&input),
                "userns_test::main!() takes nothing, or `warn_uncollected` (list the functions \
                 the runner never runs after every run, instead of failing to compile)",
            )
            .to_compile_error();
            let main = main_fn(&[]);
            return Ok(quote!(#error #main));
        }
    };
    let never = proc_macro::Span::call_site()
        .local_file()
        .map(|f| source::never_run(&f))
        .unwrap_or_default();
    let notes: Vec<String> = never
        .iter()
        .map(|n| format!("{}: `{}`: {}", n.location, n.name, n.why))
        .collect();
    let main = main_fn(if warn { &notes } else { &[] });
    if notes.is_empty() || warn {
        return Ok(main);
    }
    // The list, and `main` too: the error is the only one reported.
    let error = syn::Error::new(
        Span::call_site(),
        format!(
            "userns-test: {} function{} of this harness = false target would never run:\n  {}\n\
             (userns_test::main!(warn_uncollected) compiles anyway and lists them after every run)",
            notes.len(),
            if notes.len() == 1 { "" } else { "s" },
            notes.join("\n  ")
        ),
    )
    .to_compile_error();
    Ok(quote!(#error #main))
}

/// The `main` of a runner target, listing `notes` after every run.
fn main_fn(notes: &[String]) -> TokenStream2 {
    quote! {
        fn main() -> ::std::process::ExitCode {
            // Named as nextest names it (`package::target`) under every
            // runner, so reports from cargo test and nextest line up.
            ::userns_test::__private::run_main(
                ::core::concat!(
                    ::core::env!("CARGO_PKG_NAME"),
                    "::",
                    ::core::env!("CARGO_CRATE_NAME")
                ),
                &[#(#notes),*],
            )
        }
    }
}

/// Parses `net, cap_sys_admin, program("pasta"), landlock(abi >= 4)` into
/// requirements, rejecting unknown, repeated, malformed and missing ones
/// with a span on the offending word.
fn parse_requirements(args: TokenStream2) -> syn::Result<Vec<Requirement>> {
    let items = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(args.clone())
        .map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected ability names separated by commas, e.g. #[requires_userns(user, net)] \
                 or #[requires_userns(program(\"pasta\"), landlock(abi >= 4))]",
            )
        })?;
    if items.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            format!(
                "#[requires_userns] needs at least one ability, e.g. #[requires_userns(user)]; \
                 known abilities: {}",
                known_names()
            ),
        ));
    }
    let mut seen: Vec<Requirement> = Vec::new();
    for item in items {
        let requirement = requirement(&item)?;
        if let Some(first) = seen.iter().find(|r| r.key == requirement.key) {
            let mut e = syn::Error::new(
                requirement.span,
                format!("ability `{}` is listed twice", requirement.key),
            );
            e.combine(syn::Error::new(first.span, "first listed here"));
            return Err(e);
        }
        seen.push(requirement);
    }
    Ok(seen)
}

/// One requirement: a name, or `program("...")`, or `landlock(abi >= N)`.
fn requirement(item: &Meta) -> syn::Result<Requirement> {
    let path = item.path();
    let Some(name) = path.get_ident() else {
        return Err(syn::Error::new(
            path.span(),
            "an ability is one word, e.g. `net`, or `program(\"pasta\")`",
        ));
    };
    let text = name.to_string();
    let span = name.span();
    match (text.as_str(), item) {
        ("program", Meta::List(list)) => {
            let lit: syn::LitStr = syn::parse2(list.tokens.clone()).map_err(|_| {
                syn::Error::new(
                    list.tokens.span(),
                    "program(...) takes the program's name or absolute path as a string, e.g. \
                     program(\"pasta\")",
                )
            })?;
            let program = lit.value();
            if let Err(problem) = valid_program(&program) {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("program({program:?}): {problem}"),
                ));
            }
            Ok(Requirement {
                key: format!("program({program})"),
                span,
                tokens: quote_spanned!(span=> ::userns_test::Ability::Program(#lit)),
            })
        }
        ("landlock", Meta::List(list)) => {
            let (bound, abi) = parse_abi(list.tokens.clone())?;
            let (key, tokens) = match bound {
                AbiBound::AtLeast => (
                    format!("landlock(abi>={abi})"),
                    quote_spanned!(span=> ::userns_test::Ability::LandlockAbi(#abi)),
                ),
                AbiBound::Exactly => (
                    format!("landlock(abi=={abi})"),
                    quote_spanned!(span=> ::userns_test::Ability::LandlockAbiExactly(#abi)),
                ),
                AbiBound::Below => (
                    format!("landlock(abi<{abi})"),
                    quote_spanned!(span=> ::userns_test::Ability::LandlockAbiBelow(#abi)),
                ),
            };
            Ok(Requirement { key, span, tokens })
        }
        ("cap", Meta::List(list)) => {
            let cap = parse_capability(list.tokens.clone())?;
            Ok(Requirement {
                key: format!("cap({})", CAPABILITIES[usize::from(cap)]),
                span,
                tokens: quote_spanned!(span=> ::userns_test::Ability::Cap(#cap)),
            })
        }
        ("kernel", Meta::List(list)) => {
            let (major, minor, patch, with_patch) = parse_kernel(list.tokens.clone())?;
            let shown = if with_patch {
                format!("{major}.{minor}.{patch}")
            } else {
                format!("{major}.{minor}")
            };
            Ok(Requirement {
                key: format!("kernel(>={shown})"),
                span,
                tokens: quote_spanned!(span=> ::userns_test::Ability::Kernel(
                    ::userns_test::KernelVersion {
                        major: #major,
                        minor: #minor,
                        patch: #patch,
                        with_patch: #with_patch,
                    }
                )),
            })
        }
        ("cap", _) => Err(syn::Error::new(
            span,
            "cap needs a capability, e.g. cap(sys_ptrace)",
        )),
        ("kernel", _) => Err(syn::Error::new(
            span,
            "kernel needs a minimum release, e.g. kernel(>= 6.1)",
        )),
        ("program", _) => Err(syn::Error::new(
            span,
            "program needs the program, e.g. program(\"pasta\")",
        )),
        (_, Meta::List(list)) if ABILITIES.iter().any(|(n, _)| *n == text) => Err(syn::Error::new(
            list.delimiter.span().join(),
            format!("ability `{text}` takes no arguments"),
        )),
        (_, Meta::NameValue(nv)) => Err(syn::Error::new(
            nv.eq_token.span,
            format!("an ability takes no value: write `{text}`"),
        )),
        (_, Meta::Path(_)) => match ABILITIES.iter().find(|(n, _)| *n == text) {
            Some((_, variant)) => {
                let variant = Ident::new(variant, span);
                Ok(Requirement {
                    key: text,
                    span,
                    // The variant carries the name's span, so a mismatch
                    // with the library points at the user's word.
                    tokens: quote_spanned!(span=> ::userns_test::Ability::#variant),
                })
            }
            None => Err(unknown(&text, span)),
        },
        _ => Err(unknown(&text, span)),
    }
}

fn unknown(text: &str, span: Span) -> syn::Error {
    let message = match closest(text) {
        Some(s) => format!("unknown ability `{text}`; did you mean `{s}`?"),
        None => format!(
            "unknown ability `{text}`; known abilities: {}",
            known_names()
        ),
    };
    syn::Error::new(span, message)
}

/// How `landlock(...)` bounds the ABI.
enum AbiBound {
    AtLeast,
    Exactly,
    Below,
}

/// `abi >= N`, `abi == N` or `abi < N`, N from 1 to 255 (from 2 for `<`:
/// below 1 is no Landlock, which `landlock` being unavailable says).
fn parse_abi(tokens: TokenStream2) -> syn::Result<(AbiBound, u8)> {
    let problem = |span: Span| {
        syn::Error::new(
            span,
            "landlock(...) takes an ABI bound: landlock(abi >= 4), landlock(abi == 4) or \
             landlock(abi < 4)",
        )
    };
    let parser = |input: syn::parse::ParseStream<'_>| {
        let word: Ident = input.parse()?;
        if word != "abi" {
            return Err(problem(word.span()));
        }
        let bound = if input.peek(Token![>=]) {
            let _: Token![>=] = input.parse()?;
            AbiBound::AtLeast
        } else if input.peek(Token![==]) {
            let _: Token![==] = input.parse()?;
            AbiBound::Exactly
        } else if input.peek(Token![<]) && !input.peek(Token![<=]) {
            let _: Token![<] = input.parse()?;
            AbiBound::Below
        } else {
            return Err(problem(input.span()));
        };
        let n: syn::LitInt = input.parse().map_err(|e| problem(e.span()))?;
        let least = if matches!(bound, AbiBound::Below) {
            2
        } else {
            1
        };
        match n.base10_parse::<u8>() {
            Ok(abi) if abi >= least => Ok((bound, abi)),
            _ if least == 2 => Err(syn::Error::new(
                n.span(),
                "landlock(abi < N) takes N from 2 up (below 1 is no Landlock at all: a test \
                 for that can check that `landlock` is unavailable)",
            )),
            _ => Err(syn::Error::new(
                n.span(),
                "a Landlock ABI version is a number from 1 (Linux 5.13) up",
            )),
        }
    };
    parser.parse2(tokens)
}

/// A capability's name: `sys_ptrace`, `cap_sys_ptrace` or
/// `CAP_SYS_PTRACE`; its number.
fn parse_capability(tokens: TokenStream2) -> syn::Result<u8> {
    let word: Ident = syn::parse2(tokens.clone()).map_err(|_| {
        syn::Error::new(
            tokens.span(),
            "cap(...) takes a capability's name, e.g. cap(sys_ptrace) or cap(CAP_NET_RAW)",
        )
    })?;
    let text = word.to_string();
    let lower = text.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    if let Some(i) = CAPABILITIES.iter().position(|c| *c == bare) {
        return Ok(i as u8);
    }
    let message = match closest_in(bare, &CAPABILITIES) {
        Some(s) => format!("unknown capability `{text}`; did you mean `{s}`?"),
        None => format!(
            "unknown capability `{text}`; capabilities: {}",
            CAPABILITIES.join(", ")
        ),
    };
    Err(syn::Error::new(word.span(), message))
}

/// `>= X.Y` or `>= X.Y.Z`: the numbers, and whether the patch level was
/// written.
fn parse_kernel(tokens: TokenStream2) -> syn::Result<(u16, u16, u16, bool)> {
    let problem = |span: Span| {
        syn::Error::new(
            span,
            "kernel(...) takes a minimum release, e.g. kernel(>= 6.1) or kernel(>= 5.15.2)",
        )
    };
    let parser = |input: syn::parse::ParseStream<'_>| {
        let _: Token![>=] = input.parse().map_err(|e| problem(e.span()))?;
        let rest: TokenStream2 = input.parse()?;
        let span = rest.span();
        let text: String = rest
            .to_string()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let parts: Vec<&str> = text.split('.').collect();
        let numbers: Option<Vec<u16>> = parts
            .iter()
            .map(|p| {
                (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect();
        match numbers.as_deref() {
            Some([major, minor]) => Ok((*major, *minor, 0, false)),
            Some([major, minor, patch]) => Ok((*major, *minor, *patch, true)),
            _ => Err(syn::Error::new(
                span,
                format!(
                    "`{text}` is not a kernel release: write X.Y or X.Y.Z, e.g. kernel(>= 6.1)"
                ),
            )),
        }
    };
    parser.parse2(tokens)
}

/// The library's rule (`userns_test::ability::valid_program`), checked at
/// compile time: a bare name (looked up on `PATH`) or an absolute path.
fn valid_program(program: &str) -> Result<(), &'static str> {
    if program.is_empty() {
        return Err("the program's name is empty");
    }
    if program.contains(['\0', '\n', '\r']) {
        return Err("the program's name holds a NUL or a line break");
    }
    if program.contains('/') && !program.starts_with('/') {
        return Err("a path must be absolute; a bare name is looked up on PATH");
    }
    Ok(())
}

fn check_function(function: &ItemFn, in_userns: bool) -> syn::Result<()> {
    if in_userns && !function.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            function.sig.inputs.span(),
            "an #[in_userns] test takes no arguments: its body runs in a new process that \
             finds it by name",
        ));
    }
    if function.sig.asyncness.is_some() && !has_test_attribute(function) {
        return Err(syn::Error::new(
            function.sig.asyncness.span(),
            "an async test needs a runtime's test attribute, e.g. \
             #[requires_userns(net)] #[tokio::test] async fn ...",
        ));
    }
    if let syn::ReturnType::Type(_, ty) = &function.sig.output
        && !returns_unit_or_result(ty)
    {
        return Err(syn::Error::new(
            ty.span(),
            "a #[requires_userns] test returns () or Result<(), E> (a skipped test returns \
             Ok(()))",
        ));
    }
    if !function.sig.inputs.is_empty() && !has_test_attribute(function) {
        return Err(syn::Error::new(
            function.sig.inputs.span(),
            "a test function takes no arguments (or add the attribute that provides them, such \
             as #[rstest])",
        ));
    }
    Ok(())
}

/// `()`, or a path ending in `Result` (`Result`, `io::Result`,
/// `anyhow::Result`, ...): the types the library can make a skip value of.
fn returns_unit_or_result(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Tuple(t) => t.elems.is_empty(),
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        syn::Type::Paren(p) => returns_unit_or_result(&p.elem),
        _ => false,
    }
}

fn has_test_attribute(function: &ItemFn) -> bool {
    function.attrs.iter().any(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| TEST_ATTRIBUTES.contains(&s.ident.to_string().as_str()))
    })
}

fn expand_function(
    function: ItemFn,
    requirements: &[Requirement],
    namespaces: Option<&Entered>,
) -> TokenStream2 {
    if let Some(entered) = namespaces {
        return expand_in_userns(function, requirements, entered);
    }
    let test_attribute = if has_test_attribute(&function) {
        quote!()
    } else {
        quote!(#[::core::prelude::v1::test])
    };
    let name = function.sig.ident.to_string();
    let body_fn = format_ident!("__userns_test_body_{}", function.sig.ident);
    let (cfgs, lints) = cfgs_and_lints(&function.attrs);
    let registration = runner_registration(&function, requirements, &body_fn, &cfgs);
    // `modifiers` only holds `default` (specialization), which a free
    // function cannot have.
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = function;
    let asyncness = &sig.asyncness;
    let output = &sig.output;
    let call = if asyncness.is_some() {
        quote!(#body_fn().await)
    } else {
        quote!(#body_fn())
    };
    let variants = variants(requirements);
    let gate = format_ident!("__userns_test_run");
    let running = format_ident!("__userns_test_running");
    let result = format_ident!("__userns_test_result");
    let (should_panic, expected) = should_panic_data(&attrs);
    let path = quote!(::core::concat!(::core::module_path!(), "::", #name));
    // Under libtest, the body's start and end are recorded, so that plain
    // mode's summary and reports know what ran, failed or was skipped.
    let recorded_call = quote! {
        let #running = ::userns_test::__private::Running::start(#path, #should_panic, #expected);
        let #result = #call;
        #running.finish(&#result);
        #result
    };
    let skip_return = skip_return(&should_panic, &expected);
    let gated_call = if requirements.is_empty() {
        quote!({ #recorded_call })
    } else {
        quote! {{
            let #gate = ::userns_test::__private::gate(#path, &[#(#variants),*]);
            if !#gate {
                #skip_return
            }
            #recorded_call
        }}
    };
    // Parameterised tests keep their body in place (their attribute
    // provides the arguments); the runner does not collect them.
    if !sig.inputs.is_empty() {
        return quote! {
            #test_attribute
            #(#attrs)*
            #vis #sig #block
            #registration
        };
    }
    quote! {
        // The body, once, for both ways of running.
        #(#cfgs)*
        #(#lints)*
        #[doc(hidden)]
        #asyncness fn #body_fn() #output #block

        // The default harness: a libtest test that passes the gate first.
        // (Stripped when the target is built without `--test`.)
        #test_attribute
        #(#attrs)*
        #vis #sig #gated_call

        // The runner: a registration it collects.
        #registration
    }
}

/// `#[in_userns(...)]`: the body, a synchronous entry to it for the child,
/// the libtest test (the gate, then the body run in a new process inside
/// the namespaces), the runner's registration of the same, and the
/// `.init_array` entry that enters the namespaces before `main` in that
/// process.
fn expand_in_userns(function: ItemFn, explicit: &[Requirement], entered: &Entered) -> TokenStream2 {
    let namespaces = &entered.namespaces[..];
    // The abilities entering the namespaces needs, then the others listed.
    let mut requirements: Vec<Requirement> = Vec::new();
    let mut imply = |variant: &str, span: Span| {
        let key = variant.to_ascii_lowercase();
        if !requirements.iter().any(|r| r.key == key) {
            let v = Ident::new(variant, span);
            requirements.push(Requirement {
                key,
                span,
                tokens: quote_spanned!(span=> ::userns_test::Ability::#v),
            });
        }
    };
    imply("User", Span::call_site());
    // More ids than uid 0 are mapped by newuidmap and newgidmap from this
    // user's subordinate ranges.
    if let Some((_, span)) = entered.ids {
        imply("Subids", span);
    }
    for n in namespaces {
        let (_, _, abilities) = NAMESPACES
            .iter()
            .find(|(name, _, _)| *name == n.name)
            .unwrap();
        for a in *abilities {
            imply(a, n.span);
        }
    }
    for r in explicit {
        if !requirements.iter().any(|have| have.key == r.key) {
            requirements.push(Requirement {
                key: r.key.clone(),
                span: r.span,
                tokens: r.tokens.clone(),
            });
        }
    }
    let namespace_tokens: Vec<TokenStream2> = namespaces
        .iter()
        .map(|n| {
            let (_, variant, _) = NAMESPACES
                .iter()
                .find(|(name, _, _)| *name == n.name)
                .unwrap();
            let v = Ident::new(variant, n.span);
            quote_spanned!(n.span=> ::userns_test::Namespace::#v)
        })
        .collect();
    let ids = entered.ids.map_or(1, |(n, _)| n);
    let ident = function.sig.ident.clone();
    let name = ident.to_string();
    let body_fn = format_ident!("__userns_test_body_{}", ident);
    let inner_fn = format_ident!("__userns_test_in_userns_{}", ident);
    let enter_static = format_ident!("__USERNS_TEST_ENTER_{}", ident);
    let enter_fn = format_ident!("__userns_test_enter_{}", ident);
    let before_main = format_ident!("__USERNS_TEST_BEFORE_MAIN_{}", ident);
    let (cfgs, lints) = cfgs_and_lints(&function.attrs);
    let runtime = runtime_entry_attribute(&function.attrs);
    let ignore = ignore_data(&function.attrs);
    let ignored = function.attrs.iter().any(|a| a.path().is_ident("ignore"));
    let (should_panic, expected) = should_panic_data(&function.attrs);
    let is_runtime_test = |a: &Attribute| {
        a.path().segments.len() > 1 && a.path().segments.last().is_some_and(|s| s.ident == "test")
    };
    // The libtest test is synchronous: a runtime's test attribute drives
    // the body in the child instead.
    let outer_attrs: Vec<Attribute> = function
        .attrs
        .iter()
        .filter(|a| !is_runtime_test(a))
        .cloned()
        .collect();
    let test_attribute = if outer_attrs.iter().any(|a| a.path().is_ident("test")) {
        quote!()
    } else {
        quote!(#[::core::prelude::v1::test])
    };
    let ItemFn {
        vis, sig, block, ..
    } = function;
    let asyncness = &sig.asyncness;
    let output = &sig.output;
    let inner_body = sync_entry(asyncness.is_some(), &runtime, output, &body_fn);
    let variants = variants(&requirements);
    let path = quote!(::core::concat!(::core::module_path!(), "::", #name));
    // `#[requires_userns(user)]` beside it: a user namespace or nothing.
    let user_required = explicit.iter().any(|r| r.key == "user");
    let entering = quote! {
        ::userns_test::__private::Entering {
            namespaces: &[#(#namespace_tokens),*],
            ids: #ids,
            user_required: #user_required,
        }
    };
    let some_entering = quote!(::core::option::Option::Some(#entering));
    let submission = test_case_submission(
        &path,
        &variants,
        &some_entering,
        &ignore,
        &should_panic,
        &expected,
    );
    let skip_return = skip_return(&should_panic, &expected);
    quote! {
        #(#cfgs)*
        #(#lints)*
        #[doc(hidden)]
        #asyncness fn #body_fn() #output #block

        // In the process executed for this test: the body, synchronous.
        #(#cfgs)*
        #[doc(hidden)]
        fn #inner_fn() -> ::core::result::Result<(), ::std::string::String> {
            #inner_body
        }

        // Before `main`: in the process executed or forked for this test,
        // or in a nextest test process running it, the namespaces are
        // entered while the process is single-threaded; in any other, the
        // first such entry makes the zygote. Linux only: `.init_array` is
        // an ELF section, and no other system has user namespaces.
        #(#cfgs)*
        #[cfg(target_os = "linux")]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #before_main: ::userns_test::__private::BeforeMain =
            ::userns_test::__private::BeforeMain {
                path: #path,
                requirements: &[#(#variants),*],
                entering: #entering,
                ignored: #ignored,
            };
        #(#cfgs)*
        #[cfg(target_os = "linux")]
        #[doc(hidden)]
        extern "C" fn #enter_fn(
            argc: ::core::ffi::c_int,
            argv: *const *const ::core::ffi::c_char,
            envp: *const *const ::core::ffi::c_char,
        ) {
            let entry: extern "C" fn(
                ::core::ffi::c_int,
                *const *const ::core::ffi::c_char,
                *const *const ::core::ffi::c_char,
            ) = #enter_fn;
            ::userns_test::__private::in_userns_enter(
                argc,
                argv,
                envp,
                &#before_main,
                entry as usize,
            )
        }
        #(#cfgs)*
        #[cfg(target_os = "linux")]
        #[used]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(link_section = ".init_array")]
        static #enter_static: extern "C" fn(
            ::core::ffi::c_int,
            *const *const ::core::ffi::c_char,
            *const *const ::core::ffi::c_char,
        ) = #enter_fn;

        // The default harness: the gate, then the body in its namespaces.
        #test_attribute
        #(#outer_attrs)*
        #vis fn #ident() {
            if ::userns_test::__private::in_userns_child(#path) {
                ::userns_test::__private::in_userns_body(
                    ::userns_test::__private::libtest_name(#path),
                    #should_panic,
                    #inner_fn,
                )
            }
            if !::userns_test::__private::in_userns_gate(#path, &[#(#variants),*], &#entering) {
                #skip_return
            }
            let __userns_test_running =
                ::userns_test::__private::Running::start(#path, #should_panic, #expected);
            let __userns_test_result = ::userns_test::__private::in_userns_run(
                #path,
                ::userns_test::__private::libtest_name(#path),
                &#entering,
                #should_panic,
                #inner_fn,
            );
            if let ::core::result::Result::Err(message) = __userns_test_result {
                ::core::panic!("{}", message);
            }
            __userns_test_running.finish(&());
        }

        // The runner: the same, registered.
        #(#cfgs)*
        const _: () = {
            fn entry() -> ::core::result::Result<(), ::std::string::String> {
                if ::userns_test::__private::in_userns_child(#path) {
                    ::userns_test::__private::in_userns_body(
                    ::userns_test::__private::libtest_name(#path),
                    #should_panic,
                    #inner_fn,
                )
                }
                ::userns_test::__private::in_userns_run(
                    #path,
                    ::userns_test::__private::libtest_name(#path),
                    &#entering,
                    #should_panic,
                    #inner_fn,
                )
            }

            #submission
        };
    }
}

/// The function's `#[cfg]` attributes (every item generated for it
/// carries them) and its lint attributes (for the body).
fn cfgs_and_lints(attrs: &[Attribute]) -> (Vec<Attribute>, Vec<Attribute>) {
    let kept =
        |keep: &dyn Fn(&Attribute) -> bool| attrs.iter().filter(|a| keep(a)).cloned().collect();
    (
        kept(&|a| a.path().is_ident("cfg")),
        kept(&|a| {
            ["allow", "expect", "warn", "deny"]
                .iter()
                .any(|k| a.path().is_ident(k))
        }),
    )
}

fn variants(requirements: &[Requirement]) -> Vec<TokenStream2> {
    requirements.iter().map(|r| r.tokens.clone()).collect()
}

/// What the runner collects: the name, the requirements, `#[ignore]` and
/// `#[should_panic]`, and a synchronous entry point calling the body (for
/// an `async` body, under the runtime its test attribute names). Compiled
/// in both modes; the default harness never reads it.
fn runner_registration(
    function: &ItemFn,
    requirements: &[Requirement],
    body_fn: &Ident,
    cfgs: &[Attribute],
) -> TokenStream2 {
    let name = function.sig.ident.to_string();
    if !function.sig.inputs.is_empty() {
        return quote!();
    }
    let ignore = ignore_data(&function.attrs);
    let (should_panic, expected) = should_panic_data(&function.attrs);
    let output = &function.sig.output;
    let runtime = runtime_entry_attribute(&function.attrs);
    let entry = sync_entry(function.sig.asyncness.is_some(), &runtime, output, body_fn);
    let variants = variants(requirements);
    let path = quote!(::core::concat!(::core::module_path!(), "::", #name));
    let none = quote!(::core::option::Option::None);
    let submission =
        test_case_submission(&path, &variants, &none, &ignore, &should_panic, &expected);
    // A const block, not a module: `module_path!()` inside it is the test's
    // own module, and the body function resolves by name.
    quote! {
        #(#cfgs)*
        const _: () = {
            fn entry() -> ::core::result::Result<(), ::std::string::String> {
                #entry
            }

            #submission
        };
    }
}

/// A synchronous call of the body returning `Result<(), String>`: for an
/// `async` body, under the runtime its test attribute names (`runtime`,
/// from [`runtime_entry_attribute`]).
fn sync_entry(
    is_async: bool,
    runtime: &TokenStream2,
    output: &syn::ReturnType,
    body_fn: &Ident,
) -> TokenStream2 {
    if is_async {
        quote! {
            #runtime
            async fn __userns_test_async_entry() #output { #body_fn().await }
            ::userns_test::__private::IntoOutcome::into_outcome(__userns_test_async_entry())
        }
    } else {
        quote!(::userns_test::__private::IntoOutcome::into_outcome(#body_fn()))
    }
}

/// The runner's registration of a test whose entry is `entry` (a function
/// in scope).
fn test_case_submission(
    path: &TokenStream2,
    variants: &[TokenStream2],
    entering: &TokenStream2,
    ignore: &TokenStream2,
    should_panic: &TokenStream2,
    expected: &TokenStream2,
) -> TokenStream2 {
    quote! {
        ::userns_test::__private::inventory::submit! {
            ::userns_test::__private::TestCase {
                path: #path,
                name: ::userns_test::__private::libtest_name(#path),
                requires: &[#(#variants),*],
                entering: #entering,
                ignore: #ignore,
                should_panic: #should_panic,
                expected_panic: #expected,
                run: entry,
                target: (
                    ::core::option_env!("CARGO_PKG_NAME"),
                    ::core::option_env!("CARGO_CRATE_NAME"),
                ),
                target_kind: (
                    ::core::option_env!("CARGO_BIN_NAME"),
                    ::core::option_env!("CARGO_TARGET_TMPDIR").is_some(),
                ),
            }
        }
    }
}

/// How a gated test that is skipped returns: libtest passes a
/// `#[should_panic]` test only when it panics, so its skip unwinds with the
/// expected text (without the panic hook's message); others return the
/// skip value of their type (`()`, `Ok(())`).
fn skip_return(should_panic: &TokenStream2, expected: &TokenStream2) -> TokenStream2 {
    if should_panic.to_string() == "true" {
        quote!(::userns_test::__private::skip_expected_panic(#expected))
    } else {
        quote!(return ::userns_test::__private::SkipReturn::skipped();)
    }
}

/// `#[ignore]` -> `Some("")`, `#[ignore = "why"]` -> `Some("why")`.
fn ignore_data(attrs: &[Attribute]) -> TokenStream2 {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("ignore")) else {
        return quote!(::core::option::Option::None);
    };
    match &attr.meta {
        Meta::NameValue(nv) => {
            let value = &nv.value;
            quote!(::core::option::Option::Some(#value))
        }
        _ => quote!(::core::option::Option::Some("")),
    }
}

/// `#[should_panic]`, `#[should_panic = "msg"]`,
/// `#[should_panic(expected = "msg")]`.
fn should_panic_data(attrs: &[Attribute]) -> (TokenStream2, TokenStream2) {
    let none = quote!(::core::option::Option::None);
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("should_panic")) else {
        return (quote!(false), none);
    };
    let expected = match &attr.meta {
        Meta::NameValue(nv) => {
            let v = &nv.value;
            quote!(::core::option::Option::Some(#v))
        }
        Meta::List(list) => {
            let mut found = none.clone();
            let _ = list.parse_nested_meta(|m| {
                if m.path.is_ident("expected") {
                    let v: syn::LitStr = m.value()?.parse()?;
                    found = quote!(::core::option::Option::Some(#v));
                }
                Ok(())
            });
            found
        }
        Meta::Path(_) => none,
    };
    (quote!(true), expected)
}

/// For an `async` test, the runner needs a synchronous entry point with the
/// same runtime: the runtime's test attribute with `test` turned into
/// `main` (`#[tokio::test]` -> `#[tokio::main(flavor = "current_thread")]`,
/// tokio::test's default flavor; `#[async_std::test]` ->
/// `#[async_std::main]`).
fn runtime_entry_attribute(attrs: &[Attribute]) -> TokenStream2 {
    let Some(attr) = attrs.iter().find(|a| {
        a.path().segments.len() > 1 && a.path().segments.last().is_some_and(|s| s.ident == "test")
    }) else {
        return quote!();
    };
    let mut path = attr.path().clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = Ident::new("main", last.ident.span());
    }
    let is_tokio = attr
        .path()
        .segments
        .first()
        .is_some_and(|s| s.ident == "tokio");
    let args = match &attr.meta {
        Meta::List(list) => list.tokens.clone(),
        _ => TokenStream2::new(),
    };
    if is_tokio && !args.to_string().contains("flavor") {
        let sep = if args.is_empty() { quote!() } else { quote!(,) };
        quote!(#[#path(flavor = "current_thread" #sep #args)])
    } else if args.is_empty() {
        quote!(#[#path])
    } else {
        quote!(#[#path(#args)])
    }
}

fn first_token_span(item: &TokenStream2) -> Span {
    item.clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

fn known_names() -> String {
    ABILITIES
        .iter()
        .map(|(n, _)| *n)
        .chain(PARAMETERISED.iter().map(|(_, example)| *example))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest of `names`, if close enough to be a typo.
fn closest_in<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.len() / 3).max(1);
    names
        .iter()
        .map(|n| (edit_distance(&word, n), *n))
        .filter(|&(d, n)| d <= limit || (n.len() >= 3 && (word.contains(n) || n.contains(&word))))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// The closest known name, if close enough to be a typo or a prefix.
fn closest(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.len() / 3).max(1);
    ABILITIES
        .iter()
        .map(|(n, _)| *n)
        .chain(PARAMETERISED.iter().map(|(n, _)| *n))
        .map(|n| (edit_distance(&word, n), n))
        .filter(|&(d, n)| d <= limit || (n.len() >= 3 && (word.contains(n) || n.contains(&word))))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// Optimal-string-alignment distance: edits plus adjacent transpositions,
/// so `nte` is one step from `net`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}
