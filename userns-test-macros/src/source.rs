//! Reading the test target's own source, for what the token streams an
//! attribute macro receives cannot show: the attributes *above* it (the
//! compiler has already expanded and removed them), and the functions a
//! `harness = false` target drops without a word (`#[test]` functions: such
//! a target is not compiled with `--test`). `#[cfg(test)]` items are not
//! among them: cargo passes `--cfg test` to every test target, `harness =
//! false` included, so they compile and register like any other.
//!
//! A small lexer, not a parser: tokens with their line and column,
//! comments and literals skipped, enough to find attributes, `mod` and `fn`
//! items. Where a file cannot be read or a position not found, nothing is
//! reported: these checks add errors, they never hide a test.

use std::path::{Path, PathBuf};

/// One token of Rust source: an identifier (or number), a punctuation
/// character, or a literal/lifetime (kept as `Other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Ident(String),
    Punct(char),
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Token {
    fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }

    fn ident(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ident(s) => Some(s),
            _ => None,
        }
    }
}

/// The tokens of `file`, lexed once per version of the file in this
/// compiler process (a target of thousands of annotated tests asks for
/// its file once per test).
pub(crate) fn tokens_of(file: &Path) -> Option<std::sync::Arc<Vec<Token>>> {
    use std::sync::{Arc, Mutex};
    type Cache = Vec<(PathBuf, Option<std::time::SystemTime>, u64, Arc<Vec<Token>>)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let meta = std::fs::metadata(file).ok()?;
    let (modified, len) = (meta.modified().ok(), meta.len());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, _, tokens)) = cache
        .iter()
        .find(|(p, m, l, _)| p == file && *m == modified && *l == len)
    {
        return Some(tokens.clone());
    }
    let tokens = Arc::new(lex(&std::fs::read_to_string(file).ok()?));
    cache.retain(|(p, ..)| p != file);
    cache.push((file.to_path_buf(), modified, len, tokens.clone()));
    Some(tokens)
}

/// The tokens of `text`.
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    // Advances over `n` characters, counting lines.
    let advance = |i: &mut usize, n: usize, line: &mut usize, line_start: &mut usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *line_start = *i + 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let (tok_line, tok_column) = (line, i - line_start + 1);
        let push = |tokens: &mut Vec<Token>, kind| {
            tokens.push(Token {
                kind,
                line: tok_line,
                column: tok_column,
            })
        };
        if c.is_whitespace() {
            advance(&mut i, 1, &mut line, &mut line_start);
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    advance(&mut i, 2, &mut line, &mut line_start);
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    advance(&mut i, 2, &mut line, &mut line_start);
                    if depth == 0 {
                        break;
                    }
                } else {
                    advance(&mut i, 1, &mut line, &mut line_start);
                }
            }
        } else if let Some(len) = raw_string_len(&chars, i) {
            advance(&mut i, len, &mut line, &mut line_start);
            push(&mut tokens, Kind::Other);
        } else if c == '"' || (matches!(c, 'b' | 'c') && next == Some('"')) {
            if c != '"' {
                i += 1;
            }
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let n = if chars[i] == '\\' { 2 } else { 1 };
                advance(&mut i, n, &mut line, &mut line_start);
            }
            i += 1;
            push(&mut tokens, Kind::Other);
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            // A char literal ('a', '\n', b'x') or a lifetime ('a).
            let start = if c == 'b' { i + 1 } else { i };
            let is_char =
                chars.get(start + 1) == Some(&'\\') || chars.get(start + 2) == Some(&'\'');
            if is_char {
                i = start + 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else {
                i = start + 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
            }
            push(&mut tokens, Kind::Other);
        } else if is_ident_char(c) {
            // `r#name` is the identifier `name`.
            let start = if c == 'r'
                && next == Some('#')
                && chars.get(i + 2).is_some_and(|&c| is_ident_char(c))
            {
                i + 2
            } else {
                i
            };
            let mut end = start;
            while end < chars.len() && is_ident_char(chars[end]) {
                end += 1;
            }
            push(&mut tokens, Kind::Ident(chars[start..end].iter().collect()));
            i = end;
        } else {
            push(&mut tokens, Kind::Punct(c));
            i += 1;
        }
    }
    tokens
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The length of a raw string literal (`r"..."`, `r#"..."#`, `br##"..."##`,
/// `cr"..."`) starting at `i`, if one does.
fn raw_string_len(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes - i);
        }
        j += 1;
    }
    Some(chars.len() - i)
}

/// An outer attribute: its path (`test`, `tokio::test`) and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub path: Vec<String>,
    pub line: usize,
    pub column: usize,
}

impl Attr {
    pub(crate) fn path_text(&self) -> String {
        self.path.join("::")
    }

    /// A test-making attribute: `test`, `tokio::test`, `async_std::test`,
    /// `rstest`, `test_case`, ... (but not this crate's own `test`).
    pub(crate) fn makes_a_test(&self) -> bool {
        !self.is_ours()
            && self
                .path
                .last()
                .is_some_and(|s| s == "test" || s == "rstest" || s == "test_case")
    }

    /// `requires_userns`, `in_userns` (with or without `userns_test::`),
    /// `userns_test::test`.
    pub(crate) fn is_ours(&self) -> bool {
        let last = self.path.last().map(String::as_str);
        last == Some("requires_userns")
            || last == Some("in_userns")
            || (last == Some("test") && self.path.len() == 2 && self.path[0] == "userns_test")
    }
}

/// Parses the attribute whose `#` is `tokens[i]`; returns it and the index
/// after its closing `]`. `None` for anything else (an inner `#![...]`).
fn attribute_at(tokens: &[Token], i: usize) -> Option<(Attr, usize)> {
    if !tokens.get(i)?.is_punct('#') || !tokens.get(i + 1)?.is_punct('[') {
        return None;
    }
    let close = matching(tokens, i + 1, '[', ']')?;
    let mut path = Vec::new();
    let mut j = i + 2;
    while j < close {
        match tokens[j].ident() {
            Some(s) => path.push(s.to_owned()),
            None => break,
        }
        if tokens[j + 1].is_punct(':') && tokens.get(j + 2).is_some_and(|t| t.is_punct(':')) {
            j += 3;
        } else {
            break;
        }
    }
    Some((
        Attr {
            path,
            line: tokens[i].line,
            column: tokens[i].column,
        },
        close + 1,
    ))
}

/// The index of the bracket closing the one at `open`.
fn matching(tokens: &[Token], open: usize, o: char, c: char) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        if t.is_punct(o) {
            depth += 1;
        } else if t.is_punct(c) {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// The outer attributes written above the attribute that starts at
/// `line:column` (this macro's own `#[...]`), nearest first.
pub(crate) fn attributes_above(tokens: &[Token], line: usize, column: usize) -> Vec<Attr> {
    let Some(start) = tokens
        .iter()
        .position(|t| t.line == line && t.column == column && t.is_punct('#'))
    else {
        return Vec::new();
    };
    let mut above = Vec::new();
    let mut end = start; // exclusive end of the region before
    while end > 0 && tokens[end - 1].is_punct(']') {
        // Find the `[` that the `]` closes, walking back.
        let mut depth = 0usize;
        let mut k = end - 1;
        loop {
            if tokens[k].is_punct(']') {
                depth += 1;
            } else if tokens[k].is_punct('[') {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            if k == 0 {
                return above;
            }
            k -= 1;
        }
        // `#[...]` is an outer attribute; `#![...]` or `x[...]` is not.
        if k == 0 || !tokens[k - 1].is_punct('#') {
            break;
        }
        match attribute_at(tokens, k - 1) {
            Some((attr, _)) => above.push(attr),
            None => break,
        }
        end = k - 1;
    }
    above
}

/// A function the runner of a `harness = false` target never runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeverRuns {
    /// `path:line`.
    pub location: String,
    /// The function's name.
    pub name: String,
    /// Why, and what to write instead.
    pub why: String,
}

/// Every function, in `file` and the module files it declares, that a
/// `harness = false` target compiles out or does not collect.
pub(crate) fn never_run(file: &Path) -> Vec<NeverRuns> {
    let mut found = Vec::new();
    scan_file(file, true, &mut found, 0);
    found
}

/// A module's context while scanning.
#[derive(Clone)]
struct Scope {
    /// Where `mod x;` files of this module are looked for.
    dir: PathBuf,
}

fn scan_file(file: &Path, mod_rs: bool, found: &mut Vec<NeverRuns>, depth: usize) {
    // A module tree deeper than this is a `#[path]` loop.
    if depth > 32 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let tokens = lex(&text);
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let dir = if mod_rs {
        dir
    } else {
        dir.join(file.file_stem().unwrap_or_default())
    };
    // `use userns_test::test` (or in a list) makes a bare `#[test]` ours.
    let imports_our_test = imports_userns_test_test(&tokens);
    let mut scopes = vec![(Scope { dir }, usize::MAX)];
    let mut attrs: Vec<Attr> = Vec::new();
    let mut depth_braces = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        if let Some((attr, next)) = attribute_at(&tokens, i) {
            attrs.push(attr);
            i = next;
            continue;
        }
        let t = &tokens[i];
        if t.is_punct('{') {
            depth_braces += 1;
            attrs.clear();
            i += 1;
            continue;
        }
        if t.is_punct('}') {
            depth_braces = depth_braces.saturating_sub(1);
            if scopes.len() > 1 && scopes.last().is_some_and(|(_, d)| *d == depth_braces) {
                scopes.pop();
            }
            attrs.clear();
            i += 1;
            continue;
        }
        // Visibility and qualifiers between attributes and `fn`/`mod`.
        if let Some(word) = t.ident() {
            match word {
                "pub" => {
                    i += 1;
                    if tokens.get(i).is_some_and(|t| t.is_punct('(')) {
                        i = matching(&tokens, i, '(', ')').map_or(tokens.len(), |c| c + 1);
                    }
                    continue;
                }
                "async" | "unsafe" | "const" | "default" | "safe" => {
                    i += 1;
                    continue;
                }
                "extern" => {
                    i += 1;
                    if tokens.get(i).is_some_and(|t| t.kind == Kind::Other) {
                        i += 1;
                    }
                    continue;
                }
                "mod" => {
                    let scope = scopes
                        .last()
                        .map(|(s, _)| s.clone())
                        .unwrap_or_else(|| Scope {
                            dir: PathBuf::new(),
                        });
                    let name = tokens.get(i + 1).and_then(Token::ident).map(str::to_owned);
                    match (name, tokens.get(i + 2)) {
                        (Some(name), Some(semi)) if semi.is_punct(';') => {
                            let explicit = path_attribute(&attrs, &text);
                            let candidates = match explicit {
                                Some(p) => vec![(scope.dir.join(p), true)],
                                None => vec![
                                    (scope.dir.join(format!("{name}.rs")), false),
                                    (scope.dir.join(&name).join("mod.rs"), true),
                                ],
                            };
                            if let Some((path, mod_rs)) =
                                candidates.into_iter().find(|(p, _)| p.is_file())
                            {
                                scan_file(&path, mod_rs, found, depth + 1);
                            }
                            i += 3;
                        }
                        (Some(name), Some(open)) if open.is_punct('{') => {
                            scopes.push((
                                Scope {
                                    dir: scope.dir.join(&name),
                                },
                                depth_braces,
                            ));
                            depth_braces += 1;
                            i += 3;
                        }
                        _ => i += 1,
                    }
                    attrs.clear();
                    continue;
                }
                "fn" => {
                    if let Some(name) = tokens.get(i + 1).and_then(Token::ident) {
                        let has_params = has_parameters(&tokens, i + 2);
                        if let Some(why) = why_never(&attrs, has_params, imports_our_test) {
                            found.push(NeverRuns {
                                location: format!("{}:{}", file.display(), tokens[i].line),
                                name: name.to_owned(),
                                why,
                            });
                        }
                    }
                    // Skip the signature and the body.
                    i = skip_item_body(&tokens, i);
                    attrs.clear();
                    continue;
                }
                _ => {}
            }
        }
        attrs.clear();
        i += 1;
    }
}

/// Whether the parenthesised parameter list after `fn name` (and its
/// generics) is not empty.
fn has_parameters(tokens: &[Token], mut i: usize) -> bool {
    while i < tokens.len() && !tokens[i].is_punct('(') {
        if tokens[i].is_punct('{') || tokens[i].is_punct(';') {
            return false;
        }
        i += 1;
    }
    tokens.get(i + 1).is_some_and(|t| !t.is_punct(')'))
}

/// The index after a `fn` item's body (or its `;`).
fn skip_item_body(tokens: &[Token], mut i: usize) -> usize {
    while i < tokens.len() {
        if tokens[i].is_punct(';') {
            return i + 1;
        }
        if tokens[i].is_punct('{') {
            return matching(tokens, i, '{', '}').map_or(tokens.len(), |c| c + 1);
        }
        // Parameters may hold braces only inside their parentheses.
        if tokens[i].is_punct('(') {
            i = matching(tokens, i, '(', ')').map_or(tokens.len(), |c| c + 1);
            continue;
        }
        i += 1;
    }
    i
}

/// `#[path = "..."]`: the string, read back from the source text.
fn path_attribute(attrs: &[Attr], text: &str) -> Option<String> {
    let attr = attrs.iter().find(|a| a.path_text() == "path")?;
    let line = text.lines().nth(attr.line - 1)?;
    let rest: String = line.chars().skip(attr.column - 1).collect();
    let start = rest.find('"')? + 1;
    let end = start + rest[start..].find('"')?;
    Some(rest[start..end].to_owned())
}

fn imports_userns_test_test(tokens: &[Token]) -> bool {
    tokens.windows(4).enumerate().any(|(k, w)| {
        w[0].ident() == Some("use") && w[1].ident() == Some("userns_test") && {
            // The `use` item, up to its `;`.
            let end = tokens[k..]
                .iter()
                .position(|t| t.is_punct(';'))
                .map_or(tokens.len(), |p| k + p);
            tokens[k..end].iter().any(|t| t.ident() == Some("test"))
        }
    })
}

/// Why a function with these attributes never runs under the runner, if
/// it does not.
fn why_never(attrs: &[Attr], has_params: bool, imports_our_test: bool) -> Option<String> {
    let ours_at = attrs
        .iter()
        .position(|a| a.is_ours() || (imports_our_test && a.path_text() == "test"));
    let test_at = attrs
        .iter()
        .position(|a| a.makes_a_test() && !(imports_our_test && a.path_text() == "test"));
    if ours_at.is_none() && test_at.is_none() {
        return None;
    }
    match (ours_at, test_at) {
        (None, Some(t)) => Some(format!(
            "a plain #[{}] is dropped in a harness = false target; write \
             #[userns_test::test] for a test without requirements, or #[requires_userns(...)] \
             above #[{}]",
            attrs[t].path_text(),
            attrs[t].path_text()
        )),
        (Some(o), Some(t)) if t < o => Some(format!(
            "#[{}] above #[{}] removes the function before it is registered; write \
             #[{}] above #[{}]",
            attrs[t].path_text(),
            attrs[o].path_text(),
            attrs[o].path_text(),
            attrs[t].path_text()
        )),
        (Some(_), _) if has_params => Some(
            "a test with parameters (rstest, test_case) is not collected by the runner; run it \
             in a target with the default harness"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexer_skips_comments_strings_and_lifetimes() {
        let text = "// #[test]\n/* #[test] /* nested */ */\nfn a<'a>(x: &'a str) { let s = \"#[test]\"; let r = r#\"]\"#; let c = '['; }\n#[test]\nfn b() {}";
        let tokens = lex(text);
        let hashes: Vec<usize> = tokens
            .iter()
            .filter(|t| t.is_punct('#'))
            .map(|t| t.line)
            .collect();
        assert_eq!(hashes, [4]);
        let b = tokens.iter().find(|t| t.ident() == Some("b")).unwrap();
        assert_eq!((b.line, b.column), (5, 4));
    }

    #[test]
    fn attributes_above_stop_at_the_previous_item() {
        let text =
            "fn x() {}\n#[test] // why\n#[cfg_attr(a, b)]\n#[requires_userns(net)]\nfn y() {}";
        let tokens = lex(text);
        let above = attributes_above(&tokens, 4, 1);
        let paths: Vec<String> = above.iter().map(Attr::path_text).collect();
        assert_eq!(paths, ["cfg_attr", "test"]);
        assert!(attributes_above(&tokens, 2, 1).is_empty());
        let inner = lex("#![allow(x)]\n#[requires_userns(net)]\nfn y() {}");
        assert!(attributes_above(&inner, 2, 1).is_empty());
    }

    #[test]
    fn reasons_for_never_running() {
        let attr = |p: &str, line| Attr {
            path: p.split("::").map(str::to_owned).collect(),
            line,
            column: 1,
        };
        assert!(
            why_never(&[attr("test", 1)], false, false)
                .unwrap()
                .contains("plain #[test]")
        );
        assert!(
            why_never(&[attr("test", 1), attr("requires_userns", 2)], false, false)
                .unwrap()
                .contains("above #[requires_userns]")
        );
        assert_eq!(
            why_never(
                &[attr("requires_userns", 1), attr("tokio::test", 2)],
                false,
                false
            ),
            None
        );
        assert_eq!(
            why_never(&[attr("userns_test::test", 1)], false, false),
            None
        );
        assert_eq!(why_never(&[attr("test", 1)], false, true), None);
        // cargo passes `--cfg test` to a harness = false target too: an
        // item under #[cfg(test)] compiles and is collected.
        assert_eq!(
            why_never(&[attr("cfg", 1), attr("requires_userns", 2)], false, false),
            None
        );
        assert!(
            why_never(
                &[attr("requires_userns", 1), attr("rstest", 2)],
                true,
                false
            )
            .unwrap()
            .contains("parameters")
        );
        assert_eq!(why_never(&[attr("inline", 1)], false, false), None);
    }
}
